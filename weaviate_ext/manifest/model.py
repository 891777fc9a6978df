"""The parsed form of a ``plugin.yaml``: frozen attrs classes, one per section.

These classes hold already-validated values; build them with
:func:`weaviate_ext.manifest.load_manifest` or :func:`weaviate_ext.manifest.parse_manifest`,
which check every field and report errors with file and line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import attrs
from semantic_version import NpmSpec, Version

from weaviate_ext import plugin_types

PLUGIN_TYPES: Sequence[str] = plugin_types.NAMES
"""The plugin types, in the order the docs list them (a live view of
:data:`weaviate_ext.plugin_types.TYPES`, equal to the tuple of their names)."""

CONFIG_TYPES: tuple[str, ...] = ("string", "integer", "number", "boolean", "array", "object")
"""The value types a ``spec.config`` field may declare."""

API_VERSION = "weaviate.io/v1"
KIND = "Plugin"
FRAMEWORK_NAME = "weaviate-ext"
"""A dependency with this name is a requirement on the framework's own version."""


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@attrs.frozen
class Metadata:
    """``metadata``: who the plugin is."""

    name: str
    version: str
    author: str = ""
    description: str = ""


@attrs.frozen
class Dependency:
    """One entry of ``spec.dependencies``: another plugin (or the framework) and a range.

    ``version`` is an npm-style range (``^1.0.0``, ``~1.2``, ``>=1.0 <2``, ``1.x``).
    """

    name: str
    version: str = "*"
    line: int = 0

    def matches(self, version: str) -> bool:
        """Whether ``version`` (a semantic version string) is inside the range."""
        try:
            parsed = Version.coerce(version)
        except ValueError:
            return False
        return bool(NpmSpec(self.version).match(parsed))


@attrs.frozen
class Resources:
    """``spec.resources``: limits, parsed from Kubernetes quantities.

    ``memory`` is in bytes and ``cpu`` in cores (``500m`` is 0.5); ``None`` when not
    given. Each runtime documents what it enforces.
    """

    memory: int | None = None
    cpu: float | None = None


@attrs.frozen
class Capabilities:
    """``spec.capabilities``: what the plugin declares it can do.

    ``dimensions`` (vectorizers) is checked on every output; ``max_batch_size`` splits
    batches before they reach the plugin. ``deterministic`` says equal input gives equal
    output (the conformance suite checks it). ``batch_safe`` (vectorizers) says the
    plugin is deterministic and a text's vector does not depend on the other texts of
    its batch, so ``serve`` may put concurrent single-text requests into one batch.
    Other keys are kept in ``extra``.
    """

    dimensions: int | None = None
    max_batch_size: int | None = None
    deterministic: bool = False
    normalized: bool = False
    batch_safe: bool = False
    extra: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)


@attrs.frozen(repr=False)
class ConfigField:
    """One key of the ``spec.config`` schema. The default of a secret field is
    redacted in the repr."""

    name: str
    type: str = "string"
    required: bool = False
    secret: bool = False
    default: Any = None
    description: str = ""
    line: int = 0

    def __repr__(self) -> str:
        default = "'**********'" if self.secret and self.default is not None else repr(self.default)
        return (
            f"ConfigField(name={self.name!r}, type={self.type!r}, required={self.required!r}, "
            f"secret={self.secret!r}, default={default}, description={self.description!r})"
        )


@attrs.frozen
class DirectoryGrant:
    """A host directory a sandboxed plugin may see (``spec.permissions.directories``)."""

    host: str
    guest: str
    mode: Literal["ro", "rw"] = "ro"


@attrs.frozen
class Permissions:
    """``spec.permissions``: what a plugin *requests* beyond its own memory.

    The manifest is written by the plugin's author, so these are requests; the host
    grants them (:mod:`weaviate_ext.grants`), and a request the host did not grant
    refuses the load. ``env`` names host environment variables passed through;
    ``directories`` are directories the plugin sees; ``network`` asks for TCP (grpc).
    """

    env: tuple[str, ...] = ()
    directories: tuple[DirectoryGrant, ...] = ()
    network: bool = False


@attrs.frozen
class Tls:
    """``spec.tls``: TLS for a remote grpc plugin (``spec.address``).

    ``ca``, ``cert`` and ``key`` are PEM files relative to the plugin directory (each
    stays inside it, like ``binary``): the CA certificates that sign the server's
    certificate (``None``: the system's roots) and the client certificate chain and
    private key for mutual TLS (both or neither). ``server_name`` (``serverName``) is
    the name the server's certificate must carry when it differs from the address's host.
    """

    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    server_name: str | None = None


@attrs.frozen
class Spec:
    """``spec``: what the plugin is and how to run it.

    ``binary`` (wasm, native), ``entrypoint`` (python: ``module:object``), ``command``
    (grpc: the process to start) and ``address`` (grpc: a running service) say where the
    code is; which one a runtime needs is up to its bridge. ``timeout`` is the default
    per-call deadline in seconds. ``sha256`` is the declared digest of ``binary``.
    ``tls`` configures TLS for ``address`` (``None``: a plaintext connection).
    ``max_concurrency`` (``maxConcurrency``) is the plugin's bulkhead: at most that many
    calls run in it at once (``None``: derived from ``resources.cpu`` or the default).
    """

    type: str
    runtime: str
    binary: str | None = None
    entrypoint: str | None = None
    command: tuple[str, ...] | None = None
    address: str | None = None
    sha256: str | None = None
    timeout: float | None = None
    max_concurrency: int | None = None
    dependencies: tuple[Dependency, ...] = ()
    resources: Resources = Resources()
    capabilities: Capabilities = Capabilities()
    config: Mapping[str, ConfigField] = attrs.field(factory=dict, converter=_frozen_mapping)
    permissions: Permissions = Permissions()
    tls: Tls | None = None


@attrs.frozen
class Manifest:
    """A whole, validated ``plugin.yaml``.

    ``path`` is the file it was read from (``None`` when parsed from text without one);
    relative paths in the manifest are relative to :attr:`directory`.
    """

    metadata: Metadata
    spec: Spec
    api_version: str = API_VERSION
    kind: str = KIND
    path: Path | None = None
    positions: Mapping[str, int] = attrs.field(
        factory=dict, converter=_frozen_mapping, repr=False, eq=False
    )
    """Line of each field by dotted path (``spec.type`` -> 14), for error messages."""

    @property
    def name(self) -> str:
        """The plugin's name (``metadata.name``)."""
        return self.metadata.name

    @property
    def version(self) -> str:
        """The plugin's version (``metadata.version``)."""
        return self.metadata.version

    @property
    def directory(self) -> Path:
        """The plugin's directory: where ``plugin.yaml`` is (the cwd without a path)."""
        return self.path.parent if self.path is not None else Path.cwd()

    @property
    def binary_path(self) -> Path | None:
        """``spec.binary`` resolved against :attr:`directory`, or ``None``."""
        return self.directory / self.spec.binary if self.spec.binary else None

    def line_of(self, field: str) -> int:
        """The 1-based line of a dotted field path, or of its nearest parent; 0 if unknown."""
        while field:
            if field in self.positions:
                return self.positions[field]
            field = field.rpartition(".")[0]
        return 0

    def where(self, field: str) -> str:
        """``file:line`` of a field, for messages."""
        name = str(self.path) if self.path is not None else "plugin.yaml"
        line = self.line_of(field)
        return f"{name}:{line}" if line else name
