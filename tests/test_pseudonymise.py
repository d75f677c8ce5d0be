"""Pseudonymised runs: no raw name, username, UPN, mail, SID or DN in any output file."""

from __future__ import annotations

import html
import json
import re
import stat
import zipfile
from pathlib import Path

import polars as pl
import pytest
from support.fixtures import NOW

from accessaudit.errors import ConfigError
from accessaudit.pipeline.demo import prepare_demo
from accessaudit.pipeline.result import RunResult
from accessaudit.pipeline.run import run_audit
from accessaudit.report import embed
from accessaudit.report.pseudonymise import KEY_FILE, Pseudonymiser, load_key
from accessaudit.store.runs import read_table

KEY = bytes(range(32))


def test_tokens_are_keyed_consistent_and_keep_the_domain() -> None:
    a, b = Pseudonymiser(KEY), Pseudonymiser(KEY)
    other = Pseudonymiser(bytes(32))
    t = a.token("upn", "Amelia.Bevan@westmercia.police.uk")
    assert re.fullmatch(r"upn-[0-9a-f]{16}@westmercia\.police\.uk", t)
    assert t == b.token("upn", "amelia.bevan@WestMercia.police.uk")  # case-insensitive
    assert t != other.token("upn", "Amelia.Bevan@westmercia.police.uk")
    assert a.token("name", "Amelia Bevan") != a.token("user", "Amelia Bevan")  # kinds differ
    assert a.key_id == b.key_id != other.key_id


def test_frames_and_free_text() -> None:
    p = Pseudonymiser(KEY)
    accounts = pl.DataFrame(
        {
            "account_id": ["csv:niche:user:abevan", "g-1"],
            "username": ["ABevan", "jsmith"],
            "display_name": ["Amelia Bevan", "Jo Smith"],
            "upn": ["ABevan@westmercia.police.uk", None],
            "dn": ["CN=Amelia Bevan,OU=West Mercia,DC=alliance,DC=local", None],
            "sid_history": [["S-1-5-21-1-2-3-1104"], []],
        }
    )
    p.learn_tables(accounts, pl.DataFrame({"name": ["WMP-Finance"]}))
    out = p.frame(accounts, {"username": "user", "display_name": "name", "upn": "upn",
                             "sid_history": "sid"})  # fmt: skip
    # one person, one token: username, display name and UPN of an account are the same token
    person = p.token("person", "csv:niche:user:abevan")
    assert out.row(0, named=True) | {"dn": None, "sid_history": None} == {
        "account_id": "csv:niche:user:" + person,
        "username": person,
        "display_name": person,
        "upn": person + "@westmercia.police.uk",
        "dn": None,
        "sid_history": None,
    }
    assert out["sid_history"][0].to_list() == [p.token("sid", "S-1-5-21-1-2-3-1104")]
    assert out["username"][1] == out["display_name"][1] == p.token("person", "g-1")
    text = (
        "Remove CN=Amelia Bevan,OU=West Mercia,DC=alliance,DC=local (Amelia Bevan) from WMP-Finance"
    )
    # a DN in text keeps its structure, never its names
    assert p.text(text) == (
        f"Remove CN={person},OU=West Mercia,DC=alliance,DC=local ({person}) from "
        f"{p.token('group', 'WMP-Finance')}"
    )


def test_shown_accounts_one_token_per_person_and_readable_well_known_groups() -> None:
    """A row never shows one person as two tokens, and Server Operators stays Server
    Operators: Microsoft's group names are nobody's personal data."""
    p = Pseudonymiser(KEY)
    accounts = pl.DataFrame(
        {
            "account_id": ["a-1", "a-2"],
            "username": ["sjones", "pk"],
            "display_name": ["Sam Jones", "P K"],
            "dn": ["CN=Jones\\, Sam,OU=WARKS,DC=alliance,DC=local", None],
        }
    )
    groups = pl.DataFrame(
        {
            "group_id": ["g-1", "g-2", "g-3", "g-4"],
            "name": ["Server Operators", "Domain Admins", "WMP-Firearms", "WMP-TEAM-Custody"],
            "sid": ["S-1-5-32-549", "S-1-5-21-1-2-3-512", "S-1-5-21-1-2-3-1201",
                    "S-1-12-1-1-2-3-4"],
            "dn": ["CN=Server Operators,CN=Builtin,DC=alliance,DC=local", None, None, None],
        }
    )  # fmt: skip
    empty = pl.DataFrame({"finding_key": ["k"], "detail": ["Server Operators holds sjones"]})
    shown = p.shown_tables(
        accounts=accounts, groups=groups, findings=empty, actions=empty, paths=empty
    )
    acc = shown["accounts"]
    sam = p.token("person", "a-1")
    # an id that is not a GUID may hold a name: it is the person token too
    assert acc.row(0) == (sam, sam, sam, f"CN={sam},OU=WARKS,DC=alliance,DC=local")
    assert acc["username"][1] == acc["display_name"][1] == p.token("person", "a-2")
    grp = shown["groups"]
    assert grp["name"].to_list() == [
        "Server Operators",
        "Domain Admins",
        p.token("group", "WMP-Firearms"),
        p.token("group", "WMP-TEAM-Custody"),  # an Entra group's S-1-12-1 SID is its own
    ]
    assert grp["sid"].to_list()[:2] == ["S-1-5-32-549", "S-1-5-21-1-2-3-512"]
    assert grp["dn"][0] == "CN=Server Operators,CN=Builtin,DC=alliance,DC=local"
    assert shown["findings"]["detail"][0] == f"Server Operators holds {sam}"


def test_key_file_is_created_private_outside_the_runs(tmp_path: Path) -> None:
    runs = tmp_path / "data" / "runs"
    key_file = tmp_path / "data" / KEY_FILE
    key = load_key(key_file, runs)
    assert len(key) == 32 and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_key(key_file, runs) == key  # read back, not replaced
    with pytest.raises(ConfigError, match="inside the runs folder"):
        load_key(runs / "x" / KEY_FILE, runs)
    key_file.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        load_key(key_file, runs)


@pytest.fixture(scope="module")
def pseudo_runs(tmp_path_factory: pytest.TempPathFactory) -> list[RunResult]:
    """Two pseudonymised runs of the demo (directory + two application CSV exports)."""
    out = tmp_path_factory.mktemp("pseudo")
    settings = prepare_demo(out, accounts=800, seed=7)
    report = settings.report.model_copy(
        update={"pseudonymise": True, "formats": ["html", "csv", "json", "xlsx"]}
    )
    settings = settings.model_copy(update={"report": report})
    return [run_audit(settings, now=NOW), run_audit(settings, now=NOW.replace(day=2))]


def identifying_values(run: RunResult) -> set[str]:
    """Names, usernames, UPNs, mails, SIDs, DNs and employee ids of the run's directory.

    Microsoft's built-in groups (RID below 1000: "Domain Admins", "Administrators" ...) and
    applications' roles ("Reviewer") are left out: they name no person, stay readable in a
    pseudonymised report, and the rule catalogue's own text mentions such words.
    """
    accounts = read_table(run.run, "accounts")
    groups = read_table(run.run, "groups").filter(
        (pl.col("kind").fill_null("") != "app-role")
        & (
            pl.col("sid").str.extract(r"-(\d+)$", 1).cast(pl.Int64, strict=False).fill_null(9999)
            >= 1000
        )
    )
    values: set[str] = set()
    for df, cols in (
        (accounts, ("username", "display_name", "upn", "mail", "sid", "dn", "employee_id")),
        (groups, ("name", "sid", "dn")),
    ):
        for c in cols:
            values.update(v for v in df[c].drop_nulls().to_list() if len(v) >= 3)
    values.update(accounts["sid_history"].explode().drop_nulls().to_list())
    return values


def leaks(text: str, values: list[str]) -> list[str]:
    """Values found in ``text`` as whole values (not inside a longer word or hex token)."""
    found = pl.Series([text]).str.extract_many(
        values, ascii_case_insensitive=True, overlapping=True
    )
    out = []
    for v in sorted(set(found[0].to_list())):
        if re.search(rf"(?<![0-9A-Za-z]){re.escape(v)}(?![0-9A-Za-z])", text, re.IGNORECASE):
            out.append(v)
    return out


def output_texts(run: RunResult) -> dict[str, str]:
    """Every output file as text (an XLSX: its XML parts), raw and unescaped."""
    texts: dict[str, str] = {}
    for path in sorted(run.run.path.iterdir()):
        if path.suffix == ".parquet":
            continue  # the evidence tables stay raw (owner-only); the outputs are what is shared
        if path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as z:
                raw = "\n".join(z.read(n).decode("utf-8") for n in z.namelist())
        else:
            raw = path.read_text(encoding="utf-8-sig")
        if path.suffix == ".html":  # the page script's tables are compressed: read them too
            raw += "\n" + json.dumps(embed.blocks(raw), ensure_ascii=False)
        texts[path.name] = raw + "\n" + html.unescape(raw) + "\n" + raw.replace('""', '"')
    return texts


def test_no_raw_identifier_in_any_output(pseudo_runs: list[RunResult]) -> None:
    run = pseudo_runs[-1]
    texts = output_texts(run)
    assert {
        "report.html", "findings.csv", "actions.csv", "history.csv", "trend.csv",
        "findings.json", "actions.xlsx", "manifest.json",
    } <= set(texts)  # fmt: skip
    values = sorted(identifying_values(run))
    assert len(values) > 3000
    found = {name: leaks(text, values)[:5] for name, text in texts.items()}
    assert {k: v for k, v in found.items() if v} == {}
    assert "Pseudonymised:" in texts["report.html"]


def test_tokens_are_the_same_in_every_run(pseudo_runs: list[RunResult]) -> None:
    first, second = (
        json.loads((r.run.path / "findings.json").read_text(encoding="utf-8")) for r in pseudo_runs
    )
    keys = [{f["finding_key"] for f in doc["findings"]} for doc in (first, second)]
    assert keys[0] == keys[1]  # same directory, same key: same (pseudonymised) finding keys
    assert (
        pseudo_runs[1].run.manifest["pseudonymised"] == pseudo_runs[0].run.manifest["pseudonymised"]
    )
    # the stored tables stay raw: the history still lines up the two runs
    assert pseudo_runs[1].run.manifest["summary"]["changes"]["persisting"] == len(keys[1])


def test_the_leak_check_finds_names_in_a_plain_run(tmp_path: Path) -> None:
    """The control: the same check on a run that is not pseudonymised finds the names."""
    settings = prepare_demo(tmp_path, accounts=800, seed=7)
    report = settings.report.model_copy(update={"formats": ["html", "csv", "json", "xlsx"]})
    run = run_audit(settings.model_copy(update={"report": report}), now=NOW)
    values = sorted(identifying_values(run))
    texts = output_texts(run)
    expected = {"report.html": 20, "actions.csv": 20, "actions.xlsx": 20, "findings.csv": 1}
    for name, at_least in expected.items():
        assert len(leaks(texts[name], values)) >= at_least, name


def test_report_command_re_renders_a_stored_run_pseudonymised(
    pseudo_runs: list[RunResult], tmp_path: Path
) -> None:
    import subprocess
    import sys

    run = pseudo_runs[0]
    before = {p.name: p.read_bytes() for p in run.run.path.iterdir()}
    p = subprocess.run(
        [sys.executable, "-m", "accessaudit", "report", str(run.run.path), "--pseudonymise"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert p.returncode == 0, p.stderr
    out = tmp_path / f"report-{run.run.run_id}.html"
    assert p.stdout.strip() == str(out)
    text = out.read_text(encoding="utf-8")
    text += "\n" + json.dumps(embed.blocks(text), ensure_ascii=False)
    assert leaks(text + html.unescape(text), sorted(identifying_values(run))) == []
    # the evidence pack written beside it is pseudonymised too (names, matched values, and the
    # configuration's ids / names matchers only as counts)
    pack = (tmp_path / f"report-{run.run.run_id}-evidence-pack.html").read_text(encoding="utf-8")
    assert leaks(pack + html.unescape(pack), sorted(identifying_values(run))) == []
    assert "not shown: pseudonymised" in pack or '"names"' not in json.dumps(
        json.loads((run.run.path / "attribution.json").read_text())
    )
    # the run folder is untouched (runs are immutable) and the same key was used
    assert {q.name: q.read_bytes() for q in run.run.path.iterdir()} == before
    assert run.run.manifest["pseudonymised"]["key_id"] in text
