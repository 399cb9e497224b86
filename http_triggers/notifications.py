"""The caller's notifications: ``GET /api/notifications`` and ``POST /api/notifications/{id}/read``."""

from __future__ import annotations

import azure.functions as func

from http_triggers._blueprint import bp
from http_triggers._support import (
    api_base_url,
    caller,
    documented,
    json_response,
    problem_responses,
    query_bool,
    query_int,
    reject_body,
)
from http_triggers._views import render_notification_page
from shared import container
from shared.openapi_registry import ANY_CALLER, CONTINUATION, json_answer, query, top


@documented("The caller's notifications, newest first",
            ok={"200": json_answer("notifications", "NotificationPage")}, role=ANY_CALLER,
            params=(query("unread", {"type": "boolean"}, "leave out those already read"),
                    top(default=50, maximum=200), CONTINUATION))
@bp.route(route="notifications", methods=["GET"])
@problem_responses
def list_notifications(req: func.HttpRequest) -> func.HttpResponse:
    """The caller's notifications, newest first; ``unread=true`` leaves out those already read."""
    page = container.notification_service().list(
        principal=caller(req), unread_only=query_bool(req, "unread"),
        top=query_int(req, "top", default=50), continuation=req.params.get("continuation") or None)
    return json_response(render_notification_page(page, api_base_url(req)))


@documented("Mark one of my notifications read", ok={"200": json_answer("read", "NotificationRead")},
            role=ANY_CALLER, errors=frozenset({404}), takes_no_body=True)
@bp.route(route="notifications/{notificationId}/read", methods=["POST"])
@problem_responses
def mark_notification_read(req: func.HttpRequest) -> func.HttpResponse:
    """Mark one of the caller's notifications read (idempotent)."""
    principal = caller(req)
    reject_body(req)  # only once the caller is known
    note = container.notification_service().mark_read(principal=principal,
                                                       notification_id=req.route_params["notificationId"])
    return json_response({"id": note.id, "read": note.read})
