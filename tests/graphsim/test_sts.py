"""The Entra token issuer, exercised through unpatched MSAL over HTTPS."""

from __future__ import annotations

import datetime as dt
import ssl
import time
from typing import Any

import httpx
import jwt
import msal
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from localdev.graphsim.testing import SimHandle
from tests.graphsim.conftest import GRAPH_SCOPE, msal_app, new_guid


def _jwks_key(sim: SimHandle, tenant_id: str, token: str) -> Any:
    keys = httpx.get(f"{sim.base_url}/{tenant_id}/discovery/v2.0/keys",
                     verify=sim.ssl_context()).json()
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(k for k in keys["keys"] if k["kid"] == kid)
    return jwt.algorithms.RSAAlgorithm.from_jwk(jwk)


def test_client_secret_token_has_graph_app_claims(sim, tenant_id):
    app = sim.control.create_app(tenant_id, roles=["DeviceManagementConfiguration.Read.All"])
    result = msal_app(sim, tenant_id, app["clientId"], app["secret"]).acquire_token_for_client(
        scopes=GRAPH_SCOPE)
    assert result["token_type"] == "Bearer"
    assert result["expires_in"] > 3000
    claims = jwt.decode(result["access_token"], _jwks_key(sim, tenant_id, result["access_token"]),
                        algorithms=["RS256"], audience="https://graph.microsoft.com")
    assert claims["iss"] == f"https://sts.windows.net/{tenant_id}/"
    assert claims["tid"] == tenant_id
    assert claims["appid"] == claims["azp"] == app["clientId"]
    assert claims["idtyp"] == "app"
    assert claims["roles"] == ["DeviceManagementConfiguration.Read.All"]
    assert 3590 <= claims["exp"] - claims["iat"] <= 3600


def test_discovery_document_uses_the_https_base(sim, tenant_id):
    doc = httpx.get(f"{sim.base_url}/{tenant_id}/v2.0/.well-known/openid-configuration",
                    verify=sim.ssl_context()).json()
    assert doc["issuer"] == f"{sim.base_url}/{tenant_id}/v2.0"
    assert doc["token_endpoint"] == f"{sim.base_url}/{tenant_id}/oauth2/v2.0/token"
    assert doc["jwks_uri"] == f"{sim.base_url}/{tenant_id}/discovery/v2.0/keys"
    assert doc["authorization_endpoint"].startswith(sim.base_url)
    instance = httpx.get(f"{sim.base_url}/common/discovery/instance",
                         params={"api-version": "1.1"}, verify=sim.ssl_context()).json()
    assert instance["tenant_discovery_endpoint"].startswith(sim.base_url)


def test_unknown_tenant_is_aadsts90002(sim):
    result = msal_app(sim, new_guid(), new_guid(), "whatever").acquire_token_for_client(
        scopes=GRAPH_SCOPE)
    assert result["error"] == "invalid_request"
    assert 90002 in result["error_codes"]


def test_wrong_secret_is_invalid_client(sim, tenant_id):
    app = sim.control.create_app(tenant_id, roles=[])
    result = msal_app(sim, tenant_id, app["clientId"], "not-the-secret").acquire_token_for_client(
        scopes=GRAPH_SCOPE)
    assert result["error"] == "invalid_client"
    assert 7000215 in result["error_codes"]
    assert "AADSTS7000215" in result["error_description"]


def test_missing_consent_is_invalid_grant(sim, tenant_id):
    app = sim.control.create_app(tenant_id, roles=["Group.Read.All"], consented=False)
    result = msal_app(sim, tenant_id, app["clientId"], app["secret"]).acquire_token_for_client(
        scopes=GRAPH_SCOPE)
    assert result["error"] == "invalid_grant"
    assert 65001 in result["error_codes"]


def test_only_the_graph_default_scope_is_accepted(sim, tenant_id):
    app = sim.control.create_app(tenant_id, roles=[])
    result = msal_app(sim, tenant_id, app["clientId"], app["secret"]).acquire_token_for_client(
        scopes=["https://management.azure.com/.default"])
    assert result["error"] == "invalid_scope"


def _self_signed() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "backup-app")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    return key, cert


def _credential(key: rsa.RSAPrivateKey, cert: x509.Certificate) -> dict[str, str]:
    return {
        "private_key": key.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()).decode(),
        "thumbprint": cert.fingerprint(hashes.SHA1()).hex(),
    }


class _BytesSafeHttpx:
    """An httpx-backed MSAL http_client that form-encodes bytes values as text.

    MSAL passes the client assertion as bytes; httpx would send it as the literal "b'...'".
    """

    def __init__(self, verify: ssl.SSLContext) -> None:
        self._client = httpx.Client(verify=verify)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self._client.get(url, **kwargs)

    def post(self, url: str, data: Any = None, **kwargs: Any) -> httpx.Response:
        if isinstance(data, dict):
            data = {k: v.decode() if isinstance(v, bytes) else v for k, v in data.items()}
        return self._client.post(url, data=data, **kwargs)

    def close(self) -> None:
        self._client.close()


def _cert_msal_app(sim: SimHandle, tenant_id: str, client_id: str,
                   credential: dict[str, str]) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        client_id, client_credential=credential, authority=f"{sim.base_url}/{tenant_id}",
        instance_discovery=False, http_client=_BytesSafeHttpx(sim.ssl_context()))


def test_certificate_assertion_is_verified_against_the_registered_certificate(sim, tenant_id):
    key, cert = _self_signed()
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    app = sim.control.create_app(tenant_id, roles=["Group.Read.All"], certificate_pem=pem)
    assert "secret" not in app
    good = _cert_msal_app(sim, tenant_id, app["clientId"], _credential(key, cert))
    assert "access_token" in good.acquire_token_for_client(scopes=GRAPH_SCOPE)

    other_key, other_cert = _self_signed()
    bad = _cert_msal_app(sim, tenant_id, app["clientId"], _credential(other_key, other_cert))
    result = bad.acquire_token_for_client(scopes=GRAPH_SCOPE)
    assert result["error"] == "invalid_client"


def test_caller_tokens_are_signed_with_the_published_jwks(sim, tenant_id):
    token = sim.control.mint_token(tenant_id, "api://intune-backup", oid="o-1", name="Ada",
                                   roles=["Platform.Admin"])
    claims = jwt.decode(token, _jwks_key(sim, tenant_id, token), algorithms=["RS256"],
                        audience="api://intune-backup", issuer=f"{sim.base_url}/{tenant_id}/v2.0")
    assert claims["oid"] == "o-1"
    assert claims["name"] == "Ada"
    assert claims["roles"] == ["Platform.Admin"]
    assert claims["ver"] == "2.0"
    assert claims["idtyp"] == "user"

    expired = sim.control.mint_token(tenant_id, "api://intune-backup", expires_in=-120)
    assert jwt.decode(expired, options={"verify_signature": False})["exp"] < time.time()
