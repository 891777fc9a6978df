"""The main demo: a retrieval-augmented answer through one PluginManager, then plugins
of every runtime answering.

Run: ``python examples/demo.py`` (``scripts/demo.sh`` installs everything, builds the
examples and runs it).

Part 1 is what a vector-search host does with its extensions, on real engines: the
contrib packages (``contrib/``), pip-installed and found through their entry points.
It authenticates a request (argon2 API keys), chunks a few documents (text-chunker),
embeds the chunks (all-MiniLM-L6-v2 on onnxruntime), stores them (SQLite), embeds the
question, retrieves the nearest chunks, reranks them (BM25) and streams an answer
(SmolLM2-135M on llama.cpp).

Part 2 calls the example plugins of the other runtimes: the spec's Rust
custom-vectorizer as WebAssembly and as a native library, a C reranker in wasm, and
gRPC plugin processes in Python and Node.js.

Every step prints the plugin that served it, its runtime and how long it took.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from weaviate_ext import PluginManager, WeaviateExtError

T = TypeVar("T")

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE / "plugins"

DOCUMENTS = {
    "weaviate": (
        "Weaviate is an open-source vector database. It stores objects together with "
        "their vectors and finds the nearest ones to a query vector. Modules add "
        "vectorizers, rerankers and generators to it."
    ),
    "rerankers": (
        "A reranker reorders the results of a first, fast search. It reads the query and "
        "each candidate document together, which is slower but more precise. BM25 is a "
        "classic lexical reranker based on term frequencies."
    ),
    "plugins": (
        "Plugins extend a host program without changing it. This framework loads plugins "
        "written in Python, compiled to WebAssembly, built as native libraries, or run as "
        "gRPC processes. WebAssembly plugins run in a sandbox with memory limits."
    ),
    "bread": (
        "Bread is baked from flour, water, salt and yeast. The dough rises for hours "
        "before it goes into a hot oven."
    ),
}
QUESTION = "What does a reranker do?"
KEY_ID = "demo"


def step(manager: PluginManager, label: str, name: str, fn: Callable[[], T]) -> T:
    """Run one step and print who did it, on which runtime, and how long it took."""
    started = time.perf_counter()
    result = fn()
    elapsed = (time.perf_counter() - started) * 1e3
    runtime = manager.manifest(name).spec.runtime
    print(f"  {label:<26} {name:<26} {runtime:<7} {elapsed:9.1f} ms", flush=True)
    return result


@contextmanager
def progress(what: str, slow: bool = False) -> Iterator[None]:
    """Say how long ``what`` took; for a ``slow`` step, also what is happening first."""
    if slow:
        print(f"  {what} ...", flush=True)
    started = time.perf_counter()
    yield
    print(f"  {what}: {time.perf_counter() - started:.1f} s", flush=True)


def contrib_config(store_dir: str, api_key: str) -> dict[str, dict[str, Any]]:
    """The host's configuration of the contrib plugins of part 1."""
    from weaviate_ext_apikey_auth.keys import hash_key

    # demo-strength argon2 parameters (the plugin's defaults are the RFC's 64 MiB)
    cost = {"time_cost": 1, "memory_cost": 8192, "parallelism": 1}
    return {
        "argon2-apikey-auth": {
            "keys": {KEY_ID: {"hash": hash_key(api_key, **cost), "roles": ["reader"]}},
            "rules": [{"role": "reader", "resource": "docs", "action": "read", "allow": True}],
            **cost,
        },
        "text-chunker": {"mode": "sentences", "size": 2, "overlap": 1},
        "sqlite-storage": {"path": str(Path(store_dir) / "chunks.db")},
        "llama-generator": {
            "n_ctx": 1024,
            "max_tokens": 48,
            "temperature": 0,
            "system_prompt": "Answer the question with the facts of the context. Be brief.",
        },
    }


def load_part_one(manager: PluginManager) -> bool:
    """Load the contrib plugins (installed packages), saying which and how long."""
    names = [
        "argon2-apikey-auth",
        "text-chunker",
        "minilm-vectorizer",
        "sqlite-storage",
        "bm25-reranker",
        "llama-generator",
    ]
    missing = [n for n in names if n not in manager.installed]
    if missing:
        print(f"  not installed: {', '.join(missing)} (scripts/install.sh installs contrib/)")
        return False
    for name in names:
        what = {
            "minilm-vectorizer": "loading minilm-vectorizer (all-MiniLM-L6-v2 on onnxruntime)",
            "llama-generator": "loading llama-generator (SmolLM2-135M on llama.cpp)",
        }.get(name, f"loading {name} (installed package)")
        with progress(what, slow=name in ("minilm-vectorizer", "llama-generator")):
            result = manager.load_installed([name])
        if not result.ok:
            print(f"\n  not loaded: {name}: {result.failed[name]}")
            return False
    return True


def retrieval_augmented_answer(manager: PluginManager, api_key: str) -> bool:
    """Part 1: the flow, step by step. True when every step gave a sound result."""
    print("\n  step                       plugin                     runtime        time")
    identity = step(
        manager,
        "authenticate",
        "argon2-apikey-auth",
        lambda: manager.authenticate({"api_key": api_key}),
    )
    if identity is None:
        print("  not authenticated")
        return False
    allowed = step(
        manager,
        "authorize docs:read",
        "argon2-apikey-auth",
        lambda: manager.authorize(identity, "docs", "read"),
    )
    if not allowed:
        print("  not authorised")
        return False

    chunker = manager.get_transformer("text-chunker")
    chunks: list[tuple[str, str]] = step(
        manager,
        f"chunk {len(DOCUMENTS)} documents",
        "text-chunker",
        lambda: [
            (doc, str(chunk))
            for doc, text in DOCUMENTS.items()
            for chunk in chunker.transform(text)
        ],
    )
    embedder = manager.get_vectorizer("minilm-vectorizer")
    matrix = step(
        manager,
        f"embed {len(chunks)} chunks",
        "minilm-vectorizer",
        lambda: embedder.vectorize_batch([text for _, text in chunks]),
    )
    storage = manager.get_storage("sqlite-storage")

    keys = [f"{doc}/{i}" for i, (doc, _) in enumerate(chunks)]

    def store_all() -> None:
        for key, (_, text), vector in zip(keys, chunks, matrix, strict=True):
            storage.store(key, text.encode() + b"\0" + vector.astype("<f4").tobytes())

    step(manager, f"store {len(chunks)} chunks", "sqlite-storage", store_all)
    question_vector = step(
        manager,
        "embed the question",
        "minilm-vectorizer",
        lambda: embedder.vectorize_text(QUESTION),
    )

    def nearest(k: int = 4) -> list[str]:
        texts, vectors = [], []
        for key in keys:
            record = storage.retrieve(key)
            assert record is not None, f"{key} was lost"
            text, _, raw = record.partition(b"\0")
            texts.append(text.decode())
            vectors.append(np.frombuffer(raw, dtype="<f4"))
        scores = np.stack(vectors) @ question_vector
        return [texts[i] for i in np.argsort(-scores)[:k]]

    candidates = step(manager, "retrieve the nearest 4", "sqlite-storage", nearest)
    ranked = step(
        manager,
        "rerank them (BM25)",
        "bm25-reranker",
        lambda: manager.get_reranker("bm25-reranker").rerank(QUESTION, candidates),
    )
    context = " ".join(r.document or "" for r in ranked[:2])
    prompt = f"Context: {context}\n\nQuestion: {QUESTION}"
    generator = manager.get_generator("llama-generator")
    print("  generate (streamed)        llama-generator            python   ", flush=True)
    print("    answer: ", end="", flush=True)
    started = time.perf_counter()
    pieces = []
    for piece in generator.generate_stream(prompt):
        pieces.append(piece)
        print(piece, end="", flush=True)
    elapsed = (time.perf_counter() - started) * 1e3
    answer = "".join(pieces).strip()
    print(f"\n  {'':<26} {'':<26} {'':<7} {elapsed:9.1f} ms")

    print(f"\n  question: {QUESTION}")
    for rank, result in enumerate(ranked, 1):
        print(f"    {rank}. ({result.score:5.2f}) {result.document}")
    return bool(answer) and "reorders" in (ranked[0].document or "")


def every_runtime(manager: PluginManager) -> bool:
    """Part 2: the example plugins of the wasm, native and grpc runtimes."""
    manifests = [
        EXAMPLES / "custom-vectorizer" / "plugin.yaml",
        EXAMPLES / "custom-vectorizer" / "plugin-native.yaml",
        EXAMPLES / "c-reranker" / "plugin.yaml",
        EXAMPLES / "grpc-vectorizer" / "plugin.yaml",
        EXAMPLES / "grpc-generator" / "plugin.yaml",
        EXAMPLES / "grpc-node-reranker" / "plugin.yaml",
    ]
    for path in manifests:
        with progress(f"loading {path.parent.name}/{path.name}"):
            try:
                manager.load(path)
            except WeaviateExtError as error:
                print(f"\n  not loaded: {path}: {error} (run scripts/build_examples.sh)")
                return False
    texts = list(DOCUMENTS.values())
    print("\n  step                       plugin                     runtime        time")
    wasm = step(
        manager,
        "embed (Rust, sandboxed)",
        "custom-embedder",
        lambda: manager.get_vectorizer("custom-embedder").vectorize_batch(texts),
    )
    native = step(
        manager,
        "embed (Rust, in process)",
        "custom-embedder-native",
        lambda: manager.get_vectorizer("custom-embedder-native").vectorize_batch(texts),
    )
    grpc = step(
        manager,
        "embed (Python process)",
        "grpc-embedder",
        lambda: manager.get_vectorizer("grpc-embedder").vectorize_batch(texts),
    )
    wasm_ranked = step(
        manager,
        "rerank (C, sandboxed)",
        "overlap-reranker",
        lambda: manager.get_reranker("overlap-reranker").rerank(QUESTION, texts),
    )
    node_ranked = step(
        manager,
        "rerank (Node.js process)",
        "grpc-node-reranker",
        lambda: manager.get_reranker("grpc-node-reranker").rerank(QUESTION, texts),
    )
    summary = step(
        manager,
        "generate (Python process)",
        "grpc-extractive-generator",
        lambda: "".join(
            manager.get_generator("grpc-extractive-generator").generate_stream(texts[1])
        ),
    )
    same = bool(np.array_equal(wasm, native))
    print(f"\n  custom-embedder: {wasm.shape[1]} dimensions; wasm and native builds agree: {same}")
    print(f"  grpc-embedder: {grpc.shape[0]} vectors of {grpc.shape[1]} dimensions")
    print(f"  best document (wasm reranker):    {(wasm_ranked[0].document or '')[:60]}...")
    print(f"  best document (Node.js reranker): {(node_ranked[0].document or '')[:60]}...")
    print(f"  summary (gRPC generator): {summary.strip()[:70]}...")
    return same and wasm.shape[1] == 768


def main(argv: list[str] | None = None) -> int:
    """Run both parts; exit status 0 when every step answered soundly."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.parse_args(argv)
    # the framework's warnings (e.g. a native plugin runs unsandboxed), one line each
    logging.basicConfig(level=logging.WARNING, format="  [%(levelname)s %(name)s] %(message)s")
    api_key = f"{KEY_ID}.demo-secret-0123456789abcdefghij"
    with tempfile.TemporaryDirectory() as store_dir:
        config = contrib_config(store_dir, api_key)
        with PluginManager(config=config) as manager:
            print("== part 1: a retrieval-augmented answer, on real engines (contrib packages)")
            ok = load_part_one(manager) and retrieval_augmented_answer(manager, api_key)
            print("\n== part 2: plugins of every runtime")
            ok = every_runtime(manager) and ok
            print("\n  calls per plugin:")
            for name, stats in manager.stats().items():
                if stats.calls:
                    print(f"    {name:<28} {stats.calls:>4} calls {stats.mean_ms:9.2f} ms mean")
    print("\ndemo: ok" if ok else "\ndemo: FAILED (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
