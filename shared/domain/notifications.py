"""Notifications: one per run status transition, for the principal who started the run."""

from __future__ import annotations

from datetime import datetime

from shared.domain.base import ApiModel
from shared.domain.runs import RunKind, RunStatus

__all__ = ["Notification", "notification_id"]


def notification_id(run_id: str, status: RunStatus) -> str:
    """Deterministic id, so a repeated transition (activities run at least once) never duplicates."""
    return f"{run_id}.{status}"


class Notification(ApiModel):
    """"Your run changed status"."""

    id: str
    principal_id: str
    tenant_id: str
    run_id: str
    kind: RunKind
    status: RunStatus
    created_at: datetime
    read: bool = False
    message: str = ""
