"""``weaviate-ext package``: a plugin directory as a pip-installable package.

The package project holds one import package, ``weaviate_ext_<name>``: its
``__init__`` implements ``weaviate_ext_discover`` and is registered under the plugin's
name in the entry-point group ``weaviate_ext``, and its ``plugin/`` folder is a copy
of the plugin directory (manifest, binary, sources, a gRPC server and its
``node_modules``) shipped as package data. For a ``wasm`` or ``native`` plugin the
shipped manifest declares the binary's sha256 (``spec.sha256``), which the bridge
checks at every load: a binary changed after installation is refused.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.metadata
import itertools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from weaviate_ext._version import __version__
from weaviate_ext.errors import ManifestError
from weaviate_ext.manifest import Manifest, load_manifest
from weaviate_ext.scaffold.build import find_manifest, set_spec_field
from weaviate_ext.scaffold.create import ScaffoldError, _environment

EXCLUDED_DIRS = frozenset(
    {"__pycache__", ".git", ".hg", ".svn", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
    | {"tests", "dist", "target", ".tox", ".venv"}
)
"""Directories of a plugin never shipped (anywhere below the plugin directory)."""

EXCLUDED_PATHS = ("build/target", "build/cargo-home")
"""Paths (relative to the plugin directory) never shipped: cargo's build output."""

EXCLUDED_FILES = ("*.pyc", "*.pyo", "*.tmp", ".*")
"""File name patterns never shipped (dotfiles included: .gitignore, dev leftovers)."""


@attrs.frozen
class PackageResult:
    """A packaged plugin: its project directory, names, and the wheel if one was built."""

    project: Path
    name: str
    dist_name: str
    package: str
    version: str
    sha256: str | None
    files: tuple[Path, ...]
    wheel: Path | None = None


def distribution_name(name: str) -> str:
    """The default pip name of plugin ``name``: ``weaviate-ext-<name>``."""
    return f"weaviate-ext-{name}"


def import_name(name: str) -> str:
    """The import package of plugin ``name``: ``weaviate_ext_<name with _>``."""
    return "weaviate_ext_" + name.replace("-", "_")


def _excluded(rel: Path, is_dir: bool, extra: Iterable[str]) -> bool:
    text = rel.as_posix()
    name = rel.name
    if is_dir and (name in EXCLUDED_DIRS or name.startswith(".") or text in EXCLUDED_PATHS):
        return True
    if not is_dir and any(fnmatch.fnmatch(name, p) for p in EXCLUDED_FILES):
        return True
    return any(fnmatch.fnmatch(text, p) or fnmatch.fnmatch(name, p) for p in extra)


def copy_plugin(source: Path, destination: Path, exclude: Iterable[str] = ()) -> list[Path]:
    """Copy the plugin directory ``source`` to ``destination``, minus build leftovers."""
    patterns = list(exclude)
    copied: list[Path] = []
    resolved_destination = destination.resolve()
    for root, dirs, names in os.walk(source, followlinks=True):
        here = Path(root)
        rel_root = here.relative_to(source)
        keep = []
        for d in sorted(dirs):
            if (here / d).resolve() == resolved_destination:
                continue  # the package is being written inside the plugin directory
            if not _excluded(rel_root / d, True, patterns):
                keep.append(d)
        dirs[:] = keep
        for name in sorted(names):
            rel = rel_root / name
            if _excluded(rel, False, patterns) or not (here / name).is_file():
                continue
            target = destination / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(here / name, target)
            copied.append(target)
    return copied


def _declare_sha256(manifest: Manifest, shipped: Path) -> str | None:
    """Write ``spec.sha256`` of the binary into the shipped copy of the manifest."""
    if manifest.spec.runtime not in ("wasm", "native") or manifest.binary_path is None:
        return None
    binary = manifest.binary_path
    if not binary.is_file():
        raise ScaffoldError(f"{binary} does not exist: build the plugin first (./build.sh)")
    digest = hashlib.sha256(binary.read_bytes()).hexdigest()
    declared = manifest.spec.sha256
    if declared is not None and declared.lower() != digest:
        raise ScaffoldError(
            f"{manifest.where('spec.sha256')}: spec.sha256 is {declared} but {binary.name} "
            f"has sha256 {digest}; rebuild, or remove spec.sha256 (package writes it)"
        )
    text = shipped.read_text(encoding="utf-8")
    value = f'"{digest}"  # of {manifest.spec.binary}, checked at every load'
    shipped.write_text(set_spec_field(manifest, text, "sha256", value, "binary"), "utf-8")
    return digest


def package_plugin(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str] = "dist",
    *,
    dist_name: str | None = None,
    version: str | None = None,
    exclude: Iterable[str] = (),
    force: bool = False,
) -> PackageResult:
    """Write the package project of the plugin at ``path`` into ``out/<dist name>/``.

    The plugin must be built (its binary is shipped). An existing project directory is
    refused unless ``force``.
    """
    manifest_path = find_manifest(path)
    manifest = load_manifest(manifest_path)
    source = manifest.directory
    name = manifest.name
    dist = dist_name or distribution_name(name)
    package = import_name(name)
    project = Path(out) / dist
    if project.exists():
        if not force:
            raise ScaffoldError(f"{project} already exists; remove it or pass --force")
        shutil.rmtree(project)
    command = manifest.spec.command or ()
    node = bool(command) and Path(command[0]).name == "node"
    if node and not (source / "node_modules").exists():
        raise ScaffoldError(
            f"{source}/node_modules is missing: build the plugin first (./build.sh), "
            "the package ships its npm dependencies"
        )
    plugin_dir = project / package / "plugin"
    files = copy_plugin(source, plugin_dir, exclude)
    shipped_manifest = plugin_dir / manifest_path.name
    if not shipped_manifest.is_file():
        raise ScaffoldError(f"{manifest_path.name} was excluded from the package")
    digest = _declare_sha256(manifest, shipped_manifest)
    try:
        shipped = load_manifest(shipped_manifest)
    except ManifestError as exc:
        raise ScaffoldError(f"the packaged manifest is not valid: {exc}") from None
    if digest is not None and shipped.spec.sha256 != digest:
        raise ScaffoldError(f"{shipped_manifest}: spec.sha256 was not written")
    readme = source / "README.md"
    package_version = version or manifest.version
    context: dict[str, Any] = {
        "name": name,
        "dist_name": dist,
        "package": package,
        "version": package_version,
        "description": manifest.metadata.description or f"The weaviate-ext plugin {name}",
        "framework_floor": ".".join(__version__.split(".")[:2]),
        "manifest_name": manifest_path.name,
        "binary": manifest.spec.binary,
        "patterns": ["plugin/*", "plugin/**/*"],
        "build_requires": BUILD_REQUIRES,
    }
    env = _environment()
    written = list(files)
    outputs = {
        project / "pyproject.toml": "_package/pyproject.toml.j2",
        project / package / "__init__.py": "_package/__init__.py.j2",
    }
    if manifest.spec.runtime == "native":
        outputs[project / "setup.py"] = "_package/setup.py.j2"
    for target, template in outputs.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(env.get_template(template).render(context), encoding="utf-8")
        written.append(target)
    if readme.is_file():
        shutil.copyfile(readme, project / "README.md")
    else:
        (project / "README.md").write_text(f"# {dist}\n\nThe weaviate-ext plugin {name}.\n")
    written.append(project / "README.md")
    return PackageResult(project, name, dist, package, package_version, digest, tuple(written))


SETUPTOOLS_FLOOR = (70, 1)
"""The first setuptools with ``bdist_wheel`` built in (no ``wheel`` package needed)."""

BUILD_REQUIRES = "setuptools>=70.1"
"""The package project's build requirement (``[build-system] requires``)."""


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for part in text.split(".")[:3]:
        digits = "".join(itertools.takewhile(str.isdigit, part))
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def offline_build_possible() -> bool:
    """Whether this environment has a setuptools that builds wheels on its own.

    Then the wheel is built without isolation (offline, fast); otherwise pip builds it in
    an isolated environment with the declared build requirements (from the package index).
    """
    try:
        found = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        return False
    return _version_tuple(found) >= SETUPTOOLS_FLOOR


def build_wheel(
    project: str | os.PathLike[str],
    wheel_dir: str | os.PathLike[str],
    *,
    isolation: bool | None = None,
) -> Path:
    """Build the wheel of a package project with pip (PEP 517, no dependencies).

    ``isolation`` None (the default) builds offline with this environment's setuptools
    when it is recent enough (:func:`offline_build_possible`), else in pip's isolated
    build environment with the project's declared build requirements (``setuptools>=70.1``
    from the package index): ``package --wheel`` works in a fresh virtualenv too.
    """
    wheel_dir = Path(wheel_dir)
    wheel_dir.mkdir(parents=True, exist_ok=True)
    if isolation is None:
        isolation = not offline_build_possible()
    before = set(wheel_dir.glob("*.whl"))
    command = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "--disable-pip-version-check",
        "--wheel-dir",
        str(wheel_dir),
        str(project),
    ]
    if not isolation:
        command.insert(6, "--no-build-isolation")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-12:]
        how = (
            f"in an isolated build environment ({BUILD_REQUIRES} from the package index; "
            f"offline, install {BUILD_REQUIRES} here)"
            if isolation
            else "with this environment's setuptools"
        )
        raise ScaffoldError(f"pip wheel failed {how}: " + " | ".join(detail))
    made = sorted(set(wheel_dir.glob("*.whl")) - before, key=lambda p: p.stat().st_mtime)
    if not made:
        # the same wheel name was there already: pip overwrote it
        made = sorted(wheel_dir.glob("*.whl"), key=lambda p: p.stat().st_mtime)
    if not made:
        raise ScaffoldError(f"pip wheel made no wheel in {wheel_dir}")
    return made[-1]
