"""Only loopback addresses are contacted: the suite-wide recording (support.recorder) fails a
module whose code called any other host, the apply tests included."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import recorder
from support.entra_data import TENANT

from accessaudit.connectors.entra.collect import collect
from accessaudit.errors import AuditError

#: TEST-NET-1 (RFC 5737) with a port out of range: requests refuses the URL before connecting.
AWAY = "https://192.0.2.10:99999"


@pytest.mark.parametrize("check", [recorder.read_only, recorder.loopback_only])
def test_a_request_to_another_host_fails_the_recording(
    check, make_cfg, tenant, tmp_path: Path
) -> None:
    """read_only (every module) and loopback_only (the apply modules) both catch it."""
    calls = tmp_path / "calls.jsonl"
    with (
        pytest.raises(AssertionError, match="probe: calls off loopback"),
        check(calls, "probe"),
        pytest.raises(AuditError),  # the URL is refused before any connection
    ):
        collect(make_cfg(authority_host=AWAY))
    recs = recorder.records(calls)
    assert recs and recorder.off_loopback(recs) == recs
    assert {r["url"] for r in recs} == {f"{AWAY}/{TENANT}/v2.0/.well-known/openid-configuration"}


def test_a_collection_on_loopback_passes(make_cfg, tenant, tmp_path: Path) -> None:
    calls = tmp_path / "calls.jsonl"
    with recorder.read_only(calls, "loopback"):
        assert collect(make_cfg()).complete
    recs = recorder.records(calls)
    assert recs and recorder.off_loopback(recs) == []


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("127.0.0.1", True),
        ("127.0.0.5", True),  # the Samba test servers use 127.0.0.1-8
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("192.0.2.10", False),
        ("10.0.0.1", False),
        ("graph.microsoft.com", False),
        ("localhost.example.com", False),
        ("", False),
        (None, False),
    ],
)
def test_loopback_hosts(host: str | None, ok: bool) -> None:
    assert recorder.is_loopback(host) is ok
    ldap = {"kind": "ldap", "op": "searchRequest", "host": host}
    http = {"kind": "http", "method": "GET", "url": f"https://{host or ''}:443/v1.0/users"}
    if host and ":" in host.strip("[]"):
        http["url"] = f"https://[{host.strip('[]')}]:443/v1.0/users"
    assert recorder.off_loopback([ldap, http]) == ([] if ok else [ldap, http])
