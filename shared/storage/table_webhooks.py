"""Table Storage adapter of :class:`shared.ports.WebhookRepository`.

One table, partitioned by managed tenant::

    sub|<name>                               a subscription: public fields as JSON, and its target URL and
                                             signing secret encrypted (``UrlCipher``, ``SecretCipher``)
    dlv|<name>|<run id>|<order>-<status>     one event owed to one subscription (state, attempts, lease)

A subscription's deliveries are one key range, and one run's deliveries to it a sub-range, in event order.
"""

from __future__ import annotations

import builtins
import itertools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableEntity, UpdateMode

from shared.domain import Page, RunStatus
from shared.domain.webhooks import (
    DeliveryState,
    WebhookDelivery,
    WebhookSubscription,
    event_order,
    parse_event_id,
)
from shared.errors import ConcurrentUpdate
from shared.ports import Stored, StoredSubscription
from shared.storage.keys import validate_key
from shared.storage.rows import prefix_range
from shared.storage.table_batch import delete_rows
from shared.storage.table_common import body_json, etag_of, get_entity, pack_body, page_query

__all__ = ["TableWebhookRepository", "delivery_row_key"]

SUBSCRIPTION_PREFIX = "sub|"
DELIVERY_PREFIX = "dlv|"
_SUB_RANGE = prefix_range(SUBSCRIPTION_PREFIX)
_DLV_RANGE = prefix_range(DELIVERY_PREFIX)
_RANGE_FILTER = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
_DUE_FILTER = _RANGE_FILTER + " and State eq @pending and DueAt le @due"
# ``Timestamp`` is the service's last-modified time of the row: a delivered row is not written again.
_DELIVERED_FILTER = _RANGE_FILTER + " and State eq @delivered and Timestamp lt @before"


def delivery_row_key(subscription: str, run_id: str, status: str) -> str:
    """RowKey of a delivery: by subscription, then run, then the event's order."""
    return f"{DELIVERY_PREFIX}{subscription}|{run_id}|{event_order(RunStatus(status))}-{status}"


def _delivery_entity(delivery: WebhookDelivery) -> dict[str, Any]:
    validate_key(delivery.run_id, what="run id")
    return {"PartitionKey": validate_key(delivery.tenant_id, what="tenant id"),
            "RowKey": delivery_row_key(delivery.subscription, delivery.run_id, str(delivery.status)),
            "State": str(delivery.state), "DueAt": delivery.due_at, "RunId": delivery.run_id,
            **pack_body(delivery.model_dump_json())}


def _delivery_from(entity: TableEntity) -> WebhookDelivery:
    return WebhookDelivery.model_validate(body_json(entity))


def _subscription_from(entity: TableEntity) -> WebhookSubscription:
    return WebhookSubscription.model_validate(body_json(entity))


class TableWebhookRepository:
    """Subscriptions and deliveries of each managed tenant."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    def put_subscription(self, stored: StoredSubscription) -> None:
        """Create or replace a subscription."""
        sub = stored.subscription
        self._table.upsert_entity({
            "PartitionKey": validate_key(sub.tenant_id, what="tenant id"),
            "RowKey": SUBSCRIPTION_PREFIX + validate_key(sub.name, what="subscription name"),
            "UrlCipher": stored.url_cipher, "SecretCipher": stored.secret_cipher,
            **pack_body(sub.model_dump_json())}, mode=UpdateMode.REPLACE)

    def get_subscription(self, *, tenant_id: str, name: str) -> StoredSubscription | None:
        """Return a subscription with its encrypted fields, or ``None``."""
        validate_key(tenant_id, what="tenant id")
        entity = get_entity(self._table, tenant_id, SUBSCRIPTION_PREFIX + validate_key(name, what="name"))
        if entity is None:
            return None
        return StoredSubscription(_subscription_from(entity), str(entity["UrlCipher"]),
                                  str(entity["SecretCipher"]))

    def list_subscriptions(self, tenant_id: str) -> builtins.list[WebhookSubscription]:
        """Return the tenant's subscriptions by name; the encrypted fields are not even read."""
        validate_key(tenant_id, what="tenant id")
        entities = self._table.query_entities(_RANGE_FILTER, parameters={"pk": tenant_id, **_SUB_RANGE})
        return [_subscription_from(e) for e in entities]

    def delete_subscription(self, *, tenant_id: str, name: str) -> bool:
        """Delete the subscription's deliveries, then the subscription (a retry finds it still there)."""
        validate_key(tenant_id, what="tenant id")
        validate_key(name, what="name")
        bounds = prefix_range(f"{DELIVERY_PREFIX}{name}|")
        rows = self._table.query_entities(_RANGE_FILTER, parameters={"pk": tenant_id, **bounds},
                                          select=["PartitionKey", "RowKey"])
        delete_rows(self._table, tenant_id, [str(e["RowKey"]) for e in rows])
        existed = get_entity(self._table, tenant_id, SUBSCRIPTION_PREFIX + name) is not None
        self._table.delete_entity(partition_key=tenant_id, row_key=SUBSCRIPTION_PREFIX + name)
        return existed

    def create_deliveries(self, deliveries: Sequence[WebhookDelivery],
                          ) -> builtins.list[Stored[WebhookDelivery]]:
        """Create each delivery that does not exist yet (a request each: a tenant has few subscriptions)."""
        created: builtins.list[Stored[WebhookDelivery]] = []
        for delivery in deliveries:
            try:
                result = self._table.create_entity(_delivery_entity(delivery))
            except ResourceExistsError:
                continue  # a repeated fan-out: the first one owns it
            created.append(Stored(delivery, str(result.get("etag", ""))))
        return created

    def get_delivery(self, *, tenant_id: str, subscription: str,
                     event_id: str) -> Stored[WebhookDelivery] | None:
        """Return one delivery, or ``None`` (also for an id that is not an event id)."""
        parsed = parse_event_id(event_id)
        if parsed is None:
            return None
        validate_key(tenant_id, what="tenant id")
        validate_key(parsed[0], what="run id")
        entity = get_entity(self._table, tenant_id,
                            delivery_row_key(validate_key(subscription, what="name"), parsed[0], parsed[1]))
        return Stored(_delivery_from(entity), etag_of(entity)) if entity is not None else None

    def update_delivery(self, delivery: WebhookDelivery, *, etag: str) -> str:
        """Replace a delivery if unchanged; return the new ETag."""
        try:
            result = self._table.update_entity(_delivery_entity(delivery), mode=UpdateMode.REPLACE, etag=etag,
                                               match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ConcurrentUpdate("the delivery changed meanwhile") from exc
        return str(result.get("etag", ""))

    def list_deliveries(self, *, tenant_id: str, subscription: str, state: DeliveryState | None = None,
                        top: int = 50, continuation: str | None = None) -> Page[WebhookDelivery]:
        """Return a subscription's deliveries by run and event order, optionally in one state."""
        validate_key(tenant_id, what="tenant id")
        query = _RANGE_FILTER
        validate_key(subscription, what="name")
        params: dict[str, Any] = {"pk": tenant_id, **prefix_range(f"{DELIVERY_PREFIX}{subscription}|")}
        if state is not None:
            query += " and State eq @state"
            params["state"] = str(state)
        return page_query(self._table, query_filter=query, parameters=params, top=top,
                          continuation=continuation, convert=_delivery_from)

    def list_run_deliveries(self, *, tenant_id: str, subscription: str,
                            run_id: str) -> builtins.list[Stored[WebhookDelivery]]:
        """Return one run's deliveries to one subscription, in event order."""
        validate_key(tenant_id, what="tenant id")
        bounds = prefix_range(f"{DELIVERY_PREFIX}{subscription}|{validate_key(run_id, what='run id')}|")
        entities = self._table.query_entities(_RANGE_FILTER, parameters={"pk": tenant_id, **bounds})
        return [Stored(_delivery_from(e), etag_of(e)) for e in entities]

    def list_due_deliveries(self, *, tenant_id: str, due_by: datetime,
                            top: int = 100) -> builtins.list[Stored[WebhookDelivery]]:
        """Return up to ``top`` pending deliveries of one tenant due at ``due_by`` (a range read)."""
        validate_key(tenant_id, what="tenant id")
        entities = self._table.query_entities(
            _DUE_FILTER, parameters={"pk": tenant_id, **_DLV_RANGE, "pending": str(DeliveryState.PENDING),
                                     "due": due_by}, results_per_page=top)
        return [Stored(_delivery_from(e), etag_of(e)) for e in itertools.islice(entities, top)]

    def delete_delivered(self, *, tenant_id: str, written_before: datetime, top: int = 1000) -> int:
        """Delete up to ``top`` delivered deliveries of one tenant last written before ``written_before``."""
        validate_key(tenant_id, what="tenant id")
        rows = self._table.query_entities(
            _DELIVERED_FILTER, parameters={"pk": tenant_id, **_DLV_RANGE, "before": written_before,
                                           "delivered": str(DeliveryState.DELIVERED)},
            select=["PartitionKey", "RowKey"], results_per_page=min(top, 1000))
        keys = [str(e["RowKey"]) for e in itertools.islice(rows, top)]
        delete_rows(self._table, tenant_id, keys)
        return len(keys)
