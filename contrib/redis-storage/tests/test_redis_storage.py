"""redis-storage through the framework against real redis-server processes."""

from __future__ import annotations

import logging
import traceback
from pathlib import Path
from typing import Any

import pytest
from conftest import RedisServer, free_port

from weaviate_ext import (
    InvalidInput,
    PluginCallError,
    PluginLoadError,
    PluginManager,
    ResourceLimitExceeded,
    StorageHandle,
)
from weaviate_ext.testing import check_plugin


def test_conformance(storage: StorageHandle) -> None:
    """The suite, with odd keys (NUL, lone surrogates, paths, ``*``, 10,000 characters),
    bad input (from the handle) and 8 threads at once."""
    check_plugin(storage, odd_keys=True, threads=8).raise_for_failures()


def test_keys_live_under_the_prefix(
    storage: StorageHandle, shared_redis: RedisServer, prefix: str
) -> None:
    storage.store("a/b", b"\x00value")
    with shared_redis.client() as client:
        assert client.get(prefix.encode() + b"a/b") == b"\x00value"
        assert client.get(b"a/b") is None
        client.set(prefix.encode() + "from-outside-ключ".encode(), b"x")
    assert storage.retrieve("from-outside-ключ") == b"x"


def test_prefixes_do_not_see_each_other(
    load_plugin: Any, plugin_manager: PluginManager, manifest: Path, shared_redis: RedisServer
) -> None:
    one = load_plugin(manifest, config={"unix_socket": shared_redis.socket, "prefix": "one:"})
    one.store("k", b"1")
    plugin_manager.unload("redis-storage")
    two = load_plugin(manifest, config={"unix_socket": shared_redis.socket, "prefix": "two:"})
    assert two.retrieve("k") is None
    two.store("k", b"2")
    assert two.delete("k") is True
    with shared_redis.client() as client:
        assert client.get(b"one:k") == b"1"
        client.delete(b"one:k")


def test_plugin_itself_refuses_bad_input() -> None:
    from weaviate_ext_redis_storage.plugin import check_data, encode_key

    with pytest.raises(InvalidInput):
        encode_key("")
    with pytest.raises(InvalidInput):
        encode_key(b"k")
    with pytest.raises(InvalidInput):
        check_data("str")


def test_tcp_url_and_db(load_plugin: Any, manifest: Path, start_redis: Any) -> None:
    server = start_redis(port=free_port())
    store = load_plugin(manifest, config={"url": f"{server.url}/3", "prefix": ""})
    store.store("k", b"in db 3")
    with server.client() as client:
        assert client.get(b"k") is None  # db 0
        client.select(3)
        assert client.get(b"k") == b"in db 3"


def test_installed_plugin_loads_by_name(start_redis: Any) -> None:
    server = start_redis(port=free_port())
    with PluginManager(config={"redis-storage": {"url": server.url}}) as manager:
        assert "redis-storage" in manager.installed
        store = manager.get_storage("redis-storage")
        store.store("hello", b"world")
        assert store.retrieve("hello") == b"world"
    with server.client() as client:
        assert client.get(b"weaviate-ext:hello") == b"world"  # the default prefix


def test_connection_refused_refuses_to_load(plugin_manager: PluginManager, manifest: Path) -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(PluginLoadError) as info:
        plugin_manager.load(
            manifest, config={"url": f"redis://127.0.0.1:{port}", "socket_timeout": 2}
        )
    message = str(info.value)
    assert f"cannot connect to Redis at redis://127.0.0.1:{port}" in message
    assert "Connection refused" in message
    assert "Traceback" not in message


def test_missing_unix_socket_refuses_to_load(
    plugin_manager: PluginManager, manifest: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "no.sock"
    with pytest.raises(PluginLoadError, match=r"cannot connect to Redis at unix:.*no\.sock"):
        plugin_manager.load(manifest, config={"unix_socket": str(missing)})


def test_server_gone_mid_run_is_a_call_error(
    load_plugin: Any, manifest: Path, start_redis: Any
) -> None:
    server = start_redis()
    store = load_plugin(manifest, config={"unix_socket": server.socket, "socket_timeout": 2})
    store.store("k", b"v")
    server.stop()
    with pytest.raises(PluginCallError, match=r"redis-storage.*store.*cannot reach Redis at unix:"):
        store.store("k", b"w")
    with pytest.raises(PluginCallError, match="cannot reach Redis"):
        store.retrieve("k")


def test_maxmemory_gives_resource_limit(load_plugin: Any, manifest: Path, start_redis: Any) -> None:
    server = start_redis(extra=["--maxmemory", "4mb", "--maxmemory-policy", "noeviction"])
    store = load_plugin(manifest, config={"unix_socket": server.socket})
    store.store("small", b"fits")
    with pytest.raises(ResourceLimitExceeded, match=r"is out of memory \(.*maxmemory"):
        for i in range(40):  # at most 20 MiB: the server refuses long before
            store.store(f"big-{i}", b"\x01" * (512 * 1024))
    assert store.retrieve("small") == b"fits"


SECRET = "s3cr3t-Pa55word-for-redis-tests"


def _all_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)


def test_password_works_and_never_shows(
    load_plugin: Any,
    plugin_manager: PluginManager,
    manifest: Path,
    start_redis: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    server = start_redis(extra=["--requirepass", SECRET])
    store = load_plugin(manifest, config={"unix_socket": server.socket, "password": SECRET})
    store.store("k", b"v")
    assert store.retrieve("k") == b"v"
    shown = [
        repr(store),
        repr(plugin_manager.config_of("redis-storage")),
        str(plugin_manager.config_of("redis-storage")),
        repr(plugin_manager.plugins()),
        caplog.text,
    ]
    assert not [text for text in shown if SECRET in text]
    assert "**********" in repr(plugin_manager.config_of("redis-storage"))


@pytest.mark.parametrize("password", [None, "wrong-" + SECRET])
def test_wrong_or_missing_password_is_refused_without_showing_it(
    plugin_manager: PluginManager,
    manifest: Path,
    start_redis: Any,
    caplog: pytest.LogCaptureFixture,
    password: str | None,
) -> None:
    caplog.set_level(logging.DEBUG)
    server = start_redis(extra=["--requirepass", SECRET])
    config: dict[str, Any] = {"unix_socket": server.socket}
    if password is not None:
        config["password"] = password
    with pytest.raises(PluginLoadError, match="refused the credentials") as info:
        plugin_manager.load(manifest, config=config)
    text = _all_text(info.value) + caplog.text + repr(plugin_manager.plugins())
    assert SECRET not in text
    if password is None:
        assert "requires a password (set the secret config key 'password')" in str(info.value)


def test_password_changed_under_a_running_plugin(
    load_plugin: Any, manifest: Path, start_redis: Any
) -> None:
    server = start_redis(extra=["--requirepass", SECRET])
    store = load_plugin(manifest, config={"unix_socket": server.socket, "password": SECRET})
    store.store("k", b"v")
    with server.client() as client:
        client.config_set("requirepass", "another-" + SECRET)
        client.client_kill_filter(skipme=True)  # drop the plugin's connections
    with pytest.raises(PluginCallError) as info:
        store.retrieve("k")
    assert "refused the credentials" in str(info.value)
    assert SECRET not in _all_text(info.value)


def test_password_in_url_is_refused(plugin_manager: PluginManager, manifest: Path) -> None:
    with pytest.raises(Exception, match="must not contain a password") as info:
        plugin_manager.load(manifest, config={"url": f"redis://user:{SECRET}@127.0.0.1:1"})
    assert SECRET not in _all_text(info.value)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"url": "redis://127.0.0.1:1", "unix_socket": "/tmp/x.sock"}, "either"),
        ({"url": "http://127.0.0.1:1"}, "must start with redis:// or rediss://"),
        ({"url": "redis://127.0.0.1:notaport"}, "not a valid URL"),
        ({"url": "redis:///0"}, "names no host"),
        ({"db": -1}, "'db' must be 0 or more"),
        ({"socket_timeout": 0}, "'socket_timeout' must be more than 0"),
        ({"max_connections": 0}, "'max_connections' must be at least 1"),
        ({"prefix": 5}, "'prefix'"),
    ],
)
def test_bad_config_refuses_to_load(
    plugin_manager: PluginManager, manifest: Path, config: dict, message: str
) -> None:
    with pytest.raises(Exception, match=message):
        plugin_manager.load(manifest, config=config)
    assert "redis-storage" not in plugin_manager.names()


def test_no_persistence_is_logged(
    load_plugin: Any,
    manifest: Path,
    shared_redis: RedisServer,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="weaviate_ext.redis_storage")
    load_plugin(manifest, config={"unix_socket": shared_redis.socket, "prefix": prefix})
    assert "has no append-only file" in caplog.text


def test_reload_keeps_serving(
    plugin_manager: PluginManager, manifest: Path, shared_redis: RedisServer, prefix: str
) -> None:
    store = plugin_manager.load(
        manifest, config={"unix_socket": shared_redis.socket, "prefix": prefix}
    )
    store.store("kept", b"across reload")
    plugin_manager.reload("redis-storage")
    assert store.retrieve("kept") == b"across reload"
    assert store.delete("kept") is True


def test_missing_redis_server_fails_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from conftest import redis_server_binary

    monkeypatch.setenv("REDIS_SERVER", str(tmp_path / "no-redis-server"))
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y redis-server"):
        redis_server_binary()
