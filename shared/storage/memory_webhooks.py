"""In-memory :class:`shared.ports.WebhookRepository`, with the Table adapter's keys, order and ETag rules."""

from __future__ import annotations

import builtins
import itertools
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from shared.domain import Page
from shared.domain.webhooks import DeliveryState, WebhookDelivery, WebhookSubscription, parse_event_id
from shared.errors import ConcurrentUpdate
from shared.ports import Stored, StoredSubscription
from shared.storage.keys import decode_token, encode_token, validate_key
from shared.storage.table_webhooks import delivery_row_key

__all__ = ["InMemoryWebhookRepository"]

_etags = itertools.count(1)


def _etag() -> str:
    return f'W/"mem-webhook-{next(_etags)}"'


def _key(delivery: WebhookDelivery) -> tuple[str, str]:
    return delivery.tenant_id, delivery_row_key(delivery.subscription, delivery.run_id, str(delivery.status))


class InMemoryWebhookRepository:
    """Subscriptions and deliveries in dictionaries, one lock for all."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        """An empty repository; ``clock`` stamps each write, as the table service's ``Timestamp`` does."""
        self._lock = threading.Lock()
        self._clock = clock
        self._subs: dict[tuple[str, str], StoredSubscription] = {}
        self._deliveries: dict[tuple[str, str], Stored[WebhookDelivery]] = {}
        self._written: dict[tuple[str, str], datetime] = {}

    def put_subscription(self, stored: StoredSubscription) -> None:
        """Create or replace a subscription."""
        sub = stored.subscription
        validate_key(sub.tenant_id, what="tenant id")
        validate_key(sub.name, what="name")
        with self._lock:
            self._subs[(sub.tenant_id, sub.name)] = stored

    def get_subscription(self, *, tenant_id: str, name: str) -> StoredSubscription | None:
        """Return a subscription with its encrypted fields, or ``None``."""
        with self._lock:
            return self._subs.get((tenant_id, name))

    def list_subscriptions(self, tenant_id: str) -> builtins.list[WebhookSubscription]:
        """Return the tenant's subscriptions by name."""
        with self._lock:
            return [s.subscription for (t, _), s in sorted(self._subs.items(), key=lambda kv: kv[0])
                    if t == tenant_id]

    def delete_subscription(self, *, tenant_id: str, name: str) -> bool:
        """Delete a subscription and its deliveries."""
        prefix = f"dlv|{name}|"
        with self._lock:
            for key in [k for k in self._deliveries if k[0] == tenant_id and k[1].startswith(prefix)]:
                del self._deliveries[key], self._written[key]
            return self._subs.pop((tenant_id, name), None) is not None

    def create_deliveries(self, deliveries: Sequence[WebhookDelivery],
                          ) -> builtins.list[Stored[WebhookDelivery]]:
        """Create each delivery that does not exist yet; return those created."""
        created: builtins.list[Stored[WebhookDelivery]] = []
        with self._lock:
            for delivery in deliveries:
                validate_key(delivery.run_id, what="run id")
                key = _key(delivery)
                if key in self._deliveries:
                    continue
                stored = self._deliveries[key] = Stored(delivery, _etag())
                self._written[key] = self._clock()
                created.append(stored)
        return created

    def get_delivery(self, *, tenant_id: str, subscription: str,
                     event_id: str) -> Stored[WebhookDelivery] | None:
        """Return one delivery, or ``None``."""
        parsed = parse_event_id(event_id)
        if parsed is None:
            return None
        with self._lock:
            return self._deliveries.get((tenant_id, delivery_row_key(subscription, parsed[0], parsed[1])))

    def update_delivery(self, delivery: WebhookDelivery, *, etag: str) -> str:
        """Replace a delivery if unchanged; return the new ETag."""
        key = _key(delivery)
        with self._lock:
            current = self._deliveries.get(key)
            if current is None or current.etag != etag:
                raise ConcurrentUpdate("the delivery changed meanwhile")
            stored = self._deliveries[key] = Stored(delivery, _etag())
            self._written[key] = self._clock()
            return stored.etag

    def _range(self, tenant_id: str, prefix: str) -> builtins.list[tuple[str, Stored[WebhookDelivery]]]:
        with self._lock:
            return sorted(((k[1], s) for k, s in self._deliveries.items()
                           if k[0] == tenant_id and k[1].startswith(prefix)), key=lambda kv: kv[0])

    def list_deliveries(self, *, tenant_id: str, subscription: str, state: DeliveryState | None = None,
                        top: int = 50, continuation: str | None = None) -> Page[WebhookDelivery]:
        """Return a subscription's deliveries in key order, optionally in one state."""
        after = decode_token(continuation) if continuation else None
        rows = [(k, s.value) for k, s in self._range(tenant_id, f"dlv|{subscription}|")
                if (state is None or s.value.state == state) and (after is None or k > after)]
        chunk = rows[:top]
        token = encode_token(chunk[-1][0]) if len(rows) > top else None
        return Page[WebhookDelivery](items=[d for _, d in chunk], continuation=token)

    def list_run_deliveries(self, *, tenant_id: str, subscription: str,
                            run_id: str) -> builtins.list[Stored[WebhookDelivery]]:
        """Return one run's deliveries to one subscription, in event order."""
        return [s for _, s in self._range(tenant_id, f"dlv|{subscription}|{run_id}|")]

    def list_due_deliveries(self, *, tenant_id: str, due_by: datetime,
                            top: int = 100) -> builtins.list[Stored[WebhookDelivery]]:
        """Return up to ``top`` pending deliveries of one tenant that are due."""
        return [s for _, s in self._range(tenant_id, "dlv|")
                if s.value.state == DeliveryState.PENDING and s.value.due_at <= due_by][:top]

    def delete_delivered(self, *, tenant_id: str, written_before: datetime, top: int = 1000) -> int:
        """Delete up to ``top`` delivered deliveries of one tenant last written before ``written_before``."""
        with self._lock:
            doomed = [key for key, stored in sorted(self._deliveries.items())
                      if key[0] == tenant_id and key[1].startswith("dlv|")
                      and stored.value.state == DeliveryState.DELIVERED
                      and self._written[key] < written_before][:top]
            for key in doomed:
                del self._deliveries[key], self._written[key]
        return len(doomed)
