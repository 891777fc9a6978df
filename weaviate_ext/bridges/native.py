"""The ``native`` runtime: shared libraries implementing ``hookspecs/weaviate_plugin.h``.

The library is loaded with ``cffi`` into the host process. It is **not sandboxed**: it
can read and write anything the host can, a crash in it crashes the host, and neither
``resources.memory`` nor call deadlines can be enforced (a warning says so at load).
Use it for trusted plugins only; ``allowed_runtimes`` lets a host refuse it.

What is checked: the declared ``spec.sha256``; before the host maps the file, its ELF
header (:mod:`~weaviate_ext.bridges.cabi.elfcheck`: a complete shared library for this
host's class, byte order and machine) and a probe load in a short-lived child
(:mod:`~weaviate_ext.bridges.cabi.probe`: a library that crashes or hangs while it is
loaded is a load error, not a dead host); every export the plugin type needs (missing
ones are named), ``wv_abi_version``, and statuses and output sizes of every call.
Calls into one loaded library are serialised (one lock per library).

Every load gets its own copy of the library's global state. The dynamic loader maps a
file once per process (a second ``dlopen`` of the same path returns the first mapping,
even when the file has changed since), so the first load of a file maps it in place
and every later load of the same file -- a second manifest naming it, or a reload
after a rebuild -- maps a private copy (a hidden file next to it, mapped, and unlinked
at once). A library is never unmapped, so each reload of a native plugin
keeps its old code in memory for the life of the process.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, NoReturn

import cffi  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt

from weaviate_ext.bridges.cabi import abi, elfcheck, probe
from weaviate_ext.bridges.cabi.backend import Arg, Emit, Fail, VectorMany, VectorOne
from weaviate_ext.bridges.cabi.plugins import PLUGIN_CLASSES, CAbiPlugin
from weaviate_ext.deadline import Deadline
from weaviate_ext.errors import PluginLoadError, PluginOutputError
from weaviate_ext.hookspecs import hookimpl
from weaviate_ext.limits import warn_unenforced
from weaviate_ext.manifest import Manifest, PluginConfig

RUNTIME = "native"

log = logging.getLogger("weaviate_ext")

ffi = cffi.FFI()
ffi.cdef(
    "\n".join(
        abi.c_declaration(e, buffer="const char *", floats="char *")
        for e in (
            "wv_abi_version",
            "wv_alloc",
            "wv_free",
            "wv_last_error",
            "wv_set_emit",
            *abi.HOOK_EXPORTS,
        )
    )
)
NULL = ffi.NULL
_memmove = ffi.memmove
_F4 = np.dtype("<f4")

_mapped_guard = threading.Lock()
_mapped_paths: set[str] = set()
"""Library files this process has mapped in place (by resolved path)."""


def _open_library(name: str, resolved: str) -> Any:
    """``dlopen`` ``resolved``, or a private copy of it when it is mapped already.

    The copy is made next to the original (a hidden file, unlinked once mapped), so a
    library that finds its files relative to itself (``dladdr``, as the SDKs'
    ``wv_resolve_path`` and ``Config::get_path`` do) still finds them; in a directory
    the host cannot write, the copy goes to a temporary directory, with a warning."""
    with _mapped_guard:
        first = resolved not in _mapped_paths
        _mapped_paths.add(resolved)
    if first:
        return ffi.dlopen(resolved)
    directory, base = os.path.split(resolved)
    try:
        fd, copy = tempfile.mkstemp(prefix=f".{base}.", suffix=".so", dir=directory)
    except OSError:
        log.warning(
            "plugin %s: %s is loaded already and its directory is not writable; mapping a "
            "copy from a temporary directory (paths relative to the library will not resolve)",
            name,
            resolved,
        )
        fd, copy = tempfile.mkstemp(prefix=f"weaviate-ext-{base}.", suffix=".so")
    try:
        with os.fdopen(fd, "wb") as out, open(resolved, "rb") as source:
            shutil.copyfileobj(source, out)
        log.debug("plugin %s: %s is loaded already; mapped a private copy", name, resolved)
        return ffi.dlopen(copy)
    finally:
        os.unlink(copy)


class NativeSession:
    """The library, for one call (the library lock is held).

    A backend keeps one session and reuses it for every call (its ``out_ptr`` /
    ``out_len`` are allocated once); a call nested in another on the same thread (from
    a ``wv_emit`` callback) gets a fresh one."""

    def __init__(self, backend: NativeBackend) -> None:
        self.backend = backend
        self.out_ptr = ffi.new("const uint8_t **")
        self.out_len = ffi.new("uint32_t *")

    def call(self, export: str, args: Sequence[Arg]) -> int:
        """Call ``export``; ``bytes`` are passed without a copy (``const char *``)."""
        fn, kinds = self.backend.plans[export]
        params: list[Any] = []
        index = 0
        for kind in kinds:
            if kind == "o":
                out_ptr, out_len = self.out_ptr, self.out_len
                out_ptr[0] = NULL
                out_len[0] = 0
                params.append(out_ptr)
                params.append(out_len)
                continue
            value = args[index]
            index += 1
            if kind == "i":
                params.append(value)
            else:
                if type(value) is not bytes:
                    value = bytes(value)
                params.append(value)
                params.append(len(value))
        return int(fn(*params))

    def output(self) -> memoryview:
        """The last call's output (a NULL pointer with a length is refused); not copied."""
        length = self.out_len[0]
        if length == 0:
            return memoryview(b"")
        ptr = self.out_ptr[0]
        if ptr == NULL:
            raise PluginOutputError(
                self.backend.name, "output", f"returned a NULL pointer with {length} bytes"
            )
        return memoryview(ffi.buffer(ptr, length))

    def last_error(self) -> str:
        """``wv_last_error``, decoded."""
        self.backend.lib.wv_last_error(self.out_ptr, self.out_len)
        ptr, length = self.out_ptr[0], min(int(self.out_len[0]), 4096)
        if ptr == NULL or length == 0:
            return ""
        return bytes(ffi.buffer(ptr, length)).decode("utf-8", "replace")

    def set_emit(self, emit: Emit | None) -> None:
        """Where ``wv_emit`` chunks go during the next call."""
        self.backend.emit_to = emit


class _Locked:
    """The context manager :meth:`NativeBackend.session` returns: the library lock and
    the backend's session (a class, not a generator: it runs on every call)."""

    __slots__ = ("backend",)

    def __init__(self, backend: NativeBackend) -> None:
        self.backend = backend

    def __enter__(self) -> NativeSession:
        backend = self.backend
        backend.lock.acquire()
        try:
            stack = backend.sessions
            session = NativeSession(backend) if stack else backend.idle_session
            stack.append(session)
            if backend.set_emit is not None:
                backend.set_emit(backend.emit_callback)
        except BaseException:
            backend.lock.release()
            raise
        return session

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        backend = self.backend
        backend.sessions.pop()
        backend.lock.release()


class NativeBackend:
    """A loaded shared library."""

    isolation = "none: in-process native code, unsandboxed (trusted plugins only)"
    uses_deadline = False

    def __init__(self, manifest: Manifest, lib: Any, path: str, exports: frozenset[str]):
        self.name = manifest.name
        self.dims = manifest.spec.capabilities.dimensions
        self.lib = lib
        self.path = path
        self.exports = exports
        self.lock = threading.RLock()
        self.emit_to: Emit | None = None
        self.plans: dict[str, tuple[Any, str]] = {
            e: (getattr(lib, e), kinds) for e, kinds in abi.HOOK_EXPORTS.items() if e in exports
        }
        """Per hook export: the cffi function (resolved once) and its argument kinds."""
        plan = self.plans.get("wv_vectorize_batch")
        self._vectorize: Any = None if plan is None else plan[0]
        self.idle_session = NativeSession(self)
        self.sessions: list[NativeSession] = []
        self.emit_callback: Any = None
        self.set_emit: Any = None
        if "wv_set_emit" in exports:
            self.emit_callback = ffi.callback("int32_t(const uint8_t *, uint32_t)", self._emit)
            self.set_emit = lib.wv_set_emit
            lib.wv_set_emit(self.emit_callback)
        self._locked = _Locked(self)

    def _emit(self, ptr: Any, length: int) -> int:
        sink = self.emit_to
        if sink is None:
            return 1
        try:
            return sink(bytes(ffi.buffer(ptr, length)) if length else b"")
        except Exception:  # pragma: no cover - never raise into C
            log.exception("plugin %s: wv_emit failed", self.name)
            return 1

    def setup(self, config: bytes) -> None:
        """``wv_init`` with the config JSON."""
        with self._locked as session:
            status = session.call("wv_init", (config,))
            if status < 0:
                raise PluginLoadError(self.name, f"wv_init failed: {session.last_error()}")

    def vectors(
        self, packed: bytes, count: int, hook: str, deadline: Deadline | None, fail: Fail
    ) -> npt.NDArray[np.float32]:
        """``wv_vectorize_batch`` in one locked session (see :class:`_Locked`, inlined:
        it runs on every call); the output copied once, straight into the array."""
        lock = self.lock
        lock.acquire()
        try:
            sessions = self.sessions
            session = NativeSession(self) if sessions else self.idle_session
            sessions.append(session)
            try:
                # (no wv_set_emit per call, unlike _Locked: the callback is set at load and
                # a vectorizer has nothing to stream, its emit sink stays None)
                out_ptr, out_len = session.out_ptr, session.out_len
                out_ptr[0] = NULL
                out_len[0] = 0
                status = self._vectorize(packed, len(packed), count, out_ptr, out_len)
                if status < 0:
                    fail(session, hook, status)
                size = out_len[0]
                if size == 0 or count == 0 or size % (4 * count):
                    raise abi.vector_bytes_error(self.name, hook, size, count)
                ptr = out_ptr[0]
                if ptr == NULL:
                    raise PluginOutputError(
                        self.name, "output", f"returned a NULL pointer with {size} bytes"
                    )
                out = np.empty(size >> 2, _F4)
                _memmove(out, ptr, size)
            finally:
                sessions.pop()
        finally:
            lock.release()
        return out

    def vectorizer_into(self, fail: Fail) -> tuple[VectorOne, VectorMany] | None:
        """``wv_vectorize_into`` writing straight into the array returned: nothing is
        packed but one join, nothing copied (see :meth:`.backend.Backend.vectorizer_into`).
        The deadline cannot be enforced, and is ignored."""
        plan = self.plans.get("wv_vectorize_into")
        dims = self.dims
        if plan is None or not dims:
            return None
        into = plan[0]
        acquire, release = self.lock.acquire, self.lock.release
        sessions, idle = self.sessions, self.idle_session
        from_buffer, empty, f4, join = ffi.from_buffer, np.empty, _F4, abi.join_texts

        def failed(status: int) -> NoReturn:
            session = NativeSession(self) if sessions else idle
            sessions.append(session)
            try:
                fail(session, "vectorize_batch", status)
            finally:
                sessions.pop()

        def vectorize_text(text: str, deadline: Deadline | None) -> npt.NDArray[np.float32]:
            try:
                data = text.encode()
            except UnicodeEncodeError:
                data = abi.utf8(text, "text")
            out = empty(dims, f4)
            acquire()
            try:
                status = into(data, len(data), 1, from_buffer(out), dims)
                if status < 0:
                    failed(status)
            finally:
                release()
            return out

        def vectorize_batch(
            texts: Sequence[str], deadline: Deadline | None
        ) -> npt.NDArray[np.float32]:
            data = join(texts)
            count = len(texts)
            out = empty((count, dims), f4)
            acquire()
            try:
                status = into(data, len(data), count, from_buffer(out), count * dims)
                if status < 0:
                    failed(status)
            finally:
                release()
            return out

        return vectorize_text, vectorize_batch

    def session(
        self, hook: str, deadline: Deadline | None
    ) -> AbstractContextManager[NativeSession]:
        """The library, locked for one call. The deadline cannot be enforced."""
        return self._locked

    def close(self) -> None:
        """Nothing to release: a library stays loaded for the life of the process."""
        self.emit_to = None


def _exports_of(lib: Any, plugin_type: str) -> frozenset[str]:
    present = set()
    for export in probe.PROBED_EXPORTS:
        try:
            getattr(lib, export)
        except AttributeError:
            continue
        present.add(export)
    return frozenset(present)


def _check_exports(name: str, kind: str, exports: frozenset[str]) -> None:
    """Refuse a library without the exports its plugin type needs (they are named)."""
    missing = [e for e in abi.expected_exports(kind) if e not in exports]
    if missing:
        raise abi.missing_exports_error(name, kind, missing)
    if kind == "generator" and "wv_set_emit" not in exports:
        raise abi.missing_exports_error(name, kind, ["wv_set_emit"])


def _check_before_mapping(
    name: str, kind: str, filename: str, resolved: str, data: bytes, digest: str
) -> None:
    """Everything that must hold before ``dlopen`` in the host: the ELF header, then a
    probe load in a child (its exports and ABI version included); :class:`PluginLoadError`
    otherwise, and the library is never mapped."""
    try:
        elfcheck.check_shared_library(data)
    except elfcheck.ElfCheckError as exc:
        raise PluginLoadError(
            name, f"cannot load the shared library: spec.binary {filename} {exc}"
        ) from None
    found = probe.probe_library(name, resolved, digest)
    _check_exports(name, kind, found.exports)
    if found.abi_version is not None:
        abi.check_abi_version(name, found.abi_version)


@hookimpl
def weaviate_ext_make_plugin(manifest: Manifest, config: PluginConfig) -> object | None:
    """Load a ``runtime: native`` shared library, in process and unsandboxed."""
    if manifest.spec.runtime != RUNTIME:
        return None
    name, kind = manifest.name, manifest.spec.type
    path = manifest.binary_path
    data, digest = abi.read_binary(name, path, manifest.spec.sha256)
    assert path is not None
    resolved = str(path.resolve())
    _check_before_mapping(name, kind, path.name, resolved, data, digest)
    del data
    try:
        lib = _open_library(name, resolved)
    except OSError as exc:
        raise PluginLoadError(name, f"cannot load the shared library: {exc}") from None
    exports = _exports_of(lib, kind)
    _check_exports(name, kind, exports)
    abi.check_abi_version(name, int(lib.wv_abi_version()))
    log.warning(
        "plugin %s: native runtime: %s runs in the host process, UNSANDBOXED; "
        "resources.memory and call deadlines are not enforced (trusted code only)",
        name,
        path.name,
    )
    warn_unenforced(manifest, (), log, "a native library runs in the host process")
    plugin: CAbiPlugin = PLUGIN_CLASSES[kind](NativeBackend(manifest, lib, resolved, exports))
    return plugin


@hookimpl
def weaviate_ext_isolation(manifest: Manifest) -> str | None:
    """A native library runs in the host's process, unsandboxed."""
    return NativeBackend.isolation if manifest.spec.runtime == RUNTIME else None
