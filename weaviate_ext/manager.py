"""The :class:`PluginManager`: loads plugins into one pluggy registry and hands out handles.

Loading goes manifest -> checks (disabled, allowed runtime, dependencies, config) ->
the runtime's bridge (``weaviate_ext_make_plugin``) -> hook validation -> setup,
health and a probe call -> registration under the manifest's name. Only the last step
touches the live registry, so a failed load or reload leaves everything as it was.

The manager is the host's API; each part of the work has its own module:

* :mod:`weaviate_ext.loading` -- loading, reloading, unloading: the slots and the lock;
* :mod:`weaviate_ext.builder` -- building one version off the registry (checks, probe);
* :mod:`weaviate_ext.discovery` -- installed packages (entry points) and directories;
* :mod:`weaviate_ext.dependencies` -- version ranges and load order;
* :mod:`weaviate_ext.auth_chain` -- ``authenticate``/``authorize`` across auth plugins;
* :mod:`weaviate_ext.status` -- the rows of ``plugins()`` (``weaviate-ext list``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from weaviate_ext import hookspecs, status
from weaviate_ext.aio import awaitable
from weaviate_ext.auth_chain import AuthChain
from weaviate_ext.builder import Builder
from weaviate_ext.discovery import PLUGIN_GROUP, RUNTIME_GROUP, Packages, disabled_names, installed
from weaviate_ext.dispatch import Registry
from weaviate_ext.errors import PluginNotFound, PluginTypeError
from weaviate_ext.grants import Grant, Grants, describe
from weaviate_ext.handles import (
    HANDLE_TYPES,
    AuthHandle,
    GeneratorHandle,
    PluginHandle,
    RerankerHandle,
    Slot,
    StorageHandle,
    TransformerHandle,
    VectorizerHandle,
)
from weaviate_ext.hookspecs import PROJECT_NAME
from weaviate_ext.loading import Loader
from weaviate_ext.manifest import Manifest, PluginConfig, load_manifest
from weaviate_ext.pipeline import Pipeline
from weaviate_ext.stats import PluginStats
from weaviate_ext.status import LoadResult, PluginStatus
from weaviate_ext.types import Identity

if TYPE_CHECKING:
    from weaviate_ext.registry.policy import RegistryPolicy
    from weaviate_ext.registry.settings import RegistrySettings

__all__ = ["LoadResult", "PluginManager", "PluginStatus"]

H = TypeVar("H", bound=PluginHandle)


class PluginManager:
    """Loads plugins of every runtime into one pluggy hook registry and calls them.

    :param discover: find pip-installed plugins (entry-point group ``weaviate_ext``);
        they are imported only when asked for by name, or by :meth:`load_installed`.
    :param allowed_runtimes: runtimes this manager accepts (``None``: all installed).
    :param disabled: plugin names to refuse, on top of ``WEAVIATE_EXT_DISABLE=a,b``.
    :param config: host configuration per plugin name, used by every load of that name
        that does not pass ``config=`` itself (installed plugins get theirs from here).
    :param default_timeout: per-call deadline in seconds when a manifest sets no
        ``spec.timeout`` (``None``: no deadline).
    :param bridges: extra bridge objects (``weaviate_ext_make_plugin`` implementations)
        beside the installed ones.
    :param observers: objects implementing the lifecycle hooks
        (``weaviate_ext_plugin_loaded`` ...).
    :param grants: what the host grants each plugin (:class:`~weaviate_ext.grants.Grant`
        by name, ``"*"`` for all) beyond a read of its own directory: directories,
        environment variables, network, references in config defaults. A manifest only
        requests; a request not granted refuses the load (docs/security.md).
    :param trust: names of plugins granted everything they request.
    :param tracing: trace every plugin call with OpenTelemetry
        (:func:`weaviate_ext.tracing.instrument`; needs the ``otel`` extra).
    :param registry: the host's OCI registry settings for ``load("oci://...")`` (the
        ``_registry`` section of a host config file:
        :meth:`~weaviate_ext.registry.settings.RegistrySettings.from_data`); default:
        unsigned artifacts refused, the cache in ``~/.cache/weaviate-ext/oci``.
    :param registry_policy: the signature policy for ``oci://`` loads, overriding the
        one of ``registry`` (:class:`~weaviate_ext.registry.policy.RegistryPolicy`).

    Every method is thread-safe. Loading, unloading and reloading are serialised; calls
    through handles never wait for them.
    """

    def __init__(
        self,
        *,
        discover: bool = True,
        allowed_runtimes: Iterable[str] | None = None,
        disabled: Iterable[str] = (),
        config: Mapping[str, Mapping[str, Any]] | None = None,
        default_timeout: float | None = 30.0,
        bridges: Iterable[object] = (),
        observers: Iterable[object] = (),
        grants: Grants | Mapping[str, Grant] | None = None,
        trust: Iterable[str] = (),
        tracing: bool = False,
        registry: RegistrySettings | None = None,
        registry_policy: RegistryPolicy | None = None,
    ) -> None:
        self.registry = Registry(PROJECT_NAME)
        """The one hook registry: every loaded plugin is registered here by name, and
        every plugin call goes through it while the host has wrappers (:meth:`add_wrapper`)."""
        self.registry.add_hookspecs(hookspecs)
        self.default_timeout = default_timeout
        self.allowed_runtimes = None if allowed_runtimes is None else frozenset(allowed_runtimes)
        self._disabled = disabled_names(disabled)
        self.builder = Builder(
            self.registry,
            installed(RUNTIME_GROUP),
            self.allowed_runtimes,
            self._disabled,
            default_timeout,
            Grants.of(grants, trust),
        )
        packages = Packages(self.registry, installed(PLUGIN_GROUP) if discover else {})
        self._loader = Loader(
            self.registry,
            self.builder,
            packages,
            {k: dict(v) for k, v in (config or {}).items()},
            default_timeout,
        )
        self._loader.resolve = self._resolve
        self._registry_settings = registry
        self._registry_policy = registry_policy
        self._auth = AuthChain(self.registry, self._loader.slots, self._loader.lock)
        for bridge in bridges:
            self.registry.register(bridge)
        for observer in observers:
            self.add_observer(observer)
        if tracing:
            from weaviate_ext.tracing import instrument

            instrument(self)

    # -- context manager ----------------------------------------------------------------

    def __enter__(self) -> PluginManager:
        """Use the manager as a context manager: :meth:`close` runs on exit."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<PluginManager loaded={sorted(self._loader.slots)}>"

    # -- registration helpers -------------------------------------------------------------

    def add_observer(self, observer: object) -> None:
        """Register an object implementing lifecycle hooks (loaded, unloaded, ...)."""
        self.registry.register(observer)

    def add_wrapper(self, wrapper: object, name: str | None = None) -> Callable[[], None]:
        """Register host hookimpls with ``wrapper=True`` around every plugin call.

        Each method of ``wrapper`` marked ``@weaviate_ext.hookimpl(wrapper=True)`` and
        named after a plugin hook (``vectorize_batch``, ``transform``, ...) wraps every
        call of that hook to every plugin, whatever its runtime, from now on and across
        reloads; :func:`weaviate_ext.current_call` names the plugin inside it, and its
        ``yield`` returns that plugin's answer. The same as
        ``manager.registry.register(wrapper)``. Returns a function that removes it; with
        no wrapper left, handles call plugins directly again (the fast path).
        """
        self.registry.register(wrapper, name)
        return lambda: self._remove_wrapper(wrapper)

    def _remove_wrapper(self, wrapper: object) -> None:
        if self.registry.is_registered(wrapper):
            self.registry.unregister(wrapper)

    def register_bridge(self, bridge: object) -> None:
        """Register a bridge object (a ``weaviate_ext_make_plugin`` implementation)."""
        self.registry.register(bridge)

    @property
    def runtimes(self) -> tuple[str, ...]:
        """Names of the runtimes installed through the ``weaviate_ext.runtimes`` group."""
        return tuple(self.builder.runtime_names)

    # -- loading ----------------------------------------------------------------------------

    def load(
        self, path: str | os.PathLike[str], config: Mapping[str, Any] | None = None
    ) -> PluginHandle:
        """Load the plugin described by the manifest at ``path``; returns its typed handle.

        ``path`` may be an ``oci://HOST/REPO:TAG`` (or ``@sha256:...``) reference: the
        artifact is resolved, checked against the registry policy (signature, pinned
        digest) before anything is downloaded, pulled into the cache with every digest
        verified, and loaded from there (docs/registry.md).

        :param config: values for the manifest's config schema (default: the manager's
            ``config`` for this name). Raises :class:`~weaviate_ext.ManifestError`,
            :class:`~weaviate_ext.ConfigError` or :class:`~weaviate_ext.PluginLoadError`
            (and :class:`~weaviate_ext.RegistryError` and its subclasses for ``oci://``).
        """
        manifest_path, source = self._resolve(path)
        manifest = load_manifest(manifest_path)
        return HANDLE_TYPES[manifest.spec.type](self._loader.load(manifest, config, source))

    def _resolve(self, path: str | os.PathLike[str]) -> tuple[Path, str]:
        """``(manifest path, source)`` of what :meth:`load` or :meth:`reload` is given:
        an ``oci://`` reference is pulled (verified) into the cache first."""
        if isinstance(path, str) and path.startswith("oci://"):
            from weaviate_ext.registry.pull import pull

            pulled = pull(path, settings=self._registry_settings, policy=self._registry_policy)
            return pulled.manifest_path, str(pulled.pinned)
        return Path(path), os.fspath(path)

    def load_manifest(
        self, manifest: Manifest, config: Mapping[str, Any] | None = None
    ) -> PluginHandle:
        """Load an already parsed :class:`~weaviate_ext.Manifest`; returns its handle."""
        slot = self._loader.load(manifest, config, str(manifest.path or "<manifest>"))
        return HANDLE_TYPES[manifest.spec.type](slot)

    def load_directory(
        self,
        directory: str | os.PathLike[str],
        config: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> LoadResult:
        """Load every ``plugin.yaml`` below ``directory``, dependencies first.

        A broken plugin (bad manifest, failed dependency, failing bridge, ...) is
        logged and reported in the result; the others are still loaded.
        """
        return self._loader.load_directory(directory, config or {})

    @property
    def installed(self) -> tuple[str, ...]:
        """Names of the pip-installed plugins found through entry points."""
        return tuple(sorted(self._loader.packages.entries))

    def load_installed(self, names: Iterable[str] | None = None) -> LoadResult:
        """Import and load installed plugins (all of them, or ``names``)."""
        return self._loader.load_installed(names)

    # -- handles ---------------------------------------------------------------------------------

    def _handle(self, slot: Slot) -> PluginHandle:
        live = slot.live
        if live is None:  # unloaded meanwhile
            raise PluginNotFound(slot.name, self._loader.known_names())
        return HANDLE_TYPES[live.type](slot)

    def get(self, name: str) -> PluginHandle:
        """The handle of plugin ``name``, typed by its manifest's type."""
        return self._handle(self._loader.slot(name))

    def _typed(self, name: str, handle_type: type[H]) -> H:
        handle = self.get(name)
        if not isinstance(handle, handle_type):
            raise PluginTypeError(name, handle.plugin_type, handle_type.plugin_type)
        return handle

    def get_vectorizer(self, name: str) -> VectorizerHandle:
        """The vectorizer ``name`` (imports an installed one on first use)."""
        return self._typed(name, VectorizerHandle)

    def get_transformer(self, name: str) -> TransformerHandle:
        """The transformer ``name``."""
        return self._typed(name, TransformerHandle)

    def get_reranker(self, name: str) -> RerankerHandle:
        """The reranker ``name``."""
        return self._typed(name, RerankerHandle)

    def get_generator(self, name: str) -> GeneratorHandle:
        """The generator ``name``."""
        return self._typed(name, GeneratorHandle)

    def get_storage(self, name: str) -> StorageHandle:
        """The storage backend ``name``."""
        return self._typed(name, StorageHandle)

    def get_auth(self, name: str) -> AuthHandle:
        """The auth plugin ``name``."""
        return self._typed(name, AuthHandle)

    def pipeline(self, *names: str) -> Pipeline:
        """Chain transformers ``names`` (in order) into a :class:`~weaviate_ext.Pipeline`."""
        if not names:
            raise ValueError("a pipeline needs at least one transformer")
        return Pipeline([self.get_transformer(n) for n in names])

    def names(self, plugin_type: str | None = None) -> tuple[str, ...]:
        """Names of the loaded plugins, optionally of one type."""
        manifests = self._loader.manifests()
        return tuple(sorted(n for n, m in manifests.items() if plugin_type in (None, m.spec.type)))

    # -- unload, reload, close ---------------------------------------------------------------

    def unload(self, name: str) -> None:
        """Unregister plugin ``name``; calls in flight finish before it is closed.

        Refused while other loaded plugins depend on it.
        """
        self._loader.unload(name)

    def reload(
        self,
        name: str,
        path: str | os.PathLike[str] | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        """Replace plugin ``name`` by the version at ``path`` (default: the same manifest;
        an ``oci://`` reference, e.g. a new tag, is pulled and verified first).

        The new version is built, set up, health-checked and probed completely first;
        then it is swapped in atomically. Calls in flight finish on the old version,
        which is closed after the last of them. If anything fails, the old version keeps
        serving and the error is raised. ``config`` defaults to the previous host values.
        """
        self._loader.reload(name, path, config)

    def close(self) -> None:
        """Unload every plugin (dependents first). The manager cannot load afterwards."""
        self._loader.close()

    # -- across plugins ----------------------------------------------------------------------------

    def authenticate(self, credentials: Mapping[str, str]) -> Identity | None:
        """Ask the auth plugins in turn; the first that recognises the credentials answers.

        pluggy's ``firstresult`` call of ``authenticate`` over the auth plugins, in its
        order (the last loaded first; ``tryfirst``/``trylast`` honoured). Returns
        ``None`` when none does. An auth plugin that rejects credentials of its kind
        raises :class:`~weaviate_ext.AuthenticationError`, which is passed on.
        """
        return self._auth.authenticate(credentials)

    def authorize(self, identity: Identity, resource: str, action: str) -> bool:
        """Ask every auth plugin (in ``authenticate``'s order): one deny wins; at least
        one allow is needed."""
        return self._auth.authorize(identity, resource, action)

    def stats(self) -> dict[str, PluginStats]:
        """Call counters of every loaded plugin, by name."""
        slots = sorted(self._loader.snapshot())
        return {n: s.live.counter.snapshot() for n, s in slots if s.live is not None}

    def plugins(self) -> list[PluginStatus]:
        """Every plugin the manager knows: loaded, installed, disabled and broken."""
        loader = self._loader
        installed, failures = loader.packages.entries, loader.failures
        return status.rows(installed, self._disabled, failures, loader.snapshot(), self.builder)

    def manifest(self, name: str) -> Manifest:
        """The manifest of loaded plugin ``name``."""
        return self._loader.live(name).manifest

    def permissions(self, name: str) -> dict[str, Any]:
        """What loaded plugin ``name`` requests (``spec.permissions``) and what the host
        grants it, side by side (:func:`weaviate_ext.grants.describe`)."""
        return describe(self.manifest(name), self.builder.grants.for_plugin(name))

    def config_of(self, name: str) -> PluginConfig:
        """The resolved configuration of loaded plugin ``name`` (secrets redacted in repr)."""
        return self._loader.live(name).config

    # -- async --------------------------------------------------------------------------

    aload = awaitable(load)
    aload_directory = awaitable(load_directory)
    areload = awaitable(reload)
    aunload = awaitable(unload)
    aauthenticate = awaitable(authenticate)
    aauthorize = awaitable(authorize)
