"""The wasm bridge's fast call path: wasm exports called through the wasmtime C API.

wasmtime-py's ``Func.__call__`` spends ~30 µs per call in Python: it looks up the
function's type, builds a ``Val`` per argument, converts and unroots them (see
docs/design.md, "Wasm and native call path"). This module calls the same exports with
``wasmtime_func_call_unchecked`` from the shared library the ``wasmtime`` wheel ships
(``wasmtime/<platform>/_libwasmtime.so``, the one wasmtime-py itself has loaded), through
``cffi``, with one preallocated ``wasmtime_val_raw_t`` array per instance:

* each export's function handle is copied out of wasmtime-py's ``Func`` once, at
  instantiation, and its type is checked once there (all ``i32``, the ABI's counts),
  which is what makes the *unchecked* call safe;
* a trap or an error comes back as a :class:`RawTrap` (the trap or error object is read
  and freed here); an epoch interruption is flagged so the bridge reports a deadline;
* linear memory is exposed as one ``memoryview`` made once; after every call the data
  pointer and size are compared with the view's, and the view is made again when
  ``memory.grow`` changed them.

Everything else (engine, linker, WASI, store limits, instantiation) stays with
wasmtime-py. The path relies on the C API's struct layouts, so it is pinned to
:data:`PINNED_VERSION` (``setup.cfg`` pins the same version); with another version,
without the library or its symbols, or with ``WEAVIATE_EXT_WASM_FASTPATH=0``,
:func:`load` raises :class:`FastPathUnavailable` and the bridge falls back to
wasmtime-py's calls (with a log line).
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import os
import struct
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cffi  # type: ignore[import-untyped]
import wasmtime

PINNED_VERSION = "50.0.1"
"""The wasmtime (and wasmtime-py) version whose C API layouts this module declares."""

TRAP_CODE_INTERRUPT = 10
"""``WASMTIME_TRAP_CODE_INTERRUPT`` (epoch deadline reached) in wasmtime 50."""

WASM_I32 = 0
"""``WASM_I32`` of ``wasm_valkind_t``."""

SLOTS = 8
"""``wasmtime_val_raw_t`` slots per instance: more than any ABI export's parameters."""

CDEF = """
// The call is declared with the error result and the trap out-parameter as uintptr_t
// (the same ABI as wasmtime_error_t * and wasm_trap_t **): reading a Python int is
// cheaper than making a pointer object on every call.
typedef struct wasmtime_context wasmtime_context_t;
typedef struct wasm_trap_t wasm_trap_t;
typedef struct wasmtime_error wasmtime_error_t;
typedef struct wasm_functype_t wasm_functype_t;
typedef struct wasm_valtype_t wasm_valtype_t;
typedef struct { size_t size; uint8_t *data; } wasm_byte_vec_t;
typedef struct { size_t size; wasm_valtype_t **data; } wasm_valtype_vec_t;
typedef struct { uint64_t store_id; void *private_; } wasmtime_func_t;
typedef struct {
    struct { uint64_t store_id; uint32_t private1; } anon;
    uint32_t private2;
} wasmtime_memory_t;
typedef union {
    int32_t i32; int64_t i64; float f32; double f64; uint8_t v128[16];
    uint32_t anyref; uint32_t externref; uint32_t exnref; void *funcref;
} wasmtime_val_raw_t;

uintptr_t wasmtime_func_call_unchecked(wasmtime_context_t *, const wasmtime_func_t *,
    wasmtime_val_raw_t *, size_t, uintptr_t *);
wasm_functype_t *wasmtime_func_type(const wasmtime_context_t *, const wasmtime_func_t *);
const wasm_valtype_vec_t *wasm_functype_params(const wasm_functype_t *);
const wasm_valtype_vec_t *wasm_functype_results(const wasm_functype_t *);
uint8_t wasm_valtype_kind(const wasm_valtype_t *);
void wasm_functype_delete(wasm_functype_t *);
uint8_t *wasmtime_memory_data(const wasmtime_context_t *, const wasmtime_memory_t *);
size_t wasmtime_memory_data_size(const wasmtime_context_t *, const wasmtime_memory_t *);
void wasmtime_context_set_epoch_deadline(wasmtime_context_t *, uint64_t);
bool wasmtime_trap_code(const wasm_trap_t *, uint8_t *);
void wasm_trap_message(const wasm_trap_t *, wasm_byte_vec_t *);
void wasm_trap_delete(wasm_trap_t *);
void wasmtime_error_message(const wasmtime_error_t *, wasm_byte_vec_t *);
bool wasmtime_error_exit_status(const wasmtime_error_t *, int *);
void wasmtime_error_delete(wasmtime_error_t *);
void wasm_byte_vec_delete(wasm_byte_vec_t *);
"""

SYMBOLS = (
    "wasmtime_func_call_unchecked",
    "wasmtime_func_type",
    "wasm_functype_params",
    "wasm_functype_results",
    "wasm_valtype_kind",
    "wasm_functype_delete",
    "wasmtime_memory_data",
    "wasmtime_memory_data_size",
    "wasmtime_context_set_epoch_deadline",
    "wasmtime_trap_code",
    "wasm_trap_message",
    "wasm_trap_delete",
    "wasmtime_error_message",
    "wasmtime_error_exit_status",
    "wasmtime_error_delete",
    "wasm_byte_vec_delete",
)
"""Every C API function the fast path uses; all are resolved at :func:`load`."""

ENV_SWITCH = "WEAVIATE_EXT_WASM_FASTPATH"
"""Set to ``0`` to use wasmtime-py's calls instead of the fast path."""


class FastPathUnavailable(Exception):
    """The C API fast path cannot be used here (the message says why)."""


class RawTrap(Exception):
    """A trap or error out of a fast call: the same text wasmtime-py's ``Trap`` has."""

    def __init__(self, message: str, *, interrupt: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.interrupt = interrupt

    def __str__(self) -> str:
        return self.message


def library_path() -> Path:
    """The C API library wasmtime-py has loaded (``wasmtime._ffi.filename``)."""
    from wasmtime import _ffi

    return Path(_ffi.filename)


class CApi:
    """The cffi declarations and the resolved library."""

    def __init__(self, path: Path) -> None:
        version = importlib.metadata.version("wasmtime")
        if version != PINNED_VERSION:
            raise FastPathUnavailable(
                f"wasmtime {version} is installed; the fast path is pinned to {PINNED_VERSION}"
            )
        ffi = cffi.FFI()
        ffi.cdef(CDEF)
        try:
            lib = ffi.dlopen(str(path))
        except OSError as exc:
            raise FastPathUnavailable(f"cannot open {path}: {exc}") from None
        missing = []
        for symbol in SYMBOLS:
            try:
                getattr(lib, symbol)
            except (AttributeError, NotImplementedError):
                missing.append(symbol)
        if missing:
            raise FastPathUnavailable(f"{path.name} does not export {', '.join(missing)}")
        bindings = wasmtime._bindings
        for c_name, ctypes_type in (
            ("wasmtime_func_t", bindings.wasmtime_func_t),
            ("wasmtime_memory_t", bindings.wasmtime_memory_t),
            ("wasmtime_val_raw_t", bindings.wasmtime_val_raw_t),
        ):
            if ffi.sizeof(c_name) != ctypes.sizeof(ctypes_type):
                raise FastPathUnavailable(f"{c_name} layout differs from wasmtime-py's")
        self.ffi = ffi
        self.lib = lib
        self.path = path


_lock = threading.Lock()
_loaded: CApi | FastPathUnavailable | None = None


def load() -> CApi:
    """The C API (resolved once per process); :class:`FastPathUnavailable` if unusable."""
    global _loaded
    if os.environ.get(ENV_SWITCH, "1") == "0":
        raise FastPathUnavailable(f"disabled by {ENV_SWITCH}=0")
    with _lock:
        if _loaded is None:
            try:
                _loaded = CApi(library_path())
            except FastPathUnavailable as exc:
                _loaded = exc
            except Exception as exc:  # pragma: no cover - anything odd: use the slow path
                _loaded = FastPathUnavailable(f"{type(exc).__name__}: {exc}")
        if isinstance(_loaded, FastPathUnavailable):
            raise _loaded
        return _loaded


def reset() -> None:
    """Forget the loaded library (tests switch the path or the environment)."""
    global _loaded
    with _lock:
        _loaded = None


def _address(pointer: Any) -> int:
    return ctypes.cast(pointer, ctypes.c_void_p).value or 0


class FastInstance:
    """One instance's exports and memory, called through the C API.

    Used by one thread at a time (like its store). ``call`` returns the i32 result (or
    ``None`` for an export without one) and raises :class:`RawTrap`; ``mem`` is a
    ``memoryview`` over all of linear memory, valid until the next call."""

    def __init__(
        self,
        capi: CApi,
        store: wasmtime.Store,
        memory: wasmtime.Memory,
        funcs: Mapping[str, wasmtime.Func],
        signatures: Mapping[str, tuple[int, int]],
    ) -> None:
        ffi, lib = capi.ffi, capi.lib
        self._ffi = ffi
        self._lib = lib
        self._store = store
        self._ctx = ffi.cast("wasmtime_context_t *", _address(store._context()))
        self._call_unchecked = lib.wasmtime_func_call_unchecked
        self._data = lib.wasmtime_memory_data
        self._data_size = lib.wasmtime_memory_data_size
        self._set_deadline = lib.wasmtime_context_set_epoch_deadline
        self._memory = self._copy("wasmtime_memory_t *", memory._memory)
        self._args = ffi.new("wasmtime_val_raw_t[]", SLOTS)
        self._argbuf = ffi.buffer(self._args)
        self._result = memoryview(self._argbuf).cast("B").cast("i")
        self._trap = ffi.new("uintptr_t *")
        self._funcs: dict[str, tuple[Any, Any, int, bool]] = {}
        for name, (params, results) in signatures.items():
            func = funcs.get(name)
            if func is None:
                continue
            handle = self._copy("wasmtime_func_t *", func._func)
            self._check_type(name, handle, params, results)
            pack = struct.Struct("<" + "I12x" * params).pack_into
            self._funcs[name] = (handle, pack, max(params, results, 1), results == 1)
        self.base = 0
        self.size = -1
        self.mem = memoryview(b"")
        self.refresh()

    def _copy(self, c_type: str, ctypes_struct: Any) -> Any:
        size = ctypes.sizeof(ctypes_struct)
        out = self._ffi.new(c_type)
        assert self._ffi.sizeof(out[0]) == size
        self._ffi.memmove(out, ctypes.string_at(ctypes.addressof(ctypes_struct), size), size)
        return out

    def _check_type(self, name: str, handle: Any, params: int, results: int) -> None:
        lib = self._lib
        ty = lib.wasmtime_func_type(self._ctx, handle)
        try:
            kinds = []
            for vec in (lib.wasm_functype_params(ty), lib.wasm_functype_results(ty)):
                kinds.append([lib.wasm_valtype_kind(vec.data[i]) for i in range(vec.size)])
        finally:
            lib.wasm_functype_delete(ty)
        if kinds != [[WASM_I32] * params, [WASM_I32] * results]:
            raise FastPathUnavailable(
                f"the export {name!r} has value kinds {kinds}, not {params} -> {results} i32"
            )

    def has(self, name: str) -> bool:
        """Whether ``name`` was resolved (and type-checked) for the fast path."""
        return name in self._funcs

    def refresh(self) -> None:
        """Re-make the memory view if ``memory.grow`` moved or resized linear memory."""
        size = self._data_size(self._ctx, self._memory)
        base = self._data(self._ctx, self._memory)
        address = int(self._ffi.cast("uintptr_t", base))
        if size != self.size or address != self.base:
            self.mem = memoryview(self._ffi.buffer(base, size)).cast("B") if size else self.mem
            self.base = address
            self.size = size

    def set_deadline(self, ticks: int) -> None:
        """``wasmtime_context_set_epoch_deadline`` of this store."""
        self._set_deadline(self._ctx, ticks)

    def call(self, name: str, params: Sequence[int]) -> int | None:
        """Call ``name`` with u32 ``params``; its i32 result (``None`` without one)."""
        handle, pack, slots, has_result = self._funcs[name]
        pack(self._argbuf, 0, *params)
        ctx = self._ctx
        error = self._call_unchecked(ctx, handle, self._args, slots, self._trap)
        if error or self._trap[0]:
            self._raise(error)
        # The engine never moves linear memory (memory_may_move is off), so ``mem``
        # stays valid when the call grows it; it is widened by ``refresh`` when an
        # address falls outside it (WasmInstance does that), not after every call.
        return self._result[0] if has_result else None

    def bind(self, name: str) -> Callable[..., int]:
        """:meth:`call` of ``name`` (an export with a result) as a function of its u32
        params, with the export's handle and packer looked up once: for the exports
        called on every hook call (``wv_vectorize_batch``)."""
        handle, pack, slots, has_result = self._funcs[name]
        assert has_result
        argbuf, args, trap, ctx = self._argbuf, self._args, self._trap, self._ctx
        call_unchecked, result, fail = self._call_unchecked, self._result, self._raise

        def call(*params: int) -> int:
            pack(argbuf, 0, *params)
            error = call_unchecked(ctx, handle, args, slots, trap)
            if error or trap[0]:
                fail(error)
            return int(result[0])

        return call

    def _raise(self, error_address: int) -> None:
        ffi, lib = self._ffi, self._lib
        trap = ffi.cast("wasm_trap_t *", self._trap[0])
        error = ffi.cast("wasmtime_error_t *", error_address)
        self._trap[0] = 0
        self.refresh()
        message = ffi.new("wasm_byte_vec_t *")
        if trap:
            code = ffi.new("uint8_t *")
            interrupt = bool(lib.wasmtime_trap_code(trap, code)) and code[0] == TRAP_CODE_INTERRUPT
            lib.wasm_trap_message(trap, message)
            text = _take(ffi, lib, message)
            lib.wasm_trap_delete(trap)
            if error:
                lib.wasmtime_error_delete(error)
            _raise_host_exception()
            raise RawTrap(text, interrupt=interrupt)
        status = ffi.new("int *")
        exited = lib.wasmtime_error_exit_status(error, status)
        lib.wasmtime_error_message(error, message)
        text = _take(ffi, lib, message)
        lib.wasmtime_error_delete(error)
        _raise_host_exception()
        if exited:
            text = f"the plugin exited with status {status[0]} ({text})"
        raise RawTrap(text)


def _take(ffi: Any, lib: Any, message: Any) -> str:
    """The text of a ``wasm_byte_vec_t`` (trailing NUL dropped), freed."""
    try:
        data = bytes(ffi.buffer(message.data, message.size)) if message.size else b""
    finally:
        lib.wasm_byte_vec_delete(message)
    return data.rstrip(b"\0").decode("utf-8", "replace")


def _raise_host_exception() -> None:
    """Re-raise what a Python host function (``wv_emit``) raised, as wasmtime-py does."""
    from wasmtime import _func

    reraise = getattr(_func, "maybe_raise_last_exn", None)
    if reraise is not None:
        reraise()
