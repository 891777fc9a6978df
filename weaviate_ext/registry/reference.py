"""``oci://`` references: ``oci://HOST[:PORT]/REPO[:TAG|@sha256:HEX]``.

A reference names a plugin artifact in an OCI registry: the registry's host (with an
optional port), the repository (lower-case path components, as the OCI distribution
spec allows them) and either a tag (default ``latest``) or a manifest digest.
"""

from __future__ import annotations

import ipaddress
import re

import attrs

from weaviate_ext.errors import RegistryError

SCHEME = "oci://"
"""The prefix of a plugin reference (``manager.load("oci://...")``)."""

_HOST = re.compile(
    r"^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::\d{1,5})?$"
)
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")

FORM = "oci://HOST[:PORT]/REPO[:TAG|@sha256:HEX]"


def is_oci(text: object) -> bool:
    """Whether ``text`` is an ``oci://`` reference (a string starting with the scheme)."""
    return isinstance(text, str) and text.startswith(SCHEME)


def check_digest(digest: str, what: str) -> str:
    """``digest`` if it is ``sha256:`` and 64 lower-case hex digits, else a RegistryError."""
    if not _DIGEST.match(digest):
        raise RegistryError(f"{what}: {digest!r} is not a digest (expected sha256:<64 hex>)")
    return digest


def host_name(registry: str) -> str:
    """The host part of ``HOST[:PORT]`` (brackets of an IPv6 literal removed)."""
    if registry.startswith("["):
        return registry[1 : registry.index("]")]
    return registry.rsplit(":", 1)[0] if ":" in registry else registry


def is_loopback(registry: str) -> bool:
    """Whether ``HOST[:PORT]`` is a loopback host (127.0.0.0/8, ::1, localhost)."""
    host = host_name(registry).lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@attrs.frozen
class Reference:
    """A parsed ``oci://`` reference (see :func:`parse_reference`)."""

    registry: str
    """``HOST[:PORT]``."""
    repository: str
    """The repository path, e.g. ``plugins/c-embedder``."""
    tag: str | None = None
    """The tag, or ``None`` when the reference is by digest."""
    digest: str | None = None
    """The manifest digest (``sha256:...``), or ``None`` when by tag."""

    @property
    def docker_reference(self) -> str:
        """``HOST[:PORT]/REPO``: what cosign signs as ``critical.identity.docker-reference``."""
        return f"{self.registry}/{self.repository}"

    @property
    def ref(self) -> str:
        """What goes into ``/v2/REPO/manifests/<ref>``: the digest, else the tag."""
        return self.digest or self.tag or "latest"

    def with_digest(self, digest: str) -> Reference:
        """The same artifact, by digest (the tag dropped)."""
        return Reference(self.registry, self.repository, None, digest)

    def with_tag(self, tag: str) -> Reference:
        """The same repository at ``tag``."""
        return Reference(self.registry, self.repository, tag, None)

    def __str__(self) -> str:
        suffix = f"@{self.digest}" if self.digest else f":{self.tag or 'latest'}"
        return f"{SCHEME}{self.docker_reference}{suffix}"


def parse_reference(text: str) -> Reference:
    """Parse ``oci://HOST[:PORT]/REPO[:TAG|@sha256:HEX]``; a :class:`RegistryError` naming
    the reference and what is wrong with it otherwise. Without tag or digest: ``latest``."""
    if not is_oci(text):
        raise RegistryError(f"{text!r}: not an oci:// reference (expected {FORM})")
    rest = text[len(SCHEME) :]
    registry, slash, path = rest.partition("/")
    if not slash or not registry or not path:
        raise RegistryError(f"{text}: expected {FORM}")
    if not _HOST.match(registry):
        raise RegistryError(f"{text}: {registry!r} is not a registry host[:port]")
    port = registry.rsplit(":", 1)[1] if ":" in registry and "]" not in registry[-1:] else None
    if port is not None and not 0 < int(port) < 65536:
        raise RegistryError(f"{text}: port {port} is out of range")
    tag: str | None = None
    digest: str | None = None
    if "@" in path:
        path, _, digest = path.partition("@")
        check_digest(digest, text)
    else:
        last = path.rsplit("/", 1)[-1]
        if ":" in last:
            path, _, tag = path.rpartition(":")
            if not _TAG.match(tag):
                raise RegistryError(f"{text}: {tag!r} is not a valid tag")
    for component in path.split("/"):
        if not _COMPONENT.match(component):
            raise RegistryError(
                f"{text}: {component!r} is not a valid repository path component "
                "(lower-case letters, digits, '.', '_', '-')"
            )
    return Reference(registry, path, tag if digest is None else None, digest)
