"""Captured policy snapshots: the index entry that points at a content-addressed blob body."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from shared.domain.base import ApiModel

__all__ = ["SnapshotRecord", "snapshot_blob_name"]


def snapshot_blob_name(tenant_id: str, content_hash: str) -> str:
    """Blob name of a snapshot body: ``tenants/<tenant>/sha256/<hash>.json``.

    Identical bodies of one tenant are stored once; tenants never share a blob, so a tenant's data can be
    purged (offboarding, retention) without counting references across tenants.
    """
    return f"tenants/{tenant_id}/sha256/{content_hash}.json"


class SnapshotRecord(ApiModel):
    """Metadata of one captured policy; the body lives in Blob Storage under ``blob_name``."""

    tenant_id: str
    snapshot_id: str
    policy_type: str
    source_id: str
    display_name: str = ""
    captured_at: datetime
    content_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(ge=0)
    blob_name: str
    complete: bool = True
    settings_count: int = 0
    assignments_count: int = 0
    run_id: str | None = None
