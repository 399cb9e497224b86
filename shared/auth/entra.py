"""In-app validation of Entra ID bearer tokens (PyJWT + the issuer's JWKS).

Validation follows Microsoft's guidance: RS256 signature from the tenant's JWKS, ``aud`` in our accepted
audiences, ``iss`` built from the token's ``tid`` and compared exactly, ``tid`` in the operator allow-list,
and ``exp``/``nbf``/``iat`` with a small leeway. Nothing about a rejected token (let alone the token)
goes into the error.

A token that passed is remembered by its SHA-256 (never the token itself) until shortly before it expires,
so a caller's later requests skip the signature check; a rejected token is never remembered, and any other
token, even one differing in a single character, is a different entry and is checked in full.
"""

from __future__ import annotations

import hashlib
import logging
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import jwt
from jwt import PyJWKClient

from shared.auth.cache import ExpiringCache
from shared.auth.claims import GUID, principal_from_claims
from shared.config import Settings
from shared.domain import Principal
from shared.errors import Unauthenticated

__all__ = ["MAX_CACHED_TOKENS", "PUBLIC_AUTHORITY", "EntraTokenValidator", "JwkClientFactory"]

logger = logging.getLogger(__name__)

PUBLIC_AUTHORITY = "https://login.microsoftonline.com"
LEEWAY_SECONDS = 60
REQUIRED_CLAIMS = ["exp", "iat", "nbf", "iss", "aud", "tid"]
JwkClientFactory = Callable[[str], PyJWKClient]
# How long the issuer's key set is kept before it is fetched again.
JWKS_LIFESPAN_SECONDS = 300
# Validated tokens kept per validator: about one per active caller.
MAX_CACHED_TOKENS = 10_000
# A cached token is dropped this long before its ``exp``, so it never outlives what validation accepts.
TOKEN_CACHE_SKEW_SECONDS = 30


class EntraTokenValidator:
    """Validates bearer tokens; keeps one JWKS client (and its key cache) per issuing tenant.

    Args:
        settings: accepted audiences, issuer allow-list, authority host, local CA bundle.
        jwk_client_factory: builds the JWKS client for a keys URL (tests may point it elsewhere);
            by default a :class:`PyJWKClient` trusting ``settings.graph_ca_bundle`` when set.
        is_allowed_tenant: decides for tenants when the allow-list is empty; without it an empty
            allow-list admits nobody.
        clock: the current time in seconds since the epoch (tests move it), for the token cache.
    """

    def __init__(self, settings: Settings, *, jwk_client_factory: JwkClientFactory | None = None,
                 is_allowed_tenant: Callable[[str], bool] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._authority = settings.auth_authority_host.rstrip("/")
        self._audiences = settings.audiences
        self._allowed = {t.lower() for t in settings.issuer_tenants}
        self._is_allowed_tenant = is_allowed_tenant
        self._factory = jwk_client_factory or self._default_factory(settings.graph_ca_bundle)
        self._clients: dict[str, PyJWKClient] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._validated: ExpiringCache[bytes, Principal] = ExpiringCache(max_entries=MAX_CACHED_TOKENS,
                                                                         clock=clock)

    @staticmethod
    def _default_factory(ca_bundle: str) -> JwkClientFactory:
        # Locally the token issuer is the simulator, whose certificate chains to its own CA.
        context = ssl.create_default_context(cafile=ca_bundle or None)

        def build(url: str) -> PyJWKClient:
            return PyJWKClient(url, cache_keys=True, lifespan=JWKS_LIFESPAN_SECONDS, timeout=5,
                               ssl_context=context)

        return build

    def _client(self, tid: str) -> PyJWKClient:
        with self._lock:
            client = self._clients.get(tid)
            if client is None:
                client = self._factory(f"{self._authority}/{tid}/discovery/v2.0/keys")
                self._clients[tid] = client
            return client

    def _issuers(self, tid: str) -> list[str]:
        issuers = [f"{self._authority}/{tid}/v2.0"]
        # v1.0 tokens come from sts.windows.net, which only exists in front of the public cloud.
        if self._authority == PUBLIC_AUTHORITY:
            issuers.append(f"https://sts.windows.net/{tid}/")
        return issuers

    def _tenant_allowed(self, tid: str) -> bool:
        if self._allowed:
            return tid in self._allowed
        return bool(self._is_allowed_tenant and self._is_allowed_tenant(tid))

    def validate(self, token: str) -> Principal:
        """Validate a bearer token (or find it among those validated before) and return its principal.

        Raises:
            Unauthenticated: for any problem with the token; the message names the category only.
        """
        digest = hashlib.sha256(token.encode()).digest()
        cached = self._validated.get(digest)
        if cached is not None:
            return cached
        principal, expires = self._validate(token)
        # Until shortly before ``exp``, and no longer than the key set is kept: a signing key the issuer
        # withdraws stops admitting its tokens as soon as it would without the cache.
        self._validated.put(digest, principal, expires_at=min(expires - TOKEN_CACHE_SKEW_SECONDS,
                                                              self._clock() + JWKS_LIFESPAN_SECONDS))
        return principal

    def _validate(self, token: str) -> tuple[Principal, float]:
        """Check a token in full; return its principal and its ``exp``."""
        try:
            header = jwt.get_unverified_header(token)
            unverified: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise Unauthenticated("the bearer token is malformed") from exc
        if header.get("alg") != "RS256":
            raise Unauthenticated("the bearer token is not signed with RS256")
        tid = str(unverified.get("tid", "")).lower()
        # The tenant goes into the JWKS URL, so it must be a GUID before anything is fetched.
        if not GUID.fullmatch(tid):
            raise Unauthenticated("the bearer token has no valid tenant")
        if not self._tenant_allowed(tid):
            raise Unauthenticated("callers from this tenant are not accepted")
        try:
            key = self._client(tid).get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=["RS256"], audience=self._audiences,
                issuer=self._issuers(tid), leeway=LEEWAY_SECONDS,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("the bearer token has expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise Unauthenticated("the bearer token was issued for another audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise Unauthenticated("the bearer token has an unexpected issuer") from exc
        except jwt.PyJWKClientError as exc:
            logger.warning("token signing key unavailable tid=%s error=%s", tid, type(exc).__name__)
            raise Unauthenticated("the bearer token's signing key could not be verified") from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated("the bearer token is not valid") from exc
        if str(claims.get("tid", "")).lower() != tid:
            raise Unauthenticated("the bearer token has no valid tenant")
        return principal_from_claims(claims), float(claims["exp"])

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """Validate the ``Authorization: Bearer`` header of a request.

        Raises:
            Unauthenticated: the header is missing, not a bearer token, or the token is not valid.
        """
        token = _bearer_token(headers)
        if token is None:
            raise Unauthenticated("a bearer token is required")
        return self.validate(token)

    def cached_principal(self, headers: Mapping[str, str]) -> Principal | None:
        """The caller of a request whose bearer token was validated before and is still cached, else ``None``.

        Reads nothing and validates nothing, so an async trigger can call it on its event loop and hand only
        a miss to a thread (:meth:`authenticate` then decides, errors included).
        """
        token = _bearer_token(headers)
        if token is None:
            return None
        return self._validated.get(hashlib.sha256(token.encode()).digest())


def _bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of the ``Authorization: Bearer`` header, or ``None`` when there is none."""
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
