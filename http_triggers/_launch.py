"""Starting orchestrations for runs from triggers that hold a durable client binding."""

from __future__ import annotations

import azure.durable_functions as df

from shared import container
from shared.services.outbox import orchestration_launcher
from shared.services.runs import Launcher, StartResult

__all__ = ["deliver_in_background", "launcher_for"]


def launcher_for(client: df.DurableOrchestrationClient) -> Launcher:
    """A launcher that starts a run's orchestration with ``instance_id = run.id`` through ``client``."""
    return orchestration_launcher(client)


def deliver_in_background(client: df.DurableOrchestrationClient, result: StartResult) -> None:
    """Hand a start's outcome to this process's outbox dispatcher; the response does not wait for it."""
    container.outbox_dispatcher().submit(result, launcher_for(client))
