"""Building one plugin version, off the live registry.

manifest -> allowed? -> requests granted? -> config -> the runtime's bridge
(``weaviate_ext_make_plugin``) -> hook validation (unregistered) ->
``plugin_setup`` -> ``plugin_health`` -> a probe call through a handle. A version that
fails any step is closed and never reaches the live registry, which is what lets a
failed reload leave the old version serving.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import pluggy

from weaviate_ext import plugin_types, progress
from weaviate_ext.discovery import Installed
from weaviate_ext.dispatch import hookimpls, is_wrapper
from weaviate_ext.errors import (
    PluginDisabled,
    PluginLoadError,
    RuntimeNotAllowed,
    RuntimeNotAvailable,
    WeaviateExtError,
)
from weaviate_ext.grants import Grants, check_requests, default_reference_check
from weaviate_ext.handles import Slot
from weaviate_ext.hookspecs import (
    PLUGIN_LIFECYCLE_HOOKS,
    REQUIRED_HOOKS,
    RUNTIME_HOOKS,
    TYPE_HOOKS,
)
from weaviate_ext.live import LivePlugin, scrub
from weaviate_ext.manifest import Manifest, PluginConfig, resolve_config

log = logging.getLogger("weaviate_ext")

PROBE_TEXT = "weaviate-ext probe"
"""What the probe call sends to a vectorizer, transformer or reranker before it serves."""


def discard(obj: object, name: str) -> None:
    """Best-effort ``plugin_close`` of a plugin object that never made it into service."""
    close = getattr(obj, "plugin_close", None)
    if callable(close):
        try:
            close()
        except Exception as exc:
            log.warning("plugin %r: plugin_close failed: %s", name, exc)


def check_hooks(
    registry: pluggy.PluginManager, obj: object, manifest: Manifest
) -> dict[str, pluggy.HookImpl]:
    """Check ``obj``'s hookimpls against ``registry``'s specs and its type, without
    registering it (no second registry: :func:`weaviate_ext.dispatch.hookimpls`).

    pluggy's own validation (arguments, wrappers) applies to each hookimpl; on top of
    that a plugin may implement only its own type's hooks, the lifecycle hooks and
    ``plugin_runtime_status``, none of them as a wrapper (wrappers are the host's), and
    must implement at least one hook of each group in ``REQUIRED_HOOKS``. Returns the
    hookimpls by hook name.
    """
    name, kind = manifest.name, manifest.spec.type
    try:
        impls = hookimpls(registry, obj, name)
    except pluggy.PluginValidationError as exc:
        detail = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise PluginLoadError(name, f"invalid hook implementation: {detail}") from None
    wrappers = sorted(hook for hook, impl in impls.items() if is_wrapper(impl))
    if wrappers:
        raise PluginLoadError(
            name,
            f"implements {', '.join(wrappers)} as a wrapper; "
            "a plugin implements hooks, only the host wraps them",
        )
    implemented = set(impls)
    allowed = set(TYPE_HOOKS[kind]) | set(PLUGIN_LIFECYCLE_HOOKS) | set(RUNTIME_HOOKS)
    for hook in sorted(implemented - allowed):
        owner = next((t for t, hooks in TYPE_HOOKS.items() if hook in hooks), None)
        if owner is not None:
            why = f"implements {hook!r}, a {owner} hook, but its manifest says type {kind!r}"
        else:
            hint = difflib.get_close_matches(hook, sorted(allowed), n=1)
            why = f"implements unknown hook {hook!r}" + (
                f" (did you mean {hint[0]!r}?)" if hint else ""
            )
        raise PluginLoadError(name, why)
    for group in REQUIRED_HOOKS[kind]:
        if not implemented.intersection(group):
            raise PluginLoadError(name, f"a {kind} plugin must implement {' or '.join(group)}")
    return impls


def check_replaces(old: Manifest, new: Manifest, path: object) -> None:
    """Refuse a reload of ``old`` by a manifest (read from ``path``) of another name or
    type."""
    name = old.name
    if new.name != name:
        raise PluginLoadError(name, f"{path} defines {new.name!r}, not {name!r}")
    if new.spec.type != old.spec.type:
        raise PluginLoadError(
            name, f"a reload cannot change its type ({old.spec.type} -> {new.spec.type})"
        )


def probe(candidate: LivePlugin) -> None:
    """One real call through a handle, so a version that cannot answer never serves.

    The call is the type's ``probe`` in :mod:`weaviate_ext.plugin_types` (none for types
    whose calls have side effects or cost: generator, storage, auth)."""
    kind = plugin_types.get(candidate.type)
    if kind.probe is not None:
        kind.probe(kind.handle_class(Slot(candidate, lambda *_: None)), PROBE_TEXT)


class Builder:
    """Builds plugin versions for one manager: its registry, runtimes and policies."""

    def __init__(
        self,
        registry: pluggy.PluginManager,
        runtimes: Mapping[str, Installed],
        allowed_runtimes: frozenset[str] | None,
        disabled: set[str],
        default_timeout: float | None,
        grants: Grants | None = None,
    ) -> None:
        self.registry = registry
        self.grants = grants if grants is not None else Grants()
        """What the host grants each plugin beyond a read of its own directory."""
        self.runtimes = runtimes
        self.allowed_runtimes = allowed_runtimes
        self.disabled = disabled
        self.default_timeout = default_timeout
        self._bridges: dict[str, object] = {}

    def check_enabled(self, name: str) -> None:
        """Refuse a disabled plugin (the manager's ``disabled`` and
        ``WEAVIATE_EXT_DISABLE``): the one disabled check, also made before an installed
        package is imported."""
        if name in self.disabled:
            raise PluginDisabled(name, "is disabled (manager argument or WEAVIATE_EXT_DISABLE)")

    def check_allowed(self, manifest: Manifest) -> None:
        """Refuse a disabled plugin or a runtime this host does not accept."""
        name, runtime = manifest.name, manifest.spec.runtime
        self.check_enabled(name)
        if self.allowed_runtimes is not None and runtime not in self.allowed_runtimes:
            allowed = ", ".join(sorted(self.allowed_runtimes)) or "none"
            raise RuntimeNotAllowed(
                name, f"runtime {runtime!r} is not allowed by this host (allowed: {allowed})"
            )

    def ensure_bridge(self, name: str, runtime: str) -> None:
        """Import and register the bridge of ``runtime`` the first time it is needed."""
        if runtime in self._bridges or runtime not in self.runtimes:
            return
        entry = self.runtimes[runtime]
        try:
            bridge = entry.load()
        except Exception as exc:
            raise RuntimeNotAvailable(
                name, f"the {runtime!r} runtime ({entry.value}) failed to import: {exc}"
            ) from exc
        if not self.registry.is_registered(bridge):
            self.registry.register(bridge, name=f"runtime:{runtime}")
        self._bridges[runtime] = bridge

    def _no_bridge(self, name: str, runtime: str) -> RuntimeNotAvailable:
        known = sorted(self.runtimes)
        hint = difflib.get_close_matches(runtime, known, n=1)
        extra = f"; did you mean {hint[0]!r}?" if hint else ""
        listed = ", ".join(known) or "none"
        return RuntimeNotAvailable(
            name, f"no bridge for runtime {runtime!r} (installed runtimes: {listed}){extra}"
        )

    def make(self, manifest: Manifest, config: PluginConfig) -> object:
        """Ask the bridges for the plugin object (``weaviate_ext_make_plugin``)."""
        name, runtime = manifest.name, manifest.spec.runtime
        self.ensure_bridge(name, runtime)
        secrets = config.secret_values
        try:
            obj = self.registry.hook.weaviate_ext_make_plugin(
                manifest=manifest, config=config, timeout=self.timeout_of(manifest)
            )
        except WeaviateExtError as exc:
            reason = exc.describe(known=name, reference=False)
            raise PluginLoadError(name, scrub(reason, secrets)) from None
        except Exception as exc:
            raise PluginLoadError(name, scrub(f"{type(exc).__name__}: {exc}", secrets)) from None
        if obj is None:
            raise self._no_bridge(name, runtime)
        return obj

    def build(
        self, manifest: Manifest, host_config: Mapping[str, Any] | None, source: str
    ) -> tuple[object, PluginConfig]:
        """Make, validate, set up, health-check and probe a plugin, unregistered.

        Dependencies must have been checked by the caller.
        """
        name = manifest.name
        self.check_allowed(manifest)
        grant = self.grants.for_plugin(name)
        check_requests(manifest, grant)
        config = resolve_config(
            manifest, host_config, default_reference=default_reference_check(manifest, grant)
        )
        with progress.load_step(name, manifest.spec.runtime):  # a model load can be slow
            return self._start(manifest, config, source)

    def _start(
        self, manifest: Manifest, config: PluginConfig, source: str
    ) -> tuple[object, PluginConfig]:
        """Make, validate, set up, health-check and probe a plugin (:meth:`build`)."""
        name = manifest.name
        obj = self.make(manifest, config)
        try:
            check_hooks(self.registry, obj, manifest)
        except PluginLoadError:
            discard(obj, name)
            raise
        candidate = LivePlugin(manifest, config, obj, self.registry, self.default_timeout, source)
        try:
            candidate.call_lifecycle("plugin_setup", config, manifest)
            if candidate.call_lifecycle("plugin_health") is False:
                raise PluginLoadError(name, "plugin_health says it is not healthy")
            probe(candidate)
        except Exception as exc:
            candidate.retire()
            if isinstance(exc, PluginLoadError):
                raise
            if isinstance(exc, WeaviateExtError):
                message = exc.describe(known=name, reference=False)
            else:
                message = f"{type(exc).__name__}: {exc}"
            raise PluginLoadError(name, f"failed to start: {candidate.scrub(message)}") from None
        return obj, config

    def timeout_of(self, manifest: Manifest) -> float | None:
        """A plugin's default deadline: ``spec.timeout``, else the manager's
        ``default_timeout`` (``None``: no deadline), as :class:`LivePlugin` uses it."""
        return manifest.spec.timeout if manifest.spec.timeout else self.default_timeout

    def isolation(self, manifest: Manifest, obj: object) -> str | None:
        """What isolates a plugin, as its bridge says (``weaviate_ext_isolation``)."""
        told = self.registry.hook.weaviate_ext_isolation(manifest=manifest, plugin=obj)
        return told if isinstance(told, str) else None

    @property
    def runtime_names(self) -> Iterable[str]:
        """The installed runtimes' names."""
        return sorted(self.runtimes)
