"""The README's demo command runs the whole flow and every step answers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_demo_runs_every_step() -> None:
    """Part 1 on the contrib packages (installed by scripts/install.sh), part 2 on the
    example plugins of the wasm, native and grpc runtimes."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for step, plugin, runtime in (
        ("authenticate", "argon2-apikey-auth", "python"),
        ("chunk 4 documents", "text-chunker", "python"),
        ("embed the question", "minilm-vectorizer", "python"),
        ("store", "sqlite-storage", "python"),
        ("retrieve the nearest 4", "sqlite-storage", "python"),
        ("rerank them (BM25)", "bm25-reranker", "python"),
        ("generate (streamed)", "llama-generator", "python"),
        ("embed (Rust, sandboxed)", "custom-embedder", "wasm"),
        ("embed (Rust, in process)", "custom-embedder-native", "native"),
        ("embed (Python process)", "grpc-embedder", "grpc"),
        ("rerank (C, sandboxed)", "overlap-reranker", "wasm"),
        ("rerank (Node.js process)", "grpc-node-reranker", "grpc"),
    ):
        line = next(line for line in out.splitlines() if line.strip().startswith(step))
        assert plugin in line.split() and runtime in line.split(), line
    answer = out.split("answer: ", 1)[1].splitlines()[0]
    assert len(answer.split()) >= 3, answer
    ranked = out.split("question: ", 1)[1].splitlines()
    assert "reranker reorders the results" in ranked[1], "the relevant chunk ranks first"
    assert "wasm and native builds agree: True" in out
    assert "not loaded" not in out and "Traceback" not in result.stderr
    assert out.rstrip().endswith("demo: ok")


def test_readme_python_example_runs(tmp_path: Path) -> None:
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
