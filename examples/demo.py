"""The main demo: load every example plugin and run a small search flow through them.

Run: ``python examples/demo.py [--plugins DIR]`` (``scripts/demo.sh`` installs first).

The flow is what a vector-search host does with its extensions: authenticate the
caller, normalise documents, embed them, find the nearest ones to a query, rerank those,
generate an answer from the best, and store it. Each step prints the plugin that did
it, its runtime and how long it took.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from weaviate_ext import PluginManager

T = TypeVar("T")

HERE = Path(__file__).resolve().parent

DOCUMENTS = [
    "Weaviate stores objects and their vectors, and searches them by similarity.",
    "A reranker reorders search results with a more precise but slower model.",
    "BM25 ranks documents by term frequency and inverse document frequency.",
    "Hot reload swaps a plugin's new version in without dropping a single call.",
    "The  WASM runtime runs untrusted plugins in a sandbox with memory limits.",
    "Bread is baked from flour, water, salt and yeast.",
]
QUERY = "how does a reranker order search results"
API_KEY = "demo-key-123"


def step(manager: PluginManager, label: str, name: str, fn: Callable[[], T]) -> T:
    """Run one step of the flow and print who did it, on which runtime, and how fast."""
    spec = manager.manifest(name).spec
    started = time.perf_counter()
    result = fn()
    elapsed = (time.perf_counter() - started) * 1e3
    print(f"  {label:<22} {name:<22} {spec.runtime:<8} {elapsed:8.2f} ms")
    return result


def plugin_config(store_dir: str) -> dict[str, dict[str, Any]]:
    """Host configuration of the example plugins that need some."""
    digest = hashlib.sha256(API_KEY.encode()).hexdigest()
    return {
        "file-store": {"path": store_dir},
        "apikey-auth": {
            "keys": {"demo": {"sha256": digest, "roles": ["reader"]}},
            "rules": [{"role": "reader", "resource": "docs*", "action": "read", "allow": True}],
        },
    }


def run(manager: PluginManager, plugins: Path, store_dir: str) -> int:
    result = manager.load_directory(plugins, config=plugin_config(store_dir))
    print(f"loaded {len(result.loaded)} plugins from {plugins}:")
    for row in manager.plugins():
        if row.status == "loaded":
            print(f"  {row.name:<24} {row.version:<8} {row.type:<12} {row.runtime}")
    for key, error in result.failed.items():
        print(f"  not loaded: {key}: {error}")

    print("\nflow:                   plugin                 runtime      time")
    identity = step(
        manager, "authenticate", "apikey-auth", lambda: manager.authenticate({"api_key": API_KEY})
    )
    assert identity is not None
    allowed = step(
        manager,
        "authorize docs:read",
        "apikey-auth",
        lambda: manager.authorize(identity, "docs", "read"),
    )
    if not allowed:
        print("  not authorised")
        return 1

    normalizer = manager.pipeline("text-normalizer")
    docs = step(
        manager, "normalise documents", "text-normalizer", lambda: normalizer.run_batch(DOCUMENTS)
    )
    embedder = manager.get_vectorizer("hash-embedder")
    matrix = step(
        manager, "embed documents", "hash-embedder", lambda: embedder.vectorize_batch(docs)
    )
    query_vector = step(
        manager, "embed query", "hash-embedder", lambda: embedder.vectorize_text(QUERY)
    )
    scores = matrix @ query_vector
    nearest = [int(i) for i in np.argsort(-scores)[:3]]
    ranked = step(
        manager,
        "rerank nearest 3",
        "bm25-lite",
        lambda: manager.get_reranker("bm25-lite").rerank(QUERY, [docs[i] for i in nearest]),
    )
    best = [r.document or "" for r in ranked]
    generator = manager.get_generator("extractive-summarizer")
    answer = step(
        manager,
        "generate answer",
        "extractive-summarizer",
        lambda: "".join(generator.generate_stream(" ".join(best))),
    )
    storage = manager.get_storage("file-store")
    step(manager, "store answer", "file-store", lambda: storage.store("answer", answer.encode()))
    stored = step(manager, "retrieve answer", "file-store", lambda: storage.retrieve("answer"))

    print(f"\nquery:  {QUERY}")
    for rank, result_ in enumerate(ranked, 1):
        print(f"  {rank}. ({result_.score:.3f}) {result_.document}")
    print(f"answer: {answer.strip()}")
    assert stored == answer.encode(), "storage lost the answer"

    print("\ncalls per plugin:")
    for name, stats in manager.stats().items():
        print(f"  {name:<24} {stats.calls:>4} calls  {stats.mean_ms:8.3f} ms mean")
    return 0 if result.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugins", type=Path, default=HERE / "plugins")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as store_dir, PluginManager(discover=False) as manager:
        return run(manager, args.plugins, store_dir)


if __name__ == "__main__":
    sys.exit(main())
