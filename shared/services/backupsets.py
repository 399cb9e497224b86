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
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

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
    RunKind,
    RunRecord,
    RunTarget,
    Selection,
    backup_set_id_for_run,
    run_id_for_backup_set,
)
from shared.domain.backupsets import (
    BackupSetChange,
    PlanResult,
    backup_set_scope,
    compare_items,
    count_changes,
    coverage_of,
    is_baseline_for,
    normalise_selection,
    set_status_for,
)
from shared.domain.batches import BATCH_SIZE, BatchSummary, batch_count, chunked
from shared.errors import ConcurrentUpdate, Conflict, NotFound, RunNotFound
from shared.graph.catalog import CATALOG
from shared.graph.errors import GraphError, GraphIncompleteRead, GraphServerError, GraphThrottled
from shared.graph.reader import PolicySummary
from shared.ports import BackupSetRepository, BlobStore, RunRepository
from shared.services.runs import RunService, StartResult

__all__ = ["BackupSetService", "PolicyLister"]

logger = logging.getLogger(__name__)

# ``(tenant_id, policy_type) -> the type's policies, live from Graph`` (CaptureService.list_policies).
PolicyLister = Callable[..., Awaitable[list[PolicySummary]]]
_TRANSIENT = (GraphThrottled, GraphServerError, GraphIncompleteRead)
_MAX_TARGET_ATTEMPTS = 8
NOT_CAPTURED = ErrorInfo(code="item-not-captured",
                         message="The item was not captured before the run ended.")
FOUNDATION_TYPES = frozenset(key for key, policy_type in CATALOG.items() if policy_type.foundation)
# Rows per query when a whole set is read to compare it (the most Table Storage returns per page).
_READ_PAGE = 1000


class BackupSetNotFound(NotFound):
    """No such backup set in this tenant (or the caller may not know)."""

    code = "backup-set-not-found"


class BackupSetService:
    """The use cases around backup sets, called by HTTP triggers and activities."""

    def __init__(self, *, sets: BackupSetRepository, runs: RunService, run_rows: RunRepository,
                 blobs: BlobStore, list_policies: PolicyLister, clock: Callable[[], datetime],
                 batch_size: int = BATCH_SIZE) -> None:
        """Create the service.

        Args:
            sets: backup set repository.
            runs: the run service (starts, transitions, item outcomes).
            run_rows: the run repository, only to stamp a run's target with its set once planned.
            blobs: content-addressed bodies.
            list_policies: lists one type of a tenant live from Graph.
            clock: returns the current aware UTC time.
            batch_size: items per batch sub-orchestration.
        """
        self._sets = sets
        self._runs = runs
        self._run_rows = run_rows
        self._blobs = blobs
        self._list_policies = list_policies
        self._clock = clock
        self._batch_size = batch_size

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

    # ------------------------------------------------------------------------------------ plan

    async def plan(self, *, tenant_id: str, run_id: str) -> PlanResult:
        """Enumerate the run's selection into pending items and batches; return counts only.

        Idempotent: once a set records its plan, a repeat returns the stored counts without listing again.
        Graph faults that may pass come back as ``retry``; others fail the plan with a safe error.
        """
        run = await asyncio.to_thread(self._runs.get, tenant_id=tenant_id, run_id=run_id)
        backup_set = await asyncio.to_thread(self._sets.get_set, tenant_id=tenant_id,
                                             backup_set_id=backup_set_id_for_run(run_id))
        if backup_set is None:
            backup_set = set_of_run(run)
        if backup_set.item_count is not None and backup_set.batch_count is not None:
            return PlanResult(status="planned", backup_set_id=backup_set.id, item_count=backup_set.item_count,
                              batch_count=backup_set.batch_count,
                              include_assignments=backup_set.include_assignments)
        try:
            refs = await self._enumerate(tenant_id, backup_set)
        except _TRANSIENT as exc:
            retry_after = exc.retry_after if isinstance(exc, GraphThrottled) else None
            return PlanResult(status="retry", backup_set_id=backup_set.id, error=_graph_error(exc),
                              retry_after_seconds=retry_after)
        except GraphError as exc:
            logger.warning("backup set plan failed run_id=%s error_code=%s", run_id, exc.instance_code)
            return PlanResult(status="failed", backup_set_id=backup_set.id, error=_graph_error(exc))
        items = [BackupSetItem.pending(tenant_id=tenant_id, backup_set_id=backup_set.id, policy_type=t,
                                       policy_id=i, display_name=name, batch=n // self._batch_size)
                 for n, (t, i, name) in enumerate(refs)]
        batches = [BackupSetBatch(tenant_id=tenant_id, backup_set_id=backup_set.id, batch=number,
                                  members=tuple(PolicyRef(type=t, id=i) for t, i, _ in chunk))
                   for number, chunk in enumerate(chunked(refs, self._batch_size))]
        # Create only: a repeated plan (activities run at least once) must not reset items a batch has
        # captured meanwhile, nor batches that finished.
        await asyncio.to_thread(self._sets.create_items, items)
        await asyncio.to_thread(self._sets.create_batches, batches)
        planned = backup_set.model_copy(update={"item_count": len(items),
                                                "batch_count": batch_count(len(items), self._batch_size)})
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

    async def _enumerate(self, tenant_id: str, backup_set: BackupSet) -> list[tuple[str, str, str]]:
        """``(type, id, display name)`` of every selected policy, sorted, without duplicates."""
        selection = backup_set.selection
        found: dict[tuple[str, str], str] = {}
        for ref in selection.policies:
            found[(ref.type, ref.id)] = ""
        for type_key in _types_to_list(selection, include_foundations=backup_set.include_foundations):
            for summary in await self._list_policies(tenant_id=tenant_id, policy_type=type_key):
                found[(summary.type_key, summary.id)] = summary.name
        return [(t, i, name) for (t, i), name in sorted(found.items())]

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

    def batch_members(self, *, tenant_id: str, backup_set_id: str, batch: int) -> list[PolicyRef]:
        """The policies of one batch, as the plan wrote them.

        Raises:
            NotFound: the batch was never planned.
        """
        row = self._sets.get_batch(tenant_id=tenant_id, backup_set_id=backup_set_id, batch=batch)
        if row is None:
            raise NotFound(f"batch {batch} of backup set {backup_set_id} not found")
        return list(row.members)

    def close_batch(self, *, tenant_id: str, backup_set_id: str, summary: BatchSummary) -> None:
        """Store a batch's summary on its row (a repeat writes the same counts)."""
        row = self._sets.get_batch(tenant_id=tenant_id, backup_set_id=backup_set_id, batch=summary.batch)
        if row is None:
            raise NotFound(f"batch {summary.batch} of backup set {backup_set_id} not found")
        self._sets.put_batches([row.model_copy(update={
            "finished": True, "succeeded": summary.succeeded, "failed": summary.failed,
            "skipped": summary.skipped})])

    def finish(self, *, tenant_id: str, run_id: str, failure: ErrorInfo | None) -> RunRecord:
        """Settle items still pending, complete the run (counts from its items) and record the set's verdict.

        Called after every batch has finished, so nothing else writes the run's items meanwhile.
        Idempotent: a completed run is returned as it is, and the set is rewritten with the same verdict.
        """
        backup_set_id = backup_set_id_for_run(run_id)
        run = self._runs.get(tenant_id=tenant_id, run_id=run_id)
        if not run.status.is_terminal:
            self._settle_pending(tenant_id, run_id, backup_set_id)
            self._record_changes(self._sets.get_set(tenant_id=tenant_id, backup_set_id=backup_set_id)
                                 or set_of_run(run))
            run = self._runs.complete(tenant_id=tenant_id, run_id=run_id, failure=failure)
        backup_set = self._sets.get_set(tenant_id=tenant_id, backup_set_id=backup_set_id) or set_of_run(run)
        self._sets.put_set(backup_set.model_copy(update={
            "status": set_status_for(captured=run.counts.succeeded, failed=run.counts.failed,
                                     run_failed=run.failure is not None),
            "captured_count": run.counts.succeeded, "failed_count": run.counts.failed,
            "completed_at": run.finished_at}))
        return run

    def finish_run(self, *, tenant_id: str, run_id: str, failure: ErrorInfo | None) -> RunRecord:
        """End a run from outside its orchestration (never launched, or orphaned), whatever its kind.

        A ``backupset.capture`` run ends through :meth:`finish`, so its set is settled and gets its verdict
        instead of staying ``capturing``; any other run is completed as it is.
        """
        run = self._runs.get(tenant_id=tenant_id, run_id=run_id)
        if run.kind == RunKind.BACKUPSET_CAPTURE:
            return self.finish(tenant_id=tenant_id, run_id=run_id, failure=failure)
        return self._runs.complete(tenant_id=tenant_id, run_id=run_id, failure=failure)

    def _record_changes(self, backup_set: BackupSet) -> None:
        """Compare a settled set with its baseline; store one change row per line and the counts on the set.

        Runs before the run completes, so whoever sees the run terminal can read its changes. A repeat
        (the finish activity ran twice) rewrites the same rows. A set whose plan never listed the selection
        is not compared: with nothing listed, every policy of the baseline would look deleted.
        """
        if backup_set.item_count is None:
            return
        baseline = self._baseline_for(backup_set)
        items = self._all_items(backup_set)
        changes = compare_items(backup_set, items, self._all_items(baseline) if baseline else None,
                                coverage_of(backup_set, FOUNDATION_TYPES))
        self._sets.put_changes(changes)
        self._sets.put_set(backup_set.model_copy(update={
            "compared_with": baseline.id if baseline else None, "changes": count_changes(changes)}))
        logger.info("backup set compared backup_set_id=%s baseline=%s changes=%d", backup_set.id,
                    baseline.id if baseline else None, len(changes))

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
        items: list[BackupSetItem] = []
        continuation: str | None = None
        while True:
            page = self._sets.list_items(tenant_id=backup_set.tenant_id, backup_set_id=backup_set.id,
                                         top=_READ_PAGE, continuation=continuation)
            items.extend(page.items)
            if not page.continuation:
                return items
            continuation = page.continuation

    def _settle_pending(self, tenant_id: str, run_id: str, backup_set_id: str) -> None:
        now = self._clock()
        while True:
            # Always the first page: each settled item leaves the ``pending`` filter.
            page = self._sets.list_items(tenant_id=tenant_id, backup_set_id=backup_set_id, status="pending",
                                         top=100)
            if not page.items:
                return
            for item in page.items:
                self._runs.record_item(tenant_id=tenant_id, run_id=run_id, outcome=ItemOutcome(
                    item_id=item.item_id, policy_type=item.policy_type, display_name=item.display_name,
                    source_id=item.source_id, action="failed", status="failed",
                    attempts=max(1, item.attempts), error=NOT_CAPTURED, finished_at=now))
            self._sets.put_items([item.model_copy(update={"status": "failed", "error": NOT_CAPTURED})
                                  for item in page.items])

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
