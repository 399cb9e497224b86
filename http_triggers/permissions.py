"""``GET /api/tenants/{tenantId}/permissions``: which policy types the tenant's consent covers (reader)."""

from __future__ import annotations

import asyncio

import azure.functions as func

from http_triggers._blueprint import bp
from http_triggers._support import caller, documented, json_response, problem_responses
from shared import container
from shared.domain import Role
from shared.openapi_registry import json_answer
from shared.services.consent import render_consent


# 502 when Entra refuses or fails the token request (no consent at all, a wrong credential).
@documented("Per policy type, whether the tenant's consent covers capturing and restoring it, read from the "
            "app token before any run (reader)",
            ok={"200": json_answer("consent per type", "TenantPermissions")}, role=Role.READER,
            errors=frozenset({502}))
@bp.route(route="tenants/{tenantId}/permissions", methods=["GET"])
@problem_responses
async def tenant_permissions(req: func.HttpRequest) -> func.HttpResponse:
    """Per policy type, whether the tenant granted what capturing and restoring it need, before a run."""
    principal = await asyncio.to_thread(caller, req)
    grant = await asyncio.to_thread(container.access_service().require, principal,
                                    req.route_params["tenantId"], Role.READER)
    report = await container.consent_service().report(grant.tenant_id)
    return json_response(render_consent(grant.tenant_id, report))
