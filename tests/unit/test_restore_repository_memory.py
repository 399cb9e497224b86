from __future__ import annotations

import pytest

from shared.storage.memory_restore import InMemoryRestoreRepository
from tests.unit.restore_repository_contract import RestoreRepositoryContract


class TestInMemoryRestoreRepository(RestoreRepositoryContract):
    @pytest.fixture
    def restores(self) -> InMemoryRestoreRepository:
        return InMemoryRestoreRepository()
