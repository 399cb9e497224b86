"""Flat fan-outs complete on a loaded machine, even when storage connections drop.

The host's storage sits behind a TCP proxy to Azurite that behaves like a server closing its
kept-alive connections: a request sent on a connection idle for Azurite's keep-alive time (5 s)
is dropped unanswered, the way it is when the server closes the connection just as the client
reuses it (on a loaded machine the client has not yet seen the close). When armed it also drops
every Nth request on a reused connection, half of them after storage applied the request (the
answer is lost), which is what a lost completion looks like to the host.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from localdev.dfhost.testing import cpu_burners, running_host
from tests.dfhost.conformance.conftest import DURABLE_APP, TERMINAL

WEBHOOK = "/runtime/webhooks/durabletask"
AZURITE_KEEPALIVE_SECONDS = 5.0
FAN_OUT = 1000
BOUND_SECONDS = 120.0


@dataclass
class _Connection:
    requests: int = 0
    awaiting_request: bool = True
    last_answer: float = 0.0
    lose_answer: bool = False


class DroppingProxy:
    """Forwards TCP to ``upstream_port`` on its own thread and loop, dropping as described above."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.drop_every = 0          # 0: only the keep-alive race
        self.stale_drops = 0
        self.injected_drops = 0
        self._reused_requests = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> int:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop).result(10)
        return int(self._server.sockets[0].getsockname()[1])

    def stop(self) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _drop_now(self, connection: _Connection) -> bool:
        """Decide, when a new request starts on ``connection``, whether it is dropped."""
        reused = connection.requests > 0
        connection.requests += 1
        if not reused:
            return False
        if time.monotonic() - connection.last_answer >= AZURITE_KEEPALIVE_SECONDS:
            self.stale_drops += 1
            return True
        self._reused_requests += 1
        if self.drop_every and self._reused_requests % self.drop_every == 0:
            self.injected_drops += 1
            if self.injected_drops % 2 == 0:
                connection.lose_answer = True   # storage applies it; the answer never arrives
                return False
            return True
        return False

    async def _handle(self, client_reader: asyncio.StreamReader,
                      client_writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self.upstream_port)
        connection = _Connection()

        def close() -> None:
            client_writer.close()
            upstream_writer.close()

        async def requests() -> None:
            while data := await client_reader.read(65536):
                if connection.awaiting_request:
                    connection.awaiting_request = False
                    if self._drop_now(connection):
                        close()
                        return
                upstream_writer.write(data)
                await upstream_writer.drain()
            close()

        async def answers() -> None:
            while data := await upstream_reader.read(65536):
                if connection.lose_answer:
                    close()
                    return
                client_writer.write(data)
                await client_writer.drain()
                connection.last_answer = time.monotonic()
                connection.awaiting_request = True
            if not connection.awaiting_request:
                close()
            # Azurite closed an idle connection: the client is not told (on a loaded machine
            # it would not have noticed yet); its next request there is dropped as stale.

        await asyncio.gather(requests(), answers(), return_exceptions=True)


@dataclass
class ProxiedHost:
    http: httpx.Client
    proxy: DroppingProxy
    log_tail: Any

    def fan_out(self, count: int, tag: str) -> str:
        response = self.http.post(f"{WEBHOOK}/orchestrators/fan_out",
                                  json={"count": count, "activity": "noop", "tag": tag})
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    def wait(self, instance_id: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            response = self.http.get(f"{WEBHOOK}/instances/{instance_id}")
            last = f"{response.status_code} {response.text[:300]}"
            if response.status_code in (200, 202):
                status: dict[str, Any] = response.json()
                if status["runtimeStatus"] in TERMINAL:
                    return status
            time.sleep(0.5)
        raise AssertionError(f"{instance_id} not finished after {timeout:.0f}s; last status: "
                             f"{last}\n--- host log ---\n{self.log_tail()}")


@pytest.fixture(scope="module")
def proxied_host(azurite_connection_string: str,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxiedHost]:
    table_port = int(re.search(r"TableEndpoint=http://127\.0\.0\.1:(\d+)/",
                               azurite_connection_string).group(1))  # type: ignore[union-attr]
    proxy = DroppingProxy(table_port)
    port = proxy.start()
    proxied = azurite_connection_string.replace(f"127.0.0.1:{table_port}/",
                                                f"127.0.0.1:{port}/")
    state: Path = tmp_path_factory.mktemp("fanout-load")
    try:
        with running_host(DURABLE_APP, connection_string=proxied,
                          hub="fanload" + uuid.uuid4().hex[:10],
                          extra_env={"DFHOST_STATE_DIR": str(state)}) as host, \
                httpx.Client(base_url=host.base_url, timeout=30) as http:
            yield ProxiedHost(http, proxy, host.log_tail)
    finally:
        proxy.stop()


def expected(count: int) -> dict[str, int]:
    return {"count": count, "sum": count * (count - 1)}


def test_the_host_never_sends_on_a_connection_storage_may_be_closing(
        proxied_host: ProxiedHost) -> None:
    # A fan-out fills the connection pool; after a pause longer than Azurite's keep-alive the
    # next one would reuse those connections if the pool kept them that long.
    first = proxied_host.fan_out(100, "warm")
    assert proxied_host.wait(first, BOUND_SECONDS)["output"] == expected(100)
    time.sleep(AZURITE_KEEPALIVE_SECONDS + 1.5)
    second = proxied_host.fan_out(100, "after-pause")
    status = proxied_host.wait(second, BOUND_SECONDS)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == expected(100)
    assert proxied_host.proxy.stale_drops == 0


def test_a_flat_fan_out_on_a_loaded_machine_completes_with_every_result(
        proxied_host: ProxiedHost) -> None:
    instance_id = proxied_host.fan_out(FAN_OUT, "loaded")
    proxied_host.proxy.drop_every = 40
    started = time.monotonic()
    try:
        with cpu_burners(3, seconds=BOUND_SECONDS):
            status = proxied_host.wait(instance_id, BOUND_SECONDS)
    finally:
        proxied_host.proxy.drop_every = 0
    assert proxied_host.proxy.injected_drops > 10   # results and episodes were really lost
    assert status["runtimeStatus"] == "Completed", status
    # Exactly one result per activity: nothing lost, nothing counted twice.
    assert status["output"] == expected(FAN_OUT)
    assert time.monotonic() - started < BOUND_SECONDS
