"""Generic LDAP through the OpenLDAP mapping: same tables, same completeness rules."""

from __future__ import annotations

import pytest
from support.servers.compare import OPENLDAP_ACCOUNT_COLUMNS as ACCOUNT_COLUMNS
from support.servers.compare import OPENLDAP_GROUP_COLUMNS as GROUP_COLUMNS
from support.servers.compare import assert_matches
from support.servers.seeded import SeededSlapd

from accessaudit.connectors.ldap.collect import IncompleteLdapCollection, collect

pytestmark = pytest.mark.servers


def test_collection_equals_dataset(slapd: SeededSlapd, monkeypatch: pytest.MonkeyPatch) -> None:
    got = collect(slapd.source(monkeypatch, page_size=400))
    assert got.source == "ldap:openldap"
    assert got.complete, got.units
    accounts = next(u for u in got.units if u.name == "accounts")
    assert accounts.count > 500  # more than the server's size limit for this user, via paging
    tables = {n: got.table(n) for n in ("accounts", "groups", "memberships", "grants")}
    assert_matches(
        tables, slapd.expected, account_columns=ACCOUNT_COLUMNS, group_columns=GROUP_COLUMNS
    )
    # generic LDAP has no userAccountControl: the account-state columns are unknown, not False
    state = ["locked", "password_not_required", "password_never_expires", "password_expired"]
    nulls = tables["accounts"].select(*state, "account_expires").null_count().row(0)
    assert nulls == (tables["accounts"].height,) * 5


def test_size_limit_is_incomplete_not_silent(
    slapd_capped: SeededSlapd, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Paging past the server's size limit ends in sizeLimitExceeded (ldap3's own paged
    generator stops there silently); the unit is incomplete and collect raises."""
    with pytest.raises(IncompleteLdapCollection) as err:
        collect(slapd_capped.source(monkeypatch, page_size=200))
    accounts = next(u for u in err.value.collection.units if u.name == "accounts")
    assert not accounts.complete
    assert "sizeLimitExceeded" in accounts.detail
    assert accounts.count == 500
    assert "sizeLimitExceeded" in err.value.message


def test_plaintext_only_when_allowed(slapd: SeededSlapd, monkeypatch: pytest.MonkeyPatch) -> None:
    got = collect(slapd.source(monkeypatch, servers=[slapd.server.ldap_url], allow_plaintext=True))
    assert got.complete


def test_start_tls(slapd: SeededSlapd, monkeypatch: pytest.MonkeyPatch) -> None:
    got = collect(slapd.source(monkeypatch, servers=[slapd.server.ldap_url], start_tls=True))
    assert got.complete


def test_wrong_password(slapd: SeededSlapd, monkeypatch: pytest.MonkeyPatch) -> None:
    from accessaudit.errors import AuthError

    cfg = slapd.source(monkeypatch)
    monkeypatch.setenv("ACCESSAUDIT_TEST_LDAP_PASSWORD", "wrong")
    with pytest.raises(AuthError, match="result 49 invalidCredentials"):
        collect(cfg)
