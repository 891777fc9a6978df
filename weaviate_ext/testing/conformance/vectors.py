"""Conformance checks for vectorizers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from weaviate_ext.errors import InvalidInput
from weaviate_ext.handles import (
    VectorizerHandle,
)
from weaviate_ext.testing.conformance.report import (
    ATOL,
    NORM_TOLERANCE,
    SAMPLE_TEXTS,
    UNICODE_TEXTS,
    ConformanceReport,
    Skip,
    expect,
    expect_raises,
    make_long_text,
    new_report,
)

# ---------------------------------------------------------------------------------------
# vectorizer
# ---------------------------------------------------------------------------------------


def _check_vector(vector: Any, dims: int, what: str) -> np.ndarray:
    expect(isinstance(vector, np.ndarray), f"{what} is {type(vector).__name__}, not ndarray")
    expect(vector.dtype == np.float32, f"{what} has dtype {vector.dtype}, not float32")
    expect(vector.shape == (dims,), f"{what} has shape {vector.shape}, expected ({dims},)")
    expect(bool(np.all(np.isfinite(vector))), f"{what} contains NaN or infinity")
    checked: np.ndarray = vector
    return checked


def _check_matrix(matrix: Any, rows: int, dims: int, what: str) -> np.ndarray:
    expect(isinstance(matrix, np.ndarray), f"{what} is {type(matrix).__name__}, not ndarray")
    expect(matrix.dtype == np.float32, f"{what} has dtype {matrix.dtype}, not float32")
    expect(
        matrix.shape == (rows, dims), f"{what} has shape {matrix.shape}, expected ({rows}, {dims})"
    )
    expect(bool(np.all(np.isfinite(matrix))), f"{what} contains NaN or infinity")
    checked: np.ndarray = matrix
    return checked


def _rows_match(batch: np.ndarray, singles: Sequence[np.ndarray]) -> list[int]:
    return [i for i, v in enumerate(singles) if not np.allclose(batch[i], v, atol=ATOL, rtol=0)]


def check_vectorizer(handle: VectorizerHandle) -> ConformanceReport:
    """Run the vectorizer checks.

    float32 ``(dims,)`` of the declared ``capabilities.dimensions``; a batch equals the
    single calls; an empty batch is ``(0, dims)``; Unicode and a 100k-character text
    work; a batch larger than ``maxBatchSize`` keeps its order; deterministic and unit
    L2 norm when the capabilities say so; a non-str text raises ``InvalidInput``.
    """
    report = new_report(handle, VectorizerHandle)
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
        _check_vector(handle.vectorize_text(make_long_text()), dims, "a 100k-character text")

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
