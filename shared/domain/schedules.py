"""Scheduled backups: a tenant's schedule (5-field cron in UTC), its due slot, and retention.

A schedule lives on the managed tenant (one row in the tenant's backup set partition). Every minute a timer
asks each schedule for its most recent due slot and starts one backup set per slot; retention then selects
the finished sets that are past what the tenant keeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal

from cronsim import CronSim, CronSimError
from pydantic import Field

from shared.domain.backupsets import BackupSet, Selection, SelectionBody
from shared.domain.base import ApiModel
from shared.domain.runs import CreatedBy
from shared.errors import InvalidRequest

__all__ = [
    "BackupSchedule",
    "Retention",
    "ScheduleRequest",
    "due_slot",
    "sets_past_retention",
    "validate_cron",
]

MAX_CRON_LENGTH = 100
# How far back the slot search looks. A schedule whose last slot is older (a yearly cron on 29 February) has
# no due slot until the next one comes round, which the timer then sees.
_SLOT_LOOKBACK = timedelta(days=366 * 4 + 1)


class Retention(ApiModel):
    """What a tenant keeps: its newest ``keep_last`` sets and/or the sets of its last ``keep_days`` days."""

    keep_last: int | None = Field(default=None, ge=1, le=1000)
    keep_days: int | None = Field(default=None, ge=1, le=3650)


class ScheduleRequest(ApiModel):
    """Body of ``PUT /api/tenants/{tenantId}/schedule``."""

    cron: str = Field(min_length=1, max_length=MAX_CRON_LENGTH)
    # Slots are computed in UTC; another zone is refused (400) rather than silently taken as UTC.
    time_zone: Literal["UTC"] = "UTC"
    selection: SelectionBody
    retention: Retention = Field(default_factory=Retention)


class BackupSchedule(ApiModel):
    """A tenant's schedule as stored.

    ``created_at`` is when the schedule took its current form (the last ``PUT``): only slots after it are
    due, so saving a schedule never starts a backup for a slot that passed before it existed.
    ``last_slot`` is the newest slot a backup set was started for (kept across updates).
    ``blobs_collected_at`` is when the tenant's unreferenced content blobs were last collected (kept across
    updates): retention collects after deleting sets, and at least daily, so a collection that failed is
    made up for.
    """

    tenant_id: str
    cron: str
    time_zone: Literal["UTC"] = "UTC"
    selection: Selection
    retention: Retention = Field(default_factory=Retention)
    created_by: CreatedBy
    created_at: datetime
    last_slot: datetime | None = None
    blobs_collected_at: datetime | None = None


def validate_cron(expression: str) -> str:
    """A 5-field cron expression (minute hour day-of-month month day-of-week), single-spaced.

    Raises:
        InvalidRequest: not five fields, or a field cron does not accept (``invalid-cron``).
    """
    fields = expression.split()
    if len(fields) != 5:
        raise InvalidRequest("The cron expression must have five fields: minute hour day-of-month month "
                             "day-of-week.", code="invalid-cron")
    canonical = " ".join(fields)
    try:
        CronSim(canonical, datetime(2000, 1, 1, tzinfo=UTC))
    except (CronSimError, ValueError, IndexError, KeyError):
        raise InvalidRequest("The cron expression is not valid.", code="invalid-cron") from None
    return canonical


def due_slot(schedule: BackupSchedule, now: datetime) -> datetime | None:
    """The latest cron time at or before ``now`` that is after the schedule's creation, or ``None``.

    Only the most recent slot is ever due: after an outage the timer starts one backup, not one per missed
    slot.
    """
    now = now.astimezone(UTC).replace(second=0, microsecond=0)
    if now <= schedule.created_at:
        return None
    # Reverse iteration yields times strictly before its start: start a minute later so ``now`` counts.
    start = (now + timedelta(minutes=1)).replace(tzinfo=None)
    for slot in CronSim(schedule.cron, start, reverse=True):
        slot_utc = slot.replace(tzinfo=UTC)
        if slot_utc <= schedule.created_at or now - slot_utc > _SLOT_LOOKBACK:
            return None
        return slot_utc
    return None


def sets_past_retention(sets: Sequence[BackupSet], retention: Retention, now: datetime) -> list[BackupSet]:
    """The sets of one tenant that retention deletes (``sets`` newest first, as listed).

    A set is kept when it is among the newest ``keep_last`` sets or younger than ``keep_days`` (either rule
    keeps it: with both, the tenant keeps at least N sets and everything of the last N days). A set still
    capturing is never deleted, nor is the newest complete set (the baseline of the next backup, and the
    tenant's last good copy). Without any rule nothing is deleted.
    """
    if retention.keep_last is None and retention.keep_days is None:
        return []
    newest_complete = next((s.id for s in sets if s.status == "complete"), None)
    cutoff = now - timedelta(days=retention.keep_days) if retention.keep_days is not None else None
    doomed: list[BackupSet] = []
    for position, backup_set in enumerate(sets):
        if backup_set.status == "capturing" or backup_set.id == newest_complete:
            continue
        within_last = retention.keep_last is not None and position < retention.keep_last
        within_days = cutoff is not None and backup_set.created_at >= cutoff
        if not (within_last or within_days):
            doomed.append(backup_set)
    return doomed
