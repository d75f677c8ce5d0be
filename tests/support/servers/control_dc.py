"""Plant access control entries and owners on a running Samba DC, as an administrator would.

``samba-tool dsacl set`` prepends the entries given in SDDL (Samba keeps the order it is given:
a deny set after an allow is stored first); an owner is changed with ``ldbmodify`` and the
SD-flags control at 0x01, which changes the owner only (without it Samba rebuilds the DACL from
the class default). Both over ``ldap://`` with ``ALLIANCE\\Administrator``: the tools take the
workgroup from the name, not from the host's smb.conf.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from support.servers.samba import ADMIN_PASSWORD, DOMAIN, SambaDC


def _admin() -> str:
    return f"{DOMAIN}\\Administrator%{ADMIN_PASSWORD}"


def _run(cmd: list[str], what: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed: {(done.stderr or done.stdout).strip()[-400:]}")
    return done.stdout


def dsacl(dc: SambaDC, dn: str, sddl: str) -> None:
    """Prepend the ACEs of ``sddl`` (``(A;;...)(OA;...)``) to the DACL of ``dn``."""
    _run(
        [
            "samba-tool",
            "dsacl",
            "set",
            "-H",
            dc.ldap_url,
            "-U",
            _admin(),
            "-s",
            str(dc.conf),
            f"--objectdn={dn}",
            f"--sddl={sddl}",
        ],
        f"samba-tool dsacl set on {dn}",
    )


def replication(dc: SambaDC, domain_dn: str, trustee_dn: str) -> None:
    """DS-Replication-Get-Changes and -Get-Changes-All for ``trustee_dn`` (DCSync)."""
    for right in ("get-changes", "get-changes-all"):
        _run(
            [
                "samba-tool",
                "dsacl",
                "set",
                "-H",
                dc.ldap_url,
                "-U",
                _admin(),
                "-s",
                str(dc.conf),
                f"--objectdn={domain_dn}",
                f"--car={right}",
                "--action=allow",
                f"--trusteedn={trustee_dn}",
            ],
            f"samba-tool dsacl set --car={right}",
        )


def set_owner(dc: SambaDC, dn: str, owner_sid: str) -> None:
    """Make ``owner_sid`` the owner of ``dn`` (the owner only: SD flags 0x01)."""
    ldif = dc.folder / "owner.ldif"
    ldif.write_text(
        f"dn: {dn}\nchangetype: modify\nreplace: nTSecurityDescriptor\n"
        f"nTSecurityDescriptor: O:{owner_sid}\n",
        encoding="utf-8",
    )
    out = _run(
        [
            "ldbmodify",
            "-H",
            dc.ldap_url,
            "-U",
            _admin(),
            f"--configfile={dc.conf}",
            "--controls=sd_flags:1:1",
            str(Path(ldif)),
        ],
        f"ldbmodify owner of {dn}",
    )
    if "Modified 1 records" not in out:
        raise RuntimeError(f"ldbmodify owner of {dn}: {out.strip()}")
