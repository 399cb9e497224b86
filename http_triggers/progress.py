"""``GET /api/progress``: active and recently finished runs across every tenant the caller can read."""

from __future__ import annotations

import azure.functions as func

from http_triggers._blueprint import bp
from http_triggers._support import api_base_url, caller, documented, json_response, problem_responses
from http_triggers._views import render_progress
from shared import container
from shared.openapi_registry import ANY_CALLER, json_answer


@documented("Active and recent runs across the caller's tenants",
            ok={"200": json_answer("progress", "Progress")}, role=ANY_CALLER)
@bp.route(route="progress", methods=["GET"])
@problem_responses
def get_progress(req: func.HttpRequest) -> func.HttpResponse:
    """The global progress view, newest first."""
    tenant_ids = container.access_service().readable_tenant_ids(caller(req))
    entries = container.run_service().progress(tenant_ids=tenant_ids, now=container.utcnow())
    return json_response(render_progress(entries, api_base_url(req)))
