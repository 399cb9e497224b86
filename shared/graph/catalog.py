"""The one declarative catalog of the Intune policy types we capture and restore.

Each :class:`PolicyType` says, as data, where a type lives in Microsoft Graph, how to read one object in full
(the extra calls Graph needs beyond the list), how its assignments are read and written, which properties to
strip before writing it back, which application permissions it needs and in which order it is restored.
Code that reads or writes policies is generic over these entries; there is no module per type.

Facts come from ``graph_intune.md`` (§1 per-type notes, §2 restore semantics, §4 permissions).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal

__all__ = [
    "CATALOG",
    "COMMON_STRIP_ON_RESTORE",
    "DEFAULT_RESTORE_ORDER",
    "GROUPS_COLLECTION",
    "AssignmentSpec",
    "ItemGet",
    "PerElementSubCollection",
    "PolicyType",
    "ReadStep",
    "SubCollection",
    "get_policy_type",
    "permission_for",
    "restore_sequence",
    "throttle_family_for",
]

DEFAULT_RESTORE_ORDER: Final = 1000

GROUPS_COLLECTION: Final = "groups"
GROUPS_READ_PERMISSION: Final = "Group.Read.All"
GROUPS_WRITE_PERMISSION: Final = "Group.ReadWrite.All"

# Server-managed properties no type accepts on POST/PATCH (IM's generic list plus IBR/ICD common keys).
COMMON_STRIP_ON_RESTORE: Final[tuple[str, ...]] = (
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "modifiedDateTime",
    "version",
    "supportsScopeTags",
    "isAssigned",
    "assignments",
    "assignments@odata.context",
    "@odata.context",
)

_EMPTY: Final[Mapping[str, str]] = MappingProxyType({})


def _empty() -> Mapping[str, str]:
    return _EMPTY


def _params(**values: str) -> Mapping[str, str]:
    return MappingProxyType(dict(values))


@dataclass(frozen=True)
class ItemGet:
    """GET the item itself: some content only comes back on a single GET (script bodies) or with ``$expand``.

    The response replaces the listed object (it is a superset of it).
    """

    params: Mapping[str, str] = field(default_factory=_empty)


@dataclass(frozen=True)
class SubCollection:
    """GET ``{item}/{path}`` following every ``@odata.nextLink``; the values are stored under ``into``.

    ``settings`` marks the sub-collection whose length is compared with the count Graph reports.
    """

    path: str
    into: str
    params: Mapping[str, str] = field(default_factory=_empty)
    settings: bool = False


@dataclass(frozen=True)
class PerElementSubCollection:
    """For each element already captured under ``parent``, GET ``{item}/{parent}/{element id}/{path}``.

    Used for GPO presentation values, which hang below each definition value.
    """

    parent: str
    path: str
    into: str
    params: Mapping[str, str] = field(default_factory=_empty)


ReadStep = ItemGet | SubCollection | PerElementSubCollection


@dataclass(frozen=True)
class AssignmentSpec:
    """How a type's assignments are read and written.

    Attributes:
        read_path: GET ``{item}/{read_path}`` (paged).
        write_path: POST ``{item}/{write_path}``: the ``assign`` action, or the ``assignments`` collection
            for types that take one assignment per request.
        body_key: key of the assignment list in the ``assign`` body.
        write_status: the success status Graph usually answers with (callers accept any 2xx: the
            documented codes differ between types and API versions).
        one_per_request: POST each assignment on its own (``{"target": ...}``) instead of one ``assign``.
    """

    read_path: str = "assignments"
    write_path: str = "assign"
    body_key: str = "assignments"
    write_status: int = 200
    one_per_request: bool = False


@dataclass(frozen=True)
class PolicyType:
    """One Intune policy type, described as data.

    Attributes:
        key: the catalog key used across the project (``settingsCatalog``, ``powerShellScript``...).
        display_name: human name for reports.
        collection: list path below the API version, e.g. ``deviceManagement/configurationPolicies``.
        versions: API versions that serve the type; ``api_version`` is the one we use.
        list_params: query parameters of the list call (``$filter`` for types sharing a collection).
        include_odata_types: keep only list items of these ``@odata.type`` (mixed collections that
            cannot be filtered server-side).
        exclude_when: drop list items whose property equals the value (built-in and global objects).
        item_collections: ``@odata.type`` -> collection for reading/writing one item when the list
            collection is not the item collection (app protection: the platform collections).
        read_steps: extra calls that make the captured object complete, in order.
        name_property: ``name``, ``displayName`` or ``profileName`` (branding profiles).
        settings_count_property: property holding the count Graph reports for the settings sub-collection.
        assignments: how assignments are read and written; ``None`` when the type has none.
        update_method: ``PATCH`` or ``PUT`` (settings catalog replaces the whole object).
        create_path: POST target relative to the version when it is not the collection
            (``{templateId}`` is filled from the captured object).
        child_writes: sub-resources written with their own calls after the object exists,
            as ``property -> POST path relative to the item``.
        strip_on_restore: properties removed before POST (in addition to ``COMMON_STRIP_ON_RESTORE``).
        strip_on_update: further properties removed before PATCH/PUT.
        read_permission / write_permission: the application permission the routes need.
        throttle_family: Intune's throttling family of the collection (limits are per family).
        restore_order: lower first (foundations at the front); deletes go in reverse.
        foundation: referenced by other policies, so restored before them and mapped by name.
        backup_only: why the type is captured but never written back (``None``: restorable).
        builtin_when: items matching every ``property -> value`` are captured for reference but never
            written (built-in objects that exist in every tenant and cannot change).
        builtin_reason: why such items are not written.
        default_when: items matching every ``property -> value`` are the tenant's defaults: they exist in
            every tenant, so a restore updates them in place but never creates one, and Graph refuses to
            assign them (default enrollment configurations apply to everyone).
        exclude_odata_types: drop list items of these ``@odata.type`` (subtypes another entry captures).
        singleton: the collection path is one object, not a collection: the list is that object alone,
            it is never created or deleted, only updated in place.
        update_path: PATCH target relative to the version when it is not the item (tenant settings are
            written through ``deviceManagement``).
        update_wrapper: property the update body is nested under at ``update_path``.
        redact_on_capture: properties holding tenant-bound secrets; the capture keeps them as ``None``.
    """

    key: str
    display_name: str
    collection: str
    versions: tuple[str, ...]
    read_permission: str
    write_permission: str
    throttle_family: str
    api_version: str = "beta"
    list_params: Mapping[str, str] = field(default_factory=_empty)
    include_odata_types: tuple[str, ...] = ()
    exclude_when: Mapping[str, object] = field(default_factory=_empty)
    item_collections: Mapping[str, str] = field(default_factory=_empty)
    read_steps: tuple[ReadStep, ...] = ()
    name_property: Literal[
        "name", "displayName", "profileName", "tokenName", "appleIdentifier", "ownerOrganizationName"
    ] = "displayName"
    settings_count_property: str | None = None
    assignments: AssignmentSpec | None = field(default_factory=AssignmentSpec)
    update_method: Literal["PATCH", "PUT"] = "PATCH"
    create_path: str | None = None
    child_writes: Mapping[str, str] = field(default_factory=_empty)
    strip_on_restore: tuple[str, ...] = ()
    strip_on_update: tuple[str, ...] = ()
    restore_order: int = DEFAULT_RESTORE_ORDER
    foundation: bool = False
    backup_only: str | None = None
    builtin_when: Mapping[str, object] = field(default_factory=_empty)
    builtin_reason: str | None = None
    default_when: Mapping[str, object] = field(default_factory=_empty)
    exclude_odata_types: tuple[str, ...] = ()
    singleton: bool = False
    update_path: str | None = None
    update_wrapper: str | None = None
    redact_on_capture: tuple[str, ...] = ()

    @property
    def capabilities(self) -> dict[str, object]:
        """What a restore can do with this type: create, update, assign, or nothing (and why)."""
        writable = self.backup_only is None
        return {
            "capture": True,
            "create": writable,
            "update": writable,
            "assignments": writable and self.assignments is not None,
            "backupOnly": not writable,
            "backupOnlyReason": self.backup_only,
            "builtInItemsBackupOnly": self.builtin_reason,
        }

    def can_assign(self, item: Mapping[str, object]) -> bool:
        """Whether a restore may write this item's assignments."""
        if self.assignments is None:
            return False
        return not self.is_default(item)

    def is_default(self, item: Mapping[str, object]) -> bool:
        """Whether an item is one of the tenant's defaults (see ``default_when``)."""
        return bool(self.default_when) and all(item.get(p) == v for p, v in self.default_when.items())

    def is_builtin(self, item: Mapping[str, object]) -> bool:
        """Whether a captured item is a built-in that a restore must leave alone."""
        return bool(self.builtin_when) and all(item.get(p) == v for p, v in self.builtin_when.items())

    def list_url(self) -> str:
        """Relative URL of the list call (with the API version)."""
        return f"/{self.api_version}/{self.collection}"

    def item_url(self, policy_id: str, odata_type: str | None = None) -> str:
        """Relative URL of one object; ``odata_type`` picks the platform collection where it matters."""
        if self.singleton:
            return self.list_url()
        collection = self.item_collection(odata_type)
        return f"/{self.api_version}/{collection}/{policy_id}"

    def update_url(self, policy_id: str = "", odata_type: str | None = None) -> str:
        """Relative URL an update is sent to: ``update_path`` when set, else the item itself."""
        if self.update_path is not None:
            return f"/{self.api_version}/{self.update_path}"
        return self.item_url(policy_id, odata_type)

    def update_body(self, body: Mapping[str, object]) -> dict[str, object]:
        """An update body as the update URL takes it (nested under ``update_wrapper`` when set)."""
        return {self.update_wrapper: dict(body)} if self.update_wrapper else dict(body)

    def item_collection(self, odata_type: str | None = None) -> str:
        """Collection that serves single objects of this type (and takes POSTs)."""
        if self.item_collections:
            if odata_type is None or odata_type not in self.item_collections:
                raise ValueError(f"{self.key}: unknown or missing @odata.type {odata_type!r}")
            return self.item_collections[odata_type]
        return self.collection

    def keeps(self, item: Mapping[str, object]) -> bool:
        """Whether a list item belongs to this type (client-side filters Graph cannot apply)."""
        if self.include_odata_types and item.get("@odata.type") not in self.include_odata_types:
            return False
        if self.exclude_odata_types and item.get("@odata.type") in self.exclude_odata_types:
            return False
        return all(item.get(prop) != value for prop, value in self.exclude_when.items())

    @property
    def all_strip_on_restore(self) -> tuple[str, ...]:
        """Every property removed before a create."""
        return COMMON_STRIP_ON_RESTORE + self.strip_on_restore


_CONFIG_READ = "DeviceManagementConfiguration.Read.All"
_CONFIG_WRITE = "DeviceManagementConfiguration.ReadWrite.All"
# Since 31 July 2025 scripts need their own permission instead of DeviceManagementConfiguration.*.
_SCRIPTS_READ = "DeviceManagementScripts.Read.All"
_SCRIPTS_WRITE = "DeviceManagementScripts.ReadWrite.All"
_APPS_READ = "DeviceManagementApps.Read.All"
_APPS_WRITE = "DeviceManagementApps.ReadWrite.All"
_SERVICE_READ = "DeviceManagementServiceConfig.Read.All"
_SERVICE_WRITE = "DeviceManagementServiceConfig.ReadWrite.All"
_RBAC_READ = "DeviceManagementRBAC.Read.All"
_RBAC_WRITE = "DeviceManagementRBAC.ReadWrite.All"
_DEVICES_READ = "DeviceManagementManagedDevices.Read.All"
_DEVICES_WRITE = "DeviceManagementManagedDevices.ReadWrite.All"
# Entra Conditional Access objects: read with Policy.Read.All, written with the Conditional Access permission.
_POLICY_READ = "Policy.Read.All"
_CA_WRITE = "Policy.ReadWrite.ConditionalAccess"
_COMPLIANCE_ACTIONS = "scheduledActionsForRule($expand=scheduledActionConfigurations)"

_UPDATE_RING_TYPE = "microsoft.graph.windowsUpdateForBusinessConfiguration"
_IOS_UPDATE = "#microsoft.graph.iosUpdateConfiguration"
_MACOS_UPDATE = "#microsoft.graph.macOSSoftwareUpdateConfiguration"
_IOS_MAM = "#microsoft.graph.iosManagedAppProtection"
_ANDROID_MAM = "#microsoft.graph.androidManagedAppProtection"

# Apps Graph can create from metadata alone: store listings, web links and Microsoft-published suites.
_STORE_AND_WEB_APPS: Final[tuple[str, ...]] = tuple(f"#microsoft.graph.{t}" for t in (
    "webApp", "windowsWebApp", "iosStoreApp", "androidStoreApp", "winGetApp", "officeSuiteApp",
    "macOSOfficeSuiteApp", "windowsMicrosoftEdgeApp", "macOSMicrosoftEdgeApp", "macOSMicrosoftDefenderApp",
))
# Apps whose content is an uploaded binary or whose licence is synced from a store token.
_CONTENT_AND_SYNCED_APPS: Final[tuple[str, ...]] = tuple(f"#microsoft.graph.{t}" for t in (
    "win32LobApp", "win32CatalogApp", "windowsMobileMSI", "windowsAppX", "windowsUniversalAppX",
    "iosLobApp", "androidLobApp", "macOSLobApp", "macOSDmgApp", "macOSPkgApp", "managedIOSLobApp",
    "managedAndroidLobApp", "iosVppApp", "macOsVppApp", "androidManagedStoreApp",
))
# Server-computed app state, never accepted on a write.
_APP_READ_ONLY: Final[tuple[str, ...]] = (
    "uploadState", "publishingState", "dependentAppCount", "supersedingAppCount", "supersededAppCount",
    "committedContentVersion", "size", "categories", "categories@odata.context",
)
_WIP_APPLOCKER = "protectedAppLockerFiles,exemptAppLockerFiles"
# Each file is posted to its collection once the policy exists.
_WIP_APPLOCKER_WRITES = _params(protectedAppLockerFiles="protectedAppLockerFiles",
                                exemptAppLockerFiles="exemptAppLockerFiles")
_WIP_STRIP: Final[tuple[str, ...]] = (
    "protectedAppLockerFiles", "protectedAppLockerFiles@odata.context", "exemptAppLockerFiles",
    "exemptAppLockerFiles@odata.context", "deployedAppCount",
)

_TYPES: tuple[PolicyType, ...] = (
    PolicyType(
        key="scopeTag",
        display_name="Role scope tags",
        collection="deviceManagement/roleScopeTags",
        throttle_family="rbac",
        versions=("beta",),
        read_permission=_RBAC_READ,
        write_permission=_RBAC_WRITE,
        # The built-in "0" (Default) tag exists in every tenant and is immutable.
        exclude_when=MappingProxyType({"isBuiltIn": True}),
        strip_on_restore=("isBuiltIn",),
        restore_order=10,
        foundation=True,
    ),
    PolicyType(
        key="assignmentFilter",
        display_name="Assignment filters",
        collection="deviceManagement/assignmentFilters",
        throttle_family="deviceConfiguration",
        versions=("beta",),
        read_permission=_CONFIG_READ,
        write_permission=_CONFIG_WRITE,
        assignments=None,
        strip_on_restore=("payloads",),
        strip_on_update=("platform",),
        restore_order=15,
        foundation=True,
    ),
    PolicyType(
        key="notificationTemplate",
        display_name="Notification message templates",
        collection="deviceManagement/notificationMessageTemplates",
        throttle_family="notifications",
        versions=("v1.0", "beta"),
        read_permission=_SERVICE_READ,
        write_permission=_SERVICE_WRITE,
        read_steps=(ItemGet(_params(**{"$expand": "localizedNotificationMessages"})),),
        assignments=None,
        # Locales are POSTed one by one after the template exists.
        child_writes=_params(localizedNotificationMessages="localizedNotificationMessages"),
        strip_on_restore=(
            "defaultLocale",
            "localizedNotificationMessages",
            "localizedNotificationMessages@odata.context",
        ),
        strip_on_update=("defaultLocale",),
        restore_order=40,
        foundation=True,
    ),
    PolicyType(
        key="settingsCatalog",
        display_name="Settings catalog",
        collection="deviceManagement/configurationPolicies",
        throttle_family="deviceConfigV2",
        versions=("beta",),
        read_permission=_CONFIG_READ,
        write_permission=_CONFIG_WRITE,
        # Settings are paged at 25; backups that ignore nextLink silently lose settings.
        read_steps=(SubCollection("settings", "settings", settings=True),),
        name_property="name",
        settings_count_property="settingCount",
        assignments=AssignmentSpec(write_status=200),
        update_method="PUT",
        strip_on_restore=("settingCount", "creationSource", "settings@odata.context"),
    ),
    PolicyType(
        key="deviceConfiguration",
        display_name="Device configuration profiles",
        collection="deviceManagement/deviceConfigurations",
        throttle_family="deviceConfiguration",
        versions=("v1.0", "beta"),
        read_permission=_CONFIG_READ,
        write_permission=_CONFIG_WRITE,
        list_params=_params(**{"$filter": f"not isof('{_UPDATE_RING_TYPE}')"}),
        # Apple update policies live in this collection too; their own entries capture them.
        exclude_odata_types=(_IOS_UPDATE, _MACOS_UPDATE),
        assignments=AssignmentSpec(write_status=200),
    ),
    PolicyType(
        key="updateRing",
        display_name="Windows Update rings",
        collection="deviceManagement/deviceConfigurations",
        throttle_family="deviceConfiguration",
        versions=("v1.0", "beta"),
        read_permission=_CONFIG_READ,
        write_permission=_CONFIG_WRITE,
        list_params=_params(**{"$filter": f"isof('{_UPDATE_RING_TYPE}')"}),
        assignments=AssignmentSpec(write_status=200),
        strip_on_update=(
            "qualityUpdatesPauseStartDate",
            "featureUpdatesPauseStartDate",
            "qualityUpdatesWillBeRolledBack",
            "featureUpdatesWillBeRolledBack",
        ),
    ),
    PolicyType(
        key="compliancePolicy",
        display_name="Compliance policies",
        collection="deviceManagement/deviceCompliancePolicies",
        throttle_family="deviceConfiguration",
        versions=("v1.0", "beta"),
        read_permission=_CONFIG_READ,
        write_permission=_CONFIG_WRITE,
        # The plain GET omits scheduled actions and the navigation GET answers 400: expand on the item.
        read_steps=(
            ItemGet(
                _params(**{"$expand": "scheduledActionsForRule($expand=scheduledActionConfigurations)"})
            ),
        ),
        assignments=AssignmentSpec(write_status=200),
        child_writes=_params(scheduledActionsForRule="scheduleActionsForRules"),
        strip_on_restore=("scheduledActionsForRule@odata.context",),
        strip_on_update=("scheduledActionsForRule",),
    ),
    PolicyType(
        key="administrativeTemplate",
        display_name="Administrative templates",
        collection="deviceManagement/groupPolicyConfigurations",
        throttle_family="deviceConfiguration",
        versions=("beta",),
        read_permission=_CONFIG_READ,
        write_permission=_CONFIG_WRITE,
        read_steps=(
            SubCollection(
                "definitionValues", "definitionValues", _params(**{"$expand": "definition"}), settings=True
            ),
            PerElementSubCollection(
                "definitionValues", "presentationValues", "presentationValues",
                _params(**{"$expand": "presentation"}),
            ),
        ),
        assignments=AssignmentSpec(write_status=200),
        child_writes=_params(definitionValues="updateDefinitionValues"),
        strip_on_restore=("definitionValues", "policyConfigurationIngestionType"),
    ),
    PolicyType(
        key="powerShellScript",
        display_name="PowerShell scripts",
        collection="deviceManagement/deviceManagementScripts",
        throttle_family="devices",
        versions=("beta",),
        read_permission=_SCRIPTS_READ,
        write_permission=_SCRIPTS_WRITE,
        # The list returns scriptContent null; only the single GET carries the base64 body.
        read_steps=(ItemGet(),),
        assignments=AssignmentSpec(body_key="deviceManagementScriptAssignments", write_status=204),
    ),
    PolicyType(
        key="remediationScript",
        display_name="Remediation scripts",
        collection="deviceManagement/deviceHealthScripts",
        throttle_family="devices",
        versions=("beta",),
        read_permission=_SCRIPTS_READ,
        write_permission=_SCRIPTS_WRITE,
        # Microsoft-published scripts are in every tenant and are not ours to back up.
        exclude_when=MappingProxyType({"isGlobalScript": True}),
        read_steps=(ItemGet(),),
        assignments=AssignmentSpec(body_key="deviceHealthScriptAssignments", write_status=204),
        strip_on_restore=("isGlobalScript", "highestAvailableVersion", "deviceHealthScriptType"),
    ),
    PolicyType(
        key="endpointSecurityIntent",
        display_name="Endpoint security (intents)",
        collection="deviceManagement/intents",
        throttle_family="deviceIntent",
        versions=("beta",),
        read_permission=_CONFIG_READ,
        write_permission=_CONFIG_WRITE,
        read_steps=(SubCollection("settings", "settings", settings=True),),
        assignments=AssignmentSpec(write_status=204),
        # Intents are only created from a template; settings change through updateSettings.
        create_path="deviceManagement/templates/{templateId}/createInstance",
        child_writes=_params(settings="updateSettings"),
        strip_on_restore=(
            "settings", "settings@odata.context", "@odata.type", "isMigratingToConfigurationPolicy",
        ),
    ),
    PolicyType(
        key="featureUpdateProfile",
        display_name="Feature update profiles",
        collection="deviceManagement/windowsFeatureUpdateProfiles",
        throttle_family="updates",
        versions=("beta",),
        read_permission=_CONFIG_READ,
        write_permission=_CONFIG_WRITE,
        assignments=AssignmentSpec(write_status=204),
        strip_on_restore=("deployableContentDisplayName", "endOfSupportDate"),
    ),
    PolicyType(
        key="qualityUpdateProfile",
        display_name="Quality update profiles",
        collection="deviceManagement/windowsQualityUpdateProfiles",
        throttle_family="updates",
        versions=("beta",),
        read_permission=_CONFIG_READ,
        write_permission=_CONFIG_WRITE,
        assignments=AssignmentSpec(write_status=204),
        strip_on_restore=("releaseDateDisplayName", "deployableContentDisplayName"),
    ),
    PolicyType(
        key="appProtectionPolicy",
        display_name="App protection policies",
        collection="deviceAppManagement/managedAppPolicies",
        throttle_family="managedApplications",
        versions=("v1.0", "beta"),
        read_permission=_APPS_READ,
        write_permission=_APPS_WRITE,
        # The mixed list also returns app configurations and cannot be filtered server-side.
        include_odata_types=(_IOS_MAM, _ANDROID_MAM),
        item_collections=_params(**{
            _IOS_MAM: "deviceAppManagement/iosManagedAppProtections",
            _ANDROID_MAM: "deviceAppManagement/androidManagedAppProtections",
        }),
        read_steps=(ItemGet(_params(**{"$expand": "apps"})),),
        assignments=AssignmentSpec(write_status=204),
        child_writes=_params(apps="targetApps"),
        strip_on_restore=("apps", "apps@odata.context", "deployedAppCount", "isAssigned"),
    ),
    PolicyType(
        key="appConfigurationPolicy",
        display_name="App configuration policies (managed apps)",
        collection="deviceAppManagement/targetedManagedAppConfigurations",
        throttle_family="managedApplications",
        versions=("v1.0", "beta"),
        read_permission=_APPS_READ,
        write_permission=_APPS_WRITE,
        read_steps=(ItemGet(_params(**{"$expand": "apps"})),),
        assignments=AssignmentSpec(write_status=204),
        child_writes=_params(apps="targetApps"),
        strip_on_restore=("apps", "apps@odata.context", "deployedAppCount"),
    ),
    PolicyType(
        key="enrollmentConfiguration",
        display_name="Enrollment configurations",
        collection="deviceManagement/deviceEnrollmentConfigurations",
        throttle_family="enrollment",
        versions=("v1.0", "beta"),
        read_permission=_SERVICE_READ,
        write_permission=_SERVICE_WRITE,
        assignments=AssignmentSpec(body_key="enrollmentConfigurationAssignments", write_status=204),
        # priority changes only through setPriority; the priority-0 defaults are PATCH-only.
        child_writes=_params(priority="setPriority"),
        # Graph gives a new configuration the next free priority whatever the body says: setPriority after.
        strip_on_restore=("priority",),
        strip_on_update=("priority", "deviceEnrollmentConfigurationType", "platformType"),
        # The defaults (priority 0) apply to everyone; Graph refuses to assign them.
        default_when=MappingProxyType({"priority": 0}),
    ),
    PolicyType(
        key="autopilotProfile",
        display_name="Autopilot deployment profiles",
        collection="deviceManagement/windowsAutopilotDeploymentProfiles",
        throttle_family="enrollment",
        versions=("beta",),
        read_permission=_SERVICE_READ,
        write_permission=_SERVICE_WRITE,
        read_steps=(ItemGet(),),
        assignments=AssignmentSpec(
            write_path="assignments", body_key="target", write_status=201, one_per_request=True
        ),
        strip_on_update=("managementServiceAppId",),
    ),
    PolicyType(
        key="deviceCategory",
        display_name="Device categories",
        collection="deviceManagement/deviceCategories",
        throttle_family="enrollment",
        versions=("v1.0", "beta"),
        read_permission=_DEVICES_READ,
        write_permission=_DEVICES_WRITE,
        assignments=None,
    ),
    # ---------------------------------------------------------------- compliance and scripts
    PolicyType(
        key="complianceSettingsPolicy",
        display_name="Compliance policies (settings catalog)",
        collection="deviceManagement/compliancePolicies",
        throttle_family="deviceConfigV2",
        versions=("beta",),
        read_permission=_CONFIG_READ,
        write_permission=_CONFIG_WRITE,
        # Scheduled actions come only with $expand on the item; settings are paged at 25 like the
        # settings catalog (the item GET replaces the listed object, so it runs first).
        read_steps=(
            ItemGet(_params(**{"$expand": _COMPLIANCE_ACTIONS})),
            SubCollection("settings", "settings", settings=True),
        ),
        name_property="name",
        settings_count_property="settingCount",
        assignments=AssignmentSpec(write_status=200),
        update_method="PUT",
        child_writes=_params(scheduledActionsForRule="setScheduledActions"),
        strip_on_restore=(
            "settingCount", "creationSource", "settings@odata.context",
            "scheduledActionsForRule@odata.context",
        ),
        strip_on_update=("scheduledActionsForRule",),
    ),
    PolicyType(
        key="complianceScript",
        display_name="Compliance discovery scripts",
        collection="deviceManagement/deviceComplianceScripts",
        throttle_family="devices",
        versions=("beta",),
        read_permission=_SCRIPTS_READ,
        write_permission=_SCRIPTS_WRITE,
        # The list returns detectionScriptContent null; the single GET carries the base64 body.
        read_steps=(ItemGet(),),
        assignments=AssignmentSpec(body_key="deviceHealthScriptAssignments", write_status=204),
        strip_on_restore=("publisher",),
        # Compliance policies reference their discovery scripts: restore the scripts before them.
        restore_order=80,
    ),
    PolicyType(
        key="macOSShellScript",
        display_name="macOS shell scripts",
        collection="deviceManagement/deviceShellScripts",
        throttle_family="devices",
        versions=("beta",),
        read_permission=_SCRIPTS_READ,
        write_permission=_SCRIPTS_WRITE,
        read_steps=(ItemGet(),),
        assignments=AssignmentSpec(body_key="deviceManagementScriptAssignments", write_status=204),
    ),
    PolicyType(
        key="customAttributeScript",
        display_name="macOS custom attribute scripts",
        collection="deviceManagement/deviceCustomAttributeShellScripts",
        throttle_family="devices",
        versions=("beta",),
        read_permission=_SCRIPTS_READ,
        write_permission=_SCRIPTS_WRITE,
        read_steps=(ItemGet(),),
        assignments=AssignmentSpec(body_key="deviceManagementScriptAssignments", write_status=204),
        # The attribute's name and type are fixed once created.
        strip_on_update=("customAttributeName", "customAttributeType"),
    ),
    # ---------------------------------------------------------------- updates
    PolicyType(
        key="driverUpdateProfile",
        display_name="Windows driver update profiles",
        collection="deviceManagement/windowsDriverUpdateProfiles",
        throttle_family="updates",
        versions=("beta",),
        read_permission=_CONFIG_READ,
        write_permission=_CONFIG_WRITE,
        # The inventory holds each driver's approval (manual profiles); it is captured for reference,
        # a restore recreates the profile and approvals follow the target tenant's own inventory.
        read_steps=(SubCollection("driverInventories", "driverInventories"),),
        assignments=AssignmentSpec(write_status=204),
        strip_on_restore=(
            "driverInventories", "driverInventories@odata.context", "deviceReporting", "newUpdates",
            "inventorySyncStatus",
        ),
    ),
    # ---------------------------------------------------------------- tenant administration
    PolicyType(
        key="roleDefinition",
        display_name="Intune role definitions",
        collection="deviceManagement/roleDefinitions",
        throttle_family="rbac",
        versions=("v1.0", "beta"),
        read_permission=_RBAC_READ,
        write_permission=_RBAC_WRITE,
        assignments=None,
        builtin_when=MappingProxyType({"isBuiltIn": True}),
        builtin_reason="built-in roles exist in every tenant with the same ids and cannot be changed",
        strip_on_restore=("isBuiltIn", "isBuiltInRoleDefinition"),
        restore_order=20,
    ),
    PolicyType(
        key="roleAssignment",
        display_name="Intune role assignments",
        collection="deviceManagement/roleAssignments",
        throttle_family="rbac",
        versions=("v1.0", "beta"),
        read_permission=_RBAC_READ,
        write_permission=_RBAC_WRITE,
        # Which role and which scope tags are navigation properties: expand them on the item.
        read_steps=(ItemGet(_params(**{"$expand": "roleDefinition($select=id,displayName),roleScopeTags"})),),
        assignments=None,
        # Written back with roleDefinition@odata.bind and roleScopeTags@odata.bind.
        strip_on_restore=(
            "roleDefinition", "roleDefinition@odata.context", "roleScopeTags",
            "roleScopeTags@odata.context",
        ),
        restore_order=25,
    ),
    PolicyType(
        key="termsAndConditions",
        display_name="Terms and conditions",
        collection="deviceManagement/termsAndConditions",
        throttle_family="companyTerms",
        versions=("v1.0", "beta"),
        read_permission=_SERVICE_READ,
        write_permission=_SERVICE_WRITE,
        # No assign action: each assignment is POSTed to /assignments on its own.
        assignments=AssignmentSpec(
            write_path="assignments", body_key="target", write_status=201, one_per_request=True
        ),
        strip_on_restore=("acceptanceStatuses",),
    ),
    PolicyType(
        key="brandingProfile",
        display_name="Company Portal branding profiles",
        collection="deviceManagement/intuneBrandingProfiles",
        throttle_family="companyTerms",
        versions=("beta",),
        read_permission=_APPS_READ,
        write_permission=_APPS_WRITE,
        # Logos and the landing page image only come back on the single GET.
        read_steps=(ItemGet(),),
        name_property="profileName",
        assignments=AssignmentSpec(write_status=204),
        # The default profile exists in every tenant: it is updated in place, never created or assigned.
        strip_on_restore=("isDefaultProfile",),
    ),
    PolicyType(
        key="deviceManagementPartner",
        display_name="Device management partners",
        collection="deviceManagement/deviceManagementPartners",
        throttle_family="enrollment",
        versions=("v1.0", "beta"),
        read_permission=_SERVICE_READ,
        write_permission=_SERVICE_WRITE,
        assignments=None,
        backup_only="the partner connection is made from the partner's console with tenant-bound "
                    "credentials; a copy written through Graph would not be connected",
    ),
    PolicyType(
        key="remoteAssistancePartner",
        display_name="Remote assistance partners",
        collection="deviceManagement/remoteAssistancePartners",
        throttle_family="enrollment",
        versions=("v1.0", "beta"),
        read_permission=_SERVICE_READ,
        write_permission=_SERVICE_WRITE,
        assignments=None,
        backup_only="onboarding is a tenant-bound handshake with the partner (beginOnboarding); a "
                    "copy written through Graph would not be onboarded",
    ),
    PolicyType(
        key="reusablePolicySetting",
        display_name="Reusable policy settings",
        collection="deviceManagement/reusablePolicySettings",
        throttle_family="deviceConfigV2",
        versions=("beta",),
        read_permission=_CONFIG_READ,
        write_permission=_CONFIG_WRITE,
        assignments=None,
        strip_on_restore=("referencingConfigurationPolicyCount",),
        # Settings catalog policies reference these groups by id.
        restore_order=70,
    ),
    PolicyType(
        key="policySet",
        display_name="Policy sets",
        collection="deviceAppManagement/policySets",
        throttle_family="deviceConfiguration",
        versions=("beta",),
        read_permission=_CONFIG_READ,
        write_permission=_CONFIG_WRITE,
        read_steps=(ItemGet(_params(**{"$expand": "items"})),),
        # Items and assignments both change through the update action.
        assignments=AssignmentSpec(write_path="update", write_status=204),
        child_writes=_params(items="update"),
        strip_on_restore=("status", "errorCode", "items@odata.context"),
        strip_on_update=("items",),
        # Policy sets reference every other kind of policy: restore them last.
        restore_order=2000,
    ),
    # ---------------------------------------------------------------- Entra
    PolicyType(
        key="namedLocation",
        display_name="Conditional Access named locations",
        collection="identity/conditionalAccess/namedLocations",
        throttle_family="identity",
        versions=("v1.0", "beta"),
        api_version="v1.0",
        read_permission=_POLICY_READ,
        write_permission=_CA_WRITE,
        assignments=None,
        restore_order=50,
    ),
    PolicyType(
        key="authenticationStrengthPolicy",
        display_name="Authentication strengths",
        collection="policies/authenticationStrengthPolicies",
        throttle_family="identity",
        versions=("v1.0", "beta"),
        api_version="v1.0",
        read_permission=_POLICY_READ,
        write_permission=_CA_WRITE,
        # The three built-in strengths are in every tenant with fixed ids and are immutable.
        exclude_when=MappingProxyType({"policyType": "builtIn"}),
        read_steps=(SubCollection("combinationConfigurations", "combinationConfigurations"),),
        assignments=None,
        child_writes=_params(allowedCombinations="updateAllowedCombinations"),
        strip_on_restore=(
            "policyType", "requirementsSatisfied", "combinationConfigurations",
            "combinationConfigurations@odata.context",
        ),
        strip_on_update=("allowedCombinations",),
        restore_order=55,
    ),
    PolicyType(
        key="conditionalAccessPolicy",
        display_name="Conditional Access policies",
        collection="identity/conditionalAccess/policies",
        throttle_family="identity",
        versions=("v1.0", "beta"),
        api_version="v1.0",
        read_permission=_POLICY_READ,
        write_permission=_CA_WRITE,
        # Targets live in the policy's conditions (users, groups, locations), not in assignments.
        assignments=None,
        strip_on_restore=("templateId",),
    ),
    # ---------------------------------------------------------------- apps
    PolicyType(
        key="mobileAppCategory",
        display_name="App categories",
        collection="deviceAppManagement/mobileAppCategories",
        throttle_family="applications",
        versions=("v1.0", "beta"),
        read_permission=_APPS_READ,
        write_permission=_APPS_WRITE,
        assignments=None,
        # Apps are filed under categories: restore the categories before the apps.
        restore_order=58,
    ),
    PolicyType(
        key="mobileApp",
        display_name="Apps (store, web and Microsoft 365)",
        collection="deviceAppManagement/mobileApps",
        throttle_family="applications",
        versions=("v1.0", "beta"),
        read_permission=_APPS_READ,
        write_permission=_APPS_WRITE,
        # The list also holds every tenant's built-in managed store apps and apps with uploaded content.
        include_odata_types=_STORE_AND_WEB_APPS,
        # largeIcon and the categories only come back on the single GET.
        read_steps=(ItemGet(_params(**{"$expand": "categories"})),),
        assignments=AssignmentSpec(body_key="mobileAppAssignments", write_status=204),
        strip_on_restore=_APP_READ_ONLY,
        # Categories are references to the tenant's categories, matched by name (app categories come first).
        child_writes=_params(categories="categories/$ref"),
        restore_order=60,
    ),
    PolicyType(
        key="contentApp",
        display_name="Apps with uploaded content or store-synced licences",
        collection="deviceAppManagement/mobileApps",
        throttle_family="applications",
        versions=("v1.0", "beta"),
        read_permission=_APPS_READ,
        write_permission=_APPS_WRITE,
        include_odata_types=_CONTENT_AND_SYNCED_APPS,
        read_steps=(ItemGet(_params(**{"$expand": "categories"})),),
        assignments=AssignmentSpec(body_key="mobileAppAssignments", write_status=204),
        strip_on_restore=_APP_READ_ONLY,
        restore_order=60,
        backup_only="the app binary is uploaded as encrypted content that Graph never returns, and VPP "
                    "and managed Google Play apps are synced from the tenant's own store tokens; metadata "
                    "and assignments are captured for reference, the app itself is uploaded or synced again",
    ),
    PolicyType(
        key="managedDeviceAppConfiguration",
        display_name="App configuration policies (managed devices)",
        collection="deviceAppManagement/mobileAppConfigurations",
        throttle_family="applications",
        versions=("v1.0", "beta"),
        read_permission=_APPS_READ,
        write_permission=_APPS_WRITE,
        assignments=AssignmentSpec(write_status=204),
        # targetedMobileApps holds app ids: the apps are restored first and the ids remapped by name.
        restore_order=65,
    ),
    PolicyType(
        key="windowsAppProtectionPolicy",
        display_name="App protection policies (Windows)",
        collection="deviceAppManagement/windowsManagedAppProtections",
        throttle_family="managedApplications",
        versions=("beta",),
        read_permission=_APPS_READ,
        write_permission=_APPS_WRITE,
        read_steps=(ItemGet(_params(**{"$expand": "apps"})),),
        assignments=AssignmentSpec(write_status=204),
        child_writes=_params(apps="targetApps"),
        strip_on_restore=("apps", "apps@odata.context", "deployedAppCount"),
    ),
    PolicyType(
        key="wipPolicy",
        display_name="Windows Information Protection (without enrollment)",
        collection="deviceAppManagement/windowsInformationProtectionPolicies",
        throttle_family="managedApplications",
        versions=("v1.0", "beta"),
        read_permission=_APPS_READ,
        write_permission=_APPS_WRITE,
        # AppLocker files are navigation collections: only $expand on the item returns them.
        read_steps=(ItemGet(_params(**{"$expand": _WIP_APPLOCKER})),),
        assignments=AssignmentSpec(write_status=204),
        strip_on_restore=_WIP_STRIP,
        child_writes=_WIP_APPLOCKER_WRITES,
    ),
    PolicyType(
        key="mdmWipPolicy",
        display_name="Windows Information Protection (MDM)",
        collection="deviceAppManagement/mdmWindowsInformationProtectionPolicies",
        throttle_family="managedApplications",
        versions=("v1.0", "beta"),
        read_permission=_APPS_READ,
        write_permission=_APPS_WRITE,
        read_steps=(ItemGet(_params(**{"$expand": _WIP_APPLOCKER})),),
        assignments=AssignmentSpec(write_status=204),
        strip_on_restore=_WIP_STRIP,
        child_writes=_WIP_APPLOCKER_WRITES,
    ),
    # ---------------------------------------------------------------- Apple updates and enrollment
    PolicyType(
        key="iosUpdatePolicy",
        display_name="iOS/iPadOS update policies",
        collection="deviceManagement/deviceConfigurations",
        throttle_family="deviceConfiguration",
        versions=("v1.0", "beta"),
        read_permission=_CONFIG_READ,
        write_permission=_CONFIG_WRITE,
        list_params=_params(**{"$filter": f"isof('{_IOS_UPDATE.lstrip('#')}')"}),
        include_odata_types=(_IOS_UPDATE,),
        assignments=AssignmentSpec(write_status=200),
    ),
    PolicyType(
        key="macOSUpdatePolicy",
        display_name="macOS software update policies",
        collection="deviceManagement/deviceConfigurations",
        throttle_family="deviceConfiguration",
        versions=("beta",),
        read_permission=_CONFIG_READ,
        write_permission=_CONFIG_WRITE,
        list_params=_params(**{"$filter": f"isof('{_MACOS_UPDATE.lstrip('#')}')"}),
        include_odata_types=(_MACOS_UPDATE,),
        assignments=AssignmentSpec(write_status=200),
    ),
    PolicyType(
        key="appleEnrollmentTypeProfile",
        display_name="Apple enrollment type profiles (user-initiated)",
        collection="deviceManagement/appleUserInitiatedEnrollmentProfiles",
        throttle_family="enrollment",
        versions=("beta",),
        read_permission=_SERVICE_READ,
        write_permission=_SERVICE_WRITE,
        # No assign action: each assignment is POSTed to /assignments on its own.
        assignments=AssignmentSpec(
            write_path="assignments", body_key="target", write_status=201, one_per_request=True
        ),
        # platform is fixed at create; priority changes only through setPriority (a create gets the next
        # free one whatever its body says).
        child_writes=_params(priority="setPriority"),
        strip_on_restore=("priority",),
        strip_on_update=("platform", "priority"),
    ),
    PolicyType(
        key="depOnboardingSetting",
        display_name="Apple automated device enrollment (DEP) tokens and their profiles",
        collection="deviceManagement/depOnboardingSettings",
        throttle_family="enrollment",
        versions=("beta",),
        read_permission=_SERVICE_READ,
        write_permission=_SERVICE_WRITE,
        name_property="tokenName",
        # Enrollment profiles hang below their token (ids are "{tokenId}_{profileId}").
        read_steps=(SubCollection("enrollmentProfiles", "enrollmentProfiles"),),
        assignments=None,
        backup_only="the token is issued by Apple Business Manager for a public key Intune generates per "
                    "tenant, and its enrollment profiles only exist below that token; a copy cannot be "
                    "written, the target uploads its own token and profiles are recreated below it",
    ),
    PolicyType(
        key="vppToken",
        display_name="Apple VPP tokens",
        collection="deviceAppManagement/vppTokens",
        throttle_family="enrollment",
        versions=("v1.0", "beta"),
        read_permission=_SERVICE_READ,
        write_permission=_SERVICE_WRITE,
        assignments=None,
        redact_on_capture=("token",),
        backup_only="the token is a secret Apple issues to one Apple Business Manager location and is "
                    "never kept in a backup; the target uploads a token downloaded from Apple",
    ),
    PolicyType(
        key="applePushCertificate",
        display_name="Apple MDM push certificate",
        collection="deviceManagement/applePushNotificationCertificate",
        throttle_family="enrollment",
        versions=("v1.0", "beta"),
        read_permission=_SERVICE_READ,
        write_permission=_SERVICE_WRITE,
        singleton=True,
        name_property="appleIdentifier",
        assignments=None,
        backup_only="Apple signs the certificate for a request Intune generates per tenant, under the "
                    "Apple ID that created it; it is renewed at Apple, a copy would not be trusted",
    ),
    PolicyType(
        key="managedGooglePlay",
        display_name="Managed Google Play binding",
        collection="deviceManagement/androidManagedStoreAccountEnterpriseSettings",
        throttle_family="enrollment",
        versions=("beta",),
        read_permission=_CONFIG_READ,
        write_permission=_CONFIG_WRITE,
        singleton=True,
        name_property="ownerOrganizationName",
        assignments=None,
        backup_only="the binding is made by an admin signing in to Google with a tenant-specific "
                    "enterprise sign-up; Graph cannot write it",
    ),
    # ---------------------------------------------------------------- partners, cleanup, tenant settings
    PolicyType(
        key="compliancePartner",
        display_name="Compliance partners",
        collection="deviceManagement/complianceManagementPartners",
        throttle_family="enrollment",
        versions=("v1.0", "beta"),
        read_permission=_SERVICE_READ,
        write_permission=_SERVICE_WRITE,
        # Every tenant lists each partner on offer with state "unknown" until one is connected.
        exclude_when=MappingProxyType({"partnerState": "unknown"}),
        assignments=None,
        backup_only="the partner connection is made from the partner's console with tenant-bound "
                    "credentials; a copy written through Graph would not be connected",
    ),
    PolicyType(
        key="deviceCleanupRule",
        display_name="Device cleanup rules",
        collection="deviceManagement/managedDeviceCleanupRules",
        throttle_family="devices",
        versions=("beta",),
        read_permission=_DEVICES_READ,
        write_permission=_DEVICES_WRITE,
        assignments=None,
        # A rule's platform is fixed at create (one rule per platform).
        strip_on_update=("deviceCleanupRulePlatformType",),
    ),
    PolicyType(
        key="deviceCleanupSettings",
        display_name="Device cleanup settings (tenant)",
        collection="deviceManagement/managedDeviceCleanupSettings",
        throttle_family="devices",
        versions=("beta",),
        read_permission=_DEVICES_READ,
        write_permission=_DEVICES_WRITE,
        singleton=True,
        assignments=None,
    ),
    PolicyType(
        key="tenantSettings",
        display_name="Device management settings (tenant)",
        collection="deviceManagement/settings",
        throttle_family="deviceConfiguration",
        versions=("v1.0", "beta"),
        read_permission=_CONFIG_READ,
        write_permission=_CONFIG_WRITE,
        singleton=True,
        assignments=None,
        # A property of the deviceManagement singleton: written by PATCHing deviceManagement.
        update_path="deviceManagement",
        update_wrapper="settings",
    ),
)

CATALOG: Final[Mapping[str, PolicyType]] = MappingProxyType({t.key: t for t in _TYPES})


def get_policy_type(key: str) -> PolicyType:
    """Return the catalog entry for ``key``.

    Raises:
        KeyError: the key is not in the catalog.
    """
    try:
        return CATALOG[key]
    except KeyError:
        raise KeyError(f"unknown policy type {key!r}") from None


def restore_sequence(keys: list[str] | None = None) -> list[PolicyType]:
    """Policy types in restore order (foundations first), optionally limited to ``keys``."""
    chosen = [CATALOG[k] for k in keys] if keys is not None else list(CATALOG.values())
    return sorted(chosen, key=lambda t: (t.restore_order, t.key))


_VERSION_PREFIX = re.compile(r"^/?(?:v1\.0|beta)/")

# Collections below the API version that need the same permission as a catalog type but are not its list
# collection (item collections, definitions, templates): (prefix, read, write, throttle family).
_EXTRA_ROUTES: Final[tuple[tuple[str, str, str, str], ...]] = (
    ("deviceManagement/groupPolicyDefinitions", _CONFIG_READ, _CONFIG_WRITE, "deviceConfiguration"),
    ("deviceManagement/groupPolicyCategories", _CONFIG_READ, _CONFIG_WRITE, "deviceConfiguration"),
    ("deviceManagement/templates", _CONFIG_READ, _CONFIG_WRITE, "deviceIntent"),
    ("deviceAppManagement/iosManagedAppProtections", _APPS_READ, _APPS_WRITE, "managedApplications"),
    ("deviceAppManagement/androidManagedAppProtections", _APPS_READ, _APPS_WRITE, "managedApplications"),
    (GROUPS_COLLECTION, GROUPS_READ_PERMISSION, GROUPS_WRITE_PERMISSION, "identity"),
)


def _routes() -> list[tuple[str, str, str, str]]:
    routes = [(t.collection, t.read_permission, t.write_permission, t.throttle_family) for t in _TYPES]
    routes.extend(_EXTRA_ROUTES)
    # Longest first, so the most specific prefix wins.
    return sorted(routes, key=lambda r: len(r[0]), reverse=True)


_ROUTES: Final = _routes()


def _route(path: str) -> tuple[str, str, str, str] | None:
    bare = _VERSION_PREFIX.sub("", path.split("?", 1)[0]).lstrip("/")
    for route in _ROUTES:
        if bare == route[0] or bare.startswith(route[0] + "/"):
            return route
    return None


def permission_for(method: str, path: str) -> str | None:
    """The application permission a Graph route needs, for reporting a 403 precisely.

    Args:
        method: HTTP method; GET/HEAD need the read permission, everything else the write one.
        path: request path, with or without the ``/beta`` or ``/v1.0`` prefix; a query is ignored.

    Returns:
        The permission name, or ``None`` for routes outside the catalog.
    """
    route = _route(path)
    if route is None:
        return None
    return route[1] if method.upper() in ("GET", "HEAD") else route[2]


def throttle_family_for(path: str) -> str:
    """Intune's throttling family of a Graph route (``default`` outside the catalog).

    Intune counts its limits per family, so budgets are kept per family too.
    """
    route = _route(path)
    return route[3] if route is not None else "default"
