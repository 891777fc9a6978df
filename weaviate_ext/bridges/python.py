"""The ``python`` runtime: plugins that run in the host process.

``spec.entrypoint: module:object`` names the plugin. The module is looked up first in
the plugin's ``src/`` directory and the directory itself (imported under a private
module name per load, so two plugins may both call their module ``plugin`` and a
reload always runs the current source), then among installed packages. ``object`` may
be a module, an instance or a class (instantiated with no arguments); its
``@weaviate_ext.hookimpl`` methods are the plugin.

Python plugins are not isolated: same process, same memory, trusted code only.
``resources`` cannot be enforced and a warning says so at load time.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import itertools
import logging
import re
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

from weaviate_ext.errors import PluginLoadError
from weaviate_ext.hookspecs import hookimpl
from weaviate_ext.limits import warn_unenforced
from weaviate_ext.manifest import Manifest, PluginConfig

RUNTIME = "python"

ISOLATION = "none: in the host process (trusted code only)"
"""What ``weaviate-ext list`` says isolates a plugin of this runtime."""

log = logging.getLogger("weaviate_ext")

_import_lock = threading.Lock()
_generation = itertools.count(1)
_ENTRYPOINT = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*)?$")


PRIVATE_PREFIX = "_weaviate_ext_plugin_"


class _FreshSourceLoader(importlib.machinery.SourceFileLoader):
    """Compiles from the source on every import, never from ``__pycache__``: a bytecode
    file is trusted when the source's mtime (in whole seconds) and size match, so an
    edit within the same second that keeps the size would reload the old code."""

    def get_code(self, fullname: str) -> Any:
        path = self.get_filename(fullname)
        return self.source_to_code(self.get_data(path), path)


def _spec_in(directories: list[Path], top: str, fullname: str) -> Any:
    """The spec of module or package ``top`` in ``directories``, as ``fullname``."""
    for directory in directories:
        package = directory / top / "__init__.py"
        if package.is_file():
            return importlib.util.spec_from_file_location(
                fullname,
                package,
                loader=_FreshSourceLoader(fullname, str(package)),
                submodule_search_locations=[str(package.parent)],
            )
        module = directory / f"{top}.py"
        if module.is_file():
            return importlib.util.spec_from_file_location(
                fullname, module, loader=_FreshSourceLoader(fullname, str(module))
            )
    return None


class _PrivateFinder:
    """Finds the submodules of a plugin package imported under a private name, with
    the same always-from-source loader."""

    @staticmethod
    def find_spec(fullname: str, path: Any = None, target: Any = None) -> Any:
        if not fullname.startswith(PRIVATE_PREFIX) or path is None:
            return None
        return _spec_in([Path(p) for p in path], fullname.rpartition(".")[2], fullname)


if not any(isinstance(f, _PrivateFinder) for f in sys.meta_path):
    sys.meta_path.insert(0, _PrivateFinder())


def import_entrypoint_module(module_name: str, directories: list[Path], plugin: str) -> ModuleType:
    """Import ``module_name`` from ``directories`` under a private name, or normally."""
    top, _, rest = module_name.partition(".")
    with _import_lock:
        safe = re.sub(r"\W", "_", plugin)
        private = f"{PRIVATE_PREFIX}{safe}_{next(_generation)}"
        spec = _spec_in(directories, top, private)
        if spec is None or spec.loader is None:
            return importlib.import_module(module_name)
        module = importlib.util.module_from_spec(spec)
        sys.modules[private] = module
        try:
            spec.loader.exec_module(module)
            return importlib.import_module(f"{private}.{rest}") if rest else module
        except BaseException:
            for key in [k for k in sys.modules if k == private or k.startswith(private + ".")]:
                del sys.modules[key]
            raise


def resolve(manifest: Manifest) -> object:
    """The plugin object named by ``spec.entrypoint`` (a class is instantiated)."""
    name = manifest.name
    entrypoint = manifest.spec.entrypoint
    if not entrypoint:
        raise PluginLoadError(name, "the python runtime needs spec.entrypoint: 'module:object'")
    if not _ENTRYPOINT.match(entrypoint):
        raise PluginLoadError(name, f"spec.entrypoint {entrypoint!r} is not 'module:object'")
    module_name, _, attribute = entrypoint.partition(":")
    directories = [manifest.directory / "src", manifest.directory] if manifest.path else []
    try:
        obj: Any = import_entrypoint_module(module_name, directories, name)
    except ImportError as exc:
        raise PluginLoadError(name, f"cannot import {module_name!r}: {exc}") from None
    except Exception as exc:
        raise PluginLoadError(
            name, f"importing {module_name!r} raised {type(exc).__name__}: {exc}"
        ) from exc
    for part in attribute.split(".") if attribute else ():
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise PluginLoadError(
                name, f"{module_name!r} has no attribute {attribute!r} (spec.entrypoint)"
            ) from None
    if isinstance(obj, type):
        try:
            obj = obj()
        except Exception as exc:
            raise PluginLoadError(
                name, f"{entrypoint}() raised {type(exc).__name__}: {exc}"
            ) from exc
    return obj


@hookimpl
def weaviate_ext_make_plugin(manifest: Manifest, config: PluginConfig) -> object | None:
    """Build an in-process Python plugin from ``spec.entrypoint``."""
    if manifest.spec.runtime != RUNTIME:
        return None
    warn_unenforced(manifest, (), log, "the python runtime runs in the host process")
    log.info("plugin %s runs in the host process (python runtime, not sandboxed)", manifest.name)
    return resolve(manifest)


@hookimpl
def weaviate_ext_isolation(manifest: Manifest) -> str | None:
    """A Python plugin runs in the host's process: :data:`ISOLATION`."""
    return ISOLATION if manifest.spec.runtime == RUNTIME else None
