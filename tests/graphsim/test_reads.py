"""Read shapes per type: envelopes, @odata annotations, paging, expansions, navigations."""

from __future__ import annotations

import base64

import pytest

from tests.graphsim.conftest import read_all_pages

DM = "/deviceManagement"


def test_graph_headers_and_envelope(sim, graph):
    client = graph()
    response = client.get(f"{DM}/deviceConfigurations", headers={"client-request-id": "abc-123"})
    assert response.status_code == 200
    assert response.headers["client-request-id"] == "abc-123"
    assert response.headers["request-id"]
    assert response.headers["OData-Version"] == "4.0"
    assert response.headers["Content-Type"].startswith("application/json;odata.metadata=minimal")
    body = response.json()
    assert body["@odata.context"] == (f"{sim.base_url}/beta/$metadata#deviceManagement/"
                                      "deviceConfigurations")
    assert all(item["@odata.type"].startswith("#microsoft.graph.") for item in body["value"])


def test_settings_catalog_settings_page_at_25_with_absolute_opaque_next_link(sim, graph):
    client = graph()
    policies = client.get(f"{DM}/configurationPolicies").json()["value"]
    big = next(p for p in policies if p["settingCount"] > 25)
    first = client.get(f"{DM}/configurationPolicies/{big['id']}/settings").json()
    assert len(first["value"]) == 25
    assert first["@odata.count"] == big["settingCount"]
    next_link = first["@odata.nextLink"]
    assert next_link.startswith(f"{sim.base_url}/beta/deviceManagement/configurationPolicies/")
    assert "$skiptoken=" in next_link
    assert "skip=25" not in next_link
    assert first["@odata.context"].endswith(f"configurationPolicies('{big['id']}')/settings")
    everything = read_all_pages(client, f"{DM}/configurationPolicies/{big['id']}/settings",
                                **{"$top": "1000"})
    assert len(everything) == big["settingCount"]
    assert len({s["id"] for s in everything}) == big["settingCount"]
    assert all(s["settingInstance"]["@odata.type"].startswith("#microsoft.graph.")
               for s in everything)


def test_settings_catalog_expand_settings_and_assignments(graph):
    client = graph()
    policies = client.get(f"{DM}/configurationPolicies").json()
    assert policies["@odata.count"] == len(policies["value"]) == 3
    assert all("settings" not in p and "assignments" not in p for p in policies["value"])
    policy = next(p for p in policies["value"] if p["isAssigned"])
    item = client.get(f"{DM}/configurationPolicies/{policy['id']}",
                      params={"$expand": "settings,assignments"}).json()
    assert item["@odata.context"].endswith("/$metadata#deviceManagement/configurationPolicies/"
                                           "$entity")
    assert len(item["settings"]) == policy["settingCount"]
    assert item["settings@odata.context"].endswith(f"('{policy['id']}')/settings")
    assert item["assignments"]
    assignment = item["assignments"][0]
    assert assignment["sourceId"] == policy["id"]
    assert assignment["target"]["@odata.type"].endswith("AssignmentTarget")


def test_list_paging_follows_next_links_over_a_generated_tenant(sim, graph):
    tenant = sim.control.create_tenant("generated", policies=400, seed=3)
    client = graph(tenant=tenant["tenantId"])
    first = client.get(f"{DM}/configurationPolicies").json()
    expected = tenant["counts"]["settingsCatalog"]
    assert expected > 25
    assert len(first["value"]) == 25
    assert first["@odata.count"] == expected
    assert len(read_all_pages(client, f"{DM}/configurationPolicies")) == expected
    devices = read_all_pages(client, f"{DM}/deviceConfigurations", **{"$top": "7"})
    # The collection also holds the iOS and macOS update policies, which are types of their own.
    assert len(devices) == sum(tenant["counts"][key] for key in (
        "deviceConfiguration", "updateRing", "iosUpdatePolicy", "macOSUpdatePolicy"))


def test_assignments_navigation_carries_the_parent_id_in_context(graph):
    client = graph()
    config = client.get(f"{DM}/deviceConfigurations").json()["value"][0]
    body = client.get(f"{DM}/deviceConfigurations/{config['id']}/assignments").json()
    assert body["@odata.context"].endswith(
        f"$metadata#deviceManagement/deviceConfigurations('{config['id']}')/assignments")
    expanded = client.get(f"{DM}/deviceConfigurations",
                          params={"$expand": "assignments"}).json()["value"]
    assert all("assignments" in c and "assignments@odata.context" in c for c in expanded)


def test_update_rings_and_device_configurations_split_by_isof(graph):
    client = graph()
    ring_type = "microsoft.graph.windowsUpdateForBusinessConfiguration"
    rings = client.get(f"{DM}/deviceConfigurations",
                       params={"$filter": f"isof('{ring_type}')"}).json()["value"]
    others = client.get(f"{DM}/deviceConfigurations",
                        params={"$filter": f"not isof('{ring_type}')"}).json()["value"]
    assert len(rings) == 2
    assert {r["@odata.type"] for r in rings} == {f"#{ring_type}"}
    # Three profiles plus the iOS and macOS update policies, which are deviceConfigurations too.
    assert len(others) == 5
    assert all(o["@odata.type"] != f"#{ring_type}" for o in others)
    apple = client.get(f"{DM}/deviceConfigurations", params={
        "$filter": "isof('microsoft.graph.iosUpdateConfiguration') or "
                   "isof('microsoft.graph.macOSSoftwareUpdateConfiguration')"}).json()["value"]
    assert sorted(o["@odata.type"] for o in apple) == [
        "#microsoft.graph.iosUpdateConfiguration", "#microsoft.graph.macOSSoftwareUpdateConfiguration"]


def test_encrypted_oma_value_needs_the_plain_text_function(graph):
    client = graph()
    custom = next(c for c in client.get(f"{DM}/deviceConfigurations").json()["value"]
                  if c["@odata.type"] == "#microsoft.graph.windows10CustomConfiguration")
    secret = next(s for s in custom["omaSettings"] if s["isEncrypted"])
    assert secret["value"] == "****"
    assert "_plainTextValue" not in secret
    response = client.get(f"{DM}/deviceConfigurations/{custom['id']}/getOmaSettingPlainTextValue"
                          f"(secretReferenceValueId='{secret['secretReferenceValueId']}')")
    assert response.status_code == 200
    assert response.json()["value"].startswith("agent-key-")


def test_compliance_scheduled_actions_only_with_expand(graph):
    client = graph()
    plain = client.get(f"{DM}/deviceCompliancePolicies").json()["value"]
    assert all("scheduledActionsForRule" not in p for p in plain)
    expanded = client.get(f"{DM}/deviceCompliancePolicies", params={
        "$expand": "scheduledActionsForRule($expand=scheduledActionConfigurations)"}).json()
    policy = expanded["value"][0]
    rule = policy["scheduledActionsForRule"][0]
    actions = rule["scheduledActionConfigurations"]
    assert [a["actionType"] for a in actions].count("block") == 1
    templates = client.get(f"{DM}/notificationMessageTemplates").json()["value"]
    notify = next(a for a in actions if a["actionType"] == "notification")
    assert notify["notificationTemplateId"] in {t["id"] for t in templates}
    assert "scheduledActionConfigurations@odata.context" in rule
    nav = client.get(f"{DM}/deviceCompliancePolicies/{policy['id']}/scheduledActionsForRule")
    assert nav.status_code == 400
    assert "No OData route" in nav.json()["error"]["message"]


def test_group_policy_definition_and_presentation_values(graph):
    client = graph()
    gpos = client.get(f"{DM}/groupPolicyConfigurations").json()["value"]
    assert len(gpos) == 2
    gpo = gpos[0]
    values = client.get(f"{DM}/groupPolicyConfigurations/{gpo['id']}/definitionValues",
                        params={"$expand": "definition"}).json()
    assert values["@odata.context"].endswith(f"('{gpo['id']}')/definitionValues")
    assert values["value"]
    with_presentations = 0
    for value in values["value"]:
        definition = value["definition"]
        assert definition["displayName"]
        assert definition["categoryPath"]
        assert client.get(f"{DM}/groupPolicyDefinitions/{definition['id']}").status_code == 200
        pvs = client.get(f"{DM}/groupPolicyConfigurations/{gpo['id']}/definitionValues/"
                         f"{value['id']}/presentationValues",
                         params={"$expand": "presentation"}).json()["value"]
        for pv in pvs:
            with_presentations += 1
            assert pv["@odata.type"].startswith("#microsoft.graph.groupPolicyPresentationValue")
            assert pv["presentation"]["label"]
            assert "_presentationId" not in pv
    assert with_presentations > 0


@pytest.mark.parametrize(("collection", "content_keys"), [
    ("deviceManagementScripts", ["scriptContent"]),
    ("deviceHealthScripts", ["detectionScriptContent", "remediationScriptContent"]),
])
def test_script_content_is_null_in_lists_and_base64_on_item_get(graph, collection, content_keys):
    client = graph()
    listed = client.get(f"{DM}/{collection}").json()["value"]
    assert listed
    for item in listed:
        assert all(item[key] is None for key in content_keys)
        full = client.get(f"{DM}/{collection}/{item['id']}").json()
        for key in content_keys:
            assert base64.b64decode(full[key]).decode().startswith("#")


def test_intents_settings_and_categories(graph):
    client = graph()
    intents = client.get(f"{DM}/intents").json()["value"]
    assert len(intents) == 2
    intent = intents[0]
    settings = client.get(f"{DM}/intents/{intent['id']}/settings").json()["value"]
    assert settings
    assert all("definitionId" in s and "valueJson" in s for s in settings)
    categories = client.get(f"{DM}/intents/{intent['id']}/categories").json()["value"]
    per_category = sum(len(client.get(f"{DM}/intents/{intent['id']}/categories/{c['id']}/"
                                      "settings").json()["value"]) for c in categories)
    assert per_category == len(settings)
    templates = client.get(f"{DM}/templates").json()["value"]
    assert intent["templateId"] in {t["id"] for t in templates}


def test_app_protection_list_and_platform_items_with_apps(graph):
    client = graph()
    mixed = client.get("/deviceAppManagement/managedAppPolicies").json()["value"]
    types = {p["@odata.type"] for p in mixed}
    assert {"#microsoft.graph.iosManagedAppProtection",
            "#microsoft.graph.androidManagedAppProtection",
            "#microsoft.graph.targetedManagedAppConfiguration"} <= types
    ios = next(p for p in mixed if p["@odata.type"].endswith("iosManagedAppProtection"))
    item = client.get(f"/deviceAppManagement/iosManagedAppProtections('{ios['id']}')",
                      params={"$expand": "apps"}).json()
    assert item["apps"][0]["mobileAppIdentifier"]["bundleId"]
    refused = client.get("/deviceAppManagement/managedAppPolicies",
                         params={"$filter": "displayName eq 'x'"})
    assert refused.status_code == 400
    configs = client.get("/deviceAppManagement/targetedManagedAppConfigurations",
                         params={"$expand": "apps"}).json()["value"]
    assert configs[0]["apps"]


def test_enrollment_defaults_autopilot_tags_filters_notifications_categories(graph):
    client = graph()
    enrollment = client.get(f"{DM}/deviceEnrollmentConfigurations").json()["value"]
    defaults = [e for e in enrollment if e["priority"] == 0]
    assert len(defaults) == 3
    assert any(e["id"].endswith("_DefaultLimit") for e in defaults)
    profile = client.get(f"{DM}/windowsAutopilotDeploymentProfiles").json()["value"][0]
    assignments = client.get(f"{DM}/windowsAutopilotDeploymentProfiles/{profile['id']}/"
                             "assignments").json()["value"]
    assert len(assignments) == 1
    tags = client.get(f"{DM}/roleScopeTags").json()["value"]
    assert {"id": "0", "displayName": "Default"}.items() <= tags[0].items()
    assert tags[0]["isBuiltIn"] is True
    custom = client.get(f"{DM}/roleScopeTags", params={"$filter": "isBuiltIn eq false"}).json()
    assert [t["displayName"] for t in custom["value"]] == ["Region-EU", "Region-US", "Helpdesk"]
    assert all(t["id"].isdigit() for t in custom["value"])
    filters = client.get(f"{DM}/assignmentFilters").json()["value"]
    assert {f["platform"] for f in filters} == {"windows10AndLater", "iOS", "androidForWork"}
    templates = client.get(f"{DM}/notificationMessageTemplates",
                           params={"$expand": "localizedNotificationMessages"}).json()["value"]
    assert {m["locale"] for m in templates[0]["localizedNotificationMessages"]} >= {"en-us"}
    categories = client.get(f"{DM}/deviceCategories").json()["value"]
    assert len(categories) == 3
    updates = client.get(f"{DM}/windowsFeatureUpdateProfiles").json()["value"]
    assert updates[0]["featureUpdateVersion"].startswith("Windows 11")
    quality = client.get(f"{DM}/windowsQualityUpdateProfiles").json()["value"]
    assert quality[0]["expeditedUpdateSettings"]


def test_groups_filter_by_display_name_and_select(graph):
    client = graph(version="v1.0")
    found = client.get("/groups", params={"$filter": "displayName eq 'Pilot Users'",
                                          "$select": "id,displayName"}).json()["value"]
    assert len(found) == 1
    assert set(found[0]) <= {"id", "displayName", "@odata.type"}
    group = client.get(f"/groups/{found[0]['id']}").json()
    assert group["mailNickname"] == "PilotUsers"
    missing = client.get("/groups/00000000-0000-0000-0000-00000000beef")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "Request_ResourceNotFound"


def test_unsupported_filter_is_400(graph):
    client = graph()
    response = client.get(f"{DM}/deviceConfigurations", params={"$filter": "endswith(a,'b')"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"
