"""Conformance checks for transformers, rerankers and generators."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from weaviate_ext.errors import InvalidInput
from weaviate_ext.handles import (
    GeneratorHandle,
    RerankerHandle,
    TransformerHandle,
)
from weaviate_ext.testing.conformance.report import (
    SAMPLE_TEXTS,
    UNICODE_TEXTS,
    ConformanceReport,
    expect,
    expect_raises,
    make_long_text,
    new_report,
)
from weaviate_ext.types import RankResult

# ---------------------------------------------------------------------------------------
# transformer
# ---------------------------------------------------------------------------------------


def check_transformer(handle: TransformerHandle) -> ConformanceReport:
    """Run the transformer checks.

    ``transform`` of a text returns something; ``transform_batch`` equals the single
    calls (so a transformer must be deterministic); an empty batch gives ``[]``;
    Unicode, a long text and a batch larger than ``maxBatchSize`` work.
    """
    report = new_report(handle, TransformerHandle)
    caps = handle.manifest.spec.capabilities

    def transform_text() -> str:
        out = handle.transform(SAMPLE_TEXTS[0])
        expect(out is not None, "transform returned None")
        return f"returned {type(out).__name__}"

    def batch_equals_singles() -> None:
        items = [*SAMPLE_TEXTS, *UNICODE_TEXTS]
        batch = handle.transform_batch(items)
        expect(isinstance(batch, list), f"transform_batch returned {type(batch).__name__}")
        expect(len(batch) == len(items), f"{len(batch)} results for {len(items)} items")
        singles = [handle.transform(i) for i in items]
        bad = [i for i, (a, b) in enumerate(zip(batch, singles, strict=True)) if a != b]
        expect(not bad, f"batch results {bad} differ from transform of the same items")

    def empty_batch() -> None:
        out = handle.transform_batch([])
        expect(out == [], f"transform_batch([]) returned {out!r}, expected []")

    def unicode() -> None:
        for text in UNICODE_TEXTS:
            expect(handle.transform(text) is not None, f"transform({text!r}) returned None")

    def long_text() -> None:
        expect(handle.transform(make_long_text()) is not None, "a 100k-character text gave None")

    def large_batch() -> str:
        size = (caps.max_batch_size or 64) * 2 + 1
        items = [f"item {i}" for i in range(size)]
        out = handle.transform_batch(items)
        expect(len(out) == size, f"{len(out)} results for {size} items")
        expect(out[-1] == handle.transform(items[-1]), "the last item's result is out of order")
        return f"{size} items"

    report.run("transform returns a value", transform_text)
    report.run("batch equals singles", batch_equals_singles)
    report.run("empty batch", empty_batch)
    report.run("unicode text", unicode)
    report.run("very long text", long_text)
    report.run("batch larger than maxBatchSize", large_batch)
    return report


# ---------------------------------------------------------------------------------------
# reranker
# ---------------------------------------------------------------------------------------

RERANK_QUERY = "vector search engine"
RERANK_DOCUMENTS: tuple[str, ...] = (
    "Cooking pasta takes about ten minutes in boiling water.",
    "A vector search engine finds the nearest embeddings quickly.",
    "The weather today is sunny with a light breeze.",
    "Search engines index documents; vector search compares embeddings.",
    "Gardening tips for growing tomatoes.",
)


def _check_ranking(results: Any, documents: Sequence[str], what: str) -> list[RankResult]:
    expect(isinstance(results, list), f"{what} returned {type(results).__name__}, not list")
    expect(all(isinstance(r, RankResult) for r in results), f"{what} returned non-RankResult items")
    indices = sorted(r.index for r in results)
    expect(
        indices == list(range(len(documents))),
        f"{what} returned indices {indices} for {len(documents)} documents",
    )
    return list(results)


def check_reranker(handle: RerankerHandle) -> ConformanceReport:
    """Run the reranker checks.

    Every document index comes back exactly once; scores are finite floats sorted in
    descending order; each result carries its document; a single document and Unicode
    work; ``top_k`` cuts the ranking; a non-str query raises ``InvalidInput``.
    """
    report = new_report(handle, RerankerHandle)
    docs = list(RERANK_DOCUMENTS)
    deterministic = handle.manifest.spec.capabilities.deterministic

    def every_index() -> None:
        _check_ranking(handle.rerank(RERANK_QUERY, docs), docs, "rerank")

    def float_scores() -> None:
        results = handle.rerank(RERANK_QUERY, docs)
        bad = [r.score for r in results if not isinstance(r.score, float)]
        expect(not bad, f"scores {bad!r} are not floats")
        expect(all(math.isfinite(r.score) for r in results), "a score is NaN or infinite")

    def sorted_descending() -> None:
        scores = [r.score for r in handle.rerank(RERANK_QUERY, docs)]
        expect(scores == sorted(scores, reverse=True), f"scores {scores} are not descending")

    def documents_attached() -> None:
        for r in handle.rerank(RERANK_QUERY, docs):
            expect(r.document == docs[r.index], f"result {r.index} carries the wrong document")

    def single_document() -> None:
        results = _check_ranking(handle.rerank(RERANK_QUERY, docs[:1]), docs[:1], "one document")
        expect(len(results) == 1, f"{len(results)} results for one document")

    def unicode() -> None:
        udocs = list(UNICODE_TEXTS)
        _check_ranking(handle.rerank("向量 🚀 بالعالم", udocs), udocs, "unicode rerank")

    def top_k() -> None:
        top = handle.rerank(RERANK_QUERY, docs, top_k=2)
        expect(len(top) == 2, f"top_k=2 returned {len(top)} results")
        expect(top[0].score >= top[1].score, "top_k results are not sorted")
        if deterministic:
            full = handle.rerank(RERANK_QUERY, docs)
            expect(
                [r.index for r in top] == [r.index for r in full[:2]],
                "top_k=2 is not the head of the full ranking",
            )
        expect(handle.rerank(RERANK_QUERY, docs, top_k=0) == [], "top_k=0 did not return []")

    def invalid_input() -> None:
        bad: Any = 42
        expect_raises(InvalidInput, lambda: handle.rerank(bad, docs), "rerank(42, ...)")
        expect_raises(InvalidInput, lambda: handle.rerank("q", [bad]), "rerank('q', [42])")

    report.run("every index once", every_index)
    report.run("scores are floats", float_scores)
    report.run("sorted descending", sorted_descending)
    report.run("documents attached", documents_attached)
    report.run("single document", single_document)
    report.run("unicode text", unicode)
    report.run("top_k", top_k)
    report.run("wrong input type raises InvalidInput", invalid_input)
    return report


# ---------------------------------------------------------------------------------------
# generator
# ---------------------------------------------------------------------------------------

GENERATE_PROMPT = (
    "Summarize: Vector search finds similar items by comparing embeddings. "
    "Plugins extend the search engine with new models. "
    "Embeddings are lists of numbers that capture meaning. "
    "The weather was nice yesterday."
)


def check_generator(handle: GeneratorHandle) -> ConformanceReport:
    """Run the generator checks.

    ``generate`` returns a ``str``; the stream's chunks are ``str`` and their
    concatenation equals ``generate`` when the generator declares ``deterministic``
    (else it is non-empty); the callback sees every chunk; a stream closed after its
    first chunk closes cleanly and leaves no call in flight; unknown options are ignored.
    """
    report = new_report(handle, GeneratorHandle)
    deterministic = handle.manifest.spec.capabilities.deterministic

    def generate_str() -> str:
        out = handle.generate(GENERATE_PROMPT)
        expect(isinstance(out, str), f"generate returned {type(out).__name__}")
        return f"{len(out)} characters"

    def stream_matches() -> str:
        chunks = list(handle.generate_stream(GENERATE_PROMPT))
        expect(all(isinstance(c, str) for c in chunks), "a chunk is not str")
        joined = "".join(chunks)
        if deterministic:
            whole = handle.generate(GENERATE_PROMPT)
            expect(joined == whole, f"stream gave {joined[:60]!r}, generate gave {whole[:60]!r}")
            return f"{len(chunks)} chunks equal generate"
        expect(joined != "", "the stream produced no text")
        return f"{len(chunks)} chunks (not deterministic: not compared)"

    def callback() -> None:
        seen: list[str] = []
        chunks = list(handle.generate_stream(GENERATE_PROMPT, seen.append))
        expect(seen == chunks, "the callback did not receive every chunk")

    def early_close() -> None:
        stream = handle.generate_stream(GENERATE_PROMPT)
        first = next(stream, None)
        expect(first is not None, "the stream yielded nothing")
        stream.close()
        expect(handle.stats.in_flight == 0, "a closed stream is still counted in flight")
        expect(isinstance(handle.generate(GENERATE_PROMPT), str), "generate failed after close")

    def options() -> None:
        out = handle.generate(GENERATE_PROMPT, max_tokens=5, temperature=0.0, unknown_option=1)
        expect(isinstance(out, str), f"generate with options returned {type(out).__name__}")

    def invalid_input() -> None:
        bad: Any = 7
        expect_raises(InvalidInput, lambda: handle.generate(bad), "generate(7)")

    report.run("generate returns str", generate_str)
    report.run("stream concatenation", stream_matches)
    report.run("stream callback", callback)
    report.run("stream closes early cleanly", early_close)
    report.run("options accepted", options)
    report.run("wrong input type raises InvalidInput", invalid_input)
    return report
