"""The engine on Azure Table Storage (Azurite): persistence, large episodes, crash recovery."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest

from localdev.dfhost._engine_tables import TableStore
from localdev.dfhost.history import EventType
from tests.dfhost.unit.conftest import make_engine, run_to_end

pytestmark = pytest.mark.azurite


async def test_chaining_and_continue_as_new_persist_in_tables(
        invoker, calls, azurite_connection_string, unique_name):
    engine = make_engine(invoker, connection_string=azurite_connection_string, hub=unique_name)
    await engine.start()
    try:
        status = await run_to_end(engine, "chain", ["Oslo"], instance_id="ten ant:run%41")
        assert status["runtimeStatus"] == "Completed"
        assert status["output"] == ["Hello Oslo!"]
        status = await run_to_end(engine, "counter", 0, instance_id="can")
        assert status["output"] == 3
        assert [e["EventType"] for e in status["historyEvents"]].count("ExecutionStarted") == 1
    finally:
        await engine.stop()
    # a fresh engine reads the same state back
    again = make_engine(invoker, connection_string=azurite_connection_string, hub=unique_name)
    await again.start()
    try:
        status = await again.get_status("ten ant:run%41", show_history=True)
        assert status["output"] == ["Hello Oslo!"]
        assert [e["EventType"] for e in status["historyEvents"]].count("TaskCompleted") == 1
        assert await again.purge("ten ant:run%41") == 1
        assert await again.get_status("ten ant:run%41") is None
    finally:
        await again.stop()


async def test_episodes_larger_than_a_table_property_round_trip(
        invoker, calls, azurite_connection_string, unique_name):
    engine = make_engine(invoker, connection_string=azurite_connection_string, hub=unique_name)
    await engine.start()
    try:
        status = await run_to_end(engine, "echo_fan_out", {"n": 40, "size": 2000},
                                  instance_id="big", wait=60)
    finally:
        await engine.stop()
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"count": 40, "chars": sum(len(f"{i}:") + 2000 for i in range(40))}
    # the scheduling episode alone holds 80,000+ characters of JSON: several properties
    store = TableStore(azurite_connection_string, unique_name)
    await store.open()
    try:
        rows = [e async for e in store.table.query_entities(
            "RowKey ge 'ep:' and RowKey lt 'ep;'")]
        assert any(int(r["DN"]) > 1 for r in rows)
        state = await store.get_state("big")
        history = await store.load_history("big", state.execution_id)
        kinds = Counter(e["EventType"] for e in history)
        assert kinds[EventType.TASK_SCHEDULED] == 40
        assert kinds[EventType.TASK_COMPLETED] == 40
        results = sorted(json.loads(e["Result"]) for e in history
                         if e["EventType"] == EventType.TASK_COMPLETED)
        assert results == sorted(f"{i}:" + "x" * 2000 for i in range(40))
    finally:
        await store.close()


async def test_a_crash_mid_fan_out_resumes_and_records_each_result_once(
        invoker, calls, azurite_connection_string, unique_name):
    n = 150
    first = make_engine(invoker, connection_string=azurite_connection_string, hub=unique_name,
                        max_concurrent_activities=4)
    await first.start()
    iid = await first.start_instance("fan_out", "crashy",
                                     json.dumps(json.dumps({"n": n, "activity": "slow_double"})))
    for _ in range(600):
        if sum(calls.values()) >= n // 3:
            break
        await asyncio.sleep(0.01)
    ran_before = sum(calls.values())
    assert 0 < ran_before < n
    first.abandon()          # no graceful stop: in-flight work and episodes are just dropped
    await first.stop()       # only releases the HTTP session; nothing more is written

    second = make_engine(invoker, connection_string=azurite_connection_string, hub=unique_name,
                         max_concurrent_activities=8)
    await second.start()
    try:
        assert await second.wait_idle(90)
        status = await second.get_status(iid, show_history=True)
    finally:
        await second.stop()
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"sum": (n - 1) * n, "count": n}
    completed = Counter(e["TaskScheduledId"] for e in status["historyEvents"]
                        if e["EventType"] == "TaskCompleted")
    assert sorted(completed) == list(range(n))
    assert set(completed.values()) == {1}
    executions = [calls[f"slow_double:{i}"] for i in range(n)]
    assert min(executions) >= 1          # at least once
    assert sum(executions) >= n


@pytest.mark.parametrize(("name", "payload"), [
    ("fan_out", {"n": 30}),
    ("parent", {"items": 20, "batch": 5}),
])
async def test_a_crash_at_the_commit_re_runs_the_episode_idempotently(
        invoker, calls, azurite_connection_string, unique_name, name, payload):
    first = make_engine(invoker, connection_string=azurite_connection_string, hub=unique_name)
    await first.start()
    store = first._store
    real_commit = store.commit_episode

    async def crash_on_first_parent_commit(instance_id, commit):
        if instance_id == "victim":
            first.abandon()   # work rows / children are written, the checkpoint is not
            raise asyncio.CancelledError
        await real_commit(instance_id, commit)

    store.commit_episode = crash_on_first_parent_commit
    await first.start_instance(name, "victim", json.dumps(json.dumps(payload)))
    for _ in range(500):
        if not first._started:
            break
        await asyncio.sleep(0.01)
    await first.stop()
    assert sum(calls.values()) == 0      # nothing was dispatched before the checkpoint

    second = make_engine(invoker, connection_string=azurite_connection_string, hub=unique_name)
    await second.start()
    try:
        assert await second.wait_idle(60)
        status = await second.get_status("victim", show_history=True)
        everything = await second.query()
    finally:
        await second.stop()
    assert status["runtimeStatus"] == "Completed"
    if name == "fan_out":
        assert status["output"] == {"sum": 29 * 30, "count": 30}
        assert all(calls[f"double:{i}"] == 1 for i in range(30))
    else:
        assert status["output"] == {"total": 2 * sum(range(20)), "batches": 4}
        assert len(everything) == 5          # the re-run did not start extra children
        assert all(calls[f"double:{i}"] == 1 for i in range(20))
