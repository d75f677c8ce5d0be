"""Pseudonymisation scrubs by ids, not by a case-insensitive text search: usernames whose
capitals are not ASCII (``ÆLFRED.ØSTERGAARD`` lower-cases to ``ælfred.østergaard`` in its id),
full-width letters, and names of one or two characters leave no trace in any shown table."""

from __future__ import annotations

import polars as pl

from accessaudit.report.pseudonymise import ACCOUNT_FIELDS, Pseudonymiser

KEY = bytes(range(32))
USERNAMES = ["ÆLFRED.ØSTERGAARD", "ÉMILE", "İSMAIL", "GRÜN", "ＡＢＣＤ", "Jo", "x"]
APP = "csv:niche:user:"


def _tables() -> dict[str, pl.DataFrame]:
    ids = [APP + u.lower() for u in USERNAMES]
    accounts = pl.DataFrame(
        {
            "account_id": ids,
            "username": USERNAMES,
            "display_name": [None] * len(ids),
            "sid_history": [[] for _ in ids],
        },
        schema_overrides={"display_name": pl.String, "sid_history": pl.List(pl.String)},
    )
    groups = pl.DataFrame({"group_id": ["csv:niche:role:Officer"], "name": ["Niche: Officer"]})
    keys = [f"cross-org-app-access|{i}|csv:niche:role:Officer" for i in ids]
    findings = pl.DataFrame(
        {
            "finding_key": keys,
            "account_id": ids,
            "group_id": ["csv:niche:role:Officer"] * len(ids),
            "resource_id": ids,
            "detail": [f"{i} holds Niche: Officer" for i in ids],
        }
    )
    actions = pl.DataFrame(
        {
            "action_id": [f"remove-member|csv:niche:role:Officer|{i}" for i in ids],
            "member_id": ids,
            "finding_keys": [[k] for k in keys],
            "summary": [
                f"Remove {u.lower()} ({i}) from Niche: Officer"
                for u, i in zip(USERNAMES, ids, strict=True)
            ],
        }
    )
    paths = pl.DataFrame({"finding_key": keys, "member_id": ids})
    return {"accounts": accounts, "groups": groups, "findings": findings, "actions": actions,
            "paths": paths}  # fmt: skip


def _cells(df: pl.DataFrame) -> list[str]:
    out: list[str] = []
    for col in df.columns:
        s = df.get_column(col)
        flat = s.explode() if isinstance(s.dtype, pl.List) else s
        if flat.dtype == pl.String:
            out += [v for v in flat.to_list() if v]
    return out


def test_ids_with_non_ascii_capitals_and_short_names_are_tokenised() -> None:
    p = Pseudonymiser(KEY)
    tables = _tables()
    shown = p.shown_tables(**tables)
    history = p.frame(
        pl.DataFrame({"finding_key": tables["findings"]["finding_key"], "status": "new"})
    )
    # one token per person: the account's id and username carry the same person token
    people = [p.token("person", APP + u.lower()) for u in USERNAMES]
    tokens = [APP + t for t in people]
    role = "csv:niche:role:" + p.token("group", "Officer")
    assert shown["accounts"]["account_id"].to_list() == tokens
    assert shown["accounts"]["username"].to_list() == people
    assert shown["findings"]["account_id"].to_list() == tokens
    assert shown["findings"]["resource_id"].to_list() == tokens
    keys = [f"cross-org-app-access|{t}|{role}" for t in tokens]
    assert shown["findings"]["finding_key"].to_list() == keys
    assert history["finding_key"].to_list() == keys
    assert shown["actions"]["action_id"].to_list() == [f"remove-member|{role}|{t}" for t in tokens]
    assert shown["actions"]["finding_keys"].to_list() == [[k] for k in keys]
    assert shown["paths"]["member_id"].to_list() == tokens
    assert shown["findings"]["detail"].to_list() == [
        f"{t} holds {p.token('group', 'Niche: Officer')}" for t in tokens
    ]
    # no name survives anywhere, in any case (the long ones also in free text, lower-cased)
    names = {u.casefold() for u in USERNAMES if len(u) >= 3}
    ids = {APP + u.lower() for u in USERNAMES}
    for name, df in [*shown.items(), ("history", history)]:
        for cell in _cells(df):
            folded = cell.casefold()
            assert not [n for n in names if n in folded], (name, cell)
            assert not [i for i in ids if i.casefold() in folded.split("|")], (name, cell)
            assert not [i for i in ids if i in cell], (name, cell)
    assert set(ACCOUNT_FIELDS) >= {"username"}
