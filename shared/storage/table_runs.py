"""Table Storage adapter of :class:`shared.ports.RunRepository`.

One table; the tenant is the partition, so a run and its claim rows live in one partition and can be
written by one entity-group transaction::

    run|<inverted run id>     the run (Kind, Status, FinishedAt for filters; JSON body)
    active|<derived key>      the run currently holding a server-derived key
    idem|<scope>              a client Idempotency-Key (fingerprint, run id, expiry)
    lock|<kind>               an exclusive per-tenant lock (restore.execute)
    outbox|<run id>           what a claimed run still owes: its launch and its queued event (OutboxEntry)
    outbox|<run id>|<slot>    a later transition's event, written with the status change (slot
                              ``<order>-<status>``, so a run's rows sort in the order of its events)
"""

from __future__ import annotations

import builtins
import itertools
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableEntity, TableTransactionError, UpdateMode

from shared.domain import RunKind, RunRecord, RunStatus
from shared.domain.base import Page
from shared.errors import ConcurrentUpdate
from shared.ports import (
    ActiveEntry,
    ClaimConflict,
    ClaimReceipt,
    IdempotencyEntry,
    LockEntry,
    OutboxEntry,
    RunClaim,
    Stored,
)
from shared.storage.keys import validate_key
from shared.storage.rows import (
    ACTIVE_PREFIX,
    IDEMPOTENCY_PREFIX,
    LOCK_PREFIX,
    OUTBOX_PREFIX,
    RUN_PREFIX,
    prefix_range,
    run_row_key,
)
from shared.storage.table_batch import InsertConflict, insert_batch, submit_transaction
from shared.storage.table_common import body_json, etag_of, get_entity, pack_body, page_query

__all__ = ["TableRunRepository"]

_RUN_RANGE = prefix_range(RUN_PREFIX)
_OUTBOX_RANGE = prefix_range(OUTBOX_PREFIX)
_ACTIVE_RANGE = prefix_range(ACTIVE_PREFIX)
_RANGE_FILTER = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
# One tenant's partition at a time: a RowKey range without the PartitionKey would scan the whole table
# (see docs/architecture.md, "The launcher", for the cost of each).
_DUE_OUTBOX_FILTER = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi and DueAt le @due"


def _run_entity(run: RunRecord) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": run.tenant_id, "RowKey": run_row_key(run.id), "RunId": run.id,
        "Kind": str(run.kind), "Status": str(run.status),
        **pack_body(run.model_dump_json()),
    }
    # Only set values are written: "eq null" filters behave differently on Azurite and Azure.
    if run.finished_at is not None:
        entity["FinishedAt"] = run.finished_at
    return entity


def _run_from(entity: TableEntity) -> RunRecord:
    return RunRecord.model_validate(body_json(entity))


def _outbox_key(entry: OutboxEntry) -> str:
    return OUTBOX_PREFIX + entry.run_id + (f"|{entry.slot}" if entry.slot else "")


def _outbox_entity(entry: OutboxEntry) -> dict[str, Any]:
    return {"PartitionKey": entry.tenant_id, "RowKey": _outbox_key(entry), "RunId": entry.run_id,
            "Slot": entry.slot,
            "Kind": str(entry.kind), "CreatedAt": entry.created_at, "DueAt": entry.due_at,
            "Attempts": entry.attempts, "Launch": entry.launch,
            "Events": ",".join(str(e) for e in entry.events)}


def _outbox_from(entity: TableEntity) -> Stored[OutboxEntry]:
    events = str(entity.get("Events", ""))
    entry = OutboxEntry(
        tenant_id=str(entity["PartitionKey"]), run_id=str(entity["RunId"]), kind=RunKind(entity["Kind"]),
        created_at=entity["CreatedAt"], due_at=entity["DueAt"], attempts=int(entity.get("Attempts", 0)),
        launch=bool(entity.get("Launch", True)),
        events=tuple(RunStatus(e) for e in events.split(",") if e), slot=str(entity.get("Slot", "")))
    return Stored(entry, etag_of(entity))


def _conditional(etag: str) -> dict[str, Any]:
    return {"etag": etag, "match_condition": MatchConditions.IfNotModified}


class TableRunRepository:
    """Runs and claim rows in one table, partitioned by managed tenant."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    def claim(self, claim: RunClaim) -> ClaimReceipt:
        """Create every row of ``claim`` in one entity-group transaction (all or nothing)."""
        pk = validate_key(claim.tenant_id, what="tenant id")
        ops: list[tuple[str, dict[str, Any]]] = []
        if claim.run is not None:
            validate_key(claim.run.id, what="run id")
            ops.append(("create", _run_entity(claim.run)))
        if claim.active is not None:
            ops.append(("create", {"PartitionKey": pk,
                                   "RowKey": ACTIVE_PREFIX + claim.active.derived_key,
                                   "RunId": claim.active.run_id}))
        if claim.idempotency is not None:
            ops.append(("create", {"PartitionKey": pk,
                                   "RowKey": IDEMPOTENCY_PREFIX + claim.idempotency.scope,
                                   "RunId": claim.idempotency.run_id,
                                   "Fingerprint": claim.idempotency.fingerprint,
                                   "ExpiresAt": claim.idempotency.expires_at}))
        if claim.lock is not None:
            ops.append(("create", {"PartitionKey": pk, "RowKey": LOCK_PREFIX + claim.lock.name,
                                   "RunId": claim.lock.run_id,
                                   "DerivedKey": claim.lock.derived_key}))
        if claim.outbox is not None:
            if claim.outbox.tenant_id != pk:
                raise ValueError("an outbox entry belongs to the partition of its claim")
            validate_key(claim.outbox.run_id, what="run id")
            ops.append(("create", _outbox_entity(claim.outbox)))
        try:
            # Only inserts: written without the SDK's multipart code, the start path's main CPU cost.
            etags = insert_batch(self._table, [entity for _, entity in ops])
        except InsertConflict as exc:
            raise ClaimConflict(f"claim row exists (operation {exc.index})") from exc
        except TableTransactionError as exc:
            if exc.status_code == 409:
                raise ClaimConflict(f"claim row exists (operation {exc.index})") from exc
            raise
        # ETags come in the order of the operations: the run first, the outbox last.
        return ClaimReceipt(
            run_etag=etags[0] if claim.run is not None else None,
            outbox_etag=etags[-1] if claim.outbox is not None else None)

    def get(self, *, tenant_id: str, run_id: str) -> Stored[RunRecord] | None:
        """Return a run with its ETag, or ``None``."""
        validate_key(tenant_id, what="tenant id")
        validate_key(run_id, what="run id")
        try:
            row_key = run_row_key(run_id)
        except ValueError:
            return None  # not one of our ids, so certainly not stored
        entity = get_entity(self._table, tenant_id, row_key)
        return Stored(_run_from(entity), etag_of(entity)) if entity is not None else None

    def list(
        self, *, tenant_id: str, kind: RunKind | None = None, status: RunStatus | None = None,
        top: int = 50, continuation: str | None = None,
    ) -> Page[RunRecord]:
        """Return runs newest first (row keys hold inverted, time-ordered ids)."""
        validate_key(tenant_id, what="tenant id")
        query, params = _RANGE_FILTER, {"pk": tenant_id, **_RUN_RANGE}
        if kind is not None:
            query += " and Kind eq @kind"
            params["kind"] = str(kind)
        if status is not None:
            query += " and Status eq @status"
            params["status"] = str(status)
        return page_query(self._table, query_filter=query, parameters=params, top=top,
                          continuation=continuation, convert=_run_from)

    def list_recent(self, *, tenant_id: str, finished_since: datetime) -> builtins.list[RunRecord]:
        """Return active runs and runs finished at or after ``finished_since``, newest first."""
        validate_key(tenant_id, what="tenant id")
        # The SDK substitutes parameters in space-separated words only: "@since)" would not be found.
        query = (_RANGE_FILTER + " and ( Status eq @queued or Status eq @running"
                 " or FinishedAt ge @since )")
        params = {"pk": tenant_id, **_RUN_RANGE, "queued": str(RunStatus.QUEUED),
                  "running": str(RunStatus.RUNNING), "since": finished_since}
        return [_run_from(e) for e in self._table.query_entities(query, parameters=params)]

    def update(self, run: RunRecord, *, etag: str, release: bool = False) -> str:
        """Replace a run if unchanged; with ``release`` also delete its active row and lock."""
        return self._replace_run(run, etag=etag, release=release, event=None)[0]

    def transition(self, run: RunRecord, *, etag: str, event: OutboxEntry,
                   release: bool = False) -> ClaimReceipt:
        """Replace a run if unchanged and write its event row in the same transaction (see the port)."""
        if event.tenant_id != run.tenant_id or event.run_id != run.id or not event.slot:
            raise ValueError("an event row belongs to its run's partition and has a slot")
        run_etag, event_etag = self._replace_run(run, etag=etag, release=release, event=event)
        return ClaimReceipt(run_etag=run_etag, outbox_etag=event_etag)

    def _replace_run(self, run: RunRecord, *, etag: str, release: bool,
                     event: OutboxEntry | None) -> tuple[str, str | None]:
        if not release and event is None:
            # A single conditional replace; cheaper than a one-operation transaction.
            try:
                result = self._table.update_entity(
                    _run_entity(run), mode=UpdateMode.REPLACE, etag=etag,
                    match_condition=MatchConditions.IfNotModified)
            except (ResourceModifiedError, ResourceNotFoundError) as exc:
                raise ConcurrentUpdate("the run changed meanwhile") from exc
            return str(result.get("etag", "")), None
        ops: builtins.list[tuple[str, dict[str, Any], dict[str, Any]]] = [(
            "update", _run_entity(run),
            {"mode": UpdateMode.REPLACE, "etag": etag,
             "match_condition": MatchConditions.IfNotModified},
        )]
        if event is not None:
            # Second, so its ETag is the second result; an upsert, so a repeated transition cannot fail.
            ops.append(("upsert", _outbox_entity(event), {"mode": UpdateMode.REPLACE}))
        for row_key in ((ACTIVE_PREFIX + run.derived_key, LOCK_PREFIX + str(run.kind)) if release else ()):
            held = get_entity(self._table, run.tenant_id, row_key)
            if held is not None and held.get("RunId") == run.id:
                ops.append(("delete", {"PartitionKey": run.tenant_id, "RowKey": row_key},
                            {"etag": etag_of(held),
                             "match_condition": MatchConditions.IfNotModified}))
        try:
            results = submit_transaction(self._table, ops)
        except TableTransactionError as exc:
            if exc.status_code in (404, 409, 412):
                raise ConcurrentUpdate("the run changed meanwhile") from exc
            raise
        return (str(results[0].get("etag", "")),
                str(results[1].get("etag", "")) if event is not None else None)

    def get_active(self, *, tenant_id: str, derived_key: str) -> Stored[ActiveEntry] | None:
        """Return the active row of a derived key, or ``None``."""
        entity = get_entity(self._table, tenant_id, ACTIVE_PREFIX + derived_key)
        if entity is None:
            return None
        return Stored(ActiveEntry(derived_key, str(entity["RunId"])), etag_of(entity))

    def delete_active(self, *, tenant_id: str, derived_key: str, etag: str) -> None:
        """Delete an active row if unchanged."""
        self._delete(tenant_id, ACTIVE_PREFIX + derived_key, etag)

    def list_active(self, *, tenant_id: str) -> builtins.list[ActiveEntry]:
        """Return the tenant's active rows: a key-range read of ``active|`` rows in its partition.

        Cheaper than filtering run rows by status, which the service would scan across every run the tenant
        ever kept; the active rows are only as many as the runs in flight.
        """
        validate_key(tenant_id, what="tenant id")
        entities = self._table.query_entities(_RANGE_FILTER, parameters={"pk": tenant_id, **_ACTIVE_RANGE},
                                              select=["RowKey", "RunId"])
        return [ActiveEntry(str(e["RowKey"]).removeprefix(ACTIVE_PREFIX), str(e["RunId"])) for e in entities]

    def get_idempotency(self, *, tenant_id: str, scope: str) -> Stored[IdempotencyEntry] | None:
        """Return an idempotency row, or ``None``."""
        entity = get_entity(self._table, tenant_id, IDEMPOTENCY_PREFIX + scope)
        if entity is None:
            return None
        entry = IdempotencyEntry(scope, str(entity["Fingerprint"]), str(entity["RunId"]),
                                 entity["ExpiresAt"])
        return Stored(entry, etag_of(entity))

    def delete_idempotency(self, *, tenant_id: str, scope: str, etag: str) -> None:
        """Delete an idempotency row if unchanged."""
        self._delete(tenant_id, IDEMPOTENCY_PREFIX + scope, etag)

    def get_lock(self, *, tenant_id: str, name: str) -> Stored[LockEntry] | None:
        """Return a lock row, or ``None``."""
        entity = get_entity(self._table, tenant_id, LOCK_PREFIX + name)
        if entity is None:
            return None
        entry = LockEntry(name, str(entity["RunId"]), str(entity.get("DerivedKey", "")))
        return Stored(entry, etag_of(entity))

    def delete_lock(self, *, tenant_id: str, name: str, etag: str) -> None:
        """Delete a lock row if unchanged."""
        self._delete(tenant_id, LOCK_PREFIX + name, etag)

    def get_outbox(self, *, tenant_id: str, run_id: str) -> Stored[OutboxEntry] | None:
        """Return a run's outbox entry with its ETag, or ``None``."""
        validate_key(tenant_id, what="tenant id")
        validate_key(run_id, what="run id")
        entity = get_entity(self._table, tenant_id, OUTBOX_PREFIX + run_id)
        return _outbox_from(entity) if entity is not None else None

    def update_outbox(self, entry: OutboxEntry, *, etag: str) -> str:
        """Replace an outbox entry if unchanged; return the new ETag."""
        try:
            result = self._table.update_entity(_outbox_entity(entry), mode=UpdateMode.REPLACE,
                                               **_conditional(etag))
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ConcurrentUpdate("the outbox entry changed meanwhile") from exc
        return str(result.get("etag", ""))

    def list_run_outbox(self, *, tenant_id: str, run_id: str) -> builtins.list[Stored[OutboxEntry]]:
        """Return every outbox row of one run: a key-range read (``outbox|<run id>`` and its event slots)."""
        validate_key(tenant_id, what="tenant id")
        validate_key(run_id, what="run id")
        # "}" follows "|": the range holds the run's launch row and every "outbox|<run id>|<slot>" row.
        bounds = {"lo": OUTBOX_PREFIX + run_id, "hi": OUTBOX_PREFIX + run_id + "}"}
        entities = self._table.query_entities(_RANGE_FILTER, parameters={"pk": tenant_id, **bounds})
        return [e for e in (_outbox_from(entity) for entity in entities) if e.value.run_id == run_id]

    def list_due_outbox(self, *, tenant_id: str, due_by: datetime,
                        top: int = 100) -> builtins.list[Stored[OutboxEntry]]:
        """Return up to ``top`` due outbox entries of one tenant (a range read of its partition)."""
        entities = self._table.query_entities(
            _DUE_OUTBOX_FILTER, parameters={"pk": tenant_id, **_OUTBOX_RANGE, "due": due_by},
            results_per_page=top)
        return [_outbox_from(e) for e in itertools.islice(entities, top)]

    def settle_outbox(self, entry: OutboxEntry, *, etag: str, run: RunRecord | None = None,
                      run_etag: str | None = None) -> None:
        """Delete a delivered outbox entry and optionally replace its run, in one transaction."""
        ops: builtins.list[tuple[str, dict[str, Any], dict[str, Any]]] = [(
            "delete", {"PartitionKey": entry.tenant_id, "RowKey": _outbox_key(entry)},
            _conditional(etag))]
        if run is not None:
            if run_etag is None or run.tenant_id != entry.tenant_id or run.id != entry.run_id:
                raise ValueError("settle_outbox replaces the entry's own run, read with its ETag")
            ops.append(("update", _run_entity(run), {"mode": UpdateMode.REPLACE, **_conditional(run_etag)}))
        try:
            submit_transaction(self._table, ops)
        except TableTransactionError as exc:
            if exc.status_code in (404, 409, 412):
                raise ConcurrentUpdate("the outbox entry or its run changed meanwhile") from exc
            raise

    def _delete(self, partition_key: str, row_key: str, etag: str) -> None:
        try:
            self._table.delete_entity(partition_key=partition_key, row_key=row_key, etag=etag,
                                      match_condition=MatchConditions.IfNotModified)
        except ResourceModifiedError as exc:
            raise ConcurrentUpdate("the row changed meanwhile") from exc
