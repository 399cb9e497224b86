"""The engine of the local Durable host: instances, episodes, activities, timers, persistence.

One episode = read the instance's visible inbox messages, run the orchestrator through the SDK
with the full history, let :mod:`localdev.dfhost.replayer` decide what happens, write work and
cross-instance messages first (deterministic keys), then commit the episode atomically. A crash
at any point therefore leaves either the old state plus idempotent leftovers, or the new state.
Activities run at least once; their results enter the history exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import re
import traceback
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from localdev.dfhost.clock import Clock, RealClock, VirtualClock
from localdev.dfhost.history import DTFX_NAMES, EventType, HistoryEvent, make_event, status_time
from localdev.dfhost.invoker import FunctionInvoker, RemoteInvocationError
from localdev.dfhost.replayer import ReplayOutcome, SubOrchestrationWork, replay
from localdev.dfhost.store import (
    ConcurrencyConflict,
    EpisodeCommit,
    InMemoryStore,
    InstanceState,
    Message,
    ParentRef,
    Store,
    WorkItem,
)
from shared.redaction import redact

__all__ = [
    "Engine",
    "EngineOptions",
    "InstanceGone",
    "InstanceNotFound",
    "InvalidInstanceId",
    "OrchestrationAlreadyExists",
    "UnknownOrchestrator",
]

logger = logging.getLogger(__name__)

TERMINAL = frozenset({"Completed", "Failed", "Terminated"})
RUNNING_LIKE = frozenset({"Pending", "Running", "ContinuedAsNew", "Suspended"})
MAX_INSTANCE_ID = 256
# Messages whose consumption must be atomic with the episode (events, starts): keeps the
# commit inside one 100-operation entity-group transaction.
MAX_BATCH = 64
# Completions and timer fires are deduplicated against the history, so their inbox rows may be
# deleted after the commit; larger episodes mean fewer full replays of a big fan-out.
MAX_EPISODE_MESSAGES = 1000
MAX_EPISODE_CHARS = 1_000_000
EPISODE_RETRY_SECONDS = 1.0
# Writing an activity's result is tried this often (backing off up to the cap) before the
# engine gives up on that result and runs the activity again from its work row.
RESULT_WRITE_ATTEMPTS = 6
RESULT_WRITE_BACKOFF_SECONDS = (0.1, 2.0)
_OOP_MARKER = "$OutOfProcData$:"
_BAD_ID = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")
_CHILD_NS = uuid.UUID("5d0c3f7e-62a4-4bd0-9d59-6f3c1d1d4a11")
_COMPLETIONS = {EventType.TASK_COMPLETED, EventType.TASK_FAILED,
                EventType.SUB_ORCHESTRATION_COMPLETED, EventType.SUB_ORCHESTRATION_FAILED}
_CONTROL = {EventType.EXECUTION_TERMINATED, EventType.EXECUTION_SUSPENDED,
            EventType.EXECUTION_RESUMED}


class OrchestrationAlreadyExists(Exception):
    """Starting an instance id whose instance is still running (NonRunningStates)."""


class UnknownOrchestrator(Exception):
    """The function does not exist or is not an orchestrator."""


class InvalidInstanceId(ValueError):
    """The instance id breaks the extension's rules."""


class InstanceNotFound(Exception):
    """No instance with that id."""


class InstanceGone(Exception):
    """The instance is Completed, Failed or Terminated."""


@dataclass
class EngineOptions:
    hub: str
    max_concurrent_activities: int = 10
    max_concurrent_orchestrations: int = 10
    overridable_existing_instance_states: str = "NonRunningStates"   # or "AnyState"
    max_orchestration_actions: int = 100_000
    clock: str = "real"                                              # "real" | "virtual"
    # Virtual clock only: jump to the next timer whenever nothing else is runnable.
    auto_advance: bool = True
    # Work not running in this engine and still unfinished on two sweeps this far apart is
    # dispatched again (activities are at-least-once): a result lost anywhere costs a re-run
    # after a bound, never a hang. 0 turns the sweep off.
    redispatch_seconds: float = 60.0


def validate_instance_id(instance_id: str) -> None:
    r"""Apply ``DurableClient.StartNewAsync``'s instance id rules.

    Raises:
        InvalidInstanceId: The id is empty, too long, starts with ``@`` or holds
            ``/ \\ # ?`` or control characters.
    """
    if not instance_id or len(instance_id) > MAX_INSTANCE_ID:
        raise InvalidInstanceId(f"Instance ID lengths must not exceed {MAX_INSTANCE_ID} characters.")
    if instance_id.startswith("@"):
        raise InvalidInstanceId(f"Orchestration instance ids must not start with @: '{instance_id}'.")
    if _BAD_ID.search(instance_id):
        raise InvalidInstanceId(f"Instance ID '{instance_id}' contains invalid characters.")


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _as_json(body: str | None) -> str | None:
    """A request body as JSON text: bodies that are not JSON travel as a string token."""
    if body is None or body == "":
        return None
    try:
        json.loads(body)
    except ValueError:
        return json.dumps(body)
    return body


def _exception_details(exc: BaseException) -> str:
    """The ``Details`` of a failed activity: the exception's type and message."""
    if isinstance(exc, RemoteInvocationError):
        return exc.details
    return "".join(traceback.format_exception_only(exc)).strip()


class Engine:
    def __init__(self, *, invoker: FunctionInvoker, connection_string: str | None,
                 options: EngineOptions) -> None:
        """connection_string None -> in-memory store (unit tests)."""
        self._invoker = invoker
        self._options = options
        self._store: Store
        if connection_string is None:
            self._store = InMemoryStore()
        else:
            from localdev.dfhost._engine_tables import TableStore
            self._store = TableStore(connection_string, options.hub)
        self._clock: Clock = (VirtualClock(auto_advance=options.auto_advance)
                              if options.clock == "virtual" else RealClock())
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        self._inflight: set[tuple[str, str]] = set()
        # Work whose result this process already recorded. A resume that listed the work rows just before
        # an activity finished must not run it again (the row is gone by the time it would dispatch).
        self._finished: set[tuple[str, str]] = set()
        self._history: dict[str, tuple[str, int, list[HistoryEvent]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._activity_slots = asyncio.Semaphore(options.max_concurrent_activities)
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._sequence = 0
        self._started = False
        # Work rows the previous sweep found unfinished and not running here.
        self._unowned: set[tuple[str, str]] = set()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Open storage, resume pending instances and work, start the episode workers."""
        await self._store.open()
        self._started = True
        for _ in range(self._options.max_concurrent_orchestrations):
            self._spawn(self._worker())
        for instance_id in await self._store.pending_instances():
            await self._resume_instance(instance_id)
        if self._options.redispatch_seconds > 0:
            self._spawn(self._sweeper(self._options.redispatch_seconds))

    async def stop(self) -> None:
        """Stop workers and in-flight activities (they run again after a restart)."""
        self.abandon()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._store.close()

    def abandon(self) -> None:
        """Drop everything in flight without writing anything: what a crash does."""
        self._started = False
        self._clock.cancel_all()
        for task in list(self._tasks):
            task.cancel()

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _schedule_retry(self, instance_id: str) -> None:
        self._enter()   # a pending retry keeps the engine from reporting idle
        asyncio.get_running_loop().call_later(EPISODE_RETRY_SECONDS, self._retry_instance,
                                              instance_id)

    def _retry_instance(self, instance_id: str) -> None:
        # The failed step may have committed without dispatching its work (a timeout after
        # the server applied the transaction): resume the instance as after a restart.
        if self._started:
            self._spawn(self._resume_quietly(instance_id))
        else:
            self._leave()

    async def _resume_quietly(self, instance_id: str) -> None:
        try:
            await self._resume_instance(instance_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("resume failed instance=%s; retrying", instance_id)
            self._schedule_retry(instance_id)
        finally:
            self._leave()

    async def _resume_instance(self, instance_id: str) -> None:
        for item in await self._unfinished_work(instance_id, watch_timers=True):
            self._dispatch(instance_id, item)

    async def _unfinished_work(self, instance_id: str, *, watch_timers: bool) -> list[WorkItem]:
        """Wake the instance and return its committed work that has no result yet."""
        state = await self._store.get_state(instance_id)
        if state is None:
            return []
        history = await self._load_history(state, remember=False)
        scheduled = {e["EventId"] for e in history if e["EventType"] == EventType.TASK_SCHEDULED}
        done = self._completed_ids(history)
        if watch_timers:
            for message in await self._store.messages(instance_id):
                if message.visible_at is not None:
                    self._clock.call_at(message.visible_at,
                                        functools.partial(self._wake, instance_id))
        self._wake(instance_id)
        # Only work whose TaskScheduled was committed: leftovers of an uncommitted episode
        # are written again (same keys) when that episode re-runs.
        return [item for item in await self._store.work(instance_id)
                if item.execution_id == state.execution_id and item.task_id in scheduled
                and item.task_id not in done and state.status not in TERMINAL]

    async def _sweeper(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self._sweep()
            except asyncio.CancelledError:
                raise
            except Exception:   # storage trouble: the next sweep tries again
                logger.exception("the unfinished-work sweep failed")

    async def _sweep(self) -> None:
        """Dispatch again the work nobody here runs that was already unfinished last sweep."""
        unowned: set[tuple[str, str]] = set()
        for instance_id in await self._store.pending_instances():
            for item in await self._unfinished_work(instance_id, watch_timers=False):
                key = (instance_id, item.key)
                if key in self._inflight or key in self._finished:
                    continue
                unowned.add(key)
                if key in self._unowned:
                    logger.warning("re-dispatching unfinished work instance=%s task=%s",
                                   instance_id, item.task_id)
                    self._dispatch(instance_id, item)
        self._unowned = unowned

    # ------------------------------------------------------------------ busy tracking
    def _enter(self) -> None:
        self._busy += 1
        self._idle.clear()

    def _leave(self) -> None:
        self._busy -= 1
        if self._busy == 0:
            self._idle.set()
            clock = self._clock
            if isinstance(clock, VirtualClock) and clock.auto_advance and self._started:
                asyncio.get_running_loop().call_soon(self._auto_advance)

    def _auto_advance(self) -> None:
        clock = self._clock
        if self._busy == 0 and self._started and isinstance(clock, VirtualClock):
            due = clock.next_due()
            if due is not None:
                clock.advance_to(due)

    def _wake(self, instance_id: str) -> None:
        if instance_id in self._queued or not self._started:
            return
        self._queued.add(instance_id)
        self._enter()
        self._queue.put_nowait(instance_id)

    async def _worker(self) -> None:
        while True:
            instance_id = await self._queue.get()
            self._queued.discard(instance_id)
            try:
                lock = self._locks.setdefault(instance_id, asyncio.Lock())
                async with lock:
                    while await self._episode(instance_id):
                        pass
            except asyncio.CancelledError:
                raise
            except Exception:
                # Storage hiccups must not strand an instance: its messages are still there,
                # so trying again later is safe.
                logger.exception("episode failed instance=%s; retrying in %ss", instance_id,
                                 EPISODE_RETRY_SECONDS)
                self._schedule_retry(instance_id)
            finally:
                self._leave()

    # ------------------------------------------------------------------ client operations
    async def start_instance(self, name: str, instance_id: str | None, input_json: str | None,
                             *, version: str | None = None) -> str:
        """Start (or overwrite, per the reuse rule) an orchestration; returns its instance id.

        ``input_json`` is the request body as received: the SDK client double-encodes, so the
        stored input is the JSON string token the extension keeps.
        """
        if name not in self._invoker.orchestrator_names():
            raise UnknownOrchestrator(f"The function '{name}' doesn't exist, is disabled, or is "
                                      "not an orchestrator function.")
        instance_id = instance_id if instance_id is not None else uuid.uuid4().hex
        validate_instance_id(instance_id)
        await self._create(instance_id, name, _as_json(input_json), version, None,
                           uuid.uuid4().hex)
        return instance_id

    async def _create(self, instance_id: str, name: str, input_json: str | None,
                      version: str | None, parent: ParentRef | None, execution_id: str,
                      *, wake: bool = True) -> None:
        existing = await self._store.get_state(instance_id)
        if (existing is not None and existing.status in RUNNING_LIKE
                and self._options.overridable_existing_instance_states != "AnyState"):
            raise OrchestrationAlreadyExists(
                f"An Orchestration instance with the status {existing.status} already exists.")
        now = self._clock.now()
        state = InstanceState(instance_id=instance_id, name=name, execution_id=execution_id,
                              status="Pending", input_json=input_json, created=now, updated=now,
                              version=version, parent=parent)
        self._history.pop(instance_id, None)
        await self._store.create_instance(state, self._start_message(state))
        if wake:
            self._wake(instance_id)

    def _start_message(self, state: InstanceState) -> Message:
        parent = state.parent
        event = make_event(
            EventType.EXECUTION_STARTED, self._clock.now(), Name=state.name,
            Version=state.version or "", Input=state.input_json,
            OrchestrationInstance={"InstanceId": state.instance_id,
                                   "ExecutionId": state.execution_id},
            ParentInstance=None if parent is None else {
                "OrchestrationInstance": {"InstanceId": parent.instance_id,
                                          "ExecutionId": parent.execution_id},
                "TaskScheduleId": parent.task_id},
            Tags=None)
        return self._message(f"msg:{state.execution_id}:ExecutionStarted", state.execution_id,
                             event)

    def _message(self, key: str, execution_id: str, event: HistoryEvent,
                 visible_at: datetime | None = None) -> Message:
        self._sequence += 1
        # Sequence orders the inbox: wall-clock nanoseconds survive a restart of the engine.
        stamp = int(datetime.now().timestamp() * 1e6) * 1000 + self._sequence % 1000  # noqa: DTZ005
        return Message(key=key, execution_id=execution_id, event=event, sequence=stamp,
                       visible_at=visible_at)

    async def get_status(self, instance_id: str, *, show_history: bool = False,
                         show_history_output: bool = False,
                         show_input: bool = True) -> dict[str, Any] | None:
        """The status payload of §2.2; None if unknown."""
        state = await self._store.get_state(instance_id)
        if state is None:
            return None
        payload = self._status_payload(state, show_input=show_input)
        if show_history:
            history = await self._load_history(state, remember=False)
            payload["historyEvents"] = [self._public_event(e, show_history_output)
                                        for e in history]
        return payload

    @staticmethod
    def _public_event(event: HistoryEvent, show_output: bool) -> dict[str, Any]:
        public = {"EventType": DTFX_NAMES[event["EventType"]],
                  "Timestamp": event["Timestamp"]}
        for key in ("EventId", "Name", "TaskScheduledId", "TimerId", "FireAt",
                    "OrchestrationStatus", "Reason", "InstanceId"):
            if key in event and event[key] is not None:
                public[key] = event[key]
        if show_output and event.get("Result") is not None:
            public["Result"] = event["Result"]
        return public

    @staticmethod
    def _status_payload(state: InstanceState, *, show_input: bool) -> dict[str, Any]:
        return {
            "name": state.name,
            "instanceId": state.instance_id,
            "runtimeStatus": state.status,
            "input": _loads(state.input_json) if show_input else None,
            "customStatus": _loads(state.custom_status_json),
            "output": _loads(state.output_json),
            "createdTime": status_time(state.created),
            "lastUpdatedTime": status_time(state.updated),
        }

    async def query(self, *, created_from: datetime | None = None,
                    created_to: datetime | None = None, runtime_status: list[str] | None = None,
                    instance_id_prefix: str | None = None,
                    show_input: bool = True) -> list[dict[str, Any]]:
        """Status payloads of the instances matching every given filter."""
        states = [s for s in await self._store.list_states()
                  if self._matches(s, created_from, created_to, runtime_status)
                  and (not instance_id_prefix or s.instance_id.startswith(instance_id_prefix))]
        states.sort(key=lambda s: (s.created, s.instance_id))
        return [self._status_payload(s, show_input=show_input) for s in states]

    @staticmethod
    def _matches(state: InstanceState, created_from: datetime | None,
                 created_to: datetime | None, runtime_status: list[str] | None) -> bool:
        # Naive filter times are taken as UTC, like the extension's DateTime parameters.
        if created_from is not None and created_from.tzinfo is None:
            created_from = created_from.replace(tzinfo=UTC)
        if created_to is not None and created_to.tzinfo is None:
            created_to = created_to.replace(tzinfo=UTC)
        if created_from is not None and state.created < created_from:
            return False
        if created_to is not None and state.created > created_to:
            return False
        return not runtime_status or state.status in runtime_status

    async def _live_state(self, instance_id: str) -> InstanceState:
        state = await self._store.get_state(instance_id)
        if state is None:
            raise InstanceNotFound(f"No instance with ID '{instance_id}' found.")
        if state.status in TERMINAL:
            raise InstanceGone(f"Instance with ID {instance_id} is gone: either completed or "
                               "failed")
        return state

    async def raise_event(self, instance_id: str, event_name: str, data_json: str | None) -> None:
        """Deliver an external event; ``data_json`` is the request body as received."""
        state = await self._live_state(instance_id)
        event = make_event(EventType.EVENT_RAISED, self._clock.now(), Name=event_name,
                           Input=_as_json(data_json) or "null")
        key = f"msg:{state.execution_id}:EventRaised:{uuid.uuid4().hex}"
        await self._store.add_messages(instance_id, [self._message(key, state.execution_id,
                                                                   event)])
        self._wake(instance_id)

    async def _control(self, instance_id: str, event_type: EventType, reason: str | None) -> None:
        state = await self._live_state(instance_id)
        event = make_event(event_type, self._clock.now(), Input=reason, Reason=reason)
        key = f"msg:{state.execution_id}:{event_type.name}:{uuid.uuid4().hex}"
        await self._store.add_messages(instance_id, [self._message(key, state.execution_id,
                                                                   event)])
        self._wake(instance_id)

    async def terminate(self, instance_id: str, reason: str | None) -> None:
        await self._control(instance_id, EventType.EXECUTION_TERMINATED, reason)

    async def suspend(self, instance_id: str, reason: str | None) -> None:
        await self._control(instance_id, EventType.EXECUTION_SUSPENDED, reason)

    async def resume(self, instance_id: str, reason: str | None) -> None:
        await self._control(instance_id, EventType.EXECUTION_RESUMED, reason)

    async def purge(self, instance_id: str) -> int:
        """Delete the instance and its history; returns how many instances were deleted."""
        self._history.pop(instance_id, None)
        return 1 if await self._store.purge(instance_id) else 0

    async def purge_by(self, *, created_from: datetime | None = None,
                       created_to: datetime | None = None,
                       runtime_status: list[str] | None = None) -> int:
        deleted = 0
        for state in await self._store.list_states():
            if self._matches(state, created_from, created_to, runtime_status):
                deleted += await self.purge(state.instance_id)
        return deleted

    async def advance_clock(self, seconds: float) -> None:
        """Move the virtual clock forward and fire due timers."""
        if not isinstance(self._clock, VirtualClock):
            raise RuntimeError("advance_clock needs the virtual clock")
        self._clock.advance(seconds)
        await asyncio.sleep(0)

    def now(self) -> datetime:
        """The engine clock's current time."""
        return self._clock.now()

    async def wait_idle(self, timeout: float) -> bool:  # noqa: ASYNC109 - shared interface
        """Wait until nothing is runnable except future timers; False on timeout."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._idle.wait(), remaining)
            except TimeoutError:
                return False
            # Let call_soon callbacks (auto-advance, due timers) run before deciding.
            for _ in range(3):
                await asyncio.sleep(0)
            clock = self._clock
            timers_left = (isinstance(clock, VirtualClock) and clock.auto_advance
                           and clock.next_due() is not None)
            if self._busy == 0 and not timers_left:
                return True

    # ------------------------------------------------------------------ episodes
    async def _load_history(self, state: InstanceState, *,
                            remember: bool = True) -> list[HistoryEvent]:
        """The committed history of ``state``'s execution, from the cache when it matches.

        Only the episode runner (which holds the instance lock) may ``remember``: a status
        read racing with a commit must not replace the list the running episode extends.
        """
        cached = self._history.get(state.instance_id)
        if cached and cached[0] == state.execution_id and cached[1] == state.episodes:
            return cached[2]
        history = await self._store.load_history(state.instance_id, state.execution_id)
        if remember:
            self._history[state.instance_id] = (state.execution_id, state.episodes, history)
        return history

    @staticmethod
    def _completed_ids(history: list[HistoryEvent]) -> set[int]:
        return {e["TaskScheduledId"] for e in history if e["EventType"] in _COMPLETIONS}

    @staticmethod
    def _dedupe_key(event: HistoryEvent) -> tuple[str, int] | None:
        """Identity of a message that may arrive twice but must enter the history once."""
        if event["EventType"] in _COMPLETIONS:
            return ("task", int(event["TaskScheduledId"]))
        if event["EventType"] == EventType.TIMER_FIRED:
            return ("timer", int(event["TimerId"]))
        return None

    async def _episode(self, instance_id: str) -> bool:
        """Run one episode if the instance has visible messages; True if it should run again."""
        state = await self._store.get_state(instance_id)
        if state is None:
            return False
        now = self._clock.now()
        inbox = await self._store.messages(instance_id)
        visible = sorted((m for m in inbox if m.visible_at is None or m.visible_at <= now),
                         key=lambda m: (m.event["EventType"] != EventType.EXECUTION_STARTED,
                                        m.sequence, m.key))
        if not visible:
            return False
        stale = [m.key for m in visible
                 if m.execution_id != state.execution_id or state.status in TERMINAL]
        current = [m for m in visible if m.key not in set(stale)]
        if stale:
            await self._store.delete_messages(instance_id, stale)
        if not current:
            return False

        control = [m for m in current if m.event["EventType"] in _CONTROL]
        if any(m.event["EventType"] == EventType.EXECUTION_TERMINATED for m in control):
            terminate = next(m for m in control
                             if m.event["EventType"] == EventType.EXECUTION_TERMINATED)
            await self._terminate_now(state, terminate, [m.key for m in current], now)
            return False
        status = state.status
        for message in control:
            if message.event["EventType"] == EventType.EXECUTION_SUSPENDED:
                status = "Suspended" if status not in ("Pending",) else status
            elif status == "Suspended":
                status = "Running"
        if control:
            await self._store.update_state(replace(state, status=status, updated=now),
                                           [m.key for m in control])
            return True
        if status == "Suspended":
            return False
        return await self._orchestrate(state, current, now)

    async def _terminate_now(self, state: InstanceState, message: Message, consumed: list[str],
                             now: datetime) -> None:
        reason = message.event.get("Input")
        events = [make_event(EventType.ORCHESTRATOR_STARTED, now),
                  dict(message.event),
                  make_event(EventType.EXECUTION_COMPLETED, now, OrchestrationStatus="Terminated",
                             Result=json.dumps(reason)),
                  make_event(EventType.ORCHESTRATOR_COMPLETED, now)]
        new_state = replace(state, status="Terminated", output_json=json.dumps(reason),
                            updated=now, episodes=state.episodes + 1)
        await self._notify_parent(new_state, failure=f"Orchestration terminated: {reason}")
        await self._commit(state, new_state, events, consumed[:MAX_BATCH])
        await self._store.delete_work(state.instance_id,
                                      [w.key for w in await self._store.work(state.instance_id)])

    async def _orchestrate(self, state: InstanceState, current: list[Message],
                           now: datetime) -> bool:
        instance_id = state.instance_id
        history = await self._load_history(state)
        seen = {key for key in map(self._dedupe_key, history) if key is not None}
        batch: list[Message] = []
        atomic: list[str] = []
        idempotent: list[str] = []
        dropped: list[str] = []
        chars = 0
        for message in current:
            key = self._dedupe_key(message.event)
            if key is not None and key in seen:
                dropped.append(message.key)   # a duplicate delivery: record each result once
                continue
            size = len(json.dumps(message.event))
            if batch and (len(batch) >= MAX_EPISODE_MESSAGES or chars + size > MAX_EPISODE_CHARS
                          or (key is None and len(atomic) >= MAX_BATCH)):
                break
            chars += size
            if key is None:
                atomic.append(message.key)
            else:
                seen.add(key)
                idempotent.append(message.key)
            batch.append(message)
        if dropped:
            await self._store.delete_messages(instance_id, dropped)
        if not batch:
            return False
        started = make_event(EventType.ORCHESTRATOR_STARTED, now)
        new_events = [started] + [dict(m.event, IsPlayed=False) for m in batch]
        full = history + new_events
        outcome = await self._run_orchestrator(state, full, now)

        new_state = replace(state, updated=now, episodes=state.episodes + 1,
                            status="Running" if outcome.status == "Running" else outcome.status)
        if outcome.custom_status_set:
            new_state.custom_status_json = outcome.custom_status_json
        episode = [*new_events, *outcome.new_events, make_event(
            EventType.ORCHESTRATOR_COMPLETED, now)]
        for event in episode:
            event["IsPlayed"] = True
        new_messages: list[Message] = []
        if outcome.status in ("Completed", "Failed"):
            new_state.output_json = (outcome.output_json if outcome.status == "Completed"
                                     else json.dumps(outcome.failure))
            await self._notify_parent(new_state, failure=outcome.failure)
        elif outcome.status == "ContinuedAsNew":
            # Like a sub-orchestration input, the SDK's serialised input is kept as a string
            # token, which the SDK parses back on the next execution.
            carried = outcome.continue_input_json
            new_state = replace(new_state, execution_id=uuid.uuid4().hex, episodes=0,
                                input_json=None if carried is None else json.dumps(carried),
                                output_json=None)
            new_messages.append(self._start_message(new_state))
        # Work and messages for other instances first: deterministic keys make a re-run after
        # a crash rewrite the same rows instead of duplicating them.
        work = [WorkItem(key=f"work:{state.execution_id}:{a.task_id}",
                         execution_id=state.execution_id, task_id=a.task_id, name=a.name,
                         input_json=a.input_json) for a in outcome.activities]
        if work:
            await self._store.add_work(instance_id, work)
        timers = [self._message(
            f"msg:{state.execution_id}:TimerFired:{t.task_id}", state.execution_id,
            make_event(EventType.TIMER_FIRED, t.fire_at, TimerId=t.task_id,
                       FireAt=t.fire_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")),
            visible_at=t.fire_at) for t in outcome.timers]
        if timers:
            await self._store.add_messages(instance_id, timers)
        children = [await self._start_child(state, sub) for sub in outcome.sub_orchestrations]
        await self._commit(state, new_state, episode, atomic, new_messages, idempotent,
                           base_history=history)
        for item in work:
            self._dispatch(instance_id, item)
        for timer in timers:
            assert timer.visible_at is not None
            self._clock.call_at(timer.visible_at, functools.partial(self._wake, instance_id))
        for child in children:
            if child:
                self._wake(child)
        return True

    async def _commit(self, old: InstanceState, new: InstanceState, events: list[HistoryEvent],
                      consumed: list[str], new_messages: list[Message] | None = None,
                      consumed_later: list[str] | None = None,
                      base_history: list[HistoryEvent] | None = None) -> None:
        try:
            await self._store.commit_episode(old.instance_id, EpisodeCommit(
                state=new, history_execution_id=old.execution_id, events=events,
                consumed=consumed, new_messages=new_messages or [],
                consumed_later=consumed_later or []))
        except ConcurrencyConflict:
            self._history.pop(old.instance_id, None)
            raise
        if new.execution_id == old.execution_id and base_history is not None:
            self._history[old.instance_id] = (new.execution_id, new.episodes,
                                              base_history + events)
        elif new.execution_id == old.execution_id:
            self._history.pop(old.instance_id, None)
        else:
            self._history.pop(old.instance_id, None)
            self._wake(old.instance_id)

    async def _run_orchestrator(self, state: InstanceState, history: list[HistoryEvent],
                                now: datetime) -> ReplayOutcome:
        context = json.dumps({
            "history": history,
            "input": _loads(state.input_json),
            "instanceId": state.instance_id,
            "isReplaying": False,
            "parentInstanceId": state.parent.instance_id if state.parent else None,
            "upperSchemaVersion": 1,
            "upperSchemaVersionNew": 2,
            "longRunningTimerIntervalDuration": "3.00:00:00",
            "maximumShortTimerDuration": "6.00:00:00",
            "defaultHttpAsyncRequestSleepTimeMillseconds": 30000,
        })
        try:
            # An invoker in another process is awaited; one in this process gets a thread.
            remote = getattr(self._invoker, "run_orchestrator_async", None)
            text = (await remote(state.name, context) if remote is not None else
                    await asyncio.to_thread(self._invoker.run_orchestrator, state.name, context))
            sdk_state = json.loads(text)
        except Exception as exc:  # noqa: BLE001 - the SDK reports user failures as exceptions
            message = str(exc)
            if _OOP_MARKER not in message:
                sdk_state = {"isDone": False, "schemaVersion": 2, "actions": [],
                             "error": message}
            else:
                sdk_state = json.loads(message.split(_OOP_MARKER, 1)[1])
                sdk_state.setdefault("error", message.split(_OOP_MARKER, 1)[0].strip())
        return replay(name=state.name, instance_id=state.instance_id,
                      execution_id=state.execution_id,
                      parent_instance_id=state.parent.instance_id if state.parent else None,
                      history=history, state=sdk_state, now=now,
                      max_actions=self._options.max_orchestration_actions,
                      activity_names=self._invoker.activity_names(),
                      orchestrator_names=self._invoker.orchestrator_names())

    async def _start_child(self, parent: InstanceState,
                           sub: SubOrchestrationWork) -> str | None:
        child_execution = uuid.uuid5(_CHILD_NS, f"{parent.execution_id}:{sub.task_id}").hex
        existing = await self._store.get_state(sub.instance_id)
        if existing is not None and existing.execution_id == child_execution:
            return None   # already started by an earlier run of this episode
        ref = ParentRef(parent.instance_id, parent.execution_id, sub.task_id)
        input_json = None if sub.input_json is None else json.dumps(sub.input_json)
        try:
            if sub.name not in self._invoker.orchestrator_names():
                raise UnknownOrchestrator(f"The function '{sub.name}' doesn't exist, is "
                                          "disabled, or is not an orchestrator function.")
            # Woken only after the parent's episode commits, like DTFx sending the
            # ExecutionStarted message with the parent's checkpoint.
            await self._create(sub.instance_id, sub.name, input_json, sub.version, ref,
                               child_execution, wake=False)
        except (OrchestrationAlreadyExists, UnknownOrchestrator) as exc:
            await self._send_to_parent(ref, make_event(
                EventType.SUB_ORCHESTRATION_FAILED, self._clock.now(),
                TaskScheduledId=sub.task_id, Reason=str(exc), Details=None))
            return None
        return sub.instance_id

    async def _notify_parent(self, child: InstanceState, *, failure: str | None) -> None:
        if child.parent is None:
            return
        now = self._clock.now()
        if failure is None:
            event = make_event(EventType.SUB_ORCHESTRATION_COMPLETED, now,
                               TaskScheduledId=child.parent.task_id, Result=child.output_json)
        else:
            event = make_event(EventType.SUB_ORCHESTRATION_FAILED, now,
                               TaskScheduledId=child.parent.task_id, Reason=failure,
                               Details=None)
        await self._send_to_parent(child.parent, event)

    async def _send_to_parent(self, parent: ParentRef, event: HistoryEvent) -> None:
        kind = EventType(event["EventType"]).name
        key = f"msg:{parent.execution_id}:SubOrchestration:{parent.task_id}"
        await self._store.add_messages(parent.instance_id, [
            self._message(key, parent.execution_id, event)])
        self._wake(parent.instance_id)
        logger.debug("child result kind=%s parent=%s", kind, parent.instance_id)

    # ------------------------------------------------------------------ activities
    def _dispatch(self, instance_id: str, item: WorkItem) -> None:
        key = (instance_id, item.key)
        if key in self._inflight or key in self._finished or not self._started:
            return
        self._inflight.add(key)
        self._enter()
        self._spawn(self._run_activity(instance_id, item))

    async def _run_activity(self, instance_id: str, item: WorkItem) -> None:
        try:
            async with self._activity_slots:
                now = self._clock.now()
                try:
                    result = await self._invoker.run_activity(item.name, item.input_json)
                    event = make_event(EventType.TASK_COMPLETED, now,
                                       TaskScheduledId=item.task_id, Result=result)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - user code may raise anything
                    event = make_event(
                        EventType.TASK_FAILED, self._clock.now(), TaskScheduledId=item.task_id,
                        Reason=redact(f"Activity function '{item.name}' failed: {exc}"),
                        Details=redact(_exception_details(exc)))
            message = self._message(f"msg:{item.execution_id}:TaskResult:{item.task_id}",
                                    item.execution_id, event)
            await self._record_result(instance_id, item, message)
        finally:
            self._inflight.discard((instance_id, item.key))
            with contextlib.suppress(RuntimeError):
                self._leave()

    async def _record_result(self, instance_id: str, item: WorkItem, message: Message) -> None:
        """Write an activity's result; a failed write is tried again, never dropped.

        A write whose answer was lost may have applied: trying it again then finds the result
        already there (``complete_work`` answers False), so the instance is woken either way.
        """
        low, high = RESULT_WRITE_BACKOFF_SECONDS
        for attempt in range(RESULT_WRITE_ATTEMPTS):
            try:
                await self._store.complete_work(instance_id, item.key, message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any storage failure: try again
                logger.warning("recording an activity result failed instance=%s task=%s "
                               "attempt=%d: %s", instance_id, item.task_id, attempt + 1,
                               redact(str(exc)))
                await asyncio.sleep(min(low * 2 ** attempt, high))
                continue
            self._finished.add((instance_id, item.key))
            self._wake(instance_id)
            return
        # Storage kept failing: the work row is still there, so resuming the instance later
        # runs the activity again (at-least-once) instead of leaving the orchestration waiting.
        logger.error("giving up on an activity result instance=%s task=%s; it will run again",
                     instance_id, item.task_id)
        self._schedule_retry(instance_id)
