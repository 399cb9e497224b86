"""Full reads of every catalog type against the simulator over HTTPS, checked against its server state."""

from __future__ import annotations

from typing import Any

import pytest

from localdev.graphsim.testing import SimHandle
from shared.graph import CATALOG, CapturedPolicy, GraphClientFactory, PolicyReader
from tests.graph.conftest import SimTenant, make_tenant


def server_objects(tenant: SimTenant, type_key: str) -> dict[str, dict[str, Any]]:
    policy_type = CATALOG[type_key]
    # A singleton without an id of its own is known by its type key, as the reader names it.
    return {o.get("id") or type_key: o for o in tenant.sim.control.objects(tenant.tenant_id, type_key)
            if policy_type.keeps(o)}


def assert_same_content(captured: CapturedPolicy, server: dict[str, Any]) -> None:
    """What we captured holds everything the server stores for the object."""
    body = captured.body
    key = captured.type_key
    assert captured.complete, captured.problems
    if key == "settingsCatalog":
        assert [s["id"] for s in body["settings"]] == [s["id"] for s in server["settings"]]
        assert captured.settings_count_reported == captured.settings_count_captured == len(server["settings"])
    if key == "administrativeTemplate":
        assert [v["id"] for v in body["definitionValues"]] == [v["id"] for v in server["definitionValues"]]
        for got, want in zip(body["definitionValues"], server["definitionValues"], strict=True):
            assert got["definition"]["id"] == want["_definitionId"]
            assert [p["id"] for p in got["presentationValues"]] == [
                p["id"] for p in want["presentationValues"]]
    if key == "compliancePolicy":
        assert [r["ruleName"] for r in body["scheduledActionsForRule"]] == [
            r["ruleName"] for r in server["scheduledActionsForRule"]]
        assert all(r["scheduledActionConfigurations"] for r in body["scheduledActionsForRule"])
    if key == "powerShellScript":
        assert body["scriptContent"] == server["scriptContent"]
        assert body["scriptContent"]
    if key == "remediationScript":
        assert body["detectionScriptContent"] == server["detectionScriptContent"]
    if key in ("appProtectionPolicy", "appConfigurationPolicy"):
        assert [a["id"] for a in body["apps"]] == [a["id"] for a in server["apps"]]
    if key == "endpointSecurityIntent":
        assert len(body["settings"]) == len(server["settings"]) > 0
    if key == "notificationTemplate":
        assert len(body["localizedNotificationMessages"]) == len(server["localizedNotificationMessages"]) > 0
    if key == "complianceSettingsPolicy":
        assert [s["id"] for s in body["settings"]] == [s["id"] for s in server["settings"]]
        assert captured.settings_count_reported == captured.settings_count_captured == len(server["settings"])
        def action_ids(policy: dict[str, Any]) -> list[list[str]]:
            return [[a["id"] for a in r["scheduledActionConfigurations"]]
                    for r in policy["scheduledActionsForRule"]]

        assert action_ids(body) == action_ids(server)
    if key == "complianceScript":
        assert body["detectionScriptContent"] == server["detectionScriptContent"]
        assert body["detectionScriptContent"]
    if key in ("macOSShellScript", "customAttributeScript"):
        assert body["scriptContent"] == server["scriptContent"]
        assert body["scriptContent"]
    if key == "driverUpdateProfile":
        assert body["driverInventories"] == server["driverInventories"]
    if key == "roleAssignment":
        assert body["roleDefinition"]["id"] == server["roleDefinition"]["id"]
        assert [t["id"] for t in body["roleScopeTags"]] == [t["id"] for t in server["roleScopeTags"]]
        assert body["members"] == server["members"]
    if key == "roleDefinition":
        assert body["rolePermissions"] == server["rolePermissions"]
    if key == "brandingProfile":
        assert body["themeColorLogo"] == server["themeColorLogo"]
    if key == "policySet":
        assert [i["payloadId"] for i in body["items"]] == [i["payloadId"] for i in server["items"]]
        assert body["items"]
    if key == "authenticationStrengthPolicy":
        assert body["combinationConfigurations"] == server["combinationConfigurations"]
        assert body["allowedCombinations"] == server["allowedCombinations"]
    if key in ("conditionalAccessPolicy", "namedLocation", "deviceManagementPartner",
               "remoteAssistancePartner", "reusablePolicySetting", "termsAndConditions"):
        # The list holds the whole object: every stored property is captured as stored.
        assert {k: v for k, v in body.items() if k != "assignments"} == {
            k: v for k, v in server.items() if k != "assignments" and not k.startswith("_")
            and k not in ("acceptanceStatuses", "referencingConfigurationPolicies")}
    if CATALOG[key].assignments is not None and "assignments" in server:
        assert sorted(a["id"] for a in body["assignments"]) == sorted(a["id"] for a in server["assignments"])


async def test_every_catalog_type_is_read_in_full(demo: SimTenant, demo_factory: GraphClientFactory) -> None:
    reader = PolicyReader(demo.client(demo_factory, read_only=True))
    captured = [c async for c in reader.read_all(list(CATALOG), concurrency=6)]
    by_type: dict[str, dict[str, CapturedPolicy]] = {}
    for c in captured:
        by_type.setdefault(c.type_key, {})[c.id] = c
    for key in CATALOG:
        server = server_objects(demo, key)
        assert server, f"the demo tenant has no {key}"
        assert set(by_type.get(key, {})) == set(server), key
        for policy_id, policy in by_type[key].items():
            assert_same_content(policy, server[policy_id])
    # Settings of at least one policy span several pages of 25.
    assert max(len(c.body.get("settings", [])) for c in by_type["settingsCatalog"].values()) > 25


async def test_a_short_settings_page_is_an_incomplete_capture(
    demo: SimTenant, demo_factory: GraphClientFactory
) -> None:
    reader = PolicyReader(demo.client(demo_factory, read_only=True))
    [policy] = [p for p in await reader.list_policies("settingsCatalog") if p.listed["settingCount"] > 25]
    demo.sim.control.set_faults([{"kind": "short-page", "path": "/settings$", "times": 1}])
    captured = await reader.read_policy("settingsCatalog", policy.id, listed=policy.listed)
    assert not captured.complete
    assert captured.settings_count_captured is not None
    assert captured.settings_count_captured < captured.settings_count_reported  # type: ignore[operator]
    demo.sim.control.clear_faults()
    again = await reader.read_policy("settingsCatalog", policy.id, listed=policy.listed)
    assert again.complete


@pytest.mark.slow
async def test_generated_tenant_of_2000_policies_is_read_without_loss(sim: SimHandle) -> None:
    tenant = make_tenant(sim, "generated", policies=2000, seed=5)
    # Throttling is off in the simulator: this test is about completeness, not pacing.
    factory = tenant.factory(budget=None)
    try:
        reader = PolicyReader(tenant.client(factory, read_only=True))
        captured = [c async for c in reader.read_all(list(CATALOG), concurrency=16)]
    finally:
        await factory.aclose()
    incomplete = [(c.type_key, c.id, c.problems) for c in captured if not c.complete]
    assert incomplete == []
    expected = 0
    for key in CATALOG:
        server = server_objects(tenant, key)
        expected += len(server)
        got = {c.id: c for c in captured if c.type_key == key}
        assert set(got) == set(server), key
        if key == "settingsCatalog":
            for policy_id, policy in got.items():
                assert policy.settings_count_captured == len(server[policy_id]["settings"])
    assert len(captured) == expected >= 1900
