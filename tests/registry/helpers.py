"""Helpers of the registry tests: keys, policies and settings."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from weaviate_ext.registry.settings import RegistrySettings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plugins"


def settings_for(
    base: Path, cache: Path, *, keys: list[Path] | None = None, unsigned: bool = False, **extra: Any
) -> RegistrySettings:
    """Registry settings trusting ``keys`` (or allowing unsigned) for every repository."""
    rule: dict[str, Any] = {"match": "*"}
    if keys:
        rule["keys"] = [str(k) for k in keys]
    if unsigned:
        rule["allowUnsigned"] = True
    policy: dict[str, Any] = {"repositories": [rule], **extra}
    return RegistrySettings.from_data({"policy": policy, "cache": {"dir": str(cache)}}, base)


def plugin_copy(source: str, destination: Path, marker: str) -> Path:
    """A copy of example plugin ``source`` with one extra file whose content is unique
    (``marker``), so its blobs are not shared with other tests' artifacts."""
    shutil.copytree(
        EXAMPLES / source, destination, ignore=shutil.ignore_patterns("__pycache__", "tests")
    )
    (destination / "NOTICE.txt").write_text(f"test artifact {marker}\n" * 64)
    return destination
