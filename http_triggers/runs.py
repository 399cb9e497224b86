"""Runs: list, get, monitor (the async polling pattern), per-item outcomes, cancel and rerun."""

from __future__ import annotations

import asyncio
import contextlib

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
    query_int,
    reject_body,
)
from http_triggers._views import render_item_page, render_run, render_run_page
from http_triggers.snapshots import RETRY_AFTER_SECONDS
from shared import container
from shared.domain import Grant, Role, RunKind, RunStatus
from shared.errors import InvalidRequest
from shared.openapi_registry import (
    AS_FOR_RUN_KIND,
    CONTINUATION,
    RUN_ACCEPTED,
    accepted,
    enum_query,
    json_answer,
    top,
)
from shared.services.outbox import orchestration_launcher
from shared.services.recovery import OrchestrationStatusUnknown


def _reader_grant(req: func.HttpRequest) -> Grant:
    return container.access_service().require(caller(req), req.route_params["tenantId"], Role.READER)


def _enum_param(req: func.HttpRequest, name: str, enum: type[RunKind] | type[RunStatus]) -> str | None:
    raw: str | None = req.params.get(name)
    if not raw:
        return None
    if raw not in {member.value for member in enum}:
        raise InvalidRequest(f"Query parameter '{name}' must be one of {', '.join(m.value for m in enum)}.")
    return raw


@documented("Runs, newest first (reader)", ok={"200": json_answer("runs", "RunPage")}, role=Role.READER,
            params=(enum_query("kind", RunKind), enum_query("status", RunStatus),
                    top(default=50, maximum=200), CONTINUATION))
@bp.route(route="tenants/{tenantId}/runs", methods=["GET"])
@problem_responses
def list_runs(req: func.HttpRequest) -> func.HttpResponse:
    """Runs of a tenant, newest first, with a continuation token."""
    grant = _reader_grant(req)
    kind, status = _enum_param(req, "kind", RunKind), _enum_param(req, "status", RunStatus)
    page = container.run_service().list(
        tenant_id=grant.tenant_id, kind=RunKind(kind) if kind else None,
        status=RunStatus(status) if status else None, top=query_int(req, "top", default=50),
        continuation=req.params.get("continuation") or None)
    return json_response(render_run_page(page, api_base_url(req)))


@documented("One run (reader)", ok={"200": json_answer("run", "Run")}, role=Role.READER)
@bp.route(route="tenants/{tenantId}/runs/{runId}", methods=["GET"])
@problem_responses
def get_run(req: func.HttpRequest) -> func.HttpResponse:
    """One run, whatever its status."""
    grant = _reader_grant(req)
    run = container.run_service().get(tenant_id=grant.tenant_id, run_id=req.route_params["runId"])
    return json_response(render_run(run, api_base_url(req)))


@documented("Poll until terminal: 202 while active, 200 when done (reader)",
            ok={"200": json_answer("terminal run", "Run"), "202": accepted("still active")}, role=Role.READER)
@bp.route(route="tenants/{tenantId}/runs/{runId}/monitor", methods=["GET"])
@bp.durable_client_input(client_name="client")
@problem_responses
async def monitor_run(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """202 + Location + Retry-After while the run is active (queued included); 200 once it is terminal.

    A failed run is still a 200: Logic Apps retries 5xx answers, and the run's status says what happened.
    A run whose launch is overdue is launched by the outbox sweeper whether or not anyone polls; the
    monitor only nudges it sooner. Likewise a run whose orchestration failed, was terminated or vanished
    without ending it is failed by the recovery sweeper, and the monitor, by the same rule, sooner.
    """
    grant = await asyncio.to_thread(_reader_grant, req)
    runs = container.run_service()
    run = await asyncio.to_thread(runs.get, tenant_id=grant.tenant_id, run_id=req.route_params["runId"])
    container.outbox_dispatcher().nudge(run, orchestration_launcher(client))
    with contextlib.suppress(OrchestrationStatusUnknown):  # the host erred: say what storage says
        run = await container.run_recovery().settle_if_orphaned(run, client)
    body = render_run(run, api_base_url(req))
    if run.status.is_terminal:
        return json_response(body)
    return json_response(body, status=202,
                         headers={"Location": body["links"]["monitor"], "Retry-After": RETRY_AFTER_SECONDS})


@documented("Per-item outcomes (reader)", ok={"200": json_answer("items", "ItemPage")}, role=Role.READER,
            params=(enum_query("status", ["succeeded", "failed", "skipped"]), top(default=100, maximum=1000),
                    CONTINUATION))
@bp.route(route="tenants/{tenantId}/runs/{runId}/items", methods=["GET"])
@problem_responses
def list_run_items(req: func.HttpRequest) -> func.HttpResponse:
    """Per-item outcomes of a run, optionally filtered by status."""
    grant = _reader_grant(req)
    status = req.params.get("status") or None
    if status is not None and status not in ("succeeded", "failed", "skipped"):
        raise InvalidRequest("Query parameter 'status' must be succeeded, failed or skipped.")
    page = container.run_service().list_items(
        tenant_id=grant.tenant_id, run_id=req.route_params["runId"], status=status,
        top=query_int(req, "top", default=100, maximum=1000),
        continuation=req.params.get("continuation") or None)
    return json_response(render_item_page(page))


# 409 run-not-active once it ended otherwise; a second cancel answers the cancelled run again.
@documented("Cancel an active run: its orchestration stopped, unsettled items skipped",
            ok={"200": json_answer("the run, cancelled", "Run")}, role=AS_FOR_RUN_KIND,
            errors=frozenset({409}), takes_no_body=True)
@bp.route(route="tenants/{tenantId}/runs/{runId}/cancel", methods=["POST"])
@bp.durable_client_input(client_name="client")
@problem_responses
async def cancel_run(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Cancel an active run: 200 with the run ended ``cancelled`` (again on a second click).

    The role is the one starting the run's kind needs; 409 ``run-not-active`` once the run ended otherwise.
    """
    grant = await asyncio.to_thread(_reader_grant, req)
    reject_body(req)
    run = await container.run_control().cancel(grant=grant, run_id=req.route_params["runId"],
                                               orchestrations=client)
    return json_response(render_run(run, api_base_url(req)))


# 409 run-still-active, nothing-to-rerun (a set run with no failed or skipped item), rerun-not-supported,
# backup-set-busy.
@documented("Run an ended run again: a policy capture as it was, a backup set run for the items it failed "
            "or skipped (as for the kind)",
            ok={"202": RUN_ACCEPTED}, role=AS_FOR_RUN_KIND, errors=frozenset({409}), takes_no_body=True)
@bp.route(route="tenants/{tenantId}/runs/{runId}/rerun", methods=["POST"])
@bp.durable_client_input(client_name="client")
@problem_responses
async def rerun_run(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Run an ended run's work again: 202 with the new (or the joined active) run, as any start answers.

    A backup set run captures again only the items it failed or skipped (409 ``nothing-to-rerun``).
    """
    principal = await asyncio.to_thread(caller, req)
    grant = await asyncio.to_thread(container.access_service().require, principal,
                                    req.route_params["tenantId"], Role.READER)
    reject_body(req)
    result = await container.run_control().rerun(grant=grant, principal=principal,
                                                 run_id=req.route_params["runId"])
    deliver_in_background(client, result)
    body = render_run(result.run, api_base_url(req), reused=result.reused)
    return json_response(body, status=202,
                         headers={"Location": body["links"]["monitor"], "Retry-After": RETRY_AFTER_SECONDS})
