"""The sample Logic App (docs/logic-app-nightly-backup.json) calls only routes our API serves, with bodies and
headers the API accepts, and keeps the behaviour the API relies on (idempotent starts, the async pattern)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from openapi_schema_validator import OAS31Validator

from shared.openapi import openapi_document
from tests.logic_apps import WorkflowRun

SAMPLE = Path(__file__).resolve().parents[2] / "docs" / "logic-app-nightly-backup.json"
API_BASE = "https://app.example.net/api"
TENANT = "11111111-2222-3333-4444-555555555555"
# The ended run as the monitor returns it: what the actions after the start read.
ENDED_RUN = {"id": "run_1", "status": "succeeded", "counts": {"total": 3, "succeeded": 3, "failed": 0},
             "finishedAt": "2026-01-01T02:05:00Z",
             "links": {"self": f"{API_BASE}/tenants/{TENANT}/runs/run_1"}}


def _sample() -> dict[str, Any]:
    return dict(json.loads(SAMPLE.read_text(encoding="utf-8")))


def _run(sample: dict[str, Any]) -> WorkflowRun:
    run = WorkflowRun(definition=sample["definition"], run_name="08584000000000000000000000000CU00",
                      token_for=lambda audience: "token",
                      parameters={"apiBaseUrl": API_BASE, "tenantId": TENANT, "functionKey": "key",
                                  "outcomeUrl": "https://flow.example.net/trigger"})
    run.outputs["Start_backup_set"] = {"statusCode": 200, "headers": {}, "body": ENDED_RUN}
    return run


def _route(method: str, url: str) -> tuple[str, dict[str, Any]]:
    """The documented operation a call lands on."""
    path = "/api" + url.removeprefix(API_BASE).split("?", 1)[0]
    for template, item in openapi_document()["paths"].items():
        pattern = re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path) and method.lower() in item:
            return template, item[method.lower()]
    raise AssertionError(f"{method} {path} is not an operation of our API")


def test_every_call_to_our_api_is_a_documented_operation_with_a_valid_body() -> None:
    sample = _sample()
    run = _run(sample)
    called = []
    for name, action in sample["definition"]["actions"].items():
        assert action["type"] == "Http", name
        inputs = run.evaluate(action["inputs"])
        if not inputs["uri"].startswith(API_BASE):
            continue
        template, operation = _route(inputs["method"], inputs["uri"])
        called.append((inputs["method"], template))
        body = operation.get("requestBody")
        if body:
            schema = {**body["content"]["application/json"]["schema"],
                      "components": openapi_document()["components"]}
            errors = [e.message for e in OAS31Validator(schema).iter_errors(inputs["body"])]
            assert not errors, (name, errors)
        headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
        sent = set(inputs.get("headers", {})) - {"Content-Type", "x-functions-key"}
        assert sent <= headers, (name, sent - headers)
        # Our API takes Entra tokens: the workflow's managed identity, for the API's audience.
        assert inputs["authentication"] == {"type": "ManagedServiceIdentity", "audience": run.evaluate(
            "@parameters('apiAudience')")}, name
    assert called == [("POST", "/api/tenants/{tenantId}/backup-sets")]


def test_the_start_is_idempotent_and_waits_for_the_run_through_the_async_pattern() -> None:
    sample = _sample()
    start = sample["definition"]["actions"]["Start_backup_set"]
    # Logic Apps retries 408/429/5xx; the same run name on every retry makes those retries one backup.
    assert start["inputs"]["headers"]["Idempotency-Key"] == "@{workflow().run.name}"
    # The async pattern (follow Location, honour Retry-After) is on unless an action turns it off.
    assert "DisableAsyncPattern" not in start.get("operationOptions", "")
    assert re.fullmatch(r"PT\d+H", start["limit"]["timeout"])
    assert 1 <= start["inputs"]["retryPolicy"]["count"] <= 90
    # A function key goes in a header from a secure parameter, never in a URL.
    for action in sample["definition"]["actions"].values():
        assert "code=" not in action["inputs"]["uri"]


def test_the_outcome_is_posted_whichever_way_the_start_ends() -> None:
    sample = _sample()
    actions = sample["definition"]["actions"]
    after = {name: action["runAfter"].get("Start_backup_set", []) for name, action in actions.items()
             if name != "Start_backup_set"}
    assert set().union(*after.values()) >= {"Succeeded", "Failed", "TimedOut"}
    outcome = _run(sample).evaluate(actions["Post_outcome"]["inputs"]["body"])
    assert outcome["runId"] == "run_1"
    assert outcome["status"] == "succeeded"
    assert outcome["itemsSucceeded"] == 3
    assert outcome["runUrl"].endswith("/runs/run_1")


def test_the_definition_is_well_formed_and_holds_no_secret() -> None:
    sample = _sample()
    definition = sample["definition"]
    assert definition["$schema"].endswith("/2016-06-01/workflowdefinition.json#")
    assert definition["triggers"]["Every_night"]["type"] == "Recurrence"
    declared = definition["parameters"]
    text = SAMPLE.read_text(encoding="utf-8")
    for name in set(re.findall(r"parameters\('([^']+)'\)", text)):
        assert name in declared, name
    for name, parameter in declared.items():
        assert parameter["type"] in ("String", "SecureString", "Int", "Bool", "Object", "Array"), name
        if parameter["type"] == "SecureString":
            # Secrets come from the deployment (Key Vault), never from the file.
            assert "defaultValue" not in parameter, name
            assert name not in sample.get("parameters", {}), name
    for name, action in definition["actions"].items():
        for predecessor in action.get("runAfter", {}):
            assert predecessor in definition["actions"], (name, predecessor)
