"""Pure emulation of what DTFx and the extension's ``OutOfProcOrchestrationShim`` do with an episode.

The Python SDK returns the *cumulative* list of actions of the execution. The extension replays
them through DTFx as ``foreach action: task = invoke(action); await task`` while DTFx walks the
history in order, so a completion event resumes the loop and the next action gets the next
sequence id. Retries (``RetryInterceptor``) allocate their timers when a failure is replayed,
which is why this module simulates tasks and continuations instead of just numbering actions.

No I/O here: the engine passes the history and the SDK's state, and gets back the events to
append, the work to dispatch and the outcome.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from localdev.dfhost.history import EventType, HistoryEvent, format_time, make_event, parse_time

__all__ = [
    "ActivityWork",
    "ReplayOutcome",
    "SubOrchestrationWork",
    "TimerWork",
    "custom_status_too_large",
    "replay",
]

# Limits of the Azure Storage provider and the extension (see durable_internals.md §5.3, §5.7).
MAX_TIMER = timedelta(days=6)
MAX_CUSTOM_STATUS_BYTES = 16 * 1024

_SCHEDULING = {EventType.TASK_SCHEDULED, EventType.TIMER_CREATED,
               EventType.SUB_ORCHESTRATION_CREATED}


@dataclass(frozen=True)
class ActivityWork:
    task_id: int
    name: str
    input_json: str | None


@dataclass(frozen=True)
class TimerWork:
    task_id: int
    fire_at: datetime


@dataclass(frozen=True)
class SubOrchestrationWork:
    task_id: int
    name: str
    instance_id: str
    input_json: str | None
    version: str | None


@dataclass
class ReplayOutcome:
    """What one episode decided.

    ``status`` is ``Running``, ``Completed``, ``Failed`` or ``ContinuedAsNew``. ``new_events``
    are the events this episode adds after the consumed messages (scheduling events, then the
    terminal event if any).
    """

    status: str = "Running"
    new_events: list[HistoryEvent] = field(default_factory=list)
    activities: list[ActivityWork] = field(default_factory=list)
    timers: list[TimerWork] = field(default_factory=list)
    sub_orchestrations: list[SubOrchestrationWork] = field(default_factory=list)
    output_json: str | None = None
    failure: str | None = None
    continue_input_json: str | None = None
    custom_status_json: str | None = None
    custom_status_set: bool = False


class _Failed(Exception):
    """A task failure travelling through simulated .NET awaits."""

    def __init__(self, reason: str, details: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


class _Fatal(Exception):
    """Fails the orchestration outright (non-determinism, invalid actions, limits)."""


class _Task:
    """A minimal .NET ``Task``: completes once, runs continuations inline like DTFx's scheduler."""

    __slots__ = ("_callbacks", "canceled", "done", "error", "value")

    def __init__(self) -> None:
        self.done = False
        self.canceled = False
        self.value: Any = None
        self.error: _Failed | None = None
        self._callbacks: list[Callable[[_Task], None]] = []

    def finish(self, value: Any = None, *, error: _Failed | None = None,
               canceled: bool = False) -> None:
        if self.done:
            return
        self.done, self.value, self.error, self.canceled = True, value, error, canceled
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(self)

    def then(self, callback: Callable[[_Task], None]) -> None:
        if self.done:
            callback(self)
        else:
            self._callbacks.append(callback)


_Flow = Generator[_Task, _Task | None, Any]


def _run(flow: _Flow) -> _Task:
    """Drive a generator 'async method': it yields tasks to await and is resumed with them."""
    result = _Task()

    def step(sent: _Task | None) -> None:
        while True:
            try:
                awaited = flow.send(sent)
            except StopIteration as stop:
                result.finish(stop.value)
                return
            except _Failed as failure:
                result.finish(error=failure)
                return
            if not awaited.done:
                awaited.then(step)
                return
            sent = awaited

    step(None)
    return result


def _when_all(tasks: list[_Task]) -> _Task:
    combined = _Task()
    remaining = [len(tasks)]
    if not tasks:
        combined.finish([])
        return combined

    def one_done(_: _Task) -> None:
        remaining[0] -= 1
        if remaining[0] == 0:
            first_error = next((t.error for t in tasks if t.error is not None), None)
            combined.finish([t.value for t in tasks], error=first_error)

    for task in tasks:
        task.then(one_done)
    return combined


def _when_any(tasks: list[_Task]) -> _Task:
    combined = _Task()
    for task in tasks:
        # Task.WhenAny never faults: it completes with the winning task.
        task.then(lambda t: combined.finish(t))
    return combined


@dataclass
class _Scheduled:
    kind: EventType
    name: str
    payload: Any = None


def _describe(kind: EventType, name: str) -> str:
    noun = {EventType.TASK_SCHEDULED: "an activity task",
            EventType.TIMER_CREATED: "a durable timer",
            EventType.SUB_ORCHESTRATION_CREATED: "a sub-orchestration"}[kind]
    return f"{noun} named '{name}'" if name else noun


class _Context:
    """DTFx ``TaskOrchestrationContext`` plus the extension's external-event bookkeeping."""

    def __init__(self, *, instance_id: str, execution_id: str, parent_instance_id: str | None,
                 max_actions: int, activities: set[str] | None,
                 orchestrators: set[str] | None) -> None:
        self.activities = activities
        self.orchestrators = orchestrators
        self.instance_id = instance_id
        self.execution_id = execution_id
        self.parent_instance_id = parent_instance_id
        self.max_actions = max_actions
        self.now: datetime | None = None
        self.next_id = 0
        self.action_count = 0
        self.pending: dict[int, _Scheduled] = {}
        self.open: dict[int, _Task] = {}
        self.waiters: dict[str, list[_Task]] = {}
        self.buffered: dict[str, deque[str | None]] = {}
        self.continue_as_new: tuple[str | None] | None = None

    def _new_id(self, scheduled: _Scheduled) -> tuple[int, _Task]:
        self.action_count += 1
        if self.action_count > self.max_actions:
            raise _Fatal(f"Maximum amount of orchestration actions ({self.max_actions:,}) has "
                         "been reached. This value can be configured in host.json file as "
                         "MaxOrchestrationActions.")
        task_id = self.next_id
        self.next_id += 1
        task = _Task()
        self.pending[task_id] = scheduled
        self.open[task_id] = task
        return task_id, task

    def current_time(self) -> datetime:
        if self.now is None:  # pragma: no cover - history always starts with OrchestratorStarted
            raise _Fatal("history has no OrchestratorStarted event")
        return self.now

    # --- DurableOrchestrationContext API used by the shim -----------------------------------
    def call_activity(self, name: str, input_json: str | None) -> _Task:
        if self.activities is not None and name not in self.activities:
            # ThrowIfFunctionDoesNotExist: an ArgumentException that fails the orchestration
            raise _Fatal(f"The function '{name}' doesn't exist, is disabled, or is not an "
                         "activity function.")
        return self._new_id(_Scheduled(EventType.TASK_SCHEDULED, name, input_json))[1]

    def create_timer(self, fire_at: datetime, *, canceled: bool = False) -> _Task:
        if fire_at - self.current_time() > MAX_TIMER:
            raise _Fatal(f"The Azure Storage provider supports a maximum of {MAX_TIMER.days} "
                         f"days for time-based delays. Timer at {format_time(fire_at)} is too far.")
        task_id, task = self._new_id(_Scheduled(EventType.TIMER_CREATED, "", fire_at))
        if canceled:
            # Canceling the CancellationTokenSource removes the timer from the open tasks;
            # TimerCreated is still recorded and the id stays consumed.
            self.open.pop(task_id, None)
            task.finish(canceled=True)
        return task

    def call_sub_orchestrator(self, name: str, instance_id: str | None,
                              input_json: str | None, version: str | None) -> _Task:
        if self.orchestrators is not None and name not in self.orchestrators:
            raise _Fatal(f"The function '{name}' doesn't exist, is disabled, or is not an "
                         "orchestrator function.")
        if instance_id is not None:
            if instance_id == self.instance_id or instance_id == self.parent_instance_id:
                raise _Fatal("A sub-orchestration cannot have the same instance ID as its "
                             f"parent or grandparent orchestration: '{instance_id}'.")
            if instance_id.startswith("@"):
                raise _Fatal(f"Orchestration instance ids must not start with @: '{instance_id}'.")
        task_id = self.next_id
        child_id = instance_id or f"{self.execution_id}:{task_id}"
        return self._new_id(_Scheduled(EventType.SUB_ORCHESTRATION_CREATED, name,
                                       (child_id, input_json, version)))[1]

    def wait_for_event(self, name: str) -> _Task:
        task = _Task()
        queue = self.buffered.get(name)
        if queue:
            task.finish(queue.popleft())
            if not queue:
                del self.buffered[name]
            return task
        self.waiters.setdefault(name, []).append(task)
        return task

    def raise_event(self, name: str, input_json: str | None) -> None:
        stack = self.waiters.get(name)
        if stack:
            waiter = stack.pop()
            if not stack:
                del self.waiters[name]
            waiter.finish(input_json)
        else:
            self.buffered.setdefault(name, deque()).append(input_json)

    def with_retry(self, call: Callable[[], _Task], options: dict[str, Any]) -> _Task:
        return _run(self._retry_flow(call, options))

    def _retry_flow(self, call: Callable[[], _Task], options: dict[str, Any]) -> _Flow:
        # DurableTask.Core RetryInterceptor.Invoke: a timer after every failure, even the last.
        first_ms = float(options.get("firstRetryIntervalInMilliseconds", 0))
        attempts = int(options.get("maxNumberOfAttempts", 1))
        backoff = float(options.get("backoffCoefficient", 1.0))
        max_ms = options.get("maxRetryIntervalInMilliseconds")
        timeout_ms = options.get("retryTimeoutInMilliseconds")
        first_attempt = self.current_time()
        last_error: _Failed | None = None
        for retry_count in range(attempts):
            task = call()
            yield task
            if task.error is None:
                return task.value
            last_error = task.error
            delay_ms = 0.0
            expired = (timeout_ms is not None and self.current_time()
                       >= first_attempt + timedelta(milliseconds=float(timeout_ms)))
            if not expired:
                delay_ms = first_ms * backoff**retry_count
                if max_ms is not None:
                    delay_ms = min(delay_ms, float(max_ms))
            if delay_ms <= 0:
                break
            yield self.create_timer(self.current_time() + timedelta(milliseconds=delay_ms))
        raise last_error or _Failed("retry failed")


class _Shim:
    """``OutOfProcOrchestrationShim.InvokeAPIFromAction`` and ``ProcessAsyncActionsV2``."""

    def __init__(self, ctx: _Context) -> None:
        self.ctx = ctx

    def invoke(self, action: dict[str, Any]) -> _Task:
        ctx = self.ctx
        kind = action.get("actionType")
        name = action.get("functionName") or ""
        raw_input = action.get("input")
        input_json = raw_input if raw_input is None or isinstance(raw_input, str) \
            else json.dumps(raw_input)
        if kind == 0:
            return ctx.call_activity(name, input_json)
        if kind == 1:
            return ctx.with_retry(lambda: ctx.call_activity(name, input_json),
                                  action.get("retryOptions") or {})
        if kind == 2:
            return ctx.call_sub_orchestrator(name, action.get("instanceId"), input_json,
                                             action.get("version"))
        if kind == 3:
            child = action.get("instanceId")
            return ctx.with_retry(
                lambda: ctx.call_sub_orchestrator(name, child, input_json, action.get("version")),
                action.get("retryOptions") or {})
        if kind == 4:
            ctx.continue_as_new = (input_json,)
            done = _Task()
            done.finish()
            return done
        if kind == 5:
            return ctx.create_timer(parse_time(action["fireAt"]),
                                    canceled=bool(action.get("isCanceled")))
        if kind == 6:
            return ctx.wait_for_event(action.get("externalEventName") or "")
        if kind == 11:
            return _when_any([self.invoke(child) for child in action.get("compoundActions", [])])
        if kind == 12:
            return _when_all([self.invoke(child) for child in action.get("compoundActions", [])])
        raise _Fatal(f"The local Durable host does not support action type {kind} "
                     "(entities and call_http are not emulated).")

    def process(self, actions: list[dict[str, Any]]) -> _Flow:
        for action in actions:
            task = self.invoke(action)
            # The extension swallows task exceptions here: the SDK owns error handling.
            yield task


def custom_status_too_large(custom_status: Any) -> str | None:
    """The extension's 16 KB check on the UTF-16 JSON of the custom status; message or None."""
    text = json.dumps(custom_status)
    size = len(text.encode("utf-16-le"))
    if size > MAX_CUSTOM_STATUS_BYTES:
        return (f"The custom status payload is {size / 1024:.1f} KB, which exceeds the "
                f"maximum of {MAX_CUSTOM_STATUS_BYTES // 1024} KB.")
    return None


def _nondeterminism(task_id: int, expected: _Scheduled | None, event: HistoryEvent) -> str:
    kind = EventType(event["EventType"])
    recorded = _describe(kind, event.get("Name") or "")
    if expected is None:
        return (f"Non-Deterministic workflow detected: A previous execution of this orchestration "
                f"scheduled {recorded} with sequence ID {task_id}, but the current replay "
                "execution hasn't (yet?) scheduled this task. Was a change made to the "
                "orchestrator code after this instance had already started running?")
    return (f"Non-Deterministic workflow detected: A previous execution of this orchestration "
            f"scheduled {recorded} with sequence ID {task_id}, but the current replay execution "
            f"instead scheduled {_describe(expected.kind, expected.name)}. Was a change made to "
            "the orchestrator code after this instance had already started running?")


def replay(*, name: str, instance_id: str, execution_id: str, parent_instance_id: str | None,
           history: list[HistoryEvent], state: dict[str, Any], now: datetime,
           max_actions: int = 100_000, activity_names: set[str] | None = None,
           orchestrator_names: set[str] | None = None) -> ReplayOutcome:
    """Replay one episode the way the extension and DTFx do.

    Args:
        name: Orchestrator function name (for failure messages).
        instance_id: The instance id.
        execution_id: The current execution id (default sub-orchestration ids use it).
        parent_instance_id: Parent instance id of a sub-orchestration, else None.
        history: Committed events plus this episode's new events, starting with
            ``OrchestratorStarted``; the same list the SDK was given.
        state: The SDK's ``OrchestratorState`` (``isDone``, ``actions``, ``output``, ``error``,
            ``customStatus``, ``schemaVersion``), also when recovered from ``$OutOfProcData$``.
        now: Timestamp of this episode's ``OrchestratorStarted`` (stamps the new events).
        max_actions: ``maxOrchestrationActions`` from host.json.
        activity_names: Known activity functions (None: do not check names).
        orchestrator_names: Known orchestrator functions (None: do not check names).

    Returns:
        The decided outcome: events to append, work to dispatch and the new status.
    """
    outcome = ReplayOutcome()
    ctx = _Context(instance_id=instance_id, execution_id=execution_id,
                   parent_instance_id=parent_instance_id, max_actions=max_actions,
                   activities=activity_names, orchestrators=orchestrator_names)
    shim = _Shim(ctx)
    shim_task: _Task | None = None

    def fail(message: str) -> ReplayOutcome:
        outcome.status = "Failed"
        outcome.failure = message
        outcome.new_events = [make_event(EventType.EXECUTION_COMPLETED, now,
                                         OrchestrationStatus="Failed", Result=json.dumps(message),
                                         FailureDetails={"ErrorMessage": message})]
        outcome.activities, outcome.timers, outcome.sub_orchestrations = [], [], []
        return outcome

    custom_status = state.get("customStatus")
    if custom_status is not None:
        # SetCustomStatus runs before the actions are replayed, so an oversized status fails
        # the episode no matter what else happened.
        too_large = custom_status_too_large(custom_status)
        if too_large:
            return fail(f"Orchestrator function '{name}' failed: {too_large}")
        outcome.custom_status_json = json.dumps(custom_status)
        outcome.custom_status_set = True

    actions_outer = state.get("actions") or []
    if state.get("schemaVersion", 0) < 1:
        return fail(f"Orchestrator function '{name}' failed: the local Durable host only "
                    "supports replay schema V2 and later.")
    if len(actions_outer) > 1:
        return fail(f"Orchestrator function '{name}' failed: With OOProc schema V2, expected "
                    f"actions array to be of length 1 in outer layer but got size: "
                    f"{len(actions_outer)}")
    actions: list[dict[str, Any]] = actions_outer[0] if actions_outer else []

    try:
        for event in history:
            kind = event["EventType"]
            if kind == EventType.ORCHESTRATOR_STARTED:
                ctx.now = parse_time(event["Timestamp"])
            elif kind == EventType.EXECUTION_STARTED:
                shim_task = _run(shim.process(actions))
            elif kind in _SCHEDULING:
                task_id = event["EventId"]
                expected = ctx.pending.get(task_id)
                if (expected is None or expected.kind != kind
                        or (expected.name or "") != (event.get("Name") or "")):
                    raise _Fatal(_nondeterminism(task_id, expected, event))
                del ctx.pending[task_id]
            elif kind in (EventType.TASK_COMPLETED, EventType.SUB_ORCHESTRATION_COMPLETED):
                task = ctx.open.pop(event["TaskScheduledId"], None)
                if task is not None:
                    task.finish(event.get("Result"))
            elif kind in (EventType.TASK_FAILED, EventType.SUB_ORCHESTRATION_FAILED):
                task = ctx.open.pop(event["TaskScheduledId"], None)
                if task is not None:
                    task.finish(error=_Failed(event.get("Reason") or "", event.get("Details")))
            elif kind == EventType.TIMER_FIRED:
                task = ctx.open.pop(event["TimerId"], None)
                if task is not None:
                    task.finish()
            elif kind == EventType.EVENT_RAISED:
                ctx.raise_event(event.get("Name") or "", event.get("Input"))
    except _Fatal as fatal:
        return fail(f"Orchestrator function '{name}' failed: {fatal}")

    for task_id in sorted(ctx.pending):
        scheduled = ctx.pending[task_id]
        if scheduled.kind == EventType.TASK_SCHEDULED:
            outcome.new_events.append(make_event(EventType.TASK_SCHEDULED, now, event_id=task_id,
                                                 Name=scheduled.name, Version="",
                                                 Input=scheduled.payload))
            outcome.activities.append(ActivityWork(task_id, scheduled.name, scheduled.payload))
        elif scheduled.kind == EventType.TIMER_CREATED:
            fire_at: datetime = scheduled.payload
            outcome.new_events.append(make_event(EventType.TIMER_CREATED, now, event_id=task_id,
                                                 FireAt=format_time(fire_at)))
            if task_id in ctx.open:
                outcome.timers.append(TimerWork(task_id, fire_at))
        else:
            child_id, child_input, version = scheduled.payload
            outcome.new_events.append(make_event(
                EventType.SUB_ORCHESTRATION_CREATED, now, event_id=task_id,
                Name=scheduled.name, InstanceId=child_id, Input=child_input, Version=version))
            outcome.sub_orchestrations.append(
                SubOrchestrationWork(task_id, scheduled.name, child_id, child_input, version))

    shim_finished = shim_task is not None and shim_task.done
    if not shim_finished:
        return outcome
    error = state.get("error")
    if error:
        return fail(f"Orchestrator function '{name}' failed: {error}")
    if not state.get("isDone") or ctx.open:
        # The shim awaits forever when the SDK is not done, and DTFx does not complete an
        # orchestration while it still has open tasks (activities, timers, children).
        return outcome
    if ctx.continue_as_new is not None:
        outcome.status = "ContinuedAsNew"
        outcome.continue_input_json = ctx.continue_as_new[0]
        outcome.new_events.append(make_event(EventType.EXECUTION_COMPLETED, now,
                                             OrchestrationStatus="ContinuedAsNew",
                                             Result=outcome.continue_input_json))
        return outcome
    outcome.status = "Completed"
    outcome.output_json = json.dumps(state.get("output"))
    outcome.new_events.append(make_event(EventType.EXECUTION_COMPLETED, now,
                                         OrchestrationStatus="Completed",
                                         Result=outcome.output_json))
    return outcome
