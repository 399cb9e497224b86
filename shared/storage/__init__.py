"""Storage adapters: Table and Blob Storage implementations of :mod:`shared.ports`, and in-memory fakes."""

from __future__ import annotations

from shared.storage.factory import StorageFactory

__all__ = ["StorageFactory"]
