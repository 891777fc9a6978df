"""Requested vs granted: a manifest asks, the host grants (DESIGN.md section 5).

The attacker is a plugin author: everything in its ``plugin.yaml`` is theirs. The
leak detector is ``echo_config.c``, a wasm transformer that returns the config it got in
``wv_init``, an environment variable or a file's first line: whatever reaches it, it can
hand back to anyone who calls it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from weaviate_ext import (
    ConfigError,
    Grant,
    Grants,
    PermissionNotGranted,
    PluginManager,
)
from weaviate_ext.cli import cli
from weaviate_ext.grants import parse_grant
from weaviate_ext.serve.settings import ServeSettings

ROOT = Path(__file__).resolve().parents[2]
HOST_TOKEN = "host-bearer-token-7d1f"
HOST_FILE_TEXT = "root:$6$not-for-plugins"


@pytest.fixture(scope="session")
def echo_wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """echo_config.c built as a wasm module, once per session."""
    out = tmp_path_factory.mktemp("echo") / "echo"
    done = subprocess.run(
        [
            "sh",
            str(ROOT / "sdk" / "c" / "build-plugin.sh"),
            str(out),
            str(Path(__file__).parent / "echo_config.c"),
        ],
        env={**os.environ, "WV_TARGETS": "wasm"},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"building echo_config.c failed:\n{done.stdout}\n{done.stderr}", pytrace=False)
    return out.with_suffix(".wasm")


@pytest.fixture
def host_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A host environment variable and a host file that no plugin was granted."""
    monkeypatch.setenv("AUTHENTICATION_ALLOWED_TOKENS", HOST_TOKEN)
    outside = tmp_path / "host"
    outside.mkdir()
    (outside / "shadow").write_text(HOST_FILE_TEXT + "\n")
    return outside


WritePlugin = Callable[..., Path]


@pytest.fixture
def write_plugin(tmp_path: Path, echo_wasm: Path) -> WritePlugin:
    """``write_plugin(config=..., permissions=..., name=...)``: the echo plugin in its own
    directory ``tmp_path/<name>`` with the manifest an attacker would write."""

    def write(
        config: dict[str, Any] | None = None,
        permissions: dict[str, Any] | None = None,
        name: str = "echo",
    ) -> Path:
        directory = tmp_path / name
        directory.mkdir(exist_ok=True)
        shutil.copyfile(echo_wasm, directory / "plugin.wasm")
        spec: dict[str, Any] = {
            "type": "transformer",
            "runtime": "wasm",
            "binary": "./plugin.wasm",
            "config": config or {},
        }
        if permissions is not None:
            spec["permissions"] = permissions
        manifest = {
            "apiVersion": "weaviate.io/v1",
            "kind": "Plugin",
            "metadata": {"name": name, "version": "1.0.0"},
            "spec": spec,
        }
        path = directory / "plugin.yaml"
        path.write_text(yaml.safe_dump(manifest, sort_keys=False))
        return path

    return write


def ask(manager: PluginManager, request: str, name: str = "echo") -> str:
    return str(manager.get_transformer(name).transform(request))


@pytest.fixture
def manager() -> Iterator[PluginManager]:
    with PluginManager(discover=False) as m:
        yield m


# -- references in defaults ---------------------------------------------------------------


def test_a_default_env_reference_needs_the_hosts_grant(
    write_plugin: WritePlugin, host_secrets: Path, manager: PluginManager
) -> None:
    path = write_plugin(
        {"token": {"type": "string", "default": "${env:AUTHENTICATION_ALLOWED_TOKENS}"}}
    )
    with pytest.raises(ConfigError) as refused:
        manager.load(path)
    message = str(refused.value)
    assert "config key 'token'" in message
    assert "--grant echo:env=AUTHENTICATION_ALLOWED_TOKENS" in message
    assert HOST_TOKEN not in message
    assert manager.names() == ()
    grants = {"echo": Grant(env={"AUTHENTICATION_ALLOWED_TOKENS"})}
    with PluginManager(discover=False, grants=grants) as granted:
        granted.load(path)
        assert HOST_TOKEN in ask(granted, "config")


@pytest.mark.parametrize(
    "reference",
    ["${file:HOST/shadow}", "${file:../host/shadow}", "${file:./link/shadow}"],
    ids=["absolute", "dot-dot", "symlink-out"],
)
def test_a_default_file_reference_outside_the_plugin_needs_a_grant(
    write_plugin: WritePlugin, host_secrets: Path, manager: PluginManager, reference: str
) -> None:
    path = write_plugin(
        {"secret": {"type": "string", "default": reference.replace("HOST", str(host_secrets))}}
    )
    (path.parent / "link").symlink_to(host_secrets)
    with pytest.raises(ConfigError, match="outside the plugin's directory") as refused:
        manager.load(path)
    assert f"--grant echo:dir={host_secrets}" in str(refused.value)
    assert HOST_FILE_TEXT not in str(refused.value)
    with PluginManager(
        discover=False, grants={"echo": Grant(directories=[str(host_secrets)])}
    ) as host:
        host.load(path)
        assert HOST_FILE_TEXT in ask(host, "config")


def test_a_default_file_inside_the_plugins_directory_needs_no_grant(
    write_plugin: WritePlugin, manager: PluginManager
) -> None:
    path = write_plugin({"setting": {"type": "string", "default": "${file:settings/value.txt}"}})
    (path.parent / "settings").mkdir()
    (path.parent / "settings" / "value.txt").write_text("own-file\n")
    manager.load(path)
    assert json.loads(ask(manager, "config")) == {"setting": "own-file"}


def test_references_the_host_writes_itself_resolve_freely(
    write_plugin: WritePlugin, host_secrets: Path, manager: PluginManager
) -> None:
    path = write_plugin({"token": {"type": "string"}, "file": {"type": "string"}})
    config = {
        "token": "${env:AUTHENTICATION_ALLOWED_TOKENS}",
        "file": f"${{file:{host_secrets}/shadow}}",
    }
    manager.load(path, config=config)
    echoed = json.loads(ask(manager, "config"))
    assert echoed == {"token": HOST_TOKEN, "file": HOST_FILE_TEXT}


def test_trust_grants_what_the_manifest_asks(write_plugin: WritePlugin, host_secrets: Path) -> None:
    path = write_plugin(
        {"token": {"type": "string", "default": "${env:AUTHENTICATION_ALLOWED_TOKENS}"}},
        permissions={"env": ["AUTHENTICATION_ALLOWED_TOKENS"]},
    )
    with PluginManager(discover=False, trust=["echo"]) as host:
        host.load(path)
        assert ask(host, "env:AUTHENTICATION_ALLOWED_TOKENS") == HOST_TOKEN
    with (
        PluginManager(discover=False, trust=["someone-else"]) as host,
        pytest.raises(PermissionNotGranted),
    ):
        host.load(path)


# -- spec.permissions: the plugin asks, the host grants ---------------------------------


def test_a_manifest_cannot_grant_itself_environment_variables(
    write_plugin: WritePlugin, host_secrets: Path, manager: PluginManager
) -> None:
    path = write_plugin(permissions={"env": ["AUTHENTICATION_ALLOWED_TOKENS", "HOME"]})
    with pytest.raises(PermissionNotGranted) as refused:
        manager.load(path)
    message = str(refused.value)
    assert "'AUTHENTICATION_ALLOWED_TOKENS' (spec.permissions.env)" in message
    assert "--grant echo:env=HOME" in message
    grants = {"echo": Grant(env={"AUTHENTICATION_ALLOWED_TOKENS", "HOME"})}
    with PluginManager(discover=False, grants=grants) as host:
        host.load(path)
        assert ask(host, "env:AUTHENTICATION_ALLOWED_TOKENS") == HOST_TOKEN


def test_a_manifest_cannot_grant_itself_host_directories(
    write_plugin: WritePlugin, host_secrets: Path, manager: PluginManager
) -> None:
    asks = {"directories": [{"host": str(host_secrets), "guest": "/host"}]}
    path = write_plugin(permissions=asks)
    with pytest.raises(PermissionNotGranted, match="outside its own directory"):
        manager.load(path)
    # nothing granted: the sandbox sees no host file at all
    bare = write_plugin(name="bare")
    manager.load(bare)
    assert ask(manager, f"file:{host_secrets}/shadow", "bare").startswith("denied")
    assert ask(manager, "file:/etc/passwd", "bare").startswith("denied")
    assert ask(manager, "env:AUTHENTICATION_ALLOWED_TOKENS", "bare") == "(unset)"
    with PluginManager(
        discover=False, grants={"echo": Grant(directories=[str(host_secrets)])}
    ) as host:
        host.load(path)
        assert ask(host, "file:/host/shadow") == HOST_FILE_TEXT


def test_writing_needs_a_read_write_grant_even_inside_the_plugin(
    write_plugin: WritePlugin, manager: PluginManager, tmp_path: Path
) -> None:
    asks = {"directories": [{"host": "./data", "guest": "/data", "mode": "rw"}]}
    path = write_plugin(permissions=asks)
    (path.parent / "data").mkdir()
    with pytest.raises(PermissionNotGranted, match="read-write"):
        manager.load(path)
    read_only = {"echo": Grant(directories=[f"{path.parent / 'data'}:ro"])}
    with (
        PluginManager(discover=False, grants=read_only) as host,
        pytest.raises(PermissionNotGranted),
    ):
        host.load(path)
    writable = {"echo": Grant(directories=[f"{tmp_path}:rw"])}  # a parent granted rw
    with PluginManager(discover=False, grants=writable) as host:
        host.load(path)


def test_reading_its_own_directory_needs_no_grant(
    write_plugin: WritePlugin, manager: PluginManager
) -> None:
    path = write_plugin(permissions={"directories": [{"host": ".", "guest": "/self"}]})
    manager.load(path)
    assert ask(manager, "file:/self/plugin.yaml") == "apiVersion: weaviate.io/v1"


def test_network_is_a_request_too(write_plugin: WritePlugin, manager: PluginManager) -> None:
    path = write_plugin(permissions={"network": True})
    with pytest.raises(PermissionNotGranted, match="--grant echo:network"):
        manager.load(path)
    with PluginManager(discover=False, grants={"*": Grant(network=True)}) as host:
        host.load(path)


# -- ${file:} never blocks --------------------------------------------------------------


def _load_in_thread(manager: PluginManager, path: Path) -> BaseException | None:
    """Load in a thread; a hang fails the test instead of hanging the suite."""
    outcome: list[BaseException | None] = []

    def load() -> None:
        try:
            manager.load(path)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert outcome, "load hung on the reference"
    return outcome[0]


@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_a_file_reference_reads_regular_files_only(
    write_plugin: WritePlugin, manager: PluginManager, kind: str
) -> None:
    path = write_plugin({"value": {"type": "string", "default": "${file:./target}"}})
    target = path.parent / "target"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "device":
        target.symlink_to("/dev/zero")
    else:
        target.mkdir()
    # as the host's own value (no grant check) and as a trusted default: both refuse
    with PluginManager(discover=False, trust=["echo"]) as trusting:
        error = _load_in_thread(trusting, path)
    assert isinstance(error, ConfigError)
    expected = {"fifo": "a FIFO", "device": "a character device", "directory": "a directory"}[kind]
    assert f"it is {expected}; a reference reads regular files only" in str(error)


def test_list_does_not_hang_on_a_fifo(write_plugin: WritePlugin, tmp_path: Path) -> None:
    path = write_plugin({"value": {"type": "string", "default": "${file:./pipe}"}})
    os.mkfifo(path.parent / "pipe")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "weaviate_ext",
            "--no-discover",
            "--trust",
            "echo",
            "--plugins",
            str(path.parent),
            "list",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "broken" in done.stdout and "a FIFO" in done.stdout


# -- the host's ways to grant -----------------------------------------------------------


def test_grant_options_parse() -> None:
    assert parse_grant("p:env=A,B") == ("p", Grant(env={"A", "B"}))
    assert parse_grant("p:dir=/srv/x:rw")[1].directories[0].mode == "rw"
    assert parse_grant("p:dir=/srv/x")[1].directories[0].mode == "ro"
    assert parse_grant("*:network") == ("*", Grant(network=True))
    for bad in ("p", "p:", "p:env=", "p:dir=", "p:net", "p:network=yes", ":env=A"):
        with pytest.raises(ValueError, match="expected NAME:env=VAR"):
            parse_grant(bad)


def test_grants_for_a_plugin_add_the_grant_for_every_plugin() -> None:
    grants = Grants({"a": Grant(env={"X"}), "*": Grant(env={"Y"}, network=True)})
    assert grants.for_plugin("a") == Grant(env={"X", "Y"}, network=True)
    assert grants.for_plugin("b") == Grant(env={"Y"}, network=True)
    assert Grants().for_plugin("a") == Grant()


def test_cli_grant_and_trust_and_inspect_shows_requested_and_granted(
    write_plugin: WritePlugin, host_secrets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WEAVIATE_EXT_PLUGINS", raising=False)
    path = write_plugin(permissions={"env": ["AUTHENTICATION_ALLOWED_TOKENS"]})
    base = ["--no-discover", "--plugins", str(path.parent)]
    runner = CliRunner()
    refused = runner.invoke(cli, [*base, "inspect", "echo"])
    assert refused.exit_code == 1
    assert "--grant echo:env=AUTHENTICATION_ALLOWED_TOKENS" in refused.output
    granted = runner.invoke(
        cli,
        [*base, "--grant", "echo:env=AUTHENTICATION_ALLOWED_TOKENS", "inspect", "echo", "--json"],
    )
    assert granted.exit_code == 0, granted.output
    permissions = json.loads(granted.stdout)["permissions"]
    assert permissions["requested"]["env"] == ["AUTHENTICATION_ALLOWED_TOKENS"]
    assert permissions["granted"]["env"] == ["AUTHENTICATION_ALLOWED_TOKENS"]
    assert permissions["trusted"] is False and permissions["enforced"] == "yes"
    trusted = runner.invoke(cli, [*base, "--trust", "echo", "list", "--json"])
    row = json.loads(trusted.stdout)[0]
    assert row["status"] == "loaded" and row["permissions"]["trusted"] is True
    usage = runner.invoke(cli, [*base, "--grant", "echo:everything", "list"])
    assert usage.exit_code == 2 and "expected NAME:env=VAR" in usage.output


def test_host_config_file_grants(
    write_plugin: WritePlugin, host_secrets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WEAVIATE_EXT_PLUGINS", raising=False)
    path = write_plugin(
        permissions={"directories": [{"host": str(host_secrets), "guest": "/host"}]}
    )
    host_file = tmp_path / "host.yaml"
    host_file.write_text(f"_grants:\n  echo:\n    directories: [{host_secrets}]\n")
    base = ["--no-discover", "--plugins", str(path.parent), "--config-file", str(host_file)]
    result = CliRunner().invoke(cli, [*base, "call", "echo", "file:/host/shadow"])
    assert result.exit_code == 0, result.output
    assert HOST_FILE_TEXT in result.stdout
    host_file.write_text("_grants:\n  echo:\n    env: HOME\n")
    bad = CliRunner().invoke(cli, [*base, "list"])
    assert (
        bad.exit_code == 1 and "_grants.echo.env: expected a list of variable names" in bad.output
    )


def test_serve_settings_take_grants_from_the_environment(tmp_path: Path) -> None:
    host_file = tmp_path / "host.yaml"
    host_file.write_text("_grants:\n  a: {network: true}\nb: {key: 1}\n")
    settings = ServeSettings.from_env(
        {
            "WEAVIATE_EXT_SERVE_CONFIG_FILE": str(host_file),
            "WEAVIATE_EXT_SERVE_GRANT": "a:env=X;b:dir=/srv:rw",
            "WEAVIATE_EXT_SERVE_TRUST": "c",
        }
    )
    grants = settings.host_grants
    assert grants.for_plugin("a") == Grant(env={"X"}, network=True)
    assert grants.for_plugin("b").directories[0].mode == "rw"
    assert grants.for_plugin("c").trust
    assert dict(settings.config) == {"b": {"key": 1}}
    # and through the workers' settings file
    settings.write(tmp_path / "settings.json")
    assert ServeSettings.read(tmp_path / "settings.json").host_grants == grants
    with pytest.raises(ConfigError, match="WEAVIATE_EXT_SERVE_GRANT"):
        ServeSettings.from_env({"WEAVIATE_EXT_SERVE_GRANT": "nonsense"})


def test_serve_passes_global_and_its_own_grants_to_the_app(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import uvicorn

    import weaviate_ext.serve as serve

    seen: list[ServeSettings] = []
    monkeypatch.setattr(serve, "create_app", lambda settings: seen.append(settings))
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: None)
    monkeypatch.delenv("WEAVIATE_EXT_PLUGINS", raising=False)
    args = ["--no-discover", "--grant", "a:env=X", "serve", "--plugins", str(tmp_path)]
    args += ["--grant", "a:network", "--trust", "b"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    grants = seen[0].host_grants
    assert grants.for_plugin("a") == Grant(env={"X"}, network=True)
    assert grants.for_plugin("b").trust and not grants.for_plugin("c").trust
