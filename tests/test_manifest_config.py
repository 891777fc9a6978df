"""Plugin configuration: host values, defaults, references, types and secrets."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path
from typing import Any

import pytest

from weaviate_ext.manifest import (
    ConfigError,
    Manifest,
    PluginConfig,
    Secret,
    parse_manifest,
    resolve_config,
)

SECRET = "s3cr3t-value-42"

MANIFEST = """\
apiVersion: weaviate.io/v1
kind: Plugin
metadata: {name: configured, version: 1.0.0}
spec:
  type: vectorizer
  runtime: python
  entrypoint: plugin:Plugin
  config:
    modelPath:
      type: string
      required: true
      default: model.bin
    apiKey:
      type: string
      secret: true
    batch:
      type: integer
      default: 8
    temperature:
      type: number
    verbose:
      type: boolean
      default: false
    labels:
      type: array
    options:
      type: object
    pin:
      type: integer
      secret: true
"""


@pytest.fixture
def manifest(tmp_path: Path) -> Manifest:
    path = tmp_path / "plugin.yaml"
    return parse_manifest(MANIFEST, str(path), path=path)


def config_error(manifest: Manifest, values: dict[str, Any], **kwargs: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        resolve_config(manifest, values, **kwargs)
    return str(caught.value)


# -- values and defaults --------------------------------------------------------------


def test_defaults_fill_in_and_unset_keys_are_absent(manifest: Manifest) -> None:
    config = resolve_config(manifest, environ={})
    assert dict(config) == {"modelPath": "model.bin", "batch": 8, "verbose": False}
    assert "apiKey" not in config
    assert config.plugin == "configured"


def test_the_host_value_beats_the_default(manifest: Manifest) -> None:
    config = resolve_config(manifest, {"modelPath": "other.bin", "batch": 32}, environ={})
    assert config["modelPath"] == "other.bin"
    assert config.get_int("batch") == 32


def test_a_none_host_value_counts_as_not_given(manifest: Manifest) -> None:
    assert resolve_config(manifest, {"batch": None}, environ={})["batch"] == 8


def test_every_type(manifest: Manifest) -> None:
    config = resolve_config(
        manifest,
        {"temperature": 1, "labels": ("a", "b"), "options": {"k": [1]}, "verbose": True},
        environ={},
    )
    assert config.get_float("temperature") == 1.0
    assert config["labels"] == ["a", "b"]
    assert config["options"] == {"k": [1]}
    assert config.get_bool("verbose") is True


def test_the_config_is_immutable_and_a_copy(manifest: Manifest) -> None:
    options = {"k": 1}
    config = resolve_config(manifest, {"options": options}, environ={})
    options["k"] = 2
    assert config["options"] == {"k": 1}
    with pytest.raises(TypeError):
        config["batch"] = 1  # type: ignore[index]


# -- references -----------------------------------------------------------------------


def test_env_references(manifest: Manifest) -> None:
    environ = {"KEY": SECRET, "BATCH": "42", "TEMP": "0.5", "VERBOSE": "yes"}
    config = resolve_config(
        manifest,
        {
            "apiKey": "${env:KEY}",
            "batch": "${env:BATCH}",
            "temperature": "${env:TEMP}",
            "verbose": "${env:VERBOSE}",
            "labels": "${env:LABELS}",
            "options": "${env:OPTIONS}",
        },
        environ={**environ, "LABELS": '["x", 1]', "OPTIONS": '{"a": {"b": true}}'},
    )
    assert config.reveal("apiKey") == SECRET
    assert config.get_int("batch") == 42
    assert config.get_float("temperature") == 0.5
    assert config.get_bool("verbose") is True
    assert config["labels"] == ["x", 1]
    assert config["options"] == {"a": {"b": True}}


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("FALSE", False), ("1", True), ("0", False), ("no", False), ("On", True)],
)
def test_boolean_texts(manifest: Manifest, text: str, value: bool) -> None:
    config = resolve_config(manifest, {"verbose": "${env:V}"}, environ={"V": text})
    assert config["verbose"] is value


def test_a_default_may_be_a_reference(tmp_path: Path) -> None:
    text = MANIFEST.replace("default: model.bin", "default: ${env:MODEL_PATH}")
    manifest = parse_manifest(text, path=tmp_path / "plugin.yaml")
    config = resolve_config(manifest, environ={"MODEL_PATH": "/models/m.bin"})
    assert config["modelPath"] == "/models/m.bin"


def test_file_references_are_relative_to_the_manifest(manifest: Manifest, tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "key.txt").write_text(SECRET + "\n", encoding="utf-8")
    (tmp_path / "pin").write_text("1234\r\n", encoding="utf-8")
    absolute = tmp_path / "model-path"
    absolute.write_text("m.bin\n\n", encoding="utf-8")
    config = resolve_config(
        manifest,
        {
            "apiKey": "${file:secrets/key.txt}",
            "pin": "${file:pin}",
            "modelPath": f"${{file:{absolute}}}",
        },
        environ={},
    )
    assert config.reveal("apiKey") == SECRET
    assert config.get_int("pin") == 1234
    assert config["modelPath"] == "m.bin\n"  # only one trailing newline is stripped


def test_a_missing_env_var_names_the_key_and_reference(manifest: Manifest) -> None:
    assert config_error(manifest, {"apiKey": "${env:API_KEY}"}, environ={}) == (
        "plugin 'configured': config key 'apiKey': "
        "the environment variable 'API_KEY' (${env:API_KEY}) is not set"
    )


def test_an_unreadable_file_names_the_key_and_reference(manifest: Manifest, tmp_path: Path) -> None:
    message = config_error(manifest, {"apiKey": "${file:nope.txt}"}, environ={})
    assert message == (
        "plugin 'configured': config key 'apiKey': cannot read the file "
        f"'{tmp_path / 'nope.txt'}' (${{file:nope.txt}}): No such file or directory"
    )


def test_a_non_utf8_secret_file_is_refused_without_its_content(
    manifest: Manifest, tmp_path: Path
) -> None:
    (tmp_path / "key.bin").write_bytes(b"\xff\xfe" + SECRET.encode())
    message = config_error(manifest, {"apiKey": "${file:key.bin}"}, environ={})
    assert message.endswith("(${file:key.bin}) is not UTF-8 text")
    assert SECRET not in message


def test_text_that_only_looks_like_a_reference_is_kept(manifest: Manifest) -> None:
    config = resolve_config(manifest, {"modelPath": "prefix ${env:X}"}, environ={"X": "y"})
    assert config["modelPath"] == "prefix ${env:X}"


# -- wrong types, missing and unknown keys ---------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"batch": "8"}, "config key 'batch': expected an integer, got a string"),
        ({"batch": True}, "config key 'batch': expected an integer, got a boolean"),
        ({"batch": 1.5}, "config key 'batch': expected an integer, got a number"),
        ({"temperature": "hot"}, "config key 'temperature': expected a number, got a string"),
        ({"verbose": 1}, "config key 'verbose': expected a boolean (true or false), got"),
        ({"labels": "a,b"}, "config key 'labels': expected a list, got a string"),
        ({"options": [1]}, "config key 'options': expected a mapping with string keys, got"),
        ({"modelPath": 5}, "config key 'modelPath': expected a string, got an integer"),
    ],
)
def test_a_wrong_type_names_the_key(
    manifest: Manifest, values: dict[str, Any], expected: str
) -> None:
    assert expected in config_error(manifest, values, environ={})


def test_a_bad_reference_text_names_the_key(manifest: Manifest) -> None:
    assert config_error(manifest, {"batch": "${env:B}"}, environ={"B": "eight"}) == (
        "plugin 'configured': config key 'batch': "
        "expected an integer, got a string from a reference"
    )
    assert "expected a list" in config_error(
        manifest, {"labels": "${env:L}"}, environ={"L": "{not json"}
    )


def test_a_missing_required_value_names_the_key(tmp_path: Path) -> None:
    manifest = parse_manifest(MANIFEST.replace("      default: model.bin\n", ""))
    assert config_error(manifest, {}, environ={}) == (
        "plugin 'configured': config key 'modelPath': is required but has no value (and no default)"
    )


def test_unknown_keys_are_listed_with_did_you_mean(manifest: Manifest) -> None:
    message = config_error(manifest, {"modelpath": "x", "zzz": 1}, environ={})
    assert message == (
        "plugin 'configured': unknown config key 'modelpath' (did you mean 'modelPath'?); "
        "the keys are: modelPath, apiKey, batch, temperature, verbose, labels, options, pin; "
        "unknown config key 'zzz'; "
        "the keys are: modelPath, apiKey, batch, temperature, verbose, labels, options, pin"
    )


def test_values_must_be_a_mapping(manifest: Manifest) -> None:
    with pytest.raises(ConfigError, match="config must be a mapping"):
        resolve_config(manifest, ["a"], environ={})  # type: ignore[arg-type]


def test_getters_name_the_key(manifest: Manifest) -> None:
    config = resolve_config(manifest, environ={})
    with pytest.raises(ConfigError, match="config key 'apiKey' is not set"):
        config.get_string("apiKey")
    with pytest.raises(ConfigError, match="config key 'modelPath' is a string, not an integer"):
        config.get_int("modelPath")
    with pytest.raises(ConfigError, match="config key 'batch' is an integer, not a boolean"):
        config.get_bool("batch")
    with pytest.raises(ConfigError, match="config key 'verbose' is a boolean, not a number"):
        config.get_float("verbose")
    with pytest.raises(ConfigError, match="config key 'batch' is an integer, not a string"):
        config.get_string("batch")


# -- secrets ----------------------------------------------------------------------------


def test_a_secret_is_redacted_everywhere(manifest: Manifest) -> None:
    config = resolve_config(manifest, {"apiKey": SECRET, "pin": 9876}, environ={})
    secret = config["apiKey"]
    assert isinstance(secret, Secret)
    for text in (
        repr(config),
        str(config),
        repr(secret),
        str(secret),
        f"{secret}",
        f"{secret:>30}",
        "%s %r" % (secret, secret),  # noqa: UP031 - %-formatting must redact too
        repr(dict(config)),
        repr(list(config.values())),
    ):
        assert SECRET not in text
        assert "9876" not in text
    assert str(secret) == "**********"
    assert repr(secret) == "Secret('**********')"
    assert config.reveal("apiKey") == SECRET
    assert config.get_string("apiKey") == SECRET
    assert config.get_int("pin") == 9876
    assert config.secret_values == (SECRET, "9876")


def test_a_secret_of_the_wrong_type_is_not_in_the_error(manifest: Manifest) -> None:
    message = config_error(manifest, {"pin": SECRET}, environ={})
    assert message == "plugin 'configured': config key 'pin': expected an integer, got a string"
    message = config_error(manifest, {"pin": "${env:PIN}"}, environ={"PIN": SECRET})
    assert SECRET not in message
    assert message.endswith("expected an integer, got a string from a reference")


def test_a_secret_never_leaks_through_config_errors(manifest: Manifest) -> None:
    values = {"apiKey": SECRET, "batch": SECRET, "labels": SECRET, "nope": SECRET}
    message = config_error(manifest, values, environ={})
    assert "config key 'labels'" in message
    assert "'nope'" in message
    assert SECRET not in message  # values are never shown, whatever the key
    secret_only = {"apiKey": 5, "pin": SECRET}
    assert SECRET not in config_error(manifest, secret_only, environ={})


def test_secret_equality_hash_copy_and_pickle() -> None:
    secret = Secret(SECRET)
    assert secret == Secret(SECRET)
    assert secret != Secret("other")
    assert secret != SECRET
    assert hash(secret) == hash(Secret(SECRET))
    assert len({secret, Secret(SECRET), Secret([1, 2])}) == 2
    assert Secret(secret).reveal() == SECRET
    assert copy.copy(secret) is secret
    assert copy.deepcopy(secret) is secret
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(secret)
    with pytest.raises(AttributeError):
        secret._value = "x"
    with pytest.raises(TypeError):
        type("Sub", (Secret,), {})


def test_a_config_with_secrets_cannot_be_pickled(manifest: Manifest) -> None:
    config = resolve_config(manifest, {"apiKey": SECRET}, environ={})
    with pytest.raises(TypeError):
        pickle.dumps(config)


def test_a_host_may_pass_a_secret_object(manifest: Manifest) -> None:
    config = resolve_config(manifest, {"apiKey": Secret(SECRET), "batch": 3}, environ={})
    assert config.reveal("apiKey") == SECRET
    assert isinstance(config["apiKey"], Secret)


def test_a_secret_default_from_the_manifest_is_wrapped() -> None:
    manifest = parse_manifest(
        MANIFEST.replace(
            "      secret: true\n    batch:",
            f"      secret: true\n      default: {SECRET}\n    batch:",
        )
    )
    assert SECRET not in repr(manifest)
    config = resolve_config(manifest, environ={})
    assert config.reveal("apiKey") == SECRET


def test_plugin_config_by_hand() -> None:
    config = PluginConfig({"a": 1, "s": Secret("x")}, plugin="p")
    assert len(config) == 2
    assert list(config) == ["a", "s"]
    assert config == {"a": 1, "s": Secret("x")}
    assert repr(config) == "PluginConfig({'a': 1, 's': Secret('**********')})"


def test_host_config_files(tmp_path):
    from weaviate_ext.manifest import read_host_config

    yaml_file = tmp_path / "hosts.yaml"
    yaml_file.write_text("file-store:\n  path: /var/kv\nempty:\n")
    assert read_host_config(yaml_file) == {"file-store": {"path": "/var/kv"}, "empty": {}}
    json_file = tmp_path / "hosts.json"
    json_file.write_text('{"auth": {"keys": {"a": {"roles": ["r"]}}}}')
    assert read_host_config(json_file) == {"auth": {"keys": {"a": {"roles": ["r"]}}}}
    (tmp_path / "blank.yaml").write_text("")
    assert read_host_config(tmp_path / "blank.yaml") == {}
    bad = tmp_path / "bad.yaml"
    bad.write_text("ok: {}\nbroken: 5\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:2: broken: expected a mapping"):
        read_host_config(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n")
    with pytest.raises(ConfigError, match="must be a mapping of plugin names"):
        read_host_config(listed)
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("a: &a [x]\nb: [*a, *a]\n")
    with pytest.raises(ConfigError, match=r"bomb.yaml:1: YAML anchors \(&a\) are not allowed"):
        read_host_config(bomb)


# -- text with no UTF-8 form ----------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        {"modelPath": "/models/\ud800.bin"},
        {"labels": ["fine", "\udc80"]},
        {"options": {"\udfff": 1}},
        {"options": {"nested": ["\ud83d"]}},
    ],
)
def test_a_lone_surrogate_in_a_config_value_is_refused(
    manifest: Manifest, values: dict[str, Any]
) -> None:
    """No runtime can pass such text on as UTF-8 (os.fsdecode of a non-UTF-8 file name
    makes one); refused for every runtime, naming the key, never showing the value."""
    (key,) = values
    assert config_error(manifest, values, environ={}) == (
        f"plugin 'configured': config key {key!r}: is not valid Unicode text "
        "(it has a lone surrogate)"
    )


def test_a_lone_surrogate_from_an_env_reference_is_refused(manifest: Manifest) -> None:
    message = config_error(manifest, {"modelPath": "${env:P}"}, environ={"P": "m\udcff.bin"})
    assert "config key 'modelPath': is not valid Unicode text" in message
