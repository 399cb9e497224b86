"""The rules that recovery applies to a run: never launched, or left behind by its orchestration.

The outbox dispatcher (:mod:`shared.services.outbox`) launches runs whose claiming request did not, and
the recovery sweeper (:mod:`shared.services.recovery`) and the monitor settle runs whose orchestration
ended without them; both ask these rules.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from shared.domain import ErrorInfo, RunRecord, RunStatus
from shared.services.run_reads import RunReads

__all__ = ["INSTANCE_NOT_FOUND_GRACE", "ORPHANED_FAILURE_CODE", "RunFinisher", "RunRecovery"]

logger = logging.getLogger(__name__)

# Durable runtime statuses after which an orchestration will never complete its run. ``Completed`` counts
# too: an orchestration ends its run before it completes itself, and the run is read again after the status,
# so a run still active then was left behind.
_ENDED_ORCHESTRATION = frozenset({"Completed", "Failed", "Terminated", "Canceled"})
# An instance the host does not know is orphaned only this long after its run was launched: the real
# extension answers 404 for an instance whose start message it has not processed yet.
INSTANCE_NOT_FOUND_GRACE = timedelta(minutes=2)
# The failure of a run settled because its orchestration ended without it.
ORPHANED_FAILURE_CODE = "orchestration-ended"


class RunFinisher(Protocol):
    """Ends a run from outside its orchestration (:meth:`RunService.complete`, or a kind's own ending)."""

    def __call__(self, *, tenant_id: str, run_id: str, failure: ErrorInfo | None) -> RunRecord:
        """End the run (idempotent) and return it as it ended."""
        ...


class RunRecovery:
    """Whether a run needs launching or settling, and the settling itself."""

    def __init__(self, *, reads: RunReads, clock: Callable[[], datetime], launch_grace: timedelta) -> None:
        self._reads = reads
        self._clock = clock
        self._launch_grace = launch_grace

    def awaiting_launch(self, run: RunRecord, now: datetime) -> bool:
        """Whether ``run`` is queued, never launched, and past the grace its claiming request had."""
        return (run.status == RunStatus.QUEUED and run.launched_at is None
                and now - run.created_at >= self._launch_grace)

    def orphaned_by_orchestration(self, run: RunRecord, *, orchestration_status: str | None,
                                  now: datetime) -> bool:
        """Whether ``run`` is active and launched, and its orchestration will never end it.

        See :meth:`shared.services.runs.RunService.orphaned_by_orchestration`.
        """
        if run.status.is_terminal or run.launched_at is None:
            return False
        if orchestration_status is None:
            return now - run.launched_at > INSTANCE_NOT_FOUND_GRACE
        return orchestration_status in _ENDED_ORCHESTRATION

    def settle_if_orchestration_ended(self, *, tenant_id: str, run_id: str, orchestration_status: str | None,
                                      finish: RunFinisher) -> RunRecord:
        """Fail an active run whose orchestration ended without completing it, through ``finish``.

        See :meth:`shared.services.runs.RunService.settle_if_orchestration_ended`.
        """
        run = self._reads.get_stored(tenant_id, run_id).value
        if not self.orphaned_by_orchestration(run, orchestration_status=orchestration_status,
                                              now=self._clock()):
            return self._reads.with_counts(run)
        logger.warning("run orphaned by its orchestration run_id=%s tenant_id=%s orchestration=%s",
                       run_id, tenant_id, orchestration_status)
        failure = ErrorInfo(code=ORPHANED_FAILURE_CODE,
                            message="The run's orchestration ended without completing the run.")
        return finish(tenant_id=tenant_id, run_id=run_id, failure=failure)
