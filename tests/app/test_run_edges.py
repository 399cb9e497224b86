"""Run edge cases found in review: repeated transitions and late item outcomes."""

from __future__ import annotations

from shared.domain import ItemOutcome, RunKind, RunStatus, RunTarget
from shared.services.outbox import OutboxDispatcher
from tests.fakes import RunsHarness, make_principal


async def _started(harness: RunsHarness) -> str:
    """Start a run as the trigger does: claim it, then deliver its outbox (launch) in the background."""
    result = await harness.service.start(
        principal=make_principal(), tenant_id="t1", kind=RunKind.POLICY_CAPTURE,
        target=RunTarget(policy_type="settingsCatalog", policy_id="p1"), scope={}, idempotency_key=None)
    dispatcher = OutboxDispatcher(runs=harness.runs, service=harness.service, clock=harness.clock,
                                  tenant_ids=lambda: ["t1"])
    dispatcher.submit(result, harness.launcher)
    await dispatcher.idle()
    return result.run.id


async def test_a_repeated_transition_keeps_a_read_notification_read() -> None:
    harness = RunsHarness()
    run_id = await _started(harness)
    run = harness.service.mark_running(tenant_id="t1", run_id=run_id)
    principal = make_principal()
    note = next(n for n in harness.notifications.list(principal=principal).items if n.status == "running")
    harness.notifications.mark_read(principal=principal, notification_id=note.id)

    harness.clock.advance(seconds=5)
    harness.notifications.notify(run, RunStatus.RUNNING)  # an activity that ran twice

    unread = harness.notifications.list(principal=principal, unread_only=True).items
    assert note.id not in {n.id for n in unread}


async def test_items_recorded_after_the_run_ended_do_not_change_it() -> None:
    harness = RunsHarness()
    run_id = await _started(harness)
    harness.service.complete(tenant_id="t1", run_id=run_id, cancelled=True)

    written = harness.service.record_item(tenant_id="t1", run_id=run_id, outcome=ItemOutcome(
        item_id="settingsCatalog:p1", action="captured", status="succeeded"))

    assert written is False
    assert harness.service.list_items(tenant_id="t1", run_id=run_id).items == []
    assert harness.service.get(tenant_id="t1", run_id=run_id).counts.total == 0


async def test_a_run_whose_orchestration_ended_without_it_is_failed_and_releases_its_key() -> None:
    harness = RunsHarness()
    run_id = await _started(harness)
    harness.service.mark_running(tenant_id="t1", run_id=run_id)

    still = harness.service.settle_if_orchestration_ended(tenant_id="t1", run_id=run_id,
                                                          orchestration_status="Running")
    assert still.status == RunStatus.RUNNING

    ended = harness.service.settle_if_orchestration_ended(tenant_id="t1", run_id=run_id,
                                                          orchestration_status="Terminated")
    assert ended.status == RunStatus.FAILED
    assert ended.failure is not None
    assert ended.failure.code == "orchestration-ended"
    again = await _started(harness)
    assert again != run_id


async def test_a_run_that_was_never_launched_is_left_to_launch_recovery() -> None:
    harness = RunsHarness()
    harness.launcher.fail_next = 1
    run_id = await _started(harness)  # accepted; the failed launch is left to the outbox sweeper
    run = harness.service.get(tenant_id="t1", run_id=run_id)
    assert run.launched_at is None
    unchanged = harness.service.settle_if_orchestration_ended(tenant_id="t1", run_id=run.id,
                                                              orchestration_status=None)
    assert unchanged.status == RunStatus.QUEUED
