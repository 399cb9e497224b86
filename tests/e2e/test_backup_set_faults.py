"""A backup set of a generated tenant while a fifth of Graph requests fail: nothing lost, nothing twice.

The smaller sibling of ``python -m benchmarks.backup_set_capture --policies 5000 --faults 0.2``: a generated
tenant of 200 policies (settings catalog policies of up to 45 settings, so their settings come in
several pages), backed up once cleanly and once with seeded faults on 20% of its Graph requests, split
evenly between 429 with ``Retry-After``, 429 without a usable one, 503, 504 and connection resets (the
benchmark's :func:`~benchmarks.backup_set_capture.fault_rules`).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from benchmarks.backup_set_capture import FAULT_SEED, fault_rules
from localdev.stack import create_customer_tenant, tenant_registration
from shared.domain.normalise import normalise
from shared.graph.catalog import CATALOG
from shared.services.capture import POLICY_NORMAL_FORM
from tests.e2e.conftest import Api, Stack, wait_terminal

pytestmark = pytest.mark.e2e

POLICIES = 200
FAULT_RATE = 0.2
# Types whose simulator record is not the object Graph serves: the simulator keeps private references
# (``_definitionId``, ``_presentationId``, ``_categoryId``) that it expands on read, navigation collections
# the catalog does not read (``acceptanceStatuses``, ``referencingConfigurationPolicies``), or a secret that
# Graph never returns (a VPP token). Their captures are compared with the clean capture instead.
_SERVED_DIFFERENTLY = frozenset({"administrativeTemplate", "endpointSecurityIntent", "reusablePolicySetting",
                                 "roleAssignment", "termsAndConditions", "vppToken"})


def _generated_tenant(stack: Stack) -> str:
    tenant_id = str(uuid.uuid4())
    name = f"Generated {tenant_id[:8]}"
    create_customer_tenant(stack.sim, tenant_id=tenant_id, secret=stack.demo_secret, display_name=name,
                           preset="generated", seed=11, policies=POLICIES)
    response = stack.admin().put(f"/tenants/{tenant_id}", json=tenant_registration(name))
    assert response.status_code in (200, 201), response.text
    return tenant_id


def _back_up(api: Api, tenant: str, name: str) -> tuple[str, dict[str, Any]]:
    started = api.post(f"/tenants/{tenant}/backup-sets", json={"name": name, "selection": {"all": True}})
    assert started.status_code == 202, started.text
    done = wait_terminal(api, started.headers["Location"], timeout=150)
    return str(started.json()["backupSet"]["id"]), done


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


def _captured(api: Api, tenant: str, set_id: str, item_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Every item's captured JSON, normalised, read a few at a time."""
    with api.client() as client, ThreadPoolExecutor(max_workers=6) as pool:
        def read(item_id: str) -> tuple[str, dict[str, Any]]:
            response = client.get(f"/tenants/{tenant}/backup-sets/{set_id}/items/{item_id}")
            assert response.status_code == 200, (item_id, response.text)
            return item_id, normalise(response.json(), POLICY_NORMAL_FORM)
        return dict(pool.map(read, item_ids))


def test_a_fifth_of_graph_requests_failing_loses_and_duplicates_no_item(stack: Stack) -> None:
    tenant = _generated_tenant(stack)
    operator, _ = stack.user(tenant, "operator")
    clean_id, clean = _back_up(operator, tenant, "clean")
    assert clean["status"] == "succeeded", clean

    rules = fault_rules(tenant, FAULT_RATE)
    stack.sim.put("/_sim/faults", json={"rules": rules, "seed": FAULT_SEED}).raise_for_status()
    try:
        set_id, run = _back_up(operator, tenant, "under faults")
        fired = stack.sim.get("/_sim/faults").json()["rules"]
    finally:
        stack.sim.delete("/_sim/faults")

    # The faults happened, at the rate asked, of every kind.
    matched = fired[0]["matched"]
    assert all(rule["fired"] > 0 for rule in fired), fired
    assert 0.15 < sum(rule["fired"] for rule in fired) / matched < 0.25, fired

    held = {f"{key}:{obj['id']}": obj for key in CATALOG
            for obj in stack.sim.get(f"/_sim/tenants/{tenant}/objects/{key}").json()["value"]}
    live = operator.get(f"/tenants/{tenant}/policies")
    assert live.status_code == 200, live.text
    listed = {f"{p['policyType']}:{p['id']}" for p in live.json()["items"]}
    assert len(listed) > POLICIES
    assert listed <= set(held)

    # Nothing lost, nothing twice: in the run, in the set, in the counts.
    assert run["status"] == "succeeded", run
    run_items = _paged(operator, f"/tenants/{tenant}/runs/{run['id']}/items")
    run_ids = [i["itemId"] for i in run_items]
    assert sorted(run_ids) == sorted(listed)
    assert all(i["status"] == "succeeded" for i in run_items)
    set_items = _paged(operator, f"/tenants/{tenant}/backup-sets/{set_id}")
    set_ids = [i["itemId"] for i in set_items]
    assert sorted(set_ids) == sorted(listed)
    assert run["counts"] == {"total": len(listed), "succeeded": len(listed), "failed": 0, "skipped": 0}
    assert all(i["status"] == "captured" and i["complete"] for i in set_items)
    backup_set = operator.get(f"/tenants/{tenant}/backup-sets/{set_id}").json()
    assert backup_set["status"] == "complete"
    assert backup_set["itemCount"] == backup_set["capturedCount"] == len(listed)
    assert backup_set["changes"] == {"new": 0, "changed": 0, "unchanged": len(listed), "deleted": 0}

    # Every item whole: what the simulator holds, and what the clean capture holds, after normalisation.
    under_faults = _captured(operator, tenant, set_id, set_ids)
    without = _captured(operator, tenant, clean_id, set_ids)
    assert under_faults == without
    paged = [body for item_id, body in under_faults.items()
             if item_id.startswith("settingsCatalog:") and len(body["settings"]) > 25]
    assert paged, "some settings catalog policies have more than one page of settings"
    compared = Counter[str]()
    for item_id, body in under_faults.items():
        policy_type = item_id.split(":", 1)[0]
        if policy_type in _SERVED_DIFFERENTLY:
            continue
        expected = normalise(held[item_id], POLICY_NORMAL_FORM)
        assert body == expected, (item_id, json.dumps(body)[:400], json.dumps(expected)[:400])
        compared[policy_type] += 1
    assert len(compared) >= 40, compared
