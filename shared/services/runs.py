"""Run lifecycle: idempotent starts, status transitions, item outcomes, progress.

Starting a run is one write: a single entity-group transaction in the tenant's partition creates the run
row, an ``active|`` row for its server-derived key, an ``idem|`` row with an ``Idempotency-Key``, a lock
row for exclusive kinds, and an outbox row holding what the run still owes (its orchestration start and
its ``queued`` event). Whoever wins the claim gets a new run; the rows that made the claim fail are read
only then, to find the run to reuse or replay. Nothing is checked-then-inserted: the transaction alone
decides between concurrent starts. The outbox is delivered off the request path by
:class:`shared.services.outbox.OutboxDispatcher`.

Every later transition (``running``, terminal) writes its event row (``outbox|<run id>|<slot>``) in the same
transaction as the status change, so no event is lost between the two: the event is then delivered at once,
in the same thread (:meth:`RunService.deliver_event`), and by the outbox sweeper if that fails or the
process dies first. Each sink receives a run's events in order: an event row is delivered after the events
of the run's earlier rows that are still owed (publishing is idempotent per ``(run, status)``).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from shared.domain import (
    ApiModel,
    CreatedBy,
    ErrorInfo,
    ItemOutcome,
    Page,
    Principal,
    RunKind,
    RunRecord,
    RunStatus,
    RunTarget,
    can_transition,
    derive_idempotency_key,
    final_status,
    new_run_id,
)
from shared.domain.webhooks import event_order
from shared.errors import (
    ConcurrentUpdate,
    IdempotencyKeyReused,
    InvalidRequest,
    InvalidTransition,
    RestoreAlreadyActive,
    RunNotFound,
    ServiceUnavailable,
)
from shared.ports import (
    ActiveEntry,
    ClaimConflict,
    IdempotencyEntry,
    ItemRepository,
    LockEntry,
    OutboxEntry,
    RunClaim,
    RunEventSink,
    RunRepository,
    Stored,
)

__all__ = ["Launcher", "ProgressEntry", "RunFinisher", "RunService", "StartResult", "event_slot",
           "idempotency_scope"]

logger = logging.getLogger(__name__)

Launcher = Callable[[RunRecord], Awaitable[None]]


class RunFinisher(Protocol):
    """Ends a run from outside its orchestration (:meth:`RunService.complete`, or a kind's own ending)."""

    def __call__(self, *, tenant_id: str, run_id: str, failure: ErrorInfo | None) -> RunRecord:
        """End the run (idempotent) and return it as it ended."""
        ...


# Kinds of which at most one may be active per managed tenant, whatever the request.
EXCLUSIVE_KINDS = frozenset({RunKind.RESTORE_EXECUTE})
# Claim attempts before giving up: each retry follows a row that vanished between our claim and our
# read (a run finishing at that moment), so more than a couple means heavy contention.
MAX_CLAIM_ATTEMPTS = 8
MAX_UPDATE_ATTEMPTS = 16
PROGRESS_WINDOW = timedelta(hours=1)
# Durable runtime statuses after which an orchestration will never complete its run. ``Completed`` counts
# too: an orchestration ends its run before it completes itself, and the run is read again after the status,
# so a run still active then was left behind.
_ENDED_ORCHESTRATION = frozenset({"Completed", "Failed", "Terminated", "Canceled"})
# An instance the host does not know is orphaned only this long after its run was launched: the real
# extension answers 404 for an instance whose start message it has not processed yet.
INSTANCE_NOT_FOUND_GRACE = timedelta(minutes=2)
# The failure of a run settled because its orchestration ended without it.
ORPHANED_FAILURE_CODE = "orchestration-ended"
_MAX_IDEMPOTENCY_KEY = 255


@dataclass(frozen=True)
class StartResult:
    """The run a start request resolved to, and whether it already existed.

    A new run also carries its outbox entry and the ETags the claim returned, so the request's own
    delivery of it (:meth:`shared.services.outbox.OutboxDispatcher.submit`) needs no read.
    """

    run: RunRecord
    reused: bool
    run_etag: str | None = None
    outbox: Stored[OutboxEntry] | None = None


class ProgressEntry(ApiModel):
    """One run in the progress view, with a completion percentage when the plan size is known."""

    run: RunRecord
    percent: float | None = None


def event_slot(status: RunStatus) -> str:
    """Slot of a transition's event row: ``<order>-<status>``, so a run's event rows sort in event order."""
    return f"{event_order(status)}-{status}"


def idempotency_scope(principal: Principal, tenant_id: str, key: str) -> str:
    """Return the stored lookup key of a client ``Idempotency-Key``.

    The client's key is combined with attributes only the server knows (caller and tenant), so two
    callers who pick the same key never see each other's runs.

    Raises:
        InvalidRequest: the key is empty, too long, or not visible ASCII.
    """
    key = key.strip().strip('"')
    if not key or len(key) > _MAX_IDEMPOTENCY_KEY or not all(0x21 <= ord(c) <= 0x7E for c in key):
        raise InvalidRequest("Idempotency-Key must be 1-255 visible ASCII characters")
    material = "|".join([principal.tenant_id, principal.object_id, tenant_id.lower(), key])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


class RunService:
    """The use cases around runs, called by HTTP triggers, activities and orchestrator helpers."""

    def __init__(
        self, *, runs: RunRepository, items: ItemRepository, notifications: RunEventSink,
        clock: Callable[[], datetime], sinks: Sequence[RunEventSink] = (),
        idempotency_ttl: timedelta = timedelta(hours=24),
        launch_grace: timedelta = timedelta(seconds=10),
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
        """
        self._runs = runs
        self._items = items
        self._sinks: builtins.list[RunEventSink] = [notifications, *sinks]
        self._clock = clock
        self._idempotency_ttl = idempotency_ttl
        self.launch_grace = launch_grace

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
        derived = derive_idempotency_key(tenant_id, kind, target, scope)
        scope_key = (idempotency_scope(principal, tenant_id, idempotency_key)
                     if idempotency_key is not None else None)
        for _ in range(MAX_CLAIM_ATTEMPTS):
            now = self._clock()
            run = RunRecord(
                id=new_run_id(now), tenant_id=tenant_id, kind=kind, target=target, scope=scope,
                created_by=CreatedBy(id=principal.object_id, name=principal.name,
                                     tenant_id=principal.tenant_id),
                created_at=now,
                derived_key=derived,
            )
            # The claiming request holds the outbox lease until ``due_at``: it delivers the entry itself.
            outbox = OutboxEntry(tenant_id=tenant_id, run_id=run.id, kind=kind, created_at=now,
                                 due_at=now + self.launch_grace, attempts=1)
            claim = RunClaim(
                tenant_id=tenant_id, run=run, active=ActiveEntry(derived, run.id),
                idempotency=(IdempotencyEntry(scope_key, derived, run.id,
                                              now + self._idempotency_ttl) if scope_key else None),
                lock=LockEntry(str(kind), run.id, derived) if kind in EXCLUSIVE_KINDS else None,
                outbox=outbox,
            )
            try:
                receipt = await asyncio.to_thread(self._runs.claim, claim)
            except ClaimConflict:
                # Only now read who holds the rows; ``None`` means they were stale and are gone: claim again.
                existing = await asyncio.to_thread(
                    self._resolve_conflict, tenant_id=tenant_id, kind=kind, derived=derived,
                    scope_key=scope_key,
                )
                if existing is not None:
                    logger.info("run start reused run_id=%s tenant_id=%s kind=%s", existing.id, tenant_id,
                                kind)
                    return StartResult(existing, reused=True)
                continue
            logger.info("run claimed run_id=%s tenant_id=%s kind=%s", run.id, tenant_id, kind)
            return StartResult(run, reused=False, run_etag=receipt.run_etag,
                               outbox=(Stored(outbox, receipt.outbox_etag)
                                       if receipt.outbox_etag is not None else None))
        raise ServiceUnavailable("too many concurrent changes to this tenant's runs; retry")

    def _resolve_conflict(self, *, tenant_id: str, kind: RunKind, derived: str,
                          scope_key: str | None) -> RunRecord | None:
        """Find the run that holds this request's claim rows; ``None`` when nothing does (claim)."""
        now = self._clock()
        if scope_key is not None:
            idem = self._runs.get_idempotency(tenant_id=tenant_id, scope=scope_key)
            if idem is not None:
                return self._replay(idem, tenant_id=tenant_id, derived=derived, now=now)
        active = self._runs.get_active(tenant_id=tenant_id, derived_key=derived)
        if active is not None:
            run = self._runs.get(tenant_id=tenant_id, run_id=active.value.run_id)
            if run is None or run.value.status.is_terminal:
                self._drop(self._runs.delete_active, tenant_id=tenant_id, derived_key=derived,
                           etag=active.etag)
                return None
            if scope_key is not None and not self._attach_key(run.value, scope_key, now):
                return None
            return run.value
        if kind in EXCLUSIVE_KINDS:
            lock = self._runs.get_lock(tenant_id=tenant_id, name=str(kind))
            if lock is not None:
                holder = self._runs.get(tenant_id=tenant_id, run_id=lock.value.run_id)
                if holder is None or holder.value.status.is_terminal:
                    self._drop(self._runs.delete_lock, tenant_id=tenant_id, name=str(kind),
                               etag=lock.etag)
                    return None
                raise RestoreAlreadyActive(
                    f"restore run {lock.value.run_id} is still active on this tenant",
                    active_run_id=lock.value.run_id,
                )
        return None

    def _replay(self, idem: Stored[IdempotencyEntry], *, tenant_id: str, derived: str,
                now: datetime) -> RunRecord | None:
        run = self._runs.get(tenant_id=tenant_id, run_id=idem.value.run_id)
        expired = idem.value.expires_at <= now and (run is None or run.value.status.is_terminal)
        if run is None or expired:
            # A reuse after expiry is a new request (Stripe and the IETF draft agree).
            self._drop(self._runs.delete_idempotency, tenant_id=tenant_id, scope=idem.value.scope,
                       etag=idem.etag)
            return None
        if idem.value.fingerprint != derived:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used with a different request", run_id=run.value.id
            )
        return run.value

    def _attach_key(self, run: RunRecord, scope_key: str, now: datetime) -> bool:
        """Remember a client key for a run it did not create (it joined an active run)."""
        entry = IdempotencyEntry(scope_key, run.derived_key, run.id, now + self._idempotency_ttl)
        try:
            self._runs.claim(RunClaim(tenant_id=run.tenant_id, idempotency=entry))
        except ClaimConflict:
            return False  # the key was taken meanwhile: look again, it may be ours or a mismatch
        return True

    @staticmethod
    def _drop(delete: Callable[..., None], **kwargs: str) -> None:
        # Someone else changed or removed the row first; the next claim attempt will tell.
        with contextlib.suppress(ConcurrentUpdate):
            delete(**kwargs)

    def awaiting_launch(self, run: RunRecord, now: datetime) -> bool:
        """Whether ``run`` is queued, never launched, and past the grace its claiming request had."""
        return (run.status == RunStatus.QUEUED and run.launched_at is None
                and now - run.created_at >= self.launch_grace)

    def publish_event(self, run: RunRecord, status: RunStatus) -> None:
        """Deliver a transition of ``run`` to every event sink (idempotent per ``(run, status)``)."""
        self._publish(run, status)

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

    def deliver_event(self, entry: Stored[OutboxEntry], run: RunRecord | None = None) -> bool:
        """Deliver a transition's event row whose lease is held (``due_at`` in the future), then delete it.

        The events of the run's earlier outbox rows that are still there (its launch row's ``queued``, an
        earlier transition whose delivery failed) are published first, so every sink sees the run's events
        in order. Returns whether the row was delivered and deleted; otherwise it stays, and the outbox
        sweeper delivers it once its lease runs out.
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
            run = self._with_counts(stored.value) if stored is not None else None
        if run is not None and not self.publish_events(run, owed):
            return False
        try:
            self._runs.settle_outbox(work, etag=entry.etag)
        except ConcurrentUpdate:
            return False  # the sweeper took the row over meanwhile: it delivers it (again) and settles it
        return True

    def orphaned_by_orchestration(self, run: RunRecord, *, orchestration_status: str | None,
                                  now: datetime) -> bool:
        """Whether ``run`` is active and launched, and its orchestration will never end it.

        That is an orchestration that failed, was terminated or completed without ending the run, or an
        instance the host does not know (``None``) once :data:`INSTANCE_NOT_FOUND_GRACE` has passed since
        the launch. A run not launched yet belongs to the outbox (launched, or failed ``launch-failed``).
        """
        if run.status.is_terminal or run.launched_at is None:
            return False
        if orchestration_status is None:
            return now - run.launched_at > INSTANCE_NOT_FOUND_GRACE
        return orchestration_status in _ENDED_ORCHESTRATION

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
        run = self._get_stored(tenant_id, run_id).value
        if not self.orphaned_by_orchestration(run, orchestration_status=orchestration_status,
                                              now=self._clock()):
            return self._with_counts(run)
        logger.warning("run orphaned by its orchestration run_id=%s tenant_id=%s orchestration=%s",
                       run_id, tenant_id, orchestration_status)
        failure = ErrorInfo(code=ORPHANED_FAILURE_CODE,
                            message="The run's orchestration ended without completing the run.")
        return (finish or self.complete)(tenant_id=tenant_id, run_id=run_id, failure=failure)

    # ------------------------------------------------------------------------------ reading

    def get(self, *, tenant_id: str, run_id: str) -> RunRecord:
        """Return a run with its current counts.

        Raises:
            RunNotFound: no such run in this tenant.
        """
        return self._with_counts(self._get_stored(tenant_id, run_id).value)

    def list(self, *, tenant_id: str, kind: RunKind | None = None,
             status: RunStatus | None = None, top: int = 50,
             continuation: str | None = None) -> Page[RunRecord]:
        """Return a tenant's runs newest first (pages may hold fewer than ``top`` runs)."""
        page = self._runs.list(tenant_id=tenant_id, kind=kind, status=status, top=top,
                               continuation=continuation)
        return Page[RunRecord](items=[self._with_counts(r) for r in page.items],
                               continuation=page.continuation)

    def list_items(self, *, tenant_id: str, run_id: str, status: str | None = None,
                   top: int = 100, continuation: str | None = None) -> Page[ItemOutcome]:
        """Return a run's per-item outcomes ordered by item id.

        Raises:
            RunNotFound: no such run in this tenant.
        """
        self._get_stored(tenant_id, run_id)
        return self._items.list(tenant_id=tenant_id, run_id=run_id, status=status, top=top,
                                continuation=continuation)

    def progress(self, *, tenant_ids: builtins.list[str],
                 now: datetime) -> builtins.list[ProgressEntry]:
        """Return active runs and runs finished in the last hour across tenants, newest first."""
        entries: builtins.list[ProgressEntry] = []
        for tenant_id in tenant_ids:
            for run in self._runs.list_recent(tenant_id=tenant_id,
                                              finished_since=now - PROGRESS_WINDOW):
                run = self._with_counts(run)
                entries.append(ProgressEntry(run=run, percent=_percent(run)))
        entries.sort(key=lambda e: e.run.created_at, reverse=True)
        return entries

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

        return self._with_counts(self._update(tenant_id, run_id, change))

    def record_item(self, *, tenant_id: str, run_id: str, outcome: ItemOutcome) -> bool:
        """Persist one item's outcome (idempotent: the same item again replaces it).

        A run that already ended keeps the items it ended with: its counts were derived from them when
        it completed, and a late write (a repeated activity, or work after a cancel) would make them drift.

        Returns:
            Whether the outcome was written.

        Raises:
            RunNotFound: no such run.
        """
        if self._get_stored(tenant_id, run_id).value.status.is_terminal:
            logger.info("item outcome after the run ended ignored run_id=%s item=%s", run_id, outcome.item_id)
            return False
        self._items.upsert(tenant_id=tenant_id, run_id=run_id, outcome=outcome)
        return True

    def record_batch_item(self, *, tenant_id: str, run_id: str, outcome: ItemOutcome) -> None:
        """Persist one outcome of a batch of a multi-item run, without reading the run first (one write).

        Such a run is sealed by ordering instead of by :meth:`record_item`'s check: its orchestration
        completes it only after every batch sub-orchestration has returned, and a batch returns only after
        each of its item activities has, so no outcome of a batch item lands after the counts froze
        (``orchestrators/backup_set.py``). Single-policy runs keep the check, through :meth:`record_item`.
        ``tenant_id`` and ``run_id`` come from the orchestration's own input, never from a caller.
        """
        self._items.upsert(tenant_id=tenant_id, run_id=run_id, outcome=outcome)

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
        for _ in range(MAX_UPDATE_ATTEMPTS):
            stored = self._get_stored(tenant_id, run_id)
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

    # -------------------------------------------------------------------------------- helpers

    def _get_stored(self, tenant_id: str, run_id: str) -> Stored[RunRecord]:
        stored = self._runs.get(tenant_id=tenant_id, run_id=run_id)
        if stored is None:
            raise RunNotFound(f"run {run_id} not found")
        return stored

    def _update(self, tenant_id: str, run_id: str,
                change: Callable[[RunRecord], RunRecord | None]) -> RunRecord:
        """Apply ``change`` with optimistic concurrency; ``None`` from it means "nothing to do".

        A change of status writes the transition's event row in the same transaction and delivers it.
        """
        for _ in range(MAX_UPDATE_ATTEMPTS):
            stored = self._get_stored(tenant_id, run_id)
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

    def _event_row(self, run: RunRecord) -> OutboxEntry:
        """The event row of ``run``'s transition to its current status; the writer holds its lease."""
        now = self._clock()
        return OutboxEntry(tenant_id=run.tenant_id, run_id=run.id, kind=run.kind, created_at=now,
                           due_at=now + self.launch_grace, attempts=1, launch=False, events=(run.status,),
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

    def _with_counts(self, run: RunRecord) -> RunRecord:
        # Terminal runs keep the counts frozen at completion; active ones are counted live.
        if run.status.is_terminal:
            return run
        counts = self._items.counts(tenant_id=run.tenant_id, run_id=run.id)
        return run.model_copy(update={"counts": counts})

    def _publish(self, run: RunRecord, status: RunStatus) -> None:
        for sink in self._sinks:
            try:
                sink.publish(run, status)
            except Exception:
                # A lost notification or webhook must never fail or roll back the run itself.
                logger.exception("run event sink failed run_id=%s status=%s sink=%s",
                                 run.id, status, type(sink).__name__)


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
