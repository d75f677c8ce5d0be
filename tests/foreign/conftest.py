"""Two real Samba domains for the cross-domain tests, provisioned and seeded once per session
(templates, stopped), then run as copies: the alliance's shared domain (hosted by West Mercia)
and Warwickshire's new domain, each holding objects of the other (support.servers.forest)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.servers import ServerUnavailable
from support.servers import forest as fo
from support.servers.forest import (
    ALLIANCE,
    AUTHENTICATED_USERS,
    MIGRATED,
    NEW_WARKS,
    NOBODY,
    WARKS_OTHER,
    Forest,
)
from support.servers.samba import ADDRESSES, SambaDC, free_address

from accessaudit.loopback_ca import Pki, make_pki


def _fail(exc: ServerUnavailable) -> None:
    pytest.fail(str(exc), pytrace=False)


def _seed_new(dc: SambaDC) -> fo.Seeded:
    """Warwickshire's new domain: staff, a team group, and migrated accounts with sIDHistory."""
    r = NEW_WARKS
    conn = fo.admin(dc, r)
    ou = fo.add_ou(conn, r, "Staff")
    for name in ("nw.bob", "nw.carol", "nw.erin", "nw.frank", "nw.gina"):
        fo.add_user(conn, ou, name)
    team = fo.add_group(conn, ou, "NW-Team")
    fo.add_members(conn, team, [f"CN=nw.carol,{ou}"])
    fo.add_auditor(conn, r)
    names = ["nw.bob", "nw.carol", "nw.erin", "nw.frank", "nw.gina", "NW-Team"]
    sids, ids = fo.read_ids(conn, r, names)
    conn.unbind()
    return fo.Seeded(dc, r, sids, ids)


def _seed_shared(dc: SambaDC, new: fo.Seeded) -> fo.Seeded:
    """The alliance's shared domain: West Mercia's file groups holding Warwickshire's new-domain
    account and group by SID, an alliance account of Warwickshire, SIDs of uncollected domains
    and Authenticated Users."""
    r = ALLIANCE
    conn = fo.admin(dc, r)
    wmp, warks = fo.add_ou(conn, r, "WMP"), fo.add_ou(conn, r, "WARKS")
    fo.add_user(conn, wmp, "wmp.alice")
    fo.add_user(conn, warks, "warks.old")
    files = fo.add_group(conn, wmp, "WMP-RES-Files")
    apps = fo.add_group(conn, wmp, "WMP-RES-Apps")
    fo.add_members(conn, apps, [files])
    fo.add_members(
        conn,
        files,
        [
            f"CN=wmp.alice,{wmp}",
            f"CN=warks.old,{warks}",
            f"<SID={new.sids['nw.bob']}>",
            f"<SID={new.sids['NW-Team']}>",
            f"<SID={WARKS_OTHER}-1105>",
            f"<SID={NOBODY}-1200>",
            f"<SID={MIGRATED}-1500>",
            f"CN={AUTHENTICATED_USERS},CN=ForeignSecurityPrincipals,{r.base_dn}",  # built in
        ],
    )
    fo.add_auditor(conn, r)
    sids, ids = fo.read_ids(conn, r, ["wmp.alice", "warks.old", "WMP-RES-Files", "WMP-RES-Apps"])
    conn.unbind()
    return fo.Seeded(dc, r, sids, ids)


@pytest.fixture(scope="session")
def forest_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("forest-pki"), ips=ADDRESSES)


@pytest.fixture(scope="session")
def forest_template(tmp_path_factory: pytest.TempPathFactory, forest_pki: Pki) -> Iterator[Forest]:
    """Both domains provisioned, seeded and stopped (copied, never run)."""
    root = tmp_path_factory.mktemp("forest")
    try:
        shared_dc = fo.provision_realm(root / "shared", forest_pki, free_address(), ALLIANCE)
        new_dc = fo.provision_realm(root / "new", forest_pki, free_address(), NEW_WARKS)
    except ServerUnavailable as exc:
        _fail(exc)
        raise
    shared_dc.start()
    new_dc.start()
    try:
        new = _seed_new(new_dc)
        shared = _seed_shared(shared_dc, new)
        # nw.erin was warks.old in the alliance; nw.frank a user of a retired domain
        new_ou = f"OU=Staff,{NEW_WARKS.base_dn}"
        fo.add_sid_history(new_dc, f"CN=nw.erin,{new_ou}", [shared.sids["warks.old"]])
        fo.add_sid_history(new_dc, f"CN=nw.frank,{new_ou}", [f"{MIGRATED}-1500"])
        # the shared domain trusts the new one both ways without SID filtering; the new domain
        # trusts the shared one with quarantine (SID filtering) on
        fo.add_trust(shared_dc, ALLIANCE, NEW_WARKS, direction=3, attributes=0)
        fo.add_trust(new_dc, NEW_WARKS, ALLIANCE, direction=3, attributes=0x4)
    finally:
        shared_dc.stop()
        new_dc.stop()
    yield Forest(shared, new)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def forest(forest_template: Forest, tmp_path: Path) -> Iterator[Forest]:
    """Running copies of both domains, each on a loopback address of its own."""
    running = []
    try:
        for seeded, name in ((forest_template.shared, "shared"), (forest_template.new, "new")):
            dc = seeded.dc.copy(tmp_path / name, free_address())
            dc.start()
            running.append(fo.Seeded(dc, seeded.realm, seeded.sids, seeded.ids))
        yield Forest(*running)
    finally:
        for s in running:
            s.dc.stop()
