"""The restore orchestrators driven as generators (no host): plan, stages of batches in order, retries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrators.restore import restore_batch_orchestrator, restore_orchestrator
from shared.domain.batches import BATCHES_IN_FLIGHT
from shared.domain.restore import (
    APPLY_CHUNK,
    ASSIGNMENTS_STAGE,
    RESTORE_BATCH,
    RestoreApplyInput,
    RestoreBatchInput,
    restore_batch_instance,
)
from shared.durable_names import (
    APPLY_RESTORE_ITEM,
    FINISH_RESTORE,
    MARK_RUN_RUNNING,
    PLAN_RESTORE,
    RESTORE_BATCH_ORCHESTRATOR,
)
from tests.app.test_backup_set_orchestrator import All, AnyOf, Call, Timer, drive

EXECUTE = {"tenantId": "t1", "runId": "run_1", "execute": True}
PREVIEW = {**EXECUTE, "execute": False}
BIG = list(range(2, 2 + 450))
STAGES = [{"stage": 10, "positions": [0, 1]}, {"stage": 1000, "positions": BIG},
          {"stage": ASSIGNMENTS_STAGE, "positions": [2, 3]}]


def answers(plan: dict[str, Any]) -> Callable[[Call], Any]:
    def answer(call: Call) -> Any:
        if call.name == MARK_RUN_RUNNING:
            return {"runId": "run_1", "status": "running"}
        if call.name == PLAN_RESTORE:
            return plan
        if call.name == RESTORE_BATCH_ORCHESTRATOR:
            return {"stage": call.payload["stage"], "items": len(call.payload["positions"])}
        if call.name == FINISH_RESTORE:
            return {"runId": "run_1", "status": "succeeded", "failure": call.payload.get("failure")}
        raise AssertionError(call)
    return answer


def _batches(log: list[Any]) -> list[Call]:
    """Batch sub-orchestrations in the order the parent started them (each once)."""
    seen: dict[int, Call] = {}
    for step in log:
        if isinstance(step, AnyOf):
            for call in step.tasks:
                seen.setdefault(id(call), call)
    return list(seen.values())


def test_stages_run_in_order_as_batches_a_few_at_a_time_with_a_barrier_between_stages() -> None:
    plan = {"status": "planned", "planHash": "h", "itemCount": 452, "stages": STAGES}
    ctx, result = drive(restore_orchestrator, EXECUTE, answers(plan))
    batches = [RestoreBatchInput.model_validate(c.payload) for c in _batches(ctx.log)]
    assert [(b.stage, len(b.positions)) for b in batches] == [
        (10, 2), (1000, 100), (1000, 100), (1000, 100), (1000, 100), (1000, 50), (ASSIGNMENTS_STAGE, 2)]
    assert [p for b in batches if b.stage == 1000 for p in b.positions] == BIG
    assert all(b.plan_hash == "h" for b in batches)
    assert [c.instance_id for c in _batches(ctx.log)][:3] == [
        restore_batch_instance("run_1", 10, 0), restore_batch_instance("run_1", 1000, 0),
        restore_batch_instance("run_1", 1000, 1)]
    # Never more than a few in flight, and no batch of a stage before every batch of the one before returned.
    waits = [step for step in ctx.log if isinstance(step, AnyOf)]
    assert max(len(w.tasks) for w in waits) == BATCHES_IN_FLIGHT
    for wait in waits:
        assert len({RestoreBatchInput.model_validate(c.payload).stage for c in wait.tasks}) == 1
    assert result["status"] == "succeeded"
    assert RESTORE_BATCH == 100


def test_a_preview_plans_and_finishes_without_applying_anything() -> None:
    plan = {"status": "planned", "planHash": "h", "itemCount": 452, "stages": STAGES}
    ctx, _ = drive(restore_orchestrator, PREVIEW, answers(plan))
    called = [s.name for s in ctx.log if isinstance(s, Call)]
    assert called == [MARK_RUN_RUNNING, PLAN_RESTORE, FINISH_RESTORE]


def test_a_failed_batch_stops_new_ones_and_fails_the_run_once_the_started_ones_returned() -> None:
    plan = {"status": "planned", "planHash": "h", "itemCount": 452, "stages": STAGES}

    def answer(call: Call) -> Any:
        if call.name == RESTORE_BATCH_ORCHESTRATOR and call.payload["stage"] == 10:
            return RuntimeError("a batch crashed")
        return answers(plan)(call)

    ctx, _ = drive(restore_orchestrator, EXECUTE, answer)
    assert [RestoreBatchInput.model_validate(c.payload).stage for c in _batches(ctx.log)] == [10]
    finish = next(s for s in ctx.log if isinstance(s, Call) and s.name == FINISH_RESTORE)
    assert finish.payload["failure"]["code"] == "internal-error"


def test_a_failed_plan_fails_the_run_without_applying() -> None:
    plan = {"status": "failed", "error": {"code": "graph-forbidden", "message": "Graph denied access."}}
    ctx, _ = drive(restore_orchestrator, EXECUTE, answers(plan))
    finish = next(s for s in ctx.log if isinstance(s, Call) and s.name == FINISH_RESTORE)
    assert finish.payload["failure"]["code"] == "graph-forbidden"
    assert not _batches(ctx.log)


def test_a_plan_that_asks_to_retry_is_tried_again_after_a_timer() -> None:
    plans = iter([{"status": "retry", "retryAfterSeconds": 30},
                  {"status": "planned", "planHash": "h", "itemCount": 0, "stages": []}])

    def answer(call: Call) -> Any:
        if call.name == PLAN_RESTORE:
            return next(plans)
        return answers({})(call)

    ctx, _ = drive(restore_orchestrator, EXECUTE, answer)
    assert sum(1 for s in ctx.log if isinstance(s, Timer)) == 1
    assert [s.name for s in ctx.log if isinstance(s, Call)].count(PLAN_RESTORE) == 2
    finish = next(s for s in ctx.log if isinstance(s, Call) and s.name == FINISH_RESTORE)
    assert finish.payload["failure"] is None


def _applied(log: list[Any]) -> list[list[RestoreApplyInput]]:
    return [[RestoreApplyInput.model_validate(c.payload) for c in step.tasks]
            for step in log if isinstance(step, All)]


def test_a_batch_applies_its_items_a_chunk_at_a_time_with_their_stage() -> None:
    batch = RestoreBatchInput(tenant_id="t1", run_id="run_1", plan_hash="h", stage=ASSIGNMENTS_STAGE,
                              positions=list(range(45))).model_dump(mode="json")

    def answer(call: Call) -> Any:
        assert call.name == APPLY_RESTORE_ITEM
        return {"position": call.payload["position"], "status": "succeeded"}

    ctx, result = drive(restore_batch_orchestrator, batch, answer)
    fan_outs = _applied(ctx.log)
    assert [len(f) for f in fan_outs] == [APPLY_CHUNK, APPLY_CHUNK, 45 - 2 * APPLY_CHUNK]
    assert [i.position for f in fan_outs for i in f] == list(range(45))
    assert all(i.assignments and i.stage == ASSIGNMENTS_STAGE and i.plan_hash == "h"
               for f in fan_outs for i in f)
    assert result == {"stage": ASSIGNMENTS_STAGE, "items": 45, "settled": 45}


def test_throttled_items_are_retried_after_one_timer_per_round_and_only_those() -> None:
    batch = RestoreBatchInput(tenant_id="t1", run_id="run_1", plan_hash="h", stage=10,
                              positions=[0, 1]).model_dump(mode="json")

    def answer(call: Call) -> Any:
        position, attempt = call.payload["position"], call.payload["attempt"]
        if position == 1 and attempt == 1:
            return {"position": 1, "status": "retry", "retryAfterSeconds": 7}
        return {"position": position, "status": "succeeded"}

    ctx, _ = drive(restore_batch_orchestrator, batch, answer)
    assert sum(1 for s in ctx.log if isinstance(s, Timer)) == 1
    assert [[(i.position, i.attempt, i.assignments) for i in f] for f in _applied(ctx.log)] == [
        [(0, 1, False), (1, 1, False)], [(1, 2, False)]]
