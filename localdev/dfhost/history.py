"""DTFx history events as the extension serialises them (PascalCase, ``EventType`` as int).

Only the fields the Python SDK and this host read are filled in. Every event carries
``EventId`` (-1 unless it schedules work), ``IsPlayed`` and ``Timestamp``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

__all__ = [
    "DTFX_NAMES",
    "EventType",
    "HistoryEvent",
    "format_time",
    "make_event",
    "parse_time",
    "status_time",
]

HistoryEvent = dict[str, Any]


class EventType(IntEnum):
    """``DurableTask.Core.History.EventType`` values (mirrored by the SDK's HistoryEventType)."""

    EXECUTION_STARTED = 0
    EXECUTION_COMPLETED = 1
    EXECUTION_FAILED = 2
    EXECUTION_TERMINATED = 3
    TASK_SCHEDULED = 4
    TASK_COMPLETED = 5
    TASK_FAILED = 6
    SUB_ORCHESTRATION_CREATED = 7
    SUB_ORCHESTRATION_COMPLETED = 8
    SUB_ORCHESTRATION_FAILED = 9
    TIMER_CREATED = 10
    TIMER_FIRED = 11
    ORCHESTRATOR_STARTED = 12
    ORCHESTRATOR_COMPLETED = 13
    EVENT_SENT = 14
    EVENT_RAISED = 15
    CONTINUE_AS_NEW = 16
    GENERIC = 17
    HISTORY_STATE = 18
    EXECUTION_SUSPENDED = 19
    EXECUTION_RESUMED = 20


DTFX_NAMES: dict[int, str] = {
    0: "ExecutionStarted", 1: "ExecutionCompleted", 2: "ExecutionFailed", 3: "ExecutionTerminated",
    4: "TaskScheduled", 5: "TaskCompleted", 6: "TaskFailed", 7: "SubOrchestrationInstanceCreated",
    8: "SubOrchestrationInstanceCompleted", 9: "SubOrchestrationInstanceFailed",
    10: "TimerCreated", 11: "TimerFired", 12: "OrchestratorStarted", 13: "OrchestratorCompleted",
    14: "EventSent", 15: "EventRaised", 16: "ContinueAsNew", 17: "GenericEvent",
    18: "HistoryState", 19: "ExecutionSuspended", 20: "ExecutionResumed",
}


def format_time(moment: datetime) -> str:
    """ISO-8601 UTC with microseconds, the shape the SDK parses with dateutil."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def status_time(moment: datetime) -> str:
    """``yyyy-MM-ddTHH:mm:ssZ``, the shape of createdTime/lastUpdatedTime in status payloads."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """Parse the ISO timestamps written by :func:`format_time` (and the SDK's ``fireAt``)."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def make_event(event_type: EventType, timestamp: datetime, *, event_id: int = -1,
               is_played: bool = False, **fields: Any) -> HistoryEvent:
    """Build one history event dict.

    Args:
        event_type: The DTFx event type.
        timestamp: When the event happened (becomes ``Timestamp``).
        event_id: The sequence id for scheduling events, else -1.
        is_played: Whether the event belongs to an earlier episode.
        **fields: Further PascalCase properties (``Name``, ``Input``, ``TaskScheduledId`` ...).

    Returns:
        The event as a JSON-ready dict.
    """
    event: HistoryEvent = {"EventType": int(event_type), "EventId": event_id,
                           "IsPlayed": is_played, "Timestamp": format_time(timestamp)}
    event.update(fields)
    return event
