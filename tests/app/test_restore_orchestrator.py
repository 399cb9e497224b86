"""The restore orchestrator driven as a generator (no host): plan, stages in order, retries, finish."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrators.restore import restore_orchestrator
from shared.domain.restore import APPLY_CHUNK, ASSIGNMENTS_STAGE, RestoreApplyInput
from shared.durable_names import APPLY_RESTORE_ITEM, FINISH_RESTORE, MARK_RUN_RUNNING, PLAN_RESTORE
from tests.app.test_backup_set_orchestrator import All, Call, Timer, drive

EXECUTE = {"tenantId": "t1", "runId": "run_1", "execute": True}
PREVIEW = {**EXECUTE, "execute": False}
STAGES = [{"stage": 10, "positions": [0, 1]}, {"stage": 1000, "positions": list(range(2, 2 + 45))},
          {"stage": ASSIGNMENTS_STAGE, "positions": [2, 3]}]


def answers(plan: dict[str, Any], apply: Callable[[Call], dict[str, Any]] | None = None
            ) -> Callable[[Call], Any]:
    def answer(call: Call) -> Any:
        if call.name == MARK_RUN_RUNNING:
            return {"runId": "run_1", "status": "running"}
        if call.name == PLAN_RESTORE:
            return plan
        if call.name == APPLY_RESTORE_ITEM:
            if apply is not None:
                return apply(call)
            return {"position": call.payload["position"], "status": "succeeded"}
        if call.name == FINISH_RESTORE:
            return {"runId": "run_1", "status": "succeeded", "failure": call.payload.get("failure")}
        raise AssertionError(call)
    return answer


def _applied(log: list[Any]) -> list[list[tuple[int, bool]]]:
    """Each fan-out of item activities, as (position, assignments) pairs."""
    return [[(c.payload["position"], c.payload["assignments"]) for c in step.tasks]
            for step in log if isinstance(step, All)]


def test_stages_run_in_order_in_chunks_with_a_barrier_between_them() -> None:
    plan = {"status": "planned", "planHash": "h", "itemCount": 47, "stages": STAGES}
    ctx, result = drive(restore_orchestrator, EXECUTE, answers(plan))
    fan_outs = _applied(ctx.log)
    assert fan_outs[0] == [(0, False), (1, False)]
    # The 45 items of the second stage go a chunk at a time, after the first stage returned.
    assert [len(f) for f in fan_outs[1:-1]] == [APPLY_CHUNK, APPLY_CHUNK, 45 - 2 * APPLY_CHUNK]
    assert [p for f in fan_outs[1:-1] for p, _ in f] == list(range(2, 47))
    assert fan_outs[-1] == [(2, True), (3, True)]
    assert all(RestoreApplyInput.model_validate(c.payload).plan_hash == "h"
               for step in ctx.log if isinstance(step, All) for c in step.tasks)
    assert result["status"] == "succeeded"


def test_a_preview_plans_and_finishes_without_applying_anything() -> None:
    plan = {"status": "planned", "planHash": "h", "itemCount": 47, "stages": STAGES}
    ctx, _ = drive(restore_orchestrator, PREVIEW, answers(plan))
    names = [s.name for s in ctx.log if isinstance(s, Call)]
    assert names == [MARK_RUN_RUNNING, PLAN_RESTORE, FINISH_RESTORE]


def test_throttled_items_are_retried_after_one_timer_per_round_and_only_those() -> None:
    plan = {"status": "planned", "planHash": "h", "itemCount": 2,
            "stages": [{"stage": 10, "positions": [0, 1]}]}

    def apply(call: Call) -> dict[str, Any]:
        position, attempt = call.payload["position"], call.payload["attempt"]
        if position == 1 and attempt == 1:
            return {"position": 1, "status": "retry", "retryAfterSeconds": 7}
        return {"position": position, "status": "succeeded"}

    ctx, _ = drive(restore_orchestrator, EXECUTE, answers(plan, apply))
    timers = [s for s in ctx.log if isinstance(s, Timer)]
    assert len(timers) == 1
    assert _applied(ctx.log) == [[(0, False), (1, False)], [(1, False)]]
    second = next(step for step in ctx.log if isinstance(step, All) and len(step.tasks) == 1)
    assert second.tasks[0].payload["attempt"] == 2


def test_a_failed_plan_fails_the_run_without_applying() -> None:
    plan = {"status": "failed", "error": {"code": "graph-forbidden", "message": "Graph denied access."}}
    ctx, _ = drive(restore_orchestrator, EXECUTE, answers(plan))
    finish = next(s for s in ctx.log if isinstance(s, Call) and s.name == FINISH_RESTORE)
    assert finish.payload["failure"]["code"] == "graph-forbidden"
    assert not _applied(ctx.log)


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
