"""Data paths of the sample: the hosted file shares, mailboxes and Azure subscriptions, with
their planted truth.

West Mercia hosts the services: a file server (``fs1.alliance.local``) with one share per force
(``wmp$``, ``warks$``, attributed by the organisations' ``path_prefix``), Exchange Online
mailboxes (attributed by ``mail_domain`` on their address, or their account), one Azure
subscription per force (``path_prefix`` on the ARM scope). Rows are what the connectors give
once trustees are resolved: folder entries folded to where they are set, with their reach.

Cases, each recorded as truth when planted:

1. **a cross-force folder deep in the tree**: a Warwickshire officer with modify on
   ``wmp$\\Intelligence\\Operations\\2026\\Op Kestrel`` (reaching its Evidence folder too)
   -> cross-org-share-access;
2. **a read**: another Warwickshire officer reading ``wmp$\\HR`` -> cross-org-share-read;
3. **a deny**: Warwickshire's ICT group *denied* modify on ``wmp$\\Intelligence\\Restricted``:
   a deny is no access, nothing is reported;
4. **a shared mailbox with the other force's FullAccess**: Warwickshire's ICT group on West
   Mercia's intelligence desk -> cross-org-mailbox-access (for every member);
5. **a calendar delegation**: a Warwickshire officer editing a West Mercia officer's calendar
   -> cross-org-mailbox-read;
6. **an Owner on a subscription**: a Warwickshire officer Owner of West Mercia's subscription
   -> cross-org-azure-role;
7. **a Reader**: another Warwickshire officer Reader on West Mercia's resource group
   -> cross-org-azure-reader.

Legitimate and not reported: each force's own groups on its own share, mailbox and
subscription; Domain Admins (the host's) on the file server; Everyone's read on the shares (a
well-known SID no organisation holds). People come from the plant's own generator among staff
no other plant uses, so every earlier draw is unchanged.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

import numpy as np
import polars as pl

from accessaudit.model import GRANTS_SCHEMA, RESOURCES_SCHEMA, ResourceKind, conform
from accessaudit.sample.builder import FORCES, Builder
from accessaudit.sample.plants_control import _clean

WMP, WARKS = FORCES
FILE_SERVER: Final = "fs1.alliance.local"
SMB_SOURCE: Final = f"smb:{FILE_SERVER}"
EXO_SOURCE: Final = "exchange:alliance"
AZURE_SOURCE: Final = "azure:alliance"
SHARES: Final = {WMP.id: "wmp$", WARKS.id: "warks$"}
SUBSCRIPTIONS: Final = {
    WMP.id: "00000000-0000-0000-0000-00000000a001",
    WARKS.id: "00000000-0000-0000-0000-00000000a002",
}
EVERYONE: Final = "S-1-1-0"
ICT: Final = "DEPT-ICT"
DEEP: Final = "Intelligence\\Operations\\2026\\Op Kestrel"


def data_path_prefixes(org: str) -> list[str]:
    """An organisation's ``path_prefix`` matchers: its share and its subscription."""
    return [f"\\\\{FILE_SERVER}\\{SHARES[org]}", f"/subscriptions/{SUBSCRIPTIONS[org]}"]


class _Data:
    def __init__(self) -> None:
        self.resources: list[dict[str, Any]] = []
        self.grants: list[dict[str, Any]] = []

    def folder(self, org: str, rel: str, *, family: str = "folder") -> str:
        """A folder (``rel`` relative to the share's root, ``""`` the root) or the share itself,
        with the ids the SMB connector gives them."""
        base = f"smb://{FILE_SERVER}/{SHARES[org]}"
        rid = base if family == "share" else f"{base}/" + rel.replace("\\", "/")
        up = rel.rpartition("\\")[0]
        parent = (
            None if family == "share" else base if not rel else f"{base}/" + up.replace("\\", "/")
        )
        unc = f"\\\\{FILE_SERVER}\\{SHARES[org]}" + (f"\\{rel}" if rel else "")
        name = rel.rpartition("\\")[2] or SHARES[org]
        self.resources.append(
            {"source": SMB_SOURCE, "resource_id": rid, "family": family, "object_class": family,
             "name": name, "path": unc, "parent_id": parent, "readable": True}
        )  # fmt: skip
        return rid

    def grant(self, source: str, principal: str, resource: str, kind: str, right: str,
              reach: int = 1, deny: bool = False) -> None:  # fmt: skip
        self.grants.append(
            {"source": source, "principal_id": principal, "resource_id": resource,
             "resource_kind": kind, "right": right, "deny": deny, "inherited": False,
             "reach": reach}
        )  # fmt: skip

    def other(self, source: str, rid: str, family: str, cls: str, name: str, path: str,
              parent: str | None = None, subject: str | None = None) -> str:  # fmt: skip
        self.resources.append(
            {"source": source, "resource_id": rid, "family": family, "object_class": cls,
             "name": name, "path": path, "parent_id": parent, "subject_id": subject,
             "readable": True}
        )  # fmt: skip
        return rid


def _shares(d: _Data, admins: str, gid: dict[str, str], k_deep: str, k_read: str) -> None:
    folder, smb = ResourceKind.FOLDER.value, ResourceKind.SHARE.value
    tree = ["", "Intelligence", "Intelligence\\Operations", "Intelligence\\Operations\\2026",
            DEEP, f"{DEEP}\\Evidence", "Intelligence\\Restricted", "HR"]  # fmt: skip
    share = d.folder(WMP.id, "", family="share")
    ids = {rel: d.folder(WMP.id, rel) for rel in tree}
    for holder, right in ((admins, "full control"), (EVERYONE, "read")):
        d.grant(SMB_SOURCE, holder, share, smb, right)
        d.grant(SMB_SOURCE, holder, ids[""], folder, right, reach=len(tree))
    d.grant(SMB_SOURCE, gid[f"{WMP.prefix}{ICT}"], ids["Intelligence"], folder, "modify", reach=6)
    d.grant(SMB_SOURCE, k_deep, ids[DEEP], folder, "modify", reach=2)  # (1)
    d.grant(SMB_SOURCE, k_read, ids["HR"], folder, "read")  # (2)
    restricted = ids["Intelligence\\Restricted"]
    d.grant(SMB_SOURCE, gid[f"{WARKS.prefix}{ICT}"], restricted, folder, "modify", deny=True)  # (3)
    own = d.folder(WARKS.id, "")
    d.folder(WARKS.id, "", family="share")
    d.grant(SMB_SOURCE, gid[f"{WARKS.prefix}{ICT}"], own, folder, "modify")


def _control_accounts(b: Builder) -> set[str]:
    out: set[str] = set()
    for df in b.truth_ids:
        if "account_id" in df.columns and df["plant"].str.starts_with("control:").all():
            out.update(df["account_id"].drop_nulls().to_list())
    return out


def _truth(b: Builder, rule: str, plant: str, **ids: str) -> None:
    b.plant_ids(rule, f"data: {plant}", pl.DataFrame({k: [v] for k, v in ids.items()}))


def plant_data(
    b: Builder,
    tables: dict[str, pl.DataFrame],
    people: pl.DataFrame,
    taken: set[str],
    gen: np.random.Generator,
) -> dict[str, pl.DataFrame]:
    """``tables``' resources and grants with the data paths above added."""
    gid = dict(zip(tables["groups"]["name"], tables["groups"]["group_id"], strict=True))
    # the control plants' people too (not the applications' or the tenant's: the directory is
    # the same with or without them)
    taken = taken | _control_accounts(b)
    wmp = _clean(people, WMP.id, taken, WMP.ou)
    warks = _clean(people, WARKS.id, taken, WARKS.ou)
    k_deep, k_read, k_cal, k_owner, k_reader = warks[
        gen.choice(warks.height, size=5, replace=False).tolist()
    ]["account_id"].to_list()
    w_cal = wmp.row(int(gen.integers(wmp.height)), named=True)
    d = _Data()
    _shares(d, gid["Domain Admins"], gid, k_deep, k_read)
    deep = f"smb://{FILE_SERVER}/{SHARES[WMP.id]}/" + DEEP.replace("\\", "/")
    hr = f"smb://{FILE_SERVER}/{SHARES[WMP.id]}/HR"
    _truth(b, "cross-org-share-access", "a folder deep in the other force's share",
           account_id=k_deep, resource_id=deep, right="modify")  # fmt: skip
    _truth(b, "cross-org-share-read", "reads the other force's HR folder",
           account_id=k_read, resource_id=hr, right="read")  # fmt: skip

    mb, exo = ResourceKind.MAILBOX.value, EXO_SOURCE
    desk_id = f"mailbox:{uuid.uuid5(uuid.NAMESPACE_URL, 'intel.desk')}"
    desk = d.other(exo, desk_id, "mailbox", "SharedMailbox", "WMP Intelligence Desk",
                   f"intel.desk@{WMP.mail_domain}")  # fmt: skip
    d.grant(exo, gid[f"{WMP.prefix}{ICT}"], desk, mb, "FullAccess")
    k_ict = gid[f"{WARKS.prefix}{ICT}"]
    d.grant(exo, k_ict, desk, mb, "FullAccess")  # (4)
    _truth(b, "cross-org-mailbox-access", "the other force's FullAccess on a shared mailbox",
           member_group_id=k_ict, resource_id=desk, right="FullAccess")  # fmt: skip
    mailbox = d.other(exo, f"mailbox:{w_cal['account_id']}", "mailbox", "UserMailbox",
                      str(w_cal["display_name"]), str(w_cal["upn"]).lower(),
                      subject=w_cal["account_id"])  # fmt: skip
    d.grant(exo, k_cal, mailbox, mb, "Folder Calendar: Editor")  # (5)
    _truth(b, "cross-org-mailbox-read", "edits the other force's calendar",
           account_id=k_cal, resource_id=mailbox, right="Folder Calendar: Editor")  # fmt: skip

    az = ResourceKind.AZURE_SCOPE.value
    subs = {}
    for org, sub in SUBSCRIPTIONS.items():
        subs[org] = d.other(AZURE_SOURCE, f"/subscriptions/{sub}", "azure-scope", "subscription",
                            sub, f"/subscriptions/{sub}")  # fmt: skip
    rg = d.other(AZURE_SOURCE, f"{subs[WMP.id]}/resourcegroups/intel-rg", "azure-scope",
                 "resourceGroup", "Intel-RG", f"{subs[WMP.id]}/resourceGroups/Intel-RG",
                 parent=subs[WMP.id])  # fmt: skip
    d.grant(AZURE_SOURCE, gid[f"{WMP.prefix}{ICT}"], rg, az, "Contributor")
    d.grant(AZURE_SOURCE, gid[f"{WARKS.prefix}{ICT}"], subs[WARKS.id], az, "Contributor")
    d.grant(AZURE_SOURCE, k_owner, subs[WMP.id], az, "Owner")  # (6)
    _truth(b, "cross-org-azure-role", "Owner of the other force's subscription",
           account_id=k_owner, resource_id=subs[WMP.id], right="Owner")  # fmt: skip
    d.grant(AZURE_SOURCE, k_reader, rg, az, "Reader")  # (7)
    _truth(b, "cross-org-azure-reader", "Reader on the other force's resource group",
           account_id=k_reader, resource_id=rg, right="Reader")  # fmt: skip
    resources = pl.DataFrame(d.resources, schema=RESOURCES_SCHEMA, strict=False)
    grants = pl.DataFrame(d.grants, schema=GRANTS_SCHEMA, strict=False)
    return {
        "resources": pl.concat([tables["resources"], conform(resources, RESOURCES_SCHEMA)]),
        "grants": pl.concat([tables["grants"], conform(grants, GRANTS_SCHEMA)]),
    }
