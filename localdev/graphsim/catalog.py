"""The collections the simulator serves: versions, throttle family, roles and per-type write rules.

The catalogue is declarative so routing, authorization, throttling and version gating read one table
instead of branching per type.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["BY_PATH", "CLAIMED_ELSEWHERE", "COLLECTIONS", "ROOTS", "SINGLETON_KEY", "TYPE_KEYS",
           "CollectionSpec", "Roles", "TypeKey", "spec_for"]

BOTH = frozenset({"v1.0", "beta"})
BETA = frozenset({"beta"})


@dataclass(frozen=True)
class Roles:
    """Application permissions that allow reading or writing a collection."""

    read: frozenset[str]
    write: frozenset[str]


def _roles(*families: str) -> Roles:
    # ReadWrite always implies Read, as in Entra's permission model.
    write = frozenset(f"{f}.ReadWrite.All" for f in families)
    return Roles(read=frozenset(f"{f}.Read.All" for f in families) | write, write=write)


CONFIG = _roles("DeviceManagementConfiguration")
SCRIPTS = _roles("DeviceManagementScripts")
APPS = _roles("DeviceManagementApps")
SERVICE_CONFIG = _roles("DeviceManagementServiceConfig")
# Enrollment-configuration assign and notification templates are documented under both families.
SERVICE_OR_CONFIG = _roles("DeviceManagementServiceConfig", "DeviceManagementConfiguration")
RBAC_OR_CONFIG = _roles("DeviceManagementRBAC", "DeviceManagementConfiguration")
RBAC = _roles("DeviceManagementRBAC")
# Policy sets bundle configuration and app policies; their docs list both families.
CONFIG_OR_APPS = _roles("DeviceManagementConfiguration", "DeviceManagementApps")
# Conditional Access objects: Policy.Read.All reads, Policy.ReadWrite.ConditionalAccess writes (and reads).
CONDITIONAL_ACCESS = Roles(
    read=frozenset({"Policy.Read.All", "Policy.ReadWrite.ConditionalAccess"}),
    write=frozenset({"Policy.ReadWrite.ConditionalAccess"}),
)
DEVICES_OR_CONFIG = _roles("DeviceManagementManagedDevices", "DeviceManagementConfiguration")
DEVICES = _roles("DeviceManagementManagedDevices")
# The deviceManagement singleton itself answers any Intune permission (its parts check their own).
INTUNE_ANY = _roles("DeviceManagementConfiguration", "DeviceManagementServiceConfig",
                    "DeviceManagementApps", "DeviceManagementRBAC", "DeviceManagementManagedDevices",
                    "DeviceManagementScripts")
GROUPS = Roles(
    read=frozenset({"Group.Read.All", "GroupMember.Read.All", "Group.ReadWrite.All",
                    "Directory.Read.All", "Directory.ReadWrite.All"}),
    write=frozenset({"Group.ReadWrite.All", "Directory.ReadWrite.All"}),
)

# Properties Graph computes itself; a write that carries them is rejected in strict mode.
SERVER_FIELDS = frozenset({"id", "createdDateTime", "lastModifiedDateTime", "version"})


@dataclass(frozen=True)
class CollectionSpec:
    """How one Graph collection behaves.

    ``nav`` are navigation properties stored with the object but only returned when expanded (or via
    their own segment); ``list_nulls`` are properties Graph returns as ``null`` in lists (script
    content); ``readonly`` are rejected in writes in strict mode on top of :data:`SERVER_FIELDS`.
    ``name`` is the key the tenant stores the objects under; ``segment`` is the URL segment when it
    differs (Conditional Access ``policies`` vs authentication strength ``policies``).
    ``assign_one`` marks types whose assignments are POSTed one at a time to ``/assignments``.
    ``single_nav`` are navigation properties holding one object (``roleDefinition``) instead of a list.
    ``singleton`` marks a single resource rather than a collection: ``entity`` (an object with an id,
    such as the Apple push certificate) or ``complex`` (a property of ``deviceManagement``, such as
    its settings); the tenant stores it under :data:`SINGLETON_KEY`.
    """

    name: str
    root: str
    versions: frozenset[str]
    family: str
    roles: Roles
    base_type: str
    polymorphic: bool = False
    name_prop: str = "displayName"
    assign_key: str | None = "assignments"
    assign_status: int = 204
    page_size: int = 100
    max_top: int = 999
    nav: frozenset[str] = frozenset({"assignments"})
    deep_insert: frozenset[str] = frozenset()
    list_nulls: frozenset[str] = frozenset()
    readonly: frozenset[str] = frozenset()
    readonly_on_update: frozenset[str] = frozenset()
    version_kind: str | None = None
    put_allowed: bool = False
    creatable: bool = True
    filterable: bool = True
    derived_types: tuple[str, ...] = field(default_factory=tuple)
    segment: str | None = None
    assign_one: bool = False
    single_nav: frozenset[str] = frozenset()
    builtin_flag: str | None = None
    singleton: str | None = None

    @property
    def path(self) -> str:
        """Path of the collection below the version segment."""
        segment = self.segment or self.name
        return f"{self.root}/{segment}" if self.root else segment

    @property
    def intune(self) -> bool:
        """Served by Intune (nested error messages, scope tags, modified stamps) rather than Entra."""
        return self.root in (DM, DAM)


DM = "deviceManagement"
DAM = "deviceAppManagement"
_MAM_NAV = frozenset({"assignments", "apps"})

_SPECS = [
    CollectionSpec("configurationPolicies", DM, BETA, "deviceConfigV2", CONFIG,
                   "#microsoft.graph.deviceManagementConfigurationPolicy", name_prop="name",
                   assign_status=200, page_size=25, nav=frozenset({"assignments", "settings"}),
                   deep_insert=frozenset({"settings"}),
                   readonly=frozenset({"settingCount", "isAssigned", "creationSource"}),
                   put_allowed=True),
    CollectionSpec("deviceConfigurations", DM, BOTH, "deviceConfiguration", CONFIG,
                   "#microsoft.graph.deviceConfiguration", polymorphic=True, assign_status=200,
                   version_kind="int",
                   readonly_on_update=frozenset({"qualityUpdatesPauseStartDate",
                                                 "featureUpdatesPauseStartDate"})),
    CollectionSpec("deviceCompliancePolicies", DM, BOTH, "deviceConfiguration", CONFIG,
                   "#microsoft.graph.deviceCompliancePolicy", polymorphic=True, assign_status=200,
                   version_kind="int", nav=frozenset({"assignments", "scheduledActionsForRule"}),
                   deep_insert=frozenset({"scheduledActionsForRule"})),
    CollectionSpec("groupPolicyConfigurations", DM, BETA, "deviceConfiguration", CONFIG,
                   "#microsoft.graph.groupPolicyConfiguration", assign_status=200,
                   nav=frozenset({"assignments", "definitionValues"}),
                   readonly=frozenset({"policyConfigurationIngestionType"})),
    CollectionSpec("groupPolicyDefinitions", DM, BETA, "deviceConfiguration", CONFIG,
                   "#microsoft.graph.groupPolicyDefinition", assign_key=None,
                   nav=frozenset({"presentations"}), creatable=False),
    CollectionSpec("deviceManagementScripts", DM, BETA, "devices", SCRIPTS,
                   "#microsoft.graph.deviceManagementScript",
                   assign_key="deviceManagementScriptAssignments",
                   list_nulls=frozenset({"scriptContent"})),
    CollectionSpec("deviceHealthScripts", DM, BETA, "devices", SCRIPTS,
                   "#microsoft.graph.deviceHealthScript", assign_key="deviceHealthScriptAssignments",
                   list_nulls=frozenset({"detectionScriptContent", "remediationScriptContent"}),
                   readonly=frozenset({"isGlobalScript", "highestAvailableVersion"})),
    CollectionSpec("intents", DM, BETA, "deviceIntent", CONFIG,
                   "#microsoft.graph.deviceManagementIntent",
                   nav=frozenset({"assignments", "settings", "categories"}), creatable=False,
                   readonly=frozenset({"templateId", "isAssigned"})),
    CollectionSpec("templates", DM, BETA, "deviceIntent", CONFIG,
                   "#microsoft.graph.deviceManagementTemplate", polymorphic=True, assign_key=None,
                   nav=frozenset({"categories", "settings"}), creatable=False),
    CollectionSpec("windowsFeatureUpdateProfiles", DM, BETA, "updates", CONFIG,
                   "#microsoft.graph.windowsFeatureUpdateProfile",
                   readonly=frozenset({"deployableContentDisplayName", "endOfSupportDate"})),
    CollectionSpec("windowsQualityUpdateProfiles", DM, BETA, "updates", CONFIG,
                   "#microsoft.graph.windowsQualityUpdateProfile",
                   readonly=frozenset({"releaseDateDisplayName", "deployableContentDisplayName"})),
    CollectionSpec("managedAppPolicies", DAM, BOTH, "managedApplications", APPS,
                   "#microsoft.graph.managedAppPolicy", polymorphic=True, assign_key=None,
                   nav=frozenset(), creatable=False, filterable=False),
    CollectionSpec("iosManagedAppProtections", DAM, BOTH, "managedApplications", APPS,
                   "#microsoft.graph.iosManagedAppProtection", nav=_MAM_NAV,
                   deep_insert=frozenset({"apps"}), version_kind="str"),
    CollectionSpec("androidManagedAppProtections", DAM, BOTH, "managedApplications", APPS,
                   "#microsoft.graph.androidManagedAppProtection", nav=_MAM_NAV,
                   deep_insert=frozenset({"apps"}), version_kind="str"),
    CollectionSpec("targetedManagedAppConfigurations", DAM, BOTH, "managedApplications", APPS,
                   "#microsoft.graph.targetedManagedAppConfiguration", nav=_MAM_NAV,
                   deep_insert=frozenset({"apps"}), version_kind="str"),
    CollectionSpec("deviceEnrollmentConfigurations", DM, BOTH, "enrollment", SERVICE_OR_CONFIG,
                   "#microsoft.graph.deviceEnrollmentConfiguration", polymorphic=True,
                   assign_key="enrollmentConfigurationAssignments", version_kind="int",
                   readonly_on_update=frozenset({"priority", "deviceEnrollmentConfigurationType",
                                                 "platformType"})),
    CollectionSpec("windowsAutopilotDeploymentProfiles", DM, BETA, "enrollment", SERVICE_CONFIG,
                   "#microsoft.graph.windowsAutopilotDeploymentProfile", polymorphic=True,
                   assign_key=None),
    CollectionSpec("assignmentFilters", DM, BETA, "deviceConfiguration", CONFIG,
                   "#microsoft.graph.deviceAndAppManagementAssignmentFilter", assign_key=None,
                   nav=frozenset(), readonly=frozenset({"payloads"}),
                   readonly_on_update=frozenset({"platform"})),
    CollectionSpec("roleScopeTags", DM, BETA, "rbac", RBAC_OR_CONFIG,
                   "#microsoft.graph.roleScopeTag", readonly=frozenset({"isBuiltIn"})),
    CollectionSpec("notificationMessageTemplates", DM, BOTH, "notifications", SERVICE_OR_CONFIG,
                   "#microsoft.graph.notificationMessageTemplate", assign_key=None,
                   nav=frozenset({"localizedNotificationMessages"})),
    CollectionSpec("deviceCategories", DM, BOTH, "enrollment", DEVICES_OR_CONFIG,
                   "#microsoft.graph.deviceCategory", assign_key=None, nav=frozenset()),
    CollectionSpec("groups", "", BOTH, "identity", GROUPS, "#microsoft.graph.group",
                   assign_key=None, nav=frozenset(), readonly=frozenset({"deletedDateTime"})),
    # Settings catalog compliance (v2): settings paged at 25, scheduled actions as a navigation.
    CollectionSpec("compliancePolicies", DM, BETA, "deviceConfigV2", CONFIG,
                   "#microsoft.graph.deviceManagementCompliancePolicy", name_prop="name",
                   assign_status=200, page_size=25,
                   nav=frozenset({"assignments", "settings", "scheduledActionsForRule"}),
                   deep_insert=frozenset({"settings", "scheduledActionsForRule"}),
                   readonly=frozenset({"settingCount", "isAssigned", "creationSource"}),
                   put_allowed=True),
    CollectionSpec("deviceComplianceScripts", DM, BETA, "devices", SCRIPTS,
                   "#microsoft.graph.deviceComplianceScript",
                   assign_key="deviceHealthScriptAssignments",
                   list_nulls=frozenset({"detectionScriptContent"}),
                   readonly=frozenset({"publisher"})),
    CollectionSpec("deviceShellScripts", DM, BETA, "devices", SCRIPTS,
                   "#microsoft.graph.deviceShellScript",
                   assign_key="deviceManagementScriptAssignments",
                   list_nulls=frozenset({"scriptContent"})),
    CollectionSpec("deviceCustomAttributeShellScripts", DM, BETA, "devices", SCRIPTS,
                   "#microsoft.graph.deviceCustomAttributeShellScript",
                   assign_key="deviceManagementScriptAssignments",
                   list_nulls=frozenset({"scriptContent"}),
                   readonly_on_update=frozenset({"customAttributeName", "customAttributeType"})),
    CollectionSpec("windowsDriverUpdateProfiles", DM, BETA, "updates", CONFIG,
                   "#microsoft.graph.windowsDriverUpdateProfile",
                   nav=frozenset({"assignments", "driverInventories"}),
                   readonly=frozenset({"deviceReporting", "newUpdates", "inventorySyncStatus"})),
    CollectionSpec("roleDefinitions", DM, BOTH, "rbac", RBAC,
                   "#microsoft.graph.deviceAndAppManagementRoleDefinition", assign_key=None,
                   nav=frozenset({"roleAssignments"}),
                   readonly=frozenset({"isBuiltIn", "isBuiltInRoleDefinition"}),
                   builtin_flag="isBuiltIn"),
    CollectionSpec("roleAssignments", DM, BOTH, "rbac", RBAC,
                   "#microsoft.graph.deviceAndAppManagementRoleAssignment", assign_key=None,
                   nav=frozenset({"roleDefinition", "roleScopeTags"}),
                   single_nav=frozenset({"roleDefinition"})),
    CollectionSpec("termsAndConditions", DM, BOTH, "companyTerms", SERVICE_CONFIG,
                   "#microsoft.graph.termsAndConditions", assign_key=None, version_kind="int",
                   nav=frozenset({"assignments", "acceptanceStatuses"}), assign_one=True),
    CollectionSpec("intuneBrandingProfiles", DM, BETA, "companyTerms", APPS,
                   "#microsoft.graph.intuneBrandingProfile", name_prop="profileName",
                   list_nulls=frozenset({"themeColorLogo", "lightBackgroundLogo",
                                         "landingPageCustomizedImage"}),
                   readonly=frozenset({"isDefaultProfile"}), builtin_flag="isDefaultProfile"),
    CollectionSpec("deviceManagementPartners", DM, BOTH, "enrollment", SERVICE_CONFIG,
                   "#microsoft.graph.deviceManagementPartner", assign_key=None, nav=frozenset(),
                   readonly=frozenset({"lastHeartbeatDateTime", "partnerState",
                                       "whenPartnerDevicesWillBeRemovedDateTime",
                                       "whenPartnerDevicesWillBeMarkedAsNonCompliantDateTime"})),
    CollectionSpec("remoteAssistancePartners", DM, BOTH, "enrollment", SERVICE_CONFIG,
                   "#microsoft.graph.remoteAssistancePartner", assign_key=None, nav=frozenset(),
                   readonly=frozenset({"onboardingStatus", "lastConnectionDateTime"})),
    CollectionSpec("reusablePolicySettings", DM, BETA, "deviceConfigV2", CONFIG,
                   "#microsoft.graph.deviceManagementReusablePolicySetting", assign_key=None,
                   version_kind="int", nav=frozenset({"referencingConfigurationPolicies"}),
                   readonly=frozenset({"referencingConfigurationPolicyCount"})),
    CollectionSpec("policySets", DAM, BETA, "deviceConfiguration", CONFIG_OR_APPS,
                   "#microsoft.graph.policySet", assign_key=None,
                   nav=frozenset({"assignments", "items"}), deep_insert=frozenset({"items"}),
                   readonly=frozenset({"status", "errorCode"})),
    CollectionSpec("conditionalAccessPolicies", "identity/conditionalAccess", BOTH, "identity",
                   CONDITIONAL_ACCESS, "#microsoft.graph.conditionalAccessPolicy",
                   segment="policies", assign_key=None, nav=frozenset(),
                   readonly=frozenset({"modifiedDateTime"})),
    CollectionSpec("namedLocations", "identity/conditionalAccess", BOTH, "identity",
                   CONDITIONAL_ACCESS, "#microsoft.graph.namedLocation", polymorphic=True,
                   assign_key=None, nav=frozenset(), readonly=frozenset({"modifiedDateTime"})),
    CollectionSpec("authenticationStrengthPolicies", "policies", BOTH, "identity",
                   CONDITIONAL_ACCESS, "#microsoft.graph.authenticationStrengthPolicy",
                   assign_key=None, nav=frozenset({"combinationConfigurations"}),
                   readonly=frozenset({"modifiedDateTime", "policyType",
                                       "requirementsSatisfied"}),
                   # Combinations change only through updateAllowedCombinations.
                   readonly_on_update=frozenset({"allowedCombinations"})),
]

_APP_STATE = frozenset({"uploadState", "publishingState", "isAssigned", "dependentAppCount",
                        "supersedingAppCount", "supersededAppCount", "committedContentVersion", "size"})
_WIP_NAV = frozenset({"assignments", "protectedAppLockerFiles", "exemptAppLockerFiles"})
_SPECS += [
    CollectionSpec("mobileAppCategories", DAM, BOTH, "applications", APPS,
                   "#microsoft.graph.mobileAppCategory", assign_key=None, nav=frozenset()),
    # Apps: largeIcon only on the single GET; categories are a navigation; intent on assignments.
    CollectionSpec("mobileApps", DAM, BOTH, "applications", APPS, "#microsoft.graph.mobileApp",
                   polymorphic=True, assign_key="mobileAppAssignments",
                   nav=frozenset({"assignments", "categories"}), list_nulls=frozenset({"largeIcon"}),
                   readonly=_APP_STATE),
    CollectionSpec("mobileAppConfigurations", DAM, BOTH, "applications", APPS,
                   "#microsoft.graph.managedDeviceMobileAppConfiguration", polymorphic=True,
                   version_kind="int"),
    CollectionSpec("windowsManagedAppProtections", DAM, BETA, "managedApplications", APPS,
                   "#microsoft.graph.windowsManagedAppProtection", nav=_MAM_NAV,
                   deep_insert=frozenset({"apps"}), version_kind="str",
                   readonly=frozenset({"deployedAppCount"})),
    CollectionSpec("windowsInformationProtectionPolicies", DAM, BOTH, "managedApplications", APPS,
                   "#microsoft.graph.windowsInformationProtectionPolicy", nav=_WIP_NAV,
                   version_kind="str", readonly=frozenset({"deployedAppCount", "isAssigned"})),
    CollectionSpec("mdmWindowsInformationProtectionPolicies", DAM, BOTH, "managedApplications", APPS,
                   "#microsoft.graph.mdmWindowsInformationProtectionPolicy", nav=_WIP_NAV,
                   version_kind="str", readonly=frozenset({"deployedAppCount", "isAssigned"})),
    CollectionSpec("appleUserInitiatedEnrollmentProfiles", DM, BETA, "enrollment", SERVICE_CONFIG,
                   "#microsoft.graph.appleUserInitiatedEnrollmentProfile", assign_key=None,
                   assign_one=True, readonly_on_update=frozenset({"platform", "priority"})),
    CollectionSpec("depOnboardingSettings", DM, BETA, "enrollment", SERVICE_CONFIG,
                   "#microsoft.graph.depOnboardingSetting", name_prop="tokenName", assign_key=None,
                   nav=frozenset({"enrollmentProfiles"}), creatable=False),
    CollectionSpec("vppTokens", DAM, BOTH, "enrollment", SERVICE_CONFIG, "#microsoft.graph.vppToken",
                   assign_key=None, nav=frozenset(), creatable=False),
    CollectionSpec("complianceManagementPartners", DM, BOTH, "enrollment", SERVICE_CONFIG,
                   "#microsoft.graph.complianceManagementPartner", assign_key=None, nav=frozenset(),
                   creatable=False, readonly=frozenset({"lastHeartbeatDateTime", "partnerState"})),
    CollectionSpec("managedDeviceCleanupRules", DM, BETA, "devices", DEVICES,
                   "#microsoft.graph.managedDeviceCleanupRule", assign_key=None, nav=frozenset(),
                   readonly_on_update=frozenset({"deviceCleanupRulePlatformType"})),
    CollectionSpec("applePushNotificationCertificate", DM, BOTH, "enrollment", SERVICE_CONFIG,
                   "#microsoft.graph.applePushNotificationCertificate", assign_key=None,
                   nav=frozenset(), creatable=False, singleton="entity", name_prop="appleIdentifier",
                   readonly=frozenset({"expirationDateTime", "certificateSerialNumber",
                                       "topicIdentifier"})),
    CollectionSpec("androidManagedStoreAccountEnterpriseSettings", DM, BETA, "enrollment",
                   SERVICE_OR_CONFIG, "#microsoft.graph.androidManagedStoreAccountEnterpriseSettings",
                   assign_key=None, nav=frozenset(), creatable=False, singleton="entity",
                   readonly=frozenset({"bindStatus", "lastAppSyncDateTime", "lastAppSyncStatus",
                                       "ownerUserPrincipalName", "ownerOrganizationName"})),
    CollectionSpec("managedDeviceCleanupSettings", DM, BETA, "devices", DEVICES,
                   "#microsoft.graph.managedDeviceCleanupSettings", assign_key=None, nav=frozenset(),
                   creatable=False, singleton="complex"),
    # A property of deviceManagement: read here, written by PATCHing deviceManagement.
    CollectionSpec("deviceManagementSettings", DM, BOTH, "deviceConfiguration", CONFIG,
                   "#microsoft.graph.deviceManagementSettings", segment="settings", assign_key=None,
                   nav=frozenset(), creatable=False, singleton="complex"),
]
# Roots reached with no collection segment (``PATCH /deviceManagement``); unknown segments below a root
# still answer "Resource not found for the segment".
ROOTS: dict[str, CollectionSpec] = {
    "deviceManagement": CollectionSpec("deviceManagement", "", BOTH, "deviceConfiguration", INTUNE_ANY,
                                       "#microsoft.graph.deviceManagement", assign_key=None,
                                       nav=frozenset(), creatable=False, singleton="entity"),
}
SINGLETON_KEY = "singleton"

COLLECTIONS: dict[str, CollectionSpec] = {s.name: s for s in _SPECS}
# Collections by their path below the version (``deviceManagement/roleDefinitions``,
# ``identity/conditionalAccess/policies``): how requests find them.
BY_PATH: dict[str, CollectionSpec] = {s.path: s for s in _SPECS}


def spec_for(name: str) -> CollectionSpec | None:
    """The spec of a collection by its Graph segment name."""
    return COLLECTIONS.get(name)


UPDATE_RING_TYPE = "#microsoft.graph.windowsUpdateForBusinessConfiguration"
STORE_AND_WEB_APPS = tuple(f"#microsoft.graph.{t}" for t in (
    "webApp", "windowsWebApp", "iosStoreApp", "androidStoreApp", "winGetApp", "officeSuiteApp",
    "macOSOfficeSuiteApp", "windowsMicrosoftEdgeApp", "macOSMicrosoftEdgeApp",
    "macOSMicrosoftDefenderApp"))
CONTENT_AND_SYNCED_APPS = tuple(f"#microsoft.graph.{t}" for t in (
    "win32LobApp", "win32CatalogApp", "windowsMobileMSI", "windowsAppX", "windowsUniversalAppX",
    "iosLobApp", "androidLobApp", "macOSLobApp", "macOSDmgApp", "macOSPkgApp", "managedIOSLobApp",
    "managedAndroidLobApp", "iosVppApp", "macOsVppApp", "androidManagedStoreApp"))


@dataclass(frozen=True)
class TypeKey:
    """A project catalog key mapped onto the simulator's collections."""

    key: str
    collections: tuple[str, ...]
    update_ring: bool | None = None  # deviceConfigurations split: True only rings, False no rings
    # Collections shared by several keys (apps, Apple update policies): the @odata.types of this key
    # (empty: every object of the collections).
    odata_types: tuple[str, ...] = ()


TYPE_KEYS: dict[str, TypeKey] = {t.key: t for t in [
    TypeKey("settingsCatalog", ("configurationPolicies",)),
    TypeKey("deviceConfiguration", ("deviceConfigurations",), update_ring=False),
    TypeKey("updateRing", ("deviceConfigurations",), update_ring=True),
    TypeKey("compliancePolicy", ("deviceCompliancePolicies",)),
    TypeKey("administrativeTemplate", ("groupPolicyConfigurations",)),
    TypeKey("powerShellScript", ("deviceManagementScripts",)),
    TypeKey("remediationScript", ("deviceHealthScripts",)),
    TypeKey("endpointSecurityIntent", ("intents",)),
    TypeKey("featureUpdateProfile", ("windowsFeatureUpdateProfiles",)),
    TypeKey("qualityUpdateProfile", ("windowsQualityUpdateProfiles",)),
    TypeKey("appProtectionPolicy", ("iosManagedAppProtections", "androidManagedAppProtections")),
    TypeKey("appConfigurationPolicy", ("targetedManagedAppConfigurations",)),
    TypeKey("enrollmentConfiguration", ("deviceEnrollmentConfigurations",)),
    TypeKey("autopilotProfile", ("windowsAutopilotDeploymentProfiles",)),
    TypeKey("assignmentFilter", ("assignmentFilters",)),
    TypeKey("scopeTag", ("roleScopeTags",)),
    TypeKey("notificationTemplate", ("notificationMessageTemplates",)),
    TypeKey("deviceCategory", ("deviceCategories",)),
    TypeKey("complianceSettingsPolicy", ("compliancePolicies",)),
    TypeKey("complianceScript", ("deviceComplianceScripts",)),
    TypeKey("macOSShellScript", ("deviceShellScripts",)),
    TypeKey("customAttributeScript", ("deviceCustomAttributeShellScripts",)),
    TypeKey("driverUpdateProfile", ("windowsDriverUpdateProfiles",)),
    TypeKey("roleDefinition", ("roleDefinitions",)),
    TypeKey("roleAssignment", ("roleAssignments",)),
    TypeKey("termsAndConditions", ("termsAndConditions",)),
    TypeKey("brandingProfile", ("intuneBrandingProfiles",)),
    TypeKey("deviceManagementPartner", ("deviceManagementPartners",)),
    TypeKey("remoteAssistancePartner", ("remoteAssistancePartners",)),
    TypeKey("reusablePolicySetting", ("reusablePolicySettings",)),
    TypeKey("policySet", ("policySets",)),
    TypeKey("conditionalAccessPolicy", ("conditionalAccessPolicies",)),
    TypeKey("namedLocation", ("namedLocations",)),
    TypeKey("authenticationStrengthPolicy", ("authenticationStrengthPolicies",)),
    TypeKey("group", ("groups",)),
    TypeKey("mobileAppCategory", ("mobileAppCategories",)),
    TypeKey("mobileApp", ("mobileApps",), odata_types=STORE_AND_WEB_APPS),
    TypeKey("contentApp", ("mobileApps",), odata_types=CONTENT_AND_SYNCED_APPS),
    TypeKey("managedDeviceAppConfiguration", ("mobileAppConfigurations",)),
    TypeKey("windowsAppProtectionPolicy", ("windowsManagedAppProtections",)),
    TypeKey("wipPolicy", ("windowsInformationProtectionPolicies",)),
    TypeKey("mdmWipPolicy", ("mdmWindowsInformationProtectionPolicies",)),
    TypeKey("iosUpdatePolicy", ("deviceConfigurations",), update_ring=False,
            odata_types=("#microsoft.graph.iosUpdateConfiguration",)),
    TypeKey("macOSUpdatePolicy", ("deviceConfigurations",), update_ring=False,
            odata_types=("#microsoft.graph.macOSSoftwareUpdateConfiguration",)),
    TypeKey("appleEnrollmentTypeProfile", ("appleUserInitiatedEnrollmentProfiles",)),
    TypeKey("depOnboardingSetting", ("depOnboardingSettings",)),
    TypeKey("vppToken", ("vppTokens",)),
    TypeKey("applePushCertificate", ("applePushNotificationCertificate",)),
    TypeKey("managedGooglePlay", ("androidManagedStoreAccountEnterpriseSettings",)),
    TypeKey("compliancePartner", ("complianceManagementPartners",)),
    TypeKey("deviceCleanupRule", ("managedDeviceCleanupRules",)),
    TypeKey("deviceCleanupSettings", ("managedDeviceCleanupSettings",)),
    TypeKey("tenantSettings", ("deviceManagementSettings",)),
]}



def _claimed_elsewhere() -> dict[str, frozenset[str]]:
    """Per key without its own @odata.types: the subtypes other keys of its collections claim."""
    claimed: dict[str, frozenset[str]] = {}
    for spec in TYPE_KEYS.values():
        if spec.odata_types:
            continue
        others = {t for other in TYPE_KEYS.values() if other.odata_types
                  and set(other.collections) & set(spec.collections) for t in other.odata_types}
        if others:
            claimed[spec.key] = frozenset(others)
    return claimed


CLAIMED_ELSEWHERE: dict[str, frozenset[str]] = _claimed_elsewhere()

# managedAppPolicies is a read-only union over these (Graph mixes in MAM app configurations too).
MANAGED_APP_POLICY_MEMBERS = ("iosManagedAppProtections", "androidManagedAppProtections",
                              "targetedManagedAppConfigurations")

# Throttling limits per 20 s window (writes per app+tenant, writes per tenant, any per app+tenant,
# any per tenant). The Intune devices family (scripts) is double; identity is approximated.
FAMILY_LIMITS: dict[str, tuple[int, int, int, int, float]] = {
    "devices": (200, 400, 2000, 4000, 20.0),
    "identity": (3000, 6000, 3500, 7000, 10.0),
}
DEFAULT_LIMITS: tuple[int, int, int, int, float] = (100, 200, 1000, 2000, 20.0)


def limits_for(family: str) -> tuple[int, int, int, int, float]:
    """Published limits of a throttle family: (write app, write tenant, any app, any tenant, window)."""
    return FAMILY_LIMITS.get(family, DEFAULT_LIMITS)
