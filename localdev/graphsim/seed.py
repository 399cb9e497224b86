"""Seed data: the demo tenant and generated tenants of N policies (deterministic for a seed)."""

from __future__ import annotations

import base64
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from localdev.graphsim.state import Tenant
from localdev.graphsim.tenant_defaults import INTENT_TEMPLATES, add_builtins

__all__ = ["DEMO_TENANT_ID", "Seeder", "build_tenant"]

Obj = dict[str, Any]
DEMO_TENANT_ID = "5f0c6a0e-3b7d-4c1e-9a2f-7d8e9f0a1b2c"
# A notification action with no template uses the empty GUID, as Intune does.
NO_TEMPLATE = "00000000-0000-0000-0000-000000000000"
EPOCH = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
G = "#microsoft.graph."
SECRETS = "_omaSecrets"


class Seeder:
    """Builds objects for one tenant with ids and dates drawn from a seeded random source."""

    def __init__(self, tenant: Tenant, rng: random.Random) -> None:
        self.tenant = tenant
        self.rng = rng
        self.groups: list[str] = []
        self.filters: list[str] = []
        self.tags: list[str] = []
        self.notification_templates: list[str] = []
        self.priority = 1

    # ------------------------------------------------------------------ primitives
    def uid(self) -> str:
        """A GUID drawn from the seed."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def stamp(self) -> str:
        """A date in the past year, drawn from the seed."""
        when = EPOCH + timedelta(seconds=self.rng.randrange(0, 360 * 86400))
        return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{self.rng.randrange(10**7):07d}Z"

    def add(self, coll: str, obj: Obj) -> Obj:
        """Store ``obj`` in a collection."""
        self.tenant.coll(coll)[obj["id"]] = obj
        return obj

    def base(self, odata_type: str, *, tags: bool = True) -> Obj:
        """Server fields of a new Intune object."""
        created = self.stamp()
        obj: Obj = {"@odata.type": G + odata_type, "id": self.uid(), "createdDateTime": created,
                    "lastModifiedDateTime": max(created, self.stamp())}
        if tags:
            obj["roleScopeTagIds"] = self.pick_tags()
        return obj

    def pick_tags(self) -> list[str]:
        """Usually Default, sometimes a custom scope tag too."""
        if self.tags and self.rng.random() < 0.35:
            return ["0", self.rng.choice(self.tags)]
        return ["0"]

    def assignments(self, obj_id: str, count: int | None = None, *,
                    kind: str = "plain") -> list[Obj]:
        """Assignments to seeded groups (with filters now and then) or to all devices/users."""
        count = self.rng.randrange(0, 3) if count is None else count
        out: list[Obj] = []
        groups = self.rng.sample(self.groups, min(count, len(self.groups))) if self.groups else []
        for index, group in enumerate(groups):
            exclude = index == 1 and self.rng.random() < 0.3
            use_filter = self.filters and not exclude and self.rng.random() < 0.4
            target = {"@odata.type": G + ("exclusionGroupAssignmentTarget" if exclude
                                          else "groupAssignmentTarget"), "groupId": group,
                      "deviceAndAppManagementAssignmentFilterId":
                          self.rng.choice(self.filters) if use_filter else None,
                      "deviceAndAppManagementAssignmentFilterType":
                          "include" if use_filter else "none"}
            out.append(self._assignment(obj_id, group, target, kind))
        if count and not groups:
            target = {"@odata.type": G + "allDevicesAssignmentTarget",
                      "deviceAndAppManagementAssignmentFilterId": None,
                      "deviceAndAppManagementAssignmentFilterType": "none"}
            out.append(self._assignment(obj_id, "allDevices", target, kind))
        return out

    @staticmethod
    def _assignment(obj_id: str, suffix: str, target: Obj, kind: str) -> Obj:
        item: Obj = {"id": f"{obj_id}_{suffix}", "source": "direct", "sourceId": obj_id,
                     "target": target}
        if kind == "script":
            item = {"@odata.type": G + "deviceManagementScriptAssignment", **item}
        elif kind == "health":
            item = {"@odata.type": G + "deviceHealthScriptAssignment", **item,
                    "runRemediationScript": True,
                    "runSchedule": {"@odata.type": G + "deviceHealthScriptDailySchedule",
                                    "interval": 1, "useUtc": False, "time": "09:00:00.0000000"}}
        return item

    # ------------------------------------------------------------------ foundations
    def group(self, name: str, *, dynamic_rule: str | None = None) -> Obj:
        """An Entra security group."""
        nickname = "".join(ch for ch in name if ch.isalnum()) or "group"
        obj: Obj = {"@odata.type": G + "group", "id": self.uid(), "displayName": name,
               "description": f"{name} (seeded)", "mailEnabled": False, "mailNickname": nickname,
               "securityEnabled": True, "groupTypes": ["DynamicMembership"] if dynamic_rule else [],
               "membershipRule": dynamic_rule,
               "membershipRuleProcessingState": "On" if dynamic_rule else None,
               "createdDateTime": self.stamp(), "deletedDateTime": None, "visibility": None}
        self.groups.append(str(obj["id"]))
        return self.add("groups", obj)

    def scope_tag(self, name: str) -> Obj:
        """A custom scope tag (small-integer id, tenant specific)."""
        tag_id = str(self.tenant.next_scope_tag)
        self.tenant.next_scope_tag += 1
        obj = {"@odata.type": G + "roleScopeTag", "id": tag_id, "displayName": name,
               "description": f"Scope for {name}", "isBuiltIn": False, "assignments": []}
        self.tags.append(tag_id)
        return self.add("roleScopeTags", obj)

    def assignment_filter(self, name: str, platform: str, rule: str) -> Obj:
        """An assignment filter."""
        obj = self.base("deviceAndAppManagementAssignmentFilter", tags=False)
        obj.update({"displayName": name, "description": "", "platform": platform, "rule": rule,
                    "roleScopeTags": ["0"], "payloads": [],
                    "assignmentFilterManagementType": "devices"})
        self.filters.append(obj["id"])
        return self.add("assignmentFilters", obj)

    def notification_template(self, name: str, locales: list[str]) -> Obj:
        """A compliance notification template with localized messages."""
        obj = self.base("notificationMessageTemplate")
        obj.update({"displayName": name, "description": "", "defaultLocale": locales[0],
                    "brandingOptions": "includeCompanyLogo,includeCompanyName"})
        obj["localizedNotificationMessages"] = [
            {"@odata.type": G + "localizedNotificationMessage", "id": f"{obj['id']}_{loc}",
             "lastModifiedDateTime": obj["lastModifiedDateTime"], "locale": loc,
             "subject": f"[{loc}] {name}", "messageTemplate": f"Your device is not compliant "
                                                              f"({loc}).",
             "isDefault": loc == locales[0]} for loc in locales]
        self.notification_templates.append(obj["id"])
        return self.add("notificationMessageTemplates", obj)

    def device_category(self, name: str) -> Obj:
        """A device category."""
        obj = {"@odata.type": G + "deviceCategory", "id": self.uid(), "displayName": name,
               "description": f"{name} devices", "roleScopeTagIds": ["0"]}
        return self.add("deviceCategories", obj)

    # ------------------------------------------------------------------ policies
    def settings_catalog(self, name: str, n_settings: int, *, platforms: str = "windows10",
                         technologies: str = "mdm") -> Obj:
        """A settings catalog policy with ``n_settings`` settings of mixed instance types."""
        obj = self.base("deviceManagementConfigurationPolicy")
        settings = [self._catalog_setting(i) for i in range(n_settings)]
        obj.update({"name": name, "description": f"{name} (seeded)", "platforms": platforms,
                    "technologies": technologies, "settingCount": len(settings),
                    "creationSource": None, "isAssigned": False, "priorityMetaData": None,
                    "templateReference": {"templateId": "", "templateFamily": "none",
                                          "templateDisplayName": None,
                                          "templateDisplayVersion": None}})
        obj["settings"] = settings
        obj["assignments"] = self.assignments(obj["id"])
        obj["isAssigned"] = bool(obj["assignments"])
        return self.add("configurationPolicies", obj)

    def _catalog_setting(self, index: int) -> Obj:
        base = f"device_vendor_msft_policy_config_sim_area{index // 10}_setting{index}"
        kind = index % 4
        if kind == 0:
            instance: Obj = {
                "@odata.type": G + "deviceManagementConfigurationChoiceSettingInstance",
                "settingDefinitionId": base, "settingInstanceTemplateReference": None,
                "choiceSettingValue": {"@odata.type": G + "deviceManagementConfigurationChoice"
                                                          "SettingValue",
                                       "value": f"{base}_{self.rng.choice(['0', '1', '2'])}",
                                       "settingValueTemplateReference": None, "children": []}}
        elif kind == 1:
            instance = {
                "@odata.type": G + "deviceManagementConfigurationSimpleSettingInstance",
                "settingDefinitionId": base, "settingInstanceTemplateReference": None,
                "simpleSettingValue": {"@odata.type": G + "deviceManagementConfigurationInteger"
                                                          "SettingValue",
                                       "value": self.rng.randrange(1, 1000),
                                       "settingValueTemplateReference": None}}
        elif kind == 2:
            instance = {
                "@odata.type": G + "deviceManagementConfigurationSimpleSettingInstance",
                "settingDefinitionId": base, "settingInstanceTemplateReference": None,
                "simpleSettingValue": {"@odata.type": G + "deviceManagementConfigurationString"
                                                          "SettingValue",
                                       "value": f"value-{self.rng.randrange(10**6)}",
                                       "settingValueTemplateReference": None}}
        else:
            instance = {
                "@odata.type": G + "deviceManagementConfigurationGroupSettingCollectionInstance",
                "settingDefinitionId": base, "settingInstanceTemplateReference": None,
                "groupSettingCollectionValue": [{
                    "settingValueTemplateReference": None,
                    "children": [{
                        "@odata.type": G + "deviceManagementConfigurationChoiceSettingInstance",
                        "settingDefinitionId": f"{base}_item",
                        "settingInstanceTemplateReference": None,
                        "choiceSettingValue": {
                            "@odata.type": G + "deviceManagementConfigurationChoiceSettingValue",
                            "value": f"{base}_item_1", "settingValueTemplateReference": None,
                            "children": []}}]}]}
        return {"@odata.type": G + "deviceManagementConfigurationSetting", "id": str(index),
                "settingInstance": instance}

    def device_configuration(self, name: str, kind: str = "custom") -> Obj:
        """A device configuration profile (custom OMA-URI, general restrictions, iOS, macOS)."""
        types = {"custom": "windows10CustomConfiguration",
                 "general": "windows10GeneralConfiguration",
                 "ios": "iosGeneralDeviceConfiguration",
                 "macos": "macOSGeneralDeviceConfiguration"}
        obj = self.base(types[kind])
        obj.update({"displayName": name, "description": "", "version": self.rng.randrange(1, 9),
                    "supportsScopeTags": True, "deviceManagementApplicabilityRuleOsEdition": None,
                    "deviceManagementApplicabilityRuleOsVersion": None,
                    "deviceManagementApplicabilityRuleDeviceMode": None})
        if kind == "custom":
            secret_ref = self.uid()
            # Plain text lives apart from the object, as Graph only reveals it through a function.
            self.add(SECRETS, {"id": secret_ref,
                               "value": f"agent-key-{self.rng.randrange(10**6)}"})
            obj["omaSettings"] = [
                {"@odata.type": G + "omaSettingString", "displayName": "Proxy server",
                 "description": "", "omaUri": "./Device/Vendor/MSFT/Policy/Config/Sim/Proxy",
                 "value": "proxy.contoso.local:8080", "isEncrypted": False,
                 "secretReferenceValueId": None, "isReadOnly": False},
                {"@odata.type": G + "omaSettingString", "displayName": "Agent key",
                 "description": "", "omaUri": "./Device/Vendor/MSFT/Policy/Config/Sim/AgentKey",
                 "value": "****", "isEncrypted": True, "secretReferenceValueId": secret_ref,
                 "isReadOnly": False},
                {"@odata.type": G + "omaSettingInteger", "displayName": "Telemetry level",
                 "description": "", "omaUri": "./Device/Vendor/MSFT/Policy/Config/System/"
                                             "AllowTelemetry", "value": 1, "isEncrypted": False,
                 "secretReferenceValueId": None, "isReadOnly": False, "isReadOnlyValue": False},
            ]
        elif kind == "general":
            obj.update({"passwordRequired": True, "passwordMinimumLength": 8,
                        "cameraBlocked": False, "bluetoothBlocked": False,
                        "defenderRequireRealTimeMonitoring": True, "smartScreenEnableAppInstall"
                        "Control": True, "edgeBlockPopups": True})
        elif kind == "ios":
            obj.update({"passcodeRequired": True, "passcodeMinimumLength": 6,
                        "cameraBlocked": False, "iCloudBlockBackup": True,
                        "appStoreBlocked": False})
        else:
            obj.update({"passwordRequired": True, "passwordMinimumLength": 10,
                        "airDropBlocked": True, "iCloudBlockDocumentSync": False})
        obj["assignments"] = self.assignments(obj["id"])
        return self.add("deviceConfigurations", obj)

    def update_ring(self, name: str) -> Obj:
        """A Windows Update for Business ring (a deviceConfiguration subtype)."""
        obj = self.base("windowsUpdateForBusinessConfiguration")
        obj.update({"displayName": name, "description": "", "version": self.rng.randrange(1, 5),
                    "supportsScopeTags": True, "deliveryOptimizationMode": "userDefined",
                    "prereleaseFeatures": "userDefined", "automaticUpdateMode":
                    "autoInstallAtMaintenanceTime", "microsoftUpdateServiceAllowed": True,
                    "driversExcluded": False, "qualityUpdatesDeferralPeriodInDays":
                    self.rng.choice([0, 3, 7]), "featureUpdatesDeferralPeriodInDays":
                    self.rng.choice([0, 30, 60]), "qualityUpdatesPaused": False,
                    "featureUpdatesPaused": False, "qualityUpdatesPauseExpiryDateTime":
                    "0001-01-01T00:00:00Z", "featureUpdatesPauseExpiryDateTime":
                    "0001-01-01T00:00:00Z", "businessReadyUpdatesOnly": "userDefined",
                    "skipChecksBeforeRestart": False, "featureUpdatesRollbackWindowInDays": 10,
                    "deadlineForFeatureUpdatesInDays": 7, "deadlineForQualityUpdatesInDays": 2,
                    "deadlineGracePeriodInDays": 2, "postponeRebootUntilAfterDeadline": False,
                    "qualityUpdatesPauseStartDate": None, "featureUpdatesPauseStartDate": None,
                    "qualityUpdatesWillBeRolledBack": False,
                    "featureUpdatesWillBeRolledBack": False})
        obj["assignments"] = self.assignments(obj["id"])
        return self.add("deviceConfigurations", obj)

    def compliance(self, name: str, kind: str = "windows") -> Obj:
        """A classic compliance policy with scheduled actions (block, then notify)."""
        types = {"windows": "windows10CompliancePolicy", "ios": "iosCompliancePolicy",
                 "android": "androidWorkProfileCompliancePolicy", "macos": "macOSCompliancePolicy"}
        obj = self.base(types[kind])
        obj.update({"displayName": name, "description": "", "version": self.rng.randrange(1, 6),
                    "passwordRequired": True, "passwordMinimumLength": 8})
        if kind == "windows":
            obj.update({"osMinimumVersion": "10.0.19045", "bitLockerEnabled": True,
                        "secureBootEnabled": True, "storageRequireEncryption": True})
        elif kind == "ios":
            obj.update({"osMinimumVersion": "17.0", "securityBlockJailbrokenDevices": True})
        elif kind == "android":
            obj.update({"securityBlockJailbrokenDevices": True, "osMinimumVersion": "12"})
        else:
            obj.update({"osMinimumVersion": "14.0", "systemIntegrityProtectionEnabled": True})
        actions = [{"id": self.uid(), "actionType": "block", "gracePeriodHours": 0,
                    "notificationTemplateId": NO_TEMPLATE, "notificationMessageCCList": []}]
        if self.notification_templates:
            actions.append({"id": self.uid(), "actionType": "notification",
                            "gracePeriodHours": 24,
                            "notificationTemplateId": self.rng.choice(self.notification_templates),
                            "notificationMessageCCList": self.groups[:1]})
        obj["scheduledActionsForRule"] = [{"id": self.uid(), "ruleName": "PasswordRequired",
                                           "scheduledActionConfigurations": actions}]
        obj["assignments"] = self.assignments(obj["id"])
        return self.add("deviceCompliancePolicies", obj)

    def gpo(self, name: str, *, custom: bool = False) -> Obj:
        """An Administrative Templates policy with definition and presentation values."""
        obj = self.base("groupPolicyConfiguration")
        obj.update({"displayName": name, "description": "",
                    "policyConfigurationIngestionType": "custom" if custom else "builtIn"})
        definitions = [d for d in self.tenant.items("groupPolicyDefinitions")
                       if (d["policyType"] == "admxIngested") == custom]
        chosen = self.rng.sample(definitions, min(len(definitions), self.rng.randrange(2, 4)))
        values = []
        for definition in chosen:
            stamp = obj["lastModifiedDateTime"]
            pvs = []
            for pres in definition.get("presentations", []):
                kind = pres["@odata.type"].removeprefix(G + "groupPolicyPresentation")
                pv: Obj = {"id": self.uid(), "createdDateTime": stamp,
                           "lastModifiedDateTime": stamp, "_presentationId": pres["id"]}
                if kind == "ListBox":
                    pv.update({"@odata.type": G + "groupPolicyPresentationValueList",
                               "values": [{"name": "ext1", "value": "https://ext.local/1"}]})
                elif kind == "DecimalTextBox":
                    pv.update({"@odata.type": G + "groupPolicyPresentationValueDecimal",
                               "value": self.rng.randrange(1, 500)})
                elif kind == "CheckBox":
                    pv.update({"@odata.type": G + "groupPolicyPresentationValueBoolean",
                               "value": True})
                else:
                    pv.update({"@odata.type": G + "groupPolicyPresentationValueText",
                               "value": f"https://intranet{self.rng.randrange(100)}.local"})
                pvs.append(pv)
            values.append({"id": self.uid(), "enabled": True, "configurationType": "policy",
                           "createdDateTime": stamp, "lastModifiedDateTime": stamp,
                           "_definitionId": definition["id"], "presentationValues": pvs})
        obj["definitionValues"] = values
        obj["assignments"] = self.assignments(obj["id"])
        return self.add("groupPolicyConfigurations", obj)

    def script(self, name: str) -> Obj:
        """A PowerShell platform script (content only on item GET)."""
        obj = self.base("deviceManagementScript")
        content = f"# {name}\nWrite-Output 'configured {self.rng.randrange(10**6)}'\n"
        obj.update({"displayName": name, "description": "", "runAsAccount": "system",
                    "enforceSignatureCheck": False, "fileName": name.replace(" ", "_") + ".ps1",
                    "runAs32Bit": False,
                    "scriptContent": base64.b64encode(content.encode()).decode()})
        obj["assignments"] = self.assignments(obj["id"], kind="script")
        return self.add("deviceManagementScripts", obj)

    def health_script(self, name: str, *, is_global: bool = False) -> Obj:
        """A remediation (detection + remediation content only on item GET)."""
        obj = self.base("deviceHealthScript")
        detect = f"# detect {name}\nexit {self.rng.choice([0, 1])}\n"
        remediate = f"# remediate {name}\nRestart-Service Spooler\n"
        obj.update({"displayName": name, "description": "", "publisher": "Contoso IT" if not
                    is_global else "Microsoft", "version": "1", "runAsAccount": "system",
                    "runAs32Bit": False, "enforceSignatureCheck": False,
                    "isGlobalScript": is_global, "highestAvailableVersion": None,
                    "deviceHealthScriptType": "deviceHealthScript",
                    "detectionScriptContent": base64.b64encode(detect.encode()).decode(),
                    "remediationScriptContent": base64.b64encode(remediate.encode()).decode(),
                    "detectionScriptParameters": [], "remediationScriptParameters": []})
        obj["assignments"] = [] if is_global else self.assignments(obj["id"], kind="health")
        return self.add("deviceHealthScripts", obj)

    def intent(self, name: str, template_index: int = 0) -> Obj:
        """An endpoint security intent made from one of the built-in templates."""
        template = INTENT_TEMPLATES[template_index % len(INTENT_TEMPLATES)]
        obj = self.base("deviceManagementIntent")
        del obj["createdDateTime"]
        obj.update({"displayName": name, "description": "", "isAssigned": False,
                    "templateId": template["id"]})
        obj["settings"] = [dict(s, id=self.uid()) for s in template["settings"]]
        obj["assignments"] = self.assignments(obj["id"])
        obj["isAssigned"] = bool(obj["assignments"])
        return self.add("intents", obj)

    def feature_update(self, name: str) -> Obj:
        """A Windows feature update profile."""
        obj = self.base("windowsFeatureUpdateProfile")
        version = self.rng.choice(["Windows 11, version 23H2", "Windows 11, version 24H2"])
        obj.update({"displayName": name, "description": "", "featureUpdateVersion": version,
                    "deployableContentDisplayName": version, "endOfSupportDate":
                    "2026-11-10T00:00:00Z", "installLatestWindows10OnWindows11Ineligible"
                    "Device": False, "installFeatureUpdatesOptional": False,
                    "rolloutSettings": {"offerStartDateTimeInUTC": None,
                                        "offerEndDateTimeInUTC": None,
                                        "offerIntervalInDays": None}})
        obj["assignments"] = self.assignments(obj["id"])
        return self.add("windowsFeatureUpdateProfiles", obj)

    def quality_update(self, name: str) -> Obj:
        """A Windows quality (expedited) update profile."""
        obj = self.base("windowsQualityUpdateProfile")
        obj.update({"displayName": name, "description": "",
                    "expeditedUpdateSettings": {"qualityUpdateRelease": "2025-06-10T00:00:00Z",
                                                "daysUntilForcedReboot": 1},
                    "releaseDateDisplayName": "June 10, 2025 - 2025.06 B Security Updates",
                    "deployableContentDisplayName": "2025.06 B"})
        obj["assignments"] = self.assignments(obj["id"])
        return self.add("windowsQualityUpdateProfiles", obj)

    def _apps(self, platform: str) -> list[Obj]:
        bundles = {"ios": ["com.microsoft.office.outlook", "com.microsoft.skype.teams",
                           "com.microsoft.msedge"],
                   "android": ["com.microsoft.office.outlook", "com.microsoft.teams",
                               "com.microsoft.emmx"]}[platform]
        key = "bundleId" if platform == "ios" else "packageId"
        return [{"id": f"{b}.{platform}", "version": "-1", "mobileAppIdentifier": {
            "@odata.type": G + ("iosMobileAppIdentifier" if platform == "ios"
                                else "androidMobileAppIdentifier"), key: b}} for b in bundles]

    def app_protection(self, name: str, platform: str = "ios") -> Obj:
        """A MAM app protection policy with its targeted apps."""
        odata = "iosManagedAppProtection" if platform == "ios" else "androidManagedAppProtection"
        obj = self.base(odata)
        obj.update({"displayName": name, "description": "", "version": '"1"',
                    "periodOfflineBeforeAccessCheck": "PT12H", "pinRequired": True,
                    "minimumPinLength": 6, "dataBackupBlocked": True,
                    "allowedOutboundDataTransferDestinations": "managedApps",
                    "isAssigned": False, "deployedAppCount": 3, "targetedAppManagementLevels":
                    "unspecified", "appGroupType": "selectedPublicApps"})
        obj["apps"] = self._apps(platform)
        obj["assignments"] = self.assignments(obj["id"])
        obj["isAssigned"] = bool(obj["assignments"])
        return self.add(odata + "s", obj)

    def app_configuration(self, name: str) -> Obj:
        """A MAM app configuration (targeted managed app configuration)."""
        obj = self.base("targetedManagedAppConfiguration")
        obj.update({"displayName": name, "description": "", "version": '"1"',
                    "deployedAppCount": 1, "isAssigned": False,
                    "appGroupType": "selectedPublicApps",
                    "customSettings": [{"name": "com.microsoft.outlook.Mail.FocusedInbox",
                                        "value": "false"}],
                    "targetedAppManagementLevels": "unspecified"})
        obj["apps"] = self._apps("ios")[:1]
        obj["assignments"] = self.assignments(obj["id"])
        obj["isAssigned"] = bool(obj["assignments"])
        return self.add("targetedManagedAppConfigurations", obj)

    def enrollment(self, name: str, kind: str = "limit") -> Obj:
        """A custom (priority ≥ 1) enrollment configuration."""
        if kind == "limit":
            obj = self.base("deviceEnrollmentLimitConfiguration")
            obj.update({"limit": self.rng.randrange(3, 15),
                        "deviceEnrollmentConfigurationType": "limit"})
        else:
            obj = self.base("windows10EnrollmentCompletionPageConfiguration")
            obj.update({"showInstallationProgress": True, "blockDeviceSetupRetryByUser": False,
                        "allowDeviceResetOnInstallFailure": True,
                        "installProgressTimeoutInMinutes": 90, "selectedMobileAppIds": [],
                        "deviceEnrollmentConfigurationType":
                            "windows10EnrollmentCompletionPageConfiguration"})
        obj.update({"displayName": name, "description": "", "priority": self.priority,
                    "version": 1})
        self.priority += 1
        obj["assignments"] = self.assignments(obj["id"], count=1)
        return self.add("deviceEnrollmentConfigurations", obj)

    def autopilot(self, name: str) -> Obj:
        """A Windows Autopilot deployment profile."""
        obj = self.base("azureADWindowsAutopilotDeploymentProfile")
        obj.update({"displayName": name, "description": "", "language": "os-default",
                    "locale": "os-default", "deviceNameTemplate": "CTS-%SERIAL%",
                    "deviceType": "windowsPc", "enableWhiteGlove": True,
                    "extractHardwareHash": True, "managementServiceAppId": None,
                    "hybridAzureADJoinSkipConnectivityCheck": False,
                    "outOfBoxExperienceSettings": {"hidePrivacySettings": True,
                                                   "hideEULA": True, "userType": "standard",
                                                   "deviceUsageType": "singleUser",
                                                   "skipKeyboardSelectionPage": True,
                                                   "hideEscapeLink": True},
                    "enrollmentStatusScreenSettings": None})
        obj["assignments"] = self.assignments(obj["id"], count=1)
        return self.add("windowsAutopilotDeploymentProfiles", obj)


def _foundations(s: Seeder) -> None:
    for name in ("Region-EU", "Region-US", "Helpdesk"):
        s.scope_tag(name)
    for name in ("All Windows Devices", "Pilot Users", "Finance Users", "IT Admins",
                 "Kiosk Devices"):
        s.group(name)
    s.group("Contractors (dynamic)", dynamic_rule='(user.department -eq "Contractors")')
    s.assignment_filter("Windows - Corporate", "windows10AndLater",
                        '(device.deviceOwnership -eq "Corporate")')
    s.assignment_filter("iOS - Personal", "iOS", '(device.deviceOwnership -eq "Personal")')
    s.assignment_filter("Android - Enterprise", "androidForWork",
                        '(device.manufacturer -eq "Samsung")')
    for name in ("Finance", "Sales", "Shared devices"):
        s.device_category(name)
    s.notification_template("Non-compliance: first notice", ["en-us", "de-de"])
    s.notification_template("Non-compliance: final warning", ["en-us", "fr-fr", "nl-nl"])


def _demo(s: Seeder) -> None:
    _foundations(s)
    s.settings_catalog("Win - Defender Antivirus baseline", 40)
    s.settings_catalog("Win - Edge hardening", 12)
    s.settings_catalog("macOS - FileVault", 4, platforms="macOS",
                       technologies="mdm,appleRemoteManagement")
    s.device_configuration("Win - Custom OMA-URI", "custom")
    s.device_configuration("Win - Device restrictions", "general")
    s.device_configuration("iOS - Device restrictions", "ios")
    s.update_ring("Win - Update ring - Pilot")
    s.update_ring("Win - Update ring - Broad")
    s.compliance("Win - Baseline compliance", "windows")
    s.compliance("iOS - Baseline compliance", "ios")
    s.compliance("Android - Work profile compliance", "android")
    s.gpo("Edge - Admin template")
    s.gpo("Contoso Agent - Custom ADMX", custom=True)
    s.script("Configure power plan")
    s.script("Map network drives")
    s.health_script("Restart print spooler")
    s.health_script("Clear Teams cache")
    s.health_script("Microsoft - Update stale Group Policy", is_global=True)
    s.intent("BitLocker - Corporate", 0)
    s.intent("Firewall - Corporate", 1)
    s.feature_update("Win 11 - 24H2 rollout")
    s.feature_update("Win 11 - 23H2 hold")
    s.quality_update("Expedite - June 2025")
    s.app_protection("iOS - MAM baseline", "ios")
    s.app_protection("Android - MAM baseline", "android")
    s.app_configuration("Outlook - app configuration")
    s.enrollment("Limit - Finance users", "limit")
    s.enrollment("ESP - Kiosk devices", "esp")
    s.autopilot("Autopilot - User driven")
    s.autopilot("Autopilot - Self deploying kiosk")


# Generated tenants spread their policies over the types with these weights.
_GENERATORS: list[tuple[int, Callable[[Seeder, int], Obj]]] = [
    (14, lambda s, i: s.settings_catalog(f"Gen - Settings catalog {i:05d}",
                                         s.rng.choice([3, 8, 20, 30, 45]))),
    (14, lambda s, i: s.device_configuration(f"Gen - Device configuration {i:05d}",
                                             ("custom", "general", "ios", "macos")[i % 4])),
    (5, lambda s, i: s.update_ring(f"Gen - Update ring {i:05d}")),
    (10, lambda s, i: s.compliance(f"Gen - Compliance {i:05d}",
                                   ("windows", "ios", "android", "macos")[i % 4])),
    (6, lambda s, i: s.gpo(f"Gen - Admin template {i:05d}", custom=i % 5 == 0)),
    (6, lambda s, i: s.script(f"Gen - Script {i:05d}")),
    (5, lambda s, i: s.health_script(f"Gen - Remediation {i:05d}")),
    (4, lambda s, i: s.intent(f"Gen - Intent {i:05d}", i)),
    (3, lambda s, i: s.feature_update(f"Gen - Feature update {i:05d}")),
    (2, lambda s, i: s.quality_update(f"Gen - Quality update {i:05d}")),
    (8, lambda s, i: s.app_protection(f"Gen - App protection {i:05d}",
                                      "ios" if i % 2 else "android")),
    (4, lambda s, i: s.app_configuration(f"Gen - App configuration {i:05d}")),
    (4, lambda s, i: s.enrollment(f"Gen - Enrollment {i:05d}", "limit" if i % 2 else "esp")),
    (4, lambda s, i: s.autopilot(f"Gen - Autopilot {i:05d}")),
    (3, lambda s, i: s.assignment_filter(f"Gen - Filter {i:05d}", "windows10AndLater",
                                         f'(device.model -eq "Model {i}")')),
    (3, lambda s, i: s.notification_template(f"Gen - Notification {i:05d}", ["en-us"])),
    (3, lambda s, i: s.device_category(f"Gen - Category {i:05d}")),
]


def _generated(s: Seeder, policies: int) -> None:
    _foundations(s)
    for index in range(20):
        s.group(f"Gen - Group {index:03d}")
    weights = [w for w, _ in _GENERATORS]
    makers = [m for _, m in _GENERATORS]
    # Round-robin over a weighted schedule keeps every type present even for small N.
    schedule = [m for m, w in zip(makers, weights, strict=True) for _ in range(w)]
    s.rng.shuffle(schedule)
    ordered = makers + schedule
    for index in range(policies):
        ordered[index % len(ordered)](s, index)


def build_tenant(preset: str, *, tenant_id: str, seed: int = 0, display_name: str | None = None,
                 policies: int = 0) -> Tenant:
    """A new tenant for a preset: ``demo``, ``generated`` (``policies`` objects) or ``empty``.

    Args:
        preset: ``demo``, ``generated`` or ``empty``.
        tenant_id: The tenant's GUID.
        seed: Same preset and seed give the same ids; demo tenants with different seeds share
            display names but not group, filter, scope-tag or custom ADMX ids.
        display_name: Tenant display name (defaults by preset).
        policies: Number of policies for ``generated``.

    Returns:
        The filled tenant.
    """
    default_name = {"demo": "Contoso Demo", "generated": f"Generated {policies}",
                    "empty": "Empty tenant"}[preset]
    tenant = Tenant(id=tenant_id, display_name=display_name or default_name, seed=seed)
    add_builtins(tenant, seed)
    seeder = Seeder(tenant, random.Random(f"{preset}:{seed}"))
    if preset == "demo":
        _demo(seeder)
    elif preset == "generated":
        _generated(seeder, policies)
    return tenant

