"""lmdb-storage through the framework: conformance (with odd keys, bad input and threads),
persistence, long keys, limits, failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lmdb
import pytest

from weaviate_ext import (
    InvalidInput,
    PluginLoadError,
    PluginManager,
    ResourceLimitExceeded,
    StorageHandle,
)
from weaviate_ext.testing import check_plugin, check_reopen_durability


def test_conformance(storage: StorageHandle) -> None:
    """The suite, with odd keys (NUL, lone surrogates, paths, 10,000 characters: hashed),
    bad input (from the handle) and 8 threads at once."""
    check_plugin(storage, odd_keys=True, threads=8).raise_for_failures()


def test_values_survive_a_new_manager(manifest: Path, db_path: Path) -> None:
    check_reopen_durability(manifest, {"path": str(db_path)})


def test_durable_by_default(storage: StorageHandle, db_path: Path) -> None:
    from weaviate_ext_lmdb_storage.plugin import _OPEN

    flags = _OPEN[str(db_path.resolve())].env.flags()
    assert flags["sync"] is True
    assert flags["metasync"] is True
    assert flags["writemap"] is False


def test_long_keys_are_hashed_without_colliding(storage: StorageHandle) -> None:
    """The odd keys of the conformance suite are in ``test_conformance``; these are LMDB's
    own: around its 511-byte key limit, and long keys that share a 600-byte head."""
    long_a = "x" * 600 + "a"  # longer than LMDB's 511-byte keys: stored hashed
    long_b = "x" * 600 + "b"
    keys = [long_a, long_b]
    keys.append("é" * 255)  # 510 bytes: the longest direct key is 510 (+1 prefix byte)
    keys.append("é" * 256)  # 512 bytes: hashed
    for i, key in enumerate(keys):
        storage.store(key, bytes([i]) * 3)
    for i, key in enumerate(keys):
        assert storage.retrieve(key) == bytes([i]) * 3, key[:20]
    assert storage.retrieve("x" * 600) is None
    assert storage.delete(long_a) is True
    assert storage.retrieve(long_a) is None
    assert storage.retrieve(long_b) == bytes([1]) * 3
    assert storage.delete(long_a) is False


def test_plugin_itself_refuses_bad_input() -> None:
    """Called without the handle (another bridge, a direct call), the hooks still check."""
    from weaviate_ext_lmdb_storage.plugin import check_data, encode_key

    with pytest.raises(InvalidInput):
        encode_key("")
    with pytest.raises(InvalidInput):
        encode_key(3)
    with pytest.raises(InvalidInput):
        check_data("str")
    assert check_data(memoryview(b"ab")) == b"ab"


def test_reload_shares_the_environment(
    plugin_manager: PluginManager, manifest: Path, db_path: Path
) -> None:
    store = plugin_manager.load(manifest, config={"path": str(db_path)})
    store.store("kept", b"across reload")
    plugin_manager.reload("lmdb-storage")  # the new version opens the same directory
    assert store.retrieve("kept") == b"across reload"
    store.store("after", b"reload")
    assert store.retrieve("after") == b"reload"


def test_reload_with_another_map_size_is_refused_clearly(
    plugin_manager: PluginManager, manifest: Path, db_path: Path
) -> None:
    store = plugin_manager.load(manifest, config={"path": str(db_path)})
    store.store("k", b"v")
    with pytest.raises(PluginLoadError, match="already open in this process with map_size"):
        plugin_manager.reload("lmdb-storage", config={"path": str(db_path), "map_size": "2Gi"})
    assert store.retrieve("k") == b"v"  # the old version keeps serving
    plugin_manager.unload("lmdb-storage")
    bigger = plugin_manager.load(manifest, config={"path": str(db_path), "map_size": "2Gi"})
    assert bigger.retrieve("k") == b"v"


def test_full_map_gives_resource_limit(load_plugin: Any, manifest: Path, db_path: Path) -> None:
    store = load_plugin(manifest, config={"path": str(db_path), "map_size": "1Mi"})
    store.store("small", b"fits")
    with pytest.raises(ResourceLimitExceeded, match=r"is full \(map_size 1048576 bytes\)"):
        store.store("big", b"\x01" * (2 * 1024 * 1024))
    assert store.retrieve("big") is None
    assert store.retrieve("small") == b"fits"
    store.store("small-2", b"still works")
    assert store.retrieve("small-2") == b"still works"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"map_size": "lots"}, "'map_size': 'lots' is not a size like 1Gi"),
        ({"map_size": "2GB"}, "is not a size"),
        ({"map_size": "1Ki"}, "'map_size' must be between"),
        ({"map_size": 1024}, "'map_size'"),
        ({"max_readers": 0}, "'max_readers' must be between"),
        ({"sync": "yes"}, "'sync'"),
        ({"unknown_key": 1}, "unknown_key"),
    ],
)
def test_bad_config_refuses_to_load(
    plugin_manager: PluginManager, manifest: Path, db_path: Path, config: dict, message: str
) -> None:
    with pytest.raises(Exception, match=message):
        plugin_manager.load(manifest, config={"path": str(db_path), **config})
    assert "lmdb-storage" not in plugin_manager.names()


def test_sizes() -> None:
    from weaviate_ext_lmdb_storage.plugin import parse_size

    assert parse_size("1048576") == 2**20
    assert parse_size("512Mi") == 512 * 2**20
    assert parse_size("1.5Gi") == 3 * 2**29
    assert parse_size("1G") == 10**9
    for bad in ("", "Gi", "-1Gi", "1 GiB", "1e9"):
        with pytest.raises(ValueError):
            parse_size(bad)


def test_not_an_environment_refuses_to_load(
    plugin_manager: PluginManager, manifest: Path, tmp_path: Path
) -> None:
    bogus = tmp_path / "bogus"
    bogus.mkdir()
    (bogus / "data.mdb").write_bytes(b"this is not LMDB at all " * 1000)
    with pytest.raises(PluginLoadError, match=r"cannot open the LMDB environment .*bogus"):
        plugin_manager.load(manifest, config={"path": str(bogus)})
    assert (bogus / "data.mdb").read_bytes().startswith(b"this is not LMDB")


def test_file_path_refuses_to_load(
    plugin_manager: PluginManager, manifest: Path, tmp_path: Path
) -> None:
    a_file = tmp_path / "plain-file"
    a_file.write_text("x")
    with pytest.raises(PluginLoadError, match="cannot create the LMDB directory"):
        plugin_manager.load(manifest, config={"path": str(a_file)})


def test_environment_closes_with_its_last_user(
    plugin_manager: PluginManager, manifest: Path, db_path: Path
) -> None:
    from weaviate_ext_lmdb_storage.plugin import _OPEN

    plugin_manager.load(manifest, config={"path": str(db_path)}).store("k", b"v")
    assert str(db_path.resolve()) in _OPEN
    plugin_manager.unload("lmdb-storage")
    assert str(db_path.resolve()) not in _OPEN
    env = lmdb.open(str(db_path), readonly=True, lock=False)  # no longer open in-process
    try:
        with env.begin() as txn:
            assert txn.get(b"kk") == b"v"
    finally:
        env.close()


def test_installed_plugin_loads_by_name_with_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pip-installed: found through its entry point; the default is under XDG_DATA_HOME."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    with PluginManager() as manager:
        assert "lmdb-storage" in manager.installed
        store = manager.get_storage("lmdb-storage")
        store.store("hello", b"world")
        assert store.retrieve("hello") == b"world"
    assert (tmp_path / "xdg" / "weaviate-ext" / "lmdb-storage" / "data.mdb").is_file()
