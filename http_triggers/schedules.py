"""A tenant's backup schedule and retention: put, get, delete."""

from __future__ import annotations

import azure.functions as func

from http_triggers._blueprint import bp
from http_triggers._support import caller, documented, json_response, problem_responses, read_json
from shared import container
from shared.domain import Role
from shared.domain.schedules import BackupSchedule, ScheduleRequest
from shared.http import JsonLimits
from shared.openapi_registry import json_answer, no_content

# As a backup set request: a selection may list up to 5,000 policies.
_BODY_LIMITS = JsonLimits(max_body_bytes=1024 * 1024)
_ROUTE = "tenants/{tenantId}/schedule"


def render_schedule(schedule: BackupSchedule) -> dict[str, object]:
    """The schedule as the API shows it."""
    body: dict[str, object] = schedule.model_dump(mode="json", by_alias=True)
    return body


@documented("Create or replace the tenant's backup schedule and retention (admin); only slots after this "
            "call are due", ok={"200": json_answer("schedule", "Schedule")}, role=Role.ADMIN,
            body=ScheduleRequest)
@bp.route(route=_ROUTE, methods=["PUT"])
@problem_responses
def put_schedule(req: func.HttpRequest) -> func.HttpResponse:
    """Create or replace the tenant's schedule (admin)."""
    principal = caller(req)
    grant = container.access_service().require(principal, req.route_params["tenantId"], Role.ADMIN)
    body = read_json(req, ScheduleRequest, limits=_BODY_LIMITS)  # only once the caller may set one
    schedule = container.schedule_service().put(principal=principal, tenant_id=grant.tenant_id, request=body)
    return json_response(render_schedule(schedule))


@documented("The tenant's backup schedule (reader)", ok={"200": json_answer("schedule", "Schedule")},
            role=Role.READER)
@bp.route(route=_ROUTE, methods=["GET"])
@problem_responses
def get_schedule(req: func.HttpRequest) -> func.HttpResponse:
    """The tenant's schedule (reader); 404 ``schedule-not-found`` when it has none."""
    grant = container.access_service().require(caller(req), req.route_params["tenantId"], Role.READER)
    return json_response(render_schedule(container.schedule_service().get(tenant_id=grant.tenant_id)))


@documented("Remove the tenant's backup schedule (admin); 204 whether or not it existed",
            ok={"204": no_content("removed")}, role=Role.ADMIN)
@bp.route(route=_ROUTE, methods=["DELETE"])
@problem_responses
def delete_schedule(req: func.HttpRequest) -> func.HttpResponse:
    """Remove the tenant's schedule (admin; 204 whether or not there was one)."""
    grant = container.access_service().require(caller(req), req.route_params["tenantId"], Role.ADMIN)
    container.schedule_service().delete(tenant_id=grant.tenant_id)
    return func.HttpResponse(status_code=204)
