"""Webhook subscriptions of a tenant (admin): put, list, get, delete, test-fire, deliveries and replay.

A subscription's URL is never returned (only masked), and its signing secret only once, in the answer to
the ``PUT`` that issued it.
"""

from __future__ import annotations

from typing import Any

import azure.functions as func

from http_triggers._blueprint import bp
from http_triggers._support import (
    api_base_url,
    caller,
    documented,
    json_response,
    problem_responses,
    query_int,
    read_json,
    reject_body,
)
from shared import container
from shared.domain import Page, Role
from shared.domain.webhooks import DeliveryState, WebhookDelivery, WebhookSubscription
from shared.errors import InvalidRequest
from shared.http import JsonLimits
from shared.openapi_registry import CONTINUATION, enum_query, json_answer, no_content, top
from shared.services.webhooks import SubscriptionRequest

_ROUTE = "tenants/{tenantId}/subscriptions"
_ONE = _ROUTE + "/{name}"
_BODY_LIMITS = JsonLimits(max_body_bytes=16 * 1024)
# Where the subscription lives: a Power Automate webhook trigger deletes it there when its flow goes.
_LOCATION = {"Location": {"schema": {"type": "string"}, "required": True,
                          "description": "URL of the subscription"}}


def render_subscription(sub: WebhookSubscription) -> dict[str, Any]:
    """A subscription as the API shows it (masked URL, no secret)."""
    body = sub.model_dump(mode="json", by_alias=True, exclude={"tenant_id"})
    body["filters"] = sub.filters.model_dump(mode="json", by_alias=True, exclude_none=True)
    return body


def render_delivery(delivery: WebhookDelivery) -> dict[str, Any]:
    """One delivery: structured facts only."""
    return delivery.model_dump(mode="json", by_alias=True, exclude={"tenant_id"})


def _admin_tenant(req: func.HttpRequest) -> str:
    grant = container.access_service().require(caller(req), req.route_params["tenantId"], Role.ADMIN)
    return grant.tenant_id


# 400 invalid-subscription-name, invalid-webhook-url, webhook-url-not-https, webhook-url-not-allowed,
# webhook-host-unresolved, invalid-webhook-format, invalid-webhook-events, invalid-webhook-filters,
# too-many-subscriptions; 503 webhooks-not-configured without an encryption key.
@documented("Create or replace a webhook subscription (admin); the answer holds a new signing secret, shown "
            "this once", ok={"200": json_answer("replaced", "SubscriptionCreated", headers=_LOCATION),
                             "201": json_answer("created", "SubscriptionCreated", headers=_LOCATION)},
            role=Role.ADMIN, body=SubscriptionRequest)
@bp.route(route=_ONE, methods=["PUT"])
@problem_responses
def put_subscription(req: func.HttpRequest) -> func.HttpResponse:
    """Create or replace a subscription (admin); the answer holds its new signing secret, shown once."""
    principal = caller(req)
    grant = container.access_service().require(principal, req.route_params["tenantId"], Role.ADMIN)
    body = read_json(req, SubscriptionRequest, limits=_BODY_LIMITS)  # only once the caller may set one
    sub, secret, created = container.webhook_service().put(
        principal=principal, tenant_id=grant.tenant_id, name=req.route_params["name"], request=body)
    location = f"{api_base_url(req)}/tenants/{grant.tenant_id}/subscriptions/{sub.name}"
    return json_response({**render_subscription(sub), "secret": secret}, status=201 if created else 200,
                         headers={"Cache-Control": "no-store", "Location": location})


@documented("The tenant's webhook subscriptions (admin); URLs masked",
            ok={"200": json_answer("subscriptions", "SubscriptionList")}, role=Role.ADMIN)
@bp.route(route=_ROUTE, methods=["GET"])
@problem_responses
def list_subscriptions(req: func.HttpRequest) -> func.HttpResponse:
    """The tenant's subscriptions (admin)."""
    tenant_id = _admin_tenant(req)
    subs = container.webhook_service().list(tenant_id=tenant_id)
    return json_response({"items": [render_subscription(s) for s in subs]})


@documented("One webhook subscription (admin); URL masked",
            ok={"200": json_answer("subscription", "Subscription")}, role=Role.ADMIN)
@bp.route(route=_ONE, methods=["GET"])
@problem_responses
def get_subscription(req: func.HttpRequest) -> func.HttpResponse:
    """One subscription (admin)."""
    tenant_id = _admin_tenant(req)
    sub = container.webhook_service().get(tenant_id=tenant_id, name=req.route_params["name"])
    return json_response(render_subscription(sub))


@documented("Delete a webhook subscription and its deliveries (admin); 204 whether or not it existed",
            ok={"204": no_content("deleted")}, role=Role.ADMIN)
@bp.route(route=_ONE, methods=["DELETE"])
@problem_responses
def delete_subscription(req: func.HttpRequest) -> func.HttpResponse:
    """Delete a subscription and what it is still owed (admin); 204 whether or not it existed."""
    tenant_id = _admin_tenant(req)
    container.webhook_service().delete(tenant_id=tenant_id, name=req.route_params["name"])
    return func.HttpResponse(status_code=204)


@documented("Send one signed test delivery now and report the answer (admin)",
            ok={"200": json_answer("the receiver's answer", "TestDelivery")}, role=Role.ADMIN,
            takes_no_body=True)
@bp.route(route=_ONE + "/test", methods=["POST"])
@problem_responses
def test_subscription(req: func.HttpRequest) -> func.HttpResponse:
    """Send one signed test delivery now and report the receiver's answer (admin)."""
    principal = caller(req)
    grant = container.access_service().require(principal, req.route_params["tenantId"], Role.ADMIN)
    reject_body(req)
    result = container.webhook_service().test(principal=principal, tenant_id=grant.tenant_id,
                                              name=req.route_params["name"])
    return json_response({"eventId": result.event_id, "delivered": result.delivered,
                          "statusCode": result.status_code, "error": result.error})


@documented("A subscription's deliveries by run and event (admin); status=parked lists those given up",
            ok={"200": json_answer("deliveries", "DeliveryPage")}, role=Role.ADMIN,
            params=(enum_query("status", DeliveryState), top(default=50, maximum=200), CONTINUATION))
@bp.route(route=_ONE + "/deliveries", methods=["GET"])
@problem_responses
def list_deliveries(req: func.HttpRequest) -> func.HttpResponse:
    """A subscription's deliveries by run and event, optionally one state (``status=parked``) (admin)."""
    tenant_id = _admin_tenant(req)
    raw = req.params.get("status") or None
    try:
        state = DeliveryState(raw) if raw is not None else None
    except ValueError:
        raise InvalidRequest("status must be pending, delivered or parked") from None
    page: Page[WebhookDelivery] = container.webhook_service().list_deliveries(
        tenant_id=tenant_id, name=req.route_params["name"], state=state,
        top=query_int(req, "top", default=50, maximum=200),
        continuation=req.params.get("continuation") or None)
    return json_response({"items": [render_delivery(d) for d in page.items],
                          "continuation": page.continuation})


# 409 concurrent-update when the delivery changed meanwhile (a repeat is safe).
@documented("Send a delivery again from its first attempt, in the background (admin)",
            ok={"202": json_answer("the delivery, pending again", "Delivery")}, role=Role.ADMIN,
            errors=frozenset({409}), takes_no_body=True)
@bp.route(route=_ONE + "/deliveries/{eventId}/replay", methods=["POST"])
@problem_responses
def replay_delivery(req: func.HttpRequest) -> func.HttpResponse:
    """Send a delivery again from its first attempt, in the background (admin); 202."""
    tenant_id = _admin_tenant(req)
    reject_body(req)
    delivery = container.webhook_service().replay(tenant_id=tenant_id, name=req.route_params["name"],
                                                   event_id_=req.route_params["eventId"])
    return json_response(render_delivery(delivery), status=202)
