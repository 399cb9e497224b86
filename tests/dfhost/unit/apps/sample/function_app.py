"""Fixture function app for the engine tests: one orchestrator per durable feature."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

app = df.DFApp()

# Per-process call counters so tests can see how often activities really ran.
CALLS: Counter[str] = Counter()
# Tests flip this to make an orchestrator behave differently on replay.
FLAGS: dict[str, Any] = {"nondeterministic": False}


@app.activity_trigger(input_name="name")
def hello(name: str) -> str:
    CALLS["hello"] += 1
    return f"Hello {name}!"


@app.activity_trigger(input_name="value")
def double(value: int) -> int:
    CALLS[f"double:{value}"] += 1
    return value * 2


@app.activity_trigger(input_name="value")
async def slow_double(value: int) -> int:
    CALLS[f"slow_double:{value}"] += 1
    await asyncio.sleep(0.01)
    return value * 2


@app.activity_trigger(input_name="payload")
def flaky(payload: dict[str, Any]) -> str:
    """Fails the first ``failures`` calls for ``key``."""
    CALLS[f"flaky:{payload['key']}"] += 1
    if CALLS[f"flaky:{payload['key']}"] <= payload["failures"]:
        raise ValueError(f"flaky failure {CALLS['flaky:' + payload['key']]}")
    return "ok"


@app.activity_trigger(input_name="value")
def explode(value: str) -> str:
    raise RuntimeError(f"boom {value}")


@app.activity_trigger(input_name="payload")
def echo(payload: Any) -> Any:
    return payload


@app.orchestration_trigger(context_name="context")
def chain(context: df.DurableOrchestrationContext):
    cities = context.get_input() or ["Tokyo", "Seattle", "London"]
    results = []
    for city in cities:
        results.append((yield context.call_activity("hello", city)))
    return results


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext):
    payload = context.get_input()
    activity = payload.get("activity", "double")
    values = yield context.task_all([context.call_activity(activity, i)
                                     for i in range(payload["n"])])
    return {"sum": sum(values), "count": len(values)}


RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=5000, max_number_of_attempts=3)


@app.orchestration_trigger(context_name="context")
def retry_fan_out(context: df.DurableOrchestrationContext):
    payload = context.get_input()
    results = yield context.task_all([
        context.call_activity_with_retry("flaky", RETRY, payload),
        context.call_activity("double", 1),
        context.call_activity("double", 2),
    ])
    return results


@app.orchestration_trigger(context_name="context")
def retry_single(context: df.DurableOrchestrationContext):
    payload = context.get_input()
    try:
        result = yield context.call_activity_with_retry("flaky", RETRY, payload)
    except Exception as exc:  # noqa: BLE001 - the SDK raises plain Exception
        return {"error": str(exc).split("\n")[0]}
    return {"result": result}


@app.orchestration_trigger(context_name="context")
def sleeper(context: df.DurableOrchestrationContext):
    days = context.get_input()["days"]
    yield context.create_timer(context.current_utc_datetime + timedelta(days=days))
    return context.current_utc_datetime.isoformat()


@app.orchestration_trigger(context_name="context")
def wait_event(context: df.DurableOrchestrationContext):
    value = yield context.wait_for_external_event("Approval")
    return {"type": type(value).__name__, "value": value}


@app.orchestration_trigger(context_name="context")
def wait_twice(context: df.DurableOrchestrationContext):
    yield context.call_activity("double", 0)
    first = yield context.wait_for_external_event("E")
    second = yield context.wait_for_external_event("E")
    return [first, second]


@app.orchestration_trigger(context_name="context")
def human(context: df.DurableOrchestrationContext):
    """The official human-interaction sample: up to 3 tries against a 1-hour deadline."""
    expected = context.get_input()["code"]
    deadline = context.current_utc_datetime + timedelta(hours=1)
    timeout = context.create_timer(deadline)
    for _ in range(3):
        challenge = context.wait_for_external_event("Code")
        winner = yield context.task_any([challenge, timeout])
        if winner == challenge:
            if challenge.result == expected:
                timeout.cancel()
                return "approved"
        else:
            return "timeout"
    return "failed"


@app.orchestration_trigger(context_name="context")
def child(context: df.DurableOrchestrationContext):
    batch = context.get_input()
    values = yield context.task_all([context.call_activity("double", v) for v in batch])
    return sum(values)


@app.orchestration_trigger(context_name="context")
def parent(context: df.DurableOrchestrationContext):
    payload = context.get_input()
    items = list(range(payload["items"]))
    size = payload["batch"]
    batches = [items[i:i + size] for i in range(0, len(items), size)]
    sums = yield context.task_all([context.call_sub_orchestrator("child", b) for b in batches])
    return {"total": sum(sums), "batches": len(batches)}


@app.orchestration_trigger(context_name="context")
def parent_bad_child(context: df.DurableOrchestrationContext):
    yield context.call_sub_orchestrator("child", [1], instance_id=context.instance_id)
    return "unreachable"


@app.orchestration_trigger(context_name="context")
def counter(context: df.DurableOrchestrationContext):
    count = context.get_input() or 0
    yield context.call_activity("double", count)
    if count < 3:
        context.continue_as_new(count + 1)
        return None
    return count


@app.orchestration_trigger(context_name="context")
def status_reporter(context: df.DurableOrchestrationContext):
    size = context.get_input()["size"]
    context.set_custom_status({"stage": "start"})
    yield context.call_activity("double", 1)
    context.set_custom_status({"stage": "big", "blob": "x" * size})
    yield context.call_activity("double", 2)
    return "done"


@app.orchestration_trigger(context_name="context")
def drifting(context: df.DurableOrchestrationContext):
    yield context.call_activity("double", 1)
    name = "hello" if FLAGS["nondeterministic"] else "double"
    yield context.call_activity(name, 2)
    yield context.wait_for_external_event("go")
    return "done"


@app.orchestration_trigger(context_name="context")
def failing(context: df.DurableOrchestrationContext):
    yield context.call_activity("explode", "x")
    return "unreachable"


@app.orchestration_trigger(context_name="context")
def gated(context: df.DurableOrchestrationContext):
    """Returns while a timer is still open: DTFx must not complete until it fires."""
    timer = context.create_timer(context.current_utc_datetime + timedelta(hours=2))
    first = yield context.task_any([context.call_activity("double", 1), timer])
    return first.result


@app.orchestration_trigger(context_name="context")
def calls_missing(context: df.DurableOrchestrationContext):
    yield context.call_activity("no_such_activity", 1)
    return "unreachable"


@app.orchestration_trigger(context_name="context")
def parent_of_failing(context: df.DurableOrchestrationContext):
    try:
        yield context.call_sub_orchestrator("failing", None)
    except Exception as exc:  # noqa: BLE001 - the SDK raises plain Exception
        return {"child_failed": str(exc).split("\n")[0]}
    return "unreachable"


@app.orchestration_trigger(context_name="context")
def parent_of_waiter(context: df.DurableOrchestrationContext):
    try:
        yield context.call_sub_orchestrator("wait_event", None, instance_id="the-child")
    except Exception as exc:  # noqa: BLE001 - the SDK raises plain Exception
        return {"child_failed": str(exc).split("\n")[0]}
    return "unreachable"


@app.orchestration_trigger(context_name="context")
def can_waiter(context: df.DurableOrchestrationContext):
    count = context.get_input() or 0
    yield context.wait_for_external_event("next")
    if count < 1:
        context.continue_as_new(count + 1)
        return None
    return count


@app.orchestration_trigger(context_name="context")
def echo_fan_out(context: df.DurableOrchestrationContext):
    payload = context.get_input()
    blob = "x" * payload["size"]
    echoed = yield context.task_all([context.call_activity("echo", f"{i}:{blob}")
                                     for i in range(payload["n"])])
    return {"count": len(echoed), "chars": sum(len(e) for e in echoed)}
