"""Throwaway PKI for one emulator session (a test session or a demo run): a CA, a loopback
server certificate, app certificates.

Everything is generated with ``cryptography`` into a temporary folder; nothing touches the system
trust store. The CA and server certificate come from :mod:`accessaudit.loopback_ca` (one PKI
module for every loopback TLS endpoint); the server certificate carries ``IP:127.0.0.1`` and
``DNS:localhost`` so clients can verify strictly against the CA file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from accessaudit.loopback_ca import Pki, name
from accessaudit.loopback_ca import make_pki as servers_pki

#: The emulator's CA and server certificate: the same throwaway PKI as the directory servers'.
TestPKI = Pki


@dataclass(frozen=True)
class AppCertificate:
    """An application's certificate credential (what an admin uploads to the app registration)."""

    pem_file: Path  # private key + certificate, as the connector's certificate_file
    key_pem: bytes
    cert_pem: bytes
    thumbprint_sha1: str  # upper-case hex, as the Entra portal shows it
    thumbprint_sha256: str

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)


def make_pki(directory: Path) -> Pki:
    """Create a CA and a server certificate for 127.0.0.1 / localhost in ``directory``."""
    return servers_pki(directory, ips=("127.0.0.1",), dns=("localhost",))


def make_app_certificate(directory: Path, label: str = "app") -> AppCertificate:
    """A self-signed RSA certificate for an app registration (msal signs assertions with RSA)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name(f"accessaudit {label}"))
        .issuer_name(name(f"accessaudit {label}"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    der = cert.public_bytes(serialization.Encoding.DER)
    pem_file = directory / f"{label}.pem"
    pem_file.write_bytes(key_pem + cert_pem)
    pem_file.chmod(0o600)
    return AppCertificate(
        pem_file=pem_file,
        key_pem=key_pem,
        cert_pem=cert_pem,
        thumbprint_sha1=hashlib.sha1(der).hexdigest().upper(),  # noqa: S324 - x5t is SHA-1 by spec
        thumbprint_sha256=hashlib.sha256(der).hexdigest().upper(),
    )
