"""Webhook subscriptions and the payloads delivered to them: pure models and functions, no I/O.

A subscription names a target URL (a secret: Power Automate and Logic Apps trigger URLs carry their own
``sig``), a format and the run events it wants. Each run transition is one event with a stable id,
``<runId>:<status>``, so a receiver drops duplicates by id; every delivery is signed with the subscription's
own secret (:func:`signature_header`).

Formats:

* ``event``: one flat JSON object with the CloudEvents attribute names (``specversion, id, type, source,
  time, subject``) and flat run fields that are always present (empty strings, never nulls), versioned by
  ``schemaVersion``: what a Power Automate "When an HTTP request is received" trigger parses most easily.
* ``teams``: the message envelope a Teams workflow ("Send webhook alerts to a channel") posts, holding one
  Adaptive Card 1.4.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from pydantic import Field

from shared.domain.base import ApiModel
from shared.domain.runs import RunKind, RunRecord, RunStatus

__all__ = [
    "EVENT_ID_HEADER",
    "EVENT_SCHEMA_VERSION",
    "SIGNATURE_HEADER",
    "SUBSCRIBABLE_EVENTS",
    "SUBSCRIPTION_NAME_PATTERN",
    "DeliveryState",
    "EventType",
    "SubscriptionFilters",
    "WebhookDelivery",
    "WebhookFormat",
    "WebhookSubscription",
    "build_event",
    "build_payload",
    "build_teams_message",
    "event_id",
    "event_order",
    "event_type_of",
    "mask_url",
    "parse_event_id",
    "run_links",
    "sign",
    "signature_header",
    "valid_subscription_name",
    "verify_signature",
]

EVENT_SCHEMA_VERSION: Final = 1
SIGNATURE_HEADER: Final = "X-Signature"
EVENT_ID_HEADER: Final = "X-Event-Id"
SUBSCRIPTION_NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_NAME = re.compile(SUBSCRIPTION_NAME_PATTERN)
ADAPTIVE_CARD_CONTENT_TYPE: Final = "application/vnd.microsoft.card.adaptive"
ADAPTIVE_CARD_SCHEMA: Final = "http://adaptivecards.io/schemas/adaptive-card.json"
ADAPTIVE_CARD_VERSION: Final = "1.4"


class WebhookFormat(StrEnum):
    """What a delivery's body looks like."""

    EVENT = "event"
    TEAMS = "teams"


class EventType(StrEnum):
    """The run events a subscription can ask for (also the CloudEvents ``type``)."""

    QUEUED = "run.queued"
    RUNNING = "run.running"
    COMPLETED = "run.completed"  # any terminal status; ``filters.statuses`` narrows it
    TEST = "run.test"  # only sent by ``POST .../test``; never subscribed to


SUBSCRIBABLE_EVENTS: Final = frozenset({EventType.QUEUED, EventType.RUNNING, EventType.COMPLETED})


class DeliveryState(StrEnum):
    """Where one event's delivery to one subscription is."""

    PENDING = "pending"  # not delivered yet; retried with backoff
    DELIVERED = "delivered"  # the receiver answered 2xx (kept so a repeated fan-out sends nothing)
    PARKED = "parked"  # gave up (attempts exhausted or a permanent refusal); an admin may replay it


def event_type_of(status: RunStatus) -> EventType:
    """The event a run reaching ``status`` produces."""
    if status == RunStatus.QUEUED:
        return EventType.QUEUED
    if status == RunStatus.RUNNING:
        return EventType.RUNNING
    return EventType.COMPLETED


def event_order(status: RunStatus) -> int:
    """Position of a status's event among a run's events (queued, running, terminal)."""
    if status == RunStatus.QUEUED:
        return 0
    if status == RunStatus.RUNNING:
        return 1
    return 2


def event_id(run_id: str, status: RunStatus) -> str:
    """The stable id of a run's transition: the same for every delivery (and retry) of it."""
    return f"{run_id}:{status}"


def parse_event_id(value: str) -> tuple[str, RunStatus] | None:
    """Inverse of :func:`event_id`; ``None`` when ``value`` is not one."""
    run_id, sep, status = value.rpartition(":")
    if not sep or not run_id:
        return None
    try:
        return run_id, RunStatus(status)
    except ValueError:
        return None


def valid_subscription_name(name: str) -> bool:
    """Whether ``name`` may name a subscription (it is part of storage keys and URLs)."""
    return bool(_NAME.fullmatch(name))


class SubscriptionFilters(ApiModel):
    """Narrows the events of a subscription; an empty list or ``None`` lets everything through."""

    kinds: list[RunKind] | None = None
    statuses: list[RunStatus] | None = None


class WebhookSubscription(ApiModel):
    """A subscription as the API shows it: never its URL (only :func:`mask_url`) nor its secret."""

    tenant_id: str
    name: str
    url_masked: str
    format: WebhookFormat
    events: list[EventType]
    filters: SubscriptionFilters = Field(default_factory=SubscriptionFilters)
    created_at: datetime
    created_by: str = ""

    def wants(self, run: RunRecord, status: RunStatus) -> bool:
        """Whether a transition of ``run`` to ``status`` is delivered to this subscription."""
        if event_type_of(status) not in self.events:
            return False
        if self.filters.kinds and run.kind not in self.filters.kinds:
            return False
        return not (self.filters.statuses and status not in self.filters.statuses)


class WebhookDelivery(ApiModel):
    """One event owed to one subscription; ``due_at`` is also the lease of whoever is sending it."""

    tenant_id: str
    subscription: str
    event_id: str
    run_id: str
    status: RunStatus
    state: DeliveryState = DeliveryState.PENDING
    attempts: int = 0
    due_at: datetime
    created_at: datetime
    updated_at: datetime
    # Structured facts only: the receiver's HTTP status and our own code for what went wrong.
    last_status_code: int | None = None
    last_error: str = ""

    @property
    def order(self) -> int:
        """Position among the run's events, for in-order delivery."""
        return event_order(self.status)


def mask_url(url: str) -> str:
    """What may be shown of a target URL: scheme, host, port and the first path segment.

    Trigger URLs carry their credential in the query (``sig=``) and sometimes in the path, so nothing past
    the first segment is kept.
    """
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://([^/?#@]*@)?([^/?#]*)(/[^/?#]*)?", url)
    if match is None:
        return ""
    scheme, _, host, first = match.groups()
    shown = f"{scheme.lower()}://{host.lower()}"
    if first and first != "/":
        shown += first
    return shown + "/…"


def _iso(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else ""


def _transition_time(run: RunRecord, status: RunStatus) -> datetime:
    if status == RunStatus.QUEUED:
        return run.created_at
    if status == RunStatus.RUNNING:
        return run.started_at or run.created_at
    return run.finished_at or run.started_at or run.created_at


def run_links(api_base: str, run: RunRecord) -> dict[str, str]:
    """Absolute links of a run (``api_base`` ends in ``/api``)."""
    base = f"{api_base}/tenants/{run.tenant_id}/runs/{run.id}"
    return {"statusUrl": base, "monitorUrl": f"{base}/monitor", "itemsUrl": f"{base}/items"}


def build_event(run: RunRecord, status: RunStatus, *, api_base: str,
                type_: EventType | None = None, event_id_: str | None = None) -> dict[str, Any]:
    """The ``event`` format: CloudEvents attribute names plus flat run fields, no nulls.

    Args:
        run: the run (its counts as of delivery; terminal runs keep the counts they ended with).
        status: the status this event reports (the run may have moved on since).
        api_base: the API's absolute base URL, for links.
        type_: overrides the event type (test deliveries).
        event_id_: overrides the event id (test deliveries).
    """
    failure_code = run.failure.code if run.failure is not None and status.is_terminal else ""
    return {
        "specversion": "1.0",
        "id": event_id_ or event_id(run.id, status),
        "type": str(type_ or event_type_of(status)),
        "source": f"/tenants/{run.tenant_id}",
        "subject": f"runs/{run.id}",
        "time": _iso(_transition_time(run, status)),
        "datacontenttype": "application/json",
        "schemaVersion": EVENT_SCHEMA_VERSION,
        "tenantId": run.tenant_id,
        "runId": run.id,
        "kind": str(run.kind),
        "status": str(status),
        "terminal": status.is_terminal,
        "policyType": run.target.policy_type or "",
        "policyId": run.target.policy_id or "",
        "createdAt": _iso(run.created_at),
        "startedAt": _iso(run.started_at),
        "finishedAt": _iso(run.finished_at if status.is_terminal else None),
        "itemsTotal": run.counts.total,
        "itemsSucceeded": run.counts.succeeded,
        "itemsFailed": run.counts.failed,
        "itemsSkipped": run.counts.skipped,
        "errorCode": failure_code,
        **run_links(api_base, run),
    }


_HEADLINES = {
    RunStatus.QUEUED: "accepted",
    RunStatus.RUNNING: "started",
    RunStatus.SUCCEEDED: "succeeded",
    RunStatus.PARTIAL: "finished with failed items",
    RunStatus.FAILED: "failed",
    RunStatus.CANCELLED: "was cancelled",
}
_COLOURS = {RunStatus.SUCCEEDED: "Good", RunStatus.PARTIAL: "Warning", RunStatus.FAILED: "Attention",
            RunStatus.CANCELLED: "Warning"}


def build_teams_message(run: RunRecord, status: RunStatus, *, api_base: str,
                        test: bool = False) -> dict[str, Any]:
    """The ``teams`` format: a message whose one attachment is an Adaptive Card 1.4."""
    links = run_links(api_base, run)
    title = f"{'Test: ' if test else ''}Run {_HEADLINES[status]}: {run.kind}"
    facts = [
        {"title": "Tenant", "value": run.tenant_id},
        {"title": "Run", "value": run.id},
        {"title": "Status", "value": str(status)},
        {"title": "Items", "value": f"{run.counts.succeeded} succeeded, {run.counts.failed} failed, "
                                    f"{run.counts.skipped} skipped"},
    ]
    if status.is_terminal and run.failure is not None:
        facts.append({"title": "Error", "value": run.failure.code})
    card = {
        "type": "AdaptiveCard",
        "$schema": ADAPTIVE_CARD_SCHEMA,
        "version": ADAPTIVE_CARD_VERSION,
        "body": [
            {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": True,
             "color": _COLOURS.get(status, "Default")},
            {"type": "TextBlock", "text": _iso(_transition_time(run, status)), "isSubtle": True,
             "spacing": "None", "wrap": True},
            {"type": "FactSet", "facts": facts},
        ],
        "actions": [{"type": "Action.OpenUrl", "title": "Run details", "url": links["statusUrl"]}],
    }
    return {"type": "message", "attachments": [
        {"contentType": ADAPTIVE_CARD_CONTENT_TYPE, "contentUrl": None, "content": card}]}


def build_payload(fmt: WebhookFormat, run: RunRecord, status: RunStatus, *, api_base: str,
                  test_event_id: str | None = None) -> dict[str, Any]:
    """The body of a delivery in the subscription's format (``test_event_id`` for a test delivery)."""
    if fmt == WebhookFormat.TEAMS:
        return build_teams_message(run, status, api_base=api_base, test=test_event_id is not None)
    if test_event_id is not None:
        return build_event(run, status, api_base=api_base, type_=EventType.TEST, event_id_=test_event_id)
    return build_event(run, status, api_base=api_base)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``<timestamp>.<body>`` under the subscription's secret (its UTF-8 bytes)."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Signature`` value: ``t=<unix seconds>,v1=<hex>``."""
    return f"t={timestamp},v1={sign(secret, timestamp, body)}"


def verify_signature(secret: str, header: str, body: bytes, *, now: int, tolerance: int = 300) -> bool:
    """What a receiver does: check the HMAC and that the timestamp is within ``tolerance`` seconds."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(parts.get("v1", ""), sign(secret, timestamp, body))
