"""The OpenAPI document of the HTTP contract, generated from the same models the API renders."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from shared.domain import GraphConnection, ItemOutcome, Notification, Role
from shared.domain.runs import RunRecord
from shared.graph.catalog import CATALOG
from shared.version import VERSION

__all__ = ["INTERNAL_RUN_FIELDS", "openapi_document"]

# Bookkeeping that stays server-side: the derived key, recovery timestamps and the planned item count.
INTERNAL_RUN_FIELDS = frozenset({"derivedKey", "launchAttemptedAt", "launchedAt", "expectedItems", "scope"})
_REF = "#/components/schemas/"


def _schema(model: type[BaseModel], defs: dict[str, Any], *,
            drop: frozenset[str] = frozenset()) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, ref_template=_REF + "{model}")
    defs.update(schema.pop("$defs", {}))
    for name in drop:
        schema.get("properties", {}).pop(name, None)
        if name in schema.get("required", []):
            schema["required"].remove(name)
    return schema


def _json(ref: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": _REF + ref}}}}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/problem+json": {"schema": {"$ref": _REF + "Problem"}}}}


_ERRORS = {"400": _problem("Invalid request"), "401": _problem("Missing or invalid token"),
           "403": _problem("Role too low"), "404": _problem("Unknown, or not visible to the caller")}


def _page(item_ref: str) -> dict[str, Any]:
    return {"type": "object", "required": ["items"], "properties": {
        "items": {"type": "array", "items": {"$ref": _REF + item_ref}},
        "continuation": {"type": ["string", "null"]}}}


def _op(summary: str, ok: dict[str, Any], *, params: list[dict[str, Any]] | None = None,
        body: str | None = None, status: str = "200", extra: dict[str, Any] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "parameters": params or [],
                          "responses": {status: ok, **_ERRORS, **(extra or {})},
                          "security": [{"entra": []}]}
    if body:
        op["requestBody"] = {"required": True, **_json(body)}
    return op


def _path_param(name: str, description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"},
            "description": description}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the implemented routes."""
    defs: dict[str, Any] = {}
    run = _schema(RunRecord, defs, drop=INTERNAL_RUN_FIELDS)
    run["properties"]["reused"] = {"type": "boolean"}
    run["properties"]["links"] = {"type": "object", "additionalProperties": {"type": "string"}}
    schemas: dict[str, Any] = {
        "Run": run, "RunPage": _page("Run"),
        "ItemOutcome": _schema(ItemOutcome, defs), "ItemPage": _page("ItemOutcome"),
        "Notification": _schema(Notification, defs, drop=frozenset({"principalId"})),
        "NotificationPage": _page("Notification"),
        "GraphConnection": _schema(GraphConnection, defs),
        "RegisterTenant": {"type": "object", "required": ["displayName", "graph"],
                           "additionalProperties": False,
                           "properties": {"displayName": {"type": "string", "maxLength": 256},
                                          "graph": {"$ref": _REF + "GraphConnection"}}},
        "Grant": {"type": "object", "required": ["role"], "additionalProperties": False,
                  "properties": {"role": {"enum": [r.value for r in Role]}}},
        "Problem": {"type": "object", "required": ["type", "title", "status", "code"], "properties": {
            "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
            "detail": {"type": "string"}, "code": {"type": "string"}, "instance": {"type": "string"},
            "errors": {"type": "array", "items": {"type": "object"}}}},
        **defs,
    }
    tenant = _path_param("tenantId", "managed tenant id")
    run_id = _path_param("runId")
    accepted = {"description": "Run accepted (or the active run reused)", **_json("Run"),
                "headers": {"Location": {"schema": {"type": "string"}, "description": "monitor URL"},
                            "Retry-After": {"schema": {"type": "integer"}}}}
    paths: dict[str, Any] = {
        "/api/health": {"get": {"summary": "Liveness", "security": [],
                                "responses": {"200": {"description": "ok"}}}},
        "/api/openapi.json": {"get": {"summary": "This document", "security": [],
                                      "responses": {"200": {"description": "OpenAPI document"}}}},
        "/api/tenants": {"get": _op("Tenants the caller has a grant on", {"description": "tenants"})},
        "/api/tenants/{tenantId}": {"put": _op(
            "Register or update a managed tenant (Platform.Admin)", {"description": "updated"},
            params=[tenant], body="RegisterTenant", extra={"201": {"description": "registered"}})},
        "/api/tenants/{tenantId}/grants/{principalId}": {
            "put": _op("Grant a role (admin)", {"description": "granted"},
                       params=[tenant, _path_param("principalId")], body="Grant"),
            "delete": _op("Revoke a role (admin)", {"description": "revoked"},
                          params=[tenant, _path_param("principalId")], status="204")},
        "/api/tenants/{tenantId}/policies": {"get": _op(
            "Live list of the tenant's policies (reader)", {"description": "policies"},
            params=[tenant, _query("type", {"enum": sorted(CATALOG)})])},
        "/api/tenants/{tenantId}/policies/{policyType}/{policyId}/snapshots": {"post": _op(
            "Start a snapshot of one policy (operator)", accepted, status="202",
            params=[tenant, {**_path_param("policyType"), "schema": {"enum": sorted(CATALOG)}},
                    _path_param("policyId"),
                    {"name": "Idempotency-Key", "in": "header", "required": False,
                     "schema": {"type": "string", "maxLength": 255}}],
            extra={"422": _problem("Idempotency-Key reused with a different request")})},
        "/api/tenants/{tenantId}/runs": {"get": _op(
            "Runs, newest first (reader)", {"description": "runs", **_json("RunPage")},
            params=[tenant, _query("kind", {"type": "string"}), _query("status", {"type": "string"}),
                    _query("top", {"type": "integer", "minimum": 1, "maximum": 200}),
                    _query("continuation", {"type": "string"})])},
        "/api/tenants/{tenantId}/runs/{runId}": {"get": _op(
            "One run (reader)", {"description": "run", **_json("Run")}, params=[tenant, run_id])},
        "/api/tenants/{tenantId}/runs/{runId}/monitor": {"get": _op(
            "Poll until terminal: 202 while active, 200 when done (reader)",
            {"description": "terminal run", **_json("Run")}, params=[tenant, run_id],
            extra={"202": {**accepted, "description": "still active"}})},
        "/api/tenants/{tenantId}/runs/{runId}/items": {"get": _op(
            "Per-item outcomes (reader)", {"description": "items", **_json("ItemPage")},
            params=[tenant, run_id, _query("status", {"enum": ["succeeded", "failed", "skipped"]}),
                    _query("top", {"type": "integer"}), _query("continuation", {"type": "string"})])},
        "/api/progress": {"get": _op("Active and recent runs across the caller's tenants",
                                     {"description": "progress"})},
        "/api/notifications": {"get": _op(
            "The caller's notifications", {"description": "notifications", **_json("NotificationPage")},
            params=[_query("unread", {"type": "boolean"})])},
        "/api/notifications/{notificationId}/read": {"post": _op(
            "Mark a notification read", {"description": "read"}, params=[_path_param("notificationId")])},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Intune backup and restore API", "version": VERSION},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"entra": {
            "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": "Entra ID access token for the API's app registration"}}},
    }
