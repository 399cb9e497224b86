"""Garbage collection of content blobs: only bodies nothing refers to, never one a capture just wrote."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.domain import BackupSet, BackupSetItem, CreatedBy, Selection, SnapshotRecord, new_run_id
from shared.domain.backupsets import backup_set_id_for_run
from shared.domain.schedules import BackupSchedule, Retention
from shared.ports import BlobEntry
from shared.services.backupsets import BackupSetService
from shared.services.blob_gc import BLOB_GRACE, BlobCollector
from shared.services.schedules import ScheduleService
from shared.storage.memory import InMemoryBlobStore, InMemorySnapshotIndex
from shared.storage.memory_backupsets import InMemoryBackupSetRepository
from tests.fakes import FakeClock, RunsHarness

TENANT = "22222222-2222-2222-2222-222222222222"
OTHER = "33333333-3333-3333-3333-333333333333"
T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


class World:
    def __init__(self) -> None:
        self.clock = FakeClock(T0)
        self.sets = InMemoryBackupSetRepository()
        self.snapshots = InMemorySnapshotIndex()
        self.blobs = InMemoryBlobStore(clock=self.clock)
        self.collector = BlobCollector(sets=self.sets, snapshots=self.snapshots, blobs=self.blobs,
                                       clock=self.clock)

    def body(self, text: str, tenant: str = TENANT) -> str:
        return self.blobs.put_json(tenant, f'{{"v":"{text}"}}'.encode())[0]

    def set_holding(self, *hashes: str, status: str = "complete") -> BackupSet:
        run_id = new_run_id(self.clock())
        backup_set = BackupSet(id=backup_set_id_for_run(run_id), tenant_id=TENANT, name="s", run_id=run_id,
                               status=status, selection=Selection(all=True), created_by=CreatedBy(id="a"),
                               created_at=self.clock())  # type: ignore[arg-type]
        self.sets.put_set(backup_set)
        self.sets.put_items([BackupSetItem.pending(
            tenant_id=TENANT, backup_set_id=backup_set.id, policy_type="settingsCatalog", policy_id=f"p{n}",
            display_name="", batch=0).model_copy(update={"status": "captured", "content_hash": content})
            for n, content in enumerate(hashes)])
        self.clock.advance(seconds=1)
        return backup_set

    def stored(self, tenant: str = TENANT) -> set[str]:
        return {entry.content_hash for entry in self.blobs.list_bodies(tenant)}


class TestCollector:
    def test_only_old_bodies_no_set_item_or_snapshot_refers_to_are_deleted(self) -> None:
        world = World()
        in_set, in_snapshot, orphan = world.body("set"), world.body("snap"), world.body("orphan")
        other_tenant = world.body("orphan", tenant=OTHER)
        world.set_holding(in_set)
        world.snapshots.put(SnapshotRecord(
            tenant_id=TENANT, snapshot_id="run_X:settingsCatalog:p", policy_type="settingsCatalog",
            source_id="p", captured_at=T0, content_hash=in_snapshot, size_bytes=1,
            blob_name=f"tenants/{TENANT}/sha256/{in_snapshot}.json"))
        world.clock.advance(hours=2)
        young = world.body("young")  # unreferenced, but written within the grace: a capture may need it

        assert world.collector.collect(TENANT) == 1

        assert world.stored() == {in_set, in_snapshot, young}
        assert world.stored(OTHER) == {other_tenant}
        world.clock.advance(hours=2)
        assert world.collector.collect(TENANT) == 1
        assert world.stored() == {in_set, in_snapshot}
        assert orphan not in world.stored()

    def test_an_old_body_a_capture_stores_again_during_a_collection_is_kept(self) -> None:
        world = World()
        reused = world.body("same")
        world.clock.advance(hours=3)

        class CaptureDuringListing(InMemoryBlobStore):
            """A capture writes the same content (and its set item) while the collector lists bodies."""

            def list_bodies(self, tenant_id: str):  # type: ignore[no-untyped-def]
                listed = list(world.blobs.list_bodies(tenant_id))
                world.blobs.put_json(TENANT, b'{"v":"same"}')
                world.set_holding(reused)
                return iter(listed)

            def delete_body(self, tenant_id: str, entry: BlobEntry) -> bool:
                return world.blobs.delete_body(tenant_id, entry)

        collector = BlobCollector(sets=world.sets, snapshots=world.snapshots, blobs=CaptureDuringListing(),
                                  clock=world.clock)
        assert collector.collect(TENANT) == 0
        assert world.stored() == {reused}

    def test_a_body_stored_again_just_before_its_set_item_is_written_is_within_the_grace(self) -> None:
        world = World()
        reused = world.body("same")
        world.clock.advance(days=30)
        world.body("same")  # the capture's write: a month-old body becomes fresh again
        world.clock.advance(seconds=5)
        assert world.collector.collect(TENANT) == 0  # its set item is not written yet: the grace keeps it
        world.set_holding(reused)
        world.clock.advance(hours=2)
        assert world.collector.collect(TENANT) == 0
        assert world.stored() == {reused}
        assert timedelta(minutes=10) <= BLOB_GRACE


class TestRetention:
    async def test_retention_deletes_old_sets_then_the_blobs_only_they_referred_to(self) -> None:
        runs = RunsHarness(clock=FakeClock(T0))
        world = World()
        world.clock = runs.clock
        world.blobs = InMemoryBlobStore(clock=runs.clock)
        collector = BlobCollector(sets=world.sets, snapshots=world.snapshots, blobs=world.blobs,
                                  clock=runs.clock)

        async def no_graph(**_: object) -> list[object]:
            return []

        backup_sets = BackupSetService(sets=world.sets, runs=runs.service, run_rows=runs.runs,
                                       blobs=world.blobs, list_policies=no_graph, clock=runs.clock)
        service = ScheduleService(sets=world.sets, backup_sets=backup_sets, tenant_ids=lambda: [TENANT],
                                  clock=runs.clock, blobs=collector)
        shared_body, old_only = world.body("shared"), world.body("old")
        world.set_holding(shared_body, old_only)
        world.clock.advance(hours=1)
        newest = world.set_holding(shared_body, world.body("new"))
        world.sets.put_schedule(BackupSchedule(
            tenant_id=TENANT, cron="0 2 * * *", selection=Selection(all=True),
            retention=Retention(keep_last=1), created_by=CreatedBy(id="a"), created_at=T0))
        world.clock.advance(hours=2)

        assert await service.apply_retention() == 1

        assert [s.id for s in world.sets.list_sets(tenant_id=TENANT).items] == [newest.id]
        assert old_only not in world.stored()
        assert shared_body in world.stored()
        stored = world.sets.get_schedule(TENANT)
        assert stored is not None
        assert stored.value.blobs_collected_at == world.clock()

        # The next minute deletes no set and collects nothing; a day later it collects again.
        orphan = world.body("orphan")
        world.clock.advance(hours=2)
        assert await service.apply_retention() == 0
        assert orphan in world.stored()
        world.clock.advance(days=1)
        await service.apply_retention()
        assert orphan not in world.stored()
