"""A backup set whose host is killed in the middle of the capture, and started again.

These tests run on a stack of their own: they kill the host.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from localdev.stack import (
    create_customer_tenant,
    kill_host,
    restart_host,
    running_stack,
    sim_client,
    tenant_registration,
)
from shared.graph.catalog import CATALOG
from tests.e2e.conftest import Api, Stack, wait_terminal

pytestmark = pytest.mark.e2e

POLICIES = 150
# Reads of one object (its path names it by GUID), not the listings the plan makes: the capture is slowed,
# the plan is not.
_OBJECT_READ = r"/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


@pytest.fixture(scope="module")
def own_stack(azurite_connection_string: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state_dir: Path = tmp_path_factory.mktemp("backup-set-recovery-stack")
    demo_secret = secrets.token_urlsafe(24)
    with running_stack(storage=azurite_connection_string, state_dir=state_dir,
                       demo_secret=demo_secret) as info, sim_client(info) as sim:
        yield Stack(info=info, sim=sim, demo_secret=demo_secret)


def _generated_tenant(stack: Stack) -> str:
    tenant_id = str(uuid.uuid4())
    name = f"Generated {tenant_id[:8]}"
    create_customer_tenant(stack.sim, tenant_id=tenant_id, secret=stack.demo_secret, display_name=name,
                           preset="generated", seed=23, policies=POLICIES)
    response = stack.admin().put(f"/tenants/{tenant_id}", json=tenant_registration(name))
    assert response.status_code in (200, 201), response.text
    return tenant_id


def _paged(api: Api, path: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"top": 200}
    while True:
        response = api.get(path, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        found.extend(body["items"])
        if not body["continuation"]:
            return found
        params["continuation"] = body["continuation"]


def _epoch(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def test_a_host_killed_mid_capture_finishes_the_set_after_restart_with_each_item_once(
        own_stack: Stack) -> None:
    stack = own_stack
    tenant = _generated_tenant(stack)
    operator, _ = stack.user(tenant, "operator")
    stack.sim.put("/_sim/faults", json={"rules": [
        {"kind": "slow", "method": "GET", "tenant": tenant, "path": _OBJECT_READ, "delaySeconds": 0.4},
    ]}).raise_for_status()
    try:
        started = operator.post(f"/tenants/{tenant}/backup-sets",
                                json={"name": "nightly", "selection": {"all": True}})
        assert started.status_code == 202, started.text
        run_id = started.json()["id"]
        set_id = started.json()["backupSet"]["id"]
        deadline = time.monotonic() + 120
        while True:
            # The items recorded so far (the run's counts move a whole batch at a time).
            assert time.monotonic() < deadline, "the capture did not start"
            recorded = operator.get(f"/tenants/{tenant}/runs/{run_id}/items", params={"top": 200}).json()
            if len(recorded["items"]) >= 15:
                break
            time.sleep(0.1)
        at_kill = operator.get(f"/tenants/{tenant}/runs/{run_id}").json()
        kill_host(stack.info)
        killed_at = time.time()
        # Mid-capture: some items recorded, not all, and the run still open.
        assert at_kill["status"] == "running", at_kill
        restart_host(stack.info)
        done = wait_terminal(operator, started.headers["Location"], timeout=300)
    finally:
        stack.sim.delete("/_sim/faults")

    failed = [(i["itemId"], i["error"]) for i in _paged(operator, f"/tenants/{tenant}/runs/{run_id}/items")
              if i["status"] != "succeeded"]
    assert done["status"] == "succeeded", failed
    assert _epoch(done["finishedAt"]) > killed_at, "the run finished after the kill, on the restarted host"
    live = operator.get(f"/tenants/{tenant}/policies")
    assert live.status_code == 200, live.text
    listed = {f"{p['policyType']}:{p['id']}" for p in live.json()["items"]}
    held = {f"{key}:{obj['id']}" for key in CATALOG
            for obj in stack.sim.get(f"/_sim/tenants/{tenant}/objects/{key}").json()["value"]}
    assert len(listed) > POLICIES
    assert listed <= held

    # Each item recorded once: on the run, on the set, and in the counts.
    run_items = _paged(operator, f"/tenants/{tenant}/runs/{run_id}/items")
    assert Counter(i["itemId"] for i in run_items).most_common(1)[0][1] == 1
    assert {i["itemId"] for i in run_items} == listed
    assert all(i["status"] == "succeeded" for i in run_items)
    assert done["counts"] == {"total": len(listed), "succeeded": len(listed), "failed": 0, "skipped": 0}
    assert len(recorded["items"]) < len(listed), "the kill came before the last item"
    set_items = _paged(operator, f"/tenants/{tenant}/backup-sets/{set_id}")
    assert sorted(i["itemId"] for i in set_items) == sorted(listed)
    assert all(i["status"] == "captured" and i["complete"] for i in set_items)
    backup_set = operator.get(f"/tenants/{tenant}/backup-sets/{set_id}").json()
    assert backup_set["status"] == "complete"
    assert backup_set["itemCount"] == backup_set["capturedCount"] == len(listed)
    # One set for the one request: the restart started nothing twice.
    sets = _paged(operator, f"/tenants/{tenant}/backup-sets")
    assert [s["id"] for s in sets] == [set_id]
    runs = operator.get(f"/tenants/{tenant}/runs").json()["items"]
    assert [r["id"] for r in runs] == [run_id]
