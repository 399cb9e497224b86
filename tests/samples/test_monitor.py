"""Monitor sample: a durable-timer polling loop with custom status and an early exit.

Runs on the virtual clock, so the five-minute monitoring window (five polls a minute apart) passes
without waiting. The issue tracker stand-in answers from a script the test writes and logs every
poll; the SMS stand-in records the alert.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.samples.support import orchestration_seconds, sample_host, start, wait_until_done

pytestmark = pytest.mark.azurite

STARTER = "/api/orchestrators/E3_Monitor"
QUIET_STATUS = "The repository does not have too many issues, for now ..."
ALERT_TEXT = "Hey! You may want to check on your repo, there are too many open issues"
WINDOW_SECONDS = 5 * 60
POLLS_IN_WINDOW = 5  # a poll at minutes 0, 1, 2, 3 and 4 of the five-minute window


@pytest.fixture(scope="module")
def stub_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("monitor-stubs")


@pytest.fixture(scope="module")
def host(azurite_connection_string: str, stub_dir: Path) -> Iterator[Any]:
    with sample_host("monitor", azurite_connection_string, clock="virtual",
                     stub_dir=stub_dir) as running:
        yield running


class Scenario:
    """One monitored repository and phone, with the tracker's scripted answers."""

    def __init__(self, stub_dir: Path, open_issues: list[int]) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.repo = f"contoso/app-{suffix}"
        self.phone = "+1425" + str(uuid.uuid4().int)[:7]
        self._issues = stub_dir / "issues"
        self._sms = stub_dir / "sms" / f"{self.phone.lstrip('+')}.jsonl"
        self._issues.mkdir(parents=True, exist_ok=True)
        (self._issues / f"contoso__app-{suffix}.json").write_text(
            json.dumps({"open_issues": open_issues}))
        self._calls = self._issues / f"contoso__app-{suffix}.calls"

    @property
    def polls(self) -> int:
        return len(self._calls.read_text().splitlines()) if self._calls.exists() else 0

    @property
    def texts(self) -> list[dict[str, str]]:
        if not self._sms.exists():
            return []
        return [json.loads(line) for line in self._sms.read_text().splitlines()]

    def request(self) -> dict[str, str]:
        return {"repo": self.repo, "phone": self.phone}


def test_a_quiet_repository_is_watched_for_the_whole_window(client: httpx.Client,
                                                            stub_dir: Path) -> None:
    scenario = Scenario(stub_dir, open_issues=[0])

    final = wait_until_done(client, start(client, STARTER, scenario.request()))

    assert final["runtimeStatus"] == "Completed"
    assert final["output"] == "Monitor completed!"
    assert final["customStatus"] == QUIET_STATUS
    assert scenario.polls == POLLS_IN_WINDOW
    assert scenario.texts == []
    # The loop ran on durable timers through the whole window (orchestration time, not wall time).
    assert orchestration_seconds(final) >= WINDOW_SECONDS


def test_too_many_issues_at_the_first_poll_alerts_and_stops(client: httpx.Client,
                                                            stub_dir: Path) -> None:
    scenario = Scenario(stub_dir, open_issues=[7])

    final = wait_until_done(client, start(client, STARTER, scenario.request()))

    assert final["runtimeStatus"] == "Completed"
    assert final["output"] == "Monitor completed!"
    assert final["customStatus"] is None
    assert scenario.polls == 1
    assert scenario.texts == [{"to": scenario.phone, "body": ALERT_TEXT}]


def test_issues_piling_up_later_end_the_loop_early(client: httpx.Client, stub_dir: Path) -> None:
    scenario = Scenario(stub_dir, open_issues=[0, 2, 3])

    final = wait_until_done(client, start(client, STARTER, scenario.request()))

    assert final["runtimeStatus"] == "Completed"
    assert final["output"] == "Monitor completed!"
    assert final["customStatus"] == QUIET_STATUS  # set by the two quiet polls before the alert
    assert scenario.polls == 3
    assert scenario.texts == [{"to": scenario.phone, "body": ALERT_TEXT}]
    # Two one-minute waits before the third poll, and no further waiting after the alert.
    assert 120 <= orchestration_seconds(final) < 180


def test_an_unknown_repository_fails_the_monitor(client: httpx.Client) -> None:
    request = {"repo": f"contoso/missing-{uuid.uuid4().hex[:8]}", "phone": "+14255550100"}

    final = wait_until_done(client, start(client, STARTER, request))

    assert final["runtimeStatus"] == "Failed"
    assert "Could not find repository" in final["output"]
