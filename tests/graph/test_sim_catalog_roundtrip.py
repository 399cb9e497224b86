"""Each restorable compliance, script, update, administration and Entra type, driven only by its catalog
entry, over HTTPS against the simulator.

Capture in full, then create a copy with the catalog's strip list, update it with its update method and strip
list, write its child collections through the catalog's actions and assign it as the catalog says: the strict
simulator rejects any read-only or navigation property a strip list forgot.
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.graph import CATALOG, GraphBadRequest, GraphClient, GraphClientFactory, PolicyReader, PolicyType
from tests.graph.conftest import SimTenant

NEW_TYPES = [
    "complianceSettingsPolicy",
    "complianceScript",
    "macOSShellScript",
    "customAttributeScript",
    "driverUpdateProfile",
    "roleDefinition",
    "roleAssignment",
    "termsAndConditions",
    "brandingProfile",
    "deviceManagementPartner",
    "remoteAssistancePartner",
    "reusablePolicySetting",
    "policySet",
    "conditionalAccessPolicy",
    "namedLocation",
    "authenticationStrengthPolicy",
]
RESTORABLE = [k for k in NEW_TYPES if CATALOG[k].backup_only is None]


def _without(body: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in keys and "@odata.context" not in k}


def create_body(policy_type: PolicyType, captured: dict[str, Any]) -> dict[str, Any]:
    # Child collections the strip list keeps go with the create (deep insert); the others follow it.
    body = _without(captured, policy_type.all_strip_on_restore)
    if policy_type.key == "roleAssignment":
        # Navigation properties are written as binds to the objects they reference.
        body["roleDefinition@odata.bind"] = (
            f"https://graph.microsoft.com/beta/deviceManagement/roleDefinitions('{captured['roleDefinition']['id']}')"
        )
        body["roleScopeTags@odata.bind"] = [
            f"https://graph.microsoft.com/beta/deviceManagement/roleScopeTags('{t['id']}')"
            for t in captured["roleScopeTags"]
        ]
    body[policy_type.name_property] = f"{captured[policy_type.name_property]} (copy)"
    return body


def child_body(policy_type: PolicyType, prop: str, value: Any, current: dict[str, Any]) -> dict[str, Any]:
    action = policy_type.child_writes[prop]
    if action == "setScheduledActions":
        return {"scheduledActions": value}
    if action == "update":
        # The update action adds and deletes items: replace what the copy holds with the captured items.
        return {
            "deletedPolicySetItems": [i["id"] for i in current.get(prop, [])],
            "addedPolicySetItems": [
                _without(i, ("id", "status", "errorCode", "createdDateTime", "lastModifiedDateTime"))
                for i in value
            ],
        }
    return {prop: value}


async def roundtrip(
    client: GraphClient, reader: PolicyReader, policy_type: PolicyType, policy_id: str, group_id: str
) -> dict[str, Any]:
    original = (await reader.read_policy(policy_type.key, policy_id)).body
    created = await client.post(
        f"/{policy_type.api_version}/{policy_type.create_path or policy_type.collection}",
        json_body=create_body(policy_type, original),
    )
    assert created.status_code == 201, created.json()
    new_id = created.json()["id"]
    item = policy_type.item_url(new_id)

    update = _without(original, policy_type.all_strip_on_restore + policy_type.strip_on_update)
    update[policy_type.name_property] = f"{original[policy_type.name_property]} (restored)"
    if policy_type.update_method == "PUT":
        answer = await client.put(item, json_body=update)
    else:
        answer = await client.patch(item, json_body=update)
    assert answer.status_code == 204, answer.json()

    for prop, action in policy_type.child_writes.items():
        if original.get(prop):
            current = (await reader.read_policy(policy_type.key, new_id)).body
            written = await client.post(
                f"{item}/{action}", json_body=child_body(policy_type, prop, original[prop], current)
            )
            assert 200 <= written.status_code < 300, (prop, written.json())

    spec = policy_type.assignments
    if spec is not None:
        target = {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": group_id}
        if spec.one_per_request:
            assigned = await client.post(f"{item}/{spec.write_path}", json_body={spec.body_key: target})
        else:
            assigned = await client.post(
                f"{item}/{spec.write_path}", json_body={spec.body_key: [{"target": target}]}, idempotent=True
            )
        assert assigned.status_code == spec.write_status, assigned.json()
    return (await reader.read_policy(policy_type.key, new_id)).body


@pytest.mark.parametrize("type_key", RESTORABLE)
async def test_a_captured_object_is_recreated_updated_and_assigned_from_its_catalog_entry(
    demo: SimTenant, demo_factory: GraphClientFactory, type_key: str
) -> None:
    policy_type = CATALOG[type_key]
    client = demo.client(demo_factory)
    reader = PolicyReader(client)
    listed = await reader.list_policies(type_key)
    # Built-ins stay where they are: only the tenant's own objects are restored.
    source = next(p for p in listed if not policy_type.is_builtin(p.listed))
    group = demo.sim.control.objects(demo.tenant_id, "group")[0]["id"]

    restored = await roundtrip(client, reader, policy_type, source.id, group)
    original = (await reader.read_policy(type_key, source.id)).body

    assert restored[policy_type.name_property] == f"{original[policy_type.name_property]} (restored)"
    ignore = set(policy_type.all_strip_on_restore) | {policy_type.name_property}
    # Everything the catalog keeps is carried over (server-computed properties excepted).
    for key, value in original.items():
        if (
            key in ignore
            or "@odata" in key
            or key in policy_type.child_writes
            or key
            in (
                "modifiedDateTime",
                "settingCount",
                "isAssigned",
                "status",
                "errorCode",
                "inventorySyncStatus",
            )
        ):
            continue
        if key in ("settings", "scheduledActionsForRule", "items", "roleDefinition", "roleScopeTags"):
            continue
        assert restored.get(key) == value, (type_key, key)
    for child in ("settings", "scheduledActionsForRule", "allowedCombinations"):
        if child in original:
            assert len(restored[child]) == len(original[child]), child
    if type_key == "policySet":
        assert [i["payloadId"] for i in restored["items"]] == [i["payloadId"] for i in original["items"]]
    if type_key == "roleAssignment":
        assert restored["roleDefinition"]["id"] == original["roleDefinition"]["id"]
        assert [t["id"] for t in restored["roleScopeTags"]] == [t["id"] for t in original["roleScopeTags"]]
    if policy_type.assignments is not None:
        assert [a["target"]["groupId"] for a in restored["assignments"]] == [group]


async def test_built_in_roles_and_strengths_and_the_default_branding_are_never_written(
    demo: SimTenant, demo_factory: GraphClientFactory
) -> None:
    client = demo.client(demo_factory)
    reader = PolicyReader(client)
    roles = await reader.list_policies("roleDefinition")
    builtin = [r for r in roles if CATALOG["roleDefinition"].is_builtin(r.listed)]
    assert builtin
    assert len(builtin) < len(roles)
    with pytest.raises(GraphBadRequest) as refused:
        await client.patch(
            CATALOG["roleDefinition"].item_url(builtin[0].id), json_body={"description": "changed"}
        )
    assert refused.value.status_code == 400
    strengths = await reader.list_policies("authenticationStrengthPolicy")
    assert strengths
    assert all(s.listed["policyType"] == "custom" for s in strengths)
    default = next(p for p in await reader.list_policies("brandingProfile") if p.listed["isDefaultProfile"])
    spec = CATALOG["brandingProfile"].assignments
    assert spec is not None
    with pytest.raises(GraphBadRequest):
        await client.post(
            f"{CATALOG['brandingProfile'].item_url(default.id)}/assign", json_body={spec.body_key: []}
        )
