"""Drive the sample apps over HTTP the way a user of the samples does.

A user POSTs the starter, gets the ``create_check_status_response`` payload back (202 with a
``Location`` header), polls ``statusQueryGetUri`` and raises events through ``sendEventPostUri``.
These helpers do exactly that and nothing more, so a failure points at the host or the app.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

SAMPLE_APPS_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "sample_apps"
STUB_DIR_VARIABLE = "SAMPLES_STUB_DIR"

TERMINAL_STATUSES = frozenset({"Completed", "Failed", "Terminated", "Canceled"})
MANAGEMENT_URL_KEYS = frozenset({"id", "statusQueryGetUri", "sendEventPostUri", "terminatePostUri",
                                 "purgeHistoryDeleteUri"})
POLL_INTERVAL_SECONDS = 0.05
DEFAULT_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class StartedInstance:
    """What the starter answered: the instance id and its management URLs."""

    instance_id: str
    urls: dict[str, str]

    @property
    def status_url(self) -> str:
        """``statusQueryGetUri``."""
        return self.urls["statusQueryGetUri"]

    def event_url(self, event_name: str) -> str:
        """``sendEventPostUri`` with the event name filled in."""
        return self.urls["sendEventPostUri"].replace("{eventName}", event_name)


@contextmanager
def sample_host(app_name: str, connection_string: str, *, clock: str = "virtual",
                stub_dir: Path | None = None) -> Iterator[Any]:
    """Run one sample app on the local Durable Functions host; stop it afterwards.

    ``stub_dir`` is where the app's local stand-ins for external services (SMS, issue tracker)
    keep their files; the app reads it from ``$SAMPLES_STUB_DIR``.
    """
    # Imported here so the indexing tests run even where the host is not importable.
    from localdev.dfhost.testing import running_host

    extra_env = {STUB_DIR_VARIABLE: str(stub_dir)} if stub_dir is not None else None
    with running_host(SAMPLE_APPS_DIR / app_name, connection_string=connection_string,
                      clock=clock, extra_env=extra_env) as host:
        yield host


def start(client: httpx.Client, url: str, payload: Any = None) -> StartedInstance:
    """POST a starter (a JSON body when ``payload`` is given) and check the 202 check-status reply."""
    response = (client.post(url) if payload is None else client.post(url, json=payload))
    assert response.status_code == 202, response.text
    urls = response.json()
    assert set(urls) >= MANAGEMENT_URL_KEYS, urls
    assert response.headers["Location"] == urls["statusQueryGetUri"]
    return StartedInstance(instance_id=urls["id"], urls=urls)


def status(client: httpx.Client, started: StartedInstance) -> dict[str, Any]:
    """One GET of ``statusQueryGetUri``: 202 while the instance runs, 200 once it is terminal."""
    response = client.get(started.status_url)
    assert response.status_code in (200, 202), response.text
    body: dict[str, Any] = response.json()
    running = body["runtimeStatus"] not in TERMINAL_STATUSES
    assert response.status_code == (202 if running else 200), body
    return body


def wait_for(client: httpx.Client, started: StartedInstance,
             condition: Callable[[dict[str, Any]], bool], *, what: str,
             timeout: float = DEFAULT_TIMEOUT_SECONDS) -> dict[str, Any]:
    """Poll the status until ``condition`` holds; fail with the last status after ``timeout``."""
    deadline = time.monotonic() + timeout
    body = status(client, started)
    while not condition(body):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; "
                                 f"last status: {body}")
        time.sleep(POLL_INTERVAL_SECONDS)
        body = status(client, started)
    return body


def wait_until_done(client: httpx.Client, started: StartedInstance, *,
                    timeout: float = DEFAULT_TIMEOUT_SECONDS) -> dict[str, Any]:
    """Poll until the instance reaches a terminal runtime status and return that status."""
    return wait_for(client, started, lambda body: body["runtimeStatus"] in TERMINAL_STATUSES,
                    what="a terminal runtime status", timeout=timeout)


def raise_event(client: httpx.Client, started: StartedInstance, event_name: str,
                data: Any) -> None:
    """Raise an event through ``sendEventPostUri`` with a JSON body; the host must accept it."""
    response = client.post(started.event_url(event_name), json=data)
    assert response.status_code == 202, response.text


def orchestration_seconds(body: dict[str, Any]) -> float:
    """Seconds from ``createdTime`` to ``lastUpdatedTime`` (orchestration time: virtual or real)."""
    created = datetime.fromisoformat(body["createdTime"])
    updated = datetime.fromisoformat(body["lastUpdatedTime"])
    return (updated - created).total_seconds()


def wait_for_file(path: Path, *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> str:
    """Wait until a stand-in service has written ``path`` and return its text."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} was not written within {timeout:.0f}s")
        time.sleep(POLL_INTERVAL_SECONDS)
    return path.read_text(encoding="utf-8")
