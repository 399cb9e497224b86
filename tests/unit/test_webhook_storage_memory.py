"""The webhook storage contract on the in-memory repositories."""

from __future__ import annotations

from shared.storage.memory import InMemoryRunRepository
from shared.storage.memory_webhooks import InMemoryWebhookRepository
from tests.unit.webhook_storage_contract import check_event_rows, check_webhook_repository


def test_webhook_repository_contract() -> None:
    check_webhook_repository(InMemoryWebhookRepository())


def test_event_rows_contract() -> None:
    check_event_rows(InMemoryRunRepository())
