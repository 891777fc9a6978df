"""Direct tests of weaviate_ext.outputs: what a plugin returned, checked and converted.

The handles call these functions with the plugin's answer; each wrong shape, dtype,
length or index is a :class:`PluginOutputError` (a :class:`DimensionMismatch` for a
length the manifest does not declare) naming the plugin and hook.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from weaviate_ext.errors import DimensionMismatch, PluginCallError, PluginOutputError
from weaviate_ext.outputs import to_matrix, to_rank_results, to_vector
from weaviate_ext.types import RankResult

P, VT, VB = "vec", "vectorize_text", "vectorize_batch"


def packed(*values: float) -> bytes:
    return np.asarray(values, dtype="<f4").tobytes()


def raises_output_error(
    call: Any, hook: str, reason: str, cls: type[PluginOutputError] = PluginOutputError
) -> PluginOutputError:
    """Run ``call``; it must raise ``cls`` for plugin ``vec``/``hook`` with ``reason``."""
    with pytest.raises(cls) as info:
        call()
    error = info.value
    assert type(error) is cls
    assert isinstance(error, PluginCallError)
    assert (error.plugin, error.hook, error.reason) == (P, hook, reason)
    section = cls.__name__.lower()
    assert str(error) == f"plugin {P!r} {hook}: {reason} (see docs/troubleshooting.md#{section})"
    return error


# -- to_vector --------------------------------------------------------------------------


def test_a_float32_array_is_returned_as_it_is() -> None:
    out = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    assert to_vector(out, 3, P, VT) is out


@pytest.mark.parametrize(
    "out",
    [
        [1, 2, 3],
        (1.0, 2.0, 3.0),
        np.array([1.0, 2.0, 3.0], dtype=np.float64),
        np.array([1, 2, 3], dtype=np.int64),
    ],
    ids=["list-of-int", "tuple", "float64", "int64"],
)
def test_other_sequences_become_float32(out: Any) -> None:
    vector = to_vector(out, 3, P, VT)
    assert vector.dtype == np.float32 and vector.shape == (3,)
    assert vector.tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_packed_little_endian_float32_is_read(kind: type) -> None:
    vector = to_vector(kind(packed(0.5, -1.0)), 2, P, VT)
    assert vector.dtype == np.float32 and vector.tolist() == [0.5, -1.0]


def test_dims_none_accepts_any_length() -> None:
    assert to_vector([1.0] * 7, None, P, VT).shape == (7,)


def test_a_vector_of_another_length_is_a_dimension_mismatch() -> None:
    error = raises_output_error(
        lambda: to_vector([1.0, 2.0], 3, P, VT),
        VT,
        "returned vectors of 2 dimensions, the manifest declares 3",
        DimensionMismatch,
    )
    assert isinstance(error, PluginOutputError)


def test_a_buffer_that_is_not_whole_float32s_is_refused() -> None:
    raises_output_error(
        lambda: to_vector(b"\x00" * 6, None, P, VT), VT, "returned 6 bytes, not packed float32"
    )


def test_a_2d_array_is_not_a_vector() -> None:
    raises_output_error(
        lambda: to_vector(np.zeros((2, 3), dtype=np.float32), 3, P, VT),
        VT,
        "returned an array of shape (2, 3), not 1-D",
    )


@pytest.mark.parametrize("out", [1.5, None], ids=["float", "none"])
def test_a_scalar_is_not_a_vector(out: Any) -> None:
    raises_output_error(
        lambda: to_vector(out, None, P, VT), VT, "returned an array of shape (), not 1-D"
    )


@pytest.mark.parametrize(
    ("out", "kind"),
    [(["a", "b"], "list"), ({"x": 1.0}, "dict"), ([[1.0], [1.0, 2.0]], "list")],
    ids=["strings", "dict", "ragged"],
)
def test_values_that_are_not_floats_are_refused(out: Any, kind: str) -> None:
    with pytest.raises(PluginOutputError) as info:
        to_vector(out, None, P, VT)
    assert (info.value.plugin, info.value.hook) == (P, VT)
    assert info.value.reason.startswith(f"returned {kind}, not float vectors (")


def test_nan_and_infinity_pass_through_unchanged() -> None:
    # the library does not judge values (serve refuses non-finite vectors, and the
    # conformance kit flags them); it must not turn them into something else either
    vector = to_vector([math.nan, math.inf, -math.inf], 3, P, VT)
    assert math.isnan(vector[0]) and vector[1] == math.inf and vector[2] == -math.inf


# -- to_matrix --------------------------------------------------------------------------


def test_a_float32_matrix_is_returned_as_it_is() -> None:
    out = np.ones((2, 4), dtype=np.float32)
    assert to_matrix(out, 2, 4, P, VB) is out


def test_lists_of_rows_become_a_float32_matrix() -> None:
    matrix = to_matrix([[1, 2], [3, 4], [5, 6]], 3, 2, P, VB)
    assert matrix.dtype == np.float32 and matrix.tolist() == [[1, 2], [3, 4], [5, 6]]


def test_a_packed_buffer_is_split_into_count_rows() -> None:
    matrix = to_matrix(packed(1, 2, 3, 4, 5, 6), 3, 2, P, VB)
    assert matrix.shape == (3, 2) and matrix[2].tolist() == [5.0, 6.0]
    assert to_matrix(bytearray(packed(1, 2, 3, 4, 5, 6)), 2, None, P, VB).shape == (2, 3)


def test_a_packed_buffer_not_divisible_by_the_count_is_refused() -> None:
    raises_output_error(
        lambda: to_matrix(packed(1, 2, 3), 2, None, P, VB),
        VB,
        "returned 3 floats, not a multiple of 2 texts",
    )


def test_a_packed_buffer_for_zero_texts_is_refused() -> None:
    raises_output_error(
        lambda: to_matrix(b"", 0, None, P, VB), VB, "returned 0 floats, not a multiple of 0 texts"
    )


def test_a_buffer_with_a_partial_float_is_refused() -> None:
    raises_output_error(
        lambda: to_matrix(b"\x00" * 10, 1, None, P, VB), VB, "returned 10 bytes, not packed float32"
    )


def test_a_1d_answer_to_a_batch_is_refused() -> None:
    raises_output_error(
        lambda: to_matrix([1.0, 2.0], 2, None, P, VB),
        VB,
        "returned an array of shape (2,), not (texts, dimensions)",
    )


def test_a_3d_answer_to_a_batch_is_refused() -> None:
    raises_output_error(
        lambda: to_matrix(np.zeros((1, 2, 3), dtype=np.float32), 1, None, P, VB),
        VB,
        "returned an array of shape (1, 2, 3), not (texts, dimensions)",
    )


def test_the_wrong_number_of_vectors_is_refused() -> None:
    raises_output_error(
        lambda: to_matrix(np.zeros((2, 3), dtype=np.float32), 3, 3, P, VB),
        VB,
        "returned 2 vectors for 3 texts",
    )


def test_rows_of_another_length_are_a_dimension_mismatch() -> None:
    raises_output_error(
        lambda: to_matrix(np.zeros((2, 5), dtype=np.float32), 2, 4, P, VB),
        VB,
        "returned vectors of 5 dimensions, the manifest declares 4",
        DimensionMismatch,
    )


def test_ragged_rows_are_refused() -> None:
    with pytest.raises(PluginOutputError) as info:
        to_matrix([[1.0], [1.0, 2.0]], 2, None, P, VB)
    assert info.value.reason.startswith("returned list, not float vectors (")


def test_the_hook_in_the_error_is_the_one_given() -> None:
    with pytest.raises(PluginOutputError) as info:
        to_matrix([[1.0]], 2, None, "other", "vectorize_text")
    assert (info.value.plugin, info.value.hook) == ("other", "vectorize_text")


def test_nan_in_a_matrix_passes_through() -> None:
    matrix = to_matrix([[math.nan, 1.0]], 1, 2, P, VB)
    assert math.isnan(matrix[0, 0]) and matrix[0, 1] == 1.0


# -- to_rank_results --------------------------------------------------------------------

DOCS = ["zero", "one", "two"]


def ranked(results: list[RankResult]) -> list[tuple[int, float, str | None]]:
    return [(r.index, r.score, r.document) for r in results]


def test_one_score_per_document_is_sorted_best_first() -> None:
    results = to_rank_results([0.1, 0.9, 0.5], DOCS, "rr")
    assert ranked(results) == [(1, 0.9, "one"), (2, 0.5, "two"), (0, 0.1, "zero")]
    assert all(type(r.score) is float for r in results)


def test_scores_may_be_a_numpy_array_or_ints() -> None:
    assert [r.index for r in to_rank_results(np.array([1, 3, 2]), DOCS, "rr")] == [1, 2, 0]
    assert [r.index for r in to_rank_results(np.float32([0.2, 0.1, 0.3]), DOCS, "rr")] == [2, 0, 1]


def test_ties_keep_input_order() -> None:
    assert [r.index for r in to_rank_results([0.5, 0.5, 0.5], DOCS, "rr")] == [0, 1, 2]


def test_index_score_pairs_and_rank_results_are_accepted() -> None:
    pairs = to_rank_results([(2, 0.3), (0, 0.7), (1, 0.5)], DOCS, "rr")
    assert ranked(pairs) == [(0, 0.7, "zero"), (1, 0.5, "one"), (2, 0.3, "two")]
    given = [RankResult(1, 2.0), RankResult(0, 1.0), RankResult(2, 3.0)]
    assert [r.index for r in to_rank_results(given, DOCS, "rr")] == [2, 1, 0]
    assert to_rank_results(given, DOCS, "rr")[0].document == "two"


def test_no_documents_no_results() -> None:
    assert to_rank_results([], [], "rr") == []


def rank_error(out: Any, reason: str, documents: list[str] = DOCS) -> None:
    with pytest.raises(PluginOutputError) as info:
        to_rank_results(out, documents, "rr")
    error = info.value
    assert (error.plugin, error.hook, error.reason) == ("rr", "rerank", reason)
    assert str(error).startswith(f"plugin 'rr' rerank: {reason} (see ")


def test_a_non_sequence_is_refused() -> None:
    rank_error(42, "returned int, not a sequence of scores")
    rank_error(None, "returned NoneType, not a sequence of scores")


def test_too_few_scores_are_refused() -> None:
    rank_error([0.5, 0.2], "returned 0.5: expected a score or (index, score)")


def test_a_pair_with_a_bad_index_or_score_is_refused() -> None:
    rank_error([("0", 0.5)], "returned ('0', 0.5): expected (int, float)")
    rank_error([(0, "high")], "returned (0, 'high'): expected (int, float)")
    rank_error([(0, True)], "returned (0, True): expected (int, float)")


def test_an_index_out_of_range_is_refused() -> None:
    rank_error([(3, 0.5), (0, 0.1), (1, 0.2)], "returned index 3 for 3 documents")
    rank_error([(-1, 0.5)], "returned index -1 for 3 documents")


def test_a_repeated_or_missing_index_is_refused() -> None:
    rank_error(
        [(0, 0.5), (0, 0.4), (1, 0.2)],
        "returned 3 results for 3 documents (each index must appear once; missing: [2])",
    )
    rank_error(
        [(1, 0.5)],
        "returned 1 results for 3 documents (each index must appear once; missing: [0, 2])",
    )


def test_booleans_are_not_scores() -> None:
    rank_error([True, False, True], "returned True: expected a score or (index, score)")


def test_a_nan_score_keeps_every_document_once() -> None:
    # NaN is passed through (serve refuses non-finite scores); the ranking still covers
    # every document exactly once
    results = to_rank_results([0.5, math.nan, 0.9], DOCS, "rr")
    assert sorted(r.index for r in results) == [0, 1, 2]
    assert math.isnan(next(r.score for r in results if r.index == 1))
