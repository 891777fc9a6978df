"""Shared by the gRPC tests: paths, manifests of the fault plugin, process checks."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "plugins"
FAULTY = Path(__file__).resolve().parent / "grpc_plugins" / "faulty.py"


def sdk_pythonpath() -> str:
    """PYTHONPATH that makes ``weaviate_plugin_sdk`` importable by plugin processes
    before the distribution ships it (it is passed on to ``python`` commands)."""
    current = os.environ.get("PYTHONPATH", "")
    return os.pathsep.join(p for p in (str(ROOT), current) if p)


def faulty_manifest(
    directory: Path,
    name: str = "faulty",
    mode: str = "normal",
    extra: str = "",
) -> Path:
    """A plugin.yaml running ``tests/grpc_plugins/faulty.py --mode <mode>``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "plugin.yaml"
    path.write_text(
        f"""apiVersion: weaviate.io/v1
kind: Plugin
metadata:
  name: {name}
  version: 1.0.0
spec:
  type: vectorizer
  runtime: grpc
  command: ["python", "{FAULTY}", "--mode", "{mode}"]
  timeout: 20s
  capabilities:
    dimensions: 8
{extra}"""
    )
    return path


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    """Wait until ``pid`` is gone; whether it went within ``timeout``."""
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return not alive(pid)


PYTHON = sys.executable


# -- certificates for the TLS tests ------------------------------------------------------


class Authority:
    """A throwaway certificate authority (``cryptography``) issuing PEM certificates."""

    def __init__(self, name: str = "weaviate-ext test CA") -> None:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self._x509, self._hashes, self._ec, self._oid = x509, hashes, ec, NameOID
        self._now = datetime.datetime.now(datetime.UTC)
        self._day = datetime.timedelta(days=1)
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._now - self._day)
            .not_valid_after(self._now + self._day)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )

    @property
    def pem(self) -> bytes:
        """The CA certificate, PEM."""
        from cryptography.hazmat.primitives import serialization

        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, name: str, *, server: bool) -> tuple[bytes, bytes]:
        """(certificate PEM, private key PEM) for ``name``: a server certificate whose
        only subject alternative name is the DNS name ``name``, or a client certificate."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.x509.oid import ExtendedKeyUsageOID

        x509 = self._x509
        key = self._ec.generate_private_key(self._ec.SECP256R1())
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(self._oid.COMMON_NAME, name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._now - self._day)
            .not_valid_after(self._now + self._day)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False
            )
        cert = builder.sign(self.key, self._hashes.SHA256())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return cert.public_bytes(serialization.Encoding.PEM), key_pem


# -- remote mode ---------------------------------------------------------------------------


def fake_dns(monkeypatch: Any, table: dict[str, list[str]]) -> None:
    """Make ``socket.getaddrinfo`` (which remote mode resolves ``dns:`` names with)
    answer the names of ``table`` with its IPv4 addresses, read at each call so a test
    can change them; other names resolve as usual."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in table:
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, int(port))) for ip in table[host]
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def eventually(predicate: Callable[[], object], timeout: float = 20.0) -> bool:
    """Poll ``predicate`` until it is true; whether it became true within ``timeout``."""
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())
