from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from shared.domain import ErrorInfo, ItemOutcome, Principal, RunKind, RunStatus, RunTarget
from shared.errors import (
    IdempotencyKeyReused,
    InvalidRequest,
    RestoreAlreadyActive,
    RunNotFound,
)
from shared.services.outbox import OutboxDispatcher, orchestration_launcher
from shared.services.runs import StartResult
from shared.storage.memory import InMemoryNotificationRepository, InMemoryRunRepository
from tests.fakes import RunsHarness, make_principal

TENANT = "22222222-2222-2222-2222-222222222222"
OTHER_TENANT = "33333333-3333-3333-3333-333333333333"
TARGET = RunTarget(policy_type="settingsCatalog", policy_id="pol-1")
ADA = make_principal()

_RUN_PORT = {"claim", "get", "list", "list_recent", "update", "get_active", "delete_active",
             "get_idempotency", "delete_idempotency", "get_lock", "delete_lock", "get_outbox",
             "update_outbox", "list_due_outbox", "settle_outbox"}
_NOTIFICATION_PORT = {"put", "get", "list"}


class CountingRuns(InMemoryRunRepository):
    """The in-memory run repository, recording each storage round trip by port method."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __getattribute__(self, name: str) -> Any:
        if name in _RUN_PORT:
            object.__getattribute__(self, "calls").append(name)
        return super().__getattribute__(name)


class CountingNotifications(InMemoryNotificationRepository):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __getattribute__(self, name: str) -> Any:
        if name in _NOTIFICATION_PORT:
            object.__getattribute__(self, "calls").append(name)
        return super().__getattribute__(name)


@dataclass
class Harness(RunsHarness):
    """A RunService and an outbox dispatcher over counting in-memory repositories."""

    runs: CountingRuns = field(default_factory=CountingRuns)
    notification_repo: CountingNotifications = field(default_factory=CountingNotifications)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.outbox = self.dispatcher()

    def dispatcher(self) -> OutboxDispatcher:
        """Another process's dispatcher over the same storage."""
        return OutboxDispatcher(runs=self.runs, service=self.service, clock=self.clock,
                                tenant_ids=lambda: [TENANT, OTHER_TENANT])

    def round_trips(self) -> list[str]:
        return self.runs.calls + [f"notification.{c}" for c in self.notification_repo.calls]

    def reset_counts(self) -> None:
        self.runs.calls.clear()
        self.notification_repo.calls.clear()


@pytest.fixture
def h() -> Harness:
    return Harness()


async def claim(h: Harness, *, scope: dict[str, Any] | None = None, key: str | None = None,
                kind: RunKind = RunKind.POLICY_CAPTURE, principal: Principal = ADA,
                tenant: str = TENANT, target: RunTarget = TARGET) -> StartResult:
    """What the request path does: the claim only."""
    return await h.service.start(principal=principal, tenant_id=tenant, kind=kind, target=target,
                                 scope=scope if scope is not None else {}, idempotency_key=key)


async def start(h: Harness, **kwargs: Any) -> StartResult:
    """A start request as the trigger serves it: claim, hand to the dispatcher, let it finish."""
    result = await claim(h, **kwargs)
    h.outbox.submit(result, h.launcher)
    await h.outbox.idle()
    return result


def outcome(item_id: str, status: str) -> ItemOutcome:
    action = {"succeeded": "captured", "failed": "failed", "skipped": "skipped"}[status]
    return ItemOutcome(item_id=item_id, policy_type="settingsCatalog", action=action,
                       status=status)


class TestClaim:
    async def test_a_first_start_is_one_transaction_and_no_read(self, h):
        result = await claim(h)
        assert h.round_trips() == ["claim"]
        assert not result.reused
        assert result.run.status == RunStatus.QUEUED
        keyed = await claim(h, key="wf-1", scope={"other": 1})
        assert not keyed.reused
        assert h.round_trips() == ["claim", "claim"]
        assert h.launcher.launched == []  # nothing else happened on the request path

    async def test_the_background_delivery_launches_notifies_and_settles_without_reading_the_run(self, h):
        result = await claim(h)
        h.reset_counts()
        h.outbox.submit(result, h.launcher)
        await h.outbox.idle()
        assert h.launcher.launched == [result.run.id]
        # The queued event (read + write of the notification) and one transaction that stamps the launch
        # and deletes the outbox entry. Before the outbox, the request itself did these plus an
        # idempotency pre-read and a read-modify-write of the run.
        assert sorted(h.round_trips()) == ["notification.get", "notification.put", "settle_outbox"]
        stored = h.service.get(tenant_id=TENANT, run_id=result.run.id)
        assert stored.launched_at is not None
        assert h.runs.get_outbox(tenant_id=TENANT, run_id=result.run.id) is None
        assert [n.status for n in h.notifications.list(principal=ADA).items] == [RunStatus.QUEUED]

    async def test_identical_start_while_active_reuses_without_launching(self, h):
        first = await start(h, scope={"a": 1, "b": [1, 2]})
        second = await start(h, scope={"b": [1, 2], "a": 1})
        assert second.reused
        assert second.run.id == first.run.id
        assert h.launcher.launched == [first.run.id]

    async def test_different_requests_get_different_runs(self, h):
        a = await start(h, scope={"selection": {"all": True}})
        b = await start(h, scope={"selection": {"types": ["x"]}})
        c = await start(h, tenant=OTHER_TENANT)
        assert len({a.run.id, b.run.id, c.run.id}) == 3
        assert not (a.reused)
        assert not (b.reused)
        assert not (c.reused)

    async def test_fifty_concurrent_identical_starts_create_one_run(self, h):
        h.launcher.delay = 0.05  # losers resolve their conflict while the winner is still launching

        async def one() -> StartResult:
            result = await claim(h, scope={"n": 1})
            h.outbox.submit(result, h.launcher)
            return result

        results = await asyncio.gather(*(one() for _ in range(50)))
        await h.outbox.idle()
        ids = {r.run.id for r in results}
        assert len(ids) == 1
        assert sum(not r.reused for r in results) == 1
        assert h.launcher.launched == list(ids)
        assert len(h.service.list(tenant_id=TENANT, top=100).items) == 1

    async def test_start_after_completion_creates_a_new_run(self, h):
        first = await start(h)
        h.service.mark_running(tenant_id=TENANT, run_id=first.run.id)
        h.service.complete(tenant_id=TENANT, run_id=first.run.id)
        h.clock.advance(seconds=1)
        second = await start(h)
        assert not second.reused
        assert second.run.id != first.run.id
        assert h.launcher.launched == [first.run.id, second.run.id]


class TestIdempotencyKey:
    async def test_same_key_same_request_returns_original_even_after_it_finished(self, h):
        first = await start(h, key="wf-run-1")
        h.service.complete(tenant_id=TENANT, run_id=first.run.id)
        replay = await start(h, key="wf-run-1")
        assert replay.reused
        assert replay.run.id == first.run.id
        assert replay.run.status == RunStatus.SUCCEEDED
        assert h.launcher.launched == [first.run.id]

    async def test_same_key_different_request_is_422(self, h):
        await start(h, key="wf-run-1", scope={"a": 1})
        with pytest.raises(IdempotencyKeyReused) as err:
            await start(h, key="wf-run-1", scope={"a": 2})
        assert err.value.status == 422
        assert err.value.code == "idempotency-key-reused"

    async def test_key_is_scoped_to_the_caller(self, h):
        mine = await start(h, key="k1", scope={"a": 1})
        h.service.complete(tenant_id=TENANT, run_id=mine.run.id)
        bob = make_principal("44444444-4444-4444-4444-444444444444", name="Bob")
        theirs = await start(h, key="k1", scope={"a": 2}, principal=bob)
        assert not theirs.reused
        assert theirs.run.id != mine.run.id

    async def test_key_joining_an_active_run_is_remembered(self, h):
        active = await start(h)  # no key
        joined = await start(h, key="k2")
        assert joined.reused
        assert joined.run.id == active.run.id
        h.service.complete(tenant_id=TENANT, run_id=active.run.id)
        replay = await start(h, key="k2")
        assert replay.run.id == active.run.id
        with pytest.raises(IdempotencyKeyReused):
            await start(h, key="k2", scope={"other": True})

    async def test_expired_key_of_finished_run_is_a_new_request(self, h):
        first = await start(h, key="k3")
        h.service.complete(tenant_id=TENANT, run_id=first.run.id)
        h.clock.advance(hours=25)
        again = await start(h, key="k3", scope={"different": 1})
        assert not again.reused
        assert again.run.id != first.run.id

    async def test_key_outlives_its_expiry_while_the_run_is_active(self, h):
        first = await start(h, key="k4")
        h.clock.advance(hours=48)
        with pytest.raises(IdempotencyKeyReused):
            await start(h, key="k4", scope={"different": 1})
        assert (await start(h, key="k4")).run.id == first.run.id

    @pytest.mark.parametrize("key", ["", " ", "x" * 256, "naïve", "a b"])
    async def test_malformed_keys_are_refused(self, h, key):
        with pytest.raises(InvalidRequest):
            await start(h, key=key)
        assert h.launcher.launched == []

    async def test_fifty_concurrent_starts_with_the_same_key(self, h):
        results = await asyncio.gather(*(start(h, key="wf-9") for _ in range(50)))
        assert len({r.run.id for r in results}) == 1
        assert len(h.launcher.launched) == 1


class TestExclusiveRestore:
    async def test_a_different_restore_while_one_is_active_is_409(self, h):
        first = await start(h, kind=RunKind.RESTORE_EXECUTE, target=RunTarget(backup_set_id="a"))
        with pytest.raises(RestoreAlreadyActive) as err:
            await start(h, kind=RunKind.RESTORE_EXECUTE, target=RunTarget(backup_set_id="b"))
        assert err.value.status == 409
        assert err.value.extra["active_run_id"] == first.run.id
        same = await start(h, kind=RunKind.RESTORE_EXECUTE, target=RunTarget(backup_set_id="a"))
        assert same.reused
        assert same.run.id == first.run.id

    async def test_restore_lock_is_released_at_the_end(self, h):
        first = await start(h, kind=RunKind.RESTORE_EXECUTE, target=RunTarget(backup_set_id="a"))
        h.service.complete(tenant_id=TENANT, run_id=first.run.id)
        second = await start(h, kind=RunKind.RESTORE_EXECUTE, target=RunTarget(backup_set_id="b"))
        assert not second.reused

    async def test_restores_on_other_tenants_are_independent(self, h):
        await start(h, kind=RunKind.RESTORE_EXECUTE, target=RunTarget(backup_set_id="a"))
        other = await start(h, kind=RunKind.RESTORE_EXECUTE, tenant=OTHER_TENANT,
                            target=RunTarget(backup_set_id="b"))
        assert not other.reused


class TestRecovery:
    async def test_a_failed_launch_is_retried_by_the_sweeper_once_the_lease_runs_out(self, h):
        h.launcher.fail_next = 1
        result = await start(h, key="k")  # the request still answers: the run is accepted
        run_id = result.run.id
        stored = h.service.get(tenant_id=TENANT, run_id=run_id)
        assert stored.status == RunStatus.QUEUED
        assert stored.launched_at is None
        assert h.launcher.launched == []
        assert await h.outbox.sweep(h.launcher) == 0  # the request's lease still holds
        h.clock.advance(seconds=11)
        assert await h.outbox.sweep(h.launcher) == 1
        assert h.launcher.launched == [run_id]
        assert h.service.get(tenant_id=TENANT, run_id=run_id).launched_at is not None
        assert h.runs.get_outbox(tenant_id=TENANT, run_id=run_id) is None
        # Delivered once: later sweeps and identical starts launch nothing more.
        h.clock.advance(minutes=5)
        assert await h.outbox.sweep(h.launcher) == 0
        assert (await start(h, key="k")).run.id == run_id
        assert h.launcher.launched == [run_id]
        assert len(h.notifications.list(principal=ADA).items) == 1

    async def test_a_background_delivery_that_starts_after_its_lease_leaves_it_to_the_sweeper(self, h):
        result = await claim(h)
        h.clock.advance(seconds=11)  # the request's task was starved past its lease
        h.outbox.submit(result, h.launcher)
        await h.outbox.idle()
        assert h.launcher.launched == []
        assert h.runs.get_outbox(tenant_id=TENANT, run_id=result.run.id) is not None
        assert await h.outbox.sweep(h.launcher) == 1
        assert h.launcher.launched == [result.run.id]

    async def test_a_run_lost_after_its_claim_is_launched_by_the_sweeper_without_any_request(self, h):
        lost = await claim(h)  # the process died before its background delivery ran
        h.clock.advance(seconds=5)
        assert await h.outbox.sweep(h.launcher) == 0
        h.clock.advance(seconds=6)
        assert await h.outbox.sweep(h.launcher) == 1
        assert h.launcher.launched == [lost.run.id]
        assert [n.status for n in h.notifications.list(principal=ADA).items] == [RunStatus.QUEUED]

    async def test_an_identical_start_or_the_monitor_nudges_an_overdue_launch(self, h):
        lost = await claim(h)
        within_grace = await start(h)
        assert within_grace.reused
        assert h.launcher.launched == []
        h.clock.advance(seconds=11)
        after = await start(h)
        assert after.run.id == lost.run.id
        assert h.launcher.launched == [lost.run.id]
        h.outbox.nudge(h.service.get(tenant_id=TENANT, run_id=lost.run.id), h.launcher)
        await h.outbox.idle()
        assert h.launcher.launched == [lost.run.id]

    async def test_two_processes_sweeping_at_once_launch_once(self, h):
        lost = await claim(h)
        h.clock.advance(seconds=11)
        h.launcher.delay = 0.02
        other = h.dispatcher()
        await asyncio.gather(h.outbox.sweep(h.launcher), other.sweep(h.launcher))
        assert h.launcher.launched == [lost.run.id]
        assert h.runs.get_outbox(tenant_id=TENANT, run_id=lost.run.id) is None

    async def test_a_run_its_orchestration_already_moved_is_settled_without_overwriting_it(self, h):
        result = await claim(h)

        async def launch_and_start_running(run):
            h.launcher.launched.append(run.id)
            h.service.mark_running(tenant_id=TENANT, run_id=run.id, expected_items=1)

        h.outbox.submit(result, launch_and_start_running)
        await h.outbox.idle()
        stored = h.service.get(tenant_id=TENANT, run_id=result.run.id)
        assert stored.status == RunStatus.RUNNING
        assert stored.expected_items == 1
        assert h.runs.get_outbox(tenant_id=TENANT, run_id=result.run.id) is None

    async def test_an_entry_left_behind_by_a_run_that_ended_is_dropped_without_launching(self, h):
        result = await claim(h)
        h.service.complete(tenant_id=TENANT, run_id=result.run.id, cancelled=True)
        h.clock.advance(seconds=11)
        assert await h.outbox.sweep(h.launcher) == 1
        assert h.launcher.launched == []
        assert h.runs.get_outbox(tenant_id=TENANT, run_id=result.run.id) is None

    async def test_sweeper_fails_runs_that_never_launched_and_frees_their_key(self, h):
        h.launcher.fail_next = 1000
        doomed = await start(h)
        h.launcher.fail_next = 0
        launched = (await start(h, scope={"other": 1})).run
        h.launcher.fail_next = 1000
        for _ in range(40):  # the sweeper keeps retrying, backing off, for half an hour
            h.clock.advance(minutes=1)
            await h.outbox.sweep(h.launcher)
        failed = h.service.get(tenant_id=TENANT, run_id=doomed.run.id)
        assert failed.status == RunStatus.FAILED
        assert failed.failure is not None
        assert failed.failure.code == "launch-failed"
        assert h.runs.get_outbox(tenant_id=TENANT, run_id=doomed.run.id) is None
        assert h.service.get(tenant_id=TENANT, run_id=launched.id).status == RunStatus.QUEUED
        h.launcher.fail_next = 0
        fresh = await start(h)
        assert not fresh.reused
        assert fresh.run.id != doomed.run.id


class TestOrchestrationLauncher:
    @staticmethod
    def client(runtime: str | None) -> Any:
        class Client:
            async def start_new(self, name, instance_id=None, client_input=None):
                raise Exception({"ExceptionMessage": "something the host said"})

            async def get_status(self, instance_id):
                status = SimpleNamespace(name=runtime) if runtime else None
                return SimpleNamespace(runtime_status=status)

        return Client()

    async def test_an_instance_that_already_exists_is_success_whatever_the_error_says(self, h):
        run = (await claim(h)).run
        await orchestration_launcher(self.client("Running"))(run)

    async def test_a_start_that_created_nothing_fails(self, h):
        run = (await claim(h)).run
        with pytest.raises(Exception, match="something the host said"):
            await orchestration_launcher(self.client(None))(run)


class TestLifecycle:
    async def test_counts_and_status_derive_from_items(self, h):
        run = (await start(h)).run
        h.service.mark_running(tenant_id=TENANT, run_id=run.id, expected_items=4)
        h.service.record_item(tenant_id=TENANT, run_id=run.id, outcome=outcome("a", "failed"))
        h.service.record_item(tenant_id=TENANT, run_id=run.id, outcome=outcome("a", "succeeded"))
        h.service.record_item(tenant_id=TENANT, run_id=run.id, outcome=outcome("b", "failed"))
        h.service.record_item(tenant_id=TENANT, run_id=run.id, outcome=outcome("c", "skipped"))
        live = h.service.get(tenant_id=TENANT, run_id=run.id)
        assert live.counts.model_dump() == {"total": 3, "succeeded": 1, "failed": 1, "skipped": 1}
        done = h.service.complete(tenant_id=TENANT, run_id=run.id)
        assert done.status == RunStatus.PARTIAL
        assert done.counts.total == 3
        assert done.finished_at is not None

    async def test_a_batch_item_is_recorded_in_one_write_without_reading_the_run(self, h):
        run = (await start(h)).run
        h.service.mark_running(tenant_id=TENANT, run_id=run.id, expected_items=2)
        reads = []
        get = h.runs.get
        h.runs.get = lambda **key: reads.append(key) or get(**key)
        h.service.record_batch_item(tenant_id=TENANT, run_id=run.id, outcome=outcome("a", "failed"))
        h.service.record_batch_item(tenant_id=TENANT, run_id=run.id, outcome=outcome("a", "succeeded"))
        h.service.record_batch_item(tenant_id=TENANT, run_id=run.id, outcome=outcome("b", "succeeded"))
        assert reads == []
        h.runs.get = get
        # A repeat replaces the item, as record_item does; the counts freeze when the run completes.
        done = h.service.complete(tenant_id=TENANT, run_id=run.id)
        assert done.counts.model_dump() == {"total": 2, "succeeded": 2, "failed": 0, "skipped": 0}
        assert done.status == RunStatus.SUCCEEDED
        # Single-policy runs keep the check: an outcome after the end is refused there.
        assert not h.service.record_item(tenant_id=TENANT, run_id=run.id, outcome=outcome("c", "failed"))

    async def test_complete_is_idempotent(self, h):
        run = (await start(h)).run
        first = h.service.complete(tenant_id=TENANT, run_id=run.id,
                                   failure=ErrorInfo(code="graph-unavailable", message="503"))
        h.clock.advance(seconds=5)
        second = h.service.complete(tenant_id=TENANT, run_id=run.id)
        assert first.status == RunStatus.FAILED
        assert second == first

    async def test_mark_running_is_idempotent_and_does_not_revive_finished_runs(self, h):
        run = (await start(h)).run
        a = h.service.mark_running(tenant_id=TENANT, run_id=run.id)
        b = h.service.mark_running(tenant_id=TENANT, run_id=run.id)
        assert a.status == b.status == RunStatus.RUNNING
        assert a.started_at == b.started_at
        h.service.complete(tenant_id=TENANT, run_id=run.id)
        c = h.service.mark_running(tenant_id=TENANT, run_id=run.id)
        assert c.status == RunStatus.SUCCEEDED

    async def test_cancel(self, h):
        run = (await start(h)).run
        done = h.service.complete(tenant_id=TENANT, run_id=run.id, cancelled=True)
        assert done.status == RunStatus.CANCELLED

    async def test_runs_of_another_tenant_are_not_found(self, h):
        run = (await start(h)).run
        with pytest.raises(RunNotFound):
            h.service.get(tenant_id=OTHER_TENANT, run_id=run.id)
        with pytest.raises(RunNotFound):
            h.service.record_item(tenant_id=OTHER_TENANT, run_id=run.id, outcome=outcome("a", "failed"))
        with pytest.raises(RunNotFound):
            h.service.list_items(tenant_id=OTHER_TENANT, run_id=run.id)

    async def test_list_newest_first_with_filters_and_paging(self, h):
        ids = []
        for i in range(7):
            kind = RunKind.POLICY_CAPTURE if i % 2 else RunKind.RESTORE_PREVIEW
            ids.append((await start(h, kind=kind, scope={"i": i})).run.id)
            h.clock.advance(seconds=1)
        h.service.complete(tenant_id=TENANT, run_id=ids[0])
        page1 = h.service.list(tenant_id=TENANT, top=3)
        page2 = h.service.list(tenant_id=TENANT, top=3, continuation=page1.continuation)
        page3 = h.service.list(tenant_id=TENANT, top=3, continuation=page2.continuation)
        listed = [r.id for p in (page1, page2, page3) for r in p.items]
        assert listed == list(reversed(ids))
        assert page3.continuation is None
        captures = h.service.list(tenant_id=TENANT, kind=RunKind.POLICY_CAPTURE, top=50)
        assert [r.id for r in captures.items] == [ids[5], ids[3], ids[1]]
        done = h.service.list(tenant_id=TENANT, status=RunStatus.SUCCEEDED, top=50)
        assert [r.id for r in done.items] == [ids[0]]

    async def test_list_items_filters_by_status(self, h):
        run = (await start(h)).run
        for i, status in enumerate(["succeeded", "failed", "succeeded"]):
            h.service.record_item(tenant_id=TENANT, run_id=run.id, outcome=outcome(f"i{i}", status))
        failed = h.service.list_items(tenant_id=TENANT, run_id=run.id, status="failed")
        assert [i.item_id for i in failed.items] == ["i1"]
        first = h.service.list_items(tenant_id=TENANT, run_id=run.id, top=2)
        rest = h.service.list_items(tenant_id=TENANT, run_id=run.id, top=2,
                                    continuation=first.continuation)
        assert [i.item_id for i in first.items + rest.items] == ["i0", "i1", "i2"]

    async def test_progress_shows_active_and_recently_finished_runs(self, h):
        old = (await start(h, scope={"n": "old"})).run
        h.service.complete(tenant_id=TENANT, run_id=old.id)
        h.clock.advance(hours=2)
        recent = (await start(h, scope={"n": "recent"})).run
        h.service.complete(tenant_id=TENANT, run_id=recent.id)
        running = (await start(h, scope={"n": "running"})).run
        h.service.mark_running(tenant_id=TENANT, run_id=running.id, expected_items=4)
        h.service.record_item(tenant_id=TENANT, run_id=running.id, outcome=outcome("a", "succeeded"))
        queued = (await start(h, tenant=OTHER_TENANT)).run
        entries = h.service.progress(tenant_ids=[TENANT, OTHER_TENANT], now=h.clock() + timedelta(minutes=1))
        by_id = {e.run.id: e for e in entries}
        assert set(by_id) == {recent.id, running.id, queued.id}
        assert by_id[running.id].percent == 25.0
        assert by_id[running.id].run.counts.succeeded == 1
        assert by_id[recent.id].percent == 100.0
        assert by_id[queued.id].percent == 0.0


class TestNotifications:
    async def test_each_transition_notifies_the_initiator_once(self, h):
        run = (await start(h)).run
        h.service.mark_running(tenant_id=TENANT, run_id=run.id)
        h.service.mark_running(tenant_id=TENANT, run_id=run.id)
        h.service.record_item(tenant_id=TENANT, run_id=run.id, outcome=outcome("a", "failed"))
        h.service.complete(tenant_id=TENANT, run_id=run.id)
        h.service.complete(tenant_id=TENANT, run_id=run.id)
        page = h.notifications.list(principal=ADA)
        assert [n.status for n in page.items] == [RunStatus.FAILED, RunStatus.RUNNING,
                                                   RunStatus.QUEUED]
        assert all(n.run_id == run.id and n.principal_id == ADA.object_id for n in page.items)

    async def test_reused_start_does_not_notify_again(self, h):
        await start(h)
        await start(h)
        assert len(h.notifications.list(principal=ADA).items) == 1

    async def test_mark_read_and_unread_filter(self, h):
        run = (await start(h)).run
        h.service.mark_running(tenant_id=TENANT, run_id=run.id)
        queued = f"{run.id}.queued"
        h.notifications.mark_read(principal=ADA, notification_id=queued)
        unread = h.notifications.list(principal=ADA, unread_only=True)
        assert [n.status for n in unread.items] == [RunStatus.RUNNING]

    async def test_someone_elses_notification_is_not_found(self, h):
        from shared.errors import NotificationNotFound
        run = (await start(h)).run
        bob = make_principal("44444444-4444-4444-4444-444444444444")
        with pytest.raises(NotificationNotFound):
            h.notifications.mark_read(principal=bob, notification_id=f"{run.id}.queued")
        assert h.notifications.list(principal=bob).items == []

    async def test_a_failing_sink_never_fails_the_run(self, h):
        class Broken:
            def publish(self, run, status):
                raise RuntimeError("webhook store down")

        from shared.services.runs import RunService
        service = RunService(runs=h.runs, items=h.items, notifications=h.notifications,
                             clock=h.clock, sinks=[Broken()])
        result = await service.start(principal=ADA, tenant_id=TENANT, kind=RunKind.POLICY_CAPTURE,
                                     target=TARGET, scope={}, idempotency_key=None)
        dispatcher = OutboxDispatcher(runs=h.runs, service=service, clock=h.clock,
                                      tenant_ids=lambda: [TENANT])
        dispatcher.submit(result, h.launcher)
        await dispatcher.idle()
        assert h.launcher.launched == [result.run.id]
        done = service.complete(tenant_id=TENANT, run_id=result.run.id)
        assert done.status == RunStatus.SUCCEEDED
        assert len(h.notifications.list(principal=ADA).items) == 2
