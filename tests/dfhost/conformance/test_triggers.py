"""Timer triggers (NCRONTAB with seconds, run on start-up) and queue triggers on Azurite."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueClient

from localdev.dfhost.testing import HostHandle, running_host
from tests.dfhost.conformance.conftest import FIXTURES


@pytest.fixture(scope="module")
def trigger_host(azurite_connection_string: str,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HostHandle, Path, str]]:
    state = tmp_path_factory.mktemp("triggers")
    queue = "work" + uuid.uuid4().hex[:10]
    with running_host(FIXTURES / "triggers_app", connection_string=azurite_connection_string,
                      extra_env={"DFHOST_STATE_DIR": str(state), "WORK_QUEUE": queue}) as host:
        yield host, state, queue


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def _eventually(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached")


def test_timer_fires_every_second_and_on_startup(trigger_host: tuple[HostHandle, Path, str]
                                                 ) -> None:
    _, state, _ = trigger_host
    _eventually(lambda: len(_lines(state / "tick.log")) >= 2)
    assert _lines(state / "tick.log")[0] == "past_due=False"
    assert _lines(state / "startup.log") == ["started"]


def test_queue_message_is_delivered_base64_decoded(trigger_host: tuple[HostHandle, Path, str],
                                                    azurite_connection_string: str) -> None:
    _, state, queue = trigger_host
    with QueueClient.from_connection_string(azurite_connection_string, queue) as client:
        client.send_message(base64.b64encode(b"hello queue").decode())
    _eventually(lambda: "hello queue 1" in _lines(state / "work.log"))


def test_failing_message_moves_to_the_poison_queue(trigger_host: tuple[HostHandle, Path, str],
                                                    azurite_connection_string: str) -> None:
    host, state, queue = trigger_host
    with QueueClient.from_connection_string(azurite_connection_string, queue) as client:
        client.send_message(base64.b64encode(b"fail").decode())
    # host.json sets maxDequeueCount to 3.
    _eventually(lambda: "fail 3" in _lines(state / "work.log"))
    with QueueClient.from_connection_string(azurite_connection_string,
                                            f"{queue}-poison") as poison:
        messages: list[str] = []

        def poisoned() -> bool:
            try:
                received = list(poison.receive_messages())
            except ResourceNotFoundError:
                return False   # the host creates the poison queue just after the last attempt
            messages.extend(base64.b64decode(m.content).decode() for m in received)
            return bool(messages)

        _eventually(poisoned)
    assert messages == ["fail"]
    assert [x for x in _lines(state / "work.log") if x.startswith("fail")] == [
        "fail 1", "fail 2", "fail 3"]
    assert "ValueError: poison me" in host.log_tail(20000)
