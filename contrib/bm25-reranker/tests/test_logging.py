"""bm25s's DEBUG lines stay out of an application that logs at WARNING.

bm25s sets its own logger to DEBUG when imported; examples/demo.py configures logging with
``logging.basicConfig(level=logging.WARNING)`` and printed ``[DEBUG bm25s] Building index
from tokens`` at every rerank. The check runs in a fresh interpreter with the demo's
logging setup, so no logger state of this test session can hide or cause the line.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import logging
    import sys

    logging.basicConfig(
        level=logging.{level}, format="  [%(levelname)s %(name)s] %(message)s"
    )

    from weaviate_ext import PluginManager

    with PluginManager(discover=False) as manager:
        handle = manager.load(sys.argv[1])
        results = handle.rerank("vector search", ["a vector search engine", "sunny weather"])
        print("top", results[0].index)
    """
)


def run_demo_like(manifest: Path, level: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT.format(level=level), str(manifest)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_no_debug_lines_when_the_application_logs_at_warning(manifest: Path) -> None:
    done = run_demo_like(manifest, "WARNING")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "top 0\n"
    assert "DEBUG" not in done.stderr, done.stderr
    assert "bm25s" not in done.stderr, done.stderr


def test_debug_lines_when_the_application_asks_for_them(manifest: Path) -> None:
    """The level is not forced up either: an application logging at DEBUG sees them."""
    done = run_demo_like(manifest, "DEBUG")
    assert done.returncode == 0, done.stderr
    assert "[DEBUG bm25s] Building index from tokens" in done.stderr
