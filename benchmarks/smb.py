"""SMB collection: a share of N folders on a real smbd, our walk against reference walks.

The share is seeded locally in a temporary directory served by a standalone ``smbd`` on
loopback (the test suite's ``support.servers.smbd``): three levels, 10 x 10 x N/100 folders,
each with the NT ACL Windows would store: the root's explicit entries (Domain Admins full
control, Everyone read), one first-level folder with an extra modify entry of another
domain's account inherited by its whole subtree, one leaf with an explicit entry of its own;
every other folder carries the inherited copies (``ID``). The ACL blobs are written once with
Samba's ``setntacl`` and copied to each folder as the ``security.NTACL`` xattr.

Measured, each in this process (wall, CPU, peak RSS above the start):

- **ours**: ``connectors.smb.collect`` as an administrator: every folder's owner and DACL (one
  related compound per folder), the share permissions, the folding;
- **listing**: smbprotocol's plain recursive listing (``smbclient.scandir``, names only): what
  the same library costs without descriptors;
- **smbcacls**: Samba's own reader of one folder's descriptor (one process per folder) on a
  sample of folders, extrapolated to the share.

    python benchmarks/smb.py               # 100,000 folders
    python benchmarks/smb.py --smoke       # 610 folders (CI, ~25 s under load)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import smbclient
from measure import MB, Meter, machine, markdown_table, measured

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the test servers are reused here

from support.servers.smbd import ADMIN, PASSWORD, Smbd  # noqa: E402

from accessaudit.config.datasources import SmbSource  # noqa: E402
from accessaudit.connectors.smb.collect import collect  # noqa: E402

D = "S-1-5-21-1000-2000-3000"
OTHER = "S-1-5-21-4000-5000-6000-1107"  # the other force's account
OWNER = f"O:{D}-512G:{D}-512"
ROOT_ACL = f"{OWNER}D:PAI(A;OICI;0x1f01ff;;;{D}-512)(A;OICI;0x1200a9;;;WD)"
INHERITED = f"(A;OICIID;0x1f01ff;;;{D}-512)(A;OICIID;0x1200a9;;;WD)"
PLAIN = f"{OWNER}D:AI{INHERITED}"
BRANCH = f"{OWNER}D:AI(A;OICI;0x1301bf;;;{OTHER}){INHERITED}"
BRANCH_CHILD = f"{OWNER}D:AI(A;OICIID;0x1301bf;;;{OTHER}){INHERITED}"
LEAF = f"{OWNER}D:AI(A;OICI;0x1200a9;;;{D}-2345){INHERITED}"


def seed(server: Smbd, share: str, leaves: int) -> int:
    """The three-level tree (10 x 10 x ``leaves``); returns the number of folders."""
    base = server.share_path(share)
    templates = {"plain": PLAIN, "branch": BRANCH, "branch-child": BRANCH_CHILD, "leaf": LEAF}
    server.plant(share, [("", ROOT_ACL), *((f".t-{k}", v) for k, v in templates.items())], D)
    blobs = {k: os.getxattr(base / f".t-{k}", "security.NTACL") for k in templates}
    for k in templates:
        (base / f".t-{k}").rmdir()
    count = 0
    for a in range(10):
        top = base / f"unit{a:02d}"
        top.mkdir()
        os.setxattr(top, "security.NTACL", blobs["branch" if a == 3 else "plain"])
        inner = "branch-child" if a == 3 else "plain"
        count += 1
        for b in range(10):
            mid = top / f"team{b:02d}"
            mid.mkdir()
            os.setxattr(mid, "security.NTACL", blobs[inner])
            count += 1
            for c in range(leaves):
                leaf = mid / f"case{c:05d}"
                leaf.mkdir()
                special = a == 7 and b == 7 and c == 7
                os.setxattr(leaf, "security.NTACL", blobs["leaf" if special else inner])
                count += 1
    for path in (base, *base.rglob("*")):
        path.chmod(0o755)
    return count + 1


def reference_listing(address: str, share: str) -> int:
    smbclient.register_session(address, username=ADMIN, password=PASSWORD, auth_protocol="ntlm")
    stack, seen = [rf"\\{address}\{share}"], 0
    while stack:
        path = stack.pop()
        for entry in smbclient.scandir(path):
            if entry.is_dir():
                seen += 1
                stack.append(entry.path)
    smbclient.reset_connection_cache()
    return seen + 1


def smbcacls_sample(server: Smbd, share: str, n: int) -> float:
    """Seconds per folder of ``smbcacls --sddl`` (one process per folder, as it is used)."""
    started = time.perf_counter()
    for i in range(n):
        rel = f"unit{i % 10:02d}/team{i % 10:02d}"
        subprocess.run(
            ["smbcacls", "-s", str(server.conf), f"//{server.address}/{share}", rel,
             "-U", f"{ADMIN}%{PASSWORD}", "--sddl"],
            capture_output=True, check=True,
        )  # fmt: skip
    return (time.perf_counter() - started) / n


@click.command()
@click.option("--folders", default=100_000, show_default=True, help="about this many folders")
@click.option("--smoke", is_flag=True, help="about 600 folders, for CI")
def main(folders: int, smoke: bool) -> None:
    folders = 500 if smoke else folders
    leaves = max(1, folders // 100)
    work = Path(tempfile.mkdtemp(prefix="accessaudit-bench-smb-"))
    server = Smbd(work, shares=("bench",)).start()
    try:
        t0 = time.perf_counter()
        n = seed(server, "bench", leaves)
        seeded = time.perf_counter() - t0
        secret = work / "pw"
        secret.write_text(PASSWORD)
        secret.chmod(0o600)
        cfg = SmbSource(
            kind="smb", name="bench", server=server.address, shares=["bench"], username=ADMIN,
            password_file=secret, depth=3,
        )  # fmt: skip
        meter = Meter()
        with measured(meter) as ours:
            got = collect(cfg)
        with measured(meter) as listing:
            listed = reference_listing(server.address, "bench")
        per_call = smbcacls_sample(server, "bench", 5 if smoke else 20)
        grants = got.table("grants").filter(got.table("grants")["resource_kind"] == "folder")
        unit = got.units[0]
        print(f"\n## SMB walk, {n:,} folders ({machine()})\n")
        print(f"seeded locally in {seeded:.1f} s; our walk read {unit.count:,} objects "
              f"(complete: {unit.complete}); the listing saw {listed:,} folders")  # fmt: skip
        print(f"{n * 2:,} inherited or explicit entries stored, folded to {grants.height} "
              "grants where they are set")  # fmt: skip
        rows = [
            ("ours: descriptors + share permissions + folding", ours.seconds, ours.cpu,
             ours.grew),
            ("smbprotocol listing only (smbclient.scandir)", listing.seconds, listing.cpu,
             listing.grew),
            ("smbcacls --sddl, one process per folder (extrapolated)", per_call * n, None, None),
        ]  # fmt: skip
        print(
            markdown_table(
                ["walk", "wall s", "CPU s", "+MB", "folders/s"],
                [
                    (
                        name,
                        f"{s:.2f}",
                        "" if c is None else f"{c:.2f}",
                        "" if m is None else f"{m / MB:.0f}",
                        f"{n / s:,.0f}",
                    )
                    for name, s, c, m in rows
                ],
                right=(1, 2, 3, 4),
            )
        )
        print(f"\nratio ours / listing: {ours.seconds / listing.seconds:.2f}; "
              f"smbcacls / ours: {per_call * n / ours.seconds:.1f}")  # fmt: skip
    finally:
        server.stop()
        subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
