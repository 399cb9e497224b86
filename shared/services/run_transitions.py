"""Run transitions and their events: ``running``, item outcomes, completion, and event delivery.

Every transition (``running``, terminal) writes its event row (``outbox|<run id>|<slot>``) in the same
transaction as the status change, so no event is lost between the two: the event is then delivered at once,
in the same thread (:meth:`RunTransitions.deliver_event`), and by the outbox sweeper if that fails or the
process dies first. Each sink receives a run's events in order: an event row is delivered after the events
of the run's earlier rows that are still owed (publishing is idempotent per ``(run, status)``).
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from shared.domain import (
    ErrorInfo,
    ItemOutcome,
    RunRecord,
    RunStatus,
    can_transition,
    final_status,
)
from shared.domain.webhooks import event_order
from shared.errors import ConcurrentUpdate, InvalidTransition, ServiceUnavailable
from shared.ports import ItemRepository, OutboxEntry, RunEventSink, RunRepository, Stored
from shared.services.run_reads import RunReads

__all__ = ["MAX_UPDATE_ATTEMPTS", "RunTransitions", "event_slot"]

logger = logging.getLogger(__name__)

MAX_UPDATE_ATTEMPTS = 16


def event_slot(status: RunStatus) -> str:
    """Slot of a transition's event row: ``<order>-<status>``, so a run's event rows sort in event order."""
    return f"{event_order(status)}-{status}"


class RunTransitions:
    """Status changes with optimistic concurrency, item outcomes, and the events the changes owe."""

    def __init__(self, *, runs: RunRepository, items: ItemRepository, reads: RunReads,
                 sinks: Sequence[RunEventSink], clock: Callable[[], datetime],
                 launch_grace: timedelta) -> None:
        self._runs = runs
        self._items = items
        self._reads = reads
        self._sinks = list(sinks)
        self._clock = clock
        self._launch_grace = launch_grace

    # ---------------------------------------------------------------------------- transitions

    def mark_running(self, *, tenant_id: str, run_id: str,
                     expected_items: int | None = None) -> RunRecord:
        """Move a run to ``running``; see :meth:`shared.services.runs.RunService.mark_running`."""
        now = self._clock()

        def change(run: RunRecord) -> RunRecord | None:
            if run.status != RunStatus.QUEUED:
                if run.status == RunStatus.RUNNING and expected_items is not None \
                        and run.expected_items != expected_items:
                    return run.model_copy(update={"expected_items": expected_items})
                return None
            return run.model_copy(update={
                "status": RunStatus.RUNNING, "started_at": now,
                "launched_at": run.launched_at or now,
                "expected_items": expected_items if expected_items is not None
                else run.expected_items,
            })

        return self._reads.with_counts(self._update(tenant_id, run_id, change))

    def record_item(self, *, tenant_id: str, run_id: str, outcome: ItemOutcome) -> bool:
        """Persist one item's outcome unless the run ended; see :meth:`RunService.record_item`."""
        if self._reads.get_stored(tenant_id, run_id).value.status.is_terminal:
            logger.info("item outcome after the run ended ignored run_id=%s item=%s", run_id, outcome.item_id)
            return False
        self._items.upsert(tenant_id=tenant_id, run_id=run_id, outcome=outcome)
        return True

    def record_batch_item(self, *, tenant_id: str, run_id: str, outcome: ItemOutcome) -> None:
        """Persist one outcome of a batch item without reading the run (the run is sealed by ordering)."""
        self._items.upsert(tenant_id=tenant_id, run_id=run_id, outcome=outcome)

    def record_batch_items(self, *, tenant_id: str, run_id: str, outcomes: Sequence[ItemOutcome]) -> None:
        """Persist outcomes of batch items in one transaction per 100, without reading the run."""
        self._items.upsert_many(tenant_id=tenant_id, run_id=run_id, outcomes=outcomes)

    def complete(self, *, tenant_id: str, run_id: str, failure: ErrorInfo | None = None,
                 cancelled: bool = False) -> RunRecord:
        """End a run (idempotent); see :meth:`shared.services.runs.RunService.complete`."""
        for _ in range(MAX_UPDATE_ATTEMPTS):
            stored = self._reads.get_stored(tenant_id, run_id)
            run = stored.value
            if run.status.is_terminal:
                return run
            counts = self._items.counts(tenant_id=tenant_id, run_id=run_id)
            status = (RunStatus.CANCELLED if cancelled
                      else final_status(counts, run_failed=failure is not None))
            if not can_transition(run.status, status):
                raise InvalidTransition(f"run cannot move from {run.status} to {status}")
            done = run.model_copy(update={
                "status": status, "counts": counts, "failure": failure,
                "finished_at": self._clock(),
            })
            event = self._event_row(done)
            try:
                receipt = self._runs.transition(done, etag=stored.etag, event=event, release=True)
            except ConcurrentUpdate:
                continue
            logger.info("run completed run_id=%s tenant_id=%s status=%s total=%d failed=%d",
                        run_id, tenant_id, status, counts.total, counts.failed)
            self._deliver_written(event, receipt.outbox_etag, done)
            return done
        raise ServiceUnavailable("the run kept changing while completing it; retry")

    def _update(self, tenant_id: str, run_id: str,
                change: Callable[[RunRecord], RunRecord | None]) -> RunRecord:
        """Apply ``change`` with optimistic concurrency; ``None`` from it means "nothing to do".

        A change of status writes the transition's event row in the same transaction and delivers it.
        """
        for _ in range(MAX_UPDATE_ATTEMPTS):
            stored = self._reads.get_stored(tenant_id, run_id)
            new = change(stored.value)
            if new is None:
                return stored.value
            try:
                if new.status == stored.value.status:
                    self._runs.update(new, etag=stored.etag)
                    return new
                event = self._event_row(new)
                receipt = self._runs.transition(new, etag=stored.etag, event=event)
            except ConcurrentUpdate:
                continue
            self._deliver_written(event, receipt.outbox_etag, new)
            return new
        raise ServiceUnavailable("the run kept changing while updating it; retry")

    # --------------------------------------------------------------------------------- events

    def publish_event(self, run: RunRecord, status: RunStatus) -> None:
        """Deliver a transition of ``run`` to every event sink (idempotent per ``(run, status)``)."""
        for sink in self._sinks:
            try:
                sink.publish(run, status)
            except Exception:
                # A lost notification or webhook must never fail or roll back the run itself.
                logger.exception("run event sink failed run_id=%s status=%s sink=%s",
                                 run.id, status, type(sink).__name__)

    def publish_events(self, run: RunRecord, statuses: Sequence[RunStatus]) -> bool:
        """Deliver ``statuses`` of ``run`` in order to every sink; whether every sink took all of them.

        A sink that fails gets none of the later statuses (so it never sees them out of order); the other
        sinks go on. The caller keeps the outbox row when this returns ``False``, and it is delivered again.
        """
        delivered = True
        for sink in self._sinks:
            try:
                for status in statuses:
                    sink.publish(run, status)
            except Exception:
                # A sink's failure never fails the run: the event row stays and is delivered again.
                logger.exception("run event sink failed run_id=%s sink=%s", run.id, type(sink).__name__)
                delivered = False
        return delivered

    def deliver_event(self, entry: Stored[OutboxEntry], run: RunRecord | None = None,
                      publish: Callable[[RunRecord, Sequence[RunStatus]], bool] | None = None) -> bool:
        """Deliver a transition's event row whose lease is held, then delete it.

        See :meth:`shared.services.runs.RunService.deliver_event`; ``publish`` defaults to
        :meth:`publish_events`.
        """
        work = entry.value
        rows = self._runs.list_run_outbox(tenant_id=work.tenant_id, run_id=work.run_id)
        owed: builtins.list[RunStatus] = []
        for row in rows:
            if row.value.slot < work.slot:
                owed += [s for s in row.value.events if s not in owed]
        owed += [s for s in work.events if s not in owed]
        if run is None:
            stored = self._runs.get(tenant_id=work.tenant_id, run_id=work.run_id)
            run = self._reads.with_counts(stored.value) if stored is not None else None
        if run is not None and not (publish or self.publish_events)(run, owed):
            return False
        try:
            self._runs.settle_outbox(work, etag=entry.etag)
        except ConcurrentUpdate:
            return False  # the sweeper took the row over meanwhile: it delivers it (again) and settles it
        return True

    def _event_row(self, run: RunRecord) -> OutboxEntry:
        """The event row of ``run``'s transition to its current status; the writer holds its lease."""
        now = self._clock()
        return OutboxEntry(tenant_id=run.tenant_id, run_id=run.id, kind=run.kind, created_at=now,
                           due_at=now + self._launch_grace, attempts=1, launch=False, events=(run.status,),
                           slot=event_slot(run.status))

    def _deliver_written(self, event: OutboxEntry, etag: str | None, run: RunRecord) -> None:
        """Deliver an event row this thread just wrote (the sweeper delivers it if this does not)."""
        if etag is None:
            return
        try:
            self.deliver_event(Stored(event, etag), run)
        except Exception:  # noqa: BLE001 - whatever failed, the row is delivered later
            # Storage failing now: the row stays and the sweeper delivers it; the transition stands.
            logger.warning("run event not delivered yet run_id=%s status=%s", run.id, run.status)
