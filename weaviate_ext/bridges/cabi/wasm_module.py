"""The wasm runtime's engine and compiled modules: one shared :class:`wasmtime.Engine`
with epoch interruption, the epoch ticker, the on-disk module cache and the check of a
module against the C ABI. Used by :mod:`weaviate_ext.bridges.wasm`."""

from __future__ import annotations

import ctypes
import importlib.metadata
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import wasmtime

from weaviate_ext.bridges.cabi import abi
from weaviate_ext.errors import PluginLoadError

TICK = 0.01
"""Seconds between two epoch increments: the granularity of deadlines."""


WASMTIME_VERSION = importlib.metadata.version("wasmtime")
ENGINE_TAG = "epoch1-nomove"
"""Engine settings that change compiled code; part of the module cache key."""

log = logging.getLogger("weaviate_ext")

_engine_lock = threading.Lock()
_engine: wasmtime.Engine | None = None


class _TrapHandlers:
    """wasmtime's signal handlers, kept in place.

    wasmtime turns a trap (``ud2``, a guard-page fault) into an error with handlers for
    SIGILL, SIGSEGV, SIGBUS and SIGFPE that it installs when the first engine is made.
    Whoever restores older handlers afterwards -- ``faulthandler.disable()`` does, and
    so does every in-process pytest session (pytester) when it ends -- makes the next
    trap kill the process. The handlers are saved right after the engine is made and
    put back (with a warning) when :meth:`check` finds them replaced; the epoch ticker
    checks every tick and each plugin load checks before its first call. Linux only (the
    ``struct sigaction`` is kept as opaque bytes; only its handler pointer is compared).
    """

    SIGNALS = ("SIGILL", "SIGSEGV", "SIGBUS", "SIGFPE")
    SIZE = 512
    """Bytes reserved for a ``struct sigaction`` (152 on x86_64 and aarch64 glibc)."""

    def __init__(self) -> None:
        self._libc: Any = None
        self._saved: dict[int, Any] = {}
        self._warned = False
        if sys.platform.startswith("linux"):
            try:
                self._libc = ctypes.CDLL(None, use_errno=True)
                self._libc.sigaction.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
            except (OSError, AttributeError):  # pragma: no cover - no libc sigaction
                self._libc = None

    def _current(self, signum: int) -> Any:
        buf = ctypes.create_string_buffer(self.SIZE)
        self._libc.sigaction(signum, None, buf)
        return buf

    def save(self) -> None:
        """Remember the handlers in place now (just after wasmtime installed its own)."""
        if self._libc is None:
            return
        for name in self.SIGNALS:
            signum = int(getattr(signal, name))
            self._saved[signum] = self._current(signum)

    def check(self) -> None:
        """Put wasmtime's handlers back where something replaced them."""
        size = ctypes.sizeof(ctypes.c_void_p)
        for signum, saved in self._saved.items():
            if self._current(signum).raw[:size] != saved.raw[:size]:
                self._libc.sigaction(signum, saved, None)
                if not self._warned:
                    self._warned = True
                    log.warning(
                        "wasm runtime: the handler of signal %d was replaced (e.g. by "
                        "faulthandler.disable()); wasmtime's trap handlers were put back",
                        signum,
                    )


trap_handlers = _TrapHandlers()


def engine() -> wasmtime.Engine:
    """The engine every wasm plugin of this process shares (epoch interruption on)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            config = wasmtime.Config()
            config.epoch_interruption = True
            # linear memory grows in place (a 32-bit memory has its whole 4 GiB
            # reserved), so the bridge's view of it stays valid across memory.grow and is
            # only widened when an address falls outside it (capi.FastInstance)
            config.memory_may_move = False
            _engine = wasmtime.Engine(config)
            trap_handlers.save()
        return _engine


class _Ticker:
    """Advances the engine's epoch every :data:`TICK` seconds while plugins are loaded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._stop: threading.Event | None = None
        self.epoch = 0
        """Ticks so far (never reset). It trails the engine's epoch by at most one
        tick, which lets an instance skip re-arming an unchanged deadline."""

    def acquire(self) -> None:
        with self._lock:
            self._users += 1
            if self._stop is None:
                stop = self._stop = threading.Event()
                eng = engine()

                def run() -> None:
                    while not stop.wait(TICK):
                        eng.increment_epoch()
                        self.epoch += 1
                        trap_handlers.check()

                threading.Thread(target=run, name="weaviate-ext-wasm-epoch", daemon=True).start()

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._stop is not None:
                self._stop.set()
                self._stop = None


ticker = _Ticker()


# -- compiled module cache --------------------------------------------------------------


def cache_dir() -> Path:
    """Where compiled modules are cached (see the module docstring)."""
    explicit = os.environ.get("WEAVIATE_EXT_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "weaviate-ext" / "wasm"


def cache_path(digest: str) -> Path:
    """The cache file of a binary with sha256 ``digest``."""
    return cache_dir() / f"{digest}-wasmtime{WASMTIME_VERSION}-{ENGINE_TAG}.cwasm"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def trap_reason(exc: BaseException) -> str:
    """The useful part of a wasmtime trap message: the cause and the top frame."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    cause = next((line for line in lines if line.startswith("wasm trap:")), None)
    frame = next((line for line in lines if "!" in line and " - " in line), None)
    reason = cause or (lines[-1] if lines else type(exc).__name__)
    if frame is not None:
        reason += f" (in {frame.rsplit('!', 1)[-1]})"
    return reason


def compile_module(name: str, data: bytes, digest: str) -> tuple[wasmtime.Module, bool]:
    """The compiled module, from the cache when possible; ``(module, cache_hit)``."""
    path = cache_path(digest)
    eng = engine()
    if path.is_file():
        try:
            return wasmtime.Module.deserialize_file(eng, str(path)), True
        except wasmtime.WasmtimeError as exc:
            log.warning("plugin %s: ignoring unusable module cache %s: %s", name, path, exc)
            path.unlink(missing_ok=True)
    if not data.startswith(b"\0asm"):
        raise PluginLoadError(name, "spec.binary is not a WebAssembly binary (no \\0asm header)")
    try:
        module = wasmtime.Module(eng, data)
    except wasmtime.WasmtimeError as exc:
        raise PluginLoadError(name, f"invalid WebAssembly module: {first_line(exc)}") from None
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(module.serialize())
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("plugin %s: cannot write the module cache %s: %s", name, path, exc)
    return module, False


def check_module(name: str, plugin_type: str, module: wasmtime.Module) -> frozenset[str]:
    """Check exports, signatures and imports against the ABI; the ABI exports present."""
    exports = {e.name: e.type for e in module.exports}
    missing = [e for e in (*abi.expected_exports(plugin_type), "memory") if e not in exports]
    if missing:
        raise abi.missing_exports_error(name, plugin_type, missing)
    if "_initialize" not in exports and "_start" in exports:
        raise PluginLoadError(
            name, "the module is a WASI command; build a reactor (-mexec-model=reactor)"
        )
    if not isinstance(exports["memory"], wasmtime.MemoryType):
        raise PluginLoadError(name, "the export 'memory' is not a memory")
    known = (*abi.COMMON_EXPORTS, *abi.HOOK_EXPORTS)
    present = frozenset(e for e in known if e in exports)
    i32 = wasmtime.ValType.i32()
    for export in present:
        ty = exports[export]
        params, results = abi.wasm_params(export)
        ok = (
            isinstance(ty, wasmtime.FuncType)
            and [str(p) for p in ty.params] == [str(i32)] * params
            and [str(r) for r in ty.results] == [str(i32)] * results
        )
        if not ok:
            raise PluginLoadError(
                name,
                f"the export {export!r} does not have the ABI signature "
                f"({params} i32 parameters, {results} i32 results); see weaviate_plugin.h",
            )
    for imp in module.imports:
        allowed = imp.module == "wasi_snapshot_preview1" or (
            imp.module == abi.EMIT_MODULE and imp.name == abi.EMIT_NAME
        )
        if not allowed:
            raise PluginLoadError(
                name,
                f"the module imports {imp.module}.{imp.name}, which this host does not "
                "provide (only WASI preview1 and weaviate.wv_emit)",
            )
    return present
