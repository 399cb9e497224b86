from __future__ import annotations

import pytest

from shared.storage.memory import InMemoryBlobStore
from tests.unit.blob_contract import BlobStoreContract


class TestInMemoryBlobs(BlobStoreContract):
    @pytest.fixture
    def blobs(self) -> InMemoryBlobStore:
        return InMemoryBlobStore()
