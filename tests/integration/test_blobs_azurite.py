from __future__ import annotations

import pytest

from shared.storage import StorageFactory
from shared.storage.blobs import BlobSnapshotStore
from tests.unit.blob_contract import BlobStoreContract

pytestmark = pytest.mark.azurite


class TestAzuriteBlobs(BlobStoreContract):
    @pytest.fixture
    def blobs(self, storage: StorageFactory) -> BlobSnapshotStore:
        return storage.blobs()
