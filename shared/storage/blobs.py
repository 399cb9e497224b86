"""Blob Storage adapter of :class:`shared.ports.BlobStore`: content-addressed policy bodies."""

from __future__ import annotations

import contextlib
import hashlib

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import ContainerClient, ContentSettings

from shared.domain import snapshot_blob_name
from shared.errors import InvalidRequest, NotFound

__all__ = ["BlobSnapshotStore"]

_HASH_CHARS = frozenset("0123456789abcdef")


class BlobSnapshotStore:
    """Stores each distinct body of a tenant once, under ``tenants/<tenant>/sha256/<hash>.json``."""

    def __init__(self, container: ContainerClient) -> None:
        self._container = container

    def put_json(self, tenant_id: str, body: bytes) -> tuple[str, str, int]:
        """Store a tenant's ``body`` under its SHA-256 (idempotent).

        Returns:
            ``(content_hash, blob_name, size_bytes)``.
        """
        digest = hashlib.sha256(body).hexdigest()
        name = snapshot_blob_name(tenant_id, digest)
        # Same name means same content, so an existing blob is success.
        with contextlib.suppress(ResourceExistsError):
            self._container.upload_blob(
                name, body, overwrite=False,
                content_settings=ContentSettings(content_type="application/json"),
            )
        return digest, name, len(body)

    def get_json(self, tenant_id: str, content_hash: str) -> bytes:
        """Return the tenant's body stored under ``content_hash``.

        Raises:
            NotFound: no such body.
            InvalidRequest: ``content_hash`` is not a SHA-256 hex digest.
        """
        if len(content_hash) != 64 or not set(content_hash) <= _HASH_CHARS:
            raise InvalidRequest("content hash must be a lower-case SHA-256 hex digest")
        try:
            return self._container.download_blob(snapshot_blob_name(tenant_id, content_hash)).readall()
        except ResourceNotFoundError as exc:
            raise NotFound("snapshot body not found") from exc
