"""Test doubles: the in-memory repositories, a controllable clock, and a recording launcher."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from shared.domain import Principal, RunRecord
from shared.services.notifications import NotificationService
from shared.services.runs import RunService
from shared.storage.memory import (
    InMemoryBlobStore,
    InMemoryGrantRepository,
    InMemoryItemRepository,
    InMemoryNotificationRepository,
    InMemoryRunRepository,
    InMemorySnapshotIndex,
    InMemoryTenantRepository,
)

__all__ = [
    "FakeClock",
    "InMemoryBlobStore",
    "InMemoryGrantRepository",
    "InMemoryItemRepository",
    "InMemoryNotificationRepository",
    "InMemoryRunRepository",
    "InMemorySnapshotIndex",
    "InMemoryTenantRepository",
    "RecordingLauncher",
    "RunsHarness",
    "make_principal",
]


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 15, 9, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@dataclass
class RecordingLauncher:
    """Records launched runs; can be told to fail the next N launches, and yields to the loop."""

    launched: list[str] = field(default_factory=list)
    fail_next: int = 0
    delay: float = 0.0

    async def __call__(self, run: RunRecord) -> None:
        # Yield (or wait) so concurrent starts interleave with the launch, as a real start_new would.
        await asyncio.sleep(self.delay)
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("task hub unavailable")
        self.launched.append(run.id)


def make_principal(oid: str = "11111111-1111-1111-1111-111111111111", *,
                   tid: str = "99999999-9999-9999-9999-999999999999", name: str = "Ada Operator",
                   roles: frozenset[str] = frozenset(), is_app: bool = False) -> Principal:
    return Principal(tenant_id=tid, object_id=oid, name=name, roles=roles, is_app=is_app)


@dataclass
class RunsHarness:
    """A RunService over fresh in-memory repositories, with handles on each part."""

    clock: FakeClock = field(default_factory=FakeClock)
    runs: InMemoryRunRepository = field(default_factory=InMemoryRunRepository)
    items: InMemoryItemRepository = field(default_factory=InMemoryItemRepository)
    notification_repo: InMemoryNotificationRepository = field(
        default_factory=InMemoryNotificationRepository)
    launcher: RecordingLauncher = field(default_factory=RecordingLauncher)

    def __post_init__(self) -> None:
        self.notifications = NotificationService(repository=self.notification_repo,
                                                 clock=self.clock)
        self.service = RunService(runs=self.runs, items=self.items,
                                  notifications=self.notifications, clock=self.clock)
