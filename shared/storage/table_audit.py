"""Table Storage adapter of :class:`shared.ports.AuditRepository`.

Audit events live in the access table, in the managed tenant's partition beside its grants, so that a grant
change and its event are written by one entity-group transaction (see :mod:`shared.storage.table_access`)::

    PartitionKey tenant|<managed tenant>
        grant|<principal tenant>|<principal oid>   a grant
        audit|<inverted event id>                  an audit event (ascending keys list the newest first)
"""

from __future__ import annotations

from typing import Any

from azure.data.tables import TableClient, TableEntity, UpdateMode

from shared.domain import AUDIT_ID_PREFIX, AuditEvent, Page, invert_sortable
from shared.storage.keys import validate_key
from shared.storage.rows import prefix_range
from shared.storage.table_common import body_json, pack_body, page_query

__all__ = ["AUDIT_PREFIX", "TableAuditRepository", "audit_entity", "audit_row_key", "tenant_partition"]

TENANT_PARTITION_PREFIX = "tenant|"
AUDIT_PREFIX = "audit|"
_AUDIT_RANGE = prefix_range(AUDIT_PREFIX)
_RANGE_FILTER = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"


def tenant_partition(tenant_id: str) -> str:
    """PartitionKey of a managed tenant's grants and audit events."""
    return TENANT_PARTITION_PREFIX + validate_key(tenant_id, what="tenant id")


def audit_row_key(event_id: str) -> str:
    """RowKey of an event: its inverted, time-ordered id, so ascending keys are newest first."""
    return AUDIT_PREFIX + invert_sortable(event_id.removeprefix(AUDIT_ID_PREFIX))


def audit_entity(event: AuditEvent) -> dict[str, Any]:
    """The entity of an event (``RunId`` only when set, for filtering)."""
    entity: dict[str, Any] = {
        "PartitionKey": tenant_partition(event.tenant_id), "RowKey": audit_row_key(event.id),
        "EventId": event.id, "Action": str(event.action), **pack_body(event.model_dump_json()),
    }
    if event.run_id is not None:
        entity["RunId"] = event.run_id
    return entity


def _event_from(entity: TableEntity) -> AuditEvent:
    return AuditEvent.model_validate(body_json(entity))


class TableAuditRepository:
    """Audit events, partitioned by managed tenant, in the same table as the grants."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    def append(self, event: AuditEvent) -> None:
        """Store an event; storing the same event again replaces it."""
        self._table.upsert_entity(audit_entity(event), mode=UpdateMode.REPLACE)

    def list(self, *, tenant_id: str, run_id: str | None = None, top: int = 50,
             continuation: str | None = None) -> Page[AuditEvent]:
        """Return a tenant's events newest first, optionally only those of one run."""
        query, params = _RANGE_FILTER, {"pk": tenant_partition(tenant_id), **_AUDIT_RANGE}
        if run_id is not None:
            query += " and RunId eq @run"
            params["run"] = validate_key(run_id, what="run id")
        return page_query(self._table, query_filter=query, parameters=params, top=top,
                          continuation=continuation, convert=_event_from)
