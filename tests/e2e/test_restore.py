"""Restore end to end: capture, change the tenant, preview (read-only), execute, and the tenant is back."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.conftest import Api, Stack, wait_terminal

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tenant(stack: Stack) -> str:
    return stack.new_customer_tenant()


@pytest.fixture(scope="module")
def admin(stack: Stack, tenant: str) -> Api:
    api, _ = stack.user(tenant, "admin", name="Ada Admin")
    return api


@pytest.fixture(scope="module")
def backup(admin: Api, tenant: str) -> dict[str, Any]:
    started = admin.post(f"/tenants/{tenant}/backup-sets",
                         json={"name": "before", "selection": {"all": True}})
    assert started.status_code == 202, started.text
    done = wait_terminal(admin, started.headers["Location"], timeout=120)
    assert done["status"] == "succeeded", done
    return dict(started.json()["backupSet"])




def _writes_since(stack: Stack, tenant: str, since: float) -> list[dict[str, Any]]:
    log = stack.sim.get("/_sim/requests", params={"tenant": tenant, "since": str(since)}).json()["value"]
    return [e for e in log if e["method"] not in ("GET", "HEAD") and not e["path"].endswith("/$batch")]


def _run(api: Api, tenant: str, route: str, body: dict[str, Any], *, timeout: float = 120) -> dict[str, Any]:
    started = api.post(f"/tenants/{tenant}/{route}", json=body)
    assert started.status_code == 202, started.text
    assert started.headers["Location"] == started.json()["links"]["monitor"]
    return wait_terminal(api, started.headers["Location"], timeout=timeout)


def _plan(api: Api, tenant: str, run_id: str) -> dict[str, Any]:
    response = api.get(f"/tenants/{tenant}/runs/{run_id}/preview")
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_preview_of_an_unchanged_tenant_is_all_unchanged_and_read_only(
        stack: Stack, admin: Api, tenant: str, backup: dict[str, Any]) -> None:
    since = time.time()
    done = _run(admin, tenant, "restores/previews", {"backupSetId": backup["id"]})
    assert done["status"] == "succeeded", done
    assert done["kind"] == "restore.preview"
    plan = _plan(admin, tenant, done["id"])
    assert plan["backupSetId"] == backup["id"]
    not_unchanged = [(i["itemId"], i["action"], i["changes"][:3]) for i in plan["items"]
                     if i["action"] not in ("unchanged", "unsupported")]
    assert not_unchanged == []
    assert plan["summary"]["unchanged"] > 20
    assert _writes_since(stack, tenant, since) == []
    # The same request again, with nothing changed: a new run serving the same plan, not read again.
    again = _run(admin, tenant, "restores/previews", {"backupSetId": backup["id"]})
    reused = _plan(admin, tenant, again["id"])
    assert again["id"] != done["id"]
    assert reused["runId"] == again["id"]
    assert reused["generatedAt"] == plan["generatedAt"]
    assert reused["items"] == plan["items"]


def test_restore_brings_back_edited_and_deleted_policies_and_then_changes_nothing(
        stack: Stack, admin: Api, tenant: str, backup: dict[str, Any]) -> None:
    catalog_policy = stack.objects(tenant, "settingsCatalog")[0]
    stack.mutate(tenant, {"op": "edit", "type": "settingsCatalog", "id": catalog_policy["id"],
                            "patch": {"description": "changed by hand"}})
    deleted = stack.objects(tenant, "deviceConfiguration")[0]
    stack.mutate(tenant, {"op": "delete", "type": "deviceConfiguration", "id": deleted["id"]})

    since = time.time()
    preview = _run(admin, tenant, "restores/previews", {"backupSetId": backup["id"]})
    assert preview["status"] == "succeeded", preview
    assert _writes_since(stack, tenant, since) == []
    plan = {i["itemId"]: i for i in _plan(admin, tenant, preview["id"])["items"]}
    edited = plan[f"settingsCatalog:{catalog_policy['id']}"]
    assert edited["action"] == "update"
    assert any(c["path"] == "/description" and c["after"] == catalog_policy.get("description")
               for c in edited["changes"]), edited["changes"]
    assert plan[f"deviceConfiguration:{deleted['id']}"]["action"] == "create"

    done = _run(admin, tenant, "restores", {"backupSetId": backup["id"], "previewRunId": preview["id"]})
    assert done["status"] == "succeeded", done
    items = admin.get(f"/tenants/{tenant}/runs/{done['id']}/items", params={"top": 200}).json()["items"]
    by_id = {i["itemId"]: i for i in items}
    assert by_id[f"settingsCatalog:{catalog_policy['id']}"]["action"] == "updated"
    created = by_id[f"deviceConfiguration:{deleted['id']}"]
    assert created["action"] == "created"
    assert created["targetId"] != deleted["id"]
    names = [o["displayName"] for o in stack.objects(tenant, "deviceConfiguration")]
    assert names.count(deleted["displayName"]) == 1

    again = _run(admin, tenant, "restores/previews", {"backupSetId": backup["id"], "options": {
        "assignmentMode": "replace"}})
    leftovers = [(i["itemId"], i["action"], i["changes"][:3], i["assignments"])
                 for i in _plan(admin, tenant, again["id"])["items"]
                 if i["action"] not in ("unchanged", "unsupported") or i["assignments"]["action"] not in
                 ("unchanged", "skip")]
    assert leftovers == []

    since = time.time()
    second = _run(admin, tenant, "restores", {"backupSetId": backup["id"]})
    assert second["status"] == "succeeded", second
    assert _writes_since(stack, tenant, since) == []
    audit = admin.get(f"/tenants/{tenant}/audit", params={"runId": done["id"]}).json()["items"]
    assert {e["action"] for e in audit} >= {"restore.create", "restore.update", "restore.run"}


def _by_name(objects: list[dict[str, Any]], prop: str = "displayName") -> dict[str, dict[str, Any]]:
    return {str(o.get(prop)): o for o in objects}


def test_cross_tenant_restore_remaps_groups_filters_and_scope_tags_and_reports_what_it_cannot_map(
        stack: Stack, admin: Api, tenant: str, backup: dict[str, Any]) -> None:
    # Same display names, other ids (demo tenants with another seed).
    other = stack.new_customer_tenant(seed=2)
    _, admin_oid = stack.user(other, None)
    api, oid = stack.user(other, "admin", name="Ada Admin")
    stack.grant(tenant, oid, "reader")
    source_groups = {g["id"]: g for g in stack.objects(tenant, "group")}
    target_groups = _by_name(stack.objects(other, "group"))
    source_tags = {t["id"]: t for t in stack.objects(tenant, "scopeTag")}
    target_tags = _by_name(stack.objects(other, "scopeTag"))
    target_filters = _by_name(stack.objects(other, "assignmentFilter"))
    assert not set(source_groups) & {g["id"] for g in target_groups.values()}

    # A policy of the backup missing in the target, and one group the target does not have.
    policy = next(p for p in stack.objects(tenant, "settingsCatalog")
                  if any((a.get("target") or {}).get("groupId") for a in p.get("assignments") or []))
    twin = _by_name(stack.objects(other, "settingsCatalog"), "name")[policy["name"]]
    stack.mutate(other, {"op": "delete", "type": "settingsCatalog", "id": twin["id"]})
    lost_group = next(g for g in (source_groups[a["target"]["groupId"]] for a in policy["assignments"]
                                  if (a.get("target") or {}).get("groupId")))
    stack.mutate(other, {"op": "delete", "type": "group",
                           "id": target_groups[lost_group["displayName"]]["id"]})

    body = {"backupSetId": backup["id"], "sourceTenantId": tenant, "options": {"includeAssignments": True}}
    preview = _run(api, other, "restores/previews", body)
    assert preview["status"] == "succeeded", preview
    plan = {i["itemId"]: i for i in _plan(api, other, preview["id"])["items"]}
    planned = plan[f"settingsCatalog:{policy['id']}"]
    assert planned["action"] == "create"
    assert f"group:{lost_group['id']}" in planned["assignments"]["unmapped"]

    done = _run(api, other, "restores", body)
    failed = {i["itemId"]: i["error"]["code"] for i in api.get(
        f"/tenants/{other}/runs/{done['id']}/items", params={"status": "failed", "top": 200}).json()["items"]}
    assert done["status"] == "succeeded", failed
    created = _by_name(stack.objects(other, "settingsCatalog"), "name")[policy["name"]]
    assert created["id"] != policy["id"]
    expected_groups = {target_groups[source_groups[a["target"]["groupId"]]["displayName"]]["id"]
                       for a in policy["assignments"] if (a.get("target") or {}).get("groupId")
                       and a["target"]["groupId"] != lost_group["id"]}
    actual_groups = {a["target"].get("groupId") for a in created.get("assignments") or []
                     if a["target"].get("groupId")}
    assert actual_groups == expected_groups
    for assignment in created.get("assignments") or []:
        filter_id = assignment["target"].get("deviceAndAppManagementAssignmentFilterId")
        if filter_id and filter_id != "00000000-0000-0000-0000-000000000000":
            assert filter_id in {f["id"] for f in target_filters.values()}
    expected_tags = {target_tags[source_tags[t]["displayName"]]["id"] if t != "0" else "0"
                     for t in policy.get("roleScopeTagIds") or ["0"]}
    assert set(created.get("roleScopeTagIds") or ["0"]) == expected_tags
    # No source id leaked into the target.
    assert not {str(v) for v in created.get("roleScopeTagIds") or []} & (
        set(source_tags) - {"0"} - {t["id"] for t in target_tags.values()})
    assert not actual_groups & set(source_groups)
    assert admin_oid


def test_an_app_is_filed_under_the_categories_the_tenant_has_and_the_preview_names_the_others(
        stack: Stack, tenant: str, backup: dict[str, Any]) -> None:
    # Another tenant with the same names; the category of one app is gone there, and only the app is restored.
    other = stack.new_customer_tenant(seed=3)
    api, oid = stack.user(other, "admin", name="Ada Admin")
    stack.grant(tenant, oid, "reader")
    categories = {c["id"]: c["displayName"] for c in stack.objects(tenant, "mobileAppCategory")}
    app = next(a for a in stack.objects(tenant, "mobileApp")
               if a.get("categories") and all(c["id"] in categories for c in a["categories"]))
    [lost] = [categories[c["id"]] for c in app["categories"]]
    kept = next(name for name in categories.values() if name != lost)
    target_categories = _by_name(stack.objects(other, "mobileAppCategory"))
    stack.mutate(other, {"op": "delete", "type": "mobileAppCategory", "id": target_categories[lost]["id"]})
    twin = _by_name(stack.objects(other, "mobileApp"))[app["displayName"]]
    # The twin is filed under another category, which the backup's app does not have.
    stack.mutate(other, {"op": "edit", "type": "mobileApp", "id": twin["id"],
                         "patch": {"categories": [target_categories[kept]]}})

    body = {"backupSetId": backup["id"], "sourceTenantId": tenant, "itemIds": [f"mobileApp:{app['id']}"]}
    preview = _run(api, other, "restores/previews", body)
    [item] = _plan(api, other, preview["id"])["items"]
    assert item["action"] == "update", item
    assert item["warnings"] == [
        f"app categories with no counterpart of the same name in the tenant are left out: {lost}"]

    done = _run(api, other, "restores", {**body, "previewRunId": preview["id"]})
    assert done["status"] == "succeeded", done
    refiled = next(a for a in stack.objects(other, "mobileApp") if a["id"] == twin["id"])
    # Taken out of the category the backup does not have; the lost one could not be added.
    assert refiled.get("categories") == []


def test_a_second_restore_while_one_runs_is_409_and_lower_roles_are_403(
        stack: Stack, admin: Api, tenant: str, backup: dict[str, Any]) -> None:
    operator, _ = stack.user(tenant, "operator")
    reader, _ = stack.user(tenant, "reader")
    outsider, _ = stack.user(None, None)
    body = {"backupSetId": backup["id"]}
    assert operator.post(f"/tenants/{tenant}/restores", json=body).json()["code"] == "role-too-low"
    assert reader.post(f"/tenants/{tenant}/restores", json=body).status_code == 403
    assert reader.post(f"/tenants/{tenant}/restores/previews", json=body).status_code == 403
    assert outsider.post(f"/tenants/{tenant}/restores", json=body).status_code == 404
    assert operator.post(f"/tenants/{tenant}/restores/previews", json=body).status_code == 202

    first = admin.post(f"/tenants/{tenant}/restores", json=body)
    assert first.status_code == 202, first.text
    some_item = admin.get(f"/tenants/{tenant}/backup-sets/{backup['id']}").json()["items"][0]["itemId"]
    second = admin.post(f"/tenants/{tenant}/restores", json={**body, "itemIds": [some_item]})
    assert second.status_code == 409, second.text
    assert second.json()["code"] == "restore-already-active"
    assert first.json()["id"] in second.json()["detail"]
    again = admin.post(f"/tenants/{tenant}/restores", json=body)
    assert again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["reused"] is True
    assert wait_terminal(admin, first.headers["Location"], timeout=120)["status"] == "succeeded"


@pytest.mark.parametrize(("body", "code"), [
    ({}, None),
    ({"backupSetId": "bs_01ABCDEFGHJKMNPQRSTVWXYZ00"}, "backup-set-not-found"),
    ({"backupSetId": "nope"}, "backup-set-not-found"),
    ({"backupSetId": "BACKUP", "itemIds": ["no-colon"]}, "invalid-restore-request"),
    ({"backupSetId": "BACKUP", "itemIds": ["settingsCatalog:not-in-the-set"]}, "unknown-item-ids"),
    ({"backupSetId": "BACKUP", "options": {"groupMapping": {"a": "b"}}}, "invalid-restore-request"),
    ({"backupSetId": "BACKUP", "options": {"assignmentMode": "sideways"}}, None),
    ({"backupSetId": "BACKUP", "previewRunId": "run_01ABCDEFGHJKMNPQRSTVWXYZ00"}, "preview-not-found"),
])
def test_bad_restore_requests_get_clear_errors(admin: Api, tenant: str, backup: dict[str, Any],
                                               body: dict[str, Any], code: str | None) -> None:
    if body.get("backupSetId") == "BACKUP":
        body = {**body, "backupSetId": backup["id"]}
    response = admin.post(f"/tenants/{tenant}/restores", json=body)
    assert response.status_code in (400, 404), response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    if code is not None:
        assert response.json()["code"] == code


def test_a_restored_profile_gets_back_the_priority_graph_would_not_give_it_on_create(stack: Stack) -> None:
    # Graph gives a new Apple enrollment-type profile the next free priority; setPriority puts it back.
    tenant = stack.new_customer_tenant()
    admin, _ = stack.user(tenant, "admin")
    [first] = stack.objects(tenant, "appleEnrollmentTypeProfile")
    stack.mutate(tenant, {"op": "add", "type": "appleEnrollmentTypeProfile", "object": {
        **{k: v for k, v in first.items() if k not in ("id", "assignments")},
        "displayName": "iOS - second profile", "priority": first["priority"] + 1}})
    started = admin.post(f"/tenants/{tenant}/backup-sets", json={
        "name": "apple", "includeFoundations": False, "selection": {"types": ["appleEnrollmentTypeProfile"]}})
    assert started.status_code == 202, started.text
    assert wait_terminal(admin, started.headers["Location"], timeout=120)["status"] == "succeeded"
    set_id = started.json()["backupSet"]["id"]
    stack.mutate(tenant, {"op": "delete", "type": "appleEnrollmentTypeProfile", "id": first["id"]})

    preview = _run(admin, tenant, "restores/previews", {"backupSetId": set_id})
    done = _run(admin, tenant, "restores", {"backupSetId": set_id, "previewRunId": preview["id"]})
    assert done["status"] == "succeeded", done
    restored = next(o for o in stack.objects(tenant, "appleEnrollmentTypeProfile")
                    if o["displayName"] == first["displayName"])
    assert restored["priority"] == first["priority"]
    again = _run(admin, tenant, "restores/previews", {"backupSetId": set_id})
    left = [(i["itemId"], i["action"], i["changes"]) for i in _plan(admin, tenant, again["id"])["items"]
            if i["action"] != "unchanged"]
    assert left == []
