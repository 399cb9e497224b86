"""Row-key layout shared by the Table adapters and the in-memory fakes (so both order alike)."""

from __future__ import annotations

from shared.domain import RunStatus, invert_sortable
from shared.domain.ids import RUN_ID_PREFIX

__all__ = [
    "ACTIVE_PREFIX",
    "IDEMPOTENCY_PREFIX",
    "LOCK_PREFIX",
    "OUTBOX_PREFIX",
    "RUN_PREFIX",
    "notification_sort_key",
    "prefix_range",
    "run_id_from_row_key",
    "run_row_key",
]

RUN_PREFIX = "run|"
ACTIVE_PREFIX = "active|"
IDEMPOTENCY_PREFIX = "idem|"
LOCK_PREFIX = "lock|"
OUTBOX_PREFIX = "outbox|"
# Within one run, later statuses sort first (newest first); the order follows the transitions.
_STATUS_ORDER = {
    RunStatus.QUEUED: "9", RunStatus.RUNNING: "8", RunStatus.SUCCEEDED: "1", RunStatus.PARTIAL: "1",
    RunStatus.FAILED: "1", RunStatus.CANCELLED: "1",
}


def run_row_key(run_id: str) -> str:
    """RowKey of a run row: the inverted id, so ascending keys list the newest run first."""
    return RUN_PREFIX + invert_sortable(run_id.removeprefix(RUN_ID_PREFIX))


def run_id_from_row_key(row_key: str) -> str:
    """Inverse of :func:`run_row_key`."""
    return RUN_ID_PREFIX + invert_sortable(row_key.removeprefix(RUN_PREFIX))


def notification_sort_key(run_id: str, status: RunStatus) -> str:
    """RowKey of a notification: newest run first, then latest status first."""
    return f"{invert_sortable(run_id.removeprefix(RUN_ID_PREFIX))}|{_STATUS_ORDER[status]}|{status}"


def prefix_range(prefix: str) -> dict[str, str]:
    """Query parameters ``lo``/``hi`` selecting the row keys that start with ``prefix`` (``ge lo, lt hi``)."""
    return {"lo": prefix, "hi": prefix[:-1] + chr(ord(prefix[-1]) + 1)}
