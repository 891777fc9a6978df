"""API keys of the form ``<key id>.<secret>`` and their argon2 hashes.

The key id names the config entry, so verifying a key costs one argon2 verification,
never one per configured key. The hash covers the whole key, id included.
"""

from __future__ import annotations

import re
import secrets

from argon2 import PasswordHasher
from argon2.low_level import Type

KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""What a key id may be: letters, digits, ``_`` and ``-``, at most 64 characters."""

MAX_KEY_LENGTH = 1024
"""Longer presented keys are refused before any hashing."""

MIN_SECRET_LENGTH = 16
"""The shortest secret :func:`hash_key` accepts for a new key."""

DEFAULT_TIME_COST = 3
DEFAULT_MEMORY_COST = 65536  # KiB: RFC 9106's low-memory profile (argon2-cffi's default)
DEFAULT_PARALLELISM = 4


def hasher(
    time_cost: int = DEFAULT_TIME_COST,
    memory_cost: int = DEFAULT_MEMORY_COST,
    parallelism: int = DEFAULT_PARALLELISM,
) -> PasswordHasher:
    """An argon2id hasher with these parameters (they also decide ``check_needs_rehash``)."""
    return PasswordHasher(
        time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism, type=Type.ID
    )


def split_key(key: str) -> tuple[str, str]:
    """``(key id, secret)`` of ``key``; :class:`ValueError` if it is not ``<id>.<secret>``."""
    if not isinstance(key, str) or len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"an API key is a string of at most {MAX_KEY_LENGTH} characters")
    key_id, dot, secret = key.partition(".")
    if not dot or not secret or not KEY_ID.fullmatch(key_id):
        raise ValueError(
            "an API key has the form <key id>.<secret>, the key id being 1-64 letters, "
            "digits, '_' or '-'"
        )
    return key_id, secret


def new_key(key_id: str | None = None) -> str:
    """A new random key ``<key id>.<secret>`` (the secret has 256 random bits)."""
    key_id = key_id if key_id is not None else "k" + secrets.token_hex(6)
    if not KEY_ID.fullmatch(key_id):
        raise ValueError("a key id is 1-64 letters, digits, '_' or '-'")
    return f"{key_id}.{secrets.token_urlsafe(32)}"


def hash_key(
    key: str,
    *,
    time_cost: int = DEFAULT_TIME_COST,
    memory_cost: int = DEFAULT_MEMORY_COST,
    parallelism: int = DEFAULT_PARALLELISM,
) -> str:
    """The argon2id hash of ``key`` to put in the plugin's ``keys.<id>.hash``."""
    _, secret = split_key(key)
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(f"the secret part of a new key needs {MIN_SECRET_LENGTH}+ characters")
    return hasher(time_cost, memory_cost, parallelism).hash(key)
