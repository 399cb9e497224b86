"""Starting orchestrations for runs: which orchestrator serves which run kind, with what input."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import azure.durable_functions as df

from shared.domain import RunKind, RunRecord
from shared.domain.capture import PolicyCaptureCommand
from shared.durable_names import POLICY_CAPTURE_ORCHESTRATOR
from shared.services.runs import Launcher

__all__ = ["launcher_for"]

logger = logging.getLogger(__name__)


def _policy_capture_input(run: RunRecord) -> dict[str, Any]:
    return PolicyCaptureCommand(tenant_id=run.tenant_id, run_id=run.id,
                                policy_type=run.target.policy_type or "",
                                policy_id=run.target.policy_id or "").model_dump(mode="json")


# Orchestration inputs are built from the stored run only (ids and small scope), never from request bodies,
# so a relaunch after a crash starts exactly the same work.
_ORCHESTRATIONS: dict[RunKind, tuple[str, Callable[[RunRecord], dict[str, Any]]]] = {
    RunKind.POLICY_CAPTURE: (POLICY_CAPTURE_ORCHESTRATOR, _policy_capture_input),
}


def launcher_for(client: df.DurableOrchestrationClient) -> Launcher:
    """A launcher that starts a run's orchestration with ``instance_id = run.id``.

    Starting an id whose instance is already pending or running fails in the host; that means an earlier
    attempt got through, which is success here.
    """

    async def launch(run: RunRecord) -> None:
        name, build_input = _ORCHESTRATIONS[run.kind]
        try:
            await client.start_new(name, instance_id=run.id, client_input=build_input(run))
        except Exception as exc:
            if "already exists" in str(exc):
                logger.info("orchestration already started run_id=%s", run.id)
                return
            raise

    return launch
