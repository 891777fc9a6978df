"""Finding plugins: installed packages and runtimes through entry points, lazily, and
the manifests in a directory.

Like stevedore's named extension manager, names are read from the installed
distributions' metadata first and a package is imported only when its name is asked
for, so one broken or slow package does not cost every host start.

Two entry-point groups:

* ``weaviate_ext`` -- plugin packages. The entry point's name is the plugin's name and
  its object implements :func:`~weaviate_ext.hookspecs.weaviate_ext_discover`.
* ``weaviate_ext.runtimes`` -- bridges. The entry point's name is the runtime's name
  (the ``spec.runtime`` of a manifest) and its object implements
  :func:`~weaviate_ext.hookspecs.weaviate_ext_make_plugin`.

:class:`Packages` imports a plugin package when one of its names is first asked for and
loads the manifests it ships; :func:`manifests_in` reads every ``plugin.yaml`` below a
directory.

Listing does not import either: :meth:`Installed.read_manifest` finds the ``plugin.yaml``
an installed package ships as package data through the distribution's file list
(``RECORD``), or for an editable install in the directory of the entry point's module
(located with :func:`importlib.util.find_spec` of its top-level package, which does not
run it), and reads it with the manifest loader. Its code runs only when the plugin is
loaded (asked for by name, :meth:`PluginManager.load_installed`, ``list --check``).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import importlib_metadata
import pluggy

from weaviate_ext import dependencies
from weaviate_ext.errors import PluginLoadError, WeaviateExtError
from weaviate_ext.manifest import Manifest, load_manifest

log = logging.getLogger("weaviate_ext")

PLUGIN_GROUP = "weaviate_ext"
RUNTIME_GROUP = "weaviate_ext.runtimes"
DISABLE_ENV = "WEAVIATE_EXT_DISABLE"
MANIFEST_FILE = "plugin.yaml"
"""The file name of the manifests a package ships (found without importing it)."""


@attrs.frozen
class Installed:
    """An entry point found in the installed distributions, not imported yet."""

    name: str
    value: str
    distribution: str
    entry_point: importlib_metadata.EntryPoint = attrs.field(repr=False, eq=False)

    def load(self) -> Any:
        """Import the entry point's object."""
        return self.entry_point.load()

    @property
    def module(self) -> str:
        """The module part of the entry point's value (``pkg.sub`` of ``pkg.sub:obj``)."""
        return self.value.partition(":")[0].strip()

    def manifest_files(self) -> list[Path]:
        """The ``plugin.yaml`` files the distribution ships, without importing anything;
        the one in the entry point's module directory first."""
        found: list[Path] = []
        module_dir = _module_dir(self.module)
        if module_dir is not None and (module_dir / MANIFEST_FILE).is_file():
            found.append(module_dir / MANIFEST_FILE)  # also what an editable install has
        dist = self.entry_point.dist
        if isinstance(dist, importlib_metadata.Distribution):
            found += _recorded_manifests(dist)
        return list(dict.fromkeys(p.resolve() for p in found))

    def read_manifest(self) -> Manifest | None:
        """The manifest named like this entry point that the package ships, read without
        importing the package; ``None`` when none is found (the package's discovery hook
        may still hand one over when it is loaded).

        Raises :class:`~weaviate_ext.ManifestError` when that manifest is invalid.
        """
        errors: list[WeaviateExtError] = []
        for path in self.manifest_files():
            try:
                manifest = load_manifest(path)
            except WeaviateExtError as exc:
                errors.append(exc)
                continue
            if manifest.name == self.name:
                return manifest
        if errors:
            raise errors[0]
        return None


def _recorded_manifests(dist: importlib_metadata.Distribution) -> Iterator[Path]:
    """The manifests in ``dist``'s file list (``RECORD``), as paths on disk."""
    try:
        files = dist.files
    except Exception:  # an unreadable RECORD: fall back to the module directory
        log.debug("cannot read the file list of %s", dist.name, exc_info=True)
        return
    for file in files or ():
        if file.name == MANIFEST_FILE:
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                yield path


def _module_dir(module: str) -> Path | None:
    """The directory of ``module`` (a package's own, a module's parent), found without
    importing it: only the top-level package's spec is looked up (finding the spec of a
    submodule would import its parents)."""
    top, *rest = module.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        roots = [Path(p) for p in spec.submodule_search_locations]
    elif spec.origin and not rest:
        return Path(spec.origin).parent
    else:
        return None
    for root in roots:
        target = root.joinpath(*rest)
        if target.is_dir():
            return target
        if rest and target.with_suffix(".py").is_file():
            return target.parent
    return None


def installed(group: str) -> dict[str, Installed]:
    """Every entry point of ``group`` by name; the first distribution wins a clash."""
    found: dict[str, Installed] = {}
    for ep in importlib_metadata.entry_points(group=group):
        dist = ep.dist.name if ep.dist is not None else "?"
        if ep.name in found:
            log.warning(
                "entry point %r in group %r is defined by %s and %s; using %s",
                ep.name,
                group,
                found[ep.name].distribution,
                dist,
                found[ep.name].distribution,
            )
            continue
        found[ep.name] = Installed(ep.name, ep.value, dist, ep)
    return found


def disabled_names(extra: Iterable[str] = (), environ: Mapping[str, str] | None = None) -> set[str]:
    """Names switched off by the manager argument and ``WEAVIATE_EXT_DISABLE=a,b``."""
    env = os.environ if environ is None else environ
    names = {n.strip() for n in env.get(DISABLE_ENV, "").split(",")}
    names.update(n.strip() for n in extra)
    names.discard("")
    return names


def manifest_paths(answers: Iterable[Any]) -> list[Path]:
    """Flatten what ``weaviate_ext_discover`` implementations returned into paths.

    Accepts paths, strings and ``importlib.resources`` traversables; a traversable that
    is not on the file system is refused (plugins must be installed unzipped).
    """
    paths: list[Path] = []
    for answer in answers:
        items = [answer] if isinstance(answer, (str, os.PathLike)) else list(answer or ())
        for item in items:
            if isinstance(item, (str, os.PathLike)):
                paths.append(Path(item))
            else:
                path = Path(str(item))
                if not path.exists():
                    raise ValueError(f"manifest {item!r} is not a file on disk")
                paths.append(path)
    return paths


def manifests_in(root: Path) -> tuple[list[Manifest], dict[str, WeaviateExtError]]:
    """Every ``plugin.yaml`` below ``root`` (hidden directories skipped), read.

    Returns the manifests and what failed: a manifest that cannot be read (by its path)
    and a name defined twice (by name; the first definition stays in the list).
    """
    manifests: list[Manifest] = []
    failed: dict[str, WeaviateExtError] = {}
    seen: dict[str, Path] = {}
    for path in sorted(root.rglob("plugin.yaml")):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        try:
            manifest = load_manifest(path)
        except WeaviateExtError as exc:
            failed[str(path)] = exc
            continue
        if manifest.name in seen:
            failed[manifest.name] = PluginLoadError(
                manifest.name, f"is defined twice: {seen[manifest.name]} and {path}"
            )
            continue
        seen[manifest.name] = path
        manifests.append(manifest)
    return manifests, failed


class Packages:
    """A manager's pip-installed plugin packages (group ``weaviate_ext``) by plugin name,
    each imported the first time one of its plugins is asked for."""

    def __init__(self, registry: pluggy.PluginManager, entries: Mapping[str, Installed]) -> None:
        self.registry = registry
        self.entries = dict(entries)

    def source(self, name: str) -> str:
        """Where the plugins of package ``name`` come from, for status rows."""
        entry = self.entries[name]
        return f"{entry.distribution} (entry point {name})"

    def manifests(self, name: str) -> list[Manifest]:
        """Import package ``name``, register it and read the manifests its
        ``weaviate_ext_discover`` hook hands over (the other packages' hooks are not asked)."""
        entry = self.entries[name]
        obj = entry.load()
        if not self.registry.is_registered(obj):
            self.registry.register(obj, name=f"package:{entry.name}")
        if not any(
            impl.plugin is obj for impl in self.registry.hook.weaviate_ext_discover.get_hookimpls()
        ):
            raise PluginLoadError(
                entry.name, f"{entry.value} implements no weaviate_ext_discover hook"
            )
        others = [p for p in self.registry.get_plugins() if p is not obj]
        discover = self.registry.subset_hook_caller("weaviate_ext_discover", others)
        return [load_manifest(p) for p in manifest_paths(discover())]

    def load(
        self,
        name: str,
        loaded: Container[str],
        load: Callable[[Manifest, str], object],
        failed: Callable[[str, WeaviateExtError, str], None],
    ) -> None:
        """Import package ``name`` and ``load(manifest, source)`` every manifest it ships
        that is not ``loaded``, dependencies first.

        A package that cannot be imported, or that ships no manifest named ``name``,
        raises :class:`PluginLoadError`, reported to ``failed(name, error, source)``.
        """
        entry = self.entries[name]
        source = self.source(name)
        try:
            manifests = self.manifests(name)
        except WeaviateExtError as exc:
            failed(name, exc, source)
            raise
        except Exception as exc:
            reason = f"cannot import {entry.value} from {entry.distribution}: {exc}"
            error = PluginLoadError(name, reason)
            failed(name, error, source)
            raise error from None
        for manifest in dependencies.ordered(manifests):
            if manifest.name not in loaded:
                load(manifest, source)
        if name not in loaded:
            error = PluginLoadError(name, f"{entry.distribution} ships no manifest named {name!r}")
            failed(name, error, source)
            raise error
