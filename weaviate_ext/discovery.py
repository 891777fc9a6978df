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
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Container, Iterable, Mapping
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
