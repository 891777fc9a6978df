"""What the host says when a gRPC plugin process dies, and when it restarts it.

* the report names the signal that really ended the plugin process (SIGSEGV, SIGABRT,
  SIGTERM, SIGKILL), each checked with a real process;
* it blames the memory limit only with evidence: a process that really ran into its
  ``resources.memory`` (an allocation refused under ``RLIMIT_AS``) is reported as
  having run out of memory, a segfault or a kill of a memory-limited process is not;
  the kernel's out-of-memory killer (SIGKILL, peak memory near the limit), which a test
  cannot provoke safely, is checked on the report function alone;
* restarts after a crash wait the configured backoff, doubled after each failure.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from grpc_helpers import eventually, faulty_manifest, sdk_pythonpath

from weaviate_ext import PluginCrashed, PluginLoadError, PluginManager
from weaviate_ext.grpc.supervisor import (
    OOM_EVIDENCE_WINDOW,
    Generation,
    MiB,
    PluginProcess,
    memory_clause,
    signal_name,
)

LIMITED = '  resources:\n    memory: "512Mi"\n'


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PYTHONPATH", sdk_pythonpath())
    monkeypatch.setenv("WEAVIATE_EXT_GRPC_STOP_GRACE", "0.5")
    # no core files from the plugins this file crashes on purpose (inherited by them)
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (0, hard))
    yield
    resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))


@pytest.fixture
def host() -> Iterator[PluginManager]:
    with PluginManager(discover=False) as manager:
        yield manager


def supervisor(manager: PluginManager, name: str = "faulty") -> PluginProcess:
    plugin: Any = manager.registry.get_plugin(name)
    process = plugin.connection.supervisor
    assert isinstance(process, PluginProcess)
    return process


def restarted(manager: PluginManager, times: int = 1) -> PluginProcess:
    """The supervisor, once it has restarted its process ``times`` times."""
    sup = supervisor(manager)
    assert eventually(lambda: sup.restarts >= times, 30), sup.runtime_status()
    return sup


# -- the signal ----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "name"), [("segv", "SIGSEGV"), ("abort", "SIGABRT")])
def test_a_plugin_killed_by_a_signal_during_a_call_is_reported_with_that_signal(
    host: PluginManager, tmp_path: Path, text: str, name: str
) -> None:
    """A memory limit is set, yet a segfault or an abort is not blamed on it."""
    host.load(faulty_manifest(tmp_path, extra=LIMITED))
    handle = host.get_vectorizer("faulty")
    pid = supervisor(host).pid
    with pytest.raises(PluginCrashed) as caught:
        handle.vectorize_text(text)
    message = str(caught.value)
    assert f"the plugin process (pid {pid}) was killed by {name} during the call" in message
    assert "memory" not in message.lower(), message
    assert handle.vectorize_text("after").shape == (8,)  # restarted


def test_sigterm_from_outside_is_reported_as_sigterm(
    host: PluginManager, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    host.load(faulty_manifest(tmp_path, mode="default-sigterm", extra=LIMITED))
    pid = supervisor(host).pid
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    sup = restarted(host)
    assert sup.reason == f"the plugin process (pid {pid}) was killed by SIGTERM"
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(
        m.startswith(f"the plugin process (pid {pid}) was killed by SIGTERM") for m in warnings
    ), warnings
    assert host.get_vectorizer("faulty").vectorize_text("after").shape == (8,)


def test_sigkill_from_outside_is_reported_with_the_peak_memory_and_no_blame(
    host: PluginManager, tmp_path: Path
) -> None:
    """A SIGKILL the host did not send could be the kernel's out-of-memory killer: the
    report gives the process's peak memory, and blames nothing when it is far from
    the limit."""
    host.load(faulty_manifest(tmp_path, extra=LIMITED))
    pid = supervisor(host).pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    reason = restarted(host).reason
    match = re.fullmatch(
        rf"the plugin process \(pid {pid}\) was killed by SIGKILL "
        r"\(its memory use peaked at (\d+) MiB\)",
        reason,
    )
    assert match, reason
    assert 0 < int(match.group(1)) < 512


# -- running out of memory ----------------------------------------------------------------------


def test_a_plugin_that_runs_out_of_its_memory_during_a_call_is_blamed_on_the_limit(
    host: PluginManager, tmp_path: Path
) -> None:
    """The allocation really fails under the 512 MiB limit (1.5 GiB asked); the
    plugin ends like an uncaught ``MemoryError`` ends Python (traceback, code 1)."""
    host.load(faulty_manifest(tmp_path, extra=LIMITED))
    handle = host.get_vectorizer("faulty")
    pid = supervisor(host).pid
    with pytest.raises(PluginCrashed) as caught:
        handle.vectorize_text("alloc-die")
    assert (
        f"the plugin process (pid {pid}) exited with code 1 after running out of memory "
        '(stderr: "MemoryError"; memory limit 512 MiB, resources.memory) during the call'
    ) in str(caught.value)
    assert handle.vectorize_text("after").shape == (8,)


def test_a_plugin_that_runs_out_of_its_memory_at_start_is_a_load_error_blaming_the_limit(
    host: PluginManager, tmp_path: Path
) -> None:
    """An uncaught ``MemoryError`` before the handshake, nothing staged."""
    with pytest.raises(PluginLoadError) as caught:
        host.load(faulty_manifest(tmp_path, mode="alloc-at-start", extra=LIMITED))
    assert re.search(
        r"exited with code 1 after running out of memory \(stderr: \"MemoryError\"; "
        r"memory limit 512 MiB, resources\.memory\) before its handshake",
        str(caught.value),
    ), caught.value


def test_a_plain_crash_of_a_memory_limited_plugin_is_not_blamed_on_memory(
    host: PluginManager, tmp_path: Path
) -> None:
    host.load(faulty_manifest(tmp_path, extra=LIMITED))
    with pytest.raises(PluginCrashed) as caught:
        host.get_vectorizer("faulty").vectorize_text("crash")
    assert "exited with code 3 during the call" in str(caught.value)
    assert "memory" not in str(caught.value).lower()


# -- the report, with what a test cannot provoke -------------------------------------------


def ended(code: int, peak: int | None = None, stderr: str | None = None, age: float = 0.0) -> Any:
    """A generation whose process ended with ``code`` (negative: that signal)."""
    generation = Generation(1, cast(Any, SimpleNamespace(pid=4242, returncode=code)))
    generation.peak_rss = peak
    if stderr is not None:
        generation.out_of_memory = (time.monotonic() - age, stderr)
    return generation


LIMIT = 512 * MiB


def test_sigkill_at_peak_memory_near_the_limit_is_reported_as_the_oom_killer() -> None:
    clause = memory_clause(ended(-signal.SIGKILL, peak=int(LIMIT * 0.95)), -9, LIMIT)
    assert clause == (
        "(its memory use peaked at 486 MiB, near its memory limit 512 MiB, "
        "resources.memory: most likely the kernel's out-of-memory killer)"
    )


def test_sigkill_far_from_the_limit_or_without_one_blames_nothing() -> None:
    far = memory_clause(ended(-signal.SIGKILL, peak=50 * MiB), -9, LIMIT)
    assert far == "(its memory use peaked at 50 MiB)"
    unlimited = memory_clause(ended(-signal.SIGKILL, peak=4096 * MiB), -9, None)
    assert unlimited == "(its memory use peaked at 4096 MiB)"


def test_other_signals_without_evidence_say_nothing_about_memory() -> None:
    for sig in (signal.SIGSEGV, signal.SIGABRT, signal.SIGTERM, signal.SIGBUS):
        assert memory_clause(ended(-sig, peak=int(LIMIT * 0.99)), -sig, LIMIT) == ""
    assert memory_clause(ended(1, peak=int(LIMIT * 0.99)), 1, LIMIT) == ""


def test_a_bad_alloc_abort_is_blamed_on_memory_and_an_old_line_is_not() -> None:
    line = "terminate called after throwing an instance of 'std::bad_alloc'"
    recent = memory_clause(ended(-signal.SIGABRT, stderr=line), -6, LIMIT)
    assert recent == (
        f'after running out of memory (stderr: "{line}"; memory limit 512 MiB, resources.memory)'
    )
    stale = ended(-signal.SIGSEGV, stderr=line, age=OOM_EVIDENCE_WINDOW + 5)
    assert memory_clause(stale, -11, LIMIT) == ""
    no_limit = memory_clause(ended(2, stderr="fatal error: runtime: out of memory"), 2, None)
    assert no_limit == 'after running out of memory (stderr: "fatal error: runtime: out of memory")'


def test_signal_names() -> None:
    assert signal_name(signal.SIGSEGV) == "SIGSEGV"
    assert signal_name(signal.SIGKILL) == "SIGKILL"
    assert signal_name(99) == "signal 99"


# -- restart backoff -----------------------------------------------------------------------


def test_restarts_wait_the_backoff_doubled_after_each_failure(
    host: PluginManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every start of the crash-loop plugin after its first crash fails; the wait
    between the end of one failed start and the beginning of the next must be at least
    the backoff: ``initial * 2**k`` for the k-th failure. Only lower bounds (monotonic
    clock): a loaded machine may make them longer, never shorter."""
    initial = 0.3
    monkeypatch.setenv("WEAVIATE_EXT_GRPC_BACKOFF_INITIAL", str(initial))
    monkeypatch.setenv("WEAVIATE_EXT_GRPC_BACKOFF_MAX", "60")
    monkeypatch.setenv("WEAVIATE_EXT_GRPC_MAX_RESTARTS", "3")
    starts: list[tuple[float, float, bool]] = []  # (began, ended, succeeded)
    launch = PluginProcess._launch

    def recorded(self: PluginProcess) -> Any:
        began = time.monotonic()
        try:
            generation = launch(self)
        except Exception:
            starts.append((began, time.monotonic(), False))
            raise
        starts.append((began, time.monotonic(), True))
        return generation

    monkeypatch.setattr(PluginProcess, "_launch", recorded)
    host.load(faulty_manifest(tmp_path, mode="crash-loop"))
    crashed = time.monotonic()
    with pytest.raises(PluginCrashed):
        host.get_vectorizer("faulty").vectorize_text("crash")
    sup = supervisor(host)
    assert eventually(lambda: sup.runtime_status()[0] == "failed", 60), sup.runtime_status()
    assert [ok for *_, ok in starts] == [True, False, False, False], starts
    first_restart = starts[1][0] - crashed
    assert first_restart >= initial * 0.9, starts
    for k in (1, 2):  # after the k-th failed restart: initial * 2**k
        waited = starts[k + 1][0] - starts[k][1]
        assert waited >= initial * 2**k * 0.9, (k, waited, starts)
