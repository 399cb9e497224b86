"""Routes of the app, Apple, partner, cleanup and tenant-settings families.

Version gating, singletons (a single resource, not a collection), navigation properties and the write rules
Graph applies to apps, app configurations, Windows Information Protection, cleanup rules and tenant settings.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.graphsim.conftest import READ_ALL

DM = "/deviceManagement"
DAM = "/deviceAppManagement"
GROUP_TARGET = "#microsoft.graph.groupAssignmentTarget"


def _group_id(client: httpx.Client) -> str:
    return str(client.get("/groups").json()["value"][0]["id"])


def _one(client: httpx.Client, url: str, odata_type: str) -> dict[str, Any]:
    return next(o for o in client.get(url).json()["value"] if o["@odata.type"] == odata_type)


@pytest.mark.parametrize("path", [
    f"{DAM}/windowsManagedAppProtections", f"{DM}/appleUserInitiatedEnrollmentProfiles",
    f"{DM}/depOnboardingSettings", f"{DM}/managedDeviceCleanupRules",
    f"{DM}/managedDeviceCleanupSettings", f"{DM}/androidManagedStoreAccountEnterpriseSettings",
])
def test_beta_only_routes_are_not_found_under_v1(graph, path):
    assert graph().get(path).status_code == 200
    refused = graph(version="v1.0").get(path)
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == (
        f"Resource not found for the segment '{path.rsplit('/', 1)[1]}'.")


@pytest.mark.parametrize("path", [
    f"{DAM}/mobileApps", f"{DAM}/mobileAppCategories", f"{DAM}/mobileAppConfigurations",
    f"{DAM}/windowsInformationProtectionPolicies", f"{DAM}/mdmWindowsInformationProtectionPolicies",
    f"{DAM}/vppTokens", f"{DM}/complianceManagementPartners",
])
def test_v1_collections_are_served_under_both_versions(graph, sim, path):
    for version in ("v1.0", "beta"):
        body = graph(version=version).get(path).json()
        assert body["@odata.context"] == f"{sim.base_url}/{version}/$metadata#{path.lstrip('/')}"
        assert body["value"], path


def test_singletons_answer_one_object_not_a_collection(graph, sim):
    client = graph()
    settings = client.get(f"{DM}/settings").json()
    # A property of deviceManagement: no key, no $entity, no value list.
    assert settings["@odata.context"] == f"{sim.base_url}/beta/$metadata#deviceManagement/settings"
    assert "value" not in settings
    assert "id" not in settings
    assert settings["deviceComplianceCheckinThresholdDays"] == 21
    push = client.get(f"{DM}/applePushNotificationCertificate").json()
    assert push["@odata.context"].endswith("#deviceManagement/applePushNotificationCertificate/$entity")
    assert push["appleIdentifier"]
    assert push["id"]
    cleanup = client.get(f"{DM}/managedDeviceCleanupSettings").json()
    assert cleanup["deviceInactivityBeforeRetirementInDays"] == "90"
    assert client.get(f"{DM}/applePushNotificationCertificate/nope").status_code == 400
    assert client.post(f"{DM}/managedDeviceCleanupSettings", json={}).status_code == 405
    assert client.delete(f"{DM}/applePushNotificationCertificate").status_code == 405


def test_a_tenant_without_a_push_certificate_answers_404(sim, graph):
    empty = sim.control.create_tenant("empty", seed=3)["tenantId"]
    client = graph(tenant=empty)
    missing = client.get(f"{DM}/applePushNotificationCertificate")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "ResourceNotFound"
    # Every tenant has its settings, at their defaults.
    assert client.get(f"{DM}/settings").json()["deviceComplianceCheckinThresholdDays"] == 30


def test_tenant_settings_are_written_through_device_management(graph):
    client = graph()
    assert client.patch(f"{DM}/settings", json={"secureByDefault": False}).status_code == 405
    written = client.patch(DM, json={"settings": {"deviceComplianceCheckinThresholdDays": 45,
                                                  "isScheduledActionEnabled": False}})
    assert written.status_code == 204
    settings = client.get(f"{DM}/settings").json()
    assert settings["deviceComplianceCheckinThresholdDays"] == 45
    assert settings["isScheduledActionEnabled"] is False
    assert settings["secureByDefault"] is True  # untouched properties keep their values
    assert client.get(DM).json()["settings"]["deviceComplianceCheckinThresholdDays"] == 45
    for bad in ({"settings": {"deviceComplianceCheckinThresholdDays": 500}},
                {"settings": {"notASetting": True}}, {"settings": {"secureByDefault": "yes"}},
                {"settings": "on"}, {"intuneBrand": {}}):
        assert client.patch(DM, json=bad).status_code == 400, bad


def test_cleanup_settings_and_rules_apply_the_retirement_window(graph):
    client = graph()
    url = f"{DM}/managedDeviceCleanupSettings"
    assert client.patch(url, json={"deviceInactivityBeforeRetirementInDays": "45"}).status_code == 204
    assert client.get(url).json()["deviceInactivityBeforeRetirementInDays"] == "45"
    assert client.patch(url, json={"deviceInactivityBeforeRetirementInDays": "10"}).status_code == 400
    assert client.patch(url, json={"deviceInactivityBeforeRetirementInDays": 45}).status_code == 400
    rules = f"{DM}/managedDeviceCleanupRules"
    body = {"displayName": "Retire macOS", "deviceCleanupRulePlatformType": "macOS",
            "deviceInactivityBeforeRetirementInDays": 120}
    created = client.post(rules, json=body)
    assert created.status_code == 201
    assert client.post(rules, json=body).status_code == 409  # one rule per platform
    assert client.post(rules, json=dict(body, deviceCleanupRulePlatformType="chromeOS",
                                        deviceInactivityBeforeRetirementInDays=10)).status_code == 400
    rule_url = f"{rules}/{created.json()['id']}"
    assert client.patch(rule_url, json={"deviceCleanupRulePlatformType": "ios"}).status_code == 400
    assert client.patch(rule_url, json={"deviceInactivityBeforeRetirementInDays": 200}).status_code == 204


def test_cleanup_routes_need_the_managed_devices_permission(graph):
    config_only = graph(roles=["DeviceManagementConfiguration.Read.All"])
    assert config_only.get(f"{DM}/managedDeviceCleanupRules").status_code == 403
    devices = graph(roles=["DeviceManagementManagedDevices.Read.All"])
    assert devices.get(f"{DM}/managedDeviceCleanupRules").status_code == 200
    assert devices.get(f"{DM}/managedDeviceCleanupSettings").status_code == 200
    assert graph(roles=READ_ALL).patch(DM, json={"settings": {}}).status_code == 403


def test_apps_icons_categories_and_assignments_with_intent(graph):
    client = graph()
    web = _one(client, f"{DAM}/mobileApps", "#microsoft.graph.webApp")
    assert web["largeIcon"] is None
    assert "categories" not in web
    item = client.get(f"{DAM}/mobileApps/{web['id']}", params={"$expand": "categories"}).json()
    assert item["largeIcon"]["value"]
    assert item["categories"]
    assert item["categories@odata.context"].endswith(f"('{web['id']}')/categories")
    target = {"@odata.type": GROUP_TARGET, "groupId": _group_id(client)}
    assign = f"{DAM}/mobileApps/{web['id']}/assign"
    assert client.post(assign, json={"mobileAppAssignments": [{"target": target}]}).status_code == 400
    assert client.post(assign, json={"assignments": [{"target": target, "intent": "required"}]}
                       ).status_code == 400
    assert client.post(assign, json={"mobileAppAssignments": [
        {"target": target, "intent": "available"}]}).status_code == 204
    [assigned] = client.get(f"{DAM}/mobileApps/{web['id']}/assignments").json()["value"]
    assert assigned["@odata.type"] == "#microsoft.graph.mobileAppAssignment"
    assert assigned["intent"] == "available"


def test_app_creates_need_what_locates_the_app(graph):
    client = graph()
    base = {"@odata.type": "#microsoft.graph.webApp", "displayName": "Portal", "publisher": "Contoso"}
    assert client.post(f"{DAM}/mobileApps", json=base).status_code == 400
    assert client.post(f"{DAM}/mobileApps", json={**base, "publisher": None,
                                                  "appUrl": "https://x.example"}).status_code == 400
    assert client.post(f"{DAM}/mobileApps", json={k: v for k, v in base.items() if k != "@odata.type"}
                       ).status_code == 400
    created = client.post(f"{DAM}/mobileApps", json={**base, "appUrl": "https://x.example"})
    assert created.status_code == 201
    assert created.json()["publishingState"] == "published"
    assert client.post(f"{DAM}/mobileApps", json={**base, "appUrl": "https://x.example",
                                                  "uploadState": 1}).status_code == 400


def test_apps_are_filed_under_categories_by_reference(graph, sim):
    client = graph()
    categories = {c["displayName"]: c["id"] for c in client.get(f"{DAM}/mobileAppCategories").json()["value"]}
    first, second = sorted(categories)[:2]
    created = client.post(f"{DAM}/mobileApps", json={
        "@odata.type": "#microsoft.graph.webApp", "displayName": "Filed", "publisher": "Contoso",
        "appUrl": "https://filed.example"}).json()
    app = f"{DAM}/mobileApps/{created['id']}"

    def filed() -> list[str]:
        expanded = client.get(app, params={"$expand": "categories"}).json()
        return sorted(c["displayName"] for c in expanded["categories"])

    refs = f"{app}/categories/$ref"
    for name, form in ((first, "{base}/beta/deviceAppManagement/mobileAppCategories/{id}"),
                       (second, "{base}/beta/deviceAppManagement/mobileAppCategories('{id}')")):
        odata_id = form.format(base="https://graph.microsoft.com", id=categories[name])
        assert client.post(refs, json={"@odata.id": odata_id}).status_code == 204
    assert filed() == [first, second]
    unknown = "https://graph.microsoft.com/beta/deviceAppManagement/mobileAppCategories/nope"
    assert client.post(refs, json={"@odata.id": unknown}).status_code == 400
    assert client.post(refs, json={"@odata.id": f"https://graph.microsoft.com/beta/{DM}/deviceCategories/"
                                                f"{categories[first]}"}).status_code == 400
    assert client.delete(f"{app}/categories/{categories[first]}/$ref").status_code == 204
    assert filed() == [second]
    assert client.delete(f"{app}/categories/{categories[first]}/$ref").status_code == 404
    assert client.get(refs).status_code == 405
    # References, not copies: a renamed category shows its new name, a deleted one is gone.
    category = f"{DAM}/mobileAppCategories/{categories[second]}"
    assert client.patch(category, json={"displayName": "Renamed"}).status_code == 204
    assert filed() == ["Renamed"]
    assert client.delete(category).status_code == 204
    assert filed() == []


def test_device_app_configurations_must_target_apps_of_the_tenant(graph):
    client = graph()
    body = {"@odata.type": "#microsoft.graph.iosMobileAppConfiguration", "displayName": "Cfg",
            "targetedMobileApps": ["00000000-0000-0000-0000-00000000abcd"], "settings": []}
    assert client.post(f"{DAM}/mobileAppConfigurations", json=body).status_code == 400
    app = _one(client, f"{DAM}/mobileApps", "#microsoft.graph.iosStoreApp")
    created = client.post(f"{DAM}/mobileAppConfigurations", json=dict(body, targetedMobileApps=[app["id"]]))
    assert created.status_code == 201
    assert created.json()["version"] == 1


def test_wip_applocker_files_are_navigations_written_one_by_one(graph, sim):
    client = graph()
    for collection in ("windowsInformationProtectionPolicies", "mdmWindowsInformationProtectionPolicies"):
        policy = client.get(f"{DAM}/{collection}").json()["value"][0]
        assert "protectedAppLockerFiles" not in policy
        expanded = client.get(f"{DAM}/{collection}/{policy['id']}",
                              params={"$expand": "protectedAppLockerFiles,exemptAppLockerFiles"}).json()
        assert expanded["protectedAppLockerFiles"][0]["file"]
        assert expanded["exemptAppLockerFiles"] == []
        files = f"{DAM}/{collection}/{policy['id']}/exemptAppLockerFiles"
        assert client.post(files, json={"displayName": "no file"}).status_code == 400
        added = client.post(files, json={"displayName": "Exempt", "file": "PEFwcExvY2tlcj4="})
        assert added.status_code == 201
        listed = client.get(files).json()
        assert listed["@odata.context"] == (f"{sim.base_url}/beta/$metadata#deviceAppManagement/"
                                            f"{collection}('{policy['id']}')/exemptAppLockerFiles")
        assert [f["displayName"] for f in listed["value"]] == ["Exempt"]
        assert client.delete(f"{files}/{listed['value'][0]['id']}").status_code == 204
        assert client.get(files).json()["value"] == []
        assert client.delete(f"{files}/{listed['value'][0]['id']}").status_code == 404
        bad = client.post(f"{DAM}/{collection}", json={"displayName": "WIP", "enforcementLevel": "strict"})
        assert bad.status_code == 400


def test_dep_tokens_hold_their_profiles_and_are_never_created(graph, sim):
    client = graph()
    token = client.get(f"{DM}/depOnboardingSettings").json()["value"][0]
    assert "enrollmentProfiles" not in token
    profiles = client.get(f"{DM}/depOnboardingSettings/{token['id']}/enrollmentProfiles").json()
    assert profiles["@odata.context"].endswith(f"depOnboardingSettings('{token['id']}')/enrollmentProfiles")
    assert profiles["value"]
    assert all(p["id"].startswith(f"{token['id']}_") for p in profiles["value"])
    assert client.post(f"{DM}/depOnboardingSettings", json={"tokenName": "copy"}).status_code == 405
    assert client.post(f"{DAM}/vppTokens", json={"displayName": "copy"}).status_code == 405


def test_apple_enrollment_type_profiles_take_assignments_one_at_a_time(graph):
    client = graph()
    url = f"{DM}/appleUserInitiatedEnrollmentProfiles"
    body = {"displayName": "macOS BYOD", "platform": "macOS", "defaultEnrollmentType": "user",
            "availableEnrollmentTypeOptions": []}
    assert client.post(url, json=dict(body, platform="android")).status_code == 400
    created = client.post(url, json=body)
    assert created.status_code == 201
    profile = created.json()
    assert profile["priority"] == 2
    assigned = client.post(f"{url}/{profile['id']}/assignments",
                           json={"target": {"@odata.type": GROUP_TARGET, "groupId": _group_id(client)}})
    assert assigned.status_code == 201
    assert client.post(f"{url}/{profile['id']}/assign", json={"assignments": []}).status_code == 400
    assert client.patch(f"{url}/{profile['id']}", json={"platform": "iOS"}).status_code == 400


def test_compliance_partners_on_offer_are_listed_as_unknown(graph):
    partners = graph().get(f"{DM}/complianceManagementPartners").json()["value"]
    states = [p["partnerState"] for p in partners]
    assert states.count("unknown") == 3
    assert "enabled" in states
