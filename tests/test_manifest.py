"""Valid manifests: the product spec's example, the model built from it, positions, files."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from weaviate_ext.manifest import (
    API_VERSION,
    FRAMEWORK_NAME,
    KIND,
    Capabilities,
    ConfigField,
    Dependency,
    DirectoryGrant,
    Manifest,
    ManifestError,
    Resources,
    Secret,
    load_manifest,
    parse_manifest,
)
from weaviate_ext.manifest.model import Tls
from weaviate_ext.manifest.quantities import parse_cpu, parse_duration, parse_memory

MANIFESTS = Path(__file__).parent / "manifests"
PRODUCT_SPEC = (MANIFESTS / "product-spec.yaml").read_text(encoding="utf-8")

PYTHON_PLUGIN = """\
apiVersion: weaviate.io/v1
kind: Plugin
metadata:
  name: echo-vectorizer
  version: 0.3.1-rc.1+build.5
spec:
  type: vectorizer
  runtime: python
  entrypoint: echo_plugin.main:Plugin
  timeout: 500ms
  resources:
    memory: 1.5Gi
    cpu: 0.5
  capabilities:
    dimensions: 3
    deterministic: true
    normalized: true
    vendor: acme
  dependencies:
    - name: weaviate-ext
      version: ">=0.1 <1"
    - name: text-cleaner
      version: 1.x
  config:
    apiKey:
      type: string
      secret: true
      default: hunter2-secret
      description: The service's API key.
    retries:
      type: integer
      default: 3
  permissions:
    env: [HOME, API_TOKEN]
    directories:
      - host: ./data
        guest: /data
        mode: rw
"""


def test_product_spec_manifest_validates_as_written() -> None:
    manifest = parse_manifest(PRODUCT_SPEC)

    assert manifest.api_version == API_VERSION
    assert manifest.kind == KIND
    assert manifest.name == "plugin-name"
    assert manifest.version == "1.0.0"
    assert manifest.metadata.author == "Your Name"
    assert manifest.metadata.description == "Plugin description"
    spec = manifest.spec
    assert (spec.type, spec.runtime, spec.binary) == ("vectorizer", "wasm", "./plugin-binary.wasm")
    assert spec.dependencies == (Dependency("dependency-name", "^1.0.0", line=13),)
    assert spec.resources == Resources(memory=2 * 1024**3, cpu=1.0)
    assert spec.capabilities == Capabilities(dimensions=768, max_batch_size=100)
    assert spec.config == {
        "paramName": ConfigField(
            name="paramName", type="string", required=True, default="default-value", line=22
        )
    }
    assert manifest.path is None


def test_product_spec_with_check_files_when_the_binary_exists(tmp_path: Path) -> None:
    (tmp_path / "plugin.yaml").write_text(PRODUCT_SPEC, encoding="utf-8")
    (tmp_path / "plugin-binary.wasm").write_bytes(b"\0asm\1\0\0\0")

    manifest = load_manifest(tmp_path / "plugin.yaml")

    assert manifest.path == tmp_path / "plugin.yaml"
    assert manifest.directory == tmp_path
    assert manifest.binary_path == tmp_path / "plugin-binary.wasm"


def test_product_spec_with_check_files_when_the_binary_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "plugin.yaml"
    path.write_text(PRODUCT_SPEC, encoding="utf-8")

    with pytest.raises(ManifestError) as caught:
        load_manifest(path)

    assert str(caught.value) == (
        f"{path}:11: spec.binary: the file './plugin-binary.wasm' does not exist "
        f"in '{tmp_path.resolve()}'"
    )


def test_load_manifest_without_check_files_ignores_the_binary(tmp_path: Path) -> None:
    path = tmp_path / "plugin.yaml"
    path.write_text(PRODUCT_SPEC, encoding="utf-8")
    assert load_manifest(path, check_files=False).name == "plugin-name"


def test_load_manifest_accepts_a_string_path_and_names_it_as_given(tmp_path: Path) -> None:
    path = tmp_path / "plugin.yaml"
    path.write_text(PRODUCT_SPEC.replace("vectorizer  #", "vectoriser  #"), encoding="utf-8")
    with pytest.raises(ManifestError) as caught:
        load_manifest(os.fspath(path), check_files=False)
    assert str(caught.value).startswith(f"{path}:9: spec.type: 'vectoriser' is not one of")


def test_every_optional_field_is_built() -> None:
    manifest = parse_manifest(PYTHON_PLUGIN)
    spec = manifest.spec

    assert manifest.version == "0.3.1-rc.1+build.5"
    assert spec.entrypoint == "echo_plugin.main:Plugin"
    assert spec.timeout == 0.5
    assert spec.resources == Resources(memory=math.ceil(1.5 * 1024**3), cpu=0.5)
    assert spec.capabilities.dimensions == 3
    assert spec.capabilities.max_batch_size is None
    assert spec.capabilities.deterministic is True
    assert spec.capabilities.normalized is True
    assert dict(spec.capabilities.extra) == {"vendor": "acme"}
    assert [d.name for d in spec.dependencies] == [FRAMEWORK_NAME, "text-cleaner"]
    assert spec.config["retries"].default == 3
    assert spec.config["retries"].required is False
    assert spec.config["apiKey"].description == "The service's API key."
    assert spec.permissions.env == ("HOME", "API_TOKEN")
    assert spec.permissions.directories == (DirectoryGrant("./data", "/data", "rw"),)


def test_a_secret_default_is_held_redacted() -> None:
    manifest = parse_manifest(PYTHON_PLUGIN)
    default = manifest.spec.config["apiKey"].default

    assert isinstance(default, Secret)
    assert default.reveal() == "hunter2-secret"
    assert "hunter2" not in repr(manifest)
    assert "hunter2" not in str(manifest.spec.config)


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("./server --port 5001", ("./server", "--port", "5001")),
        ("\"'my server' -v\"", ("my server", "-v")),
        ('["./server", "--flag with space"]', ("./server", "--flag with space")),
    ],
)
def test_command_is_split_like_a_shell(command: str, expected: tuple[str, ...]) -> None:
    text = PRODUCT_SPEC.replace("runtime: wasm", "runtime: grpc").replace(
        "binary: ./plugin-binary.wasm", f"command: {command}"
    )
    assert parse_manifest(text).spec.command == expected


def test_grpc_address_and_sha256() -> None:
    digest = "AB" * 32
    text = PRODUCT_SPEC.replace(
        "binary: ./plugin-binary.wasm",
        f"binary: bin/plugin.so\n  sha256: {digest}\n  address: localhost:50051",
    )
    spec = parse_manifest(text).spec
    assert spec.sha256 == digest.lower()
    assert spec.address == "localhost:50051"
    assert spec.binary == "bin/plugin.so"


TLS_REMOTE = """\
apiVersion: weaviate.io/v1
kind: Plugin
metadata: {name: remote, version: 1.0.0}
spec:
  type: reranker
  runtime: grpc
  address: dns:///rerankers.internal:50051
"""


def test_tls_fields_are_parsed() -> None:
    text = TLS_REMOTE + (
        "  tls:\n    ca: certs/ca.pem\n    cert: certs/client.pem\n"
        "    key: certs/client.key\n    serverName: rerank.plugins.test\n"
    )
    tls = parse_manifest(text).spec.tls
    assert tls == Tls(
        ca="certs/ca.pem",
        cert="certs/client.pem",
        key="certs/client.key",
        server_name="rerank.plugins.test",
    )
    assert parse_manifest(TLS_REMOTE + "  tls: {}\n").spec.tls == Tls()
    assert parse_manifest(TLS_REMOTE).spec.tls is None


def test_tls_files_are_checked_like_the_binary(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_text("pem")
    manifest = tmp_path / "plugin.yaml"
    manifest.write_text(TLS_REMOTE + "  tls:\n    ca: certs/ca.pem\n")
    assert load_manifest(manifest).spec.tls == Tls(ca="certs/ca.pem")
    manifest.write_text(TLS_REMOTE + "  tls: {ca: certs/missing.pem, cert: certs, key: k}\n")
    with pytest.raises(ManifestError) as caught:
        load_manifest(manifest)
    text = str(caught.value)
    assert "spec.tls.ca: the file 'certs/missing.pem' does not exist" in text
    assert "spec.tls.cert: 'certs' is not a regular file" in text
    assert "spec.tls.key: the file 'k' does not exist" in text
    outside = tmp_path.parent / f"{tmp_path.name}-outside.pem"
    outside.write_text("pem")
    (tmp_path / "certs" / "link.pem").symlink_to(outside)
    manifest.write_text(TLS_REMOTE + "  tls: {ca: certs/link.pem}\n")
    with pytest.raises(ManifestError, match=r"spec.tls.ca: 'certs/link.pem' points outside"):
        load_manifest(manifest)
    assert load_manifest(manifest, check_files=False).spec.tls == Tls(ca="certs/link.pem")
    outside.unlink()


def test_tls_errors_name_the_field() -> None:
    def error(tls: str) -> str:
        with pytest.raises(ManifestError) as caught:
            parse_manifest(TLS_REMOTE + f"  tls: {tls}\n")
        return str(caught.value)

    assert error("{cert: c.pem}") == (
        "plugin.yaml:8: spec.tls.cert: 'cert' needs 'key' too (give both or neither)"
    )
    assert error("{key: k.pem}") == (
        "plugin.yaml:8: spec.tls.key: 'key' needs 'cert' too (give both or neither)"
    )
    assert error("{ca: ../ca.pem}") == (
        "plugin.yaml:8: spec.tls.ca: '../ca.pem' leaves the plugin directory ('..' is not allowed)"
    )
    assert error("{ca: /etc/ssl/ca.pem}").startswith(
        "plugin.yaml:8: spec.tls.ca: '/etc/ssl/ca.pem' is an absolute path"
    )
    assert error("{serverName: 'a b'}") == (
        "plugin.yaml:8: spec.tls.serverName: 'a b' is not a host name like plugins.example.com"
    )
    assert error("{ca: x, crt: y}") == (
        "plugin.yaml:8: spec.tls.crt: unknown field 'crt' (did you mean 'cert'?)"
    )


def test_positions_give_the_line_of_every_field() -> None:
    manifest = parse_manifest(PRODUCT_SPEC)

    assert manifest.positions["apiVersion"] == 1
    assert manifest.positions["spec.type"] == 9
    assert manifest.positions["spec.dependencies.0"] == 13
    assert manifest.positions["spec.dependencies.0.version"] == 14
    assert manifest.positions["spec.config.paramName.default"] == 26
    assert manifest.line_of("spec.capabilities.maxBatchSize") == 20
    assert manifest.line_of("spec.capabilities.missing") == 18
    assert manifest.where("spec.resources.cpu") == "plugin.yaml:17"


def test_a_byte_order_mark_and_windows_line_ends_are_fine() -> None:
    text = "\ufeff" + PRODUCT_SPEC.replace("\n", "\r\n")
    manifest = parse_manifest(text.encode("utf-8"))
    assert manifest.name == "plugin-name"
    assert manifest.positions["spec.type"] == 9


def test_the_parsed_manifest_is_frozen_and_comparable() -> None:
    first = parse_manifest(PRODUCT_SPEC)
    second = parse_manifest(PRODUCT_SPEC.replace("# for vectorizers", ""))
    assert first == second
    assert isinstance(first, Manifest)
    with pytest.raises(AttributeError):
        first.metadata.name = "other"  # type: ignore[misc]


def test_symlinked_binary_inside_the_directory_is_fine(tmp_path: Path) -> None:
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "real.wasm").write_bytes(b"\0asm")
    (tmp_path / "plugin-binary.wasm").symlink_to(tmp_path / "build" / "real.wasm")
    (tmp_path / "plugin.yaml").write_text(PRODUCT_SPEC, encoding="utf-8")
    assert load_manifest(tmp_path / "plugin.yaml").spec.binary == "./plugin-binary.wasm"


def test_parse_manifest_with_a_path_checks_files_against_its_directory(tmp_path: Path) -> None:
    (tmp_path / "plugin-binary.wasm").write_bytes(b"\0asm")
    manifest = parse_manifest(PRODUCT_SPEC, path=tmp_path / "plugin.yaml", check_files=True)
    assert manifest.directory == tmp_path


# -- dependencies -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("range_", "inside", "outside"),
    [
        ("^1.0.0", ["1.0.0", "1.4.2", "1.99.0"], ["0.9.9", "2.0.0", "1.0.0-rc.1"]),
        ("~1.2", ["1.2.0", "1.2.9"], ["1.3.0", "1.1.9", "2.2.0"]),
        (">=1.0 <2", ["1.0.0", "1.9.9"], ["0.9.0", "2.0.0"]),
        ("1.x", ["1.0.0", "1.7.3"], ["0.1.0", "2.0.0"]),
        ("*", ["0.0.1", "9.9.9"], []),
    ],
)
def test_dependency_ranges_match_like_npm(
    range_: str, inside: list[str], outside: list[str]
) -> None:
    text = PRODUCT_SPEC.replace('"^1.0.0"', f'"{range_}"')
    (dependency,) = parse_manifest(text).spec.dependencies
    assert dependency.version == range_
    for version in inside:
        assert dependency.matches(version), version
    for version in outside:
        assert not dependency.matches(version), version


def test_dependency_on_the_framework_itself_is_allowed() -> None:
    text = PRODUCT_SPEC.replace("name: dependency-name", f"name: {FRAMEWORK_NAME}")
    (dependency,) = parse_manifest(text).spec.dependencies
    assert dependency.name == FRAMEWORK_NAME
    assert dependency.matches("1.2.3")


# -- quantities ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, 1),
        (1048576, 1048576),
        ("1048576", 1048576),
        ("512Mi", 512 * 2**20),
        ("2Gi", 2 * 2**30),
        ("1.5Gi", 3 * 2**29),
        ("1G", 10**9),
        ("1k", 1000),
        ("1K", 1000),
        ("1Ki", 1024),
        ("3Ti", 3 * 2**40),
        ("1Pi", 2**50),
        ("1P", 10**15),
        ("1e9", 10**9),
        ("1E3", 1000),
        (" 64Mi ", 64 * 2**20),
        (2.5, 3),
    ],
)
def test_parse_memory(value: object, expected: int) -> None:
    assert parse_memory(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "memory must be more than 0, got 0"),
        ("0", "memory must be more than 0, got '0'"),
        (-1, "memory must be more than 0, got -1"),
        ("-2Gi", "memory must be more than 0, got '-2Gi'"),
        ("2Ei", "memory '2Ei' is more than the limit of 1Pi (1 PiB)"),
        (2**51, "is more than the limit of 1Pi"),
        ("1e99", "is more than the limit of 1Pi"),
        ("1e-3", "memory must be at least 1 byte, got '1e-3'"),
        ("0.5", "memory must be at least 1 byte, got '0.5'"),
        ("2GB", "'2GB' is not a memory quantity like 512Mi, 2Gi, 1G or a number of bytes"),
        ("500m", "did you mean '500Mi'?"),
        ("", "is not a memory quantity"),
        ("Gi", "is not a memory quantity"),
        (True, "expected a memory quantity like 512Mi, 2Gi, 1G or a number of bytes, got True"),
        (None, "expected a memory quantity"),
        (float("nan"), "memory must be a finite number, got nan"),
        (float("inf"), "memory must be a finite number, got inf"),
    ],
)
def test_parse_memory_refuses(value: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_memory(value)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("500m", 0.5),
        ("1000m", 1.0),
        ("1m", 0.001),
        (2, 2.0),
        ("2", 2.0),
        (0.5, 0.5),
        ("0.5", 0.5),
        (".25", 0.25),
        ("1024", 1024.0),
    ],
)
def test_parse_cpu(value: object, expected: float) -> None:
    assert parse_cpu(value) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "cpu must be more than 0, got 0"),
        ("0m", "cpu must be more than 0, got '0m'"),
        (-1, "cpu must be more than 0, got -1"),
        ("-500m", "cpu must be more than 0, got '-500m'"),
        (0.0001, "cpu must be at least 1m (0.001 cores), got 0.0001"),
        ("1025", "cpu '1025' is more than the limit of 1024 cores"),
        ("2000000m", "is more than the limit of 1024 cores"),
        ("2 cores", "'2 cores' is not a cpu quantity like 500m, 2 or 0.5"),
        ("1Gi", "is not a cpu quantity"),
        (False, "expected a cpu quantity like 500m, 2 or 0.5, got False"),
        (float("nan"), "cpu must be a finite number, got nan"),
    ],
)
def test_parse_cpu_refuses(value: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_cpu(value)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("500ms", 0.5),
        ("30s", 30.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1.5s", 1.5),
        ("45", 45.0),
        (10, 10.0),
        (0.25, 0.25),
        ("24h", 86400.0),
    ],
)
def test_parse_duration(value: object, expected: float) -> None:
    assert parse_duration(value) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "duration must be more than 0, got 0"),
        ("0s", "duration must be more than 0, got '0s'"),
        ("-5s", "duration must be more than 0, got '-5s'"),
        ("25h", "duration '25h' is more than the limit of one day"),
        ("3d", "'3d' is not a duration like 500ms, 30s, 2m, 1h or a number of seconds"),
        ("1m30s", "is not a duration"),
        ([], "expected a duration"),
        (float("inf"), "duration must be a finite number, got inf"),
    ],
)
def test_parse_duration_refuses(value: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(value)
    assert message in str(caught.value)
