"""Guests attributed by their home domain when they have no mail attribute: from the ``#EXT#``
user principal name, or from a federated identity's issuer.

A tenant built here (as Graph objects) is served by the emulator and collected by the real
connector; the truth (each guest's home force, the cross-force (account, group) pairs, the
guests reaching the other force) is computed below by plain loops over what was built."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl
import pytest
from support.entra_data import CLIENT_ID, ROLES, SECRET, TENANT, oid, session_for
from support.fixtures import NOW

from accessaudit.config.settings import Settings
from accessaudit.connectors.entra.collect import collect
from accessaudit.graphemu import GraphEmulator, Tenant
from accessaudit.pipeline.analyse import analyse
from accessaudit.pipeline.collect import combine

DOMAIN = "alliance.onmicrosoft.com"
#: force -> its domain (UPN suffix and mail domain of its staff)
FORCES = {"wmp": "wm.example", "warks": "wk.example"}


@dataclass(frozen=True)
class Guest:
    name: str
    home: str | None  # the force the guest belongs to (None: neither)
    props: dict[str, Any]


def _guest(name: str, upn: str, **props: Any) -> dict[str, Any]:
    return {
        "userPrincipalName": upn,
        "displayName": name,
        "mail": None,
        "mailNickname": name,
        "userType": "Guest",
        "creationType": "Invitation",
        "externalUserState": "Accepted",
        "identities": [{"signInType": "federated", "issuer": "ExternalAzureAD"}],
        **props,
    }


def _federated(issuer: str) -> list[dict[str, Any]]:
    return [{"signInType": "federated", "issuer": issuer, "issuerAssignedId": None}]


GUESTS = (
    # the home address's local part holds "_" too: the domain follows the last one
    Guest("ext-upn", "warks", _guest("ext-upn", f"jane_doe_wk.example#EXT#@{DOMAIN}")),
    Guest("ext-upn-wmp", "wmp", _guest("ext-upn-wmp", f"sam.lee_wm.example#EXT#@{DOMAIN}")),
    # UPN renamed by an administrator: the home domain is only in the identity's issuer
    Guest("issuer", "warks", _guest("issuer", f"rb@{DOMAIN}", identities=_federated("wk.example"))),
    # a WS-Fed issuer URI: its host, a subdomain of the force's domain
    Guest(
        "issuer-uri",
        "warks",
        _guest(
            "issuer-uri",
            f"kp@{DOMAIN}",
            identities=_federated("https://sts.wk.example/adfs/services/trust"),
        ),
    ),
    Guest("mail", "warks", _guest("mail", f"al_wk.example#EXT#@{DOMAIN}", mail="al@wk.example")),
    # another organisation's guest, a guest signing in with Google, one with no home at all,
    # and one whose only issuer is the tenant's own domain (invited, not yet redeemed)
    Guest("contoso", None, _guest("contoso", f"x_contoso.com#EXT#@{DOMAIN}")),
    Guest("google", None, _guest("google", f"g@{DOMAIN}", identities=_federated("google.com"))),
    Guest("nohome", None, _guest("nohome", f"nh@{DOMAIN}")),
    Guest("pending", None, _guest("pending", f"p@{DOMAIN}", identities=_federated(DOMAIN))),
)
#: group -> (its force, its members)
GROUPS = {
    "WMP-Team": ("wmp", ["w1", "ext-upn", "issuer", "issuer-uri", "mail", "contoso", "google"]),
    "WARKS-Team": ("warks", ["k1", "ext-upn", "ext-upn-wmp", "nohome", "pending"]),
    "WMP-Lonely": ("wmp", ["w1"]),
}
STAFF = {"w1": "wmp", "k1": "warks"}


def settings(*matchers: str) -> Settings:
    """Each force's accounts matched by ``matchers`` only (of ``upn_suffix``, ``mail_domain``),
    its groups by their name prefix."""
    value = {"upn_suffix": lambda d: [f"@{d}"], "mail_domain": lambda d: [d]}
    orgs = [
        {
            "id": org,
            "name": org,
            "match": {"name_prefix": [f"{org.upper()}-"], **{m: value[m](d) for m in matchers}},
        }
        for org, d in FORCES.items()
    ]
    return Settings.model_validate(
        {"organisations": orgs, "sources": [{"kind": "sample", "name": "s"}]}
    )


def build(emu: GraphEmulator) -> Tenant:
    t = emu.add_tenant(Tenant(TENANT, domain=DOMAIN))
    emu.register_app(TENANT, CLIENT_ID, secret=SECRET, roles=ROLES)
    for name, org in STAFF.items():
        t.add_user(
            id=oid(name),
            userPrincipalName=f"{name}@{FORCES[org]}",
            displayName=name,
            mail=f"{name}@{FORCES[org]}",
            mailNickname=name,
            userType="Member",
        )
    for g in GUESTS:
        t.add_user(id=oid(g.name), **g.props)
    for name, (_, members) in GROUPS.items():
        gid = t.add_group(id=oid(name), displayName=name)
        for m in members:
            t.add_member(gid, oid(m))
    return t


def truth() -> tuple[set[tuple[str, str]], set[str]]:
    """Cross-force (account, group) pairs and the guests among them, by plain loops."""
    home = {**STAFF, **{g.name: g.home for g in GUESTS}}
    pairs = set()
    for group, (group_org, members) in GROUPS.items():
        for member in members:
            if home[member] is not None and home[member] != group_org:
                pairs.add((oid(member), oid(group)))
    guests = {oid(g.name) for g in GUESTS}
    return pairs, {a for a, _ in pairs if a in guests}


@pytest.mark.parametrize(
    "matchers", [("upn_suffix",), ("mail_domain",), ("upn_suffix", "mail_domain")]
)
def test_guests_without_mail_are_attributed_and_their_access_found(emu, make_cfg, rules, matchers):
    build(emu)

    result = collect(make_cfg())
    analysis = analyse(combine([("entra", result)]), settings(*matchers), rules, as_of=NOW)

    assert result.complete
    accounts = analysis.accounts
    orgs = dict(accounts.select("account_id", "org").iter_rows())
    assert {g.name: orgs[oid(g.name)] for g in GUESTS} == {
        g.name: g.home or "unattributed" for g in GUESTS
    }
    pairs, guests = truth()
    findings = analysis.findings
    cross = findings.filter(pl.col("rule_id") == "cross-org-direct-member")
    assert set(cross.select("account_id", "group_id").iter_rows()) == pairs
    guest_findings = findings.filter(pl.col("rule_id") == "cross-org-guest")
    assert set(guest_findings["account_id"]) == guests
    # the guests with no home domain are left for review, never guessed
    unattributed = findings.filter(pl.col("rule_id") == "unattributed-with-access")
    assert set(unattributed["account_id"]) == {oid(g.name) for g in GUESTS if g.home is None}


def test_evidence_names_the_field_the_home_domain_came_from(emu, make_cfg, rules):
    build(emu)

    result = collect(make_cfg())
    analysis = analyse(combine([("entra", result)]), settings("upn_suffix"), rules, as_of=NOW)

    homes = dict(result.tables["accounts"].select("account_id", "home_domain").iter_rows())
    assert {g.name: homes[oid(g.name)] for g in GUESTS} == {
        "ext-upn": "wk.example",
        "ext-upn-wmp": "wm.example",
        "issuer": "wk.example",
        "issuer-uri": "sts.wk.example",
        "mail": "wk.example",
        "contoso": "contoso.com",
        "google": None,
        "nohome": None,
        "pending": None,
    }
    assert homes[oid("w1")] is None  # the tenant's own users have none
    evidence = dict(analysis.accounts.select("account_id", "org_evidence").iter_rows())
    assert evidence[oid("ext-upn")] == ["upn_suffix:warks (guest home domain from #EXT# UPN)"]
    assert evidence[oid("issuer")] == ["upn_suffix:warks (guest home domain from identities)"]
    assert evidence[oid("mail")] == ["upn_suffix:warks (guest home domain from mail)"]
    assert evidence[oid("w1")] == ["upn_suffix:wmp"]


def test_ext_upns_are_percent_encoded_in_requests(emu, pki):
    """``#`` starts a URL's fragment: a guest addressed by UPN needs ``%23EXT%23``
    (user-list Example 8); the emulator decodes it as Graph does. The connector addresses
    objects by id only, so no request it sends carries a ``#``."""
    build(emu)
    s = session_for(emu, pki)
    upn = f"jane_doe_wk.example%23EXT%23@{DOMAIN}"
    got = s.get(f"{emu.graph_url}/users/{upn}?$select=id,userPrincipalName").json()
    assert got["id"] == oid("ext-upn")
    assert got["userPrincipalName"] == f"jane_doe_wk.example#EXT#@{DOMAIN}"
    raw = s.get(f"{emu.graph_url}/users/jane_doe_wk.example#EXT#@{DOMAIN}")
    assert raw.status_code == 404  # everything after "#" never reached the server


def test_the_connector_never_sends_a_raw_hash(emu, make_cfg):
    build(emu)

    collect(make_cfg())

    sent = [r.target for r in emu.requests("graph") + emu.requests("batch-item")]
    assert sent and not [t for t in sent if "#" in t]
