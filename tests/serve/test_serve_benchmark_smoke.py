"""``benchmarks/serve_overhead.py`` runs as one command and ends with its JSON line.

Only the output's shape is checked: timings are never asserted (shared, noisy machines).
"""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT


def test_serve_overhead_benchmark_prints_a_table_and_json_last() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "serve_overhead.py"),
            "--requests",
            "64",
            "--rounds",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
        cwd=ROOT,
    )
    lines = result.stdout.strip().splitlines()
    assert any(line.startswith("serve, 16 clients") for line in lines[:-1]), "the table"
    figures = json.loads(lines[-1])
    for key in ("p50_ms", "rps_16", "p50_over_handle_ms", "rps_1", "handle_p50_ms"):
        assert isinstance(figures[key], float), key
    assert figures["p50_ms"] > 0 and figures["rps_16"] > 0
