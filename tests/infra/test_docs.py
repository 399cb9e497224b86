"""docs/deploy.md stays in step with the script, the templates and the API contract it describes."""

from __future__ import annotations

from types import ModuleType

from tests.infra import checks
from tests.infra.bicep_model import REPO_ROOT, Infra

DOC = (REPO_ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")


def test_every_requested_permission_is_documented(register_apps: ModuleType) -> None:
    for feature, permissions in register_apps.FEATURE_PERMISSIONS.items():
        for permission in permissions:
            assert f"`{permission}`" in DOC, f"{permission} ({feature}) is not documented"


def test_every_role_of_the_identity_is_documented() -> None:
    for label, _scope in checks.APP_ROLES.values():
        assert label in DOC


def test_documented_commands_exist(
    register_apps: ModuleType, durable_backend: ModuleType, infra: Infra
) -> None:
    for command in (
        "register_apps.py api",
        "register_apps.py graph",
        "register_apps.py consent-url",
        "durable_backend.py apply",
        "durable_backend.py render",
    ):
        assert command in DOC
    for variable in ("AUTH_CLIENT_ID", "DURABLE_BACKEND", "GRANT_DEPLOYER_CERTIFICATE_ACCESS"):
        assert variable in DOC
        assert variable in (infra.root / "main.parameters.json").read_text(encoding="utf-8")
    for output in (
        "AZURE_FUNCTION_APP_URL",
        "AZURE_RESOURCE_GROUP",
        "AZURE_FUNCTION_APP_NAME",
        "AZURE_USER_ASSIGNED_IDENTITY_PRINCIPAL_ID",
        "AZURE_KEY_VAULT_NAME",
    ):
        assert output in DOC
        assert output in infra.main.outputs
    for backend in durable_backend.BACKENDS:
        assert backend in DOC


def test_documents_the_api_calls_a_first_backup_needs() -> None:
    assert '"credential": {"type": "federatedManagedIdentity"}' in DOC.replace("\\", "").replace(
        "\n       ", " "
    )
    assert "PUT /api/tenants/<customer>/grants/" in DOC
    assert '"Idempotency-Key": "@{workflow().run.name}"' in DOC
    assert "Retry-After" in DOC
    assert "Location" in DOC
    assert "/api/health" in DOC
