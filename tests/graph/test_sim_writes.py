"""Writes, assign, $batch and read-only mode against the simulator, checked against its server state."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import httpx
import pytest

from localdev.graphsim.testing import SimHandle
from shared.graph import (
    CATALOG,
    BatchRequest,
    BudgetConfig,
    GraphClientFactory,
    GraphServerError,
    GraphThrottled,
    GraphWriteRefused,
    PolicyReader,
    RetryPolicy,
)
from tests.graph.conftest import SimTenant, make_tenant


def by_id(tenant: SimTenant, type_key: str) -> dict[str, dict[str, Any]]:
    return {o["id"]: o for o in tenant.sim.control.objects(tenant.tenant_id, type_key)}


async def test_create_update_assign_and_delete(demo: SimTenant, demo_factory: GraphClientFactory) -> None:
    client = demo.client(demo_factory)
    created = await client.post("/beta/deviceManagement/deviceCategories",
                                json_body={"displayName": "Kiosks", "description": "shared devices"})
    assert created.status_code == 201
    category_id = created.json()["id"]
    await client.patch(f"/beta/deviceManagement/deviceCategories/{category_id}",
                       json_body={"description": "lobby kiosks"})
    assert by_id(demo, "deviceCategory")[category_id]["description"] == "lobby kiosks"

    group = demo.sim.control.objects(demo.tenant_id, "group")[0]["id"]
    target = {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": group}
    config_id = next(iter(by_id(demo, "deviceConfiguration")))
    spec = CATALOG["deviceConfiguration"].assignments
    assert spec is not None
    assigned = await client.post(
        f"/beta/deviceManagement/deviceConfigurations/{config_id}/{spec.write_path}",
        json_body={spec.body_key: [{"target": target}]}, idempotent=True)
    assert assigned.status_code == spec.write_status
    server = by_id(demo, "deviceConfiguration")[config_id]["assignments"]
    assert [a["target"]["groupId"] for a in server] == [group]

    profile_id = next(iter(by_id(demo, "autopilotProfile")))
    autopilot = CATALOG["autopilotProfile"].assignments
    assert autopilot is not None
    answer = await client.post(
        f"/beta/deviceManagement/windowsAutopilotDeploymentProfiles/{profile_id}/{autopilot.write_path}",
        json_body={autopilot.body_key: target})
    assert answer.status_code == autopilot.write_status == 201
    profile = by_id(demo, "autopilotProfile")[profile_id]
    assert group in [a["target"].get("groupId") for a in profile["assignments"]]

    deleted = await client.delete(f"/beta/deviceManagement/deviceCategories/{category_id}")
    assert deleted.status_code == 204
    assert category_id not in by_id(demo, "deviceCategory")


async def test_batch_writes_with_depends_on(demo: SimTenant, demo_factory: GraphClientFactory) -> None:
    client = demo.client(demo_factory)
    categories = list(by_id(demo, "deviceCategory"))
    requests = [BatchRequest(f"p{i}", "PATCH", f"/deviceManagement/deviceCategories/{cid}",
                             body={"description": f"batched {i}"}) for i, cid in enumerate(categories)]
    requests.append(BatchRequest("new", "POST", "/deviceManagement/deviceCategories",
                                 body={"displayName": "Batch-made"}))
    requests.append(BatchRequest("list", "GET", "/deviceManagement/deviceCategories", depends_on=("new",)))
    answers = await client.batch(requests)
    assert [a.status for a in answers] == [204] * len(categories) + [201, 200]
    server = by_id(demo, "deviceCategory")
    assert [server[cid]["description"] for cid in categories] == [
        f"batched {i}" for i in range(len(categories))]
    assert "Batch-made" in [c["displayName"] for c in answers[-1].body["value"]]


async def test_read_only_client_sends_nothing_but_gets(
    demo: SimTenant, demo_factory: GraphClientFactory
) -> None:
    client = demo.client(demo_factory, read_only=True)
    reader = PolicyReader(client)
    captured = [c async for c in reader.read_all(["settingsCatalog", "powerShellScript"], concurrency=4)]
    assert len(captured) == demo.counts["settingsCatalog"] + demo.counts["powerShellScript"]
    category_id = next(iter(by_id(demo, "deviceCategory")))
    url = f"/beta/deviceManagement/deviceCategories/{category_id}"
    for attempt in (client.patch(url, json_body={"description": "x"}), client.delete(url),
                    client.post("/beta/deviceManagement/deviceCategories", json_body={"displayName": "x"}),
                    client.put(url, json_body={}),
                    client.batch([BatchRequest("1", "PATCH", url[5:], body={"description": "x"})])):
        with pytest.raises(GraphWriteRefused):
            await attempt
    answers = await client.batch([BatchRequest("1", "GET", url[5:])])
    assert answers[0].status == 200
    log = demo.sim.control.requests(tenant=demo.tenant_id, app=demo.client_id)
    assert log
    assert {e["method"] for e in log} == {"GET"}


# ---------------------------------------------------------------- throttling and faults under load

SCALE = 10.0  # the simulator divides limits and window by this: 10 writes per 2 s per app and tenant
WORKERS = 20
ITEMS = 60
WRITE_FAULTS = ["429", "500", "502", "503", "503-no-retry-after", "504", "401-expired", "reset",
                "truncated", "slow"]


def max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


@pytest.mark.slow
async def test_twenty_workers_stay_under_the_scaled_write_limit_and_finish_despite_faults(
    sim: SimHandle,
) -> None:
    tenant = make_tenant(sim, "empty")
    sim.control.set_throttling(True, scale=SCALE, retry_after="int")
    # Each fault kind fires now and then on writes; the client (and the worker, for the one fault the
    # client leaves to its caller, a 500) must still get every item written.
    sim.control.set_faults([
        {"kind": kind, "method": "PATCH", "tenant": tenant.tenant_id, "every": 7 + i, "times": 2,
         "delaySeconds": 1.5}
        for i, kind in enumerate(WRITE_FAULTS)], seed=3)
    # The margin absorbs the gap between when we send and when the simulator counts a request
    # (connection setup, a loaded machine); it is what keeps arrivals, not just sends, under the limit.
    budget = replace(BudgetConfig().scaled(SCALE), margin=0.75)
    factory = tenant.factory(
        budget=budget,
        retry=RetryPolicy(max_attempts=6, max_total_sleep=30.0, backoff_base=0.2, backoff_max=2.0),
        timeout=httpx.Timeout(10.0, read=1.0))
    client = tenant.client(factory)
    try:
        # Create the items as an admin would, outside our budget, then write them all concurrently.
        ids = [sim.control.mutate(tenant.tenant_id, "add", "deviceCategory",
                                  obj={"displayName": f"cat-{i}"})["id"] for i in range(ITEMS)]
        queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
        for item in enumerate(ids):
            queue.put_nowait(item)
        started = time.time()

        async def worker() -> None:
            while not queue.empty():
                i, cid = queue.get_nowait()
                for _ in range(5):
                    try:
                        await client.patch(f"/beta/deviceManagement/deviceCategories/{cid}",
                                           json_body={"description": f"written-{i}"})
                        break
                    except (GraphServerError, GraphThrottled):
                        continue  # an activity retry would do the same

        await asyncio.gather(*(worker() for _ in range(WORKERS)))
    finally:
        await factory.aclose()
        sim.control.set_throttling(False)
        fired = {r["kind"]: r["fired"] for r in sim.control.faults()}
        sim.control.clear_faults()
    server = by_id(tenant, "deviceCategory")
    assert [server[cid].get("description") for cid in ids] == [f"written-{i}" for i in range(ITEMS)]
    assert all(fired[kind] >= 1 for kind in WRITE_FAULTS), fired
    writes = [e for e in sim.control.requests(tenant=tenant.tenant_id, since=started)
              if e["method"] != "GET"]
    limit, window = budget.limits("enrollment")[0], 20.0 / SCALE
    assert (limit, window) == (10, 2.0)
    assert len(writes) >= ITEMS
    assert max_in_window([e["time"] for e in writes], window) <= limit
    assert not [e for e in writes if e["throttled"]]  # never throttled by the simulator's buckets
