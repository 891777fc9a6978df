"""Shared by tests/test_wasm*.py and tests/test_native*.py: building the C plugins
(examples and fault plugins) and writing manifests for the fault plugins."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "plugins"
C_EXAMPLES = {
    "c-vectorizer": ("c-embedder", "plugin"),
    "c-reranker": ("overlap-reranker", "plugin"),
    "c-transformer": ("whitespace-normalizer", "plugin"),
}
"""The C examples: directory -> (plugin name of plugin.yaml, binary base name)."""

TOOLCHAIN_HINT = "run scripts/install_toolchains.sh (as root) to install clang, lld, wasi-libc"


def require_toolchain() -> None:
    """Fail (never skip) when the C -> wasm/.so toolchain is missing."""
    missing = [tool for tool in ("clang", "wasm-ld", "gcc") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"missing build tools {missing}: {TOOLCHAIN_HINT}", pytrace=False)


def run_build(command: list[str]) -> None:
    """Run a build script; a failure fails the test session with its output."""
    require_toolchain()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} failed ({TOOLCHAIN_HINT}?):\n{done.stdout}\n{done.stderr}",
            pytrace=False,
        )


def build_examples() -> Path:
    """Build the C examples in place (their build.sh); returns examples/plugins."""
    run_build(["bash", str(ROOT / "scripts" / "build_examples.sh"), *C_EXAMPLES])
    return EXAMPLES


def build_faults(out: Path) -> Path:
    """Build the fault plugins of tests/cabi into ``out``."""
    run_build(["sh", str(ROOT / "tests" / "cabi" / "build.sh"), str(out)])
    return out


def fault_manifest(
    directory: Path,
    binary: Path,
    *,
    runtime: str,
    name: str = "faults",
    timeout: float = 1.0,
    memory: str | None = "64Mi",
    cpu: str | None = None,
    permissions: dict[str, Any] | None = None,
    sha256: str | None = None,
    dimensions: int = 16,
) -> Path:
    """Write a vectorizer manifest for a fault binary (copied next to it, since
    ``spec.binary`` is relative to the manifest); returns its path."""
    local = directory / binary.name
    if binary.exists() and not local.exists():
        shutil.copyfile(binary, local)
    spec: dict[str, Any] = {
        "type": "vectorizer",
        "runtime": runtime,
        "binary": f"./{binary.name}",
        "timeout": timeout,
        "capabilities": {"dimensions": dimensions, "maxBatchSize": 8},
    }
    resources = {k: v for k, v in (("memory", memory), ("cpu", cpu)) if v is not None}
    if resources:
        spec["resources"] = resources
    if permissions:
        spec["permissions"] = permissions
    if sha256:
        spec["sha256"] = sha256
    manifest = {
        "apiVersion": "weaviate.io/v1",
        "kind": "Plugin",
        "metadata": {"name": name, "version": "1.0.0"},
        "spec": spec,
    }
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path
