"""Probe-loading a native library in a short-lived child before the host maps it.

A native library runs its constructors and relocations inside ``dlopen``, and the host
can never unmap it again: a damaged file (``SIGBUS``), a constructor that crashes or
never returns would take the whole host, and every other plugin, down with it.
:func:`probe_library` therefore loads it first in a child process -- the host's own
interpreter as ``python -I -S -c``, with ``ctypes``, ``RTLD_NOW | RTLD_LOCAL`` like the
host's ``cffi`` -- which

* ``dlopen``\\ s the file (constructors run, every symbol is bound);
* looks up every ABI export (:data:`PROBED_EXPORTS`) and calls ``wv_abi_version``;
* writes its findings as one JSON object to a private copy of its stdout (the
  library's own stdout goes to stderr) and ends with ``_exit`` (no destructors).

The child gets no secrets: its environment is :data:`PROBE_ENV` only, stdin is
``/dev/null``, no file descriptor is inherited. It has a deadline
(:func:`probe_timeout`: ``$WEAVIATE_EXT_NATIVE_PROBE_TIMEOUT`` seconds, default 10):
past it the child's process group is killed and the load refused; the child also
arms ``alarm()`` and ``PR_SET_PDEATHSIG`` so that it cannot outlive a host that dies
meanwhile. A child killed by a signal is reported by name ("the library crashed the
probe process with SIGBUS").

Verdicts are cached in memory by the file's sha256, so each distinct file costs one
child per process (concurrent loads of one file wait for one probe). A timeout, or a
failure to start the child, is not cached: it may not happen again. Verdicts are not
kept on disk: they depend on more than the file's bytes (the libraries it links, the
loader's environment), and a probe costs one interpreter start.
"""

from __future__ import annotations

import json
import logging
import math
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping

import attrs

from weaviate_ext.bridges.cabi import abi
from weaviate_ext.errors import PluginLoadError

__all__ = [
    "PROBED_EXPORTS",
    "PROBE_ENV",
    "TIMEOUT_ENV",
    "ProbeResult",
    "clear_cache",
    "probe_library",
    "probe_timeout",
    "probes_started",
]

log = logging.getLogger("weaviate_ext")

PROBED_EXPORTS: tuple[str, ...] = (*abi.COMMON_EXPORTS, *abi.HOOK_EXPORTS, "wv_set_emit")
"""Every export of the ABI the probe looks up."""

PROBE_ENV: tuple[str, ...] = ("PATH", "LD_LIBRARY_PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
"""Host variables the probe process gets (``LD_LIBRARY_PATH`` so that the library's
dependencies resolve as they will in the host); nothing else is passed."""

TIMEOUT_ENV = "WEAVIATE_EXT_NATIVE_PROBE_TIMEOUT"
"""Environment variable: seconds a probe may take (default :data:`DEFAULT_TIMEOUT`)."""

DEFAULT_TIMEOUT = 10.0
"""Seconds a probe may take unless :data:`TIMEOUT_ENV` says otherwise."""

_OUTPUT_LIMIT = 64 * 1024
_STDERR_LIMIT = 4096

_CHILD = r"""
import ctypes, json, os, signal, sys
path, parent, alarm, names = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
verdict = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
try:
    ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
except Exception:
    pass
if os.getppid() != parent:
    os._exit(3)
signal.alarm(alarm)
def report(value):
    verdict.write(json.dumps(value))
    verdict.flush()
    os._exit(0)
try:
    lib = ctypes.CDLL(path, mode=os.RTLD_NOW | os.RTLD_LOCAL)
except OSError as exc:
    report({"error": str(exc)})
present = [name for name in names if hasattr(lib, name)]
version = None
if "wv_abi_version" in present:
    function = lib.wv_abi_version
    function.argtypes = []
    function.restype = ctypes.c_uint32
    version = int(function())
report({"exports": present, "abi_version": version})
"""
"""The probe process's program (``python -I -S -c``; argv: path, parent pid, alarm
seconds, export names)."""


@attrs.frozen
class ProbeResult:
    """What a successful probe found: the ABI exports present and ``wv_abi_version``."""

    exports: frozenset[str]
    abi_version: int | None
    """``None`` when the library does not export ``wv_abi_version``."""


@attrs.frozen
class _Verdict:
    result: ProbeResult | None = None
    failure: str = ""
    """Why the library cannot be loaded (``result`` is ``None`` then)."""


_guard = threading.Lock()
_verdicts: dict[str, _Verdict] = {}
_in_flight: dict[str, threading.Lock] = {}
_started = 0


def probes_started() -> int:
    """How many probe processes this process has started (for tests and metrics)."""
    return _started


def clear_cache() -> None:
    """Forget every verdict (the next load of each file probes again)."""
    with _guard:
        _verdicts.clear()


def probe_timeout(environ: Mapping[str, str] | None = None) -> float:
    """Seconds a probe may take: ``$WEAVIATE_EXT_NATIVE_PROBE_TIMEOUT``, else 10."""
    raw = (os.environ if environ is None else environ).get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        log.warning(
            "%s=%r is not a positive number of seconds; using %g",
            TIMEOUT_ENV,
            raw,
            DEFAULT_TIMEOUT,
        )
        return DEFAULT_TIMEOUT
    return value


def probe_library(name: str, path: str, digest: str) -> ProbeResult:
    """Probe-load the library at ``path`` (sha256 ``digest``) in a child, once per digest.

    Returns what it exports; raises :class:`PluginLoadError` (naming plugin ``name``)
    when the library cannot be loaded safely, and the host must not map it.
    """
    with _guard:
        verdict = _verdicts.get(digest)
        lock = _in_flight.setdefault(digest, threading.Lock()) if verdict is None else None
    if lock is not None:
        with lock:
            with _guard:
                verdict = _verdicts.get(digest)
            if verdict is None:
                verdict, cacheable = _run_probe(name, path, digest)
                with _guard:
                    if cacheable:
                        _verdicts[digest] = verdict
                    _in_flight.pop(digest, None)
    assert verdict is not None
    if verdict.result is None:
        raise PluginLoadError(name, f"cannot load the shared library: {verdict.failure}")
    return verdict.result


def _environment() -> dict[str, str]:
    return {key: os.environ[key] for key in PROBE_ENV if key in os.environ}


def _run_probe(name: str, path: str, digest: str) -> tuple[_Verdict, bool]:
    """One probe process; ``(verdict, cacheable)``."""
    global _started
    timeout = probe_timeout()
    if not sys.executable:
        why = "cannot probe it: this host has no Python interpreter to run the probe with"
        return _Verdict(failure=why), False
    argv = [
        sys.executable,
        "-I",
        "-S",
        "-c",
        _CHILD,
        path,
        str(os.getpid()),
        str(math.ceil(timeout) + 1),
        *PROBED_EXPORTS,
    ]
    log.debug("plugin %s: probe-loading %s (sha256 %s) in a child process", name, path, digest)
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_environment(),
            close_fds=True,
            start_new_session=True,
        )
    except OSError as exc:
        return _Verdict(failure=f"cannot start the probe process: {exc.strerror or exc}"), False
    with _guard:
        _started += 1
    try:
        output, errors, finished = _collect(process, time.monotonic() + timeout)
    except BaseException:  # an interrupt while waiting: leave nothing running
        _kill_group(process)
        process.wait()
        raise
    if not finished:
        _kill_group(process)
    status = process.wait()
    return _judge(status, output, errors, finished, timeout)


def _collect(process: subprocess.Popen[bytes], deadline: float) -> tuple[bytes, bytes, bool]:
    """Read the probe's stdout and stderr (the first bytes of each) until both are
    closed and it has exited, or until ``deadline``; ``(stdout, stderr, finished)``."""
    assert process.stdout is not None and process.stderr is not None
    kept = {process.stdout.fileno(): b"", process.stderr.fileno(): b""}
    limits = {process.stdout.fileno(): _OUTPUT_LIMIT, process.stderr.fileno(): _STDERR_LIMIT}
    try:
        with selectors.DefaultSelector() as selector:
            for stream in (process.stdout, process.stderr):
                selector.register(stream, selectors.EVENT_READ)
            while selector.get_map():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return kept[process.stdout.fileno()], kept[process.stderr.fileno()], False
                for key, _ in selector.select(remaining):
                    fd = key.fd
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        selector.unregister(key.fileobj)
                        continue
                    room = limits[fd] - len(kept[fd])
                    if room > 0:
                        kept[fd] += chunk[:room]
        out, err = kept[process.stdout.fileno()], kept[process.stderr.fileno()]
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return out, err, False
        return out, err, True
    finally:
        process.stdout.close()
        process.stderr.close()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the probe and whatever it started (its own session and group). Called
    before the probe is reaped, so its process group id cannot have been reused."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()


def _first_lines(errors: bytes) -> str:
    lines = [line.strip() for line in errors.decode("utf-8", "replace").splitlines()]
    text = " / ".join(line for line in lines if line)[:300]
    return f" (it printed: {text})" if text else ""


def _judge(
    status: int, output: bytes, errors: bytes, finished: bool, timeout: float
) -> tuple[_Verdict, bool]:
    """The verdict on a probe that ended with ``status``."""
    found: object = None
    if status == 0 and output:
        try:
            found = json.loads(output.decode("utf-8"))
        except ValueError:
            found = None
    if isinstance(found, dict):
        if "error" in found:
            return _Verdict(failure=str(found["error"])), True
        exports = found.get("exports")
        version = found.get("abi_version")
        if isinstance(exports, list) and (version is None or isinstance(version, int)):
            result = ProbeResult(frozenset(str(e) for e in exports), version)
            return _Verdict(result=result), True
    not_mapped = "; the host did not map it"
    if not finished or status == -signal.SIGALRM:
        why = (
            f"loading it in a probe process did not finish within {timeout:g} s (does a "
            f"constructor never return? {TIMEOUT_ENV} sets the limit){not_mapped}"
        )
        return _Verdict(failure=why), False
    if status < 0:
        try:
            signame = signal.Signals(-status).name
        except ValueError:
            signame = f"signal {-status}"
        description = signal.strsignal(-status) or signame
        faults = (signal.SIGBUS, signal.SIGSEGV, signal.SIGILL)
        hint = ": a damaged file, or a fault in a constructor" if -status in faults else ""
        why = (
            f"the library crashed the probe process with {signame} while being loaded "
            f"({description}{hint}){_first_lines(errors)}{not_mapped}"
        )
        return _Verdict(failure=why), True
    why = (
        f"the library ended the probe process (exit status {status}) while being "
        f"loaded{_first_lines(errors)}{not_mapped}"
    )
    return _Verdict(failure=why), True
