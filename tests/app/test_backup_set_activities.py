"""Backup set activities: a chunk always answers for each of its items; the plan carries the chunk size."""

from __future__ import annotations

from typing import Any

import pytest

from activities.backup_set import capture_backup_set_chunk, plan_backup_set
from shared import container
from shared.domain.backupsets import PlanResult
from shared.domain.batches import CaptureChunkInput
from shared.domain.capture import CaptureItemResult
from shared.storage.errors import StorageUnavailable

CHUNK = {"tenantId": "t1", "runId": "run_1", "backupSetId": "bs_1",
         "members": [{"type": "settingsCatalog", "id": "a"}, {"type": "scopeTag", "id": "0"}]}


class Unavailable:
    async def capture_chunk(self, chunk: CaptureChunkInput) -> list[CaptureItemResult]:
        raise StorageUnavailable("storage is down")


async def run(function: Any, payload: dict[str, Any]) -> Any:
    return await function.build().get_user_function()(payload)


@pytest.mark.parametrize(("final", "status"), [(False, "retry"), (True, "failed")])
async def test_a_chunk_that_fails_as_a_whole_answers_for_each_item(
        monkeypatch: pytest.MonkeyPatch, final: bool, status: str) -> None:
    monkeypatch.setattr(container, "capture_service", lambda: Unavailable())
    payload = {**CHUNK, "attempt": 3 if final else 1, "finalAttempt": final}
    answer = await run(capture_backup_set_chunk, payload)
    assert [(r["itemId"], r["status"], r["error"]["code"]) for r in answer["results"]] == [
        ("settingsCatalog:a", status, "internal-error"), ("scopeTag:0", status, "internal-error")]


async def test_a_chunk_that_does_not_validate_fails_each_member_in_its_place() -> None:
    answer = await run(capture_backup_set_chunk, {**CHUNK, "attempt": 0})
    assert [r["status"] for r in answer["results"]] == ["failed", "failed"]


async def test_the_plan_carries_the_chunk_size_of_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    class Planner:
        async def plan(self, **_: Any) -> PlanResult:
            return PlanResult(status="planned", backup_set_id="bs_1", item_count=3, batch_count=1)

    class Settings:
        backup_set_capture_chunk = 25

    monkeypatch.setattr(container, "backup_set_service", lambda: Planner())
    monkeypatch.setattr(container, "settings", lambda: Settings())
    answer = await run(plan_backup_set, {"tenantId": "t1", "runId": "run_1"})
    assert (answer["capture_chunk"], answer["item_count"]) == (25, 3)
