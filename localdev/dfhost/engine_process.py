"""The durable engine in a process of its own, apart from the worker, as in Azure.

In Azure the durable extension (history, task hub storage, scheduling, timers, the client HTTP
API backend) runs in the .NET host process, and the Python worker only runs functions: the host
sends it invocation requests over gRPC for orchestrator episodes and activities. Here the
front-end process plays the worker (HTTP, timer and queue triggers, orchestrator replays through
the SDK, activities) and the engine process plays the host's durable side. The storage SDK's CPU
(an entity-group transaction builds and parses a multipart body in Python) then no longer holds
the GIL that request handling needs.

The two processes talk over one socket pair, in length-prefixed JSON frames (:class:`Channel`),
both ways:

* front end to engine: :class:`RemoteEngine`, the
  :class:`~localdev.dfhost.engine_client.EngineClient` calls, plus ``start`` (the engine's
  configuration, secrets included, never on a command line) and ``stop``;
* engine to front end: ``run_orchestrator`` and ``run_activity`` (:class:`ChannelInvoker`).

With ``--workers N`` (``FUNCTIONS_WORKER_PROCESS_COUNT``, as in Azure) the front end also starts N - 1
worker processes (:mod:`localdev.dfhost.worker_process`) that load the app and only run invocations.
Each has a socket pair of its own to the engine, which sends every invocation to the least busy of
the N workers (the front end counts as one), as the Functions host spreads invocations across its
language workers. A worker that dies takes the host with it, as the engine does. With
``--durable-apart`` the front end runs no orchestrator or activity at all, as on Flex Consumption,
where durable triggers scale in instances of their own, apart from HTTP.

The engine process dies with the front end: on Linux it asks for SIGKILL when its parent dies
(``PR_SET_PDEATHSIG``); everywhere it stops when the socket closes and checks its parent id.
SIGINT is left to the front end; SIGTERM sent to the engine alone stops it after a grace period
that lets a front end that got the same signal (a process group) stop it in order first.

    python -m localdev.dfhost.engine_process --fd N --parent PID   (started by EngineProcess)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import dataclasses
import json
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from localdev.dfhost.engine import (
    Engine,
    EngineOptions,
    InstanceGone,
    InstanceNotFound,
    InvalidInstanceId,
    OrchestrationAlreadyExists,
    UnknownOrchestrator,
)
from localdev.dfhost.invoker import FunctionInvoker, RemoteInvocationError

__all__ = ["Channel", "ChannelInvoker", "EngineProcess", "EngineUnavailable", "FunctionServer",
           "RemoteEngine", "die_with_parent", "watch_parent"]

logger = logging.getLogger(__name__)

STOP_TIMEOUT_SECONDS = 30.0
# SIGTERM to the engine alone: time for the front end to ask for an orderly stop first.
TERM_GRACE_SECONDS = 5.0
PARENT_CHECK_SECONDS = 1.0
_HEADER = struct.Struct(">I")
_ROOT = Path(__file__).resolve().parents[2]
_PR_SET_PDEATHSIG = 1
# Errors of the engine's client side that the front end answers with their own status codes.
ENGINE_ERRORS: dict[str, type[Exception]] = {cls.__name__: cls for cls in (
    OrchestrationAlreadyExists, UnknownOrchestrator, InvalidInstanceId, InstanceNotFound,
    InstanceGone, RuntimeError, ValueError)}
_CLIENT_METHODS = frozenset({"start_instance", "get_status", "query", "raise_event", "terminate",
                             "suspend", "resume", "purge", "purge_by", "advance_clock",
                             "wait_idle"})
_TIME_ARGUMENTS = ("created_from", "created_to")

Handler = Callable[[str, dict[str, Any]], Awaitable[Any]]


class EngineUnavailable(ConnectionError):
    """The other process is gone (or the channel closed) before it answered."""


class Channel:
    """Calls both ways over one stream: ``call`` sends a request, ``handler`` serves the peer's.

    A frame is a 4-byte big-endian length and a JSON object: ``call`` (id, method, args),
    ``result`` (id, value), ``error`` (id, type, message, details) or ``cancel`` (id). A caller
    cancelled while waiting sends ``cancel``, and the peer cancels the task serving that call.

    Args:
        reader: The stream's reading side.
        writer: The stream's writing side.
        handler: Serves the peer's calls; what it raises goes back as an ``error`` frame.
        known_errors: Exception types rebuilt by name from the peer's errors; any other error
            arrives as :class:`~localdev.dfhost.invoker.RemoteInvocationError`.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 handler: Handler, *, known_errors: dict[str, type[Exception]] | None = None
                 ) -> None:
        self._reader = reader
        self._writer = writer
        self._handler = handler
        self._known_errors = known_errors or {}
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._serving: dict[int, asyncio.Task[None]] = {}
        self._next_id = 0
        self.closed = asyncio.Event()
        self._on_close: list[Callable[[], None]] = []
        self._reading: asyncio.Task[None] | None = None

    def start(self, on_close: Callable[[], None] | None = None) -> None:
        """Start reading frames; ``on_close`` runs first when the peer goes away."""
        if on_close is not None:
            self._on_close.append(on_close)
        self._reading = asyncio.get_running_loop().create_task(self._read_frames())

    async def call(self, method: str, **args: Any) -> Any:
        """Call ``method`` in the peer and return its value (or raise its error)."""
        if self.closed.is_set():
            raise EngineUnavailable("the other process of the host is gone")
        self._next_id += 1
        call_id = self._next_id
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        try:
            self._send({"op": "call", "id": call_id, "method": method, "args": args})
            await self._writer.drain()
            return await future
        except asyncio.CancelledError:
            if not self.closed.is_set():
                with contextlib.suppress(Exception):
                    self._send({"op": "cancel", "id": call_id})
            raise
        except ConnectionError as exc:
            raise EngineUnavailable("the other process of the host is gone") from exc
        finally:
            self._pending.pop(call_id, None)

    async def close(self) -> None:
        """Close the stream and stop reading."""
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading
        self._closing()

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message, separators=(",", ":")).encode()
        # One write per frame: frames of concurrent callers never interleave.
        self._writer.write(_HEADER.pack(len(body)) + body)

    async def _read_frames(self) -> None:
        try:
            while True:
                (size,) = _HEADER.unpack(await self._reader.readexactly(_HEADER.size))
                self._receive(json.loads(await self._reader.readexactly(size)))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass   # the peer closed its end or died
        finally:
            self._closing()

    def _closing(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for callback in self._on_close:
            callback()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(EngineUnavailable("the other process of the host is gone"))
        for task in self._serving.values():
            task.cancel()

    def _receive(self, message: dict[str, Any]) -> None:
        op, call_id = message["op"], int(message["id"])
        if op == "call":
            task = asyncio.get_running_loop().create_task(
                self._serve(call_id, str(message["method"]), dict(message["args"])))
            self._serving[call_id] = task
        elif op == "cancel":
            serving = self._serving.get(call_id)
            if serving is not None:
                serving.cancel()
        else:
            future = self._pending.get(call_id)
            if future is None or future.done():
                return   # the caller gave up (cancelled) in the meantime
            if op == "result":
                future.set_result(message.get("value"))
            else:
                future.set_exception(self._rebuild(message))

    def _rebuild(self, message: dict[str, Any]) -> Exception:
        text = str(message.get("message", ""))
        known = self._known_errors.get(str(message.get("type")))
        if known is not None:
            return known(text)
        return RemoteInvocationError(text, str(message.get("details", "")))

    async def _serve(self, call_id: int, method: str, args: dict[str, Any]) -> None:
        try:
            reply = {"op": "result", "id": call_id, "value": await self._handler(method, args)}
        except asyncio.CancelledError:
            return   # the caller cancelled, or the channel is gone: nobody waits for an answer
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller
            reply = {"op": "error", "id": call_id, "type": type(exc).__name__,
                     "message": str(exc),
                     "details": "".join(traceback.format_exception_only(exc)).strip()}
        finally:
            self._serving.pop(call_id, None)
        if not self.closed.is_set():
            with contextlib.suppress(ConnectionError):
                self._send(reply)
                await self._writer.drain()


def _encode_times(args: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in args.items()}


def _decode_times(args: dict[str, Any]) -> dict[str, Any]:
    return {k: datetime.fromisoformat(v) if k in _TIME_ARGUMENTS and isinstance(v, str) else v
            for k, v in args.items()}


class RemoteEngine:
    """The engine process's client operations, as the front end calls them.

    Same methods and exceptions as :class:`~localdev.dfhost.engine_thread.EngineHandle`; a call
    whose answer cannot come (the engine process is gone) raises :class:`EngineUnavailable`.
    """

    def __init__(self, channel: Channel) -> None:
        self._channel = channel

    async def _call(self, method: str, **args: Any) -> Any:
        return await self._channel.call(method, **_encode_times(args))

    async def start_instance(self, name: str, instance_id: str | None, input_json: str | None,
                             *, version: str | None = None) -> str:
        """See :meth:`Engine.start_instance`."""
        return str(await self._call("start_instance", name=name, instance_id=instance_id,
                                    input_json=input_json, version=version))

    async def get_status(self, instance_id: str, *, show_history: bool = False,
                         show_history_output: bool = False,
                         show_input: bool = True) -> dict[str, Any] | None:
        """See :meth:`Engine.get_status`."""
        status: dict[str, Any] | None = await self._call(
            "get_status", instance_id=instance_id, show_history=show_history,
            show_history_output=show_history_output, show_input=show_input)
        return status

    async def query(self, *, created_from: datetime | None = None,
                    created_to: datetime | None = None, runtime_status: list[str] | None = None,
                    instance_id_prefix: str | None = None,
                    show_input: bool = True) -> list[dict[str, Any]]:
        """See :meth:`Engine.query`."""
        found: list[dict[str, Any]] = await self._call(
            "query", created_from=created_from, created_to=created_to,
            runtime_status=runtime_status, instance_id_prefix=instance_id_prefix,
            show_input=show_input)
        return found

    async def raise_event(self, instance_id: str, event_name: str, data_json: str | None) -> None:
        """See :meth:`Engine.raise_event`."""
        await self._call("raise_event", instance_id=instance_id, event_name=event_name,
                         data_json=data_json)

    async def terminate(self, instance_id: str, reason: str | None) -> None:
        """See :meth:`Engine.terminate`."""
        await self._call("terminate", instance_id=instance_id, reason=reason)

    async def suspend(self, instance_id: str, reason: str | None) -> None:
        """See :meth:`Engine.suspend`."""
        await self._call("suspend", instance_id=instance_id, reason=reason)

    async def resume(self, instance_id: str, reason: str | None) -> None:
        """See :meth:`Engine.resume`."""
        await self._call("resume", instance_id=instance_id, reason=reason)

    async def purge(self, instance_id: str) -> int:
        """See :meth:`Engine.purge`."""
        return int(await self._call("purge", instance_id=instance_id))

    async def purge_by(self, *, created_from: datetime | None = None,
                       created_to: datetime | None = None,
                       runtime_status: list[str] | None = None) -> int:
        """See :meth:`Engine.purge_by`."""
        return int(await self._call("purge_by", created_from=created_from,
                                    created_to=created_to, runtime_status=runtime_status))

    async def advance_clock(self, seconds: float) -> None:
        """See :meth:`Engine.advance_clock`."""
        await self._call("advance_clock", seconds=seconds)

    async def wait_idle(self, timeout: float) -> bool:  # noqa: ASYNC109 - same interface as Engine
        """See :meth:`Engine.wait_idle`."""
        return bool(await self._call("wait_idle", timeout=timeout))

    async def describe(self) -> dict[str, Any]:
        """Where the engine runs (``mode`` ``process``, its ``pid`` and ``thread``)."""
        described: dict[str, Any] = await self._call("describe")
        return described


class EngineProcess:
    """Starts the engine process, serves its invocations, and stops it.

    The front end's loop (the first worker's) runs activities, as the Functions worker does; the
    SDK's orchestrator replays run in a thread pool of this process, so the engine process never
    imports the app. With ``worker_processes`` above 1, the other workers are processes of their
    own (:mod:`localdev.dfhost.worker_process`), started before the engine and stopped after it.

    Args:
        invoker: The loaded app (the registry).
        connection_string: Task hub storage; None keeps the state in the engine's memory.
        options: The engine's options.
        replay_threads: Threads for orchestrator replays.
        on_lost: Called when the engine process goes away without being asked to stop.
        worker_processes: Worker processes, this one included (``FUNCTIONS_WORKER_PROCESS_COUNT``).
        app_dir: The app folder the extra workers load.
        durable_apart: Run orchestrators and activities in the extra workers only, never in this
            process, which then serves HTTP and the other triggers alone.
    """

    def __init__(self, invoker: FunctionInvoker, *, connection_string: str | None,
                 options: EngineOptions, replay_threads: int,
                 on_lost: Callable[[], None] | None = None, worker_processes: int = 1,
                 app_dir: Path | None = None, durable_apart: bool = False) -> None:
        if worker_processes > 1 and app_dir is None:
            raise ValueError("more worker processes need the app folder to load")
        if durable_apart and worker_processes < 2:
            raise ValueError("durable functions apart from HTTP need a second worker process")
        self._durable_apart = durable_apart
        self._invoker = invoker
        self._connection_string = connection_string
        self._options = options
        self._functions = FunctionServer(invoker, replay_threads)
        self._on_lost = on_lost
        self._extra_workers = worker_processes - 1
        self._app_dir = app_dir
        self._replay_threads = replay_threads
        self._proc: asyncio.subprocess.Process | None = None
        self._workers: list[asyncio.subprocess.Process] = []
        self._channel: Channel | None = None
        self._stopping = False

    @property
    def pid(self) -> int | None:
        """The engine process id once started."""
        return None if self._proc is None else self._proc.pid

    async def start(self) -> RemoteEngine:
        """Start the worker processes, the engine process and its engine; raise what the start raised."""
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_ROOT), env.get("PYTHONPATH")) if p)
        # One socket pair per extra worker: the worker holds one end, the engine the other.
        pairs = [socket.socketpair() for _ in range(self._extra_workers)]
        engine_ends = [engine_end for engine_end, _ in pairs]
        try:
            for _, worker_end in pairs:
                # Forked by this loop's (the main) thread, which the parent-death signal follows.
                self._workers.append(await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "localdev.dfhost.worker_process",
                    "--fd", str(worker_end.fileno()), "--parent", str(os.getpid()),
                    "--app", str(self._app_dir), "--replay-threads", str(self._replay_threads),
                    pass_fds=(worker_end.fileno(),), stdin=subprocess.DEVNULL, cwd=_ROOT, env=env))
            worker_fds = [str(end.fileno()) for end in engine_ends]
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "localdev.dfhost.engine_process",
                "--fd", str(theirs.fileno()), "--parent", str(os.getpid()),
                *(arg for fd in worker_fds for arg in ("--worker-fd", fd)),
                pass_fds=(theirs.fileno(), *(end.fileno() for end in engine_ends)),
                stdin=subprocess.DEVNULL, cwd=_ROOT, env=env)
        finally:
            theirs.close()
            for pair in pairs:
                for end in pair:
                    end.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        channel = self._channel = Channel(reader, writer, self._functions.handle,
                                          known_errors=ENGINE_ERRORS)
        channel.start(on_close=self._closed)
        await channel.call("start", connection_string=self._connection_string,
                           options=dataclasses.asdict(self._options),
                           orchestrators=sorted(self._invoker.orchestrator_names()),
                           activities=sorted(self._invoker.activity_names()),
                           worker_pids=[os.getpid(), *(w.pid for w in self._workers)],
                           durable_on_front_end=not self._durable_apart)
        logger.info("The durable engine runs in process %s; worker processes: %s", self._proc.pid,
                    ", ".join(str(pid) for pid in (os.getpid(), *(w.pid for w in self._workers))))
        return RemoteEngine(channel)

    async def stop(self) -> None:
        """Stop the engine (in-flight work runs again after a restart) and its process."""
        self._stopping = True
        channel, proc = self._channel, self._proc
        if channel is not None and not channel.closed.is_set():
            try:
                await asyncio.wait_for(channel.call("stop"), STOP_TIMEOUT_SECONDS)
            except (TimeoutError, EngineUnavailable, RemoteInvocationError) as exc:
                logger.warning("The durable engine did not stop in order (%s)",
                               type(exc).__name__)
        if channel is not None:
            await channel.close()
        # The workers exit once the engine's ends of their sockets close.
        for process in ([proc] if proc is not None else []) + self._workers:
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT_SECONDS)
            except TimeoutError:
                logger.warning("Process %s of the host did not exit; killing it", process.pid)
                process.kill()
                await process.wait()
        self._functions.close()

    def _closed(self) -> None:
        if not self._stopping:
            code = None if self._proc is None else self._proc.returncode
            logger.error("The durable engine process exited unexpectedly (exit code %s)", code)
            if self._on_lost is not None:
                self._on_lost()



class FunctionServer:
    """A worker's side of the channel: runs the invocations the engine sends.

    Activities run on the worker's loop (sync ones in its default thread pool), as in the Python
    worker; the SDK's orchestrator replays, which are pure, in a thread pool of their own.
    """

    def __init__(self, invoker: FunctionInvoker, replay_threads: int) -> None:
        self._invoker = invoker
        self._replay_pool = ThreadPoolExecutor(max_workers=replay_threads,
                                               thread_name_prefix="dfhost-replay")

    async def handle(self, method: str, args: dict[str, Any]) -> str:
        """Run what the engine asks for: an orchestrator episode or an activity."""
        if method == "run_activity":
            return await self._invoker.run_activity(str(args["name"]), args["input_json"])
        if method == "run_orchestrator":
            return await asyncio.get_running_loop().run_in_executor(
                self._replay_pool, self._invoker.run_orchestrator, str(args["name"]),
                str(args["context_json"]))
        raise ValueError("unknown invocation")

    def close(self) -> None:
        """Drop replays that have not started."""
        self._replay_pool.shutdown(wait=False, cancel_futures=True)


@dataclasses.dataclass
class _Worker:
    """One worker process as the engine sees it: its channel and what it has run."""

    channel: Channel
    pid: int
    in_flight: int = 0
    activities: int = 0
    orchestrator_episodes: int = 0


class ChannelInvoker:
    """The app as the engine process sees it: functions run in the worker processes.

    Each invocation goes to the worker with the fewest invocations in flight, the next in turn on a
    tie, so work spreads over the workers as it arrives.
    """

    def __init__(self, channels: list[tuple[Channel, int]], *, orchestrators: list[str],
                 activities: list[str]) -> None:
        if not channels:
            raise ValueError("an invoker needs at least one worker")
        self._workers = [_Worker(channel=channel, pid=pid) for channel, pid in channels]
        self._turn = 0
        self._orchestrators = frozenset(orchestrators)
        self._activities = frozenset(activities)

    def _next_worker(self) -> _Worker:
        count = len(self._workers)
        in_turn = [self._workers[(self._turn + i) % count] for i in range(count)]
        self._turn = (self._turn + 1) % count
        return min(in_turn, key=lambda worker: worker.in_flight)

    async def _invoke(self, method: str, **args: Any) -> str:
        worker = self._next_worker()
        if method == "run_activity":
            worker.activities += 1
        else:
            worker.orchestrator_episodes += 1
        worker.in_flight += 1
        try:
            return str(await worker.channel.call(method, **args))
        finally:
            worker.in_flight -= 1

    def describe(self) -> list[dict[str, int]]:
        """Per worker process: its id and the invocations it has run (and is running)."""
        return [{"pid": w.pid, "activities": w.activities,
                 "orchestratorEpisodes": w.orchestrator_episodes, "inFlight": w.in_flight}
                for w in self._workers]

    def orchestrator_names(self) -> set[str]:
        """Return the names of all orchestration-trigger functions."""
        return set(self._orchestrators)

    def activity_names(self) -> set[str]:
        """Return the names of all activity-trigger functions."""
        return set(self._activities)

    def run_orchestrator(self, name: str, context_json: str) -> str:
        """Not callable here: the engine awaits :meth:`run_orchestrator_async` instead."""
        raise NotImplementedError("orchestrators run in the worker processes")

    async def run_orchestrator_async(self, name: str, context_json: str) -> str:
        """Run one orchestrator episode in a worker process."""
        return await self._invoke("run_orchestrator", name=name, context_json=context_json)

    async def run_activity(self, name: str, input_json: str | None) -> str:
        """Run one activity in a worker process."""
        return await self._invoke("run_activity", name=name, input_json=input_json)


class _EngineService:
    """The engine process's side of the channel: builds, serves and stops the engine."""

    def __init__(self) -> None:
        self.channel: Channel | None = None
        # The extra worker processes' channels (the front end's is ``channel``).
        self.worker_channels: list[Channel] = []
        self.engine: Engine | None = None
        self.invoker: ChannelInvoker | None = None
        self.stopped = asyncio.Event()

    async def handle(self, method: str, args: dict[str, Any]) -> Any:
        if method == "start":
            return await self._start(args)
        if method == "stop":
            await self.stop()
            return None
        if method == "describe":
            return {"mode": "process", "pid": os.getpid(),
                    "thread": threading.current_thread().name,
                    "workers": self.invoker.describe() if self.invoker is not None else []}
        if method not in _CLIENT_METHODS or self.engine is None:
            raise ValueError("unknown engine call")
        try:
            return await getattr(self.engine, method)(**_decode_times(args))
        except tuple(ENGINE_ERRORS.values()):
            raise
        except Exception as exc:
            # The front end answers 500; the details stay in this log (frames, not the message,
            # which may quote a request).
            logger.error("The engine call %s failed: %s\n%s", method, type(exc).__name__,
                         "".join(traceback.format_tb(exc.__traceback__)).rstrip())
            raise

    async def _start(self, args: dict[str, Any]) -> dict[str, Any]:
        assert self.channel is not None
        channels = [self.channel, *self.worker_channels]
        pids = [int(pid) for pid in args["worker_pids"]]
        if len(pids) != len(channels):
            raise ValueError("one process id per worker channel")
        workers = list(zip(channels, pids, strict=True))
        if not args.get("durable_on_front_end", True):
            workers = workers[1:]
        invoker = ChannelInvoker(workers,
                                 orchestrators=list(args["orchestrators"]),
                                 activities=list(args["activities"]))
        self.invoker = invoker
        engine = Engine(invoker=invoker, connection_string=args["connection_string"],
                        options=EngineOptions(**args["options"]))
        try:
            await engine.start()
        except Exception:
            with contextlib.suppress(Exception):   # the start failure is what gets reported
                await engine.stop()
            raise
        self.engine = engine
        return {"pid": os.getpid()}

    async def stop(self) -> None:
        engine, self.engine = self.engine, None
        if engine is not None:
            await engine.stop()
        self.stopped.set()

    def abandon(self) -> None:
        """The front end is gone: drop in-flight work without writing anything, as a crash."""
        engine, self.engine = self.engine, None
        if engine is not None:
            engine.abandon()


def die_with_parent(parent: int) -> None:
    """Ask for SIGKILL when the parent dies (Linux), and exit now if it already has."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:   # the parent died before the request above took effect
        os._exit(1)


async def watch_parent(parent: int, gone: asyncio.Event) -> None:
    """Set ``gone`` once this process's parent has changed (it died)."""
    while os.getppid() == parent:  # noqa: ASYNC110 - nothing signals a parent's death
        await asyncio.sleep(PARENT_CHECK_SECONDS)
    gone.set()


async def _refuse(method: str, args: dict[str, Any]) -> Any:  # noqa: ARG001 - a Handler
    raise ValueError("a worker process does not call the engine")


async def _engine_main(fd: int, parent: int, worker_fds: list[int]) -> int:
    loop = asyncio.get_running_loop()
    service = _EngineService()
    # The workers' channels first: the front end's ``start`` names them all.
    for worker_fd in worker_fds:
        worker_reader, worker_writer = await asyncio.open_unix_connection(
            sock=socket.socket(fileno=worker_fd))
        worker = Channel(worker_reader, worker_writer, _refuse)
        worker.start(on_close=service.abandon)
        service.worker_channels.append(worker)
    reader, writer = await asyncio.open_unix_connection(sock=socket.socket(fileno=fd))
    channel = service.channel = Channel(reader, writer, service.handle)
    channel.start(on_close=service.abandon)
    terminated = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, loop.call_later, TERM_GRACE_SECONDS, terminated.set)
    parent_gone = asyncio.Event()
    watcher = loop.create_task(watch_parent(parent, parent_gone))
    lost = (channel.closed, *(w.closed for w in service.worker_channels))
    waits = [loop.create_task(e.wait()) for e in (*lost, service.stopped, terminated, parent_gone)]
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in (*waits, watcher):
        task.cancel()
    if any(e.is_set() for e in lost) or parent_gone.is_set():
        # A worker (the front end among them) is gone: end as a crash would, without writes or
        # closing handshakes; the front end then stops the host.
        service.abandon()
        sys.stderr.flush()
        os._exit(0)
    if terminated.is_set():
        logger.info("Stopping the durable engine (SIGTERM)")
        await service.stop()
    for worker in service.worker_channels:
        await worker.close()
    await channel.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the engine process (started by :class:`EngineProcess`)."""
    parser = argparse.ArgumentParser(prog="python -m localdev.dfhost.engine_process")
    parser.add_argument("--fd", type=int, required=True, help="socket to the front end")
    parser.add_argument("--parent", type=int, required=True, help="front-end process id")
    parser.add_argument("--worker-fd", type=int, action="append", default=[],
                        help="socket to an extra worker process (repeated)")
    args = parser.parse_args(argv)
    die_with_parent(args.parent)
    # Ctrl-C reaches the whole process group; the front end stops the engine in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from localdev.dfhost.cli import setup_logging

    setup_logging()
    return asyncio.run(_engine_main(args.fd, args.parent, args.worker_fd))


if __name__ == "__main__":
    sys.exit(main())
