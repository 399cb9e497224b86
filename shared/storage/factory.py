"""Builds the storage adapters from settings: Azurite by connection string, Azure by managed identity."""

from __future__ import annotations

import contextlib
import os
import threading
import urllib.request
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ResourceExistsError
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.blob import BlobServiceClient, ContainerClient, LinearRetry

from shared.config import Settings
from shared.storage.blobs import BlobSnapshotStore
from shared.storage.errors import guarded, storage_errors
from shared.storage.table_access import TableGrantRepository, TableTenantRepository
from shared.storage.table_audit import TableAuditRepository
from shared.storage.table_backupsets import TableBackupSetRepository
from shared.storage.table_budget import TableBudgetLedgerStore
from shared.storage.table_records import (
    TableItemRepository,
    TableNotificationRepository,
    TableSnapshotIndex,
)
from shared.storage.table_restore import TableRestoreRepository
from shared.storage.table_runs import TableRunRepository
from shared.storage.table_webhooks import TableWebhookRepository

__all__ = ["CONNECTION_TIMEOUT_SECONDS", "READ_TIMEOUT_SECONDS", "RETRY_TOTAL", "TABLES", "StorageFactory"]

# Logical table -> suffix of the physical name (``<prefix><suffix>``; letters and digits only).
TABLES = {"runs": "runs", "items": "items", "snapshots": "snapshots",
          "budgets": "budgets", "webhooks": "webhooks",
          "notifications": "notifications", "tenants": "tenants", "grants": "grants",
          "backupsets": "backupsets", "restores": "restores"}

# Storage answers in milliseconds when healthy. Left to their defaults, the SDKs wait up to 300 s (tables) or
# 60 s (blobs) for an answer and retry 3 to 10 times with backoffs of up to a minute, so one request would
# hang for minutes while storage is down. With these, a call to a storage that never answers fails after two
# attempts, within about 22 s (tests/integration/test_storage_timeouts.py measures it), and the caller gets
# 503 with Retry-After (shared/storage/errors.py) and retries later.
CONNECTION_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 10
RETRY_TOTAL = 1
# The blob SDK's default policy waits 15 s or more before its first retry; the table SDK retries at once.
_BLOB_RETRY_BACKOFF_SECONDS = 1


def _with_limits(client_options: dict[str, Any], *, blob: bool) -> dict[str, Any]:
    """``client_options`` over our timeouts, retry budget and transport (callers may override any of them)."""
    options: dict[str, Any] = {"connection_timeout": CONNECTION_TIMEOUT_SECONDS,
                               "read_timeout": READ_TIMEOUT_SECONDS, "retry_total": RETRY_TOTAL,
                               **client_options}
    if blob and "retry_policy" not in options:
        options["retry_policy"] = LinearRetry(backoff=_BLOB_RETRY_BACKOFF_SECONDS, random_jitter_range=1,
                                              retry_total=options["retry_total"])
    if "transport" not in options:
        options["transport"] = _transport(connection_timeout=options["connection_timeout"],
                                          read_timeout=options["read_timeout"])
    return options


def _transport(*, connection_timeout: float, read_timeout: float) -> RequestsTransport:
    """The SDK's default ``requests`` transport, with the environment read once instead of on every call.

    A ``requests`` session that trusts the environment scans every environment variable for proxies,
    matches ``NO_PROXY``, looks for a ``.netrc`` file and for a CA bundle variable on every call: about a
    seventh of the CPU of a point get or an upsert (``benchmarks/storage_call_cpu.py``). Here the CA bundle
    variables are read once, at start-up, with the precedence ``requests`` gives them; only when a proxy is
    configured does the session keep reading the environment per call, since ``NO_PROXY`` is matched per
    URL. A ``.netrc`` file is ignored: storage authenticates by key or token, never by ``.netrc``.
    """
    ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    return RequestsTransport(use_env_settings=bool(urllib.request.getproxies()),
                             connection_verify=ca_bundle or True,
                             connection_timeout=connection_timeout, read_timeout=read_timeout)


class StorageFactory:
    """Long-lived service clients and the repositories over them, one per process.

    Tables and the blob container are created on first use, once per process (creation is idempotent,
    but a round trip per request would be waste).
    """

    def __init__(self, *, table_service: TableServiceClient, blob_service: BlobServiceClient,
                 table_prefix: str = "intune", snapshot_container: str = "policy-snapshots") -> None:
        self._table_service = table_service
        self._blob_service = blob_service
        self._prefix = table_prefix
        self._container_name = snapshot_container
        self._lock = threading.Lock()
        self._tables: dict[str, TableClient] = {}
        self._container: ContainerClient | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, credential: TokenCredential | None = None,
                      **client_options: Any) -> StorageFactory:
        """Build from settings.

        Args:
            settings: ``storage_connection_string`` (local, Azurite) wins; otherwise the table and blob
                endpoints with ``credential``, by default ``DefaultAzureCredential`` preferring the
                user-assigned identity ``azure_client_id``.
            credential: an explicit token credential for endpoint mode.
            **client_options: passed to both service clients over the defaults above (e.g.
                ``retry_total=0`` or shorter ``read_timeout`` in tests).

        Returns:
            The factory.
        """
        if settings.storage_connection_string is not None:
            conn = settings.storage_connection_string.get_secret_value()
            return cls.from_connection_string(conn, table_prefix=settings.table_prefix,
                                              snapshot_container=settings.snapshot_container,
                                              **client_options)
        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential(
                managed_identity_client_id=settings.azure_client_id or None)
        return cls(
            table_service=TableServiceClient(endpoint=settings.storage_table_endpoint, credential=credential,
                                             **_with_limits(client_options, blob=False)),
            blob_service=BlobServiceClient(account_url=settings.storage_blob_endpoint, credential=credential,
                                           **_with_limits(client_options, blob=True)),
            table_prefix=settings.table_prefix, snapshot_container=settings.snapshot_container,
        )

    @classmethod
    def from_connection_string(cls, connection_string: str, *, table_prefix: str = "intune",
                               snapshot_container: str = "policy-snapshots",
                               **client_options: Any) -> StorageFactory:
        """Build from a storage connection string (Azurite and tests); options as in :meth:`from_settings`."""
        return cls(
            table_service=TableServiceClient.from_connection_string(
                connection_string, **_with_limits(client_options, blob=False)),
            blob_service=BlobServiceClient.from_connection_string(
                connection_string, **_with_limits(client_options, blob=True)),
            table_prefix=table_prefix, snapshot_container=snapshot_container,
        )

    def table(self, logical: str) -> TableClient:
        """Return the client of a logical table, creating the table on first use.

        Every call through the client raises :class:`~shared.storage.errors.StorageUnavailable` when storage
        is unreachable, slow or busy (see :func:`~shared.storage.errors.guarded`).
        """
        with self._lock:
            client = self._tables.get(logical)
        if client is None:
            name = self._prefix + TABLES[logical]
            # Outside the lock (creation is idempotent): while storage hangs, requests must not queue here.
            with storage_errors():
                self._table_service.create_table_if_not_exists(name)
            with self._lock:
                client = self._tables.setdefault(
                    logical, guarded(self._table_service.get_table_client(name)))
        return client

    def container(self) -> ContainerClient:
        """Return the snapshot container client (guarded like :meth:`table`), creating it on first use."""
        with self._lock:
            container = self._container
        if container is None:
            container = guarded(self._blob_service.get_container_client(self._container_name))
            # Another process (or an earlier run) may have created it already.
            with contextlib.suppress(ResourceExistsError):
                container.create_container()
            with self._lock:
                if self._container is None:
                    self._container = container
                return self._container
        return container

    def runs(self) -> TableRunRepository:
        """Run repository."""
        return TableRunRepository(self.table("runs"))

    def items(self) -> TableItemRepository:
        """Item outcome repository."""
        return TableItemRepository(self.table("items"))

    def snapshots(self) -> TableSnapshotIndex:
        """Snapshot index."""
        return TableSnapshotIndex(self.table("snapshots"))

    def notifications(self) -> TableNotificationRepository:
        """Notification repository."""
        return TableNotificationRepository(self.table("notifications"))

    def tenants(self) -> TableTenantRepository:
        """Managed tenant repository."""
        return TableTenantRepository(self.table("tenants"))

    def grants(self) -> TableGrantRepository:
        """Grant repository."""
        return TableGrantRepository(self.table("grants"))

    def audit(self) -> TableAuditRepository:
        """Audit events; kept beside the grants so a grant change and its event are one transaction."""
        return TableAuditRepository(self.table("grants"))

    def budget_ledgers(self) -> TableBudgetLedgerStore:
        """The shared Graph request budgets; the table is reached on first use, not here (fail-safe)."""
        return TableBudgetLedgerStore(lambda: self.table("budgets"))

    def backup_sets(self) -> TableBackupSetRepository:
        """Backup sets, their items and batches."""
        return TableBackupSetRepository(self.table("backupsets"))

    def restores(self) -> TableRestoreRepository:
        """The restore ledger and plan records."""
        return TableRestoreRepository(self.table("restores"))

    def webhooks(self) -> TableWebhookRepository:
        """Webhook subscriptions and their deliveries."""
        return TableWebhookRepository(self.table("webhooks"))

    def blobs(self) -> BlobSnapshotStore:
        """Snapshot body store."""
        return BlobSnapshotStore(self.container())

    def close(self) -> None:
        """Close the service clients (tests; the Functions host keeps them for the process)."""
        self._table_service.close()
        self._blob_service.close()
