"""``GET /api/tenants/{tenantId}/policies?type=``: the tenant's policies, live from Graph."""

from __future__ import annotations

import asyncio

import azure.functions as func

from http_triggers._blueprint import bp
from http_triggers._support import caller, json_response, problem_responses
from shared import container
from shared.domain import Role
from shared.graph.catalog import CATALOG


@bp.route(route="tenants/{tenantId}/policies", methods=["GET"])
@problem_responses
async def list_policies(req: func.HttpRequest) -> func.HttpResponse:
    """Policies of one catalog type (``type=``), or of every type when it is omitted."""
    principal = await asyncio.to_thread(caller, req)
    grant = await asyncio.to_thread(container.access_service().require, principal,
                                    req.route_params["tenantId"], Role.READER)
    requested = req.params.get("type")
    types = [requested] if requested else list(CATALOG)
    capture = container.capture_service()
    lists = await asyncio.gather(*(capture.list_policies(tenant_id=grant.tenant_id, policy_type=t)
                                   for t in types))
    items = [{"id": p.id, "displayName": p.name, "policyType": p.type_key, "odataType": p.odata_type,
              "lastModifiedDateTime": p.last_modified}
             for summaries in lists for p in summaries]
    return json_response({"items": items})
