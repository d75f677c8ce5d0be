"""Credentials and permissions: msal's error dicts become one AuthError with a hint."""

from __future__ import annotations

import socket

import pytest
from support.entra_data import CLIENT_ID, ROLES, SECRET, SOURCE, TENANT

from accessaudit.connectors.entra.collect import collect
from accessaudit.errors import AuthError, ConfigError, ConnectError
from accessaudit.graphemu import READ_ROLES, make_app_certificate
from accessaudit.transport.graph_auth import is_read_only, write_permissions


def test_bad_client_secret(make_cfg, tenant, tmp_path):
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-secret")

    with pytest.raises(AuthError) as err:
        collect(make_cfg(client_secret_file=wrong))

    message = err.value.message
    assert message.startswith(f"{SOURCE}: 127.0.0.1:")
    assert (
        f"refused client {CLIENT_ID}: invalid_client AADSTS7000215 Invalid client secret" in message
    )
    assert err.value.hint == (
        "use the secret's Value (not its Secret ID) from the app registration's "
        "'Certificates & secrets' page"
    )
    assert "\n" not in str(err.value)


def test_the_identity_servers_words_reach_the_terminal_not_the_logs(make_cfg, tenant, tmp_path):
    """The token endpoint's description is the server's text: shown on the terminal, replaced by
    its length in the logs (``log_text``); the codes stay in both."""
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-secret")
    with pytest.raises(AuthError) as err:
        collect(make_cfg(client_secret_file=wrong))
    assert "Invalid client secret provided" in str(err.value)
    logged = err.value.log_text()
    assert "Invalid client secret provided" not in logged
    assert "invalid_client AADSTS7000215 [" in logged and "characters from outside" in logged


def test_an_error_quoting_the_secret_sent_shows_neither_the_secret_nor_the_text(
    emu, make_cfg, tenant, tmp_path
):
    """A misbehaving identity endpoint that quotes the rejected secret back: the secret is in
    no message, no hint and no log line (like an LDAP server echoing a bind)."""
    canary = "Canary-Secret-7f3a9c1e-DO-NOT-SHOW"
    wrong = tmp_path / "wrong"
    wrong.write_text(canary)
    emu.echo_rejected_secret = True
    try:
        with pytest.raises(AuthError) as err:
            collect(make_cfg(client_secret_file=wrong))
    finally:
        emu.echo_rejected_secret = False
    for text in (str(err.value), err.value.log_text(), repr(err.value.args)):
        assert canary not in text and canary[:12] not in text
    assert err.value.message.endswith(
        "invalid_client AADSTS7000215 (the server's text quotes the credential sent: not shown)"
    )
    assert err.value.hint.startswith("use the secret's Value")


def test_expired_client_secret(emu, make_cfg, tenant, tmp_path):
    emu.register_app(TENANT, CLIENT_ID, expired_secret="old-secret", roles=ROLES)
    old = tmp_path / "old"
    old.write_text("old-secret")

    with pytest.raises(AuthError) as err:
        collect(make_cfg(client_secret_file=old))

    assert "AADSTS7000222" in err.value.message
    assert err.value.hint.startswith("the client secret has expired")


def test_secret_from_environment_variable(make_cfg, tenant, monkeypatch):
    monkeypatch.setenv("AA_TEST_ENTRA_SECRET", SECRET)

    result = collect(make_cfg(client_secret_file=None, client_secret_env="AA_TEST_ENTRA_SECRET"))

    assert result.complete


def test_unknown_tenant(make_cfg, tenant):
    other = "00000000-1111-2222-3333-444444444444"

    with pytest.raises(AuthError) as err:
        collect(make_cfg(tenant_id=other))

    assert err.value.message.startswith(f"entra:{other}: 127.0.0.1:")
    assert f"rejected tenant {other}: AADSTS90002 Tenant '{other}' not found." in err.value.message
    assert err.value.hint.startswith("check tenant_id")


def test_unknown_client(make_cfg, tenant):
    with pytest.raises(AuthError) as err:
        collect(make_cfg(client_id="99999999-8888-7777-6666-555555555555"))

    assert "unauthorized_client AADSTS700016 Application with identifier" in err.value.message
    assert err.value.hint.startswith("check client_id and tenant_id")


@pytest.mark.parametrize("with_thumbprint", [False, True], ids=["x5t#S256", "x5t-sha1"])
def test_certificate_credential(emu, make_cfg, tenant, app_cert, small_tables, with_thumbprint):
    emu.register_app(TENANT, CLIENT_ID, certificate=app_cert, roles=ROLES)
    cfg = make_cfg(
        client_secret_file=None,
        certificate_file=app_cert.pem_file,
        certificate_thumbprint=app_cert.thumbprint_sha1 if with_thumbprint else None,
    )

    result = collect(cfg)

    assert result.complete
    assert result.tables["accounts"].height == small_tables["accounts"].height


def test_unregistered_certificate(emu, make_cfg, tenant, app_cert, tmp_path):
    emu.register_app(TENANT, CLIENT_ID, certificate=app_cert, roles=ROLES)
    other = make_app_certificate(tmp_path, "other")

    with pytest.raises(AuthError) as err:
        collect(make_cfg(client_secret_file=None, certificate_file=other.pem_file))

    assert "invalid_client AADSTS700027" in err.value.message
    assert err.value.hint.startswith("upload this certificate's public part")


def test_write_permission_is_refused(emu, make_cfg, tenant):
    emu.register_app(TENANT, CLIENT_ID, secret=SECRET, roles=[*ROLES, "Group.ReadWrite.All"])

    with pytest.raises(AuthError) as err:
        collect(make_cfg())

    assert err.value.message == (
        f"{SOURCE}: the app's token from 127.0.0.1:{emu.port} grants write permission(s) "
        "Group.ReadWrite.All; accessaudit only reads"
    )
    assert "allow_write_permissions = true" in err.value.hint
    assert not emu.requests("graph")  # refused before the first Graph request


def test_write_permission_allowed_when_configured(emu, make_cfg, tenant):
    emu.register_app(TENANT, CLIENT_ID, secret=SECRET, roles=[*ROLES, "Directory.ReadWrite.All"])

    result = collect(make_cfg(allow_write_permissions=True))

    assert result.complete


def test_no_permissions_at_all(emu, make_cfg, tenant):
    emu.register_app(TENANT, CLIENT_ID, secret=SECRET, roles=[])

    with pytest.raises(AuthError) as err:
        collect(make_cfg())

    assert "carries no application permissions" in err.value.message
    assert "admin consent" in err.value.hint


def test_read_only_classification():
    assert all(is_read_only(r) for r in READ_ROLES)
    assert is_read_only("User.ReadBasic.All")
    assert is_read_only("Member.Read.Hidden")
    assert write_permissions(
        frozenset({"User.Read.All", "User.ReadWrite.All", "Mail.Send", "User.Invite.All",
                   "Directory.AccessAsUser.All", "RoleManagement.ReadWrite.Directory", "Odd"})
    ) == [
        "Directory.AccessAsUser.All",
        "Mail.Send",
        "Odd",
        "RoleManagement.ReadWrite.Directory",
        "User.Invite.All",
        "User.ReadWrite.All",
    ]  # fmt: skip


def test_untrusted_server_certificate(make_cfg, tenant):
    with pytest.raises(ConnectError) as err:
        collect(make_cfg(ca_file=None))

    assert err.value.message.startswith(f"{SOURCE}: TLS to 127.0.0.1:")
    assert err.value.message.endswith(
        ": [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
        "unable to get local issuer certificate"
    )
    assert err.value.hint.startswith("set ca_file")


def test_unreachable_authority(make_cfg, tenant):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    with pytest.raises(ConnectError) as err:
        collect(make_cfg(authority_host=f"https://127.0.0.1:{port}"))

    assert (
        err.value.message
        == f"{SOURCE}: cannot reach 127.0.0.1:{port}: [Errno 111] Connection refused"
    )


def test_no_credential_configured(make_cfg, tenant):
    with pytest.raises(ConfigError) as err:
        collect(make_cfg(client_secret_file=None))

    assert err.value.message == "source entra: no credential configured"


def test_two_credentials_configured(make_cfg, tenant, app_cert):
    with pytest.raises(ConfigError) as err:
        collect(make_cfg(certificate_file=app_cert.pem_file))

    assert "both certificate_file and a client secret" in err.value.message


def test_plain_http_is_refused(make_cfg, tenant):
    with pytest.raises(ConfigError) as err:
        collect(make_cfg(graph_url="http://127.0.0.1:1/v1.0"))

    assert (
        err.value.message == "source entra: graph_url http://127.0.0.1:1/v1.0 is not an https URL"
    )
