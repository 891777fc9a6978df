"""What a manager reports: :class:`LoadResult` of a bulk load, :class:`PluginStatus` rows.

The rows are what ``weaviate-ext list`` prints: every plugin the manager knows, loaded
(with what its runtime says about it), installed but not imported yet, disabled, or
broken with the reason it is not loaded.
"""

from __future__ import annotations

import logging
from collections.abc import Container, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from weaviate_ext.errors import PluginDisabled, WeaviateExtError
from weaviate_ext.grants import describe
from weaviate_ext.manifest import Manifest

log = logging.getLogger("weaviate_ext")

if TYPE_CHECKING:
    from weaviate_ext.builder import Builder
    from weaviate_ext.discovery import Installed
    from weaviate_ext.handles import Slot
    from weaviate_ext.live import LivePlugin


@attrs.frozen
class LoadResult:
    """What :meth:`PluginManager.load_directory` did: names loaded, and what failed why.

    ``failed`` maps a plugin's name (or the manifest's path when it could not be read)
    to the error that stopped it.
    """

    loaded: tuple[str, ...]
    failed: Mapping[str, WeaviateExtError]

    @property
    def ok(self) -> bool:
        """Whether every plugin found was loaded."""
        return not self.failed


@attrs.frozen
class PluginStatus:
    """One row of ``weaviate-ext list``: a loaded, installed, disabled or broken plugin."""

    name: str
    status: str
    """``loaded``, ``installed`` (found, not imported yet), ``disabled`` or ``broken``; for a
    loaded plugin whose runtime reports trouble, the runtime's state (``restarting``,
    ``failed``)."""
    source: str
    version: str | None = None
    type: str | None = None
    runtime: str | None = None
    reason: str | None = None
    isolation: str | None = None
    """What isolates the plugin from the host, as its runtime says (``none: ...``)."""
    permissions: Mapping[str, Any] | None = None
    """What a loaded plugin requests and what the host grants it
    (:func:`weaviate_ext.grants.describe`)."""


def failure(
    key: str, error: WeaviateExtError, source: str, manifest: Manifest | None = None
) -> PluginStatus:
    """The row of ``key`` (a name, or a manifest's path) that ``error`` kept from loading."""
    spec = manifest.spec if manifest is not None else None
    return PluginStatus(
        name=key,
        status="disabled" if isinstance(error, PluginDisabled) else "broken",
        source=source,
        version=manifest.version if manifest is not None else None,
        type=spec.type if spec is not None else None,
        runtime=spec.runtime if spec is not None else None,
        reason=error.describe(known=key),  # the row names the plugin already
    )


def runtime_status(live: LivePlugin) -> tuple[str, str | None]:
    """``loaded``, or what the plugin's ``plugin_runtime_status`` hook says when it is not
    serving (a supervised process that keeps crashing is ``failed``, with the reason)."""
    try:
        report = live.runtime_status()
    except Exception as exc:
        return "unknown", f"plugin_runtime_status failed: {live.scrub(str(exc))}"
    if report is None:
        return "loaded", None
    state, reason = report
    return ("loaded", None) if state == "serving" else (str(state), reason)


def loaded(live: LivePlugin, builder: Builder) -> PluginStatus:
    """The row of a loaded plugin: its runtime's state, isolation and permissions."""
    spec = live.manifest.spec
    status, reason = runtime_status(live)
    return PluginStatus(
        live.name,
        status,
        live.source,
        live.manifest.version,
        spec.type,
        spec.runtime,
        reason=reason,
        isolation=builder.isolation(live.manifest, live.obj),
        permissions=describe(live.manifest, builder.grants.for_plugin(live.name)),
    )


def not_imported(entry: Installed, disabled: bool) -> PluginStatus:
    """The row of an installed plugin that is not loaded: ``installed`` (or ``disabled``)
    with the name, version, type and runtime of the manifest its package ships, read
    without importing the package (:meth:`Installed.read_manifest`); ``broken`` when
    that manifest is invalid."""
    source = f"{entry.distribution} (entry point)"
    status = "disabled" if disabled else "installed"
    try:
        manifest = entry.read_manifest()
    except WeaviateExtError as exc:
        return failure(entry.name, exc, source)
    except Exception:  # reading is best effort: loading it will say what is wrong
        log.debug("cannot read the manifest of %s", entry.name, exc_info=True)
        manifest = None
    if manifest is None:
        return PluginStatus(entry.name, status, source)
    spec = manifest.spec
    return PluginStatus(entry.name, status, source, manifest.version, spec.type, spec.runtime)


def rows(
    installed: Mapping[str, Installed],
    disabled: Container[str],
    failures: Mapping[str, PluginStatus],
    slots: Iterable[tuple[str, Slot]],
    builder: Builder,
) -> list[PluginStatus]:
    """Every plugin a manager knows, by name: installed (or disabled), then failures,
    then loaded plugins, a later kind of row replacing an earlier one of the same name."""
    found: dict[str, PluginStatus] = {}
    for name, entry in installed.items():
        found[name] = not_imported(entry, name in disabled)
    found.update(failures)
    for name, slot in slots:
        if slot.live is not None:
            found[name] = loaded(slot.live, builder)
    return [found[n] for n in sorted(found)]
