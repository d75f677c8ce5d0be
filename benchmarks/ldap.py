"""LDAP collection throughput, measured against OpenLDAP's ``ldapsearch`` in the same run.

Usage (from the repository root, with the project's virtualenv active; needs the Debian packages
slapd, ldap-utils and, for the Samba rows, samba samba-ad-dc samba-ad-provision winbind
ldb-tools — the same as the test suite)::

    python benchmarks/ldap.py                        # slapd 100k users, Samba 10k accounts, 3 runs
    python benchmarks/ldap.py --smoke                # tiny sizes, once: what CI runs
    python benchmarks/ldap.py --samba-accounts 0 --repeat 5 --profile 30

Servers (started on loopback in a work folder, never touching /etc):

- **slapd**: ``--users`` inetOrgPerson entries and ``--groups`` groupOfNames holding
  ``--members`` member values in all (each user in members/users groups; one group in ten also
  nests another group), generated as LDIF and bulk-loaded with ``slapadd``; every user carries
  the ``memberOf`` values the memberof overlay would have written (slapadd runs no overlay), so
  the collector's memberOf cross-check has the real amount of data to read. Collected through
  the generic mapping (``flavour = "openldap"``, ``kind`` from ``employeeType``).
- **Samba AD DC**: the embedded sample (``accessaudit.sample.directory``, seed 7) at
  ``--samba-accounts``,
  seeded through LDAP once and kept as a template under ``--cache`` (loading 10k accounts takes
  a couple of minutes; later runs copy the template in well under a second).

Stages, each in a fresh process so its peak RSS is its own (``wait4`` rusage):

- ``ldapsearch <unit>``: ``ldapsearch -x -E pr=<page>/noprompt`` over LDAPS with the same bind
  account, base, filter, attribute list and controls as the collector's search for that unit (AD:
  the extended-DN control in string form; ``member`` and ``memberOf`` plain, which Samba returns
  unranged), LDIF written to a file on the work folder. Seconds are the process's wall time.
- ``collect``: ``accessaudit.connectors.ldap.collect.collect`` of the same server into the canonical
  polars tables, complete (every unit proven). Seconds are timed around ``collect()`` inside the
  process (the interpreter and imports, ~0.4 s, are left out); peak RSS includes them.

``ratio`` is the collect seconds over the summed ``ldapsearch`` seconds of the same server in the
same run. Medians over ``--repeat`` runs; peak RSS is the largest. Nothing here asserts timings.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from measure import MB, ChildRun, Spawner, combine, machine, markdown_table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the test servers are reused here

from support.servers import load_ad  # noqa: E402
from support.servers.samba import ADDRESSES, SambaDC, free_address, provision  # noqa: E402
from support.servers.slapd import AUDITOR_DN, AUDITOR_PASSWORD, SUFFIX, Slapd  # noqa: E402

from accessaudit.loopback_ca import Pki, make_pki  # noqa: E402

PASSWORD_ENV = "ACCESSAUDIT_BENCH_LDAP_PASSWORD"  # noqa: S105 (a variable name)
EXTENDED_DN_STRING = "1.2.840.113556.1.4.529=::MAMCAQE="  # control value SEQUENCE { INTEGER 1 }
OPENLDAP_ACCOUNT_ATTRS = (
    "createTimestamp",
    "departmentNumber",
    "description",
    "displayName",
    "employeeNumber",
    "employeeType",
    "entryUUID",
    "mail",
    "manager",
    "memberOf",
    "o",
    "uid",
)
OPENLDAP_GROUP_ATTRS = ("cn", "description", "entryUUID", "member", "owner")
FORCES = ("West Mercia", "Warwickshire")


# --- data ------------------------------------------------------------------------------------


def write_slapd_ldif(path: Path, users: int, groups: int, members: int) -> dict[str, int]:
    """Base entries, users and groups as LDIF (parents first); returns the counts written."""
    per_user = max(1, round(members / users))
    lines: list[str] = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: alliance\n"
        "o: Alliance\n",
        f"dn: {AUDITOR_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
        f"cn: auditor\nuserPassword: {AUDITOR_PASSWORD}\n",
    ]
    for force in FORCES:
        lines.append(f"dn: ou={force},{SUFFIX}\nobjectClass: organizationalUnit\nou: {force}\n")
        for sub in ("Users", "Groups"):
            lines.append(
                f"dn: ou={sub},ou={force},{SUFFIX}\nobjectClass: organizationalUnit\nou: {sub}\n"
            )

    def user_dn(i: int) -> str:
        return f"cn=User {i:07d},ou=Users,ou={FORCES[i % 3 == 2]},{SUFFIX}"

    def group_dn(j: int) -> str:
        return f"cn=GRP-{j:05d},ou=Groups,ou={FORCES[j % 3 == 2]},{SUFFIX}"

    group_members: list[list[str]] = [[] for _ in range(groups)]
    stride = max(1, groups // per_user)
    n_members = 0

    def groups_of(i: int) -> list[int]:
        base = (i * 7919) % groups
        return list(dict.fromkeys((base + k * stride) % groups for k in range(per_user)))

    for i in range(users):
        force = FORCES[i % 3 == 2]
        prefix = "WARKS" if i % 3 == 2 else "WMP"
        mine = groups_of(i)
        for j in mine:
            group_members[j].append(user_dn(i))
            n_members += 1
        lines.append(
            f"dn: {user_dn(i)}\nobjectClass: inetOrgPerson\ncn: User {i:07d}\nsn: User\n"
            f"uid: {prefix.lower()}{i:07d}\ndisplayName: User {i:07d} of {force}\n"
            f"mail: user{i:07d}@{prefix.lower()}.police.uk\nemployeeNumber: {1_000_000 + i}\n"
            f"o: {force} Police\ndepartmentNumber: D{i % 40:02d}\nemployeeType: user\n"
            + (f"description: Temporary contractor {i}\n" if i % 50 == 0 else "")
            + "".join(f"memberOf: {group_dn(j)}\n" for j in mine)
        )
    for j in range(0, groups, 10):  # nesting: one group in ten holds the next group
        group_members[j].append(group_dn((j + 1) % groups))
        n_members += 1
    for j in range(groups):
        vals = "".join(f"member: {dn}\n" for dn in group_members[j]) or f"member: {SUFFIX}\n"
        lines.append(
            f"dn: {group_dn(j)}\nobjectClass: groupOfNames\ncn: GRP-{j:05d}\n"
            f"description: Resource group {j}\n{vals}"
        )
    path.write_text("\n".join(lines) + "\n")
    return {"accounts": users, "groups": groups, "members": n_members}


# --- servers ---------------------------------------------------------------------------------


@dataclass
class Target:
    """One server to measure: how to reach it and what the collector and ldapsearch ask."""

    name: str
    size: str
    url: str
    ca_file: Path
    bind_dn: str
    password: str
    base_dn: str
    source: dict[str, Any]
    searches: list[tuple[str, str, tuple[str, ...], tuple[str, ...]]]  # unit, filter, attrs, -E
    entries: int
    stop: Any = None
    extra: dict[str, int] = field(default_factory=dict)


def slapd_target(work: Path, pki: Pki, users: int, groups: int, members: int) -> Target:
    folder = work / "slapd"
    shutil.rmtree(folder, ignore_errors=True)
    server = Slapd(folder, pki)
    ldif = work / "slapd.ldif"
    t0 = time.monotonic()
    counts = write_slapd_ldif(ldif, users, groups, members)
    t1 = time.monotonic()
    server.slapadd(ldif)
    t2 = time.monotonic()
    server.start()
    print(
        f"slapd: LDIF {ldif.stat().st_size / 1e6:.0f} MB written in {t1 - t0:.1f} s, slapadd "
        f"{t2 - t1:.1f} s, started in {server.timings['start']:.2f} s",
        file=sys.stderr,
    )
    ldif.unlink()
    size = f"{users:,} users / {groups:,} groups / {counts['members']:,} members"
    return Target(
        name="slapd",
        size=size,
        url=server.ldaps_url,
        ca_file=pki.ca_file,
        bind_dn=AUDITOR_DN,
        password=AUDITOR_PASSWORD,
        base_dn=SUFFIX,
        source={
            "flavour": "openldap",
            "attribute_map": {"kind": "employeeType"},
        },
        searches=[
            ("accounts", "(objectClass=inetOrgPerson)", OPENLDAP_ACCOUNT_ATTRS, ()),
            ("groups", "(objectClass=groupOfNames)", OPENLDAP_GROUP_ATTRS, ()),
        ],
        entries=users + groups,
        stop=server.stop,
        extra=counts,
    )


def samba_target(work: Path, cache: Path, accounts: int) -> Target:
    import accessaudit.sample
    from accessaudit.connectors.ldap.ad import AD_ACCOUNT_ATTRS, AD_GROUP_ATTRS
    from accessaudit.sample.directory import generate

    # keyed by the generator's and loader's source: a changed sample is seeded afresh
    sample_dir = Path(accessaudit.sample.__file__).parent
    sources = [*sorted(sample_dir.glob("*.py")), Path(load_ad.__file__)]
    key = hashlib.sha256(b"".join(f.read_bytes() for f in sources)).hexdigest()[:12]
    template = cache / f"samba-sample-7-{accounts}-{key}"
    pki_dir = cache / "pki"
    if not (template / "seeded.json").exists():
        shutil.rmtree(template, ignore_errors=True)
        pki = make_pki(pki_dir, ips=ADDRESSES, dns=("dc1.alliance.local",))
        sample = generate(seed=7, accounts=accounts)
        t0 = time.monotonic()
        dc = provision(template, pki, free_address(), domain_sid=sample.domain_sid)
        dc.start()
        try:
            load_ad.load(dc, sample.tables, sample.domain_sid)
            load_ad.add_bind_user(dc, "auditor")
        finally:
            dc.stop()
        counts = {n: df.height for n, df in sample.tables.items()}
        (template / "seeded.json").write_text(json.dumps({"address": dc.address, **counts}))
        print(
            f"samba: seeded {accounts:,} accounts in {time.monotonic() - t0:.0f} s (cached in "
            f"{template})",
            file=sys.stderr,
        )
    seeded = json.loads((template / "seeded.json").read_text())
    pki = Pki(pki_dir / "ca.pem", pki_dir / "server.pem", pki_dir / "server.key")
    dc = SambaDC(template, seeded["address"], pki).copy(work / "samba", free_address())
    dc.start()
    ext = (EXTENDED_DN_STRING,)
    return Target(
        name="samba",
        size=f"{accounts:,} accounts / {seeded['groups']:,} groups / "
        f"{seeded['memberships']:,} memberships",
        url=dc.ldaps_url,
        ca_file=pki.ca_file,
        bind_dn="auditor@alliance.local",
        password=load_ad.BIND_PASSWORD,
        base_dn="DC=alliance,DC=local",
        source={"flavour": "ad"},
        searches=[
            ("accounts", "(objectClass=user)", (*AD_ACCOUNT_ATTRS, "memberOf"), ext),
            ("groups", "(objectClass=group)", (*AD_GROUP_ATTRS, "member"), ext),
            (
                "foreign-security-principals",
                "(objectClass=foreignSecurityPrincipal)",
                ("objectSid",),
                ext,
            ),
        ],
        entries=0,
        stop=dc.stop,
    )


# --- measuring -------------------------------------------------------------------------------

#: Runs ldapsearch and the collector's child process (``measure.Spawner``: their own peak RSS).
SPAWNER: Spawner | None = None


def run_measured(cmd: list[str], env: dict[str, str], stdout: Path) -> ChildRun:
    """Run ``cmd`` through the spawner: its wall seconds, its own peak RSS, its exit code."""
    assert SPAWNER is not None
    return SPAWNER.run(cmd, env, stdout)


def ldapsearch(
    target: Target, search: tuple[str, str, tuple[str, ...], tuple[str, ...]], page: int, out: Path
) -> dict[str, Any]:
    """One ``ldapsearch`` of ``search`` into ``out``: its seconds, peak RSS and entries."""
    _unit, flt, attrs, controls = search
    cmd = [
        "ldapsearch",
        "-x",
        "-LLL",
        "-o",
        "ldif-wrap=no",
        "-H",
        target.url,
        "-D",
        target.bind_dn,
        "-w",
        target.password,
        "-b",
        target.base_dn,
        "-E",
        f"pr={page}/noprompt",
    ]
    for c in controls:
        cmd += ["-E", c]
    cmd += [flt, *attrs]
    env = {**os.environ, "LDAPTLS_CACERT": str(target.ca_file)}
    run = run_measured(cmd, env, out)
    if run.code != 0:
        raise SystemExit(f"ldapsearch failed ({run.code}): {' '.join(cmd[:12])} ...")
    entries = 0
    if out != Path(os.devnull):  # the entries written (the counting run only)
        data = out.read_bytes()
        entries = data.count(b"\ndn:") + data.startswith(b"dn:")
        out.unlink()
    return {"seconds": run.seconds, "peak": run.peak, "entries": entries}


def collect_in_child(
    target: Target, page: int, profile: int, work: Path, mode: str = "collect"
) -> dict[str, Any]:
    spec = {
        "mode": mode,
        "searches": [[flt, list(attrs), bool(ctl)] for _u, flt, attrs, ctl in target.searches],
        "url": target.url,
        "ca_file": str(target.ca_file),
        "bind_dn": target.bind_dn,
        "base_dn": target.base_dn,
        "page": page,
        "source": target.source,
        "profile": profile,
        "profile_out": str(work / f"profile-{target.name}.txt"),
    }
    env = {**os.environ, PASSWORD_ENV: target.password}
    out = work / "child.json"
    cmd = [sys.executable, __file__, "child", json.dumps(spec), str(out)]
    run = run_measured(cmd, env, Path(os.devnull))
    if run.code != 0:
        raise SystemExit(f"collect failed ({run.code})")
    result: dict[str, Any] = json.loads(out.read_text())
    result["peak"] = run.peak
    result["process_wall"] = run.seconds
    return result


@click.group(invoke_without_command=True)
@click.option("--smoke", is_flag=True, help="Tiny sizes, one run (what CI runs).")
@click.option("--users", default=100_000, show_default=True, help="slapd users.")
@click.option("--groups", default=5_000, show_default=True, help="slapd groups.")
@click.option("--members", default=1_000_000, show_default=True, help="slapd member values.")
@click.option("--samba-accounts", default=10_000, show_default=True, help="0 skips Samba.")
@click.option("--repeat", default=3, show_default=True, help="Runs per stage (median).")
@click.option("--page", default=1000, show_default=True, help="Page size for both clients.")
@click.option("--profile", default=0, help="cProfile one extra collect; print the top N.")
@click.option(
    "--cache",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder keeping seeded Samba templates [default: <tmp>/accessaudit-bench].",
)
@click.option("--work", type=click.Path(path_type=Path), default=None, help="Work folder.")
@click.pass_context
def main(
    ctx: click.Context,
    smoke: bool,
    users: int,
    groups: int,
    members: int,
    samba_accounts: int,
    repeat: int,
    page: int,
    profile: int,
    cache: Path | None,
    work: Path | None,
) -> None:
    """Measure LDAP collection against ldapsearch on slapd and Samba; print a Markdown table.

    Example:  python benchmarks/ldap.py --smoke
    """
    global SPAWNER
    if ctx.invoked_subcommand is not None:
        return
    SPAWNER = Spawner()
    if smoke:
        users, groups, members, samba_accounts, repeat = 2_000, 100, 20_000, 300, 1
    cache = cache or Path(tempfile.gettempdir()) / "accessaudit-bench"
    cache.mkdir(parents=True, exist_ok=True)
    if work is not None:
        work.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ldap-bench-", dir=work))
    pki = make_pki(work / "pki", ips=ADDRESSES, dns=("dc1.alliance.local",))
    rows: list[list[str]] = []
    load_before = os.getloadavg()
    targets = [lambda: slapd_target(work, pki, users, groups, members)]
    if samba_accounts:
        targets.append(lambda: samba_target(work, cache, samba_accounts))
    try:
        for make in targets:
            target = make()
            try:
                rows += measure_target(target, repeat, page, profile, work)
            finally:
                target.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        SPAWNER.close()
    print(f"\n{machine()} · medians of {repeat} run(s), page size {page}, LDAPS\n")
    head = ("server", "stage", "size", "seconds", "peak RSS MB", "objects/s", "ratio", "vs raw")
    print(f"load average before/after: {load_before} / {os.getloadavg()}")
    print(markdown_table(head, rows, right=range(3, 8)))


def _row(
    server: str,
    stage: str,
    size: str,
    seconds: float,
    peak: int | None,
    entries: int,
    ratio: str,
    vs_raw: str,
) -> list[str]:
    mb = f"{peak / MB:.0f}" if peak is not None else ""
    return [server, stage, size, f"{seconds:.2f}", mb, f"{entries / seconds:,.0f}", ratio, vs_raw]


def measure_target(
    target: Target, repeat: int, page: int, profile: int, work: Path
) -> list[list[str]]:
    """Each run: every ldapsearch (to /dev/null), the raw paged read, then the collector
    (interleaved: a busy machine slows all three). One ldapsearch per search writes its LDIF to
    a file first, untimed: the entries every run must see."""
    counted = [ldapsearch(target, search, page, work / "out.ldif") for search in target.searches]
    entries_total = sum(c["entries"] for c in counted)
    searches: list[list[dict[str, Any]]] = [[] for _ in target.searches]
    raws: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for _ in range(repeat):
        for k, search in enumerate(target.searches):
            searches[k].append(ldapsearch(target, search, page, Path(os.devnull)))
        raws.append(collect_in_child(target, page, 0, work, mode="raw"))
        results.append(collect_in_child(target, page, 0, work))
    rows: list[list[str]] = []
    ref_total = 0.0
    for search, runs, count in zip(target.searches, searches, counted, strict=True):
        med = combine(runs, median=["seconds"], largest=["peak"])
        ref_total += med["seconds"]
        size = f"{count['entries']:,} entries"
        stage = f"ldapsearch {search[0]} > /dev/null"
        rows.append(
            _row(target.name, stage, size, med["seconds"], med["peak"], count["entries"], "", "")
        )
    for r in [*raws, *results]:
        if r["entries"] != entries_total or not r["complete"]:
            raise SystemExit(f"a run saw {r['entries']} entries, ldapsearch {entries_total}")
    raw = combine(raws, median=["seconds"], largest=["peak"])
    med = combine(results, median=["seconds"], largest=["peak"])
    size = f"{entries_total:,} entries"
    ratios = (f"{raw['seconds'] / ref_total:.2f}", "1.00")
    stage = "ldapsearch total"
    rows.append(_row(target.name, stage, size, ref_total, None, entries_total, "1.00", ""))
    size = f"{entries_total:,} entries, {raw['bytes'] / 1e6:,.0f} MB of BER"
    rows.append(
        _row(target.name, "raw paged read", size, raw["seconds"], raw["peak"], entries_total,
             *ratios)
    )  # fmt: skip
    ratios = (f"{med['seconds'] / ref_total:.2f}", f"{med['seconds'] / raw['seconds']:.2f}")
    rows.append(
        _row(target.name, "collect", target.size, med["seconds"], med["peak"], entries_total,
             *ratios)
    )  # fmt: skip
    each = ", ".join(
        f"{r['seconds']:.2f}/{x['seconds']:.2f}/{sum(s[k]['seconds'] for s in searches):.2f}"
        for k, (r, x) in enumerate(zip(results, raws, strict=True))
    )
    print(f"{target.name}: each run collect/raw/ldapsearch seconds: {each}", file=sys.stderr)
    print(f"{target.name}: counts {results[0]['counts']}", file=sys.stderr)
    if profile:
        collect_in_child(target, page, profile, work)
        print((work / f"profile-{target.name}.txt").read_text(), file=sys.stderr)
    return rows


def raw_read(conn: Any, base: str, searches: list[Any], page: int) -> dict[str, int]:
    """The same paged searches over ``conn``, the answers read and framed but not decoded.

    ldap3 encodes and sends each request (as the collector's reader does); the response bytes
    are read off the socket with blocking reads and only cut into LDAPMessages (their outer
    length) to count entries and find each page's searchResDone, the one message ldap3 decodes
    (its result code and cookie). What the server and TLS allow, with no decoding at all.
    """
    from ldap3 import SUBTREE
    from ldap3.protocol.microsoft import extended_dn_control
    from ldap3.protocol.rfc2696 import paged_search_control
    from ldap3.utils.asn1 import decode_message_fast

    from accessaudit.connectors.ldap import wire

    entries = nbytes = 0
    sock = conn.socket
    for flt, attrs, ext in searches:
        cookie = None
        while True:
            controls = [*([extended_dn_control()] if ext else []),
                        paged_search_control(False, page, cookie)]  # fmt: skip
            wire._send(conn, base, flt, SUBTREE, attrs, controls, 0)
            buf = bytearray()
            done: dict[str, Any] | None = None
            while done is None:
                chunk = sock.recv(1 << 18)
                if not chunk:
                    raise SystemExit("connection closed during the raw read")
                nbytes += len(chunk)
                buf += chunk
                p = 0
                while len(buf) - p >= 2:
                    ln, q = buf[p + 1], p + 2
                    if ln & 0x80:
                        q += ln & 0x7F
                        ln = int.from_bytes(buf[p + 2 : q], "big")
                    end = q + ln
                    if end > len(buf):
                        break
                    op = buf[q + 2 + buf[q + 1]]  # after the messageID
                    if op == 0x64:
                        entries += 1
                    elif op == 0x65:
                        message = decode_message_fast(bytes(buf[p:end]))
                        done = conn.strategy.decode_response_fast(message)
                    p = end
                del buf[:p]
            if done.get("result") != 0:
                raise SystemExit(f"raw read: result {done.get('result')}")
            control = (done.get("controls") or {}).get("1.2.840.113556.1.4.319") or {}
            cookie = (control.get("value") or {}).get("cookie") or None
            if not cookie:
                break
    return {"entries": entries, "bytes": nbytes}


@main.command(hidden=True)
@click.argument("spec_json")
@click.argument("out", type=click.Path(path_type=Path))
def child(spec_json: str, out: Path) -> None:
    """One collection in this process (timed inside, optionally profiled)."""
    from accessaudit.config.sources import LdapSource
    from accessaudit.connectors.ldap import collect as ldap

    spec = json.loads(spec_json)
    cfg = LdapSource.model_validate(
        {
            "kind": "ldap",
            "name": "bench",
            "servers": [spec["url"]],
            "base_dn": spec["base_dn"],
            "bind_dn": spec["bind_dn"],
            "password_env": PASSWORD_ENV,
            "ca_file": spec["ca_file"],
            "page_size": spec["page"],
            **spec["source"],
        }
    )
    if spec.get("mode") == "raw":
        from accessaudit.transport.ldap import connect

        started = time.perf_counter()
        conn, _url = connect(cfg, os.environ[PASSWORD_ENV])
        read = raw_read(conn, spec["base_dn"], spec["searches"], spec["page"])
        seconds = time.perf_counter() - started
        conn.unbind()
        out.write_text(json.dumps({"seconds": seconds, "complete": True, **read}))
        return
    if spec["profile"]:
        import cProfile
        import io
        import pstats

        prof = cProfile.Profile()
        started = time.perf_counter()
        prof.enable()
        got = ldap.collect(cfg)
        prof.disable()
        seconds = time.perf_counter() - started
        text = io.StringIO()
        stats = pstats.Stats(prof, stream=text).sort_stats("tottime")
        stats.print_stats(spec["profile"])
        Path(spec["profile_out"]).write_text(text.getvalue())
    else:
        started = time.perf_counter()
        got = ldap.collect(cfg)
        seconds = time.perf_counter() - started
    searched = ("accounts", "groups", "foreign-security-principals")
    entries = sum(u.count for u in got.units if u.name in searched)
    out.write_text(
        json.dumps(
            {
                "seconds": seconds,
                "entries": entries,
                "complete": got.complete,
                "counts": {n: got.table(n).height for n in ("accounts", "groups", "memberships")},
            }
        )
    )


if __name__ == "__main__":
    main()
