"""Progress of long work: a plugin's build.sh and a plugin's load.

Plain lines when stderr is not a terminal (click's test runner), a rich spinner on a
terminal (forced here with ``Console(force_terminal=True)`` into a StringIO), nothing
under ``--json`` and nothing from the library by default. Times are matched as a
number's shape, never compared with the clock.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from weaviate_ext import PluginManager, progress
from weaviate_ext.cli import cli
from weaviate_ext.scaffold.build import run_build
from weaviate_ext.scaffold.devloop import DevSession

SECONDS = r"\d+\.\d s"

MANIFEST = """\
apiVersion: weaviate.io/v1
kind: Plugin
metadata:
  name: {name}
  version: 1.0.0
spec:
  type: transformer
  runtime: python
  entrypoint: {module}:Plugin
"""

IMPL = """
from weaviate_ext import hookimpl

class Plugin:
    @hookimpl
    def transform(self, data):
        return data
"""


def make_plugin(root: Path, name: str = "slowpoke", build: str = "echo compiling") -> Path:
    """A python transformer plugin in ``root/name`` with a build.sh running ``build``."""
    directory = root / name
    module = name.replace("-", "_") + "_impl"
    (directory / "src").mkdir(parents=True)
    (directory / "plugin.yaml").write_text(MANIFEST.format(name=name, module=module))
    (directory / "src" / f"{module}.py").write_text(IMPL)
    script = directory / "build.sh"
    script.write_text(f"#!/bin/sh\n{build}\n")
    script.chmod(0o755)
    return directory


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, ["--no-discover", *args], catch_exceptions=False)


@pytest.fixture
def loads_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    """Show every load at once (by default only loads that take LOAD_AFTER seconds)."""
    monkeypatch.setattr(progress, "LOAD_AFTER", 0.0)


# ---------------------------------------------------------------------------------------
# plain lines (not a terminal)
# ---------------------------------------------------------------------------------------


def test_build_shows_start_and_end_lines_not_its_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    make_plugin(tmp_path)
    result = invoke("package", "slowpoke", "--build", "--out", "dist")
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == "building slowpoke ..."
    assert re.fullmatch(rf"built slowpoke in {SECONDS}", lines[1]), lines
    assert "compiling" not in result.output  # the output of a good build is not shown
    assert result.stdout.startswith("packaged slowpoke 1.0.0")


def test_verbose_streams_the_build_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    make_plugin(tmp_path, build="echo compiling; echo linking")
    result = invoke("-v", "package", "slowpoke", "--build", "--out", "dist")
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    start = lines.index("building slowpoke ...")
    assert lines[start + 1 : start + 3] == ["    compiling", "    linking"]
    assert re.fullmatch(rf"built slowpoke in {SECONDS}", lines[start + 3]), lines


def test_a_failed_build_quotes_its_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    make_plugin(tmp_path, build="echo 'src/x.c:1: syntax error'; exit 3")
    result = invoke("package", "slowpoke", "--build", "--out", "dist")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "building slowpoke ..."
    assert re.fullmatch(rf"building slowpoke: failed after {SECONDS}", lines[1]), lines
    assert "    src/x.c:1: syntax error" in lines
    assert lines[-1].startswith("error: slowpoke: build.sh failed (exit 3)")
    assert not (tmp_path / "dist").exists()


@pytest.mark.usefixtures("loads_shown")
@pytest.mark.parametrize(
    ("command", "printed"),
    [
        (["list"], "slowpoke"),
        (["inspect", "slowpoke"], "slowpoke"),
        (["call", "slowpoke", "hi"], "hi"),
    ],
)
def test_a_load_shows_start_and_end_lines(tmp_path: Path, command: list[str], printed: str) -> None:
    make_plugin(tmp_path)
    result = invoke("--plugins", str(tmp_path), *command)
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == "loading slowpoke (python) ..."
    assert re.fullmatch(rf"loaded slowpoke in {SECONDS}", lines[1]), lines
    assert printed in result.stdout


def test_a_step_shorter_than_its_delay_shows_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    lines: list[str] = []
    with progress.using(progress.Plain(lines.append)):
        with progress.step("loading quick (python)", "loaded quick", after=60.0):
            pass
        with progress.step("loading slow (python)", "loaded slow", after=60.0) as step:
            step.output("a line of its own output announces it")
    assert lines[0] == "loading slow (python) ..."
    assert lines[1] == "    a line of its own output announces it"
    assert re.fullmatch(rf"loaded slow in {SECONDS}", lines[2]), lines
    assert len(lines) == 3


def test_an_exception_fails_the_step() -> None:
    lines: list[str] = []
    with (
        progress.using(progress.Plain(lines.append)),
        pytest.raises(RuntimeError),
        progress.step("loading broken (wasm)", "loaded broken"),
    ):
        raise RuntimeError("boom")
    assert lines[0] == "loading broken (wasm) ..."
    assert re.fullmatch(rf"loading broken \(wasm\): failed after {SECONDS}", lines[1])


# ---------------------------------------------------------------------------------------
# --json: stdout is the JSON and nothing else, stderr has no progress
# ---------------------------------------------------------------------------------------


@pytest.mark.usefixtures("loads_shown")
def test_json_output_stays_pure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_plugin(tmp_path / "plugins")
    listed = invoke("--plugins", str(tmp_path / "plugins"), "list", "--json")
    assert listed.exit_code == 0, listed.output
    assert listed.stderr == ""
    assert [row["name"] for row in json.loads(listed.stdout)] == ["slowpoke"]

    inspected = invoke("--plugins", str(tmp_path / "plugins"), "inspect", "slowpoke", "--json")
    assert inspected.stderr == ""
    assert json.loads(inspected.stdout)["name"] == "slowpoke"

    monkeypatch.chdir(tmp_path)
    packaged = invoke("package", "plugins/slowpoke", "--build", "--out", "dist", "--json")
    assert packaged.exit_code == 0, packaged.output
    assert packaged.stderr == ""
    assert json.loads(packaged.stdout)["name"] == "slowpoke"


# ---------------------------------------------------------------------------------------
# a terminal: rich
# ---------------------------------------------------------------------------------------


def terminal() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=True, width=100), buffer


@pytest.mark.usefixtures("loads_shown")
def test_tty_renders_a_load_with_rich(tmp_path: Path) -> None:
    console, buffer = terminal()
    directory = make_plugin(tmp_path)
    with progress.using(progress.Tty(console)), PluginManager(discover=False) as manager:
        manager.load(directory / "plugin.yaml")
    shown = buffer.getvalue()
    assert "loading slowpoke (python)" in shown  # the spinner's line
    assert re.search(rf"✓ loaded slowpoke in {SECONDS}", shown), shown
    assert "\x1b[" in shown  # a terminal's escape sequences


def test_tty_renders_output_nesting_and_failure() -> None:
    console, buffer = terminal()
    renderer = progress.Tty(console, clean=lambda text: text.replace("s3cret", "***"))
    with progress.using(renderer), progress.step("building outer", "built outer") as outer:
        outer.output("[bold]not markup[/bold] s3cret")
        with progress.step("building inner", "built inner") as inner:
            inner.fail()
    shown = buffer.getvalue()
    assert "[bold]not markup[/bold] ***" in shown
    assert "s3cret" not in shown
    assert "building inner ..." in shown  # a nested step is a line, not a second spinner
    assert re.search(rf"✗ building inner: failed after {SECONDS}", shown), shown
    assert re.search(rf"✓ built outer in {SECONDS}", shown), shown


def test_the_renderer_is_chosen_by_the_stream() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert type(progress.choose(quiet=True, stream=Terminal())) is progress.Renderer
    assert isinstance(progress.choose(stream=io.StringIO()), progress.Plain)
    assert isinstance(progress.choose(stream=Terminal()), progress.Tty)


# ---------------------------------------------------------------------------------------
# the library is silent; run_build streams, still times out; dev streams with -v
# ---------------------------------------------------------------------------------------


@pytest.mark.usefixtures("loads_shown")
def test_the_library_shows_nothing_by_default(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    directory = make_plugin(tmp_path)
    with PluginManager(discover=False) as manager:
        manager.load(directory / "plugin.yaml")
    assert run_build(directory).ok
    captured = capfd.readouterr()
    assert (captured.out, captured.err) == ("", "")


def test_run_build_streams_lines_and_keeps_its_timeout(tmp_path: Path) -> None:
    directory = make_plugin(tmp_path, build="echo one; echo two >&2; exit 0")
    seen: list[str] = []
    result = run_build(directory, on_output=seen.append)
    assert result.ok and result.returncode == 0
    assert seen == ["one", "two"]
    assert result.output == "one\ntwo\n"

    slow = make_plugin(tmp_path, "sleepy", build="echo started; exec sleep 30")
    timed_out = run_build(slow, timeout=0.5)
    assert not timed_out.ok and timed_out.returncode is None
    assert timed_out.output.startswith("started\n")
    assert "build.sh did not finish within 0.5s" in timed_out.output


def test_dev_streams_build_output_only_when_asked(tmp_path: Path) -> None:
    directory = make_plugin(tmp_path, build="echo compiling")
    for stream in (False, True):
        lines: list[str] = []
        session = DevSession(directory, echo=lines.append, conformance=False, stream_builds=stream)
        try:
            assert session.start()
        finally:
            session.close()
        assert ("    compiling" in lines) is stream, lines


@pytest.mark.parametrize(
    ("args", "quiet"),
    [
        ([], False),
        (["--json"], True),
        (["--log-format", "json"], True),
        (["--log-format", "text"], False),
    ],
)
def test_commands_choose_their_renderer(args: list[str], quiet: bool) -> None:
    # a command of the CLI's group runs with the renderer of its output; under --json
    # and serve's --log-format json (stderr is JSON lines) with none
    from weaviate_ext.cli._app import _Command

    seen: list[progress.Renderer] = []
    command = _Command(
        "probe",
        params=[click.Option(["--json", "as_json"], is_flag=True), click.Option(["--log-format"])],
        callback=lambda **_: seen.append(progress.current()),
    )
    assert command.main(args, standalone_mode=False) is None
    assert (type(seen[0]) is progress.Renderer) is quiet
    assert type(progress.current()) is progress.Renderer  # restored: the library's default
