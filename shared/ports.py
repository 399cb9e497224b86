"""Ports: the storage and event interfaces the services depend on.

Each Protocol has a Table/Blob Storage adapter in :mod:`shared.storage` and an in-memory fake in
:mod:`shared.storage.memory`; one contract test suite runs against both.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from shared.domain import (
    AuditEvent,
    BackupSet,
    BackupSetBatch,
    BackupSetItem,
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
)
from shared.domain.backupsets import BackupSetChange
from shared.domain.batches import SetItemOutcome
from shared.domain.restore import LedgerEntry, PlanRecord
from shared.domain.schedules import BackupSchedule
from shared.domain.webhooks import DeliveryState, WebhookDelivery, WebhookSubscription

__all__ = [
    "ActiveEntry",
    "AuditRepository",
    "BackupSetRepository",
    "BlobEntry",
    "BlobStore",
    "BudgetLedger",
    "BudgetLedgerStore",
    "ClaimConflict",
    "ClaimReceipt",
    "GrantRepository",
    "IdempotencyEntry",
    "ItemRepository",
    "LockEntry",
    "NotificationRepository",
    "OutboxEntry",
    "RunClaim",
    "RunEventSink",
    "RunRepository",
    "SnapshotIndex",
    "Stored",
    "StoredSubscription",
    "TenantRepository",
    "WebhookRepository",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Stored(Generic[T]):
    """A value read from storage together with its ETag, for conditional writes."""

    value: T
    etag: str


@dataclass(frozen=True)
class ActiveEntry:
    """Marks a run as the active one for its server-derived key while it is queued or running."""

    derived_key: str
    run_id: str


@dataclass(frozen=True)
class IdempotencyEntry:
    """A client ``Idempotency-Key``, scoped to caller and tenant, and the run it produced."""

    scope: str
    fingerprint: str
    run_id: str
    expires_at: datetime


@dataclass(frozen=True)
class LockEntry:
    """An exclusive per-tenant lock (one active ``restore.execute`` per managed tenant)."""

    name: str
    run_id: str
    derived_key: str


@dataclass(frozen=True)
class OutboxEntry:
    """What a run still owes the world after its claim: its orchestration start and its events.

    Written in the claim's transaction, so a run never exists without it until it is delivered; deleted in
    the same transaction that marks the run launched. ``due_at`` is also the lease: whoever set it is
    delivering the entry until then, and anyone may take it over after.
    """

    tenant_id: str
    run_id: str
    kind: RunKind
    created_at: datetime
    due_at: datetime
    attempts: int = 0
    launch: bool = True
    events: tuple[RunStatus, ...] = (RunStatus.QUEUED,)
    # "" for the row written with the claim; a later transition's event row has its own slot
    # (``<order>-<status>``), so a run's rows sort in the order of its events.
    slot: str = ""


@dataclass(frozen=True)
class RunClaim:
    """Rows created together, atomically, in the tenant's partition; any one existing fails all.

    ``run`` is ``None`` when only an idempotency entry is attached to an existing run.
    """

    tenant_id: str
    run: RunRecord | None = None
    active: ActiveEntry | None = None
    idempotency: IdempotencyEntry | None = None
    lock: LockEntry | None = None
    outbox: OutboxEntry | None = None


@dataclass(frozen=True)
class ClaimReceipt:
    """The ETags of the run and outbox rows a claim created, so their first change needs no read."""

    run_etag: str | None = None
    outbox_etag: str | None = None


class ClaimConflict(Exception):
    """A row of a :class:`RunClaim` already exists: someone else holds the claim; nothing was written."""


class RunRepository(Protocol):
    """Runs and their claim rows (active key, idempotency key, exclusive lock, outbox) in one partition."""

    def claim(self, claim: RunClaim) -> ClaimReceipt:
        """Create every row of ``claim`` atomically; raise :class:`ClaimConflict` if any exists."""
        ...

    def get(self, *, tenant_id: str, run_id: str) -> Stored[RunRecord] | None:
        """Return a run with its ETag, or ``None``."""
        ...

    def list(
        self, *, tenant_id: str, kind: RunKind | None = None, status: RunStatus | None = None,
        top: int = 50, continuation: str | None = None,
    ) -> Page[RunRecord]:
        """Return runs newest first, optionally filtered; pages may be shorter than ``top``."""
        ...

    def list_recent(self, *, tenant_id: str, finished_since: datetime) -> builtins.list[RunRecord]:
        """Return the tenant's active runs plus the runs finished at or after ``finished_since``."""
        ...

    def update(self, run: RunRecord, *, etag: str, release: bool = False) -> str:
        """Replace a run if its ETag still matches; return the new ETag.

        With ``release`` the run's active row and its exclusive lock (when they point at this run) are
        deleted in the same transaction, so a terminal status and the release happen together.

        Raises:
            ConcurrentUpdate: the run changed since it was read.
        """
        ...

    def get_active(self, *, tenant_id: str, derived_key: str) -> Stored[ActiveEntry] | None:
        """Return the active row of a derived key, or ``None``."""
        ...

    def delete_active(self, *, tenant_id: str, derived_key: str, etag: str) -> None:
        """Delete a stale active row if unchanged (a run that ended without releasing it)."""
        ...

    def list_active(self, *, tenant_id: str) -> builtins.list[ActiveEntry]:
        """Return every active row of one tenant, ordered by derived key (the recovery sweep).

        An active row exists from a run's claim until the transition that ends it, so this lists the
        tenant's queued and running runs (plus, rarely, a stale row of a run that already ended).
        """
        ...

    def get_idempotency(self, *, tenant_id: str, scope: str) -> Stored[IdempotencyEntry] | None:
        """Return an idempotency row, or ``None``."""
        ...

    def delete_idempotency(self, *, tenant_id: str, scope: str, etag: str) -> None:
        """Delete an expired idempotency row if unchanged."""
        ...

    def get_lock(self, *, tenant_id: str, name: str) -> Stored[LockEntry] | None:
        """Return an exclusive lock row, or ``None``."""
        ...

    def delete_lock(self, *, tenant_id: str, name: str, etag: str) -> None:
        """Delete a stale lock row if unchanged."""
        ...

    def get_outbox(self, *, tenant_id: str, run_id: str) -> Stored[OutboxEntry] | None:
        """Return a run's outbox entry with its ETag, or ``None`` once it was delivered."""
        ...

    def update_outbox(self, entry: OutboxEntry, *, etag: str) -> str:
        """Replace an outbox entry if unchanged (taking its lease); return the new ETag.

        Raises:
            ConcurrentUpdate: the entry changed or was delivered since it was read.
        """
        ...

    def list_due_outbox(self, *, tenant_id: str, due_by: datetime,
                        top: int = 100) -> builtins.list[Stored[OutboxEntry]]:
        """Return up to ``top`` outbox entries of one tenant that are due at ``due_by``."""
        ...

    def transition(self, run: RunRecord, *, etag: str, event: OutboxEntry,
                   release: bool = False) -> ClaimReceipt:
        """Replace a run if unchanged and write its transition's event row, in one transaction.

        As :meth:`update` (``release`` included); the event row (``event.slot`` set) is created or replaced.
        Returns the ETags of the run and of the event row.

        Raises:
            ConcurrentUpdate: the run changed since it was read; nothing was written.
        """
        ...

    def list_run_outbox(self, *, tenant_id: str, run_id: str) -> builtins.list[Stored[OutboxEntry]]:
        """Return every outbox row of one run (its launch row first, then its event rows in order)."""
        ...

    def settle_outbox(self, entry: OutboxEntry, *, etag: str, run: RunRecord | None = None,
                      run_etag: str | None = None) -> None:
        """Delete a delivered outbox entry and, when given, replace its run, in one transaction.

        Both writes are conditional on the ETags, so a concurrent transition of the run or another
        delivery of the entry makes the whole call fail.

        Raises:
            ConcurrentUpdate: the entry or the run changed since it was read; nothing was written.
        """
        ...


class ItemRepository(Protocol):
    """Per-item outcomes of runs, keyed by ``(run_id, item_id)``."""

    def upsert(self, *, tenant_id: str, run_id: str, outcome: ItemOutcome) -> None:
        """Write an item outcome; writing the same item again replaces it (activities may repeat)."""
        ...

    def upsert_many(self, *, tenant_id: str, run_id: str, outcomes: Sequence[ItemOutcome]) -> None:
        """Write or replace outcomes of one run, one entity-group transaction per 100 (one partition).

        Raises:
            ValueError: an item appears twice (a transaction writes each row once).
        """
        ...

    def list(
        self, *, tenant_id: str, run_id: str, status: str | None = None, top: int = 100,
        continuation: str | None = None,
    ) -> Page[ItemOutcome]:
        """Return a run's item outcomes ordered by item id."""
        ...

    def counts(self, *, tenant_id: str, run_id: str) -> RunCounts:
        """Count a run's items by status."""
        ...


class SnapshotIndex(Protocol):
    """Index entries of captured policy snapshots (metadata only; bodies live in a :class:`BlobStore`)."""

    def put(self, record: SnapshotRecord) -> None:
        """Write (or rewrite) a snapshot's index entry."""
        ...

    def get(self, *, tenant_id: str, snapshot_id: str) -> SnapshotRecord | None:
        """Return a snapshot's index entry, or ``None``."""
        ...

    def list(
        self, *, tenant_id: str, policy_type: str | None = None, source_id: str | None = None,
        run_id: str | None = None,
    ) -> list[SnapshotRecord]:
        """Return a tenant's snapshots, optionally filtered, ordered by snapshot id."""
        ...


@dataclass(frozen=True)
class BlobEntry:
    """One stored body as listed: its hash, when it was last written, and its ETag (for deleting it)."""

    content_hash: str
    last_modified: datetime
    etag: str


class BlobStore(Protocol):
    """Content-addressed bodies of captured policies."""

    def put_json(self, tenant_id: str, body: bytes) -> tuple[str, str, int]:
        """Store a tenant's ``body`` under its SHA-256 (idempotent); return ``(hash, blob_name, size)``.

        Storing a body that exists writes it again, so its last-written time and ETag say a capture relies
        on it now (garbage collection spares bodies written recently, and deletes only unchanged ones).
        """
        ...

    def get_json(self, tenant_id: str, content_hash: str) -> bytes:
        """Return the tenant's body stored under ``content_hash``.

        Raises:
            NotFound: there is no such body.
        """
        ...

    def list_bodies(self, tenant_id: str) -> Iterator[BlobEntry]:
        """Every body stored for the tenant (garbage collection)."""
        ...

    def delete_body(self, tenant_id: str, entry: BlobEntry) -> bool:
        """Delete a listed body unless it was written again since (its ETag changed).

        Returns:
            Whether it was deleted (``False``: written again meanwhile, or already gone).
        """
        ...


class NotificationRepository(Protocol):
    """Notifications, partitioned by the principal they are for."""

    def put(self, notification: Notification) -> None:
        """Write a notification (idempotent by id)."""
        ...

    def list(
        self, *, principal_id: str, unread_only: bool = False, top: int = 50,
        continuation: str | None = None,
    ) -> Page[Notification]:
        """Return a principal's notifications, newest run first."""
        ...

    def get(self, *, principal_id: str, notification_id: str) -> Notification | None:
        """Return one of the principal's notifications, or ``None``."""
        ...


class TenantRepository(Protocol):
    """Registered managed tenants."""

    def put(self, tenant: ManagedTenant) -> None:
        """Create or replace a managed tenant."""
        ...

    def get(self, tenant_id: str) -> ManagedTenant | None:
        """Return a managed tenant, or ``None``."""
        ...

    def get_many(self, tenant_ids: Sequence[str]) -> list[ManagedTenant]:
        """Return the registered tenants among ``tenant_ids``."""
        ...

    def list_ids(self) -> list[str]:
        """Return the ids of every registered tenant (background sweeps)."""
        ...


class GrantRepository(Protocol):
    """Grants with a reverse index, so both "who is on this tenant" and "my tenants" are one query.

    A principal is ``(principal_tenant_id, principal_id)``: its home tenant and object id. Every change
    is written together with its :class:`AuditEvent` (atomically: neither is stored without the other),
    and is conditional on the grant not having changed since it was read.
    """

    def get(self, *, tenant_id: str, principal_tenant_id: str, principal_id: str) -> Stored[Grant] | None:
        """Return a grant with its ETag, or ``None``."""
        ...

    def put(self, grant: Grant, *, event: AuditEvent, etag: str | None) -> None:
        """Create (``etag`` ``None``) or replace (``etag`` of the grant read) a grant, with its audit event.

        Raises:
            ConcurrentUpdate: the grant was created, changed or deleted since it was read; nothing was
                written.
        """
        ...

    def delete(self, *, tenant_id: str, principal_tenant_id: str, principal_id: str, event: AuditEvent,
               etag: str) -> None:
        """Delete a grant read with ``etag``, with its audit event.

        Raises:
            ConcurrentUpdate: the grant changed or was deleted since it was read; nothing was written.
        """
        ...

    def list_for_tenant(self, tenant_id: str) -> list[Grant]:
        """Return every grant on a tenant, ordered by principal tenant and object id."""
        ...

    def list_for_principal(self, *, principal_tenant_id: str, principal_id: str) -> list[Grant]:
        """Return every grant a principal holds, ordered by managed tenant id."""
        ...


class AuditRepository(Protocol):
    """Audit events of each managed tenant, newest first."""

    def append(self, event: AuditEvent) -> None:
        """Store an event that goes with no grant change (idempotent by event id)."""
        ...

    def list(self, *, tenant_id: str, run_id: str | None = None, top: int = 50,
             continuation: str | None = None) -> Page[AuditEvent]:
        """Return a tenant's events newest first, optionally only those linked to ``run_id``."""
        ...


class RunEventSink(Protocol):
    """Receives every run status transition (notifications now, webhooks later)."""

    def publish(self, run: RunRecord, status: RunStatus) -> None:
        """Handle a transition of ``run`` to ``status``; must be idempotent per ``(run, status)``."""
        ...


@dataclass(frozen=True)
class StoredSubscription:
    """A webhook subscription with its target URL and signing secret, both encrypted (never plain here)."""

    subscription: WebhookSubscription
    url_cipher: str
    secret_cipher: str


class WebhookRepository(Protocol):
    """Webhook subscriptions and the deliveries owed to them, in the managed tenant's partition."""

    def put_subscription(self, stored: StoredSubscription) -> None:
        """Create or replace a subscription."""
        ...

    def get_subscription(self, *, tenant_id: str, name: str) -> StoredSubscription | None:
        """Return a subscription with its encrypted fields, or ``None``."""
        ...

    def list_subscriptions(self, tenant_id: str) -> builtins.list[WebhookSubscription]:
        """Return the tenant's subscriptions ordered by name (without their encrypted fields)."""
        ...

    def delete_subscription(self, *, tenant_id: str, name: str) -> bool:
        """Delete a subscription and the deliveries owed to it; whether it existed."""
        ...

    def create_deliveries(self, deliveries: Sequence[WebhookDelivery],
                          ) -> builtins.list[Stored[WebhookDelivery]]:
        """Create the deliveries that do not exist yet (a repeated fan-out adds none); return the new ones."""
        ...

    def get_delivery(self, *, tenant_id: str, subscription: str,
                     event_id: str) -> Stored[WebhookDelivery] | None:
        """Return one delivery, or ``None``."""
        ...

    def update_delivery(self, delivery: WebhookDelivery, *, etag: str) -> str:
        """Replace a delivery if unchanged; return the new ETag.

        Raises:
            ConcurrentUpdate: the delivery changed or vanished since it was read.
        """
        ...

    def list_deliveries(self, *, tenant_id: str, subscription: str, state: DeliveryState | None = None,
                        top: int = 50, continuation: str | None = None) -> Page[WebhookDelivery]:
        """Return a subscription's deliveries ordered by run and event, optionally in one state."""
        ...

    def list_run_deliveries(self, *, tenant_id: str, subscription: str,
                            run_id: str) -> builtins.list[Stored[WebhookDelivery]]:
        """Return the deliveries of one run to one subscription, in event order."""
        ...

    def list_due_deliveries(self, *, tenant_id: str, due_by: datetime,
                            top: int = 100) -> builtins.list[Stored[WebhookDelivery]]:
        """Return up to ``top`` pending deliveries of one tenant that are due at ``due_by``."""
        ...

    def delete_delivered(self, *, tenant_id: str, written_before: datetime, top: int = 1000) -> int:
        """Delete up to ``top`` of the tenant's delivered deliveries last written before ``written_before``.

        Pending and parked ones are kept whatever their age. Returns how many were deleted.
        """
        ...


class BackupSetRepository(Protocol):
    """Backup sets, their items, their batches and their changes, in the managed tenant's partition.

    Item and batch writes are upserts keyed by set and item (or batch number), and a set's changes are
    replaced whole, so a repeated activity rewrites the same rows. The ``create_*`` writes never replace a
    row: a late or repeated start or plan leaves what was written after it (a planned set, captured items,
    finished batches) as it is.
    """

    def put_set(self, backup_set: BackupSet) -> None:
        """Create or replace a set."""
        ...

    def create_set(self, backup_set: BackupSet) -> bool:
        """Create a set unless its row exists; ``False`` (nothing written) when it does."""
        ...

    def get_set(self, *, tenant_id: str, backup_set_id: str) -> BackupSet | None:
        """Return a set, or ``None``."""
        ...

    def list_sets(self, *, tenant_id: str, top: int = 50,
                  continuation: str | None = None) -> Page[BackupSet]:
        """Return a tenant's sets newest first; pages may be shorter than ``top``."""
        ...

    def put_items(self, items: Sequence[BackupSetItem]) -> None:
        """Create or replace items of one tenant, at most 100 rows per entity-group transaction."""
        ...

    def create_items(self, items: Sequence[BackupSetItem]) -> None:
        """Create the items that do not exist yet (100 rows per transaction); existing rows stay."""
        ...

    def settle_item(self, *, tenant_id: str, backup_set_id: str, item_id: str,
                    outcome: SetItemOutcome) -> bool:
        """Write a planned item's outcome in one transaction, without reading the item first.

        The outcome's fields replace the item's (the planned ones stay), so a repeat writes the same.

        Returns:
            ``False`` when the set has no such item (nothing is written: a stray outcome plans nothing).
        """
        ...

    def settle_items(self, *, tenant_id: str, backup_set_id: str,
                     outcomes: Mapping[str, SetItemOutcome]) -> builtins.list[str]:
        """Write planned items' outcomes (by item id) like :meth:`settle_item`, 100 per transaction.

        A transaction that names an item which was never planned writes nothing, so its items are then
        settled one by one: the planned ones are written, the others are not created.

        Returns:
            The item ids that were never planned (nothing was written for them).
        """
        ...

    def get_item(self, *, tenant_id: str, backup_set_id: str, item_id: str) -> BackupSetItem | None:
        """Return one item of a set, or ``None``."""
        ...

    def list_items(self, *, tenant_id: str, backup_set_id: str, status: str | None = None, top: int = 100,
                   continuation: str | None = None) -> Page[BackupSetItem]:
        """Return a set's items ordered by item id, optionally only those with ``status``."""
        ...

    def put_batches(self, batches: Sequence[BackupSetBatch]) -> None:
        """Create or replace batches of one tenant, at most 100 rows per entity-group transaction."""
        ...

    def create_batches(self, batches: Sequence[BackupSetBatch]) -> None:
        """Create the batches that do not exist yet (100 rows per transaction); existing rows stay."""
        ...

    def get_batch(self, *, tenant_id: str, backup_set_id: str, batch: int,
                  run_id: str | None = None) -> BackupSetBatch | None:
        """Return one batch of a set (of the run ``run_id`` that added items to it, if given), or ``None``."""
        ...

    def batch_counts(self, *, tenant_id: str, backup_set_id: str, run_id: str | None = None) -> RunCounts:
        """The summed summaries of a run's finished batches (``total``: their settled items).

        The batches of the run that made the set, or of the run ``run_id`` that added to it. Reads only
        the batches' summary columns, never their members nor the items.
        """
        ...

    def replace_changes(self, *, tenant_id: str, backup_set_id: str,
                        changes: Sequence[BackupSetChange]) -> None:
        """Store a set's changes against its baseline, replacing what the set held (a repeat writes the same).

        Written once per comparison and read in item order, so they are kept in pages of lines, not a row
        per line.
        """
        ...

    def list_changes(self, *, tenant_id: str, backup_set_id: str, top: int = 100,
                     continuation: str | None = None) -> Page[BackupSetChange]:
        """Return a set's changes ordered by item id; pages may be shorter than ``top``."""
        ...

    def delete_set(self, *, tenant_id: str, backup_set_id: str) -> None:
        """Delete a set with its items, batches and changes; the set row last, so a retry finds the set.

        Blobs are not touched: another set or a snapshot may hold the same content.
        """
        ...

    def get_schedule(self, tenant_id: str) -> Stored[BackupSchedule] | None:
        """Return the tenant's backup schedule with its ETag, or ``None``."""
        ...

    def put_schedule(self, schedule: BackupSchedule, *, etag: str | None = None) -> str:
        """Create or replace the schedule; with ``etag``, only if unchanged since read.

        Raises:
            ConcurrentUpdate: ``etag`` was given and the row changed or vanished meanwhile.
        """
        ...

    def delete_schedule(self, tenant_id: str) -> None:
        """Delete the tenant's schedule, if any."""
        ...


@dataclass(frozen=True)
class BudgetLedger:
    """Graph requests charged to one (tenant, app, throttle family) by every process, per time slice.

    Slices are ``slice_ms`` long and numbered from the Unix epoch, so every process agrees on them;
    ``requests`` counts requests of any kind reserved per slice (the current one and a few ahead) and
    ``writes`` the writes among them (see :mod:`shared.graph.shared_budget`).
    """

    slice_ms: int
    requests: dict[int, int]
    writes: dict[int, int]
    # The latest slice any writer's clock had reached: no slice before it is charged any more.
    current: int = 0


class BudgetLedgerStore(Protocol):
    """The shared request budgets' ledgers, one row per (tenant, key), written with optimistic concurrency.

    Calls block (they talk to storage); the budget runs them off the event loop.
    """

    def read(self, tenant_id: str, key: str) -> Stored[BudgetLedger] | None:
        """Return a ledger with its ETag, or ``None`` when it was never written."""
        ...

    def write(self, tenant_id: str, key: str, ledger: BudgetLedger, *, etag: str | None) -> str:
        """Create the ledger (``etag`` ``None``) or replace it if unchanged since read; return the new ETag.

        Raises:
            ConcurrentUpdate: the row exists already (create) or changed since ``etag`` was read.
        """
        ...


class RestoreRepository(Protocol):
    """The restore ledger (source object -> target object per tenant pair) and restore plan records."""

    def put_ledger(self, entry: LedgerEntry) -> None:
        """Create or replace a ledger entry."""
        ...

    def get_ledger(self, *, target_tenant_id: str, source_tenant_id: str, policy_type: str,
                   source_id: str) -> LedgerEntry | None:
        """One ledger entry."""
        ...

    def list_ledger(self, *, target_tenant_id: str, source_tenant_id: str) -> list[LedgerEntry]:
        """Every ledger entry of one tenant pair."""
        ...

    def put_plan(self, record: PlanRecord) -> None:
        """Store a run's plan record (and index it as its request's newest preview)."""
        ...

    def get_plan(self, *, tenant_id: str, run_id: str) -> PlanRecord | None:
        """A run's plan record."""
        ...

    def latest_preview(self, *, tenant_id: str, request_key: str) -> PlanRecord | None:
        """The newest preview plan made for one request."""
        ...
