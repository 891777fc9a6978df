"""sqlite-storage through the framework: conformance (with odd keys, bad input and threads),
persistence, failures."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from weaviate_ext import (
    InvalidInput,
    PluginCallError,
    PluginLoadError,
    PluginManager,
    ResourceLimitExceeded,
    StorageHandle,
)
from weaviate_ext.testing import check_plugin, check_reopen_durability


def test_conformance(storage: StorageHandle) -> None:
    """The suite, with odd keys (NUL, lone surrogates, paths, 10,000 characters: every
    key is stored as its bytes), bad input (from the handle) and 8 threads at once."""
    check_plugin(storage, odd_keys=True, threads=8).raise_for_failures()


def test_values_survive_a_new_manager(manifest: Path, db_path: Path) -> None:
    check_reopen_durability(manifest, {"path": str(db_path)})


def test_database_is_wal_with_the_table(storage: StorageHandle, db_path: Path) -> None:
    storage.store("k", b"v")
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        rows = conn.execute("SELECT key, value FROM weaviate_ext_kv").fetchall()
        assert rows == [(b"k", b"v")]
    finally:
        conn.close()


def test_plugin_itself_refuses_bad_input() -> None:
    """Called without the handle (another bridge, a direct call), the hooks still check."""
    from weaviate_ext_sqlite_storage.plugin import check_data, encode_key

    with pytest.raises(InvalidInput):
        encode_key("")
    with pytest.raises(InvalidInput):
        encode_key(3)
    with pytest.raises(InvalidInput):
        check_data("str")
    assert check_data(bytearray(b"ab")) == b"ab"
    assert encode_key("\ud800") == b"\xed\xa0\x80"


def test_reload_keeps_the_data(
    plugin_manager: PluginManager, manifest: Path, db_path: Path
) -> None:
    store = plugin_manager.load(manifest, config={"path": str(db_path)})
    store.store("kept", b"across reload")
    plugin_manager.reload("sqlite-storage")
    assert store.retrieve("kept") == b"across reload"


def test_max_bytes_gives_resource_limit(load_plugin: Any, manifest: Path, db_path: Path) -> None:
    store = load_plugin(manifest, config={"path": str(db_path), "max_bytes": 256 * 1024})
    store.store("small", b"fits")
    with pytest.raises(ResourceLimitExceeded, match=r"is full.*max_bytes"):
        store.store("big", b"\x01" * (1024 * 1024))
    assert store.retrieve("big") is None
    assert store.retrieve("small") == b"fits"
    store.store("small-2", b"still works")
    assert store.retrieve("small-2") == b"still works"


def test_locked_by_another_process_is_a_clear_error(
    load_plugin: Any, manifest: Path, db_path: Path
) -> None:
    store = load_plugin(manifest, config={"path": str(db_path), "busy_timeout": 0.2})
    store.store("k", b"before")
    other = sqlite3.connect(db_path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # holds the write lock, like another writer
        with pytest.raises(PluginCallError, match=r"sqlite-storage.*store.*database is locked"):
            store.store("k", b"after")
        assert store.retrieve("k") == b"before"  # WAL: readers are not blocked
    finally:
        other.execute("ROLLBACK")
        other.close()
    store.store("k", b"after")
    assert store.retrieve("k") == b"after"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"synchronous": "off"}, "'synchronous' must be one of full, extra, normal"),
        ({"busy_timeout": -1}, "'busy_timeout' must be between"),
        ({"max_bytes": -5}, "'max_bytes' must be 0"),
        ({"path": 3}, "'path'"),
        ({"unknown_key": 1}, "unknown_key"),
    ],
)
def test_bad_config_refuses_to_load(
    plugin_manager: PluginManager, manifest: Path, db_path: Path, config: dict, message: str
) -> None:
    with pytest.raises(Exception, match=message):
        plugin_manager.load(manifest, config={"path": str(db_path), **config})
    assert "sqlite-storage" not in plugin_manager.names()


def test_not_a_database_refuses_to_load(
    plugin_manager: PluginManager, manifest: Path, tmp_path: Path
) -> None:
    bogus = tmp_path / "bogus.db"
    bogus.write_bytes(b"this is not SQLite at all, just text " * 100)
    with pytest.raises(PluginLoadError, match=r"cannot open SQLite database .*not a database"):
        plugin_manager.load(manifest, config={"path": str(bogus)})
    assert bogus.read_bytes().startswith(b"this is not SQLite")


def test_directory_path_refuses_to_load(
    plugin_manager: PluginManager, manifest: Path, tmp_path: Path
) -> None:
    with pytest.raises(PluginLoadError, match="cannot open SQLite database"):
        plugin_manager.load(manifest, config={"path": str(tmp_path)})


def test_installed_plugin_loads_by_name_with_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pip-installed: found through its entry point; the default file is under XDG_DATA_HOME."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    with PluginManager() as manager:
        assert "sqlite-storage" in manager.installed
        store = manager.get_storage("sqlite-storage")
        store.store("hello", b"world")
        assert store.retrieve("hello") == b"world"
    assert (tmp_path / "xdg" / "weaviate-ext" / "sqlite-storage.db").is_file()
