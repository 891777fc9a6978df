"""CLI manners: a closed pipe ends the program quietly, every error line names its
troubleshooting section, and ``new`` and ``package`` speak JSON when asked."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from weaviate_ext import ConfigError, ManifestError, PluginManager, load_manifest
from weaviate_ext.cli import cli
from weaviate_ext.cli._app import CLOSED_PIPE_STATUS, _stdout_closed

PLUGIN = """\
apiVersion: weaviate.io/v1
kind: Plugin
metadata:
  name: {name}
  version: 1.0.0
spec:
  type: transformer
  runtime: python
  entrypoint: plugin:Plugin
{extra}"""

SOURCE = """\
from weaviate_ext import hookimpl

class Plugin:
    @hookimpl
    def transform(self, data):
        return data
"""

REQUIRED_KEY = "  config:\n    apiKey:\n      type: string\n      required: true\n"


def write_plugin(root: Path, name: str, extra: str = "") -> Path:
    directory = root / name
    (directory / "src").mkdir(parents=True)
    (directory / "plugin.yaml").write_text(PLUGIN.format(name=name, extra=extra))
    (directory / "src" / "plugin.py").write_text(SOURCE)
    return directory


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, ["--no-discover", *args], catch_exceptions=False)


def weaviate_ext(*args: str) -> list[str]:
    """The real program, as a subprocess command line."""
    return [sys.executable, "-m", "weaviate_ext", "--no-discover", *args]


# ---------------------------------------------------------------------------------------
# A closed pipe
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def many_plugins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 plugins below a long directory name: a ``list`` of ~25 KB, many pipes' worth."""
    root = tmp_path_factory.mktemp("many") / ("long-directory-name-" * 8)
    for i in range(120):
        write_plugin(root, f"plugin-{i:03d}")
    return root


def small_pipe() -> tuple[int, int]:
    """A pipe holding one page (4 KiB), so a listing cannot fit into it unread."""
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    return read_end, write_end


def test_a_reader_that_stops_after_one_line_ends_list_quietly(many_plugins: Path) -> None:
    """``weaviate-ext list | head -1``: no ``error: Broken pipe``, exit 141 (128+SIGPIPE)."""
    read_end, write_end = small_pipe()
    with subprocess.Popen(
        weaviate_ext("--plugins", str(many_plugins), "list"),
        stdout=write_end,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    ) as process:
        os.close(write_end)
        first = b""
        while not first.endswith(b"\n"):
            piece = os.read(read_end, 1)
            assert piece, "the listing ended before its first line"
            first += piece
        os.close(read_end)  # head -1 has what it wanted
        assert process.stderr is not None
        errors = process.stderr.read()
        process.wait(timeout=120)
    assert first.split()[:2] == [b"NAME", b"VERSION"]
    assert errors == b""
    assert process.returncode == CLOSED_PIPE_STATUS == 141


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["list", "--help"], ["list"]])
def test_a_pipe_closed_before_anything_is_written(args: list[str], many_plugins: Path) -> None:
    """Output while parsing arguments (help, version) or running a command, into a pipe
    whose reader is already gone: quiet, 141."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            weaviate_ext("--plugins", str(many_plugins), *args),
            stdout=write_end,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.stderr == b""
    assert done.returncode == 141


def test_stdout_counts_as_closed_only_when_its_reader_is_gone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A BrokenPipeError from another pipe (a plugin's, a build's) stays an error."""
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "w") as stdout:
        monkeypatch.setattr(sys, "stdout", stdout)
        assert not _stdout_closed()
        os.close(read_end)
        assert _stdout_closed()
        monkeypatch.undo()


# ---------------------------------------------------------------------------------------
# Troubleshooting references
# ---------------------------------------------------------------------------------------


def assert_error_line(result: Result, start: str, section: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {start}"), lines[0]
    assert lines[0].endswith(f" (see docs/troubleshooting.md#{section})"), lines[0]
    assert lines[0].count("(see ") == 1


def test_a_config_error_line_ends_with_its_reference(tmp_path: Path) -> None:
    directory = write_plugin(tmp_path, "keyauth", REQUIRED_KEY)
    result = invoke("--plugins", str(tmp_path), "inspect", "keyauth")
    assert_error_line(result, "plugin 'keyauth': config key 'apiKey': is required", "configerror")
    # the exception's own message (what library users and tests see) stays bare
    with PluginManager(discover=False) as manager, pytest.raises(ConfigError) as caught:
        manager.load(directory / "plugin.yaml")
    assert "(see " not in str(caught.value)
    assert f"error: {caught.value} (see " in result.stderr


def test_a_host_config_file_error_line_ends_with_its_reference(tmp_path: Path) -> None:
    host = tmp_path / "host.yaml"
    host.write_text("[1, 2]\n")
    result = invoke("--config-file", str(host), "list")
    assert_error_line(result, f"{host}:1: the top level must be a mapping", "configerror")


def test_a_manifest_error_line_ends_with_its_reference(tmp_path: Path) -> None:
    directory = write_plugin(tmp_path, "broken")
    manifest = directory / "plugin.yaml"
    text = manifest.read_text().replace("transformer", "nonsense").replace("1.0.0", "one")
    manifest.write_text(text)
    result = invoke("package", str(directory), "--out", str(tmp_path / "dist"))
    # two problems on one line, one reference at its end
    assert_error_line(result, f"{manifest}:", "manifesterror")
    assert "spec.type" in result.stderr and "metadata.version" in result.stderr
    with pytest.raises(ManifestError) as caught:
        load_manifest(manifest)
    assert "(see " not in str(caught.value)


def test_an_error_with_its_reference_in_the_message_keeps_just_that_one() -> None:
    result = invoke("call", "no-such-plugin", "x")
    assert_error_line(result, "no plugin named 'no-such-plugin'", "pluginnotfound")


# ---------------------------------------------------------------------------------------
# --json on new and package
# ---------------------------------------------------------------------------------------


def test_new_and_package_print_one_json_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    created = invoke("new", "shout", "--type", "transformer", "--runtime", "python", "--json")
    assert created.exit_code == 0, created.output
    assert created.stderr == ""
    info = json.loads(created.stdout)  # the whole of stdout is the object
    directory = tmp_path / "shout"
    assert info["name"] == "shout"
    assert (info["type"], info["runtime"], info["lang"]) == ("transformer", "python", "python")
    assert info["directory"] == str(directory)
    assert info["manifest"] == str(directory / "plugin.yaml")
    assert str(directory / "plugin.yaml") in info["files"]
    assert all(Path(p).is_file() and Path(p).is_absolute() for p in info["files"])
    assert info["next"][1] == "weaviate-ext test shout"

    packaged = invoke("package", "shout", "--out", "dist", "--wheel", "--json")
    assert packaged.exit_code == 0, packaged.output
    assert packaged.stderr == ""
    made = json.loads(packaged.stdout)
    assert made["name"] == "shout"
    assert made["version"] == "0.1.0"
    assert made["dist_name"] == "weaviate-ext-shout"
    assert made["package"] == "weaviate_ext_shout"
    assert made["sha256"] is None  # a Python plugin has no binary
    assert made["project"] == str(tmp_path / "dist" / "weaviate-ext-shout")
    assert str(Path(made["project"]) / "pyproject.toml") in made["files"]
    assert all(Path(p).is_file() for p in made["files"])
    wheel = Path(made["wheel"])
    assert wheel.is_file() and wheel.parent == tmp_path / "dist"
    assert wheel.name.startswith("weaviate_ext_shout-0.1.0-") and wheel.suffix == ".whl"

    again = invoke("package", "shout", "--out", "dist", "--force", "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["wheel"] is None  # no --wheel, no wheel


def test_without_json_new_still_talks(tmp_path: Path) -> None:
    created = invoke(
        "new", "talk", "--type", "transformer", "--runtime", "python", "--dir", str(tmp_path)
    )
    assert created.exit_code == 0, created.output
    assert "a transformer plugin for the python runtime" in created.stdout
    with pytest.raises(json.JSONDecodeError):
        json.loads(created.stdout)
