"""Webhook subscriptions per managed tenant, and the delivery of run events to them.

Fan-out: :meth:`WebhookService.publish` is a :class:`shared.ports.RunEventSink`. It is called when a run's
event row is delivered from the outbox (at least once), and creates one delivery row per matching
subscription, keyed by subscription, run and event, so a repeated fan-out creates nothing. The rows are the
durable record; sending happens off the caller's thread.

Sending: whoever holds a delivery's lease (its ``due_at``, as for the outbox) sends it: the process that
created it, right away in a background thread; the timer sweeper (:meth:`WebhookService.send_due`) once the
lease ran out; an admin's replay. Every send is signed (``X-Signature: t=<unix>,v1=<hex>`` over
``<t>.<body>``) and carries ``X-Event-Id``. A 2xx marks the row ``delivered``; 408, 429, 5xx and network
failures are retried with exponential backoff (at least ``Retry-After``); after ``max_attempts``, or at once
for any other answer, the row is ``parked``, where an admin lists and replays it. A run's events reach a
subscription in order: an event waits while an earlier one of the same run is still pending (a parked one
no longer holds the later ones back). Nothing here raises into a run's transition.

Secrets: a subscription's URL and signing secret are stored only encrypted (:class:`SecretBox`), shown
once (the secret, in the answer to the ``PUT``) or masked (the URL), and never logged.
"""

from __future__ import annotations

import builtins
import json
import logging
import secrets
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ConfigDict

from shared.domain import (
    ApiModel,
    CreatedBy,
    Page,
    Principal,
    RunCounts,
    RunKind,
    RunRecord,
    RunStatus,
    RunTarget,
)
from shared.domain.webhooks import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    SUBSCRIBABLE_EVENTS,
    DeliveryState,
    EventType,
    SubscriptionFilters,
    WebhookDelivery,
    WebhookFormat,
    WebhookSubscription,
    build_payload,
    event_id,
    mask_url,
    signature_header,
    valid_subscription_name,
)
from shared.errors import AppError, ConcurrentUpdate, InvalidRequest, NotFound
from shared.ports import Stored, StoredSubscription, WebhookRepository
from shared.services.webhook_transport import (
    DeliveryResponse,
    SecretBox,
    TargetRefused,
    WebhookSender,
    check_target,
)

__all__ = [
    "DeliveryNotFound",
    "SubscriptionNotFound",
    "SubscriptionRequest",
    "TestDelivery",
    "WebhookService",
    "WebhooksNotConfigured",
]

logger = logging.getLogger(__name__)

RunReader = Callable[[str, str], RunRecord | None]
# Answers worth trying again; anything else (a 4xx, a redirect, a refused target) is parked at once.
_RETRY_STATUSES = frozenset({408, 425, 429})
_RETRY_ERRORS = frozenset({"webhook-timeout", "webhook-unreachable", "webhook-host-unresolved"})
_WAITING = "waiting-for-earlier-event"
MAX_SUBSCRIPTIONS_PER_TENANT = 25
MAX_RETRY_AFTER = timedelta(hours=1)


class SubscriptionNotFound(NotFound):
    """No such subscription on this tenant."""

    code = "subscription-not-found"


class DeliveryNotFound(NotFound):
    """No such delivery for this subscription."""

    code = "delivery-not-found"


class WebhooksNotConfigured(AppError):
    """The app has no ``WEBHOOK_ENCRYPTION_KEY``, so it cannot keep a subscription's secrets."""

    status = 503
    title = "Service unavailable"
    code = "webhooks-not-configured"


class SubscriptionRequest(ApiModel):
    """The body of ``PUT .../subscriptions/{name}``; values are checked by the service (stable codes)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    url: str
    format: str = WebhookFormat.EVENT.value
    events: list[str]
    filters: dict[str, Any] | None = None


@dataclass(frozen=True)
class TestDelivery:
    """What ``POST .../test`` reports: whether the receiver accepted it, with structured facts only."""

    event_id: str
    delivered: bool
    status_code: int | None
    error: str


def _parse_filters(raw: dict[str, Any] | None) -> SubscriptionFilters:
    if raw is None:
        return SubscriptionFilters()
    if set(raw) - {"kinds", "statuses"}:
        raise InvalidRequest("filters may only hold kinds and statuses", code="invalid-webhook-filters")
    try:
        kinds = [RunKind(k) for k in raw.get("kinds") or []]
        statuses = [RunStatus(s) for s in raw.get("statuses") or []]
    except (ValueError, TypeError):
        raise InvalidRequest("filters name an unknown run kind or status", code="invalid-webhook-filters") \
            from None
    return SubscriptionFilters(kinds=kinds or None, statuses=statuses or None)


def _parse_events(raw: list[str]) -> list[EventType]:
    allowed = {str(e) for e in SUBSCRIBABLE_EVENTS}
    if not raw or len(set(raw)) != len(raw) or any(e not in allowed for e in raw):
        raise InvalidRequest(f"events must be a non-empty list of distinct values from {sorted(allowed)}",
                             code="invalid-webhook-events")
    return [EventType(e) for e in raw]


class WebhookService:
    """Subscriptions (admin) and the delivery of run events to them."""

    def __init__(self, *, repository: WebhookRepository, read_run: RunReader, sender: WebhookSender,
                 clock: Callable[[], datetime], tenant_ids: Callable[[], Sequence[str]],
                 box: SecretBox | None, api_base: str, allow_loopback: bool = False,
                 max_attempts: int = 8, retry_base: timedelta = timedelta(seconds=5),
                 retry_max: timedelta = timedelta(minutes=10), lease: timedelta = timedelta(seconds=30),
                 background: Executor | None = None, sweep_batch: int = 100,
                 delivered_retention: timedelta = timedelta(days=30)) -> None:
        """Create the service.

        Args:
            repository: subscriptions and deliveries.
            read_run: returns a run with its current counts, or ``None``.
            sender: sends one signed delivery.
            clock: returns the current aware UTC time.
            tenant_ids: the registered tenants, whose partitions a sweep reads one by one.
            box: encrypts secrets at rest; ``None`` when no key is configured (no subscription can be made).
            api_base: the API's absolute base URL (``.../api``), for the links in payloads.
            allow_loopback: accept loopback targets (local development only).
            max_attempts: sends before a delivery is parked.
            retry_base: wait after the first failed send; doubled for each further one.
            retry_max: longest wait between sends.
            lease: how long a sender holds a delivery before anyone else may send it.
            background: where sends run off the caller's thread (a small pool of this process by default).
            sweep_batch: most deliveries one sweep takes on.
            delivered_retention: how long a delivered event stays listed before :meth:`prune_delivered`
                deletes it.
        """
        self._repo = repository
        self._read_run = read_run
        self._sender = sender
        self._clock = clock
        self._tenant_ids = tenant_ids
        self._box = box
        self._api_base = api_base.rstrip("/")
        self._allow_loopback = allow_loopback
        self._max_attempts = max_attempts
        self._retry_base = retry_base
        self._retry_max = retry_max
        self._lease = lease
        self._pool = background or ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhooks")
        self._sweep_batch = sweep_batch
        self._delivered_retention = delivered_retention
        self._pending_lock = threading.Lock()
        self._pending: set[Future[Any]] = set()

    # ------------------------------------------------------------------------------ subscriptions

    def _require_box(self) -> SecretBox:
        if self._box is None:
            raise WebhooksNotConfigured("webhooks are not configured on this deployment")
        return self._box

    def put(self, *, principal: Principal, tenant_id: str, name: str,
            request: SubscriptionRequest) -> tuple[WebhookSubscription, str, bool]:
        """Create or replace a subscription; every call issues a new signing secret.

        Returns:
            The subscription, its signing secret (shown this once) and whether it was created.

        Raises:
            InvalidRequest: ``invalid-subscription-name``, ``invalid-webhook-url``, ``webhook-url-not-https``,
                ``webhook-url-not-allowed``, ``webhook-host-unresolved``, ``invalid-webhook-format``,
                ``invalid-webhook-events``, ``invalid-webhook-filters``, ``too-many-subscriptions``.
            WebhooksNotConfigured: no encryption key is configured.
        """
        if not valid_subscription_name(name):
            raise InvalidRequest("name must be 1-64 letters, digits, '-' or '_'",
                                 code="invalid-subscription-name")
        try:
            fmt = WebhookFormat(request.format)
        except ValueError:
            raise InvalidRequest("format must be 'event' or 'teams'", code="invalid-webhook-format") from None
        events = _parse_events(request.events)
        filters = _parse_filters(request.filters)
        try:
            check_target(request.url, allow_loopback=self._allow_loopback)
        except TargetRefused as refused:
            raise InvalidRequest(refused.detail, code=refused.code) from None
        box = self._require_box()
        existing = self._repo.get_subscription(tenant_id=tenant_id, name=name)
        if existing is None and len(self._repo.list_subscriptions(tenant_id)) >= MAX_SUBSCRIPTIONS_PER_TENANT:
            raise InvalidRequest(f"a tenant has at most {MAX_SUBSCRIPTIONS_PER_TENANT} subscriptions",
                                 code="too-many-subscriptions")
        secret = "whsec_" + secrets.token_urlsafe(32)
        subscription = WebhookSubscription(
            tenant_id=tenant_id, name=name, url_masked=mask_url(request.url), format=fmt, events=events,
            filters=filters, created_at=self._clock(), created_by=principal.object_id)
        self._repo.put_subscription(StoredSubscription(subscription, box.encrypt(request.url),
                                                       box.encrypt(secret)))
        logger.info("webhook subscription saved tenant_id=%s subscription=%s format=%s", tenant_id, name, fmt)
        return subscription, secret, existing is None

    def get(self, *, tenant_id: str, name: str) -> WebhookSubscription:
        """Return one subscription (masked URL, no secret).

        Raises:
            SubscriptionNotFound: no such subscription.
        """
        return self._stored(tenant_id, name).subscription

    def _stored(self, tenant_id: str, name: str) -> StoredSubscription:
        stored = (self._repo.get_subscription(tenant_id=tenant_id, name=name)
                  if valid_subscription_name(name) else None)
        if stored is None:
            raise SubscriptionNotFound("subscription not found")
        return stored

    def list(self, *, tenant_id: str) -> builtins.list[WebhookSubscription]:
        """Return the tenant's subscriptions by name."""
        return self._repo.list_subscriptions(tenant_id)

    def delete(self, *, tenant_id: str, name: str) -> None:
        """Delete a subscription and its pending and parked deliveries (idempotent)."""
        if valid_subscription_name(name):
            self._repo.delete_subscription(tenant_id=tenant_id, name=name)
            logger.info("webhook subscription deleted tenant_id=%s subscription=%s", tenant_id, name)

    def test(self, *, principal: Principal, tenant_id: str, name: str) -> TestDelivery:
        """Send one signed test event (type ``run.test``, or a card marked as a test) and report the answer.

        Raises:
            SubscriptionNotFound: no such subscription.
        """
        stored = self._stored(tenant_id, name)
        now = self._clock()
        sub = stored.subscription
        kind = sub.filters.kinds[0] if sub.filters.kinds else RunKind.POLICY_CAPTURE
        sample = RunRecord(
            id="run_test", tenant_id=tenant_id, kind=kind, status=RunStatus.SUCCEEDED,
            target=RunTarget(), created_by=CreatedBy(id=principal.object_id, name=""), created_at=now,
            started_at=now, finished_at=now, derived_key="test", counts=RunCounts(total=1, succeeded=1))
        test_id = f"test:{secrets.token_hex(8)}"
        body = build_payload(sub.format, sample, RunStatus.SUCCEEDED, api_base=self._api_base,
                             test_event_id=test_id)
        response = self._send(stored, body, test_id, EventType.TEST, now)
        logger.info("webhook test sent tenant_id=%s subscription=%s status_code=%s error=%s", tenant_id, name,
                    response.status_code, response.error)
        return TestDelivery(test_id, response.ok, response.status_code, response.error)

    # --------------------------------------------------------------------------------- deliveries

    def list_deliveries(self, *, tenant_id: str, name: str, state: DeliveryState | None = None,
                        top: int = 50, continuation: str | None = None) -> Page[WebhookDelivery]:
        """Return a subscription's deliveries by run and event order, optionally in one state.

        Raises:
            SubscriptionNotFound: no such subscription.
        """
        self._stored(tenant_id, name)
        return self._repo.list_deliveries(tenant_id=tenant_id, subscription=name, state=state, top=top,
                                          continuation=continuation)

    def replay(self, *, tenant_id: str, name: str, event_id_: str) -> WebhookDelivery:
        """Send a delivery again from its first attempt (a parked one, typically), in the background.

        Raises:
            SubscriptionNotFound: no such subscription.
            DeliveryNotFound: the subscription has no such delivery.
            ConcurrentUpdate: the delivery changed meanwhile (a retry of the replay is safe).
        """
        self._stored(tenant_id, name)
        stored = self._repo.get_delivery(tenant_id=tenant_id, subscription=name, event_id=event_id_)
        if stored is None:
            raise DeliveryNotFound("delivery not found")
        now = self._clock()
        replayed = stored.value.model_copy(update={
            "state": DeliveryState.PENDING, "attempts": 0, "due_at": now + self._lease, "updated_at": now,
            "last_error": "", "last_status_code": None})
        etag = self._repo.update_delivery(replayed, etag=stored.etag)
        logger.info("webhook delivery replayed tenant_id=%s subscription=%s event_id=%s", tenant_id, name,
                    event_id_)
        self._background(Stored(replayed, etag))
        return replayed

    # ---------------------------------------------------------------------------- run event sink

    def publish(self, run: RunRecord, status: RunStatus) -> None:
        """Create the deliveries of ``run`` reaching ``status`` (idempotent); send them in the background."""
        wanted = [s for s in self._repo.list_subscriptions(run.tenant_id) if s.wants(run, status)]
        if not wanted:
            return
        now = self._clock()
        rows = [WebhookDelivery(tenant_id=run.tenant_id, subscription=s.name,
                                event_id=event_id(run.id, status),
                                run_id=run.id, status=status, due_at=now + self._lease, created_at=now,
                                updated_at=now) for s in wanted]
        for created in self._repo.create_deliveries(rows):
            # This process holds the lease it just wrote: send without taking it again.
            self._background(created)

    def _background(self, stored: Stored[WebhookDelivery]) -> None:
        future = self._pool.submit(self._guarded, stored, True)
        with self._pending_lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future[Any]) -> None:
        with self._pending_lock:
            self._pending.discard(future)

    def send_due(self) -> int:
        """Send every due pending delivery of every tenant (the timer); return how many were taken on.

        A run's deliveries to one subscription are sent one after another in event order; different runs
        and subscriptions in parallel on the background pool. The sweep does not wait for them: each send
        takes its delivery's lease first, so the next sweep leaves it alone.
        """
        now = self._clock()
        due: builtins.list[Stored[WebhookDelivery]] = []
        for tenant_id in self._tenant_ids():
            due += self._repo.list_due_deliveries(tenant_id=tenant_id, due_by=now,
                                                  top=self._sweep_batch - len(due))
            if len(due) >= self._sweep_batch:
                break
        groups: dict[tuple[str, str, str], builtins.list[Stored[WebhookDelivery]]] = {}
        for stored in due:
            d = stored.value
            groups.setdefault((d.tenant_id, d.subscription, d.run_id), []).append(stored)
        for rows in groups.values():
            future = self._pool.submit(self._send_group, sorted(rows, key=lambda s: s.value.order))
            with self._pending_lock:
                self._pending.add(future)
            future.add_done_callback(self._forget)
        if due:
            logger.info("webhook sweep took on deliveries=%d", len(due))
        return len(due)

    def prune_delivered(self) -> int:
        """Delete every tenant's deliveries delivered longer ago than the retention; return how many.

        A delivered row is kept so that a repeated fan-out sends nothing, which matters for minutes, and for
        the deliveries listing. The due-delivery sweep reads past all of a tenant's rows every few seconds,
        so they must not pile up. Up to 1,000 per tenant and call: a backlog drains over a few calls.
        """
        written_before = self._clock() - self._delivered_retention
        deleted = 0
        for tenant_id in self._tenant_ids():
            try:
                deleted += self._repo.delete_delivered(tenant_id=tenant_id, written_before=written_before)
            except Exception as exc:  # noqa: BLE001 - one tenant's failure must not hold back the others
                logger.warning("webhook delivery pruning failed tenant_id=%s error=%s", tenant_id,
                               type(exc).__name__)
        if deleted:
            logger.info("webhook deliveries pruned count=%d", deleted)
        return deleted

    def _send_group(self, rows: builtins.list[Stored[WebhookDelivery]]) -> bool:
        # Stops at the first that was not delivered: the later ones of that run wait for it.
        return all(self._guarded(stored, False) for stored in rows)

    def _guarded(self, stored: Stored[WebhookDelivery], holding: bool) -> bool:
        try:
            return self._attempt(stored, holding=holding)
        except Exception as exc:  # noqa: BLE001 - the lease runs out and the sweeper tries again
            logger.warning("webhook delivery attempt failed tenant_id=%s subscription=%s event_id=%s "
                           "error=%s",
                           stored.value.tenant_id, stored.value.subscription, stored.value.event_id,
                           type(exc).__name__)
            return False

    def _attempt(self, stored: Stored[WebhookDelivery], *, holding: bool) -> bool:
        """Send one delivery if it is ours to send; whether it ended delivered (then the next is sent)."""
        now = self._clock()
        delivery, etag = stored.value, stored.etag
        if delivery.state != DeliveryState.PENDING:
            return delivery.state == DeliveryState.DELIVERED
        if not holding:
            if delivery.due_at > now and delivery.last_error != _WAITING:
                return False  # someone else holds the lease
            # Taking the lease clears the waiting mark, so nobody else takes a lease held now.
            delivery = delivery.model_copy(update={"due_at": now + self._lease, "last_error": ""})
            try:
                etag = self._repo.update_delivery(delivery, etag=etag)
            except ConcurrentUpdate:
                return False  # taken over or settled meanwhile
        earlier = [r for r in self._repo.list_run_deliveries(tenant_id=delivery.tenant_id,
                                                             subscription=delivery.subscription,
                                                             run_id=delivery.run_id)
                   if r.value.order < delivery.order and r.value.state == DeliveryState.PENDING]
        if earlier:
            # Wait behind the run's earlier event; whoever delivers that one sends this one next.
            waiting = delivery.model_copy(update={"due_at": now + self._retry_base, "last_error": _WAITING})
            self._repo.update_delivery(waiting, etag=etag)
            return False
        sub = self._repo.get_subscription(tenant_id=delivery.tenant_id, name=delivery.subscription)
        run = self._read_run(delivery.tenant_id, delivery.run_id)
        if sub is None or run is None:
            self._settle(delivery, etag, DeliveryState.PARKED, None,
                         "subscription-not-found" if sub is None else "run-not-found", now)
            return False
        body = build_payload(sub.subscription.format, run, delivery.status, api_base=self._api_base)
        response = self._send(sub, body, delivery.event_id, None, now)
        attempts = delivery.attempts + 1
        if response.ok:
            self._settle(delivery, etag, DeliveryState.DELIVERED, response.status_code, "", now, attempts)
            self._send_next(delivery)
            return True
        retry = (response.status_code in _RETRY_STATUSES
                 or (response.status_code is not None and response.status_code >= 500)
                 or (response.status_code is None and response.error in _RETRY_ERRORS))
        if not retry or attempts >= self._max_attempts:
            self._settle(delivery, etag, DeliveryState.PARKED, response.status_code, response.error, now,
                         attempts)
            logger.warning("webhook delivery parked tenant_id=%s subscription=%s event_id=%s attempts=%d "
                           "status_code=%s error=%s", delivery.tenant_id, delivery.subscription,
                           delivery.event_id, attempts, response.status_code, response.error)
            return False
        backoff = min(self._retry_base * 2 ** (attempts - 1), self._retry_max)
        if response.retry_after is not None:
            backoff = max(backoff, min(timedelta(seconds=response.retry_after), MAX_RETRY_AFTER))
        self._settle(delivery, etag, DeliveryState.PENDING, response.status_code, response.error, now,
                     attempts, due_at=now + backoff)
        logger.info("webhook delivery will be retried tenant_id=%s subscription=%s event_id=%s attempt=%d "
                    "status_code=%s error=%s", delivery.tenant_id, delivery.subscription, delivery.event_id,
                    attempts, response.status_code, response.error)
        return False

    def _send_next(self, delivered: WebhookDelivery) -> None:
        """After a delivery, send the run's next pending event to the same subscription, at once."""
        rows = self._repo.list_run_deliveries(tenant_id=delivered.tenant_id,
                                              subscription=delivered.subscription, run_id=delivered.run_id)
        for row in rows:
            if row.value.order > delivered.order and row.value.state == DeliveryState.PENDING:
                if row.value.last_error == _WAITING or row.value.due_at <= self._clock():
                    self._attempt(row, holding=False)
                return

    def _settle(self, delivery: WebhookDelivery, etag: str, state: DeliveryState, status_code: int | None,
                error: str, now: datetime, attempts: int | None = None,
                due_at: datetime | None = None) -> None:
        update: dict[str, Any] = {"state": state, "last_status_code": status_code, "last_error": error,
                                  "updated_at": now, "due_at": due_at or now}
        if attempts is not None:
            update["attempts"] = attempts
        try:
            self._repo.update_delivery(delivery.model_copy(update=update), etag=etag)
        except ConcurrentUpdate:
            # Replayed or deleted meanwhile: that change stands.
            logger.info("webhook delivery changed while sending tenant_id=%s subscription=%s event_id=%s",
                        delivery.tenant_id, delivery.subscription, delivery.event_id)
        if state == DeliveryState.DELIVERED:
            logger.info("webhook delivered tenant_id=%s subscription=%s event_id=%s status_code=%s",
                        delivery.tenant_id, delivery.subscription, delivery.event_id, status_code)

    def _send(self, sub: StoredSubscription, payload: dict[str, Any], event_id_: str,
              event_type: EventType | None, now: datetime) -> DeliveryResponse:
        box = self._require_box()
        url = box.decrypt(sub.url_cipher)
        secret = box.decrypt(sub.secret_cipher)
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8", EVENT_ID_HEADER: event_id_,
                   SIGNATURE_HEADER: signature_header(secret, int(now.timestamp()), body)}
        if event_type is not None:
            headers["X-Event-Type"] = str(event_type)
        return self._sender.send(url, headers=headers, body=body)

    def close(self) -> None:
        """Wait for the background sends (tests; an orderly shutdown)."""
        self._pool.shutdown(wait=True)

    def idle(self, timeout: float = 30.0) -> None:
        """Wait until every background send submitted so far (and those they chained) has ended (tests)."""
        while True:
            with self._pending_lock:
                pending = set(self._pending)
            if not pending:
                return
            wait(pending, timeout=timeout)
