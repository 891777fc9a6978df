"""Dependencies between plugins: checking ranges, ordering loads, loading what is needed.

Ranges are npm-style and matched by ``semantic_version`` (through
:meth:`Dependency.matches`); ordering is :class:`graphlib.TopologicalSorter`. The
manager loads through these functions: :func:`load_needed` imports the installed
plugins a manifest depends on, :func:`check` and :func:`check_dependents` check the
ranges both ways, :func:`load_in_order` loads a directory's plugins dependencies first.
"""

from __future__ import annotations

import graphlib
from collections.abc import Callable, Container, Mapping, Sequence

from weaviate_ext._version import __version__
from weaviate_ext.errors import DependencyError, PluginLoadError, WeaviateExtError
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


def unload_order(loaded: Mapping[str, Manifest]) -> list[str]:
    """The names of ``loaded`` in the order to unload them: dependents first."""
    order, _ = load_order(list(loaded.values()))
    ordered = [m.name for m in order]
    in_order = set(ordered)
    return [*ordered, *(n for n in loaded if n not in in_order)][::-1]


def dependents(name: str, loaded: Mapping[str, Manifest]) -> list[str]:
    """Loaded plugins that declare a dependency on ``name``."""
    return sorted(
        other
        for other, m in loaded.items()
        if other != name and any(d.name == name for d in m.spec.dependencies)
    )


def check_dependents(manifest: Manifest, loaded: Mapping[str, Manifest]) -> None:
    """Refuse a new version of a plugin outside the range a loaded plugin depends on."""
    for other, m in loaded.items():
        for dep in m.spec.dependencies:
            if dep.name == manifest.name and not dep.matches(manifest.version):
                raise DependencyError(
                    manifest.name,
                    f"version {manifest.version} is outside {other!r}'s range {dep.version}",
                )


def load_needed(
    manifest: Manifest,
    loaded: Container[str],
    installed: Container[str],
    loading: Container[str],
    load: Callable[[str], object],
) -> None:
    """``load(name)`` each installed (pip) plugin ``manifest`` depends on that is not
    ``loaded`` yet; one that is ``loading`` already closes a cycle."""
    for dep in manifest.spec.dependencies:
        if dep.name in loaded or dep.name not in installed:
            continue
        if dep.name in loading:
            raise DependencyError(manifest.name, f"is part of a dependency cycle with {dep.name!r}")
        try:
            load(dep.name)
        except WeaviateExtError as exc:
            raise DependencyError(
                manifest.name, f"depends on {dep.name!r}, which failed to load: {exc}"
            ) from None


def ordered(manifests: Sequence[Manifest]) -> list[Manifest]:
    """:func:`load_order`, raising the first cycle's error if there is one."""
    order, cycles = load_order(manifests)
    if cycles:
        raise next(iter(cycles.values()))
    return order


def load_in_order(
    manifests: Sequence[Manifest],
    failed: dict[str, WeaviateExtError],
    load: Callable[[Manifest], object],
) -> list[str]:
    """``load`` each manifest not in ``failed``, dependencies first; returns the names
    loaded and adds to ``failed`` why the others were not (a cycle, a dependency that
    failed, the load's own error)."""
    order, cycles = load_order([m for m in manifests if m.name not in failed])
    failed.update(cycles)
    loaded: list[str] = []
    for manifest in order:
        broken = [d.name for d in manifest.spec.dependencies if d.name in failed]
        if broken:
            failed[manifest.name] = DependencyError(
                manifest.name, f"depends on {broken[0]!r}, which failed to load"
            )
            continue
        try:
            load(manifest)
        except WeaviateExtError as exc:
            failed[manifest.name] = exc
        except Exception as exc:
            failed[manifest.name] = PluginLoadError(manifest.name, f"{type(exc).__name__}: {exc}")
        else:
            loaded.append(manifest.name)
    return loaded
