"""Schedule rows and set deletion in the backup set repository, run against the in-memory fake (unit) and
Azurite (integration). Subclasses provide a ``sets`` fixture."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.domain import BackupSetBatch, CreatedBy, PolicyRef, Selection
from shared.domain.backupsets import BackupSetChange
from shared.domain.schedules import BackupSchedule
from shared.errors import ConcurrentUpdate
from shared.ports import BackupSetRepository
from tests.unit.backupset_contract import OTHER, T0, TENANT, a_set, items


def a_schedule(tenant: str = TENANT) -> BackupSchedule:
    return BackupSchedule(tenant_id=tenant, cron="0 2 * * *", selection=Selection(all=True),
                          created_by=CreatedBy(id="alice"), created_at=T0)


class ScheduleStorageContract:
    def test_a_schedule_is_one_row_per_tenant_with_conditional_updates(
            self, sets: BackupSetRepository) -> None:
        assert sets.get_schedule(TENANT) is None
        sets.put_schedule(a_schedule())
        stored = sets.get_schedule(TENANT)
        assert stored is not None
        assert stored.value == a_schedule()
        assert sets.get_schedule(OTHER) is None
        assert sets.list_sets(tenant_id=TENANT).items == []  # not taken for a set

        sets.put_schedule(stored.value.model_copy(update={"last_slot": T0}), etag=stored.etag)
        with pytest.raises(ConcurrentUpdate):
            sets.put_schedule(stored.value, etag=stored.etag)
        again = sets.get_schedule(TENANT)
        assert again is not None
        assert again.value.last_slot == T0

        sets.delete_schedule(TENANT)
        assert sets.get_schedule(TENANT) is None
        sets.delete_schedule(TENANT)  # nothing to delete is fine

    def test_deleting_a_set_removes_its_rows_only(self, sets: BackupSetRepository) -> None:
        doomed, kept = a_set(name="old"), a_set(at=T0 + timedelta(minutes=1), name="new")
        for backup_set in (doomed, kept):
            sets.put_set(backup_set)
            planned = items(backup_set, 150)
            sets.put_items(planned)
            sets.put_batches([BackupSetBatch(tenant_id=TENANT, backup_set_id=backup_set.id, batch=0,
                                             members=(PolicyRef(type="settingsCatalog", id="p"),))])
            sets.replace_changes(tenant_id=TENANT, backup_set_id=backup_set.id, changes=[BackupSetChange(
                tenant_id=TENANT, backup_set_id=backup_set.id, item_id=i.item_id, policy_type=i.policy_type,
                source_id=i.source_id, change="new") for i in planned[:3]])
        sets.put_schedule(a_schedule())

        sets.delete_set(tenant_id=TENANT, backup_set_id=doomed.id)

        assert [s.name for s in sets.list_sets(tenant_id=TENANT).items] == ["new"]
        assert sets.list_items(tenant_id=TENANT, backup_set_id=doomed.id, top=1000).items == []
        assert sets.list_changes(tenant_id=TENANT, backup_set_id=doomed.id).items == []
        assert sets.get_batch(tenant_id=TENANT, backup_set_id=doomed.id, batch=0) is None
        assert len(sets.list_items(tenant_id=TENANT, backup_set_id=kept.id, top=1000).items) == 150
        assert len(sets.list_changes(tenant_id=TENANT, backup_set_id=kept.id).items) == 3
        assert sets.get_batch(tenant_id=TENANT, backup_set_id=kept.id, batch=0) is not None
        assert sets.get_schedule(TENANT) is not None
        sets.delete_set(tenant_id=TENANT, backup_set_id=doomed.id)  # a retry finds nothing left to do
