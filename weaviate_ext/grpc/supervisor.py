"""The supervisor of one plugin process: start, watch, restart with backoff, stop.

Life of a plugin process (one *generation*):

1. a private directory (mode 0700) is created once per plugin; the process is started
   from the plugin directory with a scrubbed environment naming the socket to serve on
   (``WEAVIATE_EXT_GRPC_SOCKET``), under a keeper (:mod:`weaviate_ext.grpc.keeper`) that
   leads its own process group, sets the memory rlimit and CPU affinity, and kills
   everything the plugin started when the plugin exits or the host is gone
   (:mod:`weaviate_ext.grpc.spawn`);
2. its handshake line is awaited on stdout (``start_timeout``), the socket is made 0600,
   and :func:`~weaviate_ext.grpc.connection.open_plugin` checks Info, sends Init and
   waits for SERVING;
3. a watcher thread waits for the process to exit. An exit the host did not ask for is
   a crash: calls in flight fail with :class:`~weaviate_ext.PluginCrashed`, new calls
   wait (within their deadline) while a new generation is started after an exponential
   backoff; after ``max_restarts`` failures in a row the plugin is marked failed and
   every call says so;
4. :meth:`PluginProcess.close` sends SIGTERM to the process group; after ``stop_grace``
   seconds it closes the keeper's stdin (the keeper SIGKILLs the plugin's whole subtree,
   also processes that left the group), then SIGKILLs the group, and removes the
   private directory. A host killed with SIGKILL cannot remove it; the next host of the
   same user to start a plugin removes directories whose host is gone
   (:func:`remove_stale_directories`).
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import enum
import logging
import os
import queue
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import IO

from weaviate_ext.grpc import cpus
from weaviate_ext.grpc.connection import (
    StartError,
    Stubs,
    close_channel,
    make_channel,
    open_plugin,
)
from weaviate_ext.grpc.keeper import PID_LINE_PREFIX
from weaviate_ext.grpc.protocol import (
    HANDSHAKE_PREFIX,
    PLUGIN_NAME_ENV,
    SOCKET_ENV,
    HandshakeError,
    parse_handshake,
)
from weaviate_ext.grpc.settings import Settings
from weaviate_ext.grpc.spawn import (
    SpawnError,
    child_environment,
    kill_group,
    resolve_command,
    spawn,
)
from weaviate_ext.live import scrub
from weaviate_ext.manifest import Manifest

MiB = 1024 * 1024

OUT_OF_MEMORY = re.compile(
    r"MemoryError|Cannot allocate memory|std::bad_alloc|out ?of ?memory"
    r"|memory allocation of \d+ bytes failed|\bENOMEM\b",
    re.IGNORECASE,
)
"""A stderr line saying the process ran out of memory: Python's ``MemoryError``,
``strerror(ENOMEM)``, C++'s ``std::bad_alloc``, Go's, Node's and Java's "out of memory",
Rust's "memory allocation of N bytes failed".

``resources.memory`` is an ``RLIMIT_AS``: a process reaching it is refused memory (it
never gets a signal for it), so what it dies of is its own reaction, usually one of
those lines and an exit code or SIGABRT. A death is blamed on memory when such a line
came within :data:`OOM_EVIDENCE_WINDOW` seconds of it, or when the process was killed
by SIGKILL with its peak resident memory (``ru_maxrss``, from ``wait4`` of its keeper)
at :data:`OOM_KILL_SHARE` of the limit or more: the kernel's out-of-memory killer."""

OOM_EVIDENCE_WINDOW = 10.0
"""Seconds before a death in which an :data:`OUT_OF_MEMORY` line counts as its cause."""

OOM_KILL_SHARE = 0.9
"""The share of ``resources.memory`` a SIGKILLed process must have peaked at to be
reported as most likely killed by the kernel's out-of-memory killer."""

STDERR_WAIT = 1.0
"""Seconds a report of a death waits for the rest of the process's stderr."""


def signal_name(number: int) -> str:
    """``SIGSEGV`` for 11; ``signal 99`` for a number without a name."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def memory_clause(generation: Generation, code: int, limit: int | None) -> str:
    """What a death report says about memory (``""``: nothing), see :data:`OUT_OF_MEMORY`."""
    limit_text = f"memory limit {limit // MiB} MiB, resources.memory" if limit else ""
    seen = generation.out_of_memory
    if seen is not None and time.monotonic() - seen[0] <= OOM_EVIDENCE_WINDOW:
        quoted = seen[1] if len(seen[1]) <= 120 else seen[1][:117] + "..."
        return f'after running out of memory (stderr: "{quoted}"' + (
            f"; {limit_text})" if limit else ")"
        )
    if code != -signal.SIGKILL or generation.peak_rss is None:
        return ""
    peak = generation.peak_rss
    if limit and peak >= OOM_KILL_SHARE * limit:
        return (
            f"(its memory use peaked at {peak // MiB} MiB, near its {limit_text}: most "
            "likely the kernel's out-of-memory killer)"
        )
    return f"(its memory use peaked at {peak // MiB} MiB)"


def _reap(generation: Generation) -> None:
    """Wait for ``generation``'s keeper to exit and reap it, noting the plugin's peak
    resident memory when it can (``wait4``: the keeper's usage includes the plugin's,
    which it reaped before it exited).

    ``wait4`` reaps the keeper behind :class:`subprocess.Popen`'s back, so it is done
    holding Popen's own wait lock and sets ``returncode`` before letting go: another
    thread's ``poll()``/``wait()`` then finds the status rather than an unknown child.
    Without that lock (another Python) this falls back to ``Popen.wait``.
    """
    process = generation.process
    lock = getattr(process, "_waitpid_lock", None)
    if lock is not None and hasattr(os, "wait4") and hasattr(os, "waitid"):
        with contextlib.suppress(ChildProcessError, InterruptedError):
            if process.returncode is None:  # not reaped by another thread already
                # Blocks until the keeper has exited, leaving it to be reaped below.
                os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        with lock:
            if process.returncode is None:
                try:
                    pid, status, usage = os.wait4(process.pid, os.WNOHANG)
                except ChildProcessError:
                    pid = 0
                if pid == process.pid:
                    process.returncode = os.waitstatus_to_exitcode(status)
                    generation.peak_rss = usage.ru_maxrss * 1024
    process.wait()


class State(enum.Enum):
    """Where a supervised plugin is in its life."""

    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    FAILED = "failed"
    CLOSED = "closed"


class NotServing(Exception):
    """No generation can take the call: the plugin failed, closed or is still restarting."""


class Generation:
    """One started process of a plugin, with its channel and output readers.

    ``process`` is the plugin's keeper (:mod:`weaviate_ext.grpc.keeper`), which exits
    the way the plugin process does; ``plugin_pid`` is the plugin process itself.
    """

    def __init__(self, number: int, process: subprocess.Popen[bytes]) -> None:
        self.number = number
        self.process = process
        self.plugin_pid: int | None = None
        self.started = time.monotonic()
        self.stubs: Stubs | None = None
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
        self.stderr_closed = threading.Event()
        """Set once stderr reached its end (every line the process wrote was read)."""
        self.out_of_memory: tuple[float, str] | None = None
        """When (monotonic) and what the last stderr line saying it ran out of memory said."""
        self.peak_rss: int | None = None
        """The process's peak resident memory in bytes, once it has exited (if known)."""
        self.handshake: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self.exited = threading.Event()
        self.expected_exit = False

    @property
    def pid(self) -> int:
        """The plugin process's id (the keeper's until the keeper has told it)."""
        return self.process.pid if self.plugin_pid is None else self.plugin_pid

    @property
    def group(self) -> int:
        """The process group id: the keeper's pid."""
        return self.process.pid

    def close_channel(self) -> None:
        """Close this generation's channel."""
        if self.stubs is not None:
            close_channel(self.stubs.channel)


_live: weakref.WeakSet[PluginProcess] = weakref.WeakSet()

DIRECTORY_PREFIX = "wvx-"
"""Private directories are ``<tmp>/wvx-<host pid>-<random>``."""

_STALE = re.compile(re.escape(DIRECTORY_PREFIX) + r"(\d+)-[A-Za-z0-9_]+")
_swept = threading.Lock()
_swept_once: list[bool] = []


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_directories(root: Path | None = None) -> list[Path]:
    """Remove private directories left by hosts that died without cleaning up (SIGKILL).

    Only directories named ``wvx-<pid>-*`` under ``root`` (the temp directory), owned by
    this user, real directories (not symlinks), whose host ``pid`` no longer runs. A pid
    reused by another process keeps its directory until a later sweep. Returns what was
    removed.
    """
    root = Path(tempfile.gettempdir()) if root is None else root
    removed: list[Path] = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        match = _STALE.fullmatch(entry.name)
        if match is None or int(match.group(1)) == os.getpid():
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            continue
        if _pid_alive(int(match.group(1))):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(Path(entry.path))
    return removed


def _sweep_once() -> None:
    """Remove stale private directories, the first time this host starts a plugin."""
    with _swept:
        if _swept_once:
            return
        _swept_once.append(True)
    for path in remove_stale_directories():
        logging.getLogger("weaviate_ext").info(
            "removed %s, left behind by a host that is gone", path
        )


@atexit.register
def _stop_all() -> None:
    for supervisor in list(_live):
        supervisor.close(grace=0.5)


class PluginProcess:
    """Runs one grpc plugin's process and keeps it serving."""

    def __init__(
        self,
        manifest: Manifest,
        config_json: str,
        secrets: tuple[str, ...],
        settings: Settings | None = None,
    ) -> None:
        self.manifest = manifest
        self.name = manifest.name
        self.settings = settings or Settings.from_environ()
        self.log = logging.getLogger(f"weaviate_ext.plugin.{self.name}")
        self._config_json = config_json
        self._secrets = secrets
        self._cond = threading.Condition()
        self.state = State.STARTING
        self.reason = ""
        self.methods: list[str] = []
        self.current: Generation | None = None
        self.failures = 0
        self.restarts = 0
        self._numbers = 0
        _sweep_once()
        self.directory = Path(tempfile.mkdtemp(prefix=f"{DIRECTORY_PREFIX}{os.getpid()}-"))
        self.socket_path = self.directory / "plugin.sock"
        resources = manifest.spec.resources
        self._memory = resources.memory
        self._cpus = cpus.allocate(resources.cpu)
        self._cpus_held = self._cpus is not None
        _live.add(self)

    # -- starting ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the first generation; :class:`StartError` (process stopped) if it fails."""
        try:
            generation = self._launch()
        except StartError:
            self._remove_directory()
            with self._cond:
                self.state = State.CLOSED
            self._release_cpus()
            raise
        with self._cond:
            self.current = generation
            self.state = State.RUNNING

    def _launch(self) -> Generation:
        spec = self.manifest.spec
        assert spec.command is not None
        try:
            argv, python = resolve_command(spec.command, self.manifest.directory)
        except SpawnError as exc:
            raise StartError(f"spec.command: {exc}") from None
        if self.socket_path.exists():
            self.socket_path.unlink()
        env, dropped = child_environment(
            {
                SOCKET_ENV: str(self.socket_path),
                PLUGIN_NAME_ENV: self.name,
                "HOME": str(self.directory),
                "TMPDIR": str(self.directory),
                "PYTHONUNBUFFERED": "1",
                **({"MALLOC_ARENA_MAX": "2"} if self._memory else {}),
            },
            spec.permissions.env,
            python,
            self._secrets,
        )
        for variable in dropped:
            self.log.warning("not passing %s: its value contains a secret", variable)
        try:
            process = spawn(
                argv,
                self.manifest.directory,
                env,
                self._memory,
                self._cpus,
                permissions=spec.permissions,
                private=self.directory,
                python=python,
            )
        except SpawnError as exc:
            raise StartError(str(exc)) from None
        self._numbers += 1
        generation = Generation(self._numbers, process)
        self._read(generation, process.stdout, stdout=True)
        self._read(generation, process.stderr, stdout=False)
        try:
            target = self._await_handshake(generation)
            if target.startswith("unix:"):
                os.chmod(target.removeprefix("unix:"), 0o600)
            generation.stubs = Stubs(make_channel(target), spec.type)
            remaining = self.settings.start_timeout - (time.monotonic() - generation.started)
            self.methods = open_plugin(
                generation.stubs,
                spec.type,
                self._config_json,
                self.name,
                self.manifest.version,
                max(remaining, 1.0),
            )
        except (StartError, OSError) as exc:
            self._stop(generation, grace=0.0)
            raise StartError(self._with_tail(str(exc), generation)) from None
        threading.Thread(
            target=self._watch, args=(generation,), name=f"wvx-watch-{self.name}", daemon=True
        ).start()
        self.log.info("started (pid %d, generation %d)", generation.pid, generation.number)
        return generation

    def _await_handshake(self, generation: Generation) -> str:
        timeout = self.settings.start_timeout
        try:
            line = generation.handshake.get(timeout=timeout)
        except queue.Empty:
            raise StartError(
                f"printed no handshake line within {timeout:g}s "
                f"(expected '{HANDSHAKE_PREFIX}|1|unix|<socket>' on stdout)"
            ) from None
        if line is None:
            _reap(generation)
            raise StartError(f"{self.describe_exit(generation)} before its handshake")
        try:
            return parse_handshake(line)
        except HandshakeError as exc:
            raise StartError(f"bad handshake: {exc}") from None

    def _read(self, generation: Generation, stream: IO[bytes] | None, stdout: bool) -> None:
        assert stream is not None

        def pump() -> None:
            waiting = stdout
            for raw in iter(stream.readline, b""):
                line = scrub(raw.decode("utf-8", "replace").rstrip("\r\n"), self._secrets)
                if stdout and generation.plugin_pid is None and line.startswith(PID_LINE_PREFIX):
                    with contextlib.suppress(ValueError):
                        generation.plugin_pid = int(line.removeprefix(PID_LINE_PREFIX))
                    continue
                if waiting and line.startswith(HANDSHAKE_PREFIX + "|"):
                    generation.handshake.put(line)
                    waiting = False
                    continue
                if not stdout:
                    generation.stderr_tail.append(line)
                    if OUT_OF_MEMORY.search(line):
                        generation.out_of_memory = (time.monotonic(), line.strip())
                self.log.info("%s", line)
            if waiting:
                generation.handshake.put(None)
            stream.close()

        def pump_and_signal_the_end() -> None:
            try:
                pump()
            finally:
                if not stdout:
                    generation.stderr_closed.set()

        name = f"wvx-{'out' if stdout else 'err'}-{self.name}"
        threading.Thread(target=pump_and_signal_the_end, name=name, daemon=True).start()

    def _with_tail(self, message: str, generation: Generation) -> str:
        time.sleep(0.05)  # let the stderr reader catch the last lines
        tail = [line for line in generation.stderr_tail if line.strip()][-3:]
        return message + (f"; stderr: {' | '.join(tail)}" if tail else "")

    # -- crashes and restarts ---------------------------------------------------------

    def _watch(self, generation: Generation) -> None:
        _reap(generation)
        generation.exited.set()
        with self._cond:
            if generation.expected_exit or self.state is State.CLOSED:
                return
            if self.current is not generation:
                return
            ran = time.monotonic() - generation.started
            self.failures = 1 if ran >= self.settings.stable_after else self.failures + 1
            # restarting at once, so no new call picks the dead process while the
            # report below waits for the end of its stderr
            self.reason = f"the plugin process (pid {generation.pid}) exited"
            self.state = State.RESTARTING
            self._cond.notify_all()
        reason = self.describe_exit(generation)  # may wait a little for stderr's end
        with self._cond:
            if self.current is generation and self.state is State.RESTARTING:
                self.reason = reason
        self.log.warning("%s; restarting", self._with_tail(self.reason, generation))
        generation.close_channel()
        threading.Thread(target=self._restart, name=f"wvx-restart-{self.name}", daemon=True).start()

    def _restart(self) -> None:
        settings = self.settings
        while True:
            with self._cond:
                if self.state is State.CLOSED:
                    return
                if self.failures > settings.max_restarts:
                    self.state = State.FAILED
                    self.reason = (
                        f"failed {self.failures} times in a row, not restarted again "
                        f"(last: {self.reason}); reload it to try again"
                    )
                    self.log.error("%s", self.reason)
                    self._cond.notify_all()
                    return
                delay = min(
                    settings.backoff_initial * 2 ** max(0, self.failures - 1), settings.backoff_max
                )
                self._cond.wait_for(lambda: self.state is State.CLOSED, timeout=delay)
                if self._closed():
                    return
            try:
                generation = self._launch()
            except StartError as exc:
                with self._cond:
                    self.failures += 1
                    self.reason = f"restart failed: {exc}"
                self.log.warning("%s", self.reason)
                continue
            with self._cond:
                if self._closed():
                    closing = generation
                else:
                    self.current = generation
                    self.state = State.RUNNING
                    self.restarts += 1
                    self._cond.notify_all()
                    return
            self._stop(closing, grace=0.0)
            return

    def acquire(self, timeout: float | None) -> Generation:
        """The generation to call; waits (up to ``timeout``) while a restart is under way.

        :raises NotServing: failed, closed, or not back within ``timeout``.
        """
        generation = self.current
        if (
            self.state is State.RUNNING
            and generation is not None
            and generation.process.returncode is None
        ):
            return generation
        with self._cond:
            self._cond.wait_for(self._settled, timeout=timeout)
            if self.state is State.RUNNING and self.current is not None:
                return self.current
            if self.state is State.FAILED:
                raise NotServing(f"its process failed: {self.reason}")
            if self.state is State.CLOSED:
                raise NotServing("it was stopped")
            raise NotServing(f"it is restarting after a crash ({self.reason})")

    def _closed(self) -> bool:
        """Whether the plugin was closed (read afresh: another thread may close it
        while this one waits)."""
        return self.state is State.CLOSED

    def _settled(self) -> bool:
        """Whether a call can be placed (or refused) now: not starting or restarting, and
        not running a process already known dead (a caller that saw its call fail may
        reap it before the watcher marks the restart)."""
        if self.state in (State.RESTARTING, State.STARTING):
            return False
        current = self.current
        return not (
            self.state is State.RUNNING
            and current is not None
            and current.process.returncode is not None
        )

    def runtime_status(self) -> tuple[str, str | None]:
        """``("serving", None)``, ``("restarting", why)`` or ``("failed", why)``; never blocks.

        A plugin still starting counts as restarting; a closed one as failed ("stopped").
        """
        state, reason = self.state, self.reason
        if state is State.RUNNING:
            return "serving", None
        if state is State.FAILED:
            return "failed", reason
        if state is State.CLOSED:
            return "failed", "stopped (unloaded or the host is closing)"
        if state is State.STARTING:
            return "restarting", "starting"
        return (
            "restarting",
            f"restart {self.failures} of at most {self.settings.max_restarts} after: {reason}",
        )

    def died(self, generation: Generation, wait: float = 0.5) -> bool:
        """Whether ``generation``'s process has exited (waiting a little for the news)."""
        if generation.process.poll() is not None:
            return True
        try:
            generation.process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            return False
        return True

    def describe_exit(self, generation: Generation) -> str:
        """Why ``generation``'s process ended, e.g. ``the plugin process (pid 7) was killed
        by SIGSEGV`` or ``... exited with code 1 after running out of memory (stderr:
        "MemoryError"; memory limit 512 MiB, resources.memory)``.

        The signal named is the one that ended the plugin process (the keeper dies by the
        same one). Memory is blamed only with evidence, as :data:`OUT_OF_MEMORY` explains;
        a SIGKILL without that evidence says how much memory the process peaked at.
        """
        code = generation.process.returncode
        if code is None:
            what = "is still running"
        elif code < 0:
            what = f"was killed by {signal_name(-code)}"
        else:
            what = f"exited with code {code}"
        message = f"the plugin process (pid {generation.pid}) {what}"
        if code is None:
            return message
        generation.stderr_closed.wait(STDERR_WAIT)  # its last words, if it said any
        clause = memory_clause(generation, code, self._memory)
        return f"{message} {clause}" if clause else message

    # -- stopping ---------------------------------------------------------------------

    def _stop(self, generation: Generation, grace: float) -> None:
        """SIGTERM to the group; after ``grace``, the keeper kills the plugin's subtree
        (its stdin closed); SIGKILL to the group for whatever is left."""
        generation.expected_exit = True
        generation.close_channel()
        process = generation.process
        if process.poll() is None:
            kill_group(process, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=grace if grace > 0 else 0.2)
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        if process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=2.0)
        kill_group(process, signal.SIGKILL)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - unkillable
            self.log.error("pid %d did not die after SIGKILL", process.pid)

    def close(self, grace: float | None = None) -> None:
        """Stop the process group (SIGTERM, SIGKILL after the grace period) for good."""
        with self._cond:
            if self.state is State.CLOSED:
                return
            self.state = State.CLOSED
            generation = self.current
            self._cond.notify_all()
        if generation is not None:
            self._stop(generation, self.settings.stop_grace if grace is None else grace)
        self._remove_directory()
        self._release_cpus()
        _live.discard(self)

    def _remove_directory(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def _release_cpus(self) -> None:
        """Give this plugin's CPUs back to the allocator (once; the process is gone)."""
        with self._cond:
            held, self._cpus_held = self._cpus_held, False
        if held:
            cpus.release(self._cpus)

    @property
    def pid(self) -> int | None:
        """The pid of the current plugin process, if any."""
        return None if self.current is None else self.current.pid

    @property
    def group(self) -> int | None:
        """The process group of the current plugin process (its keeper's pid), if any."""
        return None if self.current is None else self.current.group
