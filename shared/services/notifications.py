"""Notifications for the principal who started a run: written on each status transition."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from shared.domain import Notification, Page, Principal, RunRecord, RunStatus, notification_id
from shared.errors import NotificationNotFound
from shared.ports import NotificationRepository

__all__ = ["NotificationService"]

_MESSAGES = {
    RunStatus.QUEUED: "was accepted",
    RunStatus.RUNNING: "started",
    RunStatus.SUCCEEDED: "succeeded",
    RunStatus.PARTIAL: "finished with some failed items",
    RunStatus.FAILED: "failed",
    RunStatus.CANCELLED: "was cancelled",
}


class NotificationService:
    """Writes and reads notifications; the first :class:`shared.ports.RunEventSink`."""

    def __init__(self, *, repository: NotificationRepository,
                 clock: Callable[[], datetime]) -> None:
        self._repository = repository
        self._clock = clock

    def publish(self, run: RunRecord, status: RunStatus) -> None:
        """Run event sink entry point: notify the run's initiator."""
        self.notify(run, status)

    def notify(self, run: RunRecord, status: RunStatus) -> Notification:
        """Write the notification for ``run`` reaching ``status``.

        The id is derived from ``(run, status)``: a repeated transition returns the notification written
        the first time (read or not) instead of adding a second one.

        Args:
            run: the run, as of the transition.
            status: the status it reached.

        Returns:
            The stored notification.
        """
        note_id = notification_id(run.id, status)
        existing = self._repository.get(principal_id=run.created_by.id, notification_id=note_id)
        if existing is not None:
            # A repeated transition (activities run at least once) must not mark a read notification
            # unread again or move it in time.
            return existing
        notification = Notification(
            id=note_id,
            principal_id=run.created_by.id,
            tenant_id=run.tenant_id,
            run_id=run.id,
            kind=run.kind,
            status=status,
            created_at=self._clock(),
            message=f"Run {run.id} ({run.kind}) {_MESSAGES[status]}.",
        )
        self._repository.put(notification)
        return notification

    def list(self, *, principal: Principal, unread_only: bool = False, top: int = 50,
             continuation: str | None = None) -> Page[Notification]:
        """Return the caller's notifications, newest run first.

        Args:
            principal: the caller; only their own notifications are visible.
            unread_only: leave out notifications already marked read.
            top: page size.
            continuation: token from the previous page.

        Returns:
            One page of notifications.
        """
        return self._repository.list(principal_id=principal.object_id, unread_only=unread_only,
                                     top=top, continuation=continuation)

    def mark_read(self, *, principal: Principal, notification_id: str) -> Notification:
        """Mark one of the caller's notifications read (idempotent).

        Raises:
            NotificationNotFound: no such notification for this caller, including someone else's.
        """
        current = self._repository.get(principal_id=principal.object_id,
                                       notification_id=notification_id)
        if current is None:
            raise NotificationNotFound("notification not found")
        if current.read:
            return current
        updated = current.model_copy(update={"read": True})
        self._repository.put(updated)
        return updated
