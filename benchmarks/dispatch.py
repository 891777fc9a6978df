"""Dispatch overhead: a vectorize call through the handle, the raw pluggy hook, and directly.

Run: ``python benchmarks/dispatch.py [--calls N] [--repeats R]``

One in-process Python vectorizer returning a preallocated 768-dim float32 vector, so
what is measured is dispatch, not vectorizing. Each way is timed in ``repeats`` rounds
of ``calls`` calls, interleaved; the best round counts (the least disturbed by other
load on the machine). Prints a table, then one JSON line with ``handle_overhead_us``
(handle minus direct, per call: the fast path, no host wrapper registered),
``wrapped_overhead_us`` (the same handle call on a second manager where the host
registered one timing ``wrapper=True`` hookimpl, so the call goes through pluggy's call
machinery), ``wrapper_cost_us`` (the difference) and ``pluggy_overhead_us`` (raw hook
minus direct).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from weaviate_ext import PluginManager, current_call, hookimpl

DIMS = 768

MANIFEST = f"""\
apiVersion: weaviate.io/v1
kind: Plugin
metadata:
  name: bench-vectorizer
  version: 1.0.0
spec:
  type: vectorizer
  runtime: python
  entrypoint: bench_plugin:Plugin
  capabilities:
    dimensions: {DIMS}
"""

PLUGIN = """\
import numpy as np
from weaviate_ext import hookimpl

VECTOR = {vector}


class Plugin:
    @hookimpl
    def vectorize_text(self, text):
        return VECTOR
"""


def write_bench_plugin(root: Path, vector: str = f"np.ones({DIMS}, dtype=np.float32)") -> Path:
    """Write the benchmark vectorizer (returning the preallocated ``vector``, a numpy
    expression) under ``root``; its manifest's path. Shared by the other benchmarks."""
    (root / "src").mkdir(parents=True)
    (root / "plugin.yaml").write_text(MANIFEST)
    (root / "src" / "bench_plugin.py").write_text(PLUGIN.format(vector=vector))
    return root / "plugin.yaml"


class TimingWrapper:
    """The host's timing wrapper: total seconds per (plugin, hook)."""

    def __init__(self) -> None:
        self.seconds: dict[tuple[str, str], float] = {}

    @hookimpl(wrapper=True)
    def vectorize_text(self, text: str) -> object:
        started = time.perf_counter()
        try:
            return (yield)
        finally:
            call = current_call()
            assert call is not None
            key = (call.plugin, call.hook)
            self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - started


def best_per_call_us(fn: Callable[[], object], calls: int) -> float:
    """Microseconds per call of one round of ``calls`` calls."""
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)

    with (
        tempfile.TemporaryDirectory() as tmp,
        PluginManager(discover=False) as manager,
        PluginManager(discover=False) as wrapped_manager,
    ):
        handle = manager.load(write_bench_plugin(Path(tmp) / "bench-vectorizer"))
        timing = TimingWrapper()
        wrapped_manager.add_wrapper(timing)
        wrapped = wrapped_manager.load(Path(tmp) / "bench-vectorizer" / "plugin.yaml")
        plugin = manager.registry.get_plugin("bench-vectorizer")
        direct = plugin.vectorize_text
        hook = manager.registry.hook.vectorize_text
        text = "the quick brown fox jumps over the lazy dog"

        ways: dict[str, Callable[[], object]] = {
            "direct": lambda: direct(text),
            "pluggy hook": lambda: hook(text=text, deadline=None),
            "handle": lambda: handle.vectorize_text(text),
            "handle+wrapper": lambda: wrapped.vectorize_text(text),
        }
        for fn in ways.values():  # warm up
            best_per_call_us(fn, 1000)
        rounds: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(args.repeats):
            for name, fn in ways.items():
                rounds[name].append(best_per_call_us(fn, args.calls))

    best = {name: min(values) for name, values in rounds.items()}
    print(f"dispatch of vectorize_text ({DIMS} dims), best of {args.repeats} x {args.calls}")
    print(f"{'way':<16}{'us/call':>10}{'median':>10}{'over direct':>14}")
    for name, values in rounds.items():
        median = sorted(values)[len(values) // 2]
        print(f"{name:<16}{best[name]:>10.3f}{median:>10.3f}{best[name] - best['direct']:>14.3f}")
    print("(handle: no host wrapper, the direct fast path; handle+wrapper: one timing")
    print(" wrapper=True hookimpl registered by the host, through pluggy's call machinery)")
    result = {
        "direct_us": round(best["direct"], 3),
        "pluggy_us": round(best["pluggy hook"], 3),
        "handle_us": round(best["handle"], 3),
        "handle_overhead_us": round(best["handle"] - best["direct"], 3),
        "wrapped_us": round(best["handle+wrapper"], 3),
        "wrapped_overhead_us": round(best["handle+wrapper"] - best["direct"], 3),
        "wrapper_cost_us": round(best["handle+wrapper"] - best["handle"], 3),
        "pluggy_overhead_us": round(best["pluggy hook"] - best["direct"], 3),
        "calls": args.calls,
        "repeats": args.repeats,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
