"""Activities are at-least-once: a result that never reaches storage means a re-run, not a hang."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from localdev.dfhost import engine as engine_module
from localdev.dfhost.engine import Engine
from localdev.dfhost.store import Message
from tests.dfhost.unit.conftest import SdkInvoker, make_engine


async def _wait_completed(engine: Engine, instance_id: str, seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        status = await engine.get_status(instance_id)
        assert status is not None
        if status["runtimeStatus"] not in ("Running", "Pending"):
            return status
        assert time.monotonic() < deadline, f"still {status['runtimeStatus']} after {seconds}s"
        await asyncio.sleep(0.05)


async def _fan_out(engine: Engine, n: int) -> str:
    return await engine.start_instance("fan_out", None, json.dumps(json.dumps({"n": n})))


async def test_results_storage_keeps_refusing_are_produced_again(
        invoker: SdkInvoker, calls: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "RESULT_WRITE_BACKOFF_SECONDS", (0.01, 0.02),
                        raising=False)
    monkeypatch.setattr(engine_module, "EPISODE_RETRY_SECONDS", 0.05)
    engine = make_engine(invoker, clock="real")
    store = engine._store
    record = store.complete_work
    refused: list[int] = []

    async def flaky_complete_work(instance_id: str, work_key: str, message: Message) -> bool:
        task_id = int(message.event["TaskScheduledId"])
        # Every write of task 3's first result fails, like a storage connection dropped each time.
        if task_id == 3 and calls["double:3"] == 1:
            refused.append(task_id)
            raise ConnectionResetError("Server disconnected")
        return await record(instance_id, work_key, message)

    monkeypatch.setattr(store, "complete_work", flaky_complete_work)
    await engine.start()
    try:
        status = await _wait_completed(engine, await _fan_out(engine, 10), 10)
    finally:
        await engine.stop()
    assert status["output"] == {"sum": 90, "count": 10}
    assert len(refused) == engine_module.RESULT_WRITE_ATTEMPTS   # each attempt was really refused
    assert calls["double:3"] == 2   # run again once its first result could not be written


class LosesOneRun(SdkInvoker):
    """The first run of ``double(5)`` ends without a result ever coming back to the engine."""

    def __init__(self, inner: SdkInvoker) -> None:
        self.__dict__.update(inner.__dict__)
        self.lost = 0

    async def run_activity(self, name: str, input_json: str | None) -> str:
        if name == "double" and input_json == "5" and not self.lost:
            self.lost += 1
            raise asyncio.CancelledError   # the worker side went away mid-call
        return await super().run_activity(name, input_json)


async def test_work_whose_result_never_came_back_is_dispatched_again_after_a_bound(
        invoker: SdkInvoker, calls: Any) -> None:
    losing = LosesOneRun(invoker)
    engine = make_engine(losing, clock="real", redispatch_seconds=0.2)
    await engine.start()
    try:
        status = await _wait_completed(engine, await _fan_out(engine, 10), 20)
    finally:
        await engine.stop()
    assert losing.lost == 1
    assert status["output"] == {"sum": 90, "count": 10}
    assert calls["double:5"] == 1   # the lost run never reached the function; the re-run did
