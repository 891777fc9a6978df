"""weaviate-ext ``argon2-apikey-auth``: API keys checked against argon2 hashes.

Installing this package registers the plugin with weaviate-ext through the entry point
``argon2-apikey-auth`` in the group ``weaviate_ext``; the plugin itself is
:class:`weaviate_ext_apikey_auth.plugin.ApiKeyAuth`. New keys and their hashes come
from ``python -m weaviate_ext_apikey_auth hash`` or :func:`new_key` and :func:`hash_key`.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.resources import files
from typing import Any

from weaviate_ext import hookimpl
from weaviate_ext_apikey_auth.keys import hash_key, new_key, split_key

__all__ = ["hash_key", "new_key", "split_key", "weaviate_ext_discover"]


@hookimpl
def weaviate_ext_discover() -> Iterable[Any]:
    """Hand the manifest this package ships to the plugin manager."""
    return [files(__name__) / "plugin.yaml"]
