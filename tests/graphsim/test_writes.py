"""Writes, actions and assignments per type, with Graph's server-side rules."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

DM = "/deviceManagement"
GROUP_TARGET = "#microsoft.graph.groupAssignmentTarget"


def _group_id(client: httpx.Client) -> str:
    return str(client.get("/groups", params={"$filter": "displayName eq 'Pilot Users'"}).json()[
        "value"][0]["id"])


def _target(group_id: str) -> dict[str, Any]:
    return {"target": {"@odata.type": GROUP_TARGET, "groupId": group_id,
                       "deviceAndAppManagementAssignmentFilterId": None,
                       "deviceAndAppManagementAssignmentFilterType": "none"}}


SETTING = {
    "@odata.type": "#microsoft.graph.deviceManagementConfigurationSetting",
    "settingInstance": {
        "@odata.type": "#microsoft.graph.deviceManagementConfigurationChoiceSettingInstance",
        "settingDefinitionId": "device_vendor_msft_policy_config_defender_allowrealtimemonitoring",
        "choiceSettingValue": {
            "@odata.type": "#microsoft.graph.deviceManagementConfigurationChoiceSettingValue",
            "value": "device_vendor_msft_policy_config_defender_allowrealtimemonitoring_1",
            "children": []}}}


def test_settings_catalog_create_put_patch_and_assign(sim, graph, tenant_id):
    client = graph()
    created = client.post(f"{DM}/configurationPolicies", json={
        "name": "Restored policy", "description": "", "platforms": "windows10",
        "technologies": "mdm", "roleScopeTagIds": ["0"], "settings": [SETTING, SETTING]})
    assert created.status_code == 201, created.text
    policy = created.json()
    assert policy["settingCount"] == 2
    assert policy["createdDateTime"] == policy["lastModifiedDateTime"]
    assert "settings" not in policy

    replaced = client.put(f"{DM}/configurationPolicies/{policy['id']}", json={
        "name": "Restored policy", "description": "v2", "platforms": "windows10",
        "technologies": "mdm", "settings": [SETTING]})
    assert replaced.status_code == 204
    after = client.get(f"{DM}/configurationPolicies/{policy['id']}",
                       params={"$expand": "settings"}).json()
    assert after["settingCount"] == 1
    assert len(after["settings"]) == 1
    assert after["description"] == "v2"
    assert after["lastModifiedDateTime"] >= policy["lastModifiedDateTime"]

    assert client.patch(f"{DM}/configurationPolicies/{policy['id']}",
                        json={"description": "v3"}).status_code == 204
    assert client.patch(f"{DM}/configurationPolicies/{policy['id']}",
                        json={"settings": [SETTING]}).status_code == 400

    assigned = client.post(f"{DM}/configurationPolicies/{policy['id']}/assign",
                           json={"assignments": [_target(_group_id(client))]})
    assert assigned.status_code == 200
    assert assigned.json()["value"][0]["target"]["groupId"] == _group_id(client)
    stored = next(o for o in sim.control.objects(tenant_id, "settingsCatalog")
                  if o["id"] == policy["id"])
    assert stored["isAssigned"] is True
    assert len(stored["assignments"]) == 1


@pytest.mark.parametrize("field", ["id", "createdDateTime", "lastModifiedDateTime", "version",
                                   "settingCount"])
def test_read_only_properties_are_rejected_in_strict_mode(graph, field):
    client = graph()
    body = {"name": "x", "platforms": "windows10", "technologies": "mdm", "settings": [],
            field: 1}
    response = client.post(f"{DM}/configurationPolicies", json=body)
    assert response.status_code == 400
    # Intune's JSON-in-message error style.
    assert response.json()["error"]["message"].startswith("{")


def test_lenient_mode_accepts_read_only_properties(sim, graph):
    sim.control.set_strict(False)
    client = graph()
    response = client.post(f"{DM}/configurationPolicies", json={
        "name": "x", "platforms": "windows10", "technologies": "mdm", "settings": [],
        "settingCount": 99})
    assert response.status_code == 201
    assert response.json()["settingCount"] == 0


def test_device_configuration_needs_odata_type_and_bumps_version(graph):
    client = graph(version="v1.0")
    missing = client.post(f"{DM}/deviceConfigurations", json={"displayName": "x"})
    assert missing.status_code == 400
    created = client.post(f"{DM}/deviceConfigurations", json={
        "@odata.type": "#microsoft.graph.windows10GeneralConfiguration", "displayName": "x",
        "passwordRequired": True})
    assert created.status_code == 201
    item = created.json()
    assert item["version"] == 1
    assert item["roleScopeTagIds"] == ["0"]
    assert client.patch(f"{DM}/deviceConfigurations/{item['id']}",
                        json={"passwordRequired": False}).status_code == 204
    again = client.get(f"{DM}/deviceConfigurations/{item['id']}").json()
    assert again["version"] == 2
    assert again["passwordRequired"] is False
    changed_type = client.patch(f"{DM}/deviceConfigurations/{item['id']}", json={
        "@odata.type": "#microsoft.graph.iosGeneralDeviceConfiguration"})
    assert changed_type.status_code == 400
    assert client.delete(f"{DM}/deviceConfigurations/{item['id']}").status_code == 204
    assert client.get(f"{DM}/deviceConfigurations/{item['id']}").status_code == 404


def test_classic_compliance_needs_exactly_one_block_action(graph):
    client = graph()
    base = {"@odata.type": "#microsoft.graph.windows10CompliancePolicy", "displayName": "c",
            "passwordRequired": True}
    none = client.post(f"{DM}/deviceCompliancePolicies", json=base)
    assert none.status_code == 400
    assert "one and only one block" in none.json()["error"]["message"]
    block = {"actionType": "block", "gracePeriodHours": 0, "notificationTemplateId": ""}
    two = client.post(f"{DM}/deviceCompliancePolicies", json=dict(base, scheduledActionsForRule=[
        {"ruleName": "PasswordRequired", "scheduledActionConfigurations": [block, block]}]))
    assert two.status_code == 400
    ok = client.post(f"{DM}/deviceCompliancePolicies", json=dict(base, scheduledActionsForRule=[
        {"ruleName": "PasswordRequired", "scheduledActionConfigurations": [block]}]))
    assert ok.status_code == 201
    policy_id = ok.json()["id"]
    notify = {"actionType": "notification", "gracePeriodHours": 48,
              "notificationTemplateId": "00000000-0000-0000-0000-000000000000"}
    updated = client.post(f"{DM}/deviceCompliancePolicies/{policy_id}/scheduleActionsForRules",
                          json={"deviceComplianceScheduledActionForRules": [
                              {"ruleName": "PasswordRequired",
                               "scheduledActionConfigurations": [block, notify]}]})
    assert updated.status_code == 204
    read = client.get(f"{DM}/deviceCompliancePolicies/{policy_id}", params={
        "$expand": "scheduledActionsForRule($expand=scheduledActionConfigurations)"}).json()
    assert len(read["scheduledActionsForRule"][0]["scheduledActionConfigurations"]) == 2
    assert client.post(f"{DM}/deviceCompliancePolicies/{policy_id}/assign",
                       json={"assignments": [_target(_group_id(client))]}).status_code == 200


def test_enrollment_defaults_cannot_be_deleted_or_reprioritised(graph):
    client = graph()
    configs = client.get(f"{DM}/deviceEnrollmentConfigurations").json()["value"]
    default = next(c for c in configs if c["priority"] == 0)
    assert client.delete(f"{DM}/deviceEnrollmentConfigurations/{default['id']}").status_code == 400
    assert client.patch(f"{DM}/deviceEnrollmentConfigurations/{default['id']}",
                        json={"description": "edited"}).status_code == 204
    assert client.patch(f"{DM}/deviceEnrollmentConfigurations/{default['id']}",
                        json={"priority": 3}).status_code == 400
    created = client.post(f"{DM}/deviceEnrollmentConfigurations", json={
        "@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration",
        "displayName": "Limit 3", "limit": 3})
    assert created.status_code == 201
    new = created.json()
    assert new["priority"] > max(c["priority"] for c in configs)
    assert client.post(f"{DM}/deviceEnrollmentConfigurations/{new['id']}/setPriority",
                       json={"priority": 1}).status_code == 204
    assert client.get(f"{DM}/deviceEnrollmentConfigurations/{new['id']}").json()["priority"] == 1
    assigned = client.post(f"{DM}/deviceEnrollmentConfigurations/{new['id']}/assign",
                           json={"enrollmentConfigurationAssignments": [
                               _target(_group_id(client))]})
    assert assigned.status_code == 204
    wrong_key = client.post(f"{DM}/deviceEnrollmentConfigurations/{new['id']}/assign",
                            json={"assignments": [_target(_group_id(client))]})
    assert wrong_key.status_code == 400
    duplicate_default = client.post(f"{DM}/deviceEnrollmentConfigurations", json={
        "@odata.type": "#microsoft.graph.deviceEnrollmentPlatformRestrictionsConfiguration",
        "displayName": "again"})
    assert duplicate_default.status_code == 400


def test_scope_tags_builtin_is_immutable_and_new_ids_are_small_integers(graph):
    client = graph()
    assert client.patch(f"{DM}/roleScopeTags/0", json={"description": "x"}).status_code == 400
    assert client.delete(f"{DM}/roleScopeTags/0").status_code == 400
    created = client.post(f"{DM}/roleScopeTags", json={"displayName": "New tag",
                                                       "description": ""})
    assert created.status_code == 201
    assert created.json()["id"].isdigit()
    assert created.json()["isBuiltIn"] is False


def test_group_policy_values_must_bind_existing_definitions(graph):
    client = graph()
    gpo = client.post(f"{DM}/groupPolicyConfigurations", json={"displayName": "Restored GPO"})
    assert gpo.status_code == 201
    gpo_id = gpo.json()["id"]
    bad = client.post(f"{DM}/groupPolicyConfigurations/{gpo_id}/definitionValues", json={
        "enabled": True, "definition@odata.bind": "https://graph.microsoft.com/beta/"
        "deviceManagement/groupPolicyDefinitions('00000000-0000-0000-0000-000000000001')"})
    assert bad.status_code == 400
    definitions = client.get(f"{DM}/groupPolicyDefinitions").json()["value"]
    definition = next(d for d in definitions if d["displayName"] == "Configure the home page URL")
    presentation = client.get(f"{DM}/groupPolicyDefinitions/{definition['id']}/presentations"
                              ).json()["value"][0]
    bind = ("https://graph.microsoft.com/beta/deviceManagement/groupPolicyDefinitions("
            f"'{definition['id']}')")
    good = client.post(f"{DM}/groupPolicyConfigurations/{gpo_id}/definitionValues", json={
        "enabled": True, "definition@odata.bind": bind, "presentationValues": [{
            "@odata.type": "#microsoft.graph.groupPolicyPresentationValueText",
            "value": "https://intranet",
            "presentation@odata.bind": f"{bind}/presentations('{presentation['id']}')"}]})
    assert good.status_code == 201, good.text
    wrong_presentation = client.post(f"{DM}/groupPolicyConfigurations/{gpo_id}/updateDefinitionValues",
                                     json={"added": [{"enabled": True,
                                                      "definition@odata.bind": bind,
                                                      "presentationValues": [{
                                                          "value": "x",
                                                          "presentation@odata.bind":
                                                              f"{bind}/presentations('nope')"}]}],
                                           "updated": [], "deletedIds": []})
    assert wrong_presentation.status_code == 400
    deleted = client.post(f"{DM}/groupPolicyConfigurations/{gpo_id}/updateDefinitionValues",
                          json={"added": [], "updated": [], "deletedIds": [good.json()["id"]]})
    assert deleted.status_code == 204
    left = client.get(f"{DM}/groupPolicyConfigurations/{gpo_id}/definitionValues").json()
    assert left["value"] == []


def test_intents_are_created_from_templates_only(graph):
    client = graph()
    assert client.post(f"{DM}/intents", json={"displayName": "x"}).status_code == 400
    missing = client.post(f"{DM}/templates/00000000-0000-0000-0000-000000000009/createInstance",
                          json={"displayName": "x"})
    assert missing.status_code == 404
    template = client.get(f"{DM}/templates").json()["value"][0]
    setting = client.get(f"{DM}/templates/{template['id']}/settings").json()["value"][0]
    created = client.post(f"{DM}/templates/{template['id']}/createInstance", json={
        "displayName": "Restored intent", "description": "", "roleScopeTagIds": ["0"],
        "settingsDelta": [{"@odata.type": setting["@odata.type"],
                           "definitionId": setting["definitionId"], "valueJson": "false"}]})
    assert created.status_code == 200
    intent = created.json()
    assert intent["templateId"] == template["id"]
    settings = client.get(f"{DM}/intents/{intent['id']}/settings").json()["value"]
    changed = next(s for s in settings if s["definitionId"] == setting["definitionId"])
    assert changed["valueJson"] == "false"
    assert client.post(f"{DM}/intents/{intent['id']}/updateSettings", json={
        "settings": [{"definitionId": setting["definitionId"], "valueJson": "true"}]}
    ).status_code == 204
    assert client.post(f"{DM}/intents/{intent['id']}/assign",
                       json={"assignments": [_target(_group_id(client))]}).status_code == 204


@pytest.mark.parametrize(("collection", "body_key", "status"), [
    ("deviceManagementScripts", "deviceManagementScriptAssignments", 204),
    ("deviceHealthScripts", "deviceHealthScriptAssignments", 204),
    ("deviceConfigurations", "assignments", 200),
    ("groupPolicyConfigurations", "assignments", 200),
    ("windowsFeatureUpdateProfiles", "assignments", 204),
    ("windowsQualityUpdateProfiles", "assignments", 204),
])
def test_assign_body_key_and_status_per_type(sim, graph, tenant_id, collection, body_key, status):
    client = graph()
    item = next(i for i in client.get(f"{DM}/{collection}").json()["value"]
                if not i.get("isGlobalScript"))
    group_id = _group_id(client)
    response = client.post(f"{DM}/{collection}/{item['id']}/assign",
                           json={body_key: [_target(group_id)]})
    assert response.status_code == status, response.text
    read = client.get(f"{DM}/{collection}/{item['id']}/assignments").json()["value"]
    assert [a["target"]["groupId"] for a in read] == [group_id]
    if body_key != "assignments":
        assert client.post(f"{DM}/{collection}/{item['id']}/assign",
                           json={"assignments": []}).status_code == 400


def test_scripts_round_trip_and_global_scripts_are_protected(graph):
    client = graph()
    created = client.post(f"{DM}/deviceManagementScripts", json={
        "displayName": "Restored", "scriptContent": "V3JpdGUtT3V0cHV0ICdoaSc=",
        "runAsAccount": "system", "fileName": "r.ps1", "enforceSignatureCheck": False,
        "runAs32Bit": False})
    assert created.status_code == 201
    item = client.get(f"{DM}/deviceManagementScripts/{created.json()['id']}").json()
    assert item["scriptContent"] == "V3JpdGUtT3V0cHV0ICdoaSc="
    global_script = next(s for s in client.get(f"{DM}/deviceHealthScripts").json()["value"]
                         if s["isGlobalScript"])
    assert client.patch(f"{DM}/deviceHealthScripts/{global_script['id']}",
                        json={"description": "x"}).status_code == 403


def test_app_protection_create_target_apps_and_assign(graph):
    client = graph(version="v1.0")
    created = client.post("/deviceAppManagement/iosManagedAppProtections", json={
        "@odata.type": "#microsoft.graph.iosManagedAppProtection", "displayName": "MAM",
        "pinRequired": True})
    assert created.status_code == 201
    policy_id = created.json()["id"]
    wrong = client.post("/deviceAppManagement/iosManagedAppProtections", json={
        "@odata.type": "#microsoft.graph.androidManagedAppProtection", "displayName": "x"})
    assert wrong.status_code == 400
    apps = [{"mobileAppIdentifier": {"@odata.type": "#microsoft.graph.iosMobileAppIdentifier",
                                     "bundleId": "com.microsoft.msedge"}}]
    assert client.post(f"/deviceAppManagement/iosManagedAppProtections/{policy_id}/targetApps",
                       json={"appGroupType": "selectedPublicApps", "apps": apps}
                       ).status_code == 204
    read = client.get(f"/deviceAppManagement/iosManagedAppProtections/{policy_id}",
                      params={"$expand": "apps"}).json()
    assert read["apps"][0]["mobileAppIdentifier"]["bundleId"] == "com.microsoft.msedge"
    assert client.post(f"/deviceAppManagement/iosManagedAppProtections/{policy_id}/assign",
                       json={"assignments": [_target(_group_id(client))]}).status_code == 204
    listed = client.get("/deviceAppManagement/managedAppPolicies").json()["value"]
    assert policy_id in {p["id"] for p in listed}


def test_autopilot_assignments_are_posted_one_at_a_time(graph):
    client = graph()
    created = client.post(f"{DM}/windowsAutopilotDeploymentProfiles", json={
        "@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile",
        "displayName": "AP", "deviceNameTemplate": "X-%SERIAL%"})
    assert created.status_code == 201
    profile_id = created.json()["id"]
    one = client.post(f"{DM}/windowsAutopilotDeploymentProfiles/{profile_id}/assignments",
                      json=_target(_group_id(client)))
    assert one.status_code == 201
    listed = client.get(f"{DM}/windowsAutopilotDeploymentProfiles/{profile_id}/assignments"
                        ).json()["value"]
    assert [a["id"] for a in listed] == [one.json()["id"]]
    assert client.delete(f"{DM}/windowsAutopilotDeploymentProfiles/{profile_id}/assignments/"
                         f"{one.json()['id']}").status_code == 204


def test_notification_template_locales_filters_categories_and_groups(graph):
    client = graph()
    template = client.post(f"{DM}/notificationMessageTemplates", json={
        "displayName": "Notice", "brandingOptions": "none"})
    assert template.status_code == 201
    template_id = template.json()["id"]
    locale = client.post(f"{DM}/notificationMessageTemplates/{template_id}/"
                         "localizedNotificationMessages",
                         json={"locale": "en-us", "subject": "Hi", "messageTemplate": "Body",
                               "isDefault": True})
    assert locale.status_code == 201
    expanded = client.get(f"{DM}/notificationMessageTemplates/{template_id}",
                          params={"$expand": "localizedNotificationMessages"}).json()
    assert [m["locale"] for m in expanded["localizedNotificationMessages"]] == ["en-us"]

    flt = client.post(f"{DM}/assignmentFilters", json={
        "displayName": "F", "platform": "iOS", "rule": '(device.model -eq "x")'})
    assert flt.status_code == 201
    assert client.patch(f"{DM}/assignmentFilters/{flt.json()['id']}",
                        json={"platform": "android"}).status_code == 400
    assert client.patch(f"{DM}/assignmentFilters/{flt.json()['id']}",
                        json={"rule": '(device.model -eq "y")'}).status_code == 204

    category = client.post(f"{DM}/deviceCategories", json={"displayName": "Lab"})
    assert category.status_code == 201

    no_nickname = client.post("/groups", json={"displayName": "G", "securityEnabled": True,
                                               "mailEnabled": False})
    assert no_nickname.status_code == 400
    group = client.post("/groups", json={"displayName": "G", "mailNickname": "g",
                                         "securityEnabled": True, "mailEnabled": False})
    assert group.status_code == 201


def test_malformed_json_is_400(graph):
    client = graph()
    response = client.post(f"{DM}/deviceCategories", content=b"{not json",
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"


@pytest.mark.parametrize(("roles", "method", "path", "status"), [
    (["DeviceManagementConfiguration.Read.All"], "GET", f"{DM}/configurationPolicies", 200),
    (["DeviceManagementConfiguration.Read.All"], "POST", f"{DM}/deviceCategories", 403),
    (["DeviceManagementConfiguration.ReadWrite.All"], "GET", f"{DM}/deviceManagementScripts",
     403),
    (["DeviceManagementScripts.Read.All"], "GET", f"{DM}/deviceHealthScripts", 200),
    (["DeviceManagementConfiguration.Read.All"], "GET",
     "/deviceAppManagement/managedAppPolicies", 403),
    (["DeviceManagementApps.Read.All"], "GET", "/deviceAppManagement/managedAppPolicies", 200),
    (["DeviceManagementConfiguration.Read.All"], "GET",
     f"{DM}/windowsAutopilotDeploymentProfiles", 403),
    (["DeviceManagementServiceConfig.Read.All"], "GET",
     f"{DM}/windowsAutopilotDeploymentProfiles", 200),
    (["DeviceManagementRBAC.Read.All"], "GET", f"{DM}/roleScopeTags", 200),
    (["DeviceManagementManagedDevices.Read.All"], "GET", f"{DM}/deviceCategories", 200),
    (["DeviceManagementConfiguration.Read.All"], "GET", "/groups", 403),
    (["GroupMember.Read.All"], "GET", "/groups", 200),
])
def test_roles_per_route(graph, roles, method, path, status):
    client = graph(roles=roles)
    response = client.request(method, path, json={"displayName": "x"} if method == "POST"
                              else None)
    assert response.status_code == status, response.text
    if status == 403 and not path.startswith("/groups"):
        assert "Application is not authorized to perform this operation" in response.json()[
            "error"]["message"]


def test_malformed_action_bodies_are_400(graph):
    client = graph()
    policy = client.post(f"{DM}/deviceCompliancePolicies", json={
        "@odata.type": "#microsoft.graph.windows10CompliancePolicy", "displayName": "c",
        "scheduledActionsForRule": [{"ruleName": "PasswordRequired",
                                     "scheduledActionConfigurations": [
                                         {"actionType": "block"}]}]}).json()
    odd = client.post(f"{DM}/deviceCompliancePolicies/{policy['id']}/scheduleActionsForRules",
                      json={"deviceComplianceScheduledActionForRules": ["not an object"]})
    assert odd.status_code == 400
    assert odd.json()["error"]["code"] == "BadRequest"
    assert client.get(f"{DM}/deviceCompliancePolicies/{policy['id']}").status_code == 200


def test_encrypted_oma_values_are_stored_masked_and_readable_through_the_function(graph):
    client = graph()
    created = client.post(f"{DM}/deviceConfigurations", json={
        "@odata.type": "#microsoft.graph.windows10CustomConfiguration", "displayName": "OMA",
        "omaSettings": [{"@odata.type": "#microsoft.graph.omaSettingString",
                         "displayName": "Key", "omaUri": "./Device/Vendor/MSFT/X",
                         "value": "s3cret-value", "isEncrypted": True}]})
    assert created.status_code == 201
    setting = created.json()["omaSettings"][0]
    assert setting["value"] == "****"
    plain = client.get(f"{DM}/deviceConfigurations/{created.json()['id']}/"
                       "getOmaSettingPlainTextValue(secretReferenceValueId="
                       f"'{setting['secretReferenceValueId']}')").json()
    assert plain["value"] == "s3cret-value"


def test_an_assigned_autopilot_profile_cannot_be_deleted(graph):
    client = graph()
    profile = next(p for p in client.get(f"{DM}/windowsAutopilotDeploymentProfiles").json()[
        "value"])
    url = f"{DM}/windowsAutopilotDeploymentProfiles/{profile['id']}"
    assert client.delete(url).status_code == 400
    assert client.delete(f"{url}/assignments").status_code == 204
    assert client.delete(url).status_code == 204
