"""The OpenAPI document matches what the API renders."""

from __future__ import annotations

from datetime import UTC, datetime

from http_triggers._views import render_run
from shared.domain import CreatedBy, RunKind, RunRecord, RunTarget
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
