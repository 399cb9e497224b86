"""Managed tenants and grants: register (``Platform.Admin``), list mine, grant and revoke roles."""

from __future__ import annotations

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from http_triggers._blueprint import bp
from http_triggers._support import caller, json_response, problem_responses, read_json
from http_triggers._views import render_tenant
from shared import container
from shared.domain import GraphConnection, Role


class _Request(BaseModel):
    """Request bodies: camelCase, and unknown fields are refused (a misplaced secret is never stored)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class RegisterTenantRequest(_Request):
    """``PUT /api/tenants/{tenantId}``."""

    display_name: str = Field(min_length=1, max_length=256)
    graph: GraphConnection


class GrantRequest(_Request):
    """``PUT /api/tenants/{tenantId}/grants/{principalId}``."""

    role: Role


@bp.route(route="tenants/{tenantId}", methods=["PUT"])
@problem_responses
def register_tenant(req: func.HttpRequest) -> func.HttpResponse:
    """Register or update a managed tenant; 201 when new, 200 when updated."""
    principal = caller(req)
    body = read_json(req, RegisterTenantRequest)
    tenant_id = req.route_params["tenantId"].lower()
    existed = container.storage().tenants().get(tenant_id) is not None
    tenant = container.tenant_service().register(principal=principal, tenant_id=tenant_id,
                                                 display_name=body.display_name, graph=body.graph)
    return json_response(render_tenant(tenant), status=200 if existed else 201)


@bp.route(route="tenants", methods=["GET"])
@problem_responses
def list_tenants(req: func.HttpRequest) -> func.HttpResponse:
    """The tenants the caller has a grant on, with the caller's role."""
    accessible = container.tenant_service().list_for(caller(req))
    return json_response({"items": [render_tenant(a.tenant, a.role) for a in accessible]})


@bp.route(route="tenants/{tenantId}/grants/{principalId}", methods=["PUT"])
@problem_responses
def put_grant(req: func.HttpRequest) -> func.HttpResponse:
    """Give a principal a role on the tenant (admin of the tenant, or ``Platform.Admin``)."""
    principal = caller(req)
    body = read_json(req, GrantRequest)
    grant = container.tenant_service().put_grant(principal=principal, tenant_id=req.route_params["tenantId"],
                                                 principal_id=req.route_params["principalId"], role=body.role)
    return json_response(grant.model_dump(mode="json", by_alias=True))


@bp.route(route="tenants/{tenantId}/grants/{principalId}", methods=["DELETE"])
@problem_responses
def delete_grant(req: func.HttpRequest) -> func.HttpResponse:
    """Revoke a principal's role (204 whether or not it existed)."""
    container.tenant_service().delete_grant(principal=caller(req), tenant_id=req.route_params["tenantId"],
                                            principal_id=req.route_params["principalId"])
    return func.HttpResponse(status_code=204)
