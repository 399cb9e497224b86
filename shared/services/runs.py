"""Run lifecycle: idempotent starts, status transitions, item outcomes, progress.

:class:`RunService` is the one entry point callers use (HTTP triggers, activities, orchestrator helpers, the
outbox and recovery sweepers). It keeps no logic of its own; each responsibility lives in its module:

- :mod:`shared.services.run_claims`: idempotent starts, one entity-group transaction per claim;
- :mod:`shared.services.run_transitions`: ``running``, item outcomes, completion, and the event row each
  transition writes in its own transaction and delivers in order;
- :mod:`shared.services.run_reads`: runs with their counts, a run's items, the progress view;
- :mod:`shared.services.run_recovery`: the rules for runs never launched or left behind by their
  orchestration.

The names those modules export are re-exported here, so existing imports keep working.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from shared.domain import (
    ErrorInfo,
    ItemOutcome,
    Page,
    Principal,
    RunKind,
    RunRecord,
    RunStatus,
    RunTarget,
)
from shared.ports import ItemRepository, OutboxEntry, RunEventSink, RunRepository, Stored
from shared.services.run_claims import (
    EXCLUSIVE_KINDS,
    MAX_CLAIM_ATTEMPTS,
    RunClaims,
    StartResult,
    idempotency_scope,
)
from shared.services.run_reads import PROGRESS_WINDOW, ProgressEntry, RunCounter, RunReads
from shared.services.run_recovery import (
    INSTANCE_NOT_FOUND_GRACE,
    ORPHANED_FAILURE_CODE,
    RunFinisher,
    RunRecovery,
)
from shared.services.run_transitions import MAX_UPDATE_ATTEMPTS, RunTransitions, event_slot

__all__ = ["EXCLUSIVE_KINDS", "INSTANCE_NOT_FOUND_GRACE", "MAX_CLAIM_ATTEMPTS", "MAX_UPDATE_ATTEMPTS",
           "ORPHANED_FAILURE_CODE", "PROGRESS_WINDOW", "Launcher", "ProgressEntry", "RunFinisher",
           "RunService", "StartResult", "event_slot", "idempotency_scope"]

Launcher = Callable[[RunRecord], Awaitable[None]]


class RunService:
    """The use cases around runs, called by HTTP triggers, activities and orchestrator helpers."""

    def __init__(
        self, *, runs: RunRepository, items: ItemRepository, notifications: RunEventSink,
        clock: Callable[[], datetime], sinks: Sequence[RunEventSink] = (),
        idempotency_ttl: timedelta = timedelta(hours=24),
        launch_grace: timedelta = timedelta(seconds=10),
        counters: Mapping[RunKind, RunCounter] | None = None,
    ) -> None:
        """Create the service.

        Args:
            runs: run repository.
            items: item outcome repository.
            notifications: the notification writer (the first event sink).
            clock: returns the current aware UTC time.
            sinks: further event sinks (webhooks), called after the notification writer.
            idempotency_ttl: minimum time an ``Idempotency-Key`` is remembered (kept longer while its run
                is active).
            launch_grace: how long the request that claimed a run has to deliver its outbox entry before
                anyone else (the sweeper, the monitor, an identical start) may.
            counters: how an active run of a kind is counted without reading its items (see
                :mod:`shared.services.run_reads`); other kinds are counted from their items.
        """
        self._launch_grace = launch_grace
        self._reads = RunReads(runs=runs, items=items, counters=counters)
        self._claims = RunClaims(runs=runs, clock=clock, idempotency_ttl=idempotency_ttl,
                                 launch_grace=launch_grace)
        self._transitions = RunTransitions(runs=runs, items=items, reads=self._reads,
                                           sinks=[notifications, *sinks], clock=clock,
                                           launch_grace=launch_grace)
        self._recovery = RunRecovery(reads=self._reads, clock=clock, launch_grace=launch_grace)

    @property
    def launch_grace(self) -> timedelta:
        """How long the request that claimed a run has to deliver its outbox entry itself."""
        return self._launch_grace

    # ----------------------------------------------------------------------------------- start

    async def start(
        self, *, principal: Principal, tenant_id: str, kind: RunKind, target: RunTarget,
        scope: dict[str, Any], idempotency_key: str | None,
    ) -> StartResult:
        """Claim a new run, or return the equivalent run that is already active (or replayed).

        The orchestration is not started here: a new run comes back with its outbox entry, which the
        caller hands to the outbox dispatcher (and the sweeper delivers if the caller never does).

        Args:
            principal: the caller (already authorized for ``kind`` on ``tenant_id``).
            tenant_id: the managed tenant.
            kind: what to run.
            target: the object acted on.
            scope: the request's scope and options; part of the derived key.
            idempotency_key: the client's ``Idempotency-Key`` header, if any.

        Returns:
            The run and whether it was reused.

        Raises:
            IdempotencyKeyReused: the key was used before with a different request.
            RestoreAlreadyActive: another restore is active on the tenant.
            ServiceUnavailable: the claim kept losing to concurrent changes.
        """
        return await self._claims.start(principal=principal, tenant_id=tenant_id, kind=kind, target=target,
                                        scope=scope, idempotency_key=idempotency_key)

    # ------------------------------------------------------------------------- launch and recovery

    def awaiting_launch(self, run: RunRecord, now: datetime) -> bool:
        """Whether ``run`` is queued, never launched, and past the grace its claiming request had."""
        return self._recovery.awaiting_launch(run, now)

    def orphaned_by_orchestration(self, run: RunRecord, *, orchestration_status: str | None,
                                  now: datetime) -> bool:
        """Whether ``run`` is active and launched, and its orchestration will never end it.

        That is an orchestration that failed, was terminated or completed without ending the run, or an
        instance the host does not know (``None``) once :data:`INSTANCE_NOT_FOUND_GRACE` has passed since
        the launch. A run not launched yet belongs to the outbox (launched, or failed ``launch-failed``).
        """
        return self._recovery.orphaned_by_orchestration(run, orchestration_status=orchestration_status,
                                                        now=now)

    def settle_if_orchestration_ended(self, *, tenant_id: str, run_id: str, orchestration_status: str | None,
                                      finish: RunFinisher | None = None) -> RunRecord:
        """Fail an active run whose orchestration ended without completing it.

        An orchestration normally ends the run itself. If it failed outright or was terminated, or its
        instance is gone, nothing else would: the run would stay active, keep its idempotency key, and the
        monitor would answer 202 forever. Callers read the orchestration's runtime status first (``None``
        when the instance does not exist); the run is read after it, so a run its orchestration ended
        meanwhile is left as it ended. The rule is :meth:`orphaned_by_orchestration`.

        Args:
            tenant_id: the managed tenant.
            run_id: the run (its orchestration instance id).
            orchestration_status: ``Running``, ``Failed``, ``Terminated`` ... or ``None``.
            finish: ends the orphaned run (default :meth:`complete`); a kind that keeps more than the run
                (a backup set) ends it its own way.

        Returns:
            The run, failed with ``orchestration-ended`` if it was orphaned, otherwise unchanged.
        """
        return self._recovery.settle_if_orchestration_ended(
            tenant_id=tenant_id, run_id=run_id, orchestration_status=orchestration_status,
            finish=finish or self.complete)

    # ---------------------------------------------------------------------------------- events

    def publish_event(self, run: RunRecord, status: RunStatus) -> None:
        """Deliver a transition of ``run`` to every event sink (idempotent per ``(run, status)``)."""
        self._transitions.publish_event(run, status)

    def publish_events(self, run: RunRecord, statuses: Sequence[RunStatus]) -> bool:
        """Deliver ``statuses`` of ``run`` in order to every sink; whether every sink took all of them.

        A sink that fails gets none of the later statuses (so it never sees them out of order); the other
        sinks go on. The caller keeps the outbox row when this returns ``False``, and it is delivered again.
        """
        return self._transitions.publish_events(run, statuses)

    def deliver_event(self, entry: Stored[OutboxEntry], run: RunRecord | None = None) -> bool:
        """Deliver a transition's event row whose lease is held (``due_at`` in the future), then delete it.

        The events of the run's earlier outbox rows that are still there (its launch row's ``queued``, an
        earlier transition whose delivery failed) are published first, so every sink sees the run's events
        in order. Returns whether the row was delivered and deleted; otherwise it stays, and the outbox
        sweeper delivers it once its lease runs out.
        """
        return self._transitions.deliver_event(entry, run, publish=self.publish_events)

    # ------------------------------------------------------------------------------ reading

    def get(self, *, tenant_id: str, run_id: str) -> RunRecord:
        """Return a run with its current counts.

        Raises:
            RunNotFound: no such run in this tenant.
        """
        return self._reads.get(tenant_id=tenant_id, run_id=run_id)

    def list(self, *, tenant_id: str, kind: RunKind | None = None,
             status: RunStatus | None = None, top: int = 50,
             continuation: str | None = None) -> Page[RunRecord]:
        """Return a tenant's runs newest first (pages may hold fewer than ``top`` runs)."""
        return self._reads.list(tenant_id=tenant_id, kind=kind, status=status, top=top,
                                continuation=continuation)

    def list_items(self, *, tenant_id: str, run_id: str, status: str | None = None,
                   top: int = 100, continuation: str | None = None) -> Page[ItemOutcome]:
        """Return a run's per-item outcomes ordered by item id.

        Raises:
            RunNotFound: no such run in this tenant.
        """
        return self._reads.list_items(tenant_id=tenant_id, run_id=run_id, status=status, top=top,
                                      continuation=continuation)

    def progress(self, *, tenant_ids: builtins.list[str],
                 now: datetime) -> builtins.list[ProgressEntry]:
        """Return active runs and runs finished in the last hour across tenants, newest first."""
        return self._reads.progress(tenant_ids=tenant_ids, now=now)

    # ---------------------------------------------------------------------------- transitions

    def mark_running(self, *, tenant_id: str, run_id: str,
                     expected_items: int | None = None) -> RunRecord:
        """Move a run to ``running`` (idempotent; a terminal run is returned unchanged).

        Args:
            tenant_id: the managed tenant.
            run_id: the run.
            expected_items: how many items the run plans to process, for progress percentages.

        Raises:
            RunNotFound: no such run.
        """
        return self._transitions.mark_running(tenant_id=tenant_id, run_id=run_id,
                                              expected_items=expected_items)

    def record_item(self, *, tenant_id: str, run_id: str, outcome: ItemOutcome) -> bool:
        """Persist one item's outcome (idempotent: the same item again replaces it).

        A run that already ended keeps the items it ended with: its counts were derived from them when
        it completed, and a late write (a repeated activity, or work after a cancel) would make them drift.

        Returns:
            Whether the outcome was written.

        Raises:
            RunNotFound: no such run.
        """
        return self._transitions.record_item(tenant_id=tenant_id, run_id=run_id, outcome=outcome)

    def record_batch_item(self, *, tenant_id: str, run_id: str, outcome: ItemOutcome) -> None:
        """Persist one outcome of a batch of a multi-item run, without reading the run first (one write).

        Such a run is sealed by ordering instead of by :meth:`record_item`'s check: its orchestration
        completes it only after every batch sub-orchestration has returned, and a batch returns only after
        each of its item activities has, so no outcome of a batch item lands after the counts froze
        (``orchestrators/backup_set.py``). Single-policy runs keep the check, through :meth:`record_item`.
        ``tenant_id`` and ``run_id`` come from the orchestration's own input, never from a caller.
        """
        self._transitions.record_batch_item(tenant_id=tenant_id, run_id=run_id, outcome=outcome)

    def record_batch_items(self, *, tenant_id: str, run_id: str, outcomes: Sequence[ItemOutcome]) -> None:
        """Persist outcomes of batch items like :meth:`record_batch_item`, in one transaction per 100.

        The items of a run share its partition, so a chunk's outcomes are written together.

        Raises:
            ValueError: an item appears twice.
        """
        self._transitions.record_batch_items(tenant_id=tenant_id, run_id=run_id, outcomes=outcomes)

    def complete(self, *, tenant_id: str, run_id: str, failure: ErrorInfo | None = None,
                 cancelled: bool = False) -> RunRecord:
        """End a run: counts from its items, status from :func:`final_status`, active key released.

        Idempotent: a run that is already terminal is returned unchanged.

        Args:
            tenant_id: the managed tenant.
            run_id: the run.
            failure: why the run as a whole failed, if it did.
            cancelled: end the run as ``cancelled``.

        Raises:
            RunNotFound: no such run.
        """
        return self._transitions.complete(tenant_id=tenant_id, run_id=run_id, failure=failure,
                                          cancelled=cancelled)
