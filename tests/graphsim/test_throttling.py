"""Token-bucket throttling per family, app+tenant and tenant, with Retry-After variants."""

from __future__ import annotations

import math
import time
from email.utils import parsedate_to_datetime

import httpx
import pytest

DM = "/deviceManagement"


def _burst_writes(client: httpx.Client, n: int) -> list[httpx.Response]:
    return [client.post(f"{DM}/deviceCategories", json={"displayName": f"c{i}"})
            for i in range(n)]


def test_writes_hit_the_scaled_limit_while_reads_still_pass(sim, graph, tenant_id):
    sim.control.set_throttling(True, scale=50)  # 100 writes / 20 s becomes 2 per 0.4 s
    client = graph()
    responses = _burst_writes(client, 6)
    statuses = [r.status_code for r in responses]
    assert statuses[:2] == [201, 201]
    assert 429 in statuses[2:]
    throttled = next(r for r in responses if r.status_code == 429)
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert throttled.json()["error"]["innerError"]["status"] == "429"
    assert int(throttled.headers["Retry-After"]) >= 1
    assert throttled.headers["x-ms-throttle-scope"].startswith("Tenant_Application/Write/")
    assert throttled.headers["x-ms-throttle-information"] == "WriteLimitExceeded"
    assert client.get(f"{DM}/deviceCategories").status_code == 200
    log = sim.control.requests(tenant=tenant_id)
    assert sum(e["throttled"] for e in log) == statuses.count(429)


def test_waiting_retry_after_lets_the_client_through(sim, graph):
    sim.control.set_throttling(True, scale=50, retry_after="float")
    client = graph()
    responses = _burst_writes(client, 4)
    # The latest 429 carries the wait that accounts for every request made so far.
    throttled = [r for r in responses if r.status_code == 429][-1]
    wait = float(throttled.headers["Retry-After"])
    assert 0 < wait < 2
    assert not wait.is_integer()
    time.sleep(wait + 0.05)
    assert _burst_writes(client, 1)[0].status_code == 201


def test_requests_during_throttling_still_count(sim, graph):
    sim.control.set_throttling(True, scale=50, retry_after="float")
    client = graph()
    first = [r for r in _burst_writes(client, 3) if r.status_code == 429][-1]
    later = [r for r in _burst_writes(client, 3) if r.status_code == 429][-1]
    # Ignoring Retry-After digs the hole deeper: the advertised wait grows.
    assert float(later.headers["Retry-After"]) > float(first.headers["Retry-After"])


@pytest.mark.parametrize("mode", ["absent", "http-date"])
def test_retry_after_variants(sim, graph, mode):
    sim.control.set_throttling(True, scale=50, retry_after=mode)
    client = graph()
    throttled = next(r for r in _burst_writes(client, 5) if r.status_code == 429)
    if mode == "absent":
        assert "Retry-After" not in throttled.headers
    else:
        when = parsedate_to_datetime(throttled.headers["Retry-After"])
        assert math.isclose(when.timestamp(), time.time(), abs_tol=5)


def test_script_family_has_double_the_limits(sim, graph, tenant_id):
    sim.control.set_throttling(True, scale=100)
    client = graph()
    client.get(f"{DM}/deviceManagementScripts")
    client.get(f"{DM}/deviceCategories")
    buckets = sim.control.counters()["buckets"]

    def capacity(family: str) -> float:
        return float(next(b["capacity"] for b in buckets if b["family"] == family
                    and b["scope"] == "app+tenant" and b["class"] == "any"))

    assert capacity("devices") == 2 * capacity("enrollment") == 20


def test_tenant_bucket_is_shared_by_apps(sim, graph):
    sim.control.set_throttling(True, scale=100)  # 200 writes per tenant -> 2
    first, second, third_app = graph(), graph(), graph()
    first.get(f"{DM}/deviceCategories")  # connections open before the timed burst
    second.get(f"{DM}/deviceCategories")
    third_app.get(f"{DM}/deviceCategories")
    assert _burst_writes(first, 1)[0].status_code == 201
    assert _burst_writes(second, 1)[0].status_code == 201
    third = _burst_writes(third_app, 1)[0]
    assert third.status_code == 429
    assert third.headers["x-ms-throttle-scope"].startswith("Tenant/Write/")
