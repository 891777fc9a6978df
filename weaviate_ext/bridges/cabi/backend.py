"""What the per-type plugin objects need from a runtime: sessions on an instance.

A :class:`Backend` (the wasm pool, or the native library) hands out a
:class:`Session` for one call: exclusive use of one plugin instance, within the call's
deadline. Inside it the shared code calls exports and reads their output; the backend
turns traps and timeouts into the framework's errors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import NoReturn, Protocol

import numpy as np
import numpy.typing as npt

from weaviate_ext.deadline import Deadline

Arg = bytes | int
"""An export argument: a byte buffer (pointer + length) or a u32."""

Emit = Callable[[bytes], int]
"""Receives one streamed chunk; returns 0 to continue, non-zero to stop."""


Fail = Callable[["Session", str, int], NoReturn]
"""Raises the framework's error for a negative status of ``hook`` (reads the session's
``wv_last_error``): the plugin object's ``_fail``."""


VectorOne = Callable[[str, "Deadline | None"], npt.NDArray[np.float32]]
"""``(text, deadline) -> (dims,) float32 array``: ``vectorize_text`` on the fast path."""

VectorMany = Callable[[Sequence[str], "Deadline | None"], npt.NDArray[np.float32]]
"""``(texts, deadline) -> (len(texts), dims) float32 array``: ``vectorize_batch`` on the
fast path (the texts joined by :func:`~.abi.join_texts`)."""


class Session(Protocol):
    """Exclusive use of one plugin instance for one hook call."""

    def call(self, export: str, args: Sequence[Arg]) -> int:
        """Call ``export`` with its buffer/count arguments (plus out_ptr/out_len when its
        kinds end in ``o``); returns its status."""

    def output(self) -> memoryview:
        """The output of the last call, checked to lie inside the plugin's memory.

        Valid until the next call on this session; copy what you keep."""

    def last_error(self) -> str:
        """The plugin's ``wv_last_error`` message."""

    def set_emit(self, emit: Emit | None) -> None:
        """Route ``wv_emit`` calls of this instance to ``emit`` (``None``: refuse)."""


class Backend(Protocol):
    """A loaded binary: its exports, its instances, its limits."""

    name: str
    exports: frozenset[str]
    isolation: str
    dims: int | None
    """``capabilities.dimensions`` of the manifest (``None`` when undeclared)."""
    uses_deadline: bool
    """Whether calls are interrupted at their deadline (wasm); ``False``: deadlines
    cannot be enforced (native), so the hooks are passed ``None``."""

    def setup(self, config: bytes) -> None:
        """Initialise the instances with the config JSON (``wv_init``)."""

    def session(self, hook: str, deadline: Deadline | None) -> AbstractContextManager[Session]:
        """Exclusive use of an instance for one call of ``hook``."""

    def vectors(
        self, packed: bytes, count: int, hook: str, deadline: Deadline | None, fail: Fail
    ) -> npt.NDArray[np.float32]:
        """``wv_vectorize_batch`` of ``count`` packed texts, in one session: a negative
        status goes to ``fail``; an output that is not ``count`` non-empty packed
        float32 vectors is :func:`~.abi.vector_bytes_error`; else the output, bounds
        checked, copied once into a new flat float32 array (``count * dims`` values)."""

    def vectorizer_into(self, fail: Fail) -> tuple[VectorOne, VectorMany] | None:
        """The fast path of a vectorizer that declares its dimensions (:attr:`dims`) and
        exports ``wv_vectorize_into``: its ``vectorize_text`` and ``vectorize_batch``,
        each one call of that export with the texts joined by 0xFF and the vectors
        written into the host's buffer; ``None`` without the export or the dimensions
        (the plugin then packs texts for ``wv_vectorize_batch``). A negative status goes
        to ``fail``; text without a UTF-8 form is :class:`~weaviate_ext.InvalidInput`."""

    def close(self) -> None:
        """Release every instance."""
