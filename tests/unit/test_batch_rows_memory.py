from __future__ import annotations

import pytest

from shared.storage.memory_backupsets import InMemoryBackupSetRepository
from tests.unit.batch_rows_contract import BatchRowsContract


class TestInMemoryBatchRows(BatchRowsContract):
    @pytest.fixture
    def sets(self) -> InMemoryBackupSetRepository:
        return InMemoryBackupSetRepository()
