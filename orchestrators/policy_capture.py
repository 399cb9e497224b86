"""Snapshot of one policy: mark the run running, capture the item (with durable retries), complete the run."""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
from shared.domain import RunStatus
from shared.domain.base import ErrorInfo
from shared.domain.capture import (
    MAX_CAPTURE_ATTEMPTS,
    CaptureItemInput,
    CaptureItemResult,
    CompleteRunInput,
    PolicyCaptureCommand,
    RunRef,
    next_capture_step,
)
from shared.durable_names import (
    CAPTURE_POLICY,
    COMPLETE_RUN,
    MARK_RUN_RUNNING,
    POLICY_CAPTURE_ORCHESTRATOR,
)

from orchestrators._blueprint import bp
from orchestrators._logging import ReplaySafeLogger

# Infrastructure faults inside our own activities (storage hiccups) are retried by the host; Graph faults are
# returned as data and retried below with durable timers, so the two never multiply.
INFRA_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=2_000, max_number_of_attempts=3)
# Ending the run releases its idempotency key: if that write never happened, every identical start would keep
# getting the dead run. So it outlasts a storage outage of a few minutes.
COMPLETE_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=15_000, max_number_of_attempts=16)


@bp.function_name(POLICY_CAPTURE_ORCHESTRATOR)
@bp.orchestration_trigger(context_name="context")
def policy_capture_orchestrator(
    context: df.DurableOrchestrationContext,
) -> Generator[Any, Any, dict[str, Any]]:
    """Capture one policy into Blob Storage and record the run's outcome."""
    cmd = PolicyCaptureCommand.model_validate(context.get_input())
    log = ReplaySafeLogger(context, __name__)
    ref = RunRef(tenant_id=cmd.tenant_id, run_id=cmd.run_id).model_dump(mode="json")

    failure: ErrorInfo | None = None
    try:
        marked = yield context.call_activity_with_retry(MARK_RUN_RUNNING, INFRA_RETRY, ref)
        if RunStatus(marked["status"]).is_terminal:
            # Cancelled (or ended) before it started: nothing to capture, nothing to complete.
            return dict(marked)
        attempt = 1
        while True:
            item = CaptureItemInput(tenant_id=cmd.tenant_id, run_id=cmd.run_id, policy_type=cmd.policy_type,
                                    policy_id=cmd.policy_id, attempt=attempt,
                                    final_attempt=attempt >= MAX_CAPTURE_ATTEMPTS)
            raw = yield context.call_activity_with_retry(CAPTURE_POLICY, INFRA_RETRY,
                                                         item.model_dump(mode="json"))
            result = CaptureItemResult.model_validate(raw)
            delay = next_capture_step(result, attempt)
            if delay is None:
                break
            yield context.create_timer(context.current_utc_datetime + timedelta(seconds=delay))
            attempt += 1
        if result.status != "succeeded":
            failure = result.error or ErrorInfo(code="capture-failed", message="The policy was not captured.")
            log.warning("capture run %s of tenant %s failed: %s", cmd.run_id, cmd.tenant_id, failure.code)
    except Exception as exc:  # noqa: BLE001 - an activity that exhausted its retries fails the run, safely
        failure = ErrorInfo(code="internal-error",
                            message="The capture could not be completed because of an internal error.")
        # The type only: the activity's message is free text (it may quote Graph or a storage URL).
        log.error("capture run %s of tenant %s failed: an activity exhausted its retries (%s)",
                  cmd.run_id, cmd.tenant_id, type(exc).__name__)

    done = CompleteRunInput(tenant_id=cmd.tenant_id, run_id=cmd.run_id, failure=failure)
    final = yield context.call_activity_with_retry(COMPLETE_RUN, COMPLETE_RETRY, done.model_dump(mode="json"))
    return dict(final)
