"""In-memory :class:`shared.ports.BackupSetRepository` for unit tests, ordered like Table Storage."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping, Sequence

from shared.domain import BackupSet, BackupSetBatch, BackupSetItem, Page, RunCounts
from shared.domain.backupsets import BackupSetChange
from shared.domain.batches import TRANSACTION_ROWS, SetItemOutcome, batch_count, chunked, counts_of_batches
from shared.domain.schedules import BackupSchedule
from shared.errors import ConcurrentUpdate
from shared.ports import Stored
from shared.storage.keys import validate_key
from shared.storage.memory import _page
from shared.storage.table_backupsets import CHANGE_LINES_PER_ROW, batch_row_key, item_row_key, set_row_key

__all__ = ["InMemoryBackupSetRepository"]


class InMemoryBackupSetRepository:
    """Rows by ``(tenant, row key)``, with the Table adapter's row keys (so both order alike)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sets: dict[tuple[str, str], BackupSet] = {}
        # Items as planned or replaced, and the outcomes settled over them (like the adapter's two parts).
        self._items: dict[tuple[str, str], BackupSetItem] = {}
        self._outcomes: dict[tuple[str, str], SetItemOutcome] = {}
        self._batches: dict[tuple[str, str], BackupSetBatch] = {}
        self._changes: dict[tuple[str, str], dict[str, BackupSetChange]] = {}  # by (tenant, set), item
        self._schedules: dict[str, Stored[BackupSchedule]] = {}
        # Entity-group transactions made, so tests can count storage writes the way the adapter makes them.
        self.transactions = 0

    def put_set(self, backup_set: BackupSet) -> None:
        """Create or replace a set."""
        row_key = set_row_key(backup_set.id)
        if row_key is None:
            raise ValueError("not a backup set id")
        with self._lock:
            self._sets[(validate_key(backup_set.tenant_id, what="tenant id"), row_key)] = backup_set

    def create_set(self, backup_set: BackupSet) -> bool:
        """Create a set unless its row exists; ``False`` (nothing written) when it does."""
        row_key = set_row_key(backup_set.id)
        if row_key is None:
            raise ValueError("not a backup set id")
        key = (validate_key(backup_set.tenant_id, what="tenant id"), row_key)
        with self._lock:
            if key in self._sets:
                return False
            self._sets[key] = backup_set
        return True

    def get_set(self, *, tenant_id: str, backup_set_id: str) -> BackupSet | None:
        """Return a set, or ``None``."""
        row_key = set_row_key(backup_set_id)
        with self._lock:
            return self._sets.get((tenant_id, row_key)) if row_key is not None else None

    def list_sets(self, *, tenant_id: str, top: int = 50,
                  continuation: str | None = None) -> Page[BackupSet]:
        """Return a tenant's sets newest first."""
        with self._lock:
            rows = sorted((key, value) for (tenant, key), value in self._sets.items() if tenant == tenant_id)
        return _page(rows, top, continuation)

    def put_items(self, items: Sequence[BackupSetItem]) -> None:
        """Create or replace items (all or nothing per 100 rows, like a transaction)."""
        for chunk in chunked(list(items), TRANSACTION_ROWS):
            keyed = {(validate_key(i.tenant_id, what="tenant id"),
                      item_row_key(i.backup_set_id, i.item_id)): i for i in chunk}
            self._check_one_partition(keyed)
            with self._lock:
                self._items.update(keyed)
                for key in keyed:
                    self._outcomes.pop(key, None)
                self.transactions += 1

    def create_items(self, items: Sequence[BackupSetItem]) -> None:
        """Create the items that do not exist yet; rows already there (and their outcomes) stay."""
        for chunk in chunked(list(items), TRANSACTION_ROWS):
            keyed = {(validate_key(i.tenant_id, what="tenant id"),
                      item_row_key(i.backup_set_id, i.item_id)): i for i in chunk}
            self._check_one_partition(keyed)
            with self._lock:
                for key, item in keyed.items():
                    self._items.setdefault(key, item)
                self.transactions += 1

    def settle_item(self, *, tenant_id: str, backup_set_id: str, item_id: str,
                    outcome: SetItemOutcome) -> bool:
        """Write an item's outcome over its planned row (one transaction); ``False`` if never planned."""
        key = (validate_key(tenant_id, what="tenant id"), item_row_key(backup_set_id, item_id))
        with self._lock:
            if key not in self._items:
                return False
            self._outcomes[key] = outcome
            self.transactions += 1
        return True

    def settle_items(self, *, tenant_id: str, backup_set_id: str,
                     outcomes: Mapping[str, SetItemOutcome]) -> list[str]:
        """Write planned items' outcomes, one transaction per 100, or one by one when one was never planned.

        Returns the item ids never planned (nothing written for them), like the adapter.
        """
        partition = validate_key(tenant_id, what="tenant id")
        keys = {item_id: (partition, item_row_key(backup_set_id, item_id)) for item_id in outcomes}
        stray: list[str] = []
        for chunk in chunked(list(outcomes), TRANSACTION_ROWS):
            if len(chunk) == 1:
                # One row: one request (the adapter's plain merge), nothing to fall back to.
                if not self.settle_item(tenant_id=tenant_id, backup_set_id=backup_set_id, item_id=chunk[0],
                                        outcome=outcomes[chunk[0]]):
                    stray.append(chunk[0])
                continue
            with self._lock:
                # A refused transaction is a request too.
                self.transactions += 1
                if all(keys[item_id] in self._items for item_id in chunk):
                    self._outcomes.update((keys[item_id], outcomes[item_id]) for item_id in chunk)
                    continue
            stray.extend(item_id for item_id in chunk
                         if not self.settle_item(tenant_id=tenant_id, backup_set_id=backup_set_id,
                                                 item_id=item_id, outcome=outcomes[item_id]))
        return stray

    def get_item(self, *, tenant_id: str, backup_set_id: str, item_id: str) -> BackupSetItem | None:
        """Return one item, or ``None``."""
        with self._lock:
            return self._item((tenant_id, item_row_key(backup_set_id, item_id)))

    def list_items(self, *, tenant_id: str, backup_set_id: str, status: str | None = None, top: int = 100,
                   continuation: str | None = None) -> Page[BackupSetItem]:
        """Return a set's items ordered by item id."""
        validate_key(backup_set_id, what="backup set id")
        with self._lock:
            mine = [(key, self._item(key)) for key in self._items if key[0] == tenant_id]
            rows = sorted((row_key, item) for (_, row_key), item in mine
                          if item is not None and item.backup_set_id == backup_set_id
                          and (status is None or item.status == status))
        return _page(rows, top, continuation)

    def put_batches(self, batches: Sequence[BackupSetBatch]) -> None:
        """Create or replace batches (all or nothing per 100 rows)."""
        for chunk in chunked(list(batches), TRANSACTION_ROWS):
            keyed = {(validate_key(b.tenant_id, what="tenant id"),
                      batch_row_key(b.backup_set_id, b.batch, b.run_id)): b for b in chunk}
            self._check_one_partition(keyed)
            with self._lock:
                self._batches.update(keyed)
                self.transactions += 1

    def create_batches(self, batches: Sequence[BackupSetBatch]) -> None:
        """Create the batches that do not exist yet; rows already there (and their summaries) stay."""
        for chunk in chunked(list(batches), TRANSACTION_ROWS):
            keyed = {(validate_key(b.tenant_id, what="tenant id"),
                      batch_row_key(b.backup_set_id, b.batch, b.run_id)): b for b in chunk}
            self._check_one_partition(keyed)
            with self._lock:
                for key, batch in keyed.items():
                    self._batches.setdefault(key, batch)
                self.transactions += 1

    def get_batch(self, *, tenant_id: str, backup_set_id: str, batch: int,
                  run_id: str | None = None) -> BackupSetBatch | None:
        """Return one batch (of the run ``run_id`` that added items, when given), or ``None``."""
        with self._lock:
            return self._batches.get((tenant_id, batch_row_key(backup_set_id, batch, run_id)))

    def batch_counts(self, *, tenant_id: str, backup_set_id: str, run_id: str | None = None) -> RunCounts:
        """The summed summaries of a run's finished batches."""
        with self._lock:
            return counts_of_batches(
                (b.succeeded, b.failed, b.skipped) for (tenant, _), b in self._batches.items()
                if tenant == tenant_id and b.backup_set_id == backup_set_id and b.run_id == run_id
                and b.finished)

    def replace_changes(self, *, tenant_id: str, backup_set_id: str,
                        changes: Sequence[BackupSetChange]) -> None:
        """Store a set's changes, replacing what it held (one transaction per 10 pages of 100 lines)."""
        validate_key(tenant_id, what="tenant id")
        validate_key(backup_set_id, what="backup set id")
        if any(c.tenant_id != tenant_id or c.backup_set_id != backup_set_id for c in changes):
            raise ValueError("the changes of one set are replaced together")
        with self._lock:
            self._changes[(tenant_id, backup_set_id)] = {c.item_id: c for c in changes}
            self.transactions += batch_count(batch_count(len(changes), CHANGE_LINES_PER_ROW), 10)

    def list_changes(self, *, tenant_id: str, backup_set_id: str, top: int = 100,
                     continuation: str | None = None) -> Page[BackupSetChange]:
        """Return a set's changes ordered by item id."""
        validate_key(backup_set_id, what="backup set id")
        with self._lock:
            rows = sorted(self._changes.get((tenant_id, backup_set_id), {}).items())
        return _page(rows, top, continuation)

    def _item(self, key: tuple[str, str]) -> BackupSetItem | None:
        planned = self._items.get(key)
        outcome = self._outcomes.get(key)
        return outcome.applied_to(planned) if planned is not None and outcome is not None else planned

    @staticmethod
    def _check_one_partition(keyed: Mapping[tuple[str, str], object]) -> None:
        if len({tenant for tenant, _ in keyed}) > 1:
            raise ValueError("one transaction writes one tenant's partition")

    # --------------------------------------------------------------------- retention and schedules

    def delete_set(self, *, tenant_id: str, backup_set_id: str) -> None:
        """Delete a set's items, batches and changes, then the set row."""
        row_key = set_row_key(backup_set_id)
        if row_key is None:
            raise ValueError("not a backup set id")
        with self._lock:
            for rows in (self._items, self._outcomes, self._batches):
                # Row keys are ``<kind>|<set id>|...``, as in the Table adapter.
                for key in [k for k in rows if k[0] == tenant_id and k[1].split("|")[1] == backup_set_id]:
                    del rows[key]
            self._changes.pop((tenant_id, backup_set_id), None)
            self._sets.pop((tenant_id, row_key), None)

    def get_schedule(self, tenant_id: str) -> Stored[BackupSchedule] | None:
        """Return the tenant's schedule with its ETag, or ``None``."""
        with self._lock:
            return self._schedules.get(tenant_id)

    def put_schedule(self, schedule: BackupSchedule, *, etag: str | None = None) -> str:
        """Create or replace the schedule (only if unchanged since read when ``etag`` is given)."""
        tenant_id = validate_key(schedule.tenant_id, what="tenant id")
        with self._lock:
            held = self._schedules.get(tenant_id)
            if etag is not None and (held is None or held.etag != etag):
                raise ConcurrentUpdate("the schedule changed meanwhile")
            stored = Stored(schedule, uuid.uuid4().hex)
            self._schedules[tenant_id] = stored
            return stored.etag

    def delete_schedule(self, tenant_id: str) -> None:
        """Delete the tenant's schedule, if any."""
        with self._lock:
            self._schedules.pop(tenant_id, None)
