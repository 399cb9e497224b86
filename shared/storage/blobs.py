"""Blob Storage adapter of :class:`shared.ports.BlobStore`: content-addressed policy bodies."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import ContainerClient, ContentSettings

from shared.domain import snapshot_blob_name
from shared.errors import InvalidRequest, NotFound
from shared.ports import BlobEntry

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
        # Same name means same content, so overwriting changes no byte; it does renew the blob's
        # Last-Modified and ETag, which garbage collection reads as "a capture relies on this now" (one
        # request either way: a create-only upload of an existing blob is a 409).
        self._container.upload_blob(name, body, overwrite=True,
                                    content_settings=ContentSettings(content_type="application/json"))
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

    def list_bodies(self, tenant_id: str) -> Iterator[BlobEntry]:
        """Every body stored for the tenant, with its Last-Modified and ETag (one listing, paged)."""
        prefix = snapshot_blob_name(tenant_id, "")[: -len(".json")]
        for blob in self._container.list_blobs(name_starts_with=prefix):
            content_hash = str(blob.name)[len(prefix):].removesuffix(".json")
            if len(content_hash) == 64 and set(content_hash) <= _HASH_CHARS:
                yield BlobEntry(content_hash=content_hash, last_modified=blob.last_modified,
                                etag=str(blob.etag))

    def delete_body(self, tenant_id: str, entry: BlobEntry) -> bool:
        """Delete a listed body if its ETag is unchanged (no capture wrote it since it was listed)."""
        try:
            self._container.delete_blob(snapshot_blob_name(tenant_id, entry.content_hash), etag=entry.etag,
                                        match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        return True
