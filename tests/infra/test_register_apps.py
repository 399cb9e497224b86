"""The app registration script asks for least-privilege permissions and trusts the managed identity."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from shared.domain.access import PLATFORM_ADMIN_ROLE
from shared.graph.catalog import CATALOG
from tests.infra import checks
from tests.infra.bicep_model import REPO_ROOT, Infra

TENANT = "11111111-1111-1111-1111-111111111111"
PRINCIPAL = "22222222-2222-2222-2222-222222222222"
CUSTOMER = "33333333-3333-3333-3333-333333333333"


def _graph_roles(names: Sequence[str]) -> list[dict[str, str]]:
    return [{"value": name, "id": f"id-{name}"} for name in names]


def test_backup_asks_only_for_read_permissions(register_apps: ModuleType) -> None:
    permissions = register_apps.permissions_for(["backup"])

    assert permissions
    assert all(p.endswith(".Read.All") for p in permissions)


def test_restore_replaces_reads_by_the_matching_writes(register_apps: ModuleType) -> None:
    permissions = register_apps.permissions_for(["backup", "restore"])

    for name in permissions:
        if name.endswith(".ReadWrite.All"):
            assert name.replace(".ReadWrite.All", ".Read.All") not in permissions
    assert "DeviceManagementConfiguration.ReadWrite.All" in permissions
    assert "Group.Read.All" in permissions
    assert "Group.ReadWrite.All" not in permissions  # restore maps groups, it never creates them


def test_unknown_feature_is_refused(register_apps: ModuleType) -> None:
    with pytest.raises(ValueError, match="unknown feature 'export'"):
        register_apps.permissions_for(["export"])
    with pytest.raises(ValueError, match="at least one feature"):
        register_apps.permissions_for([""])


def test_required_resource_access_uses_graph_app_role_ids(register_apps: ModuleType) -> None:
    names = register_apps.permissions_for(["backup"])

    access = register_apps.required_resource_access(_graph_roles([*names, "Mail.Read"]), names)

    assert access == [
        {
            "resourceAppId": "00000003-0000-0000-c000-000000000000",
            "resourceAccess": [{"id": f"id-{n}", "type": "Role"} for n in names],
        }
    ]
    with pytest.raises(ValueError, match=r"Group\.Read\.All is not an application permission"):
        register_apps.required_resource_access(_graph_roles(["Mail.Read"]), ["Group.Read.All"])


def test_federated_credential_trusts_the_managed_identity(register_apps: ModuleType) -> None:
    credential = register_apps.federated_credential(TENANT, PRINCIPAL)

    assert credential["issuer"] == f"https://login.microsoftonline.com/{TENANT}/v2.0"
    assert credential["subject"] == PRINCIPAL
    assert credential["audiences"] == ["api://AzureADTokenExchange"]


def test_admin_consent_url_targets_the_customer_tenant(register_apps: ModuleType) -> None:
    url = urlsplit(register_apps.admin_consent_url(CUSTOMER, "app-id", "https://func.example/api/health"))

    assert (url.scheme, url.netloc, url.path) == (
        "https",
        "login.microsoftonline.com",
        f"/{CUSTOMER}/v2.0/adminconsent",
    )
    assert parse_qs(url.query) == {
        "client_id": ["app-id"],
        "scope": ["https://graph.microsoft.com/.default"],
        "redirect_uri": ["https://func.example/api/health"],
    }


IDTYP_CLAIM = {"name": "idtyp", "essential": False, "additionalProperties": []}


def test_api_app_role_matches_the_code(register_apps: ModuleType) -> None:
    patch = register_apps.api_app_patch("api-app-id")

    assert register_apps.PLATFORM_ADMIN_ROLE == PLATFORM_ADMIN_ROLE
    assert [r["value"] for r in patch["appRoles"]] == [PLATFORM_ADMIN_ROLE]
    assert patch["identifierUris"] == ["api://api-app-id"]
    assert patch["api"]["requestedAccessTokenVersion"] == 2


def test_platform_admin_is_application_only_and_tokens_say_if_app_only(register_apps: ModuleType) -> None:
    # The app honours Platform.Admin only on app-only tokens, recognised by idtyp == "app"
    # (shared/auth/claims.py): without the claim no token would ever carry the role's power.
    patch = register_apps.api_app_patch("api-app-id")

    (role,) = patch["appRoles"]
    assert role["allowedMemberTypes"] == ["Application"]
    assert role["isEnabled"] is True
    assert patch["optionalClaims"] == {"accessToken": [IDTYP_CLAIM]}


def test_optional_claims_configured_by_hand_are_kept(register_apps: ModuleType) -> None:
    existing = {
        "idToken": [{"name": "upn", "essential": False, "additionalProperties": []}],
        "accessToken": [
            {"name": "ipaddr", "essential": False, "additionalProperties": []},
            {"name": "idtyp", "essential": True, "additionalProperties": []},
        ],
        "saml2Token": None,
    }

    claims = register_apps.api_app_patch("api-app-id", existing)["optionalClaims"]

    assert claims["idToken"] == existing["idToken"]
    assert claims["accessToken"] == [existing["accessToken"][0], IDTYP_CLAIM]


def test_azure_cli_is_pre_authorized_for_the_scope_created_first(register_apps: ModuleType) -> None:
    az = FakeAz([])

    assert register_apps.register_api(az, "prod") == "graph-app-id"

    scope_patch, pre_authorization = az.patches
    (scope,) = scope_patch["api"]["oauth2PermissionScopes"]
    assert scope["value"] == register_apps.USER_SCOPE
    assert pre_authorization == {
        "api": {
            "preAuthorizedApplications": [
                {"appId": register_apps.AZURE_CLI_APP_ID, "delegatedPermissionIds": [scope["id"]]}
            ]
        }
    }
    assert [
        "ad",
        "app",
        "create",
        "--display-name",
        "intune-backup-api-prod",
        "--sign-in-audience",
        "AzureADMyOrg",
    ] in az.calls


class FakeAz:
    """Answers ``az`` commands like a tenant holding nothing but ``existing_app``; records every call."""

    def __init__(
        self,
        graph_permissions: Sequence[str],
        existing_credentials: Sequence[str] = (),
        existing_app: dict[str, Any] | None = None,
    ) -> None:
        self.graph_roles = _graph_roles(graph_permissions)
        self.calls: list[list[str]] = []
        self.patches: list[dict[str, Any]] = []
        self.existing_credentials = list(existing_credentials)
        self.existing_app = existing_app

    def __call__(self, args: Sequence[str]) -> Any:
        args = list(args)
        self.calls.append(args)
        if args[:3] == ["ad", "sp", "show"]:
            return self.graph_roles
        if args[:3] == ["ad", "app", "list"]:
            return [{"appId": "api-app-id", "id": "api-object-id"}] if self.existing_app else []
        if args[:3] == ["ad", "app", "show"]:
            return self.existing_app
        if args[:3] == ["ad", "app", "create"]:
            return {"appId": "graph-app-id", "id": "graph-object-id"}
        if args[:2] == ["rest", "--method"]:
            body_file = args[args.index("--body") + 1].removeprefix("@")
            self.patches.append(json.loads(Path(body_file).read_text(encoding="utf-8")))
            return None
        if args[:4] == ["ad", "app", "federated-credential", "list"]:
            return self.existing_credentials
        return {}


def _role_allowing_users(register_apps: ModuleType) -> dict[str, Any]:
    """Platform.Admin as an earlier version of the script defined it: assignable to users too."""
    (role,) = register_apps.api_app_patch("api-app-id")["appRoles"]
    return {**role, "allowedMemberTypes": ["User", "Application"], "origin": "Application"}


def test_rerun_disables_an_older_role_definition_before_redefining_it(register_apps: ModuleType) -> None:
    # Entra refuses to update an enabled app role, so the re-run must disable it unchanged first.
    old_role = _role_allowing_users(register_apps)
    hand_made = {"accessToken": [{"name": "ipaddr", "essential": False, "additionalProperties": []}]}
    az = FakeAz([], existing_app={"appRoles": [old_role], "optionalClaims": hand_made})

    assert register_apps.register_api(az, "prod") == "api-app-id"

    disable, redefine, _pre_authorization = az.patches
    assert disable == {
        "appRoles": [
            {
                "id": old_role["id"],
                "value": PLATFORM_ADMIN_ROLE,
                "displayName": old_role["displayName"],
                "description": old_role["description"],
                "allowedMemberTypes": ["User", "Application"],
                "isEnabled": False,
            }
        ]
    }
    (role,) = redefine["appRoles"]
    assert role["id"] == old_role["id"]
    assert (role["allowedMemberTypes"], role["isEnabled"]) == (["Application"], True)
    assert redefine["optionalClaims"] == {"accessToken": [*hand_made["accessToken"], IDTYP_CLAIM]}
    assert not [c for c in az.calls if c[:3] == ["ad", "app", "create"]]


def test_rerun_with_the_current_role_patches_it_in_place(register_apps: ModuleType) -> None:
    current = register_apps.api_app_patch("api-app-id")
    existing = {"appRoles": current["appRoles"], "optionalClaims": current["optionalClaims"]}
    az = FakeAz([], existing_app=existing)

    register_apps.register_api(az, "prod")

    redefine, _pre_authorization = az.patches
    assert redefine == current


def _every_permission(register_apps: ModuleType) -> list[str]:
    return [p for names in register_apps.FEATURE_PERMISSIONS.values() for p in names]


def test_graph_registration_is_multi_tenant_with_a_federated_credential(register_apps: ModuleType) -> None:
    az = FakeAz(_every_permission(register_apps))

    client_id = register_apps.register_graph(
        az, "prod", ["backup"], TENANT, PRINCIPAL, "https://func.example/"
    )

    assert client_id == "graph-app-id"
    assert [
        "ad",
        "app",
        "create",
        "--display-name",
        "intune-backup-graph-prod",
        "--sign-in-audience",
        "AzureADMultipleOrgs",
    ] in az.calls
    (patch,) = az.patches
    assert patch["signInAudience"] == "AzureADMultipleOrgs"
    assert patch["web"] == {"redirectUris": ["https://func.example/api/health"]}
    granted = {a["id"].removeprefix("id-") for a in patch["requiredResourceAccess"][0]["resourceAccess"]}
    assert granted == set(register_apps.permissions_for(["backup"]))
    create = [c for c in az.calls if c[:4] == ["ad", "app", "federated-credential", "create"]]
    assert len(create) == 1
    assert json.loads(create[0][create[0].index("--parameters") + 1]) == register_apps.federated_credential(
        TENANT, PRINCIPAL
    )


def test_graph_registration_is_idempotent(register_apps: ModuleType) -> None:
    az = FakeAz(_every_permission(register_apps), existing_credentials=["function-app-managed-identity"])

    register_apps.register_graph(az, "prod", ["backup", "restore"], TENANT, PRINCIPAL, "https://func.example")

    assert not [c for c in az.calls if c[:4] == ["ad", "app", "federated-credential", "create"]]


def test_consent_url_command_needs_no_az(
    register_apps: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AZURE_FUNCTION_APP_URL", "https://func.example")
    monkeypatch.setenv("GRAPH_CLIENT_ID", "graph-app-id")

    def no_az(args: Sequence[str]) -> Any:
        raise AssertionError(f"az must not be called: {args}")

    assert register_apps.main(["consent-url", "--tenant", CUSTOMER], run=no_az) == 0
    out = capsys.readouterr().out.strip()
    assert out == register_apps.admin_consent_url(CUSTOMER, "graph-app-id", "https://func.example/api/health")


def test_script_reads_only_outputs_that_main_bicep_declares(infra: Infra) -> None:
    text = (REPO_ROOT / "infra" / "scripts" / "register_apps.py").read_text(encoding="utf-8")
    read = set(re.findall(r'_azd_env_value\("(\w+)"\)', text))
    # AZURE_ENV_NAME is azd's own; GRAPH_CLIENT_ID is written by the script's graph command.
    assert read - {"AZURE_ENV_NAME", "GRAPH_CLIENT_ID"} <= set(infra.main.outputs)
    assert {"AZURE_TENANT_ID", "AZURE_USER_ASSIGNED_IDENTITY_PRINCIPAL_ID", "AZURE_FUNCTION_APP_URL"} <= read
    assert set(checks.REQUIRED_OUTPUTS) <= set(infra.main.outputs)


def test_every_catalog_permission_is_requested_for_its_feature(register_apps: ModuleType) -> None:
    # A type added to the catalog must not fail in a deployed tenant for want of consent.
    backup = set(register_apps.FEATURE_PERMISSIONS["backup"])
    restore = set(register_apps.FEATURE_PERMISSIONS["restore"])
    for policy_type in CATALOG.values():
        assert policy_type.read_permission in backup, (policy_type.key, policy_type.read_permission)
        assert policy_type.write_permission in restore, (policy_type.key, policy_type.write_permission)
