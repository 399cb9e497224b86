"""Inputs and results that cross the durable boundary for capture runs (small JSON: ids and references).

Policy bodies never appear here: the capture activity stores them in Blob Storage and returns a reference.
"""

from __future__ import annotations

from pydantic import Field

from shared.domain.base import ApiModel, ErrorInfo

__all__ = [
    "MAX_CAPTURE_ATTEMPTS",
    "CaptureItemInput",
    "CaptureItemResult",
    "CompleteRunInput",
    "PolicyCaptureCommand",
    "RunRef",
    "capture_item_id",
    "next_capture_step",
]

# Attempts per item for transient Graph faults (throttling, 5xx, short pages) that outlast the client's own
# in-process retries. Between attempts the orchestrator waits on a durable timer, so nothing sleeps.
MAX_CAPTURE_ATTEMPTS = 3
DEFAULT_RETRY_DELAY_SECONDS = 15


def capture_item_id(policy_type: str, policy_id: str) -> str:
    """The item id of one captured policy within a run."""
    return f"{policy_type}:{policy_id}"


class RunRef(ApiModel):
    """Identifies a run (its tenant partition and id)."""

    tenant_id: str
    run_id: str


class PolicyCaptureCommand(ApiModel):
    """Input of the policy capture orchestrator."""

    tenant_id: str
    run_id: str
    policy_type: str
    policy_id: str


class CaptureItemInput(ApiModel):
    """Input of the capture activity for one policy (items of a backup set come in chunks of these)."""

    tenant_id: str
    run_id: str
    policy_type: str
    policy_id: str
    attempt: int = Field(default=1, ge=1)
    final_attempt: bool = True
    include_assignments: bool = True


class CaptureItemResult(ApiModel):
    """What the capture activity returns: an outcome, a blob reference, or a request to retry later."""

    item_id: str
    status: str  # succeeded | failed | retry
    content_hash: str | None = None
    size_bytes: int | None = None
    error: ErrorInfo | None = None
    retry_after_seconds: float | None = None


class CompleteRunInput(ApiModel):
    """Input of the activity that ends a run; ``failure`` is set when the run as a whole failed."""

    tenant_id: str
    run_id: str
    failure: ErrorInfo | None = None


def next_capture_step(result: CaptureItemResult, attempt: int) -> float | None:
    """Seconds to wait before trying the item again, or ``None`` when the item is settled.

    Pure so that the orchestrator's retry policy is unit-testable without a durable context.
    """
    if result.status != "retry" or attempt >= MAX_CAPTURE_ATTEMPTS:
        return None
    delay = result.retry_after_seconds
    if delay is None:
        delay = DEFAULT_RETRY_DELAY_SECONDS
    return max(1.0, min(float(delay), 300.0))
