"""The channel between the host and its engine process: answers, errors, cancellation, a lost peer."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from localdev.dfhost.engine import InstanceNotFound
from localdev.dfhost.engine_process import ENGINE_ERRORS, Channel, EngineUnavailable
from localdev.dfhost.invoker import RemoteInvocationError


class ActivityFailed(Exception):
    """Stands in for an app's own exception type."""


class Peer:
    """The serving side: records what it was asked and what got cancelled."""

    def __init__(self) -> None:
        self.cancelled = asyncio.Event()
        self.started = asyncio.Event()

    async def handle(self, method: str, args: dict[str, Any]) -> Any:
        if method == "echo":
            return args
        if method == "missing":
            raise InstanceNotFound("No instance with ID 'x' found.")
        if method == "fail":
            raise ActivityFailed("the activity failed")
        self.started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return None


async def _pair(peer: Peer) -> tuple[Channel, Channel]:
    left, right = socket.socketpair()
    caller = Channel(*await asyncio.open_unix_connection(sock=left), _refuse,
                     known_errors=ENGINE_ERRORS)
    server = Channel(*await asyncio.open_unix_connection(sock=right), peer.handle)
    caller.start()
    server.start()
    return caller, server


async def _refuse(method: str, args: dict[str, Any]) -> Any:
    raise AssertionError("the caller serves nothing here")


@pytest.fixture
async def channels() -> AsyncIterator[tuple[Peer, Channel, Channel]]:
    peer = Peer()
    caller, server = await _pair(peer)
    yield peer, caller, server
    await caller.close()
    await server.close()


async def test_answers_and_errors_cross_with_their_meaning(
        channels: tuple[Peer, Channel, Channel]) -> None:
    _, caller, _ = channels
    assert await caller.call("echo", text="a\nb", n=3, none=None) == {"text": "a\nb", "n": 3,
                                                                      "none": None}
    # The engine's own errors keep their type: the front end maps them to status codes.
    with pytest.raises(InstanceNotFound, match=r"No instance with ID 'x' found\."):
        await caller.call("missing")
    # Anything else (an app's exception) keeps its message and the text the history records.
    with pytest.raises(RemoteInvocationError) as raised:
        await caller.call("fail")
    assert str(raised.value) == "the activity failed"
    assert raised.value.details.endswith("ActivityFailed: the activity failed")


async def test_a_cancelled_call_cancels_the_work_on_the_other_side(
        channels: tuple[Peer, Channel, Channel]) -> None:
    peer, caller, _ = channels
    call = asyncio.ensure_future(caller.call("wait"))
    await asyncio.wait_for(peer.started.wait(), 5)
    call.cancel()
    await asyncio.wait_for(peer.cancelled.wait(), 5)
    # The channel keeps working after a cancellation.
    assert await caller.call("echo", ok=True) == {"ok": True}


async def test_calls_waiting_on_a_peer_that_goes_away_fail_instead_of_hanging(
        channels: tuple[Peer, Channel, Channel]) -> None:
    peer, caller, server = channels
    call = asyncio.ensure_future(caller.call("wait"))
    await asyncio.wait_for(peer.started.wait(), 5)
    await server.close()
    with pytest.raises(EngineUnavailable):
        await asyncio.wait_for(call, 5)
    # The side that closed cancelled what it was serving for the caller.
    assert peer.cancelled.is_set()
    with pytest.raises(EngineUnavailable):
        await caller.call("echo")
