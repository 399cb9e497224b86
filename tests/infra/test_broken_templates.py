"""Broken copies of the templates fail the checks with a message that names the file and line to fix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import Field

from shared.config import Settings
from tests.infra import checks
from tests.infra.bicep_model import BicepSyntaxError, load_infra


def _edit(path: Path, old: str, new: str) -> int:
    """Replace the first line containing ``old``; return that line's number."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    for index, line in enumerate(lines):
        if old in line:
            lines[index] = line.replace(old, new)
            path.write_text("".join(lines), encoding="utf-8")
            return index + 1
    raise AssertionError(f"{old!r} not found in {path}")


def test_syntax_error_names_file_line_and_column(infra_copy: Path) -> None:
    line = _edit(infra_copy / "app" / "api.bicep", "httpsOnly: true", "httpsOnly: = true")

    with pytest.raises(BicepSyntaxError) as raised:
        load_infra(infra_copy)

    assert re.match(rf"infra/app/api\.bicep:{line}:\d+: ", str(raised.value)), str(raised.value)


def test_unterminated_string_names_file_and_line(infra_copy: Path) -> None:
    line = _edit(infra_copy / "app" / "keyvault.bicep", "name: 'standard'", "name: 'standard")

    with pytest.raises(BicepSyntaxError, match=rf"^infra/app/keyvault\.bicep:{line}:"):
        load_infra(infra_copy)


def test_shared_key_access_turned_on_is_reported_at_its_line(infra_copy: Path) -> None:
    line = _edit(
        infra_copy / "app" / "storage.bicep", "allowSharedKeyAccess: false", "allowSharedKeyAccess: true"
    )

    problems = checks.check_storage(load_infra(infra_copy))

    assert problems == [
        f"infra/app/storage.bicep:{line}: storage.properties.allowSharedKeyAccess must be false, found true"
    ]


def test_account_key_text_is_reported_at_its_line(infra_copy: Path) -> None:
    line = _edit(
        infra_copy / "app" / "api.bicep",
        "AUTH_MODE: 'easyauth'",
        "AUTH_MODE: 'easyauth'\n  LEGACY: 'DefaultEndpointsProtocol=https;AccountKey=abc'",
    )

    problems = checks.check_no_keys_or_connection_strings(load_infra(infra_copy))

    assert f"infra/app/api.bicep:{line + 1}: forbidden text 'AccountKey'" in problems
    assert f"infra/app/api.bicep:{line + 1}: forbidden text 'DefaultEndpointsProtocol'" in problems


def test_connection_string_setting_is_rejected(infra_copy: Path) -> None:
    line = _edit(
        infra_copy / "app" / "api.bicep",
        "AUTH_MODE: 'easyauth'",
        "AUTH_MODE: 'easyauth'\n  STORAGE_CONNECTION_STRING: 'x'",
    )

    infra = load_infra(infra_copy)

    assert any(
        p.startswith(f"infra/app/api.bicep:{line + 1}: connection strings are not allowed")
        for p in checks.check_no_keys_or_connection_strings(infra)
    )
    assert any(
        "STORAGE_CONNECTION_STRING is for local development only" in p
        for p in checks.check_app_settings_contract(infra)
    )


def test_missing_app_setting_names_the_settings_resource(infra_copy: Path) -> None:
    _edit(infra_copy / "app" / "api.bicep", "AUTH_AUDIENCE:", "// AUTH_AUDIENCE removed:")
    infra = load_infra(infra_copy)
    where = checks.app_settings_resource(infra).where()

    problems = checks.check_app_settings_contract(infra)

    assert where.startswith("infra/app/api.bicep:")
    assert (
        f"{where}: app setting AUTH_AUDIENCE is missing with durableBackend=AzureStorage "
        "(required by shared.config.Settings)" in problems
    )


def test_new_required_field_in_the_code_fails_until_infra_provides_it(
    infra_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class GrownSettings(Settings):
        webhook_signing_key_name: str = Field(description="Key Vault secret that signs outgoing webhooks.")

    monkeypatch.setattr(checks, "Settings", GrownSettings)

    problems = checks.check_app_settings_contract(load_infra(infra_copy))

    assert any(
        "WEBHOOK_SIGNING_KEY_NAME is missing" in p and p.startswith("infra/app/api.bicep:") for p in problems
    )


def test_platform_setting_must_not_be_set_by_infra(infra_copy: Path) -> None:
    _edit(
        infra_copy / "app" / "api.bicep",
        "AUTH_MODE: 'easyauth'",
        "AUTH_MODE: 'easyauth'\n  WEBSITE_AUTH_ENABLED: 'true'",
    )

    problems = checks.check_app_settings_contract(load_infra(infra_copy))

    assert any("WEBSITE_AUTH_ENABLED is set by App Service itself" in p for p in problems)


def test_extra_excluded_path_is_reported(infra_copy: Path) -> None:
    line = _edit(infra_copy / "app" / "api.bicep", "'/api/health'", "'/api/health', '/api/tenants'")
    # Keep it a valid multi-line array: one entry per line.
    path = infra_copy / "app" / "api.bicep"
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            "'/api/health', '/api/tenants'", "'/api/health'\n        '/api/tenants'"
        )
    )

    problems = checks.check_easy_auth(load_infra(infra_copy))

    assert len(problems) == 1
    assert problems[0].startswith("infra/app/api.bicep:")
    assert "excludedPaths must be exactly ['/api/health', '/api/openapi.json']" in problems[0]
    assert int(problems[0].split(":")[1]) == line - 1  # the excludedPaths key, one line above the entry


def test_unauthenticated_redirect_is_reported(infra_copy: Path) -> None:
    line = _edit(infra_copy / "app" / "api.bicep", "'Return401'", "'RedirectToLoginPage'")

    problems = checks.check_easy_auth(load_infra(infra_copy))

    assert problems == [
        f"infra/app/api.bicep:{line}: authentication.properties.globalValidation."
        "unauthenticatedClientAction must be 'Return401', found RedirectToLoginPage"
    ]


def test_wrong_role_id_is_reported(infra_copy: Path) -> None:
    line = _edit(
        infra_copy / "app" / "rbac.bicep",
        checks.STORAGE_QUEUE_DATA_CONTRIBUTOR,
        "17d1049b-9a84-46fb-8f53-869881c3d3ab",
    )  # Storage Account Contributor: far too broad

    problems = checks.check_role_assignments(load_infra(infra_copy))

    assert any(
        p.startswith("infra/app/rbac.bicep:")
        and "17d1049b-9a84-46fb-8f53-869881c3d3ab" in p
        and "does not need" in p
        for p in problems
    )
    assert (
        "infra/main.bicep:1: role assignment Storage Queue Data Contributor "
        f"({checks.STORAGE_QUEUE_DATA_CONTRIBUTOR}) is missing" in problems
    )
    assert line > 0


def test_ftp_turned_on_is_reported(infra_copy: Path) -> None:
    line = _edit(infra_copy / "app" / "api.bicep", "ftpsState: 'Disabled'", "ftpsState: 'AllAllowed'")

    problems = checks.check_function_app(load_infra(infra_copy))

    assert problems == [
        f"infra/app/api.bicep:{line}: functionApp.properties.siteConfig.ftpsState must be "
        "'Disabled', found AllAllowed"
    ]


def test_key_vault_access_policies_mode_is_reported(infra_copy: Path) -> None:
    line = _edit(
        infra_copy / "app" / "keyvault.bicep",
        "enableRbacAuthorization: true",
        "enableRbacAuthorization: false",
    )

    problems = checks.check_key_vault(load_infra(infra_copy))

    assert problems == [
        f"infra/app/keyvault.bicep:{line}: vault.properties.enableRbacAuthorization must be true, found false"
    ]


def test_module_output_typo_is_reported(infra_copy: Path) -> None:
    line = _edit(
        infra_copy / "main.bicep",
        "output AZURE_KEY_VAULT_URL string = keyVault.outputs.uri",
        "output AZURE_KEY_VAULT_URL string = keyVault.outputs.url",
    )

    problems = checks.check_modules_wiring(load_infra(infra_copy))

    assert problems == [
        f"infra/main.bicep:{line}: keyVault.outputs.url is not an output of infra/app/keyvault.bicep"
    ]


def test_scheduler_hub_name_drift_is_reported(infra_copy: Path) -> None:
    _edit(
        infra_copy / "main.bicep",
        "param taskHubName string = 'IntuneBackupHub'",
        "param taskHubName string = 'OtherHub'",
    )

    problems = checks.check_durable_task_scheduler(load_infra(infra_copy))

    assert len(problems) == 1
    assert problems[0].startswith("infra/main.bicep:")
    assert "must be host.json's hubName (IntuneBackupHub)" in problems[0]


def test_plain_runtime_storage_setting_is_reported(infra_copy: Path) -> None:
    _edit(
        infra_copy / "app" / "api.bicep",
        "AzureWebJobsStorage__credential: 'managedidentity'",
        "AzureWebJobsStorage: 'x'",
    )
    infra = load_infra(infra_copy)
    where = checks.app_settings_resource(infra).where()

    problems = checks.check_identity_based_storage(infra)

    assert (
        f"{where}: AzureWebJobsStorage must not be a plain value; use AzureWebJobsStorage__* identity "
        "settings" in problems
    )
    assert f"{where}: AzureWebJobsStorage__credential must be 'managedidentity'" in problems


def test_scheduler_deployed_regardless_of_the_backend_is_reported(infra_copy: Path) -> None:
    line = _edit(
        infra_copy / "main.bicep",
        "'app/durable-task-scheduler.bicep' = if (useDurableTaskScheduler) {",
        "'app/durable-task-scheduler.bicep' = {",
    )

    problems = checks.check_durable_task_scheduler(load_infra(infra_copy))

    assert problems == [
        f"infra/main.bicep:{line}: module durableTaskScheduler must be conditional on the "
        "durableBackend parameter"
    ]


def test_registry_module_is_reported(infra_copy: Path) -> None:
    line = _edit(
        infra_copy / "main.bicep",
        "module identity 'app/identity.bicep' = {",
        "module identity 'br/public:avm/res/managed-identity/user-assigned-identity:0.4.1' = {",
    )

    problems = checks.check_no_keys_or_connection_strings(load_infra(infra_copy))

    assert f"infra/main.bicep:{line}: forbidden text 'br/public:'" in problems
    assert (
        f"infra/main.bicep:{line}: module identity is not a local module (offline checks cannot see "
        "inside registry modules)" in problems
    )


def test_api_module_with_a_fixed_backend_is_reported(infra_copy: Path) -> None:
    line = _edit(
        infra_copy / "main.bicep", "    durableBackend: durableBackend", "    durableBackend: 'AzureStorage'"
    )

    problems = checks.check_durable_task_scheduler(load_infra(infra_copy))

    assert problems == [
        f"infra/main.bicep:{line}: module api must pass durableBackend: durableBackend, found AzureStorage"
    ]
