"""Graph's and Entra's error texts are untrusted: an error keeps our own words and checked facts only."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from shared.domain import ErrorInfo
from shared.graph import GraphError, RetryPolicy
from tests.graph.scripted import REQUEST_ID, make_client
from tests.graph.test_auth_budget_redaction import provider_for, sts
from tests.planted_upstream_text import PLANTED, leaks, planted_message

PATH = "/beta/deviceManagement/deviceCategories/c1"


def hostile(status: int, *, structured: bool, **headers: str) -> httpx.Response:
    """A Graph error with every planted shape in its message (and, if ``structured``, in every field)."""
    random40 = PLANTED["random40"][0]
    error: dict[str, Any] = {
        "code": "BadRequest",
        "message": planted_message(),
        "innerError": {"request-id": REQUEST_ID, "date": "2026-01-01T00:00:00",
                       "message": planted_message()},
        "details": [{"code": "InvalidValue", "target": "displayName", "message": planted_message()}],
    }
    response_headers = {"request-id": REQUEST_ID, **headers}
    if structured:
        error.update(code=random40, target=PLANTED["the-value-is"][0])
        error["innerError"].update({"request-id": PLANTED["aadsts"][0], "date": random40})
        error["details"] = [{"target": random40, "message": planted_message()}]
        response_headers["request-id"] = PLANTED["password-phrase"][0]
    return httpx.Response(status, json={"error": error}, headers=response_headers)


def every_text_of(error: GraphError) -> str:
    info = ErrorInfo(code=error.instance_code, message=error.detail, **error.facts())
    return " ".join([error.detail, str(error), repr(error), repr(error.extra), repr(error.facts()),
                     repr(vars(error)), info.model_dump_json()])


# Every way a Graph error ends a call: 400, 401 twice, 403, 404, 409, 500, and 503/502 beyond the retries.
STATUSES = [400, 401, 403, 404, 409, 500, 502, 503]


@pytest.mark.parametrize("structured", [False, True], ids=["in-message", "in-every-field"])
@pytest.mark.parametrize("status", STATUSES)
async def test_no_graph_text_survives_in_the_error_or_the_logs(
    status: int, structured: bool, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client, _, _, _ = make_client(lambda _: hostile(status, structured=structured, **{"Retry-After": "1"}),
                                  tokens=("a", "b"),
                                  retry=RetryPolicy(max_attempts=2, max_total_sleep=5.0, backoff_base=0.1))
    with pytest.raises(GraphError) as info:
        await client.get(PATH)

    error = info.value
    assert leaks(every_text_of(error)) == []
    assert leaks(caplog.text) == []
    assert f"GET {PATH}: Microsoft Graph answered {status}" in error.detail
    assert error.status_code == status


async def test_well_formed_facts_are_kept() -> None:
    client, _, _, _ = make_client(lambda _: hostile(409, structured=False))
    with pytest.raises(GraphError) as info:
        await client.get(PATH)
    assert info.value.facts() == {"http_status": 409, "graph_code": "BadRequest", "request_id": REQUEST_ID,
                                  "date": "2026-01-01T00:00:00", "target": "displayName"}
    assert info.value.detail == (f"GET {PATH}: Microsoft Graph answered 409: the change conflicts with the "
                                 "object's current state")


async def test_ill_formed_facts_are_dropped_not_trimmed() -> None:
    client, _, _, _ = make_client(lambda _: hostile(400, structured=True))
    with pytest.raises(GraphError) as info:
        await client.get(PATH)
    assert info.value.facts() == {"http_status": 400}


async def test_a_next_link_path_is_not_repeated() -> None:
    # Graph's nextLink is Graph's text too: a failing later page is named after the collection we asked for.
    link = f"https://graph.test/beta/deviceManagement/{PLANTED['random40'][0]}?$skiptoken=x"
    pages = iter([httpx.Response(200, json={"value": [], "@odata.nextLink": link}),
                  hostile(404, structured=False)])
    client, _, _, _ = make_client(lambda _: next(pages))
    with pytest.raises(GraphError) as info:
        await client.get_all("/beta/deviceManagement/deviceCategories")
    assert leaks(every_text_of(info.value)) == []
    assert "/beta/deviceManagement/deviceCategories (page 2)" in info.value.detail


async def test_no_entra_text_survives_in_the_token_error_or_the_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    recorder = sts(401, {
        "error": "invalid_client",
        "error_description": f"AADSTS7000215: {planted_message()}\r\nTrace ID: {PLANTED['random40'][0]}",
        "error_codes": [7000215], "correlation_id": PLANTED["the-value-is"][0]})
    provider = provider_for(recorder)
    with pytest.raises(GraphError) as info:
        await provider.get_token()
    assert leaks(every_text_of(info.value)) == []
    assert leaks(caplog.text) == []
    assert info.value.facts() == {"graph_code": "invalid_client", "aadsts": "AADSTS7000215"}
    assert "invalid_client" in info.value.detail
