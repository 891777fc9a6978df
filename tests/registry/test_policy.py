"""The host's registry policy (weaviate_ext.registry.policy): trusted keys per repository,
unsigned artifacts, pins, and the errors a host sees when an artifact does not pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from weaviate_ext.errors import ArtifactIntegrityError, ConfigError, SignatureError
from weaviate_ext.registry.policy import RegistryPolicy
from weaviate_ext.registry.signing import (
    SigningKey,
    VerifyKey,
    generate_key_pair,
    load_public_key,
    load_signing_key,
    sign_payload,
    simple_signing_payload,
)

HOST = "127.0.0.1:5000"
REPO = f"{HOST}/plugins/echo"
DIGEST = "sha256:" + "ab" * 32
OTHER_DIGEST = "sha256:" + "cd" * 32


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``keys/team`` and ``keys/other`` key pairs, as a host's config folder holds them."""
    base = tmp_path_factory.mktemp("host")
    for name in ("team", "other"):
        folder = base / "keys" / name
        folder.mkdir(parents=True)
        generate_key_pair(folder, b"")
    return base


@pytest.fixture(scope="module")
def team(keys_dir: Path) -> SigningKey:
    return load_signing_key(keys_dir / "keys/team/cosign.key", b"")


@pytest.fixture(scope="module")
def other(keys_dir: Path) -> SigningKey:
    return load_signing_key(keys_dir / "keys/other/cosign.key", b"")


def _signed(key: SigningKey, digest: str = DIGEST, repo: str = REPO) -> tuple[bytes, str]:
    payload = simple_signing_payload(digest, repo)
    return payload, sign_payload(payload, key)


def _policy(
    keys_dir: Path, *rules: dict[str, Any], pins: dict[str, Any] | None = None
) -> RegistryPolicy:
    data: dict[str, Any] = {"repositories": list(rules)}
    if pins is not None:
        data["pins"] = pins
    return RegistryPolicy.from_data(data, keys_dir)


TEAM_RULE = {"match": f"{HOST}/plugins/*", "keys": ["keys/team/cosign.pub"]}


def test_default_policy_refuses_unsigned() -> None:
    assert RegistryPolicy.from_data(None, Path(".")) is RegistryPolicy.DEFAULT
    with pytest.raises(SignatureError) as caught:
        RegistryPolicy.DEFAULT.check(f"{REPO}:1.0", DIGEST, [])
    message = str(caught.value)
    assert f"unsigned artifact {REPO}@{DIGEST} refused by the host's registry policy" in message
    assert "`weaviate-ext sign`" in message
    assert "allow unsigned for this repository" in message


def test_default_policy_trusts_no_key(team: SigningKey) -> None:
    with pytest.raises(SignatureError, match="trusts no key for 127.0.0.1:5000/plugins/echo"):
        RegistryPolicy.DEFAULT.check(f"oci://{REPO}:1.0", DIGEST, [_signed(team)])


def test_trusted_signature_passes(keys_dir: Path, team: SigningKey) -> None:
    policy = _policy(keys_dir, TEAM_RULE)
    verified = policy.check(f"{REPO}:1.0", DIGEST, [_signed(team)])
    assert verified is not None
    assert verified.key_id == team.key_id
    assert verified.source == str(keys_dir / "keys/team/cosign.pub")


def test_one_good_signature_among_others_passes(
    keys_dir: Path, team: SigningKey, other: SigningKey
) -> None:
    policy = _policy(keys_dir, TEAM_RULE)
    signatures = [_signed(other), (b"garbage", "AAAA"), _signed(team)]
    verified = policy.check(f"{REPO}:1.0", DIGEST, signatures)
    assert verified is not None and verified.key_id == team.key_id


def test_foreign_signature_is_refused_naming_the_trusted_keys(
    keys_dir: Path, other: SigningKey, team: SigningKey
) -> None:
    policy = _policy(keys_dir, TEAM_RULE)
    with pytest.raises(SignatureError) as caught:
        policy.check(f"{REPO}:1.0", DIGEST, [_signed(other)])
    message = str(caught.value)
    assert f"{REPO}@{DIGEST}: 1 signature found, none made by a key" in message
    assert team.key_id in message
    assert other.key_id not in message


def test_signature_copied_from_another_artifact_is_refused(
    keys_dir: Path, team: SigningKey
) -> None:
    policy = _policy(keys_dir, TEAM_RULE)
    with pytest.raises(SignatureError, match=f"another manifest digest \\({OTHER_DIGEST}\\)"):
        policy.check(f"{REPO}:1.0", DIGEST, [_signed(team, digest=OTHER_DIGEST)])
    with pytest.raises(SignatureError, match="another repository"):
        policy.check(f"{REPO}:1.0", DIGEST, [_signed(team, repo=f"{HOST}/plugins/evil")])


def test_tampered_payload_is_refused(keys_dir: Path, team: SigningKey) -> None:
    payload, signature = _signed(team)
    policy = _policy(keys_dir, TEAM_RULE)
    with pytest.raises(SignatureError, match="none made by a key"):
        policy.check(f"{REPO}:1.0", DIGEST, [(payload + b" ", signature)])


def test_allow_unsigned(keys_dir: Path, team: SigningKey, other: SigningKey) -> None:
    open_rule = {"match": f"{HOST}/scratch/*", "allowUnsigned": True}
    policy = _policy(keys_dir, open_rule, {**TEAM_RULE, "allowUnsigned": True})
    scratch = f"{HOST}/scratch/x:dev"
    assert policy.check(scratch, DIGEST, []) is None
    # a rule that trusts no key does not look at signatures
    assert policy.check(scratch, DIGEST, [_signed(other, repo=f"{HOST}/scratch/x")]) is None
    # one with keys accepts unsigned, but a signature must then be a trusted one
    assert policy.check(f"{REPO}:1.0", DIGEST, []) is None
    verified = policy.check(f"{REPO}:1.0", DIGEST, [_signed(team)])
    assert verified is not None and verified.key_id == team.key_id
    with pytest.raises(SignatureError, match="none made by a key"):
        policy.check(f"{REPO}:1.0", DIGEST, [_signed(other)])


def test_first_matching_rule_wins(keys_dir: Path) -> None:
    deny = {"match": f"{HOST}/plugins/untrusted*"}
    allow_all = {"match": "*", "allowUnsigned": True}
    policy = _policy(keys_dir, deny, TEAM_RULE, allow_all)
    assert policy.rule_for(f"{HOST}/plugins/untrusted-x").match == deny["match"]
    assert policy.rule_for(f"{REPO}:1.0").match == TEAM_RULE["match"]
    assert policy.rule_for(f"{HOST}/elsewhere/echo").allow_unsigned
    with pytest.raises(SignatureError, match="unsigned artifact"):
        policy.check(f"{HOST}/plugins/untrusted-x:1", DIGEST, [])
    with pytest.raises(SignatureError, match="unsigned artifact"):
        policy.check(f"{REPO}:1", DIGEST, [])
    assert policy.check(f"{HOST}/elsewhere/echo:1", DIGEST, []) is None


def test_unmatched_repository_gets_the_refusing_default(keys_dir: Path) -> None:
    policy = _policy(keys_dir, TEAM_RULE)
    rule = policy.rule_for("127.0.0.1:6000/plugins/echo")
    assert rule.keys == () and not rule.allow_unsigned
    # "*" in a pattern spans "/", as fnmatch's does
    assert policy.rule_for(f"{HOST}/plugins/deep/er").keys != ()


def test_pins(keys_dir: Path, team: SigningKey) -> None:
    policy = _policy(
        keys_dir, TEAM_RULE, pins={f"{REPO}:1.0": DIGEST, f"{HOST}/plugins/latest-only": DIGEST}
    )
    assert policy.pinned_digest(f"{REPO}:1.0") == DIGEST
    assert policy.pinned_digest(f"oci://{REPO}:1.0") == DIGEST
    assert policy.pinned_digest(f"{REPO}:2.0") is None
    assert policy.pinned_digest(f"{HOST}/plugins/latest-only:latest") == DIGEST
    assert policy.check(f"{REPO}:1.0", DIGEST, [_signed(team)]) is not None
    with pytest.raises(ArtifactIntegrityError) as caught:
        policy.check(f"{REPO}:1.0", OTHER_DIGEST, [_signed(team, digest=OTHER_DIGEST)])
    assert f"resolved to {OTHER_DIGEST}, but the host's registry policy pins it to {DIGEST}" in str(
        caught.value
    )


def test_pin_is_checked_before_signatures(keys_dir: Path) -> None:
    policy = _policy(keys_dir, TEAM_RULE, pins={f"{REPO}:1.0": DIGEST})
    with pytest.raises(ArtifactIntegrityError, match="pins it to"):
        policy.check(f"{REPO}:1.0", OTHER_DIGEST, [])


def test_reference_by_digest_must_match(keys_dir: Path, team: SigningKey) -> None:
    policy = _policy(keys_dir, TEAM_RULE)
    assert policy.check(f"{REPO}@{DIGEST}", DIGEST, [_signed(team)]) is not None
    with pytest.raises(ArtifactIntegrityError, match=f"not the {OTHER_DIGEST} asked for"):
        policy.check(f"{REPO}@{OTHER_DIGEST}", DIGEST, [_signed(team)])


def test_policy_with_empty_sections(keys_dir: Path) -> None:
    policy = RegistryPolicy.from_data({}, keys_dir)
    assert policy.rules == () and dict(policy.pins) == {}
    with pytest.raises(SignatureError, match="unsigned artifact"):
        policy.check(f"{REPO}:1.0", DIGEST, [])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (["x"], "_registry.policy: expected a mapping"),
        ({"repos": []}, "_registry.policy: unknown key 'repos'"),
        ({"repositories": {"match": "*"}}, "_registry.policy.repositories: expected a list"),
        ({"repositories": ["*"]}, r"repositories\[0\]: expected a mapping"),
        ({"repositories": [{"keys": []}]}, r"repositories\[0\].match: expected a pattern"),
        (
            {"repositories": [{"match": "*", "allow": True}]},
            r"repositories\[0\]: unknown key 'allow'",
        ),
        (
            {"repositories": [{"match": "*", "allowUnsigned": "yes"}]},
            r"repositories\[0\].allowUnsigned: expected true or false",
        ),
        (
            {"repositories": [{"match": "*", "keys": "keys/team/cosign.pub"}]},
            r"repositories\[0\].keys: expected a list",
        ),
        (
            {"repositories": [TEAM_RULE, {"match": "*", "keys": ["keys/missing.pub"]}]},
            r"repositories\[1\].keys\[0\]: cannot read key file .*keys/missing.pub",
        ),
        (
            {"repositories": [{"match": "*", "keys": ["keys/team/cosign.key"]}]},
            r"repositories\[0\].keys\[0\]: .*cosign.key: not a PEM public key",
        ),
        ({"pins": ["x"]}, "_registry.policy.pins: expected a mapping"),
        (
            {"pins": {f"{REPO}:1.0": "sha256:123"}},
            "pins.127.0.0.1:5000/plugins/echo:1.0: not a manifest digest",
        ),
        ({"pins": {f"{REPO}:1.0": 5}}, "expected a digest, got 5"),
        ({"pins": {f"{REPO}@{DIGEST}": DIGEST}}, "a reference by digest needs no pin"),
        ({"pins": {"echo": DIGEST}}, r"pins.echo: .*expected oci://HOST"),
        (
            {"pins": {REPO: DIGEST, f"{REPO}:latest": OTHER_DIGEST}},
            "127.0.0.1:5000/plugins/echo:latest is pinned twice",
        ),
    ],
)
def test_malformed_policies_are_clear_config_errors(
    keys_dir: Path, data: Any, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        RegistryPolicy.from_data(data, keys_dir)


def test_key_paths_are_relative_to_the_config_folder(keys_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read key file"):
        RegistryPolicy.from_data({"repositories": [TEAM_RULE]}, tmp_path)
    absolute = {"match": "*", "keys": [str(keys_dir / "keys/team/cosign.pub")]}
    policy = RegistryPolicy.from_data({"repositories": [absolute]}, tmp_path)
    key: VerifyKey = policy.rule_for(REPO).keys[0]
    assert key == load_public_key(keys_dir / "keys/team/cosign.pub")
