"""The native runtime: the same C sources as shared libraries, loaded with cffi.

Only the faults that can be caught safely in-process are exercised here (ABI version,
missing exports, wrong dimensions, returned errors); an endless loop, a memory bomb or
a wild pointer in a native plugin takes the host down with it, which is why the
runtime is for trusted code only.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
from cabi.helpers import C_EXAMPLES, ROOT, build_examples, build_faults, fault_manifest

from weaviate_ext import (
    DimensionMismatch,
    PluginCallError,
    PluginLoadError,
    PluginManager,
    RuntimeNotAllowed,
)
from weaviate_ext.testing import check_plugin


@pytest.fixture(scope="session")
def examples() -> Path:
    return build_examples()


@pytest.fixture(scope="session")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_faults(tmp_path_factory.mktemp("cabi-native"))


def load_fault(manager: PluginManager, faults: Path, tmp_path: Path, **kwargs: object) -> str:
    binary = faults / f"{kwargs.pop('binary', 'faults')}.so"
    manifest = fault_manifest(  # type: ignore[arg-type]
        tmp_path, binary, runtime="native", memory=None, **kwargs
    )
    return str(manager.load(manifest).name)


def test_c_vectorizer_native_has_768_dimensions(examples: Path) -> None:
    with PluginManager(discover=False) as manager:
        manager.load(examples / "c-vectorizer" / "plugin-native.yaml")
        vector = manager.get_vectorizer("c-embedder-native").vectorize_text("test")
        assert len(vector) == 768


@pytest.mark.parametrize("directory", sorted(C_EXAMPLES))
def test_c_example_passes_conformance_as_native(
    directory: str, examples: Path, manager: PluginManager
) -> None:
    handle = manager.load(examples / directory / "plugin-native.yaml")
    assert handle.name == C_EXAMPLES[directory][0] + "-native"
    assert manager.manifest(handle.name).spec.runtime == "native"
    check_plugin(handle).raise_for_failures()


def test_loading_warns_that_it_is_unsandboxed(
    examples: Path, manager: PluginManager, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="weaviate_ext"):
        manager.load(examples / "c-transformer" / "plugin-native.yaml")
    warning = next(r.message for r in caplog.records if "UNSANDBOXED" in r.message)
    assert "whitespace-normalizer-native" in warning
    assert "not enforced" in warning


def test_allowed_runtimes_refuses_native(examples: Path) -> None:
    with PluginManager(discover=False, allowed_runtimes={"python", "wasm"}) as manager:
        with pytest.raises(RuntimeNotAllowed, match="allowed: python, wasm"):
            manager.load(examples / "c-reranker" / "plugin-native.yaml")
        assert manager.names() == ()


def test_abi_version_mismatch(faults: Path, manager: PluginManager, tmp_path: Path) -> None:
    with pytest.raises(PluginLoadError, match="ABI version 99, this host speaks version 1"):
        load_fault(manager, faults, tmp_path, binary="abi_mismatch")


def test_missing_exports_are_named(faults: Path, manager: PluginManager, tmp_path: Path) -> None:
    with pytest.raises(
        PluginLoadError, match="does not export wv_init, wv_last_error, wv_vectorize_batch"
    ):
        load_fault(manager, faults, tmp_path, binary="missing_exports")


def test_not_a_shared_library(manager: PluginManager, tmp_path: Path) -> None:
    binary = tmp_path / "junk.so"
    binary.write_bytes(b"not an ELF file")
    with pytest.raises(PluginLoadError, match="cannot load the shared library"):
        manager.load(fault_manifest(tmp_path, binary, runtime="native", memory=None))


def test_declared_sha256_mismatch_is_refused(
    faults: Path, manager: PluginManager, tmp_path: Path
) -> None:
    with pytest.raises(PluginLoadError, match="refusing to load a binary"):
        load_fault(manager, faults, tmp_path, sha256="ab" * 32)
    digest = hashlib.sha256((faults / "faults.so").read_bytes()).hexdigest()
    assert load_fault(manager, faults, tmp_path, name="ok", sha256=digest) == "ok"


def test_wrong_dimensions_and_returned_errors_then_good_calls(
    faults: Path, manager: PluginManager, tmp_path: Path, examples: Path
) -> None:
    manager.load(examples / "c-transformer" / "plugin-native.yaml")
    handle = manager.get_vectorizer(load_fault(manager, faults, tmp_path))
    with pytest.raises(DimensionMismatch, match="15 dimensions, the manifest declares 16"):
        handle.vectorize_text("wrong dims")
    with pytest.raises(PluginCallError, match="vectorize_batch: asked to fail"):
        handle.vectorize_text("fail")
    assert handle.vectorize_text("good").shape == (16,)
    assert manager.get_transformer("whitespace-normalizer-native").transform(" X ") == "x"


def test_native_plugins_see_the_environment(
    faults: Path, manager: PluginManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No sandbox: what the wasm runtime denies, a native plugin simply has."""
    monkeypatch.setenv("WV_FAULT_SECRET", "visible")
    handle = manager.get_vectorizer(load_fault(manager, faults, tmp_path))
    with pytest.raises(PluginCallError, match="WV_FAULT_SECRET=visible"):
        handle.vectorize_text("env")


def test_calls_reuse_one_session_and_nested_calls_get_their_own(examples: Path) -> None:
    with PluginManager(discover=False) as manager:
        manager.load(examples / "c-vectorizer" / "plugin-native.yaml")
        plugin = manager.registry.get_plugin("c-embedder-native")
        assert plugin is not None
        backend = plugin.backend
        with backend.session("vectorize_batch", None) as outer:
            assert outer is backend.idle_session
            with backend.session("vectorize_batch", None) as inner:
                assert inner is not outer
        assert backend.sessions == []
        assert backend.lock.acquire(blocking=False)
        backend.lock.release()


def _kv_store_twice(tmp_path: Path, examples: Path) -> tuple[Path, Path]:
    """Two manifests in one directory naming the same plugin.so (c-storage keeps its
    table in a global)."""
    shutil.copy(examples / "c-storage" / "plugin.so", tmp_path / "plugin.so")
    text = (examples / "c-storage" / "plugin-native.yaml").read_text()
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(text.replace("name: kv-store-native", "name: kv-a"))
    b.write_text(text.replace("name: kv-store-native", "name: kv-b"))
    return a, b


def test_two_loads_of_one_library_do_not_share_its_globals(examples: Path, tmp_path: Path) -> None:
    a, b = _kv_store_twice(tmp_path, examples)
    with PluginManager(discover=False) as manager:
        store_a = manager.get_storage(manager.load(a).name)
        store_b = manager.get_storage(manager.load(b).name)
        store_a.store("key", b"from a")
        assert store_b.retrieve("key") is None
        store_b.store("key", b"from b")
        assert store_a.retrieve("key") == b"from a"
        assert store_b.retrieve("key") == b"from b"


def test_reload_after_a_rebuild_maps_the_new_library(examples: Path, tmp_path: Path) -> None:
    """A second dlopen of a path returns the first mapping even when the file changed;
    the bridge maps a copy, so a reload runs the rebuilt code."""
    plugin = tmp_path / "t"
    shutil.copytree(examples / "c-transformer", plugin, ignore=shutil.ignore_patterns("*.wasm"))
    source = plugin / "src" / "whitespace_normalizer.c"
    build = [str(ROOT / "sdk" / "c" / "build-plugin.sh"), str(plugin / "plugin"), str(source)]
    env = {**os.environ, "WV_TARGETS": "native"}
    subprocess.run(build, check=True, env=env, capture_output=True)
    manifest = plugin / "plugin-native.yaml"
    with PluginManager(discover=False) as manager:
        name = manager.load(manifest).name
        assert manager.get_transformer(name).transform("  A   B  ") == "a b"
        text = source.read_text().replace(
            "out->data[out->len++] = ' ';", "out->data[out->len++] = '_';"
        )
        source.write_text(text)
        subprocess.run(build, check=True, env=env, capture_output=True)
        manager.reload(name, manifest)
        assert manager.get_transformer(name).transform("  A   B  ") == "a_b"


def test_concurrent_native_calls_get_their_own_results(examples: Path) -> None:
    with PluginManager(discover=False) as manager:
        manager.load(examples / "c-vectorizer" / "plugin-native.yaml")
        handle = manager.get_vectorizer("c-embedder-native")
        texts = [f"text {i}" for i in range(8)]
        expected = {t: handle.vectorize_text(t) for t in texts}
        errors: list[BaseException] = []

        def work(offset: int) -> None:
            try:
                for i in range(200):
                    text = texts[(i + offset) % len(texts)]
                    assert np.array_equal(handle.vectorize_text(text), expected[text])
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
