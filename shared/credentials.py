"""Resolve a managed tenant's Graph credential reference into something MSAL can use, at run time.

Tenant records hold only a reference (``{"type", "name"}``); the secret itself never enters a table, an
orchestration input or a log. Supported references:

- ``federatedManagedIdentity``: no secret at all. The app's user-assigned managed identity is a federated
  identity credential of the multi-tenant app registration; its token for ``api://AzureADTokenExchange`` is
  the client assertion.
- ``appSetting``: the value of the app setting ``name``, which must start with ``GRAPH_CREDENTIAL_`` (no other
  setting can be sent to a token endpoint). In Azure that setting is a Key Vault reference
  (``@Microsoft.KeyVault(SecretUri=...)``), so the secret lives in Key Vault; locally the launcher sets it.
- ``keyVaultSecret`` / ``keyVaultCertificate``: read from ``KEY_VAULT_URL`` with the managed identity
  (a certificate is read as its PEM secret: private key and public certificate).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from shared.domain.access import GRAPH_CREDENTIAL_SETTING_PREFIX
from shared.errors import AppError

__all__ = ["CredentialUnavailable", "GraphCredential", "resolve_credential"]

_FEDERATION_AUDIENCE = "api://AzureADTokenExchange/.default"
_VAULT_SCOPE = "https://vault.azure.net/.default"
_KEY_VAULT_API_VERSION = "7.4"


class CredentialUnavailable(AppError):
    """The tenant's credential reference cannot be resolved (missing setting, vault error)."""

    status = 503
    title = "Graph credential unavailable"
    code = "graph-credential-unavailable"


@dataclass(frozen=True)
class GraphCredential:
    """What MSAL's ``client_credential`` takes: a secret, a certificate dict or an assertion callable."""

    value: str | dict[str, Any]


def _managed_identity_token(scope: str, client_id: str) -> str:
    from azure.identity import ManagedIdentityCredential  # imported lazily: only used in Azure

    return str(ManagedIdentityCredential(client_id=client_id or None).get_token(scope).token)


def _read_vault_secret(vault_url: str, name: str, client_id: str) -> str:
    if not vault_url:
        raise CredentialUnavailable("KEY_VAULT_URL is not configured")
    if not re.fullmatch(r"[0-9A-Za-z-]{1,127}", name):
        raise CredentialUnavailable("the credential reference names an invalid Key Vault secret")
    token = _managed_identity_token(_VAULT_SCOPE, client_id)
    url = f"{vault_url.rstrip('/')}/secrets/{name}"
    response = httpx.get(url, params={"api-version": _KEY_VAULT_API_VERSION},
                         headers={"Authorization": f"Bearer {token}"}, timeout=10.0)
    if response.status_code != 200:
        raise CredentialUnavailable(f"Key Vault answered {response.status_code} for secret '{name}'")
    return str(response.json()["value"])


def resolve_credential(*, kind: str, name: str, key_vault_url: str = "", managed_identity_client_id: str = "",
                       environ: dict[str, str] | None = None,
                       token_provider: Callable[[str, str], str] | None = None) -> GraphCredential:
    """Turn a credential reference into an MSAL ``client_credential``.

    Args:
        kind: the reference type (see the module docstring).
        name: the setting, secret or certificate name; unused for federated credentials.
        key_vault_url: vault holding secrets and certificates.
        managed_identity_client_id: client id of the user-assigned managed identity.
        environ: the app settings (defaults to the process environment).
        token_provider: obtains a managed identity token for a scope (injectable for tests).

    Returns:
        The credential to hand to MSAL.

    Raises:
        CredentialUnavailable: the reference cannot be resolved; the message names the reference,
            never a value.
    """
    env = os.environ if environ is None else environ
    get_token = token_provider or _managed_identity_token
    if kind == "federatedManagedIdentity":
        # MSAL calls the assertion callable whenever it needs a fresh token, so expiry is handled there.
        return GraphCredential({"client_assertion": lambda: get_token(_FEDERATION_AUDIENCE,
                                                                      managed_identity_client_id)})
    if kind == "appSetting":
        if not name.startswith(GRAPH_CREDENTIAL_SETTING_PREFIX):
            raise CredentialUnavailable(
                f"app setting credentials must start with {GRAPH_CREDENTIAL_SETTING_PREFIX}")
        value = env.get(name, "")
        if not value:
            raise CredentialUnavailable(f"app setting '{name}' named by the tenant's credential is not set")
        return GraphCredential(value)
    if kind == "keyVaultSecret":
        return GraphCredential(_read_vault_secret(key_vault_url, name, managed_identity_client_id))
    if kind == "keyVaultCertificate":
        pem = _read_vault_secret(key_vault_url, name, managed_identity_client_id)
        return GraphCredential({"private_key": pem, "public_certificate": pem})
    raise CredentialUnavailable(f"unsupported credential reference type '{kind}'")
