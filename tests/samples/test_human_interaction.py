"""Human interaction sample: a challenge code by SMS, answered by event, raced by a timer.

The tests play the phone's owner: they read the text the app "sent" (the SMS stand-in writes it
to a file), answer through ``sendEventPostUri`` and check the documented outcome. The approval
tests run on the real clock, where the 180-second window cannot pass during the test; the
timeout test runs on the virtual clock, where it passes without waiting.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.samples.support import (
    StartedInstance,
    orchestration_seconds,
    raise_event,
    sample_host,
    start,
    status,
    wait_for,
    wait_for_file,
    wait_until_done,
)

pytestmark = pytest.mark.azurite

CHALLENGE_EVENT = "SmsChallengeResponse"
STARTER = "/api/orchestrators/E4_SMSPhoneVerification"


@pytest.fixture(scope="module")
def stub_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("human-interaction-stubs")


@pytest.fixture(scope="module")
def host(azurite_connection_string: str, stub_dir: Path) -> Iterator[Any]:
    with sample_host("human_interaction", azurite_connection_string, clock="real",
                     stub_dir=stub_dir) as running:
        yield running


@pytest.fixture(scope="module")
def virtual_clock_host(azurite_connection_string: str, stub_dir: Path) -> Iterator[Any]:
    with sample_host("human_interaction", azurite_connection_string, clock="virtual",
                     stub_dir=stub_dir) as running:
        yield running


@pytest.fixture
def phone_number() -> str:
    """A number no other test uses, so each test has its own SMS outbox."""
    return "+1425" + str(uuid.uuid4().int)[:7]


def texted_code(stub_dir: Path, phone_number: str) -> int:
    """The challenge code from the last text sent to ``phone_number``."""
    outbox = stub_dir / "sms" / f"{phone_number.lstrip('+')}.jsonl"
    message = json.loads(wait_for_file(outbox).splitlines()[-1])
    assert message["to"] == phone_number
    match = re.fullmatch(r"Your verification code is (\d{4})", message["body"])
    assert match, message
    return int(match.group(1))


def awaiting_answer(client: httpx.Client, started: StartedInstance,
                    attempts_left: int) -> dict[str, Any]:
    return wait_for(client, started,
                    lambda body: body["customStatus"] == {"attemptsLeft": attempts_left},
                    what=f"the orchestrator to await an answer ({attempts_left} left)")


def test_the_right_code_verifies_the_phone(client: httpx.Client, stub_dir: Path,
                                           phone_number: str) -> None:
    started = start(client, STARTER, phone_number)
    code = texted_code(stub_dir, phone_number)
    awaiting_answer(client, started, 3)

    raise_event(client, started, CHALLENGE_EVENT, code)
    final = wait_until_done(client, started)

    assert final["runtimeStatus"] == "Completed"
    assert final["output"] is True


def test_a_wrong_code_can_be_corrected_within_the_attempts(
        client: httpx.Client, stub_dir: Path, phone_number: str) -> None:
    started = start(client, STARTER, phone_number)
    code = texted_code(stub_dir, phone_number)
    awaiting_answer(client, started, 3)

    raise_event(client, started, CHALLENGE_EVENT, code + 1)
    awaiting_answer(client, started, 2)
    assert status(client, started)["runtimeStatus"] == "Running"
    raise_event(client, started, CHALLENGE_EVENT, code)
    final = wait_until_done(client, started)

    assert final["runtimeStatus"] == "Completed"
    assert final["output"] is True


def test_three_wrong_codes_deny_verification(client: httpx.Client, stub_dir: Path,
                                             phone_number: str) -> None:
    started = start(client, STARTER, phone_number)
    code = texted_code(stub_dir, phone_number)

    for attempts_left in (3, 2, 1):
        awaiting_answer(client, started, attempts_left)
        raise_event(client, started, CHALLENGE_EVENT, code + attempts_left)
    final = wait_until_done(client, started)

    # Completed (not Running): the orchestrator cancelled its pending timer before returning.
    assert final["runtimeStatus"] == "Completed"
    assert final["output"] is False


def test_no_answer_within_the_window_times_out_unverified(
        virtual_clock_host: Any, stub_dir: Path, phone_number: str) -> None:
    with httpx.Client(base_url=virtual_clock_host.base_url, timeout=15.0) as client:
        started = start(client, STARTER, phone_number)
        texted_code(stub_dir, phone_number)
        awaiting_answer(client, started, 3)

        # Past the 180-second window (a no-op if the host already advanced to the timer itself).
        response = client.post("/admin/dfhost/clock/advance", params={"seconds": 181})
        assert response.status_code == 200, response.text
        final = wait_until_done(client, started)

    assert final["runtimeStatus"] == "Completed"
    assert final["output"] is False
    # It ended when the 180-second window closed, not earlier.
    assert orchestration_seconds(final) >= 180


def test_an_invalid_phone_number_fails_the_orchestration(client: httpx.Client) -> None:
    started = start(client, STARTER, "1425-not-a-number")

    final = wait_until_done(client, started)

    assert final["runtimeStatus"] == "Failed"
    assert "Please provide a phone number" in final["output"]
