"""bm25-reranker through the framework: conformance, real BM25 scores, ordering, failures."""

from __future__ import annotations

import importlib.metadata
import math
from pathlib import Path
from typing import Any

import pytest
from weaviate_ext_bm25_reranker.scoring import METHODS, BM25Scorer, tokenize

from weaviate_ext import (
    ConfigError,
    InvalidInput,
    PluginLoadError,
    PluginManager,
    RerankerHandle,
)
from weaviate_ext.testing import check_plugin

DOCS = [
    "Cooking pasta takes about ten minutes in boiling water.",
    "A vector search engine finds the nearest embeddings quickly.",
    "The weather today is sunny with a light breeze.",
    "Gardening tips for growing tomatoes in a small garden.",
]


def lucene_bm25(query: list[str], docs: list[list[str]], k1: float, b: float) -> list[float]:
    """BM25 as Lucene computes it, written out for the test."""
    avgdl = sum(len(d) for d in docs) / len(docs)
    scores = []
    for doc in docs:
        score = 0.0
        for term in query:
            n = sum(1 for d in docs if term in d)
            if not n:
                continue
            idf = math.log(1 + (len(docs) - n + 0.5) / (n + 0.5))
            tf = doc.count(term)
            score += idf * tf / (tf + k1 * (1 - b + b * len(doc) / avgdl))
        scores.append(score)
    return scores


def test_conformance(reranker: RerankerHandle) -> None:
    check_plugin(reranker).raise_for_failures()


def test_the_document_with_the_query_terms_ranks_first(reranker: RerankerHandle) -> None:
    results = reranker.rerank("vector search engine", DOCS)
    assert results[0].index == 1
    assert results[0].document == DOCS[1]
    assert results[0].score > 0
    assert all(r.score == 0.0 for r in results[1:])


def test_every_document_once_with_its_score(reranker: RerankerHandle) -> None:
    query = "pasta in boiling water, tomatoes in a garden"
    results = reranker.rerank(query, DOCS)
    assert sorted(r.index for r in results) == list(range(len(DOCS)))
    expected = lucene_bm25(tokenize(query), [tokenize(d) for d in DOCS], k1=1.5, b=0.75)
    for r in results:
        assert r.document == DOCS[r.index]
        assert r.score == pytest.approx(expected[r.index], rel=1e-5)
    assert [r.index for r in results] == sorted(range(4), key=lambda i: -expected[i])


def test_ties_keep_input_order_and_repeat_exactly(reranker: RerankerHandle) -> None:
    docs = ["nothing here", "same words", "unrelated text", "same words", "more nothing"]
    first = reranker.rerank("same words", docs)
    assert [r.index for r in first] == [1, 3, 0, 2, 4]
    assert first[0].score == first[1].score > 0
    again = reranker.rerank("same words", docs)
    assert [(r.index, r.score) for r in again] == [(r.index, r.score) for r in first]
    nothing = reranker.rerank("absent", docs)
    assert [r.index for r in nothing] == [0, 1, 2, 3, 4]


def test_empty_inputs(reranker: RerankerHandle) -> None:
    assert reranker.rerank("anything", []) == []
    results = reranker.rerank("", DOCS)
    assert [(r.index, r.score) for r in results] == [(i, 0.0) for i in range(4)]
    empty_docs = reranker.rerank("pasta", ["", "   ", "!!!"])
    assert [(r.index, r.score) for r in empty_docs] == [(0, 0.0), (1, 0.0), (2, 0.0)]
    mixed = reranker.rerank("pasta", ["", "fresh pasta", ""])
    assert mixed[0].index == 1 and mixed[0].score > 0


def test_unicode(reranker: RerankerHandle) -> None:
    docs = [
        "天气很好",
        "向量搜索引擎很快",
        "Die STRASSE ist lang",
        "\uff36\uff25\uff23\uff34\uff2f\uff32 \ufb01le",  # full-width VECTOR, fi ligature
        "مرحبا بالعالم",
    ]
    assert reranker.rerank("搜索", docs)[0].index == 1  # CJK without spaces
    assert reranker.rerank("straße", docs)[0].index == 2  # case folding
    assert reranker.rerank("vector file", docs)[0].index == 3  # NFKC: full width, ligature
    assert reranker.rerank("بالعالم", docs)[0].index == 4
    assert tokenize("Naïve e\u0301clair") == ["naïve", "éclair"]  # composed by NFKC


@pytest.mark.parametrize("method", METHODS)
def test_every_method_ranks_the_match_first(
    plugin_manager: PluginManager, manifest: Path, method: str
) -> None:
    handle = plugin_manager.load(manifest, config={"method": method})
    results = handle.rerank("boiling pasta", DOCS)
    assert results[0].index == 0
    assert results[0].score > results[1].score
    assert all(math.isfinite(r.score) for r in results)


def test_b_controls_length_normalisation() -> None:
    docs = ["apple", "apple pear plum fig kiwi lime lemon", "pear"]
    flat = BM25Scorer(b=0.0).scores("apple", docs)
    assert flat[0] == pytest.approx(flat[1])
    full = BM25Scorer(b=1.0).scores("apple", docs)
    assert full[0] > full[1]


def test_k1_controls_saturation() -> None:
    docs = ["apple", "apple apple apple apple", "pear", "plum"]
    binary = BM25Scorer(k1=0.0, b=0.0).scores("apple", docs)
    assert binary[0] == pytest.approx(binary[1])  # k1 = 0: only presence counts
    saturating = BM25Scorer(k1=1.5, b=0.0).scores("apple", docs)
    assert saturating[1] > saturating[0]


def test_stopwords(plugin_manager: PluginManager, manifest: Path) -> None:
    docs = ["the cat", "a dog", "of mice and men"]
    plain = plugin_manager.load(manifest).rerank("the", docs)
    assert plain[0].index == 0 and plain[0].score > 0
    plugin_manager.unload("bm25-reranker")
    english = plugin_manager.load(manifest, config={"stopwords": "en"})
    assert all(r.score == 0.0 for r in english.rerank("the of and", docs))
    assert english.rerank("the cat", docs)[0].index == 0


def test_many_candidates(reranker: RerankerHandle) -> None:
    docs = [f"filler document number {i} about nothing much" for i in range(3000)]
    docs[2345] = "the needle sits in this haystack"
    results = reranker.rerank("needle haystack", docs, top_k=3)
    assert [r.index for r in results][:1] == [2345]
    assert len(results) == 3


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"k1": -1.0}, "k1"),
        ({"b": 1.5}, "'b'"),
        ({"method": "bm26"}, "method"),
        ({"delta": -0.1}, "delta"),
        ({"stopwords": "klingon"}, "stopwords"),
    ],
)
def test_bad_config_refuses_to_load(
    plugin_manager: PluginManager, manifest: Path, config: dict[str, Any], key: str
) -> None:
    with pytest.raises(PluginLoadError, match=key):
        plugin_manager.load(manifest, config=config)
    assert "bm25-reranker" not in plugin_manager.names()


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_numbers_are_refused_by_the_config_check(
    plugin_manager: PluginManager, manifest: Path, value: float
) -> None:
    with pytest.raises(ConfigError, match="k1"):
        plugin_manager.load(manifest, config={"k1": value})
    with pytest.raises(ValueError, match="k1"):
        BM25Scorer(k1=value)


def test_wrong_input_types(reranker: RerankerHandle) -> None:
    bad: Any = 42
    with pytest.raises(InvalidInput):
        reranker.rerank(bad, DOCS)
    with pytest.raises(InvalidInput):
        reranker.rerank("query", ["fine", bad])


def test_installed_plugin_is_found_by_name() -> None:
    with PluginManager(config={"bm25-reranker": {"k1": 1.2}}) as manager:
        assert "bm25-reranker" in manager.installed
        handle = manager.get_reranker("bm25-reranker")
        assert handle.rerank("pasta", DOCS)[0].index == 0
        assert manager.config_of("bm25-reranker").get_float("k1") == 1.2


def test_manifest_version_is_the_package_version(manifest: Path) -> None:
    from weaviate_ext import load_manifest

    installed = importlib.metadata.version("weaviate-ext-bm25-reranker")
    assert load_manifest(manifest).version == installed
