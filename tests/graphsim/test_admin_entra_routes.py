"""Routes of the compliance, script, update, tenant-administration and Entra families.

Shapes, paging, navigation properties, write rules and the permission each route needs.
"""

from __future__ import annotations

import pytest

from tests.graphsim.conftest import READ_ALL, WRITE_ALL, read_all_pages

DM = "/deviceManagement"
CA = "/identity/conditionalAccess"
POLICY_READ = ["Policy.Read.All"]


@pytest.mark.parametrize(
    "segment",
    [
        "compliancePolicies",
        "deviceComplianceScripts",
        "deviceShellScripts",
        "deviceCustomAttributeShellScripts",
        "windowsDriverUpdateProfiles",
        "intuneBrandingProfiles",
        "reusablePolicySettings",
    ],
)
def test_beta_only_intune_collections(graph, segment):
    assert graph().get(f"{DM}/{segment}").status_code == 200
    assert graph(version="v1.0").get(f"{DM}/{segment}").status_code == 400


@pytest.mark.parametrize(
    "path",
    [
        f"{DM}/roleDefinitions",
        f"{DM}/roleAssignments",
        f"{DM}/termsAndConditions",
        f"{DM}/deviceManagementPartners",
        f"{DM}/remoteAssistancePartners",
    ],
)
def test_v1_intune_collections_under_both_versions(graph, sim, path):
    for version in ("v1.0", "beta"):
        body = graph(version=version).get(path).json()
        assert body["@odata.context"] == f"{sim.base_url}/{version}/$metadata#{path.lstrip('/')}"
        assert body["value"]


def test_conditional_access_routes_need_policy_permissions(graph, sim):
    intune_only = graph(roles=READ_ALL, version="v1.0")
    denied = intune_only.get(f"{CA}/policies")
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "AccessDenied"
    client = graph(roles=POLICY_READ, version="v1.0")
    for path in (f"{CA}/policies", f"{CA}/namedLocations", "/policies/authenticationStrengthPolicies"):
        body = client.get(path).json()
        assert body["@odata.context"] == f"{sim.base_url}/v1.0/$metadata#{path.lstrip('/')}"
        assert body["value"], path
    locations = client.get(f"{CA}/namedLocations").json()["value"]
    assert {loc["@odata.type"] for loc in locations} == {
        "#microsoft.graph.ipNamedLocation",
        "#microsoft.graph.countryNamedLocation",
    }
    # Reading is not writing: Policy.Read.All cannot create a policy.
    refused = client.post(
        f"{CA}/namedLocations",
        json={"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "x", "ipRanges": []},
    )
    assert refused.status_code == 403
    writer = graph(roles=["Policy.ReadWrite.ConditionalAccess"], version="v1.0")
    bad = writer.post(f"{CA}/policies", json={"displayName": "no conditions", "state": "enabled"})
    assert bad.status_code == 400
    made = writer.post(
        f"{CA}/policies",
        json={
            "displayName": "Block",
            "state": "disabled",
            "conditions": {"users": {"includeUsers": ["All"]}},
            "grantControls": {"operator": "OR", "builtInControls": ["block"]},
        },
    )
    assert made.status_code == 201
    assert made.json()["createdDateTime"]
    assert "roleScopeTagIds" not in made.json()
    unknown = writer.get(f"{CA}/notAThing")
    assert unknown.status_code == 400


def test_authentication_strengths_builtins_and_combination_configurations(graph):
    client = graph(roles=["Policy.ReadWrite.ConditionalAccess"], version="v1.0")
    strengths = client.get("/policies/authenticationStrengthPolicies").json()["value"]
    builtin = [s for s in strengths if s["policyType"] == "builtIn"]
    custom = [s for s in strengths if s["policyType"] == "custom"]
    assert len(builtin) == 3
    assert custom
    assert all("combinationConfigurations" not in s for s in strengths)
    configs = client.get(
        f"/policies/authenticationStrengthPolicies/{custom[0]['id']}/combinationConfigurations"
    )
    assert configs.json()["value"][0]["@odata.type"] == "#microsoft.graph.fido2CombinationConfiguration"
    assert (
        client.patch(
            f"/policies/authenticationStrengthPolicies/{builtin[0]['id']}", json={"description": "x"}
        ).status_code
        == 400
    )
    # Combinations change only through the action.
    assert (
        client.patch(
            f"/policies/authenticationStrengthPolicies/{custom[0]['id']}",
            json={"allowedCombinations": ["fido2"]},
        ).status_code
        == 400
    )
    changed = client.post(
        f"/policies/authenticationStrengthPolicies/{custom[0]['id']}/updateAllowedCombinations",
        json={"allowedCombinations": ["fido2"]},
    )
    assert changed.status_code == 200
    assert changed.json()["currentCombinations"] == ["fido2"]


@pytest.mark.parametrize(
    ("collection", "content"),
    [
        ("deviceComplianceScripts", "detectionScriptContent"),
        ("deviceShellScripts", "scriptContent"),
        ("deviceCustomAttributeShellScripts", "scriptContent"),
    ],
)
def test_script_bodies_only_on_item_get_and_only_with_the_scripts_permission(graph, collection, content):
    listed = graph().get(f"{DM}/{collection}").json()["value"]
    assert listed
    assert all(item[content] is None for item in listed)
    item = graph().get(f"{DM}/{collection}/{listed[0]['id']}").json()
    assert item[content]
    config_only = graph(roles=["DeviceManagementConfiguration.ReadWrite.All"])
    assert config_only.get(f"{DM}/{collection}").status_code == 403


def test_compliance_settings_policies_page_settings_and_expand_scheduled_actions(graph):
    client = graph()
    policies = client.get(f"{DM}/compliancePolicies").json()["value"]
    big = next(p for p in policies if p["settingCount"] > 25)
    assert "scheduledActionsForRule" not in big
    assert "settings" not in big
    first = client.get(f"{DM}/compliancePolicies/{big['id']}/settings").json()
    assert len(first["value"]) == 25
    assert first["@odata.count"] == big["settingCount"]
    assert len(read_all_pages(client, f"{DM}/compliancePolicies/{big['id']}/settings")) == big["settingCount"]
    item = client.get(
        f"{DM}/compliancePolicies/{big['id']}",
        params={"$expand": "scheduledActionsForRule($expand=scheduledActionConfigurations)"},
    ).json()
    actions = item["scheduledActionsForRule"][0]["scheduledActionConfigurations"]
    assert next(a["actionType"] for a in actions) == "block"
    rules = client.get(f"{DM}/compliancePolicies/{big['id']}/scheduledActionsForRule").json()["value"]
    assert rules
    assert "scheduledActionConfigurations" not in rules[0]
    no_block = client.post(
        f"{DM}/compliancePolicies/{big['id']}/setScheduledActions",
        json={
            "scheduledActions": [
                {
                    "ruleName": None,
                    "scheduledActionConfigurations": [{"actionType": "notification", "gracePeriodHours": 1}],
                }
            ]
        },
    )
    assert no_block.status_code == 400


def test_role_assignments_expand_their_role_and_scope_tags(graph):
    client = graph(roles=["DeviceManagementRBAC.Read.All"])
    assignment = client.get(f"{DM}/roleAssignments").json()["value"][0]
    assert "roleDefinition" not in assignment
    item = client.get(
        f"{DM}/roleAssignments/{assignment['id']}",
        params={"$expand": "roleDefinition($select=id,displayName),roleScopeTags"},
    ).json()
    assert set(item["roleDefinition"]) == {"id", "displayName", "@odata.type"}
    assert item["roleDefinition@odata.context"].endswith("/roleDefinition/$entity")
    assert item["roleScopeTags"]
    assert all("displayName" in t for t in item["roleScopeTags"])
    of_role = client.get(f"{DM}/roleDefinitions/{item['roleDefinition']['id']}/roleAssignments").json()[
        "value"
    ]
    assert assignment["id"] in {a["id"] for a in of_role}
    assert client.get(f"{DM}/roleAssignments", headers={}).status_code == 200
    assert (
        graph(roles=["DeviceManagementConfiguration.Read.All"]).get(f"{DM}/roleDefinitions").status_code
        == 403
    )


def test_terms_assignments_one_at_a_time_and_policy_set_items(graph):
    client = graph(roles=WRITE_ALL)
    terms = client.get(f"{DM}/termsAndConditions").json()["value"][0]
    group = client.get("/groups").json()["value"][0]["id"]
    made = client.post(
        f"{DM}/termsAndConditions/{terms['id']}/assignments",
        json={"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": group}},
    )
    assert made.status_code == 201
    assert (
        client.post(f"{DM}/termsAndConditions/{terms['id']}/assign", json={"assignments": []}).status_code
        == 400
    )
    sets = client.get("/deviceAppManagement/policySets").json()["value"]
    assert "items" not in sets[0]
    expanded = client.get(
        f"/deviceAppManagement/policySets/{sets[0]['id']}", params={"$expand": "items"}
    ).json()
    assert expanded["items"]
    assert all(i["payloadId"] for i in expanded["items"])
    drivers = client.get(f"{DM}/windowsDriverUpdateProfiles").json()["value"][0]
    inventory = client.get(f"{DM}/windowsDriverUpdateProfiles/{drivers['id']}/driverInventories").json()
    assert inventory["value"]
    assert inventory["@odata.context"].endswith("/driverInventories")
