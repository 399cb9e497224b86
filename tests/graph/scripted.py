"""A scripted Graph for client unit tests: a recording transport and a recording sleep."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from shared.graph import GraphClient, RetryPolicy, StaticTokenProvider

BASE = "https://graph.test"


class Recorder:
    """Records every request the client sent and answers from a handler."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    @property
    def methods(self) -> list[str]:
        return [r.method for r in self.requests]


class Sleeps:
    """An async sleep that records instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


REQUEST_ID = "5f0e3c1a-2b4d-4e6f-8a9b-0c1d2e3f4a5b"


def graph_error(status: int, code: str, message: str = "failed", **headers: str) -> httpx.Response:
    body = {"error": {"code": code, "message": message,
                      "innerError": {"request-id": REQUEST_ID, "date": "2026-01-01T00:00:00"}}}
    return httpx.Response(status, json=body, headers={"request-id": REQUEST_ID, **headers})


def make_client(handler: Callable[[httpx.Request], httpx.Response], *, read_only: bool = False,
                retry: RetryPolicy | None = None, tokens: tuple[str, ...] = ("token-one",),
                **kwargs: Any) -> tuple[GraphClient, Recorder, Sleeps, StaticTokenProvider]:
    recorder = Recorder(handler)
    sleeps = Sleeps()
    provider = StaticTokenProvider(*tokens)
    client = GraphClient(
        base_url=BASE, token_provider=provider, tenant_id="tenant-a", client_id="app-a",
        transport=httpx.MockTransport(recorder), read_only=read_only,
        retry=retry or RetryPolicy(max_attempts=5, max_total_sleep=60.0, backoff_base=1.0,
                                   backoff_max=8.0),
        sleep=sleeps, **kwargs)
    return client, recorder, sleeps, provider
