"""The ``weaviate-ext`` group: global options, host config, the manager it opens."""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import attrs
import click

from weaviate_ext import progress
from weaviate_ext._version import __version__
from weaviate_ext.cli._output import (
    CliError,
    Output,
    _setup_logging,
    one_line,
)
from weaviate_ext.errors import PluginNotFound, WeaviateExtError, troubleshooting_section
from weaviate_ext.grants import Grants, parse_grants
from weaviate_ext.manifest import Manifest, PluginConfig
from weaviate_ext.manifest.hostconfig import read_host_sections

if TYPE_CHECKING:  # the manager (handles, numpy) is imported when a command opens one
    from weaviate_ext.manager import PluginManager

PLUGINS_ENV = "WEAVIATE_EXT_PLUGINS"
"""Environment variable with plugin directories, separated by :data:`os.pathsep`."""

RESERVED_OPTIONS = frozenset({"prompt", "callback", "timeout"})
"""Generator option names that would collide with the handle's own parameters."""

log = logging.getLogger("weaviate_ext.cli")


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


def _parse_grant_options(
    ctx: click.Context, param: click.Parameter, values: Sequence[str]
) -> Grants:
    """The ``--grant NAME:env=VAR|dir=PATH[:rw]|network`` options as :class:`Grants`."""
    try:
        return parse_grants(values)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def grant_options(command: Any) -> Any:
    """The ``--grant NAME:WHAT`` and ``--trust NAME`` options (the group's and
    ``serve``'s): what the host grants plugins beyond a read of their own directory."""
    command = click.option(
        "--trust",
        multiple=True,
        metavar="NAME",
        help="Grant plugin NAME everything its manifest requests (repeatable).",
    )(command)
    return click.option(
        "--grant",
        "grant_options",
        multiple=True,
        metavar="NAME:WHAT",
        callback=_parse_grant_options,
        help="Grant plugin NAME (or '*': all) what its manifest requests: env=VAR[,VAR], "
        "dir=PATH[:ro|rw] or network (repeatable). Without a grant a plugin may read only "
        "its own directory.",
    )(command)


def host_grants(from_file: Any, where: str, grant_options: Grants, trust: Sequence[str]) -> Grants:
    """The host's grants: a host config file's ``_grants``, ``--grant`` and ``--trust``."""
    base = Grants.from_data(from_file, where) if from_file is not None else Grants()
    return base | grant_options | Grants.of(trust=trust)


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
    grants: Grants = attrs.field(factory=Grants)
    """What the host grants plugins (``--grant``, ``--trust``, the config file's ``_grants``)."""
    failures: dict[str, WeaviateExtError] = attrs.field(factory=dict)
    """What failed to load from ``--plugins``, by name or manifest path."""
    registry: Any = None
    """The ``_registry`` section of ``--config-file`` as plain data (``None``: none)."""
    registry_base: Path = attrs.field(factory=Path)
    """The directory of ``--config-file``, where the ``_registry`` section's paths resolve."""

    def open_manager(self, ctx: click.Context) -> PluginManager:
        """A manager (closed with the command) with every ``--plugins`` directory loaded.

        What fails to load is kept in :attr:`failures` for the command to report; the
        manager's own log lines about it are shown only with ``-v``.
        """
        from weaviate_ext.manager import PluginManager

        manager = ctx.with_resource(
            PluginManager(discover=self.discover, config=self.config, grants=self.grants)
        )
        with _quieted(not self.verbose):
            for directory in self.plugin_dirs:
                self.failures.update(manager.load_directory(directory).failed)
        self.remember_secrets(manager)
        return manager

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


class _Command(click.Command):
    """A subcommand: runs with the progress renderer of its output (:mod:`progress`):
    nothing under ``--json`` (or ``serve --log-format json``: stderr is JSON lines), a
    spinner when stderr is a terminal, else plain lines."""

    def invoke(self, ctx: click.Context) -> Any:
        state = ctx.find_object(State)
        quiet = bool(ctx.params.get("as_json")) or ctx.params.get("log_format") == "json"
        clean = state.output.clean if state is not None else None
        write = (lambda text: state.output.line(text, err=True)) if state is not None else None
        with progress.using(progress.choose(quiet=quiet, write=write, clean=clean)):
            return super().invoke(ctx)


class _Group(click.Group):
    """The top-level group: turns framework and OS errors into one ``error:`` line, and
    a closed stdout (``weaviate-ext list | head -1``) into a quiet exit 141."""

    command_class = _Command

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:  # --help and --version print while the arguments are parsed
            return super().make_context(info_name, args, parent, **extra)
        except BrokenPipeError:
            if not _stdout_closed():
                raise
            _closed_pipe()

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError as exc:
            if not _stdout_closed():  # another pipe (a plugin's, a build's): an error
                raise CliError(_clean(ctx, _describe(exc))) from None
            _closed_pipe()
        except WeaviateExtError as exc:
            raise CliError(_clean(ctx, _with_reference(exc))) from None
        except OSError as exc:
            raise CliError(_clean(ctx, _describe(exc))) from None
        except Exception as exc:
            verbose = isinstance(ctx.obj, State) and ctx.obj.verbose
            if verbose:
                log.exception("internal error")
            hint = "" if verbose else " (run with -v for details)"
            message = f"internal error: {type(exc).__name__}: {exc}{hint}"
            raise CliError(_clean(ctx, one_line(message))) from None


CLOSED_PIPE_STATUS = 128 + signal.SIGPIPE
"""The exit status when the reader of stdout goes away (141, as a shell reports for a
program ended by SIGPIPE): quiet, and not 1, which is an error of weaviate-ext."""


def _stdout_closed() -> bool:
    """Whether the reader of stdout has gone (a pipe's write end then polls as an error)."""
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError, AttributeError):  # not a real file: cannot tell
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def _closed_pipe() -> NoReturn:
    """End quietly with :data:`CLOSED_PIPE_STATUS`: the reader of stdout has closed it.

    What is still buffered for stdout goes to /dev/null, so that the flush at exit does
    not fail a second time (the recipe of Python's documentation on SIGPIPE).
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real file descriptor (click's test runner)
        pass
    raise click.exceptions.Exit(CLOSED_PIPE_STATUS)


def _with_reference(exc: WeaviateExtError) -> str:
    """The one line for a framework error, ending with its troubleshooting reference
    also for classes that keep it out of their own message (``ManifestError``,
    ``ConfigError``, ``AuthenticationError``): the exception itself is unchanged."""
    text = _describe(exc)
    reference = f"(see {troubleshooting_section(exc)})"
    return text if text.endswith(reference) else f"{text} {reference}"


def _describe(exc: BaseException) -> str:
    """One readable line for an exception."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror}"
    return one_line(str(exc)) or type(exc).__name__


def _clean(ctx: click.Context, text: str) -> str:
    return ctx.obj.output.clean(text) if isinstance(ctx.obj, State) else text


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
@grant_options
@click.option("--no-discover", is_flag=True, help="Do not look for pip-installed plugins.")
@click.option("-v", "--verbose", is_flag=True, help="Log INFO messages to stderr.")
@click.pass_context
def cli(
    ctx: click.Context,
    plugin_dirs: tuple[Path, ...],
    config_options: dict[str, dict[str, Any]],
    config_file: Path | None,
    grant_options: Grants,
    trust: tuple[str, ...],
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
    from_file: dict[str, dict[str, Any]] = {}
    file_grants = None
    if config_file is not None:  # read once: config, _grants and _registry
        from_file, file_grants, ctx.obj.registry = read_host_sections(config_file)
        ctx.obj.registry_base = config_file.resolve().parent
    ctx.obj.config = merge_config(from_file, config_options)
    ctx.obj.grants = host_grants(file_grants, f"{config_file}: _grants", grant_options, trust)


def main() -> None:
    """Entry point of the ``weaviate-ext`` console script and ``python -m weaviate_ext``."""
    cli(prog_name="weaviate-ext")


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
