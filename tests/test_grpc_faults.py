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
    Grant,
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
    assert plugin.isolation.startswith("process+landlock(fs,tcp)+netns:")
    host.unload("faulty")
    state, reason = plugin.runtime_status()
    assert state == "failed" and reason is not None and "stopped" in reason


# manager.plugins() asks the plugin's plugin_runtime_status hook (weaviate_ext/status.py)
# and shows a state other than "serving" with its reason.
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
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLUGIN_TOKEN", SECRET)
    monkeypatch.setenv("UNRELATED_HOST_VAR", "not-for-plugins")
    extra = (
        "  permissions:\n    env: [PLUGIN_TOKEN]\n"
        "  config:\n    apiKey: {type: string, secret: true, required: true}\n"
    )
    grants = {"faulty": Grant(env={"PLUGIN_TOKEN"})}
    with PluginManager(discover=False, grants=grants) as host:
        host.load(faulty_manifest(tmp_path, extra=extra), config={"apiKey": SECRET})
        handle = host.get_vectorizer("faulty")
        assert handle.vectorize_text("secret")[0] == len(SECRET)  # Init delivered it
        sup = supervisor(host)
        assert sup.pid != sup.group  # the plugin process and its keeper
        for pid in (sup.pid, sup.group):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            assert SECRET.encode() not in cmdline
            assert SECRET.encode() not in environ
            assert b"UNRELATED_HOST_VAR" not in environ
            assert b"WEAVIATE_EXT_GRPC_SOCKET=" in environ


HOST_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from weaviate_ext import PluginManager
    manager = PluginManager(discover=False)
    manager.load(sys.argv[1])
    supervisor = manager.registry.get_plugin("faulty").connection.supervisor
    pids = manager.get_vectorizer("faulty").vectorize_text("pids")
    plugin, *children = [int(p) for p in pids if p]
    assert plugin == supervisor.pid, (plugin, supervisor.pid)
    copy = 0
    if sys.argv[2] == "fork":  # a forked copy of the host keeps every pipe open
        copy = os.fork()
        if copy == 0:
            time.sleep(60)
            os._exit(0)
    print(supervisor.group, plugin, *children, copy, supervisor.directory, flush=True)
    time.sleep(120)
    """
)


def plugin_tree(manager: PluginManager) -> list[int]:
    """The keeper, the plugin process and its two grandchildren (``grandchildren`` mode)."""
    pids = manager.get_vectorizer("faulty").vectorize_text("pids")
    plugin, *children = (int(p) for p in pids if p)
    assert plugin == supervisor(manager).pid
    assert len(children) == 2
    tree = [supervisor(manager).group, plugin, *children]
    assert all(alive(pid) for pid in tree)
    return tree


@pytest.mark.parametrize("copy", ["alone", "fork"])
def test_plugin_and_its_grandchildren_die_with_a_sigkilled_host(tmp_path: Path, copy: str) -> None:
    """The host is SIGKILLed: its plugin's keeper, the plugin process (which ignores
    SIGTERM) and both processes the plugin started, one of them outside its process
    group, are gone shortly after — also when a forked copy of the host outlives it
    and keeps the keeper's stdin pipe open (then the keeper's death signal acts)."""
    manifest = faulty_manifest(tmp_path / "plugin", mode="grandchildren")
    env = {**os.environ, "PYTHONPATH": sdk_pythonpath()}
    host = subprocess.Popen(
        [sys.executable, "-c", HOST_SCRIPT, str(manifest), copy],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    pids: list[int] = []
    forked = 0
    try:
        assert host.stdout is not None
        line = host.stdout.readline().split()
        assert len(line) == 6 and all(p.isdigit() for p in line[:5]), f"host printed {line!r}"
        pids, forked, private = [int(p) for p in line[:4]], int(line[4]), Path(line[5])
        assert (forked != 0) == (copy == "fork")
        keeper, plugin, in_group, own_session = pids
        assert all(alive(pid) for pid in pids)
        assert os.getpgid(in_group) == keeper and os.getpgid(plugin) == keeper
        assert os.getsid(own_session) == own_session  # left the plugin's process group
        host.kill()
        host.wait(10)
        names = ("keeper", "plugin process", "grandchild", "grandchild")
        for pid, what in zip(pids, names, strict=True):
            assert wait_gone(pid, 20), f"the {what} {pid} outlived its SIGKILLed host"
        if forked:
            assert alive(forked)  # the copy was still holding the pipes
            return
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
        for pid in [*pids, forked]:
            if pid and alive(pid):
                os.kill(pid, 9)


def test_unload_stops_everything_the_plugin_started(host: PluginManager, tmp_path: Path) -> None:
    host.load(faulty_manifest(tmp_path, mode="grandchildren"))
    tree = plugin_tree(host)
    host.unload("faulty")
    for pid in tree:
        assert wait_gone(pid, 10), f"process {pid} outlived the unload"
    still_serving(host)


def test_a_crash_takes_the_plugins_children_with_it(host: PluginManager, tmp_path: Path) -> None:
    host.load(faulty_manifest(tmp_path, mode="grandchildren"))
    tree = plugin_tree(host)
    with pytest.raises(PluginCrashed, match=r"exited with code 3 during the call"):
        host.get_vectorizer("faulty").vectorize_text("crash")
    for pid in tree:
        assert wait_gone(pid, 10), f"process {pid} outlived the crashed plugin"
    assert len(plugin_tree(host)) == 4  # restarted, with new children
    still_serving(host)


def test_cpu_and_memory_limits_apply_to_the_plugin_not_the_keeper(
    host: PluginManager, tmp_path: Path
) -> None:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs to pin a plugin to one")
    extra = '  resources:\n    memory: "600Mi"\n    cpu: 1\n'
    host.load(faulty_manifest(tmp_path, extra=extra))
    sup = supervisor(host)
    assert len(os.sched_getaffinity(sup.pid)) == 1
    assert os.sched_getaffinity(sup.group) == os.sched_getaffinity(0)
    limits = Path(f"/proc/{sup.pid}/limits").read_text()
    assert re.search(r"Max address space\s+629145600\s+629145600", limits), limits
    keeper_limits = Path(f"/proc/{sup.group}/limits").read_text()
    assert re.search(r"Max address space\s+unlimited", keeper_limits), keeper_limits
    still_serving(host)


def test_a_command_that_cannot_run_is_a_clear_load_error(
    host: PluginManager, tmp_path: Path
) -> None:
    (tmp_path / "server").write_text("#!/bin/sh\n")  # not executable
    (tmp_path / "plugin.yaml").write_text(
        "apiVersion: weaviate.io/v1\nkind: Plugin\n"
        "metadata: {name: not-executable, version: 1.0.0}\n"
        "spec:\n  type: vectorizer\n  runtime: grpc\n  command: ./server\n"
    )
    with pytest.raises(PluginLoadError) as caught:
        host.load(tmp_path / "plugin.yaml")
    message = str(caught.value)
    assert "exited with code 127 before its handshake" in message
    assert re.search(r"cannot start '.*/server': Permission denied", message), message
    assert "Traceback" not in message
    still_serving(host)


FORK_SCRIPT = textwrap.dedent(
    """
    import subprocess, sys, threading, time
    from weaviate_ext import PluginManager
    manager = PluginManager(discover=False)
    manager.load(sys.argv[1])
    busy = manager.get_vectorizer("busy")

    def hang():  # in flight until the manager closes
        try:
            busy.vectorize_text("hang", timeout=120)
        except Exception:
            pass

    threading.Thread(target=hang, daemon=True).start()
    time.sleep(0.5)  # a call is in flight in another thread while plugins start
    manager.load(sys.argv[2])
    fresh = manager.get_vectorizer("fresh")
    try:
        fresh.vectorize_text("crash")  # and a restart, also with the call in flight
    except Exception:
        pass
    fresh.vectorize_text("after")
    print("MARK", file=sys.stderr, flush=True)
    # the control: a fork() of this process with gRPC busy prints the line (in the
    # parent, before the fork; the child itself may then die in gRPC's fork handler)
    subprocess.run(["true"], preexec_fn=lambda: None, check=False)
    time.sleep(0.2)
    manager.close()
    """
)

FORK_LINE = "skipping fork() handlers"


def test_starting_plugins_does_not_fork_the_grpc_using_host(tmp_path: Path) -> None:
    """gRPC logs "fork_posix.cc ... Other threads are currently calling into gRPC,
    skipping fork() handlers" when a process using it forks; plugin processes are
    started without fork(), so a host never prints it — checked on the host's stderr
    with a call in flight, against a control fork that does print it."""
    busy = faulty_manifest(tmp_path / "busy", name="busy")
    fresh = faulty_manifest(tmp_path / "fresh", name="fresh")
    env = {**os.environ, "PYTHONPATH": sdk_pythonpath()}
    for variable in ("GRPC_VERBOSITY", "GRPC_TRACE", "GRPC_ENABLE_FORK_SUPPORT"):
        env.pop(variable, None)
    done = subprocess.run(
        [sys.executable, "-c", FORK_SCRIPT, str(busy), str(fresh)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    spawning, _, control = done.stderr.partition("MARK\n")
    assert control, done.stderr
    assert FORK_LINE not in spawning, spawning
    assert "fork_posix" not in spawning, spawning
    assert FORK_LINE in control, "the control fork printed nothing: the check proves nothing"


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
