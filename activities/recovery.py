"""The recovery sweeper: fails runs whose orchestration failed, was terminated or vanished without them.

Without it such a run stays active (and keeps its idempotency key) until someone polls its monitor. An
instance the host does not know counts only two minutes after the launch (see
:mod:`shared.services.recovery`); runs not launched yet are the outbox sweeper's.
"""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from activities._blueprint import bp
from shared import container

# Every 30 seconds (NCRONTAB, seconds first), a third as often as the outbox sweep: a sweep costs a range read
# per tenant plus a status request per run in flight, and an orphan is rare, so half a minute of delay is
# plenty. Its own timer rather than every Nth outbox sweep: a timer's schedule holds across instances (the
# host runs one invocation at a time under a lease), while a per-process count of sweeps would not.
RECOVERY_SCHEDULE = "*/30 * * * * *"


@bp.function_name("sweep_orphaned_runs")
@bp.timer_trigger(schedule=RECOVERY_SCHEDULE, arg_name="timer", run_on_startup=False, use_monitor=False)
@bp.durable_client_input(client_name="client")
async def sweep_orphaned_runs(timer: func.TimerRequest,  # noqa: ARG001 - the trigger binding
                              client: df.DurableOrchestrationClient) -> None:
    """Fail every active, launched run whose orchestration ended without it (idempotent)."""
    await container.run_recovery().sweep(client)
