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
  engine's epoch every :data:`TICK` seconds): the call's deadline, else the plugin's
  default (``spec.timeout``, else the manager's ``default_timeout``); no deadline
  (``None``) arms no epoch deadline at all (:data:`NO_DEADLINE`);
* gives the module WASI with nothing in it -- no arguments, no environment, no files
  -- except the environment variables named in ``spec.permissions.env`` and the
  directories in ``spec.permissions.directories``; its stdout and stderr go to the
  logger ``weaviate_ext.plugin.<name>`` (:mod:`.cabi.wasm_log`: read off the call path);
* calls exports through the wasmtime C API (:mod:`.cabi.capi`, about 3 µs a call)
  rather than wasmtime-py's ``Func.__call__`` (about 60 µs), falling back to the latter
  (with a log line) where the C API path is unavailable.
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import queue
import struct
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import numpy.typing as npt
import wasmtime

from weaviate_ext.bridges.cabi import abi, capi
from weaviate_ext.bridges.cabi.backend import Arg, Emit, Fail, VectorMany, VectorOne
from weaviate_ext.bridges.cabi.capi import CApi, FastInstance, FastPathUnavailable, RawTrap
from weaviate_ext.bridges.cabi.plugins import PLUGIN_CLASSES, CAbiPlugin
from weaviate_ext.bridges.cabi.wasm_log import LogStream
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
    trap_handlers,
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
    "NO_DEADLINE",
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

NO_DEADLINE = 1 << 62
"""The epoch deadline (in ticks from now) armed for a call without a deadline: never
reached (at :data:`TICK` seconds a tick, over a billion years), and far from wrapping
wasmtime's u64 epoch arithmetic."""


def ticks(seconds: float | None) -> int:
    """Epoch ticks for ``seconds`` from now (at least one, plus one of slack);
    :data:`NO_DEADLINE` for ``None`` (no deadline)."""
    if seconds is None or math.isinf(seconds):
        return NO_DEADLINE
    return max(1, math.ceil(seconds / TICK)) + 1


MAX_POOL = 8

# -- instances ----------------------------------------------------------------------------


class WasmInstance:
    """One instantiated module in its own store: a :class:`Session` for one call at a time.

    Exports are called through the C API fast path (:mod:`.cabi.capi`) when it is
    available, else through wasmtime-py's ``Func.__call__``; both raise traps (a
    :class:`~.cabi.capi.RawTrap` or a ``wasmtime.Trap``) that the backend's session turns
    into the framework's errors."""

    def __init__(self, backend: WasmBackend) -> None:
        self.backend = backend
        eng = engine()
        store = self.store = wasmtime.Store(eng)
        if backend.memory_limit is not None:
            store.set_limits(memory_size=backend.memory_limit)
        store.set_epoch_deadline(ticks(backend.timeout))
        logger = logging.getLogger(f"weaviate_ext.plugin.{backend.name}")
        self.stdout = LogStream(logger, logging.INFO, "stdout")
        self.stderr = LogStream(logger, logging.WARNING, "stderr")
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
        self.fast: FastInstance | None = None
        self._vectorize: Callable[..., int] | None = None
        self._into: Callable[..., int] | None = None
        if backend.capi is not None:
            try:
                signatures = {e: abi.wasm_params(e) for e in backend.exports}
                self.fast = FastInstance(backend.capi, store, memory, self.funcs, signatures)
            except FastPathUnavailable as exc:
                backend.fast_path_failed(str(exc))
            else:
                if self.fast.has("wv_vectorize_batch"):
                    self._vectorize = self.fast.bind("wv_vectorize_batch")
                if self.fast.has("wv_vectorize_into"):
                    self._into = self.fast.bind("wv_vectorize_into")
        initialize = self.funcs.get("_initialize")
        if initialize is not None:
            initialize(store)
        version = self._invoke("wv_abi_version", ()) or 0
        abi.check_abi_version(backend.name, version & 0xFFFFFFFF)
        self.scratch = self._alloc(8)
        self.inbuf = 0
        self.incap = 0
        self._armed_ticks = self._armed_epoch = -1

    @property
    def fast_path(self) -> bool:
        """Whether calls go through the C API fast path."""
        return self.fast is not None

    def _invoke(self, export: str, params: Sequence[int]) -> int | None:
        """Call ``export`` with u32 ``params`` on whichever path this instance uses."""
        fast = self.fast
        if fast is not None:
            return fast.call(export, params)
        signed = [p - (1 << 32) if p >= 1 << 31 else p for p in params]
        result = self.funcs[export](self.store, *signed)
        return None if result is None else int(result)

    def set_deadline(self, ticks: int) -> None:
        """Interrupt the next calls ``ticks`` epoch ticks from now.

        Re-arming the same ``ticks`` within the same tick is skipped (the deadline in
        force is then at most the one tick early that every deadline's slack covers):
        calls in a tight loop do not pay for it each time."""
        epoch = ticker.epoch
        if ticks == self._armed_ticks and epoch == self._armed_epoch:
            return
        fast = self.fast
        if fast is not None:
            fast.set_deadline(ticks)
        else:
            self.store.set_epoch_deadline(ticks)
        self._armed_ticks = ticks
        self._armed_epoch = epoch

    # -- memory ---------------------------------------------------------------------------

    def _alloc(self, size: int) -> int:
        ptr = (self._invoke("wv_alloc", (size,)) or 0) & 0xFFFFFFFF
        if ptr == 0:
            raise ResourceLimitExceeded(
                self.backend.name, "wv_alloc", f"could not allocate {size} bytes for inputs"
            )
        return ptr

    def _memory(self, end: int = 0) -> memoryview:
        """Linear memory as bytes, at least up to ``end`` when memory is that large.

        The fast path's view is widened only when ``end`` falls outside it (memory
        grows in place, see :mod:`.cabi.wasm_module`); wasmtime-py's is made anew."""
        fast = self.fast
        if fast is not None:
            if end > fast.size:
                fast.refresh()
            return fast.mem
        pointer = self.memory.data_ptr(self.store)
        size = self.memory.data_len(self.store)
        base = ctypes.addressof(pointer.contents)
        return memoryview((ctypes.c_ubyte * size).from_address(base)).cast("B")

    def _view(self, mem: memoryview, ptr: int, length: int, what: str) -> memoryview:
        size = len(mem)
        if ptr + length > size:
            raise PluginOutputError(
                self.backend.name,
                what,
                f"returned {length} bytes at address {ptr:#x}, outside its memory of {size} bytes",
            )
        return mem[ptr : ptr + length]

    def _reserve(self, need: int) -> None:
        if self.inbuf:
            self._invoke("wv_free", (self.inbuf, self.incap))
            self.inbuf = self.incap = 0
        capacity = max(need, 4096)
        self.inbuf = self._alloc(capacity)
        self.incap = capacity

    # -- Session ---------------------------------------------------------------------------

    def call(self, export: str, args: Sequence[Arg]) -> int:
        """Write the buffers into the input area, call the export, return its status."""
        need = 0
        for value in args:
            if not isinstance(value, int):
                need += (len(value) + 7) & ~7
        if need > self.incap:
            self._reserve(need)
        fast = self.fast
        mem = self._memory(self.inbuf + need)
        scratch = self.scratch
        params: list[int] = []
        offset = self.inbuf
        index = 0
        for kind in abi.HOOK_EXPORTS[export]:
            if kind == "o":
                params.append(scratch)
                params.append(scratch + 4)
                continue
            value = args[index]
            index += 1
            if isinstance(value, int):
                params.append(value & 0xFFFFFFFF)
            else:
                size = len(value)
                mem[offset : offset + size] = value
                params.append(offset)
                params.append(size)
                offset += (size + 7) & ~7
        mem[scratch : scratch + 8] = _ZERO8
        if fast is not None:
            return fast.call(export, params) or 0
        return self._invoke(export, params) or 0

    def vectors(self, packed: bytes, count: int, hook: str, fail: Fail) -> npt.NDArray[np.float32]:
        """``wv_vectorize_batch`` (see :meth:`WasmBackend.vectors`): :meth:`call` and
        :meth:`output` for one buffer and a count, inlined; the output is bounds-checked
        and copied once out of linear memory into the array."""
        fast, vectorize = self.fast, self._vectorize
        if fast is None or vectorize is None:
            status = self.call("wv_vectorize_batch", (packed, count))
            if status < 0:
                fail(self, hook, status)
            view = self.output()
            size = view.nbytes
            if size == 0 or count == 0 or size % (4 * count):
                raise abi.vector_bytes_error(self.backend.name, hook, size, count)
            return np.frombuffer(view, _F4).copy()
        length = len(packed)
        need = (length + 7) & ~7
        if need > self.incap:
            self._reserve(need)
        inbuf = self.inbuf
        if inbuf + need > fast.size:
            fast.refresh()
        mem = fast.mem
        mem[inbuf : inbuf + length] = packed
        scratch = self.scratch
        _OUT.pack_into(mem, scratch, 0, 0)
        result = vectorize(inbuf, length, count, scratch, scratch + 4)
        if result < 0:
            fail(self, hook, result)
        ptr, size = _OUT.unpack_from(mem, scratch)
        if size == 0 or count == 0 or size % (4 * count):
            raise abi.vector_bytes_error(self.backend.name, hook, size, count)
        if ptr + size > fast.size:
            fast.refresh()  # the call grew memory
            mem = fast.mem
            if ptr + size > fast.size:
                self._view(mem, ptr, size, "output")  # raises
        return np.frombuffer(mem, _F4, size >> 2, ptr).copy()

    def vectors_into(
        self, texts: bytes, count: int, dims: int, fail: Fail, one: bool = False
    ) -> npt.NDArray[np.float32]:
        """``wv_vectorize_into``: the joined texts and room for the vectors in one input
        area of linear memory, the vectors copied once out of it into the array
        (``(count, dims)``; ``one``: the single vector, ``(dims,)``)."""
        length = len(texts)
        need = (length + 7) & ~7
        floats = count * dims
        total = need + 4 * floats
        if total > self.incap:
            self._reserve(total)
        inbuf = self.inbuf
        outbuf = inbuf + need
        fast, into = self.fast, self._into
        if fast is None or into is None:
            mem = self._memory(inbuf + total)
            mem[inbuf : inbuf + length] = texts
            status = self._invoke("wv_vectorize_into", (inbuf, length, count, outbuf, floats))
            status = status or 0
            mem = self._memory(inbuf + total)
        else:
            if inbuf + total > fast.size:
                fast.refresh()
            mem = fast.mem
            mem[inbuf : inbuf + length] = texts
            # (linear memory never moves: mem stays valid if the call grows it)
            status = into(inbuf, length, count, outbuf, floats)
        if status < 0:
            fail(self, "vectorize_batch", status)
        flat = np.frombuffer(mem, _F4, floats, outbuf)
        return flat.copy() if one else flat.reshape(count, dims).copy()

    def output(self) -> memoryview:
        """The last call's output, bounds-checked against linear memory (not copied)."""
        mem = self._memory()
        ptr, length = _OUT.unpack_from(mem, self.scratch)
        if ptr + length > len(mem):
            mem = self._memory(ptr + length)  # the call grew memory
        return self._view(mem, ptr, length, "output")

    def last_error(self) -> str:
        """``wv_last_error``, decoded (invalid UTF-8 replaced)."""
        scratch = self.scratch
        self._memory()[scratch : scratch + 8] = _ZERO8
        self._invoke("wv_last_error", (scratch, scratch + 4))
        mem = self._memory()
        ptr, length = _OUT.unpack_from(mem, scratch)
        mem = self._memory(ptr + min(length, 4096))
        view = self._view(mem, ptr, min(length, 4096), "wv_last_error")
        return bytes(view).decode("utf-8", "replace")

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
        """Log what the plugin printed so far (successful calls leave it to the pump)."""
        self.stdout.flush()
        self.stderr.flush()

    def __del__(self) -> None:
        self.stdout.close()
        self.stderr.close()


_ZERO8 = bytes(8)
_BATCH = "vectorize_batch"
"""The hook the vectorizer exports are called for (errors name it)."""
Vector = npt.NDArray[np.float32]
_F4 = np.dtype("<f4")
_monotonic = time.monotonic
_OUT = struct.Struct("<II")
"""``out_ptr`` and ``out_len`` in the instance's scratch area."""


class _Call:
    """The context manager :meth:`WasmBackend.session` returns (a class rather than a
    generator: it runs on every call)."""

    __slots__ = ("backend", "deadline", "hook", "instance", "timeout")

    def __init__(self, backend: WasmBackend, hook: str, deadline: Deadline | None) -> None:
        self.backend = backend
        self.hook = hook
        self.deadline = deadline
        self.instance: WasmInstance | None = None
        self.timeout: float | None = backend.timeout

    def __enter__(self) -> WasmInstance:
        backend, deadline = self.backend, self.deadline
        # the call's deadline; a hook called without one gets the plugin's default
        timeout = backend.timeout if deadline is None else deadline.timeout
        self.timeout = timeout
        if timeout is None:  # no deadline: wait for an instance, arm no epoch deadline
            remaining: float | None = None
        elif deadline is None:
            remaining = timeout
        else:
            remaining = deadline.remaining()
        try:
            instance = backend._idle.get(
                timeout=None if remaining is None else max(remaining, 0.001)
            )
        except queue.Empty:
            raise DeadlineExceeded(
                backend.name,
                self.hook,
                f"no instance became free within its deadline of {timeout:g}s",
            ) from None
        if instance is None:
            try:
                instance = backend._initialised(backend._instantiate())
            except PluginLoadError as exc:
                backend._release(None)
                why = exc.describe(known=backend.name, reference=False)
                raise PluginCrashed(
                    backend.name, self.hook, f"cannot replace an instance: {why}"
                ) from None
            except BaseException:
                backend._release(None)
                raise
        self.instance = instance
        instance.set_deadline(
            NO_DEADLINE if remaining is None else max(1, math.ceil(remaining / TICK)) + 1
        )  # ticks(remaining), inlined: it runs on every call
        return instance

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        backend, instance = self.backend, self.instance
        assert instance is not None
        broken = isinstance(exc, _TRAPS)
        try:
            if exc is not None:
                instance.flush()  # the plugin's last words before the error
        finally:
            backend._release(None if broken else instance)
        if broken:
            assert isinstance(exc, Exception)
            raise backend._trap_error(instance, self.hook, exc, self.timeout) from None


_TRAPS = (wasmtime.Trap, wasmtime.WasmtimeError, RawTrap)


class WasmBackend:
    """A compiled plugin and its pool of instances."""

    isolation = "sandboxed (wasmtime: WASI deny-by-default, memory limit, call deadline)"
    uses_deadline = True

    def __init__(
        self,
        manifest: Manifest,
        module: wasmtime.Module,
        exports: frozenset[str],
        timeout: float | None = None,
    ):
        spec = manifest.spec
        self.name = manifest.name
        self.dims = spec.capabilities.dimensions
        self.module = module
        self.exports = exports
        self.memory_limit = spec.resources.memory
        cpu = spec.resources.cpu
        self.size = 2 if cpu is None else max(1, min(MAX_POOL, math.ceil(cpu)))
        self.timeout = timeout
        """The plugin's default deadline in seconds (``spec.timeout``, else the manager's
        ``default_timeout``; ``None``: none): for starting and initialising instances, and
        for a hook called without a deadline."""
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
        self.capi: CApi | None = None
        self._fast_path_logged = False
        try:
            self.capi = capi.load()
        except FastPathUnavailable as exc:
            self.fast_path_failed(str(exc))
        ticker.acquire()
        trap_handlers.check()
        try:
            self._first: WasmInstance | None = self._instantiate()
        except BaseException:
            ticker.release()
            raise

    @staticmethod
    def ticks(seconds: float | None) -> int:
        """Epoch ticks for ``seconds`` from now (:func:`ticks`)."""
        return ticks(seconds)

    def fast_path_failed(self, reason: str) -> None:
        """Use wasmtime-py's calls from now on, and say why (once per backend)."""
        if self.capi is not None or not self._fast_path_logged:
            log.info(
                "plugin %s: wasm calls use wasmtime-py (C API fast path unavailable: %s)",
                self.name,
                reason,
            )
        self._fast_path_logged = True
        self.capi = None

    @property
    def fast_path(self) -> bool:
        """Whether new instances call their exports through the C API fast path."""
        return self.capi is not None

    def _instantiate(self) -> WasmInstance:
        try:
            return WasmInstance(self)
        except (PluginLoadError, PluginCallError):
            raise
        except (wasmtime.Trap, RawTrap) as exc:
            raise PluginLoadError(
                self.name, f"trapped while starting: {trap_reason(exc)}"
            ) from None
        except wasmtime.WasmtimeError as exc:
            raise PluginLoadError(self.name, f"cannot instantiate: {first_line(exc)}") from None

    def _initialised(self, instance: WasmInstance) -> WasmInstance:
        assert self._config is not None
        instance.set_deadline(ticks(self.timeout))
        try:
            status = instance.call("wv_init", (self._config,))
        except (wasmtime.Trap, wasmtime.WasmtimeError, RawTrap) as exc:
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
                instance = self._idle.get_nowait()
            except queue.Empty:
                break
            if instance is not None:
                instance.flush()  # what the pump has not logged yet
        ticker.release()

    def _near_limit(self, instance: WasmInstance) -> bool:
        limit = self.memory_limit
        if limit is None:
            return False
        used = instance.memory.data_len(instance.store)
        return used >= limit * 0.9 or used + 4 * 1024 * 1024 >= limit

    def _trap_error(
        self, instance: WasmInstance, hook: str, exc: Exception, timeout: float | None
    ) -> PluginCallError:
        interrupted = (
            exc.interrupt
            if isinstance(exc, RawTrap)
            else isinstance(exc, wasmtime.Trap) and exc.trap_code == wasmtime.TrapCode.INTERRUPT
        )
        if interrupted:
            limit = "its deadline" if timeout is None else f"its deadline of {timeout:g}s"
            return DeadlineExceeded(self.name, hook, f"interrupted at {limit}")
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

    def vectors(
        self, packed: bytes, count: int, hook: str, deadline: Deadline | None, fail: Fail
    ) -> npt.NDArray[np.float32]:
        """``wv_vectorize_batch`` on an instance of the pool, within ``deadline`` (see
        :meth:`_on_instance`)."""
        return self._on_instance(hook, deadline, WasmInstance.vectors, packed, count, hook, fail)

    def vectorizer_into(self, fail: Fail) -> tuple[VectorOne, VectorMany] | None:
        """``wv_vectorize_into`` on an instance of the pool (see :meth:`_on_instance`):
        the texts written once into linear memory, the vectors copied once out of it
        (see :meth:`.backend.Backend.vectorizer_into`)."""
        dims = self.dims
        if "wv_vectorize_into" not in self.exports or not dims:
            return None
        on_instance, work, join = self._on_instance, WasmInstance.vectors_into, abi.join_texts

        def vectorize_text(text: str, deadline: Deadline | None) -> Vector:
            try:
                data = text.encode()
            except UnicodeEncodeError:
                data = abi.utf8(text, "text")
            return on_instance(_BATCH, deadline, work, data, 1, dims, fail, True)

        def vectorize_batch(texts: Sequence[str], deadline: Deadline | None) -> Vector:
            data = join(texts)
            return on_instance(_BATCH, deadline, work, data, len(texts), dims, fail, False)

        return vectorize_text, vectorize_batch

    def _on_instance(
        self,
        hook: str,
        deadline: Deadline | None,
        work: Callable[..., npt.NDArray[np.float32]],
        *args: Any,
    ) -> npt.NDArray[np.float32]:
        """``work(instance, *args)`` on an instance of the pool, within ``deadline``.

        The common case -- a deadline, an idle initialised instance -- is
        :meth:`session`'s ``_Call`` inlined (it runs on every call): the same epoch
        deadline armed, the same release; any exception goes through
        ``_Call.__exit__`` (flush, traps to errors, a trapped instance replaced). Anything
        else (no deadline, waiting for an instance, replacing one) takes ``_Call``."""
        instance: WasmInstance | None = None
        if deadline is not None and deadline.timeout is not None:
            idle = self._idle
            try:
                instance = idle.get_nowait()
            except queue.Empty:
                pass
            else:
                if instance is None:  # a slot to refill: _Call makes the instance
                    idle.put(None)
        if instance is None or deadline is None:
            with _Call(self, hook, deadline) as taken:
                return work(taken, *args)
        try:
            remaining = deadline.at - _monotonic()  # ticks(remaining), as in _Call
            instance.set_deadline(max(1, math.ceil(remaining / TICK)) + 1 if remaining > 0 else 2)
            out = work(instance, *args)
        except BaseException as exc:
            call = _Call(self, hook, deadline)
            call.instance = instance
            call.timeout = deadline.timeout
            call.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._release(instance)
        return out

    def session(self, hook: str, deadline: Deadline | None) -> AbstractContextManager[WasmInstance]:
        """An instance for one call, interrupted at the deadline; traps become errors
        and the instance that trapped is replaced."""
        return _Call(self, hook, deadline)

    def _release(self, instance: WasmInstance | None) -> None:
        """Give an instance back to the pool (``None``: make a fresh one next time)."""
        if not self._closed:
            self._idle.put(instance)


@hookimpl
def weaviate_ext_make_plugin(
    manifest: Manifest, config: PluginConfig, timeout: float | None
) -> object | None:
    """Compile (or fetch from the cache) and instantiate a ``runtime: wasm`` plugin;
    ``timeout`` (``None``: no deadline) bounds starting it and each call without one."""
    if manifest.spec.runtime != RUNTIME:
        return None
    name, kind = manifest.name, manifest.spec.type
    data, digest = abi.read_binary(name, manifest.binary_path, manifest.spec.sha256)
    started = time.perf_counter()
    module, hit = compile_module(name, data, digest)
    exports = check_module(name, kind, module)
    backend = WasmBackend(manifest, module, exports, timeout)
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


@hookimpl
def weaviate_ext_isolation(manifest: Manifest, plugin: object) -> str | None:
    """A wasm plugin runs in wasmtime's sandbox: :attr:`WasmBackend.isolation`."""
    if manifest.spec.runtime != RUNTIME:
        return None
    return plugin.isolation if isinstance(plugin, CAbiPlugin) else WasmBackend.isolation
