"""The content blob store contract, run against the in-memory fake (unit) and Azurite (integration).

Subclasses provide a ``blobs`` fixture returning a :class:`shared.ports.BlobStore`.
"""

from __future__ import annotations

import pytest

from shared.errors import NotFound
from shared.ports import BlobStore

TENANT = "22222222-2222-2222-2222-222222222222"
OTHER = "33333333-3333-3333-3333-333333333333"


class BlobStoreContract:
    def test_a_tenants_bodies_are_listed_with_their_hash_and_no_other_tenants(self, blobs: BlobStore) -> None:
        first, _, _ = blobs.put_json(TENANT, b'{"a":1}')
        second, _, _ = blobs.put_json(TENANT, b'{"b":2}')
        blobs.put_json(OTHER, b'{"c":3}')
        listed = {entry.content_hash: entry for entry in blobs.list_bodies(TENANT)}
        assert set(listed) == {first, second}
        assert all(entry.etag and entry.last_modified.tzinfo is not None for entry in listed.values())

    def test_storing_a_body_again_renews_its_etag_and_write_time(self, blobs: BlobStore) -> None:
        digest, _, _ = blobs.put_json(TENANT, b'{"a":1}')
        [before] = list(blobs.list_bodies(TENANT))
        assert blobs.put_json(TENANT, b'{"a":1}')[0] == digest
        [after] = list(blobs.list_bodies(TENANT))
        assert after.etag != before.etag
        assert after.last_modified >= before.last_modified
        assert blobs.get_json(TENANT, digest) == b'{"a":1}'

    def test_a_listed_body_is_deleted_only_while_unchanged(self, blobs: BlobStore) -> None:
        kept, _, _ = blobs.put_json(TENANT, b'{"kept":1}')
        gone, _, _ = blobs.put_json(TENANT, b'{"gone":1}')
        listed = {entry.content_hash: entry for entry in blobs.list_bodies(TENANT)}
        # A capture stores the same content again after the listing: the stale listing deletes nothing.
        blobs.put_json(TENANT, b'{"kept":1}')
        assert blobs.delete_body(TENANT, listed[kept]) is False
        assert blobs.get_json(TENANT, kept) == b'{"kept":1}'
        assert blobs.delete_body(TENANT, listed[gone]) is True
        with pytest.raises(NotFound):
            blobs.get_json(TENANT, gone)
        assert blobs.delete_body(TENANT, listed[gone]) is False  # already gone
        assert [entry.content_hash for entry in blobs.list_bodies(TENANT)] == [kept]
