"""Every restorable type of the catalog: capture, change the tenant, preview exactly that, restore, and back.

One tenant holds every type. Per type the test deletes one object, edits another and clears the assignments
of a third (where the type has them), and adds a new object the backup does not know. The preview must list
exactly those differences, write nothing, and the restore must bring the tenant back to the backup: a second
preview finds nothing to do, and no object exists twice.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from shared.graph.catalog import CATALOG
from tests.e2e.conftest import Api, Stack, wait_terminal

pytestmark = pytest.mark.e2e

# Foundations referenced by other policies are edited, not deleted: a deleted scope tag comes back with a
# new id, and every policy naming it then changes too (the cross-tenant test covers such remapping).
_NOT_DELETED = frozenset({"scopeTag", "assignmentFilter", "roleDefinition", "notificationTemplate",
                          "reusablePolicySetting", "complianceScript"})




def _run(api: Api, tenant: str, route: str, body: dict[str, Any]) -> dict[str, Any]:
    started = api.post(f"/tenants/{tenant}/{route}", json=body)
    assert started.status_code == 202, started.text
    return wait_terminal(api, started.headers["Location"], timeout=240)


def _plan(api: Api, tenant: str, run_id: str) -> dict[str, dict[str, Any]]:
    response = api.get(f"/tenants/{tenant}/runs/{run_id}/preview")
    assert response.status_code == 200, response.text
    return {i["itemId"]: i for i in response.json()["items"]}


def _items(api: Api, tenant: str, run_id: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    params: dict[str, Any] = {"top": 200}
    while True:
        body = api.get(f"/tenants/{tenant}/runs/{run_id}/items", params=params).json()
        found.update({i["itemId"]: i for i in body["items"]})
        if not body["continuation"]:
            return found
        params["continuation"] = body["continuation"]


def _restorable(stack: Stack, tenant: str) -> dict[str, list[dict[str, Any]]]:
    """Per restorable type, its objects that a restore may write (built-ins left out)."""
    found = {}
    for key, policy_type in CATALOG.items():
        if policy_type.backup_only is not None:
            continue
        objects = [o for o in stack.objects(tenant, key)
                   if policy_type.keeps(o) and not policy_type.is_builtin(o)]
        if objects:
            found[key] = objects
    return found


def _edit(type_key: str, obj: dict[str, Any]) -> dict[str, Any]:
    policy_type = CATALOG[type_key]
    if policy_type.singleton:
        # A setting of the tenant's own, changed by hand.
        for key, value in sorted(obj.items()):
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return {key: value + 1}
            if isinstance(value, str) and value.isdigit():
                return {key: str(int(value) + 1)}
        raise AssertionError(f"nothing to edit in {type_key}")
    if "description" in obj:
        return {"description": f"{obj.get('description') or ''} (edited by hand)"}
    return {policy_type.name_property: f"{obj[policy_type.name_property]} (edited)"}


def test_every_restorable_type_is_previewed_exactly_and_restored(stack: Stack) -> None:
    tenant = stack.new_customer_tenant()
    admin, _ = stack.user(tenant, "admin", name="Ada Admin")
    restorable = _restorable(stack, tenant)
    assert len(restorable) >= 25, sorted(restorable)
    # An app neither edited nor deleted below, filed under the category to be renamed and the one to be
    # deleted.
    categories, apps = restorable["mobileAppCategory"], restorable["mobileApp"]
    assert len(categories) >= 2, categories
    assert len(apps) >= 3, apps
    filed_app = apps[1]
    stack.mutate(tenant, {"op": "edit", "type": "mobileApp", "id": filed_app["id"],
                          "patch": {"categories": [categories[0], categories[-1]]}})
    started = admin.post(f"/tenants/{tenant}/backup-sets",
                         json={"name": "golden", "selection": {"all": True}})
    assert started.status_code == 202, started.text
    assert wait_terminal(admin, started.headers["Location"], timeout=240)["status"] == "succeeded"
    set_id = started.json()["backupSet"]["id"]
    expected: dict[str, str] = {}
    assignment_changes: set[str] = set()
    deleted: dict[str, dict[str, Any]] = {}
    for key, objects in restorable.items():
        edited = objects[0]
        stack.mutate(tenant, {"op": "edit", "type": key, "id": edited["id"], "patch": _edit(key, edited)})
        # Tenant-wide settings have no id in Graph: their item is named after the type.
        expected[f"{key}:{key if CATALOG[key].singleton else edited['id']}"] = "update"
        if CATALOG[key].singleton:
            continue
        if len(objects) > 1 and key not in _NOT_DELETED:
            gone = objects[-1]
            stack.mutate(tenant, {"op": "delete", "type": key, "id": gone["id"]})
            expected[f"{key}:{gone['id']}"] = "create"
            deleted[key] = gone
        spec = CATALOG[key].assignments
        if spec is not None and len(objects) > 2 and objects[1].get("assignments") \
                and CATALOG[key].can_assign(objects[1]):
            stack.mutate(tenant, {"op": "edit", "type": key, "id": objects[1]["id"],
                                    "patch": {"assignments": []}})
            assignment_changes.add(f"{key}:{objects[1]['id']}")
    # An app's categories are references: the app filed under the renamed and the deleted category now
    # shows one other name, so it differs from the backup too, and the restore files it again.
    expected[f"mobileApp:{filed_app['id']}"] = "update"
    added = stack.mutate(tenant, {"op": "add", "type": "deviceCategory", "object": {
        "displayName": "Added after the backup", "description": "not in the backup"}})

    since = time.time()
    preview = _run(admin, tenant, "restores/previews", {"backupSetId": set_id})
    assert preview["status"] == "succeeded", preview
    log = stack.sim.get("/_sim/requests", params={"tenant": tenant, "since": str(since)}).json()["value"]
    assert [e for e in log if e["method"] not in ("GET", "HEAD")] == []
    plan = _plan(admin, tenant, preview["id"])
    actual = {item_id: item["action"] for item_id, item in plan.items()
              if item["action"] not in ("unchanged", "unsupported")}
    assert actual == expected
    changed_assignments = {item_id for item_id, item in plan.items()
                           if item["assignments"]["action"] in ("replace", "merge")
                           and item["action"] != "create"}
    assert changed_assignments == assignment_changes
    assert f"deviceCategory:{added['id']}" not in plan

    done = _run(admin, tenant, "restores", {"backupSetId": set_id, "previewRunId": preview["id"]})
    outcomes = _items(admin, tenant, done["id"])
    failed = {k: v["error"] for k, v in outcomes.items() if v["status"] == "failed"}
    log = stack.sim.get("/_sim/requests", params={"tenant": tenant, "since": str(since)}).json()["value"]
    rejected = [(e["method"], e["path"], e["status"]) for e in log if e["status"] >= 400]
    executed = _plan(admin, tenant, done["id"])
    assert failed == {}, (rejected, [(executed[k]["action"], executed[k]["assignments"]) for k in failed],
                          [plan[k]["assignments"] for k in failed])
    assert done["status"] == "succeeded", done

    again = _plan(admin, tenant, _run(admin, tenant, "restores/previews", {"backupSetId": set_id})["id"])
    leftovers = {item_id: (item["action"], item["changes"][:4], item["assignments"])
                 for item_id, item in again.items()
                 if item["action"] not in ("unchanged", "unsupported")
                 or item["assignments"]["action"] not in ("unchanged", "skip")}
    assert leftovers == {}, "\n".join(f"{k}: {v}" for k, v in leftovers.items())
    for key, gone in deleted.items():
        name = CATALOG[key].name_property
        names = [o.get(name) for o in stack.objects(tenant, key)]
        assert names.count(gone[name]) == 1, (key, gone[name])
    assert any(o["id"] == added["id"] for o in stack.objects(tenant, "deviceCategory"))
