"""Control paths: resolving AD access control entries into grants, and collecting descriptors.

Two parts, each printing objects/s and peak RSS:

- **resolution** (``analysis.control.control_grants``) on synthetic ``resources`` / ``aces``
  tables built here: a domain, one OU per 1,000 objects, 70% users, 20% groups, 10% computers;
  every object has the default entries a DC writes (Domain Admins and SYSTEM full control,
  Authenticated Users read, SELF validated writes, two Pre-Windows 2000 property reads); one OU
  in ten delegates the users' password reset to a group, inherited onto each user below it
  (folded back onto the OU by the analysis); one object in a thousand has an explicit GenericAll
  of another account, one in ten thousand a deny stored before it. ~6 entries per object.
- **collection** (``--samba N``): a Samba DC provisioned with N users in one OU (ldap3 adds as
  Administrator), then the whole AD collection as an ordinary user (accounts, groups,
  memberships, descriptors), its ``security-descriptors`` share of the pages, and the
  resolution of what it read.

    python benchmarks/control.py                     # 100k and 1M objects; Samba 10,000 users
    python benchmarks/control.py --smoke             # 20k objects, no Samba (CI, ~5 s)
    python benchmarks/control.py --sizes 100000 --samba 0
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click
import numpy as np
import polars as pl
from measure import MB, Meter, machine, markdown_table, measured

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the test servers are reused here

from accessaudit.analysis.control import control_grants  # noqa: E402
from accessaudit.model import (  # noqa: E402
    ACCOUNTS_SCHEMA,
    ACES_SCHEMA,
    GROUPS_SCHEMA,
    RESOURCES_SCHEMA,
)
from accessaudit.transport import adschema as g  # noqa: E402

DOM = "S-1-5-21-1000-2000-3000"
CLASSES = np.array(["user", "group", "computer"])


def synthetic(n: int, seed: int = 15) -> dict[str, pl.DataFrame]:
    """``resources``, ``aces``, ``accounts`` and ``groups`` for ``n`` objects (see module)."""
    rng = np.random.default_rng(seed)
    n_ou = max(1, n // 1000)
    ids = pl.Series("resource_id", [f"obj-{i}" for i in range(n)])
    cls = CLASSES[rng.choice(3, size=n, p=[0.7, 0.2, 0.1])]
    ou = rng.integers(0, n_ou, size=n)
    objects = pl.DataFrame(
        {"resource_id": ids, "object_class": cls, "ou": ou, "rid": np.arange(n) + 10_000}
    ).with_columns(
        sid=pl.lit(DOM + "-") + pl.col("rid").cast(pl.String),
        parent_id=pl.lit("ou-") + pl.col("ou").cast(pl.String),
    )
    ous = pl.DataFrame({"ou": np.arange(n_ou)}).with_columns(
        resource_id=pl.lit("ou-") + pl.col("ou").cast(pl.String),
        object_class=pl.lit("organizationalUnit"),
        parent_id=pl.lit("domain"),
    )
    domain = pl.DataFrame(
        {"resource_id": ["domain"], "object_class": ["domainDNS"], "parent_id": [None]},
        schema={"resource_id": pl.String, "object_class": pl.String, "parent_id": pl.String},
    )
    resources = pl.concat(
        [
            domain,
            ous.select("resource_id", "object_class", "parent_id"),
            objects.select("resource_id", "object_class", "parent_id"),
        ]
    ).with_columns(
        source=pl.lit("ad:bench"),
        family=pl.lit("ad-object"),
        path=pl.col("resource_id"),
        name=pl.col("resource_id"),
        subject_id=pl.when(pl.col("object_class").is_in(["user", "group", "computer"])).then(
            pl.col("resource_id")
        ),
        owner_sid=pl.lit(f"{DOM}-512"),
        readable=pl.lit(True),
        linked_to=pl.lit([], pl.List(pl.String)),
    )
    every = resources.select("resource_id")
    default = [
        (f"{DOM}-512", 0xF01FF, 0, None),
        ("S-1-5-18", 0xF01FF, 0, None),
        ("S-1-5-11", 0x20094, 0, None),
        ("S-1-5-10", 0x8, 5, g.DNS_HOST_NAME),
        ("S-1-5-32-554", 0x10, 5, g.ACCOUNT_RESTRICTIONS_SET),
        ("S-1-5-32-554", 0x10, 5, g.PUBLIC_INFORMATION_SET),
    ]
    parts = [
        every.with_columns(
            _o=pl.lit(k),
            trustee_sid=pl.lit(sid),
            mask=pl.lit(mask, pl.Int64),
            ace_type=pl.lit(kind, pl.Int32),
            flags=pl.lit(0, pl.Int32),
            object_type=pl.lit(ot, pl.String),
            inherited_object_type=pl.lit(None, pl.String),
        )
        for k, (sid, mask, kind, ot) in enumerate(default)
    ]
    helpdesk = f"{DOM}-9000"
    delegating = pl.col("ou") % 10 == 0
    parts.append(
        ous.filter(delegating).select(
            "resource_id",
            _o=pl.lit(10),
            trustee_sid=pl.lit(helpdesk),
            mask=pl.lit(0x100, pl.Int64),
            ace_type=pl.lit(5, pl.Int32),
            flags=pl.lit(0x0A, pl.Int32),
            object_type=pl.lit(g.USER_FORCE_CHANGE),
            inherited_object_type=pl.lit(g.USER),
        )
    )
    parts.append(
        objects.filter(delegating & (pl.col("object_class") == "user")).select(
            "resource_id",
            _o=pl.lit(10),
            trustee_sid=pl.lit(helpdesk),
            mask=pl.lit(0x100, pl.Int64),
            ace_type=pl.lit(5, pl.Int32),
            flags=pl.lit(0x12, pl.Int32),
            object_type=pl.lit(g.USER_FORCE_CHANGE),
            inherited_object_type=pl.lit(g.USER),
        )
    )
    explicit = objects.filter(pl.col("rid") % 1000 == 7)
    parts.append(
        explicit.select(
            "resource_id",
            _o=pl.lit(6),
            trustee_sid=pl.lit(DOM + "-") + (pl.col("rid") + 1).cast(pl.String),
            mask=pl.lit(0x10000000, pl.Int64),
            ace_type=pl.lit(0, pl.Int32),
            flags=pl.lit(0, pl.Int32),
            object_type=pl.lit(None, pl.String),
            inherited_object_type=pl.lit(None, pl.String),
        )
    )
    parts.append(
        explicit.filter(pl.col("rid") % 10_000 == 7).select(
            "resource_id",
            _o=pl.lit(5),
            trustee_sid=pl.lit("S-1-1-0"),
            mask=pl.lit(0x100, pl.Int64),
            ace_type=pl.lit(6, pl.Int32),
            flags=pl.lit(0, pl.Int32),
            object_type=pl.lit(g.USER_FORCE_CHANGE),
            inherited_object_type=pl.lit(None, pl.String),
        )
    )
    aces = (
        pl.concat(parts)
        .sort("resource_id", "_o")
        .with_columns(
            seq=pl.int_range(pl.len(), dtype=pl.Int32).over("resource_id"),
            source=pl.lit("ad:bench"),
        )
        .drop("_o")
    )
    accounts = objects.filter(pl.col("object_class") != "group").select(
        "sid", account_id="resource_id"
    )
    groups = pl.concat(
        [
            objects.filter(pl.col("object_class") == "group").select("sid", group_id="resource_id"),
            pl.DataFrame({"sid": [helpdesk], "group_id": ["helpdesk"]}),
        ]
    )
    return {
        "resources": resources.select(RESOURCES_SCHEMA.names()).cast(RESOURCES_SCHEMA),
        "aces": aces.select(ACES_SCHEMA.names()).cast(ACES_SCHEMA),
        "accounts": accounts.select(
            [
                pl.col(c) if c in accounts.columns else pl.lit(None, t).alias(c)
                for c, t in ACCOUNTS_SCHEMA.items()
            ]
        ),
        "groups": groups.select(
            [
                pl.col(c) if c in groups.columns else pl.lit(None, t).alias(c)
                for c, t in GROUPS_SCHEMA.items()
            ]
        ),
    }


def resolve(n: int, meter: Meter) -> dict[str, Any]:
    t0 = time.perf_counter()
    t = synthetic(n)
    built = time.perf_counter() - t0
    with measured(meter) as m:
        grants = control_grants(t["aces"], t["resources"], t["accounts"], t["groups"])
    folded = grants.filter(pl.col("reach").is_not_null())
    return {
        "objects": t["resources"].height,
        "aces": t["aces"].height,
        "built": built,
        "seconds": m.seconds,
        "rate": t["resources"].height / m.seconds,
        "peak": m.peak,
        "grew": m.grew,
        "grants": grants.height,
        "folded": folded.height,
    }


def samba(users: int, meter: Meter) -> dict[str, Any]:
    """Provision a DC with ``users`` users, collect it as an ordinary user, resolve."""
    import ldap3
    from support.servers import load_ad
    from support.servers.samba import ADDRESSES, free_address, provision
    from support.servers.seeded import PASSWORD_ENV

    from accessaudit.config.sources import LdapSource
    from accessaudit.connectors.ldap.acl import collect_acl
    from accessaudit.connectors.ldap.collect import collect
    from accessaudit.connectors.ldap.search import Session
    from accessaudit.loopback_ca import make_pki
    from accessaudit.transport.ldap import connect

    folder = Path(tempfile.mkdtemp(prefix="accessaudit-control-bench-"))
    try:
        pki = make_pki(folder / "pki", ips=ADDRESSES, dns=("dc1.alliance.local",))
        t0 = time.perf_counter()
        dc = provision(folder / "dc", pki, free_address())
        dc.start()
        try:
            conn = load_ad.admin_connection(dc)
            base = "DC=alliance,DC=local"
            conn.add(f"OU=Bench,{base}", "organizationalUnit")
            for i in range(users):
                conn.add(f"CN=u{i:06d},OU=Bench,{base}", "user", {"sAMAccountName": f"u{i:06d}"})
            conn.unbind()
            load_ad.add_bind_user(dc, "auditor")
            seeded = time.perf_counter() - t0
            os.environ[PASSWORD_ENV] = load_ad.BIND_PASSWORD
            src = LdapSource.model_validate(
                {
                    "kind": "ldap",
                    "name": "bench",
                    "servers": [dc.ldaps_url],
                    "base_dn": base,
                    "bind_dn": "auditor@alliance.local",
                    "password_env": PASSWORD_ENV,
                    "ca_file": str(pki.ca_file),
                    "receive_timeout": 300,
                }
            )
            with measured(meter) as m:
                c = collect(src)
            units = {u.name: u for u in c.units}
            res, aces = c.table("resources"), c.table("aces")
            # the descriptors alone: one paged search and the parse, on a connection of its own
            conn, url = connect(src, load_ad.BIND_PASSWORD, deadline=time.monotonic() + 600)
            session = Session(conn, src, url, time.monotonic() + 600)
            with measured(meter) as d:
                collect_acl(session, "ad:alliance.local")
            conn.unbind()
            with measured(meter) as r:
                control_grants(aces, res, c.table("accounts"), c.table("groups"))
        finally:
            dc.stop()
        del ldap3
        return {
            "users": users,
            "seeded": seeded,
            "objects": res.height,
            "aces": aces.height,
            "collect": m.seconds,
            "collect_rate": res.height / m.seconds,
            "collect_peak": m.peak,
            "sd_unit": units["security-descriptors"].detail,
            "descriptors": d.seconds,
            "resolve": r.seconds,
            "resolve_peak": r.peak,
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@click.command()
@click.option("--smoke", is_flag=True, help="20k objects, no Samba (CI).")
@click.option("--sizes", default="100000,1000000", show_default=True, help="Synthetic objects.")
@click.option(
    "--samba",
    "samba_users",
    default=10_000,
    show_default=True,
    help="Users to seed into Samba (0: skip).",
)
def main(smoke: bool, sizes: str, samba_users: int) -> None:
    """Resolution of AD access control entries (synthetic) and descriptor collection (Samba)."""
    if smoke:
        sizes, samba_users = "20000", 0  # provisioning Samba alone takes 10-40 s
    meter = Meter()
    print(f"# control paths ({machine()}; memory: {meter.method})\n")
    rows = []
    for n in (int(s) for s in sizes.split(",")):
        r = resolve(n, meter)
        rows.append(
            (
                f"{r['objects']:,}",
                f"{r['aces']:,}",
                f"{r['seconds']:.2f}",
                f"{r['rate']:,.0f}",
                f"{r['peak'] / MB:,.0f}",
                f"{r['grew'] / MB:,.0f}",
                f"{r['grants']:,}",
                f"{r['folded']:,}",
            )
        )
    print("Resolution (analysis.control.control_grants) on synthetic tables:\n")
    head = ("objects", "ACEs", "seconds", "objects/s", "peak MB", "+MB", "grants", "folded")
    print(markdown_table(head, rows, right=range(8)))
    if samba_users:
        s = samba(samba_users, meter)
        print(
            f"\nSamba collection as an ordinary user ({s['users']:,} users seeded in "
            f"{s['seeded']:.0f} s; {s['sd_unit']}):\n"
        )
        head = (
            "objects",
            "ACEs",
            "collect s",
            "objects/s",
            "peak MB",
            "descriptors s",
            "resolve s",
            "peak MB",
        )
        print(
            markdown_table(
                head,
                [
                    (
                        f"{s['objects']:,}",
                        f"{s['aces']:,}",
                        f"{s['collect']:.2f}",
                        f"{s['collect_rate']:,.0f}",
                        f"{s['collect_peak'] / MB:,.0f}",
                        f"{s['descriptors']:.2f}",
                        f"{s['resolve']:.2f}",
                        f"{s['resolve_peak'] / MB:,.0f}",
                    )
                ],
                right=range(8),
            )
        )


if __name__ == "__main__":
    main()
