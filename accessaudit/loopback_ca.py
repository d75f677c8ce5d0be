"""The throwaway loopback PKI for the Graph emulator and the test servers: a certificate
authority and server certificates for TLS on 127.0.0.1.

One module for every loopback TLS endpoint: the Graph emulator
(:mod:`accessaudit.graphemu.pki`, also used by ``accessaudit demo --source sample-entra``), the
test suite's slapd and Samba, and the certificates a client must refuse
(``tests/hardening/badcerts.py``) are all built from :func:`make_ca`, :func:`make_leaf` and
:func:`write_key`. Nothing here is meant for production certificates.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Pki:
    """Files of one CA and one server certificate signed by it."""

    __test__: ClassVar[bool] = False  # imported as TestPKI by test modules: not a test class

    ca_file: Path
    cert_file: Path
    key_file: Path


def name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(
    ca_name: str, not_before: dt.datetime, not_after: dt.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed P-256 CA certificate (path length 0) and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name(ca_name))
        .issuer_name(name(ca_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def sans(ips: tuple[str, ...], dns: tuple[str, ...]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    return out + [x509.DNSName(d) for d in dns]


def make_leaf(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    alt_names: list[x509.GeneralName],
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    """A TLS server certificate for ``alt_names`` (only they pass hostname verification)."""
    return (
        x509.CertificateBuilder()
        .subject_name(name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
        .sign(issuer_key, hashes.SHA256())
    )


def write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """The private key as PEM, created with mode 0600 before any byte is written."""
    path.touch(mode=0o600)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )


def make_pki(
    folder: Path,
    *,
    ips: tuple[str, ...] = ("127.0.0.1",),
    dns: tuple[str, ...] = (),
    ca_name: str = "accessaudit test CA",
) -> Pki:
    """Write ``ca.pem``, ``server.pem`` and ``server.key`` (mode 0600) into ``folder``.

    The server certificate names only ``ips`` and ``dns`` in its subjectAltName, so connecting
    by any other name (e.g. ``localhost``) fails hostname verification.
    """
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    start, end = now - dt.timedelta(hours=1), now + dt.timedelta(days=2)
    ca_cert, ca_key = make_ca(ca_name, start, end)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = make_leaf(
        dns[0] if dns else ips[0], key, ca_cert.subject, ca_key, sans(ips, dns), start, end
    )
    pem = serialization.Encoding.PEM
    ca_file = folder / "ca.pem"
    cert_file = folder / "server.pem"
    key_file = folder / "server.key"
    ca_file.write_bytes(ca_cert.public_bytes(pem))
    cert_file.write_bytes(cert.public_bytes(pem))
    write_key(key_file, key)
    return Pki(ca_file=ca_file, cert_file=cert_file, key_file=key_file)
