"""The app, Apple, partner, cleanup and tenant-settings types, driven only by their catalog entries, over
HTTPS against the simulator.

Every catalog type (not only these) is captured in full through the reader and equals the simulator's object
after normalisation (``tests.sim_compare``); each restorable one of these is recreated (or, for a singleton,
updated in place) and assigned as its entry says, with the strict simulator rejecting any read-only or
navigation property a strip list forgot; each backup-only type says why and keeps no tenant-bound secret.
"""

from __future__ import annotations

from typing import Any

import pytest

from localdev.graphsim.testing import SimHandle
from shared.graph import CATALOG, GraphClient, GraphClientFactory, PolicyReader, PolicyType
from shared.graph.writer import PolicyWriter
from tests.graph.conftest import SimTenant, make_tenant
from tests.sim_compare import capture_differences, held_by_id

COVERAGE_TYPES = [
    "mobileAppCategory", "mobileApp", "contentApp", "managedDeviceAppConfiguration",
    "windowsAppProtectionPolicy", "wipPolicy", "mdmWipPolicy", "iosUpdatePolicy", "macOSUpdatePolicy",
    "appleEnrollmentTypeProfile",
    "depOnboardingSetting", "vppToken", "applePushCertificate", "managedGooglePlay", "compliancePartner",
    "deviceCleanupRule", "deviceCleanupSettings", "tenantSettings",
]
RESTORABLE = [k for k in COVERAGE_TYPES if CATALOG[k].backup_only is None and not CATALOG[k].singleton]
# Every catalog type is read in full and compared, not only the ones this module's round trips cover.
READ_TYPES = list(CATALOG)


@pytest.mark.parametrize("type_key", READ_TYPES)
async def test_each_type_is_captured_in_full_and_equals_the_server_object(
    demo: SimTenant, demo_factory: GraphClientFactory, type_key: str
) -> None:
    policy_type = CATALOG[type_key]
    reader = PolicyReader(demo.client(demo_factory, read_only=True))
    listed = await reader.list_policies(type_key)
    server = held_by_id(demo.sim.control.objects(demo.tenant_id, type_key), policy_type)
    assert server, f"the demo tenant has no {type_key}"
    assert {p.id for p in listed} == set(server)
    for summary in listed:
        captured = await reader.read_policy(type_key, summary.id, listed=summary.listed)
        assert captured.complete, captured.problems
        assert captured.name
        differ = capture_differences(captured.body, server[summary.id], policy_type,
                                     lambda key: demo.sim.control.objects(demo.tenant_id, key))
        assert differ == [], (type_key, summary.id, differ)
        for secret in policy_type.redact_on_capture:
            assert server[summary.id][secret]  # Graph sends it...
            assert captured.body[secret] is None  # ...a backup never keeps it


async def test_apps_are_split_between_the_restorable_and_the_backup_only_type(
    demo: SimTenant, demo_factory: GraphClientFactory
) -> None:
    reader = PolicyReader(demo.client(demo_factory, read_only=True))
    every_app = demo.sim.control.objects(demo.tenant_id, "mobileApps")  # the whole collection
    store = {p.listed["@odata.type"] for p in await reader.list_policies("mobileApp")}
    content = {p.listed["@odata.type"] for p in await reader.list_policies("contentApp")}
    assert store == {"#microsoft.graph.webApp", "#microsoft.graph.iosStoreApp", "#microsoft.graph.winGetApp"}
    assert content == {"#microsoft.graph.win32LobApp", "#microsoft.graph.iosVppApp"}
    # Microsoft's managed store apps are in every tenant's list and belong to neither.
    builtin = {a["@odata.type"] for a in every_app} - store - content
    assert builtin == {"#microsoft.graph.managedIOSStoreApp", "#microsoft.graph.managedAndroidStoreApp"}
    assert "binary" in (CATALOG["contentApp"].backup_only or "")


async def test_backup_only_types_keep_no_secret_and_say_why(
    demo: SimTenant, demo_factory: GraphClientFactory
) -> None:
    reader = PolicyReader(demo.client(demo_factory, read_only=True))
    [token] = await reader.list_policies("vppToken")
    assert token.listed["token"]  # Graph sends it...
    captured = await reader.read_policy("vppToken", token.id, listed=token.listed)
    assert captured.body["token"] is None  # ...a backup never keeps it
    partners = await reader.list_policies("compliancePartner")
    assert [p.listed["partnerState"] for p in partners] == ["enabled"]
    dep = await reader.list_policies("depOnboardingSetting")
    assert dep[0].name == dep[0].listed["tokenName"]
    for key in [k for k, t in CATALOG.items() if t.backup_only is not None]:
        caps = CATALOG[key].capabilities
        assert caps["backupOnly"]
        assert not caps["create"]
        assert not caps["update"]
        assert not caps["assignments"]
        assert len(str(caps["backupOnlyReason"])) > 40, key


async def test_singletons_are_one_item_and_absent_where_the_tenant_never_set_them_up(sim: SimHandle) -> None:
    empty = make_tenant(sim, "empty", seed=4)
    factory = empty.factory()
    try:
        reader = PolicyReader(empty.client(factory, read_only=True))
        assert await reader.list_policies("applePushCertificate") == []
        assert await reader.list_policies("managedGooglePlay") == []
        [settings] = await reader.list_policies("tenantSettings")
        assert (settings.id, settings.name) == ("tenantSettings", CATALOG["tenantSettings"].display_name)
        captured = [c async for c in reader.read_all(["tenantSettings", "deviceCleanupSettings",
                                                      "applePushCertificate"])]
        assert sorted(c.type_key for c in captured) == ["deviceCleanupSettings", "tenantSettings"]
        assert all(c.complete for c in captured)
        assert CATALOG["tenantSettings"].singleton
        assert CATALOG["tenantSettings"].capabilities["update"] is True
    finally:
        await factory.aclose()


def create_body(policy_type: PolicyType, captured: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in captured.items()
            if k not in policy_type.all_strip_on_restore and "@odata.context" not in k}
    body[policy_type.name_property] = f"{captured[policy_type.name_property]} (copy)"
    if policy_type.key == "deviceCleanupRule":
        # One rule per platform: the copy takes a platform the tenant has no rule for.
        body["deviceCleanupRulePlatformType"] = "chromeOS"
    return body


async def roundtrip(client: GraphClient, reader: PolicyReader, policy_type: PolicyType, policy_id: str,
                    group_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    original = (await reader.read_policy(policy_type.key, policy_id)).body
    created = await client.post(f"/{policy_type.api_version}/{policy_type.collection}",
                                json_body=create_body(policy_type, original))
    assert created.status_code == 201, created.json()
    item = policy_type.item_url(created.json()["id"])
    update = {k: v for k, v in create_body(policy_type, original).items()
              if k not in policy_type.strip_on_update}
    update[policy_type.name_property] = f"{original[policy_type.name_property]} (restored)"
    write = client.put if policy_type.update_method == "PUT" else client.patch
    answer = await write(item, json_body=update)
    assert answer.status_code == 204, answer.json()
    if policy_type.child_writes:
        # Parts written by their own calls (actions, collection posts, references) take bodies of their
        # own: the writer builds them, as a restore does.
        new_id = created.json()["id"]
        current = (await reader.read_policy(policy_type.key, new_id)).body
        await PolicyWriter(client).update(policy_type.key, new_id, {**original, **update}, current)
    spec = policy_type.assignments
    if spec is not None:
        target = {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": group_id}
        if spec.one_per_request:
            assigned = await client.post(f"{item}/{spec.write_path}", json_body={spec.body_key: target})
        else:
            assignment: dict[str, Any] = {"target": target}
            if spec.body_key == "mobileAppAssignments":
                assignment["intent"] = "required"  # Graph refuses app assignments without one
            assigned = await client.post(f"{item}/{spec.write_path}", json_body={spec.body_key: [assignment]},
                                         idempotent=True)
        assert assigned.status_code == spec.write_status, assigned.json()
    return original, (await reader.read_policy(policy_type.key, created.json()["id"])).body


@pytest.mark.parametrize("type_key", RESTORABLE)
async def test_a_captured_object_is_recreated_updated_and_assigned_from_its_catalog_entry(
    demo: SimTenant, demo_factory: GraphClientFactory, type_key: str
) -> None:
    policy_type = CATALOG[type_key]
    client = demo.client(demo_factory)
    reader = PolicyReader(client)
    source = (await reader.list_policies(type_key))[-1]
    group = demo.sim.control.objects(demo.tenant_id, "group")[0]["id"]

    original, restored = await roundtrip(client, reader, policy_type, source.id, group)

    assert restored[policy_type.name_property] == f"{original[policy_type.name_property]} (restored)"
    kept = set(original) - set(policy_type.all_strip_on_restore) - {policy_type.name_property}
    for key in kept:
        if "@odata" in key or key in ("deviceCleanupRulePlatformType", "priority", "isAssigned"):
            continue
        assert restored.get(key) == original[key], (type_key, key)
    if policy_type.assignments is not None:
        assert [a["target"]["groupId"] for a in restored["assignments"]] == [group]


# A singleton is never created: a restore updates it in place. Each needs a change to make below.
UPDATED_IN_PLACE = ["deviceCleanupSettings", "tenantSettings"]


@pytest.mark.parametrize("type_key", UPDATED_IN_PLACE)
async def test_a_singleton_is_restored_by_updating_it_in_place(
    demo: SimTenant, demo_factory: GraphClientFactory, type_key: str
) -> None:
    policy_type = CATALOG[type_key]
    client = demo.client(demo_factory)
    reader = PolicyReader(client)
    [summary] = await reader.list_policies(type_key)
    captured = (await reader.read_policy(type_key, summary.id)).body
    changes: dict[str, dict[str, object]] = {
        "deviceCleanupSettings": {"deviceInactivityBeforeRetirementInDays": "180"},
        "tenantSettings": {"deviceComplianceCheckinThresholdDays": 7}}
    changed = changes[type_key]
    await client.patch(policy_type.update_url(), json_body=policy_type.update_body(changed))
    assert (await reader.read_policy(type_key, summary.id)).body != captured
    # Writing the capture back returns the tenant to it.
    body = {k: v for k, v in captured.items() if "@odata." not in k}
    answer = await client.patch(policy_type.update_url(), json_body=policy_type.update_body(body))
    assert answer.status_code == 204
    assert (await reader.read_policy(type_key, summary.id)).body == captured
