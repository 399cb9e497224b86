"""Every injected fault kind of the simulator, as our client meets it over real HTTPS."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from shared.graph import (
    BatchRequest,
    GraphClientFactory,
    GraphIncompleteRead,
    GraphPermissionMissing,
    GraphServerError,
    PolicyReader,
    RetryPolicy,
)
from tests.graph.conftest import SimTenant

CATEGORIES = "/beta/deviceManagement/deviceCategories"


def statuses(tenant: SimTenant) -> list[int]:
    return [e["status"] for e in tenant.sim.control.requests(tenant=tenant.tenant_id, app=tenant.client_id)]


@pytest.mark.parametrize(
    ("rule", "seen"),
    [
        ({"kind": "429", "retryAfter": 1}, [429, 200]),
        ({"kind": "429", "retryAfter": 0.25}, [429, 200]),
        ({"kind": "502"}, [502, 200]),
        ({"kind": "503", "retryAfter": 1}, [503, 200]),
        ({"kind": "503-no-retry-after"}, [503, 200]),
        ({"kind": "504"}, [504, 200]),
        ({"kind": "401-expired"}, [401, 200]),
        # Transport faults: the simulator answered 200, then broke the connection mid-body.
        ({"kind": "reset"}, [200, 200]),
        ({"kind": "truncated"}, [200, 200]),
        ({"kind": "truncated", "chunked": True}, [200, 200]),
        ({"kind": "slow", "delaySeconds": 2.0}, [200, 200]),
    ],
    ids=lambda v: v["kind"] + ("-chunked" if v.get("chunked") else "") if isinstance(v, dict) else "",
)
async def test_transient_faults_are_retried_to_success(
    demo: SimTenant, rule: dict[str, Any], seen: list[int]
) -> None:
    # A read timeout well under the slow fault's delay, so "slow" becomes a retried timeout.
    factory = demo.factory(timeout=httpx.Timeout(10.0, read=1.0))
    try:
        client = demo.client(factory)
        await client.get(CATEGORIES)  # token and connection first, so the fault hits the Graph call
        demo.sim.control.set_faults([{**rule, "path": "deviceCategories$", "times": 1}])
        body = await client.get(CATEGORIES)
    finally:
        await factory.aclose()
    assert len(body["value"]) == 3
    # The timed-out slow request is logged only once the simulator finishes it.
    for _ in range(50):
        if len(statuses(demo)) >= len(seen) + 1:
            break
        await asyncio.sleep(0.2)
    assert statuses(demo)[1:] == seen
    assert demo.sim.control.faults()[0]["fired"] == 1


async def test_internal_server_error_is_not_retried(
    demo: SimTenant, demo_factory: GraphClientFactory
) -> None:
    demo.sim.control.set_faults([{"kind": "500", "path": "deviceCategories$", "times": 1}])
    client = demo.client(demo_factory)
    with pytest.raises(GraphServerError) as info:
        await client.get(CATEGORIES)
    assert info.value.status_code == 500
    assert statuses(demo) == [500]


async def test_injected_403_names_the_missing_permission(
    demo: SimTenant, demo_factory: GraphClientFactory
) -> None:
    demo.sim.control.set_faults([{"kind": "403", "path": "deviceHealthScripts", "times": 1}])
    reader = PolicyReader(demo.client(demo_factory))
    with pytest.raises(GraphPermissionMissing) as info:
        await reader.list_policies("remediationScript")
    assert info.value.permission == "DeviceManagementScripts.Read.All"
    assert "graph-permission-missing: DeviceManagementScripts.Read.All" in info.value.detail


async def test_short_list_page_is_an_incomplete_read(
    demo: SimTenant, demo_factory: GraphClientFactory
) -> None:
    demo.sim.control.set_faults([{"kind": "short-page", "path": "configurationPolicies$", "times": 1}])
    reader = PolicyReader(demo.client(demo_factory))
    with pytest.raises(GraphIncompleteRead):
        await reader.list_policies("settingsCatalog")
    assert len(await reader.list_policies("settingsCatalog")) == demo.counts["settingsCatalog"]


async def test_faults_inside_a_batch_are_rebatched(
    demo: SimTenant, demo_factory: GraphClientFactory
) -> None:
    client = demo.client(demo_factory)
    categories = (await client.get(CATEGORIES))["value"]
    demo.sim.control.set_faults([
        {"kind": "429", "path": "deviceCategories/", "nth": 1, "retryAfter": 1},
        {"kind": "503", "path": "deviceCategories/", "nth": 2, "retryAfter": 1},
    ])
    requests = [BatchRequest(c["id"], "GET", f"/deviceManagement/deviceCategories/{c['id']}")
                for c in categories]
    answers = await client.batch(requests)
    assert [a.status for a in answers] == [200] * len(categories)
    assert [a.body["id"] for a in answers] == [c["id"] for c in categories]
    inner = [e for e in demo.sim.control.requests(tenant=demo.tenant_id) if e.get("batch")]
    assert sorted(e["status"] for e in inner) == sorted([429, 503] + [200] * len(categories))


@pytest.mark.parametrize("retry_after", ["int", "float", "absent", "http-date"])
async def test_the_simulators_own_throttling_is_ridden_out(demo: SimTenant, retry_after: str) -> None:
    # No client-side budget here: the simulator's buckets (1000 reads / 20 s scaled by 100 to 10 per
    # 0.2 s) must throttle us, and every Retry-After style must still lead to success.
    demo.sim.control.set_throttling(True, scale=100.0, retry_after=retry_after)
    # Thirty callers throttled together come back together; without a budget that takes many rounds.
    factory = demo.factory(budget=None, retry=RetryPolicy(max_attempts=40, max_total_sleep=30.0,
                                                          backoff_base=0.1, backoff_max=1.0))
    try:
        client = demo.client(factory)
        results = await asyncio.gather(*(client.get(CATEGORIES) for _ in range(30)))
    finally:
        await factory.aclose()
        demo.sim.control.set_throttling(False)
    assert all(len(r["value"]) == 3 for r in results)
    log = demo.sim.control.requests(tenant=demo.tenant_id)
    assert any(e["throttled"] for e in log)
    assert sum(1 for e in log if e["status"] == 200) == 30
