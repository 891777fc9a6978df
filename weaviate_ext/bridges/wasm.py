"""The ``wasm`` runtime: WASI reactor modules in wasmtime, sandboxed.

A plugin is a ``.wasm`` module implementing ``hookspecs/weaviate_plugin.h``. The bridge:

* compiles it once per binary with one shared :class:`wasmtime.Engine` and caches the
  compiled code on disk, keyed by the binary's sha256, the wasmtime version and the
  engine settings (``$WEAVIATE_EXT_CACHE_DIR``, else ``$XDG_CACHE_HOME/weaviate-ext/wasm``,
  else ``~/.cache/weaviate-ext/wasm``), so a second load does not recompile;
* checks the exports and their signatures, the imports and ``wv_abi_version`` at load;
* runs a small pool of instances (``resources.cpu`` of them, 2 when unset, at most 8),
  each in its own store, since a store is used by one thread at a time; an instance
  that traps is discarded and a fresh one takes its place on the next call;
* limits each instance's linear memory to ``resources.memory``;
* interrupts a call at its deadline (epoch interruption: a ticker thread advances the
  engine's epoch every :data:`TICK` seconds);
* gives the module WASI with nothing in it -- no arguments, no environment, no files
  -- except the environment variables named in ``spec.permissions.env`` and the
  directories in ``spec.permissions.directories``; its stdout and stderr go to the
  logger ``weaviate_ext.plugin.<name>``.
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import queue
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import wasmtime

from weaviate_ext.bridges.cabi import abi
from weaviate_ext.bridges.cabi.backend import Arg, Emit
from weaviate_ext.bridges.cabi.plugins import PLUGIN_CLASSES, CAbiPlugin
from weaviate_ext.bridges.cabi.wasm_module import (
    TICK,
    WASMTIME_VERSION,
    cache_dir,
    cache_path,
    check_module,
    compile_module,
    engine,
    first_line,
    ticker,
    trap_reason,
)
from weaviate_ext.deadline import Deadline
from weaviate_ext.errors import (
    DeadlineExceeded,
    PluginCallError,
    PluginCrashed,
    PluginLoadError,
    PluginOutputError,
    ResourceLimitExceeded,
)
from weaviate_ext.hookspecs import hookimpl
from weaviate_ext.manifest import Manifest, PluginConfig

__all__ = [
    "DEFAULT_TIMEOUT",
    "RUNTIME",
    "TICK",
    "WASMTIME_VERSION",
    "WasmBackend",
    "WasmInstance",
    "cache_dir",
    "cache_path",
    "compile_module",
    "weaviate_ext_make_plugin",
]

RUNTIME = "wasm"

log = logging.getLogger("weaviate_ext")

DEFAULT_TIMEOUT = 30.0
"""Seconds a call may run when neither the call, the manifest nor the manager says."""

MAX_POOL = 8
LOG_LINE_LIMIT = 4096
"""A plugin's stdout/stderr line is cut at this many bytes in the log."""
LOG_READ_LIMIT = 1024 * 1024
"""At most this much of a plugin's output is logged per call."""

# -- instances ----------------------------------------------------------------------------


class _LogStream:
    """A plugin's stdout or stderr: a temporary file WASI writes to (already unlinked),
    read after each call and logged line by line.

    A file rather than a Python callback, so that wasmtime never calls into Python from
    its own threads (which can abort the process while the interpreter shuts down).
    """

    def __init__(self, logger: logging.Logger, level: int, stream: str) -> None:
        self.logger = logger
        self.level = level
        self.stream = stream
        fd, self.path = tempfile.mkstemp(prefix=f"weaviate-ext-{stream}-")
        self.reader = os.fdopen(fd, "rb")
        self.pending = b""

    def opened(self) -> None:
        """WASI has opened the file: unlink it, only the two descriptors remain."""
        os.unlink(self.path)

    def flush(self) -> None:
        """Log what the plugin wrote since the last flush (a last partial line too)."""
        data = self.pending + self.reader.read(LOG_READ_LIMIT)
        self.pending = b""
        lines = data.split(b"\n")
        for line in lines:
            if line:
                self._log(line[:LOG_LINE_LIMIT])

    def close(self) -> None:
        self.reader.close()

    def _log(self, line: bytes) -> None:
        self.logger.log(self.level, "[%s] %s", self.stream, line.decode("utf-8", "replace"))


class WasmInstance:
    """One instantiated module in its own store: a :class:`Session` for one call at a time."""

    def __init__(self, backend: WasmBackend) -> None:
        self.backend = backend
        eng = engine()
        store = self.store = wasmtime.Store(eng)
        if backend.memory_limit is not None:
            store.set_limits(memory_size=backend.memory_limit)
        store.set_epoch_deadline(backend.ticks(backend.setup_timeout))
        logger = logging.getLogger(f"weaviate_ext.plugin.{backend.name}")
        self.stdout = _LogStream(logger, logging.INFO, "stdout")
        self.stderr = _LogStream(logger, logging.WARNING, "stderr")
        wasi = wasmtime.WasiConfig()
        wasi.env = backend.env
        for host, guest, writable in backend.directories:
            wasi.preopen_dir(host, guest, writable)
        try:
            wasi.stdout_file = self.stdout.path
            wasi.stderr_file = self.stderr.path
            store.set_wasi(wasi)
        finally:
            self.stdout.opened()
            self.stderr.opened()
        linker = wasmtime.Linker(eng)
        linker.define_wasi()
        i32 = wasmtime.ValType.i32()
        emit_type = wasmtime.FuncType([i32, i32], [i32])
        linker.define_func(abi.EMIT_MODULE, abi.EMIT_NAME, emit_type, self._emit, True)
        self._emit_to: Emit | None = None
        instance = linker.instantiate(store, backend.module)
        exports = instance.exports(store)
        memory = exports["memory"]
        assert isinstance(memory, wasmtime.Memory)
        self.memory = memory
        self.funcs: dict[str, wasmtime.Func] = {}
        for export in (*backend.exports, "_initialize"):
            func = exports.get(export) if export == "_initialize" else exports[export]
            if isinstance(func, wasmtime.Func):
                self.funcs[export] = func
        initialize = self.funcs.get("_initialize")
        if initialize is not None:
            initialize(store)
        abi.check_abi_version(backend.name, self.funcs["wv_abi_version"](store) & 0xFFFFFFFF)
        self.scratch = self._alloc(8)
        self.inbuf = 0
        self.incap = 0

    # -- memory ---------------------------------------------------------------------------

    def _alloc(self, size: int) -> int:
        ptr = int(self.funcs["wv_alloc"](self.store, size)) & 0xFFFFFFFF
        if ptr == 0:
            raise ResourceLimitExceeded(
                self.backend.name, "wv_alloc", f"could not allocate {size} bytes for inputs"
            )
        return ptr

    def _base(self) -> tuple[int, int]:
        pointer = self.memory.data_ptr(self.store)
        return ctypes.addressof(pointer.contents), self.memory.data_len(self.store)

    def _view(self, ptr: int, length: int, what: str) -> memoryview:
        base, size = self._base()
        if ptr + length > size:
            raise PluginOutputError(
                self.backend.name,
                what,
                f"returned {length} bytes at address {ptr:#x}, outside its memory of {size} bytes",
            )
        if length == 0:
            return memoryview(b"")
        return memoryview((ctypes.c_ubyte * length).from_address(base + ptr)).cast("B")

    def _out(self, what: str) -> tuple[int, int]:
        raw = bytes(self._view(self.scratch, 8, what))
        return int.from_bytes(raw[:4], "little"), int.from_bytes(raw[4:], "little")

    # -- Session ---------------------------------------------------------------------------

    def call(self, export: str, args: Sequence[Arg]) -> int:
        """Write the buffers into the input area, call the export, return its status."""
        kinds = abi.HOOK_EXPORTS[export]
        buffers = [a for a in args if isinstance(a, bytes)]
        need = sum((len(b) + 7) & ~7 for b in buffers)
        if need > self.incap:
            if self.inbuf:
                self.funcs["wv_free"](self.store, self.inbuf, self.incap)
                self.inbuf = self.incap = 0
            capacity = max(need, 4096)
            self.inbuf = self._alloc(capacity)
            self.incap = capacity
        base, _ = self._base()
        params: list[int] = []
        offset = self.inbuf
        values = iter(args)
        for kind in kinds:
            if kind == "o":
                params += (self.scratch, self.scratch + 4)
                continue
            value = next(values)
            if kind == "i":
                params.append(int(value) if isinstance(value, int) else 0)
            else:
                assert isinstance(value, bytes)
                ctypes.memmove(base + offset, value, len(value))
                params += (offset, len(value))
                offset += (len(value) + 7) & ~7
        ctypes.memmove(base + self.scratch, b"\0" * 8, 8)
        signed = [p - (1 << 32) if p >= 1 << 31 else p for p in params]
        return int(self.funcs[export](self.store, *signed))

    def output(self) -> memoryview:
        """The last call's output, bounds-checked against linear memory."""
        ptr, length = self._out("output")
        return self._view(ptr, length, "output")

    def last_error(self) -> str:
        """``wv_last_error``, decoded (invalid UTF-8 replaced)."""
        ctypes.memmove(self._base()[0] + self.scratch, b"\0" * 8, 8)
        self.funcs["wv_last_error"](self.store, self.scratch, self.scratch + 4)
        ptr, length = self._out("wv_last_error")
        return bytes(self._view(ptr, min(length, 4096), "wv_last_error")).decode("utf-8", "replace")

    def set_emit(self, emit: Emit | None) -> None:
        """Where ``wv_emit`` chunks go during the next call."""
        self._emit_to = emit

    def _emit(self, caller: wasmtime.Caller, ptr: int, length: int) -> int:
        sink = self._emit_to
        memory = caller.get("memory")
        if sink is None or not isinstance(memory, wasmtime.Memory):
            return 1
        ptr &= 0xFFFFFFFF
        length &= 0xFFFFFFFF
        if ptr + length > memory.data_len(caller):
            return 1
        return sink(bytes(memory.read(caller, ptr, ptr + length)))

    def flush(self) -> None:
        """Log what the plugin printed during the last call."""
        self.stdout.flush()
        self.stderr.flush()

    def __del__(self) -> None:
        self.stdout.close()
        self.stderr.close()


class WasmBackend:
    """A compiled plugin and its pool of instances."""

    isolation = "sandboxed (wasmtime: WASI deny-by-default, memory limit, call deadline)"

    def __init__(self, manifest: Manifest, module: wasmtime.Module, exports: frozenset[str]):
        spec = manifest.spec
        self.name = manifest.name
        self.module = module
        self.exports = exports
        self.memory_limit = spec.resources.memory
        cpu = spec.resources.cpu
        self.size = 2 if cpu is None else max(1, min(MAX_POOL, math.ceil(cpu)))
        self.setup_timeout = spec.timeout or DEFAULT_TIMEOUT
        self.env = [(k, os.environ[k]) for k in spec.permissions.env if k in os.environ]
        self.directories: list[tuple[str, str, bool]] = []
        for grant in spec.permissions.directories:
            host = (manifest.directory / grant.host).resolve()
            if not host.is_dir():
                raise PluginLoadError(
                    self.name, f"spec.permissions.directories: {host} is not a directory"
                )
            self.directories.append((str(host), grant.guest, grant.mode == "rw"))
        self._idle: queue.SimpleQueue[WasmInstance | None] = queue.SimpleQueue()
        self._config: bytes | None = None
        self._closed = False
        ticker.acquire()
        try:
            self._first: WasmInstance | None = self._instantiate()
        except BaseException:
            ticker.release()
            raise

    @staticmethod
    def ticks(seconds: float) -> int:
        """Epoch ticks for ``seconds`` from now (at least one)."""
        return max(1, math.ceil(seconds / TICK)) + 1

    def _instantiate(self) -> WasmInstance:
        try:
            return WasmInstance(self)
        except (PluginLoadError, PluginCallError):
            raise
        except wasmtime.Trap as exc:
            raise PluginLoadError(
                self.name, f"trapped while starting: {trap_reason(exc)}"
            ) from None
        except wasmtime.WasmtimeError as exc:
            raise PluginLoadError(self.name, f"cannot instantiate: {first_line(exc)}") from None

    def _initialised(self, instance: WasmInstance) -> WasmInstance:
        assert self._config is not None
        instance.store.set_epoch_deadline(self.ticks(self.setup_timeout))
        try:
            status = instance.call("wv_init", (self._config,))
        except wasmtime.Trap as exc:
            raise PluginLoadError(self.name, f"wv_init trapped: {trap_reason(exc)}") from None
        finally:
            instance.flush()
        if status < 0:
            raise PluginLoadError(self.name, f"wv_init failed: {instance.last_error()}")
        return instance

    def setup(self, config: bytes) -> None:
        """``wv_init`` the first instance, then pre-instantiate the rest of the pool."""
        self._config = config
        first, self._first = self._first, None
        assert first is not None
        self._idle.put(self._initialised(first))
        for _ in range(self.size - 1):
            self._idle.put(self._initialised(self._instantiate()))

    def close(self) -> None:
        """Drop the instances (their memory goes with their stores) and the ticker."""
        if self._closed:
            return
        self._closed = True
        self._first = None
        while True:
            try:
                self._idle.get_nowait()
            except queue.Empty:
                break
        ticker.release()

    def _near_limit(self, instance: WasmInstance) -> bool:
        limit = self.memory_limit
        if limit is None:
            return False
        used = instance.memory.data_len(instance.store)
        return used >= limit * 0.9 or used + 4 * 1024 * 1024 >= limit

    def _trap_error(
        self, instance: WasmInstance, hook: str, exc: Exception, timeout: float
    ) -> PluginCallError:
        if isinstance(exc, wasmtime.Trap) and exc.trap_code == wasmtime.TrapCode.INTERRUPT:
            return DeadlineExceeded(self.name, hook, f"interrupted at its deadline of {timeout:g}s")
        if self._near_limit(instance):
            return ResourceLimitExceeded(
                self.name,
                hook,
                f"reached its memory limit of {self.memory_limit} bytes "
                f"(resources.memory) and stopped: {trap_reason(exc)}",
            )
        return PluginCrashed(
            self.name, hook, f"trapped: {trap_reason(exc)}; the instance was replaced"
        )

    @contextmanager
    def session(self, hook: str, deadline: Deadline | None) -> Iterator[WasmInstance]:
        """An instance for one call, interrupted at the deadline; traps become errors."""
        timeout = DEFAULT_TIMEOUT
        if deadline is not None and deadline.timeout is not None:
            timeout = deadline.timeout
        remaining = (
            timeout if deadline is None or deadline.timeout is None else deadline.remaining()
        )
        try:
            instance = self._idle.get(timeout=max(remaining, 0.001))
        except queue.Empty:
            raise DeadlineExceeded(
                self.name, hook, f"no instance became free within its deadline of {timeout:g}s"
            ) from None
        broken = False
        try:
            if instance is None:
                instance = self._initialised(self._instantiate())
            instance.store.set_epoch_deadline(self.ticks(remaining))
            yield instance
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            broken = True
            assert instance is not None
            raise self._trap_error(instance, hook, exc, timeout) from None
        except PluginLoadError as exc:
            broken = True
            raise PluginCrashed(self.name, hook, f"cannot replace an instance: {exc}") from None
        finally:
            if instance is not None:
                instance.flush()
            if not self._closed:
                self._idle.put(None if broken or instance is None else instance)


@hookimpl
def weaviate_ext_make_plugin(manifest: Manifest, config: PluginConfig) -> object | None:
    """Compile (or fetch from the cache) and instantiate a ``runtime: wasm`` plugin."""
    if manifest.spec.runtime != RUNTIME:
        return None
    name, kind = manifest.name, manifest.spec.type
    data, digest = abi.read_binary(name, manifest.binary_path, manifest.spec.sha256)
    started = time.perf_counter()
    module, hit = compile_module(name, data, digest)
    exports = check_module(name, kind, module)
    backend = WasmBackend(manifest, module, exports)
    log.info(
        "plugin %s: wasm module %s (%s, %.1f ms), %d instance(s), memory limit %s",
        name,
        digest[:12],
        "from cache" if hit else "compiled",
        (time.perf_counter() - started) * 1000,
        backend.size,
        backend.memory_limit if backend.memory_limit is not None else "none",
    )
    plugin: CAbiPlugin = PLUGIN_CLASSES[kind](backend)
    return plugin
