"""A Power Automate style flow built on our custom connector, against the whole local stack.

The committed connector definition (connector/apiDefinition.swagger.json) is driven the way the Power
Platform runtime drives a connector: the tenant picker lists tenants, saving the flow registers the "When a
run finishes" trigger with the flow's callback URL (a receiver on loopback standing in for the flow's signed
trigger URL), the "Start a backup set" action is followed through ``Location`` until the run has ended, the
flow hears that run end, and deleting the flow deletes the subscription at the ``Location`` it was given.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest

from scripts import generate_connector as gen
from tests.e2e.conftest import Stack
from tests.logic_apps import Callback, CallbackReceiver

pytestmark = pytest.mark.e2e

JSON_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "object": dict,
              "array": list}


class ConnectorRuntime:
    """Calls the operations of a connector definition as the platform does, for one connection."""

    def __init__(self, definition: dict[str, Any], api_base_url: str, token: str) -> None:
        self.definition = definition
        origin = urlsplit(api_base_url)
        self.root = f"{origin.scheme}://{origin.netloc}{definition['basePath']}"
        self.client = httpx.Client(timeout=30.0, headers={"Authorization": f"Bearer {token}"})

    def operation(self, operation_id: str) -> tuple[str, str, dict[str, Any]]:
        for path, item in self.definition["paths"].items():
            for method, op in item.items():
                if isinstance(op, dict) and op.get("operationId") == operation_id:
                    return method, path, op
        raise AssertionError(f"the connector has no operation {operation_id}")

    def send(self, operation_id: str, path_params: dict[str, str], body: Any = None) -> httpx.Response:
        method, path, _ = self.operation(operation_id)
        url = self.root + path.format(**{k: quote(v, safe="") for k, v in path_params.items()})
        return self.client.request(method.upper(), url, json=body)

    def action(self, operation_id: str, path_params: dict[str, str], body: Any = None,
               timeout: float = 120.0) -> Any:
        """Run an action: a 202 with Location is polled, Retry-After apart, until it answers otherwise."""
        response = self.send(operation_id, path_params, body)
        deadline = time.monotonic() + timeout
        while response.status_code == 202 and "Location" in response.headers:
            assert time.monotonic() < deadline, f"{operation_id} still running after {timeout}s"
            time.sleep(float(response.headers.get("Retry-After", "20")))
            response = self.client.get(response.headers["Location"])
        assert response.is_success, response.text
        return response.json()

    def register(self, operation_id: str, path_params: dict[str, str], callback_url: str) -> httpx.Response:
        """Save a flow with this trigger: its body gets the callback URL and every internal default."""
        _, _, op = self.operation(operation_id)
        assert op["x-ms-trigger"] == "single"
        schema = next(p for p in op["parameters"] if p["in"] == "body")["schema"]
        body: dict[str, Any] = {}
        for name, prop in schema["properties"].items():
            if prop.get("x-ms-notification-url"):
                body[name] = callback_url
            elif prop.get("x-ms-visibility") == "internal" and "default" in prop:
                body[name] = prop["default"]
        return self.send(operation_id, path_params, body)

    def notification_schema(self, operation_id: str) -> dict[str, Any]:
        for item in self.definition["paths"].values():
            if any(isinstance(op, dict) and op.get("operationId") == operation_id for op in item.values()):
                schema = item["x-ms-notification-content"]["schema"]
                if "$ref" in schema:
                    schema = self.definition["definitions"][schema["$ref"].removeprefix("#/definitions/")]
                return dict(schema)
        raise AssertionError(f"no notification content for {operation_id}")


def _wait_for_event(receiver: CallbackReceiver, run_id: str, timeout: float = 60.0) -> list[Callback]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = [c for c in receiver.received if isinstance(c.body, dict) and c.body.get("runId") == run_id]
        if events:
            return events
        time.sleep(0.2)
    raise AssertionError(f"no event for {run_id} within {timeout}s: {receiver.bodies}")


def test_a_flow_on_the_connector_starts_a_backup_set_and_hears_it_finish(stack: Stack) -> None:
    definition = json.loads((gen.CONNECTOR_DIR / gen.DEFINITION_FILE).read_text(encoding="utf-8"))
    tenant = stack.new_customer_tenant()
    # Subscriptions are an admin's to manage, so the flow's connection is a tenant admin.
    maker, _ = stack.user(tenant, "admin", name="Flow Maker")
    runtime = ConnectorRuntime(definition, stack.info.api_base_url, maker.token)
    sig = secrets.token_urlsafe(24)

    # The tenant picker of every action lists the tenant by name.
    tenants = runtime.action("ListTenants", {})
    assert {t["tenantId"]: t["displayName"] for t in tenants["items"]}[tenant] == f"Customer {tenant[:8]}"

    with CallbackReceiver() as flow:
        callback = f"{flow.url}?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={sig}"
        registered = runtime.register("WhenARunFinishes", {"tenantId": tenant, "name": "flow-backup-report"},
                                      callback)
        assert registered.status_code == 201, registered.text
        assert sig not in registered.text  # the callback URL is a secret: never returned
        location = registered.headers["Location"]

        ended = runtime.action("StartBackupSet", {"tenantId": tenant}, {
            "name": "Started from a flow", "selection": {"types": ["deviceCategory"]}})
        assert ended["status"] == "succeeded"
        events = _wait_for_event(flow, ended["id"])

        # Only the end of the run reaches the flow (at least once: duplicates repeat the same event id).
        assert {e.body["type"] for e in events} == {"run.completed"}
        assert len({e.body["id"] for e in events}) == 1
        payload = events[0].body
        assert payload["status"] == "succeeded"
        assert payload["itemsTotal"] == ended["counts"]["total"]
        # The API posts to the URL exactly as the platform gave it, signature included.
        assert events[0].path.endswith(f"&sig={sig}")
        # Every field the trigger promises the designer is there, with the promised type.
        schema = runtime.notification_schema("WhenARunFinishes")
        for name in schema.get("required", []):
            assert name in payload, name
        for name, prop in schema["properties"].items():
            if name in payload and "type" in prop:
                assert isinstance(payload[name], JSON_TYPES[prop["type"]]), (name, payload[name])

        # Deleting the flow deletes the subscription where the registration said it lives.
        assert runtime.client.delete(location).status_code in (200, 204)
    names = [s["name"] for s in maker.get(f"/tenants/{tenant}/subscriptions").json()["items"]]
    assert "flow-backup-report" not in names
