"""The npm dependencies of the Node.js gRPC template, installed once and given to each
Node.js plugin as hard links: shared by tests/scaffold and tests/test_wheel_authoring.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from weaviate_ext.scaffold.create import _environment


def install_node_modules(directory: Path, npm: str) -> Path:
    """``npm install`` of the template's dependencies into ``directory``; its
    ``node_modules``."""
    template = _environment().get_template("grpc-node/package.json.j2")
    package = json.loads(template.render(name="node-deps", description="deps"))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "package.json").write_text(
        json.dumps({"private": True, "dependencies": package["dependencies"]})
    )
    done = subprocess.run(
        [npm, "install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"npm install failed:\n{done.stdout}\n{done.stderr}"
    return directory / "node_modules"


def link_node_modules(node_modules: Path, plugin: Path) -> None:
    """Give ``plugin`` the shared ``node_modules`` as hard links: a plugin process may
    read only its own directory (a symlink out of it points outside), and copying every
    file would be slow."""
    shutil.copytree(node_modules, plugin / "node_modules", symlinks=True, copy_function=os.link)
