"""``apikey-auth``: API-key authentication and glob-rule authorization.

Configuration:

``keys``
    ``{key_id: {"sha256": hex digest, "roles": [role, ...]}}``. The digest is
    ``sha256(api_key)``; with a ``pepper`` it is ``HMAC-SHA256(pepper, api_key)``, so a
    leaked configuration alone does not allow checking guesses. The plugin never sees
    or stores the keys themselves.
``rules``
    ``[{"role": r, "resource": glob, "action": glob, "allow": bool}, ...]``. ``role``
    may be ``*`` (any identity). Globs use :func:`fnmatch.fnmatchcase`; the rules are
    checked and applied by :mod:`weaviate_ext.rules`.
``pepper``
    a secret string (``secret: true``): redacted everywhere, read with ``.reveal()``.

``authenticate`` looks at ``credentials["api_key"]`` only: without one it returns
``None`` (not its kind of credentials), with a known key an
:class:`~weaviate_ext.Identity` whose subject is the key id, and with an unknown key it
raises :class:`~weaviate_ext.AuthenticationError`. Every configured digest is compared
with :func:`hmac.compare_digest`, without stopping at the first match.

``authorize`` applies the rules of the identity's roles: a matching deny rule gives
``False``, else a matching allow rule ``True``, else ``None`` (no opinion).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

from weaviate_ext import (
    AuthenticationError,
    Identity,
    Manifest,
    PluginConfig,
    Secret,
    hookimpl,
)
from weaviate_ext.rules import Rule, decide, parse_rules

HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


def digest(api_key: str, pepper: str = "") -> str:
    """The hex digest configured for ``api_key``: SHA-256, or HMAC-SHA256 with a pepper."""
    raw = api_key.encode("utf-8")
    if pepper:
        return hmac.new(pepper.encode("utf-8"), raw, hashlib.sha256).hexdigest()
    return hashlib.sha256(raw).hexdigest()


def parse_keys(value: Any) -> dict[str, tuple[bytes, tuple[str, ...]]]:
    """Check the ``keys`` config: key id -> (digest bytes, roles)."""
    if not isinstance(value, Mapping):
        raise ValueError("config keys must be a mapping of key id to {sha256, roles}")
    keys: dict[str, tuple[bytes, tuple[str, ...]]] = {}
    for key_id, entry in value.items():
        where = f"config keys.{key_id}"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where} must be a mapping with sha256 and roles")
        sha = entry.get("sha256")
        if not isinstance(sha, str) or not HEX_DIGEST.fullmatch(sha.lower()):
            raise ValueError(f"{where}.sha256 must be 64 hex digits")
        roles = entry.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise ValueError(f"{where}.roles must be a list of strings")
        unknown = sorted(set(entry) - {"sha256", "roles"})
        if unknown:
            raise ValueError(f"{where} has unknown fields {unknown}")
        keys[str(key_id)] = (bytes.fromhex(sha), tuple(roles))
    return keys


class ApiKeyAuth:
    """The plugin object: ``authenticate`` and ``authorize``."""

    def __init__(self) -> None:
        self.keys: dict[str, tuple[bytes, tuple[str, ...]]] = {}
        self.rules: tuple[Rule, ...] = ()
        self._pepper = Secret("")

    @hookimpl
    def plugin_setup(self, config: PluginConfig, manifest: Manifest) -> None:
        """Read and check ``keys``, ``rules`` and the secret ``pepper``."""
        self.keys = parse_keys(config.get("keys", {}))
        self.rules = parse_rules(config.get("rules", []))
        self._pepper = Secret(config.get("pepper", ""))

    @hookimpl
    def authenticate(self, credentials: Mapping[str, str]) -> Identity | None:
        """The identity of ``credentials["api_key"]``; ``None`` without one."""
        api_key = credentials.get("api_key")
        if api_key is None:
            return None
        if not isinstance(api_key, str):
            raise AuthenticationError("api_key must be a string")
        presented = bytes.fromhex(digest(api_key, self._pepper.reveal()))
        found: str | None = None
        for key_id, (expected, _roles) in self.keys.items():
            if hmac.compare_digest(presented, expected) and found is None:
                found = key_id
        if found is None:
            raise AuthenticationError("invalid API key")
        return Identity(
            subject=found,
            roles=self.keys[found][1],
            claims={"key_id": found, "method": "api_key"},
        )

    @hookimpl
    def authorize(self, identity: Identity, resource: str, action: str) -> bool | None:
        """Deny if a deny rule matches, else allow if an allow rule matches, else abstain."""
        return decide(self.rules, identity.roles, resource, action)
