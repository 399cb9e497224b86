"""Restores that go wrong: Graph refusing or throttling writes, and the host killed in the middle.

These tests run on a stack of their own: one of them kills the host.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localdev.stack import kill_host, restart_host, running_stack, sim_client
from shared.graph.catalog import CATALOG
from tests.e2e.conftest import RETRY_SCALE, Api, Stack, wait_terminal
from tests.planted_upstream_text import leaks, planted_message

pytestmark = pytest.mark.e2e

_WRITES = ("POST", "PATCH", "PUT", "DELETE")


@pytest.fixture(scope="module")
def own_stack(azurite_connection_string: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state_dir: Path = tmp_path_factory.mktemp("restore-stack")
    demo_secret = secrets.token_urlsafe(24)
    with running_stack(storage=azurite_connection_string, state_dir=state_dir, demo_secret=demo_secret,
                       extra_env={"GRAPH_RETRY_SCALE": str(RETRY_SCALE)}) as info, sim_client(info) as sim:
        yield Stack(info=info, sim=sim, demo_secret=demo_secret)



def _delete_all_but_one(stack: Stack, tenant: str, type_key: str) -> list[dict[str, Any]]:
    # The simulator's objects of a collection shared by several catalog types: only this type's.
    gone = [o for o in stack.objects(tenant, type_key) if CATALOG[type_key].keeps(o)][1:]
    for obj in gone:
        stack.mutate(tenant, {"op": "delete", "type": type_key, "id": obj["id"]})
    return gone


def _backup(api: Api, tenant: str) -> str:
    started = api.post(f"/tenants/{tenant}/backup-sets", json={"name": "golden", "selection": {"all": True}})
    assert started.status_code == 202, started.text
    assert wait_terminal(api, started.headers["Location"], timeout=180)["status"] == "succeeded"
    return str(started.json()["backupSet"]["id"])


def _items(api: Api, tenant: str, run_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"top": 200}
    while True:
        body = api.get(f"/tenants/{tenant}/runs/{run_id}/items", params=params).json()
        found.extend(body["items"])
        if not body["continuation"]:
            return found
        params["continuation"] = body["continuation"]


def _names(stack: Stack, tenant: str, type_key: str, prop: str = "displayName") -> Counter[str]:
    return Counter(str(o.get(prop)) for o in stack.objects(tenant, type_key))


def test_a_create_whose_later_part_failed_is_completed_on_the_items_next_attempt(own_stack: Stack) -> None:
    stack = own_stack
    tenant = stack.new_customer_tenant()
    admin, _ = stack.user(tenant, "admin")
    app = next(a for a in stack.objects(tenant, "mobileApp")
               if CATALOG["mobileApp"].keeps(a) and a.get("categories"))
    filed = sorted(c["displayName"] for c in app["categories"])
    set_id = _backup(admin, tenant)
    stack.mutate(tenant, {"op": "delete", "type": "mobileApp", "id": app["id"]})
    # Graph creates the app, then answers its category reference with a gateway error once: a POST that
    # the client does not repeat, so the item is tried again and finds the app it made.
    stack.sim.put("/_sim/faults", json={"rules": [
        {"kind": "502", "method": "POST", "path": r"/categories/\$ref$", "tenant": tenant, "times": 1}]})
    try:
        started = admin.post(f"/tenants/{tenant}/restores",
                             json={"backupSetId": set_id, "itemIds": [f"mobileApp:{app['id']}"]})
        assert started.status_code == 202, started.text
        done = wait_terminal(admin, started.headers["Location"], timeout=120)
        fired = stack.sim.get("/_sim/faults").json()["rules"][0]["fired"]
    finally:
        stack.sim.delete("/_sim/faults")

    assert fired == 1
    assert done["status"] == "succeeded", done
    [item] = _items(admin, tenant, done["id"])
    assert (item["status"], item["action"], item["attempts"]) == ("succeeded", "created", 2)
    [made] = [a for a in stack.objects(tenant, "mobileApp") if a.get("displayName") == app["displayName"]]
    assert made["id"] == item["targetId"]
    categories = {c["id"]: c["displayName"] for c in stack.objects(tenant, "mobileAppCategory")}
    assert sorted(categories[c["id"]] for c in made["categories"]) == filed


def test_refused_and_throttled_writes_end_partial_with_safe_errors_and_a_rerun_completes_them(
        own_stack: Stack) -> None:
    stack = own_stack
    tenant = stack.new_customer_tenant()
    admin, _ = stack.user(tenant, "admin")
    set_id = _backup(admin, tenant)
    configs = _delete_all_but_one(stack, tenant, "deviceConfiguration")
    scripts = _delete_all_but_one(stack, tenant, "powerShellScript")
    assert configs
    assert scripts
    stack.sim.put("/_sim/faults", json={"rules": [
        # Every create of a device configuration is refused with a validation message.
        {"kind": "400", "method": "POST", "path": r"deviceManagement/deviceConfigurations$", "tenant": tenant,
         "message": planted_message()},
        # Script creates are throttled twice, then go through.
        {"kind": "429", "method": "POST", "path": r"deviceManagement/deviceManagementScripts$",
         "tenant": tenant, "times": 2, "retryAfter": 1},
        {"kind": "503", "method": "PATCH", "tenant": tenant, "times": 1},
    ]}).raise_for_status()
    try:
        started = admin.post(f"/tenants/{tenant}/restores", json={"backupSetId": set_id})
        done = wait_terminal(admin, started.headers["Location"], timeout=240)
    finally:
        stack.sim.delete("/_sim/faults")
    assert done["status"] == "partial", done
    items = {i["itemId"]: i for i in _items(admin, tenant, done["id"])}
    failed = {k for k, v in items.items() if v["status"] == "failed"}
    assert failed == {f"deviceConfiguration:{c['id']}" for c in configs}
    for item_id in failed:
        error = items[item_id]["error"]
        assert error["code"] == "graph-bad-request"
        assert error["httpStatus"] == 400
        assert leaks(str(items[item_id])) == []
    assert all(items[f"powerShellScript:{s['id']}"]["action"] == "created" for s in scripts)
    assert done["counts"]["failed"] == len(configs)

    rerun = admin.post(f"/tenants/{tenant}/runs/{done['id']}/rerun")
    assert rerun.status_code == 202, rerun.text
    assert rerun.json()["kind"] == "restore.execute"
    again = wait_terminal(admin, rerun.headers["Location"], timeout=240)
    assert again["status"] == "succeeded", again
    assert {i["itemId"] for i in _items(admin, tenant, again["id"])} == failed
    names = _names(stack, tenant, "deviceConfiguration")
    assert all(names[c["displayName"]] == 1 for c in configs)
    assert all(n == 1 for n in _names(stack, tenant, "powerShellScript").values())


def test_a_host_killed_mid_restore_finishes_after_restart_without_duplicates(own_stack: Stack) -> None:
    stack = own_stack
    tenant = stack.new_customer_tenant()
    admin, _ = stack.user(tenant, "admin")
    set_id = _backup(admin, tenant)
    deleted = {key: _delete_all_but_one(stack, tenant, key)
               for key in ("deviceConfiguration", "settingsCatalog", "compliancePolicy", "powerShellScript")}
    # Slow writes, so the kill lands while creates are in flight.
    stack.sim.put("/_sim/faults", json={"rules": [
        {"kind": "slow", "method": "POST", "tenant": tenant, "delaySeconds": 0.7},
    ]}).raise_for_status()
    try:
        since = time.time()
        started = admin.post(f"/tenants/{tenant}/restores", json={"backupSetId": set_id})
        assert started.status_code == 202, started.text
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            log = stack.sim.get("/_sim/requests",
                                params={"tenant": tenant, "since": str(since)}).json()["value"]
            if sum(1 for e in log if e["method"] == "POST") >= 3:
                break
            time.sleep(0.1)
        kill_host(stack.info)
        restart_host(stack.info)
        done = wait_terminal(admin, started.headers["Location"], timeout=300)
    finally:
        stack.sim.delete("/_sim/faults")
    assert done["status"] == "succeeded", done
    items = _items(admin, tenant, done["id"])
    assert len(items) == len({i["itemId"] for i in items})
    assert done["counts"]["total"] == len(items)
    for key, objects in deleted.items():
        prop = "name" if key == "settingsCatalog" else "displayName"
        names = _names(stack, tenant, key, prop)
        assert all(names[str(o[prop])] == 1 for o in objects), (key, names)

    since = time.time()
    second = admin.post(f"/tenants/{tenant}/restores", json={"backupSetId": set_id})
    assert wait_terminal(admin, second.headers["Location"], timeout=240)["status"] == "succeeded"
    log = stack.sim.get("/_sim/requests", params={"tenant": tenant, "since": str(since)}).json()["value"]
    assert [e for e in log if e["method"] in _WRITES] == []


def test_a_cancelled_restore_stops_writing_and_records_the_rest_skipped(own_stack: Stack) -> None:
    stack = own_stack
    tenant = stack.new_customer_tenant()
    admin, _ = stack.user(tenant, "admin")
    set_id = _backup(admin, tenant)
    for key in ("deviceConfiguration", "settingsCatalog", "compliancePolicy", "powerShellScript"):
        _delete_all_but_one(stack, tenant, key)
    stack.sim.put("/_sim/faults", json={"rules": [
        {"kind": "slow", "method": "POST", "tenant": tenant, "delaySeconds": 1.0},
    ]}).raise_for_status()
    try:
        started = admin.post(f"/tenants/{tenant}/restores", json={"backupSetId": set_id})
        run_id = started.json()["id"]
        deadline = time.monotonic() + 60
        # Cancelled while it writes: once the plan is made and the first items are applied.
        while not _items(admin, tenant, run_id):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        cancelled = admin.post(f"/tenants/{tenant}/runs/{run_id}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        cut = time.time()
        time.sleep(3)  # longer than a write in flight
    finally:
        stack.sim.delete("/_sim/faults")
    log = stack.sim.get("/_sim/requests", params={"tenant": tenant, "since": str(cut + 1.5)}).json()["value"]
    assert [e for e in log if e["method"] in _WRITES] == []
    done = admin.get(f"/tenants/{tenant}/runs/{run_id}").json()
    assert done["status"] == "cancelled"
    items = _items(admin, tenant, run_id)
    assert done["counts"]["skipped"] >= 1
    assert done["counts"]["total"] == len(items)
    assert admin.post(f"/tenants/{tenant}/runs/{run_id}/cancel").json()["status"] == "cancelled"
