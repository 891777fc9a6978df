"""Bad manifests: every one is a ManifestError with ``file:line: field: message``."""

from __future__ import annotations

import os
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from weaviate_ext.manifest import ManifestError, Problem, load_manifest, parse_manifest

MANIFESTS = Path(__file__).parent / "manifests"
PRODUCT_SPEC = (MANIFESTS / "product-spec.yaml").read_text(encoding="utf-8")
TYPES = "vectorizer, transformer, reranker, generator, storage, auth"


def error_of(text: str | bytes, filename: str = "plugin.yaml", **kwargs: Any) -> str:
    """The message of the ManifestError that parsing ``text`` raises."""
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text, filename, **kwargs)
    return str(caught.value)


def changed(old: str, new: str) -> str:
    """The product-spec manifest with one piece of text replaced."""
    assert old in PRODUCT_SPEC, old
    return PRODUCT_SPEC.replace(old, new, 1)


# -- the shape of an error ----------------------------------------------------------


def test_the_message_names_file_line_and_field() -> None:
    message = error_of(changed("type: vectorizer", "type: vectoriser"), "plugin.yaml")
    assert message == f"plugin.yaml:9: spec.type: 'vectoriser' is not one of {TYPES}"


def test_the_error_lists_problems_with_their_parts() -> None:
    text = changed("type: vectorizer", "type: vectoriser").replace("kind: Plugin", "kind: Plug")
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text, "plugins/x/plugin.yaml")
    assert caught.value.problems == (
        Problem("plugins/x/plugin.yaml", 2, "kind", "must be 'Plugin', got 'Plug'"),
        Problem("plugins/x/plugin.yaml", 9, "spec.type", f"'vectoriser' is not one of {TYPES}"),
    )


def test_problems_are_sorted_by_line_and_all_reported() -> None:
    text = (
        changed('cpu: "1000m"', "cpu: -1")
        .replace("maxBatchSize: 100", "maxBatchSize: 0")
        .replace("weaviate.io/v1", "weaviate.io/v2")
        .replace("  author:", "  autor:")
    )
    lines = error_of(text).splitlines()
    assert lines == [
        "plugin.yaml:1: apiVersion: must be 'weaviate.io/v1', got 'weaviate.io/v2'",
        "plugin.yaml:6: metadata.autor: unknown field 'autor' (did you mean 'author'?)",
        "plugin.yaml:17: spec.resources.cpu: cpu must be more than 0, got -1",
        "plugin.yaml:20: spec.capabilities.maxBatchSize: maxBatchSize must be at least 1, got 0",
    ]


# -- issue point 3, one by one ------------------------------------------------------


def test_empty_file() -> None:
    assert error_of("") == (
        "plugin.yaml:1: the file is empty; expected a mapping with apiVersion, kind, "
        "metadata and spec"
    )
    assert error_of("# only a comment\n\n").startswith("plugin.yaml:1: the file is empty")
    assert error_of("---\n").startswith("plugin.yaml:1: the file is empty")


@pytest.mark.parametrize(
    ("text", "kind"),
    [("- a\n- b\n", "a list"), ("just words\n", "a string"), ("42\n", "a int")],
)
def test_not_a_mapping(text: str, kind: str) -> None:
    assert error_of(text) == (
        "plugin.yaml:1: the top level must be a mapping with apiVersion, kind, metadata "
        f"and spec, not {kind}"
    )


def test_wrong_api_version() -> None:
    assert error_of(changed("weaviate.io/v1", "v2")) == (
        "plugin.yaml:1: apiVersion: must be 'weaviate.io/v1', got 'v2'"
    )


def test_wrong_kind() -> None:
    assert error_of(changed("kind: Plugin", "kind: Extension")) == (
        "plugin.yaml:2: kind: must be 'Plugin', got 'Extension'"
    )


def test_missing_fields() -> None:
    text = changed("  name: plugin-name\n", "").replace("kind: Plugin\n", "")
    assert error_of(text).splitlines() == [
        "plugin.yaml:1: missing required field 'kind'",
        "plugin.yaml:2: metadata: missing required field 'name'",
    ]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "dimensions: 768",
            "dimension: 768",
            "plugin.yaml:19: spec.capabilities.dimension: "
            "unknown field 'dimension' (did you mean 'dimensions'?)",
        ),
        (
            "  binary:",
            "  binray:",
            "plugin.yaml:11: spec.binray: unknown field 'binray' (did you mean 'binary'?)",
        ),
        (
            "      required: true",
            "      requird: true",
            "plugin.yaml:24: spec.config.paramName.requird: "
            "unknown field 'requird' (did you mean 'required'?)",
        ),
        (
            "  resources:",
            "  resource:",
            "plugin.yaml:15: spec.resource: unknown field 'resource' (did you mean 'resources'?)",
        ),
        (
            "kind: Plugin",
            "kind: Plugin\ncolour: blue",
            "plugin.yaml:3: colour: unknown field 'colour' "
            "(expected one of: apiVersion, kind, metadata, spec)",
        ),
    ],
)
def test_unknown_fields_with_did_you_mean(old: str, new: str, expected: str) -> None:
    assert error_of(changed(old, new)) == expected


def test_wrong_type_and_enum() -> None:
    assert error_of(changed("dimensions: 768", "dimensions: many")) == (
        "plugin.yaml:19: spec.capabilities.dimensions: expected an integer, got 'many'"
    )
    assert error_of(changed('author: "Your Name"', "author: 5")) == (
        "plugin.yaml:6: metadata.author: expected a string, got 5 (quote it to make it a string)"
    )
    assert error_of(changed("type: string", "type: text")) == (
        "plugin.yaml:23: spec.config.paramName.type: "
        "'text' is not one of string, integer, number, boolean, array, object"
    )


def test_alias_bomb_is_refused_fast_with_bounded_memory() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, 10):
        prev, this = chr(ord("a") + level - 1), chr(ord("a") + level)
        lines.append(f"{this}: &{this} [" + ",".join([f"*{prev}"] * 9) + "]")
    bomb = "\n".join(lines) + "\n"
    tracemalloc.start()
    started = time.perf_counter()
    try:
        message = error_of(bomb)
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert message == "plugin.yaml:1: YAML anchors (&a) are not allowed"
    assert elapsed < 1.0
    assert peak < 5 * 2**20


def test_an_alias_without_an_anchor_is_refused_too() -> None:
    assert error_of("apiVersion: *x\n") == "plugin.yaml:1: YAML aliases (*x) are not allowed"


def test_merge_keys_are_refused() -> None:
    assert error_of("metadata:\n  <<: {name: x}\n") == (
        "plugin.yaml:2: metadata: YAML merge keys (<<) are not allowed"
    )


def test_file_over_the_size_cap(tmp_path: Path) -> None:
    text = PRODUCT_SPEC + "#" + "x" * (256 * 1024) + "\n"
    size = len(text.encode())
    expected = f"the file is too large ({size} bytes; the limit is 262144)"
    assert error_of(text) == f"plugin.yaml:1: {expected}"
    path = tmp_path / "plugin.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    assert str(caught.value) == f"{path}:1: {expected}"


def test_binary_junk() -> None:
    junk = bytes(range(256)) * 4
    assert error_of(junk) == (
        "plugin.yaml:1: the file contains NUL bytes: it is binary data, not YAML"
    )
    assert error_of(b"apiVersion: x\nkind: \x07\n") == (
        "plugin.yaml:2: the file contains the control character U+0007, which YAML does not allow"
    )


def test_non_utf8() -> None:
    text = "apiVersion: weaviate.io/v1\nkind: Plugin\nmetadata:\n  author: Ren\xe9\n"
    assert error_of(text.encode("latin-1")) == (
        "plugin.yaml:4: the file is not UTF-8 text (byte 0xe9 at offset 63)"
    )
    assert error_of("a: b\n".encode("utf-16")).startswith("plugin.yaml:1: the file ")


def test_duplicate_keys_name_both_lines() -> None:
    text = changed("  runtime: wasm", "  runtime: wasm\n  type: storage")
    assert error_of(text) == (
        "plugin.yaml:11: spec.type: duplicate key 'type' (first at line 9, again at line 11)"
    )


def test_non_string_keys_and_unknown_tags() -> None:
    assert error_of("spec:\n  1: x\n") == (
        "plugin.yaml:2: spec: the key '1' is read as int, not a string (quote it)"
    )
    assert error_of("kind: !!python/object/apply:os.system [ls]\n") == (
        "plugin.yaml:1: kind: the YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' "
        "is not allowed"
    )
    assert error_of("kind: !custom x\n") == (
        "plugin.yaml:1: kind: the YAML tag '!custom' is not allowed"
    )


def test_yaml_syntax_error_has_the_line() -> None:
    text = changed("  cpu: ", "  cpu: [")
    assert error_of(text).startswith("plugin.yaml:18: invalid YAML: ")


def test_several_documents() -> None:
    assert error_of(PRODUCT_SPEC + "---\nkind: Plugin\n") == (
        "plugin.yaml:27: the file holds several YAML documents; expected one"
    )


def test_deep_nesting_is_refused() -> None:
    assert error_of("a: " + "[" * 5000) == (
        "plugin.yaml:1: the data is nested deeper than 32 levels"
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'memory: "2Gi"',
            'memory: "-2Gi"',
            "plugin.yaml:16: spec.resources.memory: memory must be more than 0, got '-2Gi'",
        ),
        (
            'memory: "2Gi"',
            "memory: -1",
            "plugin.yaml:16: spec.resources.memory: memory must be more than 0, got -1",
        ),
        (
            'memory: "2Gi"',
            'memory: "64Ei"',
            "plugin.yaml:16: spec.resources.memory: "
            "memory '64Ei' is more than the limit of 1Pi (1 PiB)",
        ),
        (
            'memory: "2Gi"',
            "memory: lots",
            "plugin.yaml:16: spec.resources.memory: "
            "'lots' is not a memory quantity like 512Mi, 2Gi, 1G or a number of bytes",
        ),
        (
            'cpu: "1000m"',
            "cpu: -2",
            "plugin.yaml:17: spec.resources.cpu: cpu must be more than 0, got -2",
        ),
        (
            'cpu: "1000m"',
            'cpu: "0"',
            "plugin.yaml:17: spec.resources.cpu: cpu must be more than 0, got '0'",
        ),
        (
            'cpu: "1000m"',
            "cpu: 100000",
            "plugin.yaml:17: spec.resources.cpu: cpu 100000 is more than the limit of 1024 cores",
        ),
        (
            'cpu: "1000m"',
            "cpu: .nan",
            "plugin.yaml:17: spec.resources.cpu: cpu must be a finite number, got nan",
        ),
    ],
)
def test_negative_or_absurd_resources(old: str, new: str, expected: str) -> None:
    assert error_of(changed(old, new)) == expected


def test_max_batch_size_zero() -> None:
    assert error_of(changed("maxBatchSize: 100", "maxBatchSize: 0")) == (
        "plugin.yaml:20: spec.capabilities.maxBatchSize: maxBatchSize must be at least 1, got 0"
    )


def test_dimensions_out_of_range() -> None:
    assert error_of(changed("dimensions: 768", "dimensions: 100000")) == (
        "plugin.yaml:19: spec.capabilities.dimensions: dimensions must be at most 65536, got 100000"
    )


def test_binary_leaving_the_directory() -> None:
    assert error_of(changed("./plugin-binary.wasm", "../x")) == (
        "plugin.yaml:11: spec.binary: '../x' leaves the plugin directory ('..' is not allowed)"
    )
    assert error_of(changed("./plugin-binary.wasm", "lib/../../x")).startswith(
        "plugin.yaml:11: spec.binary: 'lib/../../x' leaves the plugin directory"
    )


def test_absolute_binary() -> None:
    assert error_of(changed("./plugin-binary.wasm", "/usr/lib/plugin.wasm")) == (
        "plugin.yaml:11: spec.binary: '/usr/lib/plugin.wasm' is an absolute path; "
        "expected a path relative to the plugin directory"
    )


def test_symlink_out_of_the_directory(tmp_path: Path) -> None:
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    outside = tmp_path / "elsewhere.wasm"
    outside.write_bytes(b"\0asm")
    (plugin / "plugin-binary.wasm").symlink_to(outside)
    (plugin / "plugin.yaml").write_text(PRODUCT_SPEC, encoding="utf-8")
    with pytest.raises(ManifestError) as caught:
        load_manifest(plugin / "plugin.yaml")
    assert str(caught.value) == (
        f"{plugin / 'plugin.yaml'}:11: spec.binary: './plugin-binary.wasm' points outside "
        f"the plugin directory (to '{outside.resolve()}')"
    )


def test_binary_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "plugin-binary.wasm").mkdir()
    (tmp_path / "plugin.yaml").write_text(PRODUCT_SPEC, encoding="utf-8")
    with pytest.raises(ManifestError, match=r":11: spec.binary: .* is not a regular file"):
        load_manifest(tmp_path / "plugin.yaml")


def test_bad_version_range() -> None:
    assert error_of(changed('"^1.0.0"', '"^^1"')) == (
        "plugin.yaml:14: spec.dependencies.0.version: "
        "'^^1' is not an npm-style version range like ^1.0.0, ~1.2, >=1.0 <2 or 1.x"
    )


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (
            "banana",
            "'banana' is not a semantic version like 1.0.0 or 2.1.0-rc.1 "
            "(quote it if YAML reads it as a number)",
        ),
        ("1.0", "expected a string, got 1.0 (quote it to make it a string)"),
        ('"1.0"', "'1.0' is not a semantic version like 1.0.0"),
        ("01.0.0", "'01.0.0' is not a semantic version like 1.0.0"),
    ],
)
def test_bad_version(version: str, expected: str) -> None:
    assert error_of(changed("version: 1.0.0", f"version: {version}")).startswith(
        f"plugin.yaml:5: metadata.version: {expected}"
    )


def test_bad_names() -> None:
    expected = (
        "is not a DNS-label-like name: 1 to 63 lowercase letters, digits and '-', "
        "starting and ending with a letter or digit"
    )
    for name in ("Plugin_Name", "-lead", "trail-", "a.b"):
        assert error_of(changed("name: plugin-name", f"name: {name}")) == (
            f"plugin.yaml:4: metadata.name: '{name}' {expected}"
        )
    too_long = error_of(changed("name: plugin-name", "name: " + "x" * 64))
    assert too_long.startswith("plugin.yaml:4: metadata.name: 'xxxxx")
    assert too_long.endswith(f"... {expected}")
    assert error_of(changed("name: dependency-name", "name: Dep")) == (
        f"plugin.yaml:13: spec.dependencies.0.name: 'Dep' {expected}"
    )


def test_dependency_rules() -> None:
    assert error_of(changed("name: dependency-name", "name: plugin-name")) == (
        "plugin.yaml:13: spec.dependencies.0.name: the plugin 'plugin-name' cannot depend on itself"
    )
    twice = changed(
        '      version: "^1.0.0"\n',
        '      version: "^1.0.0"\n    - name: dependency-name\n      version: "2.x"\n',
    )
    assert error_of(twice) == (
        "plugin.yaml:15: spec.dependencies.1.name: "
        "duplicate dependency 'dependency-name' (first at line 13)"
    )
    assert error_of(changed('      version: "^1.0.0"\n', "")) == (
        "plugin.yaml:13: spec.dependencies.0: missing required field 'version'"
    )


def test_config_default_must_match_its_type() -> None:
    assert error_of(changed("type: string", "type: integer")) == (
        "plugin.yaml:26: spec.config.paramName.default: the default does not match the "
        "declared type 'integer': expected an integer, got a string ('default-value')"
    )
    assert error_of(
        changed('default: "default-value"', "default: true").replace(
            "type: string", "type: integer"
        )
    ) == (
        "plugin.yaml:26: spec.config.paramName.default: the default does not match the "
        "declared type 'integer': expected an integer, got a boolean (true)"
    )


def test_a_secret_default_of_the_wrong_type_is_not_shown() -> None:
    text = changed("secret: false", "secret: true").replace("type: string", "type: number")
    message = error_of(text)
    assert "default-value" not in message
    assert message.endswith("expected a number, got a string")


def test_config_default_may_be_a_reference_or_fit_a_wider_type() -> None:
    text = changed("type: string", "type: number").replace('default: "default-value"', "default: 3")
    assert parse_manifest(text).spec.config["paramName"].default == 3
    text = changed("type: string", "type: integer").replace(
        'default: "default-value"', 'default: "${env:PARAM}"'
    )
    assert parse_manifest(text).spec.config["paramName"].default == "${env:PARAM}"


def test_reserved_name() -> None:
    assert error_of(changed("name: plugin-name", "name: weaviate-ext")) == (
        "plugin.yaml:4: metadata.name: 'weaviate-ext' is reserved for the framework itself"
    )


def test_misspelled_capability_is_caught_but_custom_ones_are_kept() -> None:
    assert error_of(changed("maxBatchSize: 100", "maxBatchsize: 100")) == (
        "plugin.yaml:20: spec.capabilities.maxBatchsize: "
        "unknown field 'maxBatchsize' (did you mean 'maxBatchSize'?)"
    )
    manifest = parse_manifest(changed("maxBatchSize: 100", "languages: [en, de]"))
    assert dict(manifest.spec.capabilities.extra) == {"languages": ["en", "de"]}


def test_bad_timeout_and_command() -> None:
    text = changed("  binary: ./plugin-binary.wasm", "  timeout: 3d")
    assert error_of(text) == (
        "plugin.yaml:11: spec.timeout: "
        "'3d' is not a duration like 500ms, 30s, 2m, 1h or a number of seconds"
    )
    text = changed("  binary: ./plugin-binary.wasm", "  command: 'unbalanced \"quote'")
    assert error_of(text) == (
        "plugin.yaml:11: spec.command: cannot be split into words: No closing quotation"
    )


def test_bad_values_that_yaml_cannot_build() -> None:
    assert error_of(changed("version: 1.0.0", "version: 2024-13-45")) == (
        "plugin.yaml:5: metadata.version: cannot read the value '2024-13-45'"
    )


# -- files --------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "plugin.yaml"
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    assert str(caught.value) == f"{path}: no such file"


def test_a_directory_is_not_a_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as caught:
        load_manifest(tmp_path)
    assert str(caught.value) == f"{tmp_path}: is a directory; expected a plugin.yaml file"


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    path = tmp_path / "plugin.yaml"
    os.mkfifo(path)
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    assert str(caught.value) == f"{path}: is not a regular file"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "plugin.yaml"
    path.write_text(PRODUCT_SPEC, encoding="utf-8")
    path.chmod(0)
    with pytest.raises(ManifestError, match="cannot be read: Permission denied"):
        load_manifest(path)


# -- no input makes the loader raise anything but ManifestError ----------------------


def parse_or_manifest_error(data: str | bytes) -> None:
    """Parse ``data``; a ManifestError is fine, any other exception fails the test."""
    try:
        parse_manifest(data, "fuzz.yaml")
    except ManifestError as error:
        assert error.problems
        for problem in error.problems:
            assert problem.file == "fuzz.yaml"
            assert problem.line >= 0


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.text(max_size=400))
def test_random_text_raises_only_manifest_error(text: str) -> None:
    parse_or_manifest_error(text)


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes_raise_only_manifest_error(data: bytes) -> None:
    parse_or_manifest_error(data)


YAML_CHARS = st.sampled_from(list(":-[]{}&*!|>'\"%@`#,?\n\t ~<=.^0123456789aeEiMGk"))


@FUZZ
@given(st.lists(YAML_CHARS, max_size=200).map("".join))
def test_yaml_punctuation_soup_raises_only_manifest_error(text: str) -> None:
    parse_or_manifest_error(text)


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["2Gi", "500m", "^1.0.0", "1.0.0", "vectorizer", "./x", "${env:X}"])
)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
KEYS = st.sampled_from(
    [
        "apiVersion",
        "kind",
        "metadata",
        "spec",
        "name",
        "version",
        "type",
        "runtime",
        "binary",
        "command",
        "timeout",
        "dependencies",
        "resources",
        "memory",
        "cpu",
        "capabilities",
        "dimensions",
        "maxBatchSize",
        "config",
        "default",
        "secret",
        "permissions",
        "directories",
        "env",
    ]
)
MAPPINGS = st.dictionaries(KEYS | st.text(max_size=8), VALUES, max_size=8)


@FUZZ
@given(MAPPINGS)
def test_random_mappings_raise_only_manifest_error(data: dict[str, Any]) -> None:
    parse_or_manifest_error(yaml.safe_dump(data, allow_unicode=True))


def product_spec_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(PRODUCT_SPEC)
    return data


PATHS = st.sampled_from(
    [
        ("apiVersion",),
        ("kind",),
        ("metadata",),
        ("metadata", "name"),
        ("metadata", "version"),
        ("spec",),
        ("spec", "type"),
        ("spec", "runtime"),
        ("spec", "binary"),
        ("spec", "command"),
        ("spec", "timeout"),
        ("spec", "sha256"),
        ("spec", "dependencies"),
        ("spec", "resources", "memory"),
        ("spec", "resources", "cpu"),
        ("spec", "capabilities", "dimensions"),
        ("spec", "capabilities", "maxBatchSize"),
        ("spec", "config", "paramName", "type"),
        ("spec", "config", "paramName", "default"),
        ("spec", "config", "paramName", "secret"),
        ("spec", "permissions"),
    ]
)


@FUZZ
@given(st.lists(st.tuples(PATHS, VALUES), min_size=1, max_size=4))
def test_mutated_valid_manifests_raise_only_manifest_error(
    changes: list[tuple[tuple[str, ...], Any]],
) -> None:
    data = product_spec_data()
    for path, value in changes:
        target = data
        for key in path[:-1]:
            if not isinstance(target.get(key), dict):
                target[key] = {}
            target = target[key]
        target[path[-1]] = value
    parse_or_manifest_error(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))


@FUZZ
@given(st.data())
def test_byte_mutations_of_a_valid_manifest_raise_only_manifest_error(data: st.DataObject) -> None:
    text = bytearray(PRODUCT_SPEC.encode())
    for _ in range(data.draw(st.integers(1, 5))):
        position = data.draw(st.integers(0, len(text)))
        action = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = data.draw(st.binary(min_size=1, max_size=8))
        if action == "insert":
            text[position:position] = chunk
        elif action == "delete":
            del text[position : position + len(chunk)]
        else:
            text[position : position + len(chunk)] = chunk
    parse_or_manifest_error(bytes(text))
