"""Create the two Entra app registrations the deployment needs, with the Azure CLI (``az``).

1. ``api``: the API app registration (single tenant, the operator's). Callers request tokens for it; App
   Service Authentication accepts them (``authClientId``). ``Platform.Admin`` is an application-only app role
   for provisioning automation, and the access tokens carry the optional ``idtyp`` claim, by which the app
   tells app-only tokens (the only ones on which it honours that role) from user tokens. Its client id goes
   into the azd environment as ``AUTH_CLIENT_ID`` before ``azd up``.
2. ``graph``: the multi-tenant app registration that customer tenants consent to. It holds only the
   *application* permissions of the features you choose, and the function app's user-assigned managed
   identity as a federated identity credential, so tokens for customer tenants need no secret and no
   certificate. Run it after ``azd up`` (it needs the identity's principal id from the azd environment).
3. ``consent-url``: print the admin-consent link a customer tenant's administrator opens.

Every command is idempotent: it finds the registration by display name and updates it. Permission ids are
looked up from the Microsoft Graph service principal by name, never hard-coded. Standard library only.

Usage::

    python infra/scripts/register_apps.py api --env-name prod
    python infra/scripts/register_apps.py graph --env-name prod --features backup,restore
    python infra/scripts/register_apps.py consent-url --tenant <customer-tenant-id>
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlencode

__all__ = [
    "AZURE_CLI_APP_ID",
    "FEATURE_PERMISSIONS",
    "GRAPH_APP_ID",
    "PLATFORM_ADMIN_ROLE",
    "TOKEN_EXCHANGE_AUDIENCE",
    "TOKEN_TYPE_CLAIM",
    "USER_SCOPE",
    "admin_consent_url",
    "api_app_patch",
    "api_pre_authorization_patch",
    "api_role_disable_patch",
    "federated_credential",
    "graph_app_patch",
    "main",
    "permissions_for",
    "required_resource_access",
]

# Well-known application id of Microsoft Graph (the same in every tenant).
GRAPH_APP_ID: Final = "00000003-0000-0000-c000-000000000000"
# Audience of the managed identity's token that is exchanged for a customer-tenant token.
TOKEN_EXCHANGE_AUDIENCE: Final = "api://AzureADTokenExchange"
# App role of provisioning automation: registers managed tenants and manages their grants. The app honours it
# on app-only tokens only (shared/domain/access.py), so it is assignable to applications only.
PLATFORM_ADMIN_ROLE: Final = "Platform.Admin"
# Optional access-token claim: "app" on app-only tokens. Without it the app counts every caller as a user
# (shared/auth/claims.py) and Platform.Admin never takes effect.
TOKEN_TYPE_CLAIM: Final = "idtyp"
_AUTHORITY: Final = "https://login.microsoftonline.com"

# Application permissions per feature, least privilege. Restore needs write access to the same areas it
# backs up; its .ReadWrite.All permissions include reading, so "backup,restore" does not list both.
FEATURE_PERMISSIONS: Final[Mapping[str, tuple[str, ...]]] = {
    "backup": (
        "DeviceManagementConfiguration.Read.All",  # device config, compliance, settings catalog, GPO, ...
        "DeviceManagementApps.Read.All",  # apps, app categories, app protection, app configuration, WIP
        "DeviceManagementServiceConfig.Read.All",  # enrollment, Autopilot, ESP, Apple tokens, partners
        "DeviceManagementRBAC.Read.All",  # role definitions and scope tags
        "DeviceManagementScripts.Read.All",  # platform, remediation and compliance scripts
        "DeviceManagementManagedDevices.Read.All",  # device categories, device cleanup rules and settings
        "Group.Read.All",  # names of assignment target groups
        "Policy.Read.All",  # Conditional Access policies, named locations, authentication strengths
    ),
    "restore": (
        "DeviceManagementConfiguration.ReadWrite.All",
        "DeviceManagementApps.ReadWrite.All",
        "DeviceManagementServiceConfig.ReadWrite.All",
        "DeviceManagementRBAC.ReadWrite.All",
        "DeviceManagementScripts.ReadWrite.All",
        "DeviceManagementManagedDevices.ReadWrite.All",
        "Group.Read.All",  # restore maps groups, it never creates them
        "Policy.Read.All",  # reading Entra policies before writing them
        "Policy.ReadWrite.ConditionalAccess",  # Conditional Access, named locations, authentication strengths
    ),
}

# Delegated scope of the API app registration (user tokens, e.g. from the Azure CLI).
USER_SCOPE: Final = "user_impersonation"
# Well-known client id of the Azure CLI, pre-authorized so `az account get-access-token` works for the API.
AZURE_CLI_APP_ID: Final = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"

# Stable ids keep roles and scopes the same across runs (Entra refuses to change an id in place).
_PLATFORM_ADMIN_ROLE_ID: Final = str(uuid.uuid5(uuid.NAMESPACE_URL, "intune-backup/app-roles/Platform.Admin"))
_USER_SCOPE_ID: Final = str(uuid.uuid5(uuid.NAMESPACE_URL, "intune-backup/scopes/user_impersonation"))

Runner = Callable[[Sequence[str]], Any]


class RegistrationError(RuntimeError):
    """An ``az`` call failed or returned something unexpected."""


def permissions_for(features: Iterable[str]) -> list[str]:
    """Return the application permissions needed by a set of features, least privilege first.

    A ``.Read.All`` permission is dropped when the matching ``.ReadWrite.All`` is also required.

    Args:
        features: Names from :data:`FEATURE_PERMISSIONS` (``backup``, ``restore``).

    Returns:
        Sorted permission names.

    Raises:
        ValueError: A feature is unknown or none is given.
    """
    chosen = [f.strip() for f in features if f.strip()]
    if not chosen:
        raise ValueError("choose at least one feature: " + ", ".join(FEATURE_PERMISSIONS))
    names: set[str] = set()
    for feature in chosen:
        if feature not in FEATURE_PERMISSIONS:
            raise ValueError(f"unknown feature {feature!r}; known: {', '.join(FEATURE_PERMISSIONS)}")
        names.update(FEATURE_PERMISSIONS[feature])
    covered = {n.replace(".ReadWrite.All", ".Read.All") for n in names if n.endswith(".ReadWrite.All")}
    return sorted(names - covered)


def required_resource_access(
    graph_app_roles: Sequence[Mapping[str, Any]], permissions: Iterable[str]
) -> list[dict[str, Any]]:
    """Build the ``requiredResourceAccess`` of the multi-tenant app from Microsoft Graph's app roles.

    Args:
        graph_app_roles: ``appRoles`` of the Microsoft Graph service principal (``value`` and ``id``).
        permissions: Application permission names.

    Returns:
        The ``requiredResourceAccess`` list (application permissions are ``type: Role``).

    Raises:
        ValueError: A permission does not exist as a Graph application permission.
    """
    by_name = {str(role["value"]): str(role["id"]) for role in graph_app_roles if role.get("value")}
    access = []
    for name in permissions:
        if name not in by_name:
            raise ValueError(f"{name} is not an application permission of Microsoft Graph")
        access.append({"id": by_name[name], "type": "Role"})
    return [{"resourceAppId": GRAPH_APP_ID, "resourceAccess": access}]


def _platform_admin_role() -> dict[str, Any]:
    return {
        "id": _PLATFORM_ADMIN_ROLE_ID,
        "value": PLATFORM_ADMIN_ROLE,
        "displayName": "Platform administrator",
        "description": "Provisioning automation: registers managed tenants and manages their grants. "
        "Opens no tenant data.",
        # Application only: the app ignores the role on user tokens, so assigning it to people would only
        # suggest a power they do not have.
        "allowedMemberTypes": ["Application"],
        "isEnabled": True,
    }


def _optional_claims(existing: Mapping[str, Any] | None) -> dict[str, Any]:
    """Add ``idtyp`` to the access-token optional claims, keeping every other claim already configured.

    A PATCH replaces ``optionalClaims`` as a whole, so claims an operator added by hand are carried over.
    """
    merged = {kind: list(claims) for kind, claims in (existing or {}).items() if claims is not None}
    access = [c for c in merged.get("accessToken", []) if c.get("name") != TOKEN_TYPE_CLAIM]
    access.append({"name": TOKEN_TYPE_CLAIM, "essential": False, "additionalProperties": []})
    merged["accessToken"] = access
    return merged


def api_app_patch(app_id: str, existing_optional_claims: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return the Graph ``PATCH /applications/{id}`` body of the API app registration.

    v2 tokens carry ``aud`` = the client id and the v2 issuer that App Service Authentication is configured
    with. ``Platform.Admin`` can be assigned to applications only (service principals and managed identities
    of provisioning automation): the app honours it only on app-only tokens, which it recognises by the
    ``idtyp`` access-token claim requested here. The delegated scope lets people call the API with a user
    token (e.g. from the Azure CLI); their access comes from grants alone.

    Args:
        app_id: Client id of the API app registration.
        existing_optional_claims: The registration's current ``optionalClaims``, kept beside ``idtyp``.

    Returns:
        The PATCH body.
    """
    return {
        "identifierUris": [f"api://{app_id}"],
        "api": {
            "requestedAccessTokenVersion": 2,
            "oauth2PermissionScopes": [
                {
                    "id": _USER_SCOPE_ID,
                    "value": USER_SCOPE,
                    "type": "User",
                    "adminConsentDisplayName": "Call the Intune backup API",
                    "adminConsentDescription": "Call the Intune backup API as the signed-in user.",
                    "userConsentDisplayName": "Call the Intune backup API",
                    "userConsentDescription": "Call the Intune backup API as you.",
                    "isEnabled": True,
                }
            ],
        },
        "appRoles": [_platform_admin_role()],
        "optionalClaims": _optional_claims(existing_optional_claims),
    }


def api_role_disable_patch(existing_roles: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Return the PATCH that disables ``Platform.Admin`` first when its definition must change, else ``None``.

    Entra refuses to update an enabled app role (``CannotDeleteOrUpdateEnabledEntitlement``), so a
    registration made by an earlier version (role also assignable to users) is updated in two steps: disable
    the role unchanged, then :func:`api_app_patch` redefines and re-enables it. Its assignments are kept.

    Args:
        existing_roles: The registration's current ``appRoles``.

    Returns:
        The PATCH body, or ``None`` when the role is new, already disabled or already as wanted.
    """
    wanted = _platform_admin_role()
    current = next((r for r in existing_roles if r.get("id") == wanted["id"]), None)
    if current is None or not current.get("isEnabled"):
        return None
    fields = ("value", "displayName", "description", "allowedMemberTypes")
    if all(current.get(f) == wanted[f] for f in fields):
        return None
    return {"appRoles": [{"id": wanted["id"], **{f: current.get(f) for f in fields}, "isEnabled": False}]}


def api_pre_authorization_patch() -> dict[str, Any]:
    """Return the second PATCH of the API app: the Azure CLI may request its scope without a consent prompt.

    Entra accepts a pre-authorization only for a scope that already exists, hence a separate request.

    Returns:
        The PATCH body.
    """
    return {
        "api": {
            "preAuthorizedApplications": [
                {"appId": AZURE_CLI_APP_ID, "delegatedPermissionIds": [_USER_SCOPE_ID]},
            ]
        }
    }


def graph_app_patch(resource_access: list[dict[str, Any]], consent_redirect_uri: str) -> dict[str, Any]:
    """Return the Graph ``PATCH /applications/{id}`` body of the multi-tenant app registration.

    Args:
        resource_access: From :func:`required_resource_access`.
        consent_redirect_uri: Where Entra sends the admin after consenting (the public health endpoint).

    Returns:
        The PATCH body.
    """
    return {
        "signInAudience": "AzureADMultipleOrgs",
        "requiredResourceAccess": resource_access,
        "web": {"redirectUris": [consent_redirect_uri]},
    }


def federated_credential(operator_tenant_id: str, principal_id: str) -> dict[str, Any]:
    """Return the federated identity credential that trusts the function app's managed identity.

    Args:
        operator_tenant_id: Tenant of the managed identity (where the function app runs).
        principal_id: Object (principal) id of the user-assigned managed identity.

    Returns:
        The body for ``az ad app federated-credential create --parameters``.
    """
    return {
        "name": "function-app-managed-identity",
        "issuer": f"{_AUTHORITY}/{operator_tenant_id}/v2.0",
        "subject": principal_id,
        "audiences": [TOKEN_EXCHANGE_AUDIENCE],
        "description": "The function app's user-assigned managed identity; no secret or certificate needed.",
    }


def admin_consent_url(customer_tenant_id: str, client_id: str, redirect_uri: str) -> str:
    """Return the link a customer tenant's admin opens to grant the app its application permissions.

    Args:
        customer_tenant_id: The managed (customer) tenant id or verified domain.
        client_id: Client id of the multi-tenant app registration.
        redirect_uri: A redirect URI registered on that app.

    Returns:
        The admin-consent URL (``/.default`` asks for every permission the registration lists).
    """
    query = urlencode(
        {
            "client_id": client_id,
            "scope": "https://graph.microsoft.com/.default",
            "redirect_uri": redirect_uri,
        }
    )
    return f"{_AUTHORITY}/{customer_tenant_id}/v2.0/adminconsent?{query}"


# --- side effects: az CLI ---------------------------------------------------------------------------


def _az(args: Sequence[str]) -> Any:
    if shutil.which("az") is None:
        raise RegistrationError("the Azure CLI (az) is not on PATH; install it and run `az login`")
    completed = subprocess.run(["az", *args, "--output", "json"], capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RegistrationError(f"az {' '.join(args[:3])} failed: {completed.stderr.strip()[:500]}")
    return json.loads(completed.stdout) if completed.stdout.strip() else None


def _patch_application(run: Runner, object_id: str, body: dict[str, Any]) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as handle:
        json.dump(body, handle)
        path = handle.name
    try:
        run(
            [
                "rest",
                "--method",
                "PATCH",
                "--headers",
                "Content-Type=application/json",
                "--uri",
                f"https://graph.microsoft.com/v1.0/applications/{object_id}",
                "--body",
                f"@{path}",
            ]
        )
    finally:
        os.unlink(path)


def _ensure_application(run: Runner, display_name: str, audience: str) -> dict[str, str]:
    found = run(["ad", "app", "list", "--display-name", display_name, "--query", "[].{appId:appId, id:id}"])
    if found:
        return {"appId": found[0]["appId"], "id": found[0]["id"]}
    created = run(["ad", "app", "create", "--display-name", display_name, "--sign-in-audience", audience])
    return {"appId": created["appId"], "id": created["id"]}


def _azd_env_set(name: str, value: str) -> None:
    if shutil.which("azd") is None:
        sys.stdout.write(f"azd not found; set it yourself: azd env set {name} {value}\n")
        return
    subprocess.run(["azd", "env", "set", name, value], check=True)


def _azd_env_value(name: str) -> str:
    value = os.environ.get(name, "")
    if value or shutil.which("azd") is None:
        return value
    completed = subprocess.run(["azd", "env", "get-value", name], capture_output=True, text=True, check=False)
    return completed.stdout.strip() if completed.returncode == 0 else ""


def register_api(run: Runner, env_name: str) -> str:
    """Create or update the API app registration and return its client id."""
    app = _ensure_application(run, f"intune-backup-api-{env_name}", "AzureADMyOrg")
    query = "{appRoles: appRoles, optionalClaims: optionalClaims}"
    current = run(["ad", "app", "show", "--id", app["appId"], "--query", query]) or {}
    disable = api_role_disable_patch(current.get("appRoles") or [])
    if disable:
        _patch_application(run, app["id"], disable)
    _patch_application(run, app["id"], api_app_patch(app["appId"], current.get("optionalClaims")))
    _patch_application(run, app["id"], api_pre_authorization_patch())
    # A service principal in the operator tenant lets admins assign Platform.Admin to the service principals
    # and managed identities of provisioning automation.
    if not run(["ad", "sp", "list", "--filter", f"appId eq '{app['appId']}'", "--query", "[].id"]):
        run(["ad", "sp", "create", "--id", app["appId"]])
    return app["appId"]


def register_graph(
    run: Runner,
    env_name: str,
    features: Sequence[str],
    tenant_id: str,
    principal_id: str,
    function_app_url: str,
) -> str:
    """Create or update the multi-tenant Graph app registration and its federated credential."""
    graph_roles = run(["ad", "sp", "show", "--id", GRAPH_APP_ID, "--query", "appRoles"])
    access = required_resource_access(graph_roles, permissions_for(features))
    app = _ensure_application(run, f"intune-backup-graph-{env_name}", "AzureADMultipleOrgs")
    _patch_application(run, app["id"], graph_app_patch(access, f"{function_app_url.rstrip('/')}/api/health"))
    credential = federated_credential(tenant_id, principal_id)
    existing = run(["ad", "app", "federated-credential", "list", "--id", app["appId"], "--query", "[].name"])
    if credential["name"] not in (existing or []):
        run(
            [
                "ad",
                "app",
                "federated-credential",
                "create",
                "--id",
                app["appId"],
                "--parameters",
                json.dumps(credential),
            ]
        )
    return app["appId"]


def main(argv: list[str] | None = None, run: Runner = _az) -> int:
    """Command-line entry point.

    Args:
        argv: Arguments without the program name; defaults to ``sys.argv[1:]``.
        run: Executes one ``az`` command and returns its parsed JSON (injectable for tests).

    Returns:
        The process exit code.
    """
    parser = argparse.ArgumentParser(description="Create the app registrations of the Intune backup service.")
    sub = parser.add_subparsers(dest="command", required=True)
    api = sub.add_parser("api", help="API app registration (before azd up); sets AUTH_CLIENT_ID")
    api.add_argument("--env-name", default=os.environ.get("AZURE_ENV_NAME", ""))
    graph = sub.add_parser("graph", help="multi-tenant Graph app registration (after azd up)")
    graph.add_argument("--env-name", default=os.environ.get("AZURE_ENV_NAME", ""))
    graph.add_argument("--features", default="backup,restore", help="comma-separated: backup, restore")
    consent = sub.add_parser("consent-url", help="admin-consent link for a customer tenant")
    consent.add_argument("--tenant", required=True, help="customer tenant id or verified domain")
    consent.add_argument("--client-id", default="", help="Graph app client id (default: $GRAPH_CLIENT_ID)")
    args = parser.parse_args(argv)

    try:
        if args.command == "api":
            env_name = args.env_name or _azd_env_value("AZURE_ENV_NAME")
            if not env_name:
                parser.error("--env-name is required (or run inside an azd environment)")
            client_id = register_api(run, env_name)
            _azd_env_set("AUTH_CLIENT_ID", client_id)
            sys.stdout.write(f"API app registration: AUTH_CLIENT_ID={client_id}\n")
        elif args.command == "graph":
            env_name = args.env_name or _azd_env_value("AZURE_ENV_NAME")
            tenant_id = _azd_env_value("AZURE_TENANT_ID")
            principal_id = _azd_env_value("AZURE_USER_ASSIGNED_IDENTITY_PRINCIPAL_ID")
            function_app_url = _azd_env_value("AZURE_FUNCTION_APP_URL")
            if not (env_name and tenant_id and principal_id and function_app_url):
                parser.error(
                    "run `azd up` first: AZURE_TENANT_ID, AZURE_USER_ASSIGNED_IDENTITY_PRINCIPAL_ID "
                    "and AZURE_FUNCTION_APP_URL come from its outputs"
                )
            client_id = register_graph(
                run, env_name, args.features.split(","), tenant_id, principal_id, function_app_url
            )
            _azd_env_set("GRAPH_CLIENT_ID", client_id)
            sys.stdout.write(f"Graph app registration: GRAPH_CLIENT_ID={client_id}\n")
        else:
            client_id = args.client_id or _azd_env_value("GRAPH_CLIENT_ID")
            function_app_url = _azd_env_value("AZURE_FUNCTION_APP_URL")
            if not (client_id and function_app_url):
                parser.error("GRAPH_CLIENT_ID and AZURE_FUNCTION_APP_URL are needed (run the graph command)")
            redirect = f"{function_app_url.rstrip('/')}/api/health"
            sys.stdout.write(admin_consent_url(args.tenant, client_id, redirect) + "\n")
    except (RegistrationError, ValueError) as error:
        sys.stderr.write(f"error: {error}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
