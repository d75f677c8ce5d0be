"""A Samba Active Directory domain controller in a temporary directory, on a loopback address.

Measured commands: /work/shared/research/directory-servers.md §1. Samba cannot change its LDAP
ports, so several domain controllers run side by side on different loopback addresses
(``interfaces = 127.0.0.N/8``). Always ``-l DIR/log`` so nothing is written to /var/log/samba.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from accessaudit.loopback_ca import Pki
from support.servers import ServerUnavailable
from support.servers.proc import alive, port_free, read_pid, stop_pid, wait_port

REALM = "ALLIANCE.LOCAL"
DOMAIN = "ALLIANCE"
BASE_DN = "DC=alliance,DC=local"
ADMIN_PASSWORD = "Adm1n!Passw0rd-Test"
AD_PORTS = (389, 636, 88, 464, 3268, 3269)
#: loopback addresses the test PKI certificate names; a DC takes the first free one.
ADDRESSES = tuple(f"127.0.0.{n}" for n in range(1, 9))

_PACKAGES = "samba samba-ad-dc samba-ad-provision winbind ldb-tools"


def require_tools() -> None:
    """Fail (never skip) with the Debian packages to install when a Samba tool is missing."""
    for tool, package in (
        ("samba-tool", "samba"),
        ("samba", "samba-ad-dc"),
        ("ldbmodify", "ldb-tools"),
        ("ldbsearch", "ldb-tools"),
    ):
        if shutil.which(tool) is None:
            raise ServerUnavailable(
                f"'{tool}' not found: install the Debian package {package} "
                f"(apt-get install -y --no-install-recommends {_PACKAGES})"
            )
    if not Path("/usr/share/samba/setup").exists():
        raise ServerUnavailable(
            "Samba provisioning templates missing: install the Debian package samba-ad-provision"
        )


#: Several test sessions (other checkouts, other engineers) may start domain controllers on this
#: machine at the same time; a free port seen by one can be taken by another before samba binds
#: it (samba then logs "failed to bind" and the tests talk to the other session's DC). An
#: address is therefore *claimed* with an exclusive ``flock`` held until the DC stops (or the
#: process dies: the kernel drops the lock).
_LOCKS = Path(tempfile.gettempdir()) / "accessaudit-test-addresses"
_HELD: dict[str, int] = {}


def free_address(ports: tuple[int, ...] = AD_PORTS) -> str:
    """Claim the first loopback address of :data:`ADDRESSES` that no other session holds and on
    which every port in ``ports`` is free; :func:`release_address` (or ``SambaDC.stop``) frees it.
    """
    for address in ADDRESSES:
        if address not in _HELD and claim_address(address):
            if all(port_free(address, p) for p in ports):
                return address
            release_address(address)
    raise ServerUnavailable(f"no free loopback address among {ADDRESSES} for ports {ports}")


def claim_address(address: str) -> bool:
    """Take the exclusive claim on ``address``; False when another session holds it."""
    if address in _HELD:
        return True
    _LOCKS.mkdir(exist_ok=True)
    fd = os.open(_LOCKS / f"{address}.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    _HELD[address] = fd
    return True


def release_address(address: str) -> None:
    """Give up the claim on ``address`` taken by :func:`free_address` (no-op if not held)."""
    fd = _HELD.pop(address, None)
    if fd is not None:
        os.close(fd)


@dataclass
class SambaDC:
    """One domain controller directory; ``start``/``stop`` run it on ``address``."""

    folder: Path
    address: str
    pki: Pki
    pid: int | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        return self.folder / "etc" / "smb.conf"

    @property
    def sam(self) -> Path:
        return self.folder / "private" / "sam.ldb"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://{self.address}:636"

    @property
    def ldap_url(self) -> str:
        return f"ldap://{self.address}:389"

    def start(self, timeout: float = 30.0) -> None:
        started = time.monotonic()
        (self.folder / "run").mkdir(exist_ok=True)
        (self.folder / "log").mkdir(exist_ok=True)
        pidfile = self.folder / "run" / "samba.pid"
        pidfile.unlink(missing_ok=True)
        cmd = ["samba", "-s", str(self.conf), "-M", "single", "-D", "-l", str(self.folder / "log")]
        if not claim_address(self.address):
            raise ServerUnavailable(f"{self.address} is claimed by another test session")
        busy = [p for p in AD_PORTS if not port_free(self.address, p)]
        if busy:
            release_address(self.address)
            raise ServerUnavailable(f"ports {busy} of {self.address} are taken by another process")
        log = self.folder / "log" / "log.samba"
        offset = log.stat().st_size if log.exists() else 0
        subprocess.run(cmd, check=True, capture_output=True, timeout=timeout)
        self.pid = read_pid(pidfile)
        wait_port(self.address, 636, timeout, "samba", log)
        wait_port(self.address, 389, timeout, "samba", log)
        # Another process may still have taken a port in the meantime: never test against it.
        text = ""
        if log.exists():
            with log.open("rb") as fh:
                fh.seek(offset)
                text = fh.read().decode(errors="replace")
        if "failed to bind" in text:
            self.stop()
            line = next(ln for ln in text.splitlines() if "failed to bind" in ln)
            raise RuntimeError(f"samba on {self.address}: {line.strip()}")
        self.timings["start"] = time.monotonic() - started

    def stop(self) -> None:
        if self.pid is not None:
            stop_pid(self.pid)
            self.pid = None
        release_address(self.address)

    @property
    def running(self) -> bool:
        return self.pid is not None and alive(self.pid)

    def copy(self, folder: Path, address: str, pki: Pki | None = None) -> SambaDC:
        """A copy of this (stopped) directory at ``folder`` that will listen on ``address``
        (and present ``pki``'s certificate instead of this one's, when given)."""
        if self.running:
            raise RuntimeError("stop the domain controller before copying its directory")
        subprocess.run(["cp", "-a", str(self.folder), str(folder)], check=True)
        conf = folder / "etc" / "smb.conf"
        text = conf.read_text().replace(str(self.folder), str(folder))
        text = text.replace(f"interfaces = {self.address}/8", f"interfaces = {address}/8")
        if pki is not None:
            for old, new in ((self.pki.key_file, pki.key_file), (self.pki.cert_file, pki.cert_file),
                             (self.pki.ca_file, pki.ca_file)):  # fmt: skip
                text = text.replace(f"= {old}", f"= {new}")
        conf.write_text(text)
        for stale in (folder / "run").glob("*.pid"):
            stale.unlink()
        return SambaDC(folder=folder, address=address, pki=pki or self.pki)

    def set_global(self, option: str, value: str) -> None:
        """Set ``option`` in smb.conf's [global] section (takes effect at the next start)."""
        lines = [ln for ln in self.conf.read_text().splitlines()
                 if ln.strip().partition("=")[0].strip().lower() != option.lower()]  # fmt: skip
        at = lines.index("[global]") + 1
        lines.insert(at, f"\t{option} = {value}")
        self.conf.write_text("\n".join(lines) + "\n")

    def ldbmodify(self, ldif: str, records: int, controls: tuple[str, ...] = ()) -> None:
        """Apply LDIF locally to sam.ldb (sIDHistory and other attributes LDAP refuses), with
        ldb ``controls`` (e.g. ``local_oid:<oid>:0``).

        ldbmodify exits 0 even when it silently skips a record (e.g. a SID sub-authority above
        2**32), so the count it reports must equal ``records``.
        """
        # 120 s was too short at 100k accounts (a 1.1 GB sam.ldb, measured): scale with records
        timeout = 120 + 0.02 * records
        out = self._ldb("ldbmodify", ldif, *(f"--controls={c}" for c in controls), timeout=timeout)
        if f"Modified {records} records" not in out:
            raise RuntimeError(
                f"ldbmodify: expected {records} modified records, got: {out.strip()}"
            )

    def ldbadd_provision(self, ldif: str) -> None:
        """Add entries locally with the provision control (e.g. foreignSecurityPrincipal)."""
        self._ldb("ldbadd", ldif, "--controls=provision:0")

    def _ldb(self, tool: str, ldif: str, *extra: str, timeout: float = 120) -> str:
        path = self.folder / f"{tool}.ldif"
        path.write_text(ldif, encoding="utf-8")
        cmd = [tool, *extra, "-H", str(self.sam), f"--configfile={self.conf}", str(path)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout


def provision(
    folder: Path,
    pki: Pki,
    address: str,
    *,
    domain_sid: str | None = None,
    realm: str = REALM,
    domain: str = DOMAIN,
) -> SambaDC:
    """Provision a throwaway domain into ``folder`` (nothing is written to /etc); ``realm`` and
    ``domain`` (NetBIOS) name another domain than the alliance's."""
    require_tools()
    started = time.monotonic()
    folder.mkdir(parents=True, exist_ok=True)
    for sub in ("log", "run", "run/winbindd", "run/ntp_signd"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    options = {
        "interfaces": f"{address}/8",
        "bind interfaces only": "yes",
        "log file": f"{folder}/log/log.%m",
        "pid directory": f"{folder}/run",
        "winbindd socket directory": f"{folder}/run/winbindd",
        "ntp signd socket directory": f"{folder}/run/ntp_signd",
        "server services": "ldap cldap kdc",
        "ldb:nosync": "true",
        "tls enabled": "yes",
        "tls keyfile": str(pki.key_file),
        "tls certfile": str(pki.cert_file),
        "tls cafile": str(pki.ca_file),
    }
    cmd = [
        "samba-tool",
        "domain",
        "provision",
        f"--targetdir={folder}",
        f"--realm={realm}",
        f"--domain={domain}",
        "--server-role=dc",
        "--dns-backend=NONE",
        f"--adminpass={ADMIN_PASSWORD}",
        "--use-rfc2307",
        "--host-name=dc1",
        *(f"--option={k}={v}" for k, v in options.items()),
    ]
    if domain_sid:
        cmd.append(f"--domain-sid={domain_sid}")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise ServerUnavailable(
            f"samba-tool domain provision failed ({done.returncode}): "
            f"{done.stderr.strip()[-800:]} — check the Debian packages {_PACKAGES}"
        )
    dc = SambaDC(folder=folder, address=address, pki=pki)
    dc.timings["provision"] = time.monotonic() - started
    return dc
