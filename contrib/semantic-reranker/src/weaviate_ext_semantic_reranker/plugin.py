"""``semantic-reranker``: candidates scored by meaning, not only by shared words.

The query and every candidate are embedded with all-MiniLM-L6-v2 (the
:class:`~weaviate_ext_minilm_vectorizer.encoder.MiniLMEncoder` of the
``minilm-vectorizer`` package, in one batch per call); the semantic score is the cosine
similarity of the unit vectors. A paraphrase that shares no word with the query still
ranks above an unrelated document. With ``fusion: weighted`` or ``fusion: rrf`` the
BM25 scores of :class:`~weaviate_ext_bm25_reranker.scoring.BM25Scorer` (lucene, k1 1.5,
b 0.75) are combined with it, see :mod:`weaviate_ext_semantic_reranker.fusion`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from weaviate_ext_bm25_reranker.scoring import BM25Scorer
from weaviate_ext_minilm_vectorizer.encoder import EncoderError, MiniLMEncoder
from weaviate_ext_minilm_vectorizer.plugin import encoder_from_config

from weaviate_ext import ConfigError, Deadline, InvalidInput, Manifest, PluginConfig, hookimpl
from weaviate_ext_semantic_reranker.fusion import FUSIONS, Scores, fuse


class SemanticReranker:
    """The plugin object: ``rerank`` by embedding similarity, optionally fused with BM25."""

    def __init__(self) -> None:
        self.encoder: MiniLMEncoder | None = None
        self.bm25 = BM25Scorer()
        self.fusion = "none"
        self.weight = 0.7
        self.rrf_k = 60

    @hookimpl
    def plugin_setup(self, config: PluginConfig, manifest: Manifest) -> None:
        """Check ``fusion``, ``weight`` and ``rrf_k``, then load the model."""
        fusion = config.get_string("fusion")
        weight = config.get_float("weight")
        rrf_k = config.get_int("rrf_k")
        if fusion not in FUSIONS:
            raise ConfigError(
                f"config key 'fusion' must be one of {', '.join(FUSIONS)}, got {fusion!r}"
            )
        if not 0.0 <= weight <= 1.0:
            raise ConfigError(f"config key 'weight' must be between 0 and 1, got {weight}")
        if rrf_k < 0:
            raise ConfigError(f"config key 'rrf_k' must be 0 or more, got {rrf_k}")
        self.fusion, self.weight, self.rrf_k = fusion, weight, rrf_k
        self.encoder = encoder_from_config(config)

    @hookimpl
    def plugin_health(self) -> bool:
        """Healthy while the model is loaded."""
        return self.encoder is not None and not self.encoder.closed

    @hookimpl
    def plugin_close(self) -> None:
        """Release the onnxruntime session."""
        if self.encoder is not None:
            self.encoder.close()

    def semantic_scores(
        self, query: str, documents: Sequence[str], deadline: Deadline | None = None
    ) -> Scores:
        """The cosine similarity of each document's embedding to the query's."""
        if self.encoder is None:
            raise EncoderError("semantic-reranker is not set up")
        vectors = self.encoder.encode([query, *documents], deadline).astype(np.float64)
        # an elementwise product summed per row, not a BLAS matrix-vector product, whose
        # result for a row can change in the last bits with the row's position: equal
        # documents must get equal scores
        return (vectors[1:] * vectors[0]).sum(axis=1)

    @hookimpl
    def rerank(self, query: str, documents: Sequence[str], deadline: Deadline) -> list[float]:
        """One score per document, in input order (the handle sorts them)."""
        if not isinstance(query, str):
            raise InvalidInput(f"query must be str, got {type(query).__name__}")
        for i, document in enumerate(documents):
            if not isinstance(document, str):
                raise InvalidInput(f"documents[{i}] must be str, got {type(document).__name__}")
        semantic = self.semantic_scores(query, documents, deadline)
        lexical = None if self.fusion == "none" else self.bm25.scores(query, documents, deadline)
        scores = fuse(semantic, lexical, self.fusion, weight=self.weight, rrf_k=self.rrf_k)
        return [float(s) for s in scores]
