"""Backup sets: capture a selection, add policies to a set, list sets, a set's items, an item, changes."""

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
    query_int,
    read_json,
)
from http_triggers._views import (
    render_backup_set,
    render_backup_set_changes,
    render_backup_set_item,
    render_backup_set_page,
    render_run,
)
from http_triggers.snapshots import RETRY_AFTER_SECONDS
from shared import container
from shared.domain import BackupSetRequest, Grant, Role
from shared.domain.backupsets import AddItemsRequest
from shared.http import JsonLimits
from shared.openapi_registry import CONTINUATION, IDEMPOTENCY_KEY, accepted, json_answer, top

# A selection may list up to 5,000 policies (about 80 bytes each); the count itself is checked when the
# selection is normalised, with its own code.
_BODY_LIMITS = JsonLimits(max_body_bytes=1024 * 1024)


def _grant(req: func.HttpRequest, role: Role) -> Grant:
    return container.access_service().require(caller(req), req.route_params["tenantId"], role)


@documented("Start a backup set capture of a selection (operator); the body also returns the set",
            ok={"202": accepted(schema_name="BackupSetRun")}, role=Role.OPERATOR, params=(IDEMPOTENCY_KEY,),
            body=BackupSetRequest, errors=frozenset({422}))
@bp.route(route="tenants/{tenantId}/backup-sets", methods=["POST"])
@bp.durable_client_input(client_name="client")
@problem_responses
async def start_backup_set(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start (or reuse) a backup set capture; answers 202 with the run, its set and the monitor URL."""
    principal = await asyncio.to_thread(caller, req)
    grant = await asyncio.to_thread(container.access_service().require, principal,
                                    req.route_params["tenantId"], Role.OPERATOR)
    body = read_json(req, BackupSetRequest, limits=_BODY_LIMITS)  # only once the caller may start one
    result, backup_set = await container.backup_set_service().start(
        principal=principal, tenant_id=grant.tenant_id, request=body,
        idempotency_key=req.headers.get("Idempotency-Key"))
    deliver_in_background(client, result)
    base = api_base_url(req)
    rendered = render_run(result.run, base, reused=result.reused)
    rendered["target"]["backupSetId"] = backup_set.id
    rendered["backupSet"] = render_backup_set(backup_set, base)
    headers = {"Location": rendered["links"]["monitor"], "Retry-After": RETRY_AFTER_SECONDS}
    return json_response(rendered, status=202, headers=headers)


# 409 backup-set-busy while the set's own capture runs; 404 backup-set-not-found.
@documented("Capture policies into an existing set, again for those it holds (operator)",
            ok={"202": accepted(schema_name="BackupSetRun")}, role=Role.OPERATOR, params=(IDEMPOTENCY_KEY,),
            body=AddItemsRequest, errors=frozenset({409, 422}))
@bp.route(route="tenants/{tenantId}/backup-sets/{backupSetId}/items", methods=["POST"])
@bp.durable_client_input(client_name="client")
@problem_responses
async def add_backup_set_items(req: func.HttpRequest,
                               client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start (or reuse) a run capturing policies into an existing set; 202 with the run and the monitor URL.

    409 ``backup-set-busy`` while the set's own capture is still running.
    """
    principal = await asyncio.to_thread(caller, req)
    grant = await asyncio.to_thread(container.access_service().require, principal,
                                    req.route_params["tenantId"], Role.OPERATOR)
    body = read_json(req, AddItemsRequest, limits=_BODY_LIMITS)  # only once the caller may start one
    result, backup_set = await container.backup_set_service().add_items(
        principal=principal, tenant_id=grant.tenant_id, backup_set_id=req.route_params["backupSetId"],
        request=body, idempotency_key=req.headers.get("Idempotency-Key"))
    deliver_in_background(client, result)
    base = api_base_url(req)
    rendered = render_run(result.run, base, reused=result.reused)
    rendered["backupSet"] = render_backup_set(backup_set, base)
    headers = {"Location": rendered["links"]["monitor"], "Retry-After": RETRY_AFTER_SECONDS}
    return json_response(rendered, status=202, headers=headers)


@documented("Backup sets, newest first (reader)", ok={"200": json_answer("backup sets", "BackupSetPage")},
            role=Role.READER, params=(top(default=50, maximum=200), CONTINUATION))
@bp.route(route="tenants/{tenantId}/backup-sets", methods=["GET"])
@problem_responses
def list_backup_sets(req: func.HttpRequest) -> func.HttpResponse:
    """A tenant's backup sets, newest first, with a continuation token."""
    grant = _grant(req, Role.READER)
    page = container.backup_set_service().list_sets(
        tenant_id=grant.tenant_id, top=query_int(req, "top", default=50),
        continuation=req.params.get("continuation") or None)
    return json_response(render_backup_set_page(page, api_base_url(req)))


@documented("One backup set with a page of its items (reader)",
            ok={"200": json_answer("backup set", "BackupSetWithItems")}, role=Role.READER,
            params=(top(default=100, maximum=1000), CONTINUATION))
@bp.route(route="tenants/{tenantId}/backup-sets/{backupSetId}", methods=["GET"])
@problem_responses
def get_backup_set(req: func.HttpRequest) -> func.HttpResponse:
    """One set with a page of its items (``top``, ``continuation``)."""
    grant = _grant(req, Role.READER)
    service = container.backup_set_service()
    backup_set_id = req.route_params["backupSetId"]
    backup_set = service.get_set(tenant_id=grant.tenant_id, backup_set_id=backup_set_id)
    page = service.list_items(tenant_id=grant.tenant_id, backup_set_id=backup_set_id,
                              top=query_int(req, "top", default=100, maximum=1000),
                              continuation=req.params.get("continuation") or None)
    body = render_backup_set(backup_set, api_base_url(req))
    body["items"] = [render_backup_set_item(item) for item in page.items]
    body["continuation"] = page.continuation
    return json_response(body)


# 409 item-not-captured: the item is pending or failed, so there is no body.
@documented("The captured JSON of one item of a set, as Graph returned it (reader)",
            ok={"200": json_answer("captured policy", "CapturedPolicy")}, role=Role.READER,
            errors=frozenset({409}))
@bp.route(route="tenants/{tenantId}/backup-sets/{backupSetId}/items/{itemId}", methods=["GET"])
@problem_responses
def get_backup_set_item(req: func.HttpRequest) -> func.HttpResponse:
    """The captured JSON of one item, as Graph returned it with its sub-collections and assignments."""
    grant = _grant(req, Role.READER)
    body = container.backup_set_service().item_body(
        tenant_id=grant.tenant_id, backup_set_id=req.route_params["backupSetId"],
        item_id=req.route_params["itemId"])
    return func.HttpResponse(body=body, status_code=200, mimetype="application/json", charset="utf-8")


@documented("Each item of a set new, changed or unchanged, and the policies gone since, against the newest "
            "earlier complete set that selects at least as much (reader); empty until it finishes",
            ok={"200": json_answer("changes", "BackupSetChangePage")}, role=Role.READER,
            params=(top(default=100, maximum=1000), CONTINUATION))
@bp.route(route="tenants/{tenantId}/backup-sets/{backupSetId}/changes", methods=["GET"])
@problem_responses
def list_backup_set_changes(req: func.HttpRequest) -> func.HttpResponse:
    """A page of a set's changes against the earlier set it was compared with (``top``, ``continuation``)."""
    grant = _grant(req, Role.READER)
    backup_set, page = container.backup_set_service().list_changes(
        tenant_id=grant.tenant_id, backup_set_id=req.route_params["backupSetId"],
        top=query_int(req, "top", default=100, maximum=1000),
        continuation=req.params.get("continuation") or None)
    return json_response(render_backup_set_changes(backup_set, page))
