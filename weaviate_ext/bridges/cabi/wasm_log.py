"""A wasm plugin's stdout and stderr, logged under the plugin's name, off the call path.

WASI writes each stream to a temporary file (unlinked once opened, so only the two
descriptors remain). Reading those files after every call cost about 1.5 µs of a
3 µs call, so successful calls no longer read them: a pump thread does, every
:data:`PUMP_INTERVAL` seconds, for every live stream. The call path still flushes
synchronously where order matters to a reader of the log: after ``wv_init`` (a load
logs what the plugin printed before the load returns), after a call that failed or
trapped (the plugin's last words come before the error), and when an instance goes.

Only complete lines are logged by the pump; a last line without its newline waits for
the next synchronous flush, or for one more pump round, so a line being written while
the pump reads is not split in two records.

A file rather than a Python callback (``WasiConfig.stdout_custom``), so that wasmtime
never calls into Python from its own threads.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
import weakref

__all__ = ["LOG_LINE_LIMIT", "LOG_READ_LIMIT", "PUMP_INTERVAL", "LogStream", "pump"]

LOG_LINE_LIMIT = 4096
"""A plugin's stdout/stderr line is cut at this many bytes in the log."""
LOG_READ_LIMIT = 1024 * 1024
"""At most this much of a plugin's output is read per flush."""
PUMP_INTERVAL = 0.05
"""Seconds between two background flushes of every live stream."""


class LogStream:
    """One of a plugin instance's output streams: a temporary file and a logger."""

    def __init__(self, logger: logging.Logger, level: int, stream: str) -> None:
        self.logger = logger
        self.level = level
        self.stream = stream
        self.fd, self.path = tempfile.mkstemp(prefix=f"weaviate-ext-{stream}-")
        self._lock = threading.Lock()
        self._partial = b""
        self._partial_rounds = 0

    def opened(self) -> None:
        """WASI has opened the file: unlink it, only the two descriptors remain; from
        now on the pump reads it too."""
        os.unlink(self.path)
        pump.add(self)

    def flush(self, complete_lines_only: bool = False) -> None:
        """Log what the plugin wrote since the last flush.

        :param complete_lines_only: keep a last line without its newline for later
            (the pump's mode); by default it is logged too."""
        with self._lock:
            if self.fd < 0:
                return
            data = os.read(self.fd, LOG_READ_LIMIT)
            if not data and not self._partial:
                return
            data = self._partial + data
            self._partial = b""
            lines = data.split(b"\n")
            tail = lines.pop()
            if tail:
                if complete_lines_only and self._partial_rounds < 1:
                    self._partial = tail
                    self._partial_rounds += 1
                else:
                    lines.append(tail)
            if not self._partial:
                self._partial_rounds = 0
        for line in lines:
            if line:
                self._log(line[:LOG_LINE_LIMIT])

    def close(self) -> None:
        """Close the descriptor (what was not flushed is dropped)."""
        with self._lock:
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1

    def _log(self, line: bytes) -> None:
        self.logger.log(self.level, "[%s] %s", self.stream, line.decode("utf-8", "replace"))


class _Pump:
    """Flushes every live :class:`LogStream` in the background; its thread runs while
    there are streams, and is started again by the next one."""

    def __init__(self) -> None:
        self._streams: weakref.WeakSet[LogStream] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._running = False

    def add(self, stream: LogStream) -> None:
        """Start pumping ``stream`` (until it is closed or collected)."""
        with self._lock:
            self._streams.add(stream)
            if not self._running:
                self._running = True
                thread = threading.Thread(target=self._run, name="weaviate-ext-wasm-log")
                thread.daemon = True
                thread.start()

    def flush_all(self) -> None:
        """One round: the complete lines of every live stream."""
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            if stream.fd < 0:
                with self._lock:
                    self._streams.discard(stream)
                continue
            try:
                stream.flush(complete_lines_only=True)
            except Exception:  # pragma: no cover - a logging handler failed; keep pumping
                logging.getLogger("weaviate_ext").exception("flushing a wasm plugin's log")

    def _run(self) -> None:
        while True:
            time.sleep(PUMP_INTERVAL)
            self.flush_all()
            with self._lock:
                if not self._streams:
                    self._running = False
                    return


pump = _Pump()
"""The process's log pump."""
