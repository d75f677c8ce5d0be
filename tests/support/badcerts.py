"""Server certificates a client must refuse, all for 127.0.0.1, beside one it must accept.

One CA (which the client trusts) issues ``good``, ``expired`` (valid until yesterday) and
``wrong-host`` (names only 127.0.0.99 and dc9.example.org); ``self-signed`` is issued by
itself. Each kind is a :class:`accessaudit.loopback_ca.Pki` (CA file, certificate, key)
usable by slapd and by the Graph emulator.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from accessaudit.loopback_ca import Pki, make_ca, make_leaf, name, sans, write_key

KINDS = ("good", "expired", "wrong-host", "self-signed")


def make(folder: Path) -> dict[str, Pki]:
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca, ca_key = make_ca(
        "accessaudit hardening CA", now - dt.timedelta(days=30), now + dt.timedelta(days=30)
    )
    ca_file = folder / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    loopback = sans(("127.0.0.1",), ("localhost",))
    other = sans(("127.0.0.99",), ("dc9.example.org",))
    out = {}
    for kind in KINDS:
        key = ec.generate_private_key(ec.SECP256R1())
        start, end = now - dt.timedelta(hours=1), now + dt.timedelta(days=2)
        issuer, issuer_key, alt_names = ca.subject, ca_key, loopback
        if kind == "expired":
            start, end = now - dt.timedelta(days=20), now - dt.timedelta(days=1)
        elif kind == "wrong-host":
            alt_names = other
        elif kind == "self-signed":
            issuer, issuer_key = name("127.0.0.1"), key
        cert = make_leaf("127.0.0.1", key, issuer, issuer_key, alt_names, start, end)
        cert_file, key_file = folder / f"{kind}.pem", folder / f"{kind}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        write_key(key_file, key)
        out[kind] = Pki(ca_file=ca_file, cert_file=cert_file, key_file=key_file)
    return out
