"""The conformance suite: does a loaded plugin keep the contract of its type?

Each ``check_<type>(handle)`` function calls a plugin through its typed handle (so it
tests what a host sees, whatever the runtime) and runs a list of named checks. A check
that raises, or whose result breaks the contract, is recorded as failed with a message;
the suite never stops at the first failure. :func:`check_plugin` picks the function for
the handle's type::

    from weaviate_ext.testing import check_plugin

    report = check_plugin(manager.get_vectorizer("hash-embedder"))
    print(report)                  # one line per check
    report.raise_for_failures()    # AssertionError listing every failed check

The suite uses no pytest; :mod:`weaviate_ext.testing.pytest_plugin` adds fixtures.
"""

from __future__ import annotations

import contextlib
import math
import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from weaviate_ext.errors import AuthenticationError, InvalidInput
from weaviate_ext.handles import (
    AuthHandle,
    GeneratorHandle,
    PluginHandle,
    RerankerHandle,
    StorageHandle,
    TransformerHandle,
    VectorizerHandle,
)
from weaviate_ext.types import Identity, RankResult

ATOL = 1e-5
"""Absolute tolerance when comparing a batch's rows with single calls."""

NORM_TOLERANCE = 1e-3
"""How far from 1.0 the L2 norm of a vector may be when ``normalized`` is declared."""

UNICODE_TEXTS: tuple[str, ...] = (
    "emoji 🚀🔥👩\u200d💻 and flags 🇩🇪",
    "中文文本\uff1a向量搜索引擎",
    "日本語のテキストと한국어 텍스트",
    "עברית מימין לשמאל וערבית: مرحبا بالعالم",
    "combining marks: e\u0301 a\u0308 n\u0303 Z\u0335\u0321\u0300",
    "zero\u200bwidth\ufeff and nul-free control \t\r\n",
)
"""Texts in many scripts: emoji (with ZWJ), CJK, RTL, combining marks, odd spaces."""

LONG_TEXT_CHARS = 100_000
"""Length of the very long text sent to vectorizers and transformers."""

SAMPLE_TEXTS: tuple[str, ...] = (
    "The quick brown fox jumps over the lazy dog.",
    "Vector databases store embeddings for similarity search.",
    "A completely different sentence about cooking pasta.",
    "hello world",
)


def _long_text() -> str:
    words = ("lorem", "ipsum", "vector", "search", "plugin", "σκύλος", "猫", "🚀")
    text = " ".join(words[i % len(words)] + str(i % 97) for i in range(LONG_TEXT_CHARS // 6))
    return (text * 2)[:LONG_TEXT_CHARS]


@attrs.frozen
class CheckResult:
    """The outcome of one named check.

    ``skipped`` checks count as passed: they did not apply (for example
    ``deterministic`` for a vectorizer that does not declare it); ``message`` says why.
    """

    name: str
    passed: bool
    message: str = ""
    skipped: bool = False

    def __str__(self) -> str:
        mark = "SKIP" if self.skipped else ("PASS" if self.passed else "FAIL")
        return f"{mark} {self.name}" + (f": {self.message}" if self.message else "")


@attrs.define
class ConformanceReport:
    """Every check run against one plugin, in order."""

    plugin: str
    plugin_type: str
    results: list[CheckResult] = attrs.field(factory=list)

    @property
    def ok(self) -> bool:
        """Whether every check passed (or was skipped)."""
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        """The checks that failed."""
        return [r for r in self.results if not r.passed]

    @property
    def names(self) -> list[str]:
        """The names of every check run."""
        return [r.name for r in self.results]

    def result(self, name: str) -> CheckResult:
        """The result of the check called ``name`` (``KeyError`` if it did not run)."""
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)

    def __iter__(self) -> Iterator[CheckResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        failed = len(self.failures)
        head = (
            f"conformance of {self.plugin_type} {self.plugin!r}: "
            f"{len(self.results) - failed} passed, {failed} failed"
        )
        return "\n".join([head, *(f"  {r}" for r in self.results)])

    def raise_for_failures(self) -> None:
        """Raise :class:`AssertionError` listing every failed check, if any failed."""
        if self.failures:
            lines = "\n".join(f"  {r.name}: {r.message}" for r in self.failures)
            raise AssertionError(
                f"{self.plugin_type} {self.plugin!r} failed {len(self.failures)} of "
                f"{len(self.results)} conformance checks:\n{lines}"
            )

    # -- running checks ---------------------------------------------------------------

    def run(self, name: str, check: Callable[[], str | None]) -> CheckResult:
        """Run ``check`` and record it under ``name``.

        The check passes when it returns (its return value, if any, is the message);
        it fails when it raises :class:`CheckFailed` (the message says what was wrong)
        or any other exception (recorded with its type).
        """
        try:
            message = check()
        except CheckFailed as exc:
            result = CheckResult(name, False, str(exc))
        except Skip as exc:
            result = CheckResult(name, True, str(exc), skipped=True)
        except Exception as exc:
            result = CheckResult(name, False, f"raised {type(exc).__name__}: {exc}")
        else:
            result = CheckResult(name, True, message or "")
        self.results.append(result)
        return result

    def skip(self, name: str, reason: str) -> CheckResult:
        """Record ``name`` as not applicable, with the reason."""
        result = CheckResult(name, True, reason, skipped=True)
        self.results.append(result)
        return result


class CheckFailed(Exception):
    """Raised inside a check to fail it with a message (not an ``assert``: ``-O`` safe)."""


class Skip(Exception):
    """Raised inside a check to record it as not applicable."""


def expect(condition: object, message: str) -> None:
    """Fail the running check with ``message`` unless ``condition`` is true."""
    if not condition:
        raise CheckFailed(message)


def expect_raises(error: type[BaseException], call: Callable[[], object], what: str) -> None:
    """Fail the running check unless ``call()`` raises ``error``."""
    try:
        call()
    except error:
        return
    except Exception as exc:
        raise CheckFailed(
            f"{what} raised {type(exc).__name__}, expected {error.__name__}"
        ) from None
    raise CheckFailed(f"{what} did not raise {error.__name__}")


def _new_report(handle: PluginHandle, kind: type[PluginHandle]) -> ConformanceReport:
    if not isinstance(handle, kind):
        raise TypeError(
            f"check_{kind.plugin_type} needs a {kind.__name__}, got {type(handle).__name__}"
        )
    return ConformanceReport(handle.name, kind.plugin_type)


# ---------------------------------------------------------------------------------------
# vectorizer
# ---------------------------------------------------------------------------------------


def _check_vector(vector: Any, dims: int, what: str) -> np.ndarray:
    expect(isinstance(vector, np.ndarray), f"{what} is {type(vector).__name__}, not ndarray")
    expect(vector.dtype == np.float32, f"{what} has dtype {vector.dtype}, not float32")
    expect(vector.shape == (dims,), f"{what} has shape {vector.shape}, expected ({dims},)")
    expect(bool(np.all(np.isfinite(vector))), f"{what} contains NaN or infinity")
    return vector


def _check_matrix(matrix: Any, rows: int, dims: int, what: str) -> np.ndarray:
    expect(isinstance(matrix, np.ndarray), f"{what} is {type(matrix).__name__}, not ndarray")
    expect(matrix.dtype == np.float32, f"{what} has dtype {matrix.dtype}, not float32")
    expect(
        matrix.shape == (rows, dims), f"{what} has shape {matrix.shape}, expected ({rows}, {dims})"
    )
    expect(bool(np.all(np.isfinite(matrix))), f"{what} contains NaN or infinity")
    return matrix


def _rows_match(batch: np.ndarray, singles: Sequence[np.ndarray]) -> list[int]:
    return [i for i, v in enumerate(singles) if not np.allclose(batch[i], v, atol=ATOL, rtol=0)]


def check_vectorizer(handle: VectorizerHandle) -> ConformanceReport:
    """Run the vectorizer checks.

    float32 ``(dims,)`` of the declared ``capabilities.dimensions``; a batch equals the
    single calls; an empty batch is ``(0, dims)``; Unicode and a 100k-character text
    work; a batch larger than ``maxBatchSize`` keeps its order; deterministic and unit
    L2 norm when the capabilities say so; a non-str text raises ``InvalidInput``.
    """
    report = _new_report(handle, VectorizerHandle)
    caps = handle.manifest.spec.capabilities
    declared = caps.dimensions
    dims_box: list[int] = [declared or 0]

    def dimensions_declared() -> str:
        expect(declared is not None, "capabilities.dimensions is not declared")
        return f"{declared} dimensions"

    def single() -> str:
        vector = handle.vectorize_text(SAMPLE_TEXTS[0])
        if declared is None and isinstance(vector, np.ndarray) and vector.ndim == 1:
            dims_box[0] = vector.shape[0]
        _check_vector(vector, dims_box[0], "vectorize_text(...)")
        return f"float32 of shape ({dims_box[0]},)"

    report.run("dimensions declared", dimensions_declared)
    report.run("vectorize_text float32 (dims,)", single)
    dims = dims_box[0]

    def batch_equals_singles() -> None:
        batch = _check_matrix(
            handle.vectorize_batch(list(SAMPLE_TEXTS)), len(SAMPLE_TEXTS), dims, "batch"
        )
        singles = [handle.vectorize_text(t) for t in SAMPLE_TEXTS]
        bad = _rows_match(batch, singles)
        expect(not bad, f"batch rows {bad} differ from vectorize_text of the same texts")

    def empty_batch() -> None:
        out = handle.vectorize_batch([])
        expect(
            declared is not None,
            f"gave shape {getattr(out, 'shape', None)}: without capabilities.dimensions the "
            "handle cannot know the width of an empty batch",
        )
        _check_matrix(out, 0, dims, "vectorize_batch([])")

    def empty_text() -> None:
        _check_vector(handle.vectorize_text(""), dims, 'vectorize_text("")')

    def unicode() -> None:
        for text in UNICODE_TEXTS:
            _check_vector(handle.vectorize_text(text), dims, f"vectorize_text({text[:12]!r}...)")
        _check_matrix(
            handle.vectorize_batch(list(UNICODE_TEXTS)), len(UNICODE_TEXTS), dims, "unicode batch"
        )

    def long_text() -> None:
        _check_vector(handle.vectorize_text(_long_text()), dims, "a 100k-character text")

    def large_batch() -> str:
        size = (caps.max_batch_size or 64) * 2 + 1
        texts = [f"text number {i}: {SAMPLE_TEXTS[i % len(SAMPLE_TEXTS)]}" for i in range(size)]
        batch = _check_matrix(handle.vectorize_batch(texts), size, dims, f"a batch of {size}")
        probes = sorted({0, size // 2, size - 1})
        bad = _rows_match(batch[probes], [handle.vectorize_text(texts[i]) for i in probes])
        expect(not bad, f"rows {[probes[i] for i in bad]} of a batch of {size} are out of order")
        return f"{size} texts (maxBatchSize {caps.max_batch_size})"

    def deterministic() -> None:
        if not caps.deterministic:
            raise Skip("capabilities.deterministic is not declared")
        texts = [*SAMPLE_TEXTS, *UNICODE_TEXTS]
        first, second = handle.vectorize_batch(texts), handle.vectorize_batch(texts)
        expect(np.array_equal(first, second), "the same batch gave different vectors twice")
        a, b = handle.vectorize_text(SAMPLE_TEXTS[1]), handle.vectorize_text(SAMPLE_TEXTS[1])
        expect(np.array_equal(a, b), "the same text gave different vectors twice")

    def normalized() -> None:
        if not caps.normalized:
            raise Skip("capabilities.normalized is not declared")
        matrix = handle.vectorize_batch([*SAMPLE_TEXTS, *UNICODE_TEXTS])
        norms = np.linalg.norm(matrix.astype(np.float64), axis=1)
        bad = [float(n) for n in norms if abs(n - 1.0) > NORM_TOLERANCE]
        expect(not bad, f"L2 norms {bad[:5]} are not 1")

    def invalid_input() -> None:
        bad: Any = 12345
        expect_raises(InvalidInput, lambda: handle.vectorize_text(bad), "vectorize_text(12345)")
        expect_raises(InvalidInput, lambda: handle.vectorize_batch("abc"), 'vectorize_batch("abc")')
        expect_raises(
            InvalidInput, lambda: handle.vectorize_batch([bad]), "vectorize_batch([12345])"
        )
        expect_raises(InvalidInput, lambda: handle.vectorize_batch(bad), "vectorize_batch(12345)")

    report.run("batch equals singles", batch_equals_singles)
    report.run("empty batch is (0, dims)", empty_batch)
    report.run("empty text", empty_text)
    report.run("unicode text", unicode)
    report.run("very long text", long_text)
    report.run("batch larger than maxBatchSize", large_batch)
    report.run("deterministic", deterministic)
    report.run("normalized", normalized)
    report.run("wrong input type raises InvalidInput", invalid_input)
    return report


# ---------------------------------------------------------------------------------------
# transformer
# ---------------------------------------------------------------------------------------


def check_transformer(handle: TransformerHandle) -> ConformanceReport:
    """Run the transformer checks.

    ``transform`` of a text returns something; ``transform_batch`` equals the single
    calls (so a transformer must be deterministic); an empty batch gives ``[]``;
    Unicode, a long text and a batch larger than ``maxBatchSize`` work.
    """
    report = _new_report(handle, TransformerHandle)
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
        expect(handle.transform(_long_text()) is not None, "a 100k-character text gave None")

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
    report = _new_report(handle, RerankerHandle)
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
    report = _new_report(handle, GeneratorHandle)
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


# ---------------------------------------------------------------------------------------
# storage
# ---------------------------------------------------------------------------------------


def check_storage(handle: StorageHandle) -> ConformanceReport:
    """Run the storage checks.

    Arbitrary bytes round-trip (``b""``, every byte value, 1 MiB); a store overwrites;
    a missing key is ``None``; ``delete`` says ``True`` then ``False``; Unicode keys and
    keys with ``/`` and ``..`` work and do not collide. Every key it writes is unique to
    this run and deleted afterwards.
    """
    report = _new_report(handle, StorageHandle)
    prefix = f"conformance-{uuid.uuid4().hex}"
    written: set[str] = set()

    def put(key: str, data: bytes) -> None:
        written.add(key)
        handle.store(key, data)

    def round_trip() -> str:
        values = {
            "empty": b"",
            "bytes": bytes(range(256)),
            "nul": b"\x00",
            "mib": os.urandom(1024 * 1024),
        }
        for name, data in values.items():
            key = f"{prefix}-{name}"
            put(key, data)
            got = handle.retrieve(key)
            expect(got is not None, f"{name}: stored value came back as None")
            expect(isinstance(got, bytes), f"{name}: retrieve returned {type(got).__name__}")
            expect(got == data, f"{name}: {len(data)} bytes stored, {len(got or b'')} differ")
        return "b'', all byte values, 1 MiB"

    def overwrite() -> None:
        key = f"{prefix}-overwrite"
        put(key, b"first value, longer")
        put(key, b"second")
        got = handle.retrieve(key)
        expect(got == b"second", f"after overwrite retrieve gave {got!r}")

    def missing() -> None:
        got = handle.retrieve(f"{prefix}-never-stored")
        expect(got is None, f"a missing key gave {got!r}, not None")

    def delete() -> None:
        key = f"{prefix}-delete"
        put(key, b"x")
        first = handle.delete(key)
        expect(first is True, f"delete of a stored key returned {first!r}")
        expect(handle.retrieve(key) is None, "a deleted key can still be retrieved")
        second = handle.delete(key)
        expect(second is False, f"delete of a deleted key returned {second!r}")
        third = handle.delete(f"{prefix}-never-stored")
        expect(third is False, f"delete of a missing key returned {third!r}")

    special = [
        f"{prefix}/ключ-键-🔑",
        f"{prefix}/a/b/c",
        f"../{prefix}-escape",
        f"{prefix}/../{prefix}-up",
        f"{prefix}/..",
        f"{prefix}/./dot",
        f"{prefix}/a b%2Fc",
        f"{prefix}/a/b",
        f"{prefix}/a%2Fb",
        f"{prefix}/a_b",
        f"{prefix}/a\\b",
        f"{prefix}/a:b",
        f"{prefix}/A_B",
        f"/{prefix}-absolute",
        f"{prefix}\\backslash",
    ]

    def special_keys() -> None:
        for i, key in enumerate(special):
            put(key, f"value {i}".encode())
        for i, key in enumerate(special):
            got = handle.retrieve(key)
            expect(got == f"value {i}".encode(), f"key {key!r} gave {got!r} (keys collide?)")
        for key in special:
            expect(handle.delete(key) is True, f"delete({key!r}) did not return True")
            written.discard(key)

    def invalid_input() -> None:
        bad: Any = "not bytes"
        expect_raises(InvalidInput, lambda: handle.store("", b"x"), 'store("", ...)')
        expect_raises(InvalidInput, lambda: handle.store(f"{prefix}-x", bad), "store(key, str)")

    report.run("round trip", round_trip)
    report.run("overwrite", overwrite)
    report.run("missing key is None", missing)
    report.run("delete returns True then False", delete)
    report.run("unicode and path-like keys", special_keys)
    report.run("wrong input type raises InvalidInput", invalid_input)
    for key in sorted(written):
        with contextlib.suppress(Exception):  # best effort: the checks reported failures
            handle.delete(key)
    return report


# ---------------------------------------------------------------------------------------
# auth
# ---------------------------------------------------------------------------------------


def check_auth(
    handle: AuthHandle,
    valid_credentials: Mapping[str, str] | None = None,
    invalid_credentials: Mapping[str, str] | None = None,
    *,
    resource: str = "collections/Article",
    action: str = "read",
) -> ConformanceReport:
    """Run the auth checks.

    With ``valid_credentials`` an :class:`~weaviate_ext.Identity` comes back (naming this
    plugin); with ``invalid_credentials`` (its kind, but wrong)
    :class:`~weaviate_ext.AuthenticationError` is raised; credentials of an unknown kind
    and empty credentials give ``None``; ``authorize`` returns ``True``, ``False`` or
    ``None``.
    """
    report = _new_report(handle, AuthHandle)
    found: list[Identity] = []

    def valid() -> str:
        if valid_credentials is None:
            raise Skip("no valid_credentials given")
        identity = handle.authenticate(valid_credentials)
        expect(isinstance(identity, Identity), f"valid credentials gave {identity!r}")
        assert isinstance(identity, Identity)
        expect(identity.subject != "", "the identity has an empty subject")
        expect(identity.plugin == handle.name, f"identity.plugin is {identity.plugin!r}")
        found.append(identity)
        return f"subject {identity.subject!r}, roles {list(identity.roles)}"

    def invalid() -> None:
        if invalid_credentials is None:
            raise Skip("no invalid_credentials given")
        expect_raises(
            AuthenticationError,
            lambda: handle.authenticate(invalid_credentials),
            "authenticate(invalid_credentials)",
        )

    def unknown_kind() -> None:
        out = handle.authenticate({"x-conformance-unknown-kind": uuid.uuid4().hex})
        expect(out is None, f"credentials of an unknown kind gave {out!r}, not None")

    def empty() -> None:
        out = handle.authenticate({})
        expect(out is None, f"empty credentials gave {out!r}, not None")

    def authorize() -> None:
        identities = [*found, Identity("conformance-nobody", roles=("conformance-role",))]
        for identity in identities:
            for res, act in ((resource, action), ("*", "*"), ("unknown/resource", "delete")):
                out = handle.authorize(identity, res, act)
                expect(
                    out is None or isinstance(out, bool),
                    f"authorize({identity.subject!r}, {res!r}, {act!r}) gave {out!r}",
                )

    report.run("valid credentials give an identity", valid)
    report.run("invalid credentials raise AuthenticationError", invalid)
    report.run("unknown credentials kind gives None", unknown_kind)
    report.run("empty credentials give None", empty)
    report.run("authorize returns bool or None", authorize)
    return report


# ---------------------------------------------------------------------------------------
# dispatch
# ---------------------------------------------------------------------------------------


def check_plugin(handle: PluginHandle, **options: Any) -> ConformanceReport:
    """Run the conformance suite of ``handle``'s plugin type.

    ``options`` go to the type's function (``valid_credentials=...`` for auth); an
    option the type does not take is a :class:`TypeError`.
    """
    checks: dict[type[PluginHandle], Callable[..., ConformanceReport]] = {
        VectorizerHandle: check_vectorizer,
        TransformerHandle: check_transformer,
        RerankerHandle: check_reranker,
        GeneratorHandle: check_generator,
        StorageHandle: check_storage,
        AuthHandle: check_auth,
    }
    for kind, check in checks.items():
        if isinstance(handle, kind):
            return check(handle, **options)
    raise TypeError(f"check_plugin needs a typed plugin handle, got {type(handle).__name__}")


__all__ = [
    "CheckFailed",
    "CheckResult",
    "ConformanceReport",
    "Skip",
    "check_auth",
    "check_generator",
    "check_plugin",
    "check_reranker",
    "check_storage",
    "check_transformer",
    "check_vectorizer",
    "expect",
    "expect_raises",
]
