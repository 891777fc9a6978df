"""Turning what a plugin returned into the framework's types, checking its contract.

Used by the handles only: vectors become numpy float32 (packed little-endian float32
``bytes`` are read without a copy), rerank answers become sorted :class:`RankResult`
lists covering every document once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from weaviate_ext.errors import DimensionMismatch, PluginOutputError
from weaviate_ext.types import RankResult

Vector = npt.NDArray[np.float32]

_BUFFERS = (bytes, bytearray, memoryview)


def _from_buffer(out: bytes | bytearray | memoryview, plugin: str, hook: str) -> Vector:
    size = memoryview(out).nbytes
    if size % 4:
        raise PluginOutputError(plugin, hook, f"returned {size} bytes, not packed float32")
    return np.frombuffer(out, dtype="<f4")


def _as_float32(out: Any, plugin: str, hook: str) -> Vector:
    try:
        return np.asarray(out, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise PluginOutputError(
            plugin, hook, f"returned {type(out).__name__}, not float vectors ({exc})"
        ) from None


def _check_dims(got: int, dims: int | None, plugin: str, hook: str) -> None:
    if dims is not None and got != dims:
        raise DimensionMismatch(
            plugin, hook, f"returned vectors of {got} dimensions, the manifest declares {dims}"
        )


def to_vector(out: Any, dims: int | None, plugin: str, hook: str) -> Vector:
    """One vector as a 1-D float32 array of ``dims`` values."""
    if type(out) is np.ndarray and out.dtype == np.float32:
        vec = out
    elif isinstance(out, _BUFFERS):
        vec = _from_buffer(out, plugin, hook)
    else:
        vec = _as_float32(out, plugin, hook)
    if vec.ndim != 1:
        raise PluginOutputError(plugin, hook, f"returned an array of shape {vec.shape}, not 1-D")
    _check_dims(vec.shape[0], dims, plugin, hook)
    return vec


def to_matrix(out: Any, count: int, dims: int | None, plugin: str, hook: str) -> Vector:
    """``count`` vectors as a 2-D float32 array of shape ``(count, dims)``."""
    if type(out) is np.ndarray and out.dtype == np.float32:
        matrix = out
    elif isinstance(out, _BUFFERS):
        flat = _from_buffer(out, plugin, hook)
        if count == 0 or flat.shape[0] % count:
            raise PluginOutputError(
                plugin, hook, f"returned {flat.shape[0]} floats, not a multiple of {count} texts"
            )
        matrix = flat.reshape(count, -1)
    else:
        matrix = _as_float32(out, plugin, hook)
    if matrix.ndim != 2:
        raise PluginOutputError(
            plugin, hook, f"returned an array of shape {matrix.shape}, not (texts, dimensions)"
        )
    if matrix.shape[0] != count:
        raise PluginOutputError(
            plugin, hook, f"returned {matrix.shape[0]} vectors for {count} texts"
        )
    _check_dims(matrix.shape[1], dims, plugin, hook)
    return matrix


def _is_score(value: Any) -> bool:
    return isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)


def _to_result(item: Any, documents: Sequence[str], plugin: str) -> RankResult:
    if isinstance(item, RankResult):
        index, score = item.index, item.score
    else:
        try:
            index, score = item
        except (TypeError, ValueError):
            raise PluginOutputError(
                plugin, "rerank", f"returned {item!r}: expected a score or (index, score)"
            ) from None
    if not isinstance(index, (int, np.integer)) or not _is_score(score):
        raise PluginOutputError(plugin, "rerank", f"returned {item!r}: expected (int, float)")
    if not 0 <= index < len(documents):
        raise PluginOutputError(
            plugin, "rerank", f"returned index {index} for {len(documents)} documents"
        )
    return RankResult(int(index), float(score), documents[int(index)])


def to_rank_results(out: Any, documents: Sequence[str], plugin: str) -> list[RankResult]:
    """Scores or (index, score) pairs as :class:`RankResult` objects, best first.

    Every document index must appear exactly once; ties keep input order.
    """
    if isinstance(out, np.ndarray):
        out = out.tolist()
    try:
        items = list(out)
    except TypeError:
        raise PluginOutputError(
            plugin, "rerank", f"returned {type(out).__name__}, not a sequence of scores"
        ) from None
    if len(items) == len(documents) and all(_is_score(i) for i in items):
        results = [RankResult(i, float(s), documents[i]) for i, s in enumerate(items)]
    else:
        results = [_to_result(item, documents, plugin) for item in items]
        seen = {r.index for r in results}
        if len(seen) != len(results) or len(seen) != len(documents):
            missing = sorted(set(range(len(documents))) - seen)
            raise PluginOutputError(
                plugin,
                "rerank",
                f"returned {len(results)} results for {len(documents)} documents "
                f"(each index must appear once; missing: {missing[:10]})",
            )
    results.sort(key=lambda r: (-r.score, r.index))
    return results
