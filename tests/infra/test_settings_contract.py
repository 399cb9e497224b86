"""The code's settings model and the templates' app settings agree, read from both sides on every run."""

from __future__ import annotations

import pytest

from shared.config import AuthMode, Settings
from tests.infra import checks
from tests.infra.bicep_model import Infra


def test_required_settings_are_derived_from_the_code(infra: Infra) -> None:
    needed = checks.required_in_azure()
    for name, info in Settings.model_fields.items():
        if info.is_required():
            assert checks.setting_name(name, info) in needed
    # Empty defaults mean "unconfigured": Azure has to provide them.
    assert {"STORAGE_TABLE_ENDPOINT", "STORAGE_BLOB_ENDPOINT", "AZURE_CLIENT_ID"} <= set(needed)
    # Local-only and platform-set settings are never required of infra.
    assert "STORAGE_CONNECTION_STRING" not in needed
    assert "WEBSITE_AUTH_ENABLED" not in needed


@pytest.mark.parametrize("backend", ["AzureStorage", "DurableTaskScheduler"])
def test_settings_load_from_what_azure_provides(
    infra: Infra, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert backend in checks.durable_backends(infra)
    provided = checks.placeholder_environment(checks.app_settings(infra, backend))
    for name, info in Settings.model_fields.items():
        monkeypatch.delenv(checks.setting_name(name, info), raising=False)
    for name, value in provided.items():
        monkeypatch.setenv(name, value)
    # App Service sets this once authsettingsV2 is on; easyauth mode does not trust headers without it.
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "True")

    settings = Settings()

    assert settings.auth_mode is AuthMode.EASYAUTH
    assert settings.website_auth_enabled is True
    assert settings.storage_connection_string is None
    assert settings.storage_table_endpoint.startswith("https://")
    assert settings.audiences, "AUTH_AUDIENCE must name at least one audience"


def test_audiences_match_easy_auth(infra: Infra) -> None:
    audience = checks.app_settings(infra, "AzureStorage")["AUTH_AUDIENCE"]
    auth = infra.only("Microsoft.Web/sites/config", "authsettingsV2")
    allowed = checks._prop(
        auth, "properties.identityProviders.azureActiveDirectory.validation.allowedAudiences"
    )
    rendered = [a if a.startswith("api://") else "${" + a + "}" for a in allowed]
    assert audience.split(",") == rendered
