"""Policy snapshot capture end to end: HTTP -> idempotent claim -> orchestration -> Graph -> Blob -> run."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.graph.catalog import CATALOG
from tests.e2e.conftest import Api, Stack, wait_terminal

pytestmark = pytest.mark.e2e


def _first_policy(api: Api, tenant_id: str, policy_type: str) -> dict[str, Any]:
    response = api.get(f"/tenants/{tenant_id}/policies", params={"type": policy_type})
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert items, f"the demo tenant has no {policy_type}"
    return dict(items[0])


def _snapshot_path(tenant_id: str, policy_type: str, policy_id: str) -> str:
    return f"/tenants/{tenant_id}/policies/{policy_type}/{policy_id}/snapshots"


@pytest.fixture(scope="module")
def tenant(stack: Stack) -> str:
    return stack.new_customer_tenant()


def test_happy_path_moves_through_every_status(stack: Stack, tenant: str) -> None:
    api, oid = stack.user(tenant, "operator", name="Olivia Operator")
    policy = _first_policy(api, tenant, "settingsCatalog")

    started = api.post(_snapshot_path(tenant, "settingsCatalog", policy["id"]))

    assert started.status_code == 202, started.text
    run = started.json()
    assert run["status"] == "queued"
    assert run["reused"] is False
    assert run["kind"] == "policy.capture"
    assert run["target"]["policyType"] == "settingsCatalog"
    assert run["target"]["policyId"] == policy["id"]
    assert run["createdBy"]["id"] == oid
    assert started.headers["Location"] == run["links"]["monitor"]
    assert int(started.headers["Retry-After"]) >= 1

    done = wait_terminal(api, started.headers["Location"])
    assert done["status"] == "succeeded", done
    assert done["counts"] == {"total": 1, "succeeded": 1, "failed": 0, "skipped": 0}
    assert done["startedAt"]
    assert done["finishedAt"]
    assert done["createdAt"] <= done["startedAt"]
    assert done["failure"] is None

    items = api.get(f"/tenants/{tenant}/runs/{run['id']}/items").json()["items"]
    assert len(items) == 1
    assert items[0]["action"] == "captured"
    assert items[0]["status"] == "succeeded"
    assert items[0]["sourceId"] == policy["id"]
    assert items[0]["displayName"] == policy["displayName"]

    notes = api.get("/notifications", params={"unread": "true"}).json()["items"]
    statuses = sorted(n["status"] for n in notes if n["runId"] == run["id"])
    assert statuses == ["queued", "running", "succeeded"]
    note = next(n for n in notes if n["runId"] == run["id"])
    assert api.post(f"/notifications/{note['id']}/read").status_code in (200, 204)
    unread = api.get("/notifications", params={"unread": "true"}).json()["items"]
    assert note["id"] not in {n["id"] for n in unread}


def test_every_catalog_type_is_captured_completely(stack: Stack, tenant: str) -> None:
    api, _ = stack.user(tenant, "operator")
    started: dict[str, str] = {}
    for key in CATALOG:
        policy = _first_policy(api, tenant, key)
        response = api.post(_snapshot_path(tenant, key, policy["id"]))
        assert response.status_code == 202, (key, response.text)
        started[key] = response.headers["Location"]
    for key, monitor in started.items():
        done = wait_terminal(api, monitor, timeout=120)
        assert done["status"] == "succeeded", (key, done)


def test_graph_failure_mid_capture_fails_the_run_safely(stack: Stack, tenant: str) -> None:
    api, _ = stack.user(tenant, "operator")
    policy = _first_policy(api, tenant, "settingsCatalog")
    # Settings pages answer 403 (permission withdrawn mid-run): the capture must fail, not succeed partially.
    stack.sim.put("/_sim/faults", json={"rules": [
        {"kind": "403", "path": f"configurationPolicies/{policy['id']}/settings", "tenant": tenant},
    ]}).raise_for_status()
    try:
        started = api.post(_snapshot_path(tenant, "settingsCatalog", policy["id"]))
        done = wait_terminal(api, started.headers["Location"])
    finally:
        stack.sim.delete("/_sim/faults")
    assert done["status"] == "failed"
    assert done["failure"]["code"] == "graph-permission-missing"
    assert "DeviceManagementConfiguration" in done["failure"]["message"]
    assert "Traceback" not in json.dumps(done)
    item = api.get(f"/tenants/{tenant}/runs/{done['id']}/items").json()["items"][0]
    assert item["status"] == "failed"
    assert item["error"]["code"] == "graph-permission-missing"


def test_unknown_policy_id_fails_the_run_with_policy_not_found(stack: Stack, tenant: str) -> None:
    api, _ = stack.user(tenant, "operator")
    started = api.post(_snapshot_path(tenant, "settingsCatalog", "00000000-0000-4000-8000-00000000dead"))
    assert started.status_code == 202
    done = wait_terminal(api, started.headers["Location"])
    assert done["status"] == "failed"
    assert done["failure"]["code"] == "policy-not-found"


def test_fifty_concurrent_identical_posts_create_one_run_and_one_orchestration(
    stack: Stack, tenant: str,
) -> None:
    api, _ = stack.user(tenant, "operator")
    policy = _first_policy(api, tenant, "deviceConfiguration")
    path = _snapshot_path(tenant, "deviceConfiguration", policy["id"])
    # Graph answers this policy slowly, so the run is still active while all fifty requests land (a run
    # that already finished is rightly not reused).
    stack.sim.put("/_sim/faults", json={"rules": [
        {"kind": "slow", "delaySeconds": 10, "path": f"deviceConfigurations/{policy['id']}",
         "tenant": tenant},
    ]}).raise_for_status()

    def fire(_: int) -> httpx.Response:
        return api.post(path)

    try:
        with ThreadPoolExecutor(max_workers=50) as pool:
            responses = list(pool.map(fire, range(50)))
    finally:
        stack.sim.delete("/_sim/faults")

    assert {r.status_code for r in responses} == {202}
    run_ids = {r.json()["id"] for r in responses}
    assert len(run_ids) == 1
    assert sum(1 for r in responses if r.json()["reused"] is False) == 1
    run_id = run_ids.pop()
    wait_terminal(api, responses[0].headers["Location"])
    status = httpx.get(f"{stack.info.host_base_url}/runtime/webhooks/durabletask/instances",
                       params={"instanceIdPrefix": run_id}).json()
    assert [s["instanceId"] for s in status] == [run_id]


def test_second_capture_after_the_first_finished_creates_a_new_run(stack: Stack, tenant: str) -> None:
    api, _ = stack.user(tenant, "operator")
    policy = _first_policy(api, tenant, "compliancePolicy")
    path = _snapshot_path(tenant, "compliancePolicy", policy["id"])
    first = api.post(path)
    wait_terminal(api, first.headers["Location"])
    second = api.post(path)
    assert second.status_code == 202
    assert second.json()["id"] != first.json()["id"]
    assert second.json()["reused"] is False
    wait_terminal(api, second.headers["Location"])


def test_idempotency_key_replays_the_original_run_and_rejects_a_different_request(
    stack: Stack, tenant: str,
) -> None:
    api, _ = stack.user(tenant, "operator")
    policies = api.get(f"/tenants/{tenant}/policies", params={"type": "powerShellScript"}).json()["items"]
    assert len(policies) >= 2
    key = {"Idempotency-Key": "logicapp-run-08584"}
    first = api.post(_snapshot_path(tenant, "powerShellScript", policies[0]["id"]), headers=key)
    assert first.status_code == 202
    wait_terminal(api, first.headers["Location"])

    replay = api.post(_snapshot_path(tenant, "powerShellScript", policies[0]["id"]), headers=key)
    assert replay.status_code == 202
    assert replay.json()["id"] == first.json()["id"]

    different = api.post(_snapshot_path(tenant, "powerShellScript", policies[1]["id"]), headers=key)
    assert different.status_code == 422
    assert different.headers["Content-Type"].startswith("application/problem+json")
    assert different.json()["code"] == "idempotency-key-reused"


def test_reader_cannot_start_a_capture(stack: Stack, tenant: str) -> None:
    api, _ = stack.user(tenant, "reader")
    policy = _first_policy(api, tenant, "settingsCatalog")
    response = api.post(_snapshot_path(tenant, "settingsCatalog", policy["id"]))
    assert response.status_code == 403
    assert response.json()["status"] == 403


def test_a_principal_without_a_grant_sees_nothing_of_another_tenant(stack: Stack, tenant: str) -> None:
    owner, _ = stack.user(tenant, "operator")
    policy = _first_policy(owner, tenant, "settingsCatalog")
    started = owner.post(_snapshot_path(tenant, "settingsCatalog", policy["id"]))
    run_id = started.json()["id"]
    wait_terminal(owner, started.headers["Location"])

    other_tenant = stack.new_customer_tenant(seed=2)
    stranger, _ = stack.user(other_tenant, "admin")
    for path in (f"/tenants/{tenant}/runs", f"/tenants/{tenant}/runs/{run_id}",
                 f"/tenants/{tenant}/runs/{run_id}/items", f"/tenants/{tenant}/runs/{run_id}/monitor",
                 f"/tenants/{tenant}/policies?type=settingsCatalog"):
        response = stranger.get(path)
        assert response.status_code == 404, (path, response.status_code)
    response = stranger.post(_snapshot_path(tenant, "settingsCatalog", policy["id"]))
    assert response.status_code == 404
    # A run id of one tenant is not reachable through a tenant the caller does have.
    assert stranger.get(f"/tenants/{other_tenant}/runs/{run_id}").status_code == 404
    progress = stranger.get("/progress").json()
    assert all(entry["tenantId"] != tenant for entry in progress["items"])
    assert run_id not in json.dumps(progress)


@pytest.mark.parametrize("case", ["expired", "wrong-audience", "no-token", "garbage"])
def test_bad_tokens_get_401(stack: Stack, tenant: str, case: str) -> None:
    headers: dict[str, str] = {}
    if case == "expired":
        headers["Authorization"] = "Bearer " + stack.mint(expires_in=-600)
    elif case == "wrong-audience":
        headers["Authorization"] = "Bearer " + stack.mint(audience="api://someone-else")
    elif case == "garbage":
        headers["Authorization"] = "Bearer not.a.token"
    response = httpx.get(f"{stack.info.api_base_url}/tenants/{tenant}/runs", headers=headers)
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("application/problem+json")


def test_bad_input_is_a_problem_and_writes_nothing(stack: Stack, tenant: str) -> None:
    api, _ = stack.user(tenant, "operator")
    before = api.get(f"/tenants/{tenant}/runs").json()["items"]

    unknown_type = api.post(_snapshot_path(tenant, "notAPolicyType", "x"))
    assert unknown_type.status_code == 400
    assert unknown_type.json()["code"] == "unknown-policy-type"

    oversized = api.post(_snapshot_path(tenant, "settingsCatalog", "abc"), content=b"x" * 300_000)
    assert oversized.status_code == 413

    admin = stack.admin()
    malformed = admin.put(f"/tenants/{tenant}", content=b"{not json",
                          headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400
    assert malformed.json()["code"] == "malformed-json"

    pasted_secret = "Zx8Q~abcDEF123ghiJKL456mnoPQR"
    secret_in_body = admin.put(f"/tenants/{tenant}", json={
        "displayName": "x", "graph": {"clientId": stack.info.demo_graph_client_id,
                                      "credential": {"type": "appSetting", "name": pasted_secret}}})
    assert secret_in_body.status_code == 400
    assert pasted_secret not in secret_in_body.text

    for response in (unknown_type, oversized, malformed, secret_in_body):
        assert response.headers["Content-Type"].startswith("application/problem+json")
    after = api.get(f"/tenants/{tenant}/runs").json()["items"]
    assert [r["id"] for r in after] == [r["id"] for r in before]


def test_secrets_planted_in_a_graph_error_never_reach_the_stored_error_or_the_logs(
    stack: Stack, tenant: str,
) -> None:
    api, _ = stack.user(tenant, "operator")
    policy = _first_policy(api, tenant, "deviceCategory")
    planted = {
        "jwt": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXBsYW50ZWQ",
        "secret": "Plant3dS3cretValue~abc",
        "sig": "Pl4ntedSignature%3D",
        "assertion": "planted-assertion-value",
    }
    message = (f"Upstream rejected Authorization: Bearer {planted['jwt']}"
               f" with client_secret={planted['secret']} for https://x.blob.core.windows.net/c?sv=1&sig={planted['sig']}"
               f" client_assertion={planted['assertion']}")
    stack.sim.put("/_sim/faults", json={"rules": [
        {"kind": "400", "path": f"deviceCategories/{policy['id']}", "tenant": tenant, "message": message},
    ]}).raise_for_status()
    try:
        started = api.post(_snapshot_path(tenant, "deviceCategory", policy["id"]))
        done = wait_terminal(api, started.headers["Location"])
    finally:
        stack.sim.delete("/_sim/faults")

    assert done["status"] == "failed"
    assert done["failure"]["code"] == "graph-bad-request"
    items = api.get(f"/tenants/{tenant}/runs/{done['id']}/items").json()
    notes = api.get("/notifications").json()
    logs = "".join(Path(path).read_text(errors="replace") for path in stack.info.logs.values())
    for where, text in (("run", json.dumps(done)), ("items", json.dumps(items)),
                        ("notifications", json.dumps(notes)), ("logs", logs)):
        for name, value in planted.items():
            assert value not in text, f"planted {name} leaked into {where}"
    # Graph's message is free text: none of it is kept, only our own words and its structured facts.
    assert "Upstream rejected" not in json.dumps(done)
    assert f"/deviceManagement/deviceCategories/{policy['id']}: Microsoft Graph answered 400" in (
        done["failure"]["message"])
    assert done["failure"]["httpStatus"] == 400
    assert done["failure"]["graphCode"] == "BadRequest"


def test_runs_are_listed_newest_first_with_continuation_and_show_in_progress(stack: Stack) -> None:
    tenant = stack.new_customer_tenant()
    api, _ = stack.user(tenant, "operator")
    policies = api.get(f"/tenants/{tenant}/policies", params={"type": "deviceCategory"}).json()["items"]
    started = [api.post(_snapshot_path(tenant, "deviceCategory", p["id"])) for p in policies[:3]]
    assert len(started) == 3
    for response in started:
        wait_terminal(api, response.headers["Location"])

    seen: list[str] = []
    continuation: str | None = None
    while True:
        params: dict[str, str | int] = {"top": 1}
        if continuation:
            params["continuation"] = continuation
        page = api.get(f"/tenants/{tenant}/runs", params=params).json()
        seen += [run["id"] for run in page["items"]]
        continuation = page["continuation"]
        if not continuation:
            break
    assert seen == [r.json()["id"] for r in reversed(started)]
    assert api.get(f"/tenants/{tenant}/runs", params={"status": "bogus"}).status_code == 400

    progress = api.get("/progress").json()["items"]
    mine = {entry["runId"]: entry for entry in progress if entry["tenantId"] == tenant}
    assert set(mine) == set(seen)
    assert all(entry["status"] == "succeeded" and entry["percent"] == 100.0 for entry in mine.values())
