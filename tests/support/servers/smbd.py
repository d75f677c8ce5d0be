"""A standalone Samba file server (``smbd``) on a loopback address, for the SMB connector.

The AD DC's own SMB service fails every session setup here (research control-and-data-paths
§3.1); a standalone ``smbd`` with ``vfs_acl_xattr`` stores NT ACLs as ``security.NTACL``
blobs, so folders can carry the *domain* SIDs of a test's directory without joining it.
ACLs are planted exactly as Windows stores them (explicit entries, ``ID`` copies on children,
``P`` for a protected DACL) with Samba's own Python bindings (``samba.ntacls.setntacl``, what
``samba-tool ntacl set`` calls), in one system-python process per batch; share permissions with
``sharesec``. Two users: ``root`` (an administrator: smbd checks no ACL for uid 0) and
``nobody`` (an ordinary reader).

Samba's client tools cannot use another port, so the server takes port 445 on a loopback
address claimed like the domain controllers' (:func:`support.servers.samba.free_address`).
``smbd`` starts ``samba-dcerpcd`` (SRVSVC for share permissions) on demand; ``stop`` ends both
by process id (the daemons whose command line names this server's own configuration file).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from support.servers import ServerUnavailable
from support.servers.proc import read_pid, stop_pid, wait_port
from support.servers.samba import free_address, release_address

PASSWORD = "Smb-Test-Passw0rd"
ADMIN, READER = "root", "nobody"
_PACKAGES = "samba smbclient python3-samba"

_PLANT = r"""
import json, sys
from samba import ntacls
from samba.samba3 import param as s3param
from samba.auth_util import system_session_unix
conf, share, domain_sid, spec = sys.argv[1], sys.argv[2], sys.argv[3], json.load(sys.stdin)
lp = s3param.get_context()
lp.load(conf)
session = system_session_unix()
for path, sddl in spec:
    ntacls.setntacl(lp, path, sddl, domain_sid, session, use_ntvfs=False, service=share)
"""


def require_tools() -> None:
    """Fail (never skip) naming the Debian packages when a tool is missing."""
    for tool in ("smbd", "smbpasswd", "sharesec", "smbcacls"):
        if shutil.which(tool) is None:
            raise ServerUnavailable(f"'{tool}' not found: apt-get install -y {_PACKAGES}")
    probe = subprocess.run(
        ["/usr/bin/python3", "-c", "import samba.ntacls"], capture_output=True, check=False
    )
    if probe.returncode:
        raise ServerUnavailable(f"samba's Python bindings missing: apt-get install -y {_PACKAGES}")


@dataclass
class Smbd:
    """One file server in ``folder`` serving ``shares`` (each a folder of the same name)."""

    folder: Path
    shares: tuple[str, ...] = ("data",)
    address: str = ""
    pid: int | None = None
    extra: dict[str, str] = field(default_factory=dict)
    _root: Path | None = None

    @property
    def conf(self) -> Path:
        return self.folder / "smb.conf"

    def share_path(self, share: str) -> Path:
        return self.shares_root / share

    @property
    def shares_root(self) -> Path:
        """Outside pytest's private (0700) temporary tree: ``nobody`` must reach the shares."""
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="accessaudit-smbd-"))
            self._root.chmod(0o755)
        return self._root

    def write_conf(self) -> None:
        d = self.folder
        for sub in ("private", "lock", "state", "cache", "pid", "ncalrpc", "log"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        lines = [
            "[global]",
            "server role = standalone server",
            "workgroup = FILESRV",
            "netbios name = FILESRV",
            f"passdb backend = tdbsam:{d}/private/passdb.tdb",
            *(f"{k} = {d}/{v}" for k, v in (
                ("private dir", "private"), ("lock directory", "lock"),
                ("state directory", "state"), ("cache directory", "cache"),
                ("pid directory", "pid"), ("ncalrpc dir", "ncalrpc"),
                ("log file", "log/log.%m"))),
            f"interfaces = {self.address}/8",
            "bind interfaces only = yes",
            "load printers = no",
            "disable spoolss = yes",
            "vfs objects = acl_xattr",
            "acl_xattr:ignore system acls = yes",
            "map acl inherit = yes",
            "store dos attributes = yes",
            "server signing = mandatory",
            "server min protocol = SMB2_10",
            *(f"{k} = {v}" for k, v in self.extra.items()),
        ]  # fmt: skip
        for share in self.shares:
            self.share_path(share).mkdir(parents=True, exist_ok=True)
            lines += [f"[{share}]", f"path = {self.share_path(share)}", "read only = no"]
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self) -> Smbd:
        require_tools()
        self.address = free_address((445,))
        self.write_conf()
        for user in (ADMIN, READER):
            subprocess.run(
                ["smbpasswd", "-c", str(self.conf), "-a", "-s", user],
                input=f"{PASSWORD}\n{PASSWORD}\n",
                text=True,
                capture_output=True,
                check=True,
            )
        subprocess.run(
            ["smbd", "-s", str(self.conf), "-D", "-l", str(self.folder / "log")], check=True
        )
        self.pid = read_pid(self.folder / "pid" / "smbd.pid")
        wait_port(self.address, 445, 15, "smbd", self.folder / "log" / "log.smbd")
        return self

    def stop(self) -> None:
        pids = [self.pid] if self.pid else []
        pids += _daemons_of(self.conf)
        for pid in dict.fromkeys(pids):
            stop_pid(pid)
        self.pid = None
        release_address(self.address)
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)

    def plant(self, share: str, acls: list[tuple[str, str]], domain_sid: str) -> None:
        """Set each (relative folder, SDDL) as that folder's NT ACL, creating the folder."""
        spec = []
        for rel, sddl in acls:
            path = self.share_path(share) / rel
            path.mkdir(parents=True, exist_ok=True)
            spec.append((str(path), sddl))
        subprocess.run(
            ["/usr/bin/python3", "-c", _PLANT, str(self.conf), share, domain_sid],
            input=json.dumps(spec),
            text=True,
            capture_output=True,
            check=True,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        )

    def share_sddl(self, share: str, sddl: str) -> None:
        subprocess.run(
            ["sharesec", "-s", str(self.conf), share, f"--setsddl={sddl}"],
            capture_output=True,
            check=True,
        )

    def folder_sddl(self, share: str, rel: str) -> str:
        """smbcacls' reading of one folder (a reference reader for the tests)."""
        out = subprocess.run(
            ["smbcacls", "-s", str(self.conf), f"//{self.address}/{share}", rel or "\\",
             "-U", f"{ADMIN}%{PASSWORD}", "--sddl"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return out.stdout.strip()


def _daemons_of(conf: Path) -> list[int]:
    """Process ids of the daemons started for this configuration file (smbd's children and
    the samba-dcerpcd it spawned, which re-parents to init)."""
    needles = (f"--configfile={conf}", f"-s {conf}")
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(n in cmd for n in needles):
            out.append(int(entry.name))
    return out
