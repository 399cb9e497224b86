"""MSAL token provider (against a scripted STS), request budgets, and redaction of errors and logs."""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from typing import Any

import httpx
import pytest

from shared.graph import (
    BudgetConfig,
    ClientSecret,
    GraphAuthError,
    GraphBadRequest,
    GraphClient,
    MsalTokenProvider,
    RateBudget,
    RetryPolicy,
)
from shared.graph.budget import Budgets
from tests.graph.scripted import BASE, Recorder, graph_error, make_client

AUTHORITY = "https://login.test"
TENANT = "11111111-1111-1111-1111-111111111111"
PLANTED_SECRET = "s3cr3t-VALUE-never-logged"
PLANTED_JWT = "eyJhbGciOiJSUzI1NiJ9.eyJ0aWQiOiJ4In0.c2lnbmF0dXJlLXBsYW50ZWQ"


def sts(token_status: int = 200, token_body: dict[str, Any] | None = None) -> Recorder:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/.well-known/openid-configuration"):
            base = f"{AUTHORITY}/{TENANT}"
            return httpx.Response(200, json={
                "issuer": f"{base}/v2.0", "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "jwks_uri": f"{base}/discovery/v2.0/keys"})
        if request.url.path.endswith("/oauth2/v2.0/token"):
            if token_status != 200:
                return httpx.Response(token_status, json=token_body)
            return httpx.Response(200, json={"token_type": "Bearer", "expires_in": 3599,
                                             "ext_expires_in": 3599, "access_token": PLANTED_JWT})
        return httpx.Response(404)

    return Recorder(handler)


def provider_for(recorder: Recorder) -> MsalTokenProvider:
    return MsalTokenProvider(
        tenant_id=TENANT, client_id="22222222-2222-2222-2222-222222222222",
        credential=ClientSecret(PLANTED_SECRET), authority_host=AUTHORITY,
        http_client=httpx.Client(transport=httpx.MockTransport(recorder)))


async def test_msal_token_is_cached_after_the_first_call() -> None:
    recorder = sts()
    provider = provider_for(recorder)
    assert await provider.get_token() == PLANTED_JWT
    assert await provider.get_token() == PLANTED_JWT
    token_posts = [r for r in recorder.requests if r.method == "POST"]
    assert len(token_posts) == 1
    form = urllib.parse.parse_qs(token_posts[0].content.decode())
    assert form["scope"] == ["https://graph.microsoft.com/.default"]
    assert form["grant_type"] == ["client_credentials"]
    # No instance discovery against the public cloud for a non-public authority host.
    assert all(r.url.host == "login.test" for r in recorder.requests)


async def test_invalidated_token_is_fetched_again() -> None:
    recorder = sts()
    provider = provider_for(recorder)
    token = await provider.get_token()
    await provider.invalidate(token)
    await provider.get_token()
    assert len([r for r in recorder.requests if r.method == "POST"]) == 2


async def test_msal_error_becomes_graph_auth_error_with_aadsts_and_no_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    recorder = sts(401, {
        "error": "invalid_client",
        "error_description": f"AADSTS7000215: Invalid client secret provided. client_secret={PLANTED_SECRET}"
                             "\r\nTrace ID: abc",
        "error_codes": [7000215]})
    provider = provider_for(recorder)
    with pytest.raises(GraphAuthError) as info:
        await provider.get_token()
    assert info.value.aadsts == "AADSTS7000215"
    assert info.value.code == "graph-auth-failed"
    assert "invalid_client" in info.value.detail
    assert PLANTED_SECRET not in info.value.detail
    assert PLANTED_SECRET not in caplog.text


async def test_errors_and_logs_carry_no_tokens_or_secrets(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    message = f"bad value Bearer {PLANTED_JWT} with client_secret={PLANTED_SECRET}"
    calls = iter([graph_error(503, "serviceNotAvailable", **{"Retry-After": "1"}),
                  graph_error(400, "BadRequest", message)])
    client, recorder, _, _ = make_client(lambda r: next(calls), tokens=(PLANTED_JWT,))
    with pytest.raises(GraphBadRequest) as info:
        await client.patch("/beta/deviceManagement/deviceCategories/c1", json_body={"x": PLANTED_SECRET})
    assert recorder.requests[0].headers["authorization"] == f"Bearer {PLANTED_JWT}"
    for text in (info.value.detail, str(info.value), caplog.text):
        assert PLANTED_JWT not in text
        assert PLANTED_SECRET not in text
    assert "graph retry" in caplog.text  # the retry was logged, safely


def test_credentials_keep_secrets_out_of_repr() -> None:
    assert PLANTED_SECRET not in repr(ClientSecret(PLANTED_SECRET))


# ---------------------------------------------------------------- budgets


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def max_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best = 0
    start = 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_rate_budget_never_exceeds_its_limit_in_any_window() -> None:
    clock = FakeClock()
    budget = RateBudget(10, 2.0, clock=clock, sleep=clock.sleep)
    sent: list[float] = []

    async def worker() -> None:
        for _ in range(5):
            await budget.acquire()
            sent.append(clock.now)

    await asyncio.gather(*(worker() for _ in range(20)))
    assert len(sent) == 100
    assert max_in_any_window(sent, 2.0) == 10
    assert clock.now >= 18.0  # 100 requests at 10 per 2 s need at least 9 full windows


async def test_twenty_workers_share_one_write_budget() -> None:
    clock = FakeClock()
    budgets = Budgets(BudgetConfig(write_limit=5, read_limit=50, window=1.0, margin=0.0),
                      clock=clock, sleep=clock.sleep)
    writes: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method != "GET":
            writes.append(clock.now)
        return httpx.Response(204)

    client, _, _, _ = make_client(handler, budgets=budgets)

    async def worker(n: int) -> None:
        for i in range(3):
            await client.get(f"/beta/deviceManagement/deviceCategories/{n}")
            await client.patch(f"/beta/deviceManagement/deviceCategories/{n}", json_body={"i": i})

    await asyncio.gather(*(worker(n) for n in range(20)))
    assert len(writes) == 60
    assert max_in_any_window(writes, 1.0) <= 5


def test_budget_config_scales_limits_and_window_like_the_published_numbers() -> None:
    scaled = BudgetConfig().scaled(10)
    assert (scaled.write_limit, scaled.read_limit, scaled.window) == (10, 100, 2.0)


async def test_client_without_budget_sends_immediately() -> None:
    client = GraphClient(base_url=BASE, token_provider=provider_for(sts()), budgets=None,
                         transport=httpx.MockTransport(lambda r: httpx.Response(204)),
                         retry=RetryPolicy())
    assert client.budgets.family("deviceConfiguration") is None
    await client.aclose()


async def test_budgets_are_kept_per_throttling_family() -> None:
    clock = FakeClock()
    budgets = Budgets(BudgetConfig(write_limit=2, read_limit=4, window=10.0, margin=0.0),
                      clock=clock, sleep=clock.sleep)
    client, _, _, _ = make_client(lambda r: httpx.Response(204), budgets=budgets)
    for _ in range(2):
        await client.patch("/beta/deviceManagement/deviceCategories/c", json_body={})
        await client.patch("/beta/deviceManagement/deviceConfigurations/c", json_body={})
        await client.patch("/beta/deviceManagement/deviceHealthScripts/c", json_body={})
    assert clock.now == 0.0  # three families, each within its own limit
    await client.patch("/beta/deviceManagement/deviceHealthScripts/c", json_body={})
    assert clock.now == 0.0  # scripts ("Intune devices") have double the limits
    await client.patch("/beta/deviceManagement/deviceCategories/c", json_body={})
    assert clock.now == pytest.approx(10.0)
