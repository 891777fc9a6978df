"""The product spec's custom-vectorizer (examples/plugins/custom-vectorizer: Rust on the
Rust SDK, sdk/rust), built with Debian's rustc as a wasm32-wasi module and as a native
shared library from one source, and the SDK's own unit tests."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from cabi.helpers import EXAMPLES, ROOT

from weaviate_ext import PluginLoadError, PluginManager, load_manifest
from weaviate_ext.testing import check_plugin

EXAMPLE = EXAMPLES / "custom-vectorizer"
HINT = "run scripts/install_toolchains.sh (as root) to install rustc, cargo, libstd-rust-dev-wasm32"
CARGO = "/usr/bin/cargo"


def debian_rustc() -> str:
    """Debian's rustc (the rustup one first in PATH has no wasm32-wasi target)."""
    listed = subprocess.run(["dpkg", "-L", "rustc"], capture_output=True, text=True, check=False)
    for line in listed.stdout.splitlines():
        if line.endswith("/bin/rustc") and os.access(line, os.X_OK):
            return line
    pytest.fail(f"Debian's rustc is not installed: {HINT}", pytrace=False)


def run(command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    if not os.access(CARGO, os.X_OK):
        pytest.fail(f"{CARGO} is missing: {HINT}", pytrace=False)
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env, cwd=cwd)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed ({HINT}?):\n{done.stdout}\n{done.stderr}")


@pytest.fixture(scope="module")
def built() -> Path:
    """Build the example in place (its build.sh, through build_examples.sh)."""
    debian_rustc()
    run(["bash", str(ROOT / "scripts" / "build_examples.sh"), "custom-vectorizer"])
    return EXAMPLE


def test_sdk_unit_tests(tmp_path: Path) -> None:
    """cargo test of the SDK itself (JSON, Config, packing, errors and panics)."""
    env = {
        **os.environ,
        "RUSTC": debian_rustc(),
        "CARGO_TARGET_DIR": str(tmp_path / "target"),
        "CARGO_HOME": str(tmp_path / "cargo-home"),
    }
    run([CARGO, "test", "--offline", "--quiet"], env=env, cwd=ROOT / "sdk" / "rust")


def test_product_spec_custom_vectorizer_has_768_dimensions(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spec's Go test, in Python, as written: load ./plugin.yaml, get_vectorizer,
    vectorize_text("test") has 768 dimensions."""
    monkeypatch.chdir(built)
    manager = PluginManager()
    try:
        manager.load("./plugin.yaml")
        vectorizer = manager.get_vectorizer("custom-embedder")
        vector = vectorizer.vectorize_text("test")
        assert len(vector) == 768
    finally:
        manager.close()


def test_the_manifest_is_the_spec_s(built: Path) -> None:
    manifest = load_manifest(built / "plugin.yaml")
    assert (manifest.name, manifest.spec.type, manifest.spec.runtime) == (
        "custom-embedder",
        "vectorizer",
        "wasm",
    )
    assert manifest.spec.binary == "./plugin-binary.wasm"
    assert manifest.spec.capabilities.dimensions == 768
    assert manifest.spec.capabilities.max_batch_size == 100
    assert manifest.spec.config["modelPath"].required


@pytest.mark.parametrize("manifest", ["plugin.yaml", "plugin-native.yaml"])
def test_custom_vectorizer_passes_conformance(
    built: Path, manager: PluginManager, manifest: str
) -> None:
    handle = manager.load(built / manifest)
    check_plugin(handle).raise_for_failures()


def test_init_loads_the_model_through_the_granted_directory(
    built: Path, manager: PluginManager, caplog: pytest.LogCaptureFixture
) -> None:
    """wasm: the model is read inside the sandbox from /model, the granted directory
    (the plugin's stdout reaches the host log under the plugin's name)."""
    with caplog.at_level(logging.INFO, logger="weaviate_ext.plugin.custom-embedder"):
        manager.load(built / "plugin.yaml")
    assert any("loaded /model/model.bin (768 dimensions)" in r.message for r in caplog.records)


def test_wasm_and_native_builds_of_the_rust_source_agree(
    built: Path, manager: PluginManager
) -> None:
    manager.load(built / "plugin.yaml")
    manager.load(built / "plugin-native.yaml")
    texts = ["test", "Vector search 🚀", "", "x" * 3000, "ключ"]
    wasm_out = manager.get_vectorizer("custom-embedder").vectorize_batch(texts)
    native_out = manager.get_vectorizer("custom-embedder-native").vectorize_batch(texts)
    assert np.array_equal(wasm_out, native_out)


def test_native_build_resolves_the_model_path_next_to_the_library(
    built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative modelPath is relative to the .so, whatever the host's working dir."""
    monkeypatch.chdir(tmp_path)
    with PluginManager(discover=False) as manager:
        manager.load(built / "plugin-native.yaml")
        assert len(manager.get_vectorizer("custom-embedder-native").vectorize_text("x")) == 768
    with PluginManager(discover=False) as manager:
        missing = str(built / "build" / "model" / "nope.bin")
        with pytest.raises(PluginLoadError, match=f"cannot read the model {missing}"):
            manager.load(built / "plugin-native.yaml", config={"modelPath": "build/model/nope.bin"})


def test_custom_vectorizer_encodes_meaning_of_a_sort(built: Path, manager: PluginManager) -> None:
    handle = manager.get_vectorizer(manager.load(built / "plugin.yaml").name)
    a, b, c = handle.vectorize_batch(
        ["vector search engines", "Vector Search Engine", "a recipe for apple pie"]
    )
    assert float(np.dot(a, b)) > 0.5 > float(np.dot(a, c))
    assert np.allclose(np.linalg.norm(handle.vectorize_batch(["x", "ключ 🔑"]), axis=1), 1.0)


def test_custom_vectorizer_config_errors_refuse_the_load(built: Path, tmp_path: Path) -> None:
    with PluginManager(discover=False) as manager:
        with pytest.raises(PluginLoadError, match="cannot read the model /model/nope.bin"):
            manager.load(built / "plugin.yaml", config={"modelPath": "/model/nope.bin"})
        with pytest.raises(PluginLoadError, match="config.dimensions is 512 but the model has 768"):
            manager.load(built / "plugin.yaml", config={"dimensions": 512})
    # a model file that is not one
    copy = tmp_path / "example"
    shutil.copytree(built, copy, ignore=shutil.ignore_patterns("target", "cargo-home"))
    (copy / "build" / "model" / "model.bin").write_bytes(b"not a model")
    with (
        PluginManager(discover=False) as manager,
        pytest.raises(PluginLoadError, match="is not a WVHM version 1 model file"),
    ):
        manager.load(copy / "plugin.yaml")


def test_custom_vectorizer_builds_a_reactor_with_the_abi_exports(built: Path) -> None:
    import wasmtime

    from weaviate_ext.bridges.cabi.wasm_module import engine

    # the bridge's shared engine: a second engine in the process is not needed
    module = wasmtime.Module(engine(), (built / "plugin-binary.wasm").read_bytes())
    exports = {e.name for e in module.exports}
    assert {
        "memory",
        "wv_abi_version",
        "wv_alloc",
        "wv_free",
        "wv_init",
        "wv_last_error",
        "wv_vectorize_batch",
    } <= exports
    imports = {(i.module, i.name) for i in module.imports}
    assert all(m == "wasi_snapshot_preview1" for m, _ in imports), imports
