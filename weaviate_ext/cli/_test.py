"""``weaviate-ext test``: the conformance suite of a plugin's type, as a report."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from weaviate_ext.cli._app import _state, cli, split_assignment
from weaviate_ext.cli._output import CliError, Output, one_line
from weaviate_ext.errors import WeaviateExtError

if TYPE_CHECKING:  # imported by the command when it runs, not for --help
    from weaviate_ext.manager import PluginManager
    from weaviate_ext.testing import ConformanceReport


def parse_credentials(
    ctx: click.Context, param: click.Parameter, values: Sequence[str]
) -> dict[str, str] | None:
    """``KEY=VALUE`` options as a mapping (``None`` when none were given)."""
    if not values:
        return None
    return dict(split_assignment(v, "KEY") for v in values)


def credential_options(command: Any) -> Any:
    """The ``--credentials`` / ``--invalid-credentials`` options of the commands that
    run the conformance suite (``test``, ``dev``): for auth plugins, what it must see
    accepted and rejected."""
    command = click.option(
        "--invalid-credentials",
        "invalid",
        multiple=True,
        metavar="KEY=VALUE",
        callback=parse_credentials,
        help="Auth plugins: credentials of its kind it must reject (repeatable).",
    )(command)
    return click.option(
        "--credentials",
        "valid",
        multiple=True,
        metavar="KEY=VALUE",
        callback=parse_credentials,
        help="Auth plugins: credentials the plugin must accept (repeatable).",
    )(command)


def conformance_options(
    kind: str, valid: dict[str, str] | None, invalid: dict[str, str] | None
) -> dict[str, Any]:
    """The options of ``check_plugin`` for a plugin of type ``kind`` (credentials: auth)."""
    if kind != "auth":
        return {}
    return {"valid_credentials": valid, "invalid_credentials": invalid}


def report_dict(report: ConformanceReport, path: Path) -> dict[str, Any]:
    """A report as JSON-ready data."""
    return {
        "path": str(path),
        "plugin": report.plugin,
        "type": report.plugin_type,
        "ok": report.ok,
        "checks": [
            {"name": r.name, "passed": r.passed, "skipped": r.skipped, "message": r.message}
            for r in report.results
        ],
    }


def print_report(out: Output, report: ConformanceReport, runtime: str, path: Path) -> None:
    """The readable report: a summary line, then one PASS/FAIL/SKIP line per check."""
    failed = len(report.failures)
    verdict = "ok" if report.ok else "FAILED"
    out.line(
        f"{report.plugin_type} {report.plugin!r} ({runtime}, {path}): {verdict}, "
        f"{len(report) - failed} of {len(report)} checks passed"
    )
    for result in report.results:
        out.line(f"  {result}")


@cli.command("test")
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="PATH..."
)
@click.option("--build", "build_first", is_flag=True, help="Run each plugin's build.sh first.")
@click.option("--json", "as_json", is_flag=True, help="Print the reports as JSON.")
@credential_options
@click.pass_context
def test_command(
    ctx: click.Context,
    paths: tuple[Path, ...],
    build_first: bool,
    as_json: bool,
    valid: dict[str, str] | None,
    invalid: dict[str, str] | None,
) -> None:
    """Run the conformance suite of each plugin's type against the built plugin.

    PATH is a plugin directory (its plugin.yaml) or a manifest file. The report lists
    every check; the exit code is 0 when every plugin passed, 1 otherwise (for CI).
    Configuration comes from the global --config/--config-file options.
    """
    from weaviate_ext.manifest import load_manifest
    from weaviate_ext.scaffold.build import find_manifest, run_build
    from weaviate_ext.testing import check_plugin

    state = _state(ctx)
    out = state.output
    manager: PluginManager = state.open_manager(ctx)
    reports: list[dict[str, Any]] = []
    failures = 0
    for given in paths:
        try:
            manifest_path = find_manifest(given)
            if build_first:
                result = run_build(manifest_path.parent)
                if not result.ok:
                    for line in result.tail().splitlines():
                        out.line(f"    {line}", err=True)
                    raise CliError(f"{given}: build.sh failed (exit {result.returncode})")
            manifest = load_manifest(manifest_path)
            options = conformance_options(manifest.spec.type, valid, invalid)
            if manifest.name not in manager.names():
                manager.load(manifest_path)
            state.remember_secrets(manager)
            report = check_plugin(manager.get(manifest.name), **options)
        except (WeaviateExtError, OSError) as exc:
            if len(paths) == 1:
                raise
            failures += 1
            message = out.clean(one_line(str(exc)))
            out.line(f"error: {given}: {message}", err=True)
            reports.append({"path": str(given), "ok": False, "error": message})
            continue
        except CliError as exc:
            if len(paths) == 1:
                raise
            failures += 1
            out.line(f"error: {exc.format_message()}", err=True)
            reports.append({"path": str(given), "ok": False, "error": exc.format_message()})
            continue
        if not report.ok:
            failures += 1
        if as_json:
            reports.append(report_dict(report, manifest_path))
        else:
            print_report(out, report, manifest.spec.runtime, manifest_path)
    if as_json:
        out.json(reports)
    elif len(paths) > 1:
        out.line(f"{len(paths) - failures} of {len(paths)} plugins passed")
    if failures:
        ctx.exit(1)
