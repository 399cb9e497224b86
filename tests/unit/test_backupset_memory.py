from __future__ import annotations

import pytest

from shared.storage.memory_backupsets import InMemoryBackupSetRepository
from tests.unit.backupset_contract import BackupSetContract


class TestInMemoryBackupSets(BackupSetContract):
    @pytest.fixture
    def sets(self) -> InMemoryBackupSetRepository:
        return InMemoryBackupSetRepository()
