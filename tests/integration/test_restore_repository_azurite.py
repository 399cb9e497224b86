from __future__ import annotations

import pytest

from shared.storage import StorageFactory
from shared.storage.table_restore import TableRestoreRepository
from tests.unit.restore_repository_contract import RestoreRepositoryContract

pytestmark = pytest.mark.azurite


class TestTableRestoreRepository(RestoreRepositoryContract):
    @pytest.fixture
    def restores(self, storage: StorageFactory) -> TableRestoreRepository:
        return storage.restores()
