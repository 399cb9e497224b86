"""The policy capture orchestrator, driven as a generator (no host): its decisions, not the SDK's replay."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestrators.policy_capture import policy_capture_orchestrator
from shared.domain.capture import MAX_CAPTURE_ATTEMPTS, CaptureItemResult, next_capture_step
from shared.durable_names import CAPTURE_POLICY, COMPLETE_RUN, MARK_RUN_RUNNING

START = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
INPUT = {"tenantId": "t1", "runId": "run_1", "policyType": "settingsCatalog", "policyId": "p1"}


@dataclass
class Call:
    name: str
    payload: Any


@dataclass
class Timer:
    fire_at: datetime


@dataclass
class FakeContext:
    """Records what the orchestrator asks for; the test decides what each call returns."""

    input: dict[str, Any]
    current_utc_datetime: datetime = START
    is_replaying: bool = False
    calls: list[Call | Timer] = field(default_factory=list)

    def get_input(self) -> dict[str, Any]:
        return self.input

    def call_activity(self, name: str, payload: Any) -> Call:
        call = Call(name, payload)
        self.calls.append(call)
        return call

    def call_activity_with_retry(self, name: str, _retry: Any, payload: Any) -> Call:
        return self.call_activity(name, payload)

    def create_timer(self, fire_at: datetime) -> Timer:
        timer = Timer(fire_at)
        self.calls.append(timer)
        return timer


def drive(results: list[Any], *, replaying: bool = False) -> tuple[FakeContext, dict[str, Any]]:
    """Run the orchestrator; each yielded task gets the next result (an Exception is thrown in)."""
    ctx = FakeContext(input=INPUT, is_replaying=replaying)
    gen = policy_capture_orchestrator.build().get_user_function().orchestrator_function(ctx)
    pending = list(results)
    value: Any = None
    throw: Exception | None = None
    while True:
        try:
            task = gen.throw(throw) if throw else gen.send(value)
        except StopIteration as stop:
            return ctx, stop.value
        throw, value = None, None
        if isinstance(task, Timer):
            ctx.current_utc_datetime = task.fire_at
            continue
        result = pending.pop(0)
        if isinstance(result, Exception):
            throw = result
        else:
            value = result


def _names(ctx: FakeContext) -> list[str]:
    return [c.name if isinstance(c, Call) else "timer" for c in ctx.calls]


SUCCESS = {"itemId": "settingsCatalog:p1", "status": "succeeded", "contentHash": "a" * 64, "sizeBytes": 10}
DONE = {"runId": "run_1", "status": "succeeded"}
RUNNING = {"runId": "run_1", "status": "running"}


def test_happy_path_marks_running_captures_and_completes_without_failure() -> None:
    ctx, out = drive([{"runId": "run_1", "status": "running"}, SUCCESS, DONE])
    assert _names(ctx) == [MARK_RUN_RUNNING, CAPTURE_POLICY, COMPLETE_RUN]
    complete = ctx.calls[-1]
    assert isinstance(complete, Call)
    assert complete.payload["failure"] is None
    assert out == DONE


def test_transient_failures_wait_on_durable_timers_then_succeed() -> None:
    retry = {"itemId": "settingsCatalog:p1", "status": "retry", "retryAfterSeconds": 30,
             "error": {"code": "graph-throttled", "message": "busy"}}
    ctx, _ = drive([RUNNING, retry, SUCCESS, DONE])
    assert _names(ctx) == [MARK_RUN_RUNNING, CAPTURE_POLICY, "timer", CAPTURE_POLICY, COMPLETE_RUN]
    timer = ctx.calls[2]
    assert isinstance(timer, Timer)
    assert timer.fire_at == START + timedelta(seconds=30)
    second = ctx.calls[3]
    assert isinstance(second, Call)
    assert second.payload["attempt"] == 2
    assert second.payload["final_attempt"] is (MAX_CAPTURE_ATTEMPTS == 2)


def test_the_last_attempt_is_marked_final_and_its_failure_fails_the_run() -> None:
    retry = {"itemId": "settingsCatalog:p1", "status": "retry", "error": {"code": "graph-throttled",
                                                                         "message": "busy"}}
    failed = {"itemId": "settingsCatalog:p1", "status": "failed",
              "error": {"code": "graph-throttled", "message": "still busy"}}
    results: list[Any] = [RUNNING] + [retry] * (MAX_CAPTURE_ATTEMPTS - 1) + [failed, DONE]
    ctx, _ = drive(results)
    captures = [c for c in ctx.calls if isinstance(c, Call) and c.name == CAPTURE_POLICY]
    assert len(captures) == MAX_CAPTURE_ATTEMPTS
    assert [c.payload["final_attempt"] for c in captures] == [False] * (MAX_CAPTURE_ATTEMPTS - 1) + [True]
    complete = ctx.calls[-1]
    assert isinstance(complete, Call)
    assert complete.payload["failure"]["code"] == "graph-throttled"


def test_permanent_failure_fails_the_run_with_the_item_error() -> None:
    failed = {"itemId": "settingsCatalog:p1", "status": "failed",
              "error": {"code": "policy-not-found", "message": "The policy does not exist in the tenant."}}
    ctx, _ = drive([RUNNING, failed, DONE])
    assert _names(ctx) == [MARK_RUN_RUNNING, CAPTURE_POLICY, COMPLETE_RUN]
    complete = ctx.calls[-1]
    assert isinstance(complete, Call)
    assert complete.payload["failure"]["code"] == "policy-not-found"


def test_an_activity_that_exhausted_its_retries_fails_the_run_without_leaking_details() -> None:
    boom = Exception("Activity function 'capture_policy' failed: AccountKey=abc123 \n Traceback ...")
    ctx, _ = drive([RUNNING, boom, DONE])
    complete = ctx.calls[-1]
    assert isinstance(complete, Call)
    assert complete.payload["failure"]["code"] == "internal-error"
    assert "AccountKey" not in str(complete.payload)
    assert "Traceback" not in str(complete.payload)


@pytest.mark.parametrize(("status", "attempt", "retry_after", "expected"), [
    ("succeeded", 1, None, None),
    ("failed", 1, None, None),
    ("retry", 1, None, 15.0),
    ("retry", 1, 0.2, 1.0),
    ("retry", 1, 9999, 300.0),
    ("retry", MAX_CAPTURE_ATTEMPTS, 5, None),
])
def test_next_capture_step(status: str, attempt: int, retry_after: float | None,
                           expected: float | None) -> None:
    result = CaptureItemResult(item_id="x", status=status, retry_after_seconds=retry_after)
    assert next_capture_step(result, attempt) == expected


def test_orchestrator_is_deterministic_across_replays() -> None:
    first, _ = drive([RUNNING, SUCCESS, DONE])
    second, _ = drive([RUNNING, SUCCESS, DONE])
    assert [(c.name, c.payload) if isinstance(c, Call) else c.fire_at for c in first.calls] == \
        [(c.name, c.payload) if isinstance(c, Call) else c.fire_at for c in second.calls]


def test_a_run_cancelled_before_it_started_captures_nothing() -> None:
    ctx, out = drive([{"runId": "run_1", "status": "cancelled"}])
    assert _names(ctx) == [MARK_RUN_RUNNING]
    assert out["status"] == "cancelled"


def test_a_failure_to_mark_the_run_running_still_completes_it_as_failed() -> None:
    ctx, _ = drive([Exception("storage unavailable"), DONE])
    assert _names(ctx) == [MARK_RUN_RUNNING, COMPLETE_RUN]
    complete = ctx.calls[-1]
    assert isinstance(complete, Call)
    assert complete.payload["failure"]["code"] == "internal-error"


ORCHESTRATOR_LOGGER = "orchestrators.policy_capture"


def _orchestrator_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == ORCHESTRATOR_LOGGER]


def test_a_run_that_fails_internally_is_logged_once_not_on_every_replay(
        caplog: pytest.LogCaptureFixture) -> None:
    boom = Exception("Activity function 'capture_policy' failed: AccountKey=abc123")
    with caplog.at_level(logging.INFO, logger=ORCHESTRATOR_LOGGER):
        drive([RUNNING, boom, DONE], replaying=False)  # first execution of these steps
        first = _orchestrator_logs(caplog)
        for _ in range(3):  # the host replays the same history each time the orchestrator resumes
            drive([RUNNING, boom, DONE], replaying=True)
    assert len(first) == 1
    assert "run_1" in first[0]
    assert "AccountKey" not in caplog.text  # the activity's free text is never logged
    assert _orchestrator_logs(caplog) == first


def test_a_failed_capture_is_logged_with_its_code_only_when_not_replaying(
        caplog: pytest.LogCaptureFixture) -> None:
    failed = {"itemId": "settingsCatalog:p1", "status": "failed",
              "error": {"code": "policy-not-found", "message": "Graph said: the secret is hunter2"}}
    with caplog.at_level(logging.INFO, logger=ORCHESTRATOR_LOGGER):
        drive([RUNNING, failed, DONE], replaying=True)
        assert _orchestrator_logs(caplog) == []
        drive([RUNNING, failed, DONE], replaying=False)
    [line] = _orchestrator_logs(caplog)
    assert "policy-not-found" in line
    assert "hunter2" not in line
