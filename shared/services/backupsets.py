"""Backup sets: starting a capture of many policies, planning it into batches, closing it, and reading sets.

A set is made by one ``backupset.capture`` run (the multi-item run engine):

1. the start claims the run (one transaction, :meth:`RunService.start`) and writes the set row;
2. the plan (an activity) enumerates the selection through Graph, writes one ``pending`` item row per policy
   and one row per batch listing its members, in transactions of up to 100 rows, and returns counts only;
3. batch sub-orchestrations read their members (:meth:`BackupSetService.batch_members`), capture each item
   (:meth:`shared.services.capture.CaptureService.capture`, which settles the set item and the run item)
   and store a summary per batch (:meth:`BackupSetService.close_batch`);
4. after the last batch, :meth:`BackupSetService.finish` settles any item still pending, records the set's
   changes against its baseline (the newest earlier complete set that selects at least as much), completes
   the run (counts recounted from the items once) and writes the set's verdict. The run is sealed by that
   order: no batch is running when its counts freeze, and the changes are readable once the run is terminal.

A ``backupset.add_items`` run captures named policies into an existing set with the same engine: only the
plan differs (its items come from the request, stored in the run's scope, instead of a listing), its batches
are kept apart from the capture's by run id, and its finish settles only its own members and then writes the
set's verdict from all of the set's items. Items already in the set are captured again over their row.

Cancelling (:mod:`shared.services.run_control`) terminates the orchestration and its batches, then
:meth:`BackupSetService.settle_cancelled` records what was not settled as ``skipped`` and ends the run
``cancelled``; :meth:`BackupSetService.rerun` adds the items a run failed or skipped to its set again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Literal

from shared.domain import (
    BackupSet,
    BackupSetBatch,
    BackupSetItem,
    BackupSetRequest,
    ErrorInfo,
    ItemOutcome,
    Page,
    PolicyRef,
    Principal,
    RunCounts,
    RunKind,
    RunRecord,
    RunStatus,
    RunTarget,
    Selection,
    backup_set_id_for_run,
    every_page,
    run_id_for_backup_set,
)
from shared.domain.backupsets import (
    AddItemsRequest,
    BackupSetChange,
    PlanResult,
    add_items_scope,
    backup_set_scope,
    compare_items,
    count_changes,
    coverage_of,
    is_baseline_for,
    normalise_policies,
    normalise_selection,
    set_status_for,
)
from shared.domain.batches import BATCH_SIZE, BatchSummary, batch_count, chunked, spread_by_group
from shared.domain.capture import DEFAULT_RETRY_DELAY_SECONDS, capture_item_id
from shared.errors import ConcurrentUpdate, Conflict, NotFound, RunNotFound
from shared.graph.catalog import CATALOG
from shared.graph.errors import GraphError
from shared.graph.reader import PolicySummary
from shared.graph.retry import TRANSIENT_ERRORS, wait_before_retry
from shared.ports import BackupSetRepository, BlobStore, RunRepository
from shared.services.consent import ReadableTypes
from shared.services.run_reads import RunCounter
from shared.services.runs import RunService, StartResult

__all__ = [
    "SET_KINDS", "BackupSetBusy", "BackupSetNotFound", "BackupSetService", "NothingToRerun", "PolicyLister",
    "batch_counter",
]

logger = logging.getLogger(__name__)

# ``(tenant_id, policy_type) -> the type's policies, live from Graph`` (CaptureService.list_policies).
PolicyLister = Callable[..., Awaitable[list[PolicySummary]]]
ReadableTypesCheck = Callable[[str, Sequence[str]], Awaitable[ReadableTypes]]
_MAX_TARGET_ATTEMPTS = 8
NOT_CAPTURED = ErrorInfo(code="item-not-captured",
                         message="The item was not captured before the run ended.")
CANCELLED = ErrorInfo(code="run-cancelled", message="The run was cancelled before the item was captured.")
SET_KINDS = frozenset({RunKind.BACKUPSET_CAPTURE, RunKind.BACKUPSET_ADD_ITEMS})
FOUNDATION_TYPES = frozenset(key for key, policy_type in CATALOG.items() if policy_type.foundation)
# Rows per query when a whole set is read to compare it (the most Table Storage returns per page).
_READ_PAGE = 1000


class BackupSetNotFound(NotFound):
    """No such backup set in this tenant (or the caller may not know)."""

    code = "backup-set-not-found"


class BackupSetBusy(Conflict):
    """The set's own capture is still running: items can be added once it has finished."""

    code = "backup-set-busy"


class NothingToRerun(Conflict):
    """The run has no failed or skipped item to capture again."""

    code = "nothing-to-rerun"


class BackupSetService:
    """The use cases around backup sets, called by HTTP triggers and activities."""

    def __init__(self, *, sets: BackupSetRepository, runs: RunService, run_rows: RunRepository,
                 blobs: BlobStore, list_policies: PolicyLister, clock: Callable[[], datetime],
                 batch_size: int = BATCH_SIZE, readable_types: ReadableTypesCheck | None = None,
                 retry_wait: float = DEFAULT_RETRY_DELAY_SECONDS) -> None:
        """Create the service.

        Args:
            sets: backup set repository.
            runs: the run service (starts, transitions, item outcomes).
            run_rows: the run repository, only to stamp a run's target with its set once planned.
            blobs: content-addressed bodies.
            list_policies: lists one type of a tenant live from Graph.
            clock: returns the current aware UTC time.
            batch_size: items per batch sub-orchestration.
            readable_types: splits types into those the tenant's consent lets a capture list and the rest
                (no check when ``None``: Graph's refusal then leaves a type out).
            retry_wait: seconds a plan waits before it is tried again after a transient Graph failure
                that named no wait.
        """
        self._sets = sets
        self._runs = runs
        self._run_rows = run_rows
        self._blobs = blobs
        self._list_policies = list_policies
        self._clock = clock
        self._batch_size = batch_size
        self._readable_types = readable_types
        self._retry_wait = retry_wait

    # ----------------------------------------------------------------------------------- start

    async def start(self, *, principal: Principal, tenant_id: str, request: BackupSetRequest,
                    idempotency_key: str | None) -> tuple[StartResult, BackupSet]:
        """Claim a ``backupset.capture`` run (or return the equivalent active one) and its set.

        The selection is normalised before the key is derived, so the same policies in another order
        join the same active run.

        Raises:
            InvalidRequest: the selection is empty, names an unknown type or an invalid id.
            PayloadTooLarge: the selection names too many policies.
        """
        selection = normalise_selection(request.selection, CATALOG)
        result = await self._runs.start(
            principal=principal, tenant_id=tenant_id, kind=RunKind.BACKUPSET_CAPTURE, target=RunTarget(),
            scope=backup_set_scope(request, selection), idempotency_key=idempotency_key)
        backup_set = set_of_run(result.run)
        if not result.reused:
            # Visible at once to list and get; the plan writes it too, should this process die first.
            # Create only: a late write (a storage retry) must not reset the set the plan wrote meanwhile.
            await asyncio.to_thread(self._sets.create_set, backup_set)
        return result, backup_set

    async def add_items(
        self, *, principal: Principal, tenant_id: str, backup_set_id: str, request: AddItemsRequest,
        idempotency_key: str | None,
    ) -> tuple[StartResult, BackupSet]:
        """Claim a ``backupset.add_items`` run that captures ``request.policies`` into an existing set.

        The policies are normalised (sorted, without duplicates) and ``includeFoundations`` resolved (left
        out: as the set was made) before the key is derived, so equal requests join one active run.

        Raises:
            BackupSetNotFound: no such set in this tenant.
            InvalidRequest: no policy, an unknown type or an invalid id.
            PayloadTooLarge: too many policies.
            BackupSetBusy: the set's own capture is still running.
        """
        backup_set = await asyncio.to_thread(self.get_set, tenant_id=tenant_id, backup_set_id=backup_set_id)
        policies = normalise_policies(request.policies, CATALOG)
        if await asyncio.to_thread(self._capture_active, backup_set):
            raise BackupSetBusy(f"backup set {backup_set.id} is still being captured by run "
                                f"{backup_set.run_id}; add items once it has finished",
                                run_id=backup_set.run_id)
        include_foundations = (request.include_foundations if request.include_foundations is not None
                               else backup_set.include_foundations)
        result = await self._runs.start(
            principal=principal, tenant_id=tenant_id, kind=RunKind.BACKUPSET_ADD_ITEMS,
            target=RunTarget(backup_set_id=backup_set.id),
            scope=add_items_scope(backup_set.id, policies, include_foundations),
            idempotency_key=idempotency_key)
        return result, backup_set

    def _capture_active(self, backup_set: BackupSet) -> bool:
        capture = self._capture_run(backup_set)
        return capture is not None and not capture.status.is_terminal

    # ------------------------------------------------------------------------------------ plan

    async def plan(self, *, tenant_id: str, run_id: str) -> PlanResult:
        """Enumerate the run's selection into pending items and batches; return counts only.

        Idempotent: once a set records its plan, a repeat returns the stored counts without listing again.
        Graph faults that may pass come back as ``retry``; others fail the plan with a safe error.
        """
        run = await asyncio.to_thread(self._runs.get, tenant_id=tenant_id, run_id=run_id)
        if run.kind == RunKind.BACKUPSET_ADD_ITEMS:
            return await self._plan_additions(run)
        backup_set = await asyncio.to_thread(self._sets.get_set, tenant_id=tenant_id,
                                             backup_set_id=backup_set_id_for_run(run_id))
        if backup_set is None:
            backup_set = set_of_run(run)
        if backup_set.item_count is not None and backup_set.batch_count is not None:
            return PlanResult(status="planned", backup_set_id=backup_set.id, item_count=backup_set.item_count,
                              batch_count=backup_set.batch_count,
                              include_assignments=backup_set.include_assignments)
        try:
            refs, left_out = await self._enumerate(tenant_id, backup_set)
        except TRANSIENT_ERRORS as exc:
            retry_after = wait_before_retry(exc, self._retry_wait)
            return PlanResult(status="retry", backup_set_id=backup_set.id, error=_graph_error(exc),
                              retry_after_seconds=retry_after)
        except GraphError as exc:
            logger.warning("backup set plan failed run_id=%s error_code=%s", run_id, exc.instance_code)
            return PlanResult(status="failed", backup_set_id=backup_set.id, error=_graph_error(exc))
        if await asyncio.to_thread(self._ended, tenant_id, run_id):
            # Cancelled while Graph was listing: write nothing into a set that already has its verdict.
            return PlanResult(status="failed", backup_set_id=backup_set.id, error=CANCELLED)
        items, batches = self._planned_rows(tenant_id, backup_set.id, refs, run_id=None)
        # Create only: a repeated plan (activities run at least once) must not reset items a batch has
        # captured meanwhile, nor batches that finished.
        await asyncio.to_thread(self._sets.create_items, items)
        await asyncio.to_thread(self._sets.create_batches, batches)
        planned = backup_set.model_copy(update={"item_count": len(items),
                                                "batch_count": batch_count(len(items), self._batch_size),
                                                "types_left_out": left_out or None})
        # The set row last: it is the marker that the plan is whole. A repeat that finds it written
        # leaves it, since the set may have moved on (compared, or its verdict written).
        stored = await asyncio.to_thread(self._sets.get_set, tenant_id=tenant_id, backup_set_id=planned.id)
        if stored is None or stored.item_count is None:
            await asyncio.to_thread(self._sets.put_set, planned)
        await asyncio.to_thread(self._stamp_target, tenant_id, run_id, planned.id)
        await asyncio.to_thread(self._runs.mark_running, tenant_id=tenant_id, run_id=run_id,
                                expected_items=len(items))
        logger.info("backup set planned run_id=%s items=%d batches=%d", run_id, len(items), len(batches))
        return PlanResult(status="planned", backup_set_id=planned.id, item_count=len(items),
                          batch_count=len(batches), include_assignments=planned.include_assignments)

    async def _enumerate(self, tenant_id: str, backup_set: BackupSet
                         ) -> tuple[list[tuple[str, str, str]], dict[str, ErrorInfo]]:
        """Every selected policy, and the whole types left out (see :meth:`_list_refs`)."""
        selection = backup_set.selection
        return await self._list_refs(tenant_id, selection.policies, _types_to_list(
            selection, include_foundations=backup_set.include_foundations))

    async def _list_refs(self, tenant_id: str, policies: Sequence[PolicyRef], types: Sequence[str]
                         ) -> tuple[list[tuple[str, str, str]], dict[str, ErrorInfo]]:
        """``(type, id, display name)`` of ``policies`` and of all of ``types``; the types left out, and why.

        A type the tenant's consent cannot read is left out before Graph is asked; one Graph refuses to list
        (a permission or a feature the tenant lacks) is left out too, instead of failing the whole backup for
        it. Faults that may pass still raise, so the whole plan is tried again.
        """
        found: dict[tuple[str, str], str] = {}
        for ref in policies:
            found[(ref.type, ref.id)] = ""
        left_out: dict[str, ErrorInfo] = {}
        if self._readable_types is not None and types:
            split = await self._readable_types(tenant_id, list(types))
            types, left_out = list(split.readable), split.errors()
        for type_key in types:
            try:
                listed = await self._list_policies(tenant_id=tenant_id, policy_type=type_key)
            except TRANSIENT_ERRORS:
                raise
            except GraphError as exc:
                logger.warning("backup set plan left out a type tenant_id=%s type=%s error_code=%s",
                               tenant_id, type_key, exc.instance_code)
                left_out[type_key] = ErrorInfo(
                    code=exc.instance_code,
                    message=f"Microsoft Graph refused to list {type_key}; its policies were not captured.",
                    **exc.facts())
                continue
            for summary in listed:
                found[(summary.type_key, summary.id)] = summary.name
        return [(t, i, name) for (t, i), name in sorted(found.items())], left_out

    def _planned_rows(self, tenant_id: str, backup_set_id: str, refs: Sequence[tuple[str, str, str]], *,
                      run_id: str | None) -> tuple[list[BackupSetItem], list[BackupSetBatch]]:
        """Pending items and the batches listing them (of the run ``run_id`` when it adds to the set).

        The items are spread over the batches by throttling family (:func:`spread_by_group`), so every batch
        in flight draws on every family's budget at once instead of waiting on one family's.
        """
        refs = spread_by_group(refs, _throttle_family)
        items = [BackupSetItem.pending(tenant_id=tenant_id, backup_set_id=backup_set_id, policy_type=t,
                                       policy_id=i, display_name=name, batch=n // self._batch_size)
                 for n, (t, i, name) in enumerate(refs)]
        batches = [BackupSetBatch(tenant_id=tenant_id, backup_set_id=backup_set_id, batch=number,
                                  run_id=run_id, members=tuple(PolicyRef(type=t, id=i) for t, i, _ in chunk))
                   for number, chunk in enumerate(chunked(refs, self._batch_size))]
        return items, batches

    def _ended(self, tenant_id: str, run_id: str) -> bool:
        return self._runs.get(tenant_id=tenant_id, run_id=run_id).status.is_terminal

    async def _plan_additions(self, run: RunRecord) -> PlanResult:
        """Plan a ``backupset.add_items`` run: the policies its request named (and the foundations).

        Items new to the set are created ``pending``; items the set already holds keep their row (and their
        last capture) until this run's capture settles over it, so an interrupted addition loses nothing.
        The run's ``expected_items``, written last, marks the plan whole: a repeat returns its counts.
        """
        backup_set_id = run.target.backup_set_id or ""
        backup_set = await asyncio.to_thread(self._sets.get_set, tenant_id=run.tenant_id,
                                             backup_set_id=backup_set_id)
        if backup_set is None:
            return PlanResult(status="failed", backup_set_id=backup_set_id, error=ErrorInfo(
                code="backup-set-not-found", message="The backup set no longer exists."))
        if run.expected_items is not None:
            return PlanResult(status="planned", backup_set_id=backup_set.id, item_count=run.expected_items,
                              batch_count=batch_count(run.expected_items, self._batch_size),
                              include_assignments=backup_set.include_assignments)
        policies = [PolicyRef.model_validate(p) for p in run.scope.get("policies") or []]
        foundations = sorted(FOUNDATION_TYPES) if run.scope.get("includeFoundations") else []
        try:
            refs, _ = await self._list_refs(run.tenant_id, policies, foundations)
        except TRANSIENT_ERRORS as exc:
            retry_after = wait_before_retry(exc, self._retry_wait)
            return PlanResult(status="retry", backup_set_id=backup_set.id, error=_graph_error(exc),
                              retry_after_seconds=retry_after)
        except GraphError as exc:
            logger.warning("backup set addition plan failed run_id=%s error_code=%s", run.id,
                           exc.instance_code)
            return PlanResult(status="failed", backup_set_id=backup_set.id, error=_graph_error(exc))
        if await asyncio.to_thread(self._ended, run.tenant_id, run.id):
            return PlanResult(status="failed", backup_set_id=backup_set.id, error=CANCELLED)
        items, batches = self._planned_rows(run.tenant_id, backup_set.id, refs, run_id=run.id)
        await asyncio.to_thread(self._sets.create_items, items)
        await asyncio.to_thread(self._sets.create_batches, batches)
        await asyncio.to_thread(self._runs.mark_running, tenant_id=run.tenant_id, run_id=run.id,
                                expected_items=len(items))
        logger.info("backup set addition planned run_id=%s backup_set_id=%s items=%d batches=%d", run.id,
                    backup_set.id, len(items), len(batches))
        return PlanResult(status="planned", backup_set_id=backup_set.id, item_count=len(items),
                          batch_count=len(batches), include_assignments=backup_set.include_assignments)

    def _stamp_target(self, tenant_id: str, run_id: str, backup_set_id: str) -> None:
        """Record the set on its run's target (the derived key was fixed at the claim and stays)."""
        for _ in range(_MAX_TARGET_ATTEMPTS):
            stored = self._run_rows.get(tenant_id=tenant_id, run_id=run_id)
            if stored is None:
                raise RunNotFound(f"run {run_id} not found")
            if stored.value.target.backup_set_id == backup_set_id:
                return
            target = stored.value.target.model_copy(update={"backup_set_id": backup_set_id})
            try:
                self._run_rows.update(stored.value.model_copy(update={"target": target}), etag=stored.etag)
            except ConcurrentUpdate:
                continue
            return
        logger.warning("backup set not stamped on its run run_id=%s tenant_id=%s backup_set_id=%s",
                       run_id, tenant_id, backup_set_id)

    # --------------------------------------------------------------------------------- batches

    def batch_members(self, *, tenant_id: str, backup_set_id: str, batch: int,
                      run_id: str | None = None) -> list[PolicyRef]:
        """The policies of one batch of the run ``run_id`` (default: the set's capture), as planned.

        Raises:
            NotFound: the batch was never planned.
        """
        row = self._sets.get_batch(tenant_id=tenant_id, backup_set_id=backup_set_id, batch=batch,
                                   run_id=_adding_run(backup_set_id, run_id))
        if row is None:
            raise NotFound(f"batch {batch} of backup set {backup_set_id} not found")
        return list(row.members)

    def close_batch(self, *, tenant_id: str, backup_set_id: str, summary: BatchSummary,
                    run_id: str | None = None) -> None:
        """Store a batch's summary on its row (a repeat writes the same counts)."""
        row = self._sets.get_batch(tenant_id=tenant_id, backup_set_id=backup_set_id, batch=summary.batch,
                                   run_id=_adding_run(backup_set_id, run_id))
        if row is None:
            raise NotFound(f"batch {summary.batch} of backup set {backup_set_id} not found")
        self._sets.put_batches([row.model_copy(update={
            "finished": True, "succeeded": summary.succeeded, "failed": summary.failed,
            "skipped": summary.skipped})])

    def finish(self, *, tenant_id: str, run_id: str, failure: ErrorInfo | None) -> RunRecord:
        """Settle what is still pending, complete the run (counts from its items), write the set's verdict.

        Called after every batch has finished, so nothing else writes the run's items meanwhile.
        Idempotent: a completed run is returned as it is, and the set's verdict is written again from its
        items (the same verdict, unless a later run added to the set).
        """
        return self._end(self._runs.get(tenant_id=tenant_id, run_id=run_id), failure=failure, cancelled=False)

    def settle_cancelled(self, *, tenant_id: str, run_id: str) -> RunRecord:
        """End a run whose orchestration and batches were terminated, as ``cancelled``.

        What was not settled is recorded ``skipped`` and the set's verdict is written: the per-kind hook of
        :mod:`shared.services.run_control`. Idempotent; a run that had already ended is returned as it ended.
        """
        return self._end(self._runs.get(tenant_id=tenant_id, run_id=run_id), failure=None, cancelled=True)

    def finish_run(self, *, tenant_id: str, run_id: str, failure: ErrorInfo | None) -> RunRecord:
        """End a run from outside its orchestration (never launched, or orphaned), whatever its kind.

        A backup set's run ends through :meth:`finish`, so its set is settled and gets its verdict instead
        of staying ``capturing`` (or its additions ``pending``); any other run is completed as it is.
        """
        run = self._runs.get(tenant_id=tenant_id, run_id=run_id)
        if run.kind in SET_KINDS:
            return self._end(run, failure=failure, cancelled=False)
        return self._runs.complete(tenant_id=tenant_id, run_id=run_id, failure=failure)

    def child_instances(self, *, tenant_id: str, run_id: str) -> list[str]:
        """The batch sub-orchestrations a run may have started (Durable does not pass termination down)."""
        run = self._runs.get(tenant_id=tenant_id, run_id=run_id)
        if run.kind == RunKind.BACKUPSET_ADD_ITEMS:
            batches = batch_count(run.expected_items or 0, self._batch_size)
        else:
            backup_set = self._sets.get_set(tenant_id=tenant_id, backup_set_id=backup_set_id_for_run(run_id))
            batches = (backup_set.batch_count or 0) if backup_set is not None else 0
        return [batch_instance_id(run_id, number) for number in range(batches)]

    def _end(self, run: RunRecord, *, failure: ErrorInfo | None, cancelled: bool) -> RunRecord:
        backup_set_id = _set_id_of(run)
        items: list[BackupSetItem] | None = None
        settled: list[BackupSetItem] | None = None
        if not run.status.is_terminal:
            status: Literal["failed", "skipped"] = "skipped" if cancelled else "failed"
            error = CANCELLED if cancelled else NOT_CAPTURED
            if run.kind == RunKind.BACKUPSET_ADD_ITEMS:
                self._settle_members(run, backup_set_id, error, status)
            else:
                self._settle_pending(run.tenant_id, run.id, backup_set_id, error, status)
            backup_set = self._sets.get_set(tenant_id=run.tenant_id, backup_set_id=backup_set_id)
            if backup_set is None and run.kind == RunKind.BACKUPSET_CAPTURE:
                backup_set = set_of_run(run)
            if backup_set is not None:
                items = self._record_changes(backup_set)
            run = self._runs.complete(tenant_id=run.tenant_id, run_id=run.id, failure=failure,
                                      cancelled=cancelled)
            if run.kind == RunKind.BACKUPSET_CAPTURE:
                # Nothing else writes a set's items while its own capture ends (an addition is refused
                # until then), so the verdict is given from the items just compared, not a second read.
                settled = items
        self._write_verdict(run, backup_set_id, settled)
        return run

    def _write_verdict(self, run: RunRecord, backup_set_id: str,
                       items: Sequence[BackupSetItem] | None = None) -> None:
        """The set's status and counts from all of its items (``items``, or read here).

        A set may hold the items of several runs.

        ``complete`` needs every item captured, and the set's selection listed: its own capture ending
        failed or cancelled keeps it from ``complete`` when that capture ends. While items of another run
        are still pending, the status is left as it is: that run's finish writes it.
        """
        backup_set = self._sets.get_set(tenant_id=run.tenant_id, backup_set_id=backup_set_id)
        if backup_set is None:
            if run.kind != RunKind.BACKUPSET_CAPTURE:
                return  # the set was deleted meanwhile: nothing to give a verdict on
            backup_set = set_of_run(run)
        if run.kind == RunKind.BACKUPSET_CAPTURE:
            not_whole = run.failure is not None or run.status == RunStatus.CANCELLED
        else:
            # An addition completes a set whose selection was listed once every item is captured (a rerun
            # of what a cancelled or failed capture left); a set never planned stays incomplete.
            not_whole = backup_set.item_count is None
        statuses = [item.status for item in (items if items is not None else self._all_items(backup_set))]
        captured = statuses.count("captured")
        not_captured = statuses.count("failed") + statuses.count("skipped")
        update: dict[str, object] = {"captured_count": captured, "failed_count": not_captured}
        if "pending" not in statuses:
            # A type the plan could not list is missing from the set: it is not whole either.
            update["status"] = set_status_for(captured=captured, failed=not_captured,
                                              run_failed=not_whole or bool(backup_set.types_left_out))
        if run.kind == RunKind.BACKUPSET_CAPTURE:
            update["completed_at"] = run.finished_at
        elif backup_set.item_count is not None:
            # A set whose plan never listed its selection keeps ``None``: it is not compared (see below).
            update["item_count"] = len(statuses)
        self._sets.put_set(backup_set.model_copy(update=update))

    def _capture_run(self, backup_set: BackupSet) -> RunRecord | None:
        try:
            return self._runs.get(tenant_id=backup_set.tenant_id, run_id=backup_set.run_id)
        except RunNotFound:
            return None

    def _record_changes(self, backup_set: BackupSet) -> list[BackupSetItem] | None:
        """Compare a settled set with its baseline; store one change row per line and the counts on the set.

        Runs before the run completes, so whoever sees the run terminal can read its changes. A repeat
        (the finish activity ran twice) rewrites the same rows. A set whose plan never listed the selection
        is not compared: with nothing listed, every policy of the baseline would look deleted.

        Returns:
            The set's items it compared (``None`` when it compared nothing).
        """
        if backup_set.item_count is None:
            return None
        baseline = self._baseline_for(backup_set)
        items = self._all_items(backup_set)
        changes = compare_items(backup_set, items, self._all_items(baseline) if baseline else None,
                                coverage_of(backup_set, FOUNDATION_TYPES))
        self._sets.replace_changes(tenant_id=backup_set.tenant_id, backup_set_id=backup_set.id,
                                   changes=changes)
        self._sets.put_set(backup_set.model_copy(update={
            "compared_with": baseline.id if baseline else None, "changes": count_changes(changes)}))
        logger.info("backup set compared backup_set_id=%s baseline=%s changes=%d", backup_set.id,
                    baseline.id if baseline else None, len(changes))
        return items

    def _baseline_for(self, backup_set: BackupSet) -> BackupSet | None:
        """The newest earlier complete set of the tenant that ``backup_set`` can be compared with."""
        continuation: str | None = None
        while True:
            page = self._sets.list_sets(tenant_id=backup_set.tenant_id, top=200, continuation=continuation)
            for candidate in page.items:  # newest first
                if is_baseline_for(candidate, backup_set, FOUNDATION_TYPES):
                    return candidate
            if not page.continuation:
                return None
            continuation = page.continuation

    def _all_items(self, backup_set: BackupSet) -> list[BackupSetItem]:
        return every_page(lambda continuation: self._sets.list_items(
            tenant_id=backup_set.tenant_id, backup_set_id=backup_set.id, top=_READ_PAGE,
            continuation=continuation))

    def _settle_pending(self, tenant_id: str, run_id: str, backup_set_id: str, error: ErrorInfo,
                        status: Literal["failed", "skipped"]) -> None:
        """Record every item of the set still pending as ``status`` on the run and on the set."""
        now = self._clock()
        while True:
            # Always the first page: each settled item leaves the ``pending`` filter.
            page = self._sets.list_items(tenant_id=tenant_id, backup_set_id=backup_set_id, status="pending",
                                         top=100)
            if not page.items:
                return
            for item in page.items:
                self._runs.record_item(tenant_id=tenant_id, run_id=run_id, outcome=_unsettled(item, error,
                                                                                            status, now))
            self._sets.put_items([item.model_copy(update={"status": status, "error": error})
                                  for item in page.items])

    def _settle_members(self, run: RunRecord, backup_set_id: str, error: ErrorInfo,
                        status: Literal["failed", "skipped"]) -> None:
        """Record the members of an addition's batches that have no outcome in the run as ``status``.

        Only this run's members: another run may be adding to the same set. An item the set held before
        keeps its last capture; one new to the set, still ``pending`` there, becomes ``status`` too.
        """
        if run.expected_items is None:
            return  # never planned: nothing was written to the set
        recorded = {outcome.item_id for outcome in self._all_outcomes(run)}
        now = self._clock()
        for number in range(batch_count(run.expected_items, self._batch_size)):
            row = self._sets.get_batch(tenant_id=run.tenant_id, backup_set_id=backup_set_id, batch=number,
                                       run_id=run.id)
            for member in row.members if row is not None else ():
                item_id = capture_item_id(member.type, member.id)
                if item_id in recorded:
                    continue
                item = self._sets.get_item(tenant_id=run.tenant_id, backup_set_id=backup_set_id,
                                           item_id=item_id)
                if item is None:
                    continue
                self._runs.record_item(tenant_id=run.tenant_id, run_id=run.id,
                                       outcome=_unsettled(item, error, status, now))
                if item.status == "pending":
                    self._sets.put_items([item.model_copy(update={"status": status, "error": error})])

    def _all_outcomes(self, run: RunRecord) -> list[ItemOutcome]:
        outcomes: list[ItemOutcome] = []
        continuation: str | None = None
        while True:
            page = self._runs.list_items(tenant_id=run.tenant_id, run_id=run.id, top=_READ_PAGE,
                                         continuation=continuation)
            outcomes.extend(page.items)
            if not page.continuation:
                return outcomes
            continuation = page.continuation

    # ---------------------------------------------------------------------------------- rerun

    async def rerun(self, *, principal: Principal, tenant_id: str, run: RunRecord) -> StartResult:
        """Capture the items ``run`` failed or skipped again, as a ``backupset.add_items`` run on its set.

        Raises:
            NothingToRerun: every item of the run succeeded.
            BackupSetNotFound: the set is gone (retention deleted it).
            BackupSetBusy: the set's own capture is still running.
        """
        outcomes = await asyncio.to_thread(self._all_outcomes, run)
        again = sorted({(o.policy_type, o.source_id) for o in outcomes
                        if o.status in ("failed", "skipped") and o.policy_type and o.source_id})
        if not again:
            raise NothingToRerun(f"run {run.id} has no failed or skipped item to capture again")
        result, _ = await self.add_items(
            principal=principal, tenant_id=tenant_id, backup_set_id=_set_id_of(run),
            request=AddItemsRequest(policies=[PolicyRef(type=t, id=i) for t, i in again],
                                    include_foundations=False),
            idempotency_key=None)
        return result

    # ------------------------------------------------------------------------------- reading

    def list_sets(self, *, tenant_id: str, top: int = 50, continuation: str | None = None) -> Page[BackupSet]:
        """A tenant's sets, newest first."""
        return self._sets.list_sets(tenant_id=tenant_id, top=top, continuation=continuation)

    def get_set(self, *, tenant_id: str, backup_set_id: str) -> BackupSet:
        """One set.

        Raises:
            BackupSetNotFound: no such set in this tenant.
        """
        backup_set = (self._sets.get_set(tenant_id=tenant_id, backup_set_id=backup_set_id)
                      if run_id_for_backup_set(backup_set_id) is not None else None)
        if backup_set is None:
            raise BackupSetNotFound(f"backup set {backup_set_id} not found")
        return backup_set

    def list_items(self, *, tenant_id: str, backup_set_id: str, top: int = 100,
                   continuation: str | None = None) -> Page[BackupSetItem]:
        """A set's items ordered by item id (the set must exist)."""
        self.get_set(tenant_id=tenant_id, backup_set_id=backup_set_id)
        return self._sets.list_items(tenant_id=tenant_id, backup_set_id=backup_set_id, top=top,
                                     continuation=continuation)

    def list_changes(self, *, tenant_id: str, backup_set_id: str, top: int = 100,
                     continuation: str | None = None) -> tuple[BackupSet, Page[BackupSetChange]]:
        """A set (for its baseline) and a page of its changes ordered by item id (empty until it finishes).

        Raises:
            BackupSetNotFound: no such set in this tenant.
        """
        backup_set = self.get_set(tenant_id=tenant_id, backup_set_id=backup_set_id)
        return backup_set, self._sets.list_changes(tenant_id=tenant_id, backup_set_id=backup_set_id, top=top,
                                                   continuation=continuation)

    def item_body(self, *, tenant_id: str, backup_set_id: str, item_id: str) -> bytes:
        """The captured JSON of one item, as stored (Graph's object with its sub-collections merged in).

        Raises:
            BackupSetNotFound: no such set.
            NotFound: no such item in the set (``backup-item-not-found``).
            Conflict: the item was not captured (``item-not-captured``).
        """
        self.get_set(tenant_id=tenant_id, backup_set_id=backup_set_id)
        item = self._sets.get_item(tenant_id=tenant_id, backup_set_id=backup_set_id, item_id=item_id)
        if item is None:
            raise NotFound(f"item {item_id[:100]} is not in backup set {backup_set_id}",
                           code="backup-item-not-found")
        if item.status != "captured" or item.content_hash is None:
            raise Conflict(f"item {item_id[:100]} has no captured body (status {item.status})",
                           code="item-not-captured")
        return self._blobs.get_json(tenant_id, item.content_hash)


# Up to this many items a running backup is counted from its item rows (one page of their status column), so
# small sets show progress item by item; larger ones are counted from their finished batches.
COUNT_ITEMS_UP_TO = 1000


def batch_counter(sets: BackupSetRepository, *, count_items_up_to: int = COUNT_ITEMS_UP_TO) -> RunCounter:
    """How a large backup set's run is counted while active: its finished batches' summaries, not its items.

    A monitor poll of a run of 5,000 items then reads its 51 batch rows' summary columns instead of every
    item row. The counts move a batch (100 items) at a time; the run's completion counts its items once.
    Before its plan is written, or up to ``count_items_up_to`` items, its items are counted (``None``).
    """
    def count(run: RunRecord) -> RunCounts | None:
        if run.kind not in SET_KINDS or run.expected_items is None or run.expected_items <= count_items_up_to:
            return None
        return sets.batch_counts(tenant_id=run.tenant_id, backup_set_id=_set_id_of(run),
                                 run_id=run.id if run.kind == RunKind.BACKUPSET_ADD_ITEMS else None)
    return count


def _throttle_family(ref: tuple[str, str, str]) -> str:
    policy_type = CATALOG.get(ref[0])
    return policy_type.throttle_family if policy_type is not None else ""


def batch_instance_id(run_id: str, batch: int) -> str:
    """The instance id of one batch sub-orchestration of a run (the orchestrator names them so)."""
    return f"{run_id}:batch-{batch:06d}"


def _set_id_of(run: RunRecord) -> str:
    """The set a backup set run writes: the one it made, or the one it adds to."""
    if run.kind == RunKind.BACKUPSET_ADD_ITEMS:
        return run.target.backup_set_id or ""
    return backup_set_id_for_run(run.id)


def _adding_run(backup_set_id: str, run_id: str | None) -> str | None:
    """``run_id`` when it is a run adding to the set, ``None`` for the set's own capture (its batch keys)."""
    return None if run_id is None or run_id_for_backup_set(backup_set_id) == run_id else run_id


def _unsettled(item: BackupSetItem, error: ErrorInfo, status: Literal["failed", "skipped"],
               now: datetime) -> ItemOutcome:
    return ItemOutcome(item_id=item.item_id, policy_type=item.policy_type, display_name=item.display_name,
                       source_id=item.source_id, action=status, status=status,
                       attempts=max(1, item.attempts), error=error, finished_at=now)


def set_of_run(run: RunRecord) -> BackupSet:
    """The set a ``backupset.capture`` run makes, as its scope describes it (before any plan)."""
    scope = run.scope
    return BackupSet(
        id=backup_set_id_for_run(run.id), tenant_id=run.tenant_id, name=str(scope.get("name") or ""),
        description=scope.get("description"), run_id=run.id,
        selection=Selection.model_validate(scope.get("selection") or {}),
        include_assignments=bool(scope.get("includeAssignments", True)),
        include_foundations=bool(scope.get("includeFoundations", True)),
        created_by=run.created_by, created_at=run.created_at)


def _types_to_list(selection: Selection, *, include_foundations: bool) -> list[str]:
    """Catalog types whose whole listing the selection takes (foundations added when asked for)."""
    if selection.all:
        return list(CATALOG)
    types = set(selection.types)
    if include_foundations:
        types |= {key for key, policy_type in CATALOG.items() if policy_type.foundation}
    return sorted(types)


def _graph_error(exc: GraphError) -> ErrorInfo:
    """Our code and message plus Graph's checked facts (never its text)."""
    return ErrorInfo(code=exc.instance_code, message="Microsoft Graph could not list the selected policies.",
                     **exc.facts())
