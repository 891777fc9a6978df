"""The keeper: a tiny parent process between the host and a plugin process.

The host starts ``python -I -S keeper.py --host-pid PID [--memory BYTES] [--cpus 0,1]
-- COMMAND...`` (see :func:`weaviate_ext.grpc.spawn.spawn`); the keeper starts
``COMMAND`` and stays its parent, so that *nothing* a plugin starts outlives the host,
however the host ends:

* the keeper is a **child subreaper** (``PR_SET_CHILD_SUBREAPER``): every process the
  plugin starts, and everything those start, stays in the keeper's subtree even when
  its own parent exits or it leaves the process group (``setsid``);
* it notices the host's end three ways: its stdin (a pipe only the host holds open,
  shared with the plugin, never read by the keeper) is hung up, its parent-death
  signal (``PR_SET_PDEATHSIG`` = ``SIGHUP``) arrives, or its parent pid changes. Then
  it kills its whole subtree with ``SIGKILL`` and exits. The host also closes that pipe
  to make the keeper do this on unload;
* when the plugin process exits, the keeper kills what is left of the subtree and exits
  the same way (same exit code, or killed by the same signal), so the host sees the
  plugin's own exit;
* ``SIGTERM`` sent to the keeper is passed on to the plugin process (which, when the
  host signals the whole process group, gets it twice); the plugin process gets
  ``PR_SET_PDEATHSIG(SIGKILL)`` bound to the keeper.

Before the plugin command runs, its process (already forked, not yet exec'd) prints
``weaviate-ext-keeper|pid|<pid>`` on stdout, so the host knows the plugin's pid before
the plugin can print anything. The memory rlimit and CPU affinity are set there too:
they apply to the plugin, not to the keeper; and, with ``--landlock``/``--netns``/
``--caps``, its confinement (:mod:`weaviate_ext.grpc.landlock`, loaded by path): a
confinement that cannot be applied fails the start (exit 127), the command never runs.

This file runs as a script with the standard library only (``-I -S``: no site, no
``PYTHON*`` variables), is never imported by a plugin, and forks only itself — a
single-threaded process with no gRPC in it. The host starts it without ``fork()``
(``vfork``/``posix_spawn`` through :mod:`subprocess`), which is what keeps gRPC's
fork handlers out of the host.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import resource
import select
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any, NoReturn

PID_LINE_PREFIX = "weaviate-ext-keeper|pid|"
"""The line the plugin's process prints (before exec) so the host learns its pid."""

HOST_GONE_SIGNAL = signal.SIGHUP
"""The keeper's parent-death signal: the host (the thread that started it) is gone."""

EXEC_FAILED = 127
"""The keeper's exit code when the plugin command cannot be executed."""

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _prctl() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        return libc.prctl
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return None


class Options:
    """The keeper's command line: ``--host-pid``, ``--memory``, ``--cpus``, the
    confinement (``--landlock ABI``, ``--allow MODE:PATH`` repeated, ``--tcp deny``,
    ``--netns net|user``, ``--caps none``), ``--``, argv."""

    def __init__(self, argv: Sequence[str]) -> None:
        self.host_pid = 0
        self.memory: int | None = None
        self.cpus: set[int] | None = None
        self.landlock = 0
        self.allow: list[tuple[str, str]] = []
        self.deny_tcp = False
        self.netns = ""
        self.drop_caps = False
        args = list(argv)
        if "--" not in args:
            raise ValueError("expected '-- COMMAND...'")
        split = args.index("--")
        options, self.command = args[:split], args[split + 1 :]
        if not self.command:
            raise ValueError("no command after '--'")
        if len(options) % 2:
            raise ValueError(f"options come in pairs, got {options!r}")
        for name, value in zip(options[::2], options[1::2], strict=True):
            if name == "--host-pid":
                self.host_pid = int(value)
            elif name == "--memory":
                self.memory = int(value)
            elif name == "--cpus":
                self.cpus = {int(cpu) for cpu in value.split(",") if cpu}
            elif name == "--landlock":
                self.landlock = int(value)
            elif name == "--allow":
                mode, sep, path = value.partition(":")
                if not sep or mode not in ("rx", "ro", "rw", "dev") or not path:
                    raise ValueError(f"expected --allow rx|ro|rw|dev:PATH, got {value!r}")
                self.allow.append((mode, path))
            elif name == "--tcp" and value == "deny":
                self.deny_tcp = True
            elif name == "--netns" and value in ("net", "user"):
                self.netns = value
            elif name == "--caps" and value == "none":
                self.drop_caps = True
            else:
                raise ValueError(f"unknown option {name!r}")

    @property
    def confined(self) -> bool:
        """Whether the plugin's process is to be confined at all."""
        return bool(self.landlock or self.netns or self.drop_caps)


def keeper_argv(
    python: str,
    host_pid: int,
    memory: int | None,
    cpus: set[int] | None,
    command: Sequence[str],
    confinement: Sequence[str] = (),
) -> list[str]:
    """The argv that runs the keeper (this file) around ``command``; ``confinement``
    are its confinement options (:meth:`weaviate_ext.grpc.confine.Confinement.keeper_args`)."""
    argv = [python, "-I", "-S", os.path.abspath(__file__), "--host-pid", str(host_pid)]
    if memory is not None:
        argv += ["--memory", str(memory)]
    if cpus:
        argv += ["--cpus", ",".join(str(cpu) for cpu in sorted(cpus))]
    return [*argv, *confinement, "--", *command]


def _landlock_module() -> Any:
    """:mod:`weaviate_ext.grpc.landlock`, loaded by path (the keeper runs ``-I -S``)."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "landlock.py")
    spec = importlib.util.spec_from_file_location("_weaviate_ext_landlock", path)
    if spec is None or spec.loader is None:  # pragma: no cover - the file ships with this one
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def confine(options: Options, landlock: Any) -> None:
    """Confine the calling process (the plugin's, before exec) as ``options`` say:
    network namespace, Landlock ruleset, no capabilities, ``no_new_privs``.
    Raises :class:`OSError` if any part cannot be applied: the plugin is not started."""
    if options.netns:
        landlock.enter_network_namespace(options.netns)
    # the rules are opened while the process may still read what the host can
    ruleset = (
        landlock.build(options.landlock, options.allow, options.deny_tcp)
        if options.landlock
        else None
    )
    if options.drop_caps:
        landlock.drop_capabilities()
    landlock.set_no_new_privs()
    if ruleset is not None:
        landlock.enforce(ruleset)


# -- the subtree -------------------------------------------------------------------------


def _parents() -> dict[int, tuple[int, str]]:
    """Every process's (parent pid, state) from ``/proc``."""
    found: dict[int, tuple[int, str]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:  # pragma: no cover - no procfs: only the plugin process is known
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rpartition(b")")[2].split()
        except OSError:
            continue
        found[int(entry)] = (int(fields[1]), fields[0].decode())
    return found


def descendants(root: int) -> list[int]:
    """The live (not zombie) processes below ``root``."""
    children: dict[int, list[int]] = {}
    states: dict[int, str] = {}
    for pid, (parent, state) in _parents().items():
        children.setdefault(parent, []).append(pid)
        states[pid] = state
    found: list[int] = []
    todo = list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        if states.get(pid) not in ("Z", "X"):
            found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def kill_subtree(reaped: dict[int, int]) -> None:
    """SIGKILL every process below the keeper until none is left; reap them."""
    me = os.getpid()
    for _ in range(200):
        alive = descendants(me)
        if not alive:
            break
        for pid in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.005)
        reap(reaped)
    reap(reaped)


def reap(reaped: dict[int, int]) -> None:
    """Collect every exited child (the plugin and orphans handed to the subreaper)."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        reaped[pid] = status


# -- starting the plugin -------------------------------------------------------------------


def start(options: Options, prctl: Any, landlock: Any = None) -> int:
    """Fork and exec the plugin command; its pid. Exits the keeper if exec fails (or
    the confinement cannot be applied: ``landlock`` is the module that applies it)."""
    keeper = os.getpid()
    read_end, write_end = os.pipe()  # close-on-exec: EOF in the keeper once exec succeeds
    pid = os.fork()
    if pid == 0:  # the plugin process, before exec
        try:
            os.close(read_end)
            if prctl is not None:
                prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != keeper:
                os._exit(1)
            for name in ("SIGTERM", "SIGHUP", "SIGCHLD", "SIGPIPE", "SIGXFZ", "SIGXFSZ"):
                if hasattr(signal, name):  # Python ignores SIGPIPE and SIGXFSZ: undo that
                    signal.signal(getattr(signal, name), signal.SIG_DFL)
            signal.set_wakeup_fd(-1)
            if options.memory is not None:
                resource.setrlimit(resource.RLIMIT_AS, (options.memory, options.memory))
            if options.cpus:
                os.sched_setaffinity(0, options.cpus)
            if options.confined:
                confine(options, landlock)
            os.write(1, f"{PID_LINE_PREFIX}{os.getpid()}\n".encode())
            os.execvp(options.command[0], options.command)
        except BaseException as exc:
            code = exc.errno if isinstance(exc, OSError) and exc.errno else errno.EINVAL
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            os.write(write_end, f"{code}:{why}".encode())
        os._exit(EXEC_FAILED)
    os.close(write_end)
    failure = b""
    while chunk := os.read(read_end, 1024):
        failure += chunk
    os.close(read_end)
    if failure:
        os.waitpid(pid, 0)
        why = failure.decode(errors="replace").partition(":")[2]
        sys.stderr.write(f"weaviate-ext keeper: cannot start {options.command[0]!r}: {why}\n")
        sys.stderr.flush()
        os._exit(EXEC_FAILED)
    return pid


def exit_like(status: int) -> NoReturn:
    """End the keeper the way the plugin process ended (exit code or signal)."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if number not in (signal.SIGKILL, signal.SIGSTOP):
                signal.signal(number, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {number})
            os.kill(os.getpid(), number)
            time.sleep(1.0)
        except (OSError, ValueError):
            pass
        os._exit(128 + number)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)


def main(argv: Sequence[str]) -> NoReturn:
    """Run the keeper (see the module docstring)."""
    try:
        options = Options(argv)
    except ValueError as exc:
        sys.stderr.write(f"weaviate-ext keeper: {exc}\n")
        os._exit(2)
    try:
        landlock = _landlock_module() if options.confined else None
    except (ImportError, OSError) as exc:
        sys.stderr.write(f"weaviate-ext keeper: cannot confine the plugin: {exc}\n")
        os._exit(EXEC_FAILED)
    prctl = _prctl()
    if prctl is not None:
        prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        prctl(_PR_SET_PDEATHSIG, HOST_GONE_SIGNAL, 0, 0, 0)
    if options.host_pid and os.getppid() != options.host_pid:
        os._exit(1)  # the host died before the death signal was armed

    host_gone = [False]
    plugin: list[int] = []
    term_pending = [False]

    def on_host_gone(*_: object) -> None:
        host_gone[0] = True

    def on_term(*_: object) -> None:
        if not plugin:  # not started yet: passed on once it is
            term_pending[0] = True
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(plugin[0], signal.SIGTERM)

    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(HOST_GONE_SIGNAL, on_host_gone)
    signal.signal(signal.SIGTERM, on_term)
    plugin.append(start(options, prctl, landlock))
    if term_pending[0]:
        on_term()

    poller = select.poll()
    # No POLLIN: the keeper never reads the plugin's stdin (which it shares); poll
    # reports POLLHUP without being asked once the host's end of the pipe is closed.
    poller.register(0, 0)
    poller.register(wake_read, select.POLLIN)
    reaped: dict[int, int] = {}
    while True:
        events = poller.poll(1000)
        try:
            while os.read(wake_read, 512):
                pass
        except BlockingIOError:
            pass
        reap(reaped)
        if plugin[0] in reaped:
            kill_subtree(reaped)
            exit_like(reaped[plugin[0]])
        for fd, mask in events:
            if fd == 0 and mask & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                host_gone[0] = True
        if host_gone[0] or (options.host_pid and os.getppid() != options.host_pid):
            kill_subtree(reaped)
            os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
