"""Each benchmark runs as one command and ends with one JSON line of its figures.

Only the output's shape is checked: timings are never asserted (shared, noisy machines).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_dispatch_benchmark_prints_a_table_and_json_last():
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "dispatch.py"),
            "--calls",
            "300",
            "--repeats",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = result.stdout.strip().splitlines()
    assert any(line.startswith("handle") for line in lines[:-1]), "the table is printed"
    figures = json.loads(lines[-1])
    for key in ("handle_overhead_us", "pluggy_overhead_us", "direct_us", "handle_us"):
        assert isinstance(figures[key], float)
