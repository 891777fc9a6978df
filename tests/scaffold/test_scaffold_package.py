"""``weaviate-ext package``: a plugin as a pip package that registers it by name.

A packaged wasm plugin is installed with pip into a fresh virtual environment (with
the system site packages, so that weaviate-ext itself comes from this checkout; the
package is installed with ``--no-deps`` and without build isolation: offline), where
``weaviate-ext list`` shows it and ``weaviate-ext call`` calls it; a binary changed
after installation is refused by its declared sha256.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from scaffold_helpers import Scaffolds, invoke, run_cli

from weaviate_ext import load_manifest
from weaviate_ext.scaffold.build import set_spec_field
from weaviate_ext.scaffold.create import DIMENSIONS, ScaffoldError
from weaviate_ext.scaffold.package import copy_plugin, package_plugin


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment that sees the system site packages (weaviate-ext)."""
    root = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(root)],
        check=True,
        timeout=120,
    )
    return root / "bin" / "python"


def pip_install(python: Path, target: Path) -> None:
    """``pip install --no-deps --no-build-isolation target`` into ``python``'s venv."""
    done = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--no-index",
            str(target),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def in_venv(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``weaviate-ext ARGS`` run by the venv's interpreter."""
    return subprocess.run(
        [str(python), "-m", "weaviate_ext", *args],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_a_packaged_wasm_plugin_installs_with_pip_is_listed_callable_and_checked(
    scaffolds: Scaffolds, venv: Path, tmp_path: Path
) -> None:
    built = scaffolds.get(("vectorizer", "wasm", "c"))
    built.assert_built()
    out = tmp_path / "dist"
    done = run_cli("package", str(built.directory), "--out", str(out), "--wheel")
    assert done.returncode == 0, done.stdout + done.stderr
    wheels = list(out.glob("*.whl"))
    assert [w.name for w in wheels] == ["weaviate_ext_vectorizer_wasm_c-0.1.0-py3-none-any.whl"]
    assert f"pip install {wheels[0]}" in done.stdout

    # not installed in this environment: the host here does not see it
    here = run_cli("--no-discover", "list", "--json")
    assert built.name not in here.stdout

    pip_install(venv, wheels[0])
    listed = in_venv(venv, "list", "--json")  # read from its manifest, not imported
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    row = rows[built.name]
    assert (row["type"], row["runtime"], row["status"]) == ("vectorizer", "wasm", "installed")
    assert "weaviate-ext-vectorizer-wasm-c" in row["source"]
    # loaded, to be sure it can be (the exit status speaks for every plugin the venv
    # sees, the host's contrib packages included)
    checked = in_venv(venv, "list", "--check", "--json")
    rows = {row["name"]: row for row in json.loads(checked.stdout)}
    assert rows[built.name]["status"] == "loaded", rows[built.name]

    called = in_venv(venv, "call", built.name, "hello world", "--json")
    assert called.returncode == 0, called.stderr
    (answer,) = json.loads(called.stdout)
    assert answer["dims"] == DIMENSIONS and abs(answer["norm"] - 1.0) < 1e-5

    # the installed manifest declares the binary's sha256: a changed binary is refused
    located = subprocess.run(
        [str(venv), "-c", "import weaviate_ext_vectorizer_wasm_c as m; print(m.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    plugin_dir = Path(located.stdout.strip()).parent / "plugin"
    shipped = load_manifest(plugin_dir / "plugin.yaml")
    assert shipped.spec.sha256 is not None and len(shipped.spec.sha256) == 64
    with (plugin_dir / "plugin.wasm").open("ab") as binary:
        binary.write(b"\0")
    refused = in_venv(venv, "call", built.name, "hello world")
    assert refused.returncode == 1
    assert "spec.sha256" in refused.stderr and "does not match" in refused.stderr
    assert "(see docs/troubleshooting.md#pluginloaderror)" in refused.stderr
    assert refused.stderr.count("\n") == 1


def test_a_packaged_python_plugin_installs_from_its_project_and_loads(
    scaffolds: Scaffolds, venv: Path, tmp_path: Path
) -> None:
    """A Python plugin's module ships as package data next to its manifest."""
    built = scaffolds.get(("reranker", "python", "python"))
    built.assert_built()
    result = invoke("package", str(built.directory), "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    project = tmp_path / "weaviate-ext-reranker-python-python"
    assert (project / "pyproject.toml").is_file()
    assert not list(project.rglob("tests"))  # the plugin's tests are not shipped
    pip_install(venv, project)
    called = in_venv(venv, "call", built.name, "red fox", "a dog", "the red fox", "--json")
    assert called.returncode == 0, called.stderr
    assert [r["index"] for r in json.loads(called.stdout)] == [1, 0]


def test_a_native_package_is_a_platform_wheel(scaffolds: Scaffolds, tmp_path: Path) -> None:
    built = scaffolds.get(("transformer", "native", "c"))
    built.assert_built()
    result = invoke("package", str(built.directory), "--out", str(tmp_path), "--wheel")
    assert result.exit_code == 0, result.output
    (wheel,) = tmp_path.glob("*.whl")
    assert not wheel.name.endswith("-py3-none-any.whl"), wheel.name  # it holds a .so
    assert "spec.sha256 of the shipped binary" in result.output


def test_packaging_refuses_what_it_cannot_ship(tmp_path: Path) -> None:
    created = invoke(
        "new", "unbuilt", "--type", "reranker", "--runtime", "wasm", "--dir", str(tmp_path)
    )
    assert created.exit_code == 0
    result = invoke("package", str(tmp_path / "unbuilt"), "--out", str(tmp_path / "dist"))
    assert result.exit_code == 1
    assert "plugin.wasm' does not exist" in result.stderr  # the manifest check: build first
    node = invoke(
        "new",
        "nodeless",
        "--type",
        "reranker",
        "--runtime",
        "grpc",
        "--lang",
        "node",
        "--dir",
        str(tmp_path),
    )
    assert node.exit_code == 0
    with pytest.raises(ScaffoldError, match="node_modules is missing"):
        package_plugin(tmp_path / "nodeless", tmp_path / "dist")


def test_an_existing_project_is_replaced_only_with_force(
    scaffolds: Scaffolds, tmp_path: Path
) -> None:
    built = scaffolds.get(("generator", "python", "python"))
    built.assert_built()
    assert invoke("package", str(built.directory), "--out", str(tmp_path)).exit_code == 0
    again = invoke("package", str(built.directory), "--out", str(tmp_path))
    assert again.exit_code == 1 and "already exists" in again.stderr and "--force" in again.stderr
    forced = invoke("package", str(built.directory), "--out", str(tmp_path), "--force")
    assert forced.exit_code == 0, forced.output


def test_a_wrong_declared_sha256_is_refused(scaffolds: Scaffolds, tmp_path: Path) -> None:
    built = scaffolds.get(("auth", "wasm", "c"))
    built.assert_built()
    copy = tmp_path / "plugin"
    copy_plugin(built.directory, copy)
    manifest = load_manifest(copy / "plugin.yaml")
    text = (copy / "plugin.yaml").read_text()
    (copy / "plugin.yaml").write_text(
        set_spec_field(manifest, text, "sha256", '"' + "0" * 64 + '"', "binary")
    )
    with pytest.raises(ScaffoldError, match="spec.sha256 is 0+ but plugin.wasm has sha256"):
        package_plugin(copy, tmp_path / "dist")


def test_copy_plugin_leaves_out_build_leftovers(tmp_path: Path) -> None:
    source = tmp_path / "p"
    for rel in (
        "plugin.yaml",
        "src/a.py",
        "src/__pycache__/a.cpython-311.pyc",
        "tests/test_a.py",
        "build/target/release/x",
        "build/model/model.bin",
        ".gitignore",
        "plugin.wasm.tmp",
        "node_modules/@grpc/grpc-js/index.js",
        "notes.txt",
    ):
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / rel).write_text("x")
    copied = copy_plugin(source, tmp_path / "out", exclude=["notes.txt"])
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in copied) == [
        "build/model/model.bin",
        "node_modules/@grpc/grpc-js/index.js",
        "plugin.yaml",
        "src/a.py",
    ]


def test_set_spec_field_keeps_comments_and_refuses_flow_style(tmp_path: Path) -> None:
    path = tmp_path / "plugin.yaml"
    path.write_text(
        "apiVersion: weaviate.io/v1\nkind: Plugin\nmetadata: {name: x, version: 1.0.0}\n"
        "spec:\n  type: reranker\n  runtime: wasm\n  binary: ./x.wasm   # the module\n"
    )
    (tmp_path / "x.wasm").write_bytes(b"\0asm")
    manifest = load_manifest(path)
    ab, cd = '"' + "ab" * 32 + '"', '"' + "cd" * 32 + '"'
    text = set_spec_field(manifest, path.read_text(), "sha256", ab, "binary")
    assert f"  binary: ./x.wasm   # the module\n  sha256: {ab}\n" in text
    path.write_text(text)
    again = set_spec_field(load_manifest(path, check_files=False), text, "sha256", cd, "binary")
    assert again.count("sha256") == 1 and f"sha256: {cd}" in again
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        "apiVersion: weaviate.io/v1\nkind: Plugin\nmetadata: {name: x, version: 1.0.0}\n"
        "spec: {type: reranker, runtime: wasm, binary: ./x.wasm}\n"
    )
    with pytest.raises(ScaffoldError, match="on a line of its own"):
        set_spec_field(load_manifest(flow), flow.read_text(), "sha256", '"ab"', "binary")


@pytest.mark.parametrize(
    ("setuptools", "isolated"),
    [("84.2.1", False), ("70.1.0", False), ("70.0.0", True), ("65.5.0", True), (None, True)],
)
def test_the_wheel_is_built_offline_only_with_a_setuptools_that_can(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setuptools: str | None, isolated: bool
) -> None:
    """A fresh venv's old setuptools (no bdist_wheel without ``wheel``) means isolation."""
    import importlib.metadata

    from weaviate_ext.scaffold import package

    def version(name: str) -> str:
        assert name == "setuptools"
        if setuptools is None:
            raise importlib.metadata.PackageNotFoundError(name)
        return setuptools

    commands: list[list[str]] = []

    def run(command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        commands.append(command)
        (tmp_path / "x-1.0-py3-none-any.whl").write_bytes(b"")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(importlib.metadata, "version", version)
    monkeypatch.setattr(package.subprocess, "run", run)
    assert package.offline_build_possible() is not isolated
    made = package.build_wheel(tmp_path / "project", tmp_path)
    assert made.name == "x-1.0-py3-none-any.whl"
    (command,) = commands
    assert ("--no-build-isolation" in command) is not isolated
    assert command[-1] == str(tmp_path / "project")
