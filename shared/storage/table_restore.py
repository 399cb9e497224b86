"""Table Storage adapter of :class:`shared.ports.RestoreRepository`: the id ledger and plan records.

One table, partitioned by the managed tenant a restore writes to::

    PartitionKey tenant|<target tenant>
        ledger|<source tenant>|<policy type>|<source id>   where a source object was restored to
        plan|<run id>                                      a run's plan: blob hash and summary
        preview|<request key>                              the newest preview of one request
"""

from __future__ import annotations

from typing import Any

from azure.data.tables import TableClient, TableEntity, UpdateMode

from shared.domain.restore import LedgerEntry, PlanRecord
from shared.storage.keys import validate_key
from shared.storage.rows import prefix_range
from shared.storage.table_common import body_json, get_entity, pack_body

__all__ = ["TableRestoreRepository", "ledger_row_key"]

_RANGE_FILTER = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"


def _partition(tenant_id: str) -> str:
    return "tenant|" + validate_key(tenant_id, what="tenant id")


def ledger_row_key(source_tenant_id: str, policy_type: str, source_id: str) -> str:
    """RowKey of a ledger entry."""
    return validate_key(f"ledger|{source_tenant_id}|{policy_type}|{source_id}", what="ledger key")


def _entity(partition: str, row_key: str, body: str) -> dict[str, Any]:
    return {"PartitionKey": partition, "RowKey": row_key, **pack_body(body)}


class TableRestoreRepository:
    """Ledger entries and plan records of restores."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    def put_ledger(self, entry: LedgerEntry) -> None:
        """Create or replace a ledger entry."""
        row = ledger_row_key(entry.source_tenant_id, entry.policy_type, entry.source_id)
        self._table.upsert_entity(_entity(_partition(entry.target_tenant_id), row, entry.model_dump_json()),
                                  mode=UpdateMode.REPLACE)

    def get_ledger(self, *, target_tenant_id: str, source_tenant_id: str, policy_type: str,
                   source_id: str) -> LedgerEntry | None:
        """One ledger entry."""
        entity = get_entity(self._table, _partition(target_tenant_id),
                            ledger_row_key(source_tenant_id, policy_type, source_id))
        return LedgerEntry.model_validate(body_json(entity)) if entity is not None else None

    def list_ledger(self, *, target_tenant_id: str, source_tenant_id: str) -> list[LedgerEntry]:
        """Every ledger entry of one tenant pair (one range query)."""
        prefix = f"ledger|{validate_key(source_tenant_id, what='tenant id')}|"
        rows = self._table.query_entities(_RANGE_FILTER, parameters={
            "pk": _partition(target_tenant_id), **prefix_range(prefix)})
        return [LedgerEntry.model_validate(body_json(row)) for row in rows]

    def put_plan(self, record: PlanRecord) -> None:
        """Store a run's plan record, and index it as the newest preview of its request."""
        partition = _partition(record.tenant_id)
        self._table.upsert_entity(_entity(partition, f"plan|{validate_key(record.run_id, what='run id')}",
                                          record.model_dump_json()), mode=UpdateMode.REPLACE)
        if record.request_key:
            self._table.upsert_entity(
                _entity(partition, f"preview|{validate_key(record.request_key, what='request key')}",
                        record.model_dump_json()), mode=UpdateMode.REPLACE)

    def get_plan(self, *, tenant_id: str, run_id: str) -> PlanRecord | None:
        """A run's plan record."""
        return self._record(_partition(tenant_id), f"plan|{validate_key(run_id, what='run id')}")

    def latest_preview(self, *, tenant_id: str, request_key: str) -> PlanRecord | None:
        """The newest preview plan made for one request."""
        return self._record(_partition(tenant_id), f"preview|{validate_key(request_key, what='request key')}")

    def _record(self, partition: str, row_key: str) -> PlanRecord | None:
        entity: TableEntity | None = get_entity(self._table, partition, row_key)
        return PlanRecord.model_validate(body_json(entity)) if entity is not None else None
