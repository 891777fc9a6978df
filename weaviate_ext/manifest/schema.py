"""The JSON Schema of a ``plugin.yaml``, shipped as package data.

The same file is at ``hookspecs/plugin-manifest.schema.json`` in the repository, for
editors and for runtimes written in other languages; a test keeps the two identical.
Patterns carry a human description of what they expect in the custom keyword
``x-expected``, which the loader uses in its messages.
"""

from __future__ import annotations

import copy
import functools
import json
from importlib import resources
from typing import TYPE_CHECKING, Any

from weaviate_ext import plugin_types

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

SCHEMA_FILE = "manifest.schema.json"
"""The schema's file name inside the ``weaviate_ext.manifest`` package."""


@functools.cache
def _shipped() -> dict[str, Any]:
    text = (
        resources.files("weaviate_ext.manifest").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    )
    schema: dict[str, Any] = json.loads(text)
    return schema


@functools.cache
def _schema_for(types: tuple[str, ...]) -> dict[str, Any]:
    """The shipped schema with ``spec.type`` listing ``types``: the plugin types come from
    :mod:`weaviate_ext.plugin_types`; the file's copy of them is for editors (a test
    keeps the two equal)."""
    schema = copy.deepcopy(_shipped())
    schema["$defs"]["spec"]["properties"]["type"]["enum"] = list(types)
    return schema


def _schema() -> dict[str, Any]:
    return _schema_for(plugin_types.names())


def manifest_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a manifest, as a fresh dict the caller may change."""
    return copy.deepcopy(_schema())


def manifest_validator() -> Draft202012Validator:
    """A compiled validator of the manifest schema, shared by every caller; built (and
    :mod:`jsonschema` imported) on first use, so reading no manifest costs nothing."""
    return _validator_for(plugin_types.names())


@functools.cache
def _validator_for(types: tuple[str, ...]) -> Draft202012Validator:
    from jsonschema import Draft202012Validator  # ~35 ms: only when a manifest is checked

    return Draft202012Validator(_schema_for(types))
