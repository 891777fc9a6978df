"""Starting plugin processes: environment, limits, the keeper, no fork of the host.

A plugin command never runs as the host's direct child: the host starts the
:mod:`keeper <weaviate_ext.grpc.keeper>` (``python -I -S keeper.py ... -- COMMAND``),
which starts the command, stays its parent, and kills everything below it when the
plugin exits or the host is gone — however the host ends, SIGKILL included. See the
keeper's docstring for how.

The host starts the keeper with :class:`subprocess.Popen` and **no** ``preexec_fn``, so
CPython uses ``vfork``/``posix_spawn`` rather than ``fork()``: the gRPC-using host is
never forked, which keeps gRPC's fork handlers (and their "Other threads are currently
calling into gRPC, skipping fork() handlers" log line, and their rare abort of the
child) out of every spawn. Limits, the process group and the death signals are set in
the keeper instead of between fork and exec.

``PR_SET_PDEATHSIG`` (the keeper's) is delivered when the *thread* that started the
child exits, not the process. Every keeper is therefore started by one long-lived
spawner thread (:func:`spawn`), so the signal fires only when the host itself dies.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent import futures
from pathlib import Path
from typing import Any

from weaviate_ext.grpc import confine
from weaviate_ext.grpc.keeper import keeper_argv
from weaviate_ext.manifest.model import Permissions

BASE_ENV: tuple[str, ...] = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
"""Host variables every plugin process gets (plus what ``permissions.env`` names)."""

PYTHON_ENV: tuple[str, ...] = ("PYTHONPATH",)
"""Host variables passed on when the command runs the host's own Python."""

PYTHON_NAMES = frozenset({"python", "python3"})
"""Command names that mean the host's interpreter (``sys.executable``)."""


class SpawnError(OSError):
    """The command could not be started."""


def resolve_command(command: Sequence[str], directory: Path) -> tuple[list[str], bool]:
    """The argv to run and whether it runs the host's Python.

    ``python``/``python3`` is the host's interpreter (so is its path, given in full); a
    program with a ``/`` is relative to the plugin directory; anything else is looked up
    on ``PATH``.
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
        return [str(path), *args], _is_host_python(str(path))
    found = shutil.which(program)
    if found is None:
        raise SpawnError(f"{program!r} not found on PATH")
    return [found, *args], _is_host_python(found)


def _is_host_python(program: str) -> bool:
    """Whether ``program`` is the host's own interpreter (named by its path)."""
    return bool(sys.executable) and os.path.realpath(program) == os.path.realpath(sys.executable)


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


class _Spawner:
    """One daemon thread that starts every keeper (see the module docstring)."""

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
    *,
    permissions: Permissions | None = None,
    private: Path | None = None,
    python: bool = False,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` under a keeper that leads its own session and process group.

    The returned process is the keeper (its pid is the process group's id); it exits
    the way the plugin process exits. stdin is a pipe only the host holds: its closing
    tells the keeper the host is gone. stdout and stderr are pipes read by the
    supervisor; the first stdout line is the keeper's
    :data:`~weaviate_ext.grpc.keeper.PID_LINE_PREFIX` line with the plugin's pid.

    With ``permissions`` (what was granted) and the plugin's ``private`` directory the
    process is confined (:mod:`weaviate_ext.grpc.confine`): Landlock, a network
    namespace, no capabilities; ``python`` says ``argv`` runs the host's Python.
    """
    if not sys.executable:
        raise SpawnError("cannot start the plugin's keeper: this Python's executable is unknown")
    confinement: list[str] = []
    if permissions is not None and private is not None:
        confinement = confine.plan(argv, python, cwd, private, env, permissions).keeper_args()
    command = keeper_argv(sys.executable, os.getpid(), memory, cpus, argv, confinement)

    def start() -> subprocess.Popen[bytes]:
        # No preexec_fn: CPython then starts the child without fork() (see above).
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
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
