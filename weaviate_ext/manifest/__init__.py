"""Reading and checking ``plugin.yaml`` manifests. Only this package knows YAML.

Public API:

- :func:`load_manifest` / :func:`parse_manifest` -> :class:`Manifest` or :class:`ManifestError`
- :func:`resolve_config` -> :class:`PluginConfig` (host values, ``${env:..}``/``${file:..}``,
  defaults; secrets wrapped in :class:`Secret`) or :class:`ConfigError`
- :func:`read_host_config` -> per-plugin host config values from a YAML/JSON file
  (:func:`read_host_file`: those and the file's ``_grants`` section)
- :func:`manifest_schema` -> the JSON Schema of a manifest (also in ``hookspecs/``)
"""

from weaviate_ext.errors import ConfigError, ManifestError, Problem
from weaviate_ext.manifest.config import PluginConfig, Secret, resolve_config
from weaviate_ext.manifest.hostconfig import read_host_config, read_host_file
from weaviate_ext.manifest.loader import load_manifest, parse_manifest
from weaviate_ext.manifest.model import (
    API_VERSION,
    CONFIG_TYPES,
    FRAMEWORK_NAME,
    KIND,
    PLUGIN_TYPES,
    Capabilities,
    ConfigField,
    Dependency,
    DirectoryGrant,
    Manifest,
    Metadata,
    Permissions,
    Resources,
    Spec,
)
from weaviate_ext.manifest.schema import manifest_schema

__all__ = [
    "API_VERSION",
    "CONFIG_TYPES",
    "FRAMEWORK_NAME",
    "KIND",
    "PLUGIN_TYPES",
    "Capabilities",
    "ConfigError",
    "ConfigField",
    "Dependency",
    "DirectoryGrant",
    "Manifest",
    "ManifestError",
    "Metadata",
    "Permissions",
    "PluginConfig",
    "Problem",
    "Resources",
    "Secret",
    "Spec",
    "load_manifest",
    "manifest_schema",
    "parse_manifest",
    "read_host_config",
    "read_host_file",
    "resolve_config",
]
