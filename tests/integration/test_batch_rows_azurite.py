from __future__ import annotations

import pytest

from shared.storage import StorageFactory
from shared.storage.table_backupsets import TableBackupSetRepository
from tests.unit.batch_rows_contract import BatchRowsContract

pytestmark = pytest.mark.azurite


class TestTableBatchRows(BatchRowsContract):
    @pytest.fixture
    def sets(self, storage: StorageFactory) -> TableBackupSetRepository:
        return storage.backup_sets()
