from __future__ import annotations

import pytest

from tests.fakes import (
    InMemoryBlobStore,
    InMemoryGrantRepository,
    InMemoryItemRepository,
    InMemoryNotificationRepository,
    InMemoryRunRepository,
    InMemorySnapshotIndex,
    InMemoryTenantRepository,
)
from tests.unit.storage_contract import StorageContract, Stores


class TestInMemoryStorage(StorageContract):
    @pytest.fixture
    def stores(self) -> Stores:
        return Stores(runs=InMemoryRunRepository(), items=InMemoryItemRepository(),
                      snapshots=InMemorySnapshotIndex(), blobs=InMemoryBlobStore(),
                      notifications=InMemoryNotificationRepository(),
                      tenants=InMemoryTenantRepository(), grants=InMemoryGrantRepository())
