"""The per-tenant permission check: which types a tenant's consent does not cover, before a run starts."""

from __future__ import annotations

import base64
import json

import pytest

from localdev.graphsim.testing import SimHandle
from shared.graph.auth import StaticTokenProvider
from shared.graph.catalog import CATALOG
from shared.graph.consent import check_consent, consent_of_token, token_roles
from tests.graphsim.conftest import app_token


def _jwt(claims: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


def test_roles_are_read_from_the_token_payload() -> None:
    assert token_roles(_jwt({"roles": ["A.Read.All", 3], "tid": "t"})) == {"A.Read.All"}
    assert token_roles(_jwt({"scp": "User.Read"})) == frozenset()
    with pytest.raises(ValueError, match="not a JWT"):
        token_roles("not-a-token")
    with pytest.raises(ValueError, match="not JSON"):
        token_roles("a.!!!.c")


def test_read_write_covers_reading_and_backup_only_types_need_no_write() -> None:
    report = consent_of_token(["DeviceManagementServiceConfig.ReadWrite.All"])
    assert report.can_restore("enrollmentConfiguration")
    assert report.can_back_up("applePushCertificate")
    assert "applePushCertificate" not in report.missing_write  # backup-only: nothing to write
    assert report.missing_read["mobileApp"] == "DeviceManagementApps.Read.All"
    assert report.missing_write["mobileApp"] == "DeviceManagementApps.ReadWrite.All"
    assert not report.can_back_up("deviceCleanupRule")
    everything = consent_of_token({t.write_permission for t in CATALOG.values()})
    assert everything.missing_read == {}
    assert everything.missing_write == {}


async def test_a_tenant_consent_is_checked_from_its_token_without_calling_graph(sim: SimHandle) -> None:
    tenant_id = sim.control.create_tenant("empty", seed=8)["tenantId"]
    granted = ["DeviceManagementConfiguration.Read.All", "DeviceManagementApps.ReadWrite.All"]
    tokens = StaticTokenProvider(app_token(sim, tenant_id, granted))

    report = await check_consent(tokens, type_keys=["settingsCatalog", "mobileApp", "deviceCleanupRule",
                                                     "scopeTag", "tenantSettings"])

    assert report.can_back_up("settingsCatalog")
    assert not report.can_restore("settingsCatalog")
    assert report.can_restore("mobileApp")
    assert report.as_dict() == {
        "granted": sorted(granted),
        "missingRead": {"deviceCleanupRule": "DeviceManagementManagedDevices.Read.All",
                        "scopeTag": "DeviceManagementRBAC.Read.All"},
        "missingWrite": {"deviceCleanupRule": "DeviceManagementManagedDevices.ReadWrite.All",
                         "scopeTag": "DeviceManagementRBAC.ReadWrite.All",
                         "settingsCatalog": "DeviceManagementConfiguration.ReadWrite.All",
                         "tenantSettings": "DeviceManagementConfiguration.ReadWrite.All"},
    }
