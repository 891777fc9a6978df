"""A plugin pulled from a registry asks for host resources like any other: its manifest's
requests go through the host's grants (docs/security.md) after the signature check."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import Registry
from helpers import plugin_copy, settings_for

from weaviate_ext import PermissionNotGranted, PluginManager
from weaviate_ext.grants import Grant
from weaviate_ext.registry.push import push_plugin

pytestmark = pytest.mark.registry


def test_an_oci_plugin_requesting_env_needs_a_grant(
    registry: Registry, cache_dir: Path, tmp_path: Path
) -> None:
    plugin = plugin_copy("python-hash-vectorizer", tmp_path / "plugin", "grants")
    manifest = plugin / "plugin.yaml"
    data = yaml.safe_load(manifest.read_text())
    data["metadata"]["name"] = "env-embedder"
    data["spec"]["permissions"] = {"env": ["HASH_SALT"]}
    manifest.write_text(yaml.safe_dump(data, sort_keys=False))
    reference = registry.ref("grants/env-embedder", "1.0.0")
    push_plugin(manifest, reference)
    unsigned_ok = settings_for(tmp_path, cache_dir, unsigned=True)

    with (
        PluginManager(discover=False, registry=unsigned_ok) as manager,
        pytest.raises(PermissionNotGranted, match="--grant env-embedder:env=HASH_SALT"),
    ):
        manager.load(reference)

    grants = {"env-embedder": Grant(env={"HASH_SALT"})}
    with PluginManager(discover=False, registry=unsigned_ok, grants=grants) as manager:
        handle = manager.load(reference)
        assert handle.vectorize_text("granted").shape == (768,)  # type: ignore[attr-defined]
