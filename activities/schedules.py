"""The backup schedule timer, which starts each tenant's due slot once and applies retention; webhook pruning.

Starting is idempotent per tenant and slot (:mod:`shared.services.schedules`), so a second firing or a second
instance running this timer at the same time starts nothing more. New runs are handed to the outbox
dispatcher like an HTTP start; should this process die first, the outbox sweeper launches them. Delivered
webhook events are deleted hourly once past their retention.
"""

from __future__ import annotations

import asyncio

import azure.durable_functions as df
import azure.functions as func

from activities._blueprint import bp
from shared import container
from shared.services.outbox import orchestration_launcher

# Every minute, at second 0 (NCRONTAB, seconds first): the finest slot a 5-field cron has.
SCHEDULE_TIMER = "0 * * * * *"
# Every hour at minute 17, away from the top of the hour, when most scheduled backups start.
PRUNE_TIMER = "0 17 * * * *"


@bp.function_name("start_scheduled_backups")
@bp.timer_trigger(schedule=SCHEDULE_TIMER, arg_name="timer", run_on_startup=False, use_monitor=False)
@bp.durable_client_input(client_name="client")
async def start_scheduled_backups(timer: func.TimerRequest,  # noqa: ARG001 - the trigger binding
                                  client: df.DurableOrchestrationClient) -> None:
    """Start every due scheduled backup, deliver the new runs, and delete sets past retention."""
    service = container.schedule_service()
    launch = orchestration_launcher(client)
    dispatcher = container.outbox_dispatcher()
    for result in await service.start_due():
        dispatcher.submit(result, launch)
    await service.apply_retention()


@bp.function_name("prune_webhook_deliveries")
@bp.timer_trigger(schedule=PRUNE_TIMER, arg_name="timer", run_on_startup=False, use_monitor=False)
async def prune_webhook_deliveries(timer: func.TimerRequest) -> None:  # noqa: ARG001 - the trigger binding
    """Delete delivered webhook events past ``WEBHOOK_DELIVERY_RETENTION_DAYS``."""
    await asyncio.to_thread(container.webhook_service().prune_delivered)
