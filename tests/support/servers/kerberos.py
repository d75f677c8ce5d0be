"""Kerberos against a test domain controller's own KDC: krb5.conf, tickets and keytabs.

Nothing global is touched: the client configuration, ticket caches and keytabs live in a test
folder and are selected with ``KRB5_CONFIG``, ``KRB5CCNAME`` and ``KRB5_CLIENT_KTNAME``.
The domain controller is reached by IP address, so its machine account gets the service
principal ``ldap/<address>`` (what a client asks a ticket for when it connects by that name;
in production the DC's DNS name, which AD registers itself).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import ldap3

from support.servers.load_ad import admin_connection
from support.servers.samba import BASE_DN, REALM, SambaDC


def write_krb5_conf(dc: SambaDC, folder: Path) -> Path:
    """A krb5.conf naming ``dc`` as the realm's only KDC (no DNS lookups, no canonicalisation)."""
    path = folder / "krb5.conf"
    path.write_text(
        f"""[libdefaults]
    default_realm = {REALM}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    rdns = false
    dns_canonicalize_hostname = false
    udp_preference_limit = 0
[realms]
    {REALM} = {{
        kdc = {dc.address}
    }}
[domain_realm]
    {dc.address} = {REALM}
"""
    )
    return path


def add_ldap_spn(dc: SambaDC) -> str:
    """Register ``ldap/<address>`` on the DC's machine account; returns the principal."""
    spn = f"ldap/{dc.address}"
    conn = admin_connection(dc)
    dn = f"CN=DC1,OU=Domain Controllers,{BASE_DN}"
    conn.modify(dn, {"servicePrincipalName": [(ldap3.MODIFY_ADD, [spn])]})
    conn.unbind()
    return spn


def get_ticket(user: str, password: str, ccache: Path) -> None:
    """A TGT for ``user`` (obtained from the KDC in ``KRB5_CONFIG``) stored in ``ccache``."""
    import gssapi
    import gssapi.raw

    name = gssapi.Name(f"{user}@{REALM}", gssapi.NameType.user)
    got = gssapi.raw.acquire_cred_with_password(name, password.encode(), usage="initiate")
    gssapi.raw.store_cred_into(
        {"ccache": f"FILE:{ccache}"}, got.creds, usage="initiate", overwrite=True
    )


def export_keytab(dc: SambaDC, user: str, keytab: Path) -> None:
    """The user's keys from the DC's database into ``keytab`` (samba-tool, run locally)."""
    done = subprocess.run(
        ["samba-tool", "domain", "exportkeytab", str(keytab), f"--principal={user}@{REALM}",
         "-s", str(dc.conf)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if done.returncode != 0 or not keytab.exists():
        raise RuntimeError(f"exportkeytab failed: {done.stderr.strip()[-400:]}")
