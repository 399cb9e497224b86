"""Builds the storage adapters from settings: Azurite by connection string, Azure by managed identity."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.blob import BlobServiceClient, ContainerClient

from shared.config import Settings
from shared.storage.blobs import BlobSnapshotStore
from shared.storage.table_access import TableGrantRepository, TableTenantRepository
from shared.storage.table_records import (
    TableItemRepository,
    TableNotificationRepository,
    TableSnapshotIndex,
)
from shared.storage.table_runs import TableRunRepository

__all__ = ["TABLES", "StorageFactory"]

# Logical table -> suffix of the physical name (``<prefix><suffix>``; letters and digits only).
TABLES = {"runs": "runs", "items": "items", "snapshots": "snapshots",
          "notifications": "notifications", "tenants": "tenants", "grants": "grants"}


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
            **client_options: passed to both service clients (e.g. ``retry_total=0`` in tests).

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
            table_service=TableServiceClient(endpoint=settings.storage_table_endpoint,
                                             credential=credential, **client_options),
            blob_service=BlobServiceClient(account_url=settings.storage_blob_endpoint,
                                           credential=credential, **client_options),
            table_prefix=settings.table_prefix, snapshot_container=settings.snapshot_container,
        )

    @classmethod
    def from_connection_string(cls, connection_string: str, *, table_prefix: str = "intune",
                               snapshot_container: str = "policy-snapshots",
                               **client_options: Any) -> StorageFactory:
        """Build from a storage connection string (Azurite and tests)."""
        return cls(
            table_service=TableServiceClient.from_connection_string(connection_string,
                                                                    **client_options),
            blob_service=BlobServiceClient.from_connection_string(connection_string,
                                                                  **client_options),
            table_prefix=table_prefix, snapshot_container=snapshot_container,
        )

    def table(self, logical: str) -> TableClient:
        """Return the client of a logical table, creating the table on first use."""
        with self._lock:
            client = self._tables.get(logical)
            if client is None:
                name = self._prefix + TABLES[logical]
                self._table_service.create_table_if_not_exists(name)
                client = self._table_service.get_table_client(name)
                self._tables[logical] = client
            return client

    def container(self) -> ContainerClient:
        """Return the snapshot container client, creating the container on first use."""
        with self._lock:
            if self._container is None:
                container = self._blob_service.get_container_client(self._container_name)
                # Another process (or an earlier run) may have created it already.
                with contextlib.suppress(ResourceExistsError):
                    container.create_container()
                self._container = container
            return self._container

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

    def blobs(self) -> BlobSnapshotStore:
        """Snapshot body store."""
        return BlobSnapshotStore(self.container())

    def close(self) -> None:
        """Close the service clients (tests; the Functions host keeps them for the process)."""
        self._table_service.close()
        self._blob_service.close()
