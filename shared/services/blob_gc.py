"""Garbage collection of content blobs: a tenant's bodies that no set item and no snapshot refers to.

Bodies are stored once per tenant by content hash and shared by every set item and snapshot record with that
hash, so deleting a set (retention) cannot delete its blobs. The collector deletes a body only when nothing
referred to it during a collection, and it is safe against a capture storing the same hash meanwhile:

1. ``started`` is taken, then every hash referred to by the tenant's set items and snapshot records is read;
2. the tenant's bodies are listed, each with its last-write time and ETag;
3. a body is deleted only if no reference was read for it, it was last written before ``started - grace``,
   and (a conditional delete) its ETag is still the one listed.

A capture stores the body first (writing it again when it exists, :meth:`shared.ports.BlobStore.put_json`)
and then writes the item or record that refers to it, within milliseconds. If that reference was written
before step 1 read its set, it was read; if after, the body was written after ``started - grace``, so step 3
spares it; and a body written again after step 2 listed it fails the ETag condition.
The grace only has to outlast the time between a capture's body write and its reference write (one activity),
so an hour leaves a wide margin; a body spared now is collected by a later pass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from shared.ports import BackupSetRepository, BlobStore, SnapshotIndex

__all__ = ["BLOB_GRACE", "BlobCollector"]

logger = logging.getLogger(__name__)

BLOB_GRACE = timedelta(hours=1)
_PAGE = 1000


class BlobCollector:
    """Deletes a tenant's content blobs that nothing refers to any more (see the module docstring)."""

    def __init__(self, *, sets: BackupSetRepository, snapshots: SnapshotIndex, blobs: BlobStore,
                 clock: Callable[[], datetime], grace: timedelta = BLOB_GRACE) -> None:
        """Create the collector.

        Args:
            sets: backup sets and their items (references by content hash).
            snapshots: single-policy snapshot records (references by content hash).
            blobs: the content-addressed bodies.
            clock: returns the current aware UTC time.
            grace: bodies written less than this long before a collection started are kept.
        """
        self._sets = sets
        self._snapshots = snapshots
        self._blobs = blobs
        self._clock = clock
        self._grace = grace

    def collect(self, tenant_id: str) -> int:
        """Delete the tenant's unreferenced bodies older than the grace; return how many were deleted."""
        started = self._clock()
        referenced = self._referenced(tenant_id)
        cutoff = started - self._grace
        deleted = 0
        for entry in self._blobs.list_bodies(tenant_id):
            if entry.content_hash in referenced or entry.last_modified >= cutoff:
                continue
            if self._blobs.delete_body(tenant_id, entry):
                deleted += 1
        if deleted:
            logger.info("unreferenced blobs deleted tenant_id=%s count=%d", tenant_id, deleted)
        return deleted

    def _referenced(self, tenant_id: str) -> set[str]:
        hashes = {record.content_hash for record in self._snapshots.list(tenant_id=tenant_id)}
        continuation: str | None = None
        while True:
            page = self._sets.list_sets(tenant_id=tenant_id, top=200, continuation=continuation)
            for backup_set in page.items:
                hashes |= self._set_hashes(tenant_id, backup_set.id)
            if not page.continuation:
                return hashes
            continuation = page.continuation

    def _set_hashes(self, tenant_id: str, backup_set_id: str) -> set[str]:
        hashes: set[str] = set()
        continuation: str | None = None
        while True:
            page = self._sets.list_items(tenant_id=tenant_id, backup_set_id=backup_set_id, top=_PAGE,
                                         continuation=continuation)
            hashes |= {item.content_hash for item in page.items if item.content_hash}
            if not page.continuation:
                return hashes
            continuation = page.continuation
