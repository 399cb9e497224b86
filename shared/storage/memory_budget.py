"""In-memory :class:`shared.ports.BudgetLedgerStore` for tests: the Table adapter's concurrency, no I/O."""

from __future__ import annotations

import threading
import uuid

from shared.errors import ConcurrentUpdate
from shared.ports import BudgetLedger, Stored

__all__ = ["InMemoryBudgetLedgerStore"]


def _copy(ledger: BudgetLedger) -> BudgetLedger:
    # Callers must not see later changes through a shared dict, as with rows read from storage.
    return BudgetLedger(ledger.slice_ms, dict(ledger.requests), dict(ledger.writes), ledger.current)


class InMemoryBudgetLedgerStore:
    """Ledgers by (tenant, key), each replaced only on the ETag it was read with.

    ``transactions`` counts calls as the Table adapter counts requests; ``fail`` makes every call raise
    ``ConnectionError`` (a storage outage).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[tuple[str, str], Stored[BudgetLedger]] = {}
        self.transactions = 0
        self.fail = False

    def _call(self) -> None:
        self.transactions += 1
        if self.fail:
            raise ConnectionError("storage is unreachable")

    def read(self, tenant_id: str, key: str) -> Stored[BudgetLedger] | None:
        """Return a copy of the ledger with its ETag, or ``None``."""
        with self._lock:
            self._call()
            stored = self._rows.get((tenant_id, key))
            if stored is None:
                return None
            return Stored(_copy(stored.value), stored.etag)

    def write(self, tenant_id: str, key: str, ledger: BudgetLedger, *, etag: str | None) -> str:
        """Create (``etag`` ``None``) or replace if unchanged; raises ``ConcurrentUpdate`` otherwise."""
        with self._lock:
            self._call()
            current = self._rows.get((tenant_id, key))
            if (current is None) != (etag is None) or (current is not None and current.etag != etag):
                raise ConcurrentUpdate("the budget ledger changed meanwhile")
            new_etag = uuid.uuid4().hex
            self._rows[(tenant_id, key)] = Stored(_copy(ledger), new_etag)
            return new_etag

    def ledger(self, tenant_id: str, key: str) -> BudgetLedger | None:
        """The stored ledger (for assertions)."""
        with self._lock:
            stored = self._rows.get((tenant_id, key))
            return stored.value if stored is not None else None
