"""Scheduled backups and retention: the tenant's schedule, starting due slots, deleting expired sets.

Exactly one backup set per tenant per slot, however often the timer fires and however many instances run it,
rests on three things, each covering what the one before cannot:

1. The slot is part of the run's scope (the set's name carries it), so the derived key is per slot: two
   starts of one slot while its run is active join that run, and the claim transaction alone decides who
   made it.
2. Each start also passes an ``Idempotency-Key`` derived from the tenant and the slot, under one system
   principal. Its row is written in the same claim and outlives the run (24 hours), so a start that comes
   after the run finished (a second instance that read the schedule late, or a retry after this process
   died before step 3) replays the same run instead of claiming a new one.
3. Once started, the slot is recorded on the schedule (``last_slot``, a conditional write): later firings,
   also after the key has expired, see the slot as done and do not start it at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from shared.domain import BackupSet, BackupSetRequest, Principal, every_page
from shared.domain.backupsets import PolicyRef, Selection, SelectionBody, normalise_selection
from shared.domain.runs import CreatedBy
from shared.domain.schedules import (
    BackupSchedule,
    Retention,
    ScheduleRequest,
    due_slot,
    sets_past_retention,
    validate_cron,
)
from shared.errors import ConcurrentUpdate, NotFound
from shared.graph.catalog import CATALOG
from shared.ports import BackupSetRepository, Stored
from shared.services.backupsets import BackupSetService
from shared.services.blob_gc import BlobCollector
from shared.services.runs import StartResult

__all__ = ["SCHEDULER", "ScheduleNotFound", "ScheduleService", "slot_idempotency_key"]

logger = logging.getLogger(__name__)

# The principal scheduled runs are started by (and whose ``Idempotency-Key`` scope they share).
SCHEDULER = Principal(tenant_id="system", object_id="backup-scheduler", name="Scheduled backup")
_LIST_PAGE = 200
# Unreferenced blobs are collected after retention deletes sets, and at least this often per tenant.
BLOB_COLLECTION_INTERVAL = timedelta(days=1)


class ScheduleNotFound(NotFound):
    """The tenant has no backup schedule."""

    code = "schedule-not-found"


def slot_idempotency_key(tenant_id: str, slot: datetime) -> str:
    """The ``Idempotency-Key`` of a tenant's slot: equal for every start of that slot."""
    return f"schedule:{tenant_id.lower()}:{slot.strftime('%Y-%m-%dT%H:%MZ')}"


def _selection_body(selection: Selection) -> SelectionBody:
    if selection.all:
        return SelectionBody(all=True)
    if selection.types:
        return SelectionBody(types=list(selection.types))
    return SelectionBody(policies=[PolicyRef(type=p.type, id=p.id) for p in selection.policies])


class ScheduleService:
    """The use cases around scheduled backups, called by the schedule routes and the schedule timer."""

    def __init__(self, *, sets: BackupSetRepository, backup_sets: BackupSetService,
                 tenant_ids: Callable[[], Sequence[str]], clock: Callable[[], datetime],
                 blobs: BlobCollector | None = None) -> None:
        """Create the service.

        Args:
            sets: backup set repository (it also holds each tenant's schedule row).
            backup_sets: starts backup sets.
            tenant_ids: lists every managed tenant (the timer looks at each one's schedule).
            clock: returns the current aware UTC time.
            blobs: collects the content blobs no set or snapshot refers to (after retention deleted sets,
                and at least every :data:`BLOB_COLLECTION_INTERVAL`); ``None`` keeps every blob.
        """
        self._sets = sets
        self._backup_sets = backup_sets
        self._tenant_ids = tenant_ids
        self._clock = clock
        self._blobs = blobs

    # ------------------------------------------------------------------------------------ routes

    def put(self, *, principal: Principal, tenant_id: str, request: ScheduleRequest) -> BackupSchedule:
        """Create or replace the tenant's schedule.

        Only slots after this call are due; the newest slot already started is kept, so replacing a
        schedule never starts a slot twice.

        Raises:
            InvalidRequest: a bad cron (``invalid-cron``) or selection (as for a backup set).
            PayloadTooLarge: the selection names too many policies.
        """
        cron = validate_cron(request.cron)
        selection = normalise_selection(request.selection, CATALOG)
        existing = self._sets.get_schedule(tenant_id)
        schedule = BackupSchedule(
            tenant_id=tenant_id, cron=cron, selection=selection, retention=request.retention,
            created_by=CreatedBy(id=principal.object_id, name=principal.name), created_at=self._clock(),
            last_slot=existing.value.last_slot if existing is not None else None,
            blobs_collected_at=existing.value.blobs_collected_at if existing is not None else None)
        self._sets.put_schedule(schedule)
        logger.info("backup schedule saved tenant_id=%s cron=%s", tenant_id, cron)
        return schedule

    def get(self, *, tenant_id: str) -> BackupSchedule:
        """The tenant's schedule.

        Raises:
            ScheduleNotFound: the tenant has none.
        """
        stored = self._sets.get_schedule(tenant_id)
        if stored is None:
            raise ScheduleNotFound("this tenant has no backup schedule")
        return stored.value

    def delete(self, *, tenant_id: str) -> None:
        """Remove the tenant's schedule (nothing happens when there is none)."""
        self._sets.delete_schedule(tenant_id)
        logger.info("backup schedule deleted tenant_id=%s", tenant_id)

    # ------------------------------------------------------------------------------------- timer

    async def start_due(self) -> list[StartResult]:
        """Start the due slot of every tenant's schedule that has not been started; return the starts."""
        tenant_ids = await asyncio.to_thread(self._tenant_ids)
        results: list[StartResult] = []
        for tenant_id in tenant_ids:
            stored = await asyncio.to_thread(self._sets.get_schedule, tenant_id)
            if stored is None:
                continue
            try:
                result = await self.start_slot(stored)
            except Exception:  # one tenant's failure must not hold back the others
                logger.exception("scheduled backup failed to start tenant_id=%s", tenant_id)
                continue
            if result is not None:
                results.append(result)
        return results

    async def start_slot(self, stored: Stored[BackupSchedule]) -> StartResult | None:
        """Start the schedule's due slot once (see the module docstring); ``None`` when nothing is due."""
        schedule = stored.value
        slot = due_slot(schedule, self._clock())
        if slot is None or (schedule.last_slot is not None and slot <= schedule.last_slot):
            return None
        stamp = slot.strftime("%Y-%m-%d %H:%M UTC")
        request = BackupSetRequest(name=f"Scheduled backup {stamp}",
                                   description=f"Started by the tenant's backup schedule for {stamp}.",
                                   selection=_selection_body(schedule.selection))
        result, backup_set = await self._backup_sets.start(
            principal=SCHEDULER, tenant_id=schedule.tenant_id, request=request,
            idempotency_key=slot_idempotency_key(schedule.tenant_id, slot))
        # A concurrent change (another instance recording the same slot, or a new PUT) wins: either way the
        # next firing reads the schedule again, and the idempotency key covers this slot meanwhile.
        with contextlib.suppress(ConcurrentUpdate):
            await asyncio.to_thread(self._sets.put_schedule, schedule.model_copy(update={"last_slot": slot}),
                                    etag=stored.etag)
        logger.info("scheduled backup tenant_id=%s slot=%s backup_set_id=%s reused=%s", schedule.tenant_id,
                    stamp, backup_set.id, result.reused)
        return result

    # --------------------------------------------------------------------------------- retention

    async def apply_retention(self) -> int:
        """Delete, in every tenant with a schedule, the sets past its retention; return how many."""
        tenant_ids = await asyncio.to_thread(self._tenant_ids)
        deleted = 0
        for tenant_id in tenant_ids:
            try:
                deleted += await asyncio.to_thread(self._retain, tenant_id)
            except Exception:  # one tenant's failure must not hold back the others
                logger.exception("retention failed tenant_id=%s", tenant_id)
        return deleted

    def _retain(self, tenant_id: str) -> int:
        stored = self._sets.get_schedule(tenant_id)
        if stored is None:
            return 0
        deleted = self.delete_expired(tenant_id=tenant_id, retention=stored.value.retention)
        self._collect_blobs(stored, sets_deleted=deleted > 0)
        return deleted

    def _collect_blobs(self, stored: Stored[BackupSchedule], *, sets_deleted: bool) -> None:
        """Collect the tenant's unreferenced blobs after sets were deleted, or when a day has passed.

        The time is recorded on the schedule only after a collection finished, so one that failed (or a
        process that died) is made up for by the next pass within a day; two passes at once are harmless.
        """
        schedule = stored.value
        now = self._clock()
        due = (sets_deleted or schedule.blobs_collected_at is None
               or now - schedule.blobs_collected_at >= BLOB_COLLECTION_INTERVAL)
        if self._blobs is None or not due:
            return
        self._blobs.collect(schedule.tenant_id)
        # Conditional: a concurrent PUT or slot start wins, and the next pass collects again (harmless).
        with contextlib.suppress(ConcurrentUpdate):
            self._sets.put_schedule(schedule.model_copy(update={"blobs_collected_at": now}), etag=stored.etag)

    def delete_expired(self, *, tenant_id: str, retention: Retention) -> int:
        """Delete the tenant's sets past ``retention`` with their rows; return how many.

        Content blobs are shared by content hash with other sets and snapshots of the tenant: they are
        deleted by the blob collection that follows (:mod:`shared.services.blob_gc`), only once nothing
        refers to them.
        """
        doomed = sets_past_retention(self._all_sets(tenant_id), retention, self._clock())
        for backup_set in doomed:
            self._sets.delete_set(tenant_id=tenant_id, backup_set_id=backup_set.id)
            logger.info("retention deleted tenant_id=%s backup_set_id=%s", tenant_id, backup_set.id)
        return len(doomed)

    def _all_sets(self, tenant_id: str) -> list[BackupSet]:
        return every_page(lambda continuation: self._sets.list_sets(tenant_id=tenant_id, top=_LIST_PAGE,
                                                                     continuation=continuation))
