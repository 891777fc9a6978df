"""Serve throughput with a real model: ``weaviate-ext serve`` with the contrib MiniLM
vectorizer, with and without dynamic batching, against a minimal FastAPI app on the same
ONNX session, with and without batching.

Run: ``python benchmarks/serve_throughput.py [--requests N] [--rounds R] [--seconds S]``

Four servers, each its own process on a free loopback port:

* **serve** and **serve, batched**: ``weaviate-ext serve --plugin <minilm plugin.yaml>``
  with ``--batch-window-ms 0`` (every request its own plugin call, as before dynamic
  batching) and with the default window;
* **minimal** and **minimal, batched**: a FastAPI app of a few lines on uvicorn, one
  route ``POST /vectors`` calling the same ``MiniLMEncoder`` (same model file, same
  onnxruntime settings) in a worker thread; the batched one queues requests and runs
  them the way ``serve`` does (one batch at a time; while it runs the next one fills up;
  a batch leaves when it holds as many texts as the last ones, ``maxBatchSize``, or its
  first text waited the window).

Each is driven by 1 and by 16 concurrent clients (``httpx.AsyncClient``, keep-alive,
the body Weaviate's ``text2vec-transformers`` sends) with mixed sentences, ``requests``
requests or ``seconds`` seconds per run, whichever ends first, ``rounds`` rounds
interleaved (all four servers run at once, idle but for the one measured); the round
with the most requests per second counts. The server's CPU time per request (from
``/proc``) is shown too: the figure least disturbed by other load on a shared machine.
Prints a table, then one JSON line: requests/s, p50 and p99 (ms) per configuration
and client count, and the ratios issue 12 names: ``batched_over_unbatched_16`` (goal >= 1.3),
``batched_over_minimal_batched_16`` (goal >= 0.95), ``p50_1_batched_over_unbatched``
(goal <= 1.05), and ``minimal_over_serve_16`` / ``minimal_batched_over_serve_16`` (what
the issue measured before: 1.13 and 1.39). Then the model alone (``model_ceiling``):
the same mix of texts as single-text calls from 8 threads and as batches of 16, and
``model_batch_over_singles_16``, the most batching can give on this machine: mixed
lengths pad a batch to its longest text, which eats what running 16 texts at once saves.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx
from _serving import cpu_seconds, free_port, percentile, ready_server  # benchmarks/

SENTENCE = (
    "the quick brown fox jumps over the lazy dog while a vector database indexes "
    "sentences about rivers mountains markets music chemistry football and the weather "
    "in distant cities where people read books write code and plan their journeys"
)
WORDS = SENTENCE.split()

TEXTS = [
    " ".join(WORDS[(i * 7) % len(WORDS) :][: 6 + (i * 5) % 24] or WORDS[:8]) for i in range(97)
]
"""Mixed sentences, 6 to 29 words (distinct, so no cache could help)."""

WINDOW_MS = 2.0
"""The batching window of the batched configurations (serve's default)."""

MINIMAL_APP = """
import asyncio, sys, time
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic_core import to_json
from weaviate_ext_minilm_vectorizer.encoder import MiniLMEncoder

port, batched, window, max_size = int(sys.argv[1]), sys.argv[2] == "1", float(sys.argv[3]), 64
encoder = MiniLMEncoder(max_length=256, batch_size=32, threads=0)
app = FastAPI()
queue = []
state = {"running": False, "expected": 1, "timer": None}

def dispatch():
    loop = asyncio.get_running_loop()
    if state["running"] or not queue:
        return
    due = queue[0][2] + window
    if len(queue) < min(max_size, state["expected"]) and loop.time() < due:
        if state["timer"] is None:
            state["timer"] = loop.call_at(due, on_timer)
        return
    batch = queue[:max_size]
    del queue[:max_size]
    state["expected"] = max(len(batch), state["expected"] // 2)
    state["running"] = True
    loop.create_task(run(batch))

def on_timer():
    state["timer"] = None
    dispatch()

async def run(batch):
    try:
        texts = [text for text, _, _ in batch]
        matrix = await asyncio.to_thread(encoder.encode, texts)
        for row, (_, future, _) in zip(matrix, batch):
            future.set_result(row)
    finally:
        state["running"] = False
        dispatch()

@app.post("/vectors")
async def vectors(request: Request):
    text = (await request.json())["text"]
    if batched:
        future = asyncio.get_running_loop().create_future()
        queue.append((text, future, asyncio.get_running_loop().time()))
        dispatch()
        vector = await future
    else:
        vector = (await asyncio.to_thread(encoder.encode, [text]))[0]
    body = {"text": text, "vector": vector.tolist(), "dim": 384, "dims": 384}
    return Response(to_json(body), media_type="application/json")

@app.get("/.well-known/ready")
async def ready():
    return Response(status_code=204)

uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")
"""


def minilm_manifest() -> Path:
    """The installed contrib MiniLM vectorizer's ``plugin.yaml``."""
    import weaviate_ext_minilm_vectorizer

    return Path(weaviate_ext_minilm_vectorizer.__file__).parent / "plugin.yaml"


def serve_argv(port: int, window_ms: float) -> list[str]:
    """``weaviate-ext serve`` with MiniLM on ``port``."""
    return [
        sys.executable,
        "-m",
        "weaviate_ext",
        "--no-discover",
        "serve",
        "--plugin",
        str(minilm_manifest()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--batch-window-ms",
        str(window_ms),
    ]


async def drive(
    port: int, clients: int, requests: int, seconds: float
) -> tuple[list[float], float]:
    """``clients`` concurrent keep-alive clients sending at most ``requests`` requests in
    all, for at most ``seconds``; the latencies and the elapsed seconds."""
    latencies: list[float] = []
    sent = 0
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60.0
    ) as http:

        async def client(index: int) -> None:
            nonlocal sent
            i = index * 13
            while sent < requests and time.perf_counter() < stop_at:
                sent += 1
                i += 1
                body = json.dumps({"text": TEXTS[i % len(TEXTS)], "config": {}}).encode()
                started = time.perf_counter()
                response = await http.post("/vectors", content=body)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise RuntimeError(f"status {response.status_code}: {response.text[:200]}")

        started = time.perf_counter()
        await asyncio.gather(*(client(c) for c in range(clients)))
        elapsed = time.perf_counter() - started
    return latencies, elapsed


def model_ceiling(rounds: int) -> tuple[float, float]:
    """The model alone on the same mix of texts, in this process: texts per second of
    single-text calls from 8 threads (as unbatched ``serve`` runs them: the plugin's
    bulkhead) and of the same texts as batches of 16, one at a time (as batched
    ``serve`` runs them). Their ratio is the most batching can give here."""
    from concurrent.futures import ThreadPoolExecutor

    from weaviate_ext_minilm_vectorizer.encoder import MiniLMEncoder

    encoder = MiniLMEncoder(max_length=256, batch_size=32, threads=0)  # the plugin's defaults
    texts = [TEXTS[(i * 13) % len(TEXTS)] for i in range(16 * 12)]
    batches = [texts[i : i + 16] for i in range(0, len(texts), 16)]
    with ThreadPoolExecutor(8) as pool:

        def singles() -> None:
            list(pool.map(lambda text: encoder.encode([text]), texts))

        def batched() -> None:
            for batch in batches:
                encoder.encode(batch)

        best = {"singles": float("inf"), "batched": float("inf")}
        singles(), batched()  # warm up
        for _ in range(rounds):
            for name, fn in (("singles", singles), ("batched", batched)):
                started = time.perf_counter()
                fn()
                best[name] = min(best[name], time.perf_counter() - started)
    encoder.close()
    return len(texts) / best["singles"], len(texts) / best["batched"]


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table and the JSON line; the exit code."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=600, help="requests per run (16 clients)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20.0, help="longest run")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        app_file = Path(tmp) / "minimal_app.py"
        app_file.write_text(textwrap.dedent(MINIMAL_APP))
        window = WINDOW_MS / 1e3
        configs = {
            "serve": lambda p: serve_argv(p, 0),
            "serve, batched": lambda p: serve_argv(p, WINDOW_MS),
            "minimal": lambda p: [sys.executable, str(app_file), str(p), "0", str(window)],
            "minimal, batched": lambda p: [sys.executable, str(app_file), str(p), "1", str(window)],
        }
        results: dict[str, dict[int, tuple[float, float, float, float]]] = {}
        with contextlib.ExitStack() as stack:
            servers = {}
            for name, make in configs.items():  # all up at once: rounds interleave them
                port = free_port()
                servers[name] = stack.enter_context(ready_server(make(port), port))
            for port, _ in servers.values():  # warm up
                asyncio.run(drive(port, 16, 64, args.seconds))
            for _ in range(args.rounds):
                for name, (port, pid) in servers.items():
                    best = results.setdefault(name, {})
                    for clients in (1, 16):
                        count = args.requests if clients > 1 else max(50, args.requests // 4)
                        before = cpu_seconds(pid)
                        latencies, elapsed = asyncio.run(drive(port, clients, count, args.seconds))
                        after = cpu_seconds(pid)
                        used = after - before if after is not None and before is not None else 0
                        cpu = used / len(latencies) * 1e3
                        row = (
                            len(latencies) / elapsed,
                            percentile(latencies, 0.5) * 1e3,
                            percentile(latencies, 0.99) * 1e3,
                            cpu,
                        )
                        if clients not in best or row[0] > best[clients][0]:
                            best[clients] = row
                print(
                    "  "
                    + "; ".join(
                        f"{n}: " + ", ".join(f"{r[0]:.0f}" for _, r in sorted(b.items()))
                        for n, b in results.items()
                    ),
                    file=sys.stderr,
                )

    singles_tps, batched_tps = model_ceiling(max(3, args.rounds))
    print(f"POST /vectors, contrib MiniLM, best of {args.rounds} rounds")
    print(
        f"{'configuration':<20}{'clients':>8}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}"
        f"{'CPU ms/req':>12}"
    )
    print(
        f"{'model alone':<20}{'':>8}{singles_tps:>10.1f} texts/s singles (8 threads), "
        f"{batched_tps:.1f} as batches of 16"
    )
    out: dict[str, float | int] = {}
    for name, best in results.items():
        key = name.replace(", ", "_")
        for clients, (rps, p50, p99, cpu) in sorted(best.items()):
            print(f"{name:<20}{clients:>8}{rps:>10.1f}{p50:>10.2f}{p99:>10.2f}{cpu:>12.2f}")
            out[f"{key}_cpu_ms_per_request_{clients}"] = round(cpu, 2)
            out[f"{key}_rps_{clients}"] = round(rps, 1)
            out[f"{key}_p50_{clients}_ms"] = round(p50, 2)
            out[f"{key}_p99_{clients}_ms"] = round(p99, 2)

    def ratio(a: float, b: float) -> float:
        return round(a / b, 3) if b else 0.0

    s, sb = results["serve"], results["serve, batched"]
    m, mb = results["minimal"], results["minimal, batched"]
    out.update(
        batched_over_unbatched_16=ratio(sb[16][0], s[16][0]),
        batched_over_minimal_batched_16=ratio(sb[16][0], mb[16][0]),
        p50_1_batched_over_unbatched=ratio(sb[1][1], s[1][1]),
        minimal_over_serve_16=ratio(m[16][0], s[16][0]),
        minimal_batched_over_serve_16=ratio(mb[16][0], s[16][0]),
        model_singles_texts_per_s=round(singles_tps, 1),
        model_batched_16_texts_per_s=round(batched_tps, 1),
        model_batch_over_singles_16=ratio(batched_tps, singles_tps),
        window_ms=WINDOW_MS,
        requests=args.requests,
        rounds=args.rounds,
    )
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
