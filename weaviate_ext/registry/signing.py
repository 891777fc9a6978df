"""Signatures of plugin artifacts in cosign's key-pair format, so standard tools verify them.

An artifact ``HOST[:PORT]/REPO@sha256:<hex>`` is signed the way ``cosign sign --key``
signs an image:

- the *payload* is cosign's simple-signing JSON (:func:`simple_signing_payload`), which
  names the repository and the manifest digest;
- the *signature* is ECDSA P-256 over the SHA-256 of the payload bytes, ASN.1 DER,
  base64 (:func:`sign_payload`);
- both are stored in the registry as a manifest at the tag
  ``sha256-<hex>.sig`` (:func:`signature_tag`) whose layer is the payload
  (:data:`SIMPLE_SIGNING_MEDIA_TYPE`) with the signature in the layer annotation
  :data:`SIGNATURE_ANNOTATION`.

So ``cosign verify --key cosign.pub HOST/REPO@sha256:...`` verifies what
``weaviate-ext sign`` wrote, and :func:`verify_signature` verifies what ``cosign sign``
wrote. Keys are cosign's too: ``cosign.pub`` is a PEM ``PUBLIC KEY``; ``cosign.key`` is
a PEM ``ENCRYPTED SIGSTORE PRIVATE KEY`` (a PKCS#8 key sealed with NaCl secretbox under
a scrypt-derived key, the format of go-securesystemslib's ``encrypted`` package), so a
key made by ``cosign generate-key-pair`` signs here and one made by
:func:`generate_key_pair` signs with cosign. A plain PEM PKCS#8 or SEC1 EC private key
(optionally password-protected) is accepted as well. Passwords come from the argument or
the ``COSIGN_PASSWORD`` environment variable, cosign's own.

Everything here is a pure function of its arguments and files: no network I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import nacl.exceptions
import nacl.secret
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from weaviate_ext.errors import RegistryError, SignatureError

SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
"""Media type of the signature manifest's layer: the simple-signing payload."""

SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
"""Annotation of the payload layer that holds the base64 signature."""

SIGNATURE_TYPE = "cosign container image signature"
"""The payload's ``critical.type``."""

PASSWORD_ENV = "COSIGN_PASSWORD"
"""The environment variable a key's password is read from when none is given."""

PRIVATE_KEY_FILE = "cosign.key"
"""The file name :func:`generate_key_pair` writes the private key to."""

PUBLIC_KEY_FILE = "cosign.pub"
"""The file name :func:`generate_key_pair` writes the public key to."""

SIGSTORE_PRIVATE_KEY_PEM = "ENCRYPTED SIGSTORE PRIVATE KEY"
"""PEM type of an encrypted private key as cosign writes it today."""

COSIGN_PRIVATE_KEY_PEM = "ENCRYPTED COSIGN PRIVATE KEY"
"""PEM type of an encrypted private key as older cosign releases wrote it."""

_ENCRYPTED_PEM_TYPES = (SIGSTORE_PRIVATE_KEY_PEM, COSIGN_PRIVATE_KEY_PEM)
_PLAIN_PEM_TYPES = ("PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "EC PRIVATE KEY")

# go-securesystemslib's encrypted package: scrypt parameters it accepts (legacy,
# standard, OWASP; cosign writes "standard"), a 32-byte salt, a 32-byte secretbox key.
_SCRYPT_ACCEPTED = ((32768, 8, 1), (65536, 8, 1), (131072, 8, 1))
_SCRYPT_WRITTEN = (65536, 8, 1)
_SALT_BYTES = 32
_BOX_KEY_BYTES = 32

_DIGEST = re.compile(r"(sha256):([0-9a-f]{64})|(sha512):([0-9a-f]{128})")
_REPOSITORY = re.compile(
    r"([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])(:[0-9]+)?(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)+",
    flags=re.ASCII,
)
_PEM_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]+)-----\s*([A-Za-z0-9+/=\s]*?)\s*-----END \1-----", flags=re.ASCII
)
_MAX_KEY_FILE = 64 * 1024


@attrs.frozen
class VerifyKey:
    """A public key that verifies signatures: an ECDSA P-256 key, where it came from and
    its ``key_id`` (the first 16 hex digits of the SHA-256 of its DER
    SubjectPublicKeyInfo), the short name messages and policies show."""

    public_key: ec.EllipticCurvePublicKey = attrs.field(eq=False, repr=False)
    key_id: str
    source: str = attrs.field(eq=False)

    @classmethod
    def from_public_key(cls, public_key: ec.EllipticCurvePublicKey, source: str) -> VerifyKey:
        """Wrap a P-256 public key; ``source`` says where it came from (a path)."""
        _require_p256(public_key.curve, source)
        der = public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(public_key, hashlib.sha256(der).hexdigest()[:16], source)

    @classmethod
    def from_pem(cls, data: bytes, source: str) -> VerifyKey:
        """A key from PEM ``PUBLIC KEY`` bytes (cosign's ``cosign.pub``)."""
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, UnsupportedAlgorithm):
            raise SignatureError(f"{source}: not a PEM public key") from None
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise SignatureError(
                f"{source}: a {_kind(key)} key; only ECDSA P-256 keys (cosign's default) "
                "are supported"
            )
        return cls.from_public_key(key, source)

    def pem(self) -> bytes:
        """The key as PEM ``PUBLIC KEY`` bytes, as cosign writes ``cosign.pub``."""
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def verifies(self, payload: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (DER) is this key's ECDSA-SHA256 signature of ``payload``."""
        try:
            self.public_key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True


@attrs.frozen(eq=False)
class SigningKey:
    """A private key that signs: an ECDSA P-256 key and the file it was read from."""

    private_key: ec.EllipticCurvePrivateKey = attrs.field(eq=False, repr=False)
    source: str

    @property
    def verify_key(self) -> VerifyKey:
        """The matching public key."""
        return VerifyKey.from_public_key(self.private_key.public_key(), self.source)

    @property
    def key_id(self) -> str:
        """The key id of the matching public key (see :class:`VerifyKey`)."""
        return self.verify_key.key_id


def signature_tag(manifest_digest: str) -> str:
    """The tag cosign stores an artifact's signatures at: ``sha256-<hex>.sig``."""
    algorithm, hexdigest = _split_digest(manifest_digest)
    return f"{algorithm}-{hexdigest}.sig"


def simple_signing_payload(manifest_digest: str, docker_reference: str) -> bytes:
    """The payload cosign signs for ``docker_reference@manifest_digest``: compact JSON
    ``{"critical":{"identity":{"docker-reference":...},"image":{"docker-manifest-digest":
    ...},"type":"cosign container image signature"},"optional":null}``, byte for byte
    what cosign writes for a signature without annotations.

    ``docker_reference`` is the repository without tag or digest, ``HOST[:PORT]/REPO``.
    """
    _split_digest(manifest_digest)
    _check_repository(docker_reference)
    document = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": manifest_digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": None,
    }
    return json.dumps(document, separators=(",", ":")).encode("ascii")


def sign_payload(payload: bytes, key: SigningKey) -> str:
    """Sign ``payload`` with ``key``: the base64 of the DER ECDSA-SHA256 signature, the
    value of the :data:`SIGNATURE_ANNOTATION` annotation."""
    signature = key.private_key.sign(payload, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode("ascii")


def verify_signature(
    payload: bytes,
    signature_b64: str,
    *,
    manifest_digest: str,
    docker_reference: str,
    keys: Sequence[VerifyKey],
) -> VerifyKey:
    """Check one signature of ``docker_reference@manifest_digest``; return the key that
    made it.

    The signature must verify with one of ``keys``, and the payload it signs must be a
    cosign simple-signing payload naming exactly this digest and this repository: a
    valid signature of another artifact, copied next to this one, is refused. Raises
    :class:`SignatureError` naming the artifact otherwise.
    """
    artifact = f"{docker_reference}@{manifest_digest}"
    if not keys:
        raise SignatureError(f"{artifact}: no trusted key to verify its signature with")
    signer = signer_of(payload, signature_b64, keys)
    if signer is None:
        trusted = ", ".join(key.key_id for key in keys)
        raise SignatureError(
            f"{artifact}: the signature was not made by a trusted key (trusted: {trusted})"
        )
    check_payload(payload, manifest_digest=manifest_digest, docker_reference=docker_reference)
    return signer


def signer_of(payload: bytes, signature_b64: str, keys: Sequence[VerifyKey]) -> VerifyKey | None:
    """The first of ``keys`` whose signature of ``payload`` ``signature_b64`` is, or
    ``None`` (also for a signature that is not base64). Only the signature is checked,
    not what the payload says: :func:`verify_signature` checks both."""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return None
    return next((key for key in keys if key.verifies(payload, signature)), None)


def check_payload(payload: bytes, *, manifest_digest: str, docker_reference: str) -> None:
    """Refuse, with a :class:`SignatureError` naming the artifact, a payload that is not
    cosign's simple-signing payload for exactly ``docker_reference@manifest_digest``.

    The signed ``docker-reference`` is the repository (as cosign writes it) or, as
    containers/image (podman, skopeo) writes it, the repository with a tag: the digest,
    not the tag, is what the signature binds.
    """
    artifact = f"{docker_reference}@{manifest_digest}"
    try:
        document = json.loads(payload)
        critical = document["critical"]
        kind = critical["type"]
        signed_digest = critical["image"]["docker-manifest-digest"]
        signed_reference = critical["identity"]["docker-reference"]
    except (ValueError, TypeError, KeyError):
        raise SignatureError(
            f"{artifact}: the signed payload is not a cosign simple-signing payload"
        ) from None
    if kind != SIGNATURE_TYPE:
        raise SignatureError(f"{artifact}: the signed payload is of type {kind!r}, not cosign's")
    if signed_digest != manifest_digest:
        raise SignatureError(
            f"{artifact}: the signature is for another manifest digest ({signed_digest})"
        )
    if not isinstance(signed_reference, str) or _repository_of(signed_reference) != (
        docker_reference
    ):
        raise SignatureError(
            f"{artifact}: the signature is for another repository ({signed_reference})"
        )


def load_public_key(path: str | os.PathLike[str]) -> VerifyKey:
    """Read a PEM ``PUBLIC KEY`` file (``cosign.pub``) as a :class:`VerifyKey`."""
    return VerifyKey.from_pem(_read_key_file(path), os.fspath(path))


def load_signing_key(path: str | os.PathLike[str], password: bytes | None = None) -> SigningKey:
    """Read a private key file as a :class:`SigningKey`.

    Accepts cosign's ``ENCRYPTED SIGSTORE PRIVATE KEY`` (and the older ``ENCRYPTED
    COSIGN PRIVATE KEY``), and PEM ``PRIVATE KEY`` / ``ENCRYPTED PRIVATE KEY`` (PKCS#8)
    and ``EC PRIVATE KEY`` (SEC1). ``password`` defaults to ``$COSIGN_PASSWORD``, then to
    empty. A wrong password, or a key that is not ECDSA P-256, is a
    :class:`SignatureError` naming the file.
    """
    source = os.fspath(path)
    data = _read_key_file(path)
    if password is None:
        password = _password_from_env()
    match = _PEM_BLOCK.search(data)
    if match is None:
        raise SignatureError(f"{source}: not a PEM private key")
    pem_type = match.group(1).decode("ascii")
    if pem_type in _ENCRYPTED_PEM_TYPES:
        body = _b64decode(match.group(2), source)
        der = _decrypt(body, password, source)
        key: Any = _load_der_private_key(der, source)
    elif pem_type in _PLAIN_PEM_TYPES:
        key = _load_pem_private_key(match.group(0), password, source)
    else:
        raise SignatureError(f"{source}: a PEM {pem_type!r}, not a private key")
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SignatureError(
            f"{source}: a {_kind(key)} key; only ECDSA P-256 keys (cosign's default) are supported"
        )
    _require_p256(key.curve, source)
    return SigningKey(key, source)


def generate_key_pair(
    directory: str | os.PathLike[str], password: bytes | None = None
) -> tuple[Path, Path]:
    """Make a new ECDSA P-256 key pair as ``cosign generate-key-pair`` does; return
    ``(cosign.key, cosign.pub)`` inside ``directory``.

    The private key is written in cosign's encrypted format under ``password``
    (default ``$COSIGN_PASSWORD``, then empty), with mode 0600. Refuses, with a
    :class:`SignatureError`, to overwrite either file.
    """
    folder = Path(directory)
    private_path = folder / PRIVATE_KEY_FILE
    public_path = folder / PUBLIC_KEY_FILE
    for existing in (private_path, public_path):
        if existing.exists():
            raise SignatureError(f"{existing} already exists; refusing to overwrite it")
    if password is None:
        password = _password_from_env()
    private_key = ec.generate_private_key(ec.SECP256R1())
    der = private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    private_pem = _pem(SIGSTORE_PRIVATE_KEY_PEM, _encrypt(der, password))
    public_pem = VerifyKey.from_public_key(private_key.public_key(), str(public_path)).pem()
    try:
        _write_new(private_path, private_pem, 0o600)
        try:
            _write_new(public_path, public_pem, 0o644)
        except BaseException:
            private_path.unlink()
            raise
    except FileExistsError as exc:
        raise SignatureError(f"{exc.filename} already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise SignatureError(f"cannot write a key pair into {folder}: {exc.strerror}") from None
    return private_path, public_path


def check_digest(manifest_digest: str) -> None:
    """Raise :class:`RegistryError` unless ``manifest_digest`` is a manifest digest:
    ``sha256:<64 hex digits>`` (or ``sha512:<128 hex digits>``)."""
    _split_digest(manifest_digest)


def _split_digest(manifest_digest: str) -> tuple[str, str]:
    match = _DIGEST.fullmatch(manifest_digest)
    if match is None:
        raise RegistryError(
            f"not a manifest digest: {manifest_digest!r} (expected sha256:<64 hex digits>)"
        )
    if match.group(1):
        return match.group(1), match.group(2)
    return match.group(3), match.group(4)


def _check_repository(reference: str) -> None:
    if _REPOSITORY.fullmatch(reference) is None:
        raise RegistryError(
            f"not a repository: {reference!r} (expected HOST[:PORT]/REPO, without tag or digest)"
        )


def _repository_of(reference: str) -> str:
    """``HOST[:PORT]/REPO`` of ``HOST[:PORT]/REPO[:TAG][@DIGEST]``."""
    name = reference.partition("@")[0]
    colon = name.rfind(":")
    return name[:colon] if colon > name.rfind("/") else name


def _require_p256(curve: ec.EllipticCurve, source: str) -> None:
    if not isinstance(curve, ec.SECP256R1):
        raise SignatureError(
            f"{source}: an ECDSA {curve.name} key; only ECDSA P-256 keys (cosign's default) "
            "are supported"
        )


def _kind(key: object) -> str:
    name = type(key).__name__
    for prefix in ("RSA", "Ed25519", "Ed448", "DSA", "DH", "X25519", "X448"):
        if name.startswith(prefix):
            return prefix
    return name


def _read_key_file(path: str | os.PathLike[str]) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(_MAX_KEY_FILE + 1)
    except OSError as exc:
        raise SignatureError(f"cannot read key file {os.fspath(path)}: {exc.strerror}") from None
    if len(data) > _MAX_KEY_FILE:
        raise SignatureError(f"{os.fspath(path)}: too large for a key file")
    return data


def _password_from_env() -> bytes:
    return os.environ.get(PASSWORD_ENV, "").encode("utf-8")


def _b64decode(text: bytes, source: str) -> bytes:
    try:
        return base64.b64decode(re.sub(rb"\s+", b"", text), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError(f"{source}: the key file is damaged (bad base64)") from None


def _load_der_private_key(der: bytes, source: str) -> object:
    try:
        return serialization.load_der_private_key(der, None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise SignatureError(f"{source}: the decrypted key is not a PKCS#8 private key") from None


def _load_pem_private_key(pem: bytes, password: bytes, source: str) -> object:
    try:
        return serialization.load_pem_private_key(pem, None)
    except TypeError:
        pass  # encrypted: needs the password
    except (ValueError, UnsupportedAlgorithm):
        raise SignatureError(f"{source}: not a readable private key") from None
    if not password:
        raise SignatureError(
            f"{source}: the key is encrypted; give its password (or set {PASSWORD_ENV})"
        )
    try:
        return serialization.load_pem_private_key(pem, password)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise SignatureError(f"{source}: wrong password for the key") from None


def _derive(password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=_BOX_KEY_BYTES, n=n, r=r, p=p).derive(password)


def _encrypt(plaintext: bytes, password: bytes) -> bytes:
    """go-securesystemslib's ``encrypted.Encrypt``: the JSON cosign's key PEM holds."""
    n, r, p = _SCRYPT_WRITTEN
    salt = secrets.token_bytes(_SALT_BYTES)
    nonce = secrets.token_bytes(nacl.secret.SecretBox.NONCE_SIZE)
    box = nacl.secret.SecretBox(_derive(password, salt, n, r, p))
    sealed = box.encrypt(plaintext, nonce).ciphertext
    document = {
        "kdf": {
            "name": "scrypt",
            "params": {"N": n, "r": r, "p": p},
            "salt": base64.b64encode(salt).decode("ascii"),
        },
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode("ascii")},
        "ciphertext": base64.b64encode(sealed).decode("ascii"),
    }
    return json.dumps(document, separators=(",", ":")).encode("ascii")


def _decrypt(body: bytes, password: bytes, source: str) -> bytes:
    """go-securesystemslib's ``encrypted.Decrypt``, with its checks."""
    damaged = f"{source}: the encrypted key is damaged or not in cosign's format"
    try:
        document = json.loads(body)
        kdf: Mapping[str, Any] = document["kdf"]
        cipher: Mapping[str, Any] = document["cipher"]
        params = kdf["params"]
        n, r, p = int(params["N"]), int(params["r"]), int(params["p"])
        salt = base64.b64decode(kdf["salt"], validate=True)
        nonce = base64.b64decode(cipher["nonce"], validate=True)
        sealed = base64.b64decode(document["ciphertext"], validate=True)
        kdf_name, cipher_name = kdf["name"], cipher["name"]
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise SignatureError(damaged) from None
    if kdf_name != "scrypt" or cipher_name != "nacl/secretbox":
        raise SignatureError(f"{damaged} (kdf {kdf_name!r}, cipher {cipher_name!r})")
    if (n, r, p) not in _SCRYPT_ACCEPTED:
        raise SignatureError(f"{damaged} (unsupported scrypt parameters N={n} r={r} p={p})")
    if len(nonce) != nacl.secret.SecretBox.NONCE_SIZE:
        raise SignatureError(f"{damaged} (nonce of {len(nonce)} bytes)")
    box = nacl.secret.SecretBox(_derive(password, salt, n, r, p))
    try:
        return box.decrypt(sealed, nonce)
    except nacl.exceptions.CryptoError:
        hint = "" if password else f" (none was given: pass it or set {PASSWORD_ENV})"
        raise SignatureError(f"{source}: wrong password for the key{hint}") from None


def _pem(pem_type: str, body: bytes) -> bytes:
    text = base64.b64encode(body).decode("ascii")
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return (
        f"-----BEGIN {pem_type}-----\n" + "\n".join(lines) + f"\n-----END {pem_type}-----\n"
    ).encode("ascii")


def _write_new(path: Path, data: bytes, mode: int) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as handle:
        os.fchmod(handle.fileno(), mode)
        handle.write(data)
