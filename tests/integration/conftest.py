from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.storage import StorageFactory


@pytest.fixture
def storage(azurite_connection_string: str, unique_name: str) -> Iterator[StorageFactory]:
    """A factory over Azurite whose tables and container are unique to the test."""
    # retry_total=0: an Azurite 5xx must fail fast instead of costing seconds of SDK retries.
    factory = StorageFactory.from_connection_string(
        azurite_connection_string, table_prefix=unique_name, snapshot_container=unique_name,
        retry_total=0,
    )
    try:
        yield factory
    finally:
        factory.close()
