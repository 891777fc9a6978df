"""``argon2-apikey-auth``: API keys verified against argon2 hashes, and role rules.

``authenticate`` reads ``credentials[credential]`` (``api_key`` by default):

* absent: ``None``, these are not its kind of credentials;
* not ``<key id>.<secret>``: :class:`~weaviate_ext.AuthenticationError` (malformed);
* a known key id: the key is verified against that entry's argon2 hash, one
  verification, constant-time as argon2 is. A hash made with other parameters than the
  configured ones still verifies (and is logged once as due for re-hashing);
* an unknown key id: a dummy hash is verified as well, so that an unknown id takes as
  long as a wrong secret, and the same ``invalid API key`` error is raised.

A verified key is remembered for ``cache_seconds`` under an HMAC of the key with a
random per-process key, so a client sending the same key again skips argon2.

``authorize`` applies the rules of the identity's roles: a matching deny rule gives
``False``, else a matching allow rule ``True``, else ``None`` (no opinion).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from collections.abc import Mapping
from typing import Any

import attrs
from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError

from weaviate_ext import (
    AuthenticationError,
    ConfigError,
    Identity,
    Manifest,
    PluginConfig,
    hookimpl,
)
from weaviate_ext.rules import Rule, decide, parse_rules
from weaviate_ext_apikey_auth.keys import KEY_ID, hasher, split_key

log = logging.getLogger("weaviate_ext.apikey_auth")

MAX_CACHE_ENTRIES = 10_000
HASH_HINT = "make one with: python -m weaviate_ext_apikey_auth hash"


@attrs.frozen
class KeyEntry:
    """One configured key: its hash, roles, subject and whether it is disabled."""

    key_id: str
    hash: str = attrs.field(repr=False)
    roles: tuple[str, ...]
    subject: str
    disabled: bool = False


def _string_list(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where} must be a list of non-empty strings")
    return tuple(value)


def parse_keys(value: Any) -> dict[str, KeyEntry]:
    """Check the ``keys`` config: key id -> {hash, roles, subject, disabled}."""
    if not isinstance(value, Mapping):
        raise ConfigError("config key 'keys' must map key ids to {hash, roles}")
    keys: dict[str, KeyEntry] = {}
    for key_id, entry in value.items():
        where = f"config keys.{key_id}"
        if not isinstance(key_id, str) or not KEY_ID.fullmatch(key_id):
            raise ConfigError(f"{where}: a key id is 1-64 letters, digits, '_' or '-'")
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where} must be a mapping with hash and roles")
        unknown = sorted(set(entry) - {"hash", "roles", "subject", "disabled"})
        if unknown:
            raise ConfigError(f"{where} has unknown fields {unknown}")
        encoded = entry.get("hash")
        if not isinstance(encoded, str):
            raise ConfigError(f"{where}.hash is missing ({HASH_HINT})")
        try:
            extract_parameters(encoded)
        except (InvalidHashError, ValueError):
            raise ConfigError(f"{where}.hash is not an argon2 hash ({HASH_HINT})") from None
        subject = entry.get("subject", key_id)
        if not isinstance(subject, str) or not subject:
            raise ConfigError(f"{where}.subject must be a non-empty string")
        disabled = entry.get("disabled", False)
        if not isinstance(disabled, bool):
            raise ConfigError(f"{where}.disabled must be true or false")
        roles = _string_list(entry.get("roles", []), f"{where}.roles")
        keys[key_id] = KeyEntry(key_id, encoded, roles, subject, disabled)
    return keys


class ApiKeyAuth:
    """The plugin object: ``authenticate`` and ``authorize``."""

    def __init__(self) -> None:
        self.name = "argon2-apikey-auth"
        self.keys: dict[str, KeyEntry] = {}
        self.rules: tuple[Rule, ...] = ()
        self.credential = "api_key"
        self.cache_seconds = 0.0
        self._hasher: PasswordHasher = hasher()
        self._dummy = ""
        self._cache_key = os.urandom(32)
        self._cache: dict[bytes, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._rehash_logged: set[str] = set()

    def __repr__(self) -> str:
        return f"<ApiKeyAuth {self.name!r} keys={sorted(self.keys)}>"

    @hookimpl
    def plugin_setup(self, config: PluginConfig, manifest: Manifest) -> None:
        """Check keys, rules and argon2 parameters; prepare the dummy hash."""
        self.name = manifest.name
        self.keys = parse_keys(config.get("keys", {}))
        self.rules = parse_rules(config.get("rules", []))
        self.credential = config.get_string("credential")
        if not self.credential:
            raise ConfigError("config key 'credential' must not be empty")
        self.cache_seconds = config.get_float("cache_seconds")
        if not 0 <= self.cache_seconds <= 86400:
            raise ConfigError("config key 'cache_seconds' must be between 0 and 86400")
        time_cost = config.get_int("time_cost")
        memory_cost = config.get_int("memory_cost")
        parallelism = config.get_int("parallelism")
        if time_cost < 1 or parallelism < 1 or memory_cost < 8 * parallelism:
            raise ConfigError(
                "argon2 parameters need time_cost >= 1, parallelism >= 1 and "
                "memory_cost >= 8 * parallelism (KiB)"
            )
        self._hasher = hasher(time_cost, memory_cost, parallelism)
        # verified for unknown key ids, so that they cost as much as a wrong secret
        self._dummy = self._hasher.hash(secrets.token_urlsafe(32))

    # -- authenticate ------------------------------------------------------------------

    def _digest(self, key: str) -> bytes:
        return hmac.new(
            self._cache_key, key.encode("utf-8", "surrogatepass"), hashlib.sha256
        ).digest()

    def _cached(self, digest: bytes) -> str | None:
        if self.cache_seconds <= 0:
            return None
        with self._lock:
            found = self._cache.get(digest)
            if found is None:
                return None
            key_id, expires = found
            if time.monotonic() >= expires:
                del self._cache[digest]
                return None
            return key_id

    def _remember(self, digest: bytes, key_id: str) -> None:
        if self.cache_seconds <= 0:
            return
        now = time.monotonic()
        with self._lock:
            if len(self._cache) >= MAX_CACHE_ENTRIES:
                self._cache = {d: v for d, v in self._cache.items() if v[1] > now}
                if len(self._cache) >= MAX_CACHE_ENTRIES:
                    self._cache.clear()
            self._cache[digest] = (key_id, now + self.cache_seconds)

    def _verify(self, key_id: str, key: str) -> KeyEntry:
        entry = self.keys.get(key_id)
        try:
            self._hasher.verify(self._dummy if entry is None else entry.hash, key)
        except (VerificationError, InvalidHashError):
            raise AuthenticationError("invalid API key") from None
        if entry is None:  # the dummy cannot match: its secret was never kept
            raise AuthenticationError("invalid API key")
        if self._hasher.check_needs_rehash(entry.hash) and key_id not in self._rehash_logged:
            self._rehash_logged.add(key_id)
            log.info(
                "%s: the hash of key id %s uses other argon2 parameters than configured; "
                "it still verifies, re-hash it (python -m weaviate_ext_apikey_auth hash)",
                self.name,
                key_id,
            )
        return entry

    @hookimpl
    def authenticate(self, credentials: Mapping[str, str]) -> Identity | None:
        """The identity of the presented key; ``None`` when no key is presented."""
        key = credentials.get(self.credential)
        if key is None:
            return None
        if not isinstance(key, str):
            raise AuthenticationError(f"{self.credential} must be a string")
        try:
            key_id, _ = split_key(key)
        except ValueError as exc:
            raise AuthenticationError(f"malformed API key: {exc}") from None
        digest = self._digest(key)
        if self._cached(digest) == key_id:
            entry = self.keys[key_id]
        else:
            entry = self._verify(key_id, key)
            if not entry.disabled:
                self._remember(digest, key_id)
        if entry.disabled:
            raise AuthenticationError(f"API key {key_id} is disabled")
        return Identity(
            subject=entry.subject,
            roles=entry.roles,
            claims={"key_id": key_id, "method": "api_key"},
        )

    # -- authorize ---------------------------------------------------------------------

    @hookimpl
    def authorize(self, identity: Identity, resource: str, action: str) -> bool | None:
        """Deny if a deny rule matches, else allow if an allow rule matches, else abstain."""
        return decide(self.rules, identity.roles, resource, action)
