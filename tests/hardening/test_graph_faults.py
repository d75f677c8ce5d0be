"""Microsoft Graph faults through the command line: the Graph emulator serving the embedded
sample's tenant, its fault switches, and ``accessaudit run`` in its own process.

Each scenario writes a complete run first, then runs with the fault and checks
(:func:`conftest.check_scenario`): the documented exit code, one clear line, no traceback, the
incomplete units in the manifest, nothing resolved by an incomplete run, earlier runs intact.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from support.hardening_cli import (
    CANARY_SECRET,
    check_scenario,
    history,
    manifests,
    run,
    write_config,
)
from support.hardening_env import CLIENT_ID, entra_source_toml, serve_sample_tenant

from accessaudit.graphemu import READ_ROLES, Fault, GraphEmulator, Tenant
from accessaudit.graphemu.protocol import Reply
from accessaudit.sample.entra import TENANT_ID

pytestmark = pytest.mark.slow


class LoopingEmulator(GraphEmulator):
    """An emulator whose pages matching ``loop`` (after the first) link back to themselves."""

    loop: str | None = None

    def _graph(self, method: str, target: str, headers: Mapping[str, str], **kwargs: Any) -> Reply:
        reply = super()._graph(method, target, headers, **kwargs)
        body = reply.body
        if (
            self.loop
            and self.loop in target
            and "$skiptoken" in target
            and reply.status == 200
            and isinstance(body, dict)
        ):
            reply.body = {**body, "@odata.nextLink": self.base_url + target}
        return reply


@dataclass
class Env:
    emu: Any
    config: Path
    data: Path

    def rerun(self, *args: str) -> Any:
        return run(self.config, "--fail-on", "none", *args)


def _start(emu: Any, tmp_path: Path, **source: object) -> Env:
    config = write_config(tmp_path, entra_source_toml(emu, **source))
    first = run(config, "--fail-on", "none")
    check_scenario(first, config, exit_code=0, runs_before=0)
    emu.clear_log()
    return Env(emu, config, tmp_path / "data")


@pytest.fixture
def env(emu: Any, tmp_path: Path) -> Env:
    """Full collections (no delta links), so every listing runs again in the faulty run."""
    return _start(emu, tmp_path, use_delta=False)


@pytest.fixture
def delta_env(emu: Any, tmp_path: Path) -> Env:
    return _start(emu, tmp_path, use_delta=True)


@pytest.fixture
def looping(hpki: Any, entra_tables: dict[str, pl.DataFrame], tmp_path: Path) -> Iterator[Env]:
    emulator = serve_sample_tenant(LoopingEmulator(hpki).start(), entra_tables)
    try:
        yield _start(emulator, tmp_path, use_delta=False, page_size=5)
    finally:
        emulator.stop()


def units_of(m: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {u["name"]: u for s in m["sources"] for u in s["units"]}


def statuses(emu: Any, kind: str, contains: str) -> list[int]:
    return [r.status for r in emu.requests(kind) if contains in r.target]


def bad_units(m: Mapping[str, Any]) -> set[str]:
    return {n for n, u in units_of(m).items() if not u["complete"]}


# --- throttling -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "retry_after", ["1", "0.05", None], ids=["integer", "fractional", "absent"]
)
def test_429_is_waited_out_and_the_run_is_complete(env: Env, retry_after: str | None) -> None:
    env.emu.faults.add(Fault(match="/v1.0/users?", status=429, retry_after=retry_after, times=2))
    p = env.rerun()
    check_scenario(p, env.config, exit_code=0, runs_before=1)
    assert statuses(env.emu, "graph", "/v1.0/users?")[:3] == [429, 429, 200]


def test_retry_after_longer_than_the_budget(env: Env) -> None:
    env.emu.faults.add(Fault(match="/v1.0/users?", status=429, retry_after="315"))
    p = env.rerun()
    m = check_scenario(p, env.config, exit_code=3, runs_before=1)
    assert m is not None
    detail = units_of(m)["users"]["detail"]
    assert detail.startswith("HTTP 429 TooManyRequests: Retry-After 315 s exceeds the remaining")
    assert statuses(env.emu, "graph", "/v1.0/users?") == [429]  # not slept, not retried
    assert "Retry-After 315 s" in p.stderr


# --- authentication and permissions -------------------------------------------------------------


def test_401_after_token_refresh(env: Env) -> None:
    env.emu.faults.add(Fault(match="/v1.0/servicePrincipals?", status=401, times=None))
    p = env.rerun()
    m = check_scenario(p, env.config, exit_code=3, runs_before=1)
    assert m is not None
    assert bad_units(m) == {
        "service-principals",
        "app-role-assignments",
        "service-principal-owners",
    }
    assert units_of(m)["service-principal-owners"]["detail"] == (
        "service principals could not be listed"
    )
    assert units_of(m)["service-principals"]["detail"].endswith("(after token refresh)")
    assert len(env.emu.requests("token")) == 2  # the first token and exactly one refresh


def test_401_on_every_graph_call(env: Env) -> None:
    env.emu.faults.add(Fault(match="/v1.0/", status=401, times=None))
    p = env.rerun()
    m = check_scenario(p, env.config, exit_code=3, runs_before=1)
    assert m is not None
    assert all(not u["complete"] for u in units_of(m).values() if u["name"] != "sign-in")
    # one refresh per unit at most: a 401 storm never becomes a request storm
    assert len(env.emu.requests("graph")) + len(env.emu.requests("batch")) <= 2 * len(units_of(m))


def test_wrong_client_secret_is_one_line_and_never_printed(env: Env) -> None:
    p = run(env.config, env={"ACCESSAUDIT_CLIENT_SECRET": "not-the-secret-value-1"})
    check_scenario(p, env.config, exit_code=2, runs_before=1)
    assert "not-the-secret-value-1" not in p.stderr + p.stdout
    assert CANARY_SECRET not in p.stderr + p.stdout


def test_403_for_a_missing_permission(env: Env) -> None:
    env.emu.faults.add(
        Fault(match="/roleManagement/directory/roleAssignments", status=403, times=None)
    )
    p = env.rerun()
    m = check_scenario(p, env.config, exit_code=3, runs_before=1)
    assert m is not None
    assert bad_units(m) == {"role-assignments"}
    assert units_of(m)["role-assignments"]["detail"].startswith(
        "HTTP 403 Authorization_RequestDenied"
    )


def test_limited_information_members(env: Env) -> None:
    tenant = env.emu.tenants[TENANT_ID]
    group = next(iter(tenant.members))
    contact = tenant.add_contact(displayName="an external contact")
    tenant.add_member(group, contact)
    # without OrgContact.Read.All (the sample's hidden-membership group stays readable)
    roles = [*READ_ROLES, "Member.Read.Hidden"]
    env.emu.register_app(TENANT_ID, CLIENT_ID, secret=CANARY_SECRET, roles=roles)
    p = env.rerun()
    m = check_scenario(p, env.config, exit_code=3, runs_before=1)
    assert m is not None
    # the sample's WMP-Operations has an org contact of its own (sample.entra_messy)
    with_contacts = {
        g
        for g, ids in tenant.members.items()
        if any(tenant.type_of(i) == "orgContact" for i in ids)
    }
    assert with_contacts >= {group} and len(with_contacts) == 2
    assert bad_units(m) == {"members", *(f"members:{g}" for g in with_contacts)}
    assert units_of(m)[f"members:{group}"]["detail"] == (
        "1 member(s) returned with limited information (orgContact): grant OrgContact.Read.All"
    )


# --- paging ------------------------------------------------------------------------------------


def test_next_link_loop(looping: Env) -> None:
    looping.emu.loop = "/v1.0/users?"
    p = looping.rerun()
    m = check_scenario(p, looping.config, exit_code=3, runs_before=1)
    assert m is not None
    assert units_of(m)["users"]["detail"] == (
        "@odata.nextLink loop: page 2 links back to a page already read"
    )
    assert len(statuses(looping.emu, "graph", "/v1.0/users?")) == 2


def test_next_link_loop_inside_batch(looping: Env) -> None:
    looping.emu.loop = "/members?"
    p = looping.rerun()
    m = check_scenario(p, looping.config, exit_code=3, runs_before=1)
    assert m is not None
    broken = {n for n in bad_units(m) if n.startswith("members:")}
    assert broken and "members" in bad_units(m)
    for name in broken:
        assert units_of(m)[name]["detail"].startswith("@odata.nextLink loop: page ")


def test_5xx_on_page_k_is_retried(env: Env) -> None:
    env.emu.faults.add(Fault(match="/v1.0/users?", status=503, retry_after="0", skip=2, times=2))
    p = env.rerun()
    check_scenario(p, env.config, exit_code=0, runs_before=1)
    got = statuses(env.emu, "graph", "/v1.0/users?")
    assert got[:5] == [200, 200, 503, 503, 200]


def test_5xx_on_page_k_that_persists(env: Env) -> None:
    env.emu.faults.add(Fault(match="/v1.0/users?", status=502, retry_after="0", skip=1, times=None))
    p = env.rerun()
    m = check_scenario(p, env.config, exit_code=3, runs_before=1)
    assert m is not None
    assert units_of(m)["users"]["detail"] == (
        "HTTP 502 badGateway: Bad gateway. (gave up after 3 retries)"
    )


def test_expired_page_token_restarts_the_listing(env: Env) -> None:
    env.emu.faults.add(
        Fault(match="/v1.0/users?", action="expired-page-token", where="top", skip=1)
    )
    p = env.rerun()
    m = check_scenario(p, env.config, exit_code=0, runs_before=1)
    assert m is not None
    assert "restarted 1x after expired page tokens" in units_of(m)["users"]["detail"]


# --- objects that change during collection -------------------------------------------------------


def _a_group(env: Env) -> str:
    tenant: Tenant = env.emu.tenants[TENANT_ID]
    return next(g for g, ids in tenant.members.items() if ids)


def test_group_deleted_between_listing_and_members(env: Env) -> None:
    gone = _a_group(env)
    env.emu.faults.add(
        Fault(match=f"/groups/{gone}", status=404, code="Request_ResourceNotFound", times=None)
    )
    p = env.rerun()
    m = check_scenario(p, env.config, exit_code=0, runs_before=1)
    assert m is not None
    assert units_of(m)["members"]["detail"].endswith(
        "; 1 group(s) deleted during collection dropped"
    )


def test_404_on_members_of_a_group_that_still_exists(env: Env) -> None:
    """Replication lag: the members answer 404 but the group is there; never "deleted"."""
    group = _a_group(env)
    env.emu.faults.add(
        Fault(match=f"/groups/{group}/", status=404, code="Request_ResourceNotFound", times=None)
    )
    p = env.rerun()
    m = check_scenario(p, env.config, exit_code=3, runs_before=1)
    assert m is not None
    assert units_of(m)[f"members:{group}"]["detail"] == (
        "members answered 404, but the group still exists"
    )


def test_delta_410_falls_back_to_a_full_collection(delta_env: Env) -> None:
    """The second run uses the stored delta links; Graph answers 410 Gone for both."""
    env = delta_env
    state = manifests(env.data)[-1]["sources"][0]["state"]
    for part in ("users", "groups"):
        token = state[f"{part}_delta_link"].split("$deltatoken=")[1]
        env.emu.faults.add(Fault(match=token, action="delta-reset"))
    p = env.rerun()
    m = check_scenario(p, env.config, exit_code=0, runs_before=1)
    assert m is not None
    assert statuses(env.emu, "graph", "/delta?") == [410, 200, 410, 200]
    h = history(env.data, m["run_id"])
    assert set(h["status"]) == {"persisting"}  # the same findings, nothing new or resolved


def test_graph_unreachable_at_start(env: Env, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env.emu.resources.add(f"https://127.0.0.1:{port}")
    config = write_config(
        env.config.parent,
        entra_source_toml(
            env.emu, graph_url=f"https://127.0.0.1:{port}/v1.0", max_retries=1, use_delta=False
        ),
    )
    p = run(config)
    check_scenario(p, config, exit_code=2, runs_before=1)
    assert f"cannot reach Microsoft Graph at https://127.0.0.1:{port}/v1.0" in p.stderr
