from __future__ import annotations

import pytest

from shared.storage import StorageFactory
from tests.unit.storage_contract import StorageContract, Stores

pytestmark = pytest.mark.azurite


class TestTableStorage(StorageContract):
    @pytest.fixture
    def stores(self, storage: StorageFactory) -> Stores:
        return Stores(runs=storage.runs(), items=storage.items(), snapshots=storage.snapshots(),
                      blobs=storage.blobs(), notifications=storage.notifications(),
                      tenants=storage.tenants(), grants=storage.grants(), audit=storage.audit())
