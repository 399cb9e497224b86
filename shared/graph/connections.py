"""Connections to Graph: a few small connection pools behind one cap on requests in flight.

httpx looks at every idle connection of its pool (a socket readiness check each) whenever a request starts
or ends, and it queues requests beyond its pool inside the pool, rescanning the queue on every event. A
backup set reads a few hundred items at once; their requests wait for the tenant's budget and then here, so
they never queue inside httpx, and each is sent on the first of a few pools of 8 connections that has one
free: the scan per request covers at most 8 connections, and a light load opens no more than it needs.
Against Graph's latency (100-300 ms) 32 requests in flight keep the published limits busy; against the
local simulator (a few ms) one pool of 32 mostly idle connections cost more CPU per request than the rest of
the capture: measured in docs/architecture.md, "Multi-item runs (backup sets)".
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from typing import Final

import httpx

__all__ = ["CONNECTIONS_PER_POOL", "MAX_REQUESTS_IN_FLIGHT", "POOLS", "ConnectionPools"]

POOLS: Final = 4
CONNECTIONS_PER_POOL: Final = 8
MAX_REQUESTS_IN_FLIGHT: Final = POOLS * CONNECTIONS_PER_POOL


class ConnectionPools:
    """Sends requests on the first of its HTTP clients with a free connection, at most ``in_flight`` at once.

    Each client takes up to its share of ``in_flight`` (its connections) before the next one is used, so
    no client ever has more requests than connections.
    """

    def __init__(self, clients: Sequence[httpx.AsyncClient], *,
                 in_flight: int = MAX_REQUESTS_IN_FLIGHT) -> None:
        if not clients:
            raise ValueError("at least one HTTP client is needed")
        self._clients = tuple(clients)
        self._busy = [0] * len(self._clients)
        self._in_flight = asyncio.Semaphore(in_flight)
        self._per_pool = -(-in_flight // len(self._clients))

    @classmethod
    def create(cls, *, base_url: str, verify: ssl.SSLContext | str | bool, timeout: httpx.Timeout,
               transport: httpx.AsyncBaseTransport | None = None) -> ConnectionPools:
        """:data:`POOLS` clients of :data:`CONNECTIONS_PER_POOL` kept-alive connections each."""
        if isinstance(verify, str):
            # httpx wants an SSL context for a custom CA bundle.
            verify = ssl.create_default_context(cafile=verify)
        limits = httpx.Limits(max_connections=CONNECTIONS_PER_POOL,
                              max_keepalive_connections=CONNECTIONS_PER_POOL, keepalive_expiry=30.0)
        # An injected transport (tests) is one pool already.
        pools = 1 if transport is not None else POOLS
        return cls([httpx.AsyncClient(base_url=base_url, transport=transport, verify=verify, timeout=timeout,
                                      headers={"Accept": "application/json"}, follow_redirects=False,
                                      limits=limits) for _ in range(pools)])

    def build_request(self, method: str, url: str, **kwargs: object) -> httpx.Request:
        """A request with the clients' base URL and headers (every client has the same)."""
        return self._clients[0].build_request(method, url, **kwargs)  # type: ignore[arg-type]

    async def send(self, request: httpx.Request, *, auth: httpx.Auth) -> httpx.Response:
        """Send ``request`` (its body read) once a slot is free, on the least busy client."""
        async with self._in_flight:
            # The first pool with a free connection: pools beyond the first open connections only while
            # the first is full, so a light load keeps few connections (each idle one costs every request).
            # One always has: the cap is at most the pools' combined share.
            pool = next(n for n, busy in enumerate(self._busy) if busy < self._per_pool)
            self._busy[pool] += 1
            try:
                return await self._clients[pool].send(request, auth=auth)
            finally:
                self._busy[pool] -= 1

    async def aclose(self) -> None:
        """Close every client's connections."""
        for client in self._clients:
            await client.aclose()
