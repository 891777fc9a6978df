"""Checks of call arguments that handles and plugins share.

Handles check every argument before a plugin is called; a plugin's hooks can also be
called directly (``manager.registry.hook``, another framework), so a careful plugin
checks them again. These functions give both the same rules and the same
:class:`~weaviate_ext.InvalidInput` messages::

    from weaviate_ext.inputs import check_data, key_bytes

    @hookimpl
    def store(self, key, data, deadline):
        self.db.put(key_bytes(key), check_data(data))
"""

from __future__ import annotations

from typing import Any

from weaviate_ext.errors import InvalidInput

__all__ = ["check_data", "check_key", "key_bytes"]


def check_key(key: Any) -> str:
    """``key`` when it is a non-empty ``str``; :class:`~weaviate_ext.InvalidInput` else."""
    if not isinstance(key, str):
        raise InvalidInput(f"key must be str, got {type(key).__name__}")
    if not key:
        raise InvalidInput("key must not be empty")
    return key


def key_bytes(key: Any) -> bytes:
    """The bytes a storage key is stored under: its UTF-8 form, lone surrogates kept
    (``surrogatepass``), so every ``str`` key has one and distinct keys stay distinct."""
    return check_key(key).encode("utf-8", "surrogatepass")


def check_data(data: Any) -> bytes:
    """``data`` as ``bytes`` (``bytearray`` and ``memoryview`` are copied);
    :class:`~weaviate_ext.InvalidInput` for anything that is not bytes-like."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise InvalidInput(f"data must be bytes, got {type(data).__name__}")
