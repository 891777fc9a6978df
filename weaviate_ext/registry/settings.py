"""The host's registry settings: the ``_registry`` section of a host config file.

::

    _registry:
      cache: {dir: /var/cache/weaviate-ext/oci, maxSize: 2Gi}   # optional
      insecure: [registry.internal:5000]                       # plain HTTP to these hosts
      policy:                                                  # RegistryPolicy.from_data
        repositories: [{match: "registry.example/plugins/*", keys: [keys/team.pub]}]
        pins: {"registry.example/plugins/echo:1.0": "sha256:<hex>"}

Without a section the default holds: the cache at ``~/.cache/weaviate-ext/oci``, plain
HTTP only to loopback, and :attr:`RegistryPolicy.DEFAULT` (unsigned artifacts refused).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from weaviate_ext.errors import ConfigError
from weaviate_ext.registry.cache import OciCache
from weaviate_ext.registry.reference import is_loopback

if TYPE_CHECKING:
    from weaviate_ext.registry.policy import RegistryPolicy

_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "ki": 1024, "mi": 1024**2, "gi": 1024**3}


def parse_size(value: object, where: str) -> int:
    """A byte count from ``123``, ``"512Mi"``, ``"2G"`` (a :class:`ConfigError` otherwise)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        text = value.strip().lower().removesuffix("b")
        number = text.rstrip("kmgi")
        unit = text[len(number) :]
        if number.isdigit() and unit in _UNITS:
            return int(number) * _UNITS[unit]
    raise ConfigError(f"{where}: {value!r} is not a size (bytes, or like 512Mi, 2G)")


def _default_policy() -> RegistryPolicy:
    from weaviate_ext.registry.policy import RegistryPolicy

    return RegistryPolicy.DEFAULT


@attrs.frozen
class RegistrySettings:
    """Policy, cache and plain-HTTP hosts for pulls (``PluginManager(registry=...)``)."""

    policy: RegistryPolicy = attrs.field(factory=_default_policy)
    cache_dir: Path | None = None
    """``None``: :func:`~weaviate_ext.registry.cache.default_root`."""
    max_size: int | None = None
    insecure: frozenset[str] | bool = frozenset()
    """Registries reached over plain HTTP besides loopback (``True``: all)."""

    @classmethod
    def default(cls) -> RegistrySettings:
        """The settings without a ``_registry`` section."""
        return cls()

    @classmethod
    def from_data(cls, data: Mapping[str, Any] | None, base_dir: Path) -> RegistrySettings:
        """The settings of a ``_registry`` section (relative paths against ``base_dir``)."""
        from weaviate_ext.registry.policy import RegistryPolicy

        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ConfigError("_registry: expected a mapping")
        unknown = sorted(set(data) - {"policy", "cache", "insecure"})
        if unknown:
            raise ConfigError(
                f"_registry: unknown key {unknown[0]!r} (expected policy, cache, insecure)"
            )
        cache = data.get("cache") or {}
        insecure_value = data.get("insecure")
        if not isinstance(cache, Mapping):
            raise ConfigError("_registry.cache: expected a mapping (dir, maxSize)")
        cache_dir = cache.get("dir")
        size = cache.get("maxSize", cache.get("max_size"))
        insecure: frozenset[str] | bool
        if insecure_value is None:
            insecure = frozenset()
        elif isinstance(insecure_value, bool):
            insecure = insecure_value
        elif isinstance(insecure_value, list) and all(isinstance(h, str) for h in insecure_value):
            insecure = frozenset(insecure_value)
        else:
            raise ConfigError("_registry.insecure: expected true/false or a list of HOST[:PORT]")
        return cls(
            RegistryPolicy.from_data(data.get("policy"), base_dir),
            base_dir / os.path.expanduser(str(cache_dir)) if cache_dir else None,
            parse_size(size, "_registry.cache.maxSize") if size is not None else None,
            insecure,
        )

    def cache(self) -> OciCache:
        """The cache these settings name."""
        return OciCache(self.cache_dir, self.max_size)

    def is_insecure(self, registry: str) -> bool:
        """Whether ``registry`` is reached over plain HTTP (loopback always is)."""
        if is_loopback(registry) or self.insecure is True:
            return True
        return isinstance(self.insecure, frozenset) and registry in self.insecure
