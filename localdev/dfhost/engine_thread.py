"""The durable engine on its own thread and event loop, apart from the HTTP front end.

This is ``serve --engine thread``; the default runs the engine in a process of its own
(:mod:`localdev.dfhost.engine_process`), which also takes its CPU off this process's GIL.

In Azure the durable extension (history, replay scheduling, storage) runs in the .NET host, not
in the Python worker that serves the app's HTTP functions. Locally the engine used to share the
front end's event loop, so HTTP requests queued behind episode coroutines. Here it gets a thread
with its own loop, and nothing crosses between the loops except through this module:

* :class:`EngineHandle` is what the front end (durable HTTP API, admin endpoints) holds: each
  async method runs the engine's coroutine on the engine loop and awaits the result on the
  caller's loop. The engine's storage clients (loop-bound aio clients) are created, used and
  closed on the engine loop only.
* :class:`WorkerInvoker` is what the engine holds instead of the app: activities run on the
  worker loop (see its docstring for why), orchestrator episodes in the engine's own threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from localdev.dfhost.engine import Engine
from localdev.dfhost.invoker import FunctionInvoker

__all__ = ["EngineHandle", "EngineThread", "WorkerInvoker"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
STOP_TIMEOUT_SECONDS = 30.0


async def _run_on(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` on ``loop`` and await its result on the running loop.

    Cancelling the caller cancels the coroutine on ``loop`` as well.
    """
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))


class WorkerInvoker:
    """The app as the engine sees it: activities run on the worker (front end) loop.

    The Functions Python worker runs activity and HTTP functions in one process on one event
    loop, and the app relies on that: its cached clients (an ``httpx.AsyncClient`` per process
    for Graph, asyncio locks) belong to the loop that first used them. Running activities on the
    engine loop would give them a second loop and make those clients rebuild or fail. So an
    activity is sent to the worker loop (sync activities then go to that loop's thread pool, as
    in the worker) and its result comes back to the engine; the engine's own work (episodes,
    replays, storage) stays off that loop.

    Orchestrator functions are pure (no I/O, no loop), so they run where the engine calls them:
    in the engine loop's thread pool.
    """

    def __init__(self, invoker: FunctionInvoker, worker_loop: asyncio.AbstractEventLoop) -> None:
        self._invoker = invoker
        self._worker_loop = worker_loop

    def orchestrator_names(self) -> set[str]:
        """Return the names of all orchestration-trigger functions."""
        return self._invoker.orchestrator_names()

    def activity_names(self) -> set[str]:
        """Return the names of all activity-trigger functions."""
        return self._invoker.activity_names()

    def run_orchestrator(self, name: str, context_json: str) -> str:
        """Run one orchestrator episode in the calling thread."""
        return self._invoker.run_orchestrator(name, context_json)

    async def run_activity(self, name: str, input_json: str | None) -> str:
        """Run one activity on the worker loop and return its JSON-encoded result."""
        return await _run_on(self._worker_loop, self._invoker.run_activity(name, input_json))


class EngineHandle:
    """The engine's client operations, callable from any other event loop.

    Same methods and exceptions as :class:`~localdev.dfhost.engine.Engine`'s client side; each
    call runs on the engine loop.
    """

    def __init__(self, engine: Engine, loop: asyncio.AbstractEventLoop) -> None:
        self._engine = engine
        self._loop = loop

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The engine's event loop."""
        return self._loop

    async def start_instance(self, name: str, instance_id: str | None, input_json: str | None,
                             *, version: str | None = None) -> str:
        """See :meth:`Engine.start_instance`."""
        return await _run_on(self._loop, self._engine.start_instance(
            name, instance_id, input_json, version=version))

    async def get_status(self, instance_id: str, *, show_history: bool = False,
                         show_history_output: bool = False,
                         show_input: bool = True) -> dict[str, Any] | None:
        """See :meth:`Engine.get_status`."""
        return await _run_on(self._loop, self._engine.get_status(
            instance_id, show_history=show_history, show_history_output=show_history_output,
            show_input=show_input))

    async def query(self, *, created_from: datetime | None = None,
                    created_to: datetime | None = None, runtime_status: list[str] | None = None,
                    instance_id_prefix: str | None = None,
                    show_input: bool = True) -> list[dict[str, Any]]:
        """See :meth:`Engine.query`."""
        return await _run_on(self._loop, self._engine.query(
            created_from=created_from, created_to=created_to, runtime_status=runtime_status,
            instance_id_prefix=instance_id_prefix, show_input=show_input))

    async def raise_event(self, instance_id: str, event_name: str, data_json: str | None) -> None:
        """See :meth:`Engine.raise_event`."""
        await _run_on(self._loop, self._engine.raise_event(instance_id, event_name, data_json))

    async def terminate(self, instance_id: str, reason: str | None) -> None:
        """See :meth:`Engine.terminate`."""
        await _run_on(self._loop, self._engine.terminate(instance_id, reason))

    async def suspend(self, instance_id: str, reason: str | None) -> None:
        """See :meth:`Engine.suspend`."""
        await _run_on(self._loop, self._engine.suspend(instance_id, reason))

    async def resume(self, instance_id: str, reason: str | None) -> None:
        """See :meth:`Engine.resume`."""
        await _run_on(self._loop, self._engine.resume(instance_id, reason))

    async def purge(self, instance_id: str) -> int:
        """See :meth:`Engine.purge`."""
        return await _run_on(self._loop, self._engine.purge(instance_id))

    async def purge_by(self, *, created_from: datetime | None = None,
                       created_to: datetime | None = None,
                       runtime_status: list[str] | None = None) -> int:
        """See :meth:`Engine.purge_by`."""
        return await _run_on(self._loop, self._engine.purge_by(
            created_from=created_from, created_to=created_to, runtime_status=runtime_status))

    async def advance_clock(self, seconds: float) -> None:
        """See :meth:`Engine.advance_clock` (its timers fire on the engine loop)."""
        await _run_on(self._loop, self._engine.advance_clock(seconds))

    async def wait_idle(self, timeout: float) -> bool:  # noqa: ASYNC109 - same interface as Engine
        """See :meth:`Engine.wait_idle`."""
        return await _run_on(self._loop, self._engine.wait_idle(timeout))

    async def describe(self) -> dict[str, Any]:
        """Where the engine runs (``mode`` ``thread``, this process's ``pid``, its ``thread``)."""
        return {"mode": "thread", "pid": os.getpid(), "thread": await self.engine_thread_name()}

    async def engine_thread_name(self) -> str:
        """The name of the thread the engine's coroutines run on (diagnostics and tests)."""
        async def name() -> str:
            return threading.current_thread().name
        return await _run_on(self._loop, name())


class EngineThread:
    """Owns the engine's thread and loop: builds and starts the engine there, stops it there.

    Args:
        build: Makes the engine; called on the engine thread, so whatever loop-bound object the
            engine creates belongs to the engine loop.
        replay_threads: Size of the engine loop's thread pool, where orchestrator episodes run.
    """

    def __init__(self, build: Callable[[], Engine], *, replay_threads: int) -> None:
        self._build = build
        self._replay_threads = replay_threads
        self._thread: threading.Thread | None = None
        self._started: concurrent.futures.Future[EngineHandle] = concurrent.futures.Future()
        self._stopped: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None

    async def start(self) -> EngineHandle:
        """Start the thread and the engine; raise what the engine's start raised."""
        self._thread = threading.Thread(target=self._run, name="dfhost-engine", daemon=True)
        self._thread.start()
        return await asyncio.wrap_future(self._started)

    async def stop(self) -> None:
        """Stop the engine (in-flight work runs again after a restart) and end the thread."""
        if self._thread is None:
            return
        loop, requested = self._loop, self._stop_requested
        if loop is not None and requested is not None and not self._stopped.done():
            loop.call_soon_threadsafe(requested.set)
        try:
            await asyncio.wait_for(asyncio.wrap_future(self._stopped), STOP_TIMEOUT_SECONDS)
        except TimeoutError:
            logger.warning("The durable engine did not stop within %ss", STOP_TIMEOUT_SECONDS)
            return
        await asyncio.to_thread(self._thread.join, STOP_TIMEOUT_SECONDS)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to whoever waits on the thread
            if not self._started.done():
                self._started.set_exception(exc)
            logger.exception("The durable engine thread failed")
        finally:
            if not self._stopped.done():
                self._stopped.set_result(None)

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(max_workers=self._replay_threads,
                                                     thread_name_prefix="dfhost-replay"))
        self._loop = loop
        requested = self._stop_requested = asyncio.Event()
        engine = self._build()
        try:
            await engine.start()
        except Exception as exc:  # noqa: BLE001 - handed to the caller of start()
            await self._close_quietly(engine)
            self._started.set_exception(exc)
            return
        self._started.set_result(EngineHandle(engine, loop))
        try:
            await requested.wait()
        finally:
            await engine.stop()

    @staticmethod
    async def _close_quietly(engine: Engine) -> None:
        try:
            await engine.stop()
        except Exception:  # the start failure is what gets reported
            logger.debug("closing the engine after a failed start failed", exc_info=True)
