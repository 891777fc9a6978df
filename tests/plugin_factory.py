"""Writing small in-process Python plugins into temporary directories for the tests."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import yaml


def write_plugin(
    root: Path,
    name: str,
    plugin_type: str,
    source: str,
    *,
    version: str = "1.0.0",
    entrypoint: str = "plugin:Plugin",
    capabilities: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    dependencies: list[dict[str, str]] | None = None,
    runtime: str = "python",
    extra_spec: dict[str, Any] | None = None,
    directory: str | None = None,
) -> Path:
    """Write ``plugin.yaml`` and ``src/plugin.py`` under ``root/<directory or name>``.

    ``source`` is the plugin module's text (dedented). Returns the manifest's path.
    """
    folder = root / (directory or name)
    (folder / "src").mkdir(parents=True, exist_ok=True)
    spec: dict[str, Any] = {"type": plugin_type, "runtime": runtime, "entrypoint": entrypoint}
    if capabilities:
        spec["capabilities"] = capabilities
    if config:
        spec["config"] = config
    if dependencies:
        spec["dependencies"] = dependencies
    spec.update(extra_spec or {})
    manifest = {
        "apiVersion": "weaviate.io/v1",
        "kind": "Plugin",
        "metadata": {"name": name, "version": version},
        "spec": spec,
    }
    path = folder / "plugin.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    module = entrypoint.split(":")[0]
    (folder / "src" / f"{module}.py").write_text(textwrap.dedent(source))
    return path


VECTORIZER = """
    import numpy as np
    from weaviate_ext import hookimpl

    DIMS = {dims}
    VERSION = {version!r}

    class Plugin:
        @hookimpl
        def vectorize_batch(self, texts):
            out = np.zeros((len(texts), DIMS), dtype=np.float32)
            for i, text in enumerate(texts):
                out[i, len(text) % DIMS] = 1.0
                out[i, -1] = float(VERSION.split(".")[0])
            return out
"""


def vectorizer_source(dims: int = 4, version: str = "1.0.0") -> str:
    """A deterministic vectorizer whose last component is the major version."""
    return VECTORIZER.format(dims=dims, version=version)
