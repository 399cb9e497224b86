from __future__ import annotations

import pytest

from shared.storage.memory_backupsets import InMemoryBackupSetRepository
from tests.unit.schedule_storage_contract import ScheduleStorageContract


class TestInMemoryScheduleStorage(ScheduleStorageContract):
    @pytest.fixture
    def sets(self) -> InMemoryBackupSetRepository:
        return InMemoryBackupSetRepository()
