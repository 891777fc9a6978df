"""Combining semantic and BM25 scores of the same candidates into one score each.

``none``
    the cosine similarity of the query's and the document's MiniLM embeddings
    (between -1 and 1);
``weighted``
    ``weight * max(cosine, 0) + (1 - weight) * bm25 / max(bm25)``: both parts on a
    0-1 scale, the BM25 part relative to the best candidate (0 for every candidate
    when none shares a term with the query). ``weight = 1`` is pure semantic,
    ``weight = 0`` pure BM25;
``rrf``
    reciprocal rank fusion (Cormack et al., 2009): ``1 / (k + rank_semantic) +
    1 / (k + rank_bm25)`` with 1-based ranks; equal scores share the best rank of
    their group (1, 2, 2, 4), so the candidates' input order never decides.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FUSIONS = ("none", "weighted", "rrf")
"""The accepted values of ``fusion``."""

Scores = npt.NDArray[np.float64]


def competition_ranks(scores: Scores) -> Scores:
    """1-based ranks, best (highest) score first; ties share their best rank (1, 2, 2, 4)."""
    ranks = np.empty(len(scores), dtype=np.float64)
    for i, score in enumerate(scores):
        ranks[i] = 1 + int(np.count_nonzero(scores > score))
    return ranks


def weighted(semantic: Scores, lexical: Scores, weight: float) -> Scores:
    """``weight * max(semantic, 0) + (1 - weight) * lexical / max(lexical)``."""
    best = float(lexical.max()) if len(lexical) else 0.0
    relative = lexical / best if best > 0 else np.zeros_like(lexical)
    return weight * np.clip(semantic, 0.0, None) + (1.0 - weight) * relative


def reciprocal_rank(semantic: Scores, lexical: Scores, k: int) -> Scores:
    """``1 / (k + rank_semantic) + 1 / (k + rank_lexical)``."""
    return 1.0 / (k + competition_ranks(semantic)) + 1.0 / (k + competition_ranks(lexical))


def fuse(
    semantic: Scores, lexical: Scores | None, fusion: str, *, weight: float, rrf_k: int
) -> Scores:
    """One score per candidate for ``fusion`` (``lexical`` is unused with ``none``)."""
    if fusion == "none":
        return semantic
    if lexical is None:
        raise ValueError(f"fusion {fusion!r} needs the BM25 scores")
    if fusion == "weighted":
        return weighted(semantic, lexical, weight)
    if fusion == "rrf":
        return reciprocal_rank(semantic, lexical, rrf_k)
    raise ValueError(f"unknown fusion {fusion!r} (expected one of {', '.join(FUSIONS)})")
