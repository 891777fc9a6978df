"""weaviate-ext ``jwt-auth``: JWT bearer tokens verified against a JWKS.

Installing this package registers the plugin with weaviate-ext through the entry point
``jwt-auth`` in the group ``weaviate_ext``; the plugin itself is
:class:`weaviate_ext_jwt_auth.plugin.JwtAuth`.
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
