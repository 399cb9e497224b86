"""Capture of one policy into Blob Storage; returns only a reference and an outcome."""

from __future__ import annotations

from typing import Any

from activities._blueprint import bp, safe_activity
from shared import container
from shared.domain.capture import CaptureItemInput
from shared.durable_names import CAPTURE_POLICY


@bp.function_name(CAPTURE_POLICY)
@bp.activity_trigger(input_name="payload")
@safe_activity
async def capture_policy(payload: dict[str, Any]) -> dict[str, Any]:
    """Read the policy in full from Graph, store it, record the item outcome."""
    item = CaptureItemInput.model_validate(payload)
    result = await container.capture_service().capture(item)
    return result.model_dump(mode="json", by_alias=True)
