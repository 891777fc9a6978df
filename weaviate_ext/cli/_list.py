"""``weaviate-ext list``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import click

from weaviate_ext.cli._app import (
    _quieted,
    _state,
    cli,
)
from weaviate_ext.cli._inspect import permissions_info
from weaviate_ext.cli._output import (
    format_table,
    one_line,
)

if TYPE_CHECKING:
    from weaviate_ext.manager import PluginManager, PluginStatus

LIST_COLUMNS = (
    "name",
    "version",
    "type",
    "runtime",
    "isolation",
    "source",
    "status",
    "reason",
)


def short_isolation(text: str | None) -> str | None:
    """The table's one word for an isolation text: ``none``, ``sandboxed``, ``process``."""
    if not text:
        return None
    return text.split(":")[0].split(" (")[0].strip()


# ---------------------------------------------------------------------------------------
# list
# ---------------------------------------------------------------------------------------


def collect_rows(manager: PluginManager) -> list[PluginStatus]:
    """Every plugin the manager knows, failures included, each reason on one line."""
    return [
        attrs.evolve(row, reason=one_line(row.reason)) if row.reason else row
        for row in manager.plugins()
    ]


def row_dict(row: PluginStatus) -> dict[str, Any]:
    """One row as the JSON object of ``list --json``: the table's columns, and for a
    loaded plugin what it requests and what the host grants it (``permissions``)."""
    data: dict[str, Any] = {column: getattr(row, column) for column in LIST_COLUMNS}
    if row.permissions is not None:
        data["permissions"] = permissions_info(dict(row.permissions), row.isolation)
    return data


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of objects.")
@click.option(
    "--check",
    is_flag=True,
    help="Also load every pip-installed plugin (imports its code) and report the broken "
    "ones; exit 1 if any plugin is broken.",
)
@click.pass_context
def list_command(ctx: click.Context, as_json: bool, check: bool) -> None:
    """List every plugin: loaded, installed, disabled and broken (with the reason).

    Pip-installed plugins are listed from the manifests their packages ship, without
    importing them (status 'installed'); --check loads each one to find broken code.
    Broken plugins are shown, not fatal: the exit code is 0 unless the command itself
    could not run (or, with --check, a plugin is broken).
    """
    state = _state(ctx)
    manager = state.open_manager(ctx)
    if check:
        with _quieted(not state.verbose):
            manager.load_installed()
    state.remember_secrets(manager)
    rows = collect_rows(manager)
    out = state.output
    broken = check and any(row.status == "broken" for row in rows)
    if as_json:
        out.json([row_dict(row) for row in rows])
        ctx.exit(1 if broken else 0)
    if not rows:
        out.line("no plugins found (give --plugins DIR or pip install a plugin)", err=True)
        return
    header = [c.upper() for c in LIST_COLUMNS]
    table = [
        [
            (short_isolation(row.isolation) if c == "isolation" else getattr(row, c)) or "-"
            for c in LIST_COLUMNS
        ]
        for row in rows
    ]
    for line in format_table(header, table):
        out.line(line)
    if broken:
        ctx.exit(1)
