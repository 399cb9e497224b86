"""``GraphClient``: our one way of talking to Microsoft Graph.

One long-lived ``httpx.AsyncClient`` (explicit timeouts, ``base_url``, injectable transport, a CA bundle for
the local simulator) and bearer tokens from a :class:`~shared.graph.auth.TokenProvider`. Everything that makes
Graph reliable lives here, in one place:

- retries of 429/502/503/504, connection and read errors and truncated bodies, honouring ``Retry-After``
  (integer, fractional or HTTP-date) and otherwise backing off exponentially with jitter, with the attempts
  and the total sleep capped; beyond the cap :class:`~shared.graph.errors.GraphThrottled` carries the wait;
- one retry with a fresh token after a 401 (a token that expired mid-run);
- client-side request budgets per (tenant, app) so concurrent workers stay under Intune's limits;
- paging through ``@odata.nextLink`` exactly as Graph returned it;
- ``$batch`` with chunking, per-item status and re-batching of throttled items;
- read-only mode, which refuses any write before it leaves the process.

Writes that Graph may have executed even though we saw no answer (POST after a 502/504, a reset or a
timeout) are not retried unless the caller says the call is idempotent (``assign`` replaces the whole set,
for example): a duplicate policy is worse than a failure the restore can reconcile by name.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx

from shared.graph.auth import BearerAuth, TokenProvider
from shared.graph.batch import BatchRequest, BatchResponse, chunk_requests
from shared.graph.budget import BudgetConfig, Budgets
from shared.graph.catalog import permission_for as catalog_permission_for
from shared.graph.catalog import throttle_family_for
from shared.graph.connections import ConnectionPools
from shared.graph.errors import (
    GraphAuthError,
    GraphBadRequest,
    GraphConflict,
    GraphError,
    GraphIncompleteRead,
    GraphNotFound,
    GraphPermissionMissing,
    GraphServerError,
    GraphThrottled,
    GraphWriteRefused,
)
from shared.graph.retry import (
    IDEMPOTENT_METHODS,
    RETRYABLE_STATUSES,
    SAFE_TO_RETRY_POST_STATUSES,
    RetryPolicy,
    parse_retry_after,
)

__all__ = ["DEFAULT_TIMEOUT", "GraphClient", "GraphResponse"]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT: Final = httpx.Timeout(connect=10.0, read=60.0, write=30.0, pool=30.0)
_READ_METHODS: Final = frozenset({"GET", "HEAD"})
_MAX_PAGES: Final = 100_000


@dataclass(frozen=True)
class GraphResponse:
    """A successful Graph answer with its body already parsed (``None`` when empty)."""

    status_code: int
    headers: httpx.Headers
    body: Any

    def json(self) -> dict[str, Any]:
        """The body as a JSON object (``{}`` when Graph sent none)."""
        return self.body if isinstance(self.body, dict) else {}


@dataclass
class _Shared:
    http: ConnectionPools
    owns_http: bool
    auth: BearerAuth
    budgets: Budgets


class GraphClient:
    """Async Microsoft Graph client for one managed tenant and app registration."""

    def __init__(
        self,
        *,
        base_url: str,
        token_provider: TokenProvider,
        tenant_id: str = "",
        client_id: str = "",
        transport: httpx.AsyncBaseTransport | None = None,
        verify: ssl.SSLContext | str | bool = True,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        read_only: bool = False,
        retry: RetryPolicy | None = None,
        budgets: BudgetConfig | Budgets | None = None,
        http: httpx.AsyncClient | ConnectionPools | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        permission_for: Callable[[str, str], str | None] = catalog_permission_for,
        rng: random.Random | None = None,
    ) -> None:
        """Create a client.

        Args:
            base_url: Graph origin, ``https://graph.microsoft.com`` (or the simulator's base URL).
            token_provider: where bearer tokens come from.
            tenant_id: the managed tenant, for logs.
            client_id: the app registration, for logs.
            transport: injected transport (``httpx.MockTransport`` in unit tests).
            verify: CA bundle path or SSL context (the local simulator's CA), or ``True``.
            timeout: explicit timeouts; a read slower than ``timeout.read`` is retried.
            read_only: refuse every non-GET request before it leaves the process.
            retry: retry limits.
            budgets: per (tenant, app) request budgets, as a config or shared :class:`Budgets`;
                ``None`` means no client-side budget.
            http: the connections to share: :class:`ConnectionPools` (one per process, its cap on requests
                in flight shared by every tenant's client) or an ``httpx.AsyncClient``; then
                ``transport``/``verify``/``timeout`` are ignored and :meth:`aclose` leaves it open.
            sleep: how to wait between retries (tests record instead of sleeping).
            permission_for: maps (method, path) to the permission a 403 names.
            rng: random source for jitter.
        """
        self.base_url = httpx.URL(base_url.rstrip("/"))
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.read_only = read_only
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._permission_for = permission_for
        self._rng = rng or random.Random()
        owns = http is None
        if http is None:
            http = ConnectionPools.create(base_url=str(self.base_url), verify=verify, timeout=timeout,
                                          transport=transport)
        elif isinstance(http, httpx.AsyncClient):
            http = ConnectionPools([http])
        shared_budgets = budgets if isinstance(budgets, Budgets) else Budgets(budgets)
        self._shared = _Shared(http, owns, BearerAuth(token_provider), shared_budgets)

    # ------------------------------------------------------------------ lifecycle and views
    def read_only_view(self) -> GraphClient:
        """The same client (connection pool, tokens, budgets) with writes refused."""
        view = object.__new__(GraphClient)
        view.__dict__.update(self.__dict__)
        view.read_only = True
        return view

    @property
    def token_provider(self) -> TokenProvider:
        """The provider of bearer tokens."""
        return self._shared.auth.provider

    @property
    def budgets(self) -> Budgets:
        """The request budgets this client draws from."""
        return self._shared.budgets

    async def aclose(self) -> None:
        """Close the connection pool (when this client created it)."""
        if self._shared.owns_http:
            await self._shared.http.aclose()

    async def __aenter__(self) -> GraphClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ verbs
    async def get(self, url: str, *, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """GET a JSON object."""
        return (await self.request("GET", url, params=params)).json()

    async def post(self, url: str, *, json_body: Any = None, idempotent: bool = False) -> GraphResponse:
        """POST; pass ``idempotent=True`` for actions that are safe to repeat (``assign``)."""
        return await self.request("POST", url, json_body=json_body, idempotent=idempotent)

    async def patch(self, url: str, *, json_body: Any) -> GraphResponse:
        """PATCH."""
        return await self.request("PATCH", url, json_body=json_body)

    async def put(self, url: str, *, json_body: Any) -> GraphResponse:
        """PUT."""
        return await self.request("PUT", url, json_body=json_body)

    async def delete(self, url: str) -> GraphResponse:
        """DELETE."""
        return await self.request("DELETE", url)

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        label: str | None = None,
    ) -> GraphResponse:
        """Send one request with retries; return the successful answer.

        Args:
            method: HTTP method.
            url: path relative to the base URL (``/beta/deviceManagement/...``) or an absolute URL on the
                same origin (a nextLink).
            params: query parameters.
            json_body: JSON body.
            headers: extra headers.
            idempotent: whether repeating the call is harmless; defaults to true for everything but POST.
            label: how logs and errors name the call; defaults to the path of a relative ``url``. An absolute
                URL came from Graph (a nextLink), so its path is not ours to repeat.

        Returns:
            The answer, body parsed.

        Raises:
            GraphWriteRefused: a write on a read-only client (nothing was sent).
            GraphThrottled: still throttled after the retry budget.
            GraphError: any other failure, mapped from the status.
        """
        method = method.upper()
        self._refuse_writes(method, url, json_body)
        reads, writes = (1, 0) if method in _READ_METHODS else (0, 1)
        return await self._send(
            method, url, params=params, json_body=json_body, headers=headers,
            idempotent=method in IDEMPOTENT_METHODS if idempotent is None else idempotent,
            budget=[(throttle_family_for(_path_of(url)), reads, writes)], label=label,
        )

    # ------------------------------------------------------------------ paging
    async def iter_pages(
        self, url: str, *, params: Mapping[str, str] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield every page of a collection, following ``@odata.nextLink`` verbatim.

        Raises:
            GraphIncompleteRead: Graph sent the same nextLink twice (a paging loop).
        """
        seen: set[str] = set()
        next_url: str | None = url
        next_params = params
        pages = 0
        # Later pages are named after the collection we asked for: a nextLink's path is Graph's text.
        first_path = _display_path(url)
        while next_url is not None:
            label = first_path if pages == 0 else f"{first_path} (page {pages + 1})"
            page = (await self.request("GET", next_url, params=next_params, label=label)).json()
            yield page
            pages += 1
            link = page.get("@odata.nextLink")
            if link is not None and (link in seen or pages >= _MAX_PAGES):
                raise GraphIncompleteRead(f"paging loop on {first_path} after {pages} pages")
            if link is not None:
                seen.add(link)
            # The nextLink already carries the original query ($expand, $filter) and the skip token.
            next_url, next_params = link, None

    async def iter_items(
        self, url: str, *, params: Mapping[str, str] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield every item of a collection across all pages."""
        async for page in self.iter_pages(url, params=params):
            for item in page.get("value", []):
                yield item

    async def get_all(self, url: str, *, params: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Every item of a collection, all pages."""
        return [item async for item in self.iter_items(url, params=params)]

    # ------------------------------------------------------------------ $batch
    async def batch(
        self, requests: Sequence[BatchRequest], *, version: str = "beta"
    ) -> list[BatchResponse]:
        """Send requests through ``$batch``, 20 at a time, and return one answer per request, in order.

        Inner 429/503 answers (and 502/504 for idempotent methods) are sent again in a new batch after the
        longest inner ``Retry-After``, together with the requests that failed only because they depended on
        them (424). Whatever still fails after the retry budget is returned with its status.

        Raises:
            GraphWriteRefused: a read-only client was given a non-GET request (nothing was sent).
            ValueError: duplicate ids or an impossible ``dependsOn``.
        """
        if self.read_only and not all(r.is_read for r in requests):
            self._refused("POST", f"/{version}/$batch")
        results: dict[str, BatchResponse] = {}
        for chunk in chunk_requests(requests):
            results.update(await self._batch_chunk(chunk, version))
        return [results[r.id] for r in requests]

    async def _batch_chunk(
        self, chunk: list[BatchRequest], version: str
    ) -> dict[str, BatchResponse]:
        done: dict[str, BatchResponse] = {}
        pending = list(chunk)
        slept = 0.0
        attempt = 0
        while True:
            attempt += 1
            pending_ids = frozenset(r.id for r in pending)
            body = {"requests": [r.to_json(keep_depends_on=pending_ids) for r in pending]}
            # Graph throttles every request of a batch on its own, so each one draws from its family.
            plan: dict[str, list[int]] = {}
            for r in pending:
                counts = plan.setdefault(throttle_family_for(r.url), [0, 0])
                counts[0 if r.is_read else 1] += 1
            response = await self._send(
                "POST", f"/{version}/$batch", params=None, json_body=body, headers=None,
                idempotent=all(r.method.upper() in IDEMPOTENT_METHODS for r in pending),
                budget=[(family, c[0], c[1]) for family, c in plan.items()],
            )
            answers = _parse_batch_answers(response.json())
            by_id = {r.id: r for r in pending}
            retry_ids: set[str] = set()
            delays: list[float] = []
            for request in pending:
                answer = answers.get(request.id) or BatchResponse(request.id, 500, {}, None)
                done[request.id] = answer
                if _inner_retryable(request, answer.status):
                    retry_ids.add(request.id)
                    parsed = parse_retry_after(answer.headers.get("retry-after"))
                    delays.append(self.retry.delay(parsed, attempt, self._rng))
            # A dependant that failed with 424 only because its dependency was throttled goes again too.
            changed = True
            while changed:
                changed = False
                for request in pending:
                    if (request.id not in retry_ids and done[request.id].status == 424
                            and any(d in retry_ids for d in request.depends_on)):
                        retry_ids.add(request.id)
                        changed = True
            if not retry_ids:
                return done
            delay = max(delays) if delays else self.retry.backoff(attempt, self._rng)
            if attempt >= self.retry.max_attempts or slept + delay > self.retry.max_total_sleep:
                logger.warning(
                    "graph batch items still failing tenant=%s items=%d attempt=%d",
                    self.tenant_id, len(retry_ids), attempt,
                )
                return done
            logger.info(
                "graph batch retry tenant=%s items=%d attempt=%d sleep=%.2f",
                self.tenant_id, len(retry_ids), attempt, delay,
            )
            await self._sleep(delay)
            slept += delay
            pending = [by_id[i] for i in by_id if i in retry_ids]

    # ------------------------------------------------------------------ internals
    def _refuse_writes(self, method: str, url: str, json_body: Any) -> None:
        if not self.read_only or method in _READ_METHODS:
            return
        if method == "POST" and _path_of(url).endswith("/$batch") and isinstance(json_body, dict):
            inner = json_body.get("requests")
            if isinstance(inner, list) and inner and all(
                isinstance(r, dict) and str(r.get("method", "")).upper() == "GET" for r in inner
            ):
                return
        self._refused(method, url)

    def _refused(self, method: str, url: str) -> None:
        path = _path_of(url)
        logger.warning("graph write refused read_only=true tenant=%s method=%s path=%s",
                       self.tenant_id, method, path)
        raise GraphWriteRefused(f"read-only client refused {method} {path}")

    def _check_origin(self, url: str) -> None:
        target = httpx.URL(url)
        if target.is_absolute_url and (target.scheme, target.host, target.port) != (
            self.base_url.scheme, self.base_url.host, self.base_url.port,
        ):
            # Never send our bearer token to another origin, whatever a nextLink says.
            raise GraphBadRequest(f"refusing to follow a URL outside {self.base_url.host}")

    async def _send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None,
        json_body: Any,
        headers: Mapping[str, str] | None,
        idempotent: bool,
        budget: Sequence[tuple[str, int, int]],
        label: str | None = None,
    ) -> GraphResponse:
        self._check_origin(url)
        path = label or _display_path(url)
        attempt = 0
        slept = 0.0
        refreshed_token = False
        shared = self._shared
        while True:
            attempt += 1
            # Every attempt counts: Graph counts throttled and failed requests too.
            for family, reads, writes in budget:
                await shared.budgets.acquire(family=family, reads=reads, writes=writes)
            request = shared.http.build_request(
                method, url, params=params, json=json_body, headers=headers
            )
            status: int | None = None
            retry_after: float | None = None
            try:
                response = await shared.http.send(request, auth=shared.auth)
                status = response.status_code
                body = _parse_body(response)
            except httpx.TransportError as exc:
                # A connection that never opened cannot have run the request.
                never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
                if not (idempotent or never_sent):
                    raise GraphServerError(
                        f"{method} {path} failed: {type(exc).__name__} (not retried: not idempotent)"
                    ) from None
                failure = type(exc).__name__
            except _TruncatedBody:
                if not idempotent:
                    raise GraphIncompleteRead(
                        f"{method} {path} -> {status}: truncated body (not retried: not idempotent)"
                    ) from None
                failure = "truncated body"
            else:
                if status < 400:
                    return GraphResponse(status, response.headers, body)
                if status == 401 and not refreshed_token:
                    # A token that expired (or was revoked) mid-run: drop it and try once more at once.
                    refreshed_token = True
                    await shared.auth.provider.invalidate(_bearer_of(request))
                    logger.info("graph token rejected, refreshing tenant=%s path=%s", self.tenant_id, path)
                    attempt -= 1
                    continue
                retryable = status in RETRYABLE_STATUSES and (
                    idempotent or status in SAFE_TO_RETRY_POST_STATUSES
                )
                if not retryable:
                    raise self._error_for(method, _path_of(url), status, response.headers, body, label=path)
                failure = f"status={status}"
                retry_after = parse_retry_after(response.headers.get("retry-after"))
            delay = self.retry.delay(retry_after, attempt, self._rng)
            if attempt >= self.retry.max_attempts or slept + delay > self.retry.max_total_sleep:
                logger.warning(
                    "graph retries exhausted tenant=%s method=%s path=%s failure=%s attempts=%d slept=%.1f",
                    self.tenant_id, method, path, failure, attempt, slept,
                )
                answer = f"Microsoft Graph answered {status}" if status is not None else failure
                detail = f"{method} {path}: {answer} on all {attempt} attempts"
                if status in (429, 503):
                    raise GraphThrottled(detail, retry_after=delay, status_code=status)
                raise GraphServerError(detail, status_code=status)
            logger.info(
                "graph retry tenant=%s method=%s path=%s failure=%s attempt=%d sleep=%.2f",
                self.tenant_id, method, path, failure, attempt, delay,
            )
            await self._sleep(delay)
            slept += delay

    def batch_error(self, request: BatchRequest, answer: BatchResponse) -> GraphError | None:
        """The error a failed ``$batch`` answer stands for (``None`` when it succeeded).

        Callers get the same classes and codes as for a direct call (``GraphPermissionMissing`` with
        the permission, ``GraphNotFound``, ``GraphThrottled`` with its wait, ...).
        """
        if answer.ok:
            return None
        return self._error_for(request.method.upper(), _path_of(request.url), answer.status,
                               answer.headers, answer.body)

    def _error_for(
        self, method: str, path: str, status: int, headers: Mapping[str, str], body: Any, *,
        label: str | None = None,
    ) -> GraphError:
        # Only structured facts of Graph's answer are kept (each checked for its shape when the error is
        # built); its error.message is free text that can echo anything, so it is never read.
        facts = _graph_error_facts(body)
        common: dict[str, Any] = {
            "status_code": status,
            "graph_code": facts.get("code"),
            "request_id": headers.get("request-id") or facts.get("request-id"),
            "date": facts.get("date") or headers.get("date"),
            "target": facts.get("target"),
        }
        summary = f"{method} {label or path}: Microsoft Graph answered {status}"
        if status == 403:
            permission = self._permission_for(method, path)
            return GraphPermissionMissing(
                f"graph-permission-missing: {permission or 'unknown permission'} ({summary})",
                permission=permission, **common,
            )
        if status == 404:
            return GraphNotFound(f"{summary}: the object does not exist", **common)
        if status == 409:
            return GraphConflict(f"{summary}: the change conflicts with the object's current state", **common)
        if status == 401:
            return GraphAuthError(f"token rejected twice: {summary}", **common)
        if status in (429, 503):
            retry_after = parse_retry_after(headers.get("retry-after"))
            return GraphThrottled(f"{summary}: throttled or unavailable", retry_after=retry_after or 0.0,
                                  **common)
        if status >= 500:
            return GraphServerError(f"{summary}: server error", **common)
        return GraphBadRequest(f"{summary}: the request was rejected", **common)


class _TruncatedBody(Exception):
    """The body is not the JSON Graph promised (cut short)."""


def _parse_body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    content_type = response.headers.get("content-type", "")
    if "json" not in content_type:
        return None
    try:
        return json.loads(response.content)
    except ValueError:
        raise _TruncatedBody from None


def _parse_batch_answers(envelope: dict[str, Any]) -> dict[str, BatchResponse]:
    answers: dict[str, BatchResponse] = {}
    for item in envelope.get("responses", []):
        if not isinstance(item, dict) or "id" not in item:
            continue
        headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
        answers[str(item["id"])] = BatchResponse(
            id=str(item["id"]), status=int(item.get("status", 500)), headers=headers, body=item.get("body")
        )
    return answers


def _inner_retryable(request: BatchRequest, status: int) -> bool:
    if status in SAFE_TO_RETRY_POST_STATUSES:
        return True
    return status in RETRYABLE_STATUSES and request.method.upper() in IDEMPOTENT_METHODS


def _graph_error_facts(body: Any) -> dict[str, Any]:
    """The structured members of Graph's ``{"error": {...}}`` body, unchecked (the error checks them).

    ``error.message`` (and Intune's JSON document nested in it) is deliberately left out: free text.
    """
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return {}
    error = body["error"]
    inner = error.get("innerError") or error.get("innererror")
    inner = inner if isinstance(inner, dict) else {}
    target = error.get("target")
    details = error.get("details")
    if target is None and isinstance(details, list):
        target = next((d.get("target") for d in details if isinstance(d, dict) and d.get("target")), None)
    return {"code": error.get("code"), "request-id": inner.get("request-id"), "date": inner.get("date"),
            "target": target}


def _path_of(url: str) -> str:
    return httpx.URL(url).path


def _display_path(url: str) -> str:
    # Callers pass relative paths; only a nextLink (Graph's text) is absolute.
    target = httpx.URL(url)
    return "(next page)" if target.is_absolute_url else target.path


def _bearer_of(request: httpx.Request) -> str:
    value = str(request.headers.get("authorization", ""))
    return value.split(" ", 1)[1] if " " in value else value
