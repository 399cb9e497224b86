"""A small, bounded, thread-safe cache whose entries expire (validated tokens, grants)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["ExpiringCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ExpiringCache(Generic[K, V]):
    """Entries that expire at a time of their own; the least recently used go first when full.

    Removing an entry also advances :attr:`generation`. A caller that reads storage to fill the cache takes
    the generation before its read and passes it to :meth:`put`, which then drops the value if anything was
    removed meanwhile: a read that started before a revoke can never put the revoked value back.

    Args:
        max_entries: the bound; the least recently used entry is evicted beyond it.
        clock: the current time in seconds (the same scale as ``expires_at``).
    """

    def __init__(self, *, max_entries: int, clock: Callable[[], float]) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._generation = 0
        self._lock = threading.Lock()

    @property
    def generation(self) -> int:
        """Advances on every removal (see :meth:`put`)."""
        with self._lock:
            return self._generation

    def get(self, key: K) -> V | None:
        """Return the value of a live entry, or ``None`` (an expired entry is dropped)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires_at, value = entry
            if self._clock() >= expires_at:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V, *, expires_at: float, generation: int | None = None) -> None:
        """Keep ``value`` until ``expires_at``, unless it is already past or ``generation`` is stale."""
        with self._lock:
            if generation is not None and generation != self._generation:
                return
            if self._clock() >= expires_at:
                return
            self._entries[key] = (expires_at, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def discard(self, key: K) -> None:
        """Forget ``key`` now (present or not) and advance the generation."""
        with self._lock:
            self._entries.pop(key, None)
            self._generation += 1

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
