"""Reading runs: one run with its counts, a tenant's runs, a run's items, and the progress view.

An active run is counted on every read: from its items, or, for kinds that register a counter (a backup
set's runs count their finished batches' summaries, a few rows instead of every item), by that counter. A
terminal run keeps the counts frozen when it completed (:mod:`shared.services.run_transitions`).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from shared.domain import ApiModel, ItemOutcome, Page, RunCounts, RunKind, RunRecord, RunStatus
from shared.errors import RunNotFound
from shared.ports import ItemRepository, RunRepository, Stored

__all__ = ["PROGRESS_WINDOW", "ProgressEntry", "RunCounter", "RunReads"]

PROGRESS_WINDOW = timedelta(hours=1)
# Counts an active run of one kind without reading its items; ``None`` when it cannot (then its items are).
RunCounter = Callable[[RunRecord], RunCounts | None]


class ProgressEntry(ApiModel):
    """One run in the progress view, with a completion percentage when the plan size is known."""

    run: RunRecord
    percent: float | None = None


class RunReads:
    """Runs as callers see them: stored rows with live counts while active."""

    def __init__(self, *, runs: RunRepository, items: ItemRepository,
                 counters: Mapping[RunKind, RunCounter] | None = None) -> None:
        self._runs = runs
        self._items = items
        self._counters = dict(counters or {})

    def get_stored(self, tenant_id: str, run_id: str) -> Stored[RunRecord]:
        """The run's row and ETag.

        Raises:
            RunNotFound: no such run in this tenant.
        """
        stored = self._runs.get(tenant_id=tenant_id, run_id=run_id)
        if stored is None:
            raise RunNotFound(f"run {run_id} not found")
        return stored

    def with_counts(self, run: RunRecord) -> RunRecord:
        """``run`` with its current counts: frozen at completion once terminal, counted live before."""
        if run.status.is_terminal:
            return run
        counter = self._counters.get(run.kind)
        counts = counter(run) if counter is not None else None
        if counts is None:
            counts = self._items.counts(tenant_id=run.tenant_id, run_id=run.id)
        return run.model_copy(update={"counts": counts})

    def get(self, *, tenant_id: str, run_id: str) -> RunRecord:
        """Return a run with its current counts.

        Raises:
            RunNotFound: no such run in this tenant.
        """
        return self.with_counts(self.get_stored(tenant_id, run_id).value)

    def list(self, *, tenant_id: str, kind: RunKind | None = None,
             status: RunStatus | None = None, top: int = 50,
             continuation: str | None = None) -> Page[RunRecord]:
        """Return a tenant's runs newest first (pages may hold fewer than ``top`` runs)."""
        page = self._runs.list(tenant_id=tenant_id, kind=kind, status=status, top=top,
                               continuation=continuation)
        return Page[RunRecord](items=[self.with_counts(r) for r in page.items],
                               continuation=page.continuation)

    def list_items(self, *, tenant_id: str, run_id: str, status: str | None = None,
                   top: int = 100, continuation: str | None = None) -> Page[ItemOutcome]:
        """Return a run's per-item outcomes ordered by item id.

        Raises:
            RunNotFound: no such run in this tenant.
        """
        self.get_stored(tenant_id, run_id)
        return self._items.list(tenant_id=tenant_id, run_id=run_id, status=status, top=top,
                                continuation=continuation)

    def progress(self, *, tenant_ids: builtins.list[str],
                 now: datetime) -> builtins.list[ProgressEntry]:
        """Return active runs and runs finished in the last hour across tenants, newest first."""
        entries: builtins.list[ProgressEntry] = []
        for tenant_id in tenant_ids:
            for run in self._runs.list_recent(tenant_id=tenant_id,
                                              finished_since=now - PROGRESS_WINDOW):
                run = self.with_counts(run)
                entries.append(ProgressEntry(run=run, percent=_percent(run)))
        entries.sort(key=lambda e: e.run.created_at, reverse=True)
        return entries


def _percent(run: RunRecord) -> float | None:
    if run.status.is_terminal:
        return 100.0
    if run.status == RunStatus.QUEUED:
        return 0.0
    if not run.expected_items:
        return None
    done = run.counts.total
    # Never report 100 % before the run has actually completed.
    return min(99.0, round(100.0 * done / run.expected_items, 1))
