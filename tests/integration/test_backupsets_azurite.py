from __future__ import annotations

import pytest

from shared.domain.backupsets import BackupSetChange
from shared.storage import StorageFactory
from shared.storage.table_backupsets import TableBackupSetRepository
from shared.storage.table_common import pack_body
from tests.unit.backupset_contract import TENANT, BackupSetContract, a_set

pytestmark = pytest.mark.azurite


class TestTableBackupSets(BackupSetContract):
    @pytest.fixture
    def sets(self, storage: StorageFactory) -> TableBackupSetRepository:
        return storage.backup_sets()


def test_changes_stored_one_row_per_line_are_still_listed_and_replaced(storage: StorageFactory) -> None:
    """Sets compared before changes were kept in pages: their line rows read, and go on the next compare."""
    sets = storage.backup_sets()
    backup_set = a_set()
    old = [BackupSetChange(tenant_id=TENANT, backup_set_id=backup_set.id, item_id=f"scopeTag:{n}",
                           policy_type="scopeTag", source_id=str(n), change="unchanged") for n in range(3)]
    for line in old:
        sets._table.upsert_entity({"PartitionKey": TENANT, "RowKey": f"change|{backup_set.id}|{line.item_id}",
                                   **pack_body(line.model_dump_json())})
    first = sets.list_changes(tenant_id=TENANT, backup_set_id=backup_set.id, top=2)
    rest = sets.list_changes(tenant_id=TENANT, backup_set_id=backup_set.id, top=2,
                             continuation=first.continuation)
    assert first.items + rest.items == old
    assert rest.continuation is None
    sets.replace_changes(tenant_id=TENANT, backup_set_id=backup_set.id, changes=old[:1])
    assert sets.list_changes(tenant_id=TENANT, backup_set_id=backup_set.id).items == old[:1]
    assert len(list(sets._table.query_entities(f"PartitionKey eq '{TENANT}'"))) == 1
