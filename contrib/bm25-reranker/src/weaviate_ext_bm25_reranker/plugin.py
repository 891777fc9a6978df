"""``bm25-reranker``: the weaviate-ext reranker plugin around :class:`BM25Scorer`.

``rerank`` returns one BM25 score per document, in input order; the framework's handle
sorts them (ties keep input order), attaches the documents and applies ``top_k``, so
every document comes back exactly once with its score.
"""

from __future__ import annotations

from collections.abc import Sequence

from weaviate_ext import ConfigError, Deadline, InvalidInput, Manifest, PluginConfig, hookimpl
from weaviate_ext_bm25_reranker.scoring import BM25Scorer


def scorer_from_config(config: PluginConfig) -> BM25Scorer:
    """A :class:`BM25Scorer` from the plugin's config; a bad value is a :class:`ConfigError`."""
    try:
        return BM25Scorer(
            k1=config.get_float("k1"),
            b=config.get_float("b"),
            method=config.get_string("method"),
            delta=config.get_float("delta"),
            stopwords=config.get_string("stopwords"),
            lowercase=config.get_bool("lowercase"),
        )
    except ValueError as exc:
        raise ConfigError(f"config key {exc}") from None


class BM25Reranker:
    """The plugin object: ``rerank``."""

    def __init__(self) -> None:
        self.scorer = BM25Scorer()

    @hookimpl
    def plugin_setup(self, config: PluginConfig, manifest: Manifest) -> None:
        """Read and check ``k1``, ``b``, ``method``, ``delta``, ``stopwords``, ``lowercase``."""
        self.scorer = scorer_from_config(config)

    @hookimpl
    def rerank(self, query: str, documents: Sequence[str], deadline: Deadline) -> list[float]:
        """One BM25 score per document, in input order."""
        if not isinstance(query, str):
            raise InvalidInput(f"query must be str, got {type(query).__name__}")
        for i, document in enumerate(documents):
            if not isinstance(document, str):
                raise InvalidInput(f"documents[{i}] must be str, got {type(document).__name__}")
        return [float(s) for s in self.scorer.scores(query, documents, deadline)]
