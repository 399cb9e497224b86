"""Delivering run outboxes: starting each claimed run's orchestration and publishing its events.

A start writes the run and its outbox entry in one transaction and answers at once (see
:mod:`shared.services.runs`). The entry is then delivered, at least once, by whoever holds its lease
(``OutboxEntry.due_at``):

* the request that claimed the run, right away, in a background task of the same process
  (:meth:`OutboxDispatcher.submit`): the claim itself is its lease, so it reads nothing first;
* the sweeper, a timer every few seconds (:meth:`OutboxDispatcher.sweep`), for entries whose lease ran out
  (the process died, ``start_new`` failed, the task was lost), taking the lease with a conditional write;
* the monitor or an identical start, the same way, as a nudge (:meth:`OutboxDispatcher.nudge`).

Delivering is: start the orchestration with ``instance_id = run.id`` unless the run already started or
ended (an instance that already exists is success), publish the entry's events to the sinks (each keyed by
``(run, status)``, so a repeat adds nothing), then delete the entry and stamp ``launched_at`` on the run in
one transaction, conditional on both ETags. A later transition's event row (``slot`` set, no launch) is
delivered by :meth:`RunService.deliver_event`, after the run's earlier events still owed. A run whose
launch keeps failing is failed with ``launch-failed`` after ``abandon_after``, which frees its key for a new
start.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from shared.domain import ErrorInfo, RunKind, RunRecord, RunStatus
from shared.domain.backupsets import BackupSetRunInput
from shared.domain.capture import PolicyCaptureCommand
from shared.domain.restore import RestoreRunInput
from shared.durable_names import BACKUP_SET_ORCHESTRATOR, POLICY_CAPTURE_ORCHESTRATOR, RESTORE_ORCHESTRATOR
from shared.errors import ConcurrentUpdate
from shared.ports import OutboxEntry, RunRepository, Stored
from shared.services.runs import Launcher, RunFinisher, RunService, StartResult

__all__ = ["OrchestrationClient", "OutboxDispatcher", "orchestration_launcher"]

logger = logging.getLogger(__name__)

MAX_SETTLE_ATTEMPTS = 4
# Durable runtime statuses of an instance that exists (so a failed start_new already got through).
_EXISTING_INSTANCE = frozenset({"Pending", "Running", "ContinuedAsNew", "Suspended", "Completed", "Failed",
                                "Terminated", "Canceled"})


class OrchestrationClient(Protocol):
    """The part of the Durable client a launch uses (``DurableOrchestrationClient`` in the app)."""

    async def start_new(self, orchestration_function_name: str, instance_id: str | None = None,
                        client_input: Any | None = None) -> str:
        """Start an orchestration instance."""
        ...

    async def get_status(self, instance_id: str) -> Any:
        """Return an instance's status (its ``runtime_status`` is ``None`` when it does not exist)."""
        ...


def _policy_capture_input(run: RunRecord) -> dict[str, Any]:
    return PolicyCaptureCommand(tenant_id=run.tenant_id, run_id=run.id,
                                policy_type=run.target.policy_type or "",
                                policy_id=run.target.policy_id or "").model_dump(mode="json")


def _backup_set_input(run: RunRecord) -> dict[str, Any]:
    # The selection stays on the run: the plan activity reads it from there.
    return BackupSetRunInput(tenant_id=run.tenant_id, run_id=run.id).model_dump(mode="json")


def _restore_input(run: RunRecord) -> dict[str, Any]:
    # The request stays on the run's scope: the plan activity reads it from there.
    return RestoreRunInput(tenant_id=run.tenant_id, run_id=run.id,
                           execute=run.kind == RunKind.RESTORE_EXECUTE).model_dump(mode="json")


# Orchestration inputs are built from the stored run only (ids and small scope), never from request bodies,
# so a relaunch after a crash starts exactly the same work.
_ORCHESTRATIONS = {
    RunKind.POLICY_CAPTURE: (POLICY_CAPTURE_ORCHESTRATOR, _policy_capture_input),
    RunKind.BACKUPSET_CAPTURE: (BACKUP_SET_ORCHESTRATOR, _backup_set_input),
    RunKind.BACKUPSET_ADD_ITEMS: (BACKUP_SET_ORCHESTRATOR, _backup_set_input),
    RunKind.RESTORE_PREVIEW: (RESTORE_ORCHESTRATOR, _restore_input),
    RunKind.RESTORE_EXECUTE: (RESTORE_ORCHESTRATOR, _restore_input),
}


def orchestration_launcher(client: OrchestrationClient) -> Launcher:
    """A launcher that starts a run's orchestration with ``instance_id = run.id``.

    Starting an id whose instance is pending or running fails in the host (``overridableExistingInstance
    States`` is ``NonRunningStates``): an earlier attempt got through, which is success here. That is
    decided from the instance's status, not from the error's text.
    """

    async def launch(run: RunRecord) -> None:
        name, build_input = _ORCHESTRATIONS[run.kind]
        try:
            await client.start_new(name, instance_id=run.id, client_input=build_input(run))
        except Exception:
            status = await client.get_status(run.id)
            runtime = getattr(status, "runtime_status", None) if status is not None else None
            if runtime is None or runtime.name not in _EXISTING_INSTANCE:
                raise
            logger.info("orchestration already started run_id=%s", run.id)

    return launch


class OutboxDispatcher:
    """Delivers outbox entries in background tasks of this process, at most ``concurrency`` at a time."""

    def __init__(self, *, runs: RunRepository, service: RunService, clock: Callable[[], datetime],
                 tenant_ids: Callable[[], Sequence[str]], concurrency: int = 8,
                 retry_base: timedelta = timedelta(seconds=10),
                 retry_max: timedelta = timedelta(minutes=5),
                 abandon_after: timedelta = timedelta(minutes=30),
                 sweep_batch: int = 200, finish_run: RunFinisher | None = None) -> None:
        """Create the dispatcher.

        Args:
            runs: the run repository (runs and outbox rows).
            service: the run service (event sinks, completing abandoned runs).
            clock: returns the current aware UTC time.
            tenant_ids: the registered tenants, whose partitions a sweep reads one by one.
            concurrency: deliveries in flight at once in this process.
            retry_base: lease of the first retry; each further attempt doubles it.
            retry_max: longest lease (and so the longest wait between retries).
            abandon_after: age after which a run that never launched is failed with ``launch-failed``.
            sweep_batch: most entries one sweep takes on.
            finish_run: ends an abandoned run (default ``service.complete``); a backup set's run must end
                through its set, or the set would stay ``capturing``.
        """
        self._runs = runs
        self._service = service
        self._clock = clock
        self._tenant_ids = tenant_ids
        self._semaphore = asyncio.Semaphore(concurrency)
        self._retry_base = retry_base
        self._retry_max = retry_max
        self._abandon_after = abandon_after
        self._sweep_batch = sweep_batch
        self._finish_run: RunFinisher = finish_run or service.complete
        # Strong references: the loop keeps only weak ones, and a collected task never runs to its end.
        self._tasks: dict[tuple[str, str, str], asyncio.Task[None]] = {}

    # --------------------------------------------------------------------------------- entry points

    def submit(self, result: StartResult, launch: Launcher) -> None:
        """After a start: deliver a new run's outbox in the background, or nudge a reused run that stalled."""
        if not result.reused and result.outbox is not None:
            stored_run = Stored(result.run, result.run_etag) if result.run_etag is not None else None
            self._spawn(result.outbox.value, self._deliver(result.outbox, launch, stored_run))
        else:
            self.nudge(result.run, launch)

    def nudge(self, run: RunRecord, launch: Launcher) -> None:
        """Deliver a queued run's outbox in the background if it is overdue (monitor, repeated start)."""
        if self._service.awaiting_launch(run, self._clock()):
            key = OutboxEntry(tenant_id=run.tenant_id, run_id=run.id, kind=run.kind,
                              created_at=run.created_at, due_at=run.created_at)
            self._spawn(key, self._take_and_deliver(run.tenant_id, run.id, launch))

    async def sweep(self, launch: Launcher) -> int:
        """Deliver the due outbox entries of every tenant (the timer); return how many were taken on.

        Waits for the deliveries it started, so one sweep's work is done before the next begins.
        """
        due = await asyncio.to_thread(self._due_entries, self._clock())
        tasks = [t for t in (self._spawn(e.value, self._lease_and_deliver(e, launch)) for e in due) if t]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
            logger.info("outbox sweep delivered=%d", len(tasks))
        return len(tasks)

    def _due_entries(self, now: datetime) -> list[Stored[OutboxEntry]]:
        # A range read per tenant partition: the cost grows with the number of tenants, not of runs.
        due: list[Stored[OutboxEntry]] = []
        for tenant_id in self._tenant_ids():
            due += self._runs.list_due_outbox(tenant_id=tenant_id, due_by=now,
                                              top=self._sweep_batch - len(due))
            if len(due) >= self._sweep_batch:
                break
        return due

    async def idle(self) -> None:
        """Wait until every delivery started so far has ended (tests; an orderly shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    # ------------------------------------------------------------------------------------ delivery

    def _spawn(self, entry: OutboxEntry,
               work: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
        key = (entry.tenant_id, entry.run_id, entry.slot)
        if key in self._tasks:
            work.close()  # this process is delivering the entry already
            return None

        async def bounded() -> None:
            async with self._semaphore:
                try:
                    await work
                except Exception as exc:  # noqa: BLE001 - the lease runs out and the sweeper retries
                    logger.warning("outbox delivery failed run_id=%s tenant_id=%s error=%s", entry.run_id,
                                   entry.tenant_id, type(exc).__name__)

        task = asyncio.get_running_loop().create_task(bounded())
        self._tasks[key] = task
        task.add_done_callback(lambda _: self._tasks.pop(key, None))
        return task

    async def _take_and_deliver(self, tenant_id: str, run_id: str, launch: Launcher) -> None:
        entry = await asyncio.to_thread(self._runs.get_outbox, tenant_id=tenant_id, run_id=run_id)
        if entry is not None:
            await self._lease_and_deliver(entry, launch)

    async def _lease_and_deliver(self, entry: Stored[OutboxEntry], launch: Launcher) -> None:
        now = self._clock()
        if entry.value.due_at > now:
            return  # someone holds the lease
        attempts = entry.value.attempts + 1
        backoff = min(self._retry_base * 2 ** max(attempts - 2, 0), self._retry_max)
        leased = dataclasses.replace(entry.value, attempts=attempts, due_at=now + backoff)
        try:
            etag = await asyncio.to_thread(self._runs.update_outbox, leased, etag=entry.etag)
        except ConcurrentUpdate:
            return  # another process took it, or it was delivered meanwhile
        logger.info("outbox entry taken over run_id=%s tenant_id=%s attempt=%d", leased.run_id,
                    leased.tenant_id, attempts)
        await self._deliver(Stored(leased, etag), launch, None)

    async def _deliver(self, entry: Stored[OutboxEntry], launch: Launcher,
                       run: Stored[RunRecord] | None) -> None:
        """Deliver an entry whose lease we hold: launch, publish, then settle (see the module docstring)."""
        work = entry.value
        if work.due_at <= self._clock():
            # The lease ran out before delivery began (a slow or starved task): the sweeper may have taken
            # the entry over, so it is theirs now.
            logger.info("outbox lease expired before delivery run_id=%s tenant_id=%s", work.run_id,
                        work.tenant_id)
            return
        if not work.launch:
            # A later transition's event row: published after the run's earlier events, then deleted.
            if await asyncio.to_thread(self._service.deliver_event, entry):
                logger.info("outbox event delivered run_id=%s tenant_id=%s slot=%s", work.run_id,
                            work.tenant_id, work.slot)
            return
        if run is None:
            run = await asyncio.to_thread(self._runs.get, tenant_id=work.tenant_id, run_id=work.run_id)
        if run is None:  # cannot happen (claimed together); nothing is left to deliver
            await asyncio.to_thread(self._settle, entry, None)
            return
        current = run.value
        launched: RunRecord | None = None
        if work.launch and current.status == RunStatus.QUEUED and current.launched_at is None:
            now = self._clock()
            if now - work.created_at >= self._abandon_after:
                current = await asyncio.to_thread(self._abandon, current)
            else:
                await launch(current)  # raises: the lease runs out and someone retries
                launched = current.model_copy(update={"launched_at": now})
        if not await asyncio.to_thread(self._service.publish_events, current, work.events):
            # A sink failed: the entry stays and is delivered again once its lease runs out (a repeated
            # launch finds the instance and counts as success; a repeated event adds nothing).
            logger.warning("outbox events not delivered run_id=%s tenant_id=%s", work.run_id, work.tenant_id)
            return
        await asyncio.to_thread(self._settle, entry, Stored(launched, run.etag) if launched else None)
        logger.info("outbox delivered run_id=%s tenant_id=%s launched=%s", work.run_id, work.tenant_id,
                    launched is not None)

    def _abandon(self, run: RunRecord) -> RunRecord:
        logger.warning("run never launched; failing it run_id=%s tenant_id=%s", run.id, run.tenant_id)
        failure = ErrorInfo(code="launch-failed", message="The run could not be started and was abandoned.")
        return self._finish_run(tenant_id=run.tenant_id, run_id=run.id, failure=failure)

    def _settle(self, entry: Stored[OutboxEntry], launched: Stored[RunRecord] | None) -> None:
        """Delete the entry, and stamp ``launched_at`` on its run in that transaction if we launched it."""
        for _ in range(MAX_SETTLE_ATTEMPTS):
            try:
                self._runs.settle_outbox(entry.value, etag=entry.etag,
                                         run=launched.value if launched else None,
                                         run_etag=launched.etag if launched else None)
                return
            except ConcurrentUpdate:
                pass
            current = self._runs.get_outbox(tenant_id=entry.value.tenant_id, run_id=entry.value.run_id)
            if current is None or current.etag != entry.etag:
                return  # delivered by someone else, or taken over: they settle it
            if launched is None:
                continue
            # The run moved (its orchestration marked it running, which stamps launched_at itself).
            run = self._runs.get(tenant_id=entry.value.tenant_id, run_id=entry.value.run_id)
            if run is None or run.value.launched_at is not None or run.value.status != RunStatus.QUEUED:
                launched = None
            else:
                launched = Stored(run.value.model_copy(update={"launched_at": launched.value.launched_at}),
                                  run.etag)
        logger.warning("outbox entry not settled run_id=%s tenant_id=%s", entry.value.run_id,
                       entry.value.tenant_id)

