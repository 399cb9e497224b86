"""The replayer against hand-built histories, with the real SDK producing the actions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from localdev.dfhost.history import EventType, make_event
from localdev.dfhost.replayer import replay

T0 = datetime(2024, 1, 1, tzinfo=UTC)


class Driver:
    """Feeds episodes to one orchestrator the way the engine does, but with chosen batches."""

    def __init__(self, invoker, name, payload=None, *, max_actions=100_000):
        self.invoker, self.name, self.max_actions = invoker, name, max_actions
        self.input = None if payload is None else json.dumps(payload)
        self.history = []
        self.now = T0
        self.pending = [make_event(EventType.EXECUTION_STARTED, T0, Name=name, Version="",
                                   Input=self.input,
                                   OrchestrationInstance={"InstanceId": "i", "ExecutionId": "x"})]

    def episode(self, *messages):
        new = [make_event(EventType.ORCHESTRATOR_STARTED, self.now), *self.pending, *messages]
        self.pending = []
        full = [*self.history, *new]
        context = json.dumps({"history": full, "input": self.input, "instanceId": "i",
                              "isReplaying": False, "parentInstanceId": None,
                              "upperSchemaVersion": 1, "upperSchemaVersionNew": 2,
                              "longRunningTimerIntervalDuration": "3.00:00:00",
                              "maximumShortTimerDuration": "6.00:00:00"})
        try:
            state = json.loads(self.invoker.run_orchestrator(self.name, context))
        except Exception as exc:  # noqa: BLE001 - the SDK raises plain Exception
            state = json.loads(str(exc).split("$OutOfProcData$:", 1)[1])
        outcome = replay(name=self.name, instance_id="i", execution_id="x",
                         parent_instance_id=None, history=full, state=state, now=self.now,
                         max_actions=self.max_actions)
        for event in [*new, *outcome.new_events]:
            event["IsPlayed"] = True
        self.history = [*full, *outcome.new_events,
                        make_event(EventType.ORCHESTRATOR_COMPLETED, self.now, is_played=True)]
        self.now += timedelta(seconds=1)
        return outcome


def completed(task_id, result):
    return make_event(EventType.TASK_COMPLETED, T0, TaskScheduledId=task_id,
                      Result=json.dumps(result))


def failed(task_id):
    return make_event(EventType.TASK_FAILED, T0, TaskScheduledId=task_id, Reason="nope",
                      Details="trace")


def fired(timer_id):
    return make_event(EventType.TIMER_FIRED, T0, TimerId=timer_id)


def tokens(outcome):
    names = {EventType.TASK_SCHEDULED: "TS", EventType.TIMER_CREATED: "TimerCreated",
             EventType.SUB_ORCHESTRATION_CREATED: "SOC"}
    return [f"{names[EventType(e['EventType'])]}{e['EventId']}" for e in outcome.new_events
            if e["EventId"] >= 0]


def test_retry_inside_fan_out_matches_the_verified_layout(invoker):
    drv = Driver(invoker, "retry_fan_out", {"key": "k", "failures": 9})
    assert tokens(drv.episode()) == ["TS0", "TS1", "TS2"]
    assert tokens(drv.episode(failed(0), completed(1, 2), completed(2, 4))) == ["TimerCreated3"]
    assert tokens(drv.episode(fired(3))) == ["TS4"]
    assert tokens(drv.episode(failed(4))) == ["TimerCreated5"]
    assert tokens(drv.episode(fired(5))) == ["TS6"]
    done = drv.episode(completed(6, "ok"))
    assert done.status == "Completed"
    assert json.loads(done.output_json) == ["ok", 2, 4]


def test_retry_timer_is_due_one_interval_after_the_replayed_failure(invoker):
    drv = Driver(invoker, "retry_single", {"key": "k", "failures": 9})
    drv.episode()
    drv.now = T0 + timedelta(minutes=7)
    outcome = drv.episode(failed(0))
    assert outcome.timers[0].task_id == 1
    assert outcome.timers[0].fire_at == T0 + timedelta(minutes=7, seconds=5)


def test_activity_completions_in_one_episode_schedule_the_next_step(invoker):
    drv = Driver(invoker, "chain", ["a", "b"])
    first = drv.episode()
    assert [(a.task_id, a.name, a.input_json) for a in first.activities] == [(0, "hello", '"a"')]
    second = drv.episode(completed(0, "Hello a!"))
    assert [(a.task_id, a.input_json) for a in second.activities] == [(1, '"b"')]
    third = drv.episode(completed(1, "Hello b!"))
    assert third.status == "Completed"
    assert json.loads(third.output_json) == ["Hello a!", "Hello b!"]


def test_a_changed_activity_name_is_reported_as_non_determinism(invoker):
    drv = Driver(invoker, "chain", ["a"])
    drv.episode()
    scheduled = next(e for e in drv.history if e["EventType"] == EventType.TASK_SCHEDULED)
    scheduled["Name"] = "send_email"     # as if an older code version scheduled this
    outcome = drv.episode(completed(0, "x"))
    assert outcome.status == "Failed"
    assert "Non-Deterministic workflow detected" in outcome.failure
    assert "named 'send_email' with sequence ID 0" in outcome.failure
    assert "instead scheduled an activity task named 'hello'" in outcome.failure


def test_a_task_no_longer_scheduled_is_reported_as_non_determinism(invoker):
    drv = Driver(invoker, "chain", ["a"])
    drv.episode()
    drv.history.insert(-1, make_event(EventType.TIMER_CREATED, T0, event_id=1, is_played=True,
                                      FireAt="2024-01-02T00:00:00.000000Z"))
    outcome = drv.episode(completed(0, "x"))
    assert outcome.status == "Failed"
    assert "a durable timer with sequence ID 1" in outcome.failure
    assert "hasn't (yet?) scheduled this task" in outcome.failure


def test_max_orchestration_actions_fails_the_instance(invoker):
    drv = Driver(invoker, "fan_out", {"n": 6}, max_actions=5)
    outcome = drv.episode()
    assert outcome.status == "Failed"
    assert "Maximum amount of orchestration actions (5)" in outcome.failure
    assert outcome.activities == []


def test_uncaught_orchestrator_error_uses_the_out_of_proc_failure_message(invoker):
    drv = Driver(invoker, "failing")
    drv.episode()
    outcome = drv.episode(failed(0))
    assert outcome.status == "Failed"
    assert outcome.failure == ("Orchestrator function 'failing' failed: nope \n trace")
