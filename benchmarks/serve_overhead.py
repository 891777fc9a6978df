"""Serve overhead: ``POST /vectors`` over HTTP against the same plugin through its handle.

Run: ``python benchmarks/serve_overhead.py [--requests N] [--rounds R] [--manifest PATH]``

* **handle**: ``manager.get_vectorizer(name).vectorize_text(text)`` in this process (one
  thread, and 16 threads sharing the handle);
* **serve**: ``weaviate-ext serve`` started in another process on a loopback port, called
  with exactly the body Weaviate's ``text2vec-transformers`` module sends, over keep-alive
  connections (``http.client``, one connection per client thread), by 1 and by 16
  concurrent clients. Access logs are off (``--access-log`` turns them on).

The plugin is, by default, a vectorizer returning a preallocated 768-dim float32 vector
(as in ``dispatch.py``), so what is measured is the serving path: HTTP parsing, JSON in
and out (768 floats), the worker thread, the handle. Each way runs ``rounds`` rounds of
``requests`` requests, interleaved; the best round counts (the least disturbed by other
load on the machine). The client runs on the same machine and its own cost is part of
the latency, as it is for any client. Prints a table, then one JSON line with ``p50_ms``
(serve, 1 client), ``p99_ms``, ``rps_1``, ``rps_16``, ``p50_16_ms``, ``handle_p50_ms``,
``handle_rps_1``, ``p50_over_handle_ms`` (serve p50 minus handle p50) and
``server_cpu_ms`` (CPU time the server process spends per request, from ``/proc``: the
figure least disturbed by other load on a shared machine).
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from _serving import cpu_seconds, free_port, percentile, ready_server  # benchmarks/
from dispatch import DIMS, write_bench_plugin  # benchmarks/, the script's directory

from weaviate_ext import PluginManager

TEXT = "the quick brown fox jumps over the lazy dog"
BODY = json.dumps(
    {
        "text": TEXT,
        "dims": 0,
        "vector": None,
        "error": "",
        "config": {"pooling_strategy": "masked_mean", "task_type": "query"},
    },
    separators=(",", ":"),
).encode()
"""What Weaviate's text2vec-transformers module sends (no Content-Type header)."""


@contextmanager
def server(manifest: Path, access_log: bool) -> Iterator[tuple[int, int]]:
    """``weaviate-ext serve`` with ``manifest`` on a free loopback port; yields the port
    and the server's process id."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "weaviate_ext",
        "--no-discover",
        "serve",
        "--plugin",
        str(manifest),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--access-log" if access_log else "--no-access-log",
    ]
    with ready_server(argv, port, timeout=120) as running:
        yield running


def client_run(port: int, count: int, latencies: list[float]) -> None:
    """``count`` requests over one keep-alive connection, appending each latency."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        for _ in range(count):
            started = time.perf_counter()
            connection.request("POST", "/vectors", body=BODY)
            response = connection.getresponse()
            payload = response.read()
            latencies.append(time.perf_counter() - started)
            if response.status != 200:
                raise RuntimeError(f"status {response.status}: {payload[:200]!r}")
    finally:
        connection.close()


def threaded(
    run: Callable[[int, list[float]], None], clients: int, total: int
) -> tuple[list[float], float]:
    """Run ``total`` calls split over ``clients`` threads; latencies and elapsed seconds."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    per_client = max(1, total // clients)
    threads = [
        threading.Thread(target=run, args=(per_client, latencies[i])) for i in range(clients)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return [x for part in latencies for x in part], elapsed


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table and the JSON line; the exit code."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per round and way")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--manifest", type=Path, help="a vectorizer's plugin.yaml to use instead")
    parser.add_argument("--access-log", action="store_true", help="keep the server's access log")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp, PluginManager(discover=False) as manager:
        manifest = args.manifest
        if manifest is None:
            # not all ones: a vector whose truncation and normalisation are visible
            vector = f"np.linspace(-1, 1, {DIMS}, dtype=np.float32)"
            manifest = write_bench_plugin(Path(tmp) / "bench-vectorizer", vector)
        handle = manager.load(manifest)

        def handle_run(count: int, latencies: list[float]) -> None:
            for _ in range(count):
                started = time.perf_counter()
                handle.vectorize_text(TEXT)
                latencies.append(time.perf_counter() - started)

        with server(manifest, args.access_log) as (port, pid):

            def serve_run(count: int, latencies: list[float]) -> None:
                client_run(port, count, latencies)

            ways: dict[str, tuple[Callable[[int, list[float]], None], int]] = {
                "handle, 1 thread": (handle_run, 1),
                "handle, 16 threads": (handle_run, 16),
                "serve, 1 client": (serve_run, 1),
                "serve, 16 clients": (serve_run, 16),
            }
            for run, clients in ways.values():  # warm up
                threaded(run, clients, min(200, args.requests))
            rounds: dict[str, list[tuple[float, float, float]]] = {name: [] for name in ways}
            server_cpu: list[float] = []
            for _ in range(args.rounds):
                for name, (run, clients) in ways.items():
                    before = cpu_seconds(pid)
                    latencies, elapsed = threaded(run, clients, args.requests)
                    after = cpu_seconds(pid)
                    if name == "serve, 1 client" and before is not None and after is not None:
                        server_cpu.append((after - before) / len(latencies) * 1e3)
                    rounds[name].append(
                        (
                            percentile(latencies, 0.5) * 1e3,
                            percentile(latencies, 0.99) * 1e3,
                            len(latencies) / elapsed,
                        )
                    )

    best = {name: min(values) for name, values in rounds.items()}  # lowest p50
    print(
        f"POST /vectors ({DIMS} dims) vs the handle, best of {args.rounds} x "
        f"{args.requests} requests"
    )
    print(f"{'way':<20}{'p50 ms':>10}{'p99 ms':>10}{'req/s':>12}")
    for name, (p50, p99, rps) in best.items():
        print(f"{name:<20}{p50:>10.3f}{p99:>10.3f}{rps:>12.0f}")
    if server_cpu:
        print(f"server CPU per request (1 client): {min(server_cpu):.3f} ms")
    serve1, serve16 = best["serve, 1 client"], best["serve, 16 clients"]
    handle1 = best["handle, 1 thread"]
    result = {
        "p50_ms": round(serve1[0], 3),
        "p99_ms": round(serve1[1], 3),
        "rps_1": round(serve1[2], 1),
        "rps_16": round(serve16[2], 1),
        "p50_16_ms": round(serve16[0], 3),
        "handle_p50_ms": round(handle1[0], 4),
        "handle_rps_1": round(handle1[2], 1),
        "p50_over_handle_ms": round(serve1[0] - handle1[0], 3),
        "server_cpu_ms": round(min(server_cpu), 3) if server_cpu else None,
        "requests": args.requests,
        "rounds": args.rounds,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
