"""Table Storage adapter of :class:`shared.ports.BackupSetRepository`.

One table; the managed tenant is the partition, so a set's items and batches can be written in
entity-group transactions of up to 100 rows::

    set|<inverted set ulid>         a set (newest first in key order; JSON body)
    item|<set id>|<item id>         one policy of a set (Status for filters; JSON body as planned or
                                    replaced, and the capture's outcome merged over it in ``Outcome``)
    batch|<set id>|<batch number>   a batch's members and, once it ran, its summary (JSON body)
    batch|<set id>|<run id>|<number>  the same for a batch of a run that adds items to the set
    change|<set id>|<item id>       one line of the set's changes against its baseline (JSON body)
    schedule                        the tenant's backup schedule and retention (JSON body)
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableEntity, TableTransactionError, UpdateMode

from shared.domain import BackupSet, BackupSetBatch, BackupSetItem, Page, RunCounts, invert_sortable
from shared.domain.backupsets import BACKUP_SET_ID_PREFIX, BackupSetChange
from shared.domain.batches import TRANSACTION_ROWS, SetItemOutcome, chunked, counts_of_batches
from shared.domain.schedules import BackupSchedule
from shared.errors import ConcurrentUpdate, InvalidRequest
from shared.ports import Stored
from shared.storage.keys import decode_token, encode_token, validate_key
from shared.storage.rows import prefix_range
from shared.storage.table_batch import delete_rows, submit_transaction
from shared.storage.table_common import body_json, etag_of, get_entity, pack_body, page_query

__all__ = [
    "CHANGE_LINES_PER_ROW", "TableBackupSetRepository", "batch_row_key", "change_row_key", "item_row_key",
    "set_row_key",
]

SET_PREFIX = "set|"
ITEM_PREFIX = "item|"
BATCH_PREFIX = "batch|"
CHANGE_PREFIX = "change|"
SCHEDULE_ROW = "schedule"
_RANGE_FILTER = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
# An item's capture outcome, merged onto its planned row; a replace of the whole item drops it.
OUTCOME_PROPERTY = "Outcome"


def set_row_key(backup_set_id: str) -> str | None:
    """RowKey of a set (inverted id: ascending keys list the newest first), or ``None`` for a foreign id."""
    try:
        return SET_PREFIX + invert_sortable(backup_set_id.removeprefix(BACKUP_SET_ID_PREFIX))
    except ValueError:
        return None


def item_row_key(backup_set_id: str, item_id: str) -> str:
    """RowKey of one item of a set."""
    return f"{ITEM_PREFIX}{validate_key(backup_set_id, what='backup set id')}|" \
           f"{validate_key(item_id, what='item id')}"


def batch_row_key(backup_set_id: str, batch: int, run_id: str | None = None) -> str:
    """RowKey of one batch of a set (zero-padded, so batches sort by number).

    The batches of the run that made the set have no run in their key; those of a run that adds items to
    the set (``run_id``) are kept apart by it.
    """
    run = f"{validate_key(run_id, what='run id')}|" if run_id is not None else ""
    return f"{BATCH_PREFIX}{validate_key(backup_set_id, what='backup set id')}|{run}{batch:06d}"


def change_row_key(backup_set_id: str, page: int) -> str:
    """RowKey of one page of a set's changes (zero-padded, so the pages sort in their order)."""
    return f"{CHANGE_PREFIX}{validate_key(backup_set_id, what='backup set id')}|{page:06d}"


# A set's changes are written once, by its finish, and read in item order: they are kept as pages of lines
# (one row per 100 lines) instead of one row per line. On Azurite each operation of a transaction costs time
# in proportion to the rows already in the partition, and a tenant's partition holds its sets' items:
# 5,034 change rows took 14.5 s there, against well under a second as 51 pages (docs/architecture.md,
# "Multi-item runs (backup sets)"). Pages are written 10 to a transaction, which keeps a transaction well
# under the service's 4 MB even with long display names.
CHANGE_LINES_PER_ROW = 100
_CHANGE_ROWS_PER_TRANSACTION = 10


def _set_from(entity: TableEntity) -> BackupSet:
    return BackupSet.model_validate(body_json(entity))


def _item_from(entity: TableEntity) -> BackupSetItem:
    item = BackupSetItem.model_validate(body_json(entity))
    outcome = entity.get(OUTCOME_PROPERTY)
    return SetItemOutcome.model_validate_json(outcome).applied_to(item) if outcome else item


def _item_entity(item: BackupSetItem) -> dict[str, Any]:
    return {"PartitionKey": validate_key(item.tenant_id, what="tenant id"),
            "RowKey": item_row_key(item.backup_set_id, item.item_id), "Status": item.status,
            **pack_body(item.model_dump_json())}


def _outcome_entity(partition: str, backup_set_id: str, item_id: str,
                    outcome: SetItemOutcome) -> dict[str, Any]:
    """The properties a settled outcome merges onto its planned item row (no body: the plan's stays)."""
    return {"PartitionKey": partition, "RowKey": item_row_key(backup_set_id, item_id),
            "Status": outcome.status, OUTCOME_PROPERTY: outcome.model_dump_json()}


# A batch's summary, also kept in columns of its own so a run's counts read them without the members.
_SUMMARY_COLUMNS = ("Finished", "Succeeded", "Failed", "Skipped")


def _batch_entity(batch: BackupSetBatch) -> dict[str, Any]:
    return {"PartitionKey": validate_key(batch.tenant_id, what="tenant id"),
            "RowKey": batch_row_key(batch.backup_set_id, batch.batch, batch.run_id),
            "Finished": batch.finished, "Succeeded": batch.succeeded, "Failed": batch.failed,
            "Skipped": batch.skipped, **pack_body(batch.model_dump_json())}


def _change_prefix(backup_set_id: str) -> str:
    return f"{CHANGE_PREFIX}{validate_key(backup_set_id, what='backup set id')}|"


def _batch_range(backup_set_id: str, run_id: str | None) -> dict[str, str]:
    """``lo``/``hi`` of the batch row keys of one run of a set (see :func:`batch_row_key`)."""
    prefix = batch_row_key(backup_set_id, 0, run_id)[:-6]
    if run_id is not None:
        return prefix_range(prefix)
    # The set's own capture: keys that go on with a digit (an addition's go on with its run id).
    return {"lo": prefix + "0", "hi": prefix + chr(ord("9") + 1)}


class TableBackupSetRepository:
    """Backup sets, their items and batches; partition the managed tenant."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    def put_set(self, backup_set: BackupSet) -> None:
        """Create or replace a set."""
        self._table.upsert_entity(self._set_entity(backup_set), mode=UpdateMode.REPLACE)

    @staticmethod
    def _set_entity(backup_set: BackupSet) -> dict[str, Any]:
        row_key = set_row_key(backup_set.id)
        if row_key is None:
            raise ValueError("not a backup set id")
        return {"PartitionKey": validate_key(backup_set.tenant_id, what="tenant id"), "RowKey": row_key,
                "Status": backup_set.status, **pack_body(backup_set.model_dump_json())}

    def create_set(self, backup_set: BackupSet) -> bool:
        """Create a set unless its row exists; ``False`` (nothing written) when it does."""
        try:
            self._table.create_entity(self._set_entity(backup_set))
        except ResourceExistsError:
            return False
        return True

    def get_set(self, *, tenant_id: str, backup_set_id: str) -> BackupSet | None:
        """Return a set, or ``None``."""
        row_key = set_row_key(backup_set_id)
        if row_key is None:
            return None
        entity = get_entity(self._table, validate_key(tenant_id, what="tenant id"), row_key)
        return _set_from(entity) if entity is not None else None

    def list_sets(self, *, tenant_id: str, top: int = 50,
                  continuation: str | None = None) -> Page[BackupSet]:
        """Return a tenant's sets newest first."""
        params = {"pk": validate_key(tenant_id, what="tenant id"), **prefix_range(SET_PREFIX)}
        return page_query(self._table, query_filter=_RANGE_FILTER, parameters=params, top=top,
                          continuation=continuation, convert=_set_from)

    def put_items(self, items: Sequence[BackupSetItem]) -> None:
        """Create or replace items, one entity-group transaction per 100 rows of a tenant."""
        for chunk in chunked(list(items), TRANSACTION_ROWS):
            self._submit([(item.tenant_id, _item_entity(item)) for item in chunk])

    def create_items(self, items: Sequence[BackupSetItem]) -> None:
        """Create the items that do not exist yet; rows already there (and their outcomes) stay."""
        for chunk in chunked(list(items), TRANSACTION_ROWS):
            self._create([(item.tenant_id, _item_entity(item)) for item in chunk])

    def settle_item(self, *, tenant_id: str, backup_set_id: str, item_id: str,
                    outcome: SetItemOutcome) -> bool:
        """Merge an item's outcome onto its planned row: one request, no read.

        A merge with ``If-Match: *`` changes only ``Status`` and ``Outcome`` and fails when the row does not
        exist, so the planned body stays and an item that was never planned is not created.
        """
        try:
            self._table.update_entity(
                _outcome_entity(validate_key(tenant_id, what="tenant id"), backup_set_id, item_id, outcome),
                mode=UpdateMode.MERGE)
        except ResourceNotFoundError:
            return False
        return True

    def settle_items(self, *, tenant_id: str, backup_set_id: str,
                     outcomes: Mapping[str, SetItemOutcome]) -> list[str]:
        """Merge items' outcomes onto their planned rows, 100 per entity-group transaction, no read.

        Each operation is :meth:`settle_item`'s merge with ``If-Match: *``: a row that does not exist fails
        the whole transaction (nothing written), so that chunk is settled one item at a time instead and
        only the items that were never planned are left out.
        """
        partition = validate_key(tenant_id, what="tenant id")
        stray: list[str] = []
        for chunk in chunked(list(outcomes), TRANSACTION_ROWS):
            if len(chunk) == 1:
                # One row: a plain request, which costs less to build than a transaction of one.
                if not self.settle_item(tenant_id=tenant_id, backup_set_id=backup_set_id, item_id=chunk[0],
                                        outcome=outcomes[chunk[0]]):
                    stray.append(chunk[0])
                continue
            try:
                submit_transaction(self._table, [
                    ("update", _outcome_entity(partition, backup_set_id, item_id, outcomes[item_id]),
                     {"mode": UpdateMode.MERGE}) for item_id in chunk])
            except TableTransactionError as exc:
                if exc.status_code != 404:
                    raise
                stray.extend(item_id for item_id in chunk
                             if not self.settle_item(tenant_id=tenant_id, backup_set_id=backup_set_id,
                                                     item_id=item_id, outcome=outcomes[item_id]))
        return stray

    def get_item(self, *, tenant_id: str, backup_set_id: str, item_id: str) -> BackupSetItem | None:
        """Return one item, or ``None``."""
        entity = get_entity(self._table, validate_key(tenant_id, what="tenant id"),
                            item_row_key(backup_set_id, item_id))
        return _item_from(entity) if entity is not None else None

    def list_items(self, *, tenant_id: str, backup_set_id: str, status: str | None = None, top: int = 100,
                   continuation: str | None = None) -> Page[BackupSetItem]:
        """Return a set's items ordered by item id."""
        prefix = f"{ITEM_PREFIX}{validate_key(backup_set_id, what='backup set id')}|"
        query = _RANGE_FILTER
        params: dict[str, Any] = {"pk": validate_key(tenant_id, what="tenant id"), **prefix_range(prefix)}
        if status is not None:
            query += " and Status eq @status"
            params["status"] = status
        return page_query(self._table, query_filter=query, parameters=params, top=top,
                          continuation=continuation, convert=_item_from)

    def put_batches(self, batches: Sequence[BackupSetBatch]) -> None:
        """Create or replace batches, one entity-group transaction per 100 rows of a tenant."""
        for chunk in chunked(list(batches), TRANSACTION_ROWS):
            self._submit([(batch.tenant_id, _batch_entity(batch)) for batch in chunk])

    def create_batches(self, batches: Sequence[BackupSetBatch]) -> None:
        """Create the batches that do not exist yet; rows already there (and their summaries) stay."""
        for chunk in chunked(list(batches), TRANSACTION_ROWS):
            self._create([(batch.tenant_id, _batch_entity(batch)) for batch in chunk])

    def get_batch(self, *, tenant_id: str, backup_set_id: str, batch: int,
                  run_id: str | None = None) -> BackupSetBatch | None:
        """Return one batch (of the run ``run_id`` that added items, when given), or ``None``."""
        entity = get_entity(self._table, validate_key(tenant_id, what="tenant id"),
                            batch_row_key(backup_set_id, batch, run_id))
        return BackupSetBatch.model_validate(body_json(entity)) if entity is not None else None

    def batch_counts(self, *, tenant_id: str, backup_set_id: str, run_id: str | None = None) -> RunCounts:
        """The summed summaries of a run's finished batches (their summary columns only)."""
        rows = self._table.query_entities(
            _RANGE_FILTER, parameters={"pk": validate_key(tenant_id, what="tenant id"),
                                       **_batch_range(backup_set_id, run_id)},
            select=list(_SUMMARY_COLUMNS), results_per_page=1000)
        return counts_of_batches(
            (int(row.get("Succeeded") or 0), int(row.get("Failed") or 0), int(row.get("Skipped") or 0))
            for row in rows if row.get("Finished") is True)

    def replace_changes(self, *, tenant_id: str, backup_set_id: str,
                        changes: Sequence[BackupSetChange]) -> None:
        """Store a set's changes, replacing what it held: pages of 100 lines in item order."""
        partition = validate_key(tenant_id, what="tenant id")
        lines = sorted(changes, key=lambda change: change.item_id)
        if any(c.tenant_id != tenant_id or c.backup_set_id != backup_set_id for c in lines):
            raise ValueError("the changes of one set are replaced together")
        pages = [{"PartitionKey": partition, "RowKey": change_row_key(backup_set_id, number),
                  **pack_body(json.dumps([line.model_dump(mode="json") for line in page],
                                         separators=(",", ":"), ensure_ascii=False))}
                 for number, page in enumerate(chunked(lines, CHANGE_LINES_PER_ROW))]
        for rows in chunked(pages, _CHANGE_ROWS_PER_TRANSACTION):
            self._submit([(partition, row) for row in rows])
        # Pages beyond the new last one (a set compared again holds fewer lines) go.
        stale = self._table.query_entities(
            _RANGE_FILTER, parameters={"pk": partition, "lo": change_row_key(backup_set_id, len(pages)),
                                       "hi": prefix_range(_change_prefix(backup_set_id))["hi"]},
            select=["RowKey"])
        delete_rows(self._table, partition, [str(row["RowKey"]) for row in stale])

    def list_changes(self, *, tenant_id: str, backup_set_id: str, top: int = 100,
                     continuation: str | None = None) -> Page[BackupSetChange]:
        """Return a set's changes ordered by item id (read page row by page row)."""
        if not 1 <= top <= 1000:
            raise InvalidRequest("top must be between 1 and 1000")
        prefix = _change_prefix(backup_set_id)
        start_row, skip = prefix, 0
        if continuation:
            position = decode_token(continuation)
            if not (isinstance(position, list) and len(position) == 2 and isinstance(position[0], str)
                    and position[0].startswith(prefix) and isinstance(position[1], int) and position[1] >= 0):
                raise InvalidRequest("continuation token is not valid")
            start_row, skip = position
        rows = iter(self._table.query_entities(
            _RANGE_FILTER, parameters={"pk": validate_key(tenant_id, what="tenant id"), "lo": start_row,
                                       "hi": prefix_range(prefix)["hi"]},
            results_per_page=max(1, -(-(top + skip) // CHANGE_LINES_PER_ROW))))
        found: list[BackupSetChange] = []
        for entity in rows:
            body = body_json(entity)
            # A row written before pages were kept holds one line.
            lines = body[skip:] if isinstance(body, list) else [body][skip:]
            room = top - len(found)
            if len(lines) > room:
                found.extend(BackupSetChange.model_validate(line) for line in lines[:room])
                return Page[BackupSetChange](items=found,
                                             continuation=encode_token([str(entity["RowKey"]), skip + room]))
            found.extend(BackupSetChange.model_validate(line) for line in lines)
            skip = 0
            if len(found) == top:
                following = next(rows, None)
                return Page[BackupSetChange](items=found, continuation=encode_token(
                    [str(following["RowKey"]), 0]) if following is not None else None)
        return Page[BackupSetChange](items=found, continuation=None)

    def _submit(self, rows: list[tuple[str, dict[str, Any]]]) -> None:
        if not rows:
            return
        if len({tenant for tenant, _ in rows}) != 1:
            raise ValueError("one transaction writes one tenant's partition")
        submit_transaction(self._table, [("upsert", entity, {"mode": UpdateMode.REPLACE})
                                         for _, entity in rows])

    def _create(self, rows: list[tuple[str, dict[str, Any]]]) -> None:
        """Create rows in one transaction, or one by one when some exist (a repeated plan): never replace."""
        if not rows:
            return
        if len({tenant for tenant, _ in rows}) != 1:
            raise ValueError("one transaction writes one tenant's partition")
        try:
            submit_transaction(self._table, [("create", entity) for _, entity in rows])
        except TableTransactionError as exc:
            if exc.status_code != 409:
                raise
            for _, entity in rows:
                with contextlib.suppress(ResourceExistsError):
                    self._table.create_entity(entity)

    # --------------------------------------------------------------------- retention and schedules

    def delete_set(self, *, tenant_id: str, backup_set_id: str) -> None:
        """Delete a set's items, batches and changes (100 rows per transaction), then the set row."""
        partition = validate_key(tenant_id, what="tenant id")
        row_key = set_row_key(backup_set_id)
        if row_key is None:
            raise ValueError("not a backup set id")
        set_id = validate_key(backup_set_id, what="backup set id")
        for prefix in (ITEM_PREFIX, BATCH_PREFIX, CHANGE_PREFIX):
            rows = self._table.query_entities(
                _RANGE_FILTER, parameters={"pk": partition, **prefix_range(f"{prefix}{set_id}|")},
                select=["PartitionKey", "RowKey"])
            delete_rows(self._table, partition, [str(row["RowKey"]) for row in rows])
        self._table.delete_entity(partition_key=partition, row_key=row_key)  # a missing row is not an error

    def get_schedule(self, tenant_id: str) -> Stored[BackupSchedule] | None:
        """Return the tenant's schedule with its ETag, or ``None``."""
        entity = get_entity(self._table, validate_key(tenant_id, what="tenant id"), SCHEDULE_ROW)
        if entity is None:
            return None
        return Stored(BackupSchedule.model_validate(body_json(entity)), etag_of(entity))

    def put_schedule(self, schedule: BackupSchedule, *, etag: str | None = None) -> str:
        """Create or replace the schedule (only if unchanged since read when ``etag`` is given)."""
        entity = {"PartitionKey": validate_key(schedule.tenant_id, what="tenant id"), "RowKey": SCHEDULE_ROW,
                  **pack_body(schedule.model_dump_json())}
        try:
            if etag is None:
                result = self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)
            else:
                result = self._table.update_entity(entity, mode=UpdateMode.REPLACE, etag=etag,
                                                   match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ConcurrentUpdate("the schedule changed meanwhile") from exc
        return str(result.get("etag", ""))

    def delete_schedule(self, tenant_id: str) -> None:
        """Delete the tenant's schedule, if any (the SDK ignores a row that is not there)."""
        self._table.delete_entity(partition_key=validate_key(tenant_id, what="tenant id"),
                                  row_key=SCHEDULE_ROW)
