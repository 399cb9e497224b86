"""Pure rules of the multi-item run engine: batches, retry rounds, batch summaries and item outcomes.

A multi-item run plans its items into numbered batches, keeps a bounded number of batch sub-orchestrations
in flight, and inside a batch retries the items that asked for it in rounds separated by durable timers.
Everything here is pure so the orchestrators' decisions are unit-testable without a durable context.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Literal, TypeVar

from pydantic import Field

from shared.domain.backupsets import MAX_CAPTURE_CHUNK, BackupSetItem, PolicyRef
from shared.domain.base import ApiModel, ErrorInfo
from shared.domain.capture import (
    MAX_CAPTURE_ATTEMPTS,
    CaptureItemInput,
    CaptureItemResult,
    next_capture_step,
)
from shared.domain.runs import RunCounts

__all__ = [
    "BATCHES_IN_FLIGHT",
    "BATCH_SIZE",
    "TRANSACTION_ROWS",
    "BatchSummary",
    "CaptureChunkInput",
    "CaptureChunkResult",
    "RetryRound",
    "SetItemOutcome",
    "batch_count",
    "chunked",
    "counts_of_batches",
    "retry_round",
    "spread_by_group",
    "summarise_batch",
]

T = TypeVar("T")

# Items per batch sub-orchestration. A batch's history grows with its items (two events per activity and
# attempt), and replay cost grows with history, so a batch stays in the low hundreds.
BATCH_SIZE = 100
# Batch sub-orchestrations running at once per run: wide enough to keep the tenant's Graph budget busy,
# narrow enough that one run cannot fill every activity slot of the host.
BATCHES_IN_FLIGHT = 4
# Rows per entity-group transaction (Table Storage's limit).
TRANSACTION_ROWS = 100


def chunked(values: Sequence[T], size: int) -> list[Sequence[T]]:
    """``values`` cut into consecutive slices of at most ``size`` (the last one may be shorter)."""
    if size < 1:
        raise ValueError("size must be at least 1")
    return [values[start:start + size] for start in range(0, len(values), size)]


def spread_by_group(values: Sequence[T], group_of: Callable[[T], str]) -> list[T]:
    """``values`` reordered so that each group's values are spread evenly over the whole sequence.

    Each group keeps its own order. A group of ``n`` values takes the places ``(i + 1/2) / n`` of the run,
    so wherever a run is, it has consumed the same share of every group. The groups are Intune's throttling
    families: run in listing order (type by type), a backup presses on one or two families at a time and
    waits for their budgets while the others stand idle, so it takes about the sum of the families' times
    at their limits instead of the longest one (docs/architecture.md, "Multi-item runs (backup sets)").
    Deterministic: ties are broken by group name, then by the value's place in ``values``.
    """
    groups: dict[str, list[int]] = {}
    for position, value in enumerate(values):
        groups.setdefault(group_of(value), []).append(position)
    placed = sorted(((2 * rank + 1) / (2 * len(positions)), name, position)
                    for name, positions in groups.items() for rank, position in enumerate(positions))
    return [values[position] for _, _, position in placed]


def counts_of_batches(finished: Iterable[tuple[int, int, int]]) -> RunCounts:
    """A run's counts from its finished batches' ``(succeeded, failed, skipped)`` (``total``: their sum)."""
    succeeded = failed = skipped = 0
    for batch_succeeded, batch_failed, batch_skipped in finished:
        succeeded += batch_succeeded
        failed += batch_failed
        skipped += batch_skipped
    return RunCounts(total=succeeded + failed + skipped, succeeded=succeeded, failed=failed, skipped=skipped)


def batch_count(items: int, size: int = BATCH_SIZE) -> int:
    """How many batches ``items`` items need (0 for none)."""
    if items < 0 or size < 1:
        raise ValueError("items must be >= 0 and size >= 1")
    return -(-items // size)


class CaptureChunkInput(ApiModel):
    """Input of the activity that captures a chunk of a batch's members, all at the same attempt."""

    tenant_id: str
    run_id: str
    backup_set_id: str
    members: list[PolicyRef] = Field(min_length=1, max_length=MAX_CAPTURE_CHUNK)
    attempt: int = Field(default=1, ge=1)
    final_attempt: bool = True
    include_assignments: bool = True

    def items(self) -> list[CaptureItemInput]:
        """One capture input per member, in the members' order."""
        return [CaptureItemInput(tenant_id=self.tenant_id, run_id=self.run_id, policy_type=member.type,
                                 policy_id=member.id, attempt=self.attempt, final_attempt=self.final_attempt,
                                 include_assignments=self.include_assignments)
                for member in self.members]


class CaptureChunkResult(ApiModel):
    """What the chunk activity returns: one result per member, in the members' order (ids and codes only)."""

    results: list[CaptureItemResult]


class RetryRound(ApiModel):
    """What one round of a batch decided: settled items, items to try again, and how long to wait first."""

    settled: list[CaptureItemResult] = Field(default_factory=list)
    retry: list[int] = Field(default_factory=list)
    delay_seconds: float | None = None


def retry_round(results: Sequence[CaptureItemResult], attempt: int) -> RetryRound:
    """Split one round's results into settled ones and the positions to retry after a durable timer.

    The wait is the longest any retried item asked for (one timer per round, not one per item), using the
    single-item rule :func:`~shared.domain.capture.next_capture_step`.
    """
    settled: list[CaptureItemResult] = []
    retry: list[int] = []
    delays: list[float] = []
    for position, result in enumerate(results):
        delay = next_capture_step(result, attempt)
        if delay is None:
            settled.append(result)
        else:
            retry.append(position)
            delays.append(delay)
    return RetryRound(settled=settled, retry=retry, delay_seconds=max(delays) if delays else None)


class BatchSummary(ApiModel):
    """The outcome of one batch: small counts only (what crosses the durable boundary and is stored)."""

    batch: int = Field(ge=0)
    total: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    rounds: int = Field(default=1, ge=1, le=MAX_CAPTURE_ATTEMPTS)


def summarise_batch(batch: int, settled: Iterable[CaptureItemResult], *, rounds: int) -> BatchSummary:
    """Count a batch's settled results by status (a result still asking to retry counts as failed)."""
    statuses = [result.status for result in settled]
    succeeded = statuses.count("succeeded")
    skipped = statuses.count("skipped")
    return BatchSummary(batch=batch, total=len(statuses), succeeded=succeeded, skipped=skipped,
                        failed=len(statuses) - succeeded - skipped, rounds=rounds)


class SetItemOutcome(ApiModel):
    """What capturing one planned item of a set settled: the fields its capture decides, and only those.

    Written onto the planned row without reading it (:meth:`shared.ports.BackupSetRepository.settle_item`):
    the planned fields (batch, ids, and the listed name when the capture learnt none) stay as the plan wrote
    them, so the result does not depend on what the row held before and a repeated activity writes the same.
    """

    status: Literal["captured", "failed"]
    # ``None`` keeps the name the plan listed (a failed read learns no name).
    display_name: str | None = None
    captured_at: datetime | None = None
    content_hash: str | None = None
    normalised_hash: str | None = None
    size_bytes: int | None = None
    complete: bool = False
    attempts: int = Field(default=0, ge=0)
    error: ErrorInfo | None = None

    def applied_to(self, planned: BackupSetItem) -> BackupSetItem:
        """``planned`` with this outcome over it (validated like any stored item)."""
        settled = self.model_dump(exclude={"display_name"} if self.display_name is None else set())
        return BackupSetItem.model_validate({**planned.model_dump(), **settled})
