"""Nothing Graph or Entra sends back as text is kept: planted secrets of many shapes, in Graph errors of every
status, Entra token errors and activity exceptions, never reach an API response, a table, a blob, a queue
or a log of ours; the runs still fail with our stable codes and our own words."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from tests.e2e.conftest import Api, Stack, wait_terminal
from tests.planted_upstream_text import PLANTED, leaks, planted_message

pytestmark = pytest.mark.e2e

# Graph's own wording in the simulator's 403 and 404 answers: free text, so it must not be repeated either.
GRAPH_WORDS = ("Application is not authorized", "fef.msub03", "Resource not found")


def _snapshot(api: Api, tenant: str, policy_type: str, policy_id: str) -> str:
    started = api.post(f"/tenants/{tenant}/policies/{policy_type}/{policy_id}/snapshots")
    assert started.status_code == 202, started.text
    return str(started.headers["Location"])


def _sim_ids(stack: Stack, tenant: str, type_key: str) -> list[str]:
    # Straight from the simulator, so our app holds no token for the tenant before the faults are set.
    objects = stack.sim.get(f"/_sim/tenants/{tenant}/objects/{type_key}")
    objects.raise_for_status()
    return [str(o["id"]) for o in objects.json()["value"]]


def _storage_text(connection_string: str) -> str:
    """Every table entity, blob and queue message of the storage account, as text."""
    parts: list[str] = []
    tables = TableServiceClient.from_connection_string(connection_string)
    for table in tables.list_tables():
        for entity in tables.get_table_client(table.name).list_entities():
            parts.append(json.dumps(dict(entity), default=str))
    blobs = BlobServiceClient.from_connection_string(connection_string)
    for container in blobs.list_containers():
        client = blobs.get_container_client(container.name)
        for blob in client.list_blobs():
            parts.append(client.download_blob(blob.name).readall().decode("utf-8", errors="replace"))
    queues = QueueServiceClient.from_connection_string(connection_string)
    for queue in queues.list_queues():
        for message in queues.get_queue_client(queue.name).peek_messages(max_messages=32):
            parts.append(str(message.content))
    return "\n".join(parts)


def test_planted_upstream_text_never_reaches_responses_storage_or_logs(
    stack: Stack, azurite_connection_string: str,
) -> None:
    graph_tenant = stack.new_customer_tenant()
    entra_tenant = stack.new_customer_tenant()
    # A tenant of its own for planted 403, 404 and 409 answers (the demo data has three categories).
    status_tenant = stack.new_customer_tenant()
    api, oid = stack.user(graph_tenant, "operator")
    stack.grant(entra_tenant, oid, "operator")
    stack.grant(status_tenant, oid, "operator")
    categories = _sim_ids(stack, graph_tenant, "deviceCategory")
    scripts = _sim_ids(stack, graph_tenant, "powerShellScript")
    mam = _sim_ids(stack, graph_tenant, "appProtectionPolicy")[0]
    entra_category = _sim_ids(stack, entra_tenant, "deviceCategory")[0]
    status_categories = _sim_ids(stack, status_tenant, "deviceCategory")
    message = planted_message()

    def rule(kind: str, path: str, tenant: str = graph_tenant, **more: Any) -> dict[str, Any]:
        return {"kind": kind, "path": path, "tenant": tenant, "message": message, **more}

    stack.sim.put("/_sim/faults", json={"rules": [
        rule("400", f"deviceCategories/{categories[0]}"),
        rule("500", f"deviceCategories/{categories[1]}"),
        rule("503", f"deviceCategories/{categories[2]}", retryAfter=1),
        rule("502", f"deviceManagementScripts/{scripts[0]}"),
        # Graph's own 403 (no permission) wording, and Entra refusing the secret with planted text.
        {"kind": "403", "path": f"deviceManagementScripts/{scripts[1]}", "tenant": graph_tenant},
        rule("401-expired", "oauth2/v2.0/token", tenant=entra_tenant),
        # Planted text in Graph's 403 (flat), 404 (Intune's JSON record in `message`) and 409 answers.
        rule("403", f"deviceCategories/{status_categories[0]}", tenant=status_tenant),
        rule("404", f"deviceCategories/{status_categories[1]}", tenant=status_tenant),
        rule("409", f"deviceCategories/{status_categories[2]}", tenant=status_tenant),
    ]}).raise_for_status()
    # Graph's answer itself makes an activity raise: an @odata.type our catalog does not know ends up in the
    # text of the exception the capture raises.
    stack.sim.post(f"/_sim/tenants/{graph_tenant}/mutations", json={
        "op": "edit", "type": "appProtectionPolicy", "id": mam,
        "patch": {"@odata.type": PLANTED["random40"][0]}}).raise_for_status()

    responses: list[str] = []
    try:
        monitors = {
            "400": _snapshot(api, graph_tenant, "deviceCategory", categories[0]),
            "500": _snapshot(api, graph_tenant, "deviceCategory", categories[1]),
            "503": _snapshot(api, graph_tenant, "deviceCategory", categories[2]),
            "502": _snapshot(api, graph_tenant, "powerShellScript", scripts[0]),
            "403": _snapshot(api, graph_tenant, "powerShellScript", scripts[1]),
            "404": _snapshot(api, graph_tenant, "deviceCategory", "00000000-0000-4000-8000-0000000d0e5e"),
            "activity": _snapshot(api, graph_tenant, "appProtectionPolicy", mam),
            "entra": _snapshot(api, entra_tenant, "deviceCategory", entra_category),
            "planted-403": _snapshot(api, status_tenant, "deviceCategory", status_categories[0]),
            "planted-404": _snapshot(api, status_tenant, "deviceCategory", status_categories[1]),
            "planted-409": _snapshot(api, status_tenant, "deviceCategory", status_categories[2]),
        }
        with ThreadPoolExecutor(max_workers=len(monitors)) as pool:
            done = dict(zip(monitors, pool.map(lambda url: wait_terminal(api, url, timeout=150),
                                               monitors.values()), strict=True))
        # The live listings answer while Graph and Entra still fail.
        for tenant in (graph_tenant, entra_tenant, status_tenant):
            for params in ({"type": "deviceCategory"}, {"type": "powerShellScript"}, {}):
                listing = api.get(f"/tenants/{tenant}/policies", params=params)
                responses.append(listing.text)
    finally:
        stack.sim.delete("/_sim/faults")

    codes = {case: (run["status"], run["failure"]["code"]) for case, run in done.items()}
    assert codes == {
        "400": ("failed", "graph-bad-request"),
        "500": ("failed", "graph-server-error"),
        "503": ("failed", "graph-throttled"),
        "502": ("failed", "graph-server-error"),
        "403": ("failed", "graph-permission-missing"),
        "404": ("failed", "policy-not-found"),
        "activity": ("failed", "internal-error"),
        "entra": ("failed", "graph-auth-failed"),
        "planted-403": ("failed", "graph-permission-missing"),
        "planted-404": ("failed", "policy-not-found"),
        "planted-409": ("failed", "graph-conflict"),
    }
    assert done["400"]["failure"]["httpStatus"] == 400
    assert done["400"]["failure"]["graphCode"] == "BadRequest"
    assert done["entra"]["failure"]["aadsts"] == "AADSTS7000215"
    # Graph's structured facts survive where its text does not: the run's failure and its item's error.
    for status, graph_code in ((403, "Forbidden"), (404, "ResourceNotFound"), (409, "Conflict")):
        run = done[f"planted-{status}"]
        assert (run["failure"]["httpStatus"], run["failure"]["graphCode"]) == (status, graph_code)
        items = api.get(f"/tenants/{status_tenant}/runs/{run['id']}/items")
        assert items.status_code == 200, items.text
        [item] = items.json()["items"]
        assert item["error"]["code"] == run["failure"]["code"]
        assert item["error"]["httpStatus"] == status

    tenant_of = {"entra": entra_tenant, "planted-403": status_tenant, "planted-404": status_tenant,
                 "planted-409": status_tenant}
    for case, run in done.items():
        tenant = tenant_of.get(case, graph_tenant)
        base = f"/tenants/{tenant}/runs/{run['id']}"
        for path in (base, f"{base}/monitor", f"{base}/items", f"/tenants/{tenant}/runs"):
            responses.append(api.get(path).text)
    responses.append(json.dumps(done))
    for path in ("/notifications", "/progress"):
        responses.append(api.get(path).text)

    api_text = "\n".join(responses)
    storage_text = _storage_text(azurite_connection_string)
    # The simulator's own log is Graph's side (it knows what it said); every process of ours is searched.
    logs = {name: Path(path).read_text(errors="replace") for name, path in stack.info.logs.items()
            if name != "graphsim"}
    assert logs, "no log of ours to search"
    for where, text in [("API responses", api_text), ("storage", storage_text), *logs.items()]:
        assert leaks(text) == [], f"planted upstream text in {where}"
        assert [w for w in GRAPH_WORDS if w in text] == [], f"Graph's free text in {where}"
    # The failures were recorded (so the search looked at rows that exist), in our words only.
    assert done["activity"]["id"] in storage_text
    assert "capture_policy failed: internal-error" in storage_text

