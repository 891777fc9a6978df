"""``lmdb-storage``: a weaviate-ext storage plugin keeping key -> bytes in an LMDB environment.

LMDB is a copy-on-write B+tree in one memory-mapped file: a write transaction never
touches pages a reader or the last commit uses, and the commit switches to the new tree
by writing one meta page. With ``sync`` (the default) LMDB ``fsync``-s the data and then
the meta page before the commit returns, so a returned ``store`` survives a killed
process and a power loss, and an interrupted one leaves the previous tree in place:
never a partial record.

Every ``store`` and ``delete`` is one write transaction. LMDB allows one writer at a
time; the plugin waits for it in Python under a lock (within the call's deadline)
rather than inside LMDB. Reads are lock-free read transactions and run in parallel, from
any thread.

The environment's size limit is ``map_size``. A write that does not fit fails with
:class:`~weaviate_ext.ResourceLimitExceeded`, is rolled back, and the environment keeps
serving.

LMDB keys are at most 511 bytes. A key whose UTF-8 bytes (``surrogatepass``) fit is
stored as ``b"k" + key``; a longer one as ``b"h" + sha256(key)`` with the full key kept
at the front of the value and checked on every read.

One process may open an LMDB environment only once, so plugin instances on the same
directory (a hot reload, two names) share one environment, counted by references.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import re
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import lmdb

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

log = logging.getLogger("weaviate_ext.lmdb_storage")

DEFAULT_DIRECTORY = "lmdb-storage"
MIN_MAP_SIZE = 64 * 1024
MAX_MAP_SIZE = 2**48
DIRECT = b"k"
HASHED = b"h"
KEY_LENGTH = struct.Struct("<I")

_SUFFIXES = {
    "": 1,
    "k": 10**3,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(Ki|Mi|Gi|Ti|[kKMGT])?\s*")


def parse_size(text: str) -> int:
    """Bytes from ``"1073741824"``, ``"512Mi"``, ``"2Gi"``, ``"1G"``; ValueError otherwise."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a size like 1Gi, 512Mi, 1G or a number of bytes")
    number, suffix = match.groups()
    return math.ceil(float(number) * _SUFFIXES[suffix or ""])


def default_path() -> Path:
    """``$XDG_DATA_HOME/weaviate-ext/lmdb-storage`` (``~/.local/share`` by default)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "weaviate-ext" / DEFAULT_DIRECTORY


class _Shared:
    """One open environment and how many plugin instances use it."""

    def __init__(self, env: lmdb.Environment, map_size: int, sync: bool) -> None:
        self.env = env
        self.map_size = map_size
        self.sync = sync
        self.users = 0
        self.write_lock = threading.Lock()


_OPEN: dict[str, _Shared] = {}
_OPEN_LOCK = threading.Lock()


def _acquire(path: Path, map_size: int, sync: bool, max_readers: int) -> _Shared:
    """The process's environment at ``path``: opened now, or shared with another instance."""
    key = str(path)
    with _OPEN_LOCK:
        shared = _OPEN.get(key)
        if shared is None:
            env = lmdb.open(
                key,
                map_size=map_size,
                subdir=True,
                sync=sync,
                metasync=sync,
                max_readers=max_readers,
                max_dbs=0,
                readahead=False,  # random access to values: do not read ahead
            )
            try:
                env.reader_check()  # free reader slots of processes that died
            except BaseException:
                env.close()
                raise
            shared = _OPEN[key] = _Shared(env, map_size, sync)
        elif (shared.map_size, shared.sync) != (map_size, sync):
            raise ConfigError(
                f"{path} is already open in this process with map_size {shared.map_size} "
                f"and sync {shared.sync}; unload the plugin using it before opening it with "
                f"map_size {map_size} and sync {sync}"
            )
        shared.users += 1
        return shared


def _release(path: Path, shared: _Shared) -> None:
    with _OPEN_LOCK:
        shared.users -= 1
        if shared.users == 0:
            _OPEN.pop(str(path), None)
            shared.env.close()


def _unwrap(value: bytes, raw: bytes) -> bytes | None:
    """The data of a hashed key's value, or ``None`` if it holds another key.

    Two keys with the same SHA-256 are never expected, but they would never be confused.
    """
    (length,) = KEY_LENGTH.unpack_from(value)
    start = KEY_LENGTH.size
    if length != len(raw) or value[start : start + length] != raw:
        return None
    return bytes(value[start + length :])


class LmdbStorage:
    """The plugin object: ``store``, ``retrieve`` and ``delete`` on an LMDB environment."""

    def __init__(self) -> None:
        self.name = "lmdb-storage"
        self.path: Path | None = None
        self.map_size = 0
        self._shared: _Shared | None = None
        self._max_key = 511

    def __repr__(self) -> str:
        return f"<LmdbStorage {self.name!r} path={str(self.path)!r}>"

    # -- lifecycle ---------------------------------------------------------------------

    @hookimpl
    def plugin_setup(self, config: PluginConfig, manifest: Manifest) -> None:
        """Check the config and open (or share) the environment."""
        self.name = manifest.name
        raw = config.get_string("path")
        path = Path(raw).expanduser() if raw else default_path()
        try:
            map_size = parse_size(config.get_string("map_size"))
        except ValueError as exc:
            raise ConfigError(f"config key 'map_size': {exc}") from None
        if not MIN_MAP_SIZE <= map_size <= MAX_MAP_SIZE:
            raise ConfigError(
                f"config key 'map_size' must be between {MIN_MAP_SIZE} and {MAX_MAP_SIZE} "
                f"bytes, got {map_size}"
            )
        max_readers = config.get_int("max_readers")
        if not 1 <= max_readers <= 100_000:
            raise ConfigError("config key 'max_readers' must be between 1 and 100000")
        sync = config.get_bool("sync")
        self.path = path.resolve()
        self.map_size = map_size
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PluginLoadError(
                self.name, f"cannot create the LMDB directory {self.path}: {exc.strerror or exc}"
            ) from None
        try:
            self._shared = _acquire(self.path, map_size, sync, max_readers)
        except lmdb.Error as exc:
            raise PluginLoadError(
                self.name, f"cannot open the LMDB environment {self.path}: {exc}"
            ) from None
        self._max_key = self._shared.env.max_key_size()

    @hookimpl
    def plugin_health(self) -> bool:
        """The environment answers a read transaction."""
        with self._env("retrieve").begin() as txn:
            txn.stat()
        return True

    @hookimpl
    def plugin_close(self) -> None:
        """Drop this instance's reference; the last one closes the environment."""
        shared, self._shared = self._shared, None
        if shared is not None and self.path is not None:
            _release(self.path, shared)

    # -- helpers -----------------------------------------------------------------------

    def _env(self, hook: str) -> lmdb.Environment:
        if self._shared is None:
            raise PluginCallError(self.name, hook, "the storage is closed")
        return self._shared.env

    def _db_key(self, raw: bytes) -> bytes:
        if len(raw) + 1 <= self._max_key:
            return DIRECT + raw
        return HASHED + hashlib.sha256(raw).digest()

    @contextlib.contextmanager
    def _writing(self, hook: str, deadline: Deadline | None) -> Iterator[lmdb.Transaction]:
        env = self._env(hook)
        assert self._shared is not None
        lock = self._shared.write_lock
        if not lock.acquire(timeout=-1 if deadline is None else deadline.lock_timeout()):
            raise DeadlineExceeded(
                self.name, hook, "deadline exceeded while waiting for another write"
            )
        try:
            with env.begin(write=True) as txn:
                yield txn
        finally:
            lock.release()

    def _fail(self, hook: str, exc: lmdb.Error) -> NoReturn:
        """Raise the framework's error for an LMDB error (never a bare lmdb one)."""
        if isinstance(exc, lmdb.MapFullError):
            raise ResourceLimitExceeded(
                self.name,
                hook,
                f"the LMDB environment {self.path} is full (map_size {self.map_size} bytes); "
                "raise map_size",
            ) from None
        raise PluginCallError(self.name, hook, f"LMDB error on {self.path}: {exc}") from None

    # -- hooks -------------------------------------------------------------------------

    @hookimpl
    def store(self, key: str, data: bytes, deadline: Deadline) -> None:
        """Write ``data`` under ``key`` in one durable transaction (replacing any value)."""
        raw = encode_key(key)
        payload = check_data(data)
        db_key = self._db_key(raw)
        if db_key[:1] == HASHED:
            payload = KEY_LENGTH.pack(len(raw)) + raw + payload
        try:
            with self._writing("store", deadline) as txn:
                txn.put(db_key, payload)
        except lmdb.Error as exc:
            self._fail("store", exc)

    @hookimpl
    def retrieve(self, key: str) -> bytes | None:
        """The bytes under ``key``, or ``None``."""
        raw = encode_key(key)
        db_key = self._db_key(raw)
        try:
            with self._env("retrieve").begin() as txn:
                value = txn.get(db_key)
        except lmdb.Error as exc:
            self._fail("retrieve", exc)
        if value is None:
            return None
        if db_key[:1] == DIRECT:
            return bytes(value)
        return _unwrap(bytes(value), raw)

    @hookimpl
    def delete(self, key: str, deadline: Deadline) -> bool:
        """Remove ``key`` durably; ``True`` if it existed."""
        raw = encode_key(key)
        db_key = self._db_key(raw)
        try:
            with self._writing("delete", deadline) as txn:
                if db_key[:1] == HASHED:
                    value = txn.get(db_key)
                    if value is None or _unwrap(bytes(value), raw) is None:
                        return False
                return bool(txn.delete(db_key))
        except lmdb.Error as exc:
            self._fail("delete", exc)
