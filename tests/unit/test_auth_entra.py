"""In-app JWT validation against a JWKS served over local HTTPS by a CA made for the test."""

from __future__ import annotations

import hashlib
import json
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
import trustme
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt import PyJWKClient
from jwt.algorithms import RSAAlgorithm

from shared.auth import authenticate
from shared.auth.entra import JWKS_LIFESPAN_SECONDS, TOKEN_CACHE_SKEW_SECONDS, EntraTokenValidator
from shared.config import Settings
from shared.errors import Unauthenticated

TID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OTHER_TID = "11111111-2222-3333-4444-555555555555"
OID = "5d0b6a0e-1111-2222-3333-444455556666"
AUD = "api://intune-backup"
CLIENT_ID = "0f0e0d0c-0b0a-0908-0706-050403020100"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ROGUE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class JwksServer:
    """Serves ``/{tenant}/discovery/v2.0/keys`` over HTTPS and counts the fetches."""

    def __init__(self, tmp: Path) -> None:
        self.fetches = 0
        ca = trustme.CA()
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
        self.ca_path = tmp / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_path))
        jwk = {**json.loads(RSAAlgorithm.to_jwk(KEY.public_key())), "kid": "k1", "use": "sig",
               "alg": "RS256"}
        body = json.dumps({"keys": [jwk]}).encode()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                ok = self.path.endswith("/discovery/v2.0/keys")
                self.send_response(200 if ok else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body if ok else b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.socket = server_ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.authority = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def jwks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JwksServer]:
    server = JwksServer(tmp_path_factory.mktemp("jwks"))
    try:
        yield server
    finally:
        server.stop()


def make_settings(jwks: JwksServer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "auth_mode": "entra-jwt", "auth_audience": f"{AUD},{CLIENT_ID}", "auth_issuer_tenants": TID,
        "auth_authority_host": jwks.authority, "graph_ca_bundle": str(jwks.ca_path),
        "storage_connection_string": "UseDevelopmentStorage=true"}
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def validator(jwks: JwksServer) -> EntraTokenValidator:
    return EntraTokenValidator(make_settings(jwks))


def token(jwks: JwksServer, *, key: Any = KEY, alg: str = "RS256", drop: tuple[str, ...] = (),
          **claims: Any) -> str:
    now = int(time.time())
    body: dict[str, Any] = {"iss": f"{jwks.authority}/{TID}/v2.0", "aud": AUD, "tid": TID,
                            "oid": OID, "iat": now, "nbf": now, "exp": now + 600,
                            "name": "Ada", "ver": "2.0"}
    body.update(claims)
    for name in drop:
        body.pop(name)
    return jwt.encode(body, key, algorithm=alg, headers={"kid": "k1"})


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def test_valid_user_token(jwks, validator):
    p = validator.authenticate(bearer(token(jwks)))
    assert (p.tenant_id, p.object_id, p.name, p.is_app) == (TID, OID, "Ada", False)


def test_app_token_with_roles_and_client_id_audience(jwks, validator):
    p = validator.authenticate(bearer(token(jwks, aud=CLIENT_ID, idtyp="app", azp=CLIENT_ID,
                                            roles=["Platform.Admin"], name=None)))
    assert p.is_app
    assert p.app_id == CLIENT_ID
    assert p.is_platform_admin


def test_authenticate_entry_point_caches_jwks_per_tenant(jwks):
    settings = make_settings(jwks, auth_audience=AUD)  # a configuration no other test uses
    before = jwks.fetches
    for _ in range(5):
        assert authenticate({"authorization": f"Bearer {token(jwks)}"}, settings).object_id == OID
    assert jwks.fetches - before == 1


@pytest.mark.parametrize(("case", "kwargs"), [
    ("expired", {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}),
    ("not yet valid", {"nbf": int(time.time()) + 3600}),
    ("wrong audience", {"aud": "api://someone-else"}),
    ("issuer of another tenant", {"iss": f"https://login.example/{TID}/v2.0"}),
    ("v1 issuer off the public cloud", {"iss": f"https://sts.windows.net/{TID}/"}),
    ("tenant outside the allow-list", {"tid": OTHER_TID}),
    ("tenant that is not a guid", {"tid": "../../evil"}),
    ("missing nbf", {"drop": ("nbf",)}),
    ("missing tid", {"drop": ("tid",)}),
    ("missing oid", {"drop": ("oid",)}),
    ("signed by another key", {"key": ROGUE_KEY}),
])
def test_invalid_tokens_are_401_without_echoing_the_token(jwks, validator, case, kwargs):
    bad = token(jwks, **kwargs)
    with pytest.raises(Unauthenticated) as err:
        validator.authenticate(bearer(bad))
    assert err.value.status == 401
    assert bad not in str(err.value)
    assert bad.split(".")[2] not in err.value.detail


def test_symmetric_and_unsigned_tokens_are_refused(jwks, validator):
    hs = jwt.encode({"tid": TID, "oid": OID, "aud": AUD}, "secret-value-of-32-bytes-or-more!!",
                    algorithm="HS256", headers={"kid": "k1"})
    with pytest.raises(Unauthenticated):
        validator.authenticate(bearer(hs))
    unsigned = jwt.encode({"tid": TID, "oid": OID, "aud": AUD}, "", algorithm="none")
    with pytest.raises(Unauthenticated):
        validator.authenticate(bearer(unsigned))


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": ""}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"},
    {"Authorization": "Bearer not.a.jwt"}, {"Authorization": "Bearer garbage"},
])
def test_missing_or_malformed_authorization_is_401(validator, headers):
    with pytest.raises(Unauthenticated):
        validator.authenticate(headers)


def test_untrusted_issuer_certificate_fails_closed(jwks):
    untrusting = EntraTokenValidator(make_settings(jwks, graph_ca_bundle=""))
    with pytest.raises(Unauthenticated) as err:
        untrusting.authenticate(bearer(token(jwks)))
    assert "signing key" in err.value.detail


def test_v1_issuer_is_accepted_only_on_the_public_cloud(jwks):
    # The JWKS client is pointed at our server; only the issuer rule of the public cloud is under test.
    ctx = ssl.create_default_context(cafile=str(jwks.ca_path))
    public = EntraTokenValidator(
        make_settings(jwks, auth_authority_host="https://login.microsoftonline.com"),
        jwk_client_factory=lambda url: PyJWKClient(
            f"{jwks.authority}/{TID}/discovery/v2.0/keys", ssl_context=ctx),
    )
    p = public.validate(token(jwks, iss=f"https://sts.windows.net/{TID}/"))
    assert p.object_id == OID
    with pytest.raises(Unauthenticated):
        public.validate(token(jwks, iss=f"https://sts.windows.net/{OTHER_TID}/"))


def test_empty_allow_list_admits_only_tenants_the_app_knows(jwks):
    settings = make_settings(jwks, auth_issuer_tenants="")
    with pytest.raises(Unauthenticated):
        EntraTokenValidator(settings).authenticate(bearer(token(jwks)))
    known = EntraTokenValidator(settings, is_allowed_tenant=lambda tid: tid == TID)
    assert known.authenticate(bearer(token(jwks))).tenant_id == TID


class CountingJwkClient(PyJWKClient):
    """A real JWKS client that counts full signature checks (each needs the signing key)."""

    checks = 0

    def get_signing_key_from_jwt(self, token: str | bytes) -> Any:
        CountingJwkClient.checks += 1
        return super().get_signing_key_from_jwt(token)


@pytest.fixture
def counted(jwks: JwksServer) -> tuple[EntraTokenValidator, list[float]]:
    """A validator whose full checks are counted, on a clock the test moves (``now[0]``)."""
    context = ssl.create_default_context(cafile=str(jwks.ca_path))
    now = [time.time()]
    CountingJwkClient.checks = 0
    validator = EntraTokenValidator(
        make_settings(jwks), clock=lambda: now[0],
        jwk_client_factory=lambda url: CountingJwkClient(url, ssl_context=context))
    return validator, now


def test_a_validated_token_is_remembered_by_hash_until_shortly_before_it_expires(jwks, counted):
    validator, now = counted
    exp = int(now[0]) + 120
    value = token(jwks, exp=exp)
    for _ in range(3):
        assert validator.authenticate(bearer(value)).object_id == OID
    assert CountingJwkClient.checks == 1
    # Only the token's SHA-256 is kept, never the token.
    assert list(validator._validated._entries) == [hashlib.sha256(value.encode()).digest()]
    now[0] = exp - TOKEN_CACHE_SKEW_SECONDS - 1
    validator.authenticate(bearer(value))
    assert CountingJwkClient.checks == 1
    now[0] = exp - TOKEN_CACHE_SKEW_SECONDS
    validator.authenticate(bearer(value))  # checked in full again (and still valid: the real clock)
    assert CountingJwkClient.checks == 2


def test_a_long_lived_token_is_checked_again_when_the_signing_keys_would_be_refetched(jwks, counted):
    validator, now = counted
    start = now[0]
    value = token(jwks, exp=int(start) + 3600)
    validator.validate(value)
    now[0] = start + JWKS_LIFESPAN_SECONDS - 1
    validator.validate(value)
    assert CountingJwkClient.checks == 1
    now[0] = start + JWKS_LIFESPAN_SECONDS
    validator.validate(value)
    assert CountingJwkClient.checks == 2


def test_each_token_is_its_own_entry(jwks, counted):
    validator, _ = counted
    first, second = token(jwks), token(jwks, oid=OTHER_TID, name="Bea")
    assert validator.validate(first).object_id == OID
    assert validator.validate(second).object_id == OTHER_TID
    assert validator.validate(first).object_id == OID
    assert CountingJwkClient.checks == 2
    # The cached token's signature on a changed payload is no way in.
    header, _, signature = first.split(".")
    forged_body = jwt.utils.base64url_encode(json.dumps(
        {**jwt.decode(first, options={"verify_signature": False}), "oid": OTHER_TID}).encode()).decode()
    with pytest.raises(Unauthenticated):
        validator.validate(f"{header}.{forged_body}.{signature}")


@pytest.mark.parametrize(("case", "kwargs"), [
    ("signed by another key", {"key": ROGUE_KEY}),
    ("expired", {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}),
    ("wrong audience", {"aud": "api://someone-else"}),
])
def test_a_rejected_token_is_never_remembered(jwks, counted, case, kwargs):
    validator, _ = counted
    bad = token(jwks, **kwargs)
    for attempt in (1, 2):
        with pytest.raises(Unauthenticated):
            validator.validate(bad)
        assert CountingJwkClient.checks == attempt
    assert len(validator._validated) == 0


def test_the_cache_only_lookup_answers_a_validated_token_and_nothing_else(jwks, counted):
    validator, now = counted
    exp = int(now[0]) + 120
    value = token(jwks, exp=exp)
    assert validator.cached_principal(bearer(value)) is None  # never validated: the caller must validate
    assert validator.authenticate(bearer(value)).object_id == OID
    assert validator.cached_principal(bearer(value)).object_id == OID
    assert validator.cached_principal(bearer(token(jwks, exp=exp, oid=OTHER_TID))) is None
    assert validator.cached_principal({}) is None
    assert validator.cached_principal({"Authorization": "Basic abc"}) is None
    now[0] = exp - TOKEN_CACHE_SKEW_SECONDS  # the same window as authenticate()'s cache
    assert validator.cached_principal(bearer(value)) is None
    assert CountingJwkClient.checks == 1
