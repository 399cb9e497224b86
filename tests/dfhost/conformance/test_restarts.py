"""Crash and restart: a SIGKILLed host resumes every instance; changed code is detected."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from localdev.dfhost.testing import running_host
from tests.dfhost.conformance.conftest import DURABLE_APP, HostClient, events_of


@pytest.fixture
def crash_host(azurite_connection_string: str, tmp_path: Path) -> Iterator[HostClient]:
    hub = "crash" + uuid.uuid4().hex[:10]
    with running_host(DURABLE_APP, connection_string=azurite_connection_string, hub=hub,
                      extra_env={"DFHOST_STATE_DIR": str(tmp_path)}) as host:
        client = HostClient(host, tmp_path)
        yield client
        client.close()


def _wait_for_executions(client: HostClient, activity: str, at_least: int,
                         timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = len(client.executions(activity))
        if count >= at_least:
            return count
        time.sleep(0.02)
    raise AssertionError(f"only {len(client.executions(activity))} {activity} executions\n"
                         f"{client.host.log_tail()}")


def test_sigkill_mid_fan_out_then_restart_completes_everything(crash_host: HostClient) -> None:
    instances, count = 3, 150
    ids = [crash_host.start("fan_out", f"crash-{n}",
                            {"count": count, "tag": f"crash-{n}", "activity": "slow_double"})
           for n in range(instances)]
    _wait_for_executions(crash_host, "slow_double", 60)
    crash_host.host.kill()
    before_restart = len(crash_host.executions("slow_double"))
    assert before_restart < instances * count, "the host finished before it was killed"
    crash_host.host.restart()
    for instance_id in ids:
        status = crash_host.wait(instance_id, timeout=120)
        assert status["runtimeStatus"] == "Completed", status["output"]
        assert status["output"] == {"count": count, "sum": 2 * sum(range(count))}
        # Each activity result enters the history exactly once, whatever ran twice.
        completed = [e["TaskScheduledId"] for e in events_of(status, "TaskCompleted")]
        assert len(completed) == count
        assert len(set(completed)) == count
        assert {e["EventId"] for e in events_of(status, "TaskScheduled")} == set(completed)
    executed = Counter(tuple(sorted(json.loads(line).items()))
                       for line in crash_host.executions("slow_double"))
    expected = {(("i", i), ("tag", f"crash-{n}")) for n in range(instances) for i in range(count)}
    # At-least-once: every item ran, some possibly twice (those in flight at the kill).
    assert set(executed) == expected


def test_changed_orchestrator_code_after_restart_is_non_deterministic(
        crash_host: HostClient) -> None:
    instance_id = crash_host.start("drifting", "drift-1")
    crash_host.wait(instance_id, lambda s: bool(events_of(s, "TaskCompleted")))
    crash_host.host.kill()
    (crash_host.state_dir / "variant").write_text("b")
    crash_host.host.restart()
    assert crash_host.raise_webhook(instance_id, "Continue", "1").status_code == 202
    status = crash_host.wait(instance_id)
    assert status["runtimeStatus"] == "Failed"
    assert "Non-Deterministic workflow detected" in status["output"]
