from __future__ import annotations

import pytest

from shared.storage import StorageFactory
from shared.storage.table_backupsets import TableBackupSetRepository
from tests.unit.schedule_storage_contract import ScheduleStorageContract

pytestmark = pytest.mark.azurite


class TestTableScheduleStorage(ScheduleStorageContract):
    @pytest.fixture
    def sets(self, storage: StorageFactory) -> TableBackupSetRepository:
        return storage.backup_sets()
