from __future__ import annotations

import json
from datetime import timedelta

from localdev.dfhost.history import parse_time
from tests.dfhost.unit.conftest import make_engine, run_to_end


def _layout(history):
    """History as compact tokens per episode, e.g. ``TS0 TS1 | TF0 TC1 TimerCreated3``."""
    episodes, current = [], []
    for e in history:
        kind = e["EventType"]
        if kind == "OrchestratorStarted":
            current = []
        elif kind == "OrchestratorCompleted":
            episodes.append(" ".join(current))
        elif kind == "TaskScheduled":
            current.append(f"TS{e['EventId']}")
        elif kind == "TaskCompleted":
            current.append(f"TC{e['TaskScheduledId']}")
        elif kind == "TaskFailed":
            current.append(f"TF{e['TaskScheduledId']}")
        elif kind == "TimerCreated":
            current.append(f"TimerCreated{e['EventId']}")
        elif kind == "TimerFired":
            current.append(f"TimerFired{e['TimerId']}")
    return [ep for ep in episodes if ep]


async def test_fan_out_of_1000_activities_runs_each_once(invoker, calls):
    engine = make_engine(invoker, max_concurrent_activities=50)
    await engine.start()
    try:
        status = await run_to_end(engine, "fan_out", {"n": 1000}, wait=90)
    finally:
        await engine.stop()
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"sum": 999 * 1000, "count": 1000}
    assert all(calls[f"double:{i}"] == 1 for i in range(1000))
    kinds = [e["EventType"] for e in status["historyEvents"]]
    assert kinds.count("TaskCompleted") == 1000
    assert sorted(e["EventId"] for e in status["historyEvents"]
                  if e["EventType"] == "TaskScheduled") == list(range(1000))


async def test_retry_inside_fan_out_allocates_timer_ids_like_dtfx(engine, calls):
    status = await run_to_end(engine, "retry_fan_out", {"key": "fan", "failures": 2})
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == ["ok", 2, 4]
    # Episode grouping depends on how completions batch; the ids never do.
    history = status["historyEvents"]
    assert [e["EventId"] for e in history if e["EventType"] == "TaskScheduled"] == [0, 1, 2, 4, 6]
    assert [e["EventId"] for e in history if e["EventType"] == "TimerCreated"] == [3, 5]
    assert [e["TaskScheduledId"] for e in history if e["EventType"] == "TaskFailed"] == [0, 4]
    assert calls["flaky:fan"] == 3


async def test_retry_delay_is_the_first_interval_after_each_failure(engine, calls):
    status = await run_to_end(engine, "retry_single", {"key": "one", "failures": 1})
    assert status["output"] == {"result": "ok"}
    history = status["historyEvents"]
    failed_at = parse_time(next(e["Timestamp"] for e in history if e["EventType"] == "TaskFailed"))
    timer = next(e for e in history if e["EventType"] == "TimerCreated")
    episode_start = [parse_time(e["Timestamp"]) for e in history
                     if e["EventType"] == "OrchestratorStarted"]
    # the retry timer is due one first interval (5 s) after the episode that saw the failure
    assert parse_time(timer["FireAt"]) - episode_start[1] == timedelta(seconds=5)
    assert failed_at <= episode_start[1]


async def test_retry_exhaustion_creates_a_timer_after_the_last_failure_then_raises(engine, calls):
    status = await run_to_end(engine, "retry_single", {"key": "never", "failures": 99})
    assert status["runtimeStatus"] == "Completed"
    assert status["output"]["error"].startswith("Activity function 'flaky' failed: flaky failure 3")
    assert calls["flaky:never"] == 3
    assert _layout(status["historyEvents"]) == [
        "TS0", "TF0 TimerCreated1", "TimerFired1 TS2", "TF2 TimerCreated3",
        "TimerFired3 TS4", "TF4 TimerCreated5", "TimerFired5",
    ]


async def test_ten_day_timer_is_split_into_three_day_timers(engine):
    start = engine.now()
    status = await run_to_end(engine, "sleeper", {"days": 10})
    assert status["runtimeStatus"] == "Completed"
    fire_ats = [parse_time(e["FireAt"]) - start for e in status["historyEvents"]
                if e["EventType"] == "TimerCreated"]
    assert fire_ats == [timedelta(days=3), timedelta(days=6), timedelta(days=10)]
    assert parse_time(status["output"]) - start == timedelta(days=10)


async def test_timer_waits_for_the_virtual_clock_without_auto_advance(invoker, calls):
    engine = make_engine(invoker, auto_advance=False)
    await engine.start()
    try:
        iid = await engine.start_instance("sleeper", "s1", json.dumps(json.dumps({"days": 1})))
        assert await engine.wait_idle(10)
        assert (await engine.get_status(iid))["runtimeStatus"] == "Running"
        await engine.advance_clock(86_399)
        assert await engine.wait_idle(10)
        assert (await engine.get_status(iid))["runtimeStatus"] == "Running"
        await engine.advance_clock(1)
        assert await engine.wait_idle(10)
        assert (await engine.get_status(iid))["runtimeStatus"] == "Completed"
    finally:
        await engine.stop()


async def test_sub_orchestrations_in_batches_use_default_child_ids(engine, calls):
    status = await run_to_end(engine, "parent", {"items": 95, "batch": 10}, instance_id="p1")
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"total": 2 * sum(range(95)), "batches": 10}
    created = [e for e in status["historyEvents"]
               if e["EventType"] == "SubOrchestrationInstanceCreated"]
    assert len(created) == 10
    children = await engine.query(instance_id_prefix="")
    child_ids = {c["instanceId"] for c in children} - {"p1"}
    assert len(child_ids) == 10
    assert all(c.endswith(f":{n}") for n, c in
               zip(range(10), sorted(child_ids, key=lambda c: int(c.split(":")[1])), strict=True))
    assert all(c["runtimeStatus"] == "Completed" for c in children)


async def test_sub_orchestration_with_the_parents_id_fails_the_parent(engine):
    status = await run_to_end(engine, "parent_bad_child", instance_id="selfish")
    assert status["runtimeStatus"] == "Failed"
    assert "same instance ID as its parent" in status["output"]
    assert status["output"].startswith("Orchestrator function 'parent_bad_child' failed:")


async def test_continue_as_new_restarts_with_new_input_and_fresh_history(engine, calls):
    status = await run_to_end(engine, "counter", 0, instance_id="c1")
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == 3
    assert status["input"] == "3"
    assert [calls[f"double:{i}"] for i in range(4)] == [1, 1, 1, 1]
    started = [e for e in status["historyEvents"] if e["EventType"] == "ExecutionStarted"]
    assert len(started) == 1   # history reset on each new execution


async def test_failure_protocol_reports_the_orchestrator_error(engine):
    status = await run_to_end(engine, "failing")
    assert status["runtimeStatus"] == "Failed"
    # SDK: Exception(f"{Reason} \n {Details}"); extension: "Orchestrator function ... failed: "
    assert status["output"] == ("Orchestrator function 'failing' failed: Activity function "
                                "'explode' failed: boom x \n RuntimeError: boom x")


async def test_a_commit_reported_as_failed_still_dispatches_its_work(invoker, calls):
    """A storage timeout after the server applied the episode must not strand its activities."""
    engine = make_engine(invoker)
    store = engine._store
    real_commit = store.commit_episode
    failures = []

    async def applied_but_reported_failed(instance_id, commit):
        await real_commit(instance_id, commit)
        if not failures:
            failures.append(instance_id)
            raise TimeoutError("the response was lost")

    store.commit_episode = applied_but_reported_failed
    await engine.start()
    try:
        status = await run_to_end(engine, "fan_out", {"n": 20})
    finally:
        await engine.stop()
    assert failures == [status["instanceId"]]
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"sum": 19 * 20, "count": 20}
    assert all(calls[f"double:{i}"] == 1 for i in range(20))
