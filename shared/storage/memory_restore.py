"""In-memory :class:`shared.ports.RestoreRepository` for unit tests."""

from __future__ import annotations

import threading

from shared.domain.restore import LedgerEntry, PlanRecord

__all__ = ["InMemoryRestoreRepository"]


class InMemoryRestoreRepository:
    """Ledger entries and plan records in dictionaries."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ledger: dict[tuple[str, str, str, str], LedgerEntry] = {}
        self._plans: dict[tuple[str, str], PlanRecord] = {}
        self._previews: dict[tuple[str, str], PlanRecord] = {}

    def put_ledger(self, entry: LedgerEntry) -> None:
        """Create or replace a ledger entry."""
        with self._lock:
            self._ledger[(entry.target_tenant_id, entry.source_tenant_id, entry.policy_type,
                          entry.source_id)] = entry.model_copy()

    def get_ledger(self, *, target_tenant_id: str, source_tenant_id: str, policy_type: str,
                   source_id: str) -> LedgerEntry | None:
        """One ledger entry."""
        with self._lock:
            return self._ledger.get((target_tenant_id, source_tenant_id, policy_type, source_id))

    def list_ledger(self, *, target_tenant_id: str, source_tenant_id: str) -> list[LedgerEntry]:
        """Every ledger entry of one tenant pair."""
        with self._lock:
            return [e for (t, s, _, _), e in sorted(self._ledger.items())
                    if t == target_tenant_id and s == source_tenant_id]

    def put_plan(self, record: PlanRecord) -> None:
        """Store a run's plan record (and index it as its request's newest preview)."""
        with self._lock:
            self._plans[(record.tenant_id, record.run_id)] = record
            if record.request_key:
                self._previews[(record.tenant_id, record.request_key)] = record

    def get_plan(self, *, tenant_id: str, run_id: str) -> PlanRecord | None:
        """A run's plan record."""
        with self._lock:
            return self._plans.get((tenant_id, run_id))

    def latest_preview(self, *, tenant_id: str, request_key: str) -> PlanRecord | None:
        """The newest preview plan made for one request."""
        with self._lock:
            return self._previews.get((tenant_id, request_key))
