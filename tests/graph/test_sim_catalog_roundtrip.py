"""Each restorable compliance, script, update, administration and Entra type, driven only by its catalog
entry, over HTTPS against the simulator.

Capture in full, then create a copy with the catalog's strip list, update it with its update method and strip
list, write its child collections through the catalog's actions and assign it as the catalog says: the strict
simulator rejects any read-only or navigation property a strip list forgot.

Then every restorable type of the catalog, not only these, goes through the restore's own writer: created,
updated and assigned as a restore does it, and read back. A guard test fails for any catalog type without a
read and, where its capabilities allow writes, a write round trip over HTTPS.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from shared.graph import CATALOG, GraphBadRequest, GraphClient, GraphClientFactory, PolicyReader, PolicyType
from shared.graph.writer import PolicyWriter
from shared.graph.writer import create_body as writer_create_body
from shared.graph.writer import update_body as writer_update_body
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


# ---------------------------------------------------------------- every restorable type, through the writer

# Every type a restore may create, straight from the catalog: a type added without simulator support for its
# writes fails here. Singletons are never created; the coverage module updates them in place.
WRITER_TYPES = [k for k, t in CATALOG.items() if t.capabilities["create"] and not t.singleton]


def _copyable(policy_type: PolicyType, listed: Mapping[str, Any]) -> bool:
    """The tenant's own objects, not the built-ins and defaults that exist once per tenant."""
    default = not (policy_type.assignments is None or policy_type.can_assign(listed))  # enrollment defaults
    return not policy_type.is_builtin(listed) and not default and not listed.get("isDefaultProfile")


def _assignment(policy_type: PolicyType, group_id: str) -> dict[str, Any]:
    spec = policy_type.assignments
    assert spec is not None
    assignment: dict[str, Any] = {
        "target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": group_id}}
    if spec.body_key == "mobileAppAssignments":
        assignment["intent"] = "required"  # Graph refuses app assignments without one
    return assignment


@pytest.mark.parametrize("type_key", WRITER_TYPES)
async def test_the_writer_creates_updates_and_assigns_every_restorable_type(
    demo: SimTenant, demo_factory: GraphClientFactory, type_key: str
) -> None:
    policy_type = CATALOG[type_key]
    client = demo.client(demo_factory)
    reader = PolicyReader(client)
    writer = PolicyWriter(client)
    source = next(p for p in await reader.list_policies(type_key) if _copyable(policy_type, p.listed))
    original = (await reader.read_policy(type_key, source.id, listed=source.listed)).body
    name = policy_type.name_property
    copy = {**original, name: f"{original[name]} (copy)"}
    if type_key == "deviceCleanupRule":
        # One rule per platform: the copy takes a platform the tenant has no rule for.
        copy["deviceCleanupRulePlatformType"] = "chromeOS"

    new_id = await writer.create(type_key, copy)
    created = await reader.read_policy(type_key, new_id)
    assert created.complete, created.problems
    sent = writer_create_body(policy_type, copy)
    for key, value in sent.items():
        if key in policy_type.child_writes:
            continue
        assert created.body.get(key) == value, (type_key, key)
    # Parts written by their own calls come back with ids of the new object: compare their number.
    for child in policy_type.child_writes:
        if isinstance(copy.get(child), list):
            assert len(created.body[child]) == len(copy[child]), (type_key, child)
        elif child in copy:
            assert created.body[child] == copy[child], (type_key, child)

    renamed = {**copy, name: f"{original[name]} (restored)"}
    await writer.update(type_key, new_id, renamed, current=created.body)
    updated = (await reader.read_policy(type_key, new_id)).body
    assert updated[name] == renamed[name]
    for key, value in writer_update_body(policy_type, renamed).items():
        if key not in policy_type.child_writes:
            assert updated.get(key) == value, (type_key, key)

    if policy_type.capabilities["assignments"]:
        group = demo.sim.control.objects(demo.tenant_id, "group")[0]["id"]
        odata_type = created.body.get("@odata.type")
        await writer.assign(type_key, new_id, odata_type if isinstance(odata_type, str) else None,
                            [_assignment(policy_type, group)], current=created.body.get("assignments"))
        assigned = (await reader.read_policy(type_key, new_id)).body
        assert [a["target"]["groupId"] for a in assigned["assignments"]] == [group]


def test_every_catalog_type_is_read_and_where_it_can_be_written_round_tripped_over_https() -> None:
    """A type added to the catalog without a test over HTTPS against the simulator fails here."""
    from tests.graph.test_sim_coverage_types import READ_TYPES, UPDATED_IN_PLACE

    untested = []
    for key, policy_type in CATALOG.items():
        caps = policy_type.capabilities
        tested = key in READ_TYPES
        if policy_type.singleton:
            tested = tested and (not caps["update"] or key in UPDATED_IN_PLACE)
        else:
            tested = tested and (not (caps["create"] or caps["update"] or caps["assignments"])
                                 or key in WRITER_TYPES)
        if not tested:
            untested.append(key)
    assert untested == []
    assert len(READ_TYPES) == len(CATALOG) >= 50
