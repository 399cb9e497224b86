"""Recovery of runs whose orchestration ended without them, whether or not anyone polls.

An orchestration ends its own run. If it failed outright, was terminated, or its instance vanished (purged,
or a task hub that lost it), nothing else would: the run would stay active and keep its idempotency key, so
every identical start would get the dead run back. The monitor settles such a run when someone polls it;
:meth:`RunRecovery.sweep` (a timer) does the same for every active run of every tenant.

What counts as orphaned is :meth:`shared.services.runs.RunService.orphaned_by_orchestration`: an instance the
host does not know only after a grace period since the launch, because the real extension answers 404 for an
instance whose start message it has not processed yet. Runs not launched yet are the outbox's (launched, or
failed ``launch-failed``), never this sweep's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from shared.domain import RunRecord
from shared.ports import ActiveEntry, RunRepository
from shared.services.runs import ORPHANED_FAILURE_CODE, RunFinisher, RunService

__all__ = ["OrchestrationStatusReader", "OrchestrationStatusUnknown", "RunRecovery",
           "orchestration_runtime_status"]

logger = logging.getLogger(__name__)


class OrchestrationStatusReader(Protocol):
    """The part of the Durable client recovery uses (``DurableOrchestrationClient`` in the app)."""

    async def get_status(self, instance_id: str) -> Any:
        """Return an instance's status (its ``runtime_status`` is ``None`` when it does not exist)."""
        ...


class OrchestrationStatusUnknown(Exception):
    """The host answered a status request with an error: nothing can be concluded about the instance."""


def orchestration_runtime_status(status: Any) -> str | None:
    """Return the runtime status name of a ``get_status`` answer; ``None`` when the instance does not exist.

    The SDK turns a 404 (empty body) and a host error (a 500 whose body carries ``Message``) alike into a
    status without a runtime status; only the error carries a message. Taking an error for "not found" would
    fail healthy runs during a task hub outage, so it raises instead.

    Raises:
        OrchestrationStatusUnknown: the answer was an error, not a status.
    """
    runtime = getattr(status, "runtime_status", None) if status is not None else None
    if runtime is not None:
        return str(runtime.name)
    if status is not None and (getattr(status, "Message", None) or getattr(status, "ExceptionMessage", None)):
        raise OrchestrationStatusUnknown("the host answered the status request with an error")
    return None


class RunRecovery:
    """Settles active runs whose orchestration ended without them (the monitor and the recovery timer)."""

    def __init__(self, *, runs: RunRepository, service: RunService, clock: Callable[[], datetime],
                 tenant_ids: Callable[[], Sequence[str]], concurrency: int = 8,
                 finish_run: RunFinisher | None = None) -> None:
        """Create the recovery service.

        Args:
            runs: the run repository (active rows and runs).
            service: the run service (the orphan rule, settling).
            clock: returns the current aware UTC time.
            tenant_ids: the registered tenants, whose partitions a sweep reads one by one.
            concurrency: runs checked at once (a storage read and a status request each).
            finish_run: ends an orphaned run (default ``service.complete``); a backup set's run must end
                through its set, or the set would stay ``capturing``.
        """
        self._runs = runs
        self._service = service
        self._clock = clock
        self._tenant_ids = tenant_ids
        self._concurrency = concurrency
        self._finish_run = finish_run

    async def settle_if_orphaned(self, run: RunRecord, client: OrchestrationStatusReader) -> RunRecord:
        """Ask the host about an active, launched run's orchestration; fail the run if it was orphaned.

        Returns ``run`` unchanged (no request at all for a terminal or unlaunched run) unless it was
        orphaned, and then the run as it ended.

        Raises:
            OrchestrationStatusUnknown: the host answered with an error.
        """
        if run.status.is_terminal or run.launched_at is None:
            return run
        runtime = orchestration_runtime_status(await client.get_status(run.id))
        if not self._service.orphaned_by_orchestration(run, orchestration_status=runtime, now=self._clock()):
            return run
        # Read again inside: the orchestration may have ended the run since ``run`` was read.
        return await asyncio.to_thread(self._service.settle_if_orchestration_ended, tenant_id=run.tenant_id,
                                       run_id=run.id, orchestration_status=runtime,
                                       finish=self._finish_run)

    async def sweep(self, client: OrchestrationStatusReader) -> int:
        """Settle the orphaned runs of every tenant (the timer); return how many it failed.

        Per tenant one key-range read of its active rows, then per active run a point read and, for a
        launched one, a status request; ``concurrency`` runs at a time. A failure with one run or one tenant
        is logged and left for the next sweep.
        """
        active = await asyncio.to_thread(self._active_entries)
        semaphore = asyncio.Semaphore(self._concurrency)

        async def check(tenant_id: str, entry: ActiveEntry) -> bool:
            async with semaphore:
                try:
                    stored = await asyncio.to_thread(self._runs.get, tenant_id=tenant_id, run_id=entry.run_id)
                    if stored is None:
                        return False  # a stale row; the next start on its key clears it
                    ended = await self.settle_if_orphaned(stored.value, client)
                except Exception as exc:  # noqa: BLE001 - one run must not stop the sweep
                    logger.warning("recovery check failed run_id=%s tenant_id=%s error=%s", entry.run_id,
                                   tenant_id, type(exc).__name__)
                    return False
                return ended.failure is not None and ended.failure.code == ORPHANED_FAILURE_CODE

        settled = sum(await asyncio.gather(*(check(t, e) for t, e in active)))
        if settled:
            logger.info("recovery sweep checked=%d settled=%d", len(active), settled)
        return settled

    def _active_entries(self) -> list[tuple[str, ActiveEntry]]:
        # A key-range read per tenant partition: the cost grows with tenants and runs in flight, not with
        # every run ever kept.
        active: list[tuple[str, ActiveEntry]] = []
        for tenant_id in self._tenant_ids():
            try:
                active += [(tenant_id, entry) for entry in self._runs.list_active(tenant_id=tenant_id)]
            except Exception as exc:  # noqa: BLE001 - one tenant's partition must not stop the others
                logger.warning("recovery could not list active runs tenant_id=%s error=%s", tenant_id,
                               type(exc).__name__)
        return active
