"""gRPC runtime latency: the framework's call path against a raw grpcio echo.

Run: ``python benchmarks/grpc_latency.py [--calls N]``.

* **framework**: ``manager.get_vectorizer(...).vectorize_text(text)`` through the
  handle, the grpc bridge, a unix socket and the Python SDK to a plugin that returns a
  precomputed 768-dim float32 vector (so the plugin's own work is nil);
* **raw**: in the same run, a bare grpcio server in another process answering the same
  request bytes with the same response bytes over the same kind of socket, called with
  a bare grpcio client: the floor any gRPC plugin runtime in Python can reach;
* **batch100**: ``vectorize_batch`` of 100 texts through the framework.

Prints a table, then as its last line one JSON object with ``p50_ms``, ``p99_ms``,
``batch100_ms``, ``p50_over_raw`` (framework p50 / raw p50) and the raw figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DIMS = 768
ROUNDS = 10
"""Raw and framework calls are measured in alternating blocks."""
TEXT = "the quick brown fox jumps over the lazy dog"

PLUGIN = textwrap.dedent(
    f"""
    import numpy as np
    from weaviate_plugin_sdk import VectorizerPlugin

    VECTOR = np.linspace(-1, 1, {DIMS}, dtype=np.float32)

    class Constant(VectorizerPlugin):
        def vectorize_text(self, text):
            return VECTOR

        def vectorize_batch(self, texts):
            return np.broadcast_to(VECTOR, (len(texts), {DIMS}))
    """
)

MANIFEST = f"""apiVersion: weaviate.io/v1
kind: Plugin
metadata: {{name: bench-grpc, version: 1.0.0}}
spec:
  type: vectorizer
  runtime: grpc
  command: python plugin_server.py
  capabilities: {{dimensions: {DIMS}, maxBatchSize: 1000}}
"""

RAW_SERVER = textwrap.dedent(
    """
    import sys, time, grpc
    from concurrent import futures
    answer = open(sys.argv[2], "rb").read()
    def echo(request, context):
        return answer
    handler = grpc.method_handlers_generic_handler(
        "weaviate.plugin.v1.Vectorizer",
        {"VectorizeText": grpc.unary_unary_rpc_method_handler(echo)},
    )
    server = grpc.server(futures.ThreadPoolExecutor(8))
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port("unix:" + sys.argv[1])
    server.start()
    print("ready", flush=True)
    sys.stdin.read()
    """
)


def measure(fn: Callable[[], object], calls: int, warmup: int) -> np.ndarray:
    """Seconds per call of ``fn``, ``calls`` times after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = np.empty(calls)
    clock = time.perf_counter
    for i in range(calls):
        start = clock()
        fn()
        times[i] = clock() - start
    return times


@contextlib.contextmanager
def raw_echo(workdir: Path) -> Iterator[Callable[[], object]]:
    """A call of the bare grpcio echo of the same bytes over a unix socket."""
    from weaviate_ext.grpc import weaviate_plugin_pb2 as pb

    request = pb.VectorizeRequest(text=TEXT).SerializeToString()
    vector = np.linspace(-1, 1, DIMS, dtype=np.float32)
    answer = workdir / "answer.bin"
    answer.write_bytes(pb.VectorizeResponse(packed=vector.tobytes()).SerializeToString())
    sock = workdir / "raw.sock"
    server = subprocess.Popen(
        [sys.executable, "-c", RAW_SERVER, str(sock), str(answer)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    channel = None
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        channel = grpc.insecure_channel(f"unix:{sock}")
        call = channel.unary_unary("/weaviate.plugin.v1.Vectorizer/VectorizeText")
        yield lambda: call(request, timeout=10)
    finally:
        if channel is not None:
            channel.close()
        assert server.stdin is not None
        server.stdin.close()
        server.wait(10)
        if server.stdout is not None:
            server.stdout.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--batch-calls", type=int, default=300)
    args = parser.parse_args()
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    from weaviate_ext import PluginManager

    warmup = max(50, args.calls // 10)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "plugin_server.py").write_text(PLUGIN)
        (workdir / "plugin.yaml").write_text(MANIFEST)
        with raw_echo(workdir) as raw_call, PluginManager(discover=False) as manager:
            manager.load(workdir / "plugin.yaml")
            handle = manager.get_vectorizer("bench-grpc")
            assert handle.vectorize_text(TEXT).shape == (DIMS,)
            raw_parts, single_parts = [], []
            block = max(1, args.calls // ROUNDS)
            for _ in range(ROUNDS):  # alternate, so both see the same machine load
                raw_parts.append(measure(raw_call, block, warmup // ROUNDS))
                single_parts.append(
                    measure(lambda: handle.vectorize_text(TEXT), block, warmup // ROUNDS)
                )
            texts = [f"{TEXT} {i}" for i in range(100)]
            batch = measure(lambda: handle.vectorize_batch(texts), args.batch_calls, 20)
    raw_all = np.concatenate(raw_parts)
    single = np.concatenate(single_parts)

    def ms(values: np.ndarray, q: float) -> float:
        return float(np.percentile(values, q) * 1000)

    rows = [
        ("raw grpcio echo (768 x f32 bytes)", raw_all),
        ("framework vectorize_text (768 dims)", single),
        ("framework vectorize_batch (100 x 768)", batch),
    ]
    print(f"{'path':<42} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for label, values in rows:
        mean = values.mean() * 1000
        print(f"{label:<42} {ms(values, 50):>8.3f} {ms(values, 99):>8.3f} {mean:>8.3f}")
    result = {
        "p50_ms": round(ms(single, 50), 4),
        "p99_ms": round(ms(single, 99), 4),
        "batch100_ms": round(ms(batch, 50), 4),
        "raw_p50_ms": round(ms(raw_all, 50), 4),
        "raw_p99_ms": round(ms(raw_all, 99), 4),
        "p50_over_raw": round(ms(single, 50) / ms(raw_all, 50), 3),
        "calls": args.calls,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
