"""One Graph client per (managed tenant, app registration) for the whole process.

Building an MSAL app does network I/O and an ``httpx`` client owns a connection pool, so both are made once
and reused (per-call clients exhaust SNAT ports on Functions). The factory also owns what must be shared
across every worker of the process for a (tenant, app): the token cache and the request budgets. With a
ledger store, the budgets are shared by every process of the app (:mod:`shared.graph.shared_budget`).
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from dataclasses import dataclass
from typing import Any

import httpx
import msal

from shared.graph.auth import PUBLIC_AUTHORITY_HOST, Credential, MsalTokenProvider
from shared.graph.budget import PUBLISHED_LIMITS, BudgetConfig, Budgets
from shared.graph.client import DEFAULT_TIMEOUT, GraphClient
from shared.graph.connections import ConnectionPools
from shared.graph.retry import RetryPolicy
from shared.graph.shared_budget import SharedBudgetOptions, SharedBudgets
from shared.ports import BudgetLedgerStore

__all__ = ["GraphClientFactory"]


@dataclass(frozen=True)
class _Key:
    tenant_id: str
    client_id: str
    # Which credential (e.g. "keyVaultSecret:contoso-graph"): a tenant re-registered with another credential
    # gets a new MSAL app instead of silently keeping the old one.
    credential_key: str = ""


class GraphClientFactory:
    """Creates and caches :class:`GraphClient` objects, one per (tenant, client id)."""

    def __init__(
        self,
        *,
        graph_base_url: str = "https://graph.microsoft.com",
        authority_host: str = PUBLIC_AUTHORITY_HOST,
        ca_bundle: str | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        budget: BudgetConfig | None = PUBLISHED_LIMITS,
        transport: httpx.AsyncBaseTransport | None = None,
        budget_store: BudgetLedgerStore | None = None,
        shared_budget: SharedBudgetOptions | None = None,
    ) -> None:
        """Configure the clients this factory makes.

        Args:
            graph_base_url: Graph origin (the simulator's base URL locally).
            authority_host: Entra authority host (the simulator's base URL locally).
            ca_bundle: CA bundle to trust instead of the system store (local simulator only).
            timeout: timeouts of Graph calls.
            retry: retry limits of every client.
            budget: per (tenant, app) limits; defaults to Intune's published numbers. Pass a scaled config
                against a simulator whose limits are scaled, ``None`` for no client-side budget.
            transport: injected transport for Graph calls (tests).
            budget_store: the ledgers of budgets shared by every process of the app; ``None`` keeps each
                (tenant, app)'s budget in this process (unit tests, single-process tools).
            shared_budget: lease and fallback tuning of the shared budgets.
        """
        self.graph_base_url = graph_base_url.rstrip("/")
        self.authority_host = authority_host.rstrip("/")
        self._verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True
        )
        self._timeout = timeout
        self._retry = retry
        self._budget = budget
        self._transport = transport
        self._budget_store = budget_store
        self._shared_budget = shared_budget
        self._lock = threading.Lock()
        self._clients: dict[_Key, GraphClient] = {}
        self._providers: dict[_Key, MsalTokenProvider] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        # One token cache for every tenant: MSAL keys entries by client id, host and tenant.
        self.token_cache = msal.TokenCache()
        self._msal_http = httpx.Client(verify=self._verify, timeout=timeout)
        self._http: ConnectionPools | None = None

    def _follow_event_loop(self) -> None:
        # An httpx.AsyncClient (and an asyncio.Lock) belongs to the event loop that first used it. The
        # Functions worker keeps one loop for the process; when a caller runs on another loop (a new
        # test, a second asyncio.run) the clients are rebuilt there. MSAL apps and tokens are kept.
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._loop is not None and loop is not self._loop:
            self._clients.clear()
            self._http = None
        self._loop = loop

    def _shared_http(self) -> ConnectionPools:
        if self._http is None:
            self._http = ConnectionPools.create(base_url=self.graph_base_url, verify=self._verify,
                                                timeout=self._timeout, transport=self._transport)
        return self._http

    def knows(self, *, tenant_id: str, client_id: str, credential_key: str = "") -> bool:
        """Whether a token provider for this (tenant, client id, credential) exists already.

        Callers resolve a credential (a Key Vault read) only when this is false.
        """
        with self._lock:
            return _Key(tenant_id, client_id, credential_key) in self._providers

    def forget(self, *, tenant_id: str, client_id: str, credential_key: str = "") -> None:
        """Drop the client and token provider of (tenant, client id, credential).

        Used when Entra refused the credential (a rotated or revoked secret): the next call resolves the
        credential again instead of failing with the stale one until the process restarts.
        """
        key = _Key(tenant_id, client_id, credential_key)
        with self._lock:
            self._clients.pop(key, None)
            self._providers.pop(key, None)

    def get(
        self,
        *,
        tenant_id: str,
        client_id: str,
        credential: Credential | Any = None,
        credential_key: str = "",
        read_only: bool = False,
    ) -> GraphClient:
        """Return the client of (tenant, client id, credential), creating it on first use.

        Args:
            tenant_id: the managed tenant.
            client_id: the app registration in that tenant.
            credential: secret, certificate or assertion callable, or a resolved MSAL credential
                (needed only on first creation; see :meth:`knows`).
            credential_key: names the credential, so that a changed credential gets a new client.
            read_only: return a view of the client that refuses writes (previews).

        Raises:
            ValueError: the client does not exist yet and no credential was given.
        """
        key = _Key(tenant_id, client_id, credential_key)
        with self._lock:
            self._follow_event_loop()
            client = self._clients.get(key)
            if client is None:
                provider = self._providers.get(key)
                if provider is None:
                    if credential is None:
                        raise ValueError("a credential is needed to create this Graph client")
                    provider = MsalTokenProvider(
                        tenant_id=tenant_id,
                        client_id=client_id,
                        credential=credential,
                        authority_host=self.authority_host,
                        http_client=self._msal_http,
                        token_cache=self.token_cache,
                    )
                    self._providers[key] = provider
                client = GraphClient(
                    base_url=self.graph_base_url,
                    token_provider=provider,
                    tenant_id=tenant_id,
                    client_id=client_id,
                    retry=self._retry,
                    budgets=self._budgets(tenant_id, client_id),
                    http=self._shared_http(),
                )
                self._clients[key] = client
        return client.read_only_view() if read_only else client

    def _budgets(self, tenant_id: str, client_id: str) -> Budgets:
        if self._budget_store is None:
            return Budgets(self._budget)
        # Every process draws from the same ledger rows; this client's leases are its own.
        return Budgets(self._budget, source=SharedBudgets(
            self._budget_store, tenant_id=tenant_id, client_id=client_id, options=self._shared_budget))

    async def aclose(self) -> None:
        """Close the shared connection pools."""
        if self._http is not None:
            # A pool that belongs to another (finished) loop cannot be closed from this one.
            if self._loop is asyncio.get_running_loop():
                await self._http.aclose()
            self._http = None
        self._msal_http.close()
        self._clients.clear()
        self._providers.clear()
