"""weaviate-ext ``minilm-vectorizer``: all-MiniLM-L6-v2 sentence embeddings, offline.

Installing this package registers the plugin with weaviate-ext through the entry point
``minilm-vectorizer`` in the group ``weaviate_ext``; the plugin is
:class:`weaviate_ext_minilm_vectorizer.plugin.MiniLMVectorizer`. The encoder itself,
:class:`weaviate_ext_minilm_vectorizer.encoder.MiniLMEncoder`, can be used on its own
(the ``semantic-reranker`` package does).
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
