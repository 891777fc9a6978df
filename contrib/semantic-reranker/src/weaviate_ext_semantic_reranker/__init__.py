"""weaviate-ext ``semantic-reranker``: rerank by MiniLM embedding similarity (+ BM25).

Installing this package registers the plugin with weaviate-ext through the entry point
``semantic-reranker`` in the group ``weaviate_ext``; the plugin is
:class:`weaviate_ext_semantic_reranker.plugin.SemanticReranker`. It embeds with the
encoder of the ``weaviate-ext-minilm-vectorizer`` package and scores BM25 with the
scorer of ``weaviate-ext-bm25-reranker``.
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
