"""Account state from Active Directory: locked, the password flags, pwdLastSet, accountExpires.

Every bit is decoded from hand-made values first (:func:`account_state`), then each flag is set
on an account of a real Samba domain controller the way an administrator (or an attacker
guessing passwords) sets it, and read back through :func:`collect`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import ldap3
import polars as pl
import pytest
from support.servers import load_ad
from support.servers.dataset import NOW
from support.servers.samba import BASE_DN
from support.servers.seeded import SeededDC

from accessaudit.connectors.ldap.ad import account_state
from accessaudit.connectors.ldap.collect import collect
from accessaudit.connectors.ldap.decode import FILETIME_NEVER
from accessaudit.errors import AuthError

pytestmark = pytest.mark.servers

FT_2025 = 133_801_632_000_000_000  # 2025-01-01T00:00:00Z as FILETIME
T_2025 = datetime(2025, 1, 1, tzinfo=UTC)


def decode(
    rows: list[tuple[int | None, int | None, int | None, int | None]],
) -> list[dict[str, Any]]:
    df = pl.DataFrame(rows, schema=["uac", "computed", "lockout", "expires"], orient="row").cast(
        pl.Int64
    )
    exprs = account_state(pl.col("uac"), pl.col("computed"), pl.col("lockout"), pl.col("expires"))
    return df.select(**exprs).to_dicts()


def test_every_bit_decoded() -> None:
    got = decode(
        [
            (0x200, 0, None, 0),  # a plain enabled user: nothing set
            (0x200 | 0x20, 0, None, None),  # PASSWD_NOTREQD
            (0x200 | 0x10000, 0, None, FILETIME_NEVER),  # DONT_EXPIRE_PASSWORD
            (0x200 | 0x10, 0, None, None),  # UF_LOCKOUT in userAccountControl: AD never sets it
            (0x200, 0x10, 5, None),  # computed LOCKOUT
            (0x200, 0x800000, None, None),  # computed PASSWORD_EXPIRED
            (0x200, 0x800010, 5, FT_2025),  # both computed bits, an expiry date
            (0x200, 0, FT_2025, None),  # lockoutTime set but the lockout has timed out
            (0x200, None, FT_2025, None),  # no computed attribute: lockoutTime decides
            (0x200, None, 0, None),  # no computed attribute, lockoutTime 0: not locked
            (None, None, None, None),  # nothing returned: nothing known
        ]
    )
    keys = ["locked", "password_not_required", "password_never_expires", "password_expired"]
    flags = [tuple(r[k] for k in keys) for r in got]
    assert flags == [
        (False, False, False, False),
        (False, True, False, False),
        (False, False, True, False),
        (False, False, False, False),
        (True, False, False, False),
        (False, False, False, True),
        (True, False, False, True),
        (False, False, False, False),
        (True, False, False, None),
        (False, False, False, None),
        (None, None, None, None),
    ]
    expires = [r["account_expires"] for r in got]
    assert expires[6] == T_2025
    assert expires[0] is None and expires[2] is None  # the "never" sentinels 0 and 0x7FFF...
    assert all(e is None for i, e in enumerate(expires) if i != 6)


def _accounts(seeded: SeededDC, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    got = collect(seeded.source(monkeypatch), now=NOW)
    assert got.complete, [u for u in got.units if not u.complete]
    return {r["username"]: r for r in got.table("accounts").iter_rows(named=True)}


def test_flags_set_by_the_loader(samba: SeededDC, monkeypatch: pytest.MonkeyPatch) -> None:
    acc = _accounts(samba, monkeypatch)
    alice, bob, erin, hank = acc["alice"], acc["bob"], acc["adm-erin"], acc["hank"]
    assert alice["password_never_expires"] is True and bob["password_never_expires"] is False
    assert bob["password_not_required"] is False and alice["password_not_required"] is True
    assert acc["PC0001$"]["password_not_required"] is False
    # pwdLastSet 0 (must change at next logon) is an expired password; never-expiring is not
    assert erin["pwd_last_set"] is None and erin["password_expired"] is True
    assert alice["password_expired"] is False and bob["password_expired"] is False
    # pwdLastSet written with ldbmodify, read back to the microsecond
    assert bob["pwd_last_set"] == NOW - timedelta(days=30)
    assert alice["pwd_last_set"] == NOW - timedelta(days=20, microseconds=7)
    # accountExpires: a date is kept (and disables once passed); "never" is null
    assert bob["account_expires"] == NOW + timedelta(days=365) and bob["enabled"] is True
    assert hank["account_expires"] == NOW - timedelta(days=2) and hank["enabled"] is False
    assert alice["account_expires"] is None
    assert not any(r["locked"] for r in acc.values())


def _bind(dc: SeededDC, user: str, password: str) -> ldap3.Connection:
    import ssl

    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(dc.dc.pki.ca_file))
    server = ldap3.Server(dc.dc.address, port=636, use_ssl=True, tls=tls, get_info=ldap3.NONE)
    return ldap3.Connection(server, user, password)


def test_locked_by_failed_binds(fresh_samba: SeededDC, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three wrong passwords lock an account (lockoutThreshold 3); unlocking clears it; a
    lockout whose duration has passed is not a lockout although lockoutTime stays set."""
    admin = load_ad.admin_connection(fresh_samba.dc)
    admin.modify(BASE_DN, {"lockoutThreshold": [(ldap3.MODIFY_REPLACE, ["3"])]})
    victim = load_ad.add_bind_user(fresh_samba.dc, "victim")
    for _ in range(3):
        assert not _bind(fresh_samba, victim, "wrong").bind()
    # the bind account of a collection locked out the same way: one line with AD's reason
    with pytest.raises(AuthError, match=r"account locked out \(AD data 775\)"):
        collect(fresh_samba.source(monkeypatch, bind_dn=victim))
    acc = _accounts(fresh_samba, monkeypatch)
    assert acc["victim"]["locked"] is True
    assert [n for n, r in acc.items() if r["locked"]] == ["victim"]

    dn = f"CN=victim,CN=Users,{BASE_DN}"
    admin.modify(dn, {"lockoutTime": [(ldap3.MODIFY_REPLACE, ["0"])]})  # an administrator unlocks
    assert _accounts(fresh_samba, monkeypatch)["victim"]["locked"] is False

    # locked two hours ago, lockoutDuration 30 minutes: over, though lockoutTime is still set
    two_hours_ago = load_ad.filetime(datetime.now(UTC) - timedelta(hours=2))
    fresh_samba.dc.ldbmodify(
        f"dn: {dn}\nchangetype: modify\nreplace: lockoutTime\nlockoutTime: {two_hours_ago}\n-\n", 1
    )
    admin.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["lockoutTime"])
    assert int(admin.response[0]["raw_attributes"]["lockoutTime"][0]) > 0
    assert _accounts(fresh_samba, monkeypatch)["victim"]["locked"] is False
    admin.unbind()


def test_flags_changed_by_an_administrator(
    fresh_samba: SeededDC, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Set over LDAP, read back: DONT_EXPIRE_PASSWORD, PASSWD_NOTREQD, accountExpires, and a
    password that expires by age once the domain has a maximum password age again."""
    admin = load_ad.admin_connection(fresh_samba.dc)
    carol = f"CN=Carol Gone,OU=Users,OU=Force A,{BASE_DN}"
    bob = f"CN=Bob Baker,OU=Users,OU=Force A,{BASE_DN}"
    admin.modify(
        carol, {"userAccountControl": [(ldap3.MODIFY_REPLACE, [str(0x200 | 0x2 | 0x10000)])]}
    )
    admin.modify(bob, {"userAccountControl": [(ldap3.MODIFY_REPLACE, [str(0x200 | 0x20)])]})
    admin.modify(bob, {"accountExpires": [(ldap3.MODIFY_REPLACE, ["0"])]})  # the other "never"
    # 42 days (Samba's default), and pwdLastSet 100 days / 1 day before the real clock
    admin.modify(BASE_DN, {"maxPwdAge": [(ldap3.MODIFY_REPLACE, [str(-42 * 86400 * 10**7)])]})
    now = datetime.now(UTC)
    ldif = "".join(
        f"dn: CN={cn},OU=Users,OU=Force {force},{BASE_DN}\nchangetype: modify\n"
        f"replace: pwdLastSet\npwdLastSet: {load_ad.filetime(now - timedelta(days=days))}\n-\n\n"
        for cn, force, days in (("Dave Moved", "B", 100), ("Frank Primary", "B", 1))
    )
    fresh_samba.dc.ldbmodify(ldif, 2, controls=(load_ad.BYPASS_LAST_SET,))
    admin.unbind()
    acc = _accounts(fresh_samba, monkeypatch)
    assert acc["carol"]["password_never_expires"] is True
    assert acc["carol"]["enabled"] is False  # ACCOUNTDISABLE kept
    assert acc["bob"]["password_not_required"] is True
    assert acc["bob"]["account_expires"] is None and acc["bob"]["enabled"] is True
    assert acc["dave"]["password_expired"] is True and acc["frank"]["password_expired"] is False
    # DONT_EXPIRE_PASSWORD wins over age; a computer's password never counts as expired
    assert acc["alice"]["password_expired"] is False and acc["PC0001$"]["password_expired"] is False


def test_managed_service_accounts_are_services(
    fresh_samba: SeededDC, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gMSA and standalone MSA objects are computer-class with WORKSTATION_TRUST in their
    userAccountControl; they are service accounts, not computers."""
    admin = load_ad.admin_connection(fresh_samba.dc)
    container = f"CN=Managed Service Accounts,{BASE_DN}"
    assert admin.add(
        f"CN=gmsa-sql,{container}",
        ["msDS-GroupManagedServiceAccount"],
        {
            "sAMAccountName": "gmsa-sql$",
            "dNSHostName": "gmsa-sql.alliance.local",
            "msDS-ManagedPasswordInterval": "30",
        },
    )
    assert admin.add(
        f"CN=msa-web,{container}", ["msDS-ManagedServiceAccount"], {"sAMAccountName": "msa-web$"}
    )
    admin.search(f"CN=gmsa-sql,{container}", "(objectClass=*)", ldap3.BASE, attributes=["*"])
    uac = int(admin.response[0]["raw_attributes"]["userAccountControl"][0])
    assert uac & 0x1000  # WORKSTATION_TRUST_ACCOUNT, as a computer's
    admin.unbind()
    acc = _accounts(fresh_samba, monkeypatch)
    assert acc["gmsa-sql$"]["kind"] == "service"
    assert acc["msa-web$"]["kind"] == "service"
    assert acc["PC0001$"]["kind"] == "computer"
