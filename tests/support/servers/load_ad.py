"""Write a canonical dataset into a Samba AD domain controller; return dataset -> server ids.

Samba assigns its own objectGUIDs and RIDs, so the loader returns an :class:`~.ids.IdMap`.
Well-known groups (Domain Users, Domain Admins, Administrators, ...) are not created: they are
matched by SID (domain SID + RID, or S-1-5-32-RID) and their description/scope aligned with the
dataset. What Samba refuses over LDAP is written locally: sIDHistory, whenCreated and
pwdLastSet with ``ldbmodify`` on sam.ldb (pwdLastSet other than 0/-1 also needs Samba's
"bypass last set" control, 1.3.6.1.4.1.7165.4.3.20). Foreign security principals come from
adding ``<SID=...>`` members, which makes Samba create the FSP object. A non-default primary
group is set the way AD requires: member first, then ``primaryGroupID``, then the old primary
group's now-explicit membership removed.

Account state: accounts get no password (``PASSWD_NOTREQD``) unless the dataset says
``password_not_required = False``; ``password_never_expires`` sets DONT_EXPIRE_PASSWORD and
``account_expires`` accountExpires. The domain's maxPwdAge is set to "never", so whether a
password counts as expired depends on ``pwdLastSet`` = 0 alone, never on the day the tests run.
:func:`expected` gives the account-state columns the server then reports.
"""

from __future__ import annotations

import base64
import contextlib
import re
import ssl
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import ldap3
import polars as pl
from ldap3.protocol.formatters.formatters import format_sid
from ldap3.protocol.microsoft import extended_dn_control

from support.servers.ids import IdMap
from support.servers.samba import ADMIN_PASSWORD, BASE_DN, SambaDC

_SAM_BAD = re.compile(r'["/\\\[\]:;|=,+*?<>@]')
_GROUP_TYPE = {"builtin": 0x1 | 0x4, "global": 0x2, "domain-local": 0x4, "universal": 0x8}
_EXT = re.compile(r"^<GUID=([0-9a-fA-F-]+)>;(?:<SID=([^>]*)>;)?(.*)$", re.S)
BIND_PASSWORD = "Aud1tor!Passw0rd-Test"
#: Samba's DSDB_CONTROL_PASSWORD_BYPASS_LAST_SET_OID as an ldb command-line control: lets
#: ldbmodify write any pwdLastSet (Samba's password_hash module otherwise takes only 0 or -1).
BYPASS_LAST_SET = "local_oid:1.3.6.1.4.1.7165.4.3.20:0"


def admin_connection(dc: SambaDC) -> ldap3.Connection:
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(dc.pki.ca_file))
    server = ldap3.Server(dc.address, port=636, use_ssl=True, tls=tls, get_info=ldap3.NONE)
    return ldap3.Connection(
        server,
        f"Administrator@{BASE_DN.replace('DC=', '').replace(',', '.')}",
        ADMIN_PASSWORD,
        auto_bind=True,
        auto_range=False,
        return_empty_attributes=False,
        raise_exceptions=True,
        receive_timeout=120,
    )


def split_dn(dn: str) -> tuple[str, str]:
    """(first RDN, parent DN), honouring backslash escapes."""
    i = 0
    while i < len(dn):
        if dn[i] == "\\":
            i += 2
            continue
        if dn[i] == ",":
            return dn[:i], dn[i + 1 :]
        i += 1
    return dn, ""


def rdn_value(dn: str) -> str:
    rdn = split_dn(dn)[0]
    value = rdn.partition("=")[2]
    return re.sub(
        r"\\([0-9A-Fa-f]{2}|.)",
        lambda m: m.group(1) if len(m.group(1)) == 1 else chr(int(m.group(1), 16)),
        value,
    )


def sam_name(name: str, computer: bool = False) -> str:
    base = _SAM_BAD.sub("_", name.rstrip("$") if computer else name)[:60]
    return base + "$" if computer else base


def filetime(ts: datetime) -> str:
    return str((ts - datetime(1601, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 10)


def _ensure_parents(conn: ldap3.Connection, dns: list[str]) -> None:
    parents: set[str] = set()
    for dn in dns:
        parent = split_dn(dn)[1]
        while parent and parent.lower() != BASE_DN.lower():
            parents.add(parent)
            parent = split_dn(parent)[1]
    for parent in sorted(parents, key=lambda p: p.count(",")):
        kind = "organizationalUnit" if parent.upper().startswith("OU=") else "container"
        with contextlib.suppress(ldap3.core.exceptions.LDAPEntryAlreadyExistsResult):
            conn.add(parent, kind)


def _lookup(conn: ldap3.Connection, base: str, filt: str) -> dict[str, tuple[str, str, str]]:
    """sAMAccountName (lower) -> (guid, sid, dn) for every entry matching ``filt``."""
    out: dict[str, tuple[str, str, str]] = {}
    for e in conn.extend.standard.paged_search(
        base,
        filt,
        attributes=["sAMAccountName"],
        paged_size=1000,
        controls=[extended_dn_control()],
        generator=True,
    ):
        if e.get("type") != "searchResEntry":
            continue
        m = _EXT.match(e["dn"])
        assert m, e["dn"]
        sam = e["raw_attributes"]["sAMAccountName"][0].decode()
        out[sam.lower()] = (m.group(1).lower(), m.group(2), m.group(3))
    return out


def load(dc: SambaDC, tables: dict[str, pl.DataFrame], domain_sid: str) -> IdMap:
    """Seed ``tables`` (canonical schemas) into the running ``dc``; returns the id mapping."""
    t0 = time.monotonic()
    conn = admin_connection(dc)
    conn.search(BASE_DN, "(objectClass=*)", ldap3.BASE, attributes=["objectSid"])
    server_sid = format_sid(conn.response[0]["raw_attributes"]["objectSid"][0])
    conn.modify(BASE_DN, {"maxPwdAge": [(ldap3.MODIFY_REPLACE, [str(-(2**63))])]})
    idmap = IdMap()

    def to_server_sid(sid: str) -> str:
        return server_sid + sid[len(domain_sid) :] if sid.startswith(domain_sid + "-") else sid

    accounts = tables["accounts"]
    groups = tables["groups"]
    members = tables["memberships"]
    rid_of = pl.col("sid").str.extract(r"-(\d+)$", 1).cast(pl.Int64)
    groups = groups.with_columns(
        wellknown=pl.col("sid").str.starts_with("S-1-5-32-")
        | (pl.col("sid").str.starts_with(domain_sid + "-") & (rid_of < 1000))
    )

    # --- well-known groups: match by SID ---------------------------------------------------
    existing: dict[str, tuple[str, str]] = {}  # dataset group id -> (server guid, dn)
    for row in groups.filter("wellknown").iter_rows(named=True):
        sid = to_server_sid(row["sid"])
        conn.search(
            f"<SID={sid}>",
            "(objectClass=*)",
            ldap3.BASE,
            attributes=["groupType", "description"],
            controls=[extended_dn_control()],
        )
        m = _EXT.match(conn.response[0]["dn"])
        assert m
        guid, dn = m.group(1).lower(), m.group(3)
        existing[row["group_id"]] = (guid, dn)
        idmap.ids[row["group_id"]] = guid
        idmap.sids[row["sid"]] = sid
        raw = conn.response[0]["raw_attributes"]
        desc = row["description"]
        if desc is None and raw.get("description"):
            conn.modify(dn, {"description": [(ldap3.MODIFY_DELETE, [])]})
        elif desc is not None:
            conn.modify(dn, {"description": [(ldap3.MODIFY_REPLACE, [desc])]})
        if row["scope"] != "builtin":
            want = _GROUP_TYPE[row["scope"]] | (0x80000000 if row["kind"] == "security" else 0)
            want_signed = want - 2**32 if want >= 2**31 else want
            if int(raw["groupType"][0]) != want_signed:
                conn.modify(dn, {"groupType": [(ldap3.MODIFY_REPLACE, [str(want_signed)])]})

    # --- containers, groups, accounts ------------------------------------------------------
    new_groups = groups.filter(~pl.col("wellknown"))
    _ensure_parents(conn, new_groups["dn"].to_list() + accounts["dn"].to_list())
    for row in new_groups.iter_rows(named=True):
        gt = _GROUP_TYPE[row["scope"]] | (0x80000000 if row["kind"] == "security" else 0)
        attrs: dict[str, object] = {
            "sAMAccountName": sam_name(row["name"]),
            "groupType": str(gt - 2**32 if gt >= 2**31 else gt),
        }
        if row["description"] is not None:
            attrs["description"] = row["description"]
        conn.add(row["dn"], "group", attrs)
    t_groups = time.monotonic()
    if accounts.get_column("locked").any():
        raise ValueError("the loader cannot lock accounts: lock them in the test (failed binds)")
    reset: list[str] = []  # accounts given a password but no pwdLastSet: back to 0
    for row in accounts.iter_rows(named=True):
        computer = row["kind"] == "computer"
        password = row["password_not_required"] is False
        uac = (0x1000 if computer else 0x200) | (0 if row["enabled"] else 0x2)
        if row["password_not_required"] or (not computer and not password):
            uac |= 0x20
        if row["password_never_expires"]:
            uac |= 0x10000
        attrs = {
            "sAMAccountName": sam_name(row["username"], computer),
            "userAccountControl": str(uac),
        }
        if password:
            attrs["unicodePwd"] = f'"{BIND_PASSWORD}"'.encode("utf-16-le")
            if row["pwd_last_set"] is None:
                reset.append(row["dn"])
        if row["account_expires"] is not None:
            attrs["accountExpires"] = filetime(row["account_expires"])
        for col, attr in (
            ("upn", "userPrincipalName"),
            ("display_name", "displayName"),
            ("mail", "mail"),
            ("employee_id", "employeeID"),
            ("company", "company"),
            ("department", "department"),
            ("description", "description"),
        ):
            if row[col] is not None:
                attrs[attr] = row[col]
        if row["last_logon"] is not None:
            attrs["lastLogonTimestamp"] = filetime(row["last_logon"])
        if row["privileged"]:
            attrs["adminCount"] = "1"
        if row["kind"] == "service":
            attrs["servicePrincipalName"] = (
                f"MSSQLSvc/{sam_name(row['username'])}.alliance.local:1433"
            )
        conn.add(row["dn"], "computer" if computer else "user", attrs)
    for dn in reset:
        conn.modify(dn, {"pwdLastSet": [(ldap3.MODIFY_REPLACE, ["0"])]})
    t_accounts = time.monotonic()

    # --- map dataset ids to server ids -----------------------------------------------------
    users = _lookup(conn, BASE_DN, "(objectClass=user)")
    for row in accounts.select("account_id", "username", "sid", "kind").iter_rows(named=True):
        guid, sid, _dn = users[sam_name(row["username"], row["kind"] == "computer").lower()]
        idmap.ids[row["account_id"]] = guid
        idmap.sids[row["sid"]] = sid
    grps = _lookup(conn, BASE_DN, "(objectClass=group)")
    for row in new_groups.select("group_id", "name", "sid").iter_rows(named=True):
        guid, sid, _dn = grps[sam_name(row["name"]).lower()]
        idmap.ids[row["group_id"]] = guid
        idmap.sids[row["sid"]] = sid
    guid_dn = {g: dn for g, _s, dn in [*users.values(), *grps.values()]}
    guid_sid = {g: s for g, s, _dn in [*users.values(), *grps.values()]}

    def ref(member_id: str, kind: str) -> str:
        return f"<SID={member_id}>" if kind == "foreign" else f"<GUID={idmap.ids[member_id]}>"

    # --- member edges (skip those the server already has) -----------------------------------
    present: set[tuple[str, str]] = set()
    for guid, dn in existing.values():
        conn.search(
            dn,
            "(objectClass=*)",
            ldap3.BASE,
            attributes=["member"],
            controls=[extended_dn_control()],
        )
        for v in conn.response[0]["raw_attributes"].get("member") or []:
            m = _EXT.match(v.decode())
            if m:
                present.add((guid, m.group(1).lower()))
    todo: dict[str, list[str]] = defaultdict(list)
    primary: list[tuple[str, str]] = []
    for row in members.iter_rows(named=True):
        if row["via"] == "primaryGroupID":
            primary.append((row["group_id"], row["member_id"]))
            continue
        g = idmap.ids[row["group_id"]]
        if row["member_kind"] != "foreign" and (g, idmap.ids[row["member_id"]]) in present:
            continue
        todo[row["group_id"]].append(ref(row["member_id"], row["member_kind"]))
    for gid, refs in todo.items():
        dn = guid_dn[idmap.ids[gid]]
        for i in range(0, len(refs), 1000):
            conn.modify(dn, {"member": [(ldap3.MODIFY_ADD, refs[i : i + 1000])]})

    # --- primary groups --------------------------------------------------------------------
    kind_of = dict(zip(accounts["account_id"], accounts["kind"], strict=True))
    explicit = {
        (r["group_id"], r["member_id"])
        for r in members.filter(pl.col("via") != "primaryGroupID").iter_rows(named=True)
    }
    for gid, aid in primary:
        default_rid = 515 if kind_of[aid] == "computer" else 513
        group_sid = guid_sid[idmap.ids[gid]]
        rid = int(group_sid.rsplit("-", 1)[1])
        if rid == default_rid:
            continue
        acct_dn = guid_dn[idmap.ids[aid]]
        gdn = guid_dn[idmap.ids[gid]]
        if (gid, aid) not in explicit:
            conn.modify(gdn, {"member": [(ldap3.MODIFY_ADD, [f"<GUID={idmap.ids[aid]}>"])]})
        conn.modify(acct_dn, {"primaryGroupID": [(ldap3.MODIFY_REPLACE, [str(rid)])]})
        old = f"<SID={server_sid}-{default_rid}>"
        old_id = next(
            (g for g, s in idmap.sids.items() if s == f"{server_sid}-{default_rid}"), None
        )
        old_gid = next(
            (k for k, v in zip(groups["group_id"], groups["sid"], strict=True) if v == old_id), None
        )
        if (old_gid, aid) not in explicit:
            conn.search(old, "(objectClass=*)", ldap3.BASE, attributes=["distinguishedName"])
            conn.modify(
                conn.response[0]["dn"],
                {"member": [(ldap3.MODIFY_DELETE, [f"<GUID={idmap.ids[aid]}>"])]},
            )

    # --- manager / managedBy ---------------------------------------------------------------
    for row in accounts.filter(pl.col("manager_id").is_not_null()).iter_rows(named=True):
        conn.modify(
            guid_dn[idmap.ids[row["account_id"]]],
            {"manager": [(ldap3.MODIFY_REPLACE, [f"<GUID={idmap.ids[row['manager_id']]}>"])]},
        )
    for row in groups.filter(pl.col("managed_by").is_not_null()).iter_rows(named=True):
        conn.modify(
            guid_dn[idmap.ids[row["group_id"]]],
            {"managedBy": [(ldap3.MODIFY_REPLACE, [f"<GUID={idmap.ids[row['managed_by']]}>"])]},
        )
    conn.unbind()

    # --- sIDHistory, whenCreated, pwdLastSet (refused over LDAP; written locally) ----------
    # whenCreated is system-only over LDAP; the dataset's creation time matters to the rules
    # (an account that never logged on is dormant from its creation), so it is set as well.
    # pwdLastSet takes only 0 or -1 over LDAP (and from ldbmodify without the bypass control).
    ldif = []
    for row in accounts.select("account_id", "sid_history", "created", "pwd_last_set").iter_rows(
        named=True
    ):
        lines = []
        if row["sid_history"]:  # SIDs of this domain's objects are the server's SIDs now
            history = [idmap.sids.get(s, s) for s in row["sid_history"]]
            lines += ["add: sIDHistory", *(f"sIDHistory: {s}" for s in history), "-"]
        if row["created"] is not None:
            stamp = row["created"].astimezone(UTC).strftime("%Y%m%d%H%M%S.0Z")
            lines += ["replace: whenCreated", f"whenCreated: {stamp}", "-"]
        if row["pwd_last_set"] is not None:
            lines += ["replace: pwdLastSet", f"pwdLastSet: {filetime(row['pwd_last_set'])}", "-"]
        if lines:
            dn64 = base64.b64encode(guid_dn[idmap.ids[row["account_id"]]].encode()).decode()
            ldif.append("\n".join([f"dn:: {dn64}", "changetype: modify", *lines]) + "\n")
    if ldif:
        dc.ldbmodify("\n".join(ldif), len(ldif), controls=(BYPASS_LAST_SET,))
    idmap.timings.update(
        {"groups": t_groups - t0, "accounts": t_accounts - t_groups, "total": time.monotonic() - t0}
    )
    return idmap


def expected(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """``tables`` with the account-state columns the dataset leaves null filled with what the
    domain controller reports after :func:`load`: not locked; no password required unless the
    dataset gave one (computers: their trust flag only); the password expired where pwdLastSet
    is 0 and it can expire (not DONT_EXPIRE_PASSWORD, not a computer's)."""
    acc = tables["accounts"]
    computer = pl.col("kind") == "computer"
    never = pl.col("password_never_expires").fill_null(False)
    acc = acc.with_columns(
        locked=pl.col("locked").fill_null(False),
        password_not_required=pl.col("password_not_required").fill_null(~computer),
        password_never_expires=never,
        password_expired=pl.col("password_expired").fill_null(
            pl.col("pwd_last_set").is_null() & ~never & ~computer
        ),
    )
    return {**tables, "accounts": acc}


def add_bind_user(dc: SambaDC, name: str, *, disabled: bool = False) -> str:
    """An ordinary domain user with a password (no groups beyond Domain Users); returns its UPN."""
    conn = admin_connection(dc)
    dn = f"CN={name},CN=Users,{BASE_DN}"
    pwd = f'"{BIND_PASSWORD}"'.encode("utf-16-le")
    conn.add(
        dn,
        "user",
        {
            "sAMAccountName": name,
            "unicodePwd": pwd,
            "userAccountControl": str(0x200 | (0x2 if disabled else 0)),
        },
    )
    conn.unbind()
    return f"{name}@alliance.local"
