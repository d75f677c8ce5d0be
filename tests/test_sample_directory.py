"""The sample directory: deterministic, sized as asked, and holding every case it claims."""

from __future__ import annotations

import polars as pl
import pytest
from support.fixtures import NOW

from accessaudit.connectors.entra.tables import PRIVILEGED_ROLE_TEMPLATES
from accessaudit.engine.rulefile import Rule
from accessaudit.model import ACCOUNTS_SCHEMA, GROUPS_SCHEMA, MEMBERSHIPS_SCHEMA, Via
from accessaudit.sample.builder import Sample
from accessaudit.sample.directory import generate
from accessaudit.sample.plants_hostile import HOSTILE, HOSTILE_NAMES


def test_same_seed_same_directory() -> None:
    a, b = generate(seed=3, accounts=800, now=NOW), generate(seed=3, accounts=800, now=NOW)
    for name in a.tables:
        assert a.tables[name].equals(b.tables[name]), name
    assert a.truth.equals(b.truth)


def test_other_seed_other_ids() -> None:
    a, b = generate(seed=3, accounts=800, now=NOW), generate(seed=4, accounts=800, now=NOW)
    assert set(a.tables["accounts"]["account_id"]).isdisjoint(b.tables["accounts"]["account_id"])


@pytest.mark.parametrize("n", [200, 1000, 6000, 25_000])
def test_size_and_schemas(n: int) -> None:
    s = generate(seed=1, accounts=n, now=NOW)
    assert s.tables["accounts"].height == n
    assert s.tables["accounts"].schema == ACCOUNTS_SCHEMA
    assert s.tables["groups"].schema == GROUPS_SCHEMA
    assert s.tables["memberships"].schema == MEMBERSHIPS_SCHEMA
    assert s.tables["accounts"]["account_id"].n_unique() == n
    assert s.tables["accounts"]["sid"].n_unique() == n
    assert s.tables["groups"]["sid"].n_unique() == s.tables["groups"].height


def test_too_small_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 200"):
        generate(accounts=199)


def test_realistic_cases_are_present(sample: Sample) -> None:
    acc, grp, mem = (sample.tables[n] for n in ("accounts", "groups", "memberships"))
    wmp = acc.filter(pl.col("upn").str.ends_with("@westmercia.police.uk")).height
    warks = acc.filter(pl.col("upn").str.ends_with("@warwickshire.police.uk")).height
    assert 0.6 < wmp / (wmp + warks) < 0.72  # West Mercia about two thirds
    sizes = mem.group_by("group_id").len()
    assert (sizes["len"] > 1500).any()  # a group beyond AD's MaxValRange
    rids = grp.select(pl.col("sid").str.extract(r"-(\d+)$").cast(pl.Int64))["sid"].to_list()
    assert {512, 518, 519, 520, 544, 548, 549, 550, 551} <= set(rids)
    assert mem.filter(pl.col("via") == Via.PRIMARY_GROUP.value).height >= acc.height - 2
    names = set(acc["display_name"].to_list())
    assert any("Siân" in n or "Llywelyn" in n for n in names)  # Welsh names
    assert any("'" in n for n in names)  # apostrophes
    assert set(HOSTILE) <= set(acc["description"].drop_nulls().to_list())
    assert set(HOSTILE_NAMES) <= set(acc["display_name"].drop_nulls().to_list())
    assert {"service", "computer", "user"} <= set(acc["kind"].to_list())
    assert not acc["enabled"].all()


def test_nesting_cycle_is_present(sample: Sample) -> None:
    grp, mem = sample.tables["groups"], sample.tables["memberships"]
    ids = dict(zip(grp["name"], grp["group_id"], strict=True))
    edges = set(
        mem.filter(pl.col("member_kind") == "group").select("member_id", "group_id").iter_rows()
    )
    a, b, c = ids["WMP-CYC-A"], ids["WMP-CYC-B"], ids["WMP-CYC-C"]
    assert {(a, b), (b, c), (c, a)} <= edges


#: Rules only the Entra tenant can cause (roles, app roles and guests live there).
ENTRA_ONLY = {"cross-org-directory-role", "cross-org-app-role", "cross-org-guest"}
#: Rules only the forces' new domains cause (sample.plants_foreign: generate(domains=True)).
DOMAINS_ONLY = {
    "cross-org-foreign-principal", "well-known-principal-member", "cross-org-trust",
    "cross-org-trust-sid-filtering-off",
}  # fmt: skip


def test_truth_covers_every_rule(sample: Sample, rules: list[Rule]) -> None:
    assert set(sample.truth["rule_id"]) == {r.id for r in rules} - ENTRA_ONLY - DOMAINS_ONLY
    everything = generate(seed=7, accounts=1000, now=NOW, entra=True, domains=True)
    assert set(everything.truth["rule_id"]) == {r.id for r in rules}


def test_directory_is_the_same_with_or_without_the_tenant_and_apps() -> None:
    plain = generate(seed=5, accounts=900, now=NOW)
    full = generate(seed=5, accounts=900, now=NOW, entra=True, apps=True)
    for name in plain.tables:
        assert plain.tables[name].equals(full.tables[name]), name
    assert not plain.entra and set(full.entra) == set(plain.tables)


def test_entra_tenant_is_shaped_like_the_connector_output() -> None:
    from accessaudit.model import GRANTS_SCHEMA
    from accessaudit.sample.entra import ENTRA_SOURCE, ROLES

    s = generate(seed=5, accounts=900, now=NOW, entra=True)
    acc, grp, mem, gra = (s.entra[n] for n in ("accounts", "groups", "memberships", "grants"))
    assert acc.schema == ACCOUNTS_SCHEMA and grp.schema == GROUPS_SCHEMA
    assert mem.schema == MEMBERSHIPS_SCHEMA and gra.schema == GRANTS_SCHEMA
    for df in (acc, grp, mem, gra):
        assert set(df["source"]) == {ENTRA_SOURCE}
    # users synced from AD carry the AD objectSid and DN; nothing Graph cannot give
    ad = s.tables["accounts"]
    synced = acc.filter(pl.col("sid").is_not_null())
    assert set(synced["sid"]) <= set(ad["sid"]) and synced["dn"].null_count() == 0
    assert synced["account_id"].is_in(ad["account_id"].implode()).sum() == 0
    assert acc["description"].null_count() == acc["manager_id"].null_count() == acc.height
    assert acc["sid_history"].list.len().sum() == 0
    guests = acc.filter(pl.col("kind") == "guest")
    # 10: one UPN renamed (that guest's home domain is only in its identity's issuer)
    assert guests.height == 10 and guests["upn"].str.contains("#EXT#@", literal=True).sum() == 9
    assert guests["sid"].null_count() == guests["dn"].null_count() == 10
    assert guests["home_domain"].null_count() == 0
    # every group is cloud-only; administrative units and applications are kinds of group
    assert set(grp["mastered"]) == {"cloud"} and set(grp["scope"]) == {"cloud"}
    assert set(grp["kind"]) == {"m365", "security", "administrative-unit", "app-role"}
    assert set(mem["via"]) == {"graph"}
    # grants as entra_tables writes them: "<role> @ <scope>[ (eligible)]", "<app>: <role>"
    roles = gra.filter(pl.col("resource_kind") == "directory-role")
    assert set(roles["resource_id"]) <= set(ROLES.values())
    assert (
        roles["right"]
        .str.contains(r"^[A-Za-z ]+ @ /(administrativeUnits/[0-9a-f-]+)?( \(eligible\))?$")
        .all()
    )
    apps = gra.filter(pl.col("resource_kind") == "app-role")
    app_ids = set(grp.filter(pl.col("kind") == "app-role")["group_id"])
    assert set(apps["resource_id"]) == app_ids and apps["right"].str.contains(": ").all()
    owned = gra.filter(pl.col("resource_kind") == "ownership")
    listed = grp.select("group_id", "owners").explode("owners").drop_nulls()
    assert sorted(owned.select("resource_id", "principal_id").rows()) == sorted(listed.rows())
    # holders of privileged roles are marked, as mark_privileged does (Groups Administrator is
    # not one of them)
    held = roles.filter(pl.col("resource_id").is_in(list(PRIVILEGED_ROLE_TEMPLATES)))
    assert held.height < roles.height
    assert set(acc.filter(pl.col("privileged"))["account_id"]) == set(held["principal_id"]) & set(
        acc["account_id"]
    )


def test_separation_plants_are_in_the_directory(sample: Sample) -> None:
    acc, grp = sample.tables["accounts"], sample.tables["groups"]
    assert acc["manager_id"].null_count() < acc.height // 2  # most staff have a manager
    managed = grp.filter(pl.col("managed_by").is_not_null())
    assert (managed["owners"].list.len() == 1).all()  # as the LDAP connector derives owners
    assert managed.height > 10
    history = acc.filter(pl.col("sid_history").list.len() > 0)
    domain = sample.domain_sid
    assert history.height >= 9
    assert (
        not history["sid_history"].list.eval(pl.element().str.starts_with(domain)).list.any().any()
    )
    assert (grp.filter(pl.col("name") == "WMP-LEGACY-Alliance-Link")["group_id"].len()) == 1


def test_hostile_display_names_in_the_directory_and_the_tenant() -> None:
    """Markup, formulas, an LDAP filter and Unicode look-alikes in display names, on AD accounts
    and on their Entra copies; never in an attribution signal or the DN."""
    s = generate(seed=7, accounts=1000, now=NOW, entra=True)
    tricks = {
        "markup": "<script>",
        "formula": "=HYPERLINK(",
        "ldap filter": "*)(uid=*",
        "right-to-left override": "\u202e",
        "zero-width joiner": "\u200d",
        "homoglyph (Cyrillic a)": "\u0430",
        "homoglyph (Cyrillic A)": "\u0410",
    }
    for part, acc in (("AD", s.tables["accounts"]), ("Entra", s.entra["accounts"])):
        names = acc["display_name"].drop_nulls()
        for what, needle in tricks.items():
            assert names.str.contains(needle, literal=True).any(), f"{part}: no {what}"
        hostile = acc.filter(pl.col("display_name").is_in(list(HOSTILE_NAMES)))
        assert hostile.height == len(HOSTILE_NAMES), part
        signals = ("upn", "mail", "employee_id", "company", "dn", "username")
        for col in signals:
            values = hostile[col].drop_nulls()
            assert not values.is_in(list(HOSTILE_NAMES)).any(), (part, col)
        assert hostile["dn"].str.contains(r"^CN=[^<*=]+ \d+,OU=Users,OU=").all(), part
    # the Entra copies are the same people (same SID) with the same hostile name
    ad, entra = s.tables["accounts"], s.entra["accounts"]
    pairs = ad.join(entra, on="sid", suffix="_entra").filter(
        pl.col("display_name").is_in(list(HOSTILE_NAMES))
    )
    assert (pairs["display_name"] == pairs["display_name_entra"]).all() and pairs.height == len(
        HOSTILE_NAMES
    )
