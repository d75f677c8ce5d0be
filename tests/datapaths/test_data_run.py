"""A whole run over the three data sources beside a directory: the real smbd, Exchange exports
in the cmdlets' format and the az CLI's JSON, their trustees being the sample directory's
accounts; every cross-force path planted here is found and nothing else (truth computed here)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from support.fixtures import NOW
from support.htmltree import parse
from support.servers.smbd import ADMIN, PASSWORD, Smbd

from accessaudit.config.datasources import AzureSource, ExchangeSource, SmbSource
from accessaudit.config.organisations import Organisation
from accessaudit.pipeline.demo import demo_settings
from accessaudit.pipeline.run import run_audit
from accessaudit.report.datapaths import DATA_RULES
from accessaudit.sample.directory import generate

SEED, ACCOUNTS = 3, 600
WMP_SUB = "00000000-0000-0000-0000-00000000a001"  # West Mercia's path_prefix in the sample


def _people() -> tuple[dict[str, str], dict[str, str], str]:
    """A Warwickshire and a West Mercia officer (id, sid, upn), and the domain SID."""
    sample = generate(seed=SEED, accounts=ACCOUNTS, now=NOW)
    acc = sample.tables["accounts"].filter(pl.col("enabled") & (pl.col("kind") == "user"))
    pick = {
        org: acc.filter(pl.col("upn").str.ends_with(suffix)).sort("account_id").row(0, named=True)
        for org, suffix in (("warks", "@warwickshire.police.uk"), ("wmp", "@westmercia.police.uk"))
    }
    return pick["warks"], pick["wmp"], sample.domain_sid


def _exports(folder: Path, k_upn: str, w_upn: str) -> tuple[Path, Path]:
    def line(cells: list[str]) -> str:
        return ",".join(f'"{c}"' for c in cells)

    head = ["Identity", "DisplayName", "PrimarySmtpAddress", "UserPrincipalName", "Guid"]
    box = ["Duty Inbox", "WMP Duty Inbox", "duty@westmercia.police.uk",
           "duty@westmercia.police.uk", "0b1c2d3e-0000-4000-8000-0000000000d1"]  # fmt: skip
    mailboxes = folder / "mailboxes.csv"
    mailboxes.write_text("\r\n".join(["#TYPE Selected.EXOMailbox", line(head), line(box)]) + "\r\n")
    perms = folder / "perms.csv"
    rows = [
        ["Duty Inbox", k_upn, "FullAccess", "False", "False"],
        ["Duty Inbox", w_upn, "FullAccess", "False", "False"],
        ["Duty Inbox", "NT AUTHORITY\\SELF", "FullAccess;ReadPermission", "False", "False"],
    ]
    head = ["Identity", "User", "AccessRights", "IsInherited", "Deny"]
    perms.write_text("\r\n".join([line(head), *(line(r) for r in rows)]) + "\r\n")
    return mailboxes, perms


def test_a_run_finds_every_data_path_planted_in_the_real_sources(
    smbd: Smbd, tmp_path: Path
) -> None:
    k, w, dom = _people()
    # the file server's "empty" share: West Mercia's, with the Warwickshire officer's modify
    # on Ops (reaching Ops\Cases too) and the West Mercia officer's own read
    owner = f"O:{dom}-512G:{dom}-512"
    inherited = f"(A;OICIID;0x1f01ff;;;{dom}-512)(A;OICIID;0x1200a9;;;{w['sid']})"
    smbd.plant(
        "empty",
        [
            ("", f"{owner}D:PAI(A;OICI;0x1f01ff;;;{dom}-512)(A;OICI;0x1200a9;;;{w['sid']})"),
            ("Ops", f"{owner}D:AI(A;OICI;0x1301bf;;;{k['sid']}){inherited}"),
            ("Ops/Cases", f"{owner}D:AI(A;OICIID;0x1301bf;;;{k['sid']}){inherited}"),
        ],
        dom,
    )
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD)
    mailboxes, perms = _exports(tmp_path, k["upn"], w["upn"])
    az = tmp_path / "az.json"
    az.write_text(
        json.dumps(
            [
                {"principalId": pid, "principalType": "User", "roleDefinitionName": role,
                 "roleDefinitionId": f"/subscriptions/{WMP_SUB}/providers/Microsoft."
                 f"Authorization/roleDefinitions/{rid}", "scope": f"/subscriptions/{WMP_SUB}"}
                for pid, role, rid in (
                    (k["account_id"], "Owner", "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"),
                    (w["account_id"], "Contributor", "b24988ac-6180-42a0-ab88-20f7382dd24c"),
                )
            ],
            indent=2,
        )
    )  # fmt: skip
    base = demo_settings(tmp_path / "demo", accounts=ACCOUNTS, seed=SEED)
    share_path = f"\\\\{smbd.address}\\empty"
    orgs = [
        o.model_copy(
            update={"match": o.match.model_copy(
                update={"path_prefix": [*o.match.path_prefix, share_path]})}
        )
        if o.id == "wmp" else o
        for o in base.organisations
    ]  # fmt: skip
    sources = [
        *base.sources,
        SmbSource(kind="smb", name="fs", server=smbd.address, shares=["empty"],
                  username=ADMIN, password_file=secret),
        ExchangeSource(kind="exchange", name="exo", mailboxes=mailboxes,
                       mailbox_permissions=perms),
        AzureSource(kind="azure", name="az", tenant_id="t1", file=az),
    ]  # fmt: skip
    settings = base.model_copy(update={"sources": sources, "organisations": orgs})
    assert all(isinstance(o, Organisation) for o in settings.organisations)
    result = run_audit(settings, now=NOW)
    assert result.complete
    key = ["rule_id", "account_id", "member_group_id", "resource_id", "right"]
    found = result.analysis.findings.filter(pl.col("rule_id").is_in(DATA_RULES))
    planted_here = [
        ("cross-org-azure-role", k["account_id"], None, f"/subscriptions/{WMP_SUB}", "Owner"),
        ("cross-org-mailbox-access", k["account_id"], None,
         "mailbox:0b1c2d3e-0000-4000-8000-0000000000d1", "FullAccess"),
        ("cross-org-share-access", k["account_id"], None, f"smb://{smbd.address}/empty/Ops",
         "modify"),
    ]  # fmt: skip
    # the sample directory brings its own planted data paths (plants_data) besides
    sample = generate(seed=SEED, accounts=ACCOUNTS, now=NOW).truth
    own = sample.filter(pl.col("plant").str.starts_with("data: ")).select(key).rows()
    assert sorted(found.select(key).rows(), key=str) == sorted(own + planted_here, key=str)
    assert set(found.filter(pl.col("account_id") == k["account_id"])["resource_org"]) == {"wmp"}
    share = result.analysis.grants.filter(
        pl.col("resource_id") == f"smb://{smbd.address}/empty/Ops"
    )
    assert share.select("principal_id", "right", "reach").rows() == [(k["account_id"], "modify", 2)]
    units = {s["name"]: s["complete"] for s in result.run.manifest["sources"]}
    assert units["fs"] and units["exo"] and units["az"]
    # the report's data-paths section shows each with its owner force, escaped as text
    assert result.report is not None
    tree = parse(result.report.read_text(encoding="utf-8"))
    section = next(n for n in tree.iter() if n.attrs.get("id") == "data-evidence")
    rows = [n for n in section.iter() if "data-row" in n.classes()]
    assert len(rows) == len(own) + 3
    ops = next(r for r in rows if f"\\\\{smbd.address}\\empty\\Ops" in r.text())
    data_cell = ops.find_all("td")[3].text().strip()
    assert data_cell.startswith("modify on the other force's folder")
    assert data_cell.endswith("wmp")
