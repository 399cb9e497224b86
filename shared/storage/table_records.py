"""Table Storage adapters for item outcomes, snapshot index entries and notifications."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from azure.data.tables import TableClient, TableEntity, UpdateMode

from shared.domain import (
    ItemOutcome,
    Notification,
    Page,
    RunCounts,
    RunStatus,
    SnapshotRecord,
    counts_from_outcomes,
)
from shared.domain.batches import TRANSACTION_ROWS, chunked
from shared.storage.keys import validate_key
from shared.storage.rows import notification_sort_key
from shared.storage.table_batch import submit_transaction
from shared.storage.table_common import body_json, get_entity, pack_body, page_query

__all__ = ["TableItemRepository", "TableNotificationRepository", "TableSnapshotIndex"]


def _item_partition(tenant_id: str, run_id: str) -> str:
    return f"{validate_key(tenant_id, what='tenant id')}|{validate_key(run_id, what='run id')}"


def _item_from(entity: TableEntity) -> ItemOutcome:
    return ItemOutcome.model_validate(body_json(entity))


def _item_entity(partition: str, outcome: ItemOutcome) -> dict[str, Any]:
    return {"PartitionKey": partition, "RowKey": validate_key(outcome.item_id, what="item id"),
            "Status": outcome.status, **pack_body(outcome.model_dump_json())}


class TableItemRepository:
    """Item outcomes; partition ``<tenant>|<run>``, row key the item id."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    def upsert(self, *, tenant_id: str, run_id: str, outcome: ItemOutcome) -> None:
        """Write or replace an item outcome (keyed by run and item, so a repeat overwrites)."""
        self._table.upsert_entity(_item_entity(_item_partition(tenant_id, run_id), outcome),
                                  mode=UpdateMode.REPLACE)

    def upsert_many(self, *, tenant_id: str, run_id: str, outcomes: Sequence[ItemOutcome]) -> None:
        """Write or replace outcomes of one run: its partition, so 100 rows per entity-group transaction."""
        partition = _item_partition(tenant_id, run_id)
        entities = [_item_entity(partition, outcome) for outcome in outcomes]
        if len({entity["RowKey"] for entity in entities}) != len(entities):
            raise ValueError("a transaction writes each item once")
        for chunk in chunked(entities, TRANSACTION_ROWS):
            if len(chunk) == 1:
                # One row: a plain request, which costs less to build than a transaction of one.
                self._table.upsert_entity(chunk[0], mode=UpdateMode.REPLACE)
                continue
            submit_transaction(self._table, [("upsert", entity, {"mode": UpdateMode.REPLACE})
                                             for entity in chunk])

    def list(
        self, *, tenant_id: str, run_id: str, status: str | None = None, top: int = 100,
        continuation: str | None = None,
    ) -> Page[ItemOutcome]:
        """Return a run's items ordered by item id."""
        query = "PartitionKey eq @pk"
        params: dict[str, Any] = {"pk": _item_partition(tenant_id, run_id)}
        if status is not None:
            query += " and Status eq @status"
            params["status"] = status
        return page_query(self._table, query_filter=query, parameters=params, top=top,
                          continuation=continuation, convert=_item_from)

    def counts(self, *, tenant_id: str, run_id: str) -> RunCounts:
        """Count a run's items by status (fetches only the status column)."""
        rows = self._table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": _item_partition(tenant_id, run_id)},
            select=["Status"], results_per_page=1000,
        )
        return counts_from_outcomes([str(e["Status"]) for e in rows])


def _snapshot_from(entity: TableEntity) -> SnapshotRecord:
    return SnapshotRecord.model_validate(body_json(entity))


class TableSnapshotIndex:
    """Snapshot index entries; partition the tenant, row key the snapshot id."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    def put(self, record: SnapshotRecord) -> None:
        """Write or replace an entry (metadata only: the body is in Blob Storage)."""
        entity: dict[str, Any] = {
            "PartitionKey": validate_key(record.tenant_id, what="tenant id"),
            "RowKey": validate_key(record.snapshot_id, what="snapshot id"),
            "PolicyType": record.policy_type, "SourceId": record.source_id,
            "RunId": record.run_id or "", **pack_body(record.model_dump_json()),
        }
        self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)

    def get(self, *, tenant_id: str, snapshot_id: str) -> SnapshotRecord | None:
        """Return an entry, or ``None``."""
        entity = get_entity(self._table, validate_key(tenant_id, what="tenant id"),
                            validate_key(snapshot_id, what="snapshot id"))
        return _snapshot_from(entity) if entity is not None else None

    def list(
        self, *, tenant_id: str, policy_type: str | None = None, source_id: str | None = None,
        run_id: str | None = None,
    ) -> builtins.list[SnapshotRecord]:
        """Return a tenant's entries ordered by snapshot id, optionally filtered."""
        query = "PartitionKey eq @pk"
        params: dict[str, Any] = {"pk": validate_key(tenant_id, what="tenant id")}
        for column, name, value in (("PolicyType", "type", policy_type),
                                    ("SourceId", "source", source_id), ("RunId", "run", run_id)):
            if value is not None:
                query += f" and {column} eq @{name}"
                params[name] = value
        return [_snapshot_from(e) for e in self._table.query_entities(query, parameters=params)]


def _notification_from(entity: TableEntity) -> Notification:
    return Notification.model_validate(body_json(entity)).model_copy(
        update={"read": bool(entity.get("Read", False))})


def _parse_notification_id(notification_id: str) -> tuple[str, RunStatus] | None:
    run_id, _, status = notification_id.rpartition(".")
    try:
        return run_id, RunStatus(status)
    except ValueError:
        return None


class TableNotificationRepository:
    """Notifications; partition the principal's object id, newest run first."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    def put(self, notification: Notification) -> None:
        """Write or replace a notification (its row key derives from run and status)."""
        entity = {
            "PartitionKey": validate_key(notification.principal_id, what="principal id"),
            "RowKey": notification_sort_key(notification.run_id, notification.status),
            "Read": notification.read,
            **pack_body(notification.model_dump_json()),
        }
        self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)

    def list(
        self, *, principal_id: str, unread_only: bool = False, top: int = 50,
        continuation: str | None = None,
    ) -> Page[Notification]:
        """Return a principal's notifications, newest run first."""
        query = "PartitionKey eq @pk"
        params: dict[str, Any] = {"pk": validate_key(principal_id, what="principal id")}
        if unread_only:
            query += " and Read eq @read"
            params["read"] = False
        return page_query(self._table, query_filter=query, parameters=params, top=top,
                          continuation=continuation, convert=_notification_from)

    def get(self, *, principal_id: str, notification_id: str) -> Notification | None:
        """Return one of the principal's notifications, or ``None``."""
        parsed = _parse_notification_id(notification_id)
        if parsed is None:
            return None
        try:
            row_key = notification_sort_key(*parsed)
        except ValueError:
            return None
        entity = get_entity(self._table, validate_key(principal_id, what="principal id"), row_key)
        return _notification_from(entity) if entity is not None else None
