"""Backup sets end to end: a whole tenant in batches, selections, normalisation, bad input, isolation."""

from __future__ import annotations

from typing import Any

import pytest

from shared.graph.catalog import CATALOG
from tests.e2e.conftest import Api, Stack, wait_terminal

pytestmark = pytest.mark.e2e

# Fields Graph (and the simulator) change on their own, or that only the list call carries.
_VOLATILE = frozenset({"@odata.context", "lastModifiedDateTime", "createdDateTime", "modifiedDateTime",
                       "version", "assignments@odata.context", "settings@odata.context"})


@pytest.fixture(scope="module")
def tenant(stack: Stack) -> str:
    return stack.new_customer_tenant()


@pytest.fixture(scope="module")
def operator(stack: Stack, tenant: str) -> Api:
    api, _ = stack.user(tenant, "operator", name="Olivia Operator")
    return api


@pytest.fixture(scope="module")
def full_backup(operator: Api, tenant: str) -> dict[str, Any]:
    """A backup of the whole demo tenant, run to the end once for the module."""
    started = operator.post(f"/tenants/{tenant}/backup-sets", json={
        "name": "nightly", "description": "everything", "selection": {"all": True}})
    assert started.status_code == 202, started.text
    done = wait_terminal(operator, started.headers["Location"], timeout=90)
    return {"started": started, "run": done}


def _start(api: Api, tenant: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(f"/tenants/{tenant}/backup-sets", json=body)
    assert response.status_code == 202, response.text
    return dict(response.json())


def _set_items(api: Api, tenant: str, set_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"top": 7}  # small pages, so paging is exercised
    while True:
        response = api.get(f"/tenants/{tenant}/backup-sets/{set_id}", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["items"])
        if not body["continuation"]:
            return items
        params["continuation"] = body["continuation"]


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def test_a_full_backup_captures_every_policy_of_the_tenant_completely(
        stack: Stack, operator: Api, tenant: str, full_backup: dict[str, Any]) -> None:
    started, run = full_backup["started"], full_backup["run"]
    body = started.json()
    assert body["kind"] == "backupset.capture"
    assert body["reused"] is False
    set_id = body["backupSet"]["id"]
    assert body["target"]["backupSetId"] == set_id
    assert body["backupSet"]["name"] == "nightly"
    assert started.headers["Location"] == body["links"]["monitor"]
    assert int(started.headers["Retry-After"]) >= 1

    assert run["status"] == "succeeded", run
    assert run["target"]["backupSetId"] == set_id
    items = _set_items(operator, tenant, set_id)
    expected = {f"{key}:{obj['id']}" for key in CATALOG
                for obj in stack.sim.get(f"/_sim/tenants/{tenant}/objects/{key}").json()["value"]}
    listed = {f"{p['policyType']}:{p['id']}" for p in
              operator.get(f"/tenants/{tenant}/policies").json()["items"]}
    # Every policy the live listing shows is in the set, each exactly once, and each captured whole.
    assert listed
    assert listed <= expected
    assert sorted(i["itemId"] for i in items) == sorted(listed)
    assert run["counts"] == {"total": len(items), "succeeded": len(items), "failed": 0, "skipped": 0}
    assert all(i["complete"] and i["status"] == "captured" and len(i["contentHash"]) == 64 for i in items)

    backup_set = operator.get(f"/tenants/{tenant}/backup-sets/{set_id}").json()
    assert backup_set["status"] == "complete"
    assert backup_set["itemCount"] == backup_set["capturedCount"] == len(items)
    listing = operator.get(f"/tenants/{tenant}/backup-sets").json()["items"]
    assert listing[0]["id"] == set_id


def test_an_items_json_is_what_graph_holds_for_that_object(
        stack: Stack, operator: Api, tenant: str, full_backup: dict[str, Any]) -> None:
    set_id = full_backup["started"].json()["backupSet"]["id"]
    items = _set_items(operator, tenant, set_id)
    item = next(i for i in items if i["policyType"] == "settingsCatalog")
    captured = operator.get(f"/tenants/{tenant}/backup-sets/{set_id}/items/{item['itemId']}")
    assert captured.status_code == 200, captured.text
    assert captured.headers["Content-Type"].startswith("application/json")
    held = next(o for o in stack.sim.get(f"/_sim/tenants/{tenant}/objects/settingsCatalog").json()["value"]
                if o["id"] == item["sourceId"])
    body = captured.json()
    assert body["settings"], "the settings pages are part of the capture"
    assert _strip(body["settings"]) == _strip(held["settings"])
    assert _strip(body["assignments"]) == _strip(held["assignments"])
    assert {k: v for k, v in _strip(body).items() if k not in ("settings", "assignments")} == \
        {k: v for k, v in _strip(held).items() if k not in ("settings", "assignments")}


def test_selection_by_types_and_by_policies(stack: Stack, operator: Api, tenant: str) -> None:
    by_type = _start(operator, tenant, {"name": "scripts", "includeFoundations": False,
                                        "selection": {"types": ["powerShellScript", "settingsCatalog"]}})
    done = wait_terminal(operator, by_type["links"]["monitor"])
    assert done["status"] == "succeeded", done
    items = _set_items(operator, tenant, by_type["backupSet"]["id"])
    assert items
    assert {i["policyType"] for i in items} == {"powerShellScript", "settingsCatalog"}

    chosen = items[0]
    by_policy = _start(operator, tenant, {"name": "one", "includeFoundations": False, "selection": {
        "policies": [{"type": chosen["policyType"], "id": chosen["sourceId"]}]}})
    done = wait_terminal(operator, by_policy["links"]["monitor"])
    assert done["status"] == "succeeded", done
    assert [i["itemId"] for i in _set_items(operator, tenant, by_policy["backupSet"]["id"])] == \
        [chosen["itemId"]]


def test_the_same_selection_in_another_order_joins_the_active_run(operator: Api, tenant: str) -> None:
    body = {"name": "twice", "includeFoundations": False,
            "selection": {"types": ["settingsCatalog", "compliancePolicy", "settingsCatalog"]}}
    first = _start(operator, tenant, body)
    reordered = {"types": ["compliancePolicy", "settingsCatalog"]}
    again = _start(operator, tenant, {**body, "selection": reordered})
    assert again["id"] == first["id"]
    assert again["reused"] is True
    assert again["backupSet"]["id"] == first["backupSet"]["id"]
    wait_terminal(operator, first["links"]["monitor"])


def test_a_policy_that_does_not_exist_is_a_failed_item(operator: Api, tenant: str) -> None:
    missing = "00000000-0000-0000-0000-00000000beef"
    started = _start(operator, tenant, {"name": "ghost", "includeFoundations": False, "selection": {
        "policies": [{"type": "settingsCatalog", "id": missing}]}})
    done = wait_terminal(operator, started["links"]["monitor"])
    assert done["status"] == "failed"
    assert done["counts"] == {"total": 1, "succeeded": 0, "failed": 1, "skipped": 0}
    outcomes = operator.get(f"/tenants/{tenant}/runs/{done['id']}/items").json()["items"]
    assert [(o["itemId"], o["status"], o["error"]["code"]) for o in outcomes] == \
        [(f"settingsCatalog:{missing}", "failed", "policy-not-found")]
    set_id = started["backupSet"]["id"]
    [item] = _set_items(operator, tenant, set_id)
    assert item["status"] == "failed"
    assert item["error"]["code"] == "policy-not-found"
    assert operator.get(f"/tenants/{tenant}/backup-sets/{set_id}").json()["status"] == "failed"
    body = operator.get(f"/tenants/{tenant}/backup-sets/{set_id}/items/{item['itemId']}")
    assert (body.status_code, body.json()["code"]) == (409, "item-not-captured")


@pytest.mark.parametrize(("selection", "status", "code"), [
    ({}, 400, "invalid-selection"),
    ({"types": []}, 400, "empty-selection"),
    ({"policies": []}, 400, "empty-selection"),
    ({"all": False}, 400, "empty-selection"),
    ({"types": ["settingsCatalog", "noSuchType"]}, 400, "unknown-policy-type"),
    ({"policies": [{"type": "settingsCatalog", "id": "a/b"}]}, 400, "invalid-policy-id"),
    ({"all": True, "types": ["settingsCatalog"]}, 400, "invalid-selection"),
    ({"policies": [{"type": "settingsCatalog", "id": f"id-{n}"} for n in range(5_001)]}, 413,
     "too-many-policies"),
])
def test_bad_selections_are_refused_before_anything_is_written(
        operator: Api, tenant: str, selection: dict[str, Any], status: int, code: str) -> None:
    before = operator.get(f"/tenants/{tenant}/runs", params={"top": 200}).json()["items"]
    response = operator.post(f"/tenants/{tenant}/backup-sets", json={"name": "bad", "selection": selection})
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == code
    assert operator.get(f"/tenants/{tenant}/runs", params={"top": 200}).json()["items"] == before


def test_strangers_and_readers(stack: Stack, tenant: str, full_backup: dict[str, Any]) -> None:
    set_id = full_backup["started"].json()["backupSet"]["id"]
    item_id = full_backup["run"]["id"]  # any id: a stranger must learn nothing from it
    stranger, _ = stack.user(None, None)
    for path in (f"/tenants/{tenant}/backup-sets", f"/tenants/{tenant}/backup-sets/{set_id}",
                 f"/tenants/{tenant}/backup-sets/{set_id}/items/{item_id}"):
        assert stranger.get(path).status_code == 404, path
    refused = stranger.post(f"/tenants/{tenant}/backup-sets", json={"name": "x", "selection": {"all": True}})
    assert refused.status_code == 404
    reader, _ = stack.user(tenant, "reader")
    assert reader.get(f"/tenants/{tenant}/backup-sets/{set_id}").status_code == 200
    assert reader.post(f"/tenants/{tenant}/backup-sets",
                       json={"name": "x", "selection": {"all": True}}).status_code == 403
    unknown = reader.get(f"/tenants/{tenant}/backup-sets/bs_01JD0000000000000000000000")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "backup-set-not-found")
    # Another tenant's operator cannot read this tenant's set through their own tenant either.
    other = stack.new_customer_tenant()
    other_api, _ = stack.user(other, "operator")
    assert other_api.get(f"/tenants/{other}/backup-sets/{set_id}").status_code == 404
