"""Restore activities: plan, apply one item, finish (each idempotent)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from activities._blueprint import bp, safe_activity
from activities.runs import ended_run
from shared import container
from shared.domain import ErrorInfo
from shared.domain.capture import CompleteRunInput, RunRef
from shared.domain.restore import RestoreApplyInput, RestoreApplyResult
from shared.durable_names import APPLY_RESTORE_ITEM, FINISH_RESTORE, PLAN_RESTORE

logger = logging.getLogger(__name__)


@bp.function_name(PLAN_RESTORE)
@bp.activity_trigger(input_name="payload")
@safe_activity
async def plan_restore(payload: dict[str, Any]) -> dict[str, Any]:
    """Plan the run (or return its stored plan): the plan's hash and stages, never bodies."""
    ref = RunRef.model_validate(payload)
    result = await container.restore_service().plan(tenant_id=ref.tenant_id, run_id=ref.run_id)
    return result.model_dump(mode="json")


@bp.function_name(APPLY_RESTORE_ITEM)
@bp.activity_trigger(input_name="payload")
@safe_activity
async def apply_restore_item(payload: dict[str, Any]) -> dict[str, Any]:
    """Apply one plan item; never raises, so a chunk's fan-in always waits for every item.

    A failure of our own (storage unreachable) is returned as a retry, or on the final attempt as a failure
    that the finish step records for the item.
    """
    cmd = RestoreApplyInput.model_validate(payload)
    try:
        result = await container.restore_service().apply(cmd)
    except Exception as exc:  # noqa: BLE001 - the type only is logged: the text may quote an upstream
        logger.warning("restore item failed run_id=%s position=%d attempt=%d exception=%s", cmd.run_id,
                       cmd.position, cmd.attempt, type(exc).__name__)
        result = RestoreApplyResult(
            position=cmd.position, status="failed" if cmd.final_attempt else "retry",
            error=ErrorInfo(code="internal-error", message="The item could not be restored because of an "
                                                           "internal error."))
    return result.model_dump(mode="json")


@bp.function_name(FINISH_RESTORE)
@bp.activity_trigger(input_name="payload")
@safe_activity
async def finish_restore(payload: dict[str, Any]) -> dict[str, Any]:
    """Settle items without an outcome, complete the run and audit it (a repeat is a no-op)."""
    done = CompleteRunInput.model_validate(payload)
    run = await asyncio.to_thread(container.restore_service().finish, tenant_id=done.tenant_id,
                                  run_id=done.run_id, failure=done.failure)
    return ended_run(run)
