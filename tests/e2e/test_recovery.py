"""A process that dies between claiming a run and starting its orchestration loses nothing.

The crash is reproduced exactly: the claim rows (run, active key, outbox entry) are written to Table Storage
as the start request would have written them, and no orchestration is started. The outbox sweeper launches
it with no request at all; the next identical request, or the monitor, may launch it sooner.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from shared.domain import (
    CreatedBy,
    RunKind,
    RunRecord,
    RunStatus,
    RunTarget,
    derive_idempotency_key,
    new_run_id,
)
from shared.ports import ActiveEntry, OutboxEntry, RunClaim
from shared.storage.factory import StorageFactory
from tests.e2e.conftest import Stack, wait_terminal

pytestmark = pytest.mark.e2e


def _orphan_run(stack: Stack, tenant_id: str, oid: str, policy_type: str, policy_id: str) -> RunRecord:
    """Write the claim of a run whose process died before ``start_new`` (two minutes ago)."""
    then = datetime.now(UTC) - timedelta(minutes=2)
    target = RunTarget(policy_type=policy_type, policy_id=policy_id)
    derived = derive_idempotency_key(tenant_id, RunKind.POLICY_CAPTURE, target, {})
    run = RunRecord(id=new_run_id(then), tenant_id=tenant_id, kind=RunKind.POLICY_CAPTURE, target=target,
                    created_by=CreatedBy(id=oid, name="Crashed Caller"), created_at=then, derived_key=derived)
    outbox = OutboxEntry(tenant_id=tenant_id, run_id=run.id, kind=run.kind, created_at=then,
                         due_at=then + timedelta(seconds=10), attempts=1)
    storage = StorageFactory.from_connection_string(stack.info.storage_connection_string)
    try:
        storage.runs().claim(RunClaim(tenant_id=tenant_id, run=run, active=ActiveEntry(derived, run.id),
                                      outbox=outbox))
    finally:
        storage.close()
    return run


def _stored_run(stack: Stack, tenant_id: str, run_id: str) -> RunRecord | None:
    storage = StorageFactory.from_connection_string(stack.info.storage_connection_string)
    try:
        stored = storage.runs().get(tenant_id=tenant_id, run_id=run_id)
    finally:
        storage.close()
    return stored.value if stored else None


def _instances(stack: Stack, run_id: str) -> list[str]:
    response = httpx.get(f"{stack.info.host_base_url}/runtime/webhooks/durabletask/instances",
                         params={"instanceIdPrefix": run_id})
    return [s["instanceId"] for s in response.json()]


def test_a_crash_between_claim_and_launch_recovers_without_any_caller(stack: Stack) -> None:
    tenant = stack.new_customer_tenant()
    api, oid = stack.user(tenant, "operator")
    policy = api.get(f"/tenants/{tenant}/policies", params={"type": "assignmentFilter"}).json()["items"][0]
    orphan = _orphan_run(stack, tenant, oid, "assignmentFilter", policy["id"])

    # No request names the run from here on: only the host's own instance list and storage are read.
    deadline = time.monotonic() + 60
    statuses: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        statuses = httpx.get(f"{stack.info.host_base_url}/runtime/webhooks/durabletask/instances",
                             params={"instanceIdPrefix": orphan.id}).json()
        if statuses and statuses[0]["runtimeStatus"] == "Completed":
            break
        time.sleep(0.5)

    assert [(s["instanceId"], s["runtimeStatus"]) for s in statuses] == [(orphan.id, "Completed")]
    stored = _stored_run(stack, tenant, orphan.id)
    assert stored is not None
    assert stored.status == RunStatus.SUCCEEDED
    assert stored.launched_at is not None


def test_the_next_identical_start_launches_a_run_whose_launch_was_lost(stack: Stack) -> None:
    tenant = stack.new_customer_tenant()
    api, oid = stack.user(tenant, "operator")
    policy = api.get(f"/tenants/{tenant}/policies", params={"type": "settingsCatalog"}).json()["items"][0]
    orphan = _orphan_run(stack, tenant, oid, "settingsCatalog", policy["id"])
    assert _instances(stack, orphan.id) == []

    response = api.post(f"/tenants/{tenant}/policies/settingsCatalog/{policy['id']}/snapshots")

    assert response.status_code == 202
    assert response.json()["id"] == orphan.id
    assert response.json()["reused"] is True
    done = wait_terminal(api, response.headers["Location"])
    assert done["status"] == "succeeded"
    assert _instances(stack, orphan.id) == [orphan.id]


def test_the_monitor_launches_a_run_whose_launch_was_lost(stack: Stack) -> None:
    tenant = stack.new_customer_tenant()
    api, oid = stack.user(tenant, "operator")
    policy = api.get(f"/tenants/{tenant}/policies", params={"type": "scopeTag"}).json()["items"][0]
    orphan = _orphan_run(stack, tenant, oid, "scopeTag", policy["id"])

    done = wait_terminal(api, f"{stack.info.api_base_url}/tenants/{tenant}/runs/{orphan.id}/monitor")

    assert done["status"] == "succeeded"
    assert done["counts"]["succeeded"] == 1


def test_a_run_whose_orchestration_is_terminated_ends_failed_and_frees_its_key(stack: Stack) -> None:
    tenant = stack.new_customer_tenant()
    api, _ = stack.user(tenant, "operator")
    policy = api.get(f"/tenants/{tenant}/policies", params={"type": "deviceCategory"}).json()["items"][0]
    path = f"/tenants/{tenant}/policies/deviceCategory/{policy['id']}/snapshots"
    stack.sim.put("/_sim/faults", json={"rules": [
        {"kind": "slow", "delaySeconds": 8, "path": f"deviceCategories/{policy['id']}", "tenant": tenant},
    ]}).raise_for_status()
    try:
        started = api.post(path)
        run_id = started.json()["id"]
        # An operator (or a host failure) ends the orchestration while the capture is in flight.
        terminated = httpx.post(
            f"{stack.info.host_base_url}/runtime/webhooks/durabletask/instances/{run_id}/terminate",
            params={"reason": "stopped by an operator"})
        assert terminated.status_code == 202
        done = wait_terminal(api, started.headers["Location"], timeout=30)
    finally:
        stack.sim.delete("/_sim/faults")

    assert done["status"] == "failed"
    assert done["failure"]["code"] == "orchestration-ended"
    again = api.post(path)
    assert again.status_code == 202
    assert again.json()["id"] != run_id
    assert wait_terminal(api, again.headers["Location"])["status"] == "succeeded"

