"""Scheduled backups below the durable boundary: cron slots, one run per slot, retention's choice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from shared.domain import BackupSet, Principal
from shared.domain.backupsets import Selection, SelectionBody
from shared.domain.runs import CreatedBy
from shared.domain.schedules import (
    BackupSchedule,
    Retention,
    ScheduleRequest,
    due_slot,
    sets_past_retention,
    validate_cron,
)
from shared.errors import InvalidRequest
from shared.services.backupsets import BackupSetService
from shared.services.schedules import ScheduleService
from shared.storage.memory import InMemoryBlobStore
from shared.storage.memory_backupsets import InMemoryBackupSetRepository
from tests.fakes import RunsHarness

TENANT = "22222222-2222-2222-2222-222222222222"
ADMIN = Principal(tenant_id="11111111-1111-1111-1111-111111111111", object_id="admin", name="Admin")
BY = CreatedBy(id="admin", name="Admin")


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, second, tzinfo=UTC)


def schedule(cron: str, created_at: datetime, last_slot: datetime | None = None) -> BackupSchedule:
    return BackupSchedule(tenant_id=TENANT, cron=cron, selection=Selection(all=True), created_by=BY,
                          created_at=created_at, last_slot=last_slot)


class TestCronSlots:
    def test_the_latest_slot_at_or_before_now_is_due(self) -> None:
        daily = schedule("0 2 * * *", at(1, 3))
        assert due_slot(daily, at(2, 1, 59)) is None  # today's 02:00 not reached, yesterday's before creation
        assert due_slot(daily, at(2, 2, 0, 40)) == at(2, 2)
        assert due_slot(daily, at(4, 10)) == at(4, 2)  # after an outage: only the most recent slot

    def test_a_slot_before_the_schedule_existed_is_not_due(self) -> None:
        quarterly = schedule("*/15 * * * *", at(1, 10, 0, 30))
        assert due_slot(quarterly, at(1, 10, 14)) is None
        assert due_slot(quarterly, at(1, 10, 15, 20)) == at(1, 10, 15)

    def test_five_fields_only(self) -> None:
        assert validate_cron("  0   2 * *  1-5 ") == "0 2 * * 1-5"
        for bad in ("* * * *", "0 * * * * *", "61 * * * *", "* 25 * * *", "x * * * *", "@daily"):
            with pytest.raises(InvalidRequest) as caught:
                validate_cron(bad)
            assert caught.value.instance_code == "invalid-cron"

    def test_only_utc_is_accepted(self) -> None:
        with pytest.raises(ValidationError, match="timeZone"):
            ScheduleRequest.model_validate({"cron": "0 2 * * *", "timeZone": "Europe/Berlin",
                                            "selection": {"all": True}})
        for retention in ({"keepLast": 0}, {"keepLast": 1001}, {"keepDays": 3651}):
            with pytest.raises(ValidationError, match="retention"):
                ScheduleRequest.model_validate({"cron": "0 2 * * *", "selection": {"all": True},
                                                "retention": retention})


def harness() -> tuple[RunsHarness, InMemoryBackupSetRepository, ScheduleService]:
    runs = RunsHarness()

    async def no_graph(**_: object) -> list[object]:
        return []

    sets = InMemoryBackupSetRepository()
    backup_sets = BackupSetService(sets=sets, runs=runs.service, run_rows=runs.runs,
                                   blobs=InMemoryBlobStore(), list_policies=no_graph, clock=runs.clock)
    service = ScheduleService(sets=sets, backup_sets=backup_sets, tenant_ids=lambda: [TENANT],
                              clock=runs.clock)
    return runs, sets, service


def run_ids(runs: RunsHarness) -> list[str]:
    return [r.id for r in runs.runs.list(tenant_id=TENANT, top=100).items]


class TestOneRunPerSlot:
    async def test_two_firings_of_one_slot_start_one_run(self) -> None:
        runs, sets, service = harness()
        runs.clock.now = at(15, 9, 0, 10)
        service.put(principal=ADMIN, tenant_id=TENANT, request=ScheduleRequest(
            cron="*/5 * * * *", selection=SelectionBody(all=True)))
        runs.clock.now = at(15, 9, 5, 1)
        stale = sets.get_schedule(TENANT)
        assert stale is not None
        # Two instances read the schedule before either recorded the slot, and fire at once.
        first, second = await asyncio.gather(service.start_slot(stale), service.start_slot(stale))
        assert first is not None
        assert second is not None
        assert first.run.id == second.run.id
        assert sorted([first.reused, second.reused]) == [False, True]
        assert len(run_ids(runs)) == 1

        # The run finishes (its derived key is released); a late instance with the stale read fires again.
        runs.service.complete(tenant_id=TENANT, run_id=first.run.id)
        late = await service.start_slot(stale)
        assert late is not None
        assert (late.reused, late.run.id) == (True, first.run.id)
        # The slot is recorded: the timer's next firing starts nothing.
        runs.clock.now = at(15, 9, 9)
        assert await service.start_due() == []
        assert len(run_ids(runs)) == 1

    async def test_the_next_slot_starts_a_new_run(self) -> None:
        runs, _, service = harness()
        runs.clock.now = at(15, 9, 0, 10)
        service.put(principal=ADMIN, tenant_id=TENANT, request=ScheduleRequest(
            cron="*/5 * * * *", selection=SelectionBody(types=["settingsCatalog"])))
        runs.clock.now = at(15, 9, 5, 1)
        assert len(await service.start_due()) == 1
        assert await service.start_due() == []
        runs.clock.now = at(15, 9, 10, 2)
        [started] = await service.start_due()
        assert not started.reused
        assert len(run_ids(runs)) == 2
        assert started.run.created_by.name == "Scheduled backup"
        assert "2026-01-15 09:10 UTC" in started.run.scope["name"]

    async def test_a_slot_stays_started_after_its_idempotency_key_expired(self) -> None:
        runs, _, service = harness()
        runs.clock.now = at(14, 12)
        service.put(principal=ADMIN, tenant_id=TENANT, request=ScheduleRequest(
            cron="5 9 15 1 *", selection=SelectionBody(all=True)))  # once a year
        runs.clock.now = at(15, 9, 6)
        [started] = await service.start_due()
        runs.service.complete(tenant_id=TENANT, run_id=started.run.id)
        runs.clock.now = at(16, 15)  # 30 hours on: the key is gone, the slot is still the latest
        assert await service.start_due() == []
        assert len(run_ids(runs)) == 1


def backup_set(n: int, *, status: str = "complete", age_days: float = 0) -> BackupSet:
    created = at(20, 12) - timedelta(days=age_days)
    return BackupSet(id=f"bs_01J{n:023d}", tenant_id=TENANT, name=f"set {n}", run_id=f"run_01J{n:023d}",
                     status=status, selection=Selection(all=True), created_by=BY,  # type: ignore[arg-type]
                     created_at=created)


class TestRetention:
    NOW = at(20, 12)

    def test_keep_last_deletes_older_sets_but_never_a_capture_in_progress(self) -> None:
        sets = [backup_set(5, status="capturing"), backup_set(4), backup_set(3, status="partial"),
                backup_set(2), backup_set(1, status="capturing")]
        doomed = sets_past_retention(sets, Retention(keep_last=2), self.NOW)
        assert [s.name for s in doomed] == ["set 3", "set 2"]

    def test_keep_days_keeps_the_newest_complete_set_however_old(self) -> None:
        sets = [backup_set(3, status="failed", age_days=40), backup_set(2, age_days=50),
                backup_set(1, age_days=60)]
        doomed = sets_past_retention(sets, Retention(keep_days=30), self.NOW)
        assert [s.name for s in doomed] == ["set 3", "set 1"]

    def test_either_rule_keeps_a_set(self) -> None:
        sets = [backup_set(n, age_days=10 - n) for n in range(10, 0, -1)]  # newest first, one a day
        doomed = sets_past_retention(sets, Retention(keep_last=2, keep_days=5), self.NOW)
        assert [s.name for s in doomed] == ["set 4", "set 3", "set 2", "set 1"]
        assert sets_past_retention(sets, Retention(), self.NOW) == []

    def test_deleting_a_set_removes_its_rows_and_no_other_sets(self) -> None:
        _, sets, service = harness()
        for n in (1, 2, 3):
            sets.put_set(backup_set(n, age_days=3 - n))
        sets.put_schedule(schedule("0 2 * * *", self.NOW).model_copy(
            update={"retention": Retention(keep_last=1)}))
        assert service.delete_expired(tenant_id=TENANT, retention=Retention(keep_last=1)) == 2
        assert [s.name for s in sets.list_sets(tenant_id=TENANT).items] == ["set 3"]
