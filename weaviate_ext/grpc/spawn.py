"""Starting plugin processes: environment, limits, process group, parent-death signal.

``PR_SET_PDEATHSIG`` is delivered when the *thread* that forked the child exits, not
the process. Every plugin process is therefore forked by one long-lived spawner thread
(:func:`spawn`), so the signal fires only when the host process itself dies, whether
it exits, crashes or is killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import math
import os
import queue
import resource
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent import futures
from pathlib import Path
from typing import Any

BASE_ENV: tuple[str, ...] = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
"""Host variables every plugin process gets (plus what ``permissions.env`` names)."""

PYTHON_ENV: tuple[str, ...] = ("PYTHONPATH",)
"""Host variables passed on when the command runs the host's own Python."""

PYTHON_NAMES = frozenset({"python", "python3"})
"""Command names that mean the host's interpreter (``sys.executable``)."""

_PR_SET_PDEATHSIG = 1

try:
    _libc: Any = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    _prctl: Any = _libc.prctl
except (OSError, AttributeError):  # pragma: no cover - not Linux
    _prctl = None


class SpawnError(OSError):
    """The command could not be started."""


def resolve_command(command: Sequence[str], directory: Path) -> tuple[list[str], bool]:
    """The argv to run and whether it runs the host's Python.

    ``python``/``python3`` is the host's interpreter; a program with a ``/`` is relative
    to the plugin directory; anything else is looked up on ``PATH``.
    """
    if not command:
        raise SpawnError("spec.command is empty")
    program, *args = command
    if program in PYTHON_NAMES:
        return [sys.executable, *args], True
    if "/" in program:
        path = (directory / program).resolve()
        if not path.is_file():
            raise SpawnError(f"{program!r} not found in {directory}")
        return [str(path), *args], False
    found = shutil.which(program)
    if found is None:
        raise SpawnError(f"{program!r} not found on PATH")
    return [found, *args], False


def child_environment(
    extra: Mapping[str, str],
    allowed: Iterable[str],
    python: bool,
    secrets: Sequence[str],
    source: Mapping[str, str] | None = None,
) -> tuple[dict[str, str], list[str]]:
    """The scrubbed environment of a plugin process, and the names dropped for secrets.

    Only :data:`BASE_ENV`, ``allowed`` (``permissions.env``) and, for the host's Python,
    :data:`PYTHON_ENV` are taken from the host; a variable whose value contains a secret
    configuration value is dropped even when allowed (secrets travel only in ``Init``).
    """
    host = os.environ if source is None else source
    names = [*BASE_ENV, *allowed, *(PYTHON_ENV if python else ())]
    env: dict[str, str] = {}
    dropped: list[str] = []
    for name in names:
        value = host.get(name)
        if value is None:
            continue
        if any(secret and secret in value for secret in secrets):
            dropped.append(name)
            continue
        env[name] = value
    env.update(extra)
    return env, dropped


def cpu_set(cores: float | None) -> set[int] | None:
    """The CPUs a plugin limited to ``cores`` (``resources.cpu``) is pinned to."""
    if cores is None or not hasattr(os, "sched_getaffinity"):
        return None
    available = sorted(os.sched_getaffinity(0))
    wanted = max(1, math.ceil(cores))
    if wanted >= len(available):
        return None
    return set(available[:wanted])


def make_preexec(memory: int | None, cpus: set[int] | None) -> Callable[[], None]:
    """What the child runs between fork and exec: death signal, rlimit, affinity."""
    parent = os.getpid()

    def preexec() -> None:
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent:  # the host died before prctl took effect
                os._exit(1)
        if memory is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        if cpus:
            os.sched_setaffinity(0, cpus)

    return preexec


class _Spawner:
    """One daemon thread that forks every plugin process (see the module docstring)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, fn: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="weaviate-ext-spawner", daemon=True
                )
                self._thread.start()
        future: futures.Future[subprocess.Popen[bytes]] = futures.Future()
        self._queue.put((future, fn))
        return future.result()

    def _loop(self) -> None:
        while True:
            future, fn = self._queue.get()
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)


_spawner = _Spawner()


def spawn(
    argv: list[str],
    cwd: Path,
    env: Mapping[str, str],
    memory: int | None,
    cpus: set[int] | None,
) -> subprocess.Popen[bytes]:
    """Start a plugin process in its own session and process group.

    stdin is a pipe the host keeps open (the plugin may treat its closing as the host's
    end); stdout and stderr are pipes read by the supervisor.
    """
    preexec = make_preexec(memory, cpus)

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=preexec,
            close_fds=True,
        )

    try:
        return _spawner.run(start)
    except OSError as exc:
        raise SpawnError(f"cannot start {argv[0]!r}: {exc.strerror or exc}") from None


def kill_group(process: subprocess.Popen[bytes], sig: int) -> None:
    """Send ``sig`` to the plugin's process group (its pid, as it leads its session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)
