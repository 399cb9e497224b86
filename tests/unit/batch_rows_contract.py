"""Batch rows of a set's capture and of runs adding to it, kept apart; against the fake and Azurite."""

from __future__ import annotations

from shared.domain import BackupSetBatch, PolicyRef, new_run_id
from shared.ports import BackupSetRepository
from tests.unit.backupset_contract import T0, TENANT, a_set


def batch(set_id: str, number: int, policy_id: str, run_id: str | None = None) -> BackupSetBatch:
    return BackupSetBatch(tenant_id=TENANT, backup_set_id=set_id, batch=number, run_id=run_id,
                          members=(PolicyRef(type="settingsCatalog", id=policy_id),))


class BatchRowsContract:
    def test_an_adding_runs_batches_are_its_own_and_go_with_the_set(self, sets: BackupSetRepository) -> None:
        backup_set = a_set()
        sets.put_set(backup_set)
        adding = new_run_id(T0)
        sets.create_batches([batch(backup_set.id, 0, "captured")])
        sets.create_batches([batch(backup_set.id, 0, "added", run_id=adding),
                             batch(backup_set.id, 1, "added-too", run_id=adding)])
        own = sets.get_batch(tenant_id=TENANT, backup_set_id=backup_set.id, batch=0)
        added = sets.get_batch(tenant_id=TENANT, backup_set_id=backup_set.id, batch=0, run_id=adding)
        assert own is not None
        assert added is not None
        assert [m.id for m in own.members] == ["captured"]
        assert ([m.id for m in added.members], added.run_id) == (["added"], adding)
        assert sets.get_batch(tenant_id=TENANT, backup_set_id=backup_set.id, batch=1) is None

        sets.delete_set(tenant_id=TENANT, backup_set_id=backup_set.id)
        assert sets.get_batch(tenant_id=TENANT, backup_set_id=backup_set.id, batch=1, run_id=adding) is None
        assert sets.get_batch(tenant_id=TENANT, backup_set_id=backup_set.id, batch=0) is None
