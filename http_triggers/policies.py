"""``GET /api/tenants/{tenantId}/policies?type=``: the tenant's policies, live from Graph."""

from __future__ import annotations

import asyncio
from typing import Any

import azure.functions as func

from http_triggers._blueprint import bp
from http_triggers._support import caller, documented, json_response, problem_responses
from http_triggers._views import render_policy
from shared import container
from shared.domain import Role
from shared.errors import AppError
from shared.graph.catalog import CATALOG
from shared.openapi_registry import json_answer, query
from shared.redaction import redact


# Graph refusing the app (403 naming the permission), failing (502) or throttling (503).
@documented("Live list of the tenant's policies (reader); without type, every type and per-type errors",
            ok={"200": json_answer("policies", "PolicyList")}, role=Role.READER,
            params=(query("type", {"enum": sorted(CATALOG)}, "catalog policy type"),),
            errors=frozenset({403, 502}))
@bp.route(route="tenants/{tenantId}/policies", methods=["GET"])
@problem_responses
async def list_policies(req: func.HttpRequest) -> func.HttpResponse:
    """Policies of one catalog type (``type=``), or of every type when it is omitted.

    Without ``type`` the answer also lists, per type, why it could not be read (``errors``).
    """
    principal = await asyncio.to_thread(caller, req)
    grant = await asyncio.to_thread(container.access_service().require, principal,
                                    req.route_params["tenantId"], Role.READER)
    requested = req.params.get("type")
    capture = container.capture_service()
    if requested:
        # One type: its failure is the answer (a 403 names the missing permission).
        summaries = await capture.list_policies(tenant_id=grant.tenant_id, policy_type=requested)
        return json_response({"items": [render_policy(p) for p in summaries]})
    # Every type: one type the app may not read must not hide all the others.
    types = list(CATALOG)
    lists = await asyncio.gather(*(capture.list_policies(tenant_id=grant.tenant_id, policy_type=t)
                                   for t in types), return_exceptions=True)
    items: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for type_key, outcome in zip(types, lists, strict=True):
        if isinstance(outcome, AppError):
            errors.append({"policyType": type_key, "code": outcome.instance_code,
                           "message": redact(outcome.detail)})
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            items.extend(render_policy(p) for p in outcome)
    return json_response({"items": items, "errors": errors})
