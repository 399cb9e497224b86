from __future__ import annotations

import pytest

from shared.storage.memory import InMemoryAuditRepository
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
        audit = InMemoryAuditRepository()
        return Stores(runs=InMemoryRunRepository(), items=InMemoryItemRepository(),
                      snapshots=InMemorySnapshotIndex(), blobs=InMemoryBlobStore(),
                      notifications=InMemoryNotificationRepository(),
                      tenants=InMemoryTenantRepository(), grants=InMemoryGrantRepository(audit),
                      audit=audit)
