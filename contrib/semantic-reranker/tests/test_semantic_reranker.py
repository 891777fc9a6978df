"""semantic-reranker through the framework: conformance, meaning, fusion modes, failures."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from weaviate_ext_bm25_reranker.scoring import BM25Scorer
from weaviate_ext_minilm_vectorizer.encoder import MiniLMEncoder
from weaviate_ext_semantic_reranker.fusion import competition_ranks, fuse

from weaviate_ext import (
    InvalidInput,
    PluginLoadError,
    PluginManager,
    RerankerHandle,
)
from weaviate_ext.testing import check_plugin

RerankerFactory = Callable[..., RerankerHandle]

QUERY = "How do I reset my password?"
DOCS = [
    "How do I bake bread at home?",  # shares "how do i" with the query, means something else
    "Forgotten login credentials recovery",  # no word in common with the query
    "Stock markets fell sharply on Monday.",
]


def expected_parts(encoder: MiniLMEncoder, query: str, docs: list[str]) -> tuple[Any, Any]:
    """The cosine similarities and BM25 scores the plugin should combine."""
    vectors = encoder.encode([query, *docs])
    semantic = (vectors[1:] @ vectors[0]).astype(np.float64)
    return semantic, BM25Scorer().scores(query, docs)


def by_index(results: list[Any]) -> list[float]:
    """Scores in input order."""
    return [r.score for r in sorted(results, key=lambda r: r.index)]


def test_conformance(reranker: RerankerHandle) -> None:
    check_plugin(reranker).raise_for_failures()


@pytest.mark.parametrize("fusion", ["weighted", "rrf"])
def test_conformance_with_fusion(reranker_with: RerankerFactory, fusion: str) -> None:
    check_plugin(reranker_with(fusion=fusion)).raise_for_failures()


def test_a_paraphrase_without_shared_words_outranks_an_unrelated_document(
    reranker: RerankerHandle,
) -> None:
    results = reranker.rerank(QUERY, DOCS)
    assert results[0].index == 1
    assert results[0].document == "Forgotten login credentials recovery"
    assert results[-1].index == 2
    # BM25 alone cannot see it: the paraphrase shares no term with the query.
    lexical = BM25Scorer().scores(QUERY, DOCS)
    assert lexical[1] == 0.0 < lexical[0]


def test_more_paraphrases(reranker: RerankerHandle) -> None:
    docs = [
        "The stock market closed higher today.",
        "A kitten is napping on the couch.",
        "Rain is expected tomorrow afternoon.",
    ]
    assert reranker.rerank("A cat sleeps on the sofa.", docs)[0].index == 1
    assert reranker.rerank("Will it be wet outside later?", docs)[0].index == 2
    assert reranker.rerank("Shares rose at the close of trading", docs)[0].index == 0


def test_fusion_none_is_the_cosine_similarity(
    reranker: RerankerHandle, encoder: MiniLMEncoder
) -> None:
    semantic, _ = expected_parts(encoder, QUERY, DOCS)
    np.testing.assert_allclose(by_index(reranker.rerank(QUERY, DOCS)), semantic, atol=1e-5)


def test_weighted_fusion(reranker_with: RerankerFactory, encoder: MiniLMEncoder) -> None:
    semantic, lexical = expected_parts(encoder, QUERY, DOCS)
    half = reranker_with(fusion="weighted", weight=0.5).rerank(QUERY, DOCS)
    expected = 0.5 * np.clip(semantic, 0, None) + 0.5 * lexical / lexical.max()
    np.testing.assert_allclose(by_index(half), expected, atol=1e-5)
    # weight 0: BM25 only (relative to the best candidate); weight 1: semantic only
    lexical_only = reranker_with(fusion="weighted", weight=0.0).rerank(QUERY, DOCS)
    assert lexical_only[0].index == 0
    np.testing.assert_allclose(by_index(lexical_only), lexical / lexical.max(), atol=1e-6)
    semantic_only = reranker_with(fusion="weighted", weight=1.0).rerank(QUERY, DOCS)
    assert semantic_only[0].index == 1


def test_weighted_fusion_without_any_shared_term(reranker_with: RerankerFactory) -> None:
    handle = reranker_with(fusion="weighted", weight=0.5)
    results = handle.rerank("feline resting", ["A kitten is napping.", "Stocks fell."])
    assert results[0].index == 0  # BM25 is 0 everywhere: the semantic part decides
    assert all(np.isfinite(r.score) for r in results)


def test_rrf_fusion(reranker_with: RerankerFactory, encoder: MiniLMEncoder) -> None:
    handle = reranker_with(fusion="rrf", rrf_k=60)
    semantic, lexical = expected_parts(encoder, QUERY, DOCS)
    # semantic ranks: paraphrase 1, bread 2, stocks 3; BM25: bread 1, the others tie at 2
    assert list(competition_ranks(semantic)) == [2, 1, 3]
    assert list(competition_ranks(lexical)) == [1, 2, 2]
    scores = by_index(handle.rerank(QUERY, DOCS))
    expected = [1 / 62 + 1 / 61, 1 / 61 + 1 / 62, 1 / 63 + 1 / 62]
    np.testing.assert_allclose(scores, expected, atol=1e-12)
    # a small k makes the ranks matter more; equal fused scores keep input order
    sharp = reranker_with(fusion="rrf", rrf_k=0).rerank(QUERY, DOCS)
    assert [r.index for r in sharp] == [0, 1, 2]
    np.testing.assert_allclose(by_index(sharp), [1 / 2 + 1, 1 + 1 / 2, 1 / 3 + 1 / 2])


def test_fusion_functions() -> None:
    semantic = np.array([0.9, -0.2, 0.4])
    lexical = np.array([0.0, 2.0, 1.0])
    np.testing.assert_allclose(fuse(semantic, lexical, "none", weight=0.5, rrf_k=60), semantic)
    np.testing.assert_allclose(
        fuse(semantic, lexical, "weighted", weight=0.25, rrf_k=60),
        [0.25 * 0.9, 0.75 * 1.0, 0.25 * 0.4 + 0.75 * 0.5],
    )
    assert list(competition_ranks(np.array([3.0, 5.0, 3.0, 1.0]))) == [2, 1, 2, 4]
    with pytest.raises(ValueError, match="unknown fusion"):
        fuse(semantic, lexical, "sum", weight=0.5, rrf_k=60)
    with pytest.raises(ValueError, match="BM25"):
        fuse(semantic, None, "rrf", weight=0.5, rrf_k=60)


def test_empty_and_unicode_inputs(reranker: RerankerHandle) -> None:
    assert reranker.rerank(QUERY, []) == []
    results = reranker.rerank("", ["", "some text", "向量搜索"])
    assert sorted(r.index for r in results) == [0, 1, 2]
    cjk = reranker.rerank("向量搜索引擎", ["今天天气很好", "向量数据库的搜索"])
    assert cjk[0].index == 1


def test_stable_ordering(reranker: RerankerHandle) -> None:
    docs = ["same text", "other words entirely", "same text"]
    results = reranker.rerank("same text", docs)
    assert [r.index for r in results] == [0, 2, 1]
    assert results[0].score == results[1].score
    again = reranker.rerank("same text", docs)
    assert [(r.index, r.score) for r in again] == [(r.index, r.score) for r in results]


def test_wrong_input_types(reranker: RerankerHandle) -> None:
    bad: Any = 3.5
    with pytest.raises(InvalidInput):
        reranker.rerank(bad, DOCS)
    with pytest.raises(InvalidInput):
        reranker.rerank(QUERY, ["fine", bad])
    with pytest.raises(InvalidInput, match="surrogate"):
        reranker.rerank(QUERY, ["fine", "bad \udc80"])


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"fusion": "sum"}, "fusion"),
        ({"weight": 1.5}, "weight"),
        ({"weight": -0.1}, "weight"),
        ({"rrf_k": -1}, "rrf_k"),
        ({"max_length": 600}, "max_length"),
        ({"model_path": "/nonexistent.onnx"}, "does not exist"),
    ],
)
def test_bad_config_refuses_to_load(
    plugin_manager: PluginManager, manifest: Path, config: dict[str, Any], key: str
) -> None:
    with pytest.raises(PluginLoadError, match=key):
        plugin_manager.load(manifest, config=config)
    assert "semantic-reranker" not in plugin_manager.names()


def test_installed_plugin_is_found_by_name() -> None:
    config = {"semantic-reranker": {"threads": 1, "fusion": "rrf"}}
    with PluginManager(config=config) as manager:
        assert {"semantic-reranker", "minilm-vectorizer", "bm25-reranker"} <= set(manager.installed)
        handle = manager.get_reranker("semantic-reranker")
        assert handle.rerank(QUERY, DOCS)[0].index in (0, 1)
        assert manager.config_of("semantic-reranker").get_string("fusion") == "rrf"


def test_manifest_version_is_the_package_version(manifest: Path) -> None:
    from weaviate_ext import load_manifest

    installed = importlib.metadata.version("weaviate-ext-semantic-reranker")
    assert load_manifest(manifest).version == installed
