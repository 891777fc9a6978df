"""Authoring plugins from the framework's wheel, as a new user would (issue 15, points 1-2).

The framework's wheel is built from a copy of the sources (``pip wheel --no-deps
--no-build-isolation``, offline), installed into a fresh virtualenv made with
``--system-site-packages`` (so the heavy dependencies resolve offline from this
environment), and every command then runs from an empty directory outside the
repository, with ``PYTHONPATH`` and ``WEAVIATE_EXT_SDK_DIR`` unset: ``weaviate-ext new``
for every type x runtime x language, then ``new`` + ``build.sh`` + ``weaviate-ext test``
for python, wasm (C and Rust), native (C) and grpc (Python and Node.js), and
``weaviate-ext package --wheel`` of each of them, and of a Python plugin installed and
listed.

The venv's ``weaviate_ext`` must be the wheel's, not this checkout's editable install
(whose import finder sits in the system site-packages): the first test checks
``weaviate_ext.__file__`` and that the contracts and SDKs come from the wheel's package
data. Select these tests with ``-m wheel``; they take about a minute (a Rust build and
an ``npm install`` are the slow parts).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import venv
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from node_deps import install_node_modules, link_node_modules
from wheels import framework_wheel

pytestmark = [pytest.mark.wheel, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[1]
BUILT = (
    ("vectorizer", "python", "python"),
    ("vectorizer", "wasm", "c"),
    ("reranker", "wasm", "rust"),
    ("transformer", "native", "c"),
    ("generator", "grpc", "python"),
    ("reranker", "grpc", "node"),
)
"""What is built and tested from the wheel: every runtime and language of issue 15."""


@attrs.frozen
class Env:
    """The fresh venv with the wheel, and where to author plugins (outside the repo)."""

    python: Path
    bin: Path
    work: Path
    wheel: Path
    node_modules: Path | None

    @property
    def environ(self) -> dict[str, str]:
        """The environment of every command: the venv first, nothing from the checkout."""
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "WEAVIATE_EXT_SDK_DIR", "VIRTUAL_ENV", "PYTHONHOME")
        }
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.python.parent.parent)
        env["PYTHON"] = str(self.python)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        return env

    def run(
        self, *args: str | Path, cwd: Path | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """Run ``args`` in the venv's environment (from the work directory by default)."""
        return subprocess.run(
            [str(a) for a in args],
            cwd=cwd or self.work,
            env=self.environ,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def ok(self, *args: str | Path, cwd: Path | None = None) -> str:
        """Run ``args``; fail with its output unless it exits 0; its stdout."""
        done = self.run(*args, cwd=cwd)
        assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout


def _node_modules(where: Path) -> Path | None:
    """The Node.js template's npm dependencies, installed once (None without npm)."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        return None
    return install_node_modules(where, npm)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("wheel-authoring")
    assert not tmp.resolve().is_relative_to(ROOT)
    wheel = framework_wheel(tmp)
    home = tmp / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False, symlinks=True).create(home)
    python = home / "bin" / "python"
    work = tmp / "work"
    work.mkdir()
    built = Env(python, home / "bin", work, wheel, _node_modules(tmp / "node-deps"))
    # the system's pip installs into the venv (its python is the venv's); --ignore-installed:
    # never touch the checkout's editable install that the system site-packages hold
    built.ok(
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--no-index",
        "--ignore-installed",
        "--disable-pip-version-check",
        wheel,
    )
    yield built


def test_the_venv_runs_the_wheel_with_its_package_data(env: Env) -> None:
    script = (
        "import json, weaviate_ext\n"
        "from weaviate_ext.scaffold import sdk\n"
        "root = sdk.sdk_root('hookspecs/weaviate_plugin.h')\n"
        "print(json.dumps([weaviate_ext.__file__, str(root)]))\n"
    )
    module, data = json.loads(env.ok(env.python, "-c", script))
    site = env.python.parent.parent / "lib"
    assert Path(module).is_relative_to(site), module  # the wheel's copy, not the checkout
    assert Path(data).is_relative_to(site), data
    for rel in (
        "hookspecs/weaviate_plugin.h",
        "hookspecs/weaviate_plugin.proto",
        "hookspecs/plugin-manifest.schema.json",
        "sdk/c/weaviate_plugin_sdk.c",
        "sdk/c/build-plugin.sh",
        "sdk/rust/Cargo.toml",
        "sdk/rust/build-plugin.sh",
        "sdk/rust/src/lib.rs",
    ):
        shipped = Path(data) / rel
        assert not shipped.is_symlink(), rel  # a copy in the wheel
        assert shipped.read_bytes() == (ROOT / rel).read_bytes(), rel
    # the console script is the venv's
    assert (env.bin / "weaviate-ext").is_file()
    which = env.run("sh", "-c", "command -v weaviate-ext").stdout.strip()
    assert which == str(env.bin / "weaviate-ext")


def test_new_makes_every_type_runtime_and_language_from_the_wheel(env: Env) -> None:
    script = (
        "import sys\n"
        "from weaviate_ext.scaffold.create import COMBINATIONS, create_plugin\n"
        "for kind, runtime, lang in COMBINATIONS:\n"
        "    create_plugin(f'{kind}-{runtime}-{lang}', kind, runtime, lang, parent=sys.argv[1])\n"
        "print(len(COMBINATIONS))\n"
    )
    where = env.work / "all"
    where.mkdir()
    assert int(env.ok(env.python, "-c", script, where)) == 42
    assert len(list(where.iterdir())) == 42
    assert (where / "vectorizer-wasm-c" / "hookspecs" / "weaviate_plugin.h").is_file()
    assert (where / "storage-native-rust" / "sdk" / "rust" / "build-plugin.sh").is_file()
    assert (where / "auth-grpc-node" / "proto" / "weaviate_plugin.proto").is_file()


@pytest.mark.parametrize(("kind", "runtime", "lang"), BUILT, ids=["-".join(c) for c in BUILT])
def test_new_build_and_test_from_an_empty_directory(
    env: Env, kind: str, runtime: str, lang: str
) -> None:
    if lang == "node" and env.node_modules is None:
        pytest.fail("node and npm are needed for the Node.js scaffold", pytrace=False)
    name = f"w-{kind}-{runtime}-{lang}"
    where = env.work / name.removeprefix("w-")
    where.mkdir()
    env.ok(
        "weaviate-ext", "new", name, "--type", kind, "--runtime", runtime, "--lang", lang, cwd=where
    )
    plugin = where / name
    if lang == "node":
        assert env.node_modules is not None
        link_node_modules(env.node_modules, plugin)
    out = env.ok("bash", "build.sh", cwd=plugin)
    assert f"{name}: " in out
    report = env.ok("weaviate-ext", "test", ".", cwd=plugin)
    assert "FAIL" not in report, report
    # and the plugin as a pip package, built from the wheel-installed framework too
    env.ok("weaviate-ext", "package", ".", "--wheel", cwd=plugin)
    dist = name.replace("-", "_")
    assert len(list((plugin / "dist").glob(f"weaviate_ext_{dist}-0.1.0-*.whl"))) == 1


def test_package_wheel_of_a_python_plugin_in_the_fresh_venv(env: Env) -> None:
    where = env.work / "package"
    where.mkdir()
    env.ok("weaviate-ext", "new", "w-pkg", "--type", "vectorizer", "--runtime", "python", cwd=where)
    plugin = where / "w-pkg"
    env.ok("bash", "build.sh", cwd=plugin)
    env.ok("weaviate-ext", "package", ".", "--wheel", cwd=plugin)
    (made,) = (plugin / "dist").glob("weaviate_ext_w_pkg-0.1.0-*.whl")
    pyproject = (plugin / "dist" / "weaviate-ext-w-pkg" / "pyproject.toml").read_text()
    assert 'requires = ["setuptools>=70.1"]' in pyproject
    assert 'test = ["pytest>=8"]' in pyproject
    env.ok(
        env.python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--no-index",
        "--disable-pip-version-check",
        made,
    )
    listed = env.ok("weaviate-ext", "list", "--json")
    assert "w-pkg" in listed


NO_INDEX = (
    "No matching distribution",
    "Could not find a version",
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
)
"""What pip says when the package index cannot be reached."""


def test_package_wheel_builds_in_isolation_with_the_declared_requirement(env: Env) -> None:
    """The path of a venv whose setuptools cannot build wheels (a fresh Python 3.11 venv:
    setuptools 65, no ``wheel``): pip's isolated build env with ``setuptools>=70.1``."""
    where = env.work / "isolated"
    where.mkdir()
    env.ok("weaviate-ext", "new", "w-iso", "--type", "reranker", "--runtime", "python", cwd=where)
    env.ok("weaviate-ext", "package", "w-iso", cwd=where)
    script = (
        "import sys\n"
        "from weaviate_ext.scaffold.package import build_wheel\n"
        "print(build_wheel(sys.argv[1], sys.argv[2], isolation=True).name)\n"
    )
    done = env.run(env.python, "-c", script, where / "dist" / "weaviate-ext-w-iso", where / "w")
    if done.returncode != 0 and any(s.lower() in done.stderr.lower() for s in NO_INDEX):
        pytest.skip(f"the package index is not reachable: {done.stderr.strip()[-300:]}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "weaviate_ext_w_iso-0.1.0-py3-none-any.whl"
