"""The Graph port of the services: a managed tenant's Graph client, from its registration.

Services ask this port for a tenant's client instead of building one (unit tests pass a fake with the same
methods). It reads the tenant's registration (cached per process for a short while), resolves the credential
once per process and credential reference, and hands out a read-only client unless writes are asked for:
a read-only client refuses any write before it leaves the process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol

from shared.credentials import GraphCredential
from shared.domain import ManagedTenant
from shared.errors import TenantNotFound
from shared.graph.client import GraphClient, GraphResponse
from shared.graph.factory import GraphClientFactory
from shared.ports import TenantRepository

__all__ = ["TENANT_CACHE_SECONDS", "GraphApi", "GraphPort", "TenantGraphClients"]

CredentialResolver = Callable[[ManagedTenant], GraphCredential]
# How long a process reuses a managed tenant's registration instead of reading it for every item (a backup
# set captures thousands of one tenant's items). A change to the registration (another credential reference
# or client id, or the tenant removed) is picked up within this long: the Graph client factory caches clients
# per credential reference, so a new reference gets a new client once the cached registration expires.
TENANT_CACHE_SECONDS = 60.0


class GraphApi(Protocol):
    """What the services use of a tenant's :class:`GraphClient`."""

    read_only: bool

    async def get(self, url: str, *, params: Any = None) -> dict[str, Any]:
        """GET a JSON object."""
        ...

    async def get_all(self, url: str, *, params: Any = None) -> list[dict[str, Any]]:
        """GET every page of a collection."""
        ...

    async def post(self, url: str, *, json_body: Any = None, idempotent: bool = False) -> GraphResponse:
        """POST."""
        ...

    async def patch(self, url: str, *, json_body: Any) -> GraphResponse:
        """PATCH."""
        ...

    async def put(self, url: str, *, json_body: Any) -> GraphResponse:
        """PUT."""
        ...


class GraphPort(Protocol):
    """Hands out managed tenants' Graph clients."""

    async def client(self, tenant_id: str, *, writes: bool = False) -> GraphClient:
        """The tenant's client; read-only unless ``writes``.

        Raises:
            TenantNotFound: the tenant is not registered.
            CredentialUnavailable: its credential cannot be resolved.
        """
        ...

    async def forget(self, tenant_id: str) -> None:
        """Drop what this process cached of the tenant's credential (Entra refused it)."""
        ...


class TenantGraphClients:
    """:class:`GraphPort` over the tenant registry, the credential resolver and the client factory."""

    def __init__(self, *, tenants: TenantRepository, factory: GraphClientFactory,
                 credentials: CredentialResolver, tenant_cache_seconds: float = TENANT_CACHE_SECONDS,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._tenants = tenants
        self._factory = factory
        self._credentials = credentials
        self._tenant_cache_seconds = tenant_cache_seconds
        self._monotonic = monotonic
        # tenant id -> (registration, monotonic time it expires); misses are not cached.
        self._tenant_cache: dict[str, tuple[ManagedTenant, float]] = {}

    async def tenant(self, tenant_id: str) -> ManagedTenant | None:
        """The managed tenant's registration, from this process's cache for a short while."""
        cached = self._tenant_cache.get(tenant_id)
        now = self._monotonic()
        if cached is not None and now < cached[1]:
            return cached[0]
        tenant = await asyncio.to_thread(self._tenants.get, tenant_id)
        if tenant is None:
            self._tenant_cache.pop(tenant_id, None)
        else:
            self._tenant_cache[tenant_id] = (tenant, now + self._tenant_cache_seconds)
        return tenant

    async def client(self, tenant_id: str, *, writes: bool = False) -> GraphClient:
        """The tenant's client (see :class:`GraphPort`)."""
        tenant = await self.tenant(tenant_id)
        if tenant is None:
            raise TenantNotFound("tenant not found")
        ref = tenant.graph.credential
        credential_key = f"{ref.type}:{ref.name}"
        credential = None
        if not self._factory.knows(tenant_id=tenant.tenant_id, client_id=tenant.graph.client_id,
                                   credential_key=credential_key):
            # Resolving may read Key Vault: once per process and credential, off the event loop.
            credential = (await asyncio.to_thread(self._credentials, tenant)).value
        return self._factory.get(tenant_id=tenant.tenant_id, client_id=tenant.graph.client_id,
                                 credential=credential, credential_key=credential_key, read_only=not writes)

    async def forget(self, tenant_id: str) -> None:
        """See :class:`GraphPort`."""
        tenant = await self.tenant(tenant_id)
        # Read the registration again next time too: the refused credential may have been replaced there.
        self._tenant_cache.pop(tenant_id, None)
        if tenant is not None:
            ref = tenant.graph.credential
            self._factory.forget(tenant_id=tenant.tenant_id, client_id=tenant.graph.client_id,
                                 credential_key=f"{ref.type}:{ref.name}")
