"""Requests to Graph wait for a slot, then fill the pools one after another, never above their connections."""

from __future__ import annotations

import asyncio

import httpx

from shared.graph import GraphClient, StaticTokenProvider
from shared.graph.connections import CONNECTIONS_PER_POOL, MAX_REQUESTS_IN_FLIGHT, POOLS, ConnectionPools


class Held:
    """A transport that holds every request until released, and records which pool sent it."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.in_flight = 0
        self.peak = 0

    def transport(self, pool: int, by_pool: dict[int, list[int]]) -> httpx.MockTransport:
        async def handle(request: httpx.Request) -> httpx.Response:
            by_pool.setdefault(pool, [0, 0])
            by_pool[pool][0] += 1
            by_pool[pool][1] = max(by_pool[pool][1], by_pool[pool][0])
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            await self.release.wait()
            self.in_flight -= 1
            by_pool[pool][0] -= 1
            return httpx.Response(200, json={"ok": True})
        return httpx.MockTransport(handle)


async def test_requests_beyond_the_cap_wait_and_each_pool_stays_within_its_connections() -> None:
    held = Held()
    by_pool: dict[int, list[int]] = {}
    pools = ConnectionPools([httpx.AsyncClient(base_url="https://graph.test",
                                               transport=held.transport(n, by_pool)) for n in range(POOLS)])
    sends = [asyncio.ensure_future(pools.send(pools.build_request("GET", f"/v1.0/x/{n}"), auth=httpx.Auth()))
             for n in range(MAX_REQUESTS_IN_FLIGHT * 3)]
    for _ in range(50):
        await asyncio.sleep(0)
    # The cap holds the rest back; each pool took requests until its connections were busy, none over.
    assert held.in_flight == MAX_REQUESTS_IN_FLIGHT
    assert sorted(by_pool) == list(range(POOLS))
    assert all(current == CONNECTIONS_PER_POOL for current, _ in by_pool.values())
    held.release.set()
    answers = await asyncio.gather(*sends)
    assert [a.status_code for a in answers] == [200] * len(sends)
    assert held.peak == MAX_REQUESTS_IN_FLIGHT
    assert max(peak for _, peak in by_pool.values()) == CONNECTIONS_PER_POOL
    await pools.aclose()


async def test_a_light_load_uses_the_first_pool_only() -> None:
    used: list[int] = []

    def transport(pool: int) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            used.append(pool)
            return httpx.Response(204)
        return httpx.MockTransport(handle)

    pools = ConnectionPools([httpx.AsyncClient(transport=transport(n)) for n in range(POOLS)])
    for _ in range(3):
        await asyncio.gather(*(pools.send(pools.build_request("GET", "https://graph.test/v1.0/me"),
                                          auth=httpx.Auth()) for _ in range(CONNECTIONS_PER_POOL)))
    assert used == [0] * CONNECTIONS_PER_POOL * 3
    await pools.aclose()


class ClosingTransport(httpx.MockTransport):
    """Answers 204 and records being closed."""

    def __init__(self) -> None:
        super().__init__(lambda request: httpx.Response(204))
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True


async def test_a_graph_client_closes_the_connections_it_made_and_leaves_shared_ones_open() -> None:
    own_transport, shared_transport, borrowed_transport = (ClosingTransport() for _ in range(3))
    own = GraphClient(base_url="https://graph.test", token_provider=StaticTokenProvider("t"),
                      transport=own_transport)
    shared = ConnectionPools.create(base_url="https://graph.test", verify=True, timeout=httpx.Timeout(5.0),
                                    transport=shared_transport)
    borrowed = httpx.AsyncClient(transport=borrowed_transport)
    for http in (shared, borrowed):
        await GraphClient(base_url="https://graph.test", token_provider=StaticTokenProvider("t"),
                          http=http).aclose()
    await own.aclose()
    assert own_transport.closed is True
    assert (shared_transport.closed, borrowed_transport.closed) == (False, False)
    # The shared pools still send.
    answer = await shared.send(shared.build_request("GET", "/v1.0/me"), auth=httpx.Auth())
    assert answer.status_code == 204
    assert str(answer.request.url) == "https://graph.test/v1.0/me"
    await shared.aclose()
    await borrowed.aclose()
    assert shared_transport.closed is True
