"""Replay overhead of one orchestrator episode against the number of completed tasks.

Builds the history of a fan-out orchestrator whose N activities have all completed, then times
what every later episode costs the local Durable host: serialising the context JSON, the SDK
call (the worker's replay of the whole history) and the host-side replayer.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/dfhost_replay.py [N ...]`` (default 100 1000 5000).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df

from localdev.dfhost.history import EventType, make_event
from localdev.dfhost.replayer import replay

app = df.DFApp()


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext) -> Any:
    n = context.get_input()
    values = yield context.task_all([context.call_activity("double", i) for i in range(n)])
    return sum(values)


@app.activity_trigger(input_name="value")
def double(value: int) -> int:
    return value * 2


ORCHESTRATOR = next(f for f in app.get_functions()
                    if f.get_function_name() == "fan_out").get_user_function()
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def history_for(n: int) -> list[dict[str, Any]]:
    """Episode 1 scheduled N activities; this episode delivers all N completions."""
    events = [make_event(EventType.ORCHESTRATOR_STARTED, T0, is_played=True),
              make_event(EventType.EXECUTION_STARTED, T0, is_played=True, Name="fan_out",
                         Version="", Input=json.dumps(json.dumps(n)))]
    events += [make_event(EventType.TASK_SCHEDULED, T0, event_id=i, is_played=True,
                          Name="double", Version="", Input=json.dumps(i)) for i in range(n)]
    events.append(make_event(EventType.ORCHESTRATOR_COMPLETED, T0, is_played=True))
    events.append(make_event(EventType.ORCHESTRATOR_STARTED, T0))
    events += [make_event(EventType.TASK_COMPLETED, T0, TaskScheduledId=i,
                          Result=json.dumps(i * 2)) for i in range(n)]
    return events


def measure(n: int) -> dict[str, float]:
    history = history_for(n)
    started = time.perf_counter()
    context = json.dumps({"history": history, "input": json.dumps(n), "instanceId": "bench",
                          "isReplaying": False, "parentInstanceId": None,
                          "upperSchemaVersion": 1, "upperSchemaVersionNew": 2,
                          "longRunningTimerIntervalDuration": "3.00:00:00",
                          "maximumShortTimerDuration": "6.00:00:00"})
    encoded = time.perf_counter()
    state_json = ORCHESTRATOR(context)
    sdk_done = time.perf_counter()
    outcome = replay(name="fan_out", instance_id="bench", execution_id="x",
                     parent_instance_id=None, history=history, state=json.loads(state_json),
                     now=T0)
    replayed = time.perf_counter()
    assert outcome.status == "Completed", outcome.failure
    assert json.loads(outcome.output_json or "0") == n * (n - 1)
    return {"n": n, "context_kb": len(context) / 1024, "state_kb": len(state_json) / 1024,
            "encode_ms": (encoded - started) * 1000, "sdk_ms": (sdk_done - encoded) * 1000,
            "replayer_ms": (replayed - sdk_done) * 1000,
            "total_ms": (replayed - started) * 1000}


def main(argv: list[str]) -> None:
    sizes = [int(a) for a in argv] or [100, 1000, 5000]
    rows = [measure(n) for n in sizes]
    print(f"{'N':>6} {'context KB':>11} {'state KB':>9} {'encode ms':>10} {'SDK ms':>9} "
          f"{'replayer ms':>12} {'total ms':>9} {'ms/task':>8}")
    for r in rows:
        print(f"{r['n']:>6} {r['context_kb']:>11.0f} {r['state_kb']:>9.0f} "
              f"{r['encode_ms']:>10.1f} {r['sdk_ms']:>9.1f} {r['replayer_ms']:>12.1f} "
              f"{r['total_ms']:>9.1f} {r['total_ms'] / r['n']:>8.3f}")
    base = rows[0]
    for r in rows[1:]:
        print(f"N x{r['n'] / base['n']:.0f}: total x{r['total_ms'] / base['total_ms']:.1f}, "
              f"SDK x{r['sdk_ms'] / base['sdk_ms']:.1f}, "
              f"replayer x{r['replayer_ms'] / base['replayer_ms']:.1f}")
    worst = rows[-1]
    # one completion per episode replays 1..N tasks: roughly N/2 full-size episodes
    print(f"worst case (one completion per episode) at N={worst['n']}: "
          f"~{worst['total_ms'] * worst['n'] / 2 / 1000 / 60:.1f} min of replay")


if __name__ == "__main__":
    main(sys.argv[1:])
