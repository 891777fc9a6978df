"""The reference pages are generated from docstrings; every hookspec is documented and
exercised by a real call; every public name of the host API has a docstring."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from plugin_factory import write_plugin

from weaviate_ext import Identity, PluginManager, WeaviateExtError

ROOT = Path(__file__).resolve().parent.parent


def _generator_module():
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts/gen_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hooks_doc_is_generated_from_the_hookspecs():
    gen = _generator_module()
    names = gen.hookspec_names()
    assert len(names) == 23
    text = (ROOT / "docs" / "hooks.md").read_text()
    assert text == gen.render(), "docs/hooks.md is stale: run python scripts/gen_docs.py"
    for name in names:
        assert f"### `{name}`" in text


def test_api_doc_is_current_and_every_public_name_has_a_docstring():
    import inspect

    import weaviate_ext

    gen = _generator_module()
    assert (ROOT / "docs" / "api.md").read_text() == gen.render_api(), "run scripts/gen_docs.py"
    undocumented = []
    for name in weaviate_ext.__all__:
        obj = getattr(weaviate_ext, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        if not inspect.getdoc(obj):
            undocumented.append(name)
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            for member_name, member in gen._members(obj):
                if not inspect.getdoc(member):
                    undocumented.append(f"{name}.{member_name}")
    assert undocumented == []


RECORDING = {
    "vectorizer": """
        import hook_record
        from weaviate_ext import hookimpl
        class Plugin:
            @hookimpl
            def plugin_setup(self, config, manifest):
                hook_record.CALLED.add("plugin_setup")
            @hookimpl
            def plugin_health(self):
                hook_record.CALLED.add("plugin_health")
                return True
            @hookimpl
            def plugin_close(self):
                hook_record.CALLED.add("plugin_close")
            @hookimpl
            def plugin_runtime_status(self):
                hook_record.CALLED.add("plugin_runtime_status")
                return ("serving", None)
            @hookimpl
            def vectorize_text(self, text, deadline):
                hook_record.CALLED.add("vectorize_text")
                return [1.0, 0.0]
            @hookimpl
            def vectorize_batch(self, texts, deadline):
                hook_record.CALLED.add("vectorize_batch")
                return [[1.0, 0.0]] * len(texts)
    """,
    "transformer": """
        import hook_record
        from weaviate_ext import hookimpl
        class Plugin:
            @hookimpl
            def transform(self, data):
                hook_record.CALLED.add("transform")
                if data == "fail":
                    raise ValueError("asked to fail")
                return data
            @hookimpl
            def transform_batch(self, items):
                hook_record.CALLED.add("transform_batch")
                return list(items)
    """,
    "reranker": """
        import hook_record
        from weaviate_ext import hookimpl
        class Plugin:
            @hookimpl
            def rerank(self, query, documents):
                hook_record.CALLED.add("rerank")
                return [float(len(d)) for d in documents]
    """,
    "generator": """
        import hook_record
        from weaviate_ext import hookimpl
        class Plugin:
            @hookimpl
            def generate(self, prompt, options):
                hook_record.CALLED.add("generate")
                return prompt
            @hookimpl
            def generate_stream(self, prompt, options):
                hook_record.CALLED.add("generate_stream")
                yield prompt
    """,
    "storage": """
        import hook_record
        from weaviate_ext import hookimpl
        class Plugin:
            data = {}
            @hookimpl
            def store(self, key, data):
                hook_record.CALLED.add("store")
                self.data[key] = data
            @hookimpl
            def retrieve(self, key):
                hook_record.CALLED.add("retrieve")
                return self.data.get(key)
            @hookimpl
            def delete(self, key):
                hook_record.CALLED.add("delete")
                return self.data.pop(key, None) is not None
    """,
    "auth": """
        import hook_record
        from weaviate_ext import Identity, hookimpl
        class Plugin:
            @hookimpl
            def authenticate(self, credentials):
                hook_record.CALLED.add("authenticate")
                return Identity("alice") if credentials.get("user") == "alice" else None
            @hookimpl
            def authorize(self, identity, resource, action):
                hook_record.CALLED.add("authorize")
                return identity.subject == "alice"
    """,
}


@pytest.fixture
def record(monkeypatch):
    import types

    module = types.ModuleType("hook_record")
    module.CALLED = set()
    monkeypatch.setitem(sys.modules, "hook_record", module)
    return module.CALLED


def test_every_hookspec_is_exercised(tmp_path, record, monkeypatch):
    from test_discovery import install

    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    install(site, "packaged")

    class Observer:
        from weaviate_ext import hookimpl

        @hookimpl
        def weaviate_ext_plugin_loaded(self, name, manifest):
            record.add("weaviate_ext_plugin_loaded")

        @hookimpl
        def weaviate_ext_plugin_unloaded(self, name, manifest):
            record.add("weaviate_ext_plugin_unloaded")

        @hookimpl
        def weaviate_ext_plugin_reloaded(self, name, old, new):
            record.add("weaviate_ext_plugin_reloaded")

        @hookimpl
        def weaviate_ext_call_failed(self, name, hook, error):
            record.add("weaviate_ext_call_failed")

    def before(hook_name, hook_impls, kwargs):
        if hook_name in (
            "weaviate_ext_make_plugin",
            "weaviate_ext_discover",
            "weaviate_ext_isolation",
        ):
            record.add(hook_name)

    for kind, source in RECORDING.items():
        write_plugin(
            tmp_path / "plugins",
            f"rec-{kind}",
            kind,
            source,
            capabilities={"dimensions": 2} if kind == "vectorizer" else None,
        )

    with PluginManager(observers=[Observer()]) as manager:
        manager.registry.add_hookcall_monitoring(before, lambda *a: None)
        manager.load_directory(tmp_path / "plugins")
        manager.get_transformer("packaged").transform("x")
        vectorizer = manager.get_vectorizer("rec-vectorizer")
        vectorizer.vectorize_text("x")
        vectorizer.vectorize_batch(["x", "y"])
        transformer = manager.get_transformer("rec-transformer")
        transformer.transform_batch(["a"])
        with pytest.raises(WeaviateExtError):
            transformer.transform("fail")
        manager.get_reranker("rec-reranker").rerank("q", ["a", "bb"])
        generator = manager.get_generator("rec-generator")
        assert generator.generate("hi") == "hi"
        assert list(generator.generate_stream("hi")) == ["hi"]
        storage = manager.get_storage("rec-storage")
        storage.store("k", b"v")
        assert storage.retrieve("k") == b"v"
        assert storage.delete("k")
        identity = manager.authenticate({"user": "alice"})
        assert identity == Identity("alice", plugin="rec-auth")
        assert manager.authorize(identity, "r", "read")
        manager.reload("rec-vectorizer")
        assert {row.status for row in manager.plugins() if row.name.startswith("rec-")} == {
            "loaded"
        }

    gen = _generator_module()
    assert set(gen.hookspec_names()) - record == set()
