"""Adding policies to a backup set, cancelling runs and running them again: end to end on the local stack."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Api, Stack, wait_terminal

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tenant(stack: Stack) -> str:
    return stack.new_customer_tenant()


@pytest.fixture(scope="module")
def operator(stack: Stack, tenant: str) -> Api:
    api, _ = stack.user(tenant, "operator", name="Olivia Operator")
    return api


@pytest.fixture(scope="module")
def policies(operator: Api, tenant: str) -> list[dict[str, Any]]:
    listed = operator.get(f"/tenants/{tenant}/policies", params={"type": "settingsCatalog"})
    assert listed.status_code == 200, listed.text
    found = sorted(listed.json()["items"], key=lambda p: p["id"])
    assert len(found) >= 3, "the demo tenant has several settings catalog policies"
    return found


def _ref(policy: dict[str, Any]) -> dict[str, str]:
    return {"type": "settingsCatalog", "id": policy["id"]}


def _slow(stack: Stack, tenant: str, policy: dict[str, Any], seconds: float) -> None:
    stack.sim.put("/_sim/faults", json={"rules": [
        {"kind": "slow", "delaySeconds": seconds, "path": f"configurationPolicies/{policy['id']}",
         "tenant": tenant}]}).raise_for_status()


def _backup(api: Api, tenant: str, refs: list[dict[str, str]], name: str) -> dict[str, Any]:
    response = api.post(f"/tenants/{tenant}/backup-sets", json={
        "name": name, "includeFoundations": False, "selection": {"policies": refs}})
    assert response.status_code == 202, response.text
    return dict(response.json())


def _items(api: Api, tenant: str, set_id: str) -> dict[str, dict[str, Any]]:
    body = api.get(f"/tenants/{tenant}/backup-sets/{set_id}", params={"top": 1000}).json()
    return {item["itemId"]: item for item in body["items"]}


def _outcomes(api: Api, tenant: str, run_id: str) -> dict[str, dict[str, Any]]:
    body = api.get(f"/tenants/{tenant}/runs/{run_id}/items", params={"top": 1000}).json()
    return {item["itemId"]: item for item in body["items"]}


def _wait_until(check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.3)


def test_policies_are_added_to_a_set_and_those_it_holds_captured_again(
        stack: Stack, operator: Api, tenant: str, policies: list[dict[str, Any]]) -> None:
    first, second = policies[0], policies[1]
    made = _backup(operator, tenant, [_ref(first)], "grows")
    assert wait_terminal(operator, made["links"]["monitor"])["status"] == "succeeded"
    set_id = made["backupSet"]["id"]
    before = _items(operator, tenant, set_id)[f"settingsCatalog:{first['id']}"]
    stack.sim.post(f"/_sim/tenants/{tenant}/mutations", json={
        "op": "edit", "type": "settingsCatalog", "id": first["id"],
        "patch": {"description": "edited after the first backup"}}).raise_for_status()

    path = f"/tenants/{tenant}/backup-sets/{set_id}/items"
    _slow(stack, tenant, second, 3)  # keeps the run active long enough to see a double click join it
    try:
        started = operator.post(path, json={"policies": [_ref(first), _ref(second), _ref(first)]})
        again = operator.post(path, json={"policies": [_ref(second), _ref(first)]})
        assert started.status_code == 202, started.text
        run = started.json()
        assert (run["kind"], run["target"]["backupSetId"], run["reused"]) == ("backupset.add_items", set_id,
                                                                              False)
        assert run["backupSet"]["id"] == set_id
        assert started.headers["Location"] == run["links"]["monitor"]
        assert int(started.headers["Retry-After"]) >= 1
        assert (again.status_code, again.json()["id"], again.json()["reused"]) == (202, run["id"], True)
        done = wait_terminal(operator, started.headers["Location"], timeout=60)
    finally:
        stack.sim.delete("/_sim/faults")

    assert done["status"] == "succeeded", done
    assert done["counts"] == {"total": 2, "succeeded": 2, "failed": 0, "skipped": 0}
    items = _items(operator, tenant, set_id)
    assert sorted(items) == sorted([f"settingsCatalog:{first['id']}", f"settingsCatalog:{second['id']}"])
    recaptured = items[f"settingsCatalog:{first['id']}"]
    assert recaptured["status"] == "captured"
    assert recaptured["contentHash"] != before["contentHash"]
    body = operator.get(f"{path}/settingsCatalog:{first['id']}").json()
    assert body["description"] == "edited after the first backup"
    backup_set = operator.get(f"/tenants/{tenant}/backup-sets/{set_id}").json()
    assert (backup_set["status"], backup_set["itemCount"], backup_set["capturedCount"]) == ("complete", 2, 2)
    # The run that made the set still says what it did.
    assert operator.get(f"/tenants/{tenant}/runs/{made['id']}").json()["counts"]["total"] == 1


def test_adding_to_a_set_refuses_bad_requests_and_a_set_still_capturing(
        stack: Stack, operator: Api, tenant: str, policies: list[dict[str, Any]]) -> None:
    made = _backup(operator, tenant, [_ref(policies[0])], "target")
    wait_terminal(operator, made["links"]["monitor"])
    path = f"/tenants/{tenant}/backup-sets/{made['backupSet']['id']}/items"
    for body, status, code in [
        ({"policies": []}, 400, "empty-selection"),
        ({"policies": [{"type": "noSuchType", "id": "x"}]}, 400, "unknown-policy-type"),
        ({"policies": [{"type": "settingsCatalog", "id": "a/b"}]}, 400, "invalid-policy-id"),
        ({"includeFoundations": True}, 400, "validation-failed"),
    ]:
        refused = operator.post(path, json=body)
        assert (refused.status_code, refused.json()["code"]) == (status, code), refused.text
        assert refused.headers["Content-Type"].startswith("application/problem+json")
    unknown = operator.post(f"/tenants/{tenant}/backup-sets/bs_01JD0000000000000000000000/items",
                            json={"policies": [_ref(policies[0])]})
    assert (unknown.status_code, unknown.json()["code"]) == (404, "backup-set-not-found")
    reader, _ = stack.user(tenant, "reader")
    assert reader.post(path, json={"policies": [_ref(policies[0])]}).status_code == 403
    stranger, _ = stack.user(None, None)
    assert stranger.post(path, json={"policies": [_ref(policies[0])]}).status_code == 404

    _slow(stack, tenant, policies[2], 4)
    try:
        busy_set = _backup(operator, tenant, [_ref(policies[2])], "busy")
        busy = operator.post(f"/tenants/{tenant}/backup-sets/{busy_set['backupSet']['id']}/items",
                             json={"policies": [_ref(policies[0])]})
        assert (busy.status_code, busy.json()["code"]) == (409, "backup-set-busy"), busy.text
        assert busy.json()["runId"] == busy_set["id"]
        wait_terminal(operator, busy_set["links"]["monitor"], timeout=60)
    finally:
        stack.sim.delete("/_sim/faults")


def test_a_backup_is_cancelled_then_rerun_for_what_it_skipped(
        stack: Stack, operator: Api, tenant: str, policies: list[dict[str, Any]]) -> None:
    quick, stuck = policies[:2], policies[2]
    # The stuck policy's read outlasts the test, so it is in flight when the cancel lands.
    _slow(stack, tenant, stuck, 55)
    try:
        started = _backup(operator, tenant, [_ref(p) for p in (*quick, stuck)], "to cancel")
        run_id, set_id = started["id"], started["backupSet"]["id"]
        _wait_until(lambda: sum(o["status"] == "succeeded"
                                for o in _outcomes(operator, tenant, run_id).values()) == 2, timeout=60)
        cancel = f"/tenants/{tenant}/runs/{run_id}/cancel"
        reader, _ = stack.user(tenant, "reader")
        stranger, _ = stack.user(None, None)
        assert reader.post(cancel).status_code == 403
        assert stranger.post(cancel).status_code == 404

        cancelled = operator.post(cancel)
        assert cancelled.status_code == 200, cancelled.text
        again = operator.post(cancel)  # a double click
    finally:
        stack.sim.delete("/_sim/faults")

    run = cancelled.json()
    assert run["status"] == "cancelled"
    assert run["counts"] == {"total": 3, "succeeded": 2, "failed": 0, "skipped": 1}
    assert (again.status_code, again.json()["status"], again.json()["finishedAt"]) == \
        (200, "cancelled", run["finishedAt"])
    skipped = _outcomes(operator, tenant, run_id)[f"settingsCatalog:{stuck['id']}"]
    assert (skipped["action"], skipped["status"]) == ("skipped", "skipped")
    # The orchestration and its batch are stopped, not left running.
    instances = httpx.get(f"{stack.info.host_base_url}/runtime/webhooks/durabletask/instances",
                          params={"instanceIdPrefix": run_id}).json()
    assert {i["instanceId"]: i["runtimeStatus"] for i in instances} == {
        run_id: "Terminated", f"{run_id}:batch-000000": "Terminated"}
    backup_set = operator.get(f"/tenants/{tenant}/backup-sets/{set_id}").json()
    assert (backup_set["status"], backup_set["capturedCount"], backup_set["failedCount"]) == ("partial", 2, 1)
    assert _items(operator, tenant, set_id)[f"settingsCatalog:{stuck['id']}"]["status"] == "skipped"
    assert operator.get(f"/tenants/{tenant}/runs/{run_id}/monitor").status_code == 200

    rerun = operator.post(f"/tenants/{tenant}/runs/{run_id}/rerun")
    assert rerun.status_code == 202, rerun.text
    assert rerun.headers["Location"] == rerun.json()["links"]["monitor"]
    assert int(rerun.headers["Retry-After"]) >= 1
    assert (rerun.json()["kind"], rerun.json()["target"]["backupSetId"]) == ("backupset.add_items", set_id)
    done = wait_terminal(operator, rerun.headers["Location"], timeout=60)
    assert done["status"] == "succeeded", done
    assert list(_outcomes(operator, tenant, done["id"])) == [f"settingsCatalog:{stuck['id']}"]
    backup_set = operator.get(f"/tenants/{tenant}/backup-sets/{set_id}").json()
    assert (backup_set["status"], backup_set["capturedCount"], backup_set["failedCount"]) == \
        ("complete", 3, 0)

    nothing = operator.post(f"/tenants/{tenant}/runs/{done['id']}/rerun")
    assert (nothing.status_code, nothing.json()["code"]) == (409, "nothing-to-rerun")
    ended = operator.post(f"/tenants/{tenant}/runs/{done['id']}/cancel")
    assert (ended.status_code, ended.json()["code"]) == (409, "run-not-active")


def test_a_policy_capture_is_rerun_as_it_was(operator: Api, tenant: str,
                                             policies: list[dict[str, Any]]) -> None:
    started = operator.post(f"/tenants/{tenant}/policies/settingsCatalog/{policies[0]['id']}/snapshots")
    assert started.status_code == 202, started.text
    first = wait_terminal(operator, started.headers["Location"])
    rerun = operator.post(f"/tenants/{tenant}/runs/{first['id']}/rerun")
    assert rerun.status_code == 202, rerun.text
    body = rerun.json()
    assert body["id"] != first["id"]
    assert (body["kind"], body["target"]) == ("policy.capture", first["target"])
    assert wait_terminal(operator, rerun.headers["Location"])["status"] == "succeeded"
