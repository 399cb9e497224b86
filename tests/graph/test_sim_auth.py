"""Token acquisition against the simulator's STS over HTTPS: real MSAL, real httpx, nothing patched."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from localdev.graphsim.testing import SimHandle
from shared.graph import (
    ClientAssertion,
    ClientCertificate,
    ClientSecret,
    GraphAuthError,
    GraphPermissionMissing,
)
from tests.graph.conftest import READ_ROLES, SimTenant, make_tenant

TOKEN_PATH = r"/oauth2/v2\.0/token$"


def count_token_requests(sim: SimHandle) -> None:
    # A "slow" rule with no delay changes nothing but counts every token request the STS receives.
    sim.control.set_faults([{"kind": "slow", "path": TOKEN_PATH, "delaySeconds": 0}])


def token_requests_seen(sim: SimHandle) -> int:
    return int(sim.control.faults()[0]["matched"])


async def test_token_is_acquired_once_then_served_from_the_cache(demo: SimTenant) -> None:
    count_token_requests(demo.sim)
    factory = demo.factory()
    try:
        client = demo.client(factory)
        for _ in range(3):
            await client.get("/beta/deviceManagement/deviceCategories")
        # A second client object for the same (tenant, app) is the same cached client.
        assert demo.client(factory) is client
        await demo.client(factory, read_only=True).get("/beta/deviceManagement/deviceCategories")
    finally:
        await factory.aclose()
    assert token_requests_seen(demo.sim) == 1
    log = demo.sim.control.requests(tenant=demo.tenant_id, app=demo.client_id)
    assert len(log) == 4
    assert all(entry["status"] == 200 for entry in log)


async def test_token_expired_mid_run_is_replaced(demo: SimTenant) -> None:
    factory = demo.factory()
    try:
        client = demo.client(factory)
        await client.get("/beta/deviceManagement/deviceCategories")
        count_token_requests(demo.sim)
        demo.sim.control.set_faults([
            {"kind": "slow", "path": TOKEN_PATH, "delaySeconds": 0},
            {"kind": "401-expired", "path": "deviceCategories", "times": 1},
        ])
        await client.get("/beta/deviceManagement/deviceCategories")
    finally:
        await factory.aclose()
    statuses = [e["status"] for e in demo.sim.control.requests(tenant=demo.tenant_id)]
    assert statuses == [200, 401, 200]
    assert token_requests_seen(demo.sim) == 1  # one new token after the 401


@pytest.mark.parametrize(
    ("case", "aadsts"),
    [("bad-secret", "AADSTS7000215"), ("unknown-tenant", "AADSTS90002"), ("no-consent", "AADSTS65001")],
)
async def test_entra_errors_become_graph_auth_errors(sim: SimHandle, case: str, aadsts: str) -> None:
    tenant = make_tenant(sim, "empty")
    secret, tenant_id, client_id = tenant.secret, tenant.tenant_id, tenant.client_id
    if case == "bad-secret":
        secret = "not-the-secret-" + uuid.uuid4().hex
    elif case == "unknown-tenant":
        tenant_id = str(uuid.uuid4())
    else:
        app = sim.control.create_app(tenant.tenant_id, roles=READ_ROLES, consented=False)
        client_id, secret = app["clientId"], app["secret"]
    factory = tenant.factory()
    try:
        client = factory.get(tenant_id=tenant_id, client_id=client_id, credential=ClientSecret(secret))
        with pytest.raises(GraphAuthError) as info:
            await client.get("/beta/deviceManagement/deviceCategories")
    finally:
        await factory.aclose()
    assert info.value.aadsts == aadsts
    assert secret not in info.value.detail


def self_signed() -> tuple[str, str, str, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "graph-client")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    thumbprint = cert.fingerprint(hashes.SHA1()).hex()  # Entra identifies certificates by SHA-1
    return key_pem, cert_pem, thumbprint, key


async def test_certificate_and_assertion_credentials(sim: SimHandle) -> None:
    tenant = make_tenant(sim, "demo", seed=3)
    key_pem, cert_pem, thumbprint, key = self_signed()
    cert_app = sim.control.create_app(tenant.tenant_id, roles=READ_ROLES, certificate_pem=cert_pem)
    token_endpoint = f"{sim.base_url}/{tenant.tenant_id}/oauth2/v2.0/token"
    assertion_app = sim.control.create_app(tenant.tenant_id, roles=READ_ROLES, certificate_pem=cert_pem)
    calls: list[int] = []

    def assertion() -> str:
        # What a federated managed identity would hand over: a fresh signed assertion per call.
        calls.append(1)
        now = int(time.time())
        claims = {"aud": token_endpoint, "iss": assertion_app["clientId"],
                  "sub": assertion_app["clientId"], "jti": uuid.uuid4().hex, "nbf": now, "exp": now + 600}
        return jwt.encode(claims, key, algorithm="RS256")

    factory = tenant.factory()
    try:
        by_cert = factory.get(tenant_id=tenant.tenant_id, client_id=cert_app["clientId"],
                              credential=ClientCertificate(private_key=key_pem, thumbprint=thumbprint))
        # With the public certificate MSAL signs PS256 with an x5t#S256 header instead.
        sni_app = sim.control.create_app(tenant.tenant_id, roles=READ_ROLES, certificate_pem=cert_pem)
        by_sni = factory.get(tenant_id=tenant.tenant_id, client_id=sni_app["clientId"],
                             credential=ClientCertificate(private_key=key_pem, public_certificate=cert_pem))
        assert (await by_sni.get("/beta/deviceManagement/deviceCategories"))["value"]
        by_assertion = factory.get(tenant_id=tenant.tenant_id, client_id=assertion_app["clientId"],
                                   credential=ClientAssertion(assertion))
        assert (await by_cert.get("/beta/deviceManagement/deviceCategories"))["value"]
        assert (await by_assertion.get("/beta/deviceManagement/deviceCategories"))["value"]
    finally:
        await factory.aclose()
    assert calls


async def test_missing_permission_names_it(sim: SimHandle) -> None:
    tenant = make_tenant(sim, "demo", seed=4, roles=["DeviceManagementConfiguration.Read.All"])
    factory = tenant.factory()
    try:
        client = tenant.client(factory)
        with pytest.raises(GraphPermissionMissing) as info:
            await client.get("/beta/deviceManagement/deviceManagementScripts")
    finally:
        await factory.aclose()
    assert info.value.detail.startswith("graph-permission-missing: DeviceManagementScripts.Read.All")


def test_one_factory_serves_successive_event_loops(demo: SimTenant) -> None:
    # The Functions worker keeps one loop, but tools and tests may call asyncio.run more than once.
    count_token_requests(demo.sim)
    factory = demo.factory()

    async def list_categories() -> int:
        return len((await demo.client(factory).get("/beta/deviceManagement/deviceCategories"))["value"])

    try:
        assert asyncio.run(list_categories()) == 3
        assert asyncio.run(list_categories()) == 3
    finally:
        asyncio.run(factory.aclose())
    assert token_requests_seen(demo.sim) == 1  # tokens outlive the loop
