"""Per-call deadlines, created by the typed handle and passed to every plugin hook."""

from __future__ import annotations

import math
import time

from weaviate_ext.errors import DeadlineExceeded


class Deadline:
    """The monotonic time by which a call must finish.

    Plugins receive one as the ``deadline`` hook argument. Bridges to out-of-process
    or sandboxed runtimes enforce it; in-process Python code checks it cooperatively
    with :attr:`expired`, :meth:`remaining` or :meth:`check`.
    """

    __slots__ = ("at", "hook", "plugin", "timeout")

    def __init__(self, timeout: float | None, plugin: str = "", hook: str = "") -> None:
        self.timeout = timeout
        self.at = math.inf if timeout is None else time.monotonic() + timeout
        self.plugin = plugin
        self.hook = hook

    def remaining(self) -> float:
        """Seconds left (``inf`` without a deadline, never negative)."""
        return max(0.0, self.at - time.monotonic())

    def lock_timeout(self) -> float:
        """:meth:`remaining` as the ``timeout`` of :meth:`threading.Lock.acquire` and
        :class:`threading.Event` waits: ``-1`` (wait for ever) without a deadline."""
        return -1 if self.at == math.inf else self.remaining()

    @property
    def expired(self) -> bool:
        """Whether the deadline has passed."""
        return time.monotonic() >= self.at

    def check(self) -> None:
        """Raise :class:`~weaviate_ext.DeadlineExceeded` if the deadline has passed."""
        if time.monotonic() >= self.at:
            raise DeadlineExceeded(
                self.plugin, self.hook, f"deadline of {self.timeout:g}s exceeded"
            )

    def __repr__(self) -> str:
        return f"Deadline(timeout={self.timeout!r}, remaining={self.remaining():.3f})"
