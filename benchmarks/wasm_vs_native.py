"""wasm vs native: the same C vectorizer (examples/plugins/custom-vectorizer) called
through the manager's handle as a wasm module and as a shared library, single text and
a batch of 100, plus a direct cffi call of the native export as the floor, and cold
loads of the wasm plugin with and without the compiled-module cache.

    python benchmarks/wasm_vs_native.py [--quick]

Builds the example first (examples/plugins/custom-vectorizer/build.sh). Prints a table
and, as its last line, one JSON object: wasm_single_ratio and wasm_batch_ratio (wasm
through the handle / native through the handle), cache_load_speedup (cold load without
the cache / with it), and the raw numbers in microseconds / milliseconds.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "plugins" / "custom-vectorizer"
SENTENCE = "Vector databases store embeddings for similarity search!!"  # 60 bytes


def per_call_us(fn: Callable[[], object], seconds: float) -> float:
    """Median over 5 rounds of the mean time of one call, in microseconds."""
    fn()
    rounds = []
    for _ in range(5):
        count = 0
        started = time.perf_counter()
        while True:
            fn()
            count += 1
            elapsed = time.perf_counter() - started
            if elapsed >= seconds / 5:
                break
        rounds.append(elapsed / count * 1e6)
    return statistics.median(rounds)


def cold_load_ms(cache: Path, warm: bool) -> float:
    """Load the wasm plugin in a fresh manager; ``warm`` keeps the cache from before."""
    from weaviate_ext import PluginManager

    times = []
    for _ in range(5):
        if not warm:
            for f in cache.glob("*.cwasm"):
                f.unlink()
        os.environ["WEAVIATE_EXT_CACHE_DIR"] = str(cache)
        with PluginManager(discover=False) as manager:
            started = time.perf_counter()
            manager.load(EXAMPLE / "plugin.yaml")
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    """Run the benchmark and print the table and the JSON line."""
    quick = "--quick" in sys.argv
    seconds = 0.5 if quick else 2.0
    subprocess.run(["sh", str(EXAMPLE / "build.sh")], check=True, capture_output=True)
    from weaviate_ext import PluginManager
    from weaviate_ext.bridges import native
    from weaviate_ext.bridges.cabi import abi

    cache = Path(tempfile.mkdtemp(prefix="wv-bench-cache-"))
    os.environ["WEAVIATE_EXT_CACHE_DIR"] = str(cache)
    batch = [f"{SENTENCE} #{i}" for i in range(100)]
    results: dict[str, float] = {}
    with PluginManager(discover=False) as manager:
        manager.load(EXAMPLE / "plugin.yaml")
        manager.load(EXAMPLE / "plugin-native.yaml")
        wasm_h = manager.get_vectorizer("custom-embedder")
        native_h = manager.get_vectorizer("custom-embedder-native")
        lib = native.ffi.dlopen(str((EXAMPLE / "plugin-binary.so").resolve()))
        packed = abi.pack_strings([SENTENCE])
        buf = native.ffi.from_buffer("uint8_t[]", packed)
        out_ptr = native.ffi.new("const uint8_t **")
        out_len = native.ffi.new("uint32_t *")

        def direct() -> None:
            lib.wv_vectorize_batch(buf, len(packed), 1, out_ptr, out_len)

        results["native_direct_us"] = per_call_us(direct, seconds)
        results["native_single_us"] = per_call_us(
            lambda: native_h.vectorize_text(SENTENCE), seconds
        )
        results["wasm_single_us"] = per_call_us(lambda: wasm_h.vectorize_text(SENTENCE), seconds)
        results["native_batch_us"] = per_call_us(lambda: native_h.vectorize_batch(batch), seconds)
        results["wasm_batch_us"] = per_call_us(lambda: wasm_h.vectorize_batch(batch), seconds)
    results["cold_load_no_cache_ms"] = cold_load_ms(cache, warm=False)
    results["cold_load_cached_ms"] = cold_load_ms(cache, warm=True)

    summary = {
        "wasm_single_ratio": round(results["wasm_single_us"] / results["native_single_us"], 3),
        "wasm_batch_ratio": round(results["wasm_batch_us"] / results["native_batch_us"], 3),
        "cache_load_speedup": round(
            results["cold_load_no_cache_ms"] / results["cold_load_cached_ms"], 3
        ),
        **{k: round(v, 2) for k, v in results.items()},
    }
    print(f"{'measurement':<34}{'value':>12}")
    for key, value in results.items():
        unit = "ms" if key.endswith("_ms") else "µs"
        print(f"{key:<34}{value:>10.2f} {unit}")
    for key in ("wasm_single_ratio", "wasm_batch_ratio", "cache_load_speedup"):
        print(f"{key:<34}{summary[key]:>12.3f}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
