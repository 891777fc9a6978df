"""What the registry policy and digest checks refuse: tampered layers, wrong pins,
unsigned artifacts, foreign signatures, wrong credentials; each a clear error naming
the artifact, with nothing left in the cache as valid."""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path

import httpx
import pytest
from conftest import Registry
from helpers import plugin_copy, settings_for

from weaviate_ext import PluginManager
from weaviate_ext.errors import ArtifactIntegrityError, RegistryError, SignatureError
from weaviate_ext.registry.artifact import TITLE_ANNOTATION, build_artifact
from weaviate_ext.registry.cache import OciCache
from weaviate_ext.registry.pull import pull
from weaviate_ext.registry.push import push_plugin, sign_artifact
from weaviate_ext.registry.signing import generate_key_pair, load_signing_key

pytestmark = pytest.mark.registry


@pytest.fixture(scope="module")
def trusted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The key pair the host trusts."""
    return generate_key_pair(tmp_path_factory.mktemp("trusted"), password=b"")


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A key pair the host does not trust."""
    return generate_key_pair(tmp_path_factory.mktemp("foreign"), password=b"")


def assert_nothing_cached(cache: Path, digest: str | None = None) -> None:
    """No plugin directory in the cache, and no leftover in its tmp/."""
    plugins = cache / "plugins"
    assert not plugins.exists() or not [p for p in plugins.iterdir() if p.is_dir()]
    tmp = cache / "tmp"
    assert not tmp.exists() or not list(tmp.iterdir())
    if digest is not None:
        assert not OciCache(cache).has_plugin(digest)


def test_tampered_layer_is_refused(
    registry: Registry, trusted: tuple[Path, Path], cache_dir: Path, tmp_path: Path
) -> None:
    source = plugin_copy("python-hash-vectorizer", tmp_path / "p", "tampered")
    reference = registry.ref("attack/tampered", "1.0")
    pushed = push_plugin(source, reference)
    sign_artifact(reference, load_signing_key(trusted[0], b""))
    layer = next(
        la
        for la in build_artifact(source).layers
        if la.annotations[TITLE_ANNOTATION] == "NOTICE.txt"
    )
    stored = registry.blob_file(layer.digest)
    data = bytearray(stored.read_bytes())
    data[10] ^= 0x20  # same size, one bit flipped
    stored.write_bytes(bytes(data))
    settings = settings_for(tmp_path, cache_dir, keys=[trusted[1]])
    with PluginManager(discover=False, registry=settings) as manager:
        with pytest.raises(ArtifactIntegrityError) as caught:
            manager.load(reference)
        assert manager.names() == ()
    message = str(caught.value)
    assert reference in message and layer.digest in message and "does not match" in message
    assert_nothing_cached(cache_dir, pushed.digest)
    assert not OciCache(cache_dir).blob_path(layer.digest).exists()


def test_wrong_pinned_digest_is_refused(
    registry: Registry, trusted: tuple[Path, Path], cache_dir: Path, tmp_path: Path
) -> None:
    source = plugin_copy("python-hash-vectorizer", tmp_path / "p", "pinned")
    reference = registry.ref("attack/pinned", "1.0")
    pushed = push_plugin(source, reference)
    sign_artifact(reference, load_signing_key(trusted[0], b""))
    wrong = "sha256:" + "0" * 64
    pins = {"pins": {reference.removeprefix("oci://"): wrong}}
    settings = settings_for(tmp_path, cache_dir, keys=[trusted[1]], **pins)
    with pytest.raises(ArtifactIntegrityError) as caught:
        pull(reference, settings=settings)
    assert wrong in str(caught.value) and "attack/pinned" in str(caught.value)
    assert_nothing_cached(cache_dir)
    # the right pin passes
    good = settings_for(
        tmp_path,
        cache_dir,
        keys=[trusted[1]],
        pins={reference.removeprefix("oci://"): pushed.digest},
    )
    assert pull(reference, settings=good).digest == pushed.digest


def test_by_digest_reference_gets_exactly_that_manifest(
    registry: Registry, cache_dir: Path, tmp_path: Path
) -> None:
    source = plugin_copy("python-hash-vectorizer", tmp_path / "p", "by-digest")
    pushed = push_plugin(source, registry.ref("attack/digest", "1.0"))
    settings = settings_for(tmp_path, cache_dir, unsigned=True)
    assert pull(str(pushed.pinned), settings=settings).digest == pushed.digest
    absent = f"oci://{registry.host}/attack/digest@sha256:{'1' * 64}"
    with pytest.raises(RegistryError, match="no such artifact"):
        pull(absent, settings=settings)


def test_unsigned_artifact_is_refused_by_default(
    registry: Registry, cache_dir: Path, tmp_path: Path
) -> None:
    source = plugin_copy("python-hash-vectorizer", tmp_path / "p", "unsigned")
    reference = registry.ref("attack/unsigned", "1.0")
    pushed = push_plugin(source, reference)
    # default settings and policy
    with PluginManager(discover=False) as manager, pytest.raises(SignatureError) as caught:
        manager.load(reference)
    assert "unsigned" in str(caught.value) and pushed.digest in str(caught.value)
    assert_nothing_cached(cache_dir)


def test_foreign_signature_is_refused(
    registry: Registry,
    trusted: tuple[Path, Path],
    foreign: tuple[Path, Path],
    cache_dir: Path,
    tmp_path: Path,
) -> None:
    source = plugin_copy("python-hash-vectorizer", tmp_path / "p", "foreign")
    reference = registry.ref("attack/foreign", "1.0")
    push_plugin(source, reference)
    sign_artifact(reference, load_signing_key(foreign[0], b""))
    settings = settings_for(tmp_path, cache_dir, keys=[trusted[1]])
    with pytest.raises(SignatureError) as caught:
        pull(reference, settings=settings)
    assert "attack/foreign" in str(caught.value) and "none made by a key" in str(caught.value)
    assert_nothing_cached(cache_dir)
    # signed by the trusted key as well: accepted (cosign keeps both signatures)
    sign_artifact(reference, load_signing_key(trusted[0], b""))
    assert pull(reference, settings=settings).manifest_path.is_file()


def test_signature_copied_from_another_artifact_is_refused(
    registry: Registry, trusted: tuple[Path, Path], cache_dir: Path, tmp_path: Path
) -> None:
    """A valid signature of artifact A stored at artifact B's signature tag."""
    a = push_plugin(
        plugin_copy("python-hash-vectorizer", tmp_path / "a", "copy-a"),
        registry.ref("attack/copy", "a"),
    )
    b = push_plugin(
        plugin_copy("python-hash-vectorizer", tmp_path / "b", "copy-b"),
        registry.ref("attack/copy", "b"),
    )
    sign_artifact(a.reference, load_signing_key(trusted[0], b""))
    base = f"http://{registry.host}/v2/attack/copy/manifests/"
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    sig = httpx.get(base + a.digest.replace(":", "-") + ".sig", headers=accept).content
    put = httpx.put(
        base + b.digest.replace(":", "-") + ".sig",
        content=sig,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert put.status_code == 201
    settings = settings_for(tmp_path, cache_dir, keys=[trusted[1]])
    with pytest.raises(SignatureError, match="another manifest digest"):
        pull(b.reference, settings=settings)
    assert_nothing_cached(cache_dir)


def test_auth_registry(
    auth_registry: Registry, cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = plugin_copy("python-hash-vectorizer", tmp_path / "p", "auth")
    reference = auth_registry.ref("private/hash", "1.0")
    with pytest.raises(RegistryError, match="needs credentials"):
        push_plugin(source, reference)
    monkeypatch.setenv("WEAVIATE_EXT_REGISTRY_USERNAME", "user")
    monkeypatch.setenv("WEAVIATE_EXT_REGISTRY_PASSWORD", "wrong-password-123")
    with pytest.raises(RegistryError) as caught:
        push_plugin(source, reference)
    assert "refused the credentials of user 'user'" in str(caught.value)
    assert "wrong-password-123" not in str(caught.value) and repr(caught.value).count("wrong") == 0
    # the right password, from a docker config.json (base64 "auth")
    monkeypatch.delenv("WEAVIATE_EXT_REGISTRY_USERNAME")
    monkeypatch.delenv("WEAVIATE_EXT_REGISTRY_PASSWORD")
    docker = tmp_path / "home" / ".docker"
    docker.mkdir(parents=True)
    token = base64.b64encode(b"user:s3cret-pass").decode()
    (docker / "config.json").write_text(
        json.dumps({"auths": {auth_registry.host: {"auth": token}}})
    )
    pushed = push_plugin(source, reference)
    settings = settings_for(tmp_path, cache_dir, unsigned=True)
    assert pull(reference, settings=settings).digest == pushed.digest


def test_unreachable_registry_is_a_quick_clear_error(cache_dir: Path, tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RegistryError, match="cannot reach the registry"):
        pull(f"oci://127.0.0.1:{port}/x/y:1", settings=settings_for(tmp_path, cache_dir))
