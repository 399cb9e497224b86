from __future__ import annotations

import pytest

from shared.storage import StorageFactory
from shared.storage.table_backupsets import TableBackupSetRepository
from tests.unit.backupset_contract import BackupSetContract

pytestmark = pytest.mark.azurite


class TestTableBackupSets(BackupSetContract):
    @pytest.fixture
    def sets(self, storage: StorageFactory) -> TableBackupSetRepository:
        return storage.backup_sets()
