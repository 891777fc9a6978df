"""The ``weaviate-ext`` command line: list, inspect, validate and call plugins.

Every command is a thin layer over :class:`~weaviate_ext.PluginManager` and
:func:`~weaviate_ext.load_manifest`. Two rules hold for all of them:

* an error of the framework (:class:`~weaviate_ext.WeaviateExtError`) or of the file
  system (:class:`OSError`) is printed as one line, ``error: ...``, on stderr with exit
  code 1; click's usage errors exit with 2; no traceback is ever shown (``-v`` shows
  one for an unexpected internal error);
* no secret configuration value is printed: secret values are :class:`Secret` objects
  whose str is redacted, and every line written is also scrubbed of the clear text of
  the loaded plugins' secrets (:attr:`PluginConfig.secret_values`).
"""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import attrs
import click
import numpy as np
import yaml

from weaviate_ext._version import __version__
from weaviate_ext.errors import ManifestError, PluginDisabled, PluginNotFound, WeaviateExtError
from weaviate_ext.handles import (
    AuthHandle,
    GeneratorHandle,
    PluginHandle,
    RerankerHandle,
    StorageHandle,
    TransformerHandle,
    VectorizerHandle,
)
from weaviate_ext.manager import LoadResult, PluginManager, PluginStatus
from weaviate_ext.manifest import Manifest, PluginConfig, Secret, load_manifest
from weaviate_ext.manifest.config import REDACTED
from weaviate_ext.types import Identity

PLUGINS_ENV = "WEAVIATE_EXT_PLUGINS"
"""Environment variable with plugin directories, separated by :data:`os.pathsep`."""

MAX_CONFIG_BYTES = 1024 * 1024
"""The largest ``--config-file`` accepted."""

PREVIEW_VALUES = 8
"""How many values of each vector ``call`` prints without ``--json``."""

RESERVED_OPTIONS = frozenset({"prompt", "callback", "timeout"})
"""Generator option names that would collide with the handle's own parameters."""

LIST_COLUMNS = ("name", "version", "type", "runtime", "source", "status", "reason")

log = logging.getLogger("weaviate_ext.cli")


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


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every clear-text secret replaced by the redaction mark."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return text


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


class _Group(click.Group):
    """The top-level group: turns framework and OS errors into one ``error:`` line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except (WeaviateExtError, OSError) as exc:
            raise CliError(_clean(ctx, _describe(exc))) from None
        except Exception as exc:
            verbose = isinstance(ctx.obj, State) and ctx.obj.verbose
            if verbose:
                log.exception("internal error")
            hint = "" if verbose else " (run with -v for details)"
            message = f"internal error: {type(exc).__name__}: {exc}{hint}"
            raise CliError(_clean(ctx, one_line(message))) from None


def _describe(exc: BaseException) -> str:
    """One readable line for an exception."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror}"
    return one_line(str(exc)) or type(exc).__name__


def _clean(ctx: click.Context, text: str) -> str:
    return ctx.obj.output.clean(text) if isinstance(ctx.obj, State) else text


# ---------------------------------------------------------------------------------------
# Parsing values and the host configuration
# ---------------------------------------------------------------------------------------


def parse_value(text: str) -> Any:
    """``text`` as JSON when it parses (``42``, ``true``, ``[1, 2]``), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def split_assignment(text: str, what: str) -> tuple[str, str]:
    """``KEY=VALUE`` -> ``(KEY, VALUE)``; a :class:`click.BadParameter` if malformed."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise click.BadParameter(f"expected {what}=VALUE, got {text!r}")
    return key.strip(), value


def _parse_config_options(
    ctx: click.Context, param: click.Parameter, values: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """The ``--config NAME.KEY=VALUE`` options as ``{name: {key: value}}``."""
    config: dict[str, dict[str, Any]] = {}
    for text in values:
        target, value = split_assignment(text, "NAME.KEY")
        name, dot, key = target.partition(".")
        if not dot or not name or not key:
            raise click.BadParameter(f"expected NAME.KEY=VALUE, got {text.partition('=')[0]!r}=...")
        config.setdefault(name, {})[key] = parse_value(value)
    return config


def _parse_options(
    ctx: click.Context, param: click.Parameter, values: Sequence[str]
) -> dict[str, Any]:
    """The ``--option KEY=VALUE`` options as a mapping (values parsed as JSON if they can)."""
    options: dict[str, Any] = {}
    for text in values:
        key, value = split_assignment(text, "KEY")
        if key in RESERVED_OPTIONS:
            raise click.BadParameter(f"{key!r} cannot be passed as an option (see --help)")
        options[key] = parse_value(value)
    return options


class _NoAliasLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses aliases, so an alias bomb costs nothing."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in a config file", mark
            )
        return super().compose_node(parent, index)


def read_config_file(path: Path) -> dict[str, dict[str, Any]]:
    """Read a ``--config-file``: a YAML or JSON mapping of plugin name -> mapping.

    Raises :class:`CliError` (one line, with the line number where known) for anything
    that is not such a mapping, and :class:`OSError` when the file cannot be read.
    """
    with path.open("rb") as handle:
        data = handle.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise CliError(f"{path}: the config file is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CliError(f"{path}: the config file is not UTF-8 text") from None
    if "\x00" in text:
        raise CliError(f"{path}: the config file contains NUL bytes (binary data)")
    loaded = _parse_config_text(text, path)
    return _check_config_mapping(loaded, path)


def _parse_config_text(text: str, path: Path) -> Any:
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise CliError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    try:
        return yaml.load(text, Loader=_NoAliasLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise CliError(f"{path}{line}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise CliError(f"{path}: invalid YAML: {one_line(str(exc))}") from None
    except RecursionError:
        raise CliError(f"{path}: the config file is nested too deeply") from None


def _check_config_mapping(loaded: Any, path: Path) -> dict[str, dict[str, Any]]:
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise CliError(
            f"{path}: a config file must be a mapping of plugin name to a mapping of "
            f"config keys, not {type(loaded).__name__}"
        )
    config: dict[str, dict[str, Any]] = {}
    for name, values in loaded.items():
        if not isinstance(name, str):
            raise CliError(f"{path}: plugin names must be strings, got {name!r}")
        if values is None:
            values = {}
        if not isinstance(values, dict) or not all(isinstance(k, str) for k in values):
            raise CliError(f"{path}: {name}: expected a mapping of config keys to values")
        config[name] = dict(values)
    return config


def merge_config(
    base: Mapping[str, Mapping[str, Any]], override: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """``base`` with the keys of ``override`` set on top, per plugin."""
    merged = {name: dict(values) for name, values in base.items()}
    for name, values in override.items():
        merged.setdefault(name, {}).update(values)
    return merged


# ---------------------------------------------------------------------------------------
# Global state: options of the group, the manager
# ---------------------------------------------------------------------------------------


@attrs.define
class State:
    """What the global options say, and the manager once a command asks for one."""

    plugin_dirs: tuple[Path, ...]
    config: dict[str, dict[str, Any]]
    discover: bool
    verbose: bool
    output: Output = attrs.field(factory=Output)
    failures: dict[str, WeaviateExtError] = attrs.field(factory=dict)
    """What failed to load from ``--plugins``, by name or manifest path."""
    failure_sources: dict[str, str] = attrs.field(factory=dict)
    """The ``--plugins`` directory each failure came from."""

    def open_manager(self, ctx: click.Context) -> PluginManager:
        """A manager (closed with the command) with every ``--plugins`` directory loaded.

        What fails to load is kept in :attr:`failures` for the command to report; the
        manager's own log lines about it are shown only with ``-v``.
        """
        manager = ctx.with_resource(PluginManager(discover=self.discover, config=self.config))
        with _quieted(not self.verbose):
            for directory in self.plugin_dirs:
                self._record(directory, manager.load_directory(directory))
        self.remember_secrets(manager)
        return manager

    def _record(self, directory: Path, result: LoadResult) -> None:
        for key, exc in result.failed.items():
            self.failures[key] = exc
            self.failure_sources[key] = str(directory)

    def remember_secrets(self, manager: PluginManager) -> None:
        """Scrub the secrets of every plugin loaded so far from all further output."""
        for name in manager.names():
            self.output.remember(manager.config_of(name))


class _quieted:
    """Context manager raising the ``weaviate_ext`` logger above ERROR while active."""

    def __init__(self, active: bool) -> None:
        self.active = active
        self.logger = logging.getLogger("weaviate_ext")
        self.level = self.logger.level

    def __enter__(self) -> None:
        if self.active:
            self.logger.setLevel(logging.CRITICAL)

    def __exit__(self, *exc: object) -> None:
        if self.active:
            self.logger.setLevel(self.level)


def _state(ctx: click.Context) -> State:
    state = ctx.find_object(State)
    assert state is not None, "the group callback sets the state"
    return state


# ---------------------------------------------------------------------------------------
# The group
# ---------------------------------------------------------------------------------------


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="weaviate-ext")
@click.option(
    "--plugins",
    "plugin_dirs",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    envvar=PLUGINS_ENV,
    metavar="DIR",
    help=f"Load every plugin.yaml below DIR (repeatable; also ${PLUGINS_ENV}, "
    f"separated by {os.pathsep!r}).",
)
@click.option(
    "--config",
    "config_options",
    multiple=True,
    metavar="NAME.KEY=VALUE",
    callback=_parse_config_options,
    help="A config value for plugin NAME (repeatable). VALUE is JSON if it parses, else a "
    "string; use '${env:VAR}' or '${file:PATH}' to keep secrets out of argv.",
)
@click.option(
    "--config-file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="YAML or JSON mapping of plugin name to config values; --config wins over it.",
)
@click.option("--no-discover", is_flag=True, help="Do not look for pip-installed plugins.")
@click.option("-v", "--verbose", is_flag=True, help="Log INFO messages to stderr.")
@click.pass_context
def cli(
    ctx: click.Context,
    plugin_dirs: tuple[Path, ...],
    config_options: dict[str, dict[str, Any]],
    config_file: Path | None,
    no_discover: bool,
    verbose: bool,
) -> None:
    """Load, inspect, validate and call weaviate-ext plugins.

    Exit codes: 0 success, 1 an error (one 'error: ...' line on stderr, or an invalid
    manifest for validate), 2 a usage error.
    """
    output = Output()
    ctx.obj = State(plugin_dirs, {}, not no_discover, verbose, output)
    _setup_logging(ctx, verbose, output)
    from_file = read_config_file(config_file) if config_file is not None else {}
    ctx.obj.config = merge_config(from_file, config_options)


def main() -> None:
    """Entry point of the ``weaviate-ext`` console script and ``python -m weaviate_ext``."""
    cli(prog_name="weaviate-ext")


# ---------------------------------------------------------------------------------------
# list
# ---------------------------------------------------------------------------------------


def collect_rows(
    manager: PluginManager, failures: Mapping[str, WeaviateExtError], sources: Mapping[str, str]
) -> list[PluginStatus]:
    """The manager's plugins plus what failed to load, one row per name or path."""
    rows = {row.name: row for row in manager.plugins()}
    for key, exc in failures.items():
        current = rows.get(key)
        if current is not None and current.status == "loaded":
            continue
        source = current.source if current is not None and current.source != "?" else ""
        rows[key] = PluginStatus(
            name=key,
            status="disabled" if isinstance(exc, PluginDisabled) else "broken",
            source=source or sources.get(key, "?"),
            reason=one_line(str(exc)),
        )
    for key, row in rows.items():
        if row.source == "?" and key in sources:
            rows[key] = attrs.evolve(row, source=sources[key])
        if row.reason:
            rows[key] = attrs.evolve(rows[key], reason=one_line(row.reason))
    return [rows[key] for key in sorted(rows)]


def row_dict(row: PluginStatus) -> dict[str, str | None]:
    """One row as the JSON object of ``list --json``."""
    return {column: getattr(row, column) for column in LIST_COLUMNS}


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Lines of a left-aligned table; the last column is not padded."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return lines


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of objects.")
@click.pass_context
def list_command(ctx: click.Context, as_json: bool) -> None:
    """List every plugin: loaded, installed, disabled and broken (with the reason).

    Broken plugins are shown, not fatal: the exit code is 0 unless the command itself
    could not run.
    """
    state = _state(ctx)
    manager = state.open_manager(ctx)
    with _quieted(not state.verbose):
        installed = manager.load_installed()
    state.remember_secrets(manager)
    failures = {**state.failures, **installed.failed}
    rows = collect_rows(manager, failures, state.failure_sources)
    out = state.output
    if as_json:
        out.json([row_dict(row) for row in rows])
        return
    if not rows:
        out.line("no plugins found (give --plugins DIR or pip install a plugin)", err=True)
        return
    header = [c.upper() for c in LIST_COLUMNS]
    table = [[getattr(row, c) or "-" for c in LIST_COLUMNS] for row in rows]
    for line in format_table(header, table):
        out.line(line)


# ---------------------------------------------------------------------------------------
# inspect
# ---------------------------------------------------------------------------------------


def shown(value: Any) -> Any:
    """A value made safe to print: every :class:`Secret` (also nested) redacted."""
    if isinstance(value, Secret):
        return REDACTED
    if isinstance(value, Mapping):
        return {str(k): shown(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [shown(v) for v in value]
    return value


def config_info(manifest: Manifest, config: PluginConfig) -> dict[str, Any]:
    """The config schema with resolved values; secret values and defaults redacted."""
    info: dict[str, Any] = {}
    for key, field in manifest.spec.config.items():
        entry: dict[str, Any] = {
            "type": field.type,
            "required": field.required,
            "secret": field.secret,
            "default": shown(field.default),
            "description": field.description,
        }
        if field.secret and field.default is not None:
            entry["default"] = REDACTED
        if key in config:
            entry["value"] = REDACTED if field.secret else shown(config[key])
        else:
            entry["value"] = None
        info[key] = entry
    return info


def spec_info(manifest: Manifest) -> dict[str, Any]:
    """The fields of ``spec`` that say how the plugin runs."""
    spec = manifest.spec
    return {
        "type": spec.type,
        "runtime": spec.runtime,
        "binary": spec.binary,
        "entrypoint": spec.entrypoint,
        "command": list(spec.command) if spec.command else None,
        "address": spec.address,
        "sha256": spec.sha256,
        "timeout": spec.timeout,
    }


def capabilities_info(manifest: Manifest) -> dict[str, Any]:
    """``spec.capabilities`` under the manifest's own key names."""
    caps = manifest.spec.capabilities
    return {
        "dimensions": caps.dimensions,
        "maxBatchSize": caps.max_batch_size,
        "deterministic": caps.deterministic,
        "normalized": caps.normalized,
        **shown(caps.extra),
    }


def manifest_info(manifest: Manifest, config: PluginConfig) -> dict[str, Any]:
    """Everything ``inspect`` shows about a manifest, JSON-ready and redacted."""
    meta = manifest.metadata
    resources = manifest.spec.resources
    permissions = manifest.spec.permissions
    return {
        "name": meta.name,
        "version": meta.version,
        "author": meta.author,
        "description": meta.description,
        "apiVersion": manifest.api_version,
        "kind": manifest.kind,
        "path": str(manifest.path) if manifest.path else None,
        "spec": spec_info(manifest),
        "capabilities": capabilities_info(manifest),
        "resources": {"memoryBytes": resources.memory, "cpuCores": resources.cpu},
        "dependencies": [
            {"name": d.name, "version": d.version} for d in manifest.spec.dependencies
        ],
        "permissions": {
            "env": list(permissions.env),
            "directories": [attrs.asdict(d) for d in permissions.directories],
        },
        "config": config_info(manifest, config),
    }


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


@cli.command("inspect")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def inspect_command(ctx: click.Context, name: str, as_json: bool) -> None:
    """Show the manifest, resolved configuration (secrets redacted) and stats of NAME."""
    state = _state(ctx)
    manager = state.open_manager(ctx)
    manifest, config = _plugin(state, manager, name)
    info = manifest_info(manifest, config)
    info["source"] = next((r.source for r in manager.plugins() if r.name == name), None)
    stats = manager.stats()[name]
    info["stats"] = {**attrs.asdict(stats), "mean_ms": stats.mean_ms}
    if as_json:
        state.output.json(info)
        return
    for line in render_text(info):
        state.output.line(line)


def _plugin(state: State, manager: PluginManager, name: str) -> tuple[Manifest, PluginConfig]:
    """Manifest and config of NAME (loading an installed plugin), or a helpful error."""
    if name in state.failures:
        raise state.failures[name]
    try:
        manifest = manager.manifest(name)
    except PluginNotFound as exc:
        _not_found(state, exc)
    config = manager.config_of(name)
    state.output.remember(config)
    return manifest, config


def _not_found(state: State, exc: PluginNotFound) -> NoReturn:
    broken = [k for k in state.failures if k not in exc.available]
    hint = f"; {len(broken)} plugin(s) failed to load, see 'weaviate-ext list'" if broken else ""
    raise CliError(f"{exc}{hint}") from None


# ---------------------------------------------------------------------------------------
# validate
# ---------------------------------------------------------------------------------------


def manifest_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Each path; for a directory, every ``plugin.yaml`` below it (hidden ones skipped).

    A directory without any is yielded itself, so that it is reported as a problem.
    """
    for path in paths:
        if not path.is_dir():
            yield path
            continue
        found = [
            p
            for p in sorted(path.rglob("plugin.yaml"))
            if not any(part.startswith(".") for part in p.relative_to(path).parts)
        ]
        yield from found or [path]


def validate_one(path: Path) -> tuple[Manifest | None, list[dict[str, Any]]]:
    """The manifest at ``path`` or its problems (as dicts); the binary must exist."""
    if path.is_dir():
        problem = {"file": str(path), "line": 0, "field": "", "message": "no plugin.yaml below"}
        return None, [problem]
    try:
        return load_manifest(path), []
    except ManifestError as exc:
        return None, [attrs.asdict(problem) for problem in exc.problems]


@cli.command("validate")
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="PATH..."
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per file.")
@click.pass_context
def validate_command(ctx: click.Context, paths: tuple[Path, ...], as_json: bool) -> None:
    """Check manifests: each PATH is a plugin.yaml or a directory searched for them.

    Prints 'PATH: ok (...)' per valid file and 'file:line: field: message' per problem;
    exits 1 if any file is invalid. The binary must exist; dependencies are checked at
    load time, not here.
    """
    out = _state(ctx).output
    report = []
    for path in manifest_files(paths):
        manifest, problems = validate_one(path)
        report.append({"path": str(path), "valid": manifest is not None, "problems": problems})
        if as_json:
            continue
        if manifest is not None:
            spec = manifest.spec
            out.line(
                f"{path}: ok ({manifest.name} {manifest.version}, {spec.type}, {spec.runtime})"
            )
        for problem in problems:
            out.line(one_line(str(_problem_text(problem))))
    if as_json:
        out.json(report)
    if not all(entry["valid"] for entry in report):
        ctx.exit(1)


def _problem_text(problem: Mapping[str, Any]) -> str:
    where = f"{problem['file']}:{problem['line']}" if problem["line"] else problem["file"]
    field = f"{problem['field']}: " if problem["field"] else ""
    return f"{where}: {field}{problem['message']}"


# ---------------------------------------------------------------------------------------
# call
# ---------------------------------------------------------------------------------------


@attrs.frozen
class Call:
    """One ``call`` invocation: the plugin's handle and what the command line gave."""

    handle: PluginHandle
    args: tuple[str, ...]
    as_json: bool
    options: Mapping[str, Any]
    timeout: float | None
    authorize: str | None
    out: Output


USAGE = {
    "vectorizer": "TEXT...",
    "transformer": "TEXT",
    "reranker": "QUERY DOC...",
    "generator": "PROMPT [--option KEY=VALUE ...]",
    "storage": "put KEY VALUE | get KEY | delete KEY",
    "auth": "KEY=VALUE... [--authorize RESOURCE:ACTION]",
}


def usage_error(call: Call, detail: str = "") -> NoReturn:
    """Raise a usage error that shows how to call a plugin of this type."""
    kind = call.handle.plugin_type
    prefix = f"{detail}; " if detail else ""
    raise click.UsageError(
        f"{prefix}{call.handle.name!r} is a {kind}: "
        f"weaviate-ext call {call.handle.name} {USAGE[kind]}",
        click.get_current_context(),
    )


def require_args(call: Call, minimum: int, maximum: int | None = None) -> None:
    """Check the number of positional arguments after NAME."""
    count = len(call.args)
    if count < minimum or (maximum is not None and count > maximum):
        usage_error(call, f"got {count} argument(s)")


def call_vectorizer(call: Call, handle: VectorizerHandle) -> None:
    """``call NAME TEXT...``: dims, L2 norm and the first values of each vector."""
    require_args(call, 1)
    matrix = handle.vectorize_batch(list(call.args), timeout=call.timeout)
    rows = [
        {
            "text": text,
            "dims": int(vector.shape[0]),
            "norm": float(np.linalg.norm(vector.astype(np.float64))),
            "vector": vector.tolist(),
        }
        for text, vector in zip(call.args, matrix, strict=True)
    ]
    if call.as_json:
        call.out.json(rows)
        return
    for row in rows:
        head = ", ".join(f"{v:.4f}" for v in row["vector"][:PREVIEW_VALUES])
        more = ", ..." if row["dims"] > PREVIEW_VALUES else ""
        call.out.line(f"{row['text']!r}: dims={row['dims']} norm={row['norm']:.4f} [{head}{more}]")


def call_transformer(call: Call, handle: TransformerHandle) -> None:
    """``call NAME TEXT``: the transformed item (JSON unless it is a string)."""
    require_args(call, 1, 1)
    result = handle.transform(call.args[0], timeout=call.timeout)
    if call.as_json:
        call.out.json(shown(result))
    elif isinstance(result, str):
        call.out.line(result)
    else:
        call.out.line(json.dumps(shown(result), ensure_ascii=False, default=str))


def call_reranker(call: Call, handle: RerankerHandle) -> None:
    """``call NAME QUERY DOC...``: rank, index, score and document, best first."""
    require_args(call, 2)
    query, *documents = call.args
    ranked = handle.rerank(query, documents, timeout=call.timeout)
    rows: list[dict[str, Any]] = [
        {"rank": rank, "index": r.index, "score": r.score, "document": documents[r.index]}
        for rank, r in enumerate(ranked, 1)
    ]
    if call.as_json:
        call.out.json(rows)
        return
    table = [[str(r["rank"]), str(r["index"]), _score(r["score"]), r["document"]] for r in rows]
    for line in format_table(["RANK", "INDEX", "SCORE", "DOCUMENT"], table):
        call.out.line(line)


def _score(score: float) -> str:
    return f"{score:.4f}" if math.isfinite(score) else str(score)


def call_generator(call: Call, handle: GeneratorHandle) -> None:
    """``call NAME PROMPT``: the answer streamed to stdout chunk by chunk."""
    require_args(call, 1, 1)
    stream = handle.generate_stream(call.args[0], timeout=call.timeout, **call.options)
    chunks: list[str] = []
    try:
        for chunk in stream:
            if call.as_json:
                chunks.append(chunk)
            else:
                call.out.chunk(chunk)
    finally:
        stream.close()
    if call.as_json:
        call.out.json({"text": "".join(chunks), "chunks": chunks})
    else:
        call.out.line()


def call_storage(call: Call, handle: StorageHandle) -> None:
    """``call NAME put KEY VALUE | get KEY | delete KEY``."""
    if not call.args:
        usage_error(call, "missing the operation")
    operation, *rest = call.args
    actions: dict[str, tuple[int, Callable[[Call, StorageHandle, list[str]], None]]] = {
        "put": (2, _storage_put),
        "get": (1, _storage_get),
        "delete": (1, _storage_delete),
    }
    if operation not in actions:
        usage_error(call, f"unknown operation {operation!r}")
    count, action = actions[operation]
    if len(rest) != count:
        usage_error(call, f"{operation} takes {count} argument(s), got {len(rest)}")
    action(call, handle, rest)


def _storage_put(call: Call, handle: StorageHandle, args: list[str]) -> None:
    key, value = args
    data = value.encode("utf-8")
    handle.store(key, data, timeout=call.timeout)
    if call.as_json:
        call.out.json({"key": key, "stored": len(data)})
    else:
        call.out.line(f"stored {key!r} ({len(data)} bytes)")


def _storage_get(call: Call, handle: StorageHandle, args: list[str]) -> None:
    key = args[0]
    data = handle.retrieve(key, timeout=call.timeout)
    if data is None:
        raise CliError(f"no such key {key!r} in {handle.name!r}")
    if call.as_json:
        try:
            text: str | None = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        encoded = base64.b64encode(data).decode("ascii")
        call.out.json({"key": key, "value": text, "base64": encoded, "size": len(data)})
    else:
        call.out.raw(data)


def _storage_delete(call: Call, handle: StorageHandle, args: list[str]) -> None:
    key = args[0]
    existed = handle.delete(key, timeout=call.timeout)
    if call.as_json:
        call.out.json({"key": key, "deleted": existed})
    elif existed:
        call.out.line(f"deleted {key!r}")
    if not existed:
        raise CliError(f"no such key {key!r} in {handle.name!r}")


def call_auth(call: Call, handle: AuthHandle) -> None:
    """``call NAME KEY=VALUE...``: the identity (or "not recognised", exit 1)."""
    require_args(call, 1)
    credentials = dict(split_assignment(arg, "KEY") for arg in call.args)
    resource_action = _resource_action(call) if call.authorize else None
    identity = handle.authenticate(credentials, timeout=call.timeout)
    decision = None
    if identity is not None and resource_action is not None:
        decision = handle.authorize(identity, *resource_action, timeout=call.timeout)
    if call.as_json:
        payload: dict[str, Any] = {"identity": _identity(identity)}
        if resource_action is not None:
            payload["decision"] = _decision(decision) if identity is not None else None
        call.out.json(payload)
    elif identity is None:
        call.out.line("not recognised")
    else:
        _print_identity(call.out, identity)
        if resource_action is not None:
            call.out.line(f"authorize {call.authorize}: {_decision(decision)}")
    if identity is None:
        click.get_current_context().exit(1)


def _resource_action(call: Call) -> tuple[str, str]:
    resource, sep, action = (call.authorize or "").rpartition(":")
    if not sep or not resource or not action:
        raise click.BadParameter(
            f"expected RESOURCE:ACTION, got {call.authorize!r}", param_hint="'--authorize'"
        )
    return resource, action


def _identity(identity: Identity | None) -> dict[str, Any] | None:
    if identity is None:
        return None
    return {
        "subject": identity.subject,
        "roles": list(identity.roles),
        "claims": shown(dict(identity.claims)),
        "plugin": identity.plugin,
    }


def _print_identity(out: Output, identity: Identity) -> None:
    info = _identity(identity)
    assert info is not None
    for line in render_text(info):
        out.line(line)


def _decision(decision: bool | None) -> str:
    return {True: "allow", False: "deny", None: "abstain"}[decision]


CALLERS: dict[type[PluginHandle], Callable[[Call, Any], None]] = {
    VectorizerHandle: call_vectorizer,
    TransformerHandle: call_transformer,
    RerankerHandle: call_reranker,
    GeneratorHandle: call_generator,
    StorageHandle: call_storage,
    AuthHandle: call_auth,
}


@cli.command("call", context_settings={"show_default": True})
@click.argument("name")
@click.argument("args", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (vectors in full).")
@click.option(
    "--option",
    "-o",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    callback=_parse_options,
    help="A generator option, e.g. max_tokens=20 (repeatable; VALUE is JSON if it parses).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="S",
    help="Per-call deadline in seconds (default: the manifest's or 30).",
)
@click.option(
    "--authorize",
    metavar="RESOURCE:ACTION",
    help="Auth plugins: also ask whether the identity may do ACTION on RESOURCE.",
)
@click.pass_context
def call_command(
    ctx: click.Context,
    name: str,
    args: tuple[str, ...],
    as_json: bool,
    options: dict[str, Any],
    timeout: float | None,
    authorize: str | None,
) -> None:
    """Call plugin NAME; the arguments depend on its type.

    \b
    vectorizer   call NAME TEXT...
    transformer  call NAME TEXT
    reranker     call NAME QUERY DOC...
    generator    call NAME PROMPT [-o max_tokens=20 ...]   (streams to stdout)
    storage      call NAME put KEY VALUE | get KEY | delete KEY
    auth         call NAME KEY=VALUE... [--authorize RESOURCE:ACTION]

    Put '--' before arguments that start with '-'.
    """
    state = _state(ctx)
    manager = state.open_manager(ctx)
    _plugin(state, manager, name)
    handle = manager.get(name)
    call = Call(handle, args, as_json, options, timeout, authorize, state.output)
    if options and not isinstance(handle, GeneratorHandle):
        usage_error(call, "--option is only for generators")
    if authorize and not isinstance(handle, AuthHandle):
        usage_error(call, "--authorize is only for auth plugins")
    CALLERS[type(handle)](call, handle)
