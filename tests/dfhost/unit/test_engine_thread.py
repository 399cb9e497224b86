"""The engine runs on its own thread and loop; activities come back to the worker loop."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import pytest

from localdev.dfhost.engine import Engine, EngineOptions
from localdev.dfhost.engine_thread import EngineHandle, EngineThread, WorkerInvoker
from localdev.dfhost.invoker import FunctionInvoker
from localdev.procs import free_port
from tests.dfhost.unit.conftest import SdkInvoker, make_engine, sample_invoker


class WhereActivitiesRun:
    """Wraps the sample app's invoker and records the thread and loop of each activity call."""

    def __init__(self, inner: SdkInvoker) -> None:
        self.inner = inner
        self.activity_loops: list[asyncio.AbstractEventLoop] = []
        self.orchestrator_threads: list[str] = []

    def orchestrator_names(self) -> set[str]:
        return self.inner.orchestrator_names()

    def activity_names(self) -> set[str]:
        return self.inner.activity_names()

    def run_orchestrator(self, name: str, context_json: str) -> str:
        self.orchestrator_threads.append(threading.current_thread().name)
        return self.inner.run_orchestrator(name, context_json)

    async def run_activity(self, name: str, input_json: str | None) -> str:
        self.activity_loops.append(asyncio.get_running_loop())
        return await self.inner.run_activity(name, input_json)


async def _start(app: FunctionInvoker) -> tuple[EngineThread, EngineHandle]:
    invoker = WorkerInvoker(app, asyncio.get_running_loop())
    thread = EngineThread(lambda: Engine(invoker=invoker, connection_string=None,
                                         options=EngineOptions(hub="ThreadHub")),
                          replay_threads=4)
    return thread, await thread.start()


async def test_engine_runs_on_its_own_thread_and_activities_on_the_worker_loop(calls: list[Any]) -> None:
    app = WhereActivitiesRun(sample_invoker())
    thread, engine = await _start(app)
    try:
        assert engine.loop is not asyncio.get_running_loop()
        assert await engine.engine_thread_name() == "dfhost-engine"
        assert threading.current_thread().name != "dfhost-engine"
        iid = await engine.start_instance("chain", None, json.dumps(json.dumps(["a", "b"])))
        assert await engine.wait_idle(30)
        status = await engine.get_status(iid)
    finally:
        await thread.stop()
    assert status is not None
    assert status["runtimeStatus"] == "Completed", status
    # Activities are the app's: they run on the loop that serves its HTTP functions.
    assert app.activity_loops
    assert set(app.activity_loops) == {asyncio.get_running_loop()}
    # Orchestrator replays run in the engine's thread pool, off the worker loop's thread.
    assert app.orchestrator_threads
    assert all(name.startswith("dfhost-replay") for name in app.orchestrator_threads)


async def test_a_blocked_engine_loop_leaves_the_worker_loop_free(calls: list[Any]) -> None:
    thread, engine = await _start(sample_invoker())
    try:
        # Stands in for a long synchronous stretch of engine work (a big replay, SDK CPU).
        engine.loop.call_soon_threadsafe(time.sleep, 1.5)
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        for _ in range(10):
            await asyncio.sleep(0.01)
        worker_seconds = time.perf_counter() - started
        started = time.perf_counter()
        assert await engine.get_status("missing") is None
        engine_seconds = time.perf_counter() - started
    finally:
        await thread.stop()
    assert worker_seconds < 0.5, f"the worker loop stalled {worker_seconds:.2f}s"
    # The engine call did wait for its own loop: the block was real.
    assert engine_seconds > 0.8, engine_seconds


async def test_a_failing_engine_start_reaches_the_caller_and_ends_the_thread() -> None:
    unreachable = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
                   "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
                   f"KBHBeksoGMGw==;TableEndpoint=http://127.0.0.1:{free_port()}/devstoreaccount1;")
    thread = EngineThread(lambda: make_engine(sample_invoker(), connection_string=unreachable),
                          replay_threads=2)
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the storage SDK raises
        await thread.start()
    await thread.stop()
    assert not any(t.name == "dfhost-engine" and t.is_alive() for t in threading.enumerate())
