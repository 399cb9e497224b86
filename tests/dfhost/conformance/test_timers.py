"""Durable timers on the virtual clock, and the clock endpoint."""

from __future__ import annotations

from datetime import timedelta

from localdev.dfhost.history import parse_time
from tests.dfhost.conformance.conftest import HostClient, events_of


def test_one_hour_timer_fires_at_its_due_time(virtual_host: HostClient) -> None:
    instance_id = virtual_host.start("durable_timer", "timer-1")
    status = virtual_host.wait(instance_id, timeout=30)
    assert status["runtimeStatus"] == "Completed"
    # The orchestrator's clock moved by exactly the timer's length, not by wall time.
    assert status["output"] == {"waited_seconds": 3600.0}
    created = events_of(status, "TimerCreated")
    fired = events_of(status, "TimerFired")
    assert len(created) == 1
    assert len(fired) == 1
    assert fired[0]["TimerId"] == created[0]["EventId"]
    started = parse_time(events_of(status, "ExecutionStarted")[0]["Timestamp"])
    assert parse_time(fired[0]["FireAt"]) - started == timedelta(hours=1)


def test_timer_then_event(virtual_host: HostClient) -> None:
    instance_id = virtual_host.start("approval", "timer-evt", {"delay_hours": 48})
    virtual_host.wait(instance_id, lambda s: s["customStatus"] == {"stage": "waiting"})
    virtual_host.raise_webhook(instance_id, "Approval", '"yes"')
    status = virtual_host.wait(instance_id)
    assert status["output"] == {"decision": "yes"}
    assert len(events_of(status, "TimerFired")) == 1


def test_clock_advance_endpoint(virtual_host: HostClient, real_host: HostClient) -> None:
    url = "/admin/dfhost/clock/advance"
    assert virtual_host.http.post(url, params={"seconds": "60"}).json() == {"advanced": 60.0}
    assert virtual_host.http.post(url, params={"seconds": "soon"}).status_code == 400
    assert virtual_host.http.get(url).status_code == 405
    assert real_host.http.post(url, params={"seconds": "60"}).status_code == 409
