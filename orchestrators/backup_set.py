"""Backup set capture: the multi-item run engine (plan, batches of chunk activities, finish).

The parent plans the run (items and batches are written to storage; only counts come back), keeps a few batch
sub-orchestrations in flight (a sliding window: the next batch starts as soon as any one returns), and
finishes the run once every started batch has returned, so the run's counts freeze after the last item
outcome was written (which is why item outcomes are recorded without checking the run). Each batch reads
its members from storage, captures them in chunks (one activity per chunk of the plan's ``capture_chunk``
items, each returning one result per item), and retries the items that asked for it, chunked again, in
rounds separated by one durable timer: outcomes and retries stay per item.
Histories stay small: the parent holds two events per batch, a batch two per chunk and attempt.

The same orchestrator runs ``backupset.capture`` and ``backupset.add_items``: the plan activity reads the
run's kind and takes the items from a listing or from the request. A cancel terminates the parent and then
each ``<runId>:batch-NNNNNN`` instance (termination is not passed down) before the run is ended ``cancelled``.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
from shared.domain import ErrorInfo, PolicyRef, RunStatus
from shared.domain.backupsets import BackupSetRunInput, BatchInput, PlanResult
from shared.domain.batches import (
    BatchSummary,
    CaptureChunkInput,
    CaptureChunkResult,
    chunked,
    retry_round,
    summarise_batch,
)
from shared.domain.capture import MAX_CAPTURE_ATTEMPTS, CaptureItemResult, CompleteRunInput, RunRef
from shared.durable_names import (
    BACKUP_SET_BATCH_ORCHESTRATOR,
    BACKUP_SET_ORCHESTRATOR,
    CAPTURE_BACKUP_SET_CHUNK,
    CLOSE_BACKUP_SET_BATCH,
    FINISH_BACKUP_SET,
    MARK_RUN_RUNNING,
    PLAN_BACKUP_SET,
    READ_BACKUP_SET_BATCH,
)

from orchestrators._blueprint import bp
from orchestrators._logging import ReplaySafeLogger
from orchestrators._planning import batches_in_window, plan_with_retries
from orchestrators.policy_capture import COMPLETE_RETRY, INFRA_RETRY

_INTERNAL = ErrorInfo(code="internal-error",
                      message="The backup could not be completed because of an internal error; items not "
                              "captured are reported as such.")


@bp.function_name(BACKUP_SET_ORCHESTRATOR)
@bp.orchestration_trigger(context_name="context")
def backup_set_orchestrator(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Plan the set, capture its batches a few at a time, then finish the run and the set."""
    cmd = BackupSetRunInput.model_validate(context.get_input())
    log = ReplaySafeLogger(context, __name__)
    ref = RunRef(tenant_id=cmd.tenant_id, run_id=cmd.run_id).model_dump(mode="json")

    failure: ErrorInfo | None = None
    try:
        marked = yield context.call_activity_with_retry(MARK_RUN_RUNNING, INFRA_RETRY, ref)
        if RunStatus(marked["status"]).is_terminal:
            return dict(marked)
        plan = yield from plan_with_retries(context, PLAN_BACKUP_SET, ref, PlanResult.model_validate)
        if plan.status != "planned":
            failure = plan.error or ErrorInfo(code="plan-failed",
                                              message="The selection could not be listed.")
            log.warning("backup run %s of tenant %s: plan failed: %s", cmd.run_id, cmd.tenant_id,
                        failure.code)
        else:
            failure = yield from _run_batches(context, cmd, plan, log)
    except Exception as exc:  # noqa: BLE001 - a failure here fails the run, safely
        failure = _INTERNAL
        # The type only: an activity's message is free text.
        log.error("backup run %s of tenant %s failed (%s)", cmd.run_id, cmd.tenant_id, type(exc).__name__)

    done = CompleteRunInput(tenant_id=cmd.tenant_id, run_id=cmd.run_id, failure=failure)
    final = yield context.call_activity_with_retry(FINISH_BACKUP_SET, COMPLETE_RETRY,
                                                   done.model_dump(mode="json"))
    return dict(final)


def _run_batches(context: df.DurableOrchestrationContext, cmd: BackupSetRunInput, plan: PlanResult,
                 log: ReplaySafeLogger) -> Generator[Any, Any, ErrorInfo | None]:
    """Capture the plan's batches a few at a time (:func:`batches_in_window`); the run's failure, if any."""
    batches = [(BatchInput(tenant_id=cmd.tenant_id, run_id=cmd.run_id, backup_set_id=plan.backup_set_id,
                           batch=number, include_assignments=plan.include_assignments,
                           capture_chunk=plan.capture_chunk).model_dump(mode="json"),
                f"{cmd.run_id}:batch-{number:06d}") for number in range(plan.batch_count)]
    failed = yield from batches_in_window(context, BACKUP_SET_BATCH_ORCHESTRATOR, batches)
    if failed is None:
        return None
    log.error("backup run %s of tenant %s: a batch failed (%s)", cmd.run_id, cmd.tenant_id, failed)
    return _INTERNAL


@bp.function_name(BACKUP_SET_BATCH_ORCHESTRATOR)
@bp.orchestration_trigger(context_name="context")
def backup_set_batch_orchestrator(
    context: df.DurableOrchestrationContext,
) -> Generator[Any, Any, dict[str, Any]]:
    """Capture one batch in chunks: each member once, then those that asked to retry, after one timer."""
    cmd = BatchInput.model_validate(context.get_input())
    log = ReplaySafeLogger(context, __name__)
    settled: list[CaptureItemResult] = []
    attempt = 1
    try:
        raw = yield context.call_activity_with_retry(READ_BACKUP_SET_BATCH, INFRA_RETRY,
                                                     cmd.model_dump(mode="json"))
        pending = [PolicyRef.model_validate(member) for member in raw["members"]]
        while pending:
            chunks = chunked(pending, cmd.capture_chunk)
            tasks = [
                context.call_activity_with_retry(CAPTURE_BACKUP_SET_CHUNK, INFRA_RETRY, CaptureChunkInput(
                    tenant_id=cmd.tenant_id, run_id=cmd.run_id, backup_set_id=cmd.backup_set_id,
                    members=list(chunk), attempt=attempt, final_attempt=attempt >= MAX_CAPTURE_ATTEMPTS,
                    include_assignments=cmd.include_assignments,
                ).model_dump(mode="json"))
                for chunk in chunks
            ]
            answers = yield context.task_all(tasks)
            results = _flattened(chunks, answers)
            round_ = retry_round(results, attempt)
            settled.extend(round_.settled)
            if not round_.retry or round_.delay_seconds is None:
                break
            yield context.create_timer(context.current_utc_datetime + timedelta(seconds=round_.delay_seconds))
            pending = [pending[position] for position in round_.retry]
            attempt += 1
        summary = summarise_batch(cmd.batch, settled, rounds=attempt)
        yield context.call_activity_with_retry(CLOSE_BACKUP_SET_BATCH, INFRA_RETRY, {
            **cmd.model_dump(mode="json"), "summary": summary.model_dump(mode="json")})
    except Exception as exc:  # noqa: BLE001 - the items left pending are settled when the run finishes
        log.error("backup run %s batch %d failed (%s)", cmd.run_id, cmd.batch, type(exc).__name__)
        summary = BatchSummary(batch=cmd.batch, total=len(settled),
                               succeeded=sum(1 for r in settled if r.status == "succeeded"),
                               failed=sum(1 for r in settled if r.status != "succeeded"), rounds=attempt)
    return summary.model_dump(mode="json")


def _flattened(chunks: list[Sequence[PolicyRef]], answers: list[Any]) -> list[CaptureItemResult]:
    """The chunks' results in the order of their members, so a result's position is its member's."""
    results: list[CaptureItemResult] = []
    for chunk, answer in zip(chunks, answers, strict=True):
        chunk_results = CaptureChunkResult.model_validate(answer).results
        if len(chunk_results) != len(chunk):
            raise ValueError("a chunk answered for another number of items than it was given")
        results.extend(chunk_results)
    return results
