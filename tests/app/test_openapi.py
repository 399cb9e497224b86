"""The OpenAPI document matches what the API renders."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from http_triggers._views import render_run
from shared.domain import CreatedBy, RunKind, RunRecord, RunStatus, RunTarget
from shared.openapi import openapi_document


def test_document_describes_every_contract_route_we_serve() -> None:
    doc = openapi_document()
    assert doc["openapi"].startswith("3.")
    for path in ("/api/tenants/{tenantId}/policies/{policyType}/{policyId}/snapshots",
                 "/api/tenants/{tenantId}/runs/{runId}/monitor", "/api/progress", "/api/notifications"):
        assert path in doc["paths"]
    post = doc["paths"]["/api/tenants/{tenantId}/policies/{policyType}/{policyId}/snapshots"]["post"]
    assert set(post["responses"]["202"]["headers"]) == {"Location", "Retry-After"}


def test_run_schema_lists_exactly_the_fields_a_rendered_run_has() -> None:
    run = RunRecord(id="run_1", tenant_id="t", kind=RunKind.POLICY_CAPTURE,
                    target=RunTarget(policy_type="settingsCatalog", policy_id="p"),
                    created_by=CreatedBy(id="o", name="n"), created_at=datetime(2026, 1, 1, tzinfo=UTC),
                    derived_key="k" * 64)
    rendered = render_run(run, "https://app/api")
    schema = openapi_document()["components"]["schemas"]["Run"]
    assert set(schema["properties"]) == set(rendered)
    assert "derivedKey" not in rendered


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    paths = openapi_document()["paths"]
    return [(path, method, op) for path, item in paths.items() for method, op in item.items()]


def test_document_has_exactly_the_http_routes_the_app_registers() -> None:
    from function_app import app

    served = set()
    for function in app.get_functions():
        trigger = function.get_trigger()
        if trigger is not None and trigger.type == "httpTrigger":
            served |= {(f"/api/{trigger.route}", str(m.value if hasattr(m, "value") else m).lower())
                       for m in trigger.methods}

    assert {(path, method) for path, method, _ in _operations()} == served


def test_every_error_answer_is_declared_as_problem_json_with_its_headers() -> None:
    for path, method, op in _operations():
        responses = op["responses"]
        secured = op["security"] == [{"entra": []}]
        assert secured == (path not in ("/api/health", "/api/openapi.json", "/api/progress/page")), path
        expected = {"401", "503"} if secured else set()
        if "requestBody" in op:
            expected |= {"400", "413", "415"}
        if "{tenantId}" in path:
            expected.add("404")
        assert expected <= set(responses), (method, path, sorted(responses))
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                assert response["content"] == {"application/problem+json": {
                    "schema": {"$ref": "#/components/schemas/Problem"}}}, (method, path, status)
            elif status != "204":
                media = "text/html" if path == "/api/progress/page" else "application/json"
                assert media in response["content"], (method, path, status)
        if secured:
            assert responses["401"]["headers"]["WWW-Authenticate"]["required"] is True
            assert responses["503"]["headers"]["Retry-After"]["required"] is True
    assert openapi_document()["components"]["securitySchemes"]["entra"]["scheme"] == "bearer"


def test_parameters_carry_the_constraints_the_server_enforces() -> None:
    def param(path: str, name: str) -> dict[str, Any]:
        op = openapi_document()["paths"][path]["get" if "grants/" not in path else "put"]
        return next(p["schema"] for p in op["parameters"] if p["name"] == name)

    runs = "/api/tenants/{tenantId}/runs"
    assert (param(runs, "top")["minimum"], param(runs, "top")["maximum"]) == (1, 200)
    assert param("/api/tenants/{tenantId}/runs/{runId}/items", "top")["maximum"] == 1000
    assert set(param(runs, "status")["enum"]) == {s.value for s in RunStatus}
    guid = re.compile(param(runs, "tenantId")["pattern"])
    assert guid.fullmatch(str(uuid.uuid4()))
    assert not guid.fullmatch("tenant")
    assert param("/api/tenants/{tenantId}/grants/{principalId}", "principalId")["pattern"] == guid.pattern
