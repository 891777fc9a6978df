"""The README's demo command runs the whole flow and every step answers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_demo_runs_every_step():
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for step, plugin, runtime in (
        ("authenticate", "apikey-auth", "python"),
        ("collapse whitespace", "whitespace-normalizer", "wasm"),
        ("embed documents", "custom-embedder", "wasm"),
        ("embed query", "custom-embedder-native", "native"),
        ("embed via a process", "grpc-embedder", "grpc"),
        ("rerank nearest 3", "overlap-reranker", "wasm"),
        ("generate (streamed)", "grpc-extractive-generator", "grpc"),
        ("store answer", "file-store", "python"),
    ):
        line = next(line for line in out.splitlines() if line.strip().startswith(step))
        assert line.split()[-4:-2] == [plugin, runtime], line
    assert "wasm and native builds give the same vector: True" in out
    assert "not loaded" not in out
    ranked = out.split("query:")[1].splitlines()
    assert "reranker reorders search results" in ranked[1], "the relevant document ranks first"
    assert "answer: " in out and "Traceback" not in result.stderr


def test_readme_python_example_runs(tmp_path):
    text = (ROOT / "README.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    code = code.replace('"/tmp/kv"', repr(str(tmp_path / "kv")))
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
