"""A tenant holding every catalog type, backed up whole through the public API: every item complete and equal
to what Graph holds for it.

The generated preset spreads its objects round-robin over the types; the size and seed below are the smallest
found that give every type (both WIP flavours and both Apple update platforms included) at least one object,
which the test asserts first so a catalog type the preset does not seed fails here instead of going untested.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from localdev.stack import create_customer_tenant, tenant_registration
from shared.graph.catalog import CATALOG
from tests.e2e.conftest import Api, Stack, wait_terminal
from tests.sim_compare import capture_differences, held_by_id

pytestmark = pytest.mark.e2e

GENERATED_POLICIES = 77
GENERATED_SEED = 36


def _generated_tenant(stack: Stack) -> str:
    tenant_id = str(uuid.uuid4())
    name = f"Every type {tenant_id[:8]}"
    create_customer_tenant(stack.sim, tenant_id=tenant_id, secret=stack.demo_secret, display_name=name,
                           preset="generated", seed=GENERATED_SEED, policies=GENERATED_POLICIES)
    response = stack.admin().put(f"/tenants/{tenant_id}", json=tenant_registration(name))
    assert response.status_code in (200, 201), response.text
    return tenant_id


def _set_items(api: Api, tenant: str, set_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"top": 200}
    while True:
        response = api.get(f"/tenants/{tenant}/backup-sets/{set_id}", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["items"])
        if not body["continuation"]:
            return items
        params["continuation"] = body["continuation"]


def test_every_item_of_a_tenant_with_every_type_is_complete_and_equals_graphs_object(stack: Stack) -> None:
    tenant = _generated_tenant(stack)
    cache: dict[str, list[dict[str, Any]]] = {}

    def held(key: str) -> list[dict[str, Any]]:
        if key not in cache:
            cache[key] = stack.objects(tenant, key)
        return cache[key]

    expected = {key: held_by_id(held(key), policy_type) for key, policy_type in CATALOG.items()}
    assert [key for key, objects in expected.items() if not objects] == []

    operator, _ = stack.user(tenant, "operator", name="Olivia Operator")
    started = operator.post(f"/tenants/{tenant}/backup-sets",
                            json={"name": "every type", "selection": {"all": True}})
    assert started.status_code == 202, started.text
    run = wait_terminal(operator, started.headers["Location"], timeout=120)
    assert run["status"] == "succeeded", run
    set_id = started.json()["backupSet"]["id"]

    items = _set_items(operator, tenant, set_id)
    assert sorted(i["itemId"] for i in items) == sorted(
        f"{key}:{object_id}" for key, objects in expected.items() for object_id in objects)
    assert {i["policyType"] for i in items} == set(CATALOG)
    not_captured = [(i["itemId"], i["status"], i["complete"]) for i in items
                    if i["status"] != "captured" or not i["complete"]]
    assert not_captured == []

    differing: dict[str, list[str]] = {}
    for item in items:
        policy_type = CATALOG[item["policyType"]]
        response = operator.get(f"/tenants/{tenant}/backup-sets/{set_id}/items/{item['itemId']}")
        assert response.status_code == 200, (item["itemId"], response.text)
        body = response.json()
        graph_object = expected[policy_type.key][item["sourceId"]]
        found = capture_differences(body, graph_object, policy_type, held)
        if found:
            differing[item["itemId"]] = found
        for secret in policy_type.redact_on_capture:
            assert graph_object[secret], (item["itemId"], secret)  # Graph sends the secret...
            assert body[secret] is None, (item["itemId"], secret)  # ...the backup never keeps it
    assert differing == {}
    # Backup-only types are captured like the others (their capture is the whole point of keeping them).
    backup_only = {i["policyType"] for i in items if CATALOG[i["policyType"]].backup_only is not None}
    assert backup_only == {k for k, t in CATALOG.items() if t.backup_only is not None}
