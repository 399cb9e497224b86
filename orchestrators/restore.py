"""Restore preview and restore execution: plan, then (execution only) apply the plan in stages, then finish.

The plan activity writes the plan to Blob Storage and returns its hash and its stages (positions into the
plan, never bodies). Stages run one after another with a barrier between them, because later stages
reference what earlier ones created: scope tags and filters, then each restore order in turn (notification
templates before the compliance policies that name them, policy sets last), then assignments. A stage is
cut into batch sub-orchestrations of up to 100 items, a few in flight at once, so no history grows with the
size of the restore (replaying it is what an episode costs). A batch applies its items a chunk at a time,
and items that asked to be tried again (throttled, Graph briefly failing) are retried after one durable
timer per round.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
from shared.domain import ErrorInfo, RunStatus
from shared.domain.capture import MAX_CAPTURE_ATTEMPTS, CompleteRunInput, RunRef
from shared.domain.restore import (
    APPLY_CHUNK,
    ASSIGNMENTS_STAGE,
    RestoreApplyInput,
    RestoreApplyResult,
    RestoreBatchInput,
    RestorePlanResult,
    RestoreRunInput,
    StagePlan,
    apply_round,
    restore_batch_instance,
    restore_batches,
)
from shared.durable_names import (
    APPLY_RESTORE_ITEM,
    FINISH_RESTORE,
    MARK_RUN_RUNNING,
    PLAN_RESTORE,
    RESTORE_BATCH_ORCHESTRATOR,
    RESTORE_ORCHESTRATOR,
)

from orchestrators._blueprint import bp
from orchestrators._logging import ReplaySafeLogger
from orchestrators._planning import batches_in_window, plan_with_retries
from orchestrators.policy_capture import COMPLETE_RETRY, INFRA_RETRY

_INTERNAL = ErrorInfo(code="internal-error",
                      message="The restore could not be completed because of an internal error; items not "
                              "restored are reported as such.")


@bp.function_name(RESTORE_ORCHESTRATOR)
@bp.orchestration_trigger(context_name="context")
def restore_orchestrator(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Plan the restore; for an execution apply it stage by stage; then finish the run."""
    cmd = RestoreRunInput.model_validate(context.get_input())
    log = ReplaySafeLogger(context, __name__)
    ref = RunRef(tenant_id=cmd.tenant_id, run_id=cmd.run_id).model_dump(mode="json")
    failure: ErrorInfo | None = None
    try:
        marked = yield context.call_activity_with_retry(MARK_RUN_RUNNING, INFRA_RETRY, ref)
        if RunStatus(marked["status"]).is_terminal:
            return dict(marked)
        plan = yield from plan_with_retries(context, PLAN_RESTORE, ref, RestorePlanResult.model_validate)
        if plan.status != "planned":
            failure = plan.error or ErrorInfo(code="plan-failed", message="The restore could not be planned.")
            log.warning("restore run %s of tenant %s: plan failed: %s", cmd.run_id, cmd.tenant_id,
                        failure.code)
        elif cmd.execute:
            for stage in plan.stages:
                failure = yield from _apply_stage(context, cmd, plan.plan_hash, stage, log)
                if failure is not None:
                    break
    except Exception as exc:  # noqa: BLE001 - a failure here fails the run, safely
        failure = _INTERNAL
        # The type only: an activity's message is free text.
        log.error("restore run %s of tenant %s failed (%s)", cmd.run_id, cmd.tenant_id, type(exc).__name__)
    done = CompleteRunInput(tenant_id=cmd.tenant_id, run_id=cmd.run_id, failure=failure)
    final = yield context.call_activity_with_retry(FINISH_RESTORE, COMPLETE_RETRY,
                                                   done.model_dump(mode="json"))
    return dict(final)


def _apply_stage(context: df.DurableOrchestrationContext, cmd: RestoreRunInput, plan_hash: str,
                 stage: StagePlan, log: ReplaySafeLogger) -> Generator[Any, Any, ErrorInfo | None]:
    """Apply one stage's batches a few at a time (:func:`batches_in_window`); the run's failure, if any."""
    batches = [(RestoreBatchInput(tenant_id=cmd.tenant_id, run_id=cmd.run_id, plan_hash=plan_hash,
                                  stage=stage.stage, positions=positions).model_dump(mode="json"),
                restore_batch_instance(cmd.run_id, stage.stage, number))
               for number, positions in enumerate(restore_batches(stage))]
    failed = yield from batches_in_window(context, RESTORE_BATCH_ORCHESTRATOR, batches)
    if failed is None:
        return None
    log.error("restore run %s of tenant %s: a batch failed (%s)", cmd.run_id, cmd.tenant_id, failed)
    return _INTERNAL


@bp.function_name(RESTORE_BATCH_ORCHESTRATOR)
@bp.orchestration_trigger(context_name="context")
def restore_batch_orchestrator(
        context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Apply a batch a chunk at a time; each chunk retries its throttled items in rounds."""
    cmd = RestoreBatchInput.model_validate(context.get_input())
    assignments = cmd.stage == ASSIGNMENTS_STAGE
    applied = 0
    for start in range(0, len(cmd.positions), APPLY_CHUNK):
        pending = cmd.positions[start:start + APPLY_CHUNK]
        attempt = 1
        while pending:
            tasks = [context.call_activity_with_retry(APPLY_RESTORE_ITEM, INFRA_RETRY, RestoreApplyInput(
                tenant_id=cmd.tenant_id, run_id=cmd.run_id, plan_hash=cmd.plan_hash, position=position,
                stage=cmd.stage, assignments=assignments, attempt=attempt,
                final_attempt=attempt >= MAX_CAPTURE_ATTEMPTS,
            ).model_dump(mode="json")) for position in pending]
            results = yield context.task_all(tasks)
            round_ = apply_round([RestoreApplyResult.model_validate(r) for r in results], attempt)
            applied += len(pending) - len(round_.retry)
            if not round_.retry or round_.delay_seconds is None:
                break
            yield context.create_timer(context.current_utc_datetime + timedelta(seconds=round_.delay_seconds))
            pending = round_.retry
            attempt += 1
    return {"stage": cmd.stage, "items": len(cmd.positions), "settled": applied}
