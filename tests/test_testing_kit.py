"""The test kit: the conformance suite catches broken plugins, and the pytest fixtures work.

Broken plugins are plain objects defined here and served by a test bridge for the
private runtime ``testkit``, so each loads through the real manager and handles.
"""

from __future__ import annotations

import random
import shutil
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from weaviate_ext import (
    AuthenticationError,
    Identity,
    Manifest,
    PluginConfig,
    PluginManager,
    hookimpl,
)
from weaviate_ext.manifest import parse_manifest
from weaviate_ext.testing import (
    CheckResult,
    ConformanceReport,
    check_auth,
    check_generator,
    check_plugin,
    check_reranker,
    check_storage,
    check_transformer,
    check_vectorizer,
)

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "plugins"
DIMS = 8


class TestBridge:
    """Serves the objects of :attr:`objects` by manifest name, for ``runtime: testkit``."""

    __test__ = False

    def __init__(self) -> None:
        self.objects: dict[str, object] = {}

    @hookimpl
    def weaviate_ext_make_plugin(self, manifest: Manifest, config: PluginConfig) -> object | None:
        if manifest.spec.runtime != "testkit":
            return None
        return self.objects[manifest.name]


@pytest.fixture
def bridge() -> TestBridge:
    return TestBridge()


@pytest.fixture
def manager(bridge: TestBridge) -> Iterator[PluginManager]:
    with PluginManager(discover=False, bridges=[bridge]) as m:
        yield m


def load(
    manager: PluginManager,
    bridge: TestBridge,
    obj: object,
    plugin_type: str,
    capabilities: str = "",
    name: str = "under-test",
) -> Any:
    """Load ``obj`` as plugin ``name`` of ``plugin_type`` through the test bridge."""
    text = textwrap.dedent(
        f"""\
        apiVersion: weaviate.io/v1
        kind: Plugin
        metadata:
          name: {name}
          version: 1.0.0
        spec:
          type: {plugin_type}
          runtime: testkit
          capabilities: {{{capabilities}}}
        """
    )
    bridge.objects[name] = obj
    return manager.load_manifest(parse_manifest(text))


def failed(report: ConformanceReport) -> set[str]:
    return {r.name for r in report.failures}


# -- vectorizers ---------------------------------------------------------------------------


def unit(vector: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(vector)
    return (vector / norm if norm else vector).astype(np.float32)


def text_vector(text: str) -> np.ndarray:
    """A deterministic, normalised toy embedding of ``text``."""
    vector = np.zeros(DIMS, dtype=np.float64)
    for i, byte in enumerate(text.encode("utf-8")):
        vector[(byte + i) % DIMS] += 1.0
    vector[0] += 1.0
    return unit(vector)


class GoodVectorizer:
    @hookimpl
    def vectorize_text(self, text: str) -> np.ndarray:
        return text_vector(text)

    @hookimpl
    def vectorize_batch(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([text_vector(t) for t in texts])


class WrongDimsOnUnicode(GoodVectorizer):
    """Declares 8 dimensions but returns 4 for text that is not ASCII."""

    @hookimpl
    def vectorize_text(self, text: str) -> np.ndarray:
        vector = text_vector(text)
        return vector if text.isascii() else vector[:4]


class BatchDiffers(GoodVectorizer):
    """Batch rows are shifted by one text: a classic off-by-one."""

    @hookimpl
    def vectorize_batch(self, texts: Sequence[str]) -> np.ndarray:
        shifted = [*texts[1:], texts[0]] if len(texts) > 1 else list(texts)
        return np.stack([text_vector(t) for t in shifted])


class RandomVectorizer:
    """Random unit vectors, although its manifest says ``deterministic: true``."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng()

    @hookimpl
    def vectorize_text(self, text: str) -> np.ndarray:
        return unit(self.rng.standard_normal(DIMS))


class UnnormalizedVectorizer(GoodVectorizer):
    @hookimpl
    def vectorize_text(self, text: str) -> np.ndarray:
        return text_vector(text) * 3.0

    @hookimpl
    def vectorize_batch(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([text_vector(t) * 3.0 for t in texts])


class CrashesOnLongText(GoodVectorizer):
    @hookimpl
    def vectorize_text(self, text: str) -> np.ndarray:
        if len(text) > 10_000:
            raise MemoryError("text too long")
        return text_vector(text)


VECTORIZER_CAPS = f"dimensions: {DIMS}, maxBatchSize: 4, deterministic: true, normalized: true"


def test_good_vectorizer_passes(manager: PluginManager, bridge: TestBridge) -> None:
    handle = load(manager, bridge, GoodVectorizer(), "vectorizer", VECTORIZER_CAPS)
    report = check_vectorizer(handle)
    assert report.ok, str(report)
    report.raise_for_failures()
    assert "batch larger than maxBatchSize" in report.names
    assert report.result("deterministic").skipped is False


def test_wrong_dimensions_fail(manager: PluginManager, bridge: TestBridge) -> None:
    handle = load(manager, bridge, WrongDimsOnUnicode(), "vectorizer", VECTORIZER_CAPS)
    report = check_plugin(handle)
    assert not report.ok
    assert "unicode text" in failed(report)
    assert "4 dimensions" in report.result("unicode text").message


def test_batch_differing_from_singles_fails(manager: PluginManager, bridge: TestBridge) -> None:
    handle = load(manager, bridge, BatchDiffers(), "vectorizer", VECTORIZER_CAPS)
    report = check_vectorizer(handle)
    assert {"batch equals singles", "batch larger than maxBatchSize"} <= failed(report)
    assert "differ" in report.result("batch equals singles").message


def test_nondeterministic_vectorizer_declared_deterministic_fails(
    manager: PluginManager, bridge: TestBridge
) -> None:
    handle = load(manager, bridge, RandomVectorizer(), "vectorizer", VECTORIZER_CAPS)
    report = check_vectorizer(handle)
    assert "deterministic" in failed(report)
    assert "normalized" not in failed(report)


def test_nondeterministic_vectorizer_not_declared_skips_the_check(
    manager: PluginManager, bridge: TestBridge
) -> None:
    caps = f"dimensions: {DIMS}, normalized: true"
    handle = load(manager, bridge, RandomVectorizer(), "vectorizer", caps)
    report = check_vectorizer(handle)
    assert report.result("deterministic").skipped
    assert report.result("deterministic").passed
    assert "batch equals singles" in failed(report)  # random rows never match


def test_unnormalized_vectorizer_declared_normalized_fails(
    manager: PluginManager, bridge: TestBridge
) -> None:
    handle = load(manager, bridge, UnnormalizedVectorizer(), "vectorizer", VECTORIZER_CAPS)
    assert failed(check_vectorizer(handle)) == {"normalized"}


def test_crash_on_long_text_fails(manager: PluginManager, bridge: TestBridge) -> None:
    handle = load(manager, bridge, CrashesOnLongText(), "vectorizer", VECTORIZER_CAPS)
    report = check_vectorizer(handle)
    assert failed(report) == {"very long text"}
    assert "raised" in report.result("very long text").message


def test_undeclared_dimensions_fail(manager: PluginManager, bridge: TestBridge) -> None:
    handle = load(manager, bridge, GoodVectorizer(), "vectorizer", "")
    report = check_vectorizer(handle)
    assert failed(report) == {"dimensions declared", "empty batch is (0, dims)"}
    assert "without capabilities.dimensions" in report.result("empty batch is (0, dims)").message


# -- rerankers -----------------------------------------------------------------------------


class DropsLastIndex:
    """Scores every document but the last one (when there is more than one)."""

    @hookimpl
    def rerank(self, query: str, documents: Sequence[str]) -> list[tuple[int, float]]:
        count = max(1, len(documents) - 1)
        return [(i, 1.0 / (i + 1)) for i in range(count)]


class OverlapReranker:
    @hookimpl
    def rerank(self, query: str, documents: Sequence[str]) -> list[float]:
        words = set(query.lower().split())
        return [float(len(words & set(d.lower().split()))) for d in documents]


def test_reranker_dropping_an_index_fails(manager: PluginManager, bridge: TestBridge) -> None:
    handle = load(manager, bridge, DropsLastIndex(), "reranker")
    report = check_reranker(handle)
    assert "every index once" in failed(report)
    assert "single document" not in failed(report)


def test_good_reranker_passes(manager: PluginManager, bridge: TestBridge) -> None:
    handle = load(manager, bridge, OverlapReranker(), "reranker", "deterministic: true")
    report = check_plugin(handle)
    assert report.ok, str(report)


# -- storage -------------------------------------------------------------------------------


class DictStore:
    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    @hookimpl
    def store(self, key: str, data: bytes) -> None:
        self.data[key] = data

    @hookimpl
    def retrieve(self, key: str) -> bytes | None:
        return self.data.get(key)

    @hookimpl
    def delete(self, key: str) -> bool:
        return self.data.pop(key, None) is not None


class TruncatingStore(DictStore):
    """Loses everything past 64 KiB."""

    @hookimpl
    def store(self, key: str, data: bytes) -> None:
        self.data[key] = data[: 64 * 1024]


class SanitizingStore(DictStore):
    """Maps '/' to '_' in keys, so 'a/b' and 'a_b' collide."""

    @hookimpl
    def store(self, key: str, data: bytes) -> None:
        self.data[key.replace("/", "_")] = data

    @hookimpl
    def retrieve(self, key: str) -> bytes | None:
        return self.data.get(key.replace("/", "_"))

    @hookimpl
    def delete(self, key: str) -> bool:
        return self.data.pop(key.replace("/", "_"), None) is not None


class AlwaysDeletes(DictStore):
    @hookimpl
    def delete(self, key: str) -> bool:
        self.data.pop(key, None)
        return True


class EmptyIsMissing(DictStore):
    """Returns None for an empty value: b"" is lost."""

    @hookimpl
    def retrieve(self, key: str) -> bytes | None:
        return self.data.get(key) or None


def test_good_store_passes_and_cleans_up(manager: PluginManager, bridge: TestBridge) -> None:
    store = DictStore()
    report = check_storage(load(manager, bridge, store, "storage"))
    assert report.ok, str(report)
    assert store.data == {}


@pytest.mark.parametrize(
    ("store", "failing"),
    [
        (TruncatingStore(), {"round trip"}),
        (SanitizingStore(), {"unicode and path-like keys"}),
        (AlwaysDeletes(), {"delete returns True then False"}),
        (EmptyIsMissing(), {"round trip"}),
    ],
    ids=["truncates", "collides", "always-deletes", "loses-empty"],
)
def test_storage_that_loses_data_fails(
    store: DictStore, failing: set[str], manager: PluginManager, bridge: TestBridge
) -> None:
    report = check_storage(load(manager, bridge, store, "storage"))
    assert failed(report) == failing, str(report)


# -- transformers and generators -----------------------------------------------------------


class CountingTransformer:
    """transform_batch numbers items by batch position, transform does not."""

    @hookimpl
    def transform(self, data: Any) -> str:
        return f"0:{data}"

    @hookimpl
    def transform_batch(self, items: Sequence[Any]) -> list[str]:
        return [f"{i}:{item}" for i, item in enumerate(items)]


class UpperTransformer:
    @hookimpl
    def transform(self, data: Any) -> str:
        return str(data).upper()


class StreamDiffers:
    """Declared deterministic, but the stream and the whole answer disagree."""

    @hookimpl
    def generate(self, prompt: str, options: Mapping[str, Any]) -> str:
        return "whole answer"

    @hookimpl
    def generate_stream(self, prompt: str, options: Mapping[str, Any]) -> Iterator[str]:
        yield "streamed "
        yield "answer"


class EchoGenerator:
    @hookimpl
    def generate_stream(self, prompt: str, options: Mapping[str, Any]) -> Iterator[str]:
        for word in prompt.split(" "):
            yield word + " "


def test_transformer_batch_differing_fails(manager: PluginManager, bridge: TestBridge) -> None:
    report = check_transformer(load(manager, bridge, CountingTransformer(), "transformer"))
    assert "batch equals singles" in failed(report)


def test_good_transformer_passes(manager: PluginManager, bridge: TestBridge) -> None:
    report = check_plugin(load(manager, bridge, UpperTransformer(), "transformer"))
    assert report.ok, str(report)


def test_generator_stream_differing_fails(manager: PluginManager, bridge: TestBridge) -> None:
    handle = load(manager, bridge, StreamDiffers(), "generator", "deterministic: true")
    report = check_generator(handle)
    assert failed(report) == {"stream concatenation"}


def test_generator_not_declared_deterministic_only_needs_text(
    manager: PluginManager, bridge: TestBridge
) -> None:
    report = check_generator(load(manager, bridge, StreamDiffers(), "generator"))
    assert report.ok, str(report)
    report = check_generator(load(manager, bridge, EchoGenerator(), "generator", name="echo"))
    assert report.ok, str(report)


# -- auth ----------------------------------------------------------------------------------


class TokenAuth:
    @hookimpl
    def authenticate(self, credentials: Mapping[str, str]) -> Identity | None:
        token = credentials.get("token")
        if token is None:
            return None
        if token != "good":
            raise AuthenticationError("bad token")
        return Identity("alice", roles=["reader"])

    @hookimpl
    def authorize(self, identity: Identity, resource: str, action: str) -> bool | None:
        return True if action == "read" else None


class AcceptsAnything:
    @hookimpl
    def authenticate(self, credentials: Mapping[str, str]) -> Identity | None:
        return Identity("anyone")


class AcceptsWrongTokens(TokenAuth):
    @hookimpl
    def authenticate(self, credentials: Mapping[str, str]) -> Identity | None:
        return Identity("alice") if "token" in credentials else None


def test_auth_checks(manager: PluginManager, bridge: TestBridge) -> None:
    handle = load(manager, bridge, TokenAuth(), "auth")
    report = check_auth(handle, {"token": "good"}, {"token": "bad"})
    assert report.ok, str(report)
    assert not any(r.skipped for r in report)
    without = check_auth(handle)
    assert without.ok
    assert without.result("valid credentials give an identity").skipped


def test_auth_that_accepts_anything_fails(manager: PluginManager, bridge: TestBridge) -> None:
    report = check_plugin(load(manager, bridge, AcceptsAnything(), "auth"))
    assert {"unknown credentials kind gives None", "empty credentials give None"} <= failed(report)


def test_auth_accepting_wrong_credentials_fails(manager: PluginManager, bridge: TestBridge) -> None:
    handle = load(manager, bridge, AcceptsWrongTokens(), "auth")
    report = check_plugin(
        handle, valid_credentials={"token": "good"}, invalid_credentials={"token": "bad"}
    )
    assert failed(report) == {"invalid credentials raise AuthenticationError"}


# -- the report API ------------------------------------------------------------------------


def test_report_api() -> None:
    report = ConformanceReport("demo", "vectorizer")
    report.run("passes", lambda: None)
    report.run("passes with detail", lambda: "768 dims")
    report.run("raises", lambda: 1 / 0)  # type: ignore[func-returns-value]
    report.skip("skipped", "not declared")
    assert report.names == ["passes", "passes with detail", "raises", "skipped"]
    assert not report.ok
    assert not report
    assert report.failures == [
        CheckResult("raises", False, "raised ZeroDivisionError: division by zero")
    ]
    text = str(report)
    assert "vectorizer 'demo': 3 passed, 1 failed" in text
    assert "PASS passes with detail: 768 dims" in text
    assert "FAIL raises" in text
    assert "SKIP skipped: not declared" in text
    with pytest.raises(AssertionError, match=r"failed 1 of 4 .*\n  raises: raised ZeroDivision"):
        report.raise_for_failures()
    with pytest.raises(KeyError):
        report.result("unknown")


def test_check_functions_refuse_other_types(manager: PluginManager, bridge: TestBridge) -> None:
    handle = load(manager, bridge, UpperTransformer(), "transformer")
    with pytest.raises(TypeError, match="VectorizerHandle"):
        check_vectorizer(handle)
    with pytest.raises(TypeError):
        check_plugin(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        check_plugin(handle, valid_credentials={})


def test_checks_do_not_share_state_between_runs(manager: PluginManager, bridge: TestBridge) -> None:
    handle = load(manager, bridge, DictStore(), "storage")
    first, second = check_storage(handle), check_storage(handle)
    assert first.ok and second.ok
    assert random.random() >= 0  # keeps the import honest for the random vectorizer


# -- pytest fixtures (pytester) ------------------------------------------------------------


def test_fixtures_load_and_check_an_example(pytester: pytest.Pytester) -> None:
    manifest = EXAMPLES / "python-hash-vectorizer" / "plugin.yaml"
    pytester.makepyfile(
        f"""
        from weaviate_ext import PluginManager, VectorizerHandle
        from weaviate_ext.testing import check_plugin

        MANAGERS = []

        def test_conformance(load_plugin, plugin_manager):
            handle = load_plugin({str(manifest)!r})
            assert isinstance(handle, VectorizerHandle)
            assert plugin_manager.names() == ("hash-embedder",)
            MANAGERS.append(plugin_manager)
            check_plugin(handle).raise_for_failures()

        def test_manager_was_closed(plugin_manager):
            assert isinstance(plugin_manager, PluginManager)
            assert plugin_manager is not MANAGERS[0]
            assert MANAGERS[0].names() == ()
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_load_plugin_resolves_relative_paths(pytester: pytest.Pytester) -> None:
    shutil.copytree(EXAMPLES / "python-text-normalizer", pytester.path / "normalizer")
    tests = pytester.mkpydir("tests")
    (tests / "test_plugin.py").write_text(
        textwrap.dedent(
            """
            from weaviate_ext.testing import check_plugin

            def test_from_the_test_directory(load_plugin):
                handle = load_plugin("../normalizer/plugin.yaml", config={"lowercase": False})
                assert handle.transform("  A  B ") == "A B"

            def test_a_directory_means_its_plugin_yaml(load_plugin):
                check_plugin(load_plugin("normalizer")).raise_for_failures()
            """
        )
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_a_broken_plugin_fails_the_inner_test(pytester: pytest.Pytester) -> None:
    (pytester.path / "src").mkdir()
    (pytester.path / "src" / "broken.py").write_text(
        textwrap.dedent(
            """
            from weaviate_ext import hookimpl

            class Forgetful:
                '''Stores nothing.'''

                @hookimpl
                def store(self, key, data):
                    pass

                @hookimpl
                def retrieve(self, key):
                    return None

                @hookimpl
                def delete(self, key):
                    return False
            """
        )
    )
    (pytester.path / "plugin.yaml").write_text(
        textwrap.dedent(
            """\
            apiVersion: weaviate.io/v1
            kind: Plugin
            metadata: {name: forgetful, version: 0.1.0}
            spec: {type: storage, runtime: python, entrypoint: "broken:Forgetful"}
            """
        )
    )
    pytester.makepyfile(
        """
        from weaviate_ext.testing import check_plugin

        def test_conformance(load_plugin):
            check_plugin(load_plugin("plugin.yaml")).raise_for_failures()
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*storage 'forgetful' failed * conformance checks*", "*round trip*"]
    )


def test_marker_and_command_line_option(pytester: pytest.Pytester) -> None:
    normalizer = EXAMPLES / "python-text-normalizer" / "plugin.yaml"
    bm25 = EXAMPLES / "python-bm25-reranker" / "plugin.yaml"
    pytester.makepyfile(
        f"""
        import pytest
        from weaviate_ext.testing import check_plugin

        @pytest.mark.weaviate_ext_plugin({str(normalizer)!r}, config={{"lowercase": False}})
        def test_marked(weaviate_plugin):
            assert weaviate_plugin.transform("\\uff21") == "A"

        def test_from_option(weaviate_plugin):
            check_plugin(weaviate_plugin).raise_for_failures()
        """
    )
    skipped = pytester.runpytest("-p", "no:cacheprovider", "--strict-markers")
    skipped.assert_outcomes(passed=1, skipped=1)
    with_option = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--strict-markers",
        f"--weaviate-ext-plugin={normalizer}",
        f"--weaviate-ext-plugin={bm25}",
    )
    with_option.assert_outcomes(passed=3)
