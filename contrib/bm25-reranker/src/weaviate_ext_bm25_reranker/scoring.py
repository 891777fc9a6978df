"""BM25 over a query's candidate documents, computed by `bm25s`_.

The documents of one call are the corpus: document frequencies and the average length
come from them, so the same document can score differently among other candidates.
``bm25s`` implements the variants of Kamphuis et al. (2020), chosen by ``method``:

``lucene`` (default)
    ``idf = ln(1 + (N - n + 0.5) / (n + 0.5))``, never negative, and
    ``tf / (tf + k1 * (1 - b + b * |d| / avgdl))``;
``robertson``
    the original idf ``ln((N - n + 0.5) / (n + 0.5))``, clamped at 0 by bm25s, so a
    term found in more than half of the candidates adds nothing;
``atire``
    ``idf = ln(N / n)`` with the ``(k1 + 1)`` numerator;
``bm25l`` and ``bm25+``
    shifted term frequencies (``delta``) that stop long documents from being
    over-penalised; bm25s gives every document a small non-zero base score for each
    query term, so a document without any query term does not score exactly 0.

Tokens: the text is NFKC-normalised and (with ``lowercase``) case-folded; a token is a
run of letters, digits and ``_``, except that each Chinese, Japanese kana and CJK
compatibility character is a token of its own (as Lucene's StandardTokenizer does), so
CJK text without spaces still matches word by word. Stopwords are removed when a
language is given. A query term counts once per occurrence in the query.

.. _bm25s: https://github.com/xhluca/bm25s
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
import warnings
from collections.abc import Sequence

import bm25s
import bm25s.stopwords
import numpy as np
import numpy.typing as npt

from weaviate_ext import Deadline

# bm25s sets its own logger to DEBUG when it is imported, so its debug lines ("Building
# index from tokens", at every rerank) pass the handlers of an application that logs at
# WARNING, such as logging.basicConfig(level=logging.WARNING). The level goes back to the
# application: NOTSET follows the root logger, or a level set on "bm25s" after this import.
_BM25S_LOG = logging.getLogger("bm25s")
if _BM25S_LOG.level == logging.DEBUG:
    _BM25S_LOG.setLevel(logging.NOTSET)

METHODS = ("lucene", "robertson", "atire", "bm25l", "bm25+")
"""The BM25 variants bm25s implements."""

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"
TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")
"""One CJK character, or a run of word characters that are not CJK."""

STOPWORDS: dict[str, tuple[str, ...]] = {}
"""Stopword lists by language code and name (``en``, ``english``, ``de``, ``german``...)."""

for _code, _name, _attr in (
    ("en", "english", "STOPWORDS_EN"),
    ("en_plus", "english_plus", "STOPWORDS_EN_PLUS"),
    ("da", "danish", "STOPWORDS_DANISH"),
    ("de", "german", "STOPWORDS_GERMAN"),
    ("es", "spanish", "STOPWORDS_SPANISH"),
    ("fr", "french", "STOPWORDS_FRENCH"),
    ("it", "italian", "STOPWORDS_ITALIAN"),
    ("ko", "korean", "STOPWORDS_KOREAN"),
    ("nl", "dutch", "STOPWORDS_DUTCH"),
    ("no", "norwegian", "STOPWORDS_NORWEGIAN"),
    ("pt", "portuguese", "STOPWORDS_PORTUGUESE"),
    ("ru", "russian", "STOPWORDS_RUSSIAN"),
    ("sv", "swedish", "STOPWORDS_SWEDISH"),
    ("tr", "turkish", "STOPWORDS_TURKISH"),
    ("zh", "chinese", "STOPWORDS_CHINESE"),
):
    _words = getattr(bm25s.stopwords, _attr, None)
    if _words is not None:
        STOPWORDS[_code] = STOPWORDS[_name] = tuple(_words)


class BM25Error(RuntimeError):
    """bm25s failed on the given documents (the message says why)."""


def tokenize(
    text: str, *, lowercase: bool = True, stopwords: frozenset[str] = frozenset()
) -> list[str]:
    """The BM25 tokens of ``text`` (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text)
    if lowercase:
        text = text.casefold()
    tokens = TOKEN.findall(text)
    return [t for t in tokens if t not in stopwords] if stopwords else tokens


class BM25Scorer:
    """Scores candidate documents for a query with BM25.

    :param k1: term-frequency saturation, a finite number >= 0.
    :param b: document-length normalisation, between 0 and 1.
    :param method: one of :data:`METHODS`.
    :param delta: the shift of ``bm25l`` and ``bm25+`` (>= 0; unused by the others).
    :param stopwords: a language of :data:`STOPWORDS` (``en``, ``german``...), or ``""``
        for none.
    :param lowercase: case-fold before matching.

    A bad value is a :class:`ValueError` that names the parameter. Stateless between
    calls, so one scorer may serve many threads.
    """

    def __init__(
        self,
        *,
        k1: float = 1.5,
        b: float = 0.75,
        method: str = "lucene",
        delta: float = 0.5,
        stopwords: str = "",
        lowercase: bool = True,
    ) -> None:
        if not (math.isfinite(k1) and k1 >= 0):
            raise ValueError(f"'k1' must be a finite number >= 0, got {k1}")
        if not 0.0 <= b <= 1.0:
            raise ValueError(f"'b' must be between 0 and 1, got {b}")
        if method not in METHODS:
            raise ValueError(f"'method' must be one of {', '.join(METHODS)}, got {method!r}")
        if not (math.isfinite(delta) and delta >= 0):
            raise ValueError(f"'delta' must be a finite number >= 0, got {delta}")
        language = stopwords.strip().lower()
        if language in ("", "none"):
            words: tuple[str, ...] = ()
        elif language in STOPWORDS:
            words = STOPWORDS[language]
        else:
            known = ", ".join(sorted(k for k in STOPWORDS if len(k) == 2))
            raise ValueError(
                f"'stopwords' must be empty or a language ({known}), got {stopwords!r}"
            )
        self.k1, self.b, self.method, self.delta = float(k1), float(b), method, float(delta)
        self.stopwords_language = language if words else ""
        self.lowercase = lowercase
        # a stopword that is not one token here ("don't", a multi-character CJK word)
        # could never equal a token: it is left out rather than split into pieces
        self._stopwords = frozenset(
            tokens[0]
            for tokens in (tokenize(w, lowercase=lowercase) for w in words)
            if len(tokens) == 1
        )

    def __repr__(self) -> str:
        return (
            f"BM25Scorer(k1={self.k1}, b={self.b}, method={self.method!r}, delta={self.delta}, "
            f"stopwords={self.stopwords_language!r}, lowercase={self.lowercase})"
        )

    def tokenize(self, text: str) -> list[str]:
        """The tokens this scorer matches for ``text``."""
        return tokenize(text, lowercase=self.lowercase, stopwords=self._stopwords)

    def scores(
        self, query: str, documents: Sequence[str], deadline: Deadline | None = None
    ) -> npt.NDArray[np.float64]:
        """One BM25 score per document, in input order (zeros when nothing can match)."""
        out = np.zeros(len(documents), dtype=np.float64)
        query_tokens = self.tokenize(query)
        if not documents or not query_tokens:
            return out
        corpus = []
        for document in documents:
            corpus.append(self.tokenize(document))
            if deadline is not None and len(corpus) % 1024 == 0:
                deadline.check()
        if not any(corpus):
            return out
        index = bm25s.BM25(k1=self.k1, b=self.b, delta=self.delta, method=self.method)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                index.index(corpus, show_progress=False)
                if deadline is not None:
                    deadline.check()
                scores = index.get_scores(query_tokens)
        except Exception as exc:  # bm25s internals: report them as one clear error
            raise BM25Error(f"bm25s failed: {type(exc).__name__}: {exc}") from None
        out[:] = np.asarray(scores, dtype=np.float64)
        return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
