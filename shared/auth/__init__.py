"""Authentication (who is calling) and per-tenant authorization (what they may do).

``authenticate(headers, settings)`` picks the mode from ``settings.auth_mode``; there is no bypass.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from shared.auth.access import AccessService
from shared.auth.easyauth import principal_from_easyauth
from shared.auth.entra import EntraTokenValidator
from shared.config import AuthMode, Settings
from shared.domain import Principal
from shared.errors import Unauthenticated

__all__ = ["AccessService", "EntraTokenValidator", "authenticate", "cached_caller"]

_validators: dict[tuple[str, ...], EntraTokenValidator] = {}
_lock = threading.Lock()


def _validator_key(settings: Settings) -> tuple[str, ...]:
    return (settings.auth_authority_host, settings.auth_audience, settings.auth_issuer_tenants,
            settings.graph_ca_bundle)


def _validator(settings: Settings) -> EntraTokenValidator:
    # One validator (and so one JWKS cache per tenant) per distinct configuration, for the process.
    key = _validator_key(settings)
    with _lock:
        validator = _validators.get(key)
        if validator is None:
            validator = EntraTokenValidator(settings)
            _validators[key] = validator
        return validator


def authenticate(headers: Mapping[str, str], settings: Settings) -> Principal:
    """Return the authenticated caller of a request.

    Args:
        headers: the request headers (any case).
        settings: ``auth_mode`` selects Easy Auth (``X-MS-CLIENT-PRINCIPAL``) or in-app Entra JWT
            validation (``Authorization: Bearer``).

    Returns:
        The caller.

    Raises:
        Unauthenticated: no valid credentials (401); the message is safe to return.
    """
    if settings.auth_mode == AuthMode.EASYAUTH:
        return principal_from_easyauth(headers, settings)
    if settings.auth_mode == AuthMode.ENTRA_JWT:
        return _validator(settings).authenticate(headers)
    raise Unauthenticated("authentication is not configured")


def cached_caller(headers: Mapping[str, str], settings: Settings) -> Principal | None:
    """The caller of a request if :func:`authenticate` already validated its token and still caches it.

    No I/O and no validation: ``None`` means "ask :func:`authenticate`", which also answers every error.
    Easy Auth always answers ``None`` here (its header is parsed on every request).
    """
    if settings.auth_mode != AuthMode.ENTRA_JWT:
        return None
    with _lock:
        # Only a validator that exists can have cached anything; building one (its TLS context) is left to
        # authenticate(), off the caller's event loop.
        validator = _validators.get(_validator_key(settings))
    return validator.cached_principal(headers) if validator is not None else None
