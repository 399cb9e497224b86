"""The outbox sweeper: launches claimed runs whose launch was lost, and publishes their events.

A start answers once its claim is written and launches the run in the background of the same process;
if that process dies, or ``start_new`` fails, the run's outbox entry stays behind and this timer delivers
it once its lease has run out. Runs that never launch are failed with ``launch-failed`` after 30 minutes.
A later transition's event row is delivered the same way, and so are webhook deliveries due for a retry.
"""

from __future__ import annotations

import asyncio

import azure.durable_functions as df
import azure.functions as func

from activities._blueprint import bp
from shared import container
from shared.services.outbox import orchestration_launcher

# Every 10 seconds (NCRONTAB, seconds first); the claiming request itself has a 10 s lease, so an entry is
# taken over 10-20 s after its claim at the latest.
SWEEP_SCHEDULE = "*/10 * * * * *"


@bp.function_name("sweep_run_outbox")
@bp.timer_trigger(schedule=SWEEP_SCHEDULE, arg_name="timer", run_on_startup=False, use_monitor=False)
@bp.durable_client_input(client_name="client")
async def sweep_run_outbox(timer: func.TimerRequest,  # noqa: ARG001 - the trigger binding
                           client: df.DurableOrchestrationClient) -> None:
    """Deliver every due outbox entry of every tenant, then every due webhook delivery (at least once)."""
    await container.outbox_dispatcher().sweep(orchestration_launcher(client))
    # Webhook sends whose lease ran out (process gone) or whose retry is due; parked ones wait for a replay.
    await asyncio.to_thread(container.webhook_service().send_due)
