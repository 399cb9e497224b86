"""Managed tenants and grants: register (``Platform.Admin``), list mine, grant and revoke roles."""

from __future__ import annotations

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from http_triggers._blueprint import bp
from http_triggers._support import caller, documented, json_response, problem_responses, read_json
from http_triggers._views import render_tenant
from shared import container
from shared.domain import Grant, GraphConnection, Role
from shared.errors import InvalidRequest
from shared.openapi import GUID_PATTERN
from shared.openapi_registry import ANY_CALLER, GRANT_ADMIN, PLATFORM_ADMIN, json_answer, no_content, query


class _Request(BaseModel):
    """Request bodies: camelCase, and unknown fields are refused (a misplaced secret is never stored)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class RegisterTenantRequest(_Request):
    """``PUT /api/tenants/{tenantId}``."""

    display_name: str = Field(min_length=1, max_length=256)
    graph: GraphConnection


class GrantRequest(_Request):
    """``PUT /api/tenants/{tenantId}/grants/{principalId}``.

    ``principalTenantId`` is the home tenant of the principal; it defaults to the caller's own.
    """

    role: Role
    principal_tenant_id: str | None = Field(default=None, max_length=36)


def _principal_tenant_id(req: func.HttpRequest, from_body: str | None = None) -> str | None:
    """The principal's home tenant from the body or the ``principalTenantId`` query parameter."""
    from_query = req.params.get("principalTenantId") or None
    if from_body and from_query and from_body.lower() != from_query.lower():
        raise InvalidRequest("principalTenantId differs between the query and the body")
    return from_body or from_query


def _render_grant(grant: Grant) -> dict[str, object]:
    return grant.model_dump(mode="json", by_alias=True)


@documented("Register or update a managed tenant (Platform.Admin)",
            ok={"200": json_answer("updated", "Tenant"), "201": json_answer("registered", "Tenant")},
            role=PLATFORM_ADMIN, body=RegisterTenantRequest)
@bp.route(route="tenants/{tenantId}", methods=["PUT"])
@problem_responses
def register_tenant(req: func.HttpRequest) -> func.HttpResponse:
    """Register or update a managed tenant; 201 when new, 200 when updated."""
    principal = caller(req)
    service = container.tenant_service()
    service.require_platform_admin(principal)  # authorise before the body is parsed
    body = read_json(req, RegisterTenantRequest)
    tenant_id = req.route_params["tenantId"].lower()
    tenant, created = service.register(principal=principal, tenant_id=tenant_id,
                                       display_name=body.display_name, graph=body.graph)
    return json_response(render_tenant(tenant), status=201 if created else 200)


@documented("Tenants the caller has a grant on, with its role",
            ok={"200": json_answer("tenants", "TenantList")}, role=ANY_CALLER)
@bp.route(route="tenants", methods=["GET"])
@problem_responses
def list_tenants(req: func.HttpRequest) -> func.HttpResponse:
    """The tenants the caller has a grant on, with the caller's role."""
    accessible = container.tenant_service().list_for(caller(req))
    return json_response({"items": [render_tenant(a.tenant, a.role) for a in accessible]})


@documented("Every grant on the tenant (admin)", ok={"200": json_answer("grants", "GrantList")},
            role=GRANT_ADMIN)
@bp.route(route="tenants/{tenantId}/grants", methods=["GET"])
@problem_responses
def list_grants(req: func.HttpRequest) -> func.HttpResponse:
    """Every grant on the tenant (admin of the tenant, or ``Platform.Admin``)."""
    grants = container.tenant_service().list_grants(principal=caller(req),
                                                    tenant_id=req.route_params["tenantId"])
    return json_response({"items": [_render_grant(g) for g in grants]})


# 403 also when the principal is the caller (nobody changes their own role); 409 when the grant kept
# changing under a concurrent change.
@documented("Grant a role (admin); audited", ok={"200": json_answer("granted", "Grant")}, role=GRANT_ADMIN,
            params=(query("principalTenantId", {"type": "string", "pattern": GUID_PATTERN},
                          "home tenant of the principal; by default the caller's"),),
            body=GrantRequest, errors=frozenset({409}))
@bp.route(route="tenants/{tenantId}/grants/{principalId}", methods=["PUT"])
@problem_responses
def put_grant(req: func.HttpRequest) -> func.HttpResponse:
    """Give a principal a role on the tenant (admin of the tenant, or ``Platform.Admin``); audited."""
    principal = caller(req)
    # Authorise before the body is parsed: a stranger gets the same 404 whatever it sends.
    container.access_service().require_grant_admin(principal, req.route_params["tenantId"])
    body = read_json(req, GrantRequest)
    grant = container.tenant_service().put_grant(
        principal=principal, tenant_id=req.route_params["tenantId"],
        principal_id=req.route_params["principalId"], role=body.role,
        principal_tenant_id=_principal_tenant_id(req, body.principal_tenant_id))
    return json_response(_render_grant(grant))


@documented("Revoke a role (admin); 204 whether or not it existed; audited",
            ok={"204": no_content("revoked")}, role=GRANT_ADMIN,
            params=(query("principalTenantId", {"type": "string", "pattern": GUID_PATTERN},
                          "home tenant of the principal; by default the caller's"),),
            errors=frozenset({409}))
@bp.route(route="tenants/{tenantId}/grants/{principalId}", methods=["DELETE"])
@problem_responses
def delete_grant(req: func.HttpRequest) -> func.HttpResponse:
    """Revoke a principal's role (204 whether or not it existed); audited when it existed."""
    container.tenant_service().delete_grant(
        principal=caller(req), tenant_id=req.route_params["tenantId"],
        principal_id=req.route_params["principalId"], principal_tenant_id=_principal_tenant_id(req))
    return func.HttpResponse(status_code=204)
