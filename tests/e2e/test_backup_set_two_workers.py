"""Two concurrent backups of one tenant with activities in two worker processes keep the tenant's limit.

The local host's equivalent of ``FUNCTIONS_WORKER_PROCESS_COUNT=2``: the host runs the app's activities
in two processes, each with its own Graph clients and caches, so only the budget shared through storage
can keep the tenant within Intune's limits. The simulator throttles at the published rate with windows
shortened by ``SCALE`` (``PUT /_sim/throttling``; the app's ``GRAPH_BUDGET_SCALE`` matches it), so the
two backups press against the limit within seconds instead of minutes: its request log must never show
the tenant above the limit of a family in any window, and every item must still be captured once.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks.graph_read_rate import busiest_window
from localdev.graphsim.catalog import limits_for
from localdev.stack import create_customer_tenant, running_stack, sim_client, tenant_registration
from tests.e2e.conftest import Api, Stack, wait_terminal

pytestmark = pytest.mark.e2e

POLICIES = 120
# Windows 20 times shorter than Graph's (1 s): the same rate, a smaller burst.
SCALE = 20


@pytest.fixture(scope="module")
def two_worker_stack(azurite_connection_string: str,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state_dir: Path = tmp_path_factory.mktemp("two-worker-stack")
    demo_secret = secrets.token_urlsafe(24)
    with running_stack(storage=azurite_connection_string, state_dir=state_dir, demo_secret=demo_secret,
                       extra_env={"FUNCTIONS_WORKER_PROCESS_COUNT": "2",
                                  "GRAPH_BUDGET_SCALE": str(SCALE)}) as info, sim_client(info) as sim:
        yield Stack(info=info, sim=sim, demo_secret=demo_secret)


def _workers(stack: Stack) -> list[dict[str, int]]:
    described = httpx.get(f"{stack.info.host_base_url}/admin/dfhost/engine", timeout=10).json()
    return [{key: int(value) for key, value in worker.items()} for worker in described["workers"]]


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


def test_two_backups_in_two_worker_processes_never_exceed_the_tenants_limit(two_worker_stack: Stack) -> None:
    stack = two_worker_stack
    tenant = str(uuid.uuid4())
    name = f"Generated {tenant[:8]}"
    create_customer_tenant(stack.sim, tenant_id=tenant, secret=stack.demo_secret, display_name=name,
                           preset="generated", seed=31, policies=POLICIES)
    registered = stack.admin().put(f"/tenants/{tenant}", json=tenant_registration(name))
    assert registered.status_code in (200, 201), registered.text
    api, _ = stack.user(tenant, "operator")
    before = {w["pid"]: w["activities"] for w in _workers(stack)}
    assert len(before) == 2, "the host does not run two worker processes"

    stack.sim.put("/_sim/throttling", json={"enabled": True, "scale": SCALE}).raise_for_status()
    try:
        since = time.time()
        # Two different selections, so two runs rather than one reused by the second request.
        selections = [{"name": "with assignments", "selection": {"all": True}, "includeAssignments": True},
                      {"name": "without assignments", "selection": {"all": True},
                       "includeAssignments": False}]
        started = [api.post(f"/tenants/{tenant}/backup-sets", json=body) for body in selections]
        for response in started:
            assert response.status_code == 202, response.text
        assert started[0].json()["id"] != started[1].json()["id"]
        with ThreadPoolExecutor(max_workers=2) as pool:
            runs = list(pool.map(lambda r: wait_terminal(api, r.headers["Location"], timeout=240), started))
        log = stack.sim.get("/_sim/requests", params={"tenant": tenant, "since": str(since)}).json()["value"]
    finally:
        stack.sim.put("/_sim/throttling", json={"enabled": False}).raise_for_status()

    # Both runs captured every item once.
    for run, response in zip(runs, started, strict=True):
        assert run["status"] == "succeeded", (run["status"], run["counts"], run.get("error"))
        set_id = response.json()["backupSet"]["id"]
        items = _paged(api, f"/tenants/{tenant}/backup-sets/{set_id}")
        ids = [item["itemId"] for item in items]
        assert len(ids) == len(set(ids)) == run["counts"]["total"] > POLICIES
        assert all(item["status"] == "captured" for item in items)

    # Activities ran in both worker processes.
    ran = {w["pid"]: w["activities"] - before.get(w["pid"], 0) for w in _workers(stack)}
    assert min(ran.values()) >= 5, ran

    # The simulator never saw the tenant above a family's limit in any window, and the two backups
    # pressed against it (so the limit, not a lack of demand, is what held them).
    by_family: dict[str, list[float]] = defaultdict(list)
    writes: dict[str, list[float]] = defaultdict(list)
    for entry in log:
        family = entry["bucket"] or "default"
        by_family[family].append(entry["time"])
        if entry["method"] != "GET":
            writes[family].append(entry["time"])
    report = {}
    for family, times in by_family.items():
        write_app, _, any_app, _, window = limits_for(family)
        limit, window = max(1, int(any_app / SCALE)), window / SCALE
        busiest = busiest_window(times, window)
        report[family] = (busiest, limit, len(times))
        assert busiest <= limit, (family, report)
        assert busiest_window(writes[family], window) <= max(1, int(write_app / SCALE)), family
        # The published window too.
        assert busiest_window(times, window * SCALE) <= any_app, family
    throttled = Counter(entry["bucket"] for entry in log if entry["throttled"])
    busiest_family = max(report.values(), key=lambda counts: counts[2])
    assert busiest_family[0] >= busiest_family[1] * 0.6, (report, throttled)
