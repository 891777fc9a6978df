"""Faults of grpc plugin processes: each gives a clear error and the host keeps serving.

Every test loads, next to the faulty plugin, the in-process hash vectorizer example as
a bystander and checks it still answers after the fault.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from grpc_helpers import EXAMPLES, alive, faulty_manifest, sdk_pythonpath, wait_gone

from weaviate_ext import (
    DeadlineExceeded,
    PluginCrashed,
    PluginLoadError,
    PluginManager,
    ResourceLimitExceeded,
)
from weaviate_ext.grpc.supervisor import remove_stale_directories

SECRET = "s3cr3t-Value-8d7f6e5a"


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", sdk_pythonpath())
    monkeypatch.setenv("WEAVIATE_EXT_GRPC_STOP_GRACE", "0.5")


@pytest.fixture
def host() -> Iterator[PluginManager]:
    """A manager with the in-process hash vectorizer loaded as a bystander."""
    with PluginManager(discover=False) as manager:
        manager.load(EXAMPLES / "python-hash-vectorizer" / "plugin.yaml")
        yield manager


def still_serving(manager: PluginManager) -> None:
    assert manager.get_vectorizer("hash-embedder").vectorize_text("ok").shape == (768,)


def supervisor(manager: PluginManager, name: str = "faulty") -> Any:
    return manager.registry.get_plugin(name).connection.supervisor


def test_exit_mid_call_is_plugin_crashed_then_restarted(
    host: PluginManager, tmp_path: Path
) -> None:
    host.load(faulty_manifest(tmp_path))
    handle = host.get_vectorizer("faulty")
    first_pid = supervisor(host).pid
    with pytest.raises(PluginCrashed, match=r"exited with code 3 during the call"):
        handle.vectorize_text("crash")
    still_serving(host)
    assert handle.vectorize_text("after").shape == (8,)  # waits for the restart
    assert supervisor(host).pid != first_pid
    assert supervisor(host).restarts == 1
    assert not alive(first_pid)


def test_repeated_crashes_mark_the_plugin_failed(
    host: PluginManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEAVIATE_EXT_GRPC_MAX_RESTARTS", "2")
    monkeypatch.setenv("WEAVIATE_EXT_GRPC_BACKOFF_INITIAL", "0.05")
    host.load(faulty_manifest(tmp_path, mode="crash-loop"))
    handle = host.get_vectorizer("faulty")
    with pytest.raises(PluginCrashed):
        handle.vectorize_text("crash")
    with pytest.raises(PluginCrashed, match=r"failed 3 times in a row.*reload it") as info:
        handle.vectorize_text("after", timeout=30)
    assert "refusing to start" in str(info.value)
    assert supervisor(host).state.value == "failed"
    assert host.registry.get_plugin("faulty").plugin_health() is False
    still_serving(host)


def _wait_state(plugin: Any, state: str, timeout: float = 30.0) -> tuple[str, str | None]:
    until = time.monotonic() + timeout
    status = plugin.runtime_status()
    while status[0] != state and time.monotonic() < until:
        time.sleep(0.02)
        status = plugin.runtime_status()
    return status


def test_runtime_status_serving_restarting_failed(
    host: PluginManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEAVIATE_EXT_GRPC_MAX_RESTARTS", "2")
    monkeypatch.setenv("WEAVIATE_EXT_GRPC_BACKOFF_INITIAL", "0.5")
    host.load(faulty_manifest(tmp_path, mode="crash-loop"))
    plugin = host.registry.get_plugin("faulty")
    assert plugin.runtime_status() == ("serving", None)
    with pytest.raises(PluginCrashed):
        host.get_vectorizer("faulty").vectorize_text("crash")
    state, reason = _wait_state(plugin, "restarting", 5.0)
    assert state == "restarting"
    assert reason is not None and "exited with code 3" in reason
    state, reason = _wait_state(plugin, "failed")
    assert state == "failed"
    assert reason is not None
    assert re.search(r"failed 3 times in a row.*refusing to start.*reload it", reason), reason
    still_serving(host)


def test_runtime_status_of_a_stopped_process(host: PluginManager, tmp_path: Path) -> None:
    host.load(faulty_manifest(tmp_path))
    plugin = host.registry.get_plugin("faulty")
    assert plugin.runtime_status() == ("serving", None)
    assert plugin.isolation.startswith("process:")
    host.unload("faulty")
    state, reason = plugin.runtime_status()
    assert state == "failed" and reason is not None and "stopped" in reason


# Needs the manager's side (manager.plugins() asks the plugin object's runtime_status()
# and shows a state other than "serving" with its reason): owned by the lead, see
# weaviate_ext/manager.py _runtime_status. This test passes once that has landed.
def test_failed_plugin_is_listed_as_failed_with_the_reason(
    host: PluginManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEAVIATE_EXT_GRPC_MAX_RESTARTS", "1")
    monkeypatch.setenv("WEAVIATE_EXT_GRPC_BACKOFF_INITIAL", "0.05")
    host.load(faulty_manifest(tmp_path, mode="crash-loop"))
    rows = {row.name: row for row in host.plugins()}
    assert rows["faulty"].status == "loaded" and rows["faulty"].reason is None
    assert rows["faulty"].isolation is not None and rows["faulty"].isolation.startswith("process")
    with pytest.raises(PluginCrashed):
        host.get_vectorizer("faulty").vectorize_text("crash")
    _wait_state(host.registry.get_plugin("faulty"), "failed")
    rows = {row.name: row for row in host.plugins()}
    assert rows["faulty"].status == "failed"
    assert rows["faulty"].reason is not None
    assert "failed 2 times in a row" in rows["faulty"].reason
    assert "refusing to start" in rows["faulty"].reason
    assert rows["hash-embedder"].status == "loaded"
    still_serving(host)


def test_hang_is_deadline_exceeded(host: PluginManager, tmp_path: Path) -> None:
    host.load(faulty_manifest(tmp_path))
    handle = host.get_vectorizer("faulty")
    with pytest.raises(DeadlineExceeded, match=r"deadline of 0\.5s exceeded"):
        handle.vectorize_text("hang", timeout=0.5)
    assert handle.vectorize_text("next").shape == (8,)
    still_serving(host)


def test_no_handshake_is_a_load_error(
    host: PluginManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEAVIATE_EXT_GRPC_START_TIMEOUT", "1.5")
    with pytest.raises(PluginLoadError, match=r"printed no handshake line within 1\.5s"):
        host.load(faulty_manifest(tmp_path, mode="no-handshake"))
    assert "faulty" not in host.names()
    leftovers = subprocess.run(
        ["pgrep", "-f", f"{tmp_path.name}|--mode no-handshake"], capture_output=True, text=True
    )
    for pid in leftovers.stdout.split():
        assert wait_gone(int(pid), 5), f"process {pid} outlived its failed start"
    still_serving(host)


def test_process_ignoring_sigterm_is_killed_on_unload(host: PluginManager, tmp_path: Path) -> None:
    host.load(faulty_manifest(tmp_path, mode="ignore-sigterm"))
    pid = supervisor(host).pid
    host.unload("faulty")
    assert wait_gone(pid, 5)
    still_serving(host)


def test_memory_limit_is_a_clear_error(host: PluginManager, tmp_path: Path) -> None:
    extra = '  resources:\n    memory: "512Mi"\n'
    host.load(faulty_manifest(tmp_path, extra=extra))
    handle = host.get_vectorizer("faulty")
    with pytest.raises((ResourceLimitExceeded, PluginCrashed), match=r"(?i)memory"):
        handle.vectorize_text("alloc")
    assert handle.vectorize_text("small").shape == (8,)
    still_serving(host)


def test_private_directory_and_socket_permissions(host: PluginManager, tmp_path: Path) -> None:
    host.load(faulty_manifest(tmp_path))
    sup = supervisor(host)
    assert stat.S_IMODE(sup.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(sup.socket_path.stat().st_mode) == 0o600
    assert stat.S_ISSOCK(sup.socket_path.stat().st_mode)
    directory = sup.directory
    host.unload("faulty")
    assert not directory.exists()


def test_secret_reaches_the_plugin_only_through_init(
    host: PluginManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLUGIN_TOKEN", SECRET)
    monkeypatch.setenv("UNRELATED_HOST_VAR", "not-for-plugins")
    extra = (
        "  permissions:\n    env: [PLUGIN_TOKEN]\n"
        "  config:\n    apiKey: {type: string, secret: true, required: true}\n"
    )
    host.load(faulty_manifest(tmp_path, extra=extra), config={"apiKey": SECRET})
    handle = host.get_vectorizer("faulty")
    assert handle.vectorize_text("secret")[0] == len(SECRET)  # Init delivered it
    pid = supervisor(host).pid
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    environ = Path(f"/proc/{pid}/environ").read_bytes()
    assert SECRET.encode() not in cmdline
    assert SECRET.encode() not in environ
    assert b"UNRELATED_HOST_VAR" not in environ
    assert b"WEAVIATE_EXT_GRPC_SOCKET=" in environ


HOST_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from weaviate_ext import PluginManager
    manager = PluginManager(discover=False)
    manager.load(sys.argv[1])
    supervisor = manager.registry.get_plugin("faulty").connection.supervisor
    print(supervisor.pid, supervisor.directory, flush=True)
    time.sleep(120)
    """
)


def test_plugin_dies_with_a_sigkilled_host(tmp_path: Path) -> None:
    manifest = faulty_manifest(tmp_path / "plugin", mode="ignore-sigterm")
    env = {**os.environ, "PYTHONPATH": sdk_pythonpath()}
    host = subprocess.Popen(
        [sys.executable, "-c", HOST_SCRIPT, str(manifest)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    try:
        assert host.stdout is not None
        line = host.stdout.readline().split()
        assert len(line) == 2 and line[0].isdigit(), f"host printed {line!r}"
        plugin_pid, private = int(line[0]), Path(line[1])
        assert alive(plugin_pid)
        host.kill()
        host.wait(10)
        assert wait_gone(plugin_pid, 10), "the plugin process outlived its SIGKILLed host"
        assert private.is_dir()  # a killed host cannot remove it: the next host does
        assert private.name.startswith(f"wvx-{host.pid}-")
        assert private in remove_stale_directories(private.parent)
        assert not private.exists()
    finally:
        if host.poll() is None:
            host.kill()
            host.wait(10)
        if host.stdout is not None:
            host.stdout.close()


def test_stale_private_directories_of_dead_hosts_are_removed(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    stale = tmp_path / f"wvx-{dead_pid}-abc_123"
    (stale / "inner").mkdir(parents=True)
    (stale / "plugin.sock").write_text("")
    live = tmp_path / f"wvx-{os.getppid()}-live1"
    live.mkdir()
    mine = tmp_path / f"wvx-{os.getpid()}-mine1"
    mine.mkdir()
    not_ours = tmp_path / "wvx-notapid"
    not_ours.mkdir()
    target = tmp_path / "elsewhere"
    target.mkdir()
    link = tmp_path / f"wvx-{dead_pid}-link1"
    link.symlink_to(target)
    assert remove_stale_directories(tmp_path) == [stale]
    assert not stale.exists()
    for kept in (live, mine, not_ours, target, link):
        assert kept.exists() or kept.is_symlink()
    assert (target).is_dir()
