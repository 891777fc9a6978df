"""weaviate-ext ``bm25-reranker``: BM25 scores of the candidate documents, with bm25s.

Installing this package registers the plugin with weaviate-ext through the entry point
``bm25-reranker`` in the group ``weaviate_ext``; the plugin is
:class:`weaviate_ext_bm25_reranker.plugin.BM25Reranker`. The scoring itself,
:class:`weaviate_ext_bm25_reranker.scoring.BM25Scorer`, can be used on its own (the
``semantic-reranker`` package fuses it with embeddings).
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.resources import files
from typing import Any

from weaviate_ext import hookimpl

__all__ = ["weaviate_ext_discover"]


@hookimpl
def weaviate_ext_discover() -> Iterable[Any]:
    """Hand the manifest this package ships to the plugin manager."""
    return [files(__name__) / "plugin.yaml"]
