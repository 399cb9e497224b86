"""``GET /api/policy-types``: the catalog of policy types, for any authenticated caller."""

from __future__ import annotations

import azure.functions as func

from http_triggers._blueprint import bp
from http_triggers._support import caller, documented, json_response, problem_responses
from http_triggers._views import render_policy_types
from shared.graph.catalog import CATALOG
from shared.openapi_registry import ANY_CALLER, json_answer


@documented("The policy type catalog: Graph route, permissions and what a restore can do with each",
            ok={"200": json_answer("policy types, sorted by key", "PolicyTypeList")}, role=ANY_CALLER)
@bp.route(route="policy-types", methods=["GET"])
@problem_responses
def list_policy_types(req: func.HttpRequest) -> func.HttpResponse:
    """Every policy type we capture, with its Graph route, permissions and what a restore can do with it."""
    caller(req)  # the catalog is the same for everyone, but only callers with a valid token may read it
    return json_response(render_policy_types(CATALOG.values()))
