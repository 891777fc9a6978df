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

    def close(self) -> None:
        """Release every instance."""
