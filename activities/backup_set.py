"""Backup set activities (a capture or an addition to a set): plan, batches, a chunk of items, finish."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from activities._blueprint import bp, safe_activity
from activities.runs import ended_run
from shared import container
from shared.domain.backupsets import BatchInput
from shared.domain.batches import BatchSummary, CaptureChunkInput, CaptureChunkResult
from shared.domain.capture import CaptureItemResult, CompleteRunInput, RunRef
from shared.durable_names import (
    CAPTURE_BACKUP_SET_CHUNK,
    CLOSE_BACKUP_SET_BATCH,
    FINISH_BACKUP_SET,
    PLAN_BACKUP_SET,
    READ_BACKUP_SET_BATCH,
)
from shared.services.capture import INTERNAL_ITEM_ERROR, internal_failure

logger = logging.getLogger(__name__)


@bp.function_name(PLAN_BACKUP_SET)
@bp.activity_trigger(input_name="payload")
@safe_activity
async def plan_backup_set(payload: dict[str, Any]) -> dict[str, Any]:
    """Write the run's pending items and batches; return counts only (and the capture chunk to use)."""
    ref = RunRef.model_validate(payload)
    result = await container.backup_set_service().plan(tenant_id=ref.tenant_id, run_id=ref.run_id)
    # From the settings here, so the orchestrators take it from their history, never from settings.
    chunk = container.settings().backup_set_capture_chunk
    return result.model_copy(update={"capture_chunk": chunk}).model_dump(mode="json")


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


@bp.function_name(CAPTURE_BACKUP_SET_CHUNK)
@bp.activity_trigger(input_name="payload")
@safe_activity
async def capture_backup_set_chunk(payload: dict[str, Any]) -> dict[str, Any]:
    """Capture a chunk of a set's items; never raises, so a batch's fan-in always waits for every chunk.

    One result per member, in the members' order. A failure of our own for the whole chunk (storage
    unreachable while recording) is returned as a retry of each of its items, or on the final attempt as
    failures the finish step records, instead of failing the batch while its other chunks still run.
    """
    chunk: CaptureChunkInput | None = None
    try:
        chunk = CaptureChunkInput.model_validate(payload)
        results = await container.capture_service().capture_chunk(chunk)
    except Exception as exc:  # noqa: BLE001 - the type only is logged: the text may quote an upstream
        logger.warning("backup set chunk capture failed run_id=%s attempt=%s items=%d exception=%s",
                       chunk.run_id if chunk else None, chunk.attempt if chunk else None,
                       len(chunk.members) if chunk else 0, type(exc).__name__)
        if chunk is not None:
            results = [internal_failure(item) for item in chunk.items()]
        else:
            # An input that does not validate never will: its members fail at once, each in its place
            # (the finish settles their items).
            members = payload.get("members") if isinstance(payload, dict) else None
            results = [CaptureItemResult(item_id="", status="failed", error=INTERNAL_ITEM_ERROR)
                       for _ in (members if isinstance(members, list) else ())]
    return CaptureChunkResult(results=results).model_dump(mode="json", by_alias=True)


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
