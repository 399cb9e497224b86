"""Retry policy of the Graph client: which answers are retried, and how long to wait.

Graph says: wait what ``Retry-After`` says (seconds, possibly fractional, or an HTTP-date), and when it is
absent back off exponentially. We also cap the attempts and the total time slept per call, well under an
activity timeout, so a long throttle surfaces as :class:`~shared.graph.errors.GraphThrottled` and the
orchestrator waits on a durable timer instead of an activity sleeping for minutes.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

from shared.domain.capture import DEFAULT_RETRY_DELAY_SECONDS
from shared.graph.errors import GraphError, GraphIncompleteRead, GraphServerError, GraphThrottled

__all__ = [
    "IDEMPOTENT_METHODS",
    "RETRYABLE_STATUSES",
    "SAFE_TO_RETRY_POST_STATUSES",
    "TRANSIENT_ERRORS",
    "RetryPolicy",
    "parse_retry_after",
    "wait_before_retry",
]

# 429 and 503 mean "not processed, come back later"; 502/504 may hide a request that did run.
RETRYABLE_STATUSES: Final = frozenset({429, 502, 503, 504})
SAFE_TO_RETRY_POST_STATUSES: Final = frozenset({429, 503})
IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})

# Failures an item, a plan or a write is tried again after, on a durable timer: throttling beyond the client's
# own retries, a server error, a read cut short.
TRANSIENT_ERRORS: Final = (GraphThrottled, GraphServerError, GraphIncompleteRead)


def wait_before_retry(exc: GraphError, default: float = DEFAULT_RETRY_DELAY_SECONDS) -> float:
    """Seconds to wait on a durable timer before trying again after ``exc``, one of :data:`TRANSIENT_ERRORS`.

    What Graph last asked for when it throttled, else ``default``.
    """
    return exc.retry_after if isinstance(exc, GraphThrottled) else default


@dataclass(frozen=True)
class RetryPolicy:
    """Limits of the client's own retries.

    Attributes:
        max_attempts: attempts per call, the first included.
        max_total_sleep: seconds one call may spend sleeping between attempts; a longer wait raises
            ``GraphThrottled`` so the caller can wait durably.
        backoff_base: first backoff (seconds) when Graph gives no ``Retry-After``.
        backoff_max: ceiling of one backoff.
    """

    max_attempts: int = 6
    max_total_sleep: float = 60.0
    backoff_base: float = 1.0
    backoff_max: float = 20.0

    def scaled(self, factor: float) -> RetryPolicy:
        """This policy with its backoffs divided by ``factor``; a ``Retry-After`` is still honoured in full.

        For local runs against a simulator whose time is scaled the same way.
        """
        return dataclasses.replace(self, backoff_base=self.backoff_base / factor,
                                   backoff_max=self.backoff_max / factor)

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Exponential backoff with full jitter for retry number ``attempt`` (1-based).

        Full jitter spreads 20 concurrent workers that were throttled together, so they do not all
        come back in the same instant and get throttled again.
        """
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        return (rng or random).uniform(ceiling / 2, ceiling)

    def delay(self, retry_after: float | None, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``attempt``: never less than ``Retry-After``.

        When Graph names a wait it is honoured, but the backoff still grows with each attempt: Graph
        counts throttled requests against the bucket too, so many callers that all come back exactly
        when told keep the bucket in debt. Without ``Retry-After`` it is the backoff alone.
        """
        backoff = self.backoff(attempt, rng)
        return backoff if retry_after is None else max(retry_after, backoff)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Parse a ``Retry-After`` header: integer or fractional seconds, or an HTTP-date.

    Args:
        value: the header value (``"10"``, ``"2.128"``, ``"Wed, 21 Oct 2026 07:28:00 GMT"``) or ``None``.
        now: current time for HTTP-dates (tests pin it).

    Returns:
        Seconds to wait (never negative), or ``None`` when absent or unparseable.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)
