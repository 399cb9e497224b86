"""Orchestration patterns end to end: HTTP starter (unmodified SDK client) -> host -> history."""

from __future__ import annotations

import json

from tests.dfhost.conformance.conftest import HostClient, event_types, events_of


def test_chaining_runs_activities_in_order(real_host: HostClient) -> None:
    instance_id = real_host.start("chaining", "chain-1")
    status = real_host.wait(instance_id)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    scheduled = events_of(status, "TaskScheduled")
    assert [e["Name"] for e in scheduled] == ["say_hello"] * 3
    results = [json.loads(e["Result"]) for e in events_of(status, "TaskCompleted")]
    assert results == status["output"]
    types = event_types(status)
    assert types.count("ExecutionStarted") == 1
    assert types.count("ExecutionCompleted") == 1


def test_fan_out_of_1000_activities_records_each_result_once(real_host: HostClient) -> None:
    instance_id = real_host.start("fan_out", "fan-1000", {"count": 1000, "tag": "big"})
    status = real_host.wait(instance_id, timeout=120)
    assert status["runtimeStatus"] == "Completed", status["output"]
    assert status["output"] == {"count": 1000, "sum": 2 * sum(range(1000))}
    scheduled_ids = {e["EventId"] for e in events_of(status, "TaskScheduled")}
    completed_ids = [e["TaskScheduledId"] for e in events_of(status, "TaskCompleted")]
    assert len(scheduled_ids) == 1000
    assert sorted(completed_ids) == sorted(scheduled_ids)
    executed = [json.loads(line) for line in real_host.executions("double")]
    assert sorted(e["i"] for e in executed if e["tag"] == "big") == list(range(1000))


def test_retry_reschedules_after_a_timer_until_success(real_host: HostClient) -> None:
    instance_id = real_host.start("retrying", "retry-1", "k-retry")
    status = real_host.wait(instance_id)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == "ok after 3 attempts"
    assert len(events_of(status, "TaskFailed")) == 2
    assert len(events_of(status, "TaskScheduled")) == 3
    # DTFx's RetryInterceptor waits on a durable timer after every failure.
    assert len(events_of(status, "TimerFired")) == 2
    attempts = [line for line in real_host.executions("flaky") if "k-retry" in line]
    assert len(attempts) == 3


def test_retry_inside_a_fan_out_keeps_sibling_results(real_host: HostClient) -> None:
    instance_id = real_host.start("retry_in_fan_out", "retry-fan-1", "k-fan")
    status = real_host.wait(instance_id)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == ["ok after 2 attempts", 2, 4]
    failed = events_of(status, "TaskFailed")
    timers = events_of(status, "TimerCreated")
    assert len(failed) == 1
    assert len(timers) == 1
    # The retry timer takes the next free sequence id, after the two siblings (ids 0, 1, 2).
    assert timers[0]["EventId"] == 3


def test_retries_exhausted_fail_the_orchestration(real_host: HostClient) -> None:
    instance_id = real_host.start("retry_exhausted", "retry-x", "k-exhausted")
    status = real_host.wait(instance_id)
    assert status["runtimeStatus"] == "Failed"
    assert "flaky attempt 3 for k-exhausted" in str(status["output"])
    assert len([x for x in real_host.executions("flaky") if "k-exhausted" in x]) == 3


def test_activity_failure_fails_the_orchestration(real_host: HostClient) -> None:
    instance_id = real_host.start("failing", "fail-1")
    status = real_host.wait(instance_id)
    assert status["runtimeStatus"] == "Failed"
    assert "Orchestrator function 'failing' failed" in status["output"]
    assert "explode called with now" in status["output"]


def test_sub_orchestrations_in_batches(real_host: HostClient) -> None:
    spec = {"batches": 3, "per_batch": 4, "count": 5}
    instance_id = real_host.start("sub_batches", "subs-1", spec)
    status = real_host.wait(instance_id)
    assert status["runtimeStatus"] == "Completed", status["output"]
    assert status["output"] == {"children": 12, "sum": 12 * 2 * sum(range(5))}
    created = [e for e in status["historyEvents"] if e["EventType"].startswith("SubOrchestration")
               and "Created" in e["EventType"]]
    completed = [e for e in status["historyEvents"] if e["EventType"].startswith("SubOrchestration")
                 and "Completed" in e["EventType"]]
    assert len(created) == 12
    assert len(completed) == 12
    children = {e["InstanceId"] for e in created}
    assert len(children) == 12
    for child in children:
        child_status = real_host.status(child).json()
        assert child_status["runtimeStatus"] == "Completed"
        assert child_status["output"]["count"] == 5


def test_continue_as_new_restarts_with_new_input(real_host: HostClient) -> None:
    instance_id = real_host.start("counter", "counter-1", 0)
    status = real_host.wait(instance_id)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == 3
    # As in Azure, the status shows the input as the JSON text the SDK client sent.
    assert status["input"] == "3"
    # Only the last execution's history is kept.
    assert event_types(status).count("ExecutionStarted") == 1
    assert len(events_of(status, "TaskScheduled")) == 1
    runs = [json.loads(line)["i"] for line in real_host.executions("double")
            if '"counter"' in line]
    assert sorted(runs) == [0, 1, 2, 3]


def test_custom_status_follows_the_orchestrator(real_host: HostClient) -> None:
    instance_id = real_host.start("staged", "staged-1")
    status = real_host.wait(instance_id, lambda s: s["customStatus"] == {"stage": "waiting"})
    assert status["runtimeStatus"] == "Running"
    response = real_host.raise_webhook(instance_id, "Finish", "{}")
    assert response.status_code == 202
    status = real_host.wait(instance_id)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == "finished"
    assert status["customStatus"] == {"stage": "waiting"}
