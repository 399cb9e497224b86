"""Fixtures and shared utilities of the conformance suite: the host runs as a subprocess on Azurite."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from localdev.dfhost.testing import HostHandle, running_host

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
DURABLE_APP = FIXTURES / "durable_app"
TERMINAL = {"Completed", "Failed", "Terminated"}


class HostClient:
    """Talks to a running host: HTTP triggers under /api and the durable webhook API."""

    def __init__(self, host: HostHandle, state_dir: Path) -> None:
        self.host = host
        self.state_dir = state_dir
        self.http = httpx.Client(base_url=host.base_url, timeout=30.0)
        self.webhook = "/runtime/webhooks/durabletask"

    def close(self) -> None:
        self.http.close()

    def start(self, name: str, instance_id: str | None = None, payload: Any = None) -> str:
        """Start through the app's HTTP starter (the unmodified SDK client)."""
        url = f"/api/orchestrators/{name}" + (f"/{instance_id}" if instance_id else "")
        response = self.http.post(url, json=payload)
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    def status(self, instance_id: str, *, history: bool = False) -> httpx.Response:
        params = {"showHistory": "true", "showHistoryOutput": "true"} if history else {}
        return self.http.get(f"{self.webhook}/instances/{instance_id}", params=params)

    def wait(self, instance_id: str, predicate: Callable[[dict[str, Any]], bool] | None = None,
             *, timeout: float = 60.0, history: bool = True) -> dict[str, Any]:
        """Poll the status until ``predicate`` holds (default: a terminal status)."""
        check = predicate or (lambda s: s["runtimeStatus"] in TERMINAL)
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            response = self.status(instance_id, history=history)
            if response.status_code in (200, 202):
                last = response.json()
                if check(last):
                    return last
            time.sleep(0.1)
        raise AssertionError(f"{instance_id} did not reach the expected state in {timeout}s; "
                             f"last status: {str(last)[:800]}\n--- host log ---\n"
                             f"{self.host.log_tail()}")

    def raise_webhook(self, instance_id: str, event: str, body: str) -> httpx.Response:
        return self.http.post(f"{self.webhook}/instances/{instance_id}/raiseEvent/{event}",
                              content=body, headers={"Content-Type": "application/json"})

    def executions(self, activity: str) -> list[str]:
        path = self.state_dir / f"{activity}.log"
        return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def events_of(status: dict[str, Any], event_type: str) -> list[dict[str, Any]]:
    """History events of one type (``TaskScheduled``, ``TimerFired``...)."""
    return [e for e in status.get("historyEvents", []) if e["EventType"] == event_type]


def event_types(status: dict[str, Any]) -> list[str]:
    return [e["EventType"] for e in status.get("historyEvents", [])]


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dfhost-state")


def _host(connection_string: str, state_dir: Path, clock: str) -> Iterator[HostClient]:
    hub = "conf" + uuid.uuid4().hex[:10]
    with running_host(DURABLE_APP, connection_string=connection_string, hub=hub, clock=clock,
                      extra_env={"DFHOST_STATE_DIR": str(state_dir)}) as host:
        client = HostClient(host, state_dir)
        yield client
        client.close()


@pytest.fixture(scope="session")
def virtual_host(azurite_connection_string: str, state_dir: Path) -> Iterator[HostClient]:
    """The durable fixture app on the virtual clock (timers fire as soon as all is idle)."""
    yield from _host(azurite_connection_string, state_dir, "virtual")


@pytest.fixture(scope="session")
def real_host(azurite_connection_string: str, state_dir: Path) -> Iterator[HostClient]:
    """The durable fixture app on the real clock, shared by the whole run (own task hub)."""
    yield from _host(azurite_connection_string, state_dir, "real")
