"""A registry that is down: a reference by digest loads from the cache, its kept
signatures checked again against the current policy; a reference by tag, an artifact
the cache does not hold, or a key the policy no longer trusts fail with clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import _start
from helpers import plugin_copy, settings_for

from weaviate_ext import PluginManager, RegistryUnreachable, SignatureError
from weaviate_ext.registry.pull import pull
from weaviate_ext.registry.push import push_plugin, sign_artifact
from weaviate_ext.registry.signing import generate_key_pair, load_signing_key

pytestmark = pytest.mark.registry


def test_a_pinned_artifact_loads_from_the_cache_while_the_registry_is_down(
    cache_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "keys").mkdir()
    private, public = generate_key_pair(tmp_path / "keys", password=b"")
    (tmp_path / "other").mkdir()
    _, foreign = generate_key_pair(tmp_path / "other", password=b"")
    plugin = plugin_copy("python-hash-vectorizer", tmp_path / "plugin", "offline")
    trusted = settings_for(tmp_path, cache_dir, keys=[public])

    (tmp_path / "registry-data").mkdir()
    server = _start(tmp_path / "registry-data")
    registry = next(server)
    try:
        tag = registry.ref("offline/hash", "1.0.0")
        push_plugin(plugin / "plugin.yaml", tag)
        sign_artifact(tag, load_signing_key(private, b""))
        pinned = str(pull(tag, settings=trusted).pinned)
        with PluginManager(discover=False, registry=trusted) as manager:
            online = manager.load(pinned).vectorize_text("while it is up")  # type: ignore[attr-defined]
    finally:
        server.close()  # stops the registry

    with PluginManager(discover=False, registry=trusted) as manager:
        offline = manager.load(pinned).vectorize_text("while it is up")  # type: ignore[attr-defined]
    assert np.array_equal(online, offline)

    with (
        PluginManager(discover=False, registry=trusted) as manager,
        pytest.raises(RegistryUnreachable, match="cannot reach the registry"),
    ):
        manager.load(tag)  # a tag can move: it needs the registry

    distrusted = settings_for(tmp_path, cache_dir, keys=[foreign])
    with (
        PluginManager(discover=False, registry=distrusted) as manager,
        pytest.raises(SignatureError),
    ):
        manager.load(pinned)  # the kept signatures are checked against today's policy

    other_cache = settings_for(tmp_path, tmp_path / "empty-cache", keys=[public])
    with (
        PluginManager(discover=False, registry=other_cache) as manager,
        pytest.raises(RegistryUnreachable),
    ):
        manager.load(pinned)  # not in this cache
