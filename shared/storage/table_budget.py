"""Table Storage adapter of the shared Graph request budgets (:class:`shared.ports.BudgetLedgerStore`).

One row per (managed tenant, app, throttle family)::

    PartitionKey <managed tenant>
        <app client id>|<family>   SliceMs, Current, Requests and Writes (JSON: slice number -> requests)

A row holds only the slices of one budget window and a few ahead (about 25 numbers per direction), and every
write replaces it on the ETag it was read with.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.errors import ConcurrentUpdate
from shared.ports import BudgetLedger, Stored
from shared.storage.keys import validate_key
from shared.storage.table_common import etag_of, get_entity

__all__ = ["TableBudgetLedgerStore"]


def _slices(text: Any) -> dict[int, int]:
    raw = json.loads(str(text or "{}"))
    return {int(index): int(count) for index, count in raw.items()} if isinstance(raw, dict) else {}


def _text(slices: Mapping[int, int]) -> str:
    return json.dumps({str(index): count for index, count in sorted(slices.items())}, separators=(",", ":"))


class TableBudgetLedgerStore:
    """Ledgers in a table that is resolved on first use, so a storage outage at start-up is survivable.

    ``transactions`` counts the requests this adapter sent (reads and writes, refused ones included);
    ``conflicts`` the writes refused because another process wrote first.
    """

    def __init__(self, table: Callable[[], TableClient]) -> None:
        self._table_factory = table
        self._table: TableClient | None = None
        self._lock = threading.Lock()
        self.transactions = 0
        self.conflicts = 0

    def _client(self) -> TableClient:
        if self._table is None:
            self._table = self._table_factory()
        return self._table

    def _count(self) -> None:
        with self._lock:
            self.transactions += 1

    def read(self, tenant_id: str, key: str) -> Stored[BudgetLedger] | None:
        """Return the ledger with its ETag, or ``None``."""
        table = self._client()
        self._count()
        entity = get_entity(table, validate_key(tenant_id, what="tenant id"), validate_key(key))
        if entity is None:
            return None
        ledger = BudgetLedger(slice_ms=int(entity.get("SliceMs", 0)),
                              requests=_slices(entity.get("Requests")), writes=_slices(entity.get("Writes")),
                              current=int(str(entity.get("Current") or 0)))
        return Stored(ledger, etag_of(entity))

    def write(self, tenant_id: str, key: str, ledger: BudgetLedger, *, etag: str | None) -> str:
        """Create the row (``etag`` ``None``) or replace it if unchanged; return the new ETag.

        Raises:
            ConcurrentUpdate: another process created or changed the row first.
        """
        table = self._client()
        entity = {"PartitionKey": validate_key(tenant_id, what="tenant id"), "RowKey": validate_key(key),
                  "SliceMs": ledger.slice_ms, "Requests": _text(ledger.requests),
                  "Writes": _text(ledger.writes),
                  # A slice number is past the 32 bits an integer property holds by default.
                  "Current": str(ledger.current)}
        self._count()
        try:
            if etag is None:
                result = table.create_entity(entity)
            else:
                result = table.update_entity(entity, mode=UpdateMode.REPLACE, etag=etag,
                                             match_condition=MatchConditions.IfNotModified)
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            with self._lock:
                self.conflicts += 1
            raise ConcurrentUpdate("the budget ledger changed meanwhile") from None
        return str(result["etag"])
