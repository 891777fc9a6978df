"""jwt-auth through the framework: valid tokens, every refusal, JWKS file and URL, roles."""

from __future__ import annotations

import base64
import json
import logging
import re
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from conftest import AUDIENCE, ISSUER, JwksServer, Signer, b64, unsigned_token

from weaviate_ext import (
    AuthenticationError,
    AuthHandle,
    Identity,
    PluginCallError,
    PluginLoadError,
    PluginManager,
)
from weaviate_ext.testing import check_plugin

Loader = Callable[..., Any]


@pytest.fixture
def auth(load_plugin: Loader, manifest: Path, base_config: dict[str, Any]) -> AuthHandle:
    """The plugin on the JWKS file, with rules."""
    rules = [
        {"role": "reader", "resource": "collections/*", "action": "read", "allow": True},
        {"role": "admin", "resource": "*", "action": "*", "allow": True},
        {"role": "admin", "resource": "system/*", "action": "delete", "allow": False},
    ]
    handle: AuthHandle = load_plugin(manifest, config={**base_config, "rules": rules})
    return handle


def bearer(token: str) -> dict[str, str]:
    """Credentials carrying ``token`` as an Authorization header."""
    return {"authorization": f"Bearer {token}"}


def test_conformance(auth: AuthHandle, rsa_signer: Signer, impostor: Signer) -> None:
    check_plugin(
        auth,
        valid_credentials=bearer(rsa_signer.token()),
        invalid_credentials=bearer(impostor.token()),
    ).raise_for_failures()


@pytest.mark.parametrize("signer_name", ["rsa_signer", "ec_signer"])
def test_valid_tokens_give_an_identity(
    auth: AuthHandle, signer_name: str, request: pytest.FixtureRequest
) -> None:
    signer: Signer = request.getfixturevalue(signer_name)
    identity = auth.authenticate(bearer(signer.token(roles=["reader", "writer"])))
    assert identity is not None
    assert identity.subject == "alice"
    assert identity.roles == ("reader", "writer")
    assert identity.claims["iss"] == ISSUER
    assert identity.plugin == "jwt-auth"


def test_token_places(auth: AuthHandle, rsa_signer: Signer) -> None:
    token = rsa_signer.token()
    for credentials in (
        {"Authorization": f"Bearer {token}"},
        {"authorization": f"bearer  {token}"},
        {"token": token},
    ):
        identity = auth.authenticate(credentials)
        assert identity is not None and identity.subject == "alice"


@pytest.mark.parametrize(
    "credentials",
    [
        {},
        {"api_key": "reader.abcdefghijklmnop"},
        {"authorization": "Basic dXNlcjpwYXNz"},
        {"authorization": "Bearer opaque-token-not-a-jwt"},
        {"authorization": "Bearer key-id.secret"},  # two segments: an API key, not a JWT
        {"token": 42},
    ],
)
def test_other_credentials_are_not_its_kind(auth: AuthHandle, credentials: Any) -> None:
    assert auth.authenticate(credentials) is None


def _claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def refusals(rsa: Signer, ec_key: Signer, impostor: Signer) -> list[tuple[str, str, str]]:
    """(case, token, expected reason) for every way a token must be refused."""
    now = int(time.time())
    good = rsa.token()
    head, payload, signature = good.split(".")
    claims = _claims_of(good)
    tampered_payload = b64(json.dumps({**claims, "sub": "mallory", "roles": ["admin"]}).encode())
    confusion_header = {"alg": "HS256", "typ": "JWT", "kid": rsa.kid}
    ec_header_on_rsa_kid = rsa.token(headers={"kid": ec_key.kid})  # RS256 signed, EC key
    return [
        ("wrong signature", impostor.token(), "bad signature"),
        ("tampered payload", f"{head}.{tampered_payload}.{signature}", "bad signature"),
        ("tampered signature", f"{head}.{payload}.{signature[:-6]}AAAAAA", "bad signature"),
        ("no signature", f"{head}.{payload}.", "bad signature"),
        ("expired", rsa.token(exp=now - 3600), "expired"),
        ("not yet valid", rsa.token(nbf=now + 3600), r"not yet valid \(nbf"),
        ("issued in the future", rsa.token(iat=now + 3600), r"not yet valid \(iat"),
        ("wrong audience", rsa.token(aud="someone-else"), "wrong audience"),
        ("wrong issuer", rsa.token(iss="https://evil.test"), "wrong issuer"),
        ("no exp", rsa.token(drop=("exp",)), "required claim 'exp' is missing"),
        ("no aud", rsa.token(drop=("aud",)), "required claim 'aud' is missing"),
        ("no iss", rsa.token(drop=("iss",)), "required claim 'iss' is missing"),
        ("no sub", rsa.token(drop=("sub",)), "subject claim 'sub' is missing"),
        ("unknown kid", rsa.token(headers={"kid": "rsa-9"}), r"key id \(kid\) is not in"),
        ("alg none", unsigned_token({"alg": "none", "kid": rsa.kid}, claims), "'none' is not"),
        ("alg None", unsigned_token({"alg": "None"}, claims), "'None' is not accepted"),
        (
            "HS256 with the public key",
            unsigned_token(confusion_header, claims, secret=rsa.public_pem),
            "'HS256' is not accepted",
        ),
        ("key of another algorithm", ec_header_on_rsa_kid, "does not match its key"),
        ("garbage header", "bm90LWpzb24.eyJzdWIiOiJ4In0.c2ln", "malformed"),
        ("bad base64", "!!!.###.$$$".replace("!", "a").replace("#", "b").replace("$", "c"), "malf"),
    ]


def test_every_refusal_has_a_clear_reason_and_hides_the_token(
    auth: AuthHandle,
    rsa_signer: Signer,
    ec_signer: Signer,
    impostor: Signer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    failures = []
    for case, token, reason in refusals(rsa_signer, ec_signer, impostor):
        try:
            identity = auth.authenticate(bearer(token))
        except AuthenticationError as exc:
            text = "".join(traceback.format_exception(exc)) + repr(exc)
            if not re.search(reason, str(exc)):
                failures.append(f"{case}: {exc} (wanted {reason!r})")
            for part in token.split("."):
                if len(part) > 8 and part in text:
                    failures.append(f"{case}: the error shows a token segment")
        else:
            failures.append(f"{case}: accepted as {identity!r}")
    for part in (p for _, t, _ in refusals(rsa_signer, ec_signer, impostor) for p in t.split(".")):
        if len(part) > 40:
            assert part not in caplog.text
    assert failures == []


def test_leeway(load_plugin: Loader, manifest: Path, base_config: dict, rsa_signer: Signer) -> None:
    now = int(time.time())
    late = rsa_signer.token(exp=now - 10)
    early = rsa_signer.token(nbf=now + 10, iat=now + 10)
    lenient = load_plugin(manifest, config={**base_config, "leeway": 30})
    assert lenient.authenticate(bearer(late)) is not None
    assert lenient.authenticate(bearer(early)) is not None


def test_no_leeway(
    load_plugin: Loader, manifest: Path, base_config: dict, rsa_signer: Signer
) -> None:
    now = int(time.time())
    strict = load_plugin(manifest, config={**base_config, "leeway": 0})
    with pytest.raises(AuthenticationError, match="expired"):
        strict.authenticate(bearer(rsa_signer.token(exp=now - 10)))
    with pytest.raises(AuthenticationError, match="not yet valid"):
        strict.authenticate(bearer(rsa_signer.token(nbf=now + 10)))


def test_audience_lists_and_required_claims(
    load_plugin: Loader, manifest: Path, base_config: dict, rsa_signer: Signer
) -> None:
    handle = load_plugin(manifest, config={**base_config, "required_claims": ["exp", "jti"]})
    many = rsa_signer.token(aud=["other", AUDIENCE], jti="1")
    assert handle.authenticate(bearer(many)) is not None
    with pytest.raises(AuthenticationError, match="'jti' is missing"):
        handle.authenticate(bearer(rsa_signer.token()))


def test_only_accepted_algorithms(
    load_plugin: Loader, manifest: Path, base_config: dict, rsa_signer: Signer, ec_signer: Signer
) -> None:
    handle = load_plugin(manifest, config={**base_config, "algorithms": ["ES256"]})
    assert handle.authenticate(bearer(ec_signer.token())) is not None
    with pytest.raises(AuthenticationError, match=r"'RS256' is not accepted \(accepted: ES256\)"):
        handle.authenticate(bearer(rsa_signer.token()))


def test_roles_from_claims(
    load_plugin: Loader, manifest: Path, base_config: dict, rsa_signer: Signer
) -> None:
    nested = load_plugin(manifest, config={**base_config, "roles_claim": "realm_access.roles"})
    token = rsa_signer.token(realm_access={"roles": ["a", "b", 3]})
    identity = nested.authenticate(bearer(token))
    assert identity is not None and identity.roles == ("a", "b")


def test_scope_string_and_mapping(
    load_plugin: Loader, manifest: Path, base_config: dict, rsa_signer: Signer
) -> None:
    config = {
        **base_config,
        "roles_claim": "scope",
        "role_mapping": {"weaviate:read": "reader", "weaviate:admin": ["admin", "reader"]},
        "subject_claim": "email",
    }
    handle = load_plugin(manifest, config=config)
    token = rsa_signer.token(scope="openid weaviate:admin weaviate:read", email="a@b.c")
    identity = handle.authenticate(bearer(token))
    assert identity is not None
    assert identity.subject == "a@b.c"
    assert identity.roles == ("admin", "reader")  # unmapped "openid" gives no role
    no_roles = handle.authenticate(bearer(rsa_signer.token(scope="openid", email="a@b.c")))
    assert no_roles is not None and no_roles.roles == ()


def test_authorize_rules(
    plugin_manager: PluginManager, auth: AuthHandle, rsa_signer: Signer
) -> None:
    reader = plugin_manager.authenticate(bearer(rsa_signer.token(roles=["reader"])))
    admin = plugin_manager.authenticate(bearer(rsa_signer.token(roles=["admin"])))
    assert reader is not None and admin is not None
    assert plugin_manager.authorize(reader, "collections/A", "read") is True
    assert plugin_manager.authorize(reader, "collections/A", "write") is False
    assert plugin_manager.authorize(admin, "system/x", "read") is True
    assert plugin_manager.authorize(admin, "system/x", "delete") is False
    assert auth.authorize(Identity("x", roles=("guest",)), "collections/A", "read") is None


# -- the JWKS URL ------------------------------------------------------------------------


def test_jwks_url_is_fetched_once_and_cached(
    load_plugin: Loader, manifest: Path, jwks_server: JwksServer, rsa_signer: Signer
) -> None:
    config = {"jwks_url": jwks_server.url, "issuer": ISSUER, "audience": AUDIENCE}
    handle = load_plugin(manifest, config=config)
    assert jwks_server.requests == 1  # at load
    for _ in range(5):
        assert handle.authenticate(bearer(rsa_signer.token())) is not None
    assert jwks_server.requests == 1


def test_jwks_url_rotation_and_unknown_kid_cooldown(
    load_plugin: Loader, manifest: Path, jwks_server: JwksServer, rsa_signer: Signer
) -> None:
    config = {
        "jwks_url": jwks_server.url,
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "jwks_refresh_cooldown": 0,
    }
    handle = load_plugin(manifest, config=config)
    rotated = Signer("rsa-2", "RS256")
    jwks_server.jwks = {"keys": [*jwks_server.jwks["keys"], rotated.jwk]}
    assert handle.authenticate(bearer(rotated.token())) is not None  # refetched for rsa-2
    assert jwks_server.requests == 2
    assert handle.authenticate(bearer(rotated.token())) is not None
    assert jwks_server.requests == 2


def test_unknown_kids_do_not_hammer_the_jwks_url(
    load_plugin: Loader, manifest: Path, jwks_server: JwksServer, rsa_signer: Signer
) -> None:
    config = {"jwks_url": jwks_server.url, "issuer": ISSUER, "audience": AUDIENCE}
    handle = load_plugin(manifest, config=config)  # cooldown: 30 s by default
    for i in range(5):
        with pytest.raises(AuthenticationError, match="not in the JWKS"):
            handle.authenticate(bearer(rsa_signer.token(headers={"kid": f"random-{i}"})))
    assert jwks_server.requests == 1


def test_jwks_url_down_at_load_is_a_load_error(
    plugin_manager: PluginManager, manifest: Path, jwks_server: JwksServer
) -> None:
    url = jwks_server.url
    jwks_server.stop()
    with pytest.raises(PluginLoadError, match=r"cannot fetch the JWKS from http://127\.0\.0\.1"):
        plugin_manager.load(
            manifest,
            config={"jwks_url": url, "issuer": ISSUER, "audience": AUDIENCE, "http_timeout": 2},
        )


def test_jwks_url_down_later_is_a_call_error(
    load_plugin: Loader, manifest: Path, jwks_server: JwksServer, rsa_signer: Signer
) -> None:
    config = {
        "jwks_url": jwks_server.url,
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "jwks_cache_seconds": 0.2,
        "http_timeout": 2,
    }
    handle = load_plugin(manifest, config=config)
    jwks_server.stop()
    time.sleep(0.3)  # the cached JWKS expires
    with pytest.raises(PluginCallError, match="cannot fetch the JWKS"):
        handle.authenticate(bearer(rsa_signer.token()))


def test_jwks_url_serving_an_error(
    plugin_manager: PluginManager, manifest: Path, jwks_server: JwksServer
) -> None:
    jwks_server.status = 500
    with pytest.raises(PluginLoadError, match="cannot fetch the JWKS"):
        plugin_manager.load(
            manifest, config={"jwks_url": jwks_server.url, "issuer": ISSUER, "audience": AUDIENCE}
        )


# -- configuration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"algorithms": ["HS256"]}, "HS256 not accepted; only asymmetric"),
        ({"algorithms": ["RS256", "none"]}, "none not accepted"),
        ({"algorithms": []}, "non-empty list"),
        ({"leeway": -1}, "'leeway' must be between"),
        ({"role_mapping": {"x": 3}}, r"role_mapping\.x"),
        ({"rules": [{"role": "r"}]}, r"rules\[0\]\.resource"),
        ({"jwks_file": ""}, "exactly one of"),
        ({"jwks_url": "http://127.0.0.1:1/x"}, "exactly one of"),
        ({"audience": ""}, "must not be empty"),
    ],
)
def test_bad_config_refuses_to_load(
    plugin_manager: PluginManager, manifest: Path, base_config: dict, config: dict, message: str
) -> None:
    with pytest.raises(PluginLoadError, match=message):
        plugin_manager.load(manifest, config={**base_config, **config})
    assert "jwt-auth" not in plugin_manager.names()


def test_issuer_and_audience_are_required(
    plugin_manager: PluginManager, manifest: Path, jwks_file: Path
) -> None:
    with pytest.raises(Exception, match="issuer"):
        plugin_manager.load(manifest, config={"jwks_file": str(jwks_file), "audience": "a"})
    with pytest.raises(Exception, match="audience"):
        plugin_manager.load(manifest, config={"jwks_file": str(jwks_file), "issuer": "i"})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read it"),
        ("{not json", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"keys": []}', "not a usable JWKS"),
        ('{"keys": [{"kty": "nope"}]}', "not a usable JWKS"),
    ],
)
def test_bad_jwks_file(
    plugin_manager: PluginManager, manifest: Path, tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "bad-jwks.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(PluginLoadError, match=message):
        plugin_manager.load(
            manifest, config={"jwks_file": str(path), "issuer": ISSUER, "audience": AUDIENCE}
        )


def test_single_key_without_kid(
    load_plugin: Loader, manifest: Path, tmp_path: Path, rsa_signer: Signer
) -> None:
    jwk = {k: v for k, v in rsa_signer.jwk.items() if k != "kid"}
    path = tmp_path / "one.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    handle = load_plugin(
        manifest, config={"jwks_file": str(path), "issuer": ISSUER, "audience": AUDIENCE}
    )
    token = jwt.encode(
        _claims_of(rsa_signer.token()), rsa_signer.private, algorithm="RS256", headers={}
    )
    assert handle.authenticate(bearer(token)) is not None


def test_installed_plugin_is_found_by_name(jwks_file: Path, rsa_signer: Signer) -> None:
    config = {"jwt-auth": {"jwks_file": str(jwks_file), "issuer": ISSUER, "audience": AUDIENCE}}
    with PluginManager(config=config) as manager:
        assert "jwt-auth" in manager.installed
        manager.get_auth("jwt-auth")  # imports and loads the installed package
        identity = manager.authenticate(bearer(rsa_signer.token()))
        assert identity is not None and identity.plugin == "jwt-auth"
