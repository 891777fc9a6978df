"""Done-when: a client behaving exactly like Weaviate's ``text2vec-transformers`` and
``reranker-transformers`` modules gets correct answers from ``weaviate-ext serve`` with a
Python, a wasm, a native and a gRPC plugin behind it.

One server serves them all. The Python plugins are the defaults, behind the root URL
(``TRANSFORMERS_INFERENCE_API=http://host:port``); the others are reached the way a
Weaviate collection names its own inference URL (``inferenceUrl``), as
``http://host:port/inference/<plugin>``: the module appends ``/vectors``, ``/meta``,
``/rerank`` and ``/.well-known/ready`` to either. Answers are compared with the same
plugins called through their handles in this process.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import numpy as np
import pytest
from conftest import EXAMPLES, Server
from weaviate_client import ModuleError, RerankerTransformers, Text2VecTransformers

from weaviate_ext import PluginManager

VECTORIZERS = {
    "python": ("python-hash-vectorizer/plugin.yaml", ""),
    "wasm": ("custom-vectorizer/plugin.yaml", "/inference/custom-embedder"),
    "native": ("custom-vectorizer/plugin-native.yaml", "/inference/custom-embedder-native"),
    "grpc": ("grpc-vectorizer/plugin.yaml", "/inference/grpc-embedder"),
}
"""Per runtime: a vectorizer manifest (relative to examples/plugins) and its URL path."""

RERANKERS = {
    "python": ("python-bm25-reranker/plugin.yaml", ""),
    "wasm": ("c-reranker/plugin.yaml", "/inference/overlap-reranker"),
    "native": ("c-reranker/plugin-native.yaml", "/inference/overlap-reranker-native"),
    "grpc": ("grpc-node-reranker/plugin.yaml", "/inference/grpc-node-reranker"),
}

TEXTS = [
    "Weaviate stores objects and their vectors.",
    "A reranker reorders search results.",
    "héllo wörld, ünïcode — and emoji 🦊",
    "x",
]
QUERY = "how does a reranker order search results"
DOCUMENTS = [
    "Bread is baked from flour, water, salt and yeast.",
    "A reranker reorders search results with a more precise model.",
    "Search results are ordered by a reranker score.",
    "",
    "The fox jumps over the lazy dog.",
]


@pytest.fixture(scope="module")
def local() -> Iterator[tuple[PluginManager, dict[str, str]]]:
    """The same plugins loaded in this process, and their names (``kind:runtime``)."""
    with PluginManager(discover=False) as manager:
        names = {}
        for kind, table in (("vectorizer", VECTORIZERS), ("reranker", RERANKERS)):
            for runtime, (manifest, _) in table.items():
                if runtime == "grpc" and kind == "reranker" and shutil.which("node") is None:
                    continue
                names[f"{kind}:{runtime}"] = manager.load(EXAMPLES / manifest).name
        yield manager, names


@pytest.mark.parametrize("runtime", list(VECTORIZERS))
def test_text2vec_transformers_client(
    runtime: str, main_server: Server, local: tuple[PluginManager, dict[str, str]]
) -> None:
    manager, names = local
    name = names[f"vectorizer:{runtime}"]
    handle = manager.get_vectorizer(name)
    module = Text2VecTransformers(main_server.url + VECTORIZERS[runtime][1])
    try:
        module.wait_for_startup()
        meta = module.meta()
        assert meta["name"] == name
        assert meta["runtime"] == runtime
        assert meta["dimensions"] == 768
        assert meta["version"] == handle.manifest.version
        for text in TEXTS:
            expected = handle.vectorize_text(text)
            for task in ("passage", "query"):
                vector = module.vectorize(text, task)
                assert vector.shape == (768,)
                assert np.array_equal(vector, expected), (runtime, text, task)
        # Matryoshka: the first 256 values, scaled back to unit length (normalized: true)
        full = handle.vectorize_text(TEXTS[0]).astype(np.float64)
        short = module.vectorize(TEXTS[0], "query", dimensions=256)
        assert short.shape == (256,)
        expected_short = full[:256] / np.linalg.norm(full[:256])
        assert np.allclose(short, expected_short, atol=1e-6)
        assert np.linalg.norm(short.astype(np.float64)) == pytest.approx(1.0, abs=1e-5)
        with pytest.raises(ModuleError, match=r"fail with status 422: text must not be empty"):
            module.vectorize("")
        with pytest.raises(ModuleError, match=r"fail with status 422: dimensions 1000 is more"):
            module.vectorize("hello", dimensions=1000)
    finally:
        module.close()


@pytest.mark.parametrize("runtime", list(RERANKERS))
def test_reranker_transformers_client(
    runtime: str, main_server: Server, local: tuple[PluginManager, dict[str, str]]
) -> None:
    if runtime == "grpc" and shutil.which("node") is None:
        pytest.skip("node runs the gRPC reranker example")
    manager, names = local
    handle = manager.get_reranker(names[f"reranker:{runtime}"])
    module = RerankerTransformers(main_server.url + RERANKERS[runtime][1])
    try:
        ranked = module.rank(QUERY, DOCUMENTS)
        assert [doc for doc, _ in ranked] == DOCUMENTS, "one entry per document, input order"
        expected = {r.index: r.score for r in handle.rerank(QUERY, DOCUMENTS)}
        assert [score for _, score in ranked] == [expected[i] for i in range(len(DOCUMENTS))]
        best = max(range(len(DOCUMENTS)), key=lambda i: ranked[i][1])
        assert "reranker" in DOCUMENTS[best].lower()

        # more documents than one request takes: the module sends chunks of 32 at once
        # (the main server's --max-batch is 16: a 413 it reports) ...
        many = [f"document {i} about search results" if i % 3 else f"bread {i}" for i in range(40)]
        with pytest.raises(ModuleError, match="fail with status 413: documents has 32 texts"):
            module.rank("search results", many)
        # ... and joins the scores of chunks in order
        module.chunk = 16
        ranked = module.rank("search results", many)
        assert [doc for doc, _ in ranked] == many
        for start in (0, 16, 32):
            chunk = many[start : start + 16]
            scores = {r.index: r.score for r in handle.rerank("search results", chunk)}
            got = [score for _, score in ranked[start : start + 16]]
            assert got == [scores[i] for i in range(len(chunk))]
    finally:
        module.close()
