"""Security properties: read mode never writes, TLS fails closed, no secret anywhere, outputs
owner-only, pseudonymised outputs free of raw identifiers, and the tool's own audit log."""

from __future__ import annotations

import ast
import base64
import html
import json
import re
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from support import badcerts, recorder
from support.hardening_cli import (
    CANARIES,
    CANARY_PASSPHRASE,
    CANARY_PASSWORD,
    CANARY_SECRET,
    RECORD,
    cli,
    one_line_error,
    run,
    write_config,
)
from support.hardening_env import CLIENT_ID, BoundaryDC, entra_source_toml, serve_sample_tenant
from support.servers.slapd import Slapd

from accessaudit.config.sources import LdapSource
from accessaudit.connectors.ldap import collect as ldap
from accessaudit.errors import ConnectError
from accessaudit.sample.entra import TENANT_ID
from accessaudit.store.runs import read_table

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "accessaudit"
CERT_CLIENT = "4b3a2918-0716-4e5d-9c8b-7a6f5e4d3c2b"
PASSPHRASE_ENV = "ACCESSAUDIT_CERT_PASSPHRASE"


# --- TLS is never built without verification -----------------------------------------------------


def _calls(tree: ast.AST) -> Iterator[ast.Call]:
    yield from (n for n in ast.walk(tree) if isinstance(n, ast.Call))


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def test_no_ldap3_tls_without_cert_required() -> None:
    """Every ``Tls(...)`` in the package passes ``validate=ssl.CERT_REQUIRED`` (ldap3's default
    is CERT_NONE), and nothing anywhere turns verification off."""
    built = 0
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for call in _calls(ast.parse(text)):
            if _name(call.func) != "Tls":
                continue
            built += 1
            validate = {k.arg: k.value for k in call.keywords}.get("validate")
            assert validate is not None and _name(validate) == "CERT_REQUIRED", (
                f"{path.relative_to(ROOT)}:{call.lineno}: Tls() without validate=CERT_REQUIRED"
            )
        for bad in ("CERT_NONE", "CERT_OPTIONAL", "_create_unverified_context", "verify=False"):
            assert bad not in text, f"{path.relative_to(ROOT)}: {bad}"
        assert not re.search(r"check_hostname\s*=\s*False", text), path
    assert built >= 1  # the LDAP transport builds one


# --- read mode never writes ----------------------------------------------------------------------


def test_collections_never_write(
    boundary_ro: BoundaryDC, emu: Any, tmp_path: Path, read_only_calls: Path
) -> None:
    """Full collections in this process (AD over LDAPS and StartTLS, Entra full and by delta)
    and through the command line: every call recorded, none a write."""
    offset = read_only_calls.stat().st_size
    ldap.collect(boundary_ro.source())
    ldap.collect(boundary_ro.source(servers=[boundary_ro.dc.ldap_url], start_tls=True))
    config = write_config(
        tmp_path, boundary_ro.source_toml() + "\n" + entra_source_toml(emu, use_delta=True)
    )
    for _ in range(2):  # the second Entra collection goes by delta links
        p = run(config, "--fail-on", "none")
        assert p.returncode == 0, p.stderr
    calls = recorder.records(read_only_calls, offset)
    assert recorder.violations(calls) == []
    ops = {c["op"] for c in calls if c["kind"] == "ldap"}
    assert {"bindRequest", "searchRequest", "extendedReq"} <= ops
    http = [c for c in calls if c["kind"] == "http"]
    batches = [c for c in http if "batch" in c]
    assert batches and all(m == "GET" for c in batches for m in c["batch"])
    assert any("/delta" in c["url"] for c in http)
    assert len({c["pid"] for c in calls}) >= 3  # this process and both command lines
    # the server's view: only the token endpoint and $batch envelopes are not GETs
    for r in emu.log:
        if r.kind == "batch-item" or r.kind == "graph":
            assert r.method == "GET", r
        elif r.method != "GET":
            assert r.kind in ("token", "batch"), r


def test_the_recorder_sees_a_write() -> None:
    """The control: a modify, an add and a Graph PATCH are recorded as violations."""
    calls: list[dict[str, Any]] = [
        {"kind": "ldap", "op": "modifyRequest"},
        {"kind": "ldap", "op": "addRequest"},
        {"kind": "ldap", "op": "extendedReq", "name": "1.3.6.1.4.1.4203.1.11.1"},
        {"kind": "http", "method": "PATCH", "url": "https://g/v1.0/groups/x"},
        {"kind": "http", "method": "POST", "url": "https://g/v1.0/$batch", "batch": ["DELETE"]},
        {"kind": "http", "method": "POST", "url": "https://g/v1.0/groups"},
    ]
    assert recorder.violations(calls) == calls
    assert RECORD.name == "calls.jsonl"


# --- TLS fails closed -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return badcerts.make(tmp_path_factory.mktemp("badcerts"))


EXPECTED_TLS = {
    "self-signed": "is not trusted",
    "expired": "is not trusted",
    "wrong-host": "does not name this host",
}


@pytest.mark.servers
@pytest.mark.parametrize("kind", ["good", *EXPECTED_TLS])
def test_ldaps_refuses_bad_certificates(
    certs: dict[str, Any], kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = Slapd(tmp_path / "slapd", certs[kind])
    server.start()
    try:
        monkeypatch.setenv("ACCESSAUDIT_TEST_SLAPD_PW", "Sl4pd-Auditor-Test")
        cfg = LdapSource.model_validate(
            {
                "kind": "ldap",
                "name": "openldap",
                "flavour": "openldap",
                "servers": [server.ldaps_url],
                "base_dn": "dc=alliance,dc=local",
                "password_env": "ACCESSAUDIT_TEST_SLAPD_PW",
                "bind_dn": "cn=admin,dc=alliance,dc=local",
                "ca_file": certs[kind].ca_file,
                "connect_timeout": 5,
                "receive_timeout": 10,
            }
        )
        if kind == "good":
            conn, _ = ldap.connect(cfg, "Sl4pd-Root-Test")  # the handshake and bind succeed
            conn.unbind()
            return
        with pytest.raises(ConnectError) as err:
            ldap.connect(cfg, "Sl4pd-Root-Test")
        assert EXPECTED_TLS[kind] in err.value.message, err.value.message
        # and a plain-text retry is never attempted: StartTLS refused the same way
        cfg2 = cfg.model_copy(update={"servers": [server.ldap_url], "start_tls": True})
        with pytest.raises(ConnectError) as err2:
            ldap.connect(cfg2, "Sl4pd-Root-Test")
        assert EXPECTED_TLS[kind] in err2.value.message, err2.value.message
    finally:
        server.stop()


@pytest.mark.parametrize("kind", ["good", *EXPECTED_TLS])
def test_graph_refuses_bad_certificates(
    certs: dict[str, Any], kind: str, entra_tables: dict[str, pl.DataFrame], tmp_path: Path
) -> None:
    from accessaudit.graphemu import GraphEmulator

    emulator = serve_sample_tenant(GraphEmulator(certs[kind]).start(), entra_tables)
    try:
        config = write_config(tmp_path, entra_source_toml(emulator))
        p = run(config, "--fail-on", "none")
        if kind == "good":
            assert p.returncode == 0, p.stderr
            return
        assert p.returncode == 2
        line = one_line_error(p)
        assert "certificate" in line.lower(), line
        assert [r for r in emulator.log if r.kind != "other"] == []  # nothing got through
    finally:
        emulator.stop()


# --- no secret in any output, log or message -----------------------------------------------------


def _encrypted_app_certificate(folder: Path) -> tuple[Any, Path]:
    from cryptography.hazmat.primitives import serialization

    from accessaudit.graphemu import make_app_certificate

    app = make_app_certificate(folder, "canary-app")
    key = serialization.load_pem_private_key(app.key_pem, password=None)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(CANARY_PASSPHRASE.encode()),
    )
    path = folder / "app-encrypted.pem"
    path.write_bytes(pem + app.cert_pem)
    path.chmod(0o600)
    return app, path


def _forms(secret: str) -> list[bytes]:
    raw = secret.encode()
    return [
        raw,
        secret.encode("utf-16-le"),
        base64.b64encode(raw),
        base64.b64encode(raw)[:-4],
        json.dumps(secret)[1:-1].encode(),
    ]


def _all_text(folder: Path) -> Iterator[tuple[str, bytes]]:
    """Every file under ``folder``: raw bytes, plus the decompressed contents of XLSX parts and
    every string of every Parquet table (compressed pages would hide a string from a grep)."""
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        yield str(path), data
        if path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as z:
                yield str(path), b"\n".join(z.read(n) for n in z.namelist())
        if path.suffix == ".parquet":
            df = pl.read_parquet(path)
            yield str(path), str(df.rows()).encode()


def test_no_secret_in_any_output_log_or_message(
    boundary_ro: BoundaryDC, emu: Any, tmp_path: Path
) -> None:
    app, pem = _encrypted_app_certificate(tmp_path / "app")
    emu.register_app(
        TENANT_ID, CERT_CLIENT, certificate=app, roles=emu.apps[(TENANT_ID, CLIENT_ID)].roles
    )
    env = {PASSPHRASE_ENV: CANARY_PASSPHRASE}
    cert_source = entra_source_toml(
        emu,
        name="alliance-tenant-cert",
        client_id=CERT_CLIENT,
        client_secret_env=None,
        certificate_file=str(pem),
        certificate_thumbprint=app.thumbprint_sha1,
        certificate_passphrase_env=PASSPHRASE_ENV,
    )
    good = write_config(
        tmp_path / "good", boundary_ro.source_toml() + "\n" + entra_source_toml(emu)
    )
    cert = write_config(tmp_path / "cert", cert_source)
    log = tmp_path / "run.jsonl"
    outputs = []
    for config in (good, cert):
        p = run(config, "--fail-on", "none", "--json-log", str(log), env=env)
        assert p.returncode == 0, p.stderr
        outputs.append(p.stdout + p.stderr)
        runs = sorted((config.parent / "data" / "runs").iterdir())
        q = cli(
            "report", str(runs[-1]), "--config", str(config), "--out", str(config.parent / "r.html")
        )
        assert q.returncode == 0, q.stderr
        outputs.append(q.stdout + q.stderr)
    # failures that handle the secrets: a wrong password, a wrong passphrase, a wrong secret
    for config, bad_env in (
        (good, {"ACCESSAUDIT_LDAP_PASSWORD": CANARY_PASSWORD + "-wrong"}),
        (cert, {PASSPHRASE_ENV: CANARY_PASSPHRASE + "-wrong"}),
        (good, {"ACCESSAUDIT_CLIENT_SECRET": CANARY_SECRET + "-wrong"}),
    ):
        p = run(config, "--json-log", str(log), env={**env, **bad_env})
        assert p.returncode == 2, p.stdout + p.stderr
        outputs.append(p.stdout + p.stderr)
        one_line_error(p)
    leaks = []
    sources = [(f"output {i}", o.encode()) for i, o in enumerate(outputs)]
    for folder in (tmp_path / "good", tmp_path / "cert"):
        sources += list(_all_text(folder))
    sources += [("json log", log.read_bytes())]
    for where, data in sources:
        for secret in CANARIES:
            for form in _forms(secret):
                if form in data:
                    leaks.append((where, secret))
    assert leaks == []
    assert len(sources) > 40


# --- owner-only outputs ---------------------------------------------------------------------------


def test_outputs_are_owner_only_under_umask_000(boundary_ro: BoundaryDC, tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        boundary_ro.source_toml(),
        report={"pseudonymise": True},
    )
    log = tmp_path / "logs" / "run.jsonl"
    log.parent.mkdir()
    p = run(config, "--fail-on", "none", "--json-log", str(log), umask=0)
    assert p.returncode == 0, p.stderr
    [run_dir] = sorted((tmp_path / "data" / "runs").iterdir())
    out = tmp_path / "shared" / "report.html"
    out.parent.mkdir()
    q = cli("report", str(run_dir), "--config", str(config), "--out", str(out), umask=0)
    assert q.returncode == 0, q.stderr
    q = cli("demo", "--out", str(tmp_path / "demo"), "--accounts", "600", "-q", umask=0)
    assert q.returncode == 0, q.stderr
    checked = 0
    for root in (tmp_path / "data", tmp_path / "demo"):
        for path in [root, *root.rglob("*")]:
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
            checked += 1
    for path in (log, out):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert (tmp_path / "data" / "pseudonym.key").is_file()
    assert (tmp_path / "data" / "audit-log.jsonl").is_file()
    assert checked > 40


# --- pseudonymised outputs ------------------------------------------------------------------------


def _identifying(run_dir: Path) -> list[str]:
    from accessaudit.store.runs import open_run

    info = open_run(run_dir)
    # built-in objects (RID below 1000: Administrator, Guest, Domain Admins ...) and
    # applications' roles and enterprise applications name nobody: they stay readable in a
    # pseudonymised report, and the rule catalogue's own text uses such names
    rid = pl.col("sid").str.extract(r"-(\d+)$", 1).cast(pl.Int64, strict=False).fill_null(9999)
    accounts = read_table(info, "accounts").filter(rid >= 1000)
    groups = read_table(info, "groups").filter(
        (rid >= 1000) & (pl.col("kind").fill_null("") != "app-role")
    )
    values: set[str] = set()
    for df, cols in (
        (accounts, ("username", "display_name", "upn", "mail", "sid", "dn", "employee_id")),
        (groups, ("name", "sid", "dn")),
    ):
        for c in cols:
            values.update(v for v in df[c].drop_nulls().to_list() if len(v) >= 4)
    return sorted(values)


def _leaks(text: str, values: list[str]) -> list[str]:
    found = pl.Series([text]).str.extract_many(values, ascii_case_insensitive=True)
    return [
        v
        for v in sorted(set(found[0].to_list()))
        if re.search(rf"(?<![0-9A-Za-z]){re.escape(v)}(?![0-9A-Za-z])", text, re.IGNORECASE)
    ]


def test_pseudonymised_outputs_hold_no_raw_identifier(
    boundary_ro: BoundaryDC, emu: Any, tmp_path: Path
) -> None:
    config = write_config(tmp_path, boundary_ro.source_toml() + "\n" + entra_source_toml(emu))
    p = run(config, "--fail-on", "none", "--pseudonymise")
    assert p.returncode == 0, p.stderr
    [run_dir] = sorted((tmp_path / "data" / "runs").iterdir())
    values = _identifying(run_dir)
    assert len(values) > 10_000  # the boundary domain and the sample tenant
    q = cli("report", str(run_dir), "--config", str(config), "--pseudonymise", "--out",
            str(tmp_path / "again.html"))  # fmt: skip
    assert q.returncode == 0, q.stderr
    files = [f for f in sorted(run_dir.iterdir()) if f.suffix != ".parquet"]
    files.append(tmp_path / "again.html")
    found = {}
    for path in files:
        if path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as z:
                raw = "\n".join(z.read(n).decode("utf-8") for n in z.namelist())
        else:
            raw = path.read_text(encoding="utf-8-sig")
        text = raw + "\n" + html.unescape(raw)
        leaks = _leaks(text, values)
        if leaks:
            found[path.name] = leaks[:5]
    assert found == {}
    assert not _leaks(p.stdout + p.stderr, values)
    # the control: the stored tables are raw, so the check has something to find
    plain = (run_dir / "accounts.parquet").read_bytes()
    assert plain and _leaks(str(pl.read_parquet(run_dir / "accounts.parquet").rows()), values)


# --- the tool's own audit log --------------------------------------------------------------------

AUDIT_FIELDS = {"ts", "event", "command", "argv", "user", "uid", "host", "pid", "tool_version",
                "config", "config_hash"}  # fmt: skip


def test_audit_log_records_every_run_report_and_prune(tmp_path: Path) -> None:
    from support.hardening_cli import sample_source_toml

    config = write_config(tmp_path, sample_source_toml(200), audit={"keep_runs": 1})
    for _ in range(2):
        assert run(config, "--fail-on", "none").returncode == 0
    runs = sorted((tmp_path / "data" / "runs").iterdir())
    assert cli("report", str(runs[-1]), "--config", str(config), "--out",
               str(tmp_path / "r.html")).returncode == 0  # fmt: skip
    assert cli("prune", "--config", str(config)).returncode == 0
    path = tmp_path / "data" / "audit-log.jsonl"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(e["command"], e["event"]) for e in lines] == [
        ("run", "start"), ("run", "finished"), ("run", "start"), ("run", "finished"),
        ("report", "exported"), ("prune", "pruned"),
    ]  # fmt: skip
    for e in lines:
        assert set(e) >= AUDIT_FIELDS, e
        assert e["config"] == str(config.resolve())
    first, second = lines[1], lines[3]
    assert second["pruned"] == [first["run_id"]]  # erasure by retention is recorded
    assert second["sources"][0]["name"] == "alliance-sample"
    assert second["sources"][0]["counts"]["accounts"] > 0
    assert set(second["exported"]) == {"report.html", "findings.csv", "actions.csv",
                                       "history.csv", "trend.csv", "findings.json",
                                       "actions.xlsx", "rules.json", "attribution.json",
                                       "evidence-pack.html"}  # fmt: skip
    exported = lines[4]
    assert exported["file"] == str((tmp_path / "r.html").resolve())
    assert exported["pack_file"] == str((tmp_path / "r-evidence-pack.html").resolve())
    assert len(exported["pack_sha256"]) == 64
    assert exported["run_id"] == second["run_id"] and len(exported["sha256"]) == 64


def test_audit_log_records_a_failed_run(boundary_ro: BoundaryDC, tmp_path: Path) -> None:
    config = write_config(tmp_path, boundary_ro.source_toml())
    p = run(config, env={"ACCESSAUDIT_LDAP_PASSWORD": "not-it-at-all"})
    assert p.returncode == 2
    lines = [
        json.loads(x) for x in (tmp_path / "data" / "audit-log.jsonl").read_text().splitlines()
    ]
    assert [e["event"] for e in lines] == ["start", "error"]
    assert lines[1]["error"] == "AuthError" and lines[1]["exit_code"] == 2
    assert "not-it-at-all" not in json.dumps(lines)
