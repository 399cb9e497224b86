"""Instance storage for the local Durable host: the records, the port, and the in-memory store.

Layout (mirrored by the Azure Table store in ``_engine_tables.py``): per instance one state
record, the committed history as one entry per episode, inbox messages and pending activity
work. Message and work keys are deterministic (``msg:{executionId}:TaskCompleted:{taskId}``),
so writing them twice is harmless; that is what makes crash recovery idempotent.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from localdev.dfhost.history import HistoryEvent

__all__ = [
    "ConcurrencyConflict",
    "InMemoryStore",
    "InstanceState",
    "Message",
    "ParentRef",
    "Store",
    "WorkItem",
]


class ConcurrencyConflict(Exception):
    """The state record changed since it was read (ETag mismatch)."""


@dataclass(frozen=True)
class ParentRef:
    instance_id: str
    execution_id: str
    task_id: int


@dataclass
class InstanceState:
    instance_id: str
    name: str
    execution_id: str
    status: str
    input_json: str | None
    created: datetime
    updated: datetime
    output_json: str | None = None
    custom_status_json: str | None = None
    version: str | None = None
    parent: ParentRef | None = None
    episodes: int = 0
    etag: str | None = None


@dataclass
class Message:
    """An inbox message; ``event`` is the history event it becomes when consumed."""

    key: str
    execution_id: str
    event: HistoryEvent
    sequence: int = 0
    visible_at: datetime | None = None


@dataclass
class WorkItem:
    key: str
    execution_id: str
    task_id: int
    name: str
    input_json: str | None


@dataclass
class EpisodeCommit:
    """Everything one episode writes to its own instance in one atomic step."""

    state: InstanceState
    history_execution_id: str
    events: list[HistoryEvent]
    consumed: list[str] = field(default_factory=list)
    new_messages: list[Message] = field(default_factory=list)
    # Deduplicated against the history, so these may be deleted after the atomic commit.
    consumed_later: list[str] = field(default_factory=list)


class Store(Protocol):
    """What the engine needs from storage. Every method is safe to repeat after a crash."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def get_state(self, instance_id: str) -> InstanceState | None: ...
    async def create_instance(self, state: InstanceState, start: Message) -> None:
        """Replace everything stored for the instance with a fresh execution."""
        ...
    async def load_history(self, instance_id: str, execution_id: str) -> list[HistoryEvent]: ...
    async def messages(self, instance_id: str) -> list[Message]: ...
    async def add_messages(self, instance_id: str, messages: list[Message]) -> None:
        """Insert messages; ones whose key already exists are left as they are."""
        ...
    async def delete_messages(self, instance_id: str, keys: list[str]) -> None: ...
    async def add_work(self, instance_id: str, items: list[WorkItem]) -> None: ...
    async def work(self, instance_id: str) -> list[WorkItem]: ...
    async def delete_work(self, instance_id: str, keys: list[str]) -> None: ...
    async def complete_work(self, instance_id: str, work_key: str, message: Message) -> bool:
        """Atomically record an activity result and retire its work item.

        Returns:
            False when the work item was already retired (a duplicate execution).
        """
        ...
    async def commit_episode(self, instance_id: str, commit: EpisodeCommit) -> None:
        """Append the episode, replace the state (checking its ETag), consume messages.

        Raises:
            ConcurrencyConflict: The state changed since it was read.
        """
        ...
    async def update_state(self, state: InstanceState, consumed: list[str]) -> None: ...
    async def pending_instances(self) -> list[str]:
        """Instances with inbox messages or pending work (for resuming after a restart)."""
        ...
    async def list_states(self) -> list[InstanceState]: ...
    async def purge(self, instance_id: str) -> bool: ...


@dataclass
class _Partition:
    state: InstanceState | None = None
    episodes: dict[str, list[list[HistoryEvent]]] = field(default_factory=dict)
    inbox: dict[str, Message] = field(default_factory=dict)
    work: dict[str, WorkItem] = field(default_factory=dict)


class InMemoryStore:
    """The store for unit tests: same contract, no persistence."""

    def __init__(self) -> None:
        self._parts: dict[str, _Partition] = {}
        self._etag = 0

    def _next_etag(self) -> str:
        self._etag += 1
        return str(self._etag)

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def get_state(self, instance_id: str) -> InstanceState | None:
        part = self._parts.get(instance_id)
        return replace(part.state) if part and part.state else None

    async def create_instance(self, state: InstanceState, start: Message) -> None:
        part = _Partition(state=replace(state, etag=self._next_etag()))
        part.inbox[start.key] = start
        self._parts[state.instance_id] = part

    async def load_history(self, instance_id: str, execution_id: str) -> list[HistoryEvent]:
        part = self._parts.get(instance_id)
        if part is None:
            return []
        return [copy.deepcopy(e) for ep in part.episodes.get(execution_id, []) for e in ep]

    async def messages(self, instance_id: str) -> list[Message]:
        part = self._parts.get(instance_id)
        return list(part.inbox.values()) if part else []

    async def add_messages(self, instance_id: str, messages: list[Message]) -> None:
        part = self._parts.setdefault(instance_id, _Partition())
        for message in messages:
            part.inbox.setdefault(message.key, message)

    async def delete_messages(self, instance_id: str, keys: list[str]) -> None:
        part = self._parts.get(instance_id)
        if part:
            for key in keys:
                part.inbox.pop(key, None)

    async def add_work(self, instance_id: str, items: list[WorkItem]) -> None:
        part = self._parts.setdefault(instance_id, _Partition())
        for item in items:
            part.work.setdefault(item.key, item)

    async def work(self, instance_id: str) -> list[WorkItem]:
        part = self._parts.get(instance_id)
        return list(part.work.values()) if part else []

    async def delete_work(self, instance_id: str, keys: list[str]) -> None:
        part = self._parts.get(instance_id)
        if part:
            for key in keys:
                part.work.pop(key, None)

    async def complete_work(self, instance_id: str, work_key: str, message: Message) -> bool:
        part = self._parts.get(instance_id)
        if part is None or work_key not in part.work:
            return False
        del part.work[work_key]
        part.inbox.setdefault(message.key, message)
        return True

    async def commit_episode(self, instance_id: str, commit: EpisodeCommit) -> None:
        part = self._parts.get(instance_id)
        if part is None or part.state is None or part.state.etag != commit.state.etag:
            raise ConcurrencyConflict(instance_id)
        part.episodes.setdefault(commit.history_execution_id, []).append(
            copy.deepcopy(commit.events))
        if commit.history_execution_id != commit.state.execution_id:
            # continue-as-new: the old execution's history is reset
            part.episodes.pop(commit.history_execution_id, None)
        for key in [*commit.consumed, *commit.consumed_later]:
            part.inbox.pop(key, None)
        for message in commit.new_messages:
            part.inbox.setdefault(message.key, message)
        part.state = replace(commit.state, etag=self._next_etag())

    async def update_state(self, state: InstanceState, consumed: list[str]) -> None:
        part = self._parts.get(state.instance_id)
        if part is None or part.state is None or part.state.etag != state.etag:
            raise ConcurrencyConflict(state.instance_id)
        for key in consumed:
            part.inbox.pop(key, None)
        part.state = replace(state, etag=self._next_etag())

    async def pending_instances(self) -> list[str]:
        return [iid for iid, part in self._parts.items() if part.inbox or part.work]

    async def list_states(self) -> list[InstanceState]:
        return [replace(p.state) for p in self._parts.values() if p.state is not None]

    async def purge(self, instance_id: str) -> bool:
        part = self._parts.pop(instance_id, None)
        return part is not None and part.state is not None
