"""OpenLDAP ``slapd`` from a slapd.conf in a temporary directory (research note §2).

mdb + memberof + refint; ``limits users size.soft=500 size.hard=500 size.prtotal=unlimited`` so
an unpaged (or over-large page) search by an ordinary user hits the size limit the way a
production server's would, while a paged search sees everything. Listens on free
non-privileged ports of 127.0.0.1, plain and LDAPS, with the test CA's certificate.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from accessaudit.loopback_ca import Pki
from support.servers import ServerUnavailable
from support.servers.proc import alive, read_pid, stop_pid, wait_port

SUFFIX = "dc=alliance,dc=local"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "Sl4pd-Root-Test"
AUDITOR_DN = f"cn=auditor,{SUFFIX}"
AUDITOR_PASSWORD = "Sl4pd-Auditor-Test"

_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
moduleload refint
pidfile {d}/slapd.pid
argsfile {d}/slapd.args
TLSCACertificateFile {ca}
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}
sizelimit {size_limit}
database mdb
maxsize 1073741824
dbnosync
suffix "{suffix}"
rootdn "{root}"
rootpw {rootpw}
directory {d}/data
limits users size.soft={size_limit} size.hard={size_limit}{prtotal}
index objectClass eq
index uid,cn eq
index member,memberOf eq
index entryUUID eq
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE
overlay refint
refint_attributes member memberOf manager owner
"""


def require_tools() -> None:
    for tool, package in (("slapd", "slapd"), ("slaptest", "slapd"), ("ldapsearch", "ldap-utils")):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise ServerUnavailable(
                f"'{tool}' not found: install the Debian package {package} "
                "(apt-get install -y --no-install-recommends slapd ldap-utils)"
            )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class Slapd:
    folder: Path
    pki: Pki
    host: str = "127.0.0.1"
    port: int = 0
    ldaps_port: int = 0
    size_limit: int = 500
    #: paged searches see everything (like AD); False caps them at ``size_limit`` in total too
    paged_unlimited: bool = True
    pid: int | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ldap_url(self) -> str:
        return f"ldap://{self.host}:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://{self.host}:{self.ldaps_port}"

    @property
    def conf(self) -> Path:
        return self.folder / "slapd.conf"

    def write_config(self) -> Path:
        """slapd.conf (and the data directory) for this server; :meth:`start` calls it."""
        require_tools()
        (self.folder / "data").mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            _CONF.format(
                d=self.folder,
                ca=self.pki.ca_file,
                cert=self.pki.cert_file,
                key=self.pki.key_file,
                suffix=SUFFIX,
                root=ROOT_DN,
                rootpw=ROOT_PASSWORD,
                size_limit=self.size_limit,
                prtotal=" size.prtotal=unlimited" if self.paged_unlimited else "",
            )
        )
        return self.conf

    def slapadd(self, ldif: Path) -> None:
        """Bulk-load ``ldif`` offline (slapd stopped): fast, but overlays (memberOf) do not run;
        slapadd adds entryUUID, createTimestamp and the other operational attributes itself."""
        if self.running:
            raise RuntimeError("stop slapd before slapadd")
        self.write_config()
        slapadd = shutil.which("slapadd") or "/usr/sbin/slapadd"
        done = subprocess.run(
            [slapadd, "-q", "-f", str(self.conf), "-l", str(ldif)],
            capture_output=True,
            text=True,
            timeout=3600,
        )
        if done.returncode != 0:
            raise RuntimeError(f"slapadd failed: {done.stderr.strip()[-600:]}")

    def start(self, timeout: float = 15.0) -> None:
        started = time.monotonic()
        conf = self.write_config()
        self.port = self.port or free_port(self.host)
        self.ldaps_port = self.ldaps_port or free_port(self.host)
        pidfile = self.folder / "slapd.pid"
        pidfile.unlink(missing_ok=True)
        slapd = shutil.which("slapd") or "/usr/sbin/slapd"
        urls = f"{self.ldap_url}/ {self.ldaps_url}/"
        done = subprocess.run(
            [slapd, "-f", str(conf), "-h", urls], capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            raise ServerUnavailable(f"slapd failed to start: {done.stderr.strip()[-600:]}")
        self.pid = read_pid(pidfile)
        wait_port(self.host, self.port, timeout, "slapd")
        wait_port(self.host, self.ldaps_port, timeout, "slapd")
        self.timings["start"] = time.monotonic() - started

    def stop(self) -> None:
        if self.pid is not None:
            stop_pid(self.pid)
            self.pid = None

    @property
    def running(self) -> bool:
        return self.pid is not None and alive(self.pid)
