"""The storage contract: one suite, run against the in-memory fakes (unit) and Azurite (integration).

Subclasses provide a ``stores`` fixture returning a :class:`Stores`.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.domain import (
    AuditAction,
    AuditActor,
    AuditEvent,
    AuditSubject,
    CreatedBy,
    CredentialRef,
    Grant,
    GraphConnection,
    ItemOutcome,
    ManagedTenant,
    Notification,
    Role,
    RunKind,
    RunRecord,
    RunStatus,
    RunTarget,
    SnapshotRecord,
    new_audit_id,
    new_run_id,
    notification_id,
)
from shared.errors import ConcurrentUpdate, InvalidRequest, NotFound
from shared.ports import (
    ActiveEntry,
    AuditRepository,
    BlobStore,
    ClaimConflict,
    GrantRepository,
    IdempotencyEntry,
    ItemRepository,
    LockEntry,
    NotificationRepository,
    OutboxEntry,
    RunClaim,
    RunRepository,
    SnapshotIndex,
    TenantRepository,
)

T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
TENANT = "22222222-2222-2222-2222-222222222222"
OTHER = "33333333-3333-3333-3333-333333333333"


@dataclass
class Stores:
    runs: RunRepository
    items: ItemRepository
    snapshots: SnapshotIndex
    blobs: BlobStore
    notifications: NotificationRepository
    tenants: TenantRepository
    grants: GrantRepository
    audit: AuditRepository  # reads what ``grants`` writes with each change


def make_run(at: datetime = T0, *, tenant: str = TENANT, kind: RunKind = RunKind.POLICY_CAPTURE,
             key: str = "k" * 64, scope: dict[str, Any] | None = None) -> RunRecord:
    return RunRecord(id=new_run_id(at), tenant_id=tenant, kind=kind,
                     target=RunTarget(policy_type="settingsCatalog", policy_id="p"),
                     scope=scope or {}, created_by=CreatedBy(id="oid-1", name="Ada"),
                     created_at=at, derived_key=key)


def claim_for(run: RunRecord, *, idem: str | None = None, lock: bool = False,
              outbox: bool = False) -> RunClaim:
    return RunClaim(
        tenant_id=run.tenant_id, run=run, active=ActiveEntry(run.derived_key, run.id),
        idempotency=IdempotencyEntry(idem, "fp", run.id, T0 + timedelta(days=1)) if idem else None,
        lock=LockEntry(str(run.kind), run.id, run.derived_key) if lock else None,
        outbox=outbox_for(run) if outbox else None,
    )


def outbox_for(run: RunRecord, *, due_in: timedelta = timedelta(seconds=10)) -> OutboxEntry:
    return OutboxEntry(tenant_id=run.tenant_id, run_id=run.id, kind=run.kind, created_at=run.created_at,
                       due_at=run.created_at + due_in, attempts=1)


def item(item_id: str, status: str = "succeeded") -> ItemOutcome:
    action = {"succeeded": "captured", "failed": "failed", "skipped": "skipped"}[status]
    return ItemOutcome(item_id=item_id, policy_type="settingsCatalog", action=action, status=status,
                       started_at=T0, finished_at=T0 + timedelta(seconds=1))


class StorageContract:
    # ------------------------------------------------------------------ runs and claims

    def test_claim_then_get_round_trips_the_run(self, stores: Stores) -> None:
        run = make_run(scope={"selection": {"types": ["a", "b"]}, "n": 1})
        stores.runs.claim(claim_for(run))
        stored = stores.runs.get(tenant_id=TENANT, run_id=run.id)
        assert stored is not None
        assert stored.value == run
        assert stored.etag

    def test_losing_claim_writes_nothing(self, stores: Stores) -> None:
        first = make_run()
        stores.runs.claim(claim_for(first))
        second = make_run(T0 + timedelta(seconds=1))
        with pytest.raises(ClaimConflict):
            stores.runs.claim(claim_for(second, idem="scope-1", lock=True))
        assert stores.runs.get(tenant_id=TENANT, run_id=second.id) is None
        assert stores.runs.get_idempotency(tenant_id=TENANT, scope="scope-1") is None
        assert stores.runs.get_lock(tenant_id=TENANT, name=str(second.kind)) is None
        active = stores.runs.get_active(tenant_id=TENANT, derived_key=first.derived_key)
        assert active is not None
        assert active.value.run_id == first.id

    def test_claims_are_per_tenant(self, stores: Stores) -> None:
        stores.runs.claim(claim_for(make_run()))
        other = make_run(tenant=OTHER)
        stores.runs.claim(claim_for(other))
        assert stores.runs.get(tenant_id=OTHER, run_id=other.id) is not None
        assert stores.runs.get(tenant_id=TENANT, run_id=other.id) is None

    def test_idempotency_and_lock_rows_round_trip(self, stores: Stores) -> None:
        run = make_run(kind=RunKind.RESTORE_EXECUTE)
        stores.runs.claim(claim_for(run, idem="scope-2", lock=True))
        idem = stores.runs.get_idempotency(tenant_id=TENANT, scope="scope-2")
        assert idem is not None
        assert (idem.value.fingerprint, idem.value.run_id) == ("fp", run.id)
        assert idem.value.expires_at == T0 + timedelta(days=1)
        lock = stores.runs.get_lock(tenant_id=TENANT, name="restore.execute")
        assert lock is not None
        assert lock.value.run_id == run.id

    def test_idempotency_only_claim_attaches_to_existing_run(self, stores: Stores) -> None:
        run = make_run()
        stores.runs.claim(claim_for(run))
        entry = IdempotencyEntry("scope-3", run.derived_key, run.id, T0)
        stores.runs.claim(RunClaim(tenant_id=TENANT, idempotency=entry))
        with pytest.raises(ClaimConflict):
            stores.runs.claim(RunClaim(tenant_id=TENANT, idempotency=entry))

    def test_update_needs_the_current_etag(self, stores: Stores) -> None:
        run = make_run()
        stores.runs.claim(claim_for(run))
        stored = stores.runs.get(tenant_id=TENANT, run_id=run.id)
        assert stored is not None
        running = run.model_copy(update={"status": RunStatus.RUNNING, "started_at": T0})
        new_etag = stores.runs.update(running, etag=stored.etag)
        assert new_etag
        assert new_etag != stored.etag
        with pytest.raises(ConcurrentUpdate):
            stores.runs.update(running, etag=stored.etag)
        again = stores.runs.get(tenant_id=TENANT, run_id=run.id)
        assert again is not None
        assert again.value.status == RunStatus.RUNNING

    def test_update_with_release_frees_the_key_and_lock_of_this_run_only(self, stores: Stores) -> None:
        run = make_run(kind=RunKind.RESTORE_EXECUTE)
        stores.runs.claim(claim_for(run, lock=True))
        stored = stores.runs.get(tenant_id=TENANT, run_id=run.id)
        assert stored is not None
        done = run.model_copy(update={"status": RunStatus.SUCCEEDED, "finished_at": T0})
        stores.runs.update(done, etag=stored.etag, release=True)
        assert stores.runs.get_active(tenant_id=TENANT, derived_key=run.derived_key) is None
        assert stores.runs.get_lock(tenant_id=TENANT, name="restore.execute") is None
        # A successor holding the same key is not released by a late update of the old run.
        successor = make_run(T0 + timedelta(seconds=5), kind=RunKind.RESTORE_EXECUTE)
        stores.runs.claim(claim_for(successor, lock=True))
        old = stores.runs.get(tenant_id=TENANT, run_id=run.id)
        assert old is not None
        stores.runs.update(old.value, etag=old.etag, release=True)
        active = stores.runs.get_active(tenant_id=TENANT, derived_key=run.derived_key)
        assert active is not None
        assert active.value.run_id == successor.id
        assert stores.runs.get_lock(tenant_id=TENANT, name="restore.execute") is not None

    def test_stale_rows_are_deleted_only_with_their_etag(self, stores: Stores) -> None:
        run = make_run(kind=RunKind.RESTORE_EXECUTE)
        stores.runs.claim(claim_for(run, idem="scope-4", lock=True))
        active = stores.runs.get_active(tenant_id=TENANT, derived_key=run.derived_key)
        idem = stores.runs.get_idempotency(tenant_id=TENANT, scope="scope-4")
        lock = stores.runs.get_lock(tenant_id=TENANT, name="restore.execute")
        assert active
        assert idem
        assert lock
        # A stale ETag: one of a row written by another request (rows of one transaction may share one).
        other = make_run(T0 + timedelta(seconds=5), key="o" * 64)
        stores.runs.claim(claim_for(other))
        other_active = stores.runs.get_active(tenant_id=TENANT, derived_key=other.derived_key)
        assert other_active
        assert other_active.etag != active.etag
        with pytest.raises(ConcurrentUpdate):
            stores.runs.delete_active(tenant_id=TENANT, derived_key=run.derived_key,
                                      etag=other_active.etag)
        stores.runs.delete_active(tenant_id=TENANT, derived_key=run.derived_key, etag=active.etag)
        stores.runs.delete_idempotency(tenant_id=TENANT, scope="scope-4", etag=idem.etag)
        stores.runs.delete_lock(tenant_id=TENANT, name="restore.execute", etag=lock.etag)
        assert stores.runs.get_active(tenant_id=TENANT, derived_key=run.derived_key) is None
        assert stores.runs.get_idempotency(tenant_id=TENANT, scope="scope-4") is None
        assert stores.runs.get_lock(tenant_id=TENANT, name="restore.execute") is None

    def test_active_rows_are_listed_per_tenant_until_their_run_ends(self, stores: Stores) -> None:
        restore = make_run(kind=RunKind.RESTORE_EXECUTE, key="r" * 64)
        capture = make_run(T0 + timedelta(seconds=1), key="c" * 64)
        ended = make_run(T0 + timedelta(seconds=2), key="e" * 64)
        elsewhere = make_run(tenant=OTHER)
        stores.runs.claim(claim_for(restore, idem="scope-5", lock=True, outbox=True))
        for run in (capture, ended, elsewhere):
            stores.runs.claim(claim_for(run))
        stored = stores.runs.get(tenant_id=TENANT, run_id=ended.id)
        assert stored is not None
        done = ended.model_copy(update={"status": RunStatus.SUCCEEDED, "finished_at": T0})
        stores.runs.update(done, etag=stored.etag, release=True)

        # Only active rows: not the runs, nor their idempotency, lock or outbox rows; ordered by key.
        assert stores.runs.list_active(tenant_id=TENANT) == [
            ActiveEntry("c" * 64, capture.id), ActiveEntry("r" * 64, restore.id)]
        assert stores.runs.list_active(tenant_id=OTHER) == [ActiveEntry("k" * 64, elsewhere.id)]
        assert stores.runs.list_active(tenant_id="44444444-4444-4444-4444-444444444444") == []

    # ------------------------------------------------------------------ outbox

    def test_claim_writes_the_outbox_entry_with_the_run_and_returns_their_etags(self, stores: Stores) -> None:
        run = make_run()
        receipt = stores.runs.claim(claim_for(run, outbox=True))
        stored_run = stores.runs.get(tenant_id=TENANT, run_id=run.id)
        entry = stores.runs.get_outbox(tenant_id=TENANT, run_id=run.id)
        assert stored_run is not None
        assert entry is not None
        assert entry.value == outbox_for(run)
        assert entry.value.events == (RunStatus.QUEUED,)
        assert (receipt.run_etag, receipt.outbox_etag) == (stored_run.etag, entry.etag)
        assert stores.runs.get_outbox(tenant_id=OTHER, run_id=run.id) is None
        # A losing claim leaves no outbox entry behind.
        loser = make_run(T0 + timedelta(seconds=1))
        with pytest.raises(ClaimConflict):
            stores.runs.claim(claim_for(loser, outbox=True))
        assert stores.runs.get_outbox(tenant_id=TENANT, run_id=loser.id) is None

    def test_due_outbox_entries_are_listed_per_tenant(self, stores: Stores) -> None:
        due_here, also_here, due_there = make_run(), make_run(key="m" * 64), make_run(tenant=OTHER)
        later = make_run(T0 + timedelta(seconds=1), key="l" * 64)
        for run in (due_here, also_here, due_there):
            stores.runs.claim(claim_for(run, outbox=True))
        stores.runs.claim(RunClaim(tenant_id=TENANT, run=later,
                                   outbox=outbox_for(later, due_in=timedelta(hours=1))))
        soon = T0 + timedelta(minutes=1)
        due = stores.runs.list_due_outbox(tenant_id=TENANT, due_by=soon)
        assert sorted(e.value.run_id for e in due) == sorted([due_here.id, also_here.id])
        assert all(e.etag and e.value.tenant_id == TENANT for e in due)
        assert [e.value.run_id for e in stores.runs.list_due_outbox(tenant_id=OTHER, due_by=soon)] == [
            due_there.id]
        assert len(stores.runs.list_due_outbox(tenant_id=TENANT, due_by=soon, top=1)) == 1
        assert stores.runs.list_due_outbox(tenant_id=TENANT, due_by=T0) == []

    def test_an_outbox_lease_needs_the_current_etag(self, stores: Stores) -> None:
        run = make_run()
        receipt = stores.runs.claim(claim_for(run, outbox=True))
        assert receipt.outbox_etag is not None
        leased = dataclasses.replace(outbox_for(run), attempts=2, due_at=T0 + timedelta(minutes=1))
        etag = stores.runs.update_outbox(leased, etag=receipt.outbox_etag)
        assert etag != receipt.outbox_etag
        with pytest.raises(ConcurrentUpdate):
            stores.runs.update_outbox(leased, etag=receipt.outbox_etag)
        stored = stores.runs.get_outbox(tenant_id=TENANT, run_id=run.id)
        assert stored is not None
        assert (stored.value, stored.etag) == (leased, etag)

    def test_settling_deletes_the_entry_and_stamps_the_run_all_or_nothing(self, stores: Stores) -> None:
        run = make_run()
        receipt = stores.runs.claim(claim_for(run, outbox=True))
        assert receipt.run_etag is not None
        assert receipt.outbox_etag is not None
        entry = outbox_for(run)
        launched = run.model_copy(update={"launched_at": T0 + timedelta(seconds=1)})
        # The run changed meanwhile: nothing is written, the entry stays.
        moved = run.model_copy(update={"status": RunStatus.RUNNING})
        stores.runs.update(moved, etag=receipt.run_etag)
        with pytest.raises(ConcurrentUpdate):
            stores.runs.settle_outbox(entry, etag=receipt.outbox_etag, run=launched,
                                      run_etag=receipt.run_etag)
        still = stores.runs.get_outbox(tenant_id=TENANT, run_id=run.id)
        assert still is not None
        current = stores.runs.get(tenant_id=TENANT, run_id=run.id)
        assert current is not None
        assert current.value == moved
        # The entry changed meanwhile: the run is not stamped.
        with pytest.raises(ConcurrentUpdate):
            stores.runs.settle_outbox(entry, etag=current.etag, run=launched, run_etag=current.etag)
        unchanged = stores.runs.get(tenant_id=TENANT, run_id=run.id)
        assert unchanged is not None
        assert unchanged.value == moved
        stamped = moved.model_copy(update={"launched_at": T0 + timedelta(seconds=1)})
        stores.runs.settle_outbox(entry, etag=still.etag, run=stamped, run_etag=current.etag)
        assert stores.runs.get_outbox(tenant_id=TENANT, run_id=run.id) is None
        final = stores.runs.get(tenant_id=TENANT, run_id=run.id)
        assert final is not None
        assert final.value == stamped
        with pytest.raises(ConcurrentUpdate):
            stores.runs.settle_outbox(entry, etag=still.etag)

    def test_settling_without_a_run_only_deletes_the_entry(self, stores: Stores) -> None:
        run = make_run()
        receipt = stores.runs.claim(claim_for(run, outbox=True))
        assert receipt.outbox_etag is not None
        stores.runs.settle_outbox(outbox_for(run), etag=receipt.outbox_etag)
        assert stores.runs.get_outbox(tenant_id=TENANT, run_id=run.id) is None
        assert stores.runs.get(tenant_id=TENANT, run_id=run.id) is not None

    def test_list_is_newest_first_with_filters_and_paging(self, stores: Stores) -> None:
        runs = []
        for i in range(9):
            kind = RunKind.RESTORE_PREVIEW if i % 3 == 0 else RunKind.POLICY_CAPTURE
            run = make_run(T0 + timedelta(minutes=i), kind=kind, key=f"key{i}")
            stores.runs.claim(claim_for(run))
            runs.append(run)
        stores.runs.claim(claim_for(make_run(tenant=OTHER)))
        seen, token = [], None
        while True:
            page = stores.runs.list(tenant_id=TENANT, top=4, continuation=token)
            seen += [r.id for r in page.items]
            token = page.continuation
            if token is None:
                break
        assert seen == [r.id for r in reversed(runs)]
        previews = stores.runs.list(tenant_id=TENANT, kind=RunKind.RESTORE_PREVIEW, top=10)
        assert [r.id for r in previews.items] == [runs[6].id, runs[3].id, runs[0].id]
        stored = stores.runs.get(tenant_id=TENANT, run_id=runs[4].id)
        assert stored is not None
        stores.runs.update(stored.value.model_copy(update={"status": RunStatus.FAILED}),
                           etag=stored.etag)
        failed = stores.runs.list(tenant_id=TENANT, status=RunStatus.FAILED, top=10)
        assert [r.id for r in failed.items] == [runs[4].id]
        both = stores.runs.list(tenant_id=TENANT, kind=RunKind.POLICY_CAPTURE,
                                status=RunStatus.QUEUED, top=10)
        assert len(both.items) == 5

    def test_bad_continuation_token_is_invalid_request(self, stores: Stores) -> None:
        with pytest.raises(InvalidRequest):
            stores.runs.list(tenant_id=TENANT, continuation="not-a-token!")

    def test_list_recent_returns_active_and_recently_finished(self, stores: Stores) -> None:
        active, old, recent = make_run(key="a"), make_run(key="b"), make_run(key="c")
        for run in (active, old, recent):
            stores.runs.claim(claim_for(run))
        for run, finished in ((old, T0 - timedelta(hours=3)), (recent, T0 - timedelta(minutes=5))):
            stored = stores.runs.get(tenant_id=TENANT, run_id=run.id)
            assert stored is not None
            stores.runs.update(run.model_copy(update={"status": RunStatus.SUCCEEDED,
                                                      "finished_at": finished}),
                               etag=stored.etag)
        ids = {r.id for r in stores.runs.list_recent(tenant_id=TENANT,
                                                     finished_since=T0 - timedelta(hours=1))}
        assert ids == {active.id, recent.id}

    def test_large_scopes_round_trip(self, stores: Stores) -> None:
        scope = {"itemIds": [f"{i:08d}-aaaa-bbbb-cccc-dddddddddddd" for i in range(2000)]}
        run = make_run(scope=scope)
        stores.runs.claim(claim_for(run))
        stored = stores.runs.get(tenant_id=TENANT, run_id=run.id)
        assert stored is not None
        assert stored.value.scope == scope

    @pytest.mark.parametrize("bad", ["a/b", "a\\b", "a#b", "a?b", "a\nb", ""])
    def test_unsafe_keys_are_refused_before_any_request(self, stores: Stores, bad: str) -> None:
        with pytest.raises(InvalidRequest):
            stores.runs.get(tenant_id=bad, run_id="run_0")
        with pytest.raises(InvalidRequest):
            stores.items.upsert(tenant_id=TENANT, run_id="run_0", outcome=item(bad or "x/"))

    def test_unknown_run_is_none(self, stores: Stores) -> None:
        assert stores.runs.get(tenant_id=TENANT, run_id=new_run_id(T0)) is None
        assert stores.runs.get(tenant_id=TENANT, run_id="run_not-ours") is None

    # ------------------------------------------------------------------------- items

    def test_item_upsert_is_idempotent_and_counts_follow(self, stores: Stores) -> None:
        run_id = new_run_id(T0)
        stores.items.upsert(tenant_id=TENANT, run_id=run_id, outcome=item("b", "failed"))
        stores.items.upsert(tenant_id=TENANT, run_id=run_id, outcome=item("b", "succeeded"))
        stores.items.upsert(tenant_id=TENANT, run_id=run_id, outcome=item("a", "skipped"))
        stores.items.upsert(tenant_id=TENANT, run_id=run_id, outcome=item("c", "failed"))
        counts = stores.items.counts(tenant_id=TENANT, run_id=run_id)
        assert counts.model_dump() == {"total": 3, "succeeded": 1, "failed": 1, "skipped": 1}
        page = stores.items.list(tenant_id=TENANT, run_id=run_id)
        assert [i.item_id for i in page.items] == ["a", "b", "c"]
        assert page.items[1] == item("b", "succeeded")
        failed = stores.items.list(tenant_id=TENANT, run_id=run_id, status="failed")
        assert [i.item_id for i in failed.items] == ["c"]
        assert stores.items.counts(tenant_id=OTHER, run_id=run_id).total == 0

    def test_items_of_a_run_are_written_together_and_replace_what_was_there(self, stores: Stores) -> None:
        run_id = new_run_id(T0)
        stores.items.upsert_many(tenant_id=TENANT, run_id=run_id, outcomes=[item("i000", "skipped")])
        assert stores.items.list(tenant_id=TENANT, run_id=run_id).items == [item("i000", "skipped")]
        # Two transactions.
        outcomes = [item(f"i{n:03d}", "succeeded" if n % 3 else "failed") for n in range(130)]
        for _ in range(2):  # a repeated activity writes the same
            stores.items.upsert_many(tenant_id=TENANT, run_id=run_id, outcomes=outcomes)
            listed = stores.items.list(tenant_id=TENANT, run_id=run_id, top=1000).items
            assert listed == outcomes
        assert stores.items.counts(tenant_id=TENANT, run_id=run_id).model_dump() == {
            "total": 130, "succeeded": 86, "failed": 44, "skipped": 0}
        assert stores.items.counts(tenant_id=OTHER, run_id=run_id).total == 0
        stores.items.upsert_many(tenant_id=TENANT, run_id=run_id, outcomes=[])
        with pytest.raises(ValueError, match="once"):
            stores.items.upsert_many(tenant_id=TENANT, run_id=new_run_id(T0),
                                     outcomes=[item("a"), item("a", "failed")])

    def test_items_page(self, stores: Stores) -> None:
        run_id = new_run_id(T0)
        for i in range(7):
            stores.items.upsert(tenant_id=TENANT, run_id=run_id, outcome=item(f"i{i}"))
        first = stores.items.list(tenant_id=TENANT, run_id=run_id, top=5)
        assert len(first.items) == 5
        assert first.continuation
        rest = stores.items.list(tenant_id=TENANT, run_id=run_id, top=5,
                                 continuation=first.continuation)
        assert [i.item_id for i in rest.items] == ["i5", "i6"]
        assert rest.continuation is None

    # --------------------------------------------------------------- snapshots and blobs

    def test_blob_bodies_are_content_addressed_and_idempotent(self, stores: Stores) -> None:
        body = b'{"id":"p1","settings":[]}'
        digest, name, size = stores.blobs.put_json(TENANT, body)
        assert digest == hashlib.sha256(body).hexdigest()
        assert name == f"tenants/{TENANT}/sha256/{digest}.json"
        assert size == len(body)
        assert stores.blobs.put_json(TENANT, body) == (digest, name, size)
        assert stores.blobs.get_json(TENANT, digest) == body
        with pytest.raises(NotFound):
            stores.blobs.get_json(TENANT, "0" * 64)

    def test_tenants_never_share_a_blob(self, stores: Stores) -> None:
        body = b'{"id":"same body in two tenants"}'
        digest, name, _ = stores.blobs.put_json(TENANT, body)
        other = "99999999-9999-4999-8999-999999999999"
        _, other_name, _ = stores.blobs.put_json(other, body)
        assert other_name != name
        assert stores.blobs.get_json(other, digest) == body
        with pytest.raises(NotFound):
            stores.blobs.get_json("88888888-8888-4888-8888-888888888888", digest)

    def test_snapshot_index(self, stores: Stores) -> None:
        digest = hashlib.sha256(b"x").hexdigest()
        records = [
            SnapshotRecord(tenant_id=TENANT, snapshot_id=f"s{i}", policy_type=ptype,
                           source_id=f"src{i % 2}", captured_at=T0, content_hash=digest,
                           size_bytes=1, blob_name=f"tenants/{TENANT}/sha256/{digest}.json", run_id="run_X")
            for i, ptype in enumerate(["settingsCatalog", "compliance", "settingsCatalog"])
        ]
        for r in records:
            stores.snapshots.put(r)
        assert stores.snapshots.get(tenant_id=TENANT, snapshot_id="s1") == records[1]
        assert stores.snapshots.get(tenant_id=OTHER, snapshot_id="s1") is None
        assert stores.snapshots.list(tenant_id=TENANT) == records
        assert stores.snapshots.list(tenant_id=TENANT, policy_type="settingsCatalog",
                                     source_id="src0") == [records[0], records[2]]
        assert stores.snapshots.list(tenant_id=TENANT, run_id="run_Y") == []

    # ----------------------------------------------------------------- notifications

    def test_notifications_newest_run_first_and_unread_filter(self, stores: Stores) -> None:
        older, newer = new_run_id(T0), new_run_id(T0 + timedelta(minutes=1))
        for run_id, status in ((older, RunStatus.QUEUED), (older, RunStatus.RUNNING),
                               (newer, RunStatus.QUEUED)):
            stores.notifications.put(Notification(
                id=notification_id(run_id, status), principal_id="oid-1", tenant_id=TENANT,
                run_id=run_id, kind=RunKind.POLICY_CAPTURE, status=status, created_at=T0))
        page = stores.notifications.list(principal_id="oid-1")
        assert [(n.run_id, n.status) for n in page.items] == [
            (newer, RunStatus.QUEUED), (older, RunStatus.RUNNING), (older, RunStatus.QUEUED)]
        first = stores.notifications.get(principal_id="oid-1",
                                         notification_id=notification_id(newer, RunStatus.QUEUED))
        assert first is not None
        stores.notifications.put(first.model_copy(update={"read": True}))
        unread = stores.notifications.list(principal_id="oid-1", unread_only=True)
        assert [(n.run_id, n.status) for n in unread.items] == [
            (older, RunStatus.RUNNING), (older, RunStatus.QUEUED)]
        assert stores.notifications.get(principal_id="oid-2",
                                        notification_id=first.id) is None
        assert stores.notifications.get(principal_id="oid-1", notification_id="garbage") is None

    # ------------------------------------------------------------- tenants and grants

    def test_tenants(self, stores: Stores) -> None:
        graph = GraphConnection(client_id="0f0e0d0c-0b0a-0908-0706-050403020100",
                                credential=CredentialRef(type="federatedManagedIdentity"))
        a = ManagedTenant(tenant_id=TENANT, display_name="Contoso", graph=graph)
        b = ManagedTenant(tenant_id=OTHER, display_name="Fabrikam", graph=graph)
        stores.tenants.put(a)
        stores.tenants.put(b)
        assert stores.tenants.get(TENANT) == a
        assert stores.tenants.get("44444444-4444-4444-4444-444444444444") is None
        assert stores.tenants.get_many([OTHER, "nope", TENANT]) == [b, a]
        assert sorted(stores.tenants.list_ids()) == sorted([TENANT, OTHER])

    def test_grants_forward_and_reverse(self, stores: Stores) -> None:
        g1 = Grant(tenant_id=TENANT, principal_tenant_id=HOME, principal_id="p1", role=Role.ADMIN,
                   granted_by="x", granted_at=T0)
        g2 = Grant(tenant_id=OTHER, principal_tenant_id=HOME, principal_id="p1", role=Role.READER,
                   granted_by="x", granted_at=T0)
        g3 = Grant(tenant_id=TENANT, principal_tenant_id=HOME, principal_id="p2", role=Role.OPERATOR,
                   granted_by="x", granted_at=T0)
        # Same object id, another home tenant: another principal.
        g4 = Grant(tenant_id=TENANT, principal_tenant_id=ELSEWHERE, principal_id="p1", role=Role.READER,
                   granted_by="x", granted_at=T0)
        for i, g in enumerate((g1, g2, g3, g4)):
            stores.grants.put(g, event=grant_event(g.tenant_id, i), etag=None)
        stored = stores.grants.get(tenant_id=TENANT, principal_tenant_id=HOME, principal_id="p1")
        assert stored is not None
        assert stored.value == g1
        assert stores.grants.get(tenant_id=TENANT, principal_tenant_id=OTHER, principal_id="p1") is None
        assert stores.grants.list_for_tenant(TENANT) == [g1, g3, g4]
        assert stores.grants.list_for_principal(principal_tenant_id=HOME, principal_id="p1") == [g1, g2]
        assert stores.grants.list_for_principal(principal_tenant_id=ELSEWHERE, principal_id="p1") == [g4]
        changed = g1.model_copy(update={"role": Role.READER})
        stores.grants.put(changed, event=grant_event(TENANT, 10), etag=stored.etag)
        assert stores.grants.list_for_principal(principal_tenant_id=HOME,
                                                principal_id="p1")[0].role == Role.READER
        current = stores.grants.get(tenant_id=TENANT, principal_tenant_id=HOME, principal_id="p1")
        assert current is not None
        stores.grants.delete(tenant_id=TENANT, principal_tenant_id=HOME, principal_id="p1",
                             event=grant_event(TENANT, 11), etag=current.etag)
        assert stores.grants.get(tenant_id=TENANT, principal_tenant_id=HOME, principal_id="p1") is None
        assert stores.grants.list_for_principal(principal_tenant_id=HOME, principal_id="p1") == [g2]
        assert stores.grants.list_for_tenant(TENANT) == [g3, g4]

    def test_grant_changes_are_conditional_and_stored_with_their_event(self, stores: Stores) -> None:
        grant = Grant(tenant_id=TENANT, principal_tenant_id=HOME, principal_id="p1", role=Role.ADMIN,
                      granted_by="x", granted_at=T0)
        first = grant_event(TENANT, 1)
        stores.grants.put(grant, event=first, etag=None)
        stale = stores.grants.get(tenant_id=TENANT, principal_tenant_id=HOME, principal_id="p1")
        assert stale is not None
        # Created meanwhile: a second create loses, and its event is not stored either.
        with pytest.raises(ConcurrentUpdate):
            stores.grants.put(grant, event=grant_event(TENANT, 2), etag=None)
        third = grant_event(TENANT, 3)
        stores.grants.put(grant.model_copy(update={"role": Role.READER}), event=third, etag=stale.etag)
        # Changed meanwhile: writes and deletes with the old ETag lose, without an event.
        with pytest.raises(ConcurrentUpdate):
            stores.grants.put(grant, event=grant_event(TENANT, 4), etag=stale.etag)
        with pytest.raises(ConcurrentUpdate):
            stores.grants.delete(tenant_id=TENANT, principal_tenant_id=HOME, principal_id="p1",
                                 event=grant_event(TENANT, 5), etag=stale.etag)
        current = stores.grants.get(tenant_id=TENANT, principal_tenant_id=HOME, principal_id="p1")
        assert current is not None
        assert current.value.role == Role.READER
        # An event id that is already stored makes the whole change fail.
        with pytest.raises(ConcurrentUpdate):
            stores.grants.put(grant, event=first, etag=current.etag)
        assert [e.id for e in stores.audit.list(tenant_id=TENANT).items] == [third.id, first.id]
        with pytest.raises(InvalidRequest):
            stores.grants.get(tenant_id=TENANT, principal_tenant_id="a|b", principal_id="p1")

    # ------------------------------------------------------------- audit

    def test_audit_lists_newest_first_per_tenant_with_paging_and_run_filter(self, stores: Stores) -> None:
        events = [grant_event(TENANT, i, run_id="run_1" if i % 2 else None) for i in range(5)]
        for event in events:
            stores.audit.append(event)
        stores.audit.append(grant_event(OTHER, 9))
        stores.audit.append(events[0])  # appending again is idempotent
        newest_first = [e.id for e in reversed(events)]
        seen: list[str] = []
        token: str | None = None
        while True:
            page = stores.audit.list(tenant_id=TENANT, top=2, continuation=token)
            assert len(page.items) <= 2
            seen += [e.id for e in page.items]
            token = page.continuation
            if token is None:
                break
        assert seen == newest_first
        assert stores.audit.list(tenant_id=TENANT).items == list(reversed(events))
        assert [e.id for e in stores.audit.list(tenant_id=TENANT, run_id="run_1").items] == [
            events[3].id, events[1].id]
        assert [e.tenant_id for e in stores.audit.list(tenant_id=OTHER).items] == [OTHER]
        assert stores.audit.list(tenant_id="44444444-4444-4444-4444-444444444444").items == []
        with pytest.raises(InvalidRequest):
            stores.audit.list(tenant_id=TENANT, top=0)
        with pytest.raises(InvalidRequest):
            stores.audit.list(tenant_id=TENANT, continuation="not-a-token!")


HOME = "66666666-6666-6666-6666-666666666666"
ELSEWHERE = "77777777-7777-7777-7777-777777777777"


def grant_event(tenant_id: str, minute: int, *, run_id: str | None = None) -> AuditEvent:
    """A grant event ``minute`` minutes after T0 (so events order by ``minute``)."""
    at = T0 + timedelta(minutes=minute)
    return AuditEvent(id=new_audit_id(at), tenant_id=tenant_id, action=AuditAction.GRANT_PUT, at=at,
                      actor=AuditActor(tenant_id=HOME, id="admin", name="Admin"),
                      subject=AuditSubject(tenant_id=HOME, id="p1"), old_role=None, new_role=Role.READER,
                      run_id=run_id)
