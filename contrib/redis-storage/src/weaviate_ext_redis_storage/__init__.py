"""weaviate-ext ``redis-storage``: key-value storage in a Redis server.

Installing this package registers the plugin with weaviate-ext through the entry point
``redis-storage`` in the group ``weaviate_ext``; the plugin itself is
:class:`weaviate_ext_redis_storage.plugin.RedisStorage`.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.resources import files
from typing import Any

from weaviate_ext import hookimpl

__all__ = ["weaviate_ext_discover"]


@hookimpl
def weaviate_ext_discover() -> Iterable[Any]:
    """Hand the manifest this package ships to the plugin manager."""
    return [files(__name__) / "plugin.yaml"]
