"""In-memory implementations of the storage ports, for unit tests and quick local runs.

They keep the same observable rules as the Table adapters (atomic claims, ETag checks, key validation,
ordering, paging), which the shared contract tests prove. Every method holds one lock, so concurrent
threads see the same all-or-nothing behaviour as Table Storage.
"""

from __future__ import annotations

import builtins
import hashlib
import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from shared.domain import (
    ACTIVE_STATUSES,
    AUDIT_ID_PREFIX,
    AuditEvent,
    Grant,
    ItemOutcome,
    ManagedTenant,
    Notification,
    Page,
    RunCounts,
    RunKind,
    RunRecord,
    RunStatus,
    SnapshotRecord,
    counts_from_outcomes,
    invert_sortable,
    snapshot_blob_name,
)
from shared.domain.batches import TRANSACTION_ROWS, chunked
from shared.errors import ConcurrentUpdate, InvalidRequest, NotFound
from shared.ports import (
    ActiveEntry,
    BlobEntry,
    ClaimConflict,
    ClaimReceipt,
    IdempotencyEntry,
    LockEntry,
    OutboxEntry,
    RunClaim,
    Stored,
)
from shared.storage.keys import decode_token, encode_token, validate_key
from shared.storage.rows import notification_sort_key, run_row_key

__all__ = [
    "InMemoryAuditRepository",
    "InMemoryBlobStore",
    "InMemoryGrantRepository",
    "InMemoryItemRepository",
    "InMemoryNotificationRepository",
    "InMemoryRunRepository",
    "InMemorySnapshotIndex",
    "InMemoryTenantRepository",
]

T = TypeVar("T")
_etags = itertools.count(1)


def _etag() -> str:
    return f'W/"mem-{next(_etags)}"'


def _page(rows: list[tuple[str, T]], top: int, continuation: str | None) -> Page[T]:
    """Page rows sorted by their key; the token is the last key returned."""
    if not 1 <= top <= 1000:
        raise InvalidRequest("top must be between 1 and 1000")
    after = decode_token(continuation) if continuation else None
    if after is not None and not isinstance(after, str):
        raise InvalidRequest("continuation token is not valid")
    remaining = [(k, v) for k, v in rows if after is None or k > after]
    chunk = remaining[:top]
    token = encode_token(chunk[-1][0]) if len(remaining) > top else None
    return Page[T](items=[v for _, v in chunk], continuation=token)


def _outbox_row(entry: OutboxEntry) -> str:
    # Sorts like the table's row keys: a run's launch row, then its event rows by slot.
    return entry.run_id + (f"|{entry.slot}" if entry.slot else "")


class InMemoryRunRepository:
    """Runs and claim rows, with the same atomicity as one entity-group transaction."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._runs: dict[tuple[str, str], Stored[RunRecord]] = {}
        self._active: dict[tuple[str, str], Stored[ActiveEntry]] = {}
        self._idem: dict[tuple[str, str], Stored[IdempotencyEntry]] = {}
        self._locks: dict[tuple[str, str], Stored[LockEntry]] = {}
        self._outbox: dict[tuple[str, str], Stored[OutboxEntry]] = {}

    def claim(self, claim: RunClaim) -> ClaimReceipt:
        """Create every row of ``claim`` or none of them."""
        tenant = validate_key(claim.tenant_id, what="tenant id")
        if claim.outbox is not None:
            if claim.outbox.tenant_id != tenant:
                raise ValueError("an outbox entry belongs to the partition of its claim")
            validate_key(claim.outbox.run_id, what="run id")
        with self._lock:
            if claim.run is not None:
                run_row_key(validate_key(claim.run.id, what="run id"))
                if (tenant, claim.run.id) in self._runs:
                    raise ClaimConflict("run exists")
            if claim.active and (tenant, claim.active.derived_key) in self._active:
                raise ClaimConflict("active key held")
            if claim.idempotency and (tenant, claim.idempotency.scope) in self._idem:
                raise ClaimConflict("idempotency key held")
            if claim.lock and (tenant, claim.lock.name) in self._locks:
                raise ClaimConflict("lock held")
            if claim.outbox and (tenant, claim.outbox.run_id) in self._outbox:
                raise ClaimConflict("outbox entry exists")
            receipt = ClaimReceipt()
            if claim.run is not None:
                self._runs[(tenant, claim.run.id)] = Stored(claim.run, _etag())
                receipt = ClaimReceipt(run_etag=self._runs[(tenant, claim.run.id)].etag)
            if claim.outbox:
                outbox = self._outbox[(tenant, claim.outbox.run_id)] = Stored(claim.outbox, _etag())
                receipt = ClaimReceipt(run_etag=receipt.run_etag, outbox_etag=outbox.etag)
            if claim.active:
                self._active[(tenant, claim.active.derived_key)] = Stored(claim.active, _etag())
            if claim.idempotency:
                self._idem[(tenant, claim.idempotency.scope)] = Stored(claim.idempotency, _etag())
            if claim.lock:
                self._locks[(tenant, claim.lock.name)] = Stored(claim.lock, _etag())
            return receipt

    def get(self, *, tenant_id: str, run_id: str) -> Stored[RunRecord] | None:
        """Return a run with its ETag, or ``None``."""
        validate_key(tenant_id, what="tenant id")
        validate_key(run_id, what="run id")
        with self._lock:
            return self._runs.get((tenant_id, run_id))

    def _tenant_runs(self, tenant_id: str) -> list[RunRecord]:
        validate_key(tenant_id, what="tenant id")
        with self._lock:
            runs = [s.value for (t, _), s in self._runs.items() if t == tenant_id]
        return sorted(runs, key=lambda r: run_row_key(r.id))

    def list(
        self, *, tenant_id: str, kind: RunKind | None = None, status: RunStatus | None = None,
        top: int = 50, continuation: str | None = None,
    ) -> Page[RunRecord]:
        """Return runs newest first, optionally filtered by kind and status."""
        runs = [
            r for r in self._tenant_runs(tenant_id)
            if (kind is None or r.kind == kind) and (status is None or r.status == status)
        ]
        # Keys must ascend for paging; the inverted order of ids is "newest first".
        keyed = [(run_row_key(r.id), r) for r in runs]
        return _page(keyed, top, continuation)

    def list_recent(self, *, tenant_id: str, finished_since: datetime) -> builtins.list[RunRecord]:
        """Return active runs plus runs finished at or after ``finished_since``, newest first."""
        return [
            r for r in self._tenant_runs(tenant_id)
            if r.status in ACTIVE_STATUSES
            or (r.finished_at is not None and r.finished_at >= finished_since)
        ]

    def update(self, run: RunRecord, *, etag: str, release: bool = False) -> str:
        """Replace a run if unchanged; optionally release its active row and lock together."""
        key = (run.tenant_id, run.id)
        with self._lock:
            current = self._runs.get(key)
            if current is None or current.etag != etag:
                raise ConcurrentUpdate("the run changed meanwhile")
            new_etag = _etag()
            self._runs[key] = Stored(run, new_etag)
            if release:
                active = self._active.get((run.tenant_id, run.derived_key))
                if active and active.value.run_id == run.id:
                    del self._active[(run.tenant_id, run.derived_key)]
                lock = self._locks.get((run.tenant_id, str(run.kind)))
                if lock and lock.value.run_id == run.id:
                    del self._locks[(run.tenant_id, str(run.kind))]
            return new_etag

    def transition(self, run: RunRecord, *, etag: str, event: OutboxEntry,
                   release: bool = False) -> ClaimReceipt:
        """Replace a run if unchanged and write its event row, all or nothing."""
        if event.tenant_id != run.tenant_id or event.run_id != run.id or not event.slot:
            raise ValueError("an event row belongs to its run's partition and has a slot")
        with self._lock:  # re-entrant: ``update`` takes it too, and both writes happen under one hold
            run_etag = self.update(run, etag=etag, release=release)
            stored = self._outbox[(event.tenant_id, _outbox_row(event))] = Stored(event, _etag())
            return ClaimReceipt(run_etag=run_etag, outbox_etag=stored.etag)

    def list_run_outbox(self, *, tenant_id: str, run_id: str) -> builtins.list[Stored[OutboxEntry]]:
        """Return every outbox row of one run, launch row first, then its event rows in order."""
        with self._lock:
            return [s for (tenant, _), s in sorted(self._outbox.items())
                    if tenant == tenant_id and s.value.run_id == run_id]

    def get_active(self, *, tenant_id: str, derived_key: str) -> Stored[ActiveEntry] | None:
        """Return the active row of a derived key, or ``None``."""
        with self._lock:
            return self._active.get((tenant_id, derived_key))

    def delete_active(self, *, tenant_id: str, derived_key: str, etag: str) -> None:
        """Delete an active row if unchanged."""
        self._delete(self._active, (tenant_id, derived_key), etag)

    def list_active(self, *, tenant_id: str) -> builtins.list[ActiveEntry]:
        """Return the tenant's active rows ordered by derived key, like a range read."""
        validate_key(tenant_id, what="tenant id")
        with self._lock:
            return [s.value for (tenant, _), s in sorted(self._active.items()) if tenant == tenant_id]

    def get_idempotency(self, *, tenant_id: str, scope: str) -> Stored[IdempotencyEntry] | None:
        """Return an idempotency row, or ``None``."""
        with self._lock:
            return self._idem.get((tenant_id, scope))

    def delete_idempotency(self, *, tenant_id: str, scope: str, etag: str) -> None:
        """Delete an idempotency row if unchanged."""
        self._delete(self._idem, (tenant_id, scope), etag)

    def get_lock(self, *, tenant_id: str, name: str) -> Stored[LockEntry] | None:
        """Return a lock row, or ``None``."""
        with self._lock:
            return self._locks.get((tenant_id, name))

    def delete_lock(self, *, tenant_id: str, name: str, etag: str) -> None:
        """Delete a lock row if unchanged."""
        self._delete(self._locks, (tenant_id, name), etag)

    def get_outbox(self, *, tenant_id: str, run_id: str) -> Stored[OutboxEntry] | None:
        """Return a run's outbox entry with its ETag, or ``None``."""
        validate_key(tenant_id, what="tenant id")
        validate_key(run_id, what="run id")
        with self._lock:
            return self._outbox.get((tenant_id, run_id))

    def update_outbox(self, entry: OutboxEntry, *, etag: str) -> str:
        """Replace an outbox entry if unchanged; return the new ETag."""
        key = (entry.tenant_id, _outbox_row(entry))
        with self._lock:
            current = self._outbox.get(key)
            if current is None or current.etag != etag:
                raise ConcurrentUpdate("the outbox entry changed meanwhile")
            stored = self._outbox[key] = Stored(entry, _etag())
            return stored.etag

    def list_due_outbox(self, *, tenant_id: str, due_by: datetime,
                        top: int = 100) -> builtins.list[Stored[OutboxEntry]]:
        """Return up to ``top`` due outbox entries of one tenant, in key order like a range read."""
        with self._lock:
            due = [s for (tenant, _), s in sorted(self._outbox.items())
                   if tenant == tenant_id and s.value.due_at <= due_by]
        return due[:top]

    def settle_outbox(self, entry: OutboxEntry, *, etag: str, run: RunRecord | None = None,
                      run_etag: str | None = None) -> None:
        """Delete a delivered outbox entry and optionally replace its run, all or nothing."""
        key = (entry.tenant_id, entry.run_id)
        if run is not None and (run_etag is None or (run.tenant_id, run.id) != key):
            raise ValueError("settle_outbox replaces the entry's own run, read with its ETag")
        row = (entry.tenant_id, _outbox_row(entry))
        with self._lock:
            current = self._outbox.get(row)
            if current is None or current.etag != etag:
                raise ConcurrentUpdate("the outbox entry changed meanwhile")
            if run is not None:
                stored = self._runs.get(key)
                if stored is None or stored.etag != run_etag:
                    raise ConcurrentUpdate("the run changed meanwhile")
                self._runs[key] = Stored(run, _etag())
            del self._outbox[row]

    def _delete(self, table: dict[tuple[str, str], Stored[Any]], key: tuple[str, str],
                etag: str) -> None:
        with self._lock:
            current = table.get(key)
            if current is None:
                return
            if current.etag != etag:
                raise ConcurrentUpdate("the row changed meanwhile")
            del table[key]


class InMemoryItemRepository:
    """Per-item outcomes keyed by ``(tenant, run, item)``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str], dict[str, ItemOutcome]] = {}
        # Writes made (an upsert or an entity-group transaction), counted the way the adapter makes them.
        self.transactions = 0

    def upsert(self, *, tenant_id: str, run_id: str, outcome: ItemOutcome) -> None:
        """Write or replace an item outcome."""
        self.upsert_many(tenant_id=tenant_id, run_id=run_id, outcomes=[outcome])

    def upsert_many(self, *, tenant_id: str, run_id: str, outcomes: Sequence[ItemOutcome]) -> None:
        """Write or replace outcomes of one run (all or nothing per 100, like a transaction)."""
        validate_key(tenant_id, what="tenant id")
        validate_key(run_id, what="run id")
        ids = [validate_key(outcome.item_id, what="item id") for outcome in outcomes]
        if len(set(ids)) != len(ids):
            raise ValueError("a transaction writes each item once")
        for chunk in chunked(list(outcomes), TRANSACTION_ROWS):
            with self._lock:
                self._items.setdefault((tenant_id, run_id), {}).update((o.item_id, o) for o in chunk)
                self.transactions += 1

    def list(
        self, *, tenant_id: str, run_id: str, status: str | None = None, top: int = 100,
        continuation: str | None = None,
    ) -> Page[ItemOutcome]:
        """Return a run's items ordered by item id."""
        with self._lock:
            items = dict(self._items.get((tenant_id, run_id), {}))
        rows = [(k, v) for k, v in sorted(items.items()) if status is None or v.status == status]
        return _page(rows, top, continuation)

    def counts(self, *, tenant_id: str, run_id: str) -> RunCounts:
        """Count a run's items by status."""
        with self._lock:
            statuses = [i.status for i in self._items.get((tenant_id, run_id), {}).values()]
        return counts_from_outcomes(list(statuses))


class InMemorySnapshotIndex:
    """Snapshot index entries by ``(tenant, snapshot id)``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[tuple[str, str], SnapshotRecord] = {}

    def put(self, record: SnapshotRecord) -> None:
        """Write or replace an entry."""
        validate_key(record.tenant_id, what="tenant id")
        validate_key(record.snapshot_id, what="snapshot id")
        with self._lock:
            self._rows[(record.tenant_id, record.snapshot_id)] = record

    def get(self, *, tenant_id: str, snapshot_id: str) -> SnapshotRecord | None:
        """Return an entry, or ``None``."""
        with self._lock:
            return self._rows.get((tenant_id, snapshot_id))

    def list(
        self, *, tenant_id: str, policy_type: str | None = None, source_id: str | None = None,
        run_id: str | None = None,
    ) -> list[SnapshotRecord]:
        """Return a tenant's entries ordered by snapshot id, optionally filtered."""
        with self._lock:
            rows = [r for (t, _), r in self._rows.items() if t == tenant_id]
        return sorted(
            (r for r in rows
             if (policy_type is None or r.policy_type == policy_type)
             and (source_id is None or r.source_id == source_id)
             and (run_id is None or r.run_id == run_id)),
            key=lambda r: r.snapshot_id,
        )


class InMemoryBlobStore:
    """Content-addressed bodies, each with the time and ETag of its last write (like Blob Storage)."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self._lock = threading.Lock()
        self._blobs: dict[str, bytes] = {}
        self._written: dict[str, tuple[datetime, str]] = {}
        self._clock = clock or (lambda: datetime.now(UTC))

    def put_json(self, tenant_id: str, body: bytes) -> tuple[str, str, int]:
        """Store a tenant's ``body`` under its SHA-256; storing it again renews its write time and ETag."""
        digest = hashlib.sha256(body).hexdigest()
        name = snapshot_blob_name(tenant_id, digest)
        with self._lock:
            self._blobs.setdefault(name, bytes(body))
            self._written[name] = (self._clock(), _etag())
        return digest, name, len(body)

    def list_bodies(self, tenant_id: str) -> Iterator[BlobEntry]:
        """Every body stored for the tenant."""
        prefix = snapshot_blob_name(tenant_id, "")[: -len(".json")]
        with self._lock:
            listed = [(name, *self._written[name]) for name in sorted(self._blobs) if name.startswith(prefix)]
        for name, written, etag in listed:
            yield BlobEntry(content_hash=name[len(prefix):].removesuffix(".json"), last_modified=written,
                            etag=etag)

    def delete_body(self, tenant_id: str, entry: BlobEntry) -> bool:
        """Delete a listed body if it was not written since."""
        name = snapshot_blob_name(tenant_id, entry.content_hash)
        with self._lock:
            if name not in self._blobs or self._written[name][1] != entry.etag:
                return False
            del self._blobs[name], self._written[name]
        return True

    def get_json(self, tenant_id: str, content_hash: str) -> bytes:
        """Return the tenant's body stored under ``content_hash``."""
        with self._lock:
            body = self._blobs.get(snapshot_blob_name(tenant_id, content_hash))
        if body is None:
            raise NotFound("snapshot body not found")
        return body


class InMemoryNotificationRepository:
    """Notifications partitioned by principal."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[str, dict[str, Notification]] = {}

    def put(self, notification: Notification) -> None:
        """Write or replace a notification."""
        validate_key(notification.principal_id, what="principal id")
        with self._lock:
            self._rows.setdefault(notification.principal_id, {})[notification.id] = notification

    def list(
        self, *, principal_id: str, unread_only: bool = False, top: int = 50,
        continuation: str | None = None,
    ) -> Page[Notification]:
        """Return notifications newest run first, latest status first within a run."""
        with self._lock:
            rows = list(self._rows.get(principal_id, {}).values())
        keyed = sorted(
            (notification_sort_key(n.run_id, n.status), n)
            for n in rows if not (unread_only and n.read)
        )
        return _page(keyed, top, continuation)

    def get(self, *, principal_id: str, notification_id: str) -> Notification | None:
        """Return one of the principal's notifications, or ``None``."""
        with self._lock:
            return self._rows.get(principal_id, {}).get(notification_id)


class InMemoryTenantRepository:
    """Managed tenants by id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[str, ManagedTenant] = {}

    def put(self, tenant: ManagedTenant) -> None:
        """Create or replace a tenant."""
        validate_key(tenant.tenant_id, what="tenant id")
        with self._lock:
            self._rows[tenant.tenant_id] = tenant

    def get(self, tenant_id: str) -> ManagedTenant | None:
        """Return a tenant, or ``None``."""
        with self._lock:
            return self._rows.get(tenant_id)

    def get_many(self, tenant_ids: Sequence[str]) -> list[ManagedTenant]:
        """Return the registered tenants among ``tenant_ids``, in that order."""
        with self._lock:
            return [self._rows[t] for t in tenant_ids if t in self._rows]

    def list_ids(self) -> list[str]:
        """Return every registered tenant's id, in key order like the table."""
        with self._lock:
            return sorted(self._rows)


def _principal_part(value: str, what: str) -> str:
    # The Table adapter joins key parts with "|", so it refuses it in them; so do we.
    if "|" in validate_key(value, what=what):
        raise InvalidRequest(f"{what} contains a character that is not allowed")
    return value


class InMemoryAuditRepository:
    """Audit events by tenant, keyed by inverted event id (newest first, like the Table adapter)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[str, dict[str, AuditEvent]] = {}

    @staticmethod
    def row_key(event: AuditEvent) -> str:
        """Validate an event's keys; return its key (the inverted id, as the Table adapter orders them)."""
        validate_key(event.tenant_id, what="tenant id")
        return invert_sortable(event.id.removeprefix(AUDIT_ID_PREFIX))

    def contains(self, event: AuditEvent) -> bool:
        """Whether an event with this id is stored (a second write of the same event is a conflict)."""
        with self._lock:
            return self.row_key(event) in self._rows.get(event.tenant_id, {})

    def append(self, event: AuditEvent) -> None:
        """Store an event; storing the same event again replaces it."""
        key = self.row_key(event)
        with self._lock:
            self._rows.setdefault(event.tenant_id, {})[key] = event

    def list(self, *, tenant_id: str, run_id: str | None = None, top: int = 50,
             continuation: str | None = None) -> Page[AuditEvent]:
        """Return a tenant's events newest first, optionally only those of one run."""
        validate_key(tenant_id, what="tenant id")
        if run_id is not None:
            validate_key(run_id, what="run id")
        with self._lock:
            rows = sorted(self._rows.get(tenant_id, {}).items())
        return _page([(k, e) for k, e in rows if run_id is None or e.run_id == run_id], top, continuation)


class InMemoryGrantRepository:
    """Grants by ``(tenant, principal tenant, principal)``, each change stored with its audit event.

    Args:
        audit: where the audit events go (a fresh repository when omitted; see :attr:`audit`).
    """

    def __init__(self, audit: InMemoryAuditRepository | None = None) -> None:
        self._lock = threading.Lock()
        self._rows: dict[tuple[str, str, str], Stored[Grant]] = {}
        self.audit = audit or InMemoryAuditRepository()

    @staticmethod
    def _key(tenant_id: str, principal_tenant_id: str, principal_id: str) -> tuple[str, str, str]:
        return (validate_key(tenant_id, what="tenant id"),
                _principal_part(principal_tenant_id, "principal tenant id"),
                _principal_part(principal_id, "principal id"))

    def get(self, *, tenant_id: str, principal_tenant_id: str, principal_id: str) -> Stored[Grant] | None:
        """Return a grant with its ETag, or ``None``."""
        key = self._key(tenant_id, principal_tenant_id, principal_id)
        with self._lock:
            return self._rows.get(key)

    def put(self, grant: Grant, *, event: AuditEvent, etag: str | None) -> None:
        """Create or replace a grant if unchanged since read, together with its event."""
        if event.tenant_id != grant.tenant_id:
            raise ValueError("an audit event belongs to the managed tenant of the grant it records")
        key = self._key(grant.tenant_id, grant.principal_tenant_id, grant.principal_id)
        with self._lock:
            self._check(key, etag, event)
            self.audit.append(event)
            self._rows[key] = Stored(grant, _etag())

    def delete(self, *, tenant_id: str, principal_tenant_id: str, principal_id: str, event: AuditEvent,
               etag: str) -> None:
        """Delete a grant if unchanged since read, together with its event."""
        if event.tenant_id != tenant_id:
            raise ValueError("an audit event belongs to the managed tenant of the grant it records")
        key = self._key(tenant_id, principal_tenant_id, principal_id)
        with self._lock:
            self._check(key, etag, event)
            self.audit.append(event)
            del self._rows[key]

    def _check(self, key: tuple[str, str, str], etag: str | None, event: AuditEvent) -> None:
        current = self._rows.get(key)
        if (current.etag if current else None) != etag or self.audit.contains(event):
            raise ConcurrentUpdate("the grant changed meanwhile")

    def list_for_tenant(self, tenant_id: str) -> list[Grant]:
        """Return a tenant's grants ordered by principal tenant and object id."""
        with self._lock:
            rows = [s.value for (t, _, _), s in self._rows.items() if t == tenant_id]
        return sorted(rows, key=lambda g: (g.principal_tenant_id, g.principal_id))

    def list_for_principal(self, *, principal_tenant_id: str, principal_id: str) -> list[Grant]:
        """Return a principal's grants ordered by managed tenant id."""
        key = (principal_tenant_id, principal_id)
        with self._lock:
            rows = [s.value for (_, pt, p), s in self._rows.items() if (pt, p) == key]
        return sorted(rows, key=lambda g: g.tenant_id)
