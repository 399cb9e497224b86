"""Policy checks over the parsed templates. Each returns a list of ``infra/<file>:<line>: problem`` strings.

The tests assert that the real ``infra/`` yields no problem, and that deliberately broken copies yield a
problem naming the broken file and line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo

from shared.config import Settings
from tests.infra.bicep_model import REPO_ROOT, Expr, Infra, Ref, Resource, expr_text, unquote

# Built-in role definition ids the function app's managed identity needs, with the resource type each is
# scoped to. Durable Task Data Contributor applies only with the Durable Task Scheduler backend.
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
STORAGE_QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
STORAGE_TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
DURABLE_TASK_DATA_CONTRIBUTOR = "0ad04412-c4d5-4796-b79c-f76d14c8d402"

APP_ROLES: dict[str, tuple[str, str]] = {
    STORAGE_BLOB_DATA_OWNER: ("Storage Blob Data Owner", "Microsoft.Storage/storageAccounts"),
    STORAGE_QUEUE_DATA_CONTRIBUTOR: ("Storage Queue Data Contributor", "Microsoft.Storage/storageAccounts"),
    STORAGE_TABLE_DATA_CONTRIBUTOR: ("Storage Table Data Contributor", "Microsoft.Storage/storageAccounts"),
    MONITORING_METRICS_PUBLISHER: ("Monitoring Metrics Publisher", "Microsoft.Insights/components"),
    KEY_VAULT_SECRETS_USER: ("Key Vault Secrets User", "Microsoft.KeyVault/vaults"),
    DURABLE_TASK_DATA_CONTRIBUTOR: ("Durable Task Data Contributor", "Microsoft.DurableTask/schedulers"),
}

# Outputs azd and our scripts read from the provisioning (azd env get-values).
REQUIRED_OUTPUTS = (
    "AZURE_LOCATION",
    "AZURE_TENANT_ID",
    "AZURE_SUBSCRIPTION_ID",
    "AZURE_RESOURCE_GROUP",
    "AZURE_FUNCTION_APP_NAME",
    "AZURE_FUNCTION_APP_URL",
    "SERVICE_API_NAME",
    "AZURE_USER_ASSIGNED_IDENTITY_CLIENT_ID",
    "AZURE_USER_ASSIGNED_IDENTITY_PRINCIPAL_ID",
    "AZURE_KEY_VAULT_URL",
    "DURABLE_BACKEND",
)

# Never in infra/ or azure.yaml: shared keys, SAS, key listing, storage connection strings, registry modules.
FORBIDDEN_TEXT = (
    "AccountKey",
    "listKeys(",
    "listAccountSas(",
    "listServiceSas(",
    "DefaultEndpointsProtocol",
    "SharedAccessSignature",
    "SharedAccessKey",
    "StorageAccountConnectionString",
    "UseDevelopmentStorage",
    "br/public:",
    "br:",
)
# The only "connection string" names allowed: Application Insights' (not a secret once local auth is off:
# ingestion needs an Entra token) and the Durable Task Scheduler's (identity-based: endpoint + client id).
# connectionStringName is the host.json key that points at the latter.
ALLOWED_CONNECTION_STRING_TEXT = (
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "applicationInsights.properties.ConnectionString",
    "DURABLE_TASK_SCHEDULER_CONNECTION_STRING",
    "connectionStringName",
)
_CONNECTION_STRING = re.compile(r"connection[ _-]?string", re.IGNORECASE)

Problems = list[str]


def _is_true(value: Any) -> bool:
    return value is True


def _prop(resource: Resource, path: str) -> Any:
    """Value at a dotted path under the resource body; keys compare case-insensitively (as ARM does)."""
    node: Any = resource.body
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        matches = [k for k in node if unquote(k).lower() == part.lower()]
        node = node[matches[0]] if matches else None
    return node


def _expect(resource: Resource, path: str, predicate: Callable[[Any], bool], want: str) -> Problems:
    value = _prop(resource, path)
    if predicate(value):
        return []
    key = path.rsplit(".", 1)[-1]
    return [f"{resource.where(key)}: {resource.symbol}.{path} must be {want}, found {expr_text(value)}"]


def _equals(expected: Any) -> Callable[[Any], bool]:
    return lambda value: value == expected


def _deployed(infra: Infra, type_: str) -> list[Resource]:
    return list(infra.resources(type_))


def _missing(infra: Infra, type_: str) -> Problems:
    return [f"{infra.main.rel}:1: no {type_} is deployed by any template"]


# --- storage -------------------------------------------------------------------------------------


def check_storage(infra: Infra) -> Problems:
    """Shared keys off, TLS 1.2, no public blobs, HTTPS only, private containers."""
    accounts = _deployed(infra, "Microsoft.Storage/storageAccounts")
    if not accounts:
        return _missing(infra, "Microsoft.Storage/storageAccounts")
    problems: Problems = []
    for account in accounts:
        problems += _expect(account, "properties.allowSharedKeyAccess", _equals(False), "false")
        problems += _expect(account, "properties.minimumTlsVersion", _equals("TLS1_2"), "'TLS1_2'")
        problems += _expect(account, "properties.allowBlobPublicAccess", _equals(False), "false")
        problems += _expect(account, "properties.supportsHttpsTrafficOnly", _is_true, "true")
        problems += _expect(account, "properties.defaultToOAuthAuthentication", _is_true, "true")
    for container in _deployed(infra, "Microsoft.Storage/storageAccounts/blobServices/containers"):
        problems += _expect(container, "properties.publicAccess", _equals("None"), "'None'")
    return problems


# --- forbidden text ------------------------------------------------------------------------------


def scanned_files(infra: Infra) -> list[Path]:
    """Every text file of the deployment: all of ``infra/`` plus ``azure.yaml`` beside it."""
    files = [p for p in sorted(infra.root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts]
    azure_yaml = infra.root.parent / "azure.yaml"
    if azure_yaml.exists():
        files.append(azure_yaml)
    return files


def check_no_keys_or_connection_strings(infra: Infra) -> Problems:
    """No account keys, SAS, key listing, registry modules or connection strings in any deployment file."""
    problems: Problems = []
    for path in scanned_files(infra):
        rel = path.relative_to(infra.root.parent).as_posix()
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for needle in FORBIDDEN_TEXT:
                if needle.lower() in line.lower():
                    problems.append(f"{rel}:{number}: forbidden text {needle!r}")
            stripped = line
            for allowed in ALLOWED_CONNECTION_STRING_TEXT:
                stripped = stripped.replace(allowed, "")
            if _CONNECTION_STRING.search(stripped):
                problems.append(
                    f"{rel}:{number}: connection strings are not allowed (identity-based settings only)"
                )
    for bicep in infra.files.values():
        for symbol, module in bicep.modules.items():
            if module.get("type") != "local":
                problems.append(
                    f"{bicep.where(module)}: module {symbol} is not a local module (offline checks "
                    "cannot see inside registry modules)"
                )
    return problems


# --- app settings contract -----------------------------------------------------------------------


def durable_backends(infra: Infra) -> list[str]:
    """Allowed values of main.bicep's ``durableBackend`` parameter."""
    parameter = infra.main.parameters.get("durableBackend", {})
    for decorator in parameter.get("decorators", []):
        if decorator.get("type") == "allowed":
            return [str(v) for v in decorator["argument"]]
    return []


def app_settings_resource(infra: Infra) -> Resource:
    """The function app's ``appsettings`` config resource."""
    return infra.only("Microsoft.Web/sites/config", "appsettings")


def app_settings(infra: Infra, backend: str) -> dict[str, Any]:
    """The app settings the templates give the function app with a Durable backend.

    Values are literals, :class:`Ref` (parameters) or :class:`Expr`. The key ``__dynamic__`` lists
    computed parts of the ``union()`` (Key Vault references built from a parameter).
    """
    resource = app_settings_resource(infra)
    value = resource.file.evaluate(resource.body.get("properties"), {"durableBackend": backend})
    if not isinstance(value, dict):
        raise AssertionError(f"{resource.where('properties')}: app settings must be an object or a union()")
    return value


def setting_name(name: str, info: FieldInfo) -> str:
    """The app setting (environment variable) that feeds a Settings field."""
    alias = info.validation_alias if isinstance(info.validation_alias, str) else info.alias
    return (alias or name).upper()


def _description(info: FieldInfo) -> str:
    return (info.description or "").lower()


def is_local_only(info: FieldInfo) -> bool:
    """Fields documented as local development only must never be set in Azure."""
    return "local development only" in _description(info)


def is_platform_set(info: FieldInfo) -> bool:
    """Fields App Service sets itself (e.g. WEBSITE_AUTH_ENABLED)."""
    return "set by app service" in _description(info)


def _unconfigured_default(info: FieldInfo) -> bool:
    # An empty default means "not configured": Azure has to provide it.
    return not info.is_required() and info.default in ("", None)


def required_in_azure() -> dict[str, str]:
    """Settings fields Azure must provide, with the reason (derived from the code's Settings model)."""
    needed: dict[str, str] = {}
    for name, info in Settings.model_fields.items():
        if is_local_only(info) or is_platform_set(info):
            continue
        if info.is_required():
            needed[setting_name(name, info)] = "required by shared.config.Settings"
        elif _unconfigured_default(info):
            needed[setting_name(name, info)] = (
                "empty default in shared.config.Settings (unconfigured otherwise)"
            )
    return needed


def check_app_settings_contract(infra: Infra) -> Problems:
    """Every setting the code needs is provided; local-only and platform-set ones are not; easyauth mode."""
    resource = app_settings_resource(infra)
    where = resource.where()
    problems: Problems = []
    backends = durable_backends(infra)
    if not backends:
        return [f"{infra.main.rel}:1: durableBackend has no @allowed list"]
    for backend in backends:
        settings = app_settings(infra, backend)
        for name, reason in required_in_azure().items():
            if name not in settings:
                problems.append(
                    f"{where}: app setting {name} is missing with durableBackend={backend} ({reason})"
                )
        for field_name, info in Settings.model_fields.items():
            name = setting_name(field_name, info)
            if name in settings and is_local_only(info):
                problems.append(
                    f"{where}: app setting {name} is for local development only; never set it in Azure"
                )
            if name in settings and is_platform_set(info):
                problems.append(f"{where}: app setting {name} is set by App Service itself; do not set it")
        if "PYTHON_THREADPOOL_THREAD_COUNT" not in settings:
            problems.append(f"{where}: app setting PYTHON_THREADPOOL_THREAD_COUNT is missing "
                            "(see docs/deploy.md, Concurrency and instance settings)")
        # One busy Python process fills a 2,048 MB instance's one core; more only split it (docs/deploy.md).
        if settings.get("FUNCTIONS_WORKER_PROCESS_COUNT", "1") != "1":
            problems.append(f"{where}: FUNCTIONS_WORKER_PROCESS_COUNT must stay 1 "
                            "(see docs/deploy.md, Concurrency and instance settings)")
        if settings.get("AUTH_MODE") != "easyauth":
            problems.append(
                f"{where}: AUTH_MODE must be 'easyauth' behind App Service Authentication, "
                f"found {expr_text(settings.get('AUTH_MODE'))}"
            )
    return problems


def placeholder_environment(settings: Mapping[str, Any]) -> dict[str, str]:
    """Environment variables as Azure would set them, with computed values replaced by placeholders."""
    env: dict[str, str] = {}
    for name, value in settings.items():
        if name == "__dynamic__":
            continue
        if isinstance(value, str) and "${" not in value:
            env[name] = value
        elif isinstance(value, bool):
            env[name] = str(value).lower()
        else:
            # Parameters and computed values (endpoints, ids) are non-empty in Azure.
            env[name] = "https://placeholder.invalid/"
    return env


def check_identity_based_storage(infra: Infra) -> Problems:
    """Runtime and Durable task hub use identity-based settings (credential, clientId, service URIs)."""
    resource = app_settings_resource(infra)
    where = resource.where()
    host = json.loads((infra.root.parent / "host.json").read_text(encoding="utf-8"))
    provider = host["extensions"]["durableTask"]["storageProvider"]
    problems: Problems = []
    prefixes = {"AzureWebJobsStorage"}
    if provider.get("type") == "AzureStorage":
        prefixes.add(provider.get("connectionName") or "AzureWebJobsStorage")
    for backend in durable_backends(infra):
        settings = app_settings(infra, backend)
        for prefix in sorted(prefixes):
            if prefix in settings:
                problems.append(
                    f"{where}: {prefix} must not be a plain value; use {prefix}__* identity settings"
                )
            if settings.get(f"{prefix}__credential") != "managedidentity":
                problems.append(f"{where}: {prefix}__credential must be 'managedidentity'")
            client_id = settings.get(f"{prefix}__clientId")
            if not isinstance(client_id, Ref | Expr):
                problems.append(f"{where}: {prefix}__clientId must be the managed identity's client id")
            for service in ("blob", "queue", "table"):
                uri = settings.get(f"{prefix}__{service}ServiceUri")
                if not (isinstance(uri, str) and uri.startswith("https://") and f".{service}." in uri):
                    problems.append(
                        f"{where}: {prefix}__{service}ServiceUri must be the https {service} endpoint"
                    )
        for name in ("STORAGE_TABLE_ENDPOINT", "STORAGE_BLOB_ENDPOINT"):
            value = settings.get(name)
            if not (isinstance(value, str) and value.startswith("https://")):
                problems.append(f"{where}: {name} must be an https endpoint (identity-based access)")
    return problems


def check_key_vault_references(infra: Infra) -> Problems:
    """Secrets reach app settings only as Key Vault references resolved with the managed identity."""
    resource = app_settings_resource(infra)
    problems: Problems = []
    for backend in durable_backends(infra):
        settings = app_settings(infra, backend)
        for part in settings.get("__dynamic__", []):
            if "@Microsoft.KeyVault(SecretUri=" not in expr_text(part):
                problems.append(
                    f"{resource.where()}: computed app settings must be Key Vault references, "
                    f"found {expr_text(part)}"
                )
    secure = [
        (bicep, name)
        for bicep in infra.files.values()
        for name, p in bicep.parameters.items()
        if any(d.get("type") == "secure" for d in p.get("decorators", []))
    ]
    for bicep, name in secure:
        problems.append(
            f"{bicep.where(bicep.parameters[name])}: secure parameter {name}: pass secrets through "
            "Key Vault references, not deployment parameters"
        )
    for site in _deployed(infra, "Microsoft.Web/sites"):
        identity = _prop(site, "properties.keyVaultReferenceIdentity")
        assigned = _prop(site, "identity.userAssignedIdentities")
        keys = [unquote(k) for k in assigned] if isinstance(assigned, Mapping) else []
        if not keys or identity is None or f"${{{expr_text(identity)}}}" not in keys:
            problems.append(
                f"{site.where('keyVaultReferenceIdentity')}: keyVaultReferenceIdentity must be the "
                "user-assigned identity the site runs as"
            )
    return problems


# --- site, plan, auth ----------------------------------------------------------------------------


def check_function_app(infra: Infra) -> Problems:
    """Flex Consumption, Python 3.11, UAMI, HTTPS only, FTP and basic publishing credentials off, HTTP
    concurrency per instance set."""
    sites = _deployed(infra, "Microsoft.Web/sites")
    if not sites:
        return _missing(infra, "Microsoft.Web/sites")
    problems: Problems = []
    for plan in _deployed(infra, "Microsoft.Web/serverfarms"):
        problems += _expect(plan, "sku.name", _equals("FC1"), "'FC1'")
        problems += _expect(plan, "sku.tier", _equals("FlexConsumption"), "'FlexConsumption'")
        problems += _expect(plan, "properties.reserved", _is_true, "true (Linux)")
    for site in sites:
        problems += _expect(site, "kind", _equals("functionapp,linux"), "'functionapp,linux'")
        problems += _expect(site, "properties.httpsOnly", _is_true, "true")
        problems += _expect(site, "properties.siteConfig.ftpsState", _equals("Disabled"), "'Disabled'")
        problems += _expect(site, "properties.siteConfig.minTlsVersion", _equals("1.2"), "'1.2'")
        problems += _expect(site, "identity.type", _equals("UserAssigned"), "'UserAssigned'")
        problems += _expect(site, "properties.functionAppConfig.runtime.name", _equals("python"), "'python'")
        problems += _expect(site, "properties.functionAppConfig.runtime.version", _equals("3.11"), "'3.11'")
        problems += _expect(
            site,
            "properties.functionAppConfig.deployment.storage.authentication.type",
            _equals("UserAssignedIdentity"),
            "'UserAssignedIdentity'",
        )
        # Python apps default to one HTTP request per instance; docs/deploy.md derives the value set instead.
        scale = "properties.functionAppConfig.scaleAndConcurrency"
        concurrency = _prop(site, f"{scale}.triggers.http.perInstanceConcurrency")
        if concurrency is None:
            problems.append(f"{site.where()}: set scaleAndConcurrency.triggers.http.perInstanceConcurrency "
                            "(see docs/deploy.md, Concurrency and instance settings)")
        tags = site.file.evaluate(_prop(site, "tags"))
        if not (isinstance(tags, dict) and tags.get("azd-service-name") == "api"):
            problems.append(
                f"{site.where('tags')}: the site needs the tag azd-service-name: 'api' for azd deploy"
            )
    policies = {r.name: r for r in _deployed(infra, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")}
    for name in ("ftp", "scm"):
        if name not in policies:
            problems.append(
                f"{sites[0].where()}: basicPublishingCredentialsPolicies '{name}' with allow: false "
                "is missing"
            )
        else:
            problems += _expect(policies[name], "properties.allow", _equals(False), "false")
    return problems


# Routes that answer without a token: liveness and the OpenAPI document.
PUBLIC_PATHS = ("/api/health", "/api/openapi.json")


def check_easy_auth(infra: Infra) -> Problems:
    """Authentication on, unauthenticated requests get 401, only the public routes are excluded, Entra."""
    try:
        auth = infra.only("Microsoft.Web/sites/config", "authsettingsV2")
    except AssertionError as error:
        return [f"{infra.main.rel}:1: {error}"]
    problems: Problems = []
    problems += _expect(auth, "properties.platform.enabled", _is_true, "true")
    problems += _expect(auth, "properties.globalValidation.requireAuthentication", _is_true, "true")
    problems += _expect(
        auth, "properties.globalValidation.unauthenticatedClientAction", _equals("Return401"), "'Return401'"
    )
    problems += _expect(
        auth, "properties.globalValidation.excludedPaths", _equals(list(PUBLIC_PATHS)),
        f"exactly {list(PUBLIC_PATHS)}"
    )
    problems += _expect(auth, "properties.httpSettings.requireHttps", _is_true, "true")
    problems += _expect(auth, "properties.identityProviders.azureActiveDirectory.enabled", _is_true, "true")
    problems += _expect(
        auth,
        "properties.identityProviders.azureActiveDirectory.registration.clientId",
        _equals("authClientId"),
        "the authClientId parameter",
    )
    audiences = _prop(auth, "properties.identityProviders.azureActiveDirectory.validation.allowedAudiences")
    if not (isinstance(audiences, list) and "authClientId" in audiences):
        problems.append(f"{auth.where('allowedAudiences')}: allowedAudiences must include the API client id")
    return problems


# --- monitoring, key vault ------------------------------------------------------------------------


def check_monitoring(infra: Infra) -> Problems:
    """Workspace-based Application Insights with local auth off, and the app authenticating with Entra ID."""
    components = _deployed(infra, "Microsoft.Insights/components")
    if not components:
        return _missing(infra, "Microsoft.Insights/components")
    problems: Problems = []
    for component in components:
        problems += _expect(component, "properties.DisableLocalAuth", _is_true, "true")
        problems += _expect(
            component,
            "properties.WorkspaceResourceId",
            lambda v: v is not None,
            "a Log Analytics workspace id",
        )
    if not _deployed(infra, "Microsoft.OperationalInsights/workspaces"):
        problems += _missing(infra, "Microsoft.OperationalInsights/workspaces")
    resource = app_settings_resource(infra)
    for backend in durable_backends(infra):
        value = app_settings(infra, backend).get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING")
        if not (isinstance(value, str) and "Authorization=AAD" in value and "ClientId=" in value):
            problems.append(
                f"{resource.where()}: APPLICATIONINSIGHTS_AUTHENTICATION_STRING must be "
                "'ClientId=<identity client id>;Authorization=AAD'"
            )
    return problems


def check_key_vault(infra: Infra) -> Problems:
    """RBAC mode, soft delete and purge protection."""
    vaults = _deployed(infra, "Microsoft.KeyVault/vaults")
    if not vaults:
        return _missing(infra, "Microsoft.KeyVault/vaults")
    problems: Problems = []
    for vault in vaults:
        problems += _expect(vault, "properties.enableRbacAuthorization", _is_true, "true")
        problems += _expect(vault, "properties.enableSoftDelete", _is_true, "true")
        problems += _expect(vault, "properties.enablePurgeProtection", _is_true, "true")
        if _prop(vault, "properties.accessPolicies"):
            problems.append(f"{vault.where('accessPolicies')}: access policies are not used in RBAC mode")
    return problems


# --- role assignments ----------------------------------------------------------------------------


def _role_id(assignment: Resource) -> str:
    definition = _prop(assignment, "properties.roleDefinitionId")
    if isinstance(definition, dict) and "function" in definition:
        name = definition["function"].get("parameters", {}).get("resource_name_1")
        resolved = assignment.file.evaluate(name)
        return resolved if isinstance(resolved, str) else expr_text(resolved)
    return expr_text(assignment.file.evaluate(definition))


def check_role_assignments(infra: Infra) -> Problems:
    """Each needed role is assigned to the app identity on the right scope, idempotently, and nothing more."""
    problems: Problems = []
    assigned: dict[str, Resource] = {}
    for assignment in _deployed(infra, "Microsoft.Authorization/roleAssignments"):
        role = _role_id(assignment)
        principal_type = _prop(assignment, "properties.principalType")
        principal = _prop(assignment, "properties.principalId")
        if principal_type != "ServicePrincipal":
            # Only the optional, conditional grant to the person deploying may be a user.
            if principal_type != "User" or assignment.condition is None:
                problems.append(
                    f"{assignment.where('principalType')}: {assignment.symbol} must use "
                    "principalType 'ServicePrincipal' (or be a conditional grant to the deployer)"
                )
            continue
        if role not in APP_ROLES:
            problems.append(
                f"{assignment.where('roleDefinitionId')}: {assignment.symbol} assigns role {role}, "
                "which the app does not need"
            )
            continue
        label, scope_type = APP_ROLES[role]
        if role in assigned:
            problems.append(
                f"{assignment.where()}: {label} is assigned twice (also {assigned[role].where()})"
            )
        assigned[role] = assignment
        scope = assignment.body.get("scope")
        scoped = [r for r in assignment.file.resources if r.symbol == scope]
        if not scoped or scoped[0].type.lower() != scope_type.lower():
            problems.append(
                f"{assignment.where('scope')}: {label} must be scoped to a {scope_type}, "
                f"found {expr_text(scope)}"
            )
        name = assignment.name
        guid = name.get("function", {}) if isinstance(name, dict) else {}
        args = list(guid.get("parameters", {}).values())
        expected = [f"{scope}.id", expr_text(principal)]
        if (
            guid.get("type") != "guid"
            or len(args) != 3
            or [expr_text(a) for a in args[:2]] != expected
            or assignment.file.evaluate(args[2]) != role
        ):
            problems.append(
                f"{assignment.where('name')}: {assignment.symbol} name must be "
                f"guid({scope}.id, {expr_text(principal)}, <role id>), found {expr_text(name)}"
            )
    for role, (label, _scope) in APP_ROLES.items():
        if role not in assigned:
            problems.append(f"{infra.main.rel}:1: role assignment {label} ({role}) is missing")
    return problems


# --- main.bicep wiring and outputs ------------------------------------------------------------------


def check_modules_wiring(infra: Infra) -> Problems:
    """Module paths exist, params match the module's parameters, referenced outputs exist."""
    problems: Problems = []
    for bicep in infra.files.values():
        for symbol, module in bicep.modules.items():
            if module.get("type") != "local":
                continue
            target_path = (bicep.path.parent / module["detail"]["path"]).resolve()
            rel = (
                target_path.relative_to(infra.root.parent.resolve()).as_posix()
                if target_path.exists()
                else ""
            )
            if rel not in infra.files:
                problems.append(
                    f"{bicep.where(module)}: module {symbol} points at a missing file "
                    f"{module['detail']['path']}"
                )
                continue
            target = infra.files[rel]
            config = (
                module["config"]["config"]
                if set(module["config"]) == {"condition", "config"}
                else module["config"]
            )
            passed = set(config.get("params", {}))
            declared = target.parameters
            for name in sorted(passed - set(declared)):
                problems.append(
                    f"{bicep.where(module, name)}: module {symbol} passes {name}, which {rel} "
                    "does not declare"
                )
            for name, parameter in declared.items():
                if parameter.get("default") is None and name not in passed:
                    problems.append(
                        f"{bicep.where(module)}: module {symbol} does not pass required parameter "
                        f"{name} of {rel}"
                    )
            for number, line in enumerate(bicep.lines, 1):
                for output in re.findall(rf"\b{re.escape(symbol)}\.outputs\.(\w+)", line):
                    if output not in target.outputs:
                        problems.append(
                            f"{bicep.rel}:{number}: {symbol}.outputs.{output} is not an output of {rel}"
                        )
    return problems


def check_outputs(infra: Infra) -> Problems:
    """main.bicep outputs what azd and our scripts read."""
    main = infra.main
    problems = [
        f"{main.rel}:{len(main.lines)}: output {name} is missing"
        for name in REQUIRED_OUTPUTS
        if name not in main.outputs
    ]
    scope = main.doc.get("globals", {}).get("scope", {}).get("value")
    if scope not in ("subscription", "resourceGroup"):
        problems.append(f"{main.rel}:1: targetScope must be 'subscription' or 'resourceGroup'")
    if scope == "subscription" and "AZURE_RESOURCE_GROUP" not in main.outputs:
        problems.append(f"{main.rel}:1: a subscription-scope template must output AZURE_RESOURCE_GROUP")
    return problems


def check_durable_task_scheduler(infra: Infra) -> Problems:
    """The scheduler module is deployed exactly when the backend says so, with the host.json hub name."""
    main = infra.main
    problems: Problems = []
    host = json.loads((infra.root.parent / "host.json").read_text(encoding="utf-8"))
    hub = host["extensions"]["durableTask"].get("hubName")
    schedulers = [
        (sym, m)
        for sym, m in main.modules.items()
        if "durable-task-scheduler" in m.get("detail", {}).get("path", "")
    ]
    if len(schedulers) != 1:
        return [
            f"{main.rel}:1: exactly one Durable Task Scheduler module is expected, found {len(schedulers)}"
        ]
    symbol, module = schedulers[0]
    config = module["config"]
    if set(config) != {"condition", "config"}:
        return [f"{main.where(module)}: module {symbol} must be conditional on the durableBackend parameter"]
    for backend in durable_backends(infra):
        deployed = main.evaluate(config["condition"], {"durableBackend": backend})
        if deployed is not (backend == "DurableTaskScheduler"):
            problems.append(
                f"{main.where(module)}: module {symbol} is deployed={deployed} with durableBackend={backend}"
            )
    # The app settings are evaluated per backend inside api.bicep: it must receive main's parameter as is.
    for api_symbol, api_module in main.modules.items():
        if api_module.get("detail", {}).get("path", "").endswith("app/api.bicep"):
            passed = main.evaluate(api_module["config"].get("params", {}).get("durableBackend"))
            if passed != Ref("durableBackend"):
                problems.append(
                    f"{main.where(api_module, 'durableBackend')}: module {api_symbol} must pass "
                    f"durableBackend: durableBackend, found {expr_text(passed)}"
                )
    passed_hub = main.evaluate(config["config"].get("params", {}).get("taskHubName"))
    default_hub = main.parameters.get("taskHubName", {}).get("default")
    if passed_hub != Ref("taskHubName") or default_hub != hub:
        problems.append(
            f"{main.where(main.parameters.get('taskHubName', module))}: the scheduler's task hub "
            f"({default_hub}) must be host.json's hubName ({hub}), passed as taskHubName"
        )
    return problems


ALL_CHECKS: tuple[Callable[[Infra], Problems], ...] = (
    check_storage,
    check_no_keys_or_connection_strings,
    check_app_settings_contract,
    check_identity_based_storage,
    check_key_vault_references,
    check_function_app,
    check_easy_auth,
    check_monitoring,
    check_key_vault,
    check_role_assignments,
    check_modules_wiring,
    check_outputs,
    check_durable_task_scheduler,
)


def run_all(infra: Infra) -> Problems:
    """Every check's problems, in order."""
    return [problem for check in ALL_CHECKS for problem in check(infra)]


def repo_file(*parts: str) -> Path:
    """A path under the repository root."""
    return REPO_ROOT.joinpath(*parts)
