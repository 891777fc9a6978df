"""PluginManager: loading, lookup, dependencies, runtimes, validation, lifecycle."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
from plugin_factory import vectorizer_source, write_plugin

from weaviate_ext import (
    ConfigError,
    DependencyError,
    Identity,
    ManifestError,
    PluginDisabled,
    PluginLoadError,
    PluginManager,
    PluginNotFound,
    PluginNotLoaded,
    PluginTypeError,
    RuntimeNotAllowed,
    RuntimeNotAvailable,
    VectorizerHandle,
    WeaviateExtError,
    hookimpl,
)

CLOSE_LOG = """
    from weaviate_ext import hookimpl
    CLOSED = []

    class Plugin:
        @hookimpl
        def transform(self, data):
            return data.upper()

        @hookimpl
        def plugin_close(self):
            CLOSED.append(True)
"""


def test_load_returns_a_typed_handle_that_calls_the_plugin(manager, tmp_path):
    path = write_plugin(
        tmp_path, "vec", "vectorizer", vectorizer_source(4), capabilities={"dimensions": 4}
    )
    handle = manager.load(path)
    assert isinstance(handle, VectorizerHandle)
    assert manager.get_vectorizer("vec").vectorize_text("abc")[3] == 1.0
    assert manager.names() == ("vec",)
    assert manager.names("reranker") == ()
    assert manager.registry.get_plugin("vec") is not None


def test_unknown_name_lists_what_is_loaded(manager, tmp_path):
    manager.load(write_plugin(tmp_path, "vec", "vectorizer", vectorizer_source()))
    with pytest.raises(PluginNotFound, match=r"no plugin named 'nope' \(loaded: vec\)"):
        manager.get_vectorizer("nope")


def test_wrong_type_says_what_it_is(manager, tmp_path):
    manager.load(write_plugin(tmp_path, "vec", "vectorizer", vectorizer_source()))
    with pytest.raises(PluginTypeError, match="'vec' is a vectorizer, not a reranker"):
        manager.get_reranker("vec")


def test_loading_a_name_twice_is_refused(manager, tmp_path):
    path = write_plugin(tmp_path, "vec", "vectorizer", vectorizer_source())
    manager.load(path)
    with pytest.raises(PluginLoadError, match="already loaded.*use reload"):
        manager.load(path)


def test_bad_manifest_raises_manifest_error(manager, tmp_path):
    path = tmp_path / "plugin.yaml"
    path.write_text("apiVersion: weaviate.io/v1\nkind: Plugin\n")
    with pytest.raises(ManifestError, match="plugin.yaml"):
        manager.load(path)


def test_load_directory_loads_the_good_and_names_the_broken(manager, tmp_path):
    write_plugin(tmp_path, "good-a", "vectorizer", vectorizer_source())
    write_plugin(tmp_path, "good-b", "transformer", CLOSE_LOG)
    write_plugin(tmp_path, "crashes", "vectorizer", "raise RuntimeError('no model file')\n")
    bad = tmp_path / "bad-manifest"
    bad.mkdir()
    (bad / "plugin.yaml").write_text("apiVersion: weaviate.io/v1\nkind: Plugin\nspec: 3\n")
    write_plugin(
        tmp_path,
        "needs-crashes",
        "vectorizer",
        vectorizer_source(),
        dependencies=[{"name": "crashes", "version": "^1.0.0"}],
    )

    result = manager.load_directory(tmp_path)

    assert set(result.loaded) == {"good-a", "good-b"}
    assert not result.ok
    assert "no model file" in str(result.failed["crashes"])
    assert str(bad / "plugin.yaml") in result.failed
    assert isinstance(result.failed["needs-crashes"], DependencyError)
    assert "depends on 'crashes', which failed to load" in str(result.failed["needs-crashes"])
    statuses = {row.name: row for row in manager.plugins()}
    assert statuses["good-a"].status == "loaded"
    assert statuses["crashes"].status == "broken"
    assert "no model file" in statuses["crashes"].reason


def test_load_directory_orders_by_dependencies(manager, tmp_path):
    write_plugin(
        tmp_path,
        "a-user",
        "vectorizer",
        vectorizer_source(),
        dependencies=[
            {"name": "z-base", "version": "^1.2.0"},
            {"name": "weaviate-ext", "version": ">=0.1"},
        ],
    )
    write_plugin(tmp_path, "z-base", "transformer", CLOSE_LOG, version="1.4.2")
    result = manager.load_directory(tmp_path)
    assert result.loaded == ("z-base", "a-user")


def test_dependency_out_of_range_names_both_ends(manager, tmp_path):
    manager.load(write_plugin(tmp_path, "base", "transformer", CLOSE_LOG, version="2.0.0"))
    path = write_plugin(
        tmp_path,
        "user",
        "vectorizer",
        vectorizer_source(),
        dependencies=[{"name": "base", "version": "~1.2"}],
    )
    with pytest.raises(DependencyError, match=r"'user'.*depends on 'base' ~1.2, but 'base' 2.0.0"):
        manager.load(path)


def test_missing_dependency_is_an_error_at_load(manager, tmp_path):
    path = write_plugin(
        tmp_path,
        "user",
        "vectorizer",
        vectorizer_source(),
        dependencies=[{"name": "absent", "version": "1.x"}],
    )
    with pytest.raises(DependencyError, match="depends on 'absent' 1.x, which is not loaded"):
        manager.load(path)


def test_framework_version_dependency(manager, tmp_path):
    path = write_plugin(
        tmp_path,
        "future",
        "vectorizer",
        vectorizer_source(),
        dependencies=[{"name": "weaviate-ext", "version": "^9.0.0"}],
    )
    with pytest.raises(DependencyError, match="'weaviate-ext' \\^9.0.0, but 'weaviate-ext'"):
        manager.load(path)


def test_dependency_cycle_names_both_ends(manager, tmp_path):
    write_plugin(
        tmp_path,
        "one",
        "vectorizer",
        vectorizer_source(),
        dependencies=[{"name": "two", "version": "*"}],
    )
    write_plugin(
        tmp_path,
        "two",
        "vectorizer",
        vectorizer_source(),
        dependencies=[{"name": "one", "version": "*"}],
    )
    write_plugin(tmp_path, "free", "vectorizer", vectorizer_source())
    result = manager.load_directory(tmp_path)
    assert result.loaded == ("free",)
    for name in ("one", "two"):
        message = str(result.failed[name])
        assert "dependency cycle" in message and "one" in message and "two" in message


def test_duplicate_names_in_a_directory(manager, tmp_path):
    write_plugin(tmp_path, "dup", "vectorizer", vectorizer_source(), directory="first")
    write_plugin(tmp_path, "dup", "vectorizer", vectorizer_source(), directory="second")
    write_plugin(tmp_path, "single", "vectorizer", vectorizer_source())
    result = manager.load_directory(tmp_path)
    # neither is picked silently: which one was meant is the user's call
    assert result.loaded == ("single",)
    assert "defined twice" in str(result.failed["dup"])


def test_load_directory_needs_a_directory(manager, tmp_path):
    with pytest.raises(WeaviateExtError, match="not a directory"):
        manager.load_directory(tmp_path / "missing")


def test_allowed_runtimes_refuses_others(tmp_path):
    path = write_plugin(tmp_path, "vec", "vectorizer", vectorizer_source())
    with (
        PluginManager(discover=False, allowed_runtimes={"wasm"}) as manager,
        pytest.raises(RuntimeNotAllowed, match="runtime 'python' is not allowed.*wasm"),
    ):
        manager.load(path)


def test_unknown_runtime_lists_installed_ones(manager, tmp_path):
    path = write_plugin(tmp_path, "vec", "vectorizer", vectorizer_source(), runtime="pyhton")
    with pytest.raises(RuntimeNotAvailable, match=r"'pyhton'.*python.*did you mean 'python'"):
        manager.load(path)


def test_disabled_by_argument_and_environment(tmp_path, monkeypatch):
    one = write_plugin(tmp_path, "one", "vectorizer", vectorizer_source())
    two = write_plugin(tmp_path, "two", "vectorizer", vectorizer_source())
    monkeypatch.setenv("WEAVIATE_EXT_DISABLE", "two, other")
    with PluginManager(discover=False, disabled=["one"]) as manager:
        with pytest.raises(PluginDisabled, match="'one'"):
            manager.load(one)
        with pytest.raises(PluginDisabled, match="'two'"):
            manager.load(two)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            """
            from weaviate_ext import hookimpl
            class Plugin:
                @hookimpl
                def vectorise_text(self, text):
                    return [1.0]
         """,
            "unknown hook 'vectorise_text' \\(did you mean 'vectorize_text'\\?\\)",
        ),
        (
            """
            from weaviate_ext import hookimpl
            class Plugin:
                @hookimpl
                def vectorize_text(self, text):
                    return [1.0]
                @hookimpl
                def rerank(self, query, documents):
                    return []
         """,
            "implements 'rerank', a reranker hook, but its manifest says type 'vectorizer'",
        ),
        (
            """
            class Plugin:
                pass
         """,
            "a vectorizer plugin must implement vectorize_text or vectorize_batch",
        ),
        (
            """
            from weaviate_ext import hookimpl
            class Plugin:
                @hookimpl
                def vectorize_text(self, txt):
                    return [1.0]
         """,
            "invalid hook implementation.*txt",
        ),
    ],
    ids=["misspelled", "other-type", "missing", "bad-argument"],
)
def test_hook_implementations_are_validated(manager, tmp_path, source, message):
    path = write_plugin(tmp_path, "vec", "vectorizer", source)
    with pytest.raises(PluginLoadError, match=message):
        manager.load(path)
    assert manager.registry.get_plugin("vec") is None


def test_storage_must_implement_all_three(manager, tmp_path):
    source = """
        from weaviate_ext import hookimpl
        class Plugin:
            @hookimpl
            def store(self, key, data): pass
            @hookimpl
            def retrieve(self, key): return None
    """
    with pytest.raises(PluginLoadError, match="must implement delete"):
        manager.load(write_plugin(tmp_path, "kv", "storage", source))


def test_setup_failure_and_unhealthy_plugins_are_refused(manager, tmp_path):
    failing = """
        from weaviate_ext import hookimpl
        class Plugin:
            @hookimpl
            def plugin_setup(self, config):
                raise FileNotFoundError("model.bin")
            @hookimpl
            def transform(self, data): return data
    """
    unhealthy = """
        from weaviate_ext import hookimpl
        class Plugin:
            @hookimpl
            def plugin_health(self): return False
            @hookimpl
            def transform(self, data): return data
    """
    with pytest.raises(PluginLoadError, match="failed to start: FileNotFoundError: model.bin"):
        manager.load(write_plugin(tmp_path, "failing", "transformer", failing))
    with pytest.raises(PluginLoadError, match="not healthy"):
        manager.load(write_plugin(tmp_path, "sick", "transformer", unhealthy))
    assert manager.names() == ()


def test_probe_refuses_wrong_dimensions_at_load(manager, tmp_path):
    path = write_plugin(
        tmp_path, "vec", "vectorizer", vectorizer_source(dims=5), capabilities={"dimensions": 4}
    )
    with pytest.raises(PluginLoadError, match="5 dimensions, the manifest declares 4"):
        manager.load(path)


def test_config_errors_name_the_plugin_and_key(manager, tmp_path):
    path = write_plugin(
        tmp_path,
        "vec",
        "vectorizer",
        vectorizer_source(),
        config={"modelPath": {"type": "string", "required": True}},
    )
    with pytest.raises(ConfigError, match="plugin 'vec'.*modelPath"):
        manager.load(path)
    manager.load(path, config={"modelPath": "model.bin"})
    assert manager.config_of("vec")["modelPath"] == "model.bin"


def test_unload_closes_and_handles_stop(manager, tmp_path):
    handle = manager.load(write_plugin(tmp_path, "up", "transformer", CLOSE_LOG))
    module = type(manager.registry.get_plugin("up"))
    closed = __import__(module.__module__).CLOSED
    assert handle.transform("a") == "A"
    manager.unload("up")
    assert closed == [True]
    assert manager.registry.get_plugin("up") is None
    with pytest.raises(PluginNotLoaded):
        handle.transform("a")
    with pytest.raises(PluginNotFound):
        manager.unload("up")


def test_unload_refused_while_others_depend(manager, tmp_path):
    manager.load(write_plugin(tmp_path, "base", "transformer", CLOSE_LOG))
    manager.load(
        write_plugin(
            tmp_path,
            "user",
            "vectorizer",
            vectorizer_source(),
            dependencies=[{"name": "base", "version": "*"}],
        )
    )
    with pytest.raises(DependencyError, match="user depend on it"):
        manager.unload("base")
    manager.unload("user")
    manager.unload("base")


def test_close_closes_every_plugin_once_and_refuses_loads(tmp_path):
    path = write_plugin(tmp_path, "up", "transformer", CLOSE_LOG)
    manager = PluginManager(discover=False)
    manager.load(path)
    module = type(manager.registry.get_plugin("up")).__module__
    manager.close()
    manager.close()
    assert __import__(module).CLOSED == [True]
    with pytest.raises(WeaviateExtError, match="closed"):
        manager.load(path)


AUTH = """
    from weaviate_ext import AuthenticationError, Identity, hookimpl

    class Plugin:
        @hookimpl
        def plugin_setup(self, config):
            self.kind = config["kind"]
            self.verdicts = config.get("verdicts", {{}})

        @hookimpl
        def authenticate(self, credentials):
            if self.kind not in credentials:
                return None
            if credentials[self.kind] != "good":
                raise AuthenticationError("bad " + self.kind)
            return Identity(subject=self.kind + "-user", roles=["reader"])

        @hookimpl
        def authorize(self, identity, resource, action):
            return self.verdicts.get(resource)
"""


def _auth(tmp_path, name, kind, verdicts):
    return write_plugin(
        tmp_path,
        name,
        "auth",
        AUTH.format(),
        config={
            "kind": {"type": "string", "default": kind},
            "verdicts": {"type": "object", "default": verdicts},
        },
    )


def test_authenticate_is_first_result_and_authorize_one_deny_wins(manager, tmp_path):
    from weaviate_ext import AuthenticationError

    manager.load(_auth(tmp_path, "keys", "api_key", {"docs": True, "admin": True}))
    manager.load(_auth(tmp_path, "tokens", "token", {"admin": False}))

    identity = manager.authenticate({"api_key": "good"})
    assert identity == Identity("api_key-user", ("reader",), plugin="keys")
    assert manager.authenticate({"token": "good"}).plugin == "tokens"
    assert manager.authenticate({"other": "x"}) is None
    with pytest.raises(AuthenticationError, match="bad token"):
        manager.authenticate({"token": "forged"})

    assert manager.authorize(identity, "docs", "read") is True
    assert manager.authorize(identity, "admin", "write") is False
    assert manager.authorize(identity, "unknown", "read") is False

    # the raw pluggy hook is firstresult over the same plugins
    raw = manager.registry.hook.authenticate(credentials={"token": "good"}, deadline=None)
    assert raw.subject == "token-user"


def test_pipeline_chains_and_fans_out(manager, tmp_path):
    chunker = """
        from weaviate_ext import hookimpl
        class Plugin:
            @hookimpl
            def transform(self, data):
                return [part for part in data.split(".") if part]
    """
    manager.load(write_plugin(tmp_path, "split", "transformer", chunker))
    manager.load(write_plugin(tmp_path, "upper", "transformer", CLOSE_LOG))
    pipeline = manager.pipeline("split", "upper")
    assert pipeline.run("a.b.c") == ["A", "B", "C"]
    assert pipeline.run_batch(["x.y", "z"]) == ["X", "Y", "Z"]
    assert "split -> upper" in repr(pipeline)
    with pytest.raises(ValueError):
        manager.pipeline()


class Observer:
    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []

    @hookimpl
    def weaviate_ext_plugin_loaded(self, name, manifest):
        self.events.append(("loaded", name, manifest.version))

    @hookimpl
    def weaviate_ext_plugin_reloaded(self, name, old, new):
        self.events.append(("reloaded", name, old.version, new.version))

    @hookimpl
    def weaviate_ext_plugin_unloaded(self, name, manifest):
        self.events.append(("unloaded", name))

    @hookimpl
    def weaviate_ext_call_failed(self, name, hook, error):
        self.events.append(("failed", name, hook, type(error).__name__))


def test_observers_see_the_lifecycle(tmp_path):
    observer = Observer()
    failing = """
        from weaviate_ext import hookimpl
        class Plugin:
            @hookimpl
            def transform(self, data):
                if data == "boom":
                    raise ValueError("boom")
                return data
    """
    path = write_plugin(tmp_path, "t", "transformer", failing)
    with PluginManager(discover=False, observers=[observer]) as manager:
        handle = manager.load(path)
        with pytest.raises(WeaviateExtError):
            handle.transform("boom")
        manager.reload("t")
        manager.unload("t")
    assert observer.events == [
        ("loaded", "t", "1.0.0"),
        ("failed", "t", "transform", "PluginCallError"),
        ("reloaded", "t", "1.0.0", "1.0.0"),
        ("unloaded", "t"),
    ]


def test_stats_count_calls_and_errors(manager, tmp_path):
    handle = manager.load(
        write_plugin(
            tmp_path, "vec", "vectorizer", vectorizer_source(), capabilities={"dimensions": 4}
        )
    )
    for text in ["a", "bb", "ccc"]:
        handle.vectorize_text(text)
    with pytest.raises(WeaviateExtError):
        handle.vectorize_text(b"bytes")  # type: ignore[arg-type]
    stats = manager.stats()["vec"]
    assert stats.calls == 3 and stats.errors == 0 and stats.in_flight == 0
    assert stats.mean_ms > 0 and stats.max_ms >= stats.mean_ms


def test_async_variants_do_not_block_the_loop(manager, tmp_path):
    slow = """
        import time
        from weaviate_ext import hookimpl
        class Plugin:
            @hookimpl
            def vectorize_text(self, text):
                time.sleep(0.2)
                return [1.0, 0.0]
    """
    handle = manager.load(
        write_plugin(tmp_path, "slow", "vectorizer", slow, capabilities={"dimensions": 2})
    )

    async def scenario() -> tuple[np.ndarray, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        vector = await handle.avectorize_text("x")
        task.cancel()
        return vector, ticks

    started = time.monotonic()
    vector, ticks = asyncio.run(scenario())
    assert vector.tolist() == [1.0, 0.0]
    assert ticks >= 5, "the event loop was blocked during the call"
    assert time.monotonic() - started >= 0.2


def test_async_manager_methods(tmp_path):
    path = write_plugin(tmp_path, "vec", "vectorizer", vectorizer_source())

    async def scenario() -> tuple[str, ...]:
        with PluginManager(discover=False) as manager:
            await manager.aload(path)
            await manager.areload("vec")
            names = manager.names()
            await manager.aunload("vec")
            return names

    assert asyncio.run(scenario()) == ("vec",)


def test_entrypoint_errors_are_clear(manager, tmp_path):
    missing_attr = write_plugin(tmp_path, "a", "vectorizer", "X = 1\n", entrypoint="plugin:Nope")
    with pytest.raises(PluginLoadError, match="has no attribute 'Nope'"):
        manager.load(missing_attr)
    raising_init = write_plugin(
        tmp_path,
        "b",
        "vectorizer",
        "class Plugin:\n    def __init__(self):\n        raise OSError('gpu missing')\n",
    )
    with pytest.raises(PluginLoadError, match="OSError: gpu missing"):
        manager.load(raising_init)
    missing_module = write_plugin(tmp_path, "c", "vectorizer", "", entrypoint="nowhere_mod:P")
    (missing_module.parent / "src" / "nowhere_mod.py").unlink()
    with pytest.raises(PluginLoadError, match="cannot import 'nowhere_mod'"):
        manager.load(missing_module)


def test_two_plugins_may_share_a_module_name(manager, tmp_path):
    one = manager.load(write_plugin(tmp_path, "one", "vectorizer", vectorizer_source(4)))
    two = manager.load(write_plugin(tmp_path, "two", "vectorizer", vectorizer_source(6)))
    assert one.vectorize_text("x").shape == (4,)
    assert two.vectorize_text("x").shape == (6,)


def test_module_level_plugin_and_installed_module(manager, tmp_path):
    source = """
        from weaviate_ext import hookimpl

        @hookimpl
        def transform(data):
            return data[::-1]
    """
    handle = manager.load(write_plugin(tmp_path, "rev", "transformer", source, entrypoint="revmod"))
    assert handle.transform("abc") == "cba"


def test_load_manifest_object(manager, tmp_path):
    from weaviate_ext import load_manifest

    manifest = load_manifest(write_plugin(tmp_path, "vec", "vectorizer", vectorizer_source()))
    handle = manager.load_manifest(manifest)
    assert handle.name == "vec" and manager.manifest("vec") == manifest
    assert Path(manager.plugins()[0].source) == manifest.path


def test_plugins_lists_directory_failures_with_their_source(tmp_path, monkeypatch):
    write_plugin(tmp_path, "fine", "vectorizer", vectorizer_source())
    write_plugin(tmp_path, "off", "vectorizer", vectorizer_source())
    crash = write_plugin(tmp_path, "crash", "vectorizer", "raise ImportError('no torch')\n")
    write_plugin(tmp_path, "dup", "vectorizer", vectorizer_source(), directory="d1")
    write_plugin(tmp_path, "dup", "vectorizer", vectorizer_source(), directory="d2")
    monkeypatch.setenv("WEAVIATE_EXT_DISABLE", "off")
    with PluginManager(discover=False) as manager:
        manager.load_directory(tmp_path)
        rows = {row.name: row for row in manager.plugins()}
    assert rows["fine"].status == "loaded"
    assert rows["off"].status == "disabled"
    assert rows["crash"].status == "broken" and rows["crash"].source == str(crash)
    assert rows["crash"].type == "vectorizer" and "no torch" in rows["crash"].reason
    assert rows["crash"].reason.startswith("cannot import"), "no repeated 'plugin' prefix"
    assert rows["dup"].status == "broken" and "defined twice" in rows["dup"].reason


def test_config_error_names_the_plugin_once(manager, tmp_path):
    path = write_plugin(
        tmp_path,
        "vec",
        "vectorizer",
        vectorizer_source(),
        config={"k": {"type": "integer", "required": True}},
    )
    with pytest.raises(ConfigError) as info:
        manager.load(path)
    assert str(info.value).count("plugin 'vec'") == 1


def test_plugins_show_isolation_and_the_runtime_state(manager, tmp_path):
    source = """
        from weaviate_ext import hookimpl

        class Plugin:
            state = ("serving", None)

            @hookimpl
            def plugin_runtime_status(self):
                return self.state

            @hookimpl
            def transform(self, data):
                return data
    """
    manager.load(write_plugin(tmp_path, "t", "transformer", source))
    row = manager.plugins()[0]
    assert row.status == "loaded" and row.reason is None
    assert row.isolation == "none: in the host process (trusted code only)"
    manager.registry.get_plugin("t").state = ("failed", "crashed 3 times in a row")
    row = manager.plugins()[0]
    assert (row.status, row.reason) == ("failed", "crashed 3 times in a row")
