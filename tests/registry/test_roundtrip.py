"""Every example plugin through a real registry: push, search, pull into a fresh cache,
load and call, with the same answers as from its directory; signed and verified."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import Registry
from helpers import EXAMPLES, plugin_copy, settings_for

from weaviate_ext import PluginManager
from weaviate_ext.cli import cli
from weaviate_ext.manifest.hostconfig import read_host_file, read_registry_section
from weaviate_ext.registry.artifact import (
    ARTIFACT_TYPE,
    CONFIG_MEDIA_TYPE,
    LAYER_FILE,
    LAYER_MANIFEST,
    LAYER_NATIVE,
    LAYER_WASM,
    build_artifact,
)
from weaviate_ext.registry.artifact import (
    TITLE_ANNOTATION as TITLE,
)
from weaviate_ext.registry.push import push_plugin, sign_artifact
from weaviate_ext.registry.signing import generate_key_pair, load_signing_key

pytestmark = pytest.mark.registry

TEXTS = ["the cat sat on the mat", "hello world", "vectors from a registry"]

EXAMPLE_CASES = {
    "wasm": ("c-vectorizer/plugin.yaml", "c-embedder", "wasm"),
    "native": ("c-vectorizer/plugin-native.yaml", "c-embedder-native", "native"),
    "grpc": ("grpc-vectorizer/plugin.yaml", "grpc-embedder", "grpc"),
    "python": ("python-hash-vectorizer/plugin.yaml", "hash-embedder", "python"),
}


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A cosign key pair (empty password)."""
    return generate_key_pair(tmp_path_factory.mktemp("keys"), password=b"")


def _binary_missing(manifest: Path) -> bool:
    text = manifest.read_text()
    for name in ("plugin.wasm", "plugin.so"):
        if f"./{name}" in text and not (manifest.parent / name).is_file():
            return True
    return False


def _vectors(manager: PluginManager, target: str) -> np.ndarray:
    handle = manager.load(target)
    return np.asarray(handle.vectorize_batch(TEXTS))  # type: ignore[attr-defined]


@pytest.mark.parametrize("case", sorted(EXAMPLE_CASES))
def test_example_round_trip(
    case: str, registry: Registry, keys: tuple[Path, Path], cache_dir: Path, tmp_path: Path
) -> None:
    manifest_rel, name, runtime = EXAMPLE_CASES[case]
    manifest = EXAMPLES / manifest_rel
    if _binary_missing(manifest):
        pytest.skip(f"{manifest_rel}: binary not built (scripts/build_examples.sh)")
    reference = registry.ref(f"examples/{case}", "1.0.0")
    pushed = push_plugin(manifest, reference)
    sign_artifact(reference, load_signing_key(keys[0], b""))

    # search shows it with its annotations
    result = CliRunner().invoke(
        cli, ["search", name, "--registry", registry.host, "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    rows = {row["reference"]: row for row in json.loads(result.output)}
    row = rows[reference]
    assert (row["name"], row["runtime"], row["digest"]) == (name, runtime, pushed.digest)
    assert row["annotations"]["org.opencontainers.image.title"] == name
    assert row["annotations"]["dev.weaviate-ext.plugin.type"] == "vectorizer"

    with PluginManager(discover=False) as manager:
        expected = _vectors(manager, str(manifest))
    settings = settings_for(tmp_path, cache_dir, keys=[keys[1]])
    with PluginManager(discover=False, registry=settings) as manager:
        got = _vectors(manager, reference)
        source = next(r.source for r in manager.plugins() if r.name == name)
        assert source == f"oci://{registry.host}/examples/{case}@{pushed.digest}"
    np.testing.assert_array_equal(got, expected)
    unpacked = cache_dir / "plugins" / pushed.digest.replace(":", "-")
    assert (unpacked / manifest.name).is_file()


def test_artifact_format_and_reproducibility(registry: Registry, tmp_path: Path) -> None:
    manifest = EXAMPLES / "c-vectorizer" / "plugin-native.yaml"
    if _binary_missing(manifest):
        pytest.skip("c-vectorizer not built")
    artifact = build_artifact(manifest)
    document = json.loads(artifact.manifest_bytes)
    assert document["artifactType"] == ARTIFACT_TYPE
    assert document["config"]["mediaType"] == CONFIG_MEDIA_TYPE
    layers = {la["annotations"]["org.opencontainers.image.title"]: la for la in document["layers"]}
    assert layers["plugin.so"]["mediaType"] == LAYER_NATIVE
    assert layers["plugin.so"]["annotations"]["dev.weaviate-ext.file.mode"] == "0755"
    # the wasm build beside it is a plain file of this artifact, not its binary
    assert layers["plugin.wasm"]["mediaType"] == LAYER_FILE
    assert build_artifact(manifest.parent).layers  # the directory means its plugin.yaml
    wasm = json.loads(build_artifact(manifest.parent).manifest_bytes)["layers"]
    assert {la["mediaType"] for la in wasm if la["annotations"][TITLE] == "plugin.wasm"} == {
        LAYER_WASM
    }
    assert layers["plugin-native.yaml"]["mediaType"] == LAYER_MANIFEST
    assert "build/model/model.bin" in layers
    assert not any(title.startswith("src/__pycache__") for title in layers)
    assert document["annotations"]["dev.weaviate-ext.plugin.runtime"] == "native"
    assert document["annotations"]["dev.weaviate-ext.plugin.manifest"] == "plugin-native.yaml"

    # a copy elsewhere, made later (other mtimes), pushed twice: one digest
    copy = tmp_path / "copy"
    shutil.copytree(manifest.parent, copy)
    first = push_plugin(copy / "plugin-native.yaml", registry.ref("repro/native", "a"))
    second = push_plugin(copy / "plugin-native.yaml", registry.ref("repro/native", "b"))
    assert first.digest == second.digest == artifact.digest
    assert second.uploaded == 0  # every blob was there already


def test_reload_to_a_new_tag(registry: Registry, cache_dir: Path, tmp_path: Path) -> None:
    source = plugin_copy("python-hash-vectorizer", tmp_path / "v1", "reload")
    push_plugin(source, registry.ref("reload/hash", "1.0.0"))
    manifest = source / "plugin.yaml"
    manifest.write_text(manifest.read_text().replace("version: 1.0.0", "version: 1.1.0"))
    newer = push_plugin(source, registry.ref("reload/hash", "1.1.0"))
    settings = settings_for(tmp_path, cache_dir, unsigned=True)
    with PluginManager(discover=False, registry=settings) as manager:
        handle = manager.load(registry.ref("reload/hash", "1.0.0"))
        before = handle.vectorize_text("reload me")  # type: ignore[attr-defined]
        manager.reload("hash-embedder", registry.ref("reload/hash", "1.1.0"))
        assert manager.manifest("hash-embedder").version == "1.1.0"
        assert manager.manifest("hash-embedder").path == (
            cache_dir / "plugins" / newer.digest.replace(":", "-") / "plugin.yaml"
        )
        np.testing.assert_array_equal(handle.vectorize_text("reload me"), before)  # type: ignore[attr-defined]


@pytest.fixture
def runner(cache_dir: Path) -> Iterator[CliRunner]:
    """A CLI runner (the cache is the test's fresh one)."""
    yield CliRunner()


def test_cli_push_sign_pull_and_cache(
    registry: Registry, runner: CliRunner, keys: tuple[Path, Path], cache_dir: Path, tmp_path: Path
) -> None:
    source = plugin_copy("python-hash-vectorizer", tmp_path / "plugin", "cli")
    reference = registry.ref("cli/hash", "2.0")
    pushed = runner.invoke(
        cli,
        ["push", str(source), reference, "--sign-key", str(keys[0]), "--json"],
        catch_exceptions=False,
    )
    assert pushed.exit_code == 0, pushed.output
    info = json.loads(pushed.output)
    assert info["signature_tag"] == info["digest"].replace(":", "-") + ".sig"

    # without a policy trusting the key, pull refuses (signed by an untrusted key)
    refused = runner.invoke(cli, ["pull", reference])
    assert refused.exit_code == 1
    assert "trusts no key" in refused.output and "cli/hash" in refused.output
    assert not (cache_dir / "plugins").exists() or not any((cache_dir / "plugins").iterdir())

    config = tmp_path / "host.yaml"
    config.write_text(
        "_registry:\n  policy:\n    repositories:\n"
        f"      - match: '{registry.host}/cli/*'\n        keys: ['{keys[1]}']\n"
    )
    out = tmp_path / "pulled"
    pulled = runner.invoke(
        cli,
        ["--config-file", str(config), "pull", reference, str(out), "--json"],
        catch_exceptions=False,
    )
    assert pulled.exit_code == 0, pulled.output
    assert json.loads(pulled.output)["digest"] == info["digest"]
    assert (out / "plugin.yaml").read_bytes() == (source / "plugin.yaml").read_bytes()
    assert (out / "NOTICE.txt").read_bytes() == (source / "NOTICE.txt").read_bytes()

    listed = runner.invoke(cli, ["cache", "list", "--json"], catch_exceptions=False)
    entries = json.loads(listed.output)["entries"]
    assert [(e["digest"], e["name"]) for e in entries] == [(info["digest"], "hash-embedder")]
    pruned = runner.invoke(cli, ["cache", "prune", "--max-size", "0", "--json"])
    assert json.loads(pruned.output)["removed"] == [info["digest"]]
    listed = runner.invoke(cli, ["cache", "list", "--json"], catch_exceptions=False)
    assert json.loads(listed.output)["entries"] == []


def test_cli_errors_are_one_line(registry: Registry, runner: CliRunner) -> None:
    bad = runner.invoke(cli, ["pull", "oci://127.0.0.1/UPPER:1"])
    assert bad.exit_code == 1 and "not a valid repository path component" in bad.output
    missing = runner.invoke(cli, ["pull", registry.ref("no/such", "1")])
    assert missing.exit_code == 1 and "no/such" in missing.output
    assert "Traceback" not in bad.output + missing.output


def test_cli_generate_key_pair_and_sign(
    registry: Registry,
    runner: CliRunner,
    cache_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COSIGN_PASSWORD", "key-pass")
    made = runner.invoke(cli, ["generate-key-pair", str(tmp_path / "k"), "--json"])
    assert made.exit_code == 0, made.output
    key_files = json.loads(made.output)
    source = plugin_copy("python-hash-vectorizer", tmp_path / "plugin", "cli-sign")
    reference = registry.ref("cli/signed", "1")
    assert runner.invoke(cli, ["push", str(source), reference]).exit_code == 0
    config = tmp_path / "host.yaml"
    config.write_text(
        "_registry:\n  policy:\n    repositories:\n"
        f"      - match: '*'\n        keys: ['{key_files['public_key']}']\n"
        "hash-embedder: {dimensions: 768}\n"
    )
    unsigned = runner.invoke(cli, ["--config-file", str(config), "pull", reference])
    assert unsigned.exit_code == 1 and "unsigned artifact" in unsigned.output
    monkeypatch.setenv("COSIGN_PASSWORD", "not-the-pass")
    wrong = runner.invoke(cli, ["sign", reference, "--key", key_files["private_key"]])
    assert wrong.exit_code == 1 and "not-the-pass" not in wrong.output
    monkeypatch.setenv("COSIGN_PASSWORD", "key-pass")
    signed = runner.invoke(cli, ["sign", reference, "--key", key_files["private_key"], "--json"])
    assert signed.exit_code == 0, signed.output
    pulled = runner.invoke(cli, ["--config-file", str(config), "pull", reference, "--json"])
    assert pulled.exit_code == 0, pulled.output
    assert json.loads(pulled.output)["digest"] == json.loads(signed.output)["digest"]
    # the host file's _registry section is not taken for a plugin's config
    assert set(read_host_file(config)[0]) == {"hash-embedder"}
    assert "policy" in read_registry_section(config)
    listed = runner.invoke(cli, ["--config-file", str(config), "--no-discover", "list", "--json"])
    assert listed.exit_code == 0, listed.output
