"""Helpers of the scaffold tests: the matrix of scaffolds, running the CLI, tools."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import attrs
import pytest
from click.testing import CliRunner
from node_deps import install_node_modules, link_node_modules

from weaviate_ext.cli import cli
from weaviate_ext.scaffold.build import BuildResult, run_build
from weaviate_ext.scaffold.create import COMBINATIONS

Combo = tuple[str, str, str]


def combo_name(combo: Combo) -> str:
    """The plugin name of a combination in the matrix: ``<type>-<runtime>-<lang>``."""
    kind, runtime, lang = combo
    return f"{kind}-{runtime}-{lang}"


def combo_id(combo: Combo) -> str:
    """The pytest id of a combination."""
    return combo_name(combo)


def require_tool(tool: str) -> str:
    """The path of ``tool``, or fail (not skip) with how to install it."""
    found = shutil.which(tool)
    if found is None:
        pytest.fail(
            f"{tool!r} is not on PATH: the scaffold tests build every runtime's plugins "
            "(scripts/install_toolchains.sh installs clang, gcc, rustc, cargo; node >= 18 "
            "and npm for the Node.js scaffolds)",
            pytrace=False,
        )
    return found


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """The real ``weaviate-ext`` program (``python -m weaviate_ext``), as a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "weaviate_ext", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def invoke(*args: str, input: str | None = None) -> Any:
    """``weaviate-ext ARGS`` in process (click's runner; ``.stdout``, ``.stderr``)."""
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


@attrs.define
class Built:
    """One scaffold of the matrix: where it is and how its build went."""

    combo: Combo
    directory: Path
    created: str
    build: BuildResult

    @property
    def name(self) -> str:
        """The plugin's name."""
        return combo_name(self.combo)

    @property
    def manifest(self) -> Path:
        """Its plugin.yaml."""
        return self.directory / "plugin.yaml"

    def assert_built(self) -> None:
        """Fail with the build's output unless it succeeded."""
        assert self.build.ok, f"build.sh of {self.name} failed:\n{self.build.output}"


class Scaffolds:
    """The matrix of scaffolds, each created (``weaviate-ext new``) and built on first use."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.env = env
        self._node_modules: Path | None = None
        self._built: dict[Combo, Built] = {}
        self._lock = threading.Lock()

    def link_node_modules(self, directory: Path) -> None:
        """Give a Node.js scaffold the shared ``node_modules`` (hard links)."""
        link_node_modules(self.node_modules(), directory)

    def node_modules(self) -> Path:
        """The shared ``node_modules`` (installed on first use)."""
        if self._node_modules is None:
            require_tool("node")
            npm = require_tool("npm")
            self._node_modules = install_node_modules(self.root.parent / "node-deps", npm)
        return self._node_modules

    def get(self, combo: Combo) -> Built:
        """The scaffold of ``combo``, created and built if it was not yet."""
        with self._lock:
            if combo not in self._built:
                self._built[combo] = self._make(combo)
            return self._built[combo]

    def all(self) -> list[Built]:
        """Every combination, created and built."""
        return [self.get(combo) for combo in COMBINATIONS]

    def _make(self, combo: Combo) -> Built:
        kind, runtime, lang = combo
        if lang == "c":
            require_tool("clang" if runtime == "wasm" else "gcc")
        name = combo_name(combo)
        where = str(self.root)
        result = invoke(
            "new", name, "--type", kind, "--runtime", runtime, "--lang", lang, "--dir", where
        )
        assert result.exit_code == 0, result.output
        directory = self.root / name
        if lang == "node":
            self.link_node_modules(directory)
        build = run_build(directory, env=self.env)
        return Built(combo, directory, result.output, build)
