"""Objects every tenant has: the Default scope tag, default enrollment configurations and more.

Intent templates and the built-in Administrative Templates catalogue have the same ids in every
tenant; custom (ingested ADMX) definitions get tenant-specific ids.
"""

from __future__ import annotations

import copy
import random
import uuid
from typing import Any

__all__ = ["BUILTIN_GP_DEFINITIONS", "BUILTIN_ROLES", "BUILTIN_STRENGTHS", "INTENT_TEMPLATES",
           "add_builtins", "custom_admx_definitions", "role_permissions"]

Obj = dict[str, Any]
STAMP = "2024-01-15T09:00:00.0000000Z"


def _ids(label: str) -> random.Random:
    return random.Random(label)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _gp_definition(rng: random.Random, name: str, category: str, class_type: str,
                   presentations: list[tuple[str, str]], source: str = "builtIn") -> Obj:
    def_id = _uuid(rng)
    return {
        "@odata.type": "#microsoft.graph.groupPolicyDefinition", "id": def_id,
        "classType": class_type, "displayName": name, "explainText": f"{name}.",
        "categoryPath": category, "supportedOn": "At least Windows 10", "policyType":
        "admxBacked" if source == "builtIn" else "admxIngested", "hasRelatedDefinitions": False,
        "groupPolicyCategoryId": _uuid(rng), "minDeviceCspVersion": "1.0",
        "minUserCspVersion": "1.0", "version": "1.0", "lastModifiedDateTime": STAMP,
        "presentations": [
            {"@odata.type": f"#microsoft.graph.groupPolicyPresentation{kind}", "id": _uuid(rng),
             "label": label, "required": False, "lastModifiedDateTime": STAMP}
            for kind, label in presentations],
    }


def _builtin_gp_catalogue() -> list[Obj]:
    rng = _ids("builtin-gp-definitions")
    return [
        _gp_definition(rng, "Configure the home page URL", "\\Microsoft Edge\\Startup, home page "
                       "and new tab page", "machine", [("TextBox", "Home page URL")]),
        _gp_definition(rng, "Allow InPrivate mode", "\\Microsoft Edge", "machine", []),
        _gp_definition(rng, "Configure the list of force-installed extensions", "\\Microsoft Edge"
                       "\\Extensions", "machine", [("ListBox", "Extension/App IDs and update URLs "
                                                             "to be silently installed")]),
        _gp_definition(rng, "Set the default download directory", "\\Microsoft Edge", "user",
                       [("TextBox", "Set download directory")]),
        _gp_definition(rng, "Turn off Windows Defender SmartScreen", "\\Windows Components\\File "
                       "Explorer", "machine", [("DropdownList", "Pick one of the following")]),
        _gp_definition(rng, "Set maximum cache size", "\\Google\\Google Chrome", "machine",
                       [("DecimalTextBox", "Set disk cache size, in bytes"),
                        ("CheckBox", "Apply to all profiles")]),
        _gp_definition(rng, "Prevent access to registry editing tools", "\\System", "user",
                       [("DropdownList", "Disable regedit from running silently?")]),
        _gp_definition(rng, "OneDrive: Silently move Windows known folders", "\\OneDrive",
                       "machine", [("TextBox", "Tenant ID"), ("CheckBox", "Show notification")]),
    ]


BUILTIN_GP_DEFINITIONS: list[Obj] = _builtin_gp_catalogue()


def custom_admx_definitions(seed: int) -> list[Obj]:
    """Ingested (custom ADMX) definitions: same names in every tenant, tenant-specific ids."""
    rng = _ids(f"custom-admx:{seed}")
    return [
        _gp_definition(rng, "Contoso Agent: Reporting server", "\\Contoso\\Agent", "machine",
                       [("TextBox", "Server URL")], source="custom"),
        _gp_definition(rng, "Contoso Agent: Upload interval", "\\Contoso\\Agent", "machine",
                       [("DecimalTextBox", "Minutes")], source="custom"),
    ]


def _template(rng: random.Random, name: str, subtype: str, template_type: str,
              settings: list[tuple[str, str, Any]]) -> Obj:
    template_id = _uuid(rng)
    categories: dict[str, str] = {}
    for category, _, _ in settings:
        categories.setdefault(category, _uuid(rng))
    return {
        "@odata.type": "#microsoft.graph.securityBaselineTemplate" if template_type ==
        "securityBaseline" else "#microsoft.graph.deviceManagementTemplate",
        "id": template_id, "displayName": name, "description": f"{name} template",
        "versionInfo": "2306", "isDeprecated": False, "intentCount": 0,
        "templateType": template_type, "platformType": "windows10AndLater",
        "templateSubtype": subtype, "publishedDateTime": STAMP,
        "categories": [{"@odata.type": "#microsoft.graph.deviceManagementTemplateSettingCategory",
                        "id": cid, "displayName": cname, "hasRequiredSetting": False}
                       for cname, cid in categories.items()],
        "settings": [_intent_setting(definition, value, categories[category])
                     for category, definition, value in settings],
    }


def _intent_setting(definition: str, value: Any, category_id: str) -> Obj:
    kind = ("Boolean" if isinstance(value, bool) else "Integer" if isinstance(value, int)
            else "String")
    return {"@odata.type": f"#microsoft.graph.deviceManagement{kind}SettingInstance",
            "id": definition, "definitionId": definition, "valueJson": _json_value(value),
            "value": value, "_categoryId": category_id}


def _json_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return f'"{value}"'


def _intent_templates() -> list[Obj]:
    rng = _ids("intent-templates")
    return [
        _template(rng, "BitLocker", "diskEncryption", "endpointSecurityDiskEncryption", [
            ("BitLocker - Base Settings", "deviceConfiguration--windows10EndpointProtection"
             "Configuration_bitLockerEncryptDevice", True),
            ("BitLocker - OS Drive Settings", "deviceConfiguration--windows10EndpointProtection"
             "Configuration_bitLockerSystemDrivePolicy_startupAuthenticationRequired", True),
            ("BitLocker - OS Drive Settings", "deviceConfiguration--windows10EndpointProtection"
             "Configuration_bitLockerSystemDrivePolicy_encryptionMethod", "xtsAes256"),
        ]),
        _template(rng, "Microsoft Defender Firewall", "firewall", "endpointSecurityFirewall", [
            ("Firewall", "deviceConfiguration--windows10EndpointProtectionConfiguration_"
             "firewallProfileDomain_firewallEnabled", "allowed"),
            ("Firewall", "deviceConfiguration--windows10EndpointProtectionConfiguration_"
             "firewallProfilePublic_firewallEnabled", "allowed"),
            ("Firewall", "deviceConfiguration--windows10EndpointProtectionConfiguration_"
             "firewallBlockStatefulFTP", True),
        ]),
        _template(rng, "MDM Security Baseline for Windows 10 and later", "none",
                  "securityBaseline", [
                      ("Above Lock", "abovelock_allowcortanaabovelock", False),
                      ("Browser", "browser_blockpasswordmanager", True),
                      ("Device Lock", "devicelock_minimumpasswordlength", 12),
                  ]),
    ]


INTENT_TEMPLATES: list[Obj] = _intent_templates()

DEFAULT_ENROLLMENT: list[Obj] = [
    {"@odata.type": "#microsoft.graph.deviceEnrollmentPlatformRestrictionsConfiguration",
     "suffix": "DefaultPlatformRestrictions", "displayName": "All users and all devices",
     "description": "This is the default Device Type Restriction applied with the lowest priority "
                    "to all users regardless of group membership.",
     "deviceEnrollmentConfigurationType": "singlePlatformRestriction",
     "extra": {"windowsRestriction": {"platformBlocked": False, "personalDeviceEnrollmentBlocked":
                                      False, "osMinimumVersion": None, "osMaximumVersion": None},
               "iosRestriction": {"platformBlocked": False, "personalDeviceEnrollmentBlocked":
                                  False, "osMinimumVersion": None, "osMaximumVersion": None},
               "androidRestriction": {"platformBlocked": True,
                                      "personalDeviceEnrollmentBlocked": False,
                                      "osMinimumVersion": None, "osMaximumVersion": None}}},
    {"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration",
     "suffix": "DefaultLimit", "displayName": "All users and all devices",
     "description": "This is the default Device Limit Restriction applied with the lowest "
                    "priority to all users regardless of group membership.",
     "deviceEnrollmentConfigurationType": "limit", "extra": {"limit": 5}},
    {"@odata.type": "#microsoft.graph.windows10EnrollmentCompletionPageConfiguration",
     "suffix": "DefaultWindows10EnrollmentCompletionPageConfiguration",
     "displayName": "All users and all devices",
     "description": "This is the default enrollment status screen configuration applied with the "
                    "lowest priority to all users and all devices regardless of group membership.",
     "deviceEnrollmentConfigurationType": "windows10EnrollmentCompletionPageConfiguration",
     "extra": {"showInstallationProgress": False, "blockDeviceSetupRetryByUser": False,
               "allowDeviceResetOnInstallFailure": False, "allowLogCollectionOnInstallFailure":
               False, "customErrorMessage": None, "installProgressTimeoutInMinutes": 60,
               "allowDeviceUseOnInstallFailure": False, "selectedMobileAppIds": [],
               "trackInstallProgressForAutopilotOnly": False,
               "disableUserStatusTrackingAfterFirstUser": False}},
]


# Built-in Intune roles: the same ids in every tenant (assignments to them are the tenant's own).
BUILTIN_ROLES: list[tuple[str, str, str, list[str]]] = [
    ("0bd113fe-6be5-400c-a28f-ae5553f9c0be", "Policy and Profile manager",
     "Policy and Profile Manager manages compliance policy, configuration policy and profiles.",
     ["Microsoft.Intune_DeviceConfigurations_Read", "Microsoft.Intune_DeviceConfigurations_Create",
      "Microsoft.Intune_DeviceConfigurations_Update", "Microsoft.Intune_DeviceConfigurations_Assign"]),
    ("9e0cc482-82df-4ab2-a24c-0c23a3f52e1e", "Help Desk Operator",
     "Help Desk Operators perform remote tasks on users and devices.",
     ["Microsoft.Intune_ManagedDevices_Read", "Microsoft.Intune_RemoteTasks_RebootNow",
      "Microsoft.Intune_RemoteTasks_SyncDevice"]),
    ("c56d53a2-73d0-4502-b6bd-4a9d3dba28d5", "Read Only Operator",
     "Read Only Operators can view user, device, enrollment, configuration and application "
     "information.", ["Microsoft.Intune_DeviceConfigurations_Read",
                      "Microsoft.Intune_ManagedDevices_Read"]),
]

# Built-in authentication strengths (Entra): fixed ids, immutable.
BUILTIN_STRENGTHS: list[tuple[str, str, str, list[str]]] = [
    ("00000000-0000-0000-0000-000000000002", "Multifactor authentication",
     "Combinations of methods that satisfy strong authentication, such as a password + SMS",
     ["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor", "deviceBasedPush",
      "password,microsoftAuthenticatorPush", "password,softwareOath", "password,sms"]),
    ("00000000-0000-0000-0000-000000000003", "Passwordless MFA",
     "Passwordless methods that satisfy strong authentication, such as Passwordless sign-in with "
     "the Microsoft Authenticator", ["windowsHelloForBusiness", "fido2",
                                     "x509CertificateMultiFactor", "deviceBasedPush"]),
    ("00000000-0000-0000-0000-000000000004", "Phishing-resistant MFA",
     "Phishing-resistant, Passwordless methods for the strongest authentication, such as a "
     "FIDO2 security key", ["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor"]),
]


def role_permissions(actions: list[str]) -> list[Obj]:
    """``rolePermissions`` of an Intune role definition (allowed resource actions)."""
    return [{"@odata.type": "#microsoft.graph.rolePermission", "actions": actions,
             "resourceActions": [{"@odata.type": "#microsoft.graph.resourceAction",
                                  "allowedResourceActions": actions,
                                  "notAllowedResourceActions": []}]}]


def add_builtins(tenant: Any, seed: int) -> None:
    """Give a fresh tenant what every real tenant has.

    Args:
        tenant: The :class:`~localdev.graphsim.state.Tenant` to fill.
        seed: The tenant's seed (custom ADMX definition ids depend on it).
    """
    tenant.coll("roleScopeTags")["0"] = {
        "@odata.type": "#microsoft.graph.roleScopeTag", "id": "0", "displayName": "Default",
        "description": "", "isBuiltIn": True, "assignments": []}
    # Custom scope tag ids are small integers that differ between tenants.
    tenant.next_scope_tag = (seed % 89) * 3 + 1
    for index, default in enumerate(DEFAULT_ENROLLMENT):
        obj_id = f"{tenant.id}_{default['suffix']}"
        tenant.coll("deviceEnrollmentConfigurations")[obj_id] = {
            "@odata.type": default["@odata.type"], "id": obj_id,
            "displayName": default["displayName"], "description": default["description"],
            "priority": 0, "createdDateTime": STAMP, "lastModifiedDateTime": STAMP,
            "version": index + 1, "roleScopeTagIds": ["0"],
            "deviceEnrollmentConfigurationType": default["deviceEnrollmentConfigurationType"],
            **default["extra"], "assignments": [
                {"id": f"{obj_id}_allLicensedUsers", "source": "direct", "sourceId": obj_id,
                 "target": {"@odata.type": "#microsoft.graph.allLicensedUsersAssignmentTarget",
                            "deviceAndAppManagementAssignmentFilterId": None,
                            "deviceAndAppManagementAssignmentFilterType": "none"}}]}
    for role_id, name, description, actions in BUILTIN_ROLES:
        tenant.coll("roleDefinitions")[role_id] = {
            "@odata.type": "#microsoft.graph.deviceAndAppManagementRoleDefinition", "id": role_id,
            "displayName": name, "description": description, "isBuiltIn": True,
            "isBuiltInRoleDefinition": True, "roleScopeTagIds": ["0"],
            "permissions": role_permissions(actions), "rolePermissions": role_permissions(actions)}
    # Every tenant has the default branding profile: editable, never deleted or assigned.
    branding_id = f"{tenant.id[:8]}-0000-0000-0000-000000000000"
    tenant.coll("intuneBrandingProfiles")[branding_id] = {
        "@odata.type": "#microsoft.graph.intuneBrandingProfile", "id": branding_id,
        "profileName": "Default", "profileDescription": "Default branding profile",
        "isDefaultProfile": True, "displayName": tenant.display_name,
        "contactITName": None, "contactITPhoneNumber": None, "contactITEmailAddress": None,
        "contactITNotes": None, "privacyUrl": None, "onlineSupportSiteUrl": None,
        "onlineSupportSiteName": None, "themeColor": {"r": 0, "g": 114, "b": 198},
        "showLogo": False, "showDisplayNameNextToLogo": True, "themeColorLogo": None,
        "lightBackgroundLogo": None, "landingPageCustomizedImage": None,
        "customPrivacyMessage": None, "customCanSeePrivacyMessage": None,
        "customCantSeePrivacyMessage": None, "isRemoveDeviceDisabled": False,
        "isFactoryResetDisabled": False, "companyPortalBlockedActions": [],
        "showAzureADEnterpriseApps": False, "showOfficeWebApps": False,
        "showConfigurationManagerApps": False, "sendDeviceOwnershipChangePushNotification": False,
        "enrollmentAvailability": "availableWithPrompts", "disableClientTelemetry": False,
        "disableDeviceCategorySelection": False, "roleScopeTagIds": ["0"],
        "createdDateTime": STAMP, "lastModifiedDateTime": STAMP, "assignments": []}
    for strength_id, name, description, combinations in BUILTIN_STRENGTHS:
        tenant.coll("authenticationStrengthPolicies")[strength_id] = {
            "@odata.type": "#microsoft.graph.authenticationStrengthPolicy", "id": strength_id,
            "createdDateTime": "2021-12-01T00:00:00Z", "modifiedDateTime": "2021-12-01T00:00:00Z",
            "displayName": name, "description": description, "policyType": "builtIn",
            "requirementsSatisfied": "mfa", "allowedCombinations": combinations,
            "combinationConfigurations": []}
    for template in INTENT_TEMPLATES:
        tenant.coll("templates")[template["id"]] = _copy(template)
    _add_tenant_wide_defaults(tenant)
    for definition in BUILTIN_GP_DEFINITIONS + custom_admx_definitions(seed):
        tenant.coll("groupPolicyDefinitions")[definition["id"]] = _copy(definition)


# Built-in app categories: the same names and ids in every tenant.
BUILTIN_APP_CATEGORIES: list[tuple[str, str]] = [
    (_uuid(_ids(f"app-category:{name}")), name) for name in (
        "Other apps", "Books & Reference", "Data management", "Productivity", "Business",
        "Development & Design", "Photos & Media", "Collaboration & Social", "Computer management")]
# Microsoft apps every tenant lists for app protection (not the tenant's own; never captured).
BUILTIN_MANAGED_APPS: list[tuple[str, str, str]] = [
    ("managedIOSStoreApp", "Microsoft Outlook", "com.microsoft.Office.Outlook"),
    ("managedAndroidStoreApp", "Microsoft Teams", "com.microsoft.teams"),
]
# Compliance partners on offer: listed in every tenant with state "unknown" until connected.
OFFERED_COMPLIANCE_PARTNERS = ["Citrix Workspace device compliance", "MobileIron Device Compliance "
                               "Cloud", "VMware Workspace ONE mobile compliance"]


def _add_tenant_wide_defaults(tenant: Any) -> None:
    """Tenant settings and cleanup settings at their defaults, built-in categories, apps, partners."""
    # Graph gives these properties of deviceManagement no id; the stored "id" is only the control API's
    # handle (the reader's name for them) and never leaves through Graph.
    tenant.coll("deviceManagementSettings")["singleton"] = {
        "@odata.type": "#microsoft.graph.deviceManagementSettings", "id": "tenantSettings",
        "deviceComplianceCheckinThresholdDays": 30, "isScheduledActionEnabled": True,
        "secureByDefault": False, "enhancedJailBreak": False,
        "deviceInactivityBeforeRetirementInDay": 0, "derivedCredentialProvider": "notConfigured",
        "derivedCredentialUrl": None, "androidDeviceAdministratorEnrollmentEnabled": False,
        "ignoreDevicesForUnsupportedSettingsEnabled": False, "enableLogCollection": True,
        "enableAutopilotDiagnostics": True, "enableEnhancedTroubleshootingExperience": False,
        "enableDeviceGroupMembershipReport": False}
    tenant.coll("managedDeviceCleanupSettings")["singleton"] = {
        "@odata.type": "#microsoft.graph.managedDeviceCleanupSettings", "id": "deviceCleanupSettings",
        "deviceInactivityBeforeRetirementInDays": "0"}
    for category_id, name in BUILTIN_APP_CATEGORIES:
        tenant.coll("mobileAppCategories")[category_id] = {
            "@odata.type": "#microsoft.graph.mobileAppCategory", "id": category_id,
            "displayName": name, "lastModifiedDateTime": STAMP}
    rng = _ids("builtin-managed-apps")
    for odata_type, name, bundle in BUILTIN_MANAGED_APPS:
        app_id = _uuid(rng)
        tenant.coll("mobileApps")[app_id] = {
            "@odata.type": f"#microsoft.graph.{odata_type}", "id": app_id, "displayName": name,
            "description": name, "publisher": "Microsoft Corporation", "largeIcon": None,
            "createdDateTime": STAMP, "lastModifiedDateTime": STAMP, "isFeatured": False,
            "uploadState": 2, "publishingState": "published", "isAssigned": False,
            "roleScopeTagIds": [], "dependentAppCount": 0, "supersedingAppCount": 0,
            "supersededAppCount": 0, "appAvailability": "global", "version": "1",
            ("bundleId" if "IOS" in odata_type else "packageId"): bundle, "categories": [],
            "assignments": []}
    rng = _ids("offered-compliance-partners")
    for name in OFFERED_COMPLIANCE_PARTNERS:
        partner_id = _uuid(rng)
        tenant.coll("complianceManagementPartners")[partner_id] = {
            "@odata.type": "#microsoft.graph.complianceManagementPartner", "id": partner_id,
            "lastHeartbeatDateTime": "0001-01-01T00:00:00Z", "partnerState": "unknown",
            "displayName": name, "macOsOnboarded": False, "windowsOnboarded": False,
            "androidOnboarded": False, "iosOnboarded": False, "macOsEnrollmentAssignments": [],
            "androidEnrollmentAssignments": [], "iosEnrollmentAssignments": []}


def _copy(obj: Obj) -> Obj:
    return copy.deepcopy(obj)
