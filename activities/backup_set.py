"""Backup set activities (a capture or an addition to a set): plan, batches, one item, finish."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from activities._blueprint import bp, safe_activity
from activities.runs import ended_run
from shared import container
from shared.domain import ErrorInfo
from shared.domain.backupsets import BatchInput
from shared.domain.batches import BatchSummary
from shared.domain.capture import (
    CaptureItemInput,
    CaptureItemResult,
    CompleteRunInput,
    RunRef,
    capture_item_id,
)
from shared.durable_names import (
    CAPTURE_BACKUP_SET_ITEM,
    CLOSE_BACKUP_SET_BATCH,
    FINISH_BACKUP_SET,
    PLAN_BACKUP_SET,
    READ_BACKUP_SET_BATCH,
)

logger = logging.getLogger(__name__)


@bp.function_name(PLAN_BACKUP_SET)
@bp.activity_trigger(input_name="payload")
@safe_activity
async def plan_backup_set(payload: dict[str, Any]) -> dict[str, Any]:
    """Write the run's pending items and batches; return counts only."""
    ref = RunRef.model_validate(payload)
    result = await container.backup_set_service().plan(tenant_id=ref.tenant_id, run_id=ref.run_id)
    return result.model_dump(mode="json")


@bp.function_name(READ_BACKUP_SET_BATCH)
@bp.activity_trigger(input_name="payload")
@safe_activity
async def read_backup_set_batch(payload: dict[str, Any]) -> dict[str, Any]:
    """The ids of one batch's members (at most a batch of ``{type, id}``; never bodies)."""
    batch = BatchInput.model_validate(payload)
    members = await asyncio.to_thread(
        container.backup_set_service().batch_members, tenant_id=batch.tenant_id,
        backup_set_id=batch.backup_set_id, batch=batch.batch, run_id=batch.run_id)
    return {"members": [m.model_dump(mode="json") for m in members]}


@bp.function_name(CAPTURE_BACKUP_SET_ITEM)
@bp.activity_trigger(input_name="payload")
@safe_activity
async def capture_backup_set_item(payload: dict[str, Any]) -> dict[str, Any]:
    """Capture one item of a set; never raises, so a batch's fan-in always waits for every item.

    A failure of our own (storage unreachable) is returned as a retry, or on the final attempt as a failure
    the finish step records, instead of failing the batch while its other items still run.
    """
    item: CaptureItemInput | None = None
    try:
        item = CaptureItemInput.model_validate(payload)
        result = await container.capture_service().capture(item)
    except Exception as exc:  # noqa: BLE001 - the type only is logged: the text may quote an upstream
        logger.warning("backup set item capture failed run_id=%s attempt=%s exception=%s",
                       item.run_id if item else None, item.attempt if item else None, type(exc).__name__)
        error = ErrorInfo(code="internal-error", message="The item could not be captured because of an "
                                                         "internal error.")
        # An input that does not validate never will: it fails at once (its item is settled by the finish).
        result = CaptureItemResult(
            item_id=capture_item_id(item.policy_type, item.policy_id) if item else "",
            status="retry" if item and not item.final_attempt else "failed", error=error)
    return result.model_dump(mode="json", by_alias=True)


@bp.function_name(CLOSE_BACKUP_SET_BATCH)
@bp.activity_trigger(input_name="payload")
@safe_activity
async def close_backup_set_batch(payload: dict[str, Any]) -> dict[str, Any]:
    """Store a batch's summary counts on its row."""
    batch = BatchInput.model_validate(payload)
    summary = BatchSummary.model_validate(payload["summary"])
    await asyncio.to_thread(container.backup_set_service().close_batch, tenant_id=batch.tenant_id,
                            backup_set_id=batch.backup_set_id, summary=summary, run_id=batch.run_id)
    return summary.model_dump(mode="json")


@bp.function_name(FINISH_BACKUP_SET)
@bp.activity_trigger(input_name="payload")
@safe_activity
async def finish_backup_set(payload: dict[str, Any]) -> dict[str, Any]:
    """Settle what is still pending, complete the run and write the set's verdict (a repeat is a no-op)."""
    done = CompleteRunInput.model_validate(payload)
    run = await asyncio.to_thread(container.backup_set_service().finish, tenant_id=done.tenant_id,
                                  run_id=done.run_id, failure=done.failure)
    return ended_run(run)
