"""What multi-item runs share: the plan step and the sliding window of batch sub-orchestrations.

A plan that asks to be tried again is, after a durable timer.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from datetime import timedelta
from typing import Any, Protocol, TypeVar

import azure.durable_functions as df
from shared.domain.batches import BATCHES_IN_FLIGHT
from shared.domain.capture import DEFAULT_RETRY_DELAY_SECONDS

from orchestrators.policy_capture import INFRA_RETRY

# Planning lists the tenant through Graph; a throttled or failing listing is tried again after a durable
# timer this many times before the run fails.
MAX_PLAN_ATTEMPTS = 3


class _PlanAnswer(Protocol):
    @property
    def status(self) -> str: ...

    @property
    def retry_after_seconds(self) -> float | None: ...


PlanT = TypeVar("PlanT", bound=_PlanAnswer)


def plan_with_retries(context: df.DurableOrchestrationContext, activity: str, ref: dict[str, Any],
                      parse: Callable[[Any], PlanT]) -> Generator[Any, Any, PlanT]:
    """The plan activity's answer, parsed; a ``retry`` is tried again after the wait it asked for."""
    attempt = 1
    while True:
        plan = parse((yield context.call_activity_with_retry(activity, INFRA_RETRY, ref)))
        if plan.status != "retry" or attempt >= MAX_PLAN_ATTEMPTS:
            return plan
        delay = max(1.0, min(plan.retry_after_seconds or DEFAULT_RETRY_DELAY_SECONDS, 300.0))
        yield context.create_timer(context.current_utc_datetime + timedelta(seconds=delay))
        attempt += 1


def batches_in_window(context: df.DurableOrchestrationContext, orchestrator: str,
                      batches: Sequence[tuple[dict[str, Any], str]]) -> Generator[Any, Any, str | None]:
    """Run batch sub-orchestrations ``(input, instance id)`` in order, a few at once, and await them all.

    A sliding window: as soon as any batch returns (``task_any`` over those in flight) the next one starts,
    so a slow batch holds back only its own slot. The decisions depend only on the history, so they replay
    alike. A batch that failed outright (it settles its own items, so this is an internal fault) stops new
    batches, but those already started are still awaited: the run must not finish while any of its items can
    still be written. Returns the type name of the first failure, if any (a sub-orchestration's message is
    free text, so only its type is kept).
    """
    in_flight: list[Any] = []
    next_batch = 0
    failure: str | None = None
    while in_flight or (next_batch < len(batches) and failure is None):
        while len(in_flight) < BATCHES_IN_FLIGHT and next_batch < len(batches) and failure is None:
            payload, instance_id = batches[next_batch]
            in_flight.append(context.call_sub_orchestrator(orchestrator, payload, instance_id=instance_id))
            next_batch += 1
        returned = yield context.task_any(in_flight)
        in_flight.remove(returned)
        if isinstance(returned.result, Exception) and failure is None:
            failure = type(returned.result).__name__
    return failure
