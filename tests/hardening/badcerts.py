"""Server certificates a client must refuse, all for 127.0.0.1, beside one it must accept.

One CA (which the client trusts) issues ``good``, ``expired`` (valid until yesterday) and
``wrong-host`` (names only 127.0.0.99 and dc9.example.org); ``self-signed`` is issued by
itself. Each kind is a :class:`servers.pki.Pki` (CA file, certificate, key) usable by slapd and
by the Graph emulator.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from servers.pki import Pki

KINDS = ("good", "expired", "wrong-host", "self-signed")


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _leaf(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    sans: list[x509.GeneralName],
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )


def make(folder: Path) -> dict[str, Pki]:
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("accessaudit hardening CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=30))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_file = folder / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(pem))
    loopback: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.DNSName("localhost"),
    ]
    other: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address("127.0.0.99")),
        x509.DNSName("dc9.example.org"),
    ]
    out = {}
    for kind in KINDS:
        key = ec.generate_private_key(ec.SECP256R1())
        start, end = now - dt.timedelta(hours=1), now + dt.timedelta(days=2)
        issuer, issuer_key, sans = ca_name, ca_key, loopback
        if kind == "expired":
            start, end = now - dt.timedelta(days=20), now - dt.timedelta(days=1)
        elif kind == "wrong-host":
            sans = other
        elif kind == "self-signed":
            issuer, issuer_key = _name("127.0.0.1"), key
        cert = _leaf("127.0.0.1", key, issuer, issuer_key, sans, start, end)
        cert_file, key_file = folder / f"{kind}.pem", folder / f"{kind}.key"
        cert_file.write_bytes(cert.public_bytes(pem))
        key_file.touch(mode=0o600)
        key_file.write_bytes(
            key.private_bytes(
                pem, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
            )
        )
        out[kind] = Pki(ca_file=ca_file, cert_file=cert_file, key_file=key_file)
    return out
