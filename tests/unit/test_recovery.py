"""The recovery sweep: runs whose orchestration ended without them are failed with no one polling."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus

from shared.domain import ItemOutcome, RunKind, RunRecord, RunStatus, RunTarget
from shared.services.outbox import OutboxDispatcher
from shared.services.recovery import OrchestrationStatusUnknown, RunRecovery
from shared.services.runs import StartResult
from tests.fakes import RunsHarness, make_principal

TENANT = "22222222-2222-2222-2222-222222222222"
OTHER_TENANT = "33333333-3333-3333-3333-333333333333"


def found(runtime: str) -> DurableOrchestrationStatus:
    """What the SDK makes of the host's answer for an existing instance."""
    return DurableOrchestrationStatus.from_json({
        "name": "policy_capture_orchestrator", "instanceId": "x", "runtimeStatus": runtime,
        "createdTime": "2026-01-15T09:30:00Z", "lastUpdatedTime": "2026-01-15T09:30:01Z"})


# The SDK's parse of a 404 (empty body) and of a host error (a 500 with an exception body).
NOT_FOUND = DurableOrchestrationStatus.from_json("")
HOST_ERROR = DurableOrchestrationStatus.from_json({
    "Message": "Something went wrong while processing your request", "ExceptionMessage": "storage timeout",
    "ExceptionType": "System.TimeoutException", "StackTrace": ""})


@dataclass
class FakeDurableClient:
    """Answers ``get_status`` from a table of run id to answer; unknown ids are not found."""

    answers: dict[str, Any] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)
    on_ask: Callable[[str], None] | None = None
    delay: float = 0.0
    in_flight: int = 0
    most_in_flight: int = 0

    async def get_status(self, instance_id: str) -> Any:
        self.asked.append(instance_id)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            if self.on_ask is not None:
                self.on_ask(instance_id)
            answer = self.answers.get(instance_id, NOT_FOUND)
            if isinstance(answer, Exception):
                raise answer
            return answer
        finally:
            self.in_flight -= 1


@dataclass
class Harness(RunsHarness):
    client: FakeDurableClient = field(default_factory=FakeDurableClient)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.outbox = OutboxDispatcher(runs=self.runs, service=self.service, clock=self.clock,
                                       tenant_ids=lambda: [TENANT, OTHER_TENANT])
        self.recovery = self.recovery_with()

    def recovery_with(self, concurrency: int = 8) -> RunRecovery:
        return RunRecovery(runs=self.runs, service=self.service, clock=self.clock,
                           tenant_ids=lambda: [TENANT, OTHER_TENANT], concurrency=concurrency)

    async def launched(self, policy_id: str = "pol-1", *, tenant: str = TENANT,
                       running: bool = True) -> RunRecord:
        """A run claimed, launched by the outbox, and (by default) marked running by its orchestration."""
        result = await self.claim(policy_id, tenant=tenant)
        self.outbox.submit(result, self.launcher)
        await self.outbox.idle()
        if running:
            self.service.mark_running(tenant_id=tenant, run_id=result.run.id)
        return self.run(result.run.id, tenant=tenant)

    async def claim(self, policy_id: str, *, tenant: str = TENANT) -> StartResult:
        """What a start request does before it hands the run to the outbox."""
        return await self.service.start(
            principal=make_principal(), tenant_id=tenant, kind=RunKind.POLICY_CAPTURE,
            target=RunTarget(policy_type="settingsCatalog", policy_id=policy_id), scope={},
            idempotency_key=None)

    def run(self, run_id: str, *, tenant: str = TENANT) -> RunRecord:
        return self.service.get(tenant_id=tenant, run_id=run_id)


@pytest.fixture
def h() -> Harness:
    return Harness()


def assert_orphaned(run: RunRecord) -> None:
    assert run.status == RunStatus.FAILED
    assert run.failure is not None
    assert run.failure.code == "orchestration-ended"
    assert run.finished_at is not None


class TestSweep:
    @pytest.mark.parametrize("runtime", ["Failed", "Terminated", "Canceled"])
    async def test_a_run_whose_orchestration_ended_is_failed_and_frees_its_key(self, h, runtime):
        run = await h.launched()
        h.client.answers[run.id] = found(runtime)

        assert await h.recovery.sweep(h.client) == 1

        assert_orphaned(h.run(run.id))
        assert h.runs.list_active(tenant_id=TENANT) == []
        again = await h.claim("pol-1")
        assert not again.reused
        assert again.run.id != run.id

    async def test_a_vanished_instance_is_orphaned_only_after_the_grace_since_its_launch(self, h):
        run = await h.launched()  # the host answers 404 for it from the start

        h.clock.advance(seconds=119)
        assert await h.recovery.sweep(h.client) == 0
        assert h.run(run.id).status == RunStatus.RUNNING
        h.clock.advance(seconds=2)
        assert await h.recovery.sweep(h.client) == 1

        assert_orphaned(h.run(run.id))

    async def test_the_grace_counts_from_the_launch_not_from_the_claim(self, h):
        h.launcher.fail_next = 1
        result = await h.claim("pol-1")
        h.outbox.submit(result, h.launcher)
        await h.outbox.idle()  # the first launch failed; the outbox retries it
        h.clock.advance(minutes=5)
        await h.outbox.sweep(h.launcher)  # launched now, five minutes after the claim
        run = h.run(result.run.id)
        assert run.launched_at == h.clock.now

        h.clock.advance(minutes=1)
        assert await h.recovery.sweep(h.client) == 0
        assert h.run(run.id).status == RunStatus.QUEUED

    async def test_a_running_orchestration_leaves_its_run_alone(self, h):
        run = await h.launched()
        h.client.answers[run.id] = found("Running")
        h.clock.advance(hours=3)

        assert await h.recovery.sweep(h.client) == 0

        assert h.run(run.id).status == RunStatus.RUNNING
        assert h.client.asked == [run.id]

    async def test_a_completed_orchestration_that_left_its_run_running_fails_it(self, h):
        run = await h.launched()
        h.client.answers[run.id] = found("Completed")

        assert await h.recovery.sweep(h.client) == 1

        assert_orphaned(h.run(run.id))

    async def test_a_run_its_orchestration_completed_during_the_check_keeps_its_outcome(self, h):
        run = await h.launched()
        h.client.answers[run.id] = found("Completed")
        # The orchestration ends the run between the sweep's read of the run and its status request.
        h.client.on_ask = lambda run_id: h.service.complete(tenant_id=TENANT, run_id=run_id)

        assert await h.recovery.sweep(h.client) == 0

        done = h.run(run.id)
        assert done.status == RunStatus.SUCCEEDED
        assert done.failure is None

    async def test_runs_not_launched_yet_are_left_to_the_outbox_and_never_asked_about(self, h):
        queued = (await h.claim("pol-1")).run  # claimed; its launch has not happened
        h.clock.advance(minutes=10)

        assert await h.recovery.sweep(h.client) == 0

        assert h.client.asked == []
        assert h.run(queued.id).status == RunStatus.QUEUED

    async def test_a_launched_run_not_yet_running_is_checked_too(self, h):
        run = await h.launched(running=False)
        h.client.answers[run.id] = found("Failed")

        assert await h.recovery.sweep(h.client) == 1

        assert_orphaned(h.run(run.id))

    async def test_ended_runs_are_not_asked_about(self, h):
        run = await h.launched()
        h.service.complete(tenant_id=TENANT, run_id=run.id)

        assert await h.recovery.sweep(h.client) == 0

        assert h.client.asked == []

    async def test_a_host_error_is_never_taken_for_a_vanished_instance(self, h):
        erred = await h.launched("pol-1")
        raised = await h.launched("pol-2")
        failed = await h.launched("pol-3")
        h.client.answers.update({erred.id: HOST_ERROR, raised.id: ConnectionError("host unreachable"),
                                 failed.id: found("Failed")})
        h.clock.advance(hours=1)

        assert await h.recovery.sweep(h.client) == 1  # the others are left for the next sweep

        assert h.run(erred.id).status == RunStatus.RUNNING
        assert h.run(raised.id).status == RunStatus.RUNNING
        assert_orphaned(h.run(failed.id))

    async def test_every_tenant_is_swept_with_bounded_concurrency(self, h):
        runs = [await h.launched(f"pol-{i}", tenant=TENANT if i % 2 else OTHER_TENANT) for i in range(6)]
        for run in runs:
            h.client.answers[run.id] = found("Terminated")
        h.client.delay = 0.01

        assert await h.recovery_with(concurrency=2).sweep(h.client) == 6

        assert sorted(h.client.asked) == sorted(r.id for r in runs)
        assert h.client.most_in_flight == 2
        for run in runs:
            assert_orphaned(h.run(run.id, tenant=run.tenant_id))


class TestSettleIfOrphaned:
    """The monitor's path: one run, the same rule."""

    async def test_a_vanished_instance_within_the_grace_keeps_the_run(self, h):
        run = await h.launched()
        h.clock.advance(minutes=1)

        assert (await h.recovery.settle_if_orphaned(run, h.client)).status == RunStatus.RUNNING

        h.clock.advance(minutes=2)
        assert_orphaned(await h.recovery.settle_if_orphaned(run, h.client))

    async def test_a_host_error_is_reported_not_settled(self, h):
        run = await h.launched()
        h.client.answers[run.id] = HOST_ERROR
        h.clock.advance(hours=1)

        with pytest.raises(OrchestrationStatusUnknown):
            await h.recovery.settle_if_orphaned(run, h.client)
        assert h.run(run.id).status == RunStatus.RUNNING

    async def test_a_settled_run_keeps_the_items_it_recorded(self, h):
        run = await h.launched()
        h.client.answers[run.id] = found("Failed")
        h.service.record_item(tenant_id=TENANT, run_id=run.id, outcome=ItemOutcome(
            item_id="settingsCatalog:a", action="captured", status="succeeded"))

        ended = await h.recovery.settle_if_orphaned(h.run(run.id), h.client)

        assert ended.status == RunStatus.PARTIAL  # some work done, the run as a whole failed
        assert ended.failure is not None
        assert ended.failure.code == "orchestration-ended"
        assert ended.counts.succeeded == 1
