"""App-only Graph tokens for managed tenants, from MSAL, behind a small async interface.

One MSAL ``ConfidentialClientApplication`` per managed tenant (authority ``{host}/{tenant}``, as MSAL asks for
client credentials) and one token cache shared by all of them: MSAL keys cache entries by client id, authority
host and tenant, so one cache serves every tenant and a second call is answered without a network round trip.

MSAL is synchronous and its constructor already does network I/O (tenant discovery), so every MSAL call
runs in ``asyncio.to_thread``. MSAL error dicts become :class:`~shared.graph.errors.GraphAuthError`
carrying Entra's error code and ``AADSTS`` number only: Entra's ``error_description`` (and the text of MSAL's
exceptions, which quote it) is free text that can echo anything, so it never reaches an error or a log.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import httpx
import msal
from msal.exceptions import MsalError

from shared.domain.base import safe_aadsts, safe_graph_code
from shared.graph.errors import GraphAuthError, GraphServerError

__all__ = [
    "GRAPH_SCOPE",
    "PUBLIC_AUTHORITY_HOST",
    "BearerAuth",
    "ClientAssertion",
    "ClientCertificate",
    "ClientSecret",
    "Credential",
    "MsalHttpClient",
    "MsalTokenProvider",
    "StaticTokenProvider",
    "TokenProvider",
    "msal_credential",
]

logger = logging.getLogger(__name__)

GRAPH_SCOPE: Final = "https://graph.microsoft.com/.default"
PUBLIC_AUTHORITY_HOST: Final = "https://login.microsoftonline.com"
_AADSTS = re.compile(r"AADSTS\d+")
# Stop reusing a token this long before it expires, as MSAL itself does (5 minutes).
_MEMO_REFRESH_MARGIN: Final = 300.0


@dataclass(frozen=True)
class ClientSecret:
    """A client secret (kept out of ``repr`` so it never reaches a log by accident)."""

    value: str = field(repr=False)

    def to_msal(self) -> Any:
        """The ``client_credential`` MSAL expects."""
        return self.value


@dataclass(frozen=True)
class ClientCertificate:
    """A certificate credential: PEM private key plus its SHA-1 thumbprint and/or public certificate."""

    private_key: str = field(repr=False)
    thumbprint: str | None = None
    public_certificate: str | None = None
    passphrase: str | None = field(default=None, repr=False)

    def to_msal(self) -> Any:
        """The ``client_credential`` MSAL expects."""
        if not self.thumbprint and not self.public_certificate:
            raise ValueError("a certificate credential needs a thumbprint or the public certificate")
        cred: dict[str, Any] = {"private_key": self.private_key}
        if self.thumbprint:
            cred["thumbprint"] = self.thumbprint
        if self.public_certificate:
            cred["public_certificate"] = self.public_certificate
        if self.passphrase:
            cred["passphrase"] = self.passphrase
        return cred


@dataclass(frozen=True)
class ClientAssertion:
    """A callable returning a fresh signed assertion (federated credential from a managed identity)."""

    provider: Callable[[], str] = field(repr=False)

    def to_msal(self) -> Any:
        """The ``client_credential`` MSAL expects: MSAL calls the provider whenever it needs one."""
        return {"client_assertion": self.provider}


Credential = ClientSecret | ClientCertificate | ClientAssertion


def msal_credential(credential: Any) -> Any:
    """The MSAL ``client_credential`` for ``credential``.

    Accepts our credential types, an object with a ``value`` holding what MSAL takes (as resolved from a
    tenant's credential reference), or that value itself (a secret string or a certificate/assertion dict).
    """
    if isinstance(credential, ClientSecret | ClientCertificate | ClientAssertion):
        return credential.to_msal()
    if isinstance(credential, str | dict):
        return credential
    value = getattr(credential, "value", None)
    if isinstance(value, str | dict):
        return value
    raise TypeError(f"unsupported Graph credential type {type(credential).__name__}")


class TokenProvider(Protocol):
    """Where the Graph client gets bearer tokens from."""

    async def get_token(self) -> str:
        """Return a valid access token for Graph."""
        ...

    async def invalidate(self, token: str) -> None:
        """Forget ``token`` (Graph said it is no longer valid) so the next call gets a new one."""
        ...


class MsalHttpClient:
    """The ``http_client`` MSAL gets: our ``httpx.Client`` (CA bundle, timeouts), spoken MSAL's way.

    MSAL hands certificate assertions over as ``bytes`` form values, which ``httpx`` would render as
    ``"b'...'"``; they are decoded here so the token endpoint receives the assertion itself.
    """

    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def get(self, url: str, params: Any = None, headers: Any = None, **kwargs: Any) -> httpx.Response:
        """GET for MSAL (discovery documents)."""
        return self._client.get(url, params=params, headers=headers, **_httpx_kwargs(kwargs))

    def post(
        self, url: str, params: Any = None, data: Any = None, headers: Any = None, **kwargs: Any
    ) -> httpx.Response:
        """POST for MSAL (token requests)."""
        if isinstance(data, dict):
            data = {k: v.decode() if isinstance(v, bytes) else v for k, v in data.items()}
        return self._client.post(
            url, params=params, data=data, headers=headers, **_httpx_kwargs(kwargs)
        )

    def close(self) -> None:
        """Close the underlying client."""
        self._client.close()


def _httpx_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    # MSAL may pass requests-style options; only the timeout has an httpx equivalent.
    return {"timeout": kwargs["timeout"]} if kwargs.get("timeout") is not None else {}


class MsalTokenProvider:
    """App-only tokens for one (tenant, client id), from one long-lived MSAL confidential client."""

    def __init__(
        self,
        *,
        tenant_id: str,
        client_id: str,
        credential: Credential | Any,
        authority_host: str = PUBLIC_AUTHORITY_HOST,
        http_client: httpx.Client | None = None,
        token_cache: msal.TokenCache | None = None,
        scope: str = GRAPH_SCOPE,
    ) -> None:
        self.tenant_id = tenant_id
        self.client_id = client_id
        self._credential = credential
        self._authority = f"{authority_host.rstrip('/')}/{tenant_id}"
        # Instance discovery asks login.microsoftonline.com about the host; only meaningful for it.
        self._instance_discovery = authority_host.rstrip("/") == PUBLIC_AUTHORITY_HOST
        self._http_client = MsalHttpClient(http_client) if http_client is not None else None
        self._cache = token_cache if token_cache is not None else msal.TokenCache()
        self._scope = scope
        self._app: msal.ConfidentialClientApplication | None = None
        self._app_lock = threading.Lock()
        self.identity_provider_calls = 0
        # The last token and when to stop using it without asking MSAL (monotonic clock).
        self._memo: tuple[str, float] | None = None

    def _application(self) -> msal.ConfidentialClientApplication:
        # Built lazily (its constructor does network I/O) and once: MSAL wants one long-lived app.
        with self._app_lock:
            if self._app is None:
                try:
                    self._app = msal.ConfidentialClientApplication(
                        self.client_id,
                        client_credential=msal_credential(self._credential),
                        authority=self._authority,
                        instance_discovery=self._instance_discovery,
                        http_client=self._http_client,
                        token_cache=self._cache,
                    )
                except ValueError as exc:
                    # MSAL raises ValueError when tenant discovery fails (e.g. unknown tenant); its text
                    # quotes the answer, so only the AADSTS number is taken from it.
                    raise GraphAuthError(
                        f"authority discovery failed tenant={self.tenant_id}",
                        aadsts=_first_aadsts(str(exc)),
                    ) from None
            return self._app

    def _acquire(self) -> str:
        app = self._application()
        try:
            result = app.acquire_token_for_client(scopes=[self._scope])
        except httpx.HTTPError as exc:
            raise GraphAuthError(
                f"token endpoint unreachable tenant={self.tenant_id}: {type(exc).__name__}"
            ) from None
        except MsalError as exc:
            # Entra failed (5xx): worth another attempt later, like a Graph server error. MSAL's texts quote
            # what Entra sent, so only the type is kept.
            raise GraphServerError(
                f"token endpoint failed tenant={self.tenant_id}: {type(exc).__name__}"
            ) from None
        except (ValueError, RuntimeError) as exc:
            # An answer MSAL cannot use: its text may quote the answer, so only the type is kept.
            raise GraphAuthError(
                f"token request failed tenant={self.tenant_id}: {type(exc).__name__}",
                aadsts=_first_aadsts(str(exc)),
            ) from None
        if "access_token" not in result:
            raise _auth_error(result, tenant_id=self.tenant_id, client_id=self.client_id)
        if result.get("token_source") != "cache":
            self.identity_provider_calls += 1
            logger.info(
                "graph token acquired tenant=%s client_id=%s expires_in=%s",
                self.tenant_id, self.client_id, result.get("expires_in"),
            )
        token = str(result["access_token"])
        expires_in = result.get("expires_in")
        if isinstance(expires_in, int | float) and expires_in > _MEMO_REFRESH_MARGIN:
            self._memo = (token, time.monotonic() + expires_in - _MEMO_REFRESH_MARGIN)
        return token

    async def get_token(self) -> str:
        """Return a token from the cache, or from Entra when the cache has none (or it is near expiry).

        Raises:
            GraphAuthError: Entra refused (unknown tenant, bad secret, no consent...) or was unreachable.
            GraphServerError: Entra failed (5xx); worth another attempt later.
        """
        memo = self._memo
        if memo is not None and time.monotonic() < memo[1]:
            # Most calls end here: no thread hop and no MSAL cache search per Graph request.
            return memo[0]
        return await asyncio.to_thread(self._acquire)

    def _remove(self, token: str) -> None:
        tokens = self._cache.search(
            msal.TokenCache.CredentialType.ACCESS_TOKEN,
            query={"client_id": self.client_id, "realm": self.tenant_id},
        )
        for entry in list(tokens):
            if entry.get("secret") == token:
                self._cache.remove_at(entry)

    async def invalidate(self, token: str) -> None:
        """Drop ``token`` from the shared cache so the next :meth:`get_token` asks Entra again."""
        if self._memo is not None and self._memo[0] == token:
            self._memo = None
        await asyncio.to_thread(self._remove, token)


class StaticTokenProvider:
    """A fixed token (unit tests and tools); :meth:`invalidate` switches to the next token given."""

    def __init__(self, *tokens: str) -> None:
        if not tokens:
            raise ValueError("at least one token")
        self._tokens = list(tokens)
        self.invalidated: list[str] = []

    async def get_token(self) -> str:
        """Return the current token."""
        return self._tokens[0]

    async def invalidate(self, token: str) -> None:
        """Move to the next token, if there is one."""
        self.invalidated.append(token)
        if len(self._tokens) > 1 and self._tokens[0] == token:
            self._tokens.pop(0)


class BearerAuth(httpx.Auth):
    """Adds ``Authorization: Bearer`` from a :class:`TokenProvider` to every request."""

    def __init__(self, provider: TokenProvider) -> None:
        self.provider = provider

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Not supported: the Graph client is async only."""
        raise RuntimeError("the Graph client is async only")
        yield request  # pragma: no cover - makes this a generator, as httpx requires

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Attach a bearer token; the client's retry loop handles a 401 (one retry with a new token)."""
        token = await self.provider.get_token()
        request.headers["Authorization"] = f"Bearer {token}"
        yield request


def _first_aadsts(text: str) -> str | None:
    # Digits only: the number is a structured fact even inside free text; the words around it are not kept.
    match = _AADSTS.search(text or "")
    return match.group(0) if match else None


def _auth_error(result: dict[str, Any], *, tenant_id: str, client_id: str) -> GraphAuthError:
    codes = result.get("error_codes")
    first = codes[0] if isinstance(codes, list) and codes else None
    aadsts = safe_aadsts(first) or _first_aadsts(str(result.get("error_description", "")))
    error = safe_graph_code(result.get("error"))
    return GraphAuthError(
        f"token request refused tenant={tenant_id} client_id={client_id} error={error or 'unknown'}"
        + (f" {aadsts}" if aadsts else ""),
        aadsts=aadsts,
        graph_code=error,
        request_id=result.get("correlation_id"),
    )
