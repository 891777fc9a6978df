"""Building wheels in tests, offline, from copies of the sources (so nothing is written
into the working tree): shared by tests/test_packaging.py and tests/test_wheel_authoring.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IGNORED = shutil.ignore_patterns("__pycache__", "*.py[cod]", "*.egg-info", "build", "dist")
"""What a copy of a source tree leaves out."""

FRAMEWORK_FILES = ("setup.cfg", "pyproject.toml", "README.md", "LICENSE", "weaviate_plugin_sdk.py")
"""The top-level files the framework's build reads."""


def build_wheel(source: Path, out: Path, pattern: str = "*.whl") -> Path:
    """``pip wheel`` of ``source`` into ``out`` with this environment's setuptools (no
    index, no isolation); the one wheel matching ``pattern``."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "--wheel-dir",
            str(out),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = out.glob(pattern)
    return wheel


def framework_wheel(tmp: Path) -> Path:
    """The framework's wheel, built from a copy of its sources under ``tmp`` (copytree
    follows weaviate_ext/_data's symbolic links to hookspecs/ and sdk/)."""
    source = tmp / "src"
    source.mkdir()
    for name in FRAMEWORK_FILES:
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "weaviate_ext", source / "weaviate_ext", ignore=IGNORED)
    return build_wheel(source, tmp / "wheels", "weaviate_ext-*.whl")
