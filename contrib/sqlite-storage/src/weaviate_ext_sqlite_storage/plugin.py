"""``sqlite-storage``: a weaviate-ext storage plugin keeping key -> bytes in one SQLite file.

Durability and atomicity come from SQLite itself:

* the database runs in WAL mode (``journal_mode=WAL``) with ``synchronous=FULL``: every
  ``store`` and ``delete`` is one autocommit statement, i.e. one transaction, and SQLite
  ``fsync``-s the write-ahead log before the commit returns. A returned ``store`` is
  therefore durable against a killed process *and* a power loss or OS crash; a write
  that was interrupted is rolled back at the next open, never half applied.
* ``synchronous=NORMAL`` can be configured for speed: in WAL mode it still survives a
  killed process, but the last commits before a power loss may be lost.

Thread safety: the framework calls a plugin from many threads at once. Writes go
through one writer connection guarded by a lock (SQLite allows one writer at a time
anyway; the lock waits in Python, within the call's deadline, instead of spinning on
``SQLITE_BUSY``), and reads use a pool of reader connections, which WAL lets run in
parallel with the writer. Other processes may open the same file; their locks are
waited for up to ``busy_timeout`` seconds.

Keys are stored as their UTF-8 bytes (``surrogatepass``), so every ``str`` key works,
including ones with NUL characters or lone surrogates, and no key is ever a path.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

from weaviate_ext import (
    ConfigError,
    Deadline,
    DeadlineExceeded,
    Manifest,
    PluginCallError,
    PluginConfig,
    PluginLoadError,
    ResourceLimitExceeded,
    hookimpl,
)
from weaviate_ext.inputs import check_data
from weaviate_ext.inputs import key_bytes as encode_key

TABLE = "weaviate_ext_kv"
"""The table holding the data; other tables in the same file are left alone."""

SYNCHRONOUS_MODES = ("full", "extra", "normal")
"""Accepted values of the ``synchronous`` config key (``off`` is never durable)."""

MAX_IDLE_READERS = 8
"""Reader connections kept open between calls; more are opened under load and closed."""

DEFAULT_FILE = "sqlite-storage.db"


def default_path() -> Path:
    """``$XDG_DATA_HOME/weaviate-ext/sqlite-storage.db`` (``~/.local/share`` by default)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "weaviate-ext" / DEFAULT_FILE


class SqliteStorage:
    """The plugin object: ``store``, ``retrieve`` and ``delete`` on one SQLite file."""

    def __init__(self) -> None:
        self.name = "sqlite-storage"
        self.path: Path | None = None
        self.busy_timeout = 5.0
        self.synchronous = "full"
        self._writer: sqlite3.Connection | None = None
        self._write_lock = threading.Lock()
        self._pool_lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._closed = False

    def __repr__(self) -> str:
        return f"<SqliteStorage {self.name!r} path={str(self.path)!r}>"

    # -- lifecycle ---------------------------------------------------------------------

    @hookimpl
    def plugin_setup(self, config: PluginConfig, manifest: Manifest) -> None:
        """Check the config, open (or create) the database in WAL mode and its table."""
        self.name = manifest.name
        raw = config.get_string("path") if "path" in config else ""
        path = Path(raw).expanduser() if raw else default_path()
        self.synchronous = config.get_string("synchronous").lower()
        if self.synchronous not in SYNCHRONOUS_MODES:
            raise ConfigError(
                f"config key 'synchronous' must be one of {', '.join(SYNCHRONOUS_MODES)}, "
                f"got {self.synchronous!r}"
            )
        self.busy_timeout = config.get_float("busy_timeout")
        if not 0 <= self.busy_timeout <= 3600:
            raise ConfigError("config key 'busy_timeout' must be between 0 and 3600 seconds")
        max_bytes = config.get_int("max_bytes")
        if max_bytes < 0:
            raise ConfigError("config key 'max_bytes' must be 0 (no limit) or more")
        self.path = path.resolve()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PluginLoadError(
                self.name, f"cannot create the directory of {self.path}: {exc.strerror or exc}"
            ) from None
        try:
            self._writer = self._open_writer(max_bytes)
        except sqlite3.Error as exc:
            raise PluginLoadError(
                self.name, f"cannot open SQLite database {self.path}: {exc}"
            ) from None

    def _connect(self) -> sqlite3.Connection:
        assert self.path is not None
        return sqlite3.connect(
            self.path,
            timeout=self.busy_timeout,
            isolation_level=None,  # autocommit: each statement is its own transaction
            check_same_thread=False,  # used by one thread at a time, under our locks
        )

    def _open_writer(self, max_bytes: int) -> sqlite3.Connection:
        conn = self._connect()
        try:
            mode = str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower()
            if mode != "wal":
                raise sqlite3.OperationalError(
                    f"the WAL journal mode is not available here (SQLite kept {mode!r})"
                )
            conn.execute(f"PRAGMA synchronous={self.synchronous.upper()}")
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} "
                "(key BLOB PRIMARY KEY NOT NULL, value BLOB NOT NULL)"
            )
            if max_bytes:
                page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
                pages = max(1, max_bytes // page_size)
                conn.execute(f"PRAGMA max_page_count={pages}")
        except BaseException:
            conn.close()
            raise
        return conn

    @hookimpl
    def plugin_health(self) -> bool:
        """The database answers a read."""
        with self._reader() as conn:
            conn.execute(f"SELECT 1 FROM {TABLE} LIMIT 1").fetchall()
        return True

    @hookimpl
    def plugin_close(self) -> None:
        """Close every connection (SQLite checkpoints the WAL when the last one closes)."""
        with self._write_lock, self._pool_lock:
            self._closed = True
            for conn in self._idle:
                conn.close()
            self._idle.clear()
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    # -- connections -------------------------------------------------------------------

    @contextlib.contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        with self._pool_lock:
            if self._closed or self.path is None:
                raise PluginCallError(self.name, "retrieve", "the storage is closed")
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only=ON")
        try:
            yield conn
        finally:
            with self._pool_lock:
                if self._closed or len(self._idle) >= MAX_IDLE_READERS:
                    conn.close()
                else:
                    self._idle.append(conn)

    @contextlib.contextmanager
    def _writing(self, hook: str, deadline: Deadline | None) -> Iterator[sqlite3.Connection]:
        if not self._write_lock.acquire(
            timeout=-1 if deadline is None else deadline.lock_timeout()
        ):
            raise DeadlineExceeded(
                self.name, hook, "deadline exceeded while waiting for another write"
            )
        try:
            if self._writer is None:
                raise PluginCallError(self.name, hook, "the storage is closed")
            yield self._writer
        finally:
            self._write_lock.release()

    def _fail(self, hook: str, exc: sqlite3.Error) -> NoReturn:
        """Raise the framework's error for an SQLite error (never a bare sqlite3 one)."""
        code = getattr(exc, "sqlite_errorcode", None)
        if code == sqlite3.SQLITE_FULL:
            raise ResourceLimitExceeded(
                self.name,
                hook,
                f"the database {self.path} is full ({exc}); raise max_bytes or free disk space",
            ) from None
        raise PluginCallError(self.name, hook, f"SQLite error on {self.path}: {exc}") from None

    # -- hooks -------------------------------------------------------------------------

    @hookimpl
    def store(self, key: str, data: bytes, deadline: Deadline) -> None:
        """Write ``data`` under ``key`` in one durable transaction (replacing any value)."""
        raw_key = encode_key(key)
        payload = check_data(data)
        with self._writing("store", deadline) as conn:
            try:
                conn.execute(
                    f"INSERT INTO {TABLE} (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (raw_key, payload),
                )
            except sqlite3.Error as exc:
                self._fail("store", exc)

    @hookimpl
    def retrieve(self, key: str) -> bytes | None:
        """The bytes under ``key``, or ``None``."""
        raw_key = encode_key(key)
        try:
            with self._reader() as conn:
                row = conn.execute(
                    f"SELECT value FROM {TABLE} WHERE key = ?", (raw_key,)
                ).fetchone()
        except sqlite3.Error as exc:
            self._fail("retrieve", exc)
        return None if row is None else bytes(row[0])

    @hookimpl
    def delete(self, key: str, deadline: Deadline) -> bool:
        """Remove ``key`` durably; ``True`` if it existed."""
        raw_key = encode_key(key)
        with self._writing("delete", deadline) as conn:
            try:
                cursor = conn.execute(f"DELETE FROM {TABLE} WHERE key = ?", (raw_key,))
            except sqlite3.Error as exc:
                self._fail("delete", exc)
            return cursor.rowcount > 0
