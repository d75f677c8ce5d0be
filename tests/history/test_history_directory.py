"""Six same-day runs of ``accessaudit run`` on a real Samba DC, read as a compliance reviewer
reads them: what each status says, one count of "open" everywhere, the gaps of the record.

1. complete;
2. incomplete: a membership removed, and our relay cuts the connection mid-range;
3. complete: the removed membership is still unknown, and says it waits for the next complete
   run (not "collection incomplete");
4. complete: now it is resolved; afterwards the membership is added back;
5. complete with an exceptions register holding an expired exception: the membership regressed,
   the expired-exception finding names the exception, its rule and the forces;
6. complete after run 3's folder was deleted by hand, with retention pruning run 1:
   ``accessaudit runs`` lists run 1 as pruned and run 3 as missing, and exits 2.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ldap3
import polars as pl
import pytest
from support.hardening_cli import cli, run, write_config
from support.hardening_env import BASE_DN, WARKS_OU, BoundaryDC, bulk_dn
from support.htmltree import parse
from support.ldaprelay import CUT, FORWARD, SEARCH_REQUEST, LdapRelay, Message, Script, Verdict
from support.servers.load_ad import admin_connection

pytestmark = [pytest.mark.servers, pytest.mark.slow]

GROUP = "WMP-Bound-1499"  # members: bulk accounts 2000-3498, so 2500-3498 are Warwickshire's
REMOVED = "b02600"  # a Warwickshire member removed before run 2, added back after run 4
EXCEPTED = "b02700"  # a Warwickshire member whose exception expired
RULE = "cross-org-direct-member"


@dataclass
class CutSecondRange(Script):
    """Cut every connection when the client asks for its second further ``member;range``
    window (mid-range retrieval of a group over 1,500 members)."""

    ranges: int = 0

    def request(self, msg: Message) -> Verdict:
        attrs = msg.search_attributes() if msg.op == SEARCH_REQUEST else []
        if len(attrs) == 1 and attrs[0].lower().startswith("member;range="):
            self.ranges += 1
            if self.ranges == 2:
                return CUT
        return FORWARD


@pytest.fixture
def relay(boundary_dc: BoundaryDC) -> Iterator[LdapRelay]:
    dc = boundary_dc.dc
    r = LdapRelay(
        (dc.address, 636),
        cert_file=dc.pki.cert_file,
        key_file=dc.pki.key_file,
        ca_file=dc.pki.ca_file,
    )
    yield r
    r.close()


def membership(dc: BoundaryDC, username: str, op: str) -> None:
    conn = admin_connection(dc.dc)
    try:
        kind = ldap3.MODIFY_DELETE if op == "remove" else ldap3.MODIFY_ADD
        change = {"member": [(kind, [bulk_dn(int(username[1:]))])]}
        conn.modify(f"CN={GROUP},OU=West Mercia,{BASE_DN}", change)
    finally:
        conn.unbind()


def register(path: Path) -> Path:
    path.write_text(
        f"""[[exception]]
id = "EX-TEST-7"
rule = "{RULE}"
objects = ["{EXCEPTED}"]
justification = "Warwickshire staff kept West Mercia access during the transition"
agreement = "Transition services agreement, schedule 2"
expires = 2026-01-31
approvers = [
  {{ org = "wmp", name = "Head of Information Security, West Mercia", date = 2025-10-01 }},
  {{ org = "warks", name = "Head of Information Security, Warwickshire", date = 2025-10-02 }},
]
""",
        encoding="utf-8",
    )
    return path


def table(data: Path, run_id: str, name: str) -> pl.DataFrame:
    return pl.read_parquet(data / "runs" / run_id / f"{name}.parquet")


def json_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_six_runs_on_a_directory(boundary_dc: BoundaryDC, relay: LdapRelay, tmp_path: Path) -> None:
    # generous timeouts: the fault is a cut connection, never a slow answer, so a loaded CI
    # machine must not turn a complete run into an incomplete one
    source = boundary_dc.source_toml(relay.url, receive_timeout=60.0)
    config = write_config(tmp_path, source)
    data = tmp_path / "data"
    log = tmp_path / "run.jsonl"

    def go(*args: str, expect: int = 0) -> tuple[int, str, dict[str, Any]]:
        p = run(config, "--fail-on", "none", "--json-log", str(log), *args)
        assert "Traceback" not in p.stdout + p.stderr
        assert p.returncode == expect, p.stderr
        return p.returncode, p.stdout, json_lines(log)[-1]

    # --- run 1: complete
    code, _, end1 = go()
    assert code == 0, end1
    r1 = end1["run_id"]
    accounts = table(data, r1, "accounts").select("account_id", "username")
    ids = dict(accounts.iter_rows())
    by_name = {v: k for k, v in ids.items()}
    groups = dict(table(data, r1, "groups").select("name", "group_id").iter_rows())
    removed_key = f"{RULE}|{by_name[REMOVED]}|{groups[GROUP]}"
    f1 = table(data, r1, "findings")
    assert removed_key in f1["finding_key"].to_list()

    # --- run 2: the membership removed; the connection cut mid-range: incomplete, exit 3
    membership(boundary_dc, REMOVED, "remove")
    relay.script = CutSecondRange()
    code, _, end2 = go(expect=3)
    relay.script = Script()
    relay.was_cut.clear()  # the relay forwards again from here on
    assert code == 3 and end2["complete"] is False
    r2 = end2["run_id"]
    h2 = table(data, r2, "findings_history")
    row2 = h2.filter(pl.col("finding_key") == removed_key).row(0, named=True)
    assert (row2["status"], row2["unknown_reason"]) == ("unknown", "incomplete")
    unknown2 = h2.filter(pl.col("status") == "unknown").height
    assert unknown2 > 1  # the removed one and what the cut range lost
    assert end2["changes"]["resolved"] == 0

    # --- run 3: complete; the removed membership waits for the next complete run
    code, out3, end3 = go()
    assert code == 0 and end3["complete"] is True
    r3 = end3["run_id"]
    h3 = table(data, r3, "findings_history")
    unknown3 = h3.filter(pl.col("status") == "unknown")
    assert unknown3.select("finding_key", "unknown_reason").rows() == [(removed_key, "confirm")]
    f3 = table(data, r3, "findings")
    seen_open = f3.filter(pl.col("status") == "open").height
    # one definition of open: the run's open findings plus the unknown one, everywhere
    summary3 = json.loads((data / "runs" / r3 / "manifest.json").read_text())["summary"]
    assert (summary3["open"], summary3["open_unknown"]) == (seen_open + 1, 1)
    assert (end3["open"], end3["open_unknown"]) == (seen_open + 1, 1)
    assert sum(end3["open_by_severity"].values()) == seen_open + 1
    assert (
        f"  {seen_open + 1} open findings (1 of them unknown: absent but not proven gone)" in out3
    )
    page = parse((data / "runs" / r3 / "report.html").read_text(encoding="utf-8"))
    assert page.by_id("card-open").find_all(cls="value")[0].text() == str(seen_open + 1)
    assert page.by_id("open-unknown").text() == "1"
    waits = [td.text() for td in page.by_id("unknown-items").find_all("td", cls="waits-for")]
    assert waits == ["absent in this complete run; resolved when the next complete run confirms"]
    assert "collection incomplete" not in page.by_id("unknown-items").text()
    rules = {
        d.attrs["data-status"]: d.find_all("dd")[0].text()
        for d in page.by_id("status-rules").find_all("div")
    }
    assert set(rules) == {"new", "persisting", "regressed", "resolved", "unknown", "closed"}
    assert rules["unknown"].startswith("Unknown: the finding is not in this run but its absence")
    trend3 = pl.read_csv(data / "runs" / r3 / "trend.csv", encoding="utf8-lossy").filter(
        pl.col("dimension") == "total"
    )
    assert trend3["open"].to_list() == [end1["open"], end2["open"], seen_open + 1]

    # --- run 4: complete again: proven gone. Then the membership comes back.
    code, _, end4 = go()
    r4 = end4["run_id"]
    row4 = table(data, r4, "findings_history").filter(pl.col("finding_key") == removed_key)
    assert row4.select("status", "unknown_reason", "resolved_run").row(0) == ("resolved", None, r4)
    assert end4["open_unknown"] == 0 and end4["changes"]["unknown"] == 0
    membership(boundary_dc, REMOVED, "add")

    # --- run 5: an exceptions register whose only exception expired
    config = write_config(
        tmp_path, source, audit={"exceptions_file": str(register(tmp_path / "exceptions.toml"))}
    )
    code, _, end5 = go()
    r5 = end5["run_id"]
    h5 = table(data, r5, "findings_history")
    assert h5.filter(pl.col("finding_key") == removed_key)["status"].to_list() == ["regressed"]
    f5 = table(data, r5, "findings")
    expired = f5.filter(pl.col("rule_id") == "expired-exception").row(0, named=True)
    covered = f5.filter((pl.col("exception_id") == "EX-TEST-7") & (pl.col("rule_id") == RULE))
    assert covered.height == 4  # b02700 is in all four boundary groups
    assert (expired["resource_id"], expired["right"]) == ("EX-TEST-7", RULE)
    assert (expired["principal_org"], expired["resource_org"]) == ("warks", "wmp")
    assert expired["detail"] == (
        f"expired on 2026-01-31: 4 finding(s) of {RULE} open again; exception EX-TEST-7,"
        " forces warks → wmp (Transition services agreement, schedule 2)"
    )
    page = parse((data / "runs" / r5 / "report.html").read_text(encoding="utf-8"))
    fresh = [
        [td.text().strip() for td in tr.find_all("td")]
        for tr in page.by_id("fresh-items").find_all("tr", cls="fresh-row")
    ]
    shown = [r for r in fresh if r[2] and "exception" in r[3]]
    assert shown and shown[0][3] == "exception EX-TEST-7 warks"
    assert shown[0][4] == f"rule {RULE} wmp"
    assert not any("unattributed" in r[3] for r in shown)

    # --- run 6: run 3's folder deleted by hand; retention keeps four runs, so run 1 is pruned
    shutil.rmtree(data / "runs" / r3)
    config = write_config(tmp_path, source, audit={"keep_runs": 4})
    code, _, end6 = go()
    assert end6["pruned"] == [r1]
    p = cli("runs", "--config", str(config), cwd=config.parent)
    header, *lines = p.stdout.splitlines()
    assert header.split() == [
        "run", "state", "open", "unknown", "critical", "high", "new", "resolved", "regressed",
        "folder,", "or", "what", "happened",
    ]  # fmt: skip
    assert [(ln.split()[0], ln.split()[1]) for ln in lines] == [
        (r1, "pruned"),
        (r2, "INCOMPLETE"),
        (r3, "MISSING"),
        (r4, "complete"),
        (r5, "complete"),
        (end6["run_id"], "complete"),
    ]
    assert f"(run {r4} names it as its previous run)" in lines[2]
    assert p.returncode == 2
    assert p.stderr == (
        f"accessaudit: runs: 1 gap(s) in the stored record: {r3} (missing);"
        " run `accessaudit verify`\n"
    )
    # the pruned run keeps its counts, by the same definition of open
    assert lines[0].split()[2:4] == [str(end1["open"]), "0"]
    assert lines[1].split()[2:4] == [str(end2["open"]), str(unknown2)]
    assert cli("verify", "--config", str(config), cwd=config.parent).returncode == 2


def test_warwickshire_ou_holds_the_removed_member() -> None:
    """The sequence's premise: its two members are Warwickshire's (bulk accounts >= 2500)."""
    assert bulk_dn(int(REMOVED[1:])).endswith(WARKS_OU)
    assert bulk_dn(int(EXCEPTED[1:])).endswith(WARKS_OU)
