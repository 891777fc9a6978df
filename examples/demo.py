"""The main demo: load the example plugins of every runtime and run a search flow.

Run: ``python examples/demo.py [--plugins DIR]`` (``scripts/demo.sh`` installs first).

The flow is what a vector-search host does with its extensions: authenticate the
caller, normalise documents, embed them, find the nearest ones to a query, rerank those,
generate an answer from the best, and store it. The steps use plugins of all four
runtimes (python, wasm, native, grpc); each prints the plugin that did it, its runtime
and how long it took. Build the C examples first (``scripts/demo.sh`` does).
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

from weaviate_ext import PluginManager, WeaviateExtError

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
    print(f"  {label:<23} {name:<28} {spec.runtime:<8} {elapsed:8.2f} ms")
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


def load_examples(manager: PluginManager, plugins: Path, store_dir: str) -> bool:
    """Load every example: each plugin.yaml, plus the native builds' plugin-native.yaml."""
    config = plugin_config(store_dir)
    result = manager.load_directory(plugins, config=config)
    ok = result.ok
    for key, error in result.failed.items():
        print(f"  not loaded: {key}: {error}")
    for native in sorted(plugins.glob("*/plugin-native.yaml")):
        try:
            manager.load(native)
        except WeaviateExtError as error:
            print(f"  not loaded: {native}: {error}")
            ok = False
    print(f"loaded {len(manager.names())} plugins from {plugins}:")
    for row in manager.plugins():
        if row.status == "loaded":
            isolation = (row.isolation or "").split(":")[0].split(" (")[0]
            print(f"  {row.name:<28} {row.type:<12} {row.runtime:<7} {isolation}")
    return ok


def run(manager: PluginManager, plugins: Path, store_dir: str) -> int:
    ok = load_examples(manager, plugins, store_dir)

    print("\nflow:                    plugin                       runtime      time")
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

    squash = manager.pipeline("whitespace-normalizer")
    fold = manager.pipeline("text-normalizer")
    spaced = step(
        manager, "collapse whitespace", "whitespace-normalizer", lambda: squash.run_batch(DOCUMENTS)
    )
    docs = step(manager, "normalise unicode", "text-normalizer", lambda: fold.run_batch(spaced))
    wasm_embedder = manager.get_vectorizer("custom-embedder")
    native_embedder = manager.get_vectorizer("custom-embedder-native")
    matrix = step(
        manager, "embed documents", "custom-embedder", lambda: wasm_embedder.vectorize_batch(docs)
    )
    query_vector = step(
        manager,
        "embed query",
        "custom-embedder-native",
        lambda: native_embedder.vectorize_text(QUERY),
    )
    same = np.allclose(query_vector, wasm_embedder.vectorize_text(QUERY), atol=1e-6)
    grpc_vectors = step(
        manager,
        "embed via a process",
        "grpc-embedder",
        lambda: manager.get_vectorizer("grpc-embedder").vectorize_batch(docs),
    )
    nearest = [int(i) for i in np.argsort(-(matrix @ query_vector))[:3]]
    candidates = [docs[i] for i in nearest]
    ranked = step(
        manager,
        "rerank nearest 3",
        "overlap-reranker",
        lambda: manager.get_reranker("overlap-reranker").rerank(QUERY, candidates),
    )
    best = [r.document or "" for r in ranked]
    generator = manager.get_generator("grpc-extractive-generator")
    answer = step(
        manager,
        "generate (streamed)",
        "grpc-extractive-generator",
        lambda: "".join(generator.generate_stream(" ".join(best))),
    )
    storage = manager.get_storage("file-store")
    step(manager, "store answer", "file-store", lambda: storage.store("answer", answer.encode()))
    stored = step(manager, "retrieve answer", "file-store", lambda: storage.retrieve("answer"))

    print(f"\nwasm and native builds give the same vector: {same}")
    print(f"grpc-embedder: {grpc_vectors.shape[0]} vectors of {grpc_vectors.shape[1]} dims")
    print(f"query:  {QUERY}")
    for rank, result_ in enumerate(ranked, 1):
        print(f"  {rank}. ({result_.score:.3f}) {result_.document}")
    print(f"answer: {answer.strip()}")
    assert stored == answer.encode(), "storage lost the answer"

    print("\ncalls per plugin:")
    for name, stats in manager.stats().items():
        if stats.calls:
            print(f"  {name:<28} {stats.calls:>4} calls  {stats.mean_ms:8.3f} ms mean")
    return 0 if ok and same else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugins", type=Path, default=HERE / "plugins")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as store_dir, PluginManager(discover=False) as manager:
        return run(manager, args.plugins, store_dir)


if __name__ == "__main__":
    sys.exit(main())
