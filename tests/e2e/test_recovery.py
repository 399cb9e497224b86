"""Runs recover with no one polling: lost launches are launched, orphaned runs are failed.

A process that dies between claiming a run and starting its orchestration loses nothing. The crash is
reproduced exactly: the claim rows (run, active key, outbox entry) are written to Table Storage as the start
request would have written them, and no orchestration is started. The outbox sweeper launches it with no
request at all; the next identical request, or the monitor, may launch it sooner.

A run whose orchestration ended without it (terminated, failed, vanished) is failed by the recovery sweeper,
which frees its key; the monitor applies the same rule when polled.
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
    storage = StorageFactory.from_connection_string(stack.info.storage_connection_string,
                                                    table_prefix=stack.info.table_prefix,
                                                    snapshot_container=stack.info.snapshot_container)
    try:
        storage.runs().claim(RunClaim(tenant_id=tenant_id, run=run, active=ActiveEntry(derived, run.id),
                                      outbox=outbox))
    finally:
        storage.close()
    return run


def _stored_run(stack: Stack, tenant_id: str, run_id: str) -> RunRecord | None:
    storage = StorageFactory.from_connection_string(stack.info.storage_connection_string,
                                                    table_prefix=stack.info.table_prefix,
                                                    snapshot_container=stack.info.snapshot_container)
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
    items = api.get(f"/tenants/{tenant}/runs/{orphan.id}/items").json()["items"]
    assert stored.status == RunStatus.SUCCEEDED, (stored.failure, [(i["itemId"], i["error"]) for i in items])
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



def test_a_terminated_orchestration_fails_its_run_with_no_one_polling(stack: Stack) -> None:
    tenant = stack.new_customer_tenant()
    api, _ = stack.user(tenant, "operator")
    policy = api.get(f"/tenants/{tenant}/policies", params={"type": "deviceCategory"}).json()["items"][0]
    path = f"/tenants/{tenant}/policies/deviceCategory/{policy['id']}/snapshots"
    # The capture's Graph read outlasts the wait below, so no item outcome lands before the sweeper acts.
    stack.sim.put("/_sim/faults", json={"rules": [
        {"kind": "slow", "delaySeconds": 50, "path": f"deviceCategories/{policy['id']}", "tenant": tenant},
    ]}).raise_for_status()
    try:
        started = api.post(path)
        run_id = started.json()["id"]
        _wait_for_status(stack, tenant, run_id, RunStatus.RUNNING, timeout=20)
        terminated = httpx.post(
            f"{stack.info.host_base_url}/runtime/webhooks/durabletask/instances/{run_id}/terminate",
            params={"reason": "stopped by an operator"})
        assert terminated.status_code == 202
        # Nobody polls the monitor: only storage is read until the recovery timer (every 30 s) settles it.
        ended = _wait_for_status(stack, tenant, run_id, RunStatus.FAILED, timeout=45)
    finally:
        stack.sim.delete("/_sim/faults")

    assert ended.failure is not None
    assert ended.failure.code == "orchestration-ended"
    shown = api.get(f"/tenants/{tenant}/runs/{run_id}").json()
    assert (shown["status"], shown["failure"]["code"]) == ("failed", "orchestration-ended")
    again = api.post(path)
    assert again.status_code == 202
    assert again.json()["reused"] is False
    assert again.json()["id"] != run_id
    assert wait_terminal(api, again.headers["Location"])["status"] == "succeeded"


def test_the_monitor_gives_a_launched_run_time_to_appear_in_the_task_hub(stack: Stack) -> None:
    tenant = stack.new_customer_tenant()
    api, oid = stack.user(tenant, "operator")
    # Two launched runs the host has no instance for: one launched just now (the real extension answers 404
    # until it processes the start message), one launched five minutes ago (the instance is gone).
    just_launched = _launched_run(stack, tenant, oid, "justLaunched", launched_ago=timedelta(seconds=0))
    long_gone = _launched_run(stack, tenant, oid, "longGone", launched_ago=timedelta(minutes=5))
    monitor = f"/tenants/{tenant}/runs/{{}}/monitor"

    waiting = api.get(monitor.format(just_launched.id))
    gone = api.get(monitor.format(long_gone.id))

    assert waiting.status_code == 202
    assert waiting.json()["status"] == "running"
    assert gone.status_code == 200
    assert (gone.json()["status"], gone.json()["failure"]["code"]) == ("failed", "orchestration-ended")


def _launched_run(stack: Stack, tenant_id: str, oid: str, policy_id: str, *,
                  launched_ago: timedelta) -> RunRecord:
    """Write a run that was launched and marked running ``launched_ago``, with no instance in the host."""
    then = datetime.now(UTC) - launched_ago
    target = RunTarget(policy_type="settingsCatalog", policy_id=policy_id)
    derived = derive_idempotency_key(tenant_id, RunKind.POLICY_CAPTURE, target, {})
    run = RunRecord(id=new_run_id(then), tenant_id=tenant_id, kind=RunKind.POLICY_CAPTURE, target=target,
                    created_by=CreatedBy(id=oid, name="Ada Operator"), created_at=then, derived_key=derived,
                    status=RunStatus.RUNNING, started_at=then, launched_at=then)
    storage = StorageFactory.from_connection_string(stack.info.storage_connection_string,
                                                    table_prefix=stack.info.table_prefix,
                                                    snapshot_container=stack.info.snapshot_container)
    try:
        storage.runs().claim(RunClaim(tenant_id=tenant_id, run=run, active=ActiveEntry(derived, run.id)))
    finally:
        storage.close()
    return run


def _wait_for_status(stack: Stack, tenant_id: str, run_id: str, status: RunStatus, *,
                     timeout: float) -> RunRecord:
    """Read the run from storage (never through the API) until it has ``status``."""
    deadline = time.monotonic() + timeout
    while True:
        run = _stored_run(stack, tenant_id, run_id)
        if run is not None and run.status == status:
            return run
        assert time.monotonic() < deadline, f"run still {run.status if run else None} after {timeout} s"
        time.sleep(0.5)
