"""The two transformers as a pipeline before a vectorizer, and found as installed plugins."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
from weaviate_ext_text_transformers.chunking import chunk_text, word_spans
from weaviate_ext_text_transformers.normalizing import normalize

from weaviate_ext import PluginManager, load_manifest

DOCUMENT = (
    "\ufb01rst  paragraph: Vector search finds similar items by comparing embeddings.\n\n"
    "Plugins extend the search engine with new models.\x00 Embeddings are lists of "
    "numbers that capture meaning. The weather was nice yesterday."
)


def test_normalizer_chunker_vectorizer(
    normalizer_manifest: Path, chunker_manifest: Path, hash_embedder: Path
) -> None:
    with PluginManager(discover=False) as manager:
        manager.load(normalizer_manifest, config={"lowercase": True})
        manager.load(chunker_manifest, config={"size": 8, "overlap": 2})
        vectorizer = manager.load(hash_embedder)
        pipeline = manager.pipeline("unicode-normalizer", "text-chunker")

        chunks = pipeline.run(DOCUMENT)
        clean = normalize(DOCUMENT, lowercase=True)
        assert chunks == chunk_text(clean, word_spans, 8, 2)
        assert chunks[0] == "first paragraph: vector search finds similar items by"
        assert all(len(chunk.split()) == 8 for chunk in chunks[:-1])
        assert "\x00" not in "".join(chunks)

        vectors = vectorizer.vectorize_batch(chunks)
        assert vectors.shape == (len(chunks), 768)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        np.testing.assert_allclose(vectors[1], vectorizer.vectorize_text(chunks[1]), atol=1e-6)

        two = pipeline.run_batch([DOCUMENT, "short text"])
        assert two == [*chunks, "short text"]  # every chunk of every document, in order
        assert pipeline.run("   ") == []
        assert vectorizer.vectorize_batch(pipeline.run("")).shape == (0, 768)


def test_installed_plugins_load_one_at_a_time() -> None:
    with PluginManager(config={"text-chunker": {"size": 2, "overlap": 0}}) as manager:
        assert {"text-chunker", "unicode-normalizer"} <= set(manager.installed)
        chunker = manager.get_transformer("text-chunker")
        assert chunker.transform("a b c") == ["a b", "c"]
        assert "unicode-normalizer" not in manager.names()  # its own entry point
        assert manager.get_transformer("unicode-normalizer").transform(" A\u00a0 B ") == "A B"


def test_manifest_versions_are_the_package_version(
    chunker_manifest: Path, normalizer_manifest: Path
) -> None:
    version = importlib.metadata.version("weaviate-ext-text-transformers")
    assert load_manifest(chunker_manifest).version == version
    assert load_manifest(normalizer_manifest).version == version
