"""Property: any value, however hostile, put through our filter builder matches exactly the one
entry that holds it, on a real slapd (10,000 random Unicode values incl. NUL * ( ) backslash).

The values live in an attribute of our own schema with ``octetStringMatch``: exact bytes, no
case folding, space or Unicode normalisation, so "exactly one match" tests the escaping and
nothing else (with a directoryString attribute two distinct values may legitimately match).
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from typing import Any, Literal

import ldap3
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from support.servers import ServerUnavailable
from support.servers.proc import read_pid, stop_pid, wait_port
from support.servers.slapd import _CONF, ROOT_DN, ROOT_PASSWORD, SUFFIX, free_port, require_tools

from accessaudit.connectors.ldap.collect import ldap_filter
from accessaudit.loopback_ca import Pki

pytestmark = [pytest.mark.servers, pytest.mark.slow]

BATCH = 50
BATCHES = 200  # 10,000 values in all
SCHEMA = """\
attributetype ( 1.3.6.1.4.1.4203.666.11.77.1 NAME 'auditProbeValue'
    DESC 'exact octets, for filter tests' EQUALITY octetStringMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 )
objectclass ( 1.3.6.1.4.1.4203.666.11.77.2 NAME 'auditProbe' SUP top STRUCTURAL
    MUST ( cn $ auditProbeValue ) )
"""


@pytest.fixture(scope="module")
def probe_server(hpki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """slapd with the probe schema, an indexed probe attribute and an admin connection."""
    try:
        require_tools()
    except ServerUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    folder = tmp_path_factory.mktemp("slapd-probe")
    (folder / "data").mkdir()
    (folder / "probe.schema").write_text(SCHEMA)
    conf = _CONF.format(
        d=folder,
        ca=hpki.ca_file,
        cert=hpki.cert_file,
        key=hpki.key_file,
        suffix=SUFFIX,
        root=ROOT_DN,
        rootpw=ROOT_PASSWORD,
        size_limit=500,
        prtotal=" size.prtotal=unlimited",
    )
    conf = conf.replace(
        "include /etc/ldap/schema/inetorgperson.schema\n",
        f"include /etc/ldap/schema/inetorgperson.schema\ninclude {folder / 'probe.schema'}\n",
    ).replace("index entryUUID eq\n", "index entryUUID eq\nindex auditProbeValue eq\n")
    (folder / "slapd.conf").write_text(conf)
    port = free_port()
    slapd = shutil.which("slapd") or "/usr/sbin/slapd"
    done = subprocess.run(
        [slapd, "-f", str(folder / "slapd.conf"), "-h", f"ldaps://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode != 0:
        pytest.fail(f"slapd failed to start: {done.stderr.strip()[-600:]}", pytrace=False)
    pid = read_pid(folder / "slapd.pid")
    try:
        wait_port("127.0.0.1", port, 15, "slapd")
        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(hpki.ca_file))
        server = ldap3.Server("127.0.0.1", port=port, use_ssl=True, tls=tls, get_info=ldap3.NONE)
        conn = ldap3.Connection(
            server, ROOT_DN, ROOT_PASSWORD, auto_bind=True, check_names=False, read_only=False
        )
        conn.add(SUFFIX, ["dcObject", "organization"], {"dc": "alliance", "o": "alliance"})
        yield conn
        conn.unbind()
    finally:
        stop_pid(pid)


#: single characters and pieces of filter syntax, mixed into random Unicode text
hostile = st.sampled_from(
    ["\x00", "*", "(", ")", "\\", " ", "\\2a", "*)(cn=*", ")(|(objectClass=*", "\u2028", "\x1b["]
)
#: surrogates (Unicode category Cs) are left out: no UTF-8 text can hold one
NO_SURROGATES: tuple[Literal["Cs"]] = ("Cs",)
values = st.lists(
    st.one_of(st.characters(exclude_categories=NO_SURROGATES), hostile), min_size=1, max_size=16
).map("".join)
_batch = iter(range(1_000_000))
#: The issue's case, run every time (hypothesis' explicit phase): ``*()\`` and NUL in one value,
#: next to values an unescaped ``*`` or a cut-off NUL would make it match as well.
EXACT = ["*()\\\x00", "*()\\", "*", "\x00", "()\\\x00", "a*()\\\x00b", "*()\\\x00\x00"]


@settings(
    max_examples=BATCHES,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # a failure names its value; no slow shrinking
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(values, min_size=BATCH, max_size=BATCH, unique=True))
@example(EXACT)
def _property(conn: Any, batch: list[str]) -> None:
    base = f"ou=b{next(_batch)},{SUFFIX}"
    assert conn.add(base, "organizationalUnit", {"ou": base.split(",")[0][3:]}), conn.result
    for i, value in enumerate(batch):
        ok = conn.add(f"cn=p{i},{base}", "auditProbe", {"cn": f"p{i}", "auditProbeValue": value})
        assert ok, (value, conn.result)
    for i, value in enumerate(batch):
        flt = ldap_filter("(&(objectClass=auditProbe)(auditProbeValue={}))", value)
        assert conn.search(base, flt, attributes=["cn"]) or conn.result["result"] == 0, (
            value,
            flt,
            conn.result,
        )
        dns = [e["dn"] for e in conn.response if e["type"] == "searchResEntry"]
        assert dns == [f"cn=p{i},{base}"], (value, flt, dns)
    _property.counted += len(batch)  # type: ignore[attr-defined]
    _property.seen.update(batch)  # type: ignore[attr-defined]


_property.counted = 0  # type: ignore[attr-defined]
_property.seen = set()  # type: ignore[attr-defined]


def test_every_value_matches_exactly_its_own_entry(probe_server: Any) -> None:
    _property(probe_server)
    assert _property.counted >= 10_000  # type: ignore[attr-defined]
    assert "*()\\\x00" in _property.seen  # type: ignore[attr-defined]  # the explicit example ran


def test_metacharacters_are_escaped_not_interpreted() -> None:
    assert ldap_filter("(cn={})", "*") == "(cn=\\2a)"
    assert ldap_filter("(cn={})", "\x00()\\") == "(cn=\\00\\28\\29\\5c)"
