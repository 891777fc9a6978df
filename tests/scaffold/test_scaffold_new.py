"""``weaviate-ext new``: names, refusals, the files and manifests it writes, and what it
prints. (That every combination builds and conforms is test_scaffold_matrix.py.)"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from scaffold_helpers import invoke, run_cli

from weaviate_ext.manifest import PLUGIN_TYPES, load_manifest
from weaviate_ext.scaffold import sdk
from weaviate_ext.scaffold.create import (
    COMBINATIONS,
    LANGUAGES,
    ScaffoldError,
    class_name,
    create_plugin,
    module_name,
    templates_root,
)


def test_every_type_has_every_runtime_and_language() -> None:
    assert len(COMBINATIONS) == len(PLUGIN_TYPES) * 7
    assert LANGUAGES == {
        "python": ("python",),
        "wasm": ("c", "rust"),
        "native": ("c", "rust"),
        "grpc": ("python", "node"),
    }


def test_the_real_command_creates_a_plugin_and_prints_the_next_three_commands(
    tmp_path: Path,
) -> None:
    done = run_cli("new", "my-reranker", "--type", "reranker", "--runtime", "wasm", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[0] == "created my-reranker/: a reranker plugin for the wasm runtime, in C"
    nxt = lines.index("next:")
    assert lines[nxt + 1 :] == [
        "  ./my-reranker/build.sh",
        "  weaviate-ext test my-reranker",
        "  weaviate-ext dev my-reranker",
    ]
    for listed in ("  plugin.yaml", "  build.sh", "  README.md", "  src/my_reranker.c"):
        assert listed in lines
    directory = tmp_path / "my-reranker"
    assert sorted(p.name for p in directory.iterdir()) == [
        ".gitignore",
        "README.md",
        "build.sh",
        "hookspecs",
        "plugin.yaml",
        "sdk",
        "src",
        "tests",
    ]
    assert sorted(p.name for p in (directory / "sdk").iterdir()) == ["c"]
    assert sorted(p.name for p in (directory / "sdk" / "c").iterdir()) == [
        "build-plugin.sh",
        "weaviate_plugin_sdk.c",
        "weaviate_plugin_sdk.h",
    ]
    assert sorted(p.name for p in (directory / "hookspecs").iterdir()) == ["weaviate_plugin.h"]
    assert os.access(directory / "sdk" / "c" / "build-plugin.sh", os.X_OK)
    assert os.access(directory / "build.sh", os.X_OK)


def test_the_default_languages(tmp_path: Path) -> None:
    for runtime, expected in (
        ("python", "python"),
        ("wasm", "c"),
        ("native", "c"),
        ("grpc", "python"),
    ):
        scaffold = create_plugin(f"d-{runtime}", "transformer", runtime, parent=tmp_path)
        assert scaffold.lang == expected


@pytest.mark.parametrize(
    "name",
    ["", "My-Plugin", "-a", "a-", "a_b", "a.b", "x" * 64, "plugin name", "weaviate-ext", "ü"],
)
def test_an_invalid_name_is_refused_and_nothing_is_created(tmp_path: Path, name: str) -> None:
    where = str(tmp_path)
    result = invoke("new", "--type", "reranker", "--runtime", "python", "--dir", where, "--", name)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "(see docs/troubleshooting.md#scaffolderror)" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_existing_directory_or_file_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "plugin.yaml").write_text("mine")
    (tmp_path / "file").write_text("mine")
    for name in ("taken", "file"):
        result = invoke(
            "new", name, "--type", "storage", "--runtime", "python", "--dir", str(tmp_path)
        )
        assert result.exit_code == 1
        assert "already exists" in result.stderr
    assert (tmp_path / "taken" / "plugin.yaml").read_text() == "mine"
    assert (tmp_path / "file").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "taken"]


def test_a_language_the_runtime_has_no_scaffold_for_is_refused(tmp_path: Path) -> None:
    result = invoke(
        "new",
        "x",
        "--type",
        "reranker",
        "--runtime",
        "python",
        "--lang",
        "rust",
        "--dir",
        str(tmp_path),
    )
    assert result.exit_code == 1
    assert "runtime python has no 'rust' scaffold; --lang: python" in result.stderr
    usage = invoke("new", "x", "--type", "reranker", "--runtime", "jvm", "--dir", str(tmp_path))
    assert usage.exit_code == 2  # click's choice: a usage error
    assert list(tmp_path.iterdir()) == []


def test_a_missing_sdk_is_a_clear_error_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sdk, "_candidates", lambda: [tmp_path / "no-sdk"])
    result = invoke(
        "new", "csdk", "--type", "reranker", "--runtime", "wasm", "--dir", str(tmp_path)
    )
    assert result.exit_code == 1
    assert "WEAVIATE_EXT_SDK_DIR" in result.stderr and "#sdknotfound" in result.stderr
    assert not (tmp_path / "csdk").exists()


def test_the_sdk_dir_can_be_named_by_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "tree"
    for source, _ in sdk.C_SDK_FILES:
        (tree / source).parent.mkdir(parents=True, exist_ok=True)
        (tree / source).write_text(f"/* {source} from the named tree */\n")
    monkeypatch.setenv(sdk.SDK_DIR_ENV, str(tree))
    scaffold = create_plugin("named", "reranker", "native", "c", parent=tmp_path)
    assert (
        "from the named tree"
        in (scaffold.directory / "sdk" / "c" / "weaviate_plugin_sdk.c").read_text()
    )


@pytest.mark.parametrize(("kind", "runtime", "lang"), COMBINATIONS)
def test_the_manifest_fits_the_type_and_explains_its_fields(
    tmp_path: Path, kind: str, runtime: str, lang: str
) -> None:
    scaffold = create_plugin("m", kind, runtime, lang, parent=tmp_path, description='say "hi"')
    manifest = load_manifest(scaffold.manifest, check_files=False)
    assert (manifest.spec.type, manifest.spec.runtime) == (kind, runtime)
    assert manifest.metadata.description == 'say "hi"'
    caps = manifest.spec.capabilities
    if kind == "vectorizer":
        assert (caps.dimensions, caps.normalized, caps.deterministic) == (256, True, True)
    if kind in ("vectorizer", "transformer"):
        assert caps.max_batch_size == 64
    assert manifest.spec.config, "every scaffold has a config schema"
    if kind == "auth":
        assert manifest.spec.config["apiKey"].secret
    if runtime == "wasm" and kind == "storage":
        assert manifest.spec.resources.cpu == 1  # one instance: one store
    text = scaffold.manifest.read_text()
    for field in ("apiVersion", "kind", "name", "version", "type", "runtime", "timeout", "config"):
        line = next(line for line in text.splitlines() if re.match(rf"\s*{field}:", line))
        index = text.splitlines().index(line)
        above = text.splitlines()[index - 1]
        assert "#" in line or above.strip().startswith("#"), f"{field} is not explained"


def test_names_become_identifiers() -> None:
    assert module_name("my-reranker") == "my_reranker"
    assert module_name("3d-vectors") == "plugin_3d_vectors"
    assert module_name("class") == "plugin_class"
    assert class_name("my-reranker") == "MyReranker"
    assert class_name("3d") == "Plugin3d"


def test_a_name_starting_with_a_digit_scaffolds_valid_code(tmp_path: Path) -> None:
    scaffold = create_plugin("3d", "transformer", "python", parent=tmp_path)
    source = (scaffold.directory / "src" / "plugin_3d.py").read_text()
    compile(source, "plugin_3d.py", "exec")
    assert "class Plugin3d:" in source
    assert "entrypoint: plugin_3d:Plugin3d" in scaffold.manifest.read_text()


def test_the_templates_ship_as_package_data() -> None:
    root = templates_root()
    names = {entry.name for entry in root.iterdir()}
    assert {"common", "python-python", "wasm-c", "native-c", "wasm-rust", "grpc-python"} <= names
    setup_cfg = (Path(__file__).resolve().parents[2] / "setup.cfg").read_text()
    assert "weaviate_ext.scaffold = templates/**/*" in setup_cfg


def test_the_error_is_a_scaffold_error() -> None:
    with pytest.raises(ScaffoldError, match="is not a valid plugin name"):
        create_plugin("Bad", "reranker", "python")


def test_a_failure_half_way_leaves_no_half_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> list[Path]:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sdk, "vendor", broken)
    result = invoke(
        "new", "half", "--type", "reranker", "--runtime", "wasm", "--dir", str(tmp_path)
    )
    assert result.exit_code == 1
    assert result.stderr == "error: No space left on device\n"
    assert list(tmp_path.iterdir()) == []
