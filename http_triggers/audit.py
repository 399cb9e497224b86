"""A managed tenant's audit trail: who changed what, and when."""

from __future__ import annotations

import azure.functions as func

from http_triggers._blueprint import bp
from http_triggers._support import caller, documented, json_response, problem_responses, query_int
from shared import container
from shared.domain import Role
from shared.openapi_registry import CONTINUATION, json_answer, query, top


@documented("Audit events, newest first (reader)", ok={"200": json_answer("audit events", "AuditPage")},
            role=Role.READER, params=(query("runId", {"type": "string"}, "only events linked to this run"),
                                      top(default=50, maximum=200), CONTINUATION))
@bp.route(route="tenants/{tenantId}/audit", methods=["GET"])
@problem_responses
def list_audit(req: func.HttpRequest) -> func.HttpResponse:
    """Audit events of the tenant, newest first (reader), optionally of one run, with a continuation."""
    principal = caller(req)
    # Authorise before the query is validated: a stranger gets the same 404 whatever it asks for.
    grant = container.access_service().require(principal, req.route_params["tenantId"], Role.READER)
    page = container.audit_service().list(
        principal=principal, tenant_id=grant.tenant_id,
        run_id=req.params.get("runId") or None, top=query_int(req, "top", default=50),
        continuation=req.params.get("continuation") or None)
    return json_response({"items": [e.model_dump(mode="json", by_alias=True) for e in page.items],
                          "continuation": page.continuation})
