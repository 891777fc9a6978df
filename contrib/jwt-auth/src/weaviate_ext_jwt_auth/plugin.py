"""``jwt-auth``: JWT bearer tokens verified against a JWKS, claims mapped to roles.

``authenticate`` looks for a token in ``credentials["authorization"]`` (``Bearer <jwt>``,
the key in any case) or ``credentials["token"]``. A value that is not shaped like a
JWT (three base64url segments) is not this plugin's kind: ``None``. A JWT is verified:

1. its header's ``alg`` must be one of ``algorithms`` (asymmetric only: a token saying
   ``none`` or ``HS256`` is refused before any key is looked at, which also stops the
   HS256-with-the-public-key confusion);
2. its ``kid`` selects a key of the JWKS (from ``jwks_file``, or ``jwks_url`` through
   PyJWT's :class:`~jwt.PyJWKClient`, cached for ``jwks_cache_seconds`` and fetched
   again for an unknown ``kid`` at most every ``jwks_refresh_cooldown`` seconds); the
   key's own algorithm must be the token's;
3. the signature, ``exp``, ``nbf``, ``iat`` (with ``leeway``), ``iss``, ``aud`` and the
   ``required_claims`` are checked by :func:`jwt.decode`.

Every refusal is an :class:`~weaviate_ext.AuthenticationError` saying why (expired,
wrong audience, bad signature, ...), never containing the token. A JWKS URL that
cannot be reached is a :class:`~weaviate_ext.PluginCallError` instead: the server's
failure, not the client's.

``authorize`` applies the ``rules`` of the identity's roles: a matching deny rule gives
``False``, else a matching allow rule ``True``, else ``None`` (no opinion).
"""

from __future__ import annotations

import inspect
import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
from jwt import PyJWK, PyJWKClient, PyJWKSet
from jwt.exceptions import (
    DecodeError,
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAlgorithmError,
    InvalidAudienceError,
    InvalidIssuerError,
    InvalidKeyError,
    InvalidSignatureError,
    InvalidTokenError,
    MissingRequiredClaimError,
    PyJWKClientConnectionError,
    PyJWKClientError,
    PyJWKError,
    PyJWKSetError,
)

from weaviate_ext import (
    AuthenticationError,
    ConfigError,
    Identity,
    Manifest,
    PluginCallError,
    PluginConfig,
    PluginLoadError,
    hookimpl,
)
from weaviate_ext.rules import Rule, decide, parse_rules

log = logging.getLogger("weaviate_ext.jwt_auth")

ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
"""The algorithms ``algorithms`` may list: signatures checked with a public key."""

MAX_TOKEN_LENGTH = 16 * 1024
JWT_SHAPE = re.compile(r"[A-Za-z0-9_=-]+\.[A-Za-z0-9_=-]+\.[A-Za-z0-9_=-]*")
BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +(\S+)\s*")


def parse_mapping(value: Any) -> dict[str, tuple[str, ...]]:
    """Check ``role_mapping``: claim value -> role or list of roles."""
    if not isinstance(value, Mapping):
        raise ConfigError("config key 'role_mapping' must map claim values to roles")
    mapping: dict[str, tuple[str, ...]] = {}
    for claim_value, roles in value.items():
        if isinstance(roles, str):
            roles = [roles]
        if not isinstance(roles, list) or not all(isinstance(r, str) and r for r in roles):
            raise ConfigError(f"config role_mapping.{claim_value} must be a role or list of roles")
        mapping[str(claim_value)] = tuple(roles)
    return mapping


def parse_algorithms(value: Any) -> tuple[str, ...]:
    """Check ``algorithms``: a non-empty list of asymmetric JWS algorithms."""
    if not isinstance(value, list) or not value or not all(isinstance(a, str) for a in value):
        raise ConfigError("config key 'algorithms' must be a non-empty list like [RS256, ES256]")
    refused = [a for a in value if a not in ASYMMETRIC]
    if refused:
        raise ConfigError(
            f"config key 'algorithms': {', '.join(refused)} not accepted; only asymmetric "
            f"algorithms are ({', '.join(sorted(ASYMMETRIC))}): HS* would let anyone holding "
            "the verification key sign tokens, and none signs nothing"
        )
    return tuple(value)


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """The claim at a dotted ``path`` (``realm_access.roles``), or ``None``."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def describe_url(url: str) -> str:
    """``url`` as shown in messages: scheme, host, port and path only."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


def find_token(credentials: Mapping[str, Any]) -> str | None:
    """The JWT in ``credentials``, or ``None`` when they hold none (not this plugin's kind)."""
    candidate: Any = None
    for key, value in credentials.items():
        if isinstance(key, str) and key.lower() == "authorization" and isinstance(value, str):
            match = BEARER.fullmatch(value)
            if match:
                candidate = match.group(1)
                break
    if candidate is None:
        candidate = credentials.get("token")
    if not isinstance(candidate, str) or not JWT_SHAPE.fullmatch(candidate):
        return None
    return candidate


class JwtAuth:
    """The plugin object: ``authenticate`` (JWT verification) and ``authorize`` (rules)."""

    def __init__(self) -> None:
        self.name = "jwt-auth"
        self.issuer = ""
        self.audience = ""
        self.algorithms: tuple[str, ...] = ()
        self.leeway = 0.0
        self.required: tuple[str, ...] = ()
        self.subject_claim = "sub"
        self.roles_claim = "roles"
        self.mapping: dict[str, tuple[str, ...]] = {}
        self.rules: tuple[Rule, ...] = ()
        self.source = ""
        self._keys: PyJWKSet | None = None
        self._client: PyJWKClient | None = None

    def __repr__(self) -> str:
        return f"<JwtAuth {self.name!r} iss={self.issuer!r} aud={self.audience!r} {self.source}>"

    # -- setup -------------------------------------------------------------------------

    @hookimpl
    def plugin_setup(self, config: PluginConfig, manifest: Manifest) -> None:
        """Check the config and load (or fetch) the JWKS."""
        self.name = manifest.name
        self.issuer = config.get_string("issuer")
        self.audience = config.get_string("audience")
        if not self.issuer or not self.audience:
            raise ConfigError("config keys 'issuer' and 'audience' must not be empty")
        self.algorithms = parse_algorithms(config.get("algorithms"))
        self.leeway = config.get_float("leeway")
        if not 0 <= self.leeway <= 3600:
            raise ConfigError("config key 'leeway' must be between 0 and 3600 seconds")
        required = config.get("required_claims")
        if not isinstance(required, list) or not all(isinstance(c, str) for c in required):
            raise ConfigError("config key 'required_claims' must be a list of claim names")
        self.required = tuple(dict.fromkeys([*required, "iss", "aud"]))
        self.subject_claim = config.get_string("subject_claim")
        self.roles_claim = config.get_string("roles_claim")
        self.mapping = parse_mapping(config.get("role_mapping", {}))
        self.rules = parse_rules(config.get("rules", []))
        jwks_file = config.get_string("jwks_file")
        jwks_url = config.get_string("jwks_url")
        if bool(jwks_file) == bool(jwks_url):
            raise ConfigError("set exactly one of config keys 'jwks_file' and 'jwks_url'")
        if jwks_file:
            self._keys = self._read_jwks_file(Path(jwks_file).expanduser())
            self.source = f"jwks_file={jwks_file}"
        else:
            self._client = self._make_client(jwks_url, config)
            self.source = f"jwks_url={describe_url(jwks_url)}"

    def _read_jwks_file(self, path: Path) -> PyJWKSet:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"jwks_file {path}: cannot read it ({exc.strerror or exc})") from None
        except ValueError as exc:
            raise ConfigError(f"jwks_file {path}: not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"jwks_file {path}: expected a JSON object with 'keys'")
        try:
            return PyJWKSet.from_dict(data)
        except (PyJWKSetError, PyJWKError) as exc:
            raise ConfigError(f"jwks_file {path}: not a usable JWKS ({exc})") from None

    def _make_client(self, url: str, config: PluginConfig) -> PyJWKClient:
        lifespan = config.get_float("jwks_cache_seconds")
        cooldown = config.get_float("jwks_refresh_cooldown")
        timeout = config.get_float("http_timeout")
        if not 0 < lifespan <= 86400:
            raise ConfigError("config key 'jwks_cache_seconds' must be more than 0, at most 86400")
        if not 0 <= cooldown <= 86400:
            raise ConfigError("config key 'jwks_refresh_cooldown' must be between 0 and 86400")
        if not 0 < timeout <= 600:
            raise ConfigError("config key 'http_timeout' must be more than 0, at most 600")
        if urlsplit(url).scheme not in ("http", "https"):
            raise ConfigError("config key 'jwks_url' must be an http:// or https:// URL")
        options: dict[str, Any] = {"cache_jwk_set": True, "lifespan": lifespan, "timeout": timeout}
        if "cooldown_duration" in inspect.signature(PyJWKClient).parameters:
            options["cooldown_duration"] = cooldown
        client = PyJWKClient(url, **options)
        try:
            client.get_jwk_set()  # fail at load, not at the first request
        except PyJWKClientError as exc:
            raise PluginLoadError(
                self.name, f"cannot fetch the JWKS from {describe_url(url)}: {exc}"
            ) from None
        except (PyJWKSetError, PyJWKError) as exc:
            raise PluginLoadError(
                self.name, f"the JWKS at {describe_url(url)} is not usable: {exc}"
            ) from None
        return client

    # -- authenticate ------------------------------------------------------------------

    def _refuse(self, reason: str) -> AuthenticationError:
        return AuthenticationError(f"token refused: {reason}")

    def _key_for(self, kid: str | None) -> PyJWK:
        if self._client is not None:
            try:
                if kid is None:
                    keys = self._client.get_signing_keys()
                    if len(keys) != 1:
                        raise self._refuse(f"it names no key id (kid) and the JWKS has {len(keys)}")
                    return keys[0]
                return self._client.get_signing_key(kid)
            except PyJWKClientConnectionError as exc:
                raise PluginCallError(
                    self.name, "authenticate", f"cannot fetch the JWKS ({self.source}): {exc}"
                ) from None
            except PyJWKClientError:
                raise self._refuse("its key id (kid) is not in the JWKS") from None
            except (PyJWKSetError, PyJWKError) as exc:
                raise PluginCallError(
                    self.name, "authenticate", f"the JWKS ({self.source}) is not usable: {exc}"
                ) from None
        assert self._keys is not None
        usable = [k for k in self._keys.keys if k.public_key_use in ("sig", None)]
        if kid is None:
            if len(usable) != 1:
                raise self._refuse(f"it names no key id (kid) and the JWKS has {len(usable)}")
            return usable[0]
        for key in usable:
            if key.key_id == kid:
                return key
        raise self._refuse("its key id (kid) is not in the JWKS")

    def verify(self, token: str) -> dict[str, Any]:
        """The verified claims of ``token``; :class:`AuthenticationError` saying why not."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise self._refuse(f"longer than {MAX_TOKEN_LENGTH} characters")
        try:
            header = jwt.get_unverified_header(token)
        except (DecodeError, ValueError, TypeError):
            raise self._refuse("malformed (its header is not base64url JSON)") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            shown = alg if isinstance(alg, str) and len(alg) <= 20 else "?"
            raise self._refuse(
                f"algorithm {shown!r} is not accepted (accepted: {', '.join(self.algorithms)})"
            )
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise self._refuse("malformed (kid is not a string)")
        key = self._key_for(kid)
        if key.algorithm_name != alg:
            raise self._refuse(f"algorithm {alg} does not match its key's ({key.algorithm_name})")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={
                    "verify_signature": True,
                    "verify_exp": True,
                    "verify_nbf": True,
                    "verify_iat": True,
                    "verify_aud": True,
                    "verify_iss": True,
                    "require": list(self.required),
                },
            )
        except ExpiredSignatureError:
            raise self._refuse("expired (exp is in the past)") from None
        except ImmatureSignatureError as exc:
            which = "iat" if "iat" in str(exc) else "nbf"
            raise self._refuse(f"not yet valid ({which} is in the future)") from None
        except InvalidAudienceError:
            raise self._refuse(f"wrong audience (aud does not contain {self.audience!r})") from None
        except InvalidIssuerError:
            raise self._refuse(f"wrong issuer (iss is not {self.issuer!r})") from None
        except MissingRequiredClaimError as exc:
            raise self._refuse(f"the required claim {exc.claim!r} is missing") from None
        except InvalidSignatureError:
            raise self._refuse("bad signature") from None
        except (InvalidAlgorithmError, InvalidKeyError):
            raise self._refuse(f"algorithm {alg} cannot be used with its key") from None
        except DecodeError:
            raise self._refuse("malformed (cannot be decoded)") from None
        except InvalidTokenError as exc:
            raise self._refuse(f"invalid ({type(exc).__name__})") from None
        return claims

    def roles_of(self, claims: Mapping[str, Any]) -> tuple[str, ...]:
        """The roles ``claims`` give: the ``roles_claim`` values, through ``role_mapping``."""
        value = claim_at(claims, self.roles_claim)
        if isinstance(value, str):
            values = value.split()
        elif isinstance(value, list):
            values = [v for v in value if isinstance(v, str)]
        else:
            values = []
        if not self.mapping:
            return tuple(dict.fromkeys(values))
        roles: list[str] = []
        for item in values:
            roles.extend(self.mapping.get(item, ()))
        return tuple(dict.fromkeys(roles))

    @hookimpl
    def authenticate(self, credentials: Mapping[str, Any]) -> Identity | None:
        """The identity of a verified bearer token; ``None`` without one."""
        token = find_token(credentials)
        if token is None:
            return None
        claims = self.verify(token)
        subject = claim_at(claims, self.subject_claim)
        if not isinstance(subject, str) or not subject:
            raise self._refuse(f"the subject claim {self.subject_claim!r} is missing or empty")
        return Identity(subject=subject, roles=self.roles_of(claims), claims=claims)

    # -- authorize ---------------------------------------------------------------------

    @hookimpl
    def authorize(self, identity: Identity, resource: str, action: str) -> bool | None:
        """Deny if a deny rule matches, else allow if an allow rule matches, else abstain."""
        return decide(self.rules, identity.roles, resource, action)
