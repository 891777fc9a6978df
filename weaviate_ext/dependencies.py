"""Dependencies between plugins: checking ranges and ordering loads.

Ranges are npm-style and matched by ``semantic_version`` (through
:meth:`Dependency.matches`); ordering is :class:`graphlib.TopologicalSorter`.
"""

from __future__ import annotations

import graphlib
from collections.abc import Callable, Mapping, Sequence

from weaviate_ext._version import __version__
from weaviate_ext.errors import DependencyError
from weaviate_ext.manifest import FRAMEWORK_NAME, Manifest


def check(manifest: Manifest, version_of: Callable[[str], str | None]) -> None:
    """Raise :class:`DependencyError` unless every dependency is present and in range.

    ``version_of(name)`` gives the version of a loaded (or loadable) plugin, or ``None``.
    The framework itself is the dependency named ``weaviate-ext``.
    """
    for dep in manifest.spec.dependencies:
        version = __version__ if dep.name == FRAMEWORK_NAME else version_of(dep.name)
        if version is None:
            raise DependencyError(
                manifest.name,
                f"depends on {dep.name!r} {dep.version}, which is not loaded "
                f"({manifest.where('spec.dependencies')})",
            )
        if not dep.matches(version):
            raise DependencyError(
                manifest.name,
                f"depends on {dep.name!r} {dep.version}, but {dep.name!r} {version} is "
                f"{'installed' if dep.name == FRAMEWORK_NAME else 'loaded'}",
            )


def load_order(
    manifests: Sequence[Manifest],
) -> tuple[list[Manifest], dict[str, DependencyError]]:
    """Order manifests so each comes after the ones it depends on.

    Dependencies outside ``manifests`` are ignored here (checked at load). Returns the
    order and, for plugins caught in a cycle, an error naming both ends of the edge.
    """
    by_name = {m.name: m for m in manifests}
    graph = {m.name: {d.name for d in m.spec.dependencies if d.name in by_name} for m in manifests}
    failed: dict[str, DependencyError] = {}
    while True:
        try:
            order = list(graphlib.TopologicalSorter(graph).static_order())
            break
        except graphlib.CycleError as exc:
            cycle: list[str] = list(dict.fromkeys(exc.args[1]))
            path = " -> ".join([*cycle, cycle[0]])
            for name in cycle:
                failed[name] = DependencyError(name, f"is part of a dependency cycle: {path}")
                graph.pop(name, None)
            for deps in graph.values():
                deps.difference_update(cycle)
    return [by_name[n] for n in order if n in by_name and n not in failed], failed


def dependents(name: str, loaded: Mapping[str, Manifest]) -> list[str]:
    """Loaded plugins that declare a dependency on ``name``."""
    return sorted(
        other
        for other, m in loaded.items()
        if other != name and any(d.name == name for d in m.spec.dependencies)
    )
