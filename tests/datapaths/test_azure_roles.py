"""Azure role assignments: from the ARM emulator (real msal, a token for ARM's audience, paging,
429 + Retry-After, 403 / 404 per scope) and from ``az role assignment list`` JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.entra_data import CLIENT_ID, SECRET, TENANT, small
from support.loopback import without_proxies

from accessaudit.config.datasources import AzureSource
from accessaudit.connectors.azure.collect import collect
from accessaudit.errors import InputFileError
from accessaudit.graphemu import Fault, GraphEmulator, TestPKI, make_pki, tenant_from_sample
from accessaudit.graphemu.arm import CONTRIBUTOR, OWNER, READER, ArmTenant, Assignment

MG = "alliance-mg"
WMP, WK = "0b1c2d3e-0000-4000-8000-00000000a001", "0b1c2d3e-0000-4000-8000-00000000a002"
USER_K, USER_W = "d1000000-0000-4000-8000-000000000001", "d1000000-0000-4000-8000-000000000002"
GROUP_K = "d1000000-0000-4000-8000-000000000003"
MG_SCOPE = f"/providers/Microsoft.Management/managementGroups/{MG}"
RG = f"/subscriptions/{WMP}/resourceGroups/Intel-RG"
VM = f"{RG}/providers/Microsoft.Compute/virtualMachines/intel-vm1"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return make_pki(tmp_path_factory.mktemp("armpki"))


@pytest.fixture
def emu(pki: TestPKI, monkeypatch: pytest.MonkeyPatch) -> Iterator[GraphEmulator]:
    without_proxies(monkeypatch)
    emulator = GraphEmulator(pki).start()
    emulator.add_tenant(tenant_from_sample(small(bulk=1), tenant_id=TENANT))
    app = emulator.register_app(TENANT, CLIENT_ID, secret=SECRET, roles=[])
    arm = ArmTenant(TENANT, {MG: None}, {WMP: MG, WK: MG}, page_size=2)
    arm.assignments = [
        Assignment(f"/subscriptions/{WMP}", READER, app.service_principal_id, "ServicePrincipal"),
        Assignment(f"/subscriptions/{WMP}", OWNER, USER_K),
        Assignment(RG, CONTRIBUTOR, GROUP_K, "Group"),
        Assignment(VM, READER, USER_W),
        Assignment(MG_SCOPE, READER, USER_W),
        Assignment(f"/subscriptions/{WK}", OWNER, USER_W),  # the app cannot read WK
    ]
    emulator.add_arm(arm)
    try:
        yield emulator
    finally:
        emulator.stop()
    assert not emulator.errors, emulator.errors[0]


def source(emu: GraphEmulator, pki: TestPKI, tmp_path: Path, **over: Any) -> AzureSource:
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    settings: dict[str, Any] = {
        "kind": "azure",
        "name": "azure",
        "tenant_id": TENANT,
        "client_id": CLIENT_ID,
        "authority_host": emu.base_url,
        "management_url": emu.base_url,
        "client_secret_file": secret,
        "ca_file": pki.ca_file,
        "subscriptions": [WMP],
        "retry_backoff": 0.02,
        "time_budget": 30.0,
    } | over
    return AzureSource(**settings)


def test_arm_assignments_at_above_and_below_a_subscription(
    emu: GraphEmulator, pki: TestPKI, tmp_path: Path
) -> None:
    emu.faults.add(Fault(match="roleAssignments", status=429, retry_after="0.05", times=1))
    collection = collect(source(emu, pki, tmp_path), now=None)
    grants = collection.table("grants")
    sp = next(iter(emu.apps.values())).service_principal_id
    got = grants.select("principal_id", "resource_id", "right").rows()
    assert sorted(got, key=lambda r: (r[1], r[2], r[0])) == sorted(
        [
            (USER_W, MG_SCOPE.lower(), "Reader"),
            (sp, f"/subscriptions/{WMP}", "Reader"),
            (USER_K, f"/subscriptions/{WMP}", "Owner"),
            (GROUP_K, RG.lower(), "Contributor"),
            (USER_W, VM.lower(), "Reader"),
        ],
        key=lambda r: (r[1], r[2], r[0]),
    )  # one subscription holds two assignments: compared in a total order, not by scope alone
    resources = collection.table("resources").sort("resource_id")
    assert resources.select("resource_id", "object_class", "name", "parent_id").rows() == [
        (MG_SCOPE.lower(), "managementGroup", MG, None),
        (f"/subscriptions/{WMP}", "subscription", WMP, None),
        (RG.lower(), "resourceGroup", "Intel-RG", f"/subscriptions/{WMP}"),
        (VM.lower(), "resource", "intel-vm1", RG.lower()),
    ]
    assert set(grants["resource_kind"]) == {"azure-scope"}
    unit = collection.units[0]
    assert (unit.name, unit.complete, unit.count) == (
        f"role assignments /subscriptions/{WMP}",
        True,
        5,
    )
    arm = emu.requests("arm")
    # definitions: 4 built-ins on 2 pages; assignments: one 429, then 5 on 3 pages
    assert [r.status for r in arm] == [200, 200, 429, 200, 200, 200]
    assert all("api-version=2022-04-01" in r.target for r in arm)


def test_a_scope_the_app_cannot_read_or_that_does_not_exist_is_incomplete(
    emu: GraphEmulator, pki: TestPKI, tmp_path: Path
) -> None:
    missing = "0b1c2d3e-0000-4000-8000-00000000dead"
    collection = collect(source(emu, pki, tmp_path, subscriptions=[WMP, WK, missing]), now=None)
    units = {u.name: (u.complete, u.detail) for u in collection.units}
    assert units[f"role assignments /subscriptions/{WMP}"][0] is True
    complete, detail = units[f"role assignments /subscriptions/{WK}"]
    assert not complete and detail.startswith("HTTP 403 AuthorizationFailed: The client ")
    assert f"over scope '/subscriptions/{WK}'" in detail
    complete, detail = units[f"role assignments /subscriptions/{missing}"]
    assert (complete, detail) == (
        False,
        f"HTTP 404 SubscriptionNotFound: The subscription '{missing}' could not be found.",
    )
    assert not collection.complete


def test_a_graph_token_is_refused_by_arm(emu: GraphEmulator, pki: TestPKI, tmp_path: Path) -> None:
    cfg = source(emu, pki, tmp_path, resource="https://graph.microsoft.com")
    collection = collect(cfg, now=None)
    (unit,) = collection.units
    assert not unit.complete
    assert unit.detail.startswith("HTTP 401 InvalidAuthenticationTokenAudience: The access token")
    assert "(after token refresh)" in unit.detail


def test_arm_throttling_bucket_answers_429_with_retry_after(
    emu: GraphEmulator, pki: TestPKI, tmp_path: Path
) -> None:
    emu.arm[TENANT].bucket, emu.arm[TENANT].refill = 3.0, 1.0  # 3 reads, then 1 per second
    collection = collect(source(emu, pki, tmp_path), now=None)
    assert collection.complete and collection.table("grants").height == 5
    statuses = [r.status for r in emu.requests("arm")]
    assert statuses.count(429) >= 1 and statuses.count(200) == 5


AZ: list[dict[str, Any]] = [
    {
        "condition": None,
        "id": f"/subscriptions/{WMP}/providers/Microsoft.Authorization/roleAssignments/a1",
        "name": "a1",
        "principalId": USER_K,
        "principalName": "kim.ward@warwickshire.police.uk",
        "principalType": "User",
        "roleDefinitionId": f"/subscriptions/{WMP}/providers/Microsoft.Authorization/"
        f"roleDefinitions/{OWNER}",
        "roleDefinitionName": "Owner",
        "scope": f"/subscriptions/{WMP}",
        "type": "Microsoft.Authorization/roleAssignments",
    },
    {
        "id": f"{RG}/providers/Microsoft.Authorization/roleAssignments/a2",
        "principalId": GROUP_K,
        "principalName": "WK Ops",
        "principalType": "Group",
        "resourceGroup": "Intel-RG",
        "roleDefinitionId": f"/subscriptions/{WMP}/providers/Microsoft.Authorization/"
        "roleDefinitions/0000aaaa-0000-4000-8000-000000000000",
        "roleDefinitionName": None,
        "scope": RG,
    },
    {
        "id": "NA(classic admins)",
        "principalId": "",
        "principalName": "old.admin@westmercia.police.uk",
        "roleDefinitionId": "NA(classic admin role)",
        "roleDefinitionName": "CoAdministrator",
        "scope": f"/subscriptions/{WMP}",
    },
]


def test_az_cli_output(tmp_path: Path) -> None:
    path = tmp_path / "az.json"
    path.write_text(json.dumps(AZ, indent=2))
    cfg = AzureSource(kind="azure", name="az", tenant_id=TENANT, file=path)
    grants = collect(cfg, now=None).table("grants").sort("resource_id", "principal_id")
    assert grants.select("principal_id", "resource_id", "right").rows() == [
        (USER_K, f"/subscriptions/{WMP}", "Owner"),
        ("old.admin@westmercia.police.uk", f"/subscriptions/{WMP}", "CoAdministrator"),
        (GROUP_K, RG.lower(), "role 0000aaaa-0000-4000-8000-000000000000"),
    ]
    bad = [AZ[0], {k: v for k, v in AZ[1].items() if k != "scope"}]
    path.write_text(json.dumps(bad, indent=2))
    with pytest.raises(InputFileError, match=r"az.json:14: role assignment without scope"):
        collect(cfg, now=None)
    path.write_text(json.dumps(AZ, indent=2).replace('"name": "a1",', '"name": "a1"'))
    with pytest.raises(InputFileError, match=r"az.json:6: malformed JSON: Expecting ','"):
        collect(cfg, now=None)
