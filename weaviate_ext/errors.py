"""The framework's exception hierarchy: every error a host sees from weaviate-ext.

Everything derives from :class:`WeaviateExtError`, so a host can catch one type.
Messages are one readable line (``file:line: field: message`` for manifests) and never
contain a secret configuration value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import ClassVar

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
    """Base class of every error raised by weaviate-ext."""

    # Every message ends with " (see docs/troubleshooting.md#<class name, lowercased>)",
    # the section that explains the error. A reference inside a wrapped error's message
    # is dropped, so a message holds one: the outermost error's. Classes whose messages
    # are a contract of their own (manifest problems, config errors, a plugin's verdict
    # on credentials) keep them bare: ``reference_in_message = False``.
    reference_in_message: ClassVar[bool] = True
    section: ClassVar[str] = "weaviateexterror"

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.section = cls.__name__.lower()

    def __str__(self) -> str:
        text = super().__str__()
        if not self.reference_in_message:
            return text
        return f"{_REFERENCE.sub('', text)} (see {TROUBLESHOOTING_PAGE}#{self.section})"


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
    """A plugin's configuration does not fit the manifest's config schema."""

    reference_in_message = False  # exact messages: the key and the reference


class PluginLoadError(WeaviateExtError):
    """A plugin could not be loaded; ``name`` says which, the message says why."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"plugin {name!r}: {reason}")


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
    """A host passed a value a plugin type does not accept (a non-str text, an empty key)."""


class AuthenticationError(WeaviateExtError):
    """Credentials were recognised by an auth plugin and rejected.

    Auth plugins raise this from ``authenticate`` for credentials of their kind that
    are wrong (a bad signature, an expired token); the manager passes it to the host.
    """

    reference_in_message = False  # the plugin's verdict, passed to the client as it is


class PluginNotFound(WeaviateExtError, LookupError):
    """No plugin of that name is loaded or installed."""

    def __init__(self, name: str, available: Iterable[str]) -> None:
        self.name = name
        self.available = tuple(sorted(available))
        listed = ", ".join(self.available) if self.available else "none"
        super().__init__(f"no plugin named {name!r} (loaded: {listed})")


class PluginTypeError(WeaviateExtError, TypeError):
    """A plugin was asked for as one type but is another."""

    def __init__(self, name: str, actual: str, wanted: str) -> None:
        self.name = name
        self.actual = actual
        self.wanted = wanted
        super().__init__(f"plugin {name!r} is a {actual}, not a {wanted}")


class PluginNotLoaded(WeaviateExtError):
    """The plugin behind a handle was unloaded or the manager was closed."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"plugin {name!r} is not loaded (it was unloaded or the manager closed)")


class PluginCallError(WeaviateExtError):
    """A call into a plugin failed. ``plugin`` and ``hook`` say where."""

    def __init__(self, plugin: str, hook: str, message: str) -> None:
        self.plugin = plugin
        self.hook = hook
        super().__init__(f"plugin {plugin!r} {hook}: {message}")


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
