"""Handles of storage and auth plugins."""

from __future__ import annotations

from collections.abc import Mapping

import attrs
import numpy as np

from weaviate_ext.aio import awaitable
from weaviate_ext.deadline import Deadline
from weaviate_ext.errors import (
    InvalidInput,
    PluginOutputError,
)
from weaviate_ext.handles.base import PluginHandle, require_str
from weaviate_ext.inputs import check_data, check_key
from weaviate_ext.live import LivePlugin
from weaviate_ext.types import Identity


class StorageHandle(PluginHandle):
    """Calls one storage plugin. Keys are ``str``, values ``bytes``."""

    plugin_type = "storage"
    __slots__ = ()

    def store(self, key: str, data: bytes, *, timeout: float | None = None) -> None:
        """Store ``data`` under ``key``; returns once the plugin acknowledged the write."""
        check_key(key)
        payload = check_data(data)
        self._run("store", timeout, lambda live, d: live.hooks["store"](key, payload, d))

    def retrieve(self, key: str, *, timeout: float | None = None) -> bytes | None:
        """The bytes under ``key``, or ``None`` when there is no such key."""
        check_key(key)

        def body(live: LivePlugin, deadline: Deadline) -> bytes | None:
            out = live.hooks["retrieve"](key, deadline)
            if out is None or isinstance(out, bytes):
                return out
            if isinstance(out, (bytearray, memoryview)):
                return bytes(out)
            raise PluginOutputError(
                live.name, "retrieve", f"returned {type(out).__name__}, not bytes or None"
            )

        return self._run("retrieve", timeout, body)

    def delete(self, key: str, *, timeout: float | None = None) -> bool:
        """Remove ``key``; ``True`` if it existed."""
        check_key(key)
        return bool(self._run("delete", timeout, lambda live, d: live.hooks["delete"](key, d)))

    astore = awaitable(store)
    aretrieve = awaitable(retrieve)
    adelete = awaitable(delete)


class AuthHandle(PluginHandle):
    """Calls one auth plugin (the manager's ``authenticate``/``authorize`` ask them all)."""

    plugin_type = "auth"
    __slots__ = ()

    def authenticate(
        self, credentials: Mapping[str, str], *, timeout: float | None = None
    ) -> Identity | None:
        """The identity this plugin recognises in ``credentials``, or ``None``."""
        if not isinstance(credentials, Mapping):
            raise InvalidInput(f"credentials must be a mapping, got {type(credentials).__name__}")

        def body(live: LivePlugin, deadline: Deadline) -> Identity | None:
            out = live.hooks["authenticate"](credentials, deadline)
            if out is None:
                return None
            if not isinstance(out, Identity):
                raise PluginOutputError(
                    live.name, "authenticate", f"returned {type(out).__name__}, not Identity"
                )
            return out if out.plugin == live.name else _with_plugin(out, live.name)

        return self._run("authenticate", timeout, body)

    def authorize(
        self, identity: Identity, resource: str, action: str, *, timeout: float | None = None
    ) -> bool | None:
        """``True`` (allow), ``False`` (deny) or ``None`` (abstain, or no ``authorize`` hook)."""
        require_str(resource, "resource")
        require_str(action, "action")

        def body(live: LivePlugin, deadline: Deadline) -> bool | None:
            fn = live.hooks.get("authorize")
            if fn is None:
                return None
            out = fn(identity, resource, action, deadline)
            if out is not None and not isinstance(out, (bool, np.bool_)):
                raise PluginOutputError(
                    live.name, "authorize", f"returned {type(out).__name__}, not bool or None"
                )
            return None if out is None else bool(out)

        return self._run("authorize", timeout, body)

    aauthenticate = awaitable(authenticate)
    aauthorize = awaitable(authorize)


def _with_plugin(identity: Identity, plugin: str) -> Identity:
    return attrs.evolve(identity, plugin=plugin)
