"""Finding installed plugins and runtimes through entry points, by name, lazily.

Like stevedore's named extension manager, names are read from the installed
distributions' metadata first and a package is imported only when its name is asked
for, so one broken or slow package does not cost every host start.

Two entry-point groups:

* ``weaviate_ext`` -- plugin packages. The entry point's name is the plugin's name and
  its object implements :func:`~weaviate_ext.hookspecs.weaviate_ext_discover`.
* ``weaviate_ext.runtimes`` -- bridges. The entry point's name is the runtime's name
  (the ``spec.runtime`` of a manifest) and its object implements
  :func:`~weaviate_ext.hookspecs.weaviate_ext_make_plugin`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
import importlib_metadata

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
