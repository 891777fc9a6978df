"""References, credentials and the artifact format's refusals (no registry needed)."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
from helpers import EXAMPLES

from weaviate_ext.errors import ArtifactIntegrityError, ConfigError, RegistryError
from weaviate_ext.registry.artifact import (
    ARTIFACT_TYPE,
    CONFIG_MEDIA_TYPE,
    build_artifact,
    canonical_json,
    read_artifact_manifest,
)
from weaviate_ext.registry.client import RegistryClient
from weaviate_ext.registry.credentials import find_credentials
from weaviate_ext.registry.reference import is_loopback, parse_reference
from weaviate_ext.registry.settings import RegistrySettings

DIGEST = "sha256:" + "a" * 64


def test_parse_reference_forms() -> None:
    ref = parse_reference("oci://127.0.0.1:5000/plugins/echo:1.0")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        "127.0.0.1:5000",
        "plugins/echo",
        "1.0",
        None,
    )
    assert ref.docker_reference == "127.0.0.1:5000/plugins/echo"
    assert str(parse_reference("oci://r.example/a/b")) == "oci://r.example/a/b:latest"
    pinned = parse_reference(f"oci://r.example/a@{DIGEST}")
    assert (pinned.tag, pinned.digest, pinned.ref) == (None, DIGEST, DIGEST)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("127.0.0.1/x:1", "not an oci:// reference"),
        ("oci://host-only", "expected oci://"),
        ("oci://h/Upper:1", "not a valid repository path component"),
        ("oci://h/a/../b:1", "not a valid repository path component"),
        ("oci://h/a:bad tag", "not a valid tag"),
        ("oci://h/a@sha256:1234", "not a digest"),
        ("oci://h:99999/a:1", "out of range"),
    ],
)
def test_parse_reference_errors(text: str, problem: str) -> None:
    with pytest.raises(RegistryError, match=problem) as caught:
        parse_reference(text)
    assert "\n" not in str(caught.value)


def test_plain_http_only_for_loopback_or_insecure() -> None:
    assert is_loopback("127.0.0.1:5000") and is_loopback("127.5.6.7") and is_loopback("[::1]:80")
    assert is_loopback("localhost:5000") and not is_loopback("registry.example:5000")
    assert RegistryClient("127.0.0.1:5000").base.startswith("http://")
    assert RegistryClient("registry.example", credentials=False).base.startswith("https://")
    assert RegistryClient("registry.example", insecure=True).base.startswith("http://")
    settings = RegistrySettings.from_data({"insecure": ["registry.internal:5000"]}, Path("."))
    assert settings.is_insecure("registry.internal:5000")
    assert not settings.is_insecure("registry.example")


def test_credentials_lookup_order(tmp_path: Path) -> None:
    def auth_file(path: Path, user: str, password: str) -> Path:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"auths": {"reg.example": {"auth": token}}}))
        return path

    home = tmp_path / "home"
    env = {"HOME": str(home)}
    assert find_credentials("reg.example", env) is None
    auth_file(home / ".docker" / "config.json", "docker", "p1")
    assert find_credentials("reg.example", env).username == "docker"  # type: ignore[union-attr]
    auth_file(home / ".config" / "containers" / "auth.json", "podman", "p2")
    assert find_credentials("reg.example", env).username == "podman"  # type: ignore[union-attr]
    env["REGISTRY_AUTH_FILE"] = str(auth_file(tmp_path / "explicit.json", "explicit", "p3"))
    found = find_credentials("reg.example", env)
    assert found is not None and found.username == "explicit" and found.password == "p3"
    assert "p3" not in repr(found) and "p3" not in str(found)
    env |= {"WEAVIATE_EXT_REGISTRY_USERNAME": "env", "WEAVIATE_EXT_REGISTRY_PASSWORD": "p4"}
    assert find_credentials("reg.example", env).username == "env"  # type: ignore[union-attr]
    assert find_credentials("other.example", {"HOME": str(home)}) is None


def _manifest(title: str) -> bytes:
    return canonical_json(
        {
            "schemaVersion": 2,
            "artifactType": ARTIFACT_TYPE,
            "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": DIGEST, "size": 2},
            "layers": [
                {
                    "mediaType": "application/octet-stream",
                    "digest": DIGEST,
                    "size": 1,
                    "annotations": {"org.opencontainers.image.title": title},
                }
            ],
        }
    )


@pytest.mark.parametrize("title", ["../evil", "/etc/passwd", "a/../../b", "a//b", "a\\b", ""])
def test_unpack_refuses_paths_outside(title: str) -> None:
    with pytest.raises(ArtifactIntegrityError, match="refusing the file path|no org"):
        read_artifact_manifest(_manifest(title), "oci://h/x:1")


def test_not_a_plugin_artifact_and_size_caps() -> None:
    other = json.loads(_manifest("ok"))
    other["artifactType"] = "application/vnd.example.other"
    with pytest.raises(ArtifactIntegrityError, match="not a weaviate-ext plugin artifact"):
        read_artifact_manifest(canonical_json(other), "oci://h/x:1")
    huge = json.loads(_manifest("ok"))
    huge["layers"][0]["size"] = 1 << 40
    with pytest.raises(ArtifactIntegrityError, match="over the cap"):
        read_artifact_manifest(canonical_json(huge), "oci://h/x:1")
    assert read_artifact_manifest(_manifest("src/ok.py"), "w").layers[0].path == "src/ok.py"


def test_symlink_escaping_the_directory_is_refused(tmp_path: Path) -> None:
    plugin = tmp_path / "plugin"
    shutil.copytree(EXAMPLES / "python-hash-vectorizer", plugin)
    (tmp_path / "secret.txt").write_text("not for the registry")
    (plugin / "leak.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(RegistryError, match="symlink points outside"):
        build_artifact(plugin)
    (plugin / "leak.txt").unlink()
    (plugin / "inside.txt").symlink_to(plugin / "README.md")
    assert any(
        la.annotations["org.opencontainers.image.title"] == "inside.txt"
        for la in build_artifact(plugin).layers
    )


def test_registry_section_errors() -> None:
    with pytest.raises(ConfigError, match="unknown key 'polcy'"):
        RegistrySettings.from_data({"polcy": {}}, Path("."))
    with pytest.raises(ConfigError, match="not a size"):
        RegistrySettings.from_data({"cache": {"maxSize": "lots"}}, Path("."))
    settings = RegistrySettings.from_data({"cache": {"dir": "c", "maxSize": "1Mi"}}, Path("/h"))
    assert settings.cache().root == Path("/h/c") and settings.cache().max_size == 1024 * 1024
