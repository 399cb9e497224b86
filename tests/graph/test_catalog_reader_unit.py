"""The policy-type catalog and the full-read logic against a small scripted Graph (no network)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from shared.graph import CATALOG, PolicyReader, get_policy_type, permission_for, restore_sequence
from tests.graph.scripted import BASE, make_client

CONTRACT_KEYS = {
    "settingsCatalog", "deviceConfiguration", "updateRing", "compliancePolicy", "administrativeTemplate",
    "powerShellScript", "remediationScript", "endpointSecurityIntent", "featureUpdateProfile",
    "qualityUpdateProfile", "appProtectionPolicy", "appConfigurationPolicy", "enrollmentConfiguration",
    "autopilotProfile", "assignmentFilter", "scopeTag", "notificationTemplate", "deviceCategory",
    "complianceSettingsPolicy", "complianceScript", "macOSShellScript", "customAttributeScript",
    "driverUpdateProfile", "roleDefinition", "roleAssignment", "termsAndConditions", "brandingProfile",
    "deviceManagementPartner", "remoteAssistancePartner", "reusablePolicySetting", "policySet",
    "conditionalAccessPolicy", "namedLocation", "authenticationStrengthPolicy",
    "mobileAppCategory", "mobileApp", "contentApp", "managedDeviceAppConfiguration",
    "windowsAppProtectionPolicy", "wipPolicy", "mdmWipPolicy", "iosUpdatePolicy", "macOSUpdatePolicy",
    "appleEnrollmentTypeProfile", "depOnboardingSetting", "vppToken", "applePushCertificate",
    "managedGooglePlay", "compliancePartner", "deviceCleanupRule", "deviceCleanupSettings", "tenantSettings",
}


def test_catalog_has_exactly_the_contract_types() -> None:
    assert set(CATALOG) == CONTRACT_KEYS


def test_restore_order_puts_foundations_first() -> None:
    order = [t.key for t in restore_sequence()]
    assert order[:2] == ["scopeTag", "assignmentFilter"]
    assert {t.key for t in CATALOG.values() if t.foundation} == {
        "scopeTag", "assignmentFilter", "notificationTemplate"}
    # What others reference comes before them: roles before their assignments, locations and strengths
    # before Conditional Access, compliance scripts before compliance policies, policy sets last.
    for first, then in [("roleDefinition", "roleAssignment"), ("namedLocation", "conditionalAccessPolicy"),
                        ("authenticationStrengthPolicy", "conditionalAccessPolicy"),
                        ("complianceScript", "complianceSettingsPolicy"),
                        ("reusablePolicySetting", "settingsCatalog"),
                        ("notificationTemplate", "compliancePolicy")]:
        assert order.index(first) < order.index(then), (first, then)
    assert order[-1] == "policySet"
    assert all(t.restore_order < 1000 for t in restore_sequence() if t.foundation)


def test_every_type_states_its_capabilities_and_why_it_is_backup_only() -> None:
    for policy_type in CATALOG.values():
        caps = policy_type.capabilities
        assert caps["capture"] is True
        assert caps["backupOnly"] is (policy_type.backup_only is not None)
        if caps["backupOnly"]:
            assert caps["create"] is caps["update"] is caps["assignments"] is False
            assert isinstance(caps["backupOnlyReason"], str)
            assert len(caps["backupOnlyReason"]) > 20
        assert policy_type.read_permission.endswith(".Read.All")
        assert policy_type.write_permission != policy_type.read_permission
    backup_only = {k for k, t in CATALOG.items() if t.backup_only}
    assert backup_only == {
        "deviceManagementPartner", "remoteAssistancePartner", "contentApp", "depOnboardingSetting",
        "vppToken", "applePushCertificate", "managedGooglePlay", "compliancePartner",
    }
    roles = get_policy_type("roleDefinition")
    assert roles.is_builtin({"isBuiltIn": True})
    assert not roles.is_builtin({"isBuiltIn": False})
    assert roles.capabilities["builtInItemsBackupOnly"]
    assert get_policy_type("conditionalAccessPolicy").assignments is None
    assert get_policy_type("conditionalAccessPolicy").api_version == "v1.0"
    terms = get_policy_type("termsAndConditions").assignments
    assert terms is not None
    assert terms.one_per_request
    strengths = get_policy_type("authenticationStrengthPolicy")
    assert not strengths.keeps({"policyType": "builtIn"})
    assert strengths.keeps({"policyType": "custom"})


def test_demo_consent_covers_every_catalog_permission() -> None:
    from localdev.stack import DEMO_GRAPH_ROLES

    for policy_type in CATALOG.values():
        assert policy_type.read_permission in DEMO_GRAPH_ROLES, policy_type.key
        assert policy_type.write_permission in DEMO_GRAPH_ROLES, policy_type.key


def test_type_specific_facts() -> None:
    assert get_policy_type("settingsCatalog").name_property == "name"
    assert get_policy_type("settingsCatalog").update_method == "PUT"
    assert "settingCount" in get_policy_type("settingsCatalog").all_strip_on_restore
    scripts = get_policy_type("powerShellScript").assignments
    assert scripts is not None
    assert scripts.body_key == "deviceManagementScriptAssignments"
    autopilot = get_policy_type("autopilotProfile").assignments
    assert autopilot is not None
    assert autopilot.one_per_request
    assert autopilot.write_status == 201
    assert get_policy_type("assignmentFilter").assignments is None
    assert get_policy_type("deviceConfiguration").list_params["$filter"].startswith("not isof(")
    with pytest.raises(KeyError):
        get_policy_type("nope")


@pytest.mark.parametrize(
    ("method", "path", "permission"),
    [
        ("GET", "/beta/deviceManagement/deviceHealthScripts/x", "DeviceManagementScripts.Read.All"),
        ("POST", "/beta/deviceManagement/configurationPolicies/x/assign",
         "DeviceManagementConfiguration.ReadWrite.All"),
        ("GET", "/v1.0/deviceAppManagement/androidManagedAppProtections/x?$expand=apps",
         "DeviceManagementApps.Read.All"),
        ("GET", "/beta/deviceManagement/windowsAutopilotDeploymentProfiles",
         "DeviceManagementServiceConfig.Read.All"),
        ("GET", "/v1.0/groups", "Group.Read.All"),
        ("GET", "/v1.0/identity/conditionalAccess/policies/x", "Policy.Read.All"),
        ("PATCH", "/v1.0/identity/conditionalAccess/namedLocations/x",
         "Policy.ReadWrite.ConditionalAccess"),
        ("GET", "/v1.0/policies/authenticationStrengthPolicies/x/combinationConfigurations",
         "Policy.Read.All"),
        ("GET", "/beta/deviceManagement/deviceShellScripts/x", "DeviceManagementScripts.Read.All"),
        ("POST", "/beta/deviceManagement/roleAssignments", "DeviceManagementRBAC.ReadWrite.All"),
        ("GET", "/beta/deviceManagement/intuneBrandingProfiles/x", "DeviceManagementApps.Read.All"),
        ("GET", "/beta/me", None),
    ],
)
def test_permission_for_routes(method: str, path: str, permission: str | None) -> None:
    assert permission_for(method, path) == permission


# ---------------------------------------------------------------- reader against a scripted Graph

SETTINGS = [{"id": str(i), "settingInstance": {"settingDefinitionId": f"def_{i}"}} for i in range(60)]


def fake_graph(
    setting_count: int = 60, drop_from_page: int | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    def page_of_settings(request: httpx.Request, policy: str) -> httpx.Response:
        skip = int(request.url.params.get("$skiptoken", "0"))
        chunk = SETTINGS[skip: skip + 25]
        if drop_from_page is not None and skip == drop_from_page:
            chunk = chunk[:-3]  # a short page: Graph lost some items
        body: dict[str, Any] = {"value": chunk, "@odata.count": len(SETTINGS)}
        if skip + 25 < len(SETTINGS):
            body["@odata.nextLink"] = (f"{BASE}/beta/deviceManagement/configurationPolicies/{policy}"
                                       f"/settings?$skiptoken={skip + 25}")
        return httpx.Response(200, json=body)

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/beta/deviceManagement/configurationPolicies":
            return httpx.Response(200, json={"value": [
                {"id": "sc1", "name": "Defender", "settingCount": setting_count}]})
        if path == "/beta/deviceManagement/configurationPolicies/sc1":
            return httpx.Response(200, json={"id": "sc1", "name": "Defender", "settingCount": setting_count})
        if path == "/beta/deviceManagement/configurationPolicies/sc1/settings":
            return page_of_settings(request, "sc1")
        if path.endswith("/assignments"):
            return httpx.Response(200, json={"value": [{"id": "a1", "target": {"groupId": "g1"}}]})
        if path == "/beta/deviceManagement/deviceManagementScripts":
            return httpx.Response(200, json={"value": [
                {"id": "ps1", "displayName": "s", "scriptContent": None}]})
        if path == "/beta/deviceManagement/deviceManagementScripts/ps1":
            return httpx.Response(200, json={
                "id": "ps1", "displayName": "s", "scriptContent": "V3JpdGUtSG9zdA=="})
        if path == "/beta/deviceManagement/groupPolicyConfigurations/gp1":
            return httpx.Response(200, json={"id": "gp1", "displayName": "Edge"})
        if path == "/beta/deviceManagement/groupPolicyConfigurations/gp1/definitionValues":
            assert request.url.params["$expand"] == "definition"
            return httpx.Response(200, json={"value": [{"id": "dv1", "definition": {"id": "d1"}},
                                                       {"id": "dv2", "definition": {"id": "d2"}}]})
        if path.startswith("/beta/deviceManagement/groupPolicyConfigurations/gp1/definitionValues/"):
            dv = path.split("/")[-2]
            assert request.url.params["$expand"] == "presentation"
            return httpx.Response(200, json={"value": [{"id": f"pv-{dv}", "value": "x"}]})
        if path == "/beta/deviceAppManagement/managedAppPolicies":
            return httpx.Response(200, json={"value": [
                {"id": "m1", "@odata.type": "#microsoft.graph.iosManagedAppProtection", "displayName": "i"},
                {"id": "m2", "@odata.type": "#microsoft.graph.targetedManagedAppConfiguration"}]})
        if path == "/beta/deviceAppManagement/managedAppPolicies/m1":
            return httpx.Response(200, json={
                "id": "m1", "@odata.type": "#microsoft.graph.iosManagedAppProtection"})
        if path == "/beta/deviceAppManagement/iosManagedAppProtections/m1":
            assert request.url.params["$expand"] == "apps"
            return httpx.Response(200, json={"id": "m1", "displayName": "i",
                                             "@odata.type": "#microsoft.graph.iosManagedAppProtection",
                                             "apps": [{"id": "app1"}]})
        return httpx.Response(404, json={"error": {"code": "NotFound", "message": path}})

    return handler


async def test_settings_catalog_read_follows_every_settings_page() -> None:
    client, _, _, _ = make_client(fake_graph())
    reader = PolicyReader(client)
    [summary] = await reader.list_policies("settingsCatalog")
    captured = await reader.read_policy("settingsCatalog", summary.id, listed=summary.listed)
    assert captured.complete, captured.problems
    assert captured.settings_count_reported == captured.settings_count_captured == 60
    assert [s["id"] for s in captured.body["settings"]] == [s["id"] for s in SETTINGS]
    assert captured.assignments == [{"id": "a1", "target": {"groupId": "g1"}}]
    assert captured.name == "Defender"


async def test_count_mismatch_is_an_incomplete_capture() -> None:
    client, _, _, _ = make_client(fake_graph(setting_count=61))
    captured = await PolicyReader(client).read_policy("settingsCatalog", "sc1")
    assert not captured.complete
    assert captured.settings_count_reported == 61
    assert captured.settings_count_captured == 60


async def test_short_page_is_an_incomplete_capture() -> None:
    client, _, _, _ = make_client(fake_graph(drop_from_page=25))
    captured = await PolicyReader(client).read_policy("settingsCatalog", "sc1")
    assert not captured.complete
    assert captured.settings_count_captured == 57
    assert any("57" in p for p in captured.problems)


async def test_script_content_comes_from_the_item_get() -> None:
    client, _, _, _ = make_client(fake_graph())
    reader = PolicyReader(client)
    [summary] = await reader.list_policies("powerShellScript")
    captured = await reader.read_policy("powerShellScript", summary.id, listed=summary.listed)
    assert captured.body["scriptContent"] == "V3JpdGUtSG9zdA=="


async def test_gpo_read_includes_presentation_values_per_definition_value() -> None:
    client, _, _, _ = make_client(fake_graph())
    captured = await PolicyReader(client).read_policy("administrativeTemplate", "gp1")
    values = captured.body["definitionValues"]
    assert [v["presentationValues"][0]["id"] for v in values] == ["pv-dv1", "pv-dv2"]
    assert captured.settings_count_captured == 2


async def test_app_protection_list_is_filtered_and_read_from_the_platform_collection() -> None:
    client, _, _, _ = make_client(fake_graph())
    reader = PolicyReader(client)
    summaries = await reader.list_policies("appProtectionPolicy")
    assert [s.id for s in summaries] == ["m1"]
    captured = await reader.read_policy("appProtectionPolicy", "m1")  # platform found from the id alone
    assert captured.body["apps"] == [{"id": "app1"}]
    assert captured.odata_type == "#microsoft.graph.iosManagedAppProtection"


async def test_read_all_yields_every_policy_and_reports_failures_as_data() -> None:
    client, _, _, _ = make_client(fake_graph())
    reader = PolicyReader(client)
    got = {c.id: c async for c in reader.read_all(["settingsCatalog", "powerShellScript"], concurrency=2)}
    assert set(got) == {"sc1", "ps1"}
    assert all(c.complete for c in got.values())
