"""The ``weaviate-ext`` command line, through click's CliRunner and as a real process.

Every plugin used here is written by the tests under ``tmp_path``: small Python plugins
(``runtime: python``, ``entrypoint: plugin:Plugin``, source in ``src/``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from weaviate_ext import __version__
from weaviate_ext.cli import cli

SECRET = "s3cr3t-Value-42"

MANIFEST = """\
apiVersion: weaviate.io/v1
kind: Plugin
metadata:
  name: {name}
  version: {version}
  description: "test plugin {name}"
spec:
  type: {type}
  runtime: python
  entrypoint: plugin:Plugin
{extra}"""

SOURCES = {
    "vectorizer": """
        from weaviate_ext import hookimpl

        class Plugin:
            @hookimpl
            def vectorize_text(self, text):
                return [float(len(text)), 1.0, 0.0, 2.0]
        """,
    "transformer": """
        from weaviate_ext import hookimpl

        class Plugin:
            @hookimpl
            def transform(self, data):
                return data.upper() if isinstance(data, str) else data
        """,
    "reranker": """
        from weaviate_ext import hookimpl

        class Plugin:
            @hookimpl
            def rerank(self, query, documents):
                words = set(query.split())
                return [float(len(words & set(d.split()))) for d in documents]
        """,
    "generator": """
        from weaviate_ext import hookimpl

        class Plugin:
            @hookimpl
            def generate_stream(self, prompt, options):
                limit = int(options.get("max_tokens", 100))
                for i, word in enumerate(("echo: " + prompt).split()):
                    if i >= limit:
                        break
                    yield word + " "
        """,
    "storage": """
        from weaviate_ext import hookimpl

        class Plugin:
            def __init__(self):
                self.data = {"seed": b"planted value"}

            @hookimpl
            def store(self, key, data):
                self.data[key] = bytes(data)

            @hookimpl
            def retrieve(self, key):
                return self.data.get(key)

            @hookimpl
            def delete(self, key):
                return self.data.pop(key, None) is not None
        """,
    "auth": """
        from weaviate_ext import Identity, hookimpl

        class Plugin:
            @hookimpl
            def plugin_setup(self, config):
                self.key = config.reveal("apiKey")

            @hookimpl
            def authenticate(self, credentials):
                if credentials.get("api_key") == self.key:
                    return Identity("alice", roles=("reader",))
                return None

            @hookimpl
            def authorize(self, identity, resource, action):
                return action == "read" and "reader" in identity.roles
        """,
}

EXTRA = {
    "vectorizer": "  capabilities:\n    dimensions: 4\n    maxBatchSize: 2\n",
    "auth": (
        "  config:\n"
        "    apiKey:\n"
        "      type: string\n"
        "      required: true\n"
        "      secret: true\n"
        "    realm:\n"
        "      type: string\n"
        "      default: test-realm\n"
    ),
}

NAMES = {
    "vectorizer": "tiny-vectorizer",
    "transformer": "upper",
    "reranker": "overlap",
    "generator": "echo-gen",
    "storage": "memstore",
    "auth": "keyauth",
}

PRODUCT_SPEC = """\
apiVersion: weaviate.io/v1
kind: Plugin
metadata:
  name: plugin-name
  version: 1.0.0
  author: "Your Name"
  description: "Plugin description"
spec:
  type: vectorizer  # or transformer, reranker, generator, storage, auth
  runtime: wasm     # or grpc, native  (this project adds: python)
  binary: ./plugin-binary.wasm
  dependencies:
    - name: dependency-name
      version: "^1.0.0"
  resources:
    memory: "2Gi"
    cpu: "1000m"
  capabilities:
    dimensions: 768  # for vectorizers
    maxBatchSize: 100
  config:
    paramName:
      type: string
      required: true
      secret: false
      default: "default-value"
"""

ALIAS_BOMB = """\
a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""

BAD_FILES: dict[str, bytes] = {
    "empty": b"",
    "binary-junk": bytes(range(256)) * 4,
    "not-a-mapping": b"- just\n- a\n- list\n",
    "alias-bomb": ALIAS_BOMB.encode(),
    "not-utf8": b"apiVersion: weaviate.io/v1\nkind: \xff\xfe\n",
}


def write_plugin(
    root: Path,
    kind: str,
    *,
    name: str | None = None,
    version: str = "1.0.0",
    source: str | None = None,
) -> Path:
    """Write a python plugin of type ``kind`` under ``root``; returns its plugin.yaml."""
    name = name or NAMES[kind]
    directory = root / name
    (directory / "src").mkdir(parents=True)
    manifest = directory / "plugin.yaml"
    text = MANIFEST.format(name=name, version=version, type=kind, extra=EXTRA.get(kind, ""))
    manifest.write_text(text, encoding="utf-8")
    body = textwrap.dedent(source if source is not None else SOURCES[kind])
    (directory / "src" / "plugin.py").write_text(body, encoding="utf-8")
    return manifest


@pytest.fixture
def plugins(tmp_path: Path) -> Path:
    """A directory with one plugin of every type."""
    root = tmp_path / "plugins"
    for kind in SOURCES:
        write_plugin(root, kind)
    return root


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, plugins: Path) -> Callable[..., Result]:
    """Invoke the CLI in-process with ``--no-discover --plugins <all types>``."""
    monkeypatch.delenv("WEAVIATE_EXT_PLUGINS", raising=False)
    monkeypatch.delenv("WEAVIATE_EXT_DISABLE", raising=False)

    def invoke(*args: str, plugin_dir: Path | None = plugins, base: Sequence[str] = ()) -> Result:
        prefix = ["--no-discover", *base]
        if plugin_dir is not None:
            prefix += ["--plugins", str(plugin_dir)]
        return CliRunner().invoke(cli, [*prefix, *args], catch_exceptions=False)

    return invoke


def secret_config() -> list[str]:
    return ["--config", f"keyauth.apiKey={SECRET}"]


def assert_one_error_line(result: Result, *fragments: str) -> None:
    """Exit 1, exactly one ``error:`` line on stderr, no traceback."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


# ---------------------------------------------------------------------------------------
# list
# ---------------------------------------------------------------------------------------


def test_list_table_shows_every_plugin(run: Callable[..., Result]) -> None:
    result = run(*secret_config(), "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "NAME",
        "VERSION",
        "TYPE",
        "RUNTIME",
        "ISOLATION",
        "SOURCE",
        "STATUS",
        "REASON",
    ]
    by_name = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(by_name) == set(NAMES.values())
    assert by_name["tiny-vectorizer"][1:5] == ["1.0.0", "vectorizer", "python", "none"]
    assert all(row[6] == "loaded" for row in by_name.values())
    status_col = lines[0].index("STATUS")
    assert all(line[status_col:].startswith("loaded") for line in lines[1:])


def test_list_json_shows_broken_plugins_with_reason(
    run: Callable[..., Result], plugins: Path
) -> None:
    write_plugin(
        plugins, "transformer", name="crashy", source="raise RuntimeError('boom at import')\n"
    )
    bad = plugins / "bad-manifest" / "plugin.yaml"
    bad.parent.mkdir()
    bad.write_text("apiVersion: weaviate.io/v1\nkind: Plugin\nmetadata: {}\n", encoding="utf-8")
    result = run(*secret_config(), "list", "--json")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(rows[NAMES["vectorizer"]]) == {
        "name",
        "version",
        "type",
        "runtime",
        "isolation",
        "source",
        "status",
        "reason",
        "permissions",
    }
    for name in NAMES.values():
        assert rows[name]["status"] == "loaded"
        assert rows[name]["isolation"].startswith("none: in the host process")
        assert rows[name]["permissions"]["enforced"].startswith("no: in the host's process")
    assert "permissions" not in rows["crashy"]
    assert rows["crashy"]["status"] == "broken"
    assert "boom at import" in rows["crashy"]["reason"]
    assert rows[str(bad)]["status"] == "broken"
    assert "metadata" in rows[str(bad)]["reason"]
    assert "\n" not in rows[str(bad)]["reason"]


def test_list_table_broken_row_and_exit_zero(run: Callable[..., Result], plugins: Path) -> None:
    write_plugin(plugins, "vectorizer", name="nohooks", source="class Plugin:\n    pass\n")
    result = run(*secret_config(), "list")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if line.startswith("nohooks"))
    assert "broken" in row
    assert "must implement" in row
    assert "Traceback" not in result.output


def test_list_without_secret_config_marks_only_that_plugin_broken(
    run: Callable[..., Result],
) -> None:
    result = run("list", "--json")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["keyauth"]["status"] == "broken"
    assert "apiKey" in rows["keyauth"]["reason"]
    assert rows["upper"]["status"] == "loaded"


def test_list_shows_disabled_plugins(
    run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEAVIATE_EXT_DISABLE", "upper")
    rows = {r["name"]: r for r in json.loads(run(*secret_config(), "list", "--json").stdout)}
    assert rows["upper"]["status"] == "disabled"
    assert rows["overlap"]["status"] == "loaded"
    assert_one_error_line(run(*secret_config(), "call", "upper", "x"), "upper", "disabled")


def test_list_reads_plugin_dirs_from_environment(
    run: Callable[..., Result], plugins: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other"
    write_plugin(other, "transformer", name="lower")
    monkeypatch.setenv("WEAVIATE_EXT_PLUGINS", os.pathsep.join([str(plugins), str(other)]))
    result = run(*secret_config(), "list", "--json", plugin_dir=None)
    assert result.exit_code == 0, result.output
    names = {row["name"] for row in json.loads(result.stdout)}
    assert {"lower", "upper"} <= names


def test_list_missing_plugin_dir_is_one_error_line(
    run: Callable[..., Result], tmp_path: Path
) -> None:
    result = run("list", plugin_dir=tmp_path / "nope")
    assert_one_error_line(result, "not a directory")


def test_list_empty(run: Callable[..., Result], tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run("list", plugin_dir=empty)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "no plugins" in result.stderr
    assert json.loads(run("list", "--json", plugin_dir=empty).stdout) == []


# ---------------------------------------------------------------------------------------
# inspect
# ---------------------------------------------------------------------------------------


def test_inspect_redacts_secret_config(run: Callable[..., Result]) -> None:
    result = run(*secret_config(), "inspect", "keyauth")
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    assert "**********" in result.stdout
    assert "name: keyauth" in result.stdout
    assert "realm:" in result.stdout and "test-realm" in result.stdout
    assert "calls: 0" in result.stdout


def test_inspect_json_redacts_secret_and_shows_stats(run: Callable[..., Result]) -> None:
    result = run(*secret_config(), "inspect", "keyauth", "--json")
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    info = json.loads(result.stdout)
    assert info["config"]["apiKey"]["value"] == "**********"
    assert info["config"]["apiKey"]["secret"] is True
    assert info["config"]["realm"]["value"] == "test-realm"
    assert info["spec"]["type"] == "auth"
    assert info["stats"]["calls"] == 0
    assert info["source"].endswith("plugin.yaml")


def test_inspect_vectorizer_capabilities(run: Callable[..., Result]) -> None:
    result = run(*secret_config(), "inspect", "tiny-vectorizer", "--json")
    info = json.loads(result.stdout)
    assert info["capabilities"]["dimensions"] == 4
    assert info["capabilities"]["maxBatchSize"] == 2
    assert info["stats"]["errors"] == 0


def test_secret_from_config_file_never_printed(run: Callable[..., Result], tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"keyauth:\n  apiKey: {SECRET}\n", encoding="utf-8")
    for args in (["inspect", "keyauth"], ["inspect", "keyauth", "--json"], ["list"]):
        result = run("--config-file", str(config), "-v", *args)
        assert result.exit_code == 0, result.output
        assert SECRET not in result.output


def test_config_file_json(run: Callable[..., Result], tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"keyauth": {"apiKey": SECRET}}), encoding="utf-8")
    result = run("--config-file", str(config), "call", "keyauth", f"api_key={SECRET}")
    assert result.exit_code == 0, result.output


def test_inspect_unknown_plugin_lists_loaded_names(run: Callable[..., Result]) -> None:
    result = run(*secret_config(), "inspect", "nope")
    assert_one_error_line(result, "'nope'", "tiny-vectorizer", "upper")


def test_inspect_broken_plugin_gives_its_reason(run: Callable[..., Result]) -> None:
    result = run("inspect", "keyauth")
    assert_one_error_line(result, "keyauth", "apiKey")


# ---------------------------------------------------------------------------------------
# validate
# ---------------------------------------------------------------------------------------


def test_validate_ok(run: Callable[..., Result], plugins: Path) -> None:
    path = plugins / "upper" / "plugin.yaml"
    result = run("validate", str(path), plugin_dir=None)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{path}: ok (upper 1.0.0, transformer, python)"


def test_validate_bad_reports_file_line_field(run: Callable[..., Result], tmp_path: Path) -> None:
    bad = tmp_path / "plugin.yaml"
    bad.write_text(PRODUCT_SPEC.replace("type: vectorizer", "type: vectoriser"), encoding="utf-8")
    (tmp_path / "plugin-binary.wasm").write_bytes(b"\0asm")
    result = run("validate", str(bad), plugin_dir=None)
    assert result.exit_code == 1
    assert f"{bad}:9: spec.type: " in result.stdout
    assert "vectoriser" in result.stdout
    assert "Traceback" not in result.output


def test_validate_multiple_files(run: Callable[..., Result], plugins: Path, tmp_path: Path) -> None:
    good = plugins / "upper" / "plugin.yaml"
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: weaviate.io/v2\nkind: Plugin\n", encoding="utf-8")
    result = run("validate", str(good), str(bad), plugin_dir=None)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == f"{good}: ok (upper 1.0.0, transformer, python)"
    assert all(line.startswith(f"{bad}:") for line in lines[1:])
    assert len(lines) >= 2


def test_validate_directory(run: Callable[..., Result], plugins: Path) -> None:
    result = run("validate", str(plugins), plugin_dir=None)
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == len(NAMES)
    assert all(": ok (" in line for line in result.stdout.splitlines())


def test_validate_directory_without_manifests(
    run: Callable[..., Result], plugins: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run("validate", str(empty), str(plugins / "upper"), plugin_dir=None)
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == f"{empty}: no plugin.yaml below"
    assert ": ok (upper" in result.stdout.splitlines()[1]


def test_validate_json(run: Callable[..., Result], plugins: Path, tmp_path: Path) -> None:
    good = plugins / "upper" / "plugin.yaml"
    bad = tmp_path / "plugin.yaml"
    bad.write_text(MANIFEST.format(name="x", version="1", type="vectorizer", extra=""), "utf-8")
    result = run("validate", "--json", str(good), str(bad), plugin_dir=None)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report[0] == {"path": str(good), "valid": True, "problems": []}
    assert report[1]["path"] == str(bad) and report[1]["valid"] is False
    problem = report[1]["problems"][0]
    assert set(problem) == {"file", "line", "field", "message"}
    assert problem["field"] == "metadata.version" and problem["line"] == 5


def test_validate_product_spec_needs_its_binary(run: Callable[..., Result], tmp_path: Path) -> None:
    manifest = tmp_path / "plugin.yaml"
    manifest.write_text(PRODUCT_SPEC, encoding="utf-8")
    missing = run("validate", str(manifest), plugin_dir=None)
    assert missing.exit_code == 1
    assert f"{manifest}:11: spec.binary: " in missing.stdout
    assert "plugin-binary.wasm" in missing.stdout
    (tmp_path / "plugin-binary.wasm").write_bytes(b"\0asm\1\0\0\0")
    ok = run("validate", str(manifest), plugin_dir=None)
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.strip() == f"{manifest}: ok (plugin-name 1.0.0, vectorizer, wasm)"


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_validate_bad_input_files(run: Callable[..., Result], tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.yaml"
    path.write_bytes(BAD_FILES[kind])
    result = run("validate", str(path), plugin_dir=None)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    assert lines[0].startswith(f"{path}:")
    assert "Traceback" not in result.output


def test_validate_missing_file(run: Callable[..., Result], tmp_path: Path) -> None:
    result = run("validate", str(tmp_path / "nope.yaml"), plugin_dir=None)
    assert result.exit_code == 1
    assert "no such file" in result.stdout


def test_validate_without_paths_is_usage_error(run: Callable[..., Result]) -> None:
    assert run("validate", plugin_dir=None).exit_code == 2


# ---------------------------------------------------------------------------------------
# call
# ---------------------------------------------------------------------------------------


def test_call_vectorizer(run: Callable[..., Result]) -> None:
    result = run(*secret_config(), "call", "tiny-vectorizer", "abc", "hello", "x")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0] == "'abc': dims=4 norm=3.7417 [3.0000, 1.0000, 0.0000, 2.0000]"


def test_call_vectorizer_json(run: Callable[..., Result]) -> None:
    result = run(*secret_config(), "call", "tiny-vectorizer", "--json", "hello", "ab")
    rows = json.loads(result.stdout)
    assert [r["vector"] for r in rows] == [[5.0, 1.0, 0.0, 2.0], [2.0, 1.0, 0.0, 2.0]]
    assert rows[0]["dims"] == 4 and rows[0]["text"] == "hello"


def test_call_transformer(run: Callable[..., Result]) -> None:
    result = run(*secret_config(), "call", "upper", "hello world")
    assert result.exit_code == 0, result.output
    assert result.stdout == "HELLO WORLD\n"
    assert json.loads(run(*secret_config(), "call", "upper", "--json", "a").stdout) == "A"


def test_call_reranker(run: Callable[..., Result]) -> None:
    result = run(*secret_config(), "call", "overlap", "red fox", "a dog", "red fox", "red")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["RANK", "INDEX", "SCORE", "DOCUMENT"]
    assert lines[1].split() == ["1", "1", "2.0000", "red", "fox"]
    assert lines[3].split()[:3] == ["3", "0", "0.0000"]
    rows = json.loads(run(*secret_config(), "call", "overlap", "--json", "q", "q", "x").stdout)
    assert rows[0] == {"rank": 1, "index": 0, "score": 1.0, "document": "q"}


def test_call_generator_streams_with_options(run: Callable[..., Result]) -> None:
    result = run(*secret_config(), "call", "echo-gen", "one two three four", "-o", "max_tokens=3")
    assert result.exit_code == 0, result.output
    assert result.stdout == "echo: one two \n"
    data = json.loads(run(*secret_config(), "call", "echo-gen", "--json", "hi").stdout)
    assert data == {"text": "echo: hi ", "chunks": ["echo: ", "hi "]}


def test_call_generator_reserved_option(run: Callable[..., Result]) -> None:
    result = run("call", "echo-gen", "hi", "--option", "timeout=3")
    assert result.exit_code == 2


def test_call_storage_put_get_delete(run: Callable[..., Result]) -> None:
    result = run(*secret_config(), "call", "memstore", "get", "seed")
    assert result.exit_code == 0, result.output
    assert result.stdout == "planted value\n"
    put = run(*secret_config(), "call", "memstore", "put", "k", "v")
    assert put.exit_code == 0 and "stored 'k' (1 bytes)" in put.stdout
    deleted = run(*secret_config(), "call", "memstore", "delete", "seed")
    assert deleted.exit_code == 0 and "deleted 'seed'" in deleted.stdout
    data = json.loads(run(*secret_config(), "call", "memstore", "--json", "get", "seed").stdout)
    assert data["value"] == "planted value" and data["size"] == 13


def test_call_storage_missing_key(run: Callable[..., Result]) -> None:
    assert_one_error_line(run("call", "memstore", "get", "nope"), "no such key 'nope'")
    assert_one_error_line(run("call", "memstore", "delete", "nope"), "no such key 'nope'")


def test_call_storage_bad_operation(run: Callable[..., Result]) -> None:
    assert run("call", "memstore", "fetch", "k").exit_code == 2
    assert run("call", "memstore", "put", "k").exit_code == 2
    assert run("call", "memstore").exit_code == 2


def test_call_auth(run: Callable[..., Result]) -> None:
    result = run(
        *secret_config(), "call", "keyauth", f"api_key={SECRET}", "--authorize", "doc:read"
    )
    assert result.exit_code == 0, result.output
    assert "subject: alice" in result.stdout
    assert "authorize doc:read: allow" in result.stdout
    denied = run(*secret_config(), "call", "keyauth", f"api_key={SECRET}", "--authorize", "d:write")
    assert "authorize d:write: deny" in denied.stdout
    data = json.loads(
        run(*secret_config(), "call", "keyauth", "--json", f"api_key={SECRET}").stdout
    )
    assert data["identity"]["subject"] == "alice" and data["identity"]["roles"] == ["reader"]


def test_call_auth_not_recognised(run: Callable[..., Result]) -> None:
    result = run(*secret_config(), "call", "keyauth", "api_key=wrong")
    assert result.exit_code == 1
    assert result.stdout.strip() == "not recognised"
    assert SECRET not in result.output


def test_call_unknown_plugin_lists_loaded(run: Callable[..., Result]) -> None:
    result = run(*secret_config(), "call", "missing", "x")
    assert_one_error_line(result, "'missing'", "echo-gen", "memstore", "upper")


@pytest.mark.parametrize(
    "args",
    [
        ["tiny-vectorizer"],
        ["upper"],
        ["upper", "a", "b"],
        ["overlap", "query-only"],
        ["echo-gen"],
        ["echo-gen", "a", "b"],
        ["keyauth"],
        ["upper", "x", "--option", "a=1"],
        ["upper", "x", "--authorize", "r:a"],
    ],
)
def test_call_wrong_arguments_is_usage_error(run: Callable[..., Result], args: list[str]) -> None:
    result = run(*secret_config(), "call", *args)
    assert result.exit_code == 2, result.output
    assert "weaviate-ext call" in result.stderr
    assert "Traceback" not in result.output


def test_call_plugin_error_is_one_line(run: Callable[..., Result], plugins: Path) -> None:
    source = """
        from weaviate_ext import hookimpl

        class Plugin:
            @hookimpl
            def transform(self, data):
                if data == "weaviate-ext probe":
                    return data
                raise ValueError("cannot transform\\nthis input")
        """
    write_plugin(plugins, "transformer", name="fails", source=source)
    result = run(*secret_config(), "call", "fails", "x")
    assert_one_error_line(result, "fails", "cannot transform")


def test_call_output_is_scrubbed_of_secrets(run: Callable[..., Result], plugins: Path) -> None:
    source = """
        from weaviate_ext import hookimpl

        class Plugin:
            @hookimpl
            def plugin_setup(self, config):
                self.key = config.reveal("apiKey")

            @hookimpl
            def transform(self, data):
                return f"{data} with key {self.key}"
        """
    write_plugin(plugins, "transformer", name="leaky", source=source)
    manifest = plugins / "leaky" / "plugin.yaml"
    manifest.write_text(manifest.read_text() + EXTRA["auth"], encoding="utf-8")
    result = run(*secret_config(), "--config", f"leaky.apiKey={SECRET}", "call", "leaky", "t")
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    assert "t with key **********" in result.stdout


def test_call_timeout_must_be_positive(run: Callable[..., Result]) -> None:
    assert run("call", "upper", "x", "--timeout", "0").exit_code == 2


# ---------------------------------------------------------------------------------------
# global options and bad configuration files
# ---------------------------------------------------------------------------------------


def test_version(run: Callable[..., Result]) -> None:
    result = run("--version", plugin_dir=None)
    assert result.exit_code == 0
    assert __version__ in result.stdout


@pytest.mark.parametrize("value", ["noequals", "nodot=1", ".key=1", "name.=1"])
def test_bad_config_option_is_usage_error(run: Callable[..., Result], value: str) -> None:
    assert run("--config", value, "list").exit_code == 2


def test_config_values_are_parsed_as_json(run: Callable[..., Result], plugins: Path) -> None:
    source = """
        from weaviate_ext import hookimpl

        class Plugin:
            @hookimpl
            def plugin_setup(self, config):
                self.n = config.get_int("n")

            @hookimpl
            def transform(self, data):
                return data * self.n
        """
    write_plugin(plugins, "transformer", name="repeat", source=source)
    manifest = plugins / "repeat" / "plugin.yaml"
    manifest.write_text(manifest.read_text() + "  config:\n    n:\n      type: integer\n", "utf-8")
    result = run(*secret_config(), "--config", "repeat.n=3", "call", "repeat", "ab")
    assert result.stdout == "ababab\n", result.output


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_config_files(run: Callable[..., Result], tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.yaml"
    path.write_bytes(BAD_FILES[kind])
    result = run("--config-file", str(path), "list")
    if kind == "empty":
        assert result.exit_code == 0, result.output
        return
    assert_one_error_line(result, str(path))


def test_config_file_unreadable(run: Callable[..., Result], tmp_path: Path) -> None:
    result = run("--config-file", str(tmp_path / "missing.yaml"), "list")
    assert_one_error_line(result, "missing.yaml", "No such file")


def test_python_dash_m(plugins: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "weaviate_ext",
            "--no-discover",
            "--plugins",
            str(plugins),
            "call",
            "upper",
            "hi",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "HI\n"


# ---------------------------------------------------------------------------------------
# the installed console script, as a real process
# ---------------------------------------------------------------------------------------


@pytest.fixture
def script() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the installed ``weaviate-ext`` console script (installed by the test command)."""
    scripts = sysconfig.get_path("scripts")
    path = shutil.which("weaviate-ext", path=scripts) or shutil.which("weaviate-ext")
    assert path is not None, f"the weaviate-ext console script is not installed in {scripts}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEAVIATE_EXT_")}

    def run_script(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [path, *args], capture_output=True, text=True, timeout=60, env=env, check=False
        )

    return run_script


def test_script_version(script: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    result = script("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"weaviate-ext, version {__version__}"


def test_script_validate_failure(
    script: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    manifest = tmp_path / "plugin.yaml"
    manifest.write_text(PRODUCT_SPEC.replace("maxBatchSize: 100", "maxBatchSize: 0"), "utf-8")
    (tmp_path / "plugin-binary.wasm").write_bytes(b"\0asm")
    result = script("validate", str(manifest))
    assert result.returncode == 1
    assert f"{manifest}:20: spec.capabilities.maxBatchSize: " in result.stdout
    assert "Traceback" not in result.stderr


def test_script_bad_input_never_tracebacks(
    script: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    for kind, data in BAD_FILES.items():
        path = tmp_path / f"{kind}.yaml"
        path.write_bytes(data)
        result = script("validate", str(path))
        assert result.returncode == 1, kind
        assert "Traceback" not in result.stderr
        config = script("--no-discover", "--config-file", str(path), "list")
        assert "Traceback" not in config.stderr
        assert config.returncode == (0 if kind == "empty" else 1), config.stderr


SLOW_GENERATOR = """
    import time
    from pathlib import Path
    from weaviate_ext import hookimpl

    class Plugin:
        @hookimpl
        def generate_stream(self, prompt):
            yield "first "
            marker = Path(prompt)
            for _ in range(400):
                if marker.exists():
                    break
                time.sleep(0.025)
            yield "second"
    """


def test_script_generator_streams_before_the_end(
    script: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    """The first chunk reaches stdout while the plugin is still waiting to send more."""
    write_plugin(tmp_path / "p", "generator", name="slow", source=SLOW_GENERATOR)
    marker = tmp_path / "go"
    path = shutil.which("weaviate-ext")
    assert path is not None
    args = [path, "--no-discover", "--plugins", str(tmp_path / "p"), "call", "slow", str(marker)]
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None
        first = process.stdout.read(6)
        assert first == b"first "
        assert process.poll() is None
        marker.touch()
        rest, errors = process.communicate(timeout=30)
    assert rest == b"second\n", errors
    assert process.returncode == 0


def test_script_call_and_secret(
    script: Callable[..., subprocess.CompletedProcess[str]], plugins: Path
) -> None:
    base = ["--no-discover", "--plugins", str(plugins), "--config", f"keyauth.apiKey={SECRET}"]
    result = script(*base, "call", "echo-gen", "streamed words", "--option", "max_tokens=2")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "echo: streamed \n"
    inspected = script(*base, "-v", "inspect", "keyauth")
    assert inspected.returncode == 0, inspected.stderr
    assert SECRET not in inspected.stdout + inspected.stderr
    missing = script(*base, "call", "nope")
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: no plugin named 'nope'")
    assert "Traceback" not in missing.stderr
