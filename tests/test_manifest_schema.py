"""The JSON Schema of a manifest: shipped twice, identical, and agreeing with the parser."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from weaviate_ext.manifest import (
    CONFIG_TYPES,
    PLUGIN_TYPES,
    ManifestError,
    manifest_schema,
    parse_manifest,
    quantities,
)

ROOT = Path(__file__).parent.parent
PACKAGE_SCHEMA = ROOT / "weaviate_ext" / "manifest" / "manifest.schema.json"
HOOKSPECS_SCHEMA = ROOT / "hookspecs" / "plugin-manifest.schema.json"
PRODUCT_SPEC = (Path(__file__).parent / "manifests" / "product-spec.yaml").read_text("utf-8")


def test_the_two_schema_files_are_byte_identical() -> None:
    assert PACKAGE_SCHEMA.read_bytes() == HOOKSPECS_SCHEMA.read_bytes()


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = manifest_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema == json.loads(HOOKSPECS_SCHEMA.read_text("utf-8"))


def test_manifest_schema_returns_a_fresh_copy() -> None:
    first = manifest_schema()
    first["properties"].clear()
    assert manifest_schema()["properties"]


def test_the_schema_lists_the_model_constants() -> None:
    spec = manifest_schema()["$defs"]["spec"]["properties"]
    assert tuple(spec["type"]["enum"]) == PLUGIN_TYPES
    config_field = manifest_schema()["$defs"]["configField"]["properties"]
    assert tuple(config_field["type"]["enum"]) == CONFIG_TYPES


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every subschema (dict) of a schema."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def test_every_pattern_says_what_it_expects() -> None:
    for sub in walk(manifest_schema()):
        if "pattern" in sub or "anyOf" in sub:
            assert sub.get("x-expected"), sub


def test_quantity_texts_match_the_parsers() -> None:
    resources = manifest_schema()["$defs"]["spec"]["properties"]["resources"]["properties"]
    assert resources["memory"]["x-expected"] == quantities.MEMORY_EXPECTED
    assert resources["cpu"]["x-expected"] == quantities.CPU_EXPECTED
    timeout = manifest_schema()["$defs"]["spec"]["properties"]["timeout"]
    assert timeout["x-expected"] == quantities.DURATION_EXPECTED


# -- the corpus: the bare schema and the parser agree --------------------------------


class Case(NamedTuple):
    """One corpus manifest.

    ``only`` is ``""`` when schema and parser must agree; ``"semantic"`` when only the
    parser can see the problem (the schema accepts it); ``"yaml"`` when the problem is
    one ``yaml.safe_load`` hides (duplicate keys, aliases).
    """

    name: str
    text: str
    valid: bool
    only: str = ""


def edit(old: str, new: str) -> str:
    """The product spec with ``old`` replaced by ``new`` (``old`` must be there)."""
    assert old in PRODUCT_SPEC, old
    return PRODUCT_SPEC.replace(old, new, 1)


def spec_line(line: str) -> str:
    """The product spec with one more line under ``spec:``."""
    return edit("  binary: ./plugin-binary.wasm\n", f"  binary: ./plugin-binary.wasm\n{line}\n")


MINIMAL = """\
apiVersion: weaviate.io/v1
kind: Plugin
metadata: {name: p, version: 0.0.1}
spec: {type: auth, runtime: python, entrypoint: "pkg.mod:Auth"}
"""

EVERYTHING = """\
apiVersion: weaviate.io/v1
kind: Plugin
metadata:
  name: all-fields-2
  version: 10.20.30-alpha.1+sha.5114f85
  author: A. Author
  description: Every field there is.
spec:
  type: generator
  runtime: my-runtime_2
  binary: lib/libgen.so
  entrypoint: gen:Generator
  command: ["./serve", "--port", "0"]
  address: unix:/run/gen.sock
  tls: {ca: certs/ca.pem, cert: certs/client.pem, key: certs/client.key, serverName: gen.test}
  sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
  timeout: 2m
  dependencies: []
  resources: {memory: 1048576, cpu: 0.25}
  capabilities: {maxBatchSize: 100000, deterministic: false, normalized: false, vendor: {a: 1}}
  config:
    s: {type: string, default: x, description: text}
    i: {type: integer, default: -3, required: true}
    n: {type: number, default: 0.5}
    b: {type: boolean, default: false, secret: true}
    a: {type: array, default: [1, "two"]}
    o: {type: object, default: {k: v}}
    ref: {type: integer, default: "${env:COUNT}"}
    _under-score: {type: string}
  permissions:
    env: [HOME, API_TOKEN]
    directories: [{host: ./data, guest: /data}, {host: /tmp, guest: /scratch, mode: rw}]
"""

CORPUS: list[Case] = [
    # valid
    Case("product spec", PRODUCT_SPEC, True),
    Case("minimal python plugin", MINIMAL, True),
    Case("every field", EVERYTHING, True),
    *(
        Case(f"type {kind}", edit("type: vectorizer", f"type: {kind}"), True)
        for kind in PLUGIN_TYPES
    ),
    *(
        Case(f"runtime {runtime}", edit("runtime: wasm", f"runtime: {runtime}"), True)
        for runtime in ("python", "grpc", "native", "x", "wasm-2_b")
    ),
    *(
        Case(f"memory {memory!r}", edit('memory: "2Gi"', f"memory: {memory}"), True)
        for memory in ("512Mi", "1G", "1.5Gi", "1e9", "100k", "1048576", "1", 2**50, "1Pi")
    ),
    *(
        Case(f"cpu {cpu!r}", edit('cpu: "1000m"', f"cpu: {cpu}"), True)
        for cpu in ("500m", "2", "0.5", 2, 0.5, 1024, "1m")
    ),
    *(
        Case(f"timeout {timeout!r}", spec_line(f"  timeout: {timeout}"), True)
        for timeout in ("500ms", "30s", "2m", "1h", 0.5, 86400, '"10"')
    ),
    Case("command string", spec_line("  command: ./server --port 1"), True),
    Case("sha256 upper case", spec_line("  sha256: " + "AB" * 32), True),
    Case("version with build", edit("version: 1.0.0", "version: 1.0.0+20240101"), True),
    Case(
        "no dependencies",
        edit('    - name: dependency-name\n      version: "^1.0.0"\n', "").replace(
            "  dependencies:\n", ""
        ),
        True,
    ),
    Case("range ~1.2", edit('"^1.0.0"', '"~1.2"'), True),
    Case("range >=1.0 <2", edit('"^1.0.0"', '">=1.0 <2"'), True),
    Case("range 1.x", edit('"^1.0.0"', "1.x"), True),
    Case("depends on the framework", edit("dependency-name", "weaviate-ext"), True),
    Case("tls empty", spec_line("  tls: {}"), True),
    Case("tls ca only", spec_line("  tls: {ca: certs/ca.pem}"), True),
    Case("tls server name", spec_line("  tls: {ca: ca.pem, serverName: plugin.example.com}"), True),
    Case("tls mutual", spec_line("  tls: {ca: ca.pem, cert: client.pem, key: client.key}"), True),
    Case("63 character name", edit("name: plugin-name", "name: " + "a" * 63), True),
    # invalid, for both
    Case("apiVersion v2", edit("weaviate.io/v1", "weaviate.io/v2"), False),
    Case("kind wrong", edit("kind: Plugin", "kind: plugin"), False),
    Case("no metadata", MINIMAL.replace("metadata: {name: p, version: 0.0.1}\n", ""), False),
    Case(
        "no spec",
        MINIMAL.replace('spec: {type: auth, runtime: python, entrypoint: "pkg.mod:Auth"}\n', ""),
        False,
    ),
    Case("no type", MINIMAL.replace("type: auth, ", ""), False),
    Case("no runtime", MINIMAL.replace("runtime: python, ", ""), False),
    Case("unknown top field", PRODUCT_SPEC + "extra: 1\n", False),
    Case("unknown spec field", spec_line("  binray: x"), False),
    Case("unknown metadata field", edit("  author:", "  autor:"), False),
    Case("type vectoriser", edit("type: vectorizer", "type: vectoriser"), False),
    Case("runtime upper case", edit("runtime: wasm", "runtime: WASM"), False),
    Case("runtime empty", edit("runtime: wasm", 'runtime: ""'), False),
    Case("runtime number", edit("runtime: wasm", "runtime: 5"), False),
    Case("name upper case", edit("name: plugin-name", "name: Plugin"), False),
    Case("name 64 characters", edit("name: plugin-name", "name: " + "a" * 64), False),
    Case("name with a dot", edit("name: plugin-name", "name: a.b"), False),
    Case("name with a newline", edit("name: plugin-name", 'name: "plugin\\n"'), False),
    Case("version float", edit("version: 1.0.0", "version: 1.0"), False),
    Case("version v prefix", edit("version: 1.0.0", "version: v1.0.0"), False),
    Case("version newline", edit("version: 1.0.0", 'version: "1.0.0\\n"'), False),
    Case("version leading zero", edit("version: 1.0.0", "version: 01.0.0"), False),
    Case("entrypoint a whole module", MINIMAL.replace("pkg.mod:Auth", "pkg.mod.Auth"), True),
    Case("entrypoint empty object", MINIMAL.replace("pkg.mod:Auth", "pkg.mod:"), False),
    Case("entrypoint with spaces", MINIMAL.replace("pkg.mod:Auth", "'pkg mod:Auth'"), False),
    Case("binary with a control character", edit("./plugin-binary.wasm", '"bin\\0x"'), False),
    Case("binary empty", edit("./plugin-binary.wasm", '""'), False),
    Case("command empty list", spec_line("  command: []"), False),
    Case("command number", spec_line("  command: 5"), False),
    Case("command list of numbers", spec_line("  command: [1, 2]"), False),
    Case("sha256 short", spec_line("  sha256: abc"), False),
    Case("timeout negative", spec_line("  timeout: -1"), False),
    Case("timeout days", spec_line("  timeout: 3d"), False),
    Case("timeout over a day", spec_line("  timeout: 86401"), False),
    Case("timeout boolean", spec_line("  timeout: true"), False),
    Case(
        "dependencies mapping",
        edit('    - name: dependency-name\n      version: "^1.0.0"\n', "    dependency-name: ^1\n"),
        False,
    ),
    Case(
        "dependency without name",
        edit("    - name: dependency-name\n      version", "    - version"),
        False,
    ),
    Case(
        "dependency extra field",
        edit('version: "^1.0.0"', 'version: "^1.0.0"\n      optional: true'),
        False,
    ),
    Case("dependency bad name", edit("dependency-name", "Dependency_Name"), False),
    Case("dependency empty range", edit('"^1.0.0"', '""'), False),
    Case("dependency range number", edit('"^1.0.0"', "1"), False),
    Case("memory negative", edit('memory: "2Gi"', "memory: -1"), False),
    Case("memory negative string", edit('memory: "2Gi"', 'memory: "-2Gi"'), False),
    Case("memory words", edit('memory: "2Gi"', "memory: lots"), False),
    Case("memory milli", edit('memory: "2Gi"', "memory: 500m"), False),
    Case("memory zero", edit('memory: "2Gi"', "memory: 0"), False),
    Case("memory over 1Pi bytes", edit('memory: "2Gi"', f"memory: {2**50 + 1}"), False),
    Case("memory fraction of a byte count", edit('memory: "2Gi"', "memory: 1.5"), False),
    Case("memory boolean", edit('memory: "2Gi"', "memory: true"), False),
    Case("memory GB", edit('memory: "2Gi"', "memory: 2GB"), False),
    Case("cpu negative", edit('cpu: "1000m"', "cpu: -1"), False),
    Case("cpu words", edit('cpu: "1000m"', "cpu: 2 cores"), False),
    Case("cpu absurd", edit('cpu: "1000m"', "cpu: 2000"), False),
    Case("cpu zero", edit('cpu: "1000m"', "cpu: 0"), False),
    Case("cpu boolean", edit('cpu: "1000m"', "cpu: true"), False),
    Case("cpu infinite", edit('cpu: "1000m"', "cpu: .inf"), False),
    Case("resources gpu", edit('cpu: "1000m"', 'cpu: "1000m"\n    gpu: 1'), False),
    Case("dimensions zero", edit("dimensions: 768", "dimensions: 0"), False),
    Case("dimensions too many", edit("dimensions: 768", "dimensions: 65537"), False),
    Case("dimensions string", edit("dimensions: 768", 'dimensions: "768"'), False),
    Case("dimensions float", edit("dimensions: 768", "dimensions: 768.5"), False),
    Case("maxBatchSize zero", edit("maxBatchSize: 100", "maxBatchSize: 0"), False),
    Case("maxBatchSize too big", edit("maxBatchSize: 100", "maxBatchSize: 100001"), False),
    Case("deterministic string", edit("maxBatchSize: 100", "deterministic: sure"), False),
    Case(
        "capabilities list",
        edit(
            "    dimensions: 768  # for vectorizers\n    maxBatchSize: 100\n", "    - dimensions\n"
        ),
        False,
    ),
    Case("config key with a dot", edit("paramName:", "param.name:"), False),
    Case("config field without type", edit("      type: string\n", ""), False),
    Case("config type float", edit("type: string", "type: float"), False),
    Case("config required string", edit("required: true", "required: yes please"), False),
    Case("config field extra", edit("secret: false", "secret: false\n      hidden: true"), False),
    Case("config list", EVERYTHING.split("  config:")[0] + "  config: [a]\n", False),
    Case("permissions env string", spec_line("  permissions: {env: HOME}"), False),
    Case("permissions env bad name", spec_line("  permissions: {env: [1BAD]}"), False),
    Case("permissions env repeated", spec_line("  permissions: {env: [A, A]}"), False),
    Case(
        "directory mode rx",
        spec_line("  permissions: {directories: [{host: a, guest: b, mode: rx}]}"),
        False,
    ),
    Case("directory without guest", spec_line("  permissions: {directories: [{host: a}]}"), False),
    Case("permissions network", spec_line("  permissions: {network: true}"), True),
    Case("permissions network string", spec_line("  permissions: {network: 'yes'}"), False),
    Case("permissions unknown", spec_line("  permissions: {sockets: true}"), False),
    Case("max concurrency", spec_line("  maxConcurrency: 8"), True),
    Case("max concurrency 0", spec_line("  maxConcurrency: 0"), False),
    Case("max concurrency float", spec_line("  maxConcurrency: 1.5"), False),
    Case("tls string", spec_line("  tls: ca.pem"), False),
    Case("tls cert without key", spec_line("  tls: {ca: ca.pem, cert: client.pem}"), False),
    Case("tls key without cert", spec_line("  tls: {key: client.key}"), False),
    Case("tls unknown field", spec_line("  tls: {ca: ca.pem, insecure: true}"), False),
    Case("tls empty ca", spec_line('  tls: {ca: ""}'), False),
    Case("tls ca number", spec_line("  tls: {ca: 5}"), False),
    Case("tls server name with a space", spec_line("  tls: {serverName: 'a b'}"), False),
    Case("tls server name with a scheme", spec_line("  tls: {serverName: 'https://a'}"), False),
    # invalid, found only by the parser's own checks
    Case("memory 0 string", edit('memory: "2Gi"', 'memory: "0"'), False, "semantic"),
    Case("memory 5Ei", edit('memory: "2Gi"', "memory: 5Ei"), False, "semantic"),
    Case("memory 1e99", edit('memory: "2Gi"', "memory: 1e99"), False, "semantic"),
    Case("memory below a byte", edit('memory: "2Gi"', "memory: 1e-3"), False, "semantic"),
    Case("cpu 0m", edit('cpu: "1000m"', "cpu: 0m"), False, "semantic"),
    Case("cpu 2000000m", edit('cpu: "1000m"', "cpu: 2000000m"), False, "semantic"),
    Case("cpu nan", edit('cpu: "1000m"', "cpu: .nan"), False, "semantic"),
    Case("cpu below a millicore", edit('cpu: "1000m"', "cpu: 0.0001"), False, "semantic"),
    Case("timeout 0s", spec_line("  timeout: 0s"), False, "semantic"),
    Case("timeout 25h", spec_line("  timeout: 25h"), False, "semantic"),
    Case("range ^^1", edit('"^1.0.0"', '"^^1"'), False, "semantic"),
    Case("range latest", edit('"^1.0.0"', "latest"), False, "semantic"),
    Case("depends on itself", edit("dependency-name", "plugin-name"), False, "semantic"),
    Case(
        "same dependency twice",
        edit(
            'version: "^1.0.0"\n',
            'version: "^1.0.0"\n    - name: dependency-name\n      version: "*"\n',
        ),
        False,
        "semantic",
    ),
    Case("reserved name", edit("name: plugin-name", "name: weaviate-ext"), False, "semantic"),
    Case("default of the wrong type", edit("type: string", "type: integer"), False, "semantic"),
    Case("binary ..", edit("./plugin-binary.wasm", "../x.wasm"), False, "semantic"),
    Case("binary absolute", edit("./plugin-binary.wasm", "/x.wasm"), False, "semantic"),
    Case("tls ca ..", spec_line("  tls: {ca: ../ca.pem}"), False, "semantic"),
    Case("tls key absolute", spec_line("  tls: {cert: c.pem, key: /k.pem}"), False, "semantic"),
    Case("command of spaces", spec_line('  command: "   "'), False, "semantic"),
    Case("command unbalanced quote", spec_line("  command: 'a \"b'"), False, "semantic"),
    Case("capability misspelled", edit("maxBatchSize", "maxBatchsize"), False, "semantic"),
    # invalid, but yaml.safe_load hides it
    Case(
        "duplicate key", edit("  runtime: wasm", "  runtime: wasm\n  runtime: grpc"), False, "yaml"
    ),
    Case(
        "anchor and alias",
        edit('author: "Your Name"', "author: &a x\n  description: *a").replace(
            '  description: "Plugin description"\n', ""
        ),
        False,
        "yaml",
    ),
]


def schema_accepts(text: str) -> bool:
    """What a bare JSON Schema validator (as in an editor) says about ``text``."""
    schema = json.loads(HOOKSPECS_SCHEMA.read_text("utf-8"))
    return bool(Draft202012Validator(schema).is_valid(yaml.safe_load(text)))


def parser_accepts(text: str) -> bool:
    try:
        parse_manifest(text)
    except ManifestError:
        return False
    return True


def test_corpus_names_are_unique() -> None:
    names = [case.name for case in CORPUS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_schema_and_parser_agree_on_the_corpus(case: Case) -> None:
    assert parser_accepts(case.text) is case.valid
    if case.only:
        assert schema_accepts(case.text), "the schema should leave this to the parser"
    else:
        assert schema_accepts(case.text) is case.valid


# -- generated valid manifests pass both -----------------------------------------------

NAMES = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
VERSIONS = st.tuples(st.integers(0, 999), st.integers(0, 999), st.integers(0, 999)).map(
    lambda parts: ".".join(map(str, parts))
)
MEMORY = st.one_of(
    st.integers(1, 2**40),
    st.tuples(st.integers(1, 1023), st.sampled_from(["Ki", "Mi", "Gi", "k", "M", "G", ""])).map(
        lambda pair: f"{pair[0]}{pair[1]}"
    ),
)
CPU = st.one_of(
    st.integers(1, 1024),
    st.integers(1, 64000).map(lambda n: f"{n}m"),
    st.sampled_from(["0.5", "2", "0.25", 0.5]),
)
RANGES = st.sampled_from(["^1.0.0", "~1.2", ">=1.0 <2", "1.x", "*", "^0.3.1", "1.2.3 - 2.0"])


@st.composite
def valid_manifests(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(NAMES)
    dependencies = draw(st.lists(NAMES.filter(lambda n: n != name), unique=True, max_size=3))
    return {
        "apiVersion": "weaviate.io/v1",
        "kind": "Plugin",
        "metadata": {"name": name, "version": draw(VERSIONS)},
        "spec": {
            "type": draw(st.sampled_from(PLUGIN_TYPES)),
            "runtime": draw(st.sampled_from(["python", "wasm", "grpc", "native"])),
            "binary": draw(st.from_regex(r"[a-z]{1,8}(/[a-z]{1,8}){0,2}\.wasm", fullmatch=True)),
            "dependencies": [{"name": d, "version": draw(RANGES)} for d in dependencies],
            "resources": {"memory": draw(MEMORY), "cpu": draw(CPU)},
            "capabilities": {
                "dimensions": draw(st.integers(1, 65536)),
                "maxBatchSize": draw(st.integers(1, 100000)),
            },
        },
    }


@settings(max_examples=150, deadline=None)
@given(valid_manifests())
def test_generated_valid_manifests_pass_schema_and_parser(data: dict[str, Any]) -> None:
    text = yaml.safe_dump(data, sort_keys=False)
    assert schema_accepts(text)
    manifest = parse_manifest(text)
    assert manifest.name == data["metadata"]["name"]
    assert manifest.spec.resources.memory == quantities.parse_memory(
        data["spec"]["resources"]["memory"]
    )
    assert [d.name for d in manifest.spec.dependencies] == [
        d["name"] for d in data["spec"]["dependencies"]
    ]
