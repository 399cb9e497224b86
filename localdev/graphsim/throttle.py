"""Graph throttling: token buckets per service family, per app+tenant and per tenant.

Writes and "any request" are counted apart. A scale factor divides every limit and shrinks the
window by the same factor, so the refill rate stays the published one while bursts hit the limit
after a handful of requests. Requests made while throttled still count, as Graph's do.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

from localdev.graphsim.catalog import limits_for

__all__ = ["Bucket", "Throttle", "ThrottleDecision"]

RETRY_AFTER_MODES = ("int", "float", "absent", "http-date")
# Graph-wide limit per app across all tenants (current docs: 130,000 requests per 10 s).
GLOBAL_PER_APP = 130_000
GLOBAL_WINDOW = 10.0


@dataclass
class Bucket:
    """One token bucket (capacity refilled linearly over the window)."""

    capacity: float
    window: float
    tokens: float
    updated: float
    count: int = 0
    throttled: int = 0

    def refill(self, now: float) -> None:
        """Add the tokens earned since the last call."""
        rate = self.capacity / self.window
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * rate)
        self.updated = now

    def wait(self) -> float:
        """Seconds until one token is available again."""
        if self.tokens >= 1:
            return 0.0
        return (1 - self.tokens) * self.window / self.capacity


@dataclass
class ThrottleDecision:
    """The outcome for one request: ``retry_after`` is set when it must get a 429."""

    family: str
    retry_after: float | None = None
    scope: str = ""
    information: str = ""


@dataclass
class Throttle:
    """Throttle configuration and live buckets (counters are kept even while disabled)."""

    enabled: bool = False
    scale: float = 1.0
    retry_after_mode: str = "int"
    buckets: dict[tuple[str, str, str, str, str], Bucket] = field(default_factory=dict)

    def configure(self, *, enabled: bool, scale: float = 1.0, retry_after: str = "int") -> None:
        """Switch throttling and reset the buckets to the new limits."""
        if retry_after not in RETRY_AFTER_MODES:
            raise ValueError(f"retryAfter must be one of {RETRY_AFTER_MODES}")
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.enabled, self.scale, self.retry_after_mode = enabled, scale, retry_after
        self.buckets.clear()

    def _bucket(self, key: tuple[str, str, str, str, str], limit: int, window: float,
                now: float) -> Bucket:
        bucket = self.buckets.get(key)
        if bucket is None:
            capacity = max(limit / self.scale, 1.0)
            bucket = Bucket(capacity=capacity, window=window / self.scale, tokens=capacity,
                            updated=now)
            self.buckets[key] = bucket
        return bucket

    def check(self, *, family: str, tenant: str, app: str, write: bool) -> ThrottleDecision:
        """Count one request and decide whether it is throttled."""
        now = time.monotonic()
        w_app, w_tenant, a_app, a_tenant, window = limits_for(family)
        keys: list[tuple[tuple[str, str, str, str, str], int, str]] = [
            ((family, "app+tenant", app, tenant, "any"), a_app,
             f"Tenant_Application/ReadWrite/{app}/{tenant}"),
            ((family, "tenant", "", tenant, "any"), a_tenant, f"Tenant/ReadWrite/{tenant}"),
            (("global", "app", app, "", "any"), GLOBAL_PER_APP, f"Application/ReadWrite/{app}"),
        ]
        if write:
            keys[:0] = [((family, "app+tenant", app, tenant, "write"), w_app,
                         f"Tenant_Application/Write/{app}/{tenant}"),
                        ((family, "tenant", "", tenant, "write"), w_tenant,
                         f"Tenant/Write/{tenant}")]
        decision = ThrottleDecision(family=family)
        for key, limit, scope in keys:
            bucket = self._bucket(key, limit, GLOBAL_WINDOW if key[0] == "global" else window, now)
            bucket.refill(now)
            bucket.count += 1
            if not self.enabled:
                continue
            short = bucket.tokens < 1
            # Usage keeps counting while throttled (down to one window of debt), so a client
            # that ignores Retry-After waits longer.
            bucket.tokens = max(bucket.tokens - 1, -bucket.capacity)
            if short:
                wait = bucket.wait()
                if decision.retry_after is None:
                    decision.scope = scope
                    decision.information = ("WriteLimitExceeded" if key[4] == "write"
                                            else "ResourceUnitLimitExceeded")
                decision.retry_after = max(decision.retry_after or 0.0, wait)
        if decision.retry_after is not None:
            for key, _, _ in keys:
                self.buckets[key].throttled += 1
        return decision

    def retry_after_header(self, seconds: float) -> str | None:
        """``Retry-After`` in the configured style (``None`` when it is left out)."""
        return format_retry_after(seconds, self.retry_after_mode)

    def counters(self) -> list[dict[str, Any]]:
        """Per-bucket counters for the control API."""
        out = []
        for (family, scope, app, tenant, kind), bucket in self.buckets.items():
            out.append({"family": family, "scope": scope, "app": app or None, "tenant": tenant,
                        "class": kind, "count": bucket.count, "throttled": bucket.throttled,
                        "tokens": round(bucket.tokens, 3), "capacity": bucket.capacity,
                        "window": bucket.window})
        return out


def format_retry_after(seconds: float, mode: str) -> str | None:
    """Render a ``Retry-After`` value as an integer, a fraction, an HTTP date or nothing."""
    if mode == "absent":
        return None
    if mode == "float":
        return f"{max(seconds, 0.001):.3f}"
    if mode == "http-date":
        return formatdate(time.time() + math.ceil(max(seconds, 1.0)), usegmt=True)
    return str(max(1, math.ceil(seconds)))
