"""Deterministic fault injection: rules matched in order, fired by nth/every/probability/times."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FAULT_KINDS", "TRANSPORT_KINDS", "FaultRule", "Faults"]

FAULT_KINDS = frozenset({"400", "429", "429-no-retry-after", "500", "502", "503", "503-no-retry-after",
                         "504", "401-expired", "403", "404", "409", "reset", "truncated", "slow",
                         "short-page"})
# Faults of the connection itself: they cannot happen to one item inside a $batch.
TRANSPORT_KINDS = frozenset({"reset", "truncated"})


@dataclass
class FaultRule:
    """One rule as given to ``PUT /_sim/faults``, plus its live counters."""

    kind: str
    method: str | None = None
    path: re.Pattern[str] | None = None
    tenant: str | None = None
    app: str | None = None
    nth: int | None = None
    every: int | None = None
    probability: float | None = None
    times: int | None = None
    retry_after: float | str | None = None
    delay_seconds: float | None = None
    chunked: bool = False
    # Replaces the error message of a status fault: tests plant credentials here to prove that nothing Graph
    # echoes back ends up in our logs, stored errors or responses.
    message: str | None = None
    matched: int = 0
    fired: int = 0
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> FaultRule:
        """Validate and build a rule.

        Raises:
            ValueError: Unknown kind or malformed fields.
        """
        kind = str(raw.get("kind", ""))
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        path = raw.get("path")
        return cls(
            kind=kind, method=(raw.get("method") or None),
            path=re.compile(path) if path else None, tenant=raw.get("tenant"),
            app=raw.get("app"), nth=_opt_int(raw, "nth"), every=_opt_int(raw, "every"),
            probability=float(raw["probability"]) if raw.get("probability") is not None else None,
            times=_opt_int(raw, "times"), retry_after=raw.get("retryAfter"),
            delay_seconds=(float(raw["delaySeconds"]) if raw.get("delaySeconds") is not None
                           else None),
            chunked=bool(raw.get("chunked", False)),
            message=str(raw["message"]) if raw.get("message") is not None else None, raw=dict(raw))

    def describe(self) -> dict[str, Any]:
        """The rule as given, with its counters."""
        return dict(self.raw, matched=self.matched, fired=self.fired)


def _opt_int(raw: dict[str, Any], key: str) -> int | None:
    value = raw.get(key)
    return None if value is None else int(value)


@dataclass
class Faults:
    """The active rule list and its seeded random source."""

    rules: list[FaultRule] = field(default_factory=list)
    seed: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def set(self, rules: list[dict[str, Any]], seed: int | None = None) -> None:
        """Replace every rule; the same seed and rules give the same firings."""
        parsed = [FaultRule.parse(r) for r in rules]
        self.rules = parsed
        self.seed = int(seed or 0)
        self.rng = random.Random(self.seed)

    def clear(self) -> None:
        """Remove every rule."""
        self.set([], 0)

    def match(self, *, method: str, path: str, tenant: str | None, app: str | None,
              in_batch: bool = False) -> FaultRule | None:
        """The first rule that fires for this request.

        Every rule whose filters match counts the request, even when an earlier rule fires, so
        ``nth`` and ``every`` refer to the request sequence alone.
        """
        chosen: FaultRule | None = None
        for rule in self.rules:
            if in_batch and rule.kind in TRANSPORT_KINDS:
                continue
            if not self._filters_match(rule, method, path, tenant, app):
                continue
            rule.matched += 1
            if self._would_fire(rule) and chosen is None:
                rule.fired += 1
                chosen = rule
        return chosen

    @staticmethod
    def _filters_match(rule: FaultRule, method: str, path: str, tenant: str | None,
                       app: str | None) -> bool:
        if rule.method and rule.method.upper() != method.upper():
            return False
        if rule.path is not None and not rule.path.search(path):
            return False
        if rule.tenant and rule.tenant != tenant:
            return False
        return not (rule.app and rule.app != app)

    def _would_fire(self, rule: FaultRule) -> bool:
        if rule.times is not None and rule.fired >= rule.times:
            return False
        if rule.nth is not None and rule.matched != rule.nth:
            return False
        if rule.every is not None and rule.matched % rule.every != 0:
            return False
        # Drawn only for rules that reach this point, so the sequence depends on the seed and the
        # rule order alone.
        return rule.probability is None or self.rng.random() < rule.probability
