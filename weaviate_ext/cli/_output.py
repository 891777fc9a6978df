"""One-line errors, secret-scrubbing output and log formatting for the CLI."""

from __future__ import annotations

import datetime
import json
import logging
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs
import click

from weaviate_ext.live import scrub
from weaviate_ext.manifest import PluginConfig, Secret
from weaviate_ext.manifest.config import REDACTED

# ---------------------------------------------------------------------------------------
# Errors and output
# ---------------------------------------------------------------------------------------


class CliError(click.ClickException):
    """A failure reported as one ``error: ...`` line on stderr, exit code 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        """Print the one-line message (``file`` defaults to stderr)."""
        click.echo(f"error: {self.format_message()}", file=file, err=file is None)


def one_line(text: str) -> str:
    """``text`` with its lines joined by ``"; "`` (multi-problem manifest errors)."""
    return "; ".join(part.strip() for part in text.splitlines() if part.strip())


@attrs.define
class Output:
    """Writes to stdout/stderr, scrubbing the clear text of known secrets first."""

    secrets: set[str] = attrs.field(factory=set)

    def remember(self, config: PluginConfig) -> None:
        """Add a plugin's secret values to those scrubbed from all output."""
        self.secrets.update(s for s in config.secret_values if s)

    def clean(self, text: str) -> str:
        """``text`` scrubbed of every known secret."""
        return scrub(text, self.secrets)

    def line(self, text: str = "", *, err: bool = False) -> None:
        """Print one line."""
        click.echo(self.clean(text), err=err)

    def chunk(self, text: str) -> None:
        """Print a piece of a streamed answer right away (click flushes each echo)."""
        click.echo(self.clean(text), nl=False)

    def raw(self, data: bytes) -> None:
        """Print bytes as they are (storage values), scrubbed, with a final newline."""
        for secret in self.secrets:
            data = data.replace(secret.encode("utf-8"), REDACTED.encode("ascii"))
        click.echo(data)

    def json(self, value: Any) -> None:
        """Print ``value`` as indented JSON."""
        self.line(json.dumps(value, indent=2, ensure_ascii=False, default=str))


class _OneLineFormatter(logging.Formatter):
    """Log records as ``level: name: message`` on one line; tracebacks only if verbose."""

    def __init__(self, verbose: bool, output: Output) -> None:
        super().__init__("%(levelname)s: %(name)s: %(message)s")
        self.verbose = verbose
        self.output = output

    def format(self, record: logging.LogRecord) -> str:
        if self.verbose:
            return self.output.clean(super().format(record))
        plain = logging.makeLogRecord(record.__dict__)
        plain.exc_info = plain.exc_text = plain.stack_info = None
        return self.output.clean(one_line(super().format(plain)))


class JsonFormatter(logging.Formatter):
    """Log records as one JSON object per line: ``time`` (ISO 8601, UTC), ``level``,
    ``logger``, ``message``, then ``request_id``, ``plugin``, ``latency_ms``,
    ``method``, ``path`` and ``status`` when the record has them (the serve request
    log sets them), and ``exception`` (one line) for a record with a traceback.
    Known secrets are scrubbed from every value.

    :param output: whose secrets to scrub; :param secrets: more of them (for
        ``logging.config.dictConfig``, which cannot pass an :class:`Output`).
    """

    FIELDS = ("request_id", "plugin", "latency_ms", "method", "path", "status")

    def __init__(self, output: Output | None = None, secrets: Sequence[str] = ()) -> None:
        super().__init__()
        self.output = output if output is not None else Output()
        self.output.secrets.update(s for s in secrets if s)

    def format(self, record: logging.LogRecord) -> str:
        clean = self.output.clean
        when = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        entry: dict[str, Any] = {
            "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": clean(record.getMessage()),
        }
        for field in self.FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = clean(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exception"] = clean(one_line(self.formatException(record.exc_info)))
        return json.dumps(entry, ensure_ascii=False, default=str)


def _setup_logging(ctx: click.Context, verbose: bool, output: Output) -> None:
    """Send log records to stderr (INFO with ``-v``, else WARNING) until the command ends."""
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLineFormatter(verbose, output))
    level = logging.INFO if verbose else logging.WARNING
    handler.setLevel(level)
    previous = root.level
    root.setLevel(level)
    root.addHandler(handler)

    def restore() -> None:
        root.removeHandler(handler)
        root.setLevel(previous)

    ctx.call_on_close(restore)


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Lines of a left-aligned table; the last column is not padded."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return lines


def shown(value: Any) -> Any:
    """A value made safe to print: every :class:`Secret` (also nested) redacted."""
    if isinstance(value, Secret):
        return REDACTED
    if isinstance(value, Mapping):
        return {str(k): shown(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [shown(v) for v in value]
    return value


def render_text(value: Any, indent: int = 0) -> Iterator[str]:
    """Lines of a nested mapping in an indented ``key: value`` form."""
    pad = "  " * indent
    for key, item in value.items():
        if isinstance(item, Mapping) and item:
            yield f"{pad}{key}:"
            yield from render_text(item, indent + 1)
        elif isinstance(item, list) and item and any(isinstance(i, Mapping) for i in item):
            yield f"{pad}{key}:"
            for element in item:
                yield f"{pad}  - " + ", ".join(f"{k}: {_scalar(v)}" for k, v in element.items())
        else:
            yield f"{pad}{key}: {_scalar(item)}"


def _scalar(value: Any) -> str:
    if value is None or value == "" or value == {} or value == []:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)
