"""Objects every tenant has: the Default scope tag, default enrollment configurations and more.

Intent templates and the built-in Administrative Templates catalogue have the same ids in every
tenant; custom (ingested ADMX) definitions get tenant-specific ids.
"""

from __future__ import annotations

import copy
import random
import uuid
from typing import Any

__all__ = ["BUILTIN_GP_DEFINITIONS", "INTENT_TEMPLATES", "add_builtins", "custom_admx_definitions"]

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
    for template in INTENT_TEMPLATES:
        tenant.coll("templates")[template["id"]] = _copy(template)
    for definition in BUILTIN_GP_DEFINITIONS + custom_admx_definitions(seed):
        tenant.coll("groupPolicyDefinitions")[definition["id"]] = _copy(definition)


def _copy(obj: Obj) -> Obj:
    return copy.deepcopy(obj)
