"""The backup set orchestrators driven as generators (no host): plan, sliding window of batches, retries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestrators.backup_set import backup_set_batch_orchestrator, backup_set_orchestrator
from shared.durable_names import (
    BACKUP_SET_BATCH_ORCHESTRATOR,
    CAPTURE_BACKUP_SET_CHUNK,
    CLOSE_BACKUP_SET_BATCH,
    FINISH_BACKUP_SET,
    MARK_RUN_RUNNING,
    PLAN_BACKUP_SET,
    READ_BACKUP_SET_BATCH,
)

START = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@dataclass
class Call:
    kind: str  # activity | sub
    name: str
    payload: Any
    instance_id: str | None = None
    # Set when the task completes (``task_any``): the answer, or the exception it failed with.
    result: Any = None


@dataclass
class Timer:
    fire_at: datetime


@dataclass
class All:
    tasks: list[Call]


@dataclass
class AnyOf:
    tasks: list[Call]


@dataclass
class FakeContext:
    input: dict[str, Any]
    current_utc_datetime: datetime = START
    is_replaying: bool = False
    log: list[Any] = field(default_factory=list)

    def get_input(self) -> dict[str, Any]:
        return self.input

    def call_activity_with_retry(self, name: str, _retry: Any, payload: Any) -> Call:
        return Call("activity", name, payload)

    def call_sub_orchestrator(self, name: str, payload: Any, instance_id: str | None = None) -> Call:
        return Call("sub", name, payload, instance_id)

    def create_timer(self, fire_at: datetime) -> Timer:
        return Timer(fire_at)

    def task_all(self, tasks: list[Call]) -> All:
        return All(list(tasks))

    def task_any(self, tasks: list[Call]) -> AnyOf:
        return AnyOf(list(tasks))


def drive(orchestrator: Any, payload: dict[str, Any], answer: Callable[[Call], Any],
          first_done: Callable[[list[Call]], Call] = lambda tasks: tasks[0]) -> tuple[FakeContext, Any]:
    """Run an orchestrator; ``answer`` gives each scheduled call's result. Every yield is logged.

    ``first_done`` picks which task of a ``task_any`` completes first (the SDK hands back that task, its
    ``result`` the answer or, when ``answer`` returns an exception, the exception).
    """
    ctx = FakeContext(input=payload)
    gen = orchestrator.build().get_user_function().orchestrator_function(ctx)
    value: Any = None
    while True:
        try:
            task = gen.send(value)
        except StopIteration as stop:
            return ctx, stop.value
        ctx.log.append(task)
        if isinstance(task, Timer):
            ctx.current_utc_datetime = task.fire_at
            value = None
        elif isinstance(task, All):
            value = [answer(t) for t in task.tasks]
        elif isinstance(task, AnyOf):
            value = first_done(task.tasks)
            value.result = answer(value)
        else:
            value = answer(task)


RUN = {"tenantId": "t1", "runId": "run_1"}


def parent_answers(batches: int, plan_status: str = "planned") -> Callable[[Call], Any]:
    def answer(call: Call) -> Any:
        if call.name == MARK_RUN_RUNNING:
            return {"runId": "run_1", "status": "running"}
        if call.name == PLAN_BACKUP_SET:
            return {"status": plan_status, "backupSetId": "bs_1", "itemCount": batches * 100,
                    "batchCount": batches, "captureChunk": 7,
                    "error": {"code": "Forbidden"} if plan_status == "failed" else None}
        if call.name == BACKUP_SET_BATCH_ORCHESTRATOR:
            return {"batch": call.payload["batch"], "total": 100, "succeeded": 100}
        if call.name == FINISH_BACKUP_SET:
            return {"runId": "run_1", "status": "succeeded", "failure": call.payload.get("failure")}
        raise AssertionError(call)
    return answer


def started_batches(ctx: FakeContext) -> list[Call]:
    """Batch sub-orchestrations in the order the parent started them (each once)."""
    seen: dict[int, Call] = {}
    for step in ctx.log:
        if isinstance(step, AnyOf):
            for call in step.tasks:
                seen.setdefault(id(call), call)
    return list(seen.values())


class BatchClock:
    """Completes the batch in flight that would finish first, given how long each batch takes."""

    def __init__(self, durations: dict[int, float]) -> None:
        self.durations = durations
        self.now = 0.0
        self.started: dict[int, float] = {}
        self.in_flight_peak = 0
        self.start_order: list[int] = []
        self.done_order: list[int] = []

    def first_done(self, tasks: list[Call]) -> Call:
        for call in tasks:
            batch = call.payload["batch"]
            if batch not in self.started:
                self.started[batch] = self.now
                self.start_order.append(batch)
        self.in_flight_peak = max(self.in_flight_peak, len(tasks))
        done = min(tasks, key=lambda c: (self.started[c.payload["batch"]]
                                         + self.durations.get(c.payload["batch"], 1.0), c.payload["batch"]))
        batch = done.payload["batch"]
        self.now = self.started[batch] + self.durations.get(batch, 1.0)
        self.done_order.append(batch)
        return done


def test_the_parent_keeps_four_batches_in_flight_and_finishes_after_the_last() -> None:
    clock = BatchClock({0: 10.0})  # batch 0 is slow; the others take 1
    ctx, final = drive(backup_set_orchestrator, RUN, parent_answers(10), clock.first_done)
    # A sliding window: the slow batch holds only its own slot, the next batches start as others return.
    assert clock.start_order == list(range(10))
    assert clock.in_flight_peak == 4
    assert clock.started[4] == 1.0  # not after batch 0 (10.0), as a lock-step window of four would
    assert clock.done_order[-1] == 0
    assert clock.now == 10.0  # the slow batch is the critical path: 3 more rounds of 3 fit beside it
    instance_ids = [c.instance_id for c in started_batches(ctx)]
    assert instance_ids[0] == "run_1:batch-000000"
    assert len(set(instance_ids)) == 10
    # Finishing is the very last step: every batch has returned before the counts freeze.
    assert isinstance(ctx.log[-1], Call)
    assert ctx.log[-1].name == FINISH_BACKUP_SET
    assert ctx.log[-1].payload["failure"] is None
    assert final["status"] == "succeeded"
    # Nothing but ids and counts crossed the boundary; the chunk size is the plan's (from its history).
    assert all(set(c.payload) <= {"tenant_id", "run_id", "backup_set_id", "batch", "include_assignments",
                                  "capture_chunk"} for c in started_batches(ctx))
    assert {c.payload["capture_chunk"] for c in started_batches(ctx)} == {7}


def test_the_window_replays_the_same_decisions_from_the_same_history() -> None:
    runs = [drive(backup_set_orchestrator, RUN, parent_answers(9), BatchClock({0: 5.0, 6: 3.0}).first_done)
            for _ in range(2)]
    first, second = ([(type(step).__name__, [c.instance_id for c in getattr(step, "tasks", [])])
                      for step in ctx.log] for ctx, _ in runs)
    assert first == second


def test_a_failed_batch_stops_new_batches_but_the_run_finishes_only_after_those_in_flight() -> None:
    base = parent_answers(10)
    clock = BatchClock({1: 0.5})  # batch 1 returns first, failed; 0, 2 and 3 are still running

    def answer(call: Call) -> Any:
        if call.name == BACKUP_SET_BATCH_ORCHESTRATOR and call.payload["batch"] == 1:
            return RuntimeError("sub-orchestration failed")
        return base(call)

    ctx, _ = drive(backup_set_orchestrator, RUN, answer, clock.first_done)
    assert clock.start_order == [0, 1, 2, 3]
    assert sorted(clock.done_order) == [0, 1, 2, 3]
    assert ctx.log[-1].name == FINISH_BACKUP_SET
    assert ctx.log[-1].payload["failure"]["code"] == "internal-error"


def test_a_failed_plan_runs_no_batch_and_fails_the_run_with_its_error() -> None:
    ctx, _ = drive(backup_set_orchestrator, RUN, parent_answers(3, plan_status="failed"))
    assert not any(isinstance(step, All | AnyOf) for step in ctx.log)
    assert ctx.log[-1].payload["failure"]["code"] == "Forbidden"


def test_a_throttled_plan_is_retried_after_a_durable_timer() -> None:
    plans = iter([{"status": "retry", "backupSetId": "bs_1", "retryAfterSeconds": 20},
                  {"status": "planned", "backupSetId": "bs_1", "itemCount": 0, "batchCount": 0}])
    base = parent_answers(0)
    ctx, _ = drive(backup_set_orchestrator, RUN,
                   lambda call: next(plans) if call.name == PLAN_BACKUP_SET else base(call))
    timers = [step for step in ctx.log if isinstance(step, Timer)]
    assert [t.fire_at for t in timers] == [START + timedelta(seconds=20)]
    assert ctx.log[-1].payload["failure"] is None


def test_a_cancelled_run_is_not_planned() -> None:
    ctx, final = drive(backup_set_orchestrator, RUN,
                       lambda call: {"runId": "run_1", "status": "cancelled"})
    assert [c.name for c in ctx.log] == [MARK_RUN_RUNNING]
    assert final["status"] == "cancelled"


BATCH = {"tenantId": "t1", "runId": "run_1", "backupSetId": "bs_1", "batch": 3, "includeAssignments": True,
         "captureChunk": 2}


def test_a_batch_captures_in_chunks_and_retries_only_the_items_that_asked_in_rounds_after_one_timer() -> None:
    attempts: dict[str, list[int]] = {}
    chunks: list[list[str]] = []

    def answer(call: Call) -> Any:
        if call.name == READ_BACKUP_SET_BATCH:
            return {"members": [{"type": "settingsCatalog", "id": f"p{n}"} for n in range(5)]}
        if call.name == CAPTURE_BACKUP_SET_CHUNK:
            assert call.payload["backup_set_id"] == "bs_1"
            attempt = call.payload["attempt"]
            chunks.append([m["id"] for m in call.payload["members"]])
            results = []
            for member in call.payload["members"]:
                policy = member["id"]
                attempts.setdefault(policy, []).append(attempt)
                if policy == "p1" and attempt == 1:
                    results.append({"itemId": policy, "status": "retry", "retryAfterSeconds": 40})
                elif policy in ("p2", "p4"):  # keep asking: settled as failed on the final attempt
                    results.append({"itemId": policy,
                                    "status": "failed" if call.payload["final_attempt"] else "retry"})
                else:
                    results.append({"itemId": policy, "status": "succeeded"})
            return {"results": results}
        if call.name == CLOSE_BACKUP_SET_BATCH:
            return call.payload["summary"]
        raise AssertionError(call)

    ctx, summary = drive(backup_set_batch_orchestrator, BATCH, answer)
    assert attempts == {"p0": [1], "p1": [1, 2], "p2": [1, 2, 3], "p3": [1], "p4": [1, 2, 3]}
    # Chunks of the plan's size; a retry round chunks only the items that asked, again.
    assert chunks == [["p0", "p1"], ["p2", "p3"], ["p4"], ["p1", "p2"], ["p4"], ["p2", "p4"]]
    rounds = [len(step.tasks) for step in ctx.log if isinstance(step, All)]
    assert rounds == [3, 2, 1]
    timers = [step.fire_at for step in ctx.log if isinstance(step, Timer)]
    assert timers[0] == START + timedelta(seconds=40)  # the longest wait any item asked for
    assert len(timers) == 2
    assert summary == {"batch": 3, "total": 5, "succeeded": 3, "failed": 2, "skipped": 0, "rounds": 3}
    closing = ctx.log[-1]
    assert closing.name == CLOSE_BACKUP_SET_BATCH
    assert closing.payload["summary"] == summary


def test_a_chunk_that_answers_for_the_wrong_number_of_items_fails_the_batch_not_the_positions() -> None:
    def answer(call: Call) -> Any:
        if call.name == READ_BACKUP_SET_BATCH:
            return {"members": [{"type": "settingsCatalog", "id": f"p{n}"} for n in range(3)]}
        if call.name == CAPTURE_BACKUP_SET_CHUNK:
            return {"results": [{"itemId": "p0", "status": "succeeded"}]}
        raise AssertionError(call)

    ctx, summary = drive(backup_set_batch_orchestrator, BATCH, answer)
    # Nothing is counted from a misaligned round: its items stay pending and the finish settles them.
    assert summary["total"] == 0
    assert not any(isinstance(step, Call) and step.name == CLOSE_BACKUP_SET_BATCH for step in ctx.log)


def test_a_batch_whose_members_cannot_be_read_returns_without_capturing() -> None:
    def answer(call: Call) -> Any:
        raise RuntimeError("storage down")

    ctx = FakeContext(input=BATCH)
    gen = backup_set_batch_orchestrator.build().get_user_function().orchestrator_function(ctx)
    first = gen.send(None)
    assert first.name == READ_BACKUP_SET_BATCH
    with pytest.raises(StopIteration) as ended:
        gen.throw(RuntimeError("activity failed"))
    assert ended.value.value["total"] == 0
