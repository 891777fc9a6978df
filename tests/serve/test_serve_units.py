"""Pieces of the server that need no server: the cache, settings, error messages,
bearer tokens and which plugin a changed file belongs to."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest
from conftest import EXAMPLES

from weaviate_ext import (
    ConfigError,
    DeadlineExceeded,
    InvalidInput,
    PluginCrashed,
    PluginManager,
    PluginUnavailable,
    ResourceLimitExceeded,
    WeaviateExtError,
)
from weaviate_ext.serve.auth import OPEN_PATHS, bearer_token
from weaviate_ext.serve.cache import MISSING, ResultCache
from weaviate_ext.serve.errors import ApiError, describe_validation, error_body, from_framework
from weaviate_ext.serve.reload import affected_plugins, watch_roots
from weaviate_ext.serve.settings import ServeSettings
from weaviate_ext.serve.state import ServeState

# -- the cache --------------------------------------------------------------------------------


def test_cache_is_bounded_least_recently_used_first() -> None:
    cache = ResultCache(3)
    for i in range(3):
        cache.put(("p", 0, "vector", f"t{i}"), i)
    assert cache.get(("p", 0, "vector", "t0")) == 0  # t0 is now the most recent
    cache.put(("p", 0, "vector", "t3"), 3)
    assert len(cache) == 3
    assert cache.get(("p", 0, "vector", "t1")) is MISSING
    assert [cache.get(("p", 0, "vector", f"t{i}")) for i in (0, 2, 3)] == [0, 2, 3]


def test_invalidation_forgets_a_plugin_and_refuses_stale_puts() -> None:
    cache = ResultCache(10)
    generation = cache.generation("a")
    cache.put(("a", generation, "vector", "x"), 1)
    cache.put(("b", cache.generation("b"), "vector", "x"), 2)
    cache.invalidate("a")  # a reload of "a"
    assert cache.get(("a", generation, "vector", "x")) is MISSING
    assert cache.get(("b", 0, "vector", "x")) == 2
    # a call that started before the reload finishes after it: its answer is not kept
    cache.put(("a", generation, "vector", "y"), "old")
    assert cache.get(("a", generation, "vector", "y")) is MISSING
    assert cache.generation("a") == generation + 1


def test_cache_is_thread_safe() -> None:
    cache = ResultCache(50)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(2000):
                key = ("p", cache.generation("p"), "vector", f"{(n * i) % 97}")
                value = cache.get(key)
                if value is not MISSING:
                    assert value == key[3]
                cache.put(key, key[3])
                if i % 500 == 0:
                    cache.invalidate("p")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(cache) <= 50


# -- settings -----------------------------------------------------------------------------------


def test_settings_from_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "host.yaml"
    config.write_text("file-store: {path: /tmp/x}\n")
    settings = ServeSettings.from_env(
        {
            "WEAVIATE_EXT_PLUGINS": f"/a{':'}/b",
            "AUTHENTICATION_ALLOWED_TOKENS": " t1 ,t2,, ",
            "ENABLE_CACHE": "true",
            "WEAVIATE_EXT_SERVE_CONFIG_FILE": str(config),
            "WEAVIATE_EXT_SERVE_VECTORIZER": "v",
            "WEAVIATE_EXT_SERVE_MAX_BATCH": "7",
            "WEAVIATE_EXT_SERVE_TIMEOUT": "2.5",
            "WEAVIATE_EXT_SERVE_RELOAD": "1",
        }
    )
    assert settings.plugin_dirs == ("/a", "/b")
    assert settings.tokens == ("t1", "t2") and settings.auth_enabled
    assert settings.cache and settings.reload
    assert settings.vectorizer == "v" and settings.max_batch == 7 and settings.timeout == 2.5
    assert settings.config == {"file-store": {"path": "/tmp/x"}}
    assert "t1" not in repr(settings), "tokens are not in the repr"
    assert not ServeSettings.from_env({}).auth_enabled


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="MAX_BATCH: not a number"):
        ServeSettings.from_env({"WEAVIATE_EXT_SERVE_MAX_BATCH": "many"})
    with pytest.raises(ConfigError, match="max_batch must be at least 1"):
        ServeSettings(max_batch=0)
    with pytest.raises(ConfigError, match="timeout must be > 0"):
        ServeSettings(timeout=0)


def test_settings_file_is_private_and_round_trips(tmp_path: Path) -> None:
    settings = ServeSettings(
        plugin_dirs=("d",), tokens=("secret-token",), config={"p": {"k": 1}}, cache=True
    )
    path = tmp_path / "settings.json"
    settings.write(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ServeSettings.read(path) == settings
    assert ServeSettings.from_env({"WEAVIATE_EXT_SERVE_SETTINGS_FILE": str(path)}) == settings
    path.write_text('{"nope": 1}')
    with pytest.raises(ConfigError, match="unknown settings"):
        ServeSettings.read(path)


# -- errors and tokens ----------------------------------------------------------------------------


def test_validation_messages() -> None:
    malformed = [{"type": "json_invalid", "loc": ("body", 9), "ctx": {"error": "Expecting value"}}]
    assert describe_validation(malformed) == (
        400,
        "malformed JSON: Expecting value (at character 9)",
    )
    wrong = [
        {"type": "string_type", "loc": ("body", "text"), "msg": "Input should be a valid string"},
        {"type": "missing", "loc": ("body", "config", "x"), "msg": "Field required"},
    ]
    assert describe_validation(wrong) == (
        422,
        "invalid request: text: Input should be a valid string; config.x: Field required",
    )


def test_error_shapes() -> None:
    error = ApiError(502, "plugin 'x' failed", plugin="x")
    assert error_body("/vectors", error) == {"error": "plugin 'x' failed", "plugin": "x"}
    assert error_body("/v1/embeddings", error)["error"] == {
        "message": "plugin 'x' failed",
        "type": "server_error",
        "param": None,
        "code": None,
    }


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("abc", None),
        (None, None),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_open_paths() -> None:
    for path in ("/.well-known/live", "/.well-known/ready", "/openapi.json", "/docs"):
        assert OPEN_PATHS.match(path), path
    # per-plugin readiness names a plugin: it needs a token, or anybody could probe names
    assert not OPEN_PATHS.match("/inference/x/.well-known/ready")
    for path in ("/vectors", "/metrics", "/.well-known/livex", "/inference/x/vectors", "/docs/x"):
        assert not OPEN_PATHS.match(path), path


# -- reload: which plugin a changed file belongs to ------------------------------------------------


def test_changed_files_map_to_plugins(manager: PluginManager, tmp_path: Path) -> None:
    manager.load(EXAMPLES / "custom-vectorizer" / "plugin.yaml")
    manager.load(EXAMPLES / "custom-vectorizer" / "plugin-native.yaml")
    manager.load(EXAMPLES / "python-hash-vectorizer" / "plugin.yaml")
    new_dir = tmp_path / "new-plugin"
    new_dir.mkdir()
    (new_dir / "plugin.yaml").write_text("x")
    settings = ServeSettings(
        plugin_dirs=(str(tmp_path),),
        plugin_files=(str(EXAMPLES / "custom-vectorizer" / "plugin-native.yaml"),),
    )
    state = ServeState(settings, manager)
    reload, new = affected_plugins(
        state,
        [
            EXAMPLES / "python-hash-vectorizer" / "src" / "hash_embedder.py",
            EXAMPLES / "custom-vectorizer" / "plugin-binary.so",
            new_dir / "plugin.yaml",
            tmp_path / "unrelated.txt",
        ],
    )
    assert sorted(reload) == ["custom-embedder", "custom-embedder-native", "hash-embedder"]
    assert new == [(new_dir / "plugin.yaml").resolve()]
    roots = watch_roots(state)
    assert set(roots) == {tmp_path.resolve(), (EXAMPLES / "custom-vectorizer").resolve()}


def test_the_command_binds_loopback_by_default() -> None:
    from weaviate_ext.cli._serve import serve_command

    defaults = {param.name: param.default for param in serve_command.params}
    assert defaults["host"] == "127.0.0.1"
    assert defaults["port"] == 8000


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidInput("empty text"), 422),
        (DeadlineExceeded("p", "vectorize_batch", "too slow"), 504),
        (PluginUnavailable("p", "vectorize_batch", "no replica serving"), 503),
        (ResourceLimitExceeded("p", "vectorize_batch", "memory"), 503),
        (PluginCrashed("p", "vectorize_batch", "trapped"), 502),
    ],
)
def test_framework_errors_map_to_http_statuses(error: WeaviateExtError, status: int) -> None:
    answer = from_framework(error)
    assert answer.status == status
