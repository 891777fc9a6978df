"""``weaviate-ext dev``: build, load, watch and hot-reload a plugin while it is edited."""

from __future__ import annotations

import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from weaviate_ext import progress
from weaviate_ext.cli._app import _parse_options, _state, cli
from weaviate_ext.cli._call import USAGE, Call, callers
from weaviate_ext.cli._output import Output, one_line
from weaviate_ext.cli._test import credential_options
from weaviate_ext.errors import WeaviateExtError

if TYPE_CHECKING:  # the dev loop (watchfiles) is imported when the command runs
    from weaviate_ext.scaffold.devloop import DevSession

PROMPT_HELP = (
    "commands: call ARGS... (or just ARGS...), test, rebuild, help, quit; "
    "a call takes the arguments of 'weaviate-ext call NAME' (--json, -o KEY=VALUE, "
    "--timeout S, --authorize RESOURCE:ACTION)"
)


@click.command("call", add_help_option=False)
@click.argument("args", nargs=-1)
@click.option("--json", "as_json", is_flag=True)
@click.option("--option", "-o", "options", multiple=True, callback=_parse_options)
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True))
@click.option("--authorize")
@click.pass_context
def _prompt_call(
    ctx: click.Context,
    args: tuple[str, ...],
    as_json: bool,
    options: dict[str, Any],
    timeout: float | None,
    authorize: str | None,
) -> None:
    """One call typed at the prompt, through the plugin's handle."""
    session: DevSession = ctx.obj["session"]
    out: Output = ctx.obj["out"]
    handle = session.handle()
    if handle is None:
        out.line("no version is loaded yet: fix the build first")
        return
    call = Call(handle, args, as_json, options, timeout, authorize, out)
    for kind, caller in callers().items():
        if isinstance(handle, kind):
            caller(call, handle)
            return


class Prompt:
    """Reads commands from stdin and runs them against the session, one per line."""

    def __init__(self, session: DevSession, out: Output) -> None:
        self.session = session
        self.out = out

    def run_line(self, line: str) -> bool:
        """Run one line; False when it asked to quit."""
        try:
            words = shlex.split(line)
        except ValueError as exc:
            self.out.line(f"error: {exc}")
            return True
        if not words:
            return True
        command = words[0]
        if command in ("quit", "exit"):
            return False
        if command == "help":
            self.out.line(PROMPT_HELP)
            handle = self.session.handle()
            if handle is not None:
                self.out.line(f"call {USAGE[handle.plugin_type]}")
            return True
        if command == "test":
            self.session.check()
            return True
        if command in ("rebuild", "reload"):
            self.session.rebuild()
            return True
        args = words[1:] if command == "call" else words
        self._call(args)
        return True

    def _call(self, args: list[str]) -> None:
        try:
            _prompt_call.main(
                args,
                prog_name="call",
                standalone_mode=False,
                obj={"session": self.session, "out": self.out},
            )
        except click.exceptions.Exit:
            pass
        except click.ClickException as exc:
            self.out.line(f"error: {one_line(exc.format_message())}")
        except click.Abort:
            pass
        except WeaviateExtError as exc:
            self.out.line(f"error: {self.out.clean(one_line(str(exc)))}")
        except Exception as exc:  # a plugin's bug must not end the session
            self.out.line(f"error: {type(exc).__name__}: {self.out.clean(one_line(str(exc)))}")

    def loop(self, stop: threading.Event) -> None:
        """Read lines until end of input or ``quit``; ``quit`` stops the session."""
        interactive = sys.stdin.isatty()
        while not stop.is_set():
            if interactive:
                click.echo("> ", nl=False)
            line = sys.stdin.readline()
            if not line:
                return  # no more input: keep watching until Ctrl-C
            if not self.run_line(line.strip()):
                stop.set()
                return


@cli.command("dev")
@click.argument("path", type=click.Path(path_type=Path), default=Path("."), required=False)
@click.option("--no-build", is_flag=True, help="Do not run build.sh (load the sources as is).")
@click.option("--no-test", is_flag=True, help="Do not run the conformance suite after a load.")
@click.option("--poll", is_flag=True, help="Poll for changes (network file systems, containers).")
@credential_options
@click.pass_context
def dev_command(
    ctx: click.Context,
    path: Path,
    no_build: bool,
    no_test: bool,
    poll: bool,
    valid: dict[str, str] | None,
    invalid: dict[str, str] | None,
) -> None:
    """Build and load the plugin at PATH, then rebuild and hot-reload it on every change.

    Each change of a source file (not of build outputs, tests/ or hidden files) runs
    build.sh again and swaps the new version in atomically; a failed build or load
    keeps the last good version serving. After each load the conformance suite of the
    plugin's type runs. Type a call at the prompt to try the plugin ('help' lists the
    commands); Ctrl-C (or 'quit') stops.
    """
    from weaviate_ext.manifest import load_manifest
    from weaviate_ext.scaffold.build import find_manifest
    from weaviate_ext.scaffold.devloop import DevSession, watch_sources

    state = _state(ctx)
    out = state.output
    manifest_path = find_manifest(path)
    manifest = load_manifest(manifest_path, check_files=False)  # the binary: not built yet
    options: dict[str, Any] = {}
    if manifest.spec.type == "auth":
        options = {"valid_credentials": valid, "invalid_credentials": invalid}
    lock = threading.Lock()

    def echo(text: str) -> None:
        with lock:
            out.line(text)

    session = DevSession(
        manifest_path,
        echo=echo,
        config=state.config.get(manifest.name),
        build=not no_build,
        conformance=not no_test,
        conformance_options=options,
        stream_builds=state.verbose,
    )
    stop = threading.Event()
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set()) if main_thread else None
    watcher: threading.Thread | None = None
    # loads report through the session's log (its lines share the terminal with the prompt)
    previous_renderer = progress.set_renderer(progress.Plain(session.say))
    try:
        session.start()
        state.remember_secrets(session.manager)
        ready = threading.Event()
        watcher = threading.Thread(
            target=watch_sources,
            args=(session, stop),
            kwargs={"poll": poll, "ready": ready},
            name="weaviate-ext-dev-watch",
            daemon=True,
        )
        watcher.start()
        ready.wait(timeout=30)
        kind = manifest.spec.type
        echo(
            f"watching {session.directory} for changes; Ctrl-C stops. "
            f"Try: call {USAGE[kind].split(' [')[0]} ('help' for more)"
        )
        prompt = Prompt(session, Output(out.secrets))
        reader = threading.Thread(target=prompt.loop, args=(stop,), daemon=True)
        reader.start()
        while not stop.wait(0.2):
            if not watcher.is_alive():
                echo("the file watcher stopped; ending the session")
                break
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
        if watcher is not None:
            watcher.join(timeout=10)
        session.close()
        progress.set_renderer(previous_renderer)
        echo(f"stopped ({session.builds} builds, {session.reloads} reloads)")
