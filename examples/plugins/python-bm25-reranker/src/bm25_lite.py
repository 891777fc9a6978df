"""``bm25-lite``: Okapi BM25 computed over the documents given with each query.

The documents of one ``rerank`` call are the corpus: document frequencies and the
average length come from them. For each distinct query term ``t`` and document ``d``::

    idf(t)   = ln(1 + (N - n(t) + 0.5) / (n(t) + 0.5))
    score(d) = sum over t of idf(t) * f(t, d) * (k1 + 1)
                                    / (f(t, d) + k1 * (1 - b + b * |d| / avgdl))

with ``N`` documents, ``n(t)`` of them containing ``t``, ``f(t, d)`` the count of ``t``
in ``d`` and ``|d|`` its length in tokens. This ``idf`` (Lucene's) is never negative.
Tokens are lower-cased Unicode ``\\w+`` runs. One score is returned per document, in
input order; the handle sorts them.

Because the statistics depend on the whole candidate list, the manifest declares no
``maxBatchSize``: the handle must pass every candidate in one call.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

from weaviate_ext import Deadline, Manifest, PluginConfig, hookimpl

TOKEN = re.compile(r"\w+")


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens of ``text``."""
    return TOKEN.findall(text.lower())


def bm25_scores(
    query: str, documents: Sequence[str], *, k1: float = 1.5, b: float = 0.75
) -> list[float]:
    """The BM25 score of each document for ``query``, in input order."""
    docs = [Counter(tokenize(d)) for d in documents]
    lengths = [sum(c.values()) for c in docs]
    count = len(docs)
    avgdl = sum(lengths) / count if count else 0.0
    scores = [0.0] * count
    if avgdl == 0.0:
        return scores
    for term in dict.fromkeys(tokenize(query)):
        containing = sum(1 for c in docs if term in c)
        if not containing:
            continue
        idf = math.log(1.0 + (count - containing + 0.5) / (containing + 0.5))
        for i, counts in enumerate(docs):
            tf = counts.get(term, 0)
            if tf:
                norm = k1 * (1.0 - b + b * lengths[i] / avgdl)
                scores[i] += idf * tf * (k1 + 1.0) / (tf + norm)
    return scores


class BM25Reranker:
    """The plugin object: ``rerank``."""

    def __init__(self) -> None:
        self.k1 = 1.5
        self.b = 0.75

    @hookimpl
    def plugin_setup(self, config: PluginConfig, manifest: Manifest) -> None:
        """Read and check ``k1`` and ``b``."""
        k1, b = config.get_float("k1"), config.get_float("b")
        if not (math.isfinite(k1) and k1 >= 0):
            raise ValueError(f"config k1 must be a number >= 0, got {k1}")
        if not 0.0 <= b <= 1.0:
            raise ValueError(f"config b must be between 0 and 1, got {b}")
        self.k1, self.b = k1, b

    @hookimpl
    def rerank(self, query: str, documents: Sequence[str], deadline: Deadline) -> list[float]:
        """One BM25 score per document, in input order."""
        deadline.check()
        return bm25_scores(query, documents, k1=self.k1, b=self.b)
