"""Restores: start a preview or a restore, and read a run's plan."""

from __future__ import annotations

import asyncio

import azure.durable_functions as df
import azure.functions as func

from http_triggers._blueprint import bp
from http_triggers._launch import deliver_in_background
from http_triggers._support import (
    api_base_url,
    caller,
    documented,
    json_response,
    problem_responses,
    read_json,
)
from http_triggers._views import render_run
from http_triggers.snapshots import RETRY_AFTER_SECONDS
from shared import container
from shared.domain import Role
from shared.domain.restore import INTERNAL_PLAN_FIELDS, RestoreRequest
from shared.http import JsonLimits
from shared.openapi_registry import IDEMPOTENCY_KEY, RUN_ACCEPTED, json_answer

# Up to 5,000 item ids (about 80 bytes each) and a group mapping of up to 1,000 pairs.
_BODY_LIMITS = JsonLimits(max_body_bytes=1024 * 1024)


async def _start(req: func.HttpRequest, client: df.DurableOrchestrationClient, *,
                 execute: bool) -> func.HttpResponse:
    principal = await asyncio.to_thread(caller, req)
    grant = await asyncio.to_thread(container.access_service().require, principal,
                                    req.route_params["tenantId"], Role.ADMIN if execute else Role.OPERATOR)
    body = read_json(req, RestoreRequest, limits=_BODY_LIMITS)  # only once the caller may start one
    result = await container.restore_service().start(
        principal=principal, tenant_id=grant.tenant_id, request=body, execute=execute,
        idempotency_key=req.headers.get("Idempotency-Key"))
    deliver_in_background(client, result)
    rendered = render_run(result.run, api_base_url(req), reused=result.reused)
    headers = {"Location": rendered["links"]["monitor"], "Retry-After": RETRY_AFTER_SECONDS}
    return json_response(rendered, status=202, headers=headers)


# 404 backup-set-not-found (also for a source tenant the caller cannot read); 409 backup-set-not-ready
# while the set is being captured.
@documented("Start a read-only preview of restoring a backup set (or some of its items) into the tenant "
            "(operator); its plan is served by GET .../runs/{runId}/preview",
            ok={"202": RUN_ACCEPTED}, role=Role.OPERATOR, params=(IDEMPOTENCY_KEY,), body=RestoreRequest,
            errors=frozenset({409, 422}))
@bp.route(route="tenants/{tenantId}/restores/previews", methods=["POST"])
@bp.durable_client_input(client_name="client")
@problem_responses
async def start_restore_preview(req: func.HttpRequest,
                                client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start (or reuse) a read-only preview of restoring a backup set; 202 with the run."""
    return await _start(req, client, execute=False)


# 409 restore-already-active naming the active restore, backup-set-not-ready, preview-not-usable.
@documented("Start a restore of a backup set (or some of its items) into the tenant (admin); with "
            "previewRunId exactly the previewed plan, items whose target changed since become conflicts",
            ok={"202": RUN_ACCEPTED}, role=Role.ADMIN, params=(IDEMPOTENCY_KEY,), body=RestoreRequest,
            errors=frozenset({409, 422}))
@bp.route(route="tenants/{tenantId}/restores", methods=["POST"])
@bp.durable_client_input(client_name="client")
@problem_responses
async def start_restore(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start (or reuse) a restore; 409 ``restore-already-active`` while another restore runs on the tenant."""
    return await _start(req, client, execute=True)


# 409 not-a-restore-run, plan-not-ready (the run has not planned yet).
@documented("The persisted plan of a restore preview (or restore) run (reader)",
            ok={"200": json_answer("plan", "RestorePlan")}, role=Role.READER, errors=frozenset({409}))
@bp.route(route="tenants/{tenantId}/runs/{runId}/preview", methods=["GET"])
@problem_responses
def get_restore_plan(req: func.HttpRequest) -> func.HttpResponse:
    """The persisted plan of a restore preview (or restore) run."""
    grant = container.access_service().require(caller(req), req.route_params["tenantId"], Role.READER)
    plan = container.restore_service().preview(tenant_id=grant.tenant_id, run_id=req.route_params["runId"])
    body = plan.model_dump(mode="json", by_alias=True)
    return json_response({k: v for k, v in body.items() if k not in INTERNAL_PLAN_FIELDS})
