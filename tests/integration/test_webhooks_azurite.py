"""The webhook storage contract on Azurite: the same checks as on the in-memory repositories."""

from __future__ import annotations

import pytest

from shared.storage import StorageFactory
from tests.unit.webhook_storage_contract import check_event_rows, check_webhook_repository

pytestmark = pytest.mark.azurite


def test_webhook_repository_contract(storage: StorageFactory) -> None:
    check_webhook_repository(storage.webhooks())


def test_event_rows_contract(storage: StorageFactory) -> None:
    check_event_rows(storage.runs())
