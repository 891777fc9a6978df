"""Host configuration files: the config values a host gives each plugin, by name.

A file (YAML, or JSON, which YAML reads too) maps plugin names to mappings of config
keys, e.g. ``{"file-store": {"path": "/var/lib/kv"}}``. It is read with the same safe,
alias-refusing, size-capped reader as manifests; values are checked against each
plugin's config schema later, when the plugin loads.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from weaviate_ext.errors import ConfigError, ManifestError
from weaviate_ext.manifest._yaml import MAX_BYTES, read_yaml

HOST_CONFIG_TOP = "a mapping of plugin names to mappings of config values"


GRANTS_KEY = "_grants"
"""The section of a host config file that holds the host's grants (not a plugin name:
plugin names cannot start with ``_``)."""

REGISTRY_KEY = "_registry"
"""The section of a host config file that holds the host's OCI registry settings: the
signature policy, digest pins, the cache and plain-HTTP hosts
(:meth:`weaviate_ext.registry.settings.RegistrySettings.from_data`)."""


def read_host_config(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Read a host config file into ``{plugin name: {key: value}}`` (its ``_grants``
    section left out; :func:`read_host_file` returns both)."""
    return read_host_file(path)[0]


def read_host_file(path: str | os.PathLike[str]) -> tuple[dict[str, dict[str, Any]], Any]:
    """Read a host config file: ``({plugin name: {key: value}}, the _grants section)``
    (the ``_registry`` section left out: :func:`read_host_sections` has it too)."""
    config, grants, _ = read_host_sections(path)
    return config, grants


def read_registry_section(path: str | os.PathLike[str]) -> Any:
    """The ``_registry`` section of a host config file (``None`` when absent)."""
    return read_host_sections(path)[2]


def read_host_sections(
    path: str | os.PathLike[str],
) -> tuple[dict[str, dict[str, Any]], Any, Any]:
    """Read a host config file: ``({plugin name: {key: value}}, _grants, _registry)``.

    The ``_grants`` section (``None`` when absent) is plain data for
    :meth:`weaviate_ext.grants.Grants.from_data`::

        _grants:
          my-plugin: {env: [HF_TOKEN], directories: [/srv/models, /var/x:rw], network: true}
          other-plugin: {trust: true}

    The ``_registry`` section (``None`` when absent) is plain data for
    :meth:`weaviate_ext.registry.settings.RegistrySettings.from_data` (docs/registry.md).

    Raises :class:`ConfigError` (``file:line: message``) for anything that is not such
    a mapping, and :class:`OSError` when the file cannot be read. An empty file is ``{}``.
    """
    filename = os.fspath(path)
    with Path(filename).open("rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    try:
        loaded, positions = read_yaml(data, filename, expected=HOST_CONFIG_TOP, allow_empty=True)
    except ManifestError as exc:
        raise ConfigError(exc.reason) from None
    config: dict[str, dict[str, Any]] = {}
    grants = loaded.pop(GRANTS_KEY, None)
    registry = loaded.pop(REGISTRY_KEY, None)
    for name, values in loaded.items():
        if values is None:
            values = {}
        if not isinstance(values, dict):
            line = positions.get(name, 0)
            raise ConfigError(
                f"{filename}:{line}: {name}: expected a mapping of config keys to values"
            )
        config[name] = values
    return config, grants, registry
