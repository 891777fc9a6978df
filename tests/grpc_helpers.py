"""Shared by the gRPC tests: paths, manifests of the fault plugin, process checks."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "plugins"
FAULTY = Path(__file__).resolve().parent / "grpc_plugins" / "faulty.py"


def sdk_pythonpath() -> str:
    """PYTHONPATH that makes ``weaviate_plugin_sdk`` importable by plugin processes
    before the distribution ships it (it is passed on to ``python`` commands)."""
    current = os.environ.get("PYTHONPATH", "")
    return os.pathsep.join(p for p in (str(ROOT), current) if p)


def faulty_manifest(
    directory: Path,
    name: str = "faulty",
    mode: str = "normal",
    extra: str = "",
) -> Path:
    """A plugin.yaml running ``tests/grpc_plugins/faulty.py --mode <mode>``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "plugin.yaml"
    path.write_text(
        f"""apiVersion: weaviate.io/v1
kind: Plugin
metadata:
  name: {name}
  version: 1.0.0
spec:
  type: vectorizer
  runtime: grpc
  command: ["python", "{FAULTY}", "--mode", "{mode}"]
  timeout: 20s
  capabilities:
    dimensions: 8
{extra}"""
    )
    return path


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    """Wait until ``pid`` is gone; whether it went within ``timeout``."""
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return not alive(pid)


PYTHON = sys.executable
