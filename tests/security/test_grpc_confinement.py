"""A local gRPC plugin process is confined to what it needs and was granted.

The plugin (written here, Python SDK) tries, when called, to open a TCP connection to a
listener this test runs on 127.0.0.1, to read a file this test wrote outside the
plugin's directory, to write next to it, to write to ``/tmp`` and to its own private
``TMPDIR``, and says what happened. Without grants all but the last are denied; with
``network: true`` and a granted directory the same plugin succeeds. The plugin
object's ``isolation`` (and ``weaviate-ext list``'s column) says which confinement is
in force. Only loopback is ever connected to.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from grpc_helpers import sdk_pythonpath

from weaviate_ext import PluginManager
from weaviate_ext.cli._list import short_isolation
from weaviate_ext.grpc import confine, landlock
from weaviate_ext.grpc.keeper import EXEC_FAILED, keeper_argv

ABI, NETNS = confine.kernel_support()

pytestmark = pytest.mark.skipif(ABI < 1, reason="this kernel has no Landlock")

PLUGIN = textwrap.dedent(
    '''
    """Tries what a confined plugin must not do, and reports."""
    import json
    import os
    import socket
    import tempfile

    from weaviate_plugin_sdk import TransformerPlugin, serve


    def attempt(action):
        try:
            return "ok: " + str(action())
        except OSError as exc:
            return f"denied: {type(exc).__name__}: {exc}"


    def connect(port):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"hello")
            return "connected"


    def read(path):
        with open(path) as handle:
            return handle.read()


    def write(path):
        with open(path, "w") as handle:
            handle.write("written by the plugin")
        return path


    def private_tmp():
        with tempfile.NamedTemporaryFile(dir=None) as handle:
            handle.write(b"x")
            return os.path.dirname(handle.name)


    class Probe(TransformerPlugin):
        def transform(self, data):
            if not (isinstance(data, str) and data.startswith("{")):
                return data  # the host's probe call at load
            asked = json.loads(data)
            return json.dumps(
                {
                    "tcp": attempt(lambda: connect(asked["port"])),
                    "read": attempt(lambda: read(asked["read"])),
                    "write": attempt(lambda: write(asked["write"])),
                    "tmp": attempt(lambda: write(asked["tmp"])),
                    "private_tmp": attempt(private_tmp),
                }
            )


    if __name__ == "__main__":
        serve(Probe())
    '''
)


def write_plugin(directory: Path, name: str, permissions: str = "") -> Path:
    directory.mkdir(parents=True)
    (directory / "probe.py").write_text(PLUGIN)
    manifest = directory / "plugin.yaml"
    manifest.write_text(
        textwrap.dedent(
            f"""\
            apiVersion: weaviate.io/v1
            kind: Plugin
            metadata:
              name: {name}
              version: 1.0.0
            spec:
              type: transformer
              runtime: grpc
              command: python probe.py
              timeout: 30s
            """
        )
        + textwrap.indent(permissions, "  ")
    )
    return manifest


@pytest.fixture(autouse=True)
def _sdk_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", sdk_pythonpath())


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP listener on 127.0.0.1 (an ephemeral port) the plugin tries to reach."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(0.5)
    yield server
    server.close()


def accepted(server: socket.socket) -> bytes | None:
    """What a connection to ``server`` sent, or ``None`` if nothing connected."""
    try:
        conn, _ = server.accept()
    except TimeoutError:
        return None
    with conn:
        conn.settimeout(5)
        return conn.recv(16)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A host directory outside the plugin's directory, holding a file."""
    directory = tmp_path / "outside"
    directory.mkdir()
    (directory / "secret.txt").write_text("host secret")
    return directory


def probe(manager: PluginManager, name: str, server: socket.socket, outside: Path) -> dict:
    tmp = Path("/tmp") / f"wvx-confinement-probe-{os.getpid()}-{name}"
    try:
        answer = manager.get_transformer(name).transform(
            json.dumps(
                {
                    "port": server.getsockname()[1],
                    "read": str(outside / "secret.txt"),
                    "write": str(outside / "written.txt"),
                    "tmp": str(tmp),
                }
            )
        )
    finally:
        tmp.unlink(missing_ok=True)
    return json.loads(answer)


def test_without_grants_network_and_host_files_are_denied(
    tmp_path: Path, listener: socket.socket, outside: Path
) -> None:
    manifest = write_plugin(tmp_path / "plugin", "confined")
    with PluginManager(discover=False) as manager:
        manager.load(manifest)
        result = probe(manager, "confined", listener, outside)
        rows = {row.name: row for row in manager.plugins()}
        isolation = manager.registry.get_plugin("confined").isolation  # type: ignore[union-attr]

    assert result["tcp"].startswith("denied:"), result
    assert accepted(listener) is None  # nothing reached the listener
    assert result["read"].startswith("denied: PermissionError"), result
    assert result["write"].startswith("denied: PermissionError"), result
    assert not (outside / "written.txt").exists()
    assert result["tmp"].startswith("denied: PermissionError"), result  # /tmp is not its
    assert result["private_tmp"].startswith("ok: /tmp/wvx-"), result  # its TMPDIR is

    expected = "process+landlock(fs,tcp)" if ABI >= 4 else "process+landlock(fs)"
    if NETNS:
        expected += "+netns"
    assert isolation.startswith(expected + ": "), isolation
    assert f"Landlock ABI {ABI}" in isolation
    assert "no_new_privs, no capabilities" in isolation
    assert short_isolation(rows["confined"].isolation) == expected


def test_granted_network_and_directory_are_reachable(
    tmp_path: Path, listener: socket.socket, outside: Path
) -> None:
    manifest = write_plugin(
        tmp_path / "plugin",
        "granted",
        f"permissions:\n  network: true\n  directories:\n"
        f"    - {{host: {outside}, guest: /data, mode: rw}}\n",
    )
    with PluginManager(discover=False, trust=["granted"]) as manager:
        manager.load(manifest)
        result = probe(manager, "granted", listener, outside)
        isolation = manager.registry.get_plugin("granted").isolation  # type: ignore[union-attr]

    assert result["tcp"] == "ok: connected", result
    assert accepted(listener) == b"hello"
    assert result["read"] == "ok: host secret", result
    assert result["write"].startswith("ok: "), result
    assert (outside / "written.txt").read_text() == "written by the plugin"
    assert result["tmp"].startswith("denied: PermissionError"), result
    assert isolation.startswith("process+landlock(fs): "), isolation
    assert "network granted" in isolation
    assert "and 1 granted, writes only its private directory and 1 granted" in isolation


def test_a_read_only_grant_is_read_only(
    tmp_path: Path, listener: socket.socket, outside: Path
) -> None:
    manifest = write_plugin(
        tmp_path / "plugin",
        "reader",
        f"permissions:\n  directories:\n    - {{host: {outside}, guest: /data, mode: ro}}\n",
    )
    with PluginManager(discover=False, trust=["reader"]) as manager:
        manager.load(manifest)
        result = probe(manager, "reader", listener, outside)

    assert result["read"] == "ok: host secret", result
    assert result["write"].startswith("denied: PermissionError"), result
    assert result["tcp"].startswith("denied:"), result
    assert accepted(listener) is None


def test_the_keeper_refuses_to_start_what_it_cannot_confine(tmp_path: Path) -> None:
    """Fail closed: a confinement the kernel cannot apply (TCP rules below ABI 4) stops
    the start with the reason; the command never runs."""
    marker = tmp_path / "ran"
    process = subprocess.run(
        keeper_argv(
            sys.executable,
            os.getpid(),
            None,
            None,
            ["/bin/sh", "-c", f"touch {marker}"],
            ["--landlock", "3", "--tcp", "deny"],
        ),
        stdin=subprocess.PIPE,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert process.returncode == EXEC_FAILED
    assert "no TCP rules" in process.stderr
    assert not marker.exists()


def test_the_plan_grants_no_broad_host_directory(tmp_path: Path) -> None:
    """The rules handed to the keeper: nothing like /, /tmp, /home or /root, the
    private directory writable, the plugin's directory readable, /etc/shadow absent."""
    directory, private = tmp_path / "plugin", tmp_path / "private"
    directory.mkdir()
    private.mkdir()
    from weaviate_ext.manifest.model import Permissions

    plan = confine.plan(
        [sys.executable, "probe.py"], True, directory, private, dict(os.environ), Permissions()
    )
    rules = dict((path, mode) for mode, path in plan.allow)
    assert rules[str(private.resolve())] == "rw"
    assert rules[str(directory.resolve())] == "rx"
    assert rules["/dev/null"] == "dev"
    assert rules["/proc/self"] == "ro"
    for broad in ("/", "/tmp", "/home", "/root", "/etc", "/proc", "/etc/shadow", "/var"):
        assert broad not in rules
    assert [mode for mode, path in plan.allow if mode == "rw"] == ["rw"]
    assert all(mode in landlock.MODES for mode, _ in plan.allow)
