"""Handing a run's start to the outbox from triggers that hold a durable client binding."""

from __future__ import annotations

import azure.durable_functions as df

from shared import container
from shared.services.outbox import orchestration_launcher
from shared.services.runs import StartResult

__all__ = ["deliver_in_background"]


def deliver_in_background(client: df.DurableOrchestrationClient, result: StartResult) -> None:
    """Hand a start's outcome to this process's outbox dispatcher; the response does not wait for it."""
    container.outbox_dispatcher().submit(result, orchestration_launcher(client))
