"""Signatures of plugin artifacts in cosign's key-pair format (weaviate_ext.registry.signing).

No registry here: payloads, signatures and keys only. The format is checked against
independent implementations: the payload byte for byte against sigstore's own test
vector, signatures both ways with ``openssl`` (from Debian), and the encrypted key
format by reading a key that cosign itself wrote (from cosign's test data).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from weaviate_ext.errors import RegistryError, SignatureError
from weaviate_ext.registry.signing import (
    SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING_MEDIA_TYPE,
    SigningKey,
    VerifyKey,
    generate_key_pair,
    load_public_key,
    load_signing_key,
    sign_payload,
    signature_tag,
    simple_signing_payload,
    verify_signature,
)

DIGEST = "sha256:" + "1f" * 32
OTHER_DIGEST = "sha256:" + "2e" * 32
REPO = "127.0.0.1:5000/plugins/echo"
PASSWORD = b"correct horse"

# sigstore/sigstore pkg/signature/payload/payload_test.go, "no claims": what cosign
# signs for example.com/test/image@sha256:d34db33f... (Apache-2.0).
SIGSTORE_DIGEST = "sha256:d34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33f"
SIGSTORE_PAYLOAD = (
    b'{"critical":{"identity":{"docker-reference":"example.com/test/image"},'
    b'"image":{"docker-manifest-digest":"sha256:d34db33fd34db33fd34db33fd34db33fd34db33fd34db'
    b'33fd34db33fd34db33f"},"type":"cosign container image signature"},"optional":null}'
)

# sigstore/cosign pkg/cosign/keys_test.go, "pemsigstorekey": a P-256 key written by cosign
# (go-securesystemslib's scrypt + nacl/secretbox), password "hello" (Apache-2.0).
COSIGN_WRITTEN_KEY = """-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjozMjc2OCwiciI6
OCwicCI6MX0sInNhbHQiOiI3T3VGd2VsbWZZNXVId2NoaURSc210anNwZ2ZlZjFG
Mk5lOGFDTjVLYVpZPSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiJQNHk4OGhCb3ZTa09MbXN0bFVBaGJwdDJ0K2xTNUxQSCJ9LCJj
aXBoZXJ0ZXh0IjoiMnB1QzdyZldJOWh3bnJlQ2s4aUZDRlVwQlRrSzRJNlIvbFBF
cnBDekpXUGpJWXl4eGVIL1A2VW52cFJHdVhla1NNb3JMdGhLamdoQ1JlNy82NDVH
QWtoVm1LRC92eEF0S2EvbE1abENSQ3FlekJGUFd1dzNpeFRtZ2xhb2J1ZFVSbUVs
bmNGOGlZbzBTMVl6Y1ZOMVFwY2J2c0dNcUlYRzVlbmdteGp5dCtBcXlyZTF0Q0Y0
V01tU1BlaEljNlBqd2h1Q2xHaVpJUWRvTGc9PSJ9
-----END ENCRYPTED SIGSTORE PRIVATE KEY-----
"""

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One cosign-format key pair for the module (scrypt makes each one cost ~0.1 s)."""
    return generate_key_pair(tmp_path_factory.mktemp("keys"), PASSWORD)


@pytest.fixture(scope="module")
def signing_key(key_pair: tuple[Path, Path]) -> SigningKey:
    return load_signing_key(key_pair[0], PASSWORD)


@pytest.fixture(scope="module")
def verify_key(key_pair: tuple[Path, Path]) -> VerifyKey:
    return load_public_key(key_pair[1])


@pytest.fixture(scope="module")
def foreign_key(tmp_path_factory: pytest.TempPathFactory) -> VerifyKey:
    folder = tmp_path_factory.mktemp("foreign")
    return load_public_key(generate_key_pair(folder, b"other")[1])


def _verify(payload: bytes, signature: str, keys: list[VerifyKey]) -> VerifyKey:
    return verify_signature(
        payload, signature, manifest_digest=DIGEST, docker_reference=REPO, keys=keys
    )


def _write_pem(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def test_constants_are_cosigns() -> None:
    assert SIGNATURE_ANNOTATION == "dev.cosignproject.cosign/signature"
    assert SIMPLE_SIGNING_MEDIA_TYPE == "application/vnd.dev.cosign.simplesigning.v1+json"


def test_payload_is_byte_for_byte_what_cosign_signs() -> None:
    assert simple_signing_payload(SIGSTORE_DIGEST, "example.com/test/image") == SIGSTORE_PAYLOAD


def test_payload_names_the_artifact() -> None:
    document = json.loads(simple_signing_payload(DIGEST, REPO))
    assert document["critical"]["identity"] == {"docker-reference": REPO}
    assert document["critical"]["image"] == {"docker-manifest-digest": DIGEST}


def test_signature_tag_is_cosigns_scheme() -> None:
    assert signature_tag(DIGEST) == "sha256-" + "1f" * 32 + ".sig"


@pytest.mark.parametrize(
    "digest", ["sha256:abc", "1f" * 32, "sha256:" + "1F" * 32, "md5:" + "a" * 32]
)
def test_malformed_digests_are_refused(digest: str) -> None:
    with pytest.raises(RegistryError, match="not a manifest digest"):
        signature_tag(digest)
    with pytest.raises(RegistryError, match="not a manifest digest"):
        simple_signing_payload(digest, REPO)


@pytest.mark.parametrize("reference", ["echo", f"{REPO}:1.0", f"{REPO}@{DIGEST}", "host/UPPER"])
def test_payload_needs_a_bare_repository(reference: str) -> None:
    with pytest.raises(RegistryError, match="not a repository"):
        simple_signing_payload(DIGEST, reference)


def test_sign_and_verify_round_trip(signing_key: SigningKey, verify_key: VerifyKey) -> None:
    payload = simple_signing_payload(DIGEST, REPO)
    signature = sign_payload(payload, signing_key)
    assert _verify(payload, signature, [verify_key]) == verify_key
    assert signing_key.key_id == verify_key.key_id
    assert re.fullmatch(r"[0-9a-f]{16}", verify_key.key_id)


def test_the_key_that_verified_is_returned(
    signing_key: SigningKey, verify_key: VerifyKey, foreign_key: VerifyKey
) -> None:
    payload = simple_signing_payload(DIGEST, REPO)
    signature = sign_payload(payload, signing_key)
    assert _verify(payload, signature, [foreign_key, verify_key]).key_id == verify_key.key_id


@needs_openssl
def test_openssl_verifies_our_signature(
    tmp_path: Path, signing_key: SigningKey, key_pair: tuple[Path, Path]
) -> None:
    payload = simple_signing_payload(DIGEST, REPO)
    (tmp_path / "payload").write_bytes(payload)
    (tmp_path / "sig.der").write_bytes(base64.b64decode(sign_payload(payload, signing_key)))
    command = ["openssl", "dgst", "-sha256", "-verify", str(key_pair[1]), "-signature"]
    command += [str(tmp_path / "sig.der"), str(tmp_path / "payload")]
    good = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    assert good.returncode == 0, good.stderr
    assert "Verified OK" in good.stdout
    (tmp_path / "payload").write_bytes(simple_signing_payload(OTHER_DIGEST, REPO))
    bad = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    assert bad.returncode != 0


def _openssl(*args: str) -> bytes:
    done = subprocess.run(["openssl", *args], capture_output=True, check=True, timeout=60)
    return done.stdout


@needs_openssl
def test_we_verify_openssls_signature_with_openssls_key(tmp_path: Path) -> None:
    key, pub, data = (str(tmp_path / name) for name in ("key.pem", "key.pub", "payload"))
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
    _openssl("pkey", "-in", key, "-pubout", "-out", pub)
    payload = simple_signing_payload(DIGEST, REPO)
    Path(data).write_bytes(payload)
    signature = base64.b64encode(_openssl("dgst", "-sha256", "-sign", key, data)).decode()
    verified = _verify(payload, signature, [load_public_key(pub)])
    # and the plain PKCS#8 key openssl wrote signs here too
    ours = load_signing_key(key)
    assert ours.key_id == verified.key_id
    assert _verify(payload, sign_payload(payload, ours), [verified]) == verified


def test_a_key_written_by_cosign_signs_here(tmp_path: Path) -> None:
    path = tmp_path / "cosign.key"
    path.write_text(COSIGN_WRITTEN_KEY)
    key = load_signing_key(path, b"hello")
    payload = simple_signing_payload(DIGEST, REPO)
    assert _verify(payload, sign_payload(payload, key), [key.verify_key]).key_id == key.key_id
    with pytest.raises(SignatureError, match="wrong password"):
        load_signing_key(path, b"hell")


def test_older_cosign_pem_label_is_read(tmp_path: Path, key_pair: tuple[Path, Path]) -> None:
    text = key_pair[0].read_text().replace("SIGSTORE", "COSIGN")
    (tmp_path / "old.key").write_text(text)
    assert (
        load_signing_key(tmp_path / "old.key", PASSWORD).key_id
        == load_public_key(key_pair[1]).key_id
    )


def test_written_key_is_cosigns_encrypted_format(key_pair: tuple[Path, Path]) -> None:
    text = key_pair[0].read_text()
    assert text.startswith("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    body = "".join(text.strip().splitlines()[1:-1])
    document = json.loads(base64.b64decode(body))
    assert document["kdf"]["name"] == "scrypt"
    assert document["kdf"]["params"] == {"N": 65536, "r": 8, "p": 1}
    assert len(base64.b64decode(document["kdf"]["salt"])) == 32
    assert document["cipher"]["name"] == "nacl/secretbox"
    assert len(base64.b64decode(document["cipher"]["nonce"])) == 24
    assert key_pair[1].read_text().startswith("-----BEGIN PUBLIC KEY-----\n")


def test_tampered_payload_is_refused(signing_key: SigningKey, verify_key: VerifyKey) -> None:
    payload = simple_signing_payload(DIGEST, REPO)
    signature = sign_payload(payload, signing_key)
    with pytest.raises(SignatureError, match="not made by a trusted key") as caught:
        _verify(payload.replace(b"echo", b"ech0"), signature, [verify_key])
    assert f"{REPO}@{DIGEST}" in str(caught.value)
    assert verify_key.key_id in str(caught.value)


def test_signature_of_another_digest_is_refused(
    signing_key: SigningKey, verify_key: VerifyKey
) -> None:
    payload = simple_signing_payload(OTHER_DIGEST, REPO)
    with pytest.raises(SignatureError, match="another manifest digest") as caught:
        _verify(payload, sign_payload(payload, signing_key), [verify_key])
    assert f"{REPO}@{DIGEST}" in str(caught.value)


def test_signature_of_another_repository_is_refused(
    signing_key: SigningKey, verify_key: VerifyKey
) -> None:
    payload = simple_signing_payload(DIGEST, "127.0.0.1:5000/plugins/evil")
    with pytest.raises(SignatureError, match=r"another repository \(127.0.0.1:5000/plugins/evil\)"):
        _verify(payload, sign_payload(payload, signing_key), [verify_key])


def test_signature_by_a_foreign_key_is_refused(
    signing_key: SigningKey, foreign_key: VerifyKey
) -> None:
    payload = simple_signing_payload(DIGEST, REPO)
    with pytest.raises(SignatureError, match=f"trusted: {foreign_key.key_id}"):
        _verify(payload, sign_payload(payload, signing_key), [foreign_key])


def test_signed_reference_with_a_tag_is_the_same_repository(
    signing_key: SigningKey, verify_key: VerifyKey
) -> None:
    # containers/image (podman, skopeo) signs HOST/REPO:TAG; the digest is what is bound
    for signed in (f"{REPO}:1.0", f"{REPO}@{DIGEST}"):
        payload = simple_signing_payload(DIGEST, REPO).replace(REPO.encode(), signed.encode())
        assert _verify(payload, sign_payload(payload, signing_key), [verify_key]) == verify_key
    for other in (f"{REPO}-x:1.0", "127.0.0.1:5001/plugins/echo", "127.0.0.1:5000/plugins"):
        payload = simple_signing_payload(DIGEST, REPO).replace(REPO.encode(), other.encode())
        with pytest.raises(SignatureError, match="another repository"):
            _verify(payload, sign_payload(payload, signing_key), [verify_key])


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b'{"critical": 1}', "not a cosign simple-signing payload"),
        (b"not json", "not a cosign simple-signing payload"),
        (
            SIGSTORE_PAYLOAD.replace(b"cosign container image", b"atomic container"),
            "of type 'atomic container signature'",
        ),
    ],
)
def test_signed_payload_that_is_not_cosigns_is_refused(
    signing_key: SigningKey, verify_key: VerifyKey, payload: bytes, message: str
) -> None:
    with pytest.raises(SignatureError, match=message):
        _verify(payload, sign_payload(payload, signing_key), [verify_key])


def test_malformed_signature_and_no_keys(verify_key: VerifyKey) -> None:
    payload = simple_signing_payload(DIGEST, REPO)
    with pytest.raises(SignatureError, match="not made by a trusted key"):
        _verify(payload, "%%% not base64", [verify_key])
    with pytest.raises(SignatureError, match="no trusted key"):
        _verify(payload, "AAAA", [])


def test_wrong_and_missing_password(
    key_pair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COSIGN_PASSWORD", raising=False)
    with pytest.raises(SignatureError, match="wrong password") as caught:
        load_signing_key(key_pair[0], b"incorrect horse")
    assert str(key_pair[0]) in str(caught.value)
    with pytest.raises(SignatureError, match="COSIGN_PASSWORD"):
        load_signing_key(key_pair[0])


def test_password_from_cosign_password(
    key_pair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("COSIGN_PASSWORD", PASSWORD.decode())
    assert load_signing_key(key_pair[0]).key_id == load_public_key(key_pair[1]).key_id
    made = generate_key_pair(tmp_path)
    monkeypatch.delenv("COSIGN_PASSWORD")
    assert load_signing_key(made[0], PASSWORD).key_id == load_public_key(made[1]).key_id


def test_key_files_permissions_and_no_overwrite(tmp_path: Path) -> None:
    private, public = generate_key_pair(tmp_path, b"")
    assert (private.name, public.name) == ("cosign.key", "cosign.pub")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert not stat.S_IMODE(public.stat().st_mode) & 0o022
    before = private.read_bytes(), public.read_bytes()
    with pytest.raises(SignatureError, match="already exists; refusing to overwrite"):
        generate_key_pair(tmp_path, b"")
    assert (private.read_bytes(), public.read_bytes()) == before
    private.unlink()
    with pytest.raises(SignatureError, match="cosign.pub already exists"):
        generate_key_pair(tmp_path, b"")
    assert not private.exists()


def test_empty_password_key_loads_without_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COSIGN_PASSWORD", raising=False)
    private, public = generate_key_pair(tmp_path)
    assert load_signing_key(private).key_id == load_public_key(public).key_id


def test_password_protected_pkcs8_key(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "enc.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    assert load_signing_key(path, b"secret").verify_key.public_key.public_numbers() == (
        key.public_key().public_numbers()
    )
    with pytest.raises(SignatureError, match="wrong password"):
        load_signing_key(path, b"guess")
    with pytest.raises(SignatureError, match="encrypted; give its password"):
        load_signing_key(path, b"")


def test_damaged_encrypted_keys(tmp_path: Path, key_pair: tuple[Path, Path]) -> None:
    lines = key_pair[0].read_text().strip().splitlines()
    document = json.loads(base64.b64decode("".join(lines[1:-1])))

    def write(doc: object) -> Path:
        body = base64.b64encode(json.dumps(doc).encode()).decode()
        path = tmp_path / "damaged.key"
        path.write_text(f"{lines[0]}\n{body}\n{lines[-1]}\n")
        return path

    huge = json.loads(json.dumps(document))
    huge["kdf"]["params"] = {"N": 2**30, "r": 8, "p": 1}
    with pytest.raises(SignatureError, match="unsupported scrypt parameters N=1073741824"):
        load_signing_key(write(huge), PASSWORD)
    other = json.loads(json.dumps(document))
    other["cipher"]["name"] = "aes-gcm"
    with pytest.raises(SignatureError, match="cipher 'aes-gcm'"):
        load_signing_key(write(other), PASSWORD)
    with pytest.raises(SignatureError, match="damaged or not in cosign's format"):
        load_signing_key(write({"kdf": 1}), PASSWORD)
    flipped = json.loads(json.dumps(document))
    sealed = bytearray(base64.b64decode(flipped["ciphertext"]))
    sealed[-1] ^= 1
    flipped["ciphertext"] = base64.b64encode(bytes(sealed)).decode()
    with pytest.raises(SignatureError, match="wrong password"):
        load_signing_key(write(flipped), PASSWORD)


def test_unsupported_keys_are_refused_clearly(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(SignatureError, match="a RSA key; only ECDSA P-256"):
        load_signing_key(_write_pem(tmp_path / "rsa.pem", rsa_key))
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(SignatureError, match="secp384r1 key; only ECDSA P-256"):
        load_signing_key(_write_pem(tmp_path / "p384.pem", p384))
    (tmp_path / "rsa.pub").write_bytes(
        rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with pytest.raises(SignatureError, match="a RSA key"):
        load_public_key(tmp_path / "rsa.pub")


def test_unreadable_and_wrong_key_files(tmp_path: Path, key_pair: tuple[Path, Path]) -> None:
    with pytest.raises(SignatureError, match="cannot read key file .*missing.key"):
        load_signing_key(tmp_path / "missing.key")
    with pytest.raises(SignatureError, match="cannot read key file"):
        load_public_key(tmp_path / "missing.pub")
    (tmp_path / "junk").write_text("hello")
    with pytest.raises(SignatureError, match="not a PEM private key"):
        load_signing_key(tmp_path / "junk")
    with pytest.raises(SignatureError, match="not a PEM public key"):
        load_public_key(tmp_path / "junk")
    with pytest.raises(SignatureError, match="a PEM 'PUBLIC KEY', not a private key"):
        load_signing_key(key_pair[1])
