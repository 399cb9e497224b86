"""Run transitions driven by orchestrators. Idempotent: the host may run each of them more than once."""

from __future__ import annotations

import asyncio
from typing import Any

from activities._blueprint import bp, safe_activity
from shared import container
from shared.domain import RunRecord
from shared.domain.capture import CompleteRunInput, RunRef
from shared.durable_names import COMPLETE_RUN, MARK_RUN_RUNNING


@bp.function_name(MARK_RUN_RUNNING)
@bp.activity_trigger(input_name="payload")
@safe_activity
async def mark_run_running(payload: dict[str, Any]) -> dict[str, Any]:
    """Move the run to ``running`` (a repeat is a no-op)."""
    ref = RunRef.model_validate(payload)
    run = await asyncio.to_thread(container.run_service().mark_running, tenant_id=ref.tenant_id,
                                  run_id=ref.run_id)
    return {"runId": run.id, "status": str(run.status)}


@bp.function_name(COMPLETE_RUN)
@bp.activity_trigger(input_name="payload")
@safe_activity
async def complete_run(payload: dict[str, Any]) -> dict[str, Any]:
    """End the run: counts from its items, final status, active key released (a repeat is a no-op)."""
    done = CompleteRunInput.model_validate(payload)
    run = await asyncio.to_thread(container.run_service().complete, tenant_id=done.tenant_id,
                                  run_id=done.run_id, failure=done.failure)
    return ended_run(run)


def ended_run(run: RunRecord) -> dict[str, Any]:
    """What an ended run tells its orchestrator: ids, status and counts only."""
    return {"runId": run.id, "status": str(run.status), "counts": run.counts.model_dump(mode="json")}
