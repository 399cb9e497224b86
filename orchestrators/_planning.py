"""The plan step multi-item runs share: call the plan activity, and try again after a timer when it asks."""

from __future__ import annotations

from collections.abc import Callable, Generator
from datetime import timedelta
from typing import Any, Protocol, TypeVar

import azure.durable_functions as df
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
