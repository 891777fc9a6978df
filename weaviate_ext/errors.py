"""The framework's exception hierarchy: every error a host sees from weaviate-ext.

Everything derives from :class:`WeaviateExtError`, so a host can catch one type.
Messages are one readable line (``file:line: field: message`` for manifests) and never
contain a secret configuration value.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Literal, Self

import attrs

TROUBLESHOOTING_PAGE = "docs/troubleshooting.md"
"""The page that explains every error class, one section per class (its name, lowercased)."""

_REFERENCE = re.compile(r" \(see docs/troubleshooting\.md#[a-z0-9-]+\)")


def troubleshooting_section(error: type[BaseException] | BaseException) -> str:
    """Where the troubleshooting page explains ``error``: ``docs/troubleshooting.md#name``.

    The section of a framework error class is its class name in lower case (the anchor
    of its heading); any other exception points at the page itself.
    """
    cls = error if isinstance(error, type) else type(error)
    if issubclass(cls, WeaviateExtError):
        return f"{TROUBLESHOOTING_PAGE}#{cls.section}"
    return TROUBLESHOOTING_PAGE


class WeaviateExtError(Exception):
    """Base class of every error raised by weaviate-ext.

    Every error carries its facts as fields: ``plugin`` (the plugin's name, or ``None``),
    ``hook`` (the hook being called, or ``None``) and ``reason`` (what went wrong, without
    the plugin's name and without a troubleshooting reference). Its message is formatted
    from them here, in :meth:`describe`, and nowhere else; code that needs part of a
    message reads the fields (or :meth:`describe`), never ``str(exc)``.

    :param reason: what went wrong (the only positional argument, as for ``Exception``).
    :param plugin: the plugin it concerns, if any.
    :param hook: the hook it concerns, if any.
    """

    # Every message ends with " (see docs/troubleshooting.md#<class name, lowercased>)",
    # the section that explains the error. A reference inside a wrapped error's message
    # is dropped, so a message holds one: the outermost error's. Classes whose messages
    # are a contract of their own (manifest problems, config errors, a plugin's verdict
    # on credentials) keep them bare: ``reference_in_message = False``.
    reference_in_message: ClassVar[bool] = True
    section: ClassVar[str] = "weaviateexterror"
    layout: ClassVar[Layout] = "where: reason"
    """How :meth:`describe` puts the fields together (see :data:`Layout`)."""

    plugin: str | None
    hook: str | None
    reason: str

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.section = cls.__name__.lower()

    def __init__(
        self, reason: str = "", *, plugin: str | None = None, hook: str | None = None
    ) -> None:
        self.plugin = plugin
        self.hook = hook
        self.reason = _REFERENCE.sub("", str(reason))
        super().__init__(self.describe(reference=False))

    def describe(self, *, known: str | None = None, reference: bool | None = None) -> str:
        """The message, formatted from the fields.

        :param known: a plugin the reader already knows the error is about (for example
            because the text goes into that plugin's own error or status row): when it
            is :attr:`plugin`, the ``plugin 'name'`` part is left out.
        :param reference: whether to end with the troubleshooting reference; the
            default is the class's ``reference_in_message``.
        """
        plugin = None if known is not None and known == self.plugin else self.plugin
        text = _compose(self.layout, plugin, self.hook, self.reason)
        if reference is None:
            reference = self.reference_in_message
        return f"{text} (see {troubleshooting_section(self)})" if reference else text

    def __str__(self) -> str:
        return self.describe()

    def redacted(self, scrub: Callable[[str], str]) -> Self:
        """This error with ``scrub`` applied to its reason: ``self`` when that changes
        nothing, else a copy of the same class (so a caller still sees what kind of
        failure it was) that does not chain the original."""
        reason = scrub(self.reason)
        if reason == self.reason:
            return self
        clean = copy.copy(self)
        clean.reason = reason
        clean.args = (clean.describe(reference=False),)
        return clean

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclass constructors take their fields positionally (``PluginCallError(plugin,
        # hook, message)``), not the message ``args`` holds: rebuild from the fields.
        return (_restore, (type(self), self.args, self.__dict__.copy()))


Layout = Literal["where: reason", "where reason", "plugin: reason", "reason"]
"""How an error class puts its fields into its message:

- ``"where: reason"``: ``plugin 'p' hook: reason`` (``plugin 'p': reason`` without a
  hook, ``hook: reason`` without a plugin, ``reason`` without either);
- ``"where reason"``: ``plugin 'p' reason``, the reason saying what the plugin is;
- ``"plugin: reason"``: ``plugin 'p': reason``, the hook not shown;
- ``"reason"``: the reason alone (it names the plugin itself).
"""


def _compose(layout: Layout, plugin: str | None, hook: str | None, reason: str) -> str:
    """The message of an error, without its reference: the one place that formats them."""
    if layout == "reason":
        return reason
    parts = []
    if plugin is not None:
        parts.append(f"plugin {plugin!r}")
    if hook and layout != "plugin: reason":
        parts.append(hook)
    where = " ".join(parts)
    if not where:
        return reason
    if not reason:
        return where
    return f"{where} {reason}" if layout == "where reason" else f"{where}: {reason}"


def _restore(cls: type[WeaviateExtError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    """Unpickle an error of the framework (see :meth:`WeaviateExtError.__reduce__`)."""
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


@attrs.frozen
class Problem:
    """One thing wrong with a manifest: where it is and what was expected.

    ``line`` is 1-based; 0 means the position is unknown (for example the file
    could not be parsed at all). ``field`` is a dotted path such as ``spec.type``.
    """

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        if self.field:
            return f"{where}: {self.field}: {self.message}"
        return f"{where}: {self.message}"


class ManifestError(WeaviateExtError):
    """A ``plugin.yaml`` is not valid. ``problems`` lists every problem found."""

    reference_in_message = False  # file:line: field: message, one line per problem

    def __init__(self, problems: Sequence[Problem]) -> None:
        if not problems:
            raise ValueError("ManifestError needs at least one problem")
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def single(cls, file: str, line: int, field: str, message: str) -> ManifestError:
        """Build an error with one problem."""
        return cls([Problem(file, line, field, message)])


class ConfigError(WeaviateExtError):
    """A plugin's configuration does not fit the manifest's config schema.

    ``ConfigError(reason, plugin=name)``: ``plugin 'name': reason``.
    """

    reference_in_message = False  # exact messages: the key and the reference


class _Named:
    """``name``: the same as ``plugin``, the field's older name on lookup and load errors."""

    plugin: str | None

    @property
    def name(self) -> str:
        """The plugin's name (an alias of ``plugin``)."""
        return self.plugin or ""


class PluginLoadError(_Named, WeaviateExtError):
    """A plugin could not be loaded; ``plugin`` (alias ``name``) says which, ``reason`` why.

    ``PluginLoadError(name, reason)``: ``plugin 'name': reason``.
    """

    def __init__(self, name: str, reason: str, *, hook: str | None = None) -> None:
        super().__init__(reason, plugin=name, hook=hook)


class RuntimeNotAvailable(PluginLoadError):
    """No bridge is installed for the manifest's runtime."""


class RuntimeNotAllowed(PluginLoadError):
    """The manager was told not to accept this runtime (``allowed_runtimes``)."""


class PluginDisabled(PluginLoadError):
    """The plugin is switched off (manager argument or ``WEAVIATE_EXT_DISABLE``)."""


class DependencyError(PluginLoadError):
    """A dependency is missing, outside its version range, or part of a cycle."""


class PermissionNotGranted(PluginLoadError):
    """A plugin's manifest requests something the host has not granted: a directory, a
    write, an environment variable, network, or a ``${env:}``/``${file:}`` reference in a
    default. The message names the request and the grant that would allow it."""


class InvalidInput(WeaviateExtError, ValueError):
    """A host passed a value a plugin type does not accept (a non-str text, an empty key).

    ``InvalidInput(reason)`` when the framework refuses the value before any plugin sees
    it; ``InvalidInput(reason, plugin=name, hook=hook)`` when a plugin refused it:
    ``plugin 'name' hook: reason``.
    """


class AuthenticationError(WeaviateExtError):
    """Credentials were recognised by an auth plugin and rejected.

    Auth plugins raise this from ``authenticate`` for credentials of their kind that
    are wrong (a bad signature, an expired token); the manager passes it to the host.
    """

    reference_in_message = False  # the plugin's verdict, passed to the client as it is
    layout = "plugin: reason"  # the hook (``hook``) is always authenticate: not repeated

    def __init__(
        self, reason: str = "", *, plugin: str | None = None, hook: str | None = None
    ) -> None:
        super().__init__(reason, plugin=plugin, hook=hook)


class PluginNotFound(_Named, WeaviateExtError, LookupError):
    """No plugin of that name (``plugin``, alias ``name``) is loaded or installed."""

    layout = "reason"  # the reason names the plugin: "no plugin named 'x' (loaded: ...)"

    def __init__(self, name: str, available: Iterable[str]) -> None:
        self.available = tuple(sorted(available))
        listed = ", ".join(self.available) if self.available else "none"
        super().__init__(f"no plugin named {name!r} (loaded: {listed})", plugin=name)


class PluginTypeError(_Named, WeaviateExtError, TypeError):
    """A plugin was asked for as one type but is another."""

    layout = "where reason"  # plugin 'x' is a vectorizer, not a reranker

    def __init__(self, name: str, actual: str, wanted: str) -> None:
        self.actual = actual
        self.wanted = wanted
        super().__init__(f"is a {actual}, not a {wanted}", plugin=name)


class PluginNotLoaded(_Named, WeaviateExtError):
    """The plugin behind a handle was unloaded or the manager was closed."""

    layout = "where reason"  # plugin 'x' is not loaded (...)

    def __init__(self, name: str) -> None:
        super().__init__("is not loaded (it was unloaded or the manager closed)", plugin=name)


class PluginCallError(WeaviateExtError):
    """A call into a plugin failed. ``plugin`` and ``hook`` say where, ``reason`` what.

    ``PluginCallError(plugin, hook, message)``: ``plugin 'plugin' hook: message``.
    """

    plugin: str
    hook: str

    def __init__(self, plugin: str, hook: str, message: str) -> None:
        super().__init__(message, plugin=plugin, hook=hook)


class DeadlineExceeded(PluginCallError, TimeoutError):
    """A call did not finish before its deadline."""


class PluginOutputError(PluginCallError):
    """A plugin returned something that breaks its type's contract."""


class DimensionMismatch(PluginOutputError):
    """A vectorizer returned vectors of another length than its manifest declares."""


class ResourceLimitExceeded(PluginCallError):
    """A plugin went past a resource limit of its manifest (memory, cpu)."""


class PluginCrashed(PluginCallError):
    """The plugin's process or instance died during the call."""


class PluginUnavailable(PluginCallError):
    """No instance of the plugin can take the call now: every replica of a remote
    service is unhealthy or unreachable. The plugin stays loaded; calls succeed again
    once a replica is back (the message names each replica and why it is out)."""


class PluginBusy(PluginCallError):
    """Every slot of the plugin's bulkhead (``spec.maxConcurrency``) stayed taken until
    the call's deadline: the plugin is overloaded or hung. Calls to other plugins are not
    affected; ``retry_after`` is a hint in seconds for the caller."""

    def __init__(self, plugin: str, hook: str, message: str, retry_after: float = 1.0) -> None:
        self.retry_after = retry_after
        super().__init__(plugin, hook, message)


class RegistryError(WeaviateExtError):
    """An OCI registry operation failed: a malformed ``oci://`` reference, a registry
    that refuses or cannot be reached, a missing tag, or a cache that cannot be written.
    The message names the artifact; credentials are never part of it."""

    reference_in_message = False


class RegistryUnreachable(RegistryError):
    """The registry could not be reached (connection refused, name not found, TLS,
    timeout). An ``oci://`` reference *by digest* whose artifact is in the cache, with the
    signatures it was verified with, is then loaded from the cache, its signatures
    checked again against the host's current policy; anything else fails with this."""


class ArtifactIntegrityError(RegistryError):
    """A pulled artifact is not what its digest says: a tampered or truncated layer, a
    manifest whose digest differs from the one asked for or pinned, or a plugin artifact
    of the wrong media type. Nothing of it is kept in the cache as valid."""


class SignatureError(RegistryError):
    """An artifact's signature does not satisfy the host's registry policy: missing
    (unsigned artifacts are refused by default for ``oci://`` loads), made by a key the
    policy does not trust for that repository, or not matching the artifact's digest."""
