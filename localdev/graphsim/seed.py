"""Seed data: the demo tenant and generated tenants of N policies (deterministic for a seed)."""

from __future__ import annotations

import base64
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from localdev.graphsim.state import Tenant
from localdev.graphsim.tenant_defaults import INTENT_TEMPLATES, add_builtins, role_permissions

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
        elif kind == "app":
            item = {"@odata.type": G + "mobileAppAssignment", **item, "intent": "required",
                    "settings": None}
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

    # ------------------------------------------------------------------ compliance, scripts, admin, Entra
    def compliance_settings(self, name: str, n_settings: int) -> Obj:
        """A settings catalog compliance policy: settings plus scheduled actions (one block)."""
        obj = self.base("deviceManagementCompliancePolicy")
        settings = [self._catalog_setting(i) for i in range(n_settings)]
        obj.update({"name": name, "description": f"{name} (seeded)", "platforms": "linux",
                    "technologies": "linuxMdm", "settingCount": len(settings),
                    "creationSource": None, "isAssigned": False})
        obj["settings"] = settings
        actions = [{"id": self.uid(), "actionType": "block", "gracePeriodHours": 0,
                    "notificationTemplateId": NO_TEMPLATE, "notificationMessageCCList": []}]
        if self.notification_templates:
            actions.append({"id": self.uid(), "actionType": "notification",
                            "gracePeriodHours": 48,
                            "notificationTemplateId": self.rng.choice(self.notification_templates),
                            "notificationMessageCCList": []})
        obj["scheduledActionsForRule"] = [{"id": self.uid(), "ruleName": None,
                                           "scheduledActionConfigurations": actions}]
        obj["assignments"] = self.assignments(obj["id"])
        obj["isAssigned"] = bool(obj["assignments"])
        return self.add("compliancePolicies", obj)

    def compliance_script(self, name: str) -> Obj:
        """A custom compliance discovery script (content only on item GET)."""
        obj = self.base("deviceComplianceScript")
        body = (f"# {name}\n$result = @{{ BiosVersion = '{self.rng.randrange(100)}.0' }}\n"
                "return $result | ConvertTo-Json -Compress\n")
        obj.update({"displayName": name, "description": "", "publisher": "Contoso IT",
                    "version": "1", "runAsAccount": "system", "enforceSignatureCheck": False,
                    "runAs32Bit": False,
                    "detectionScriptContent": base64.b64encode(body.encode()).decode()})
        obj["assignments"] = []
        return self.add("deviceComplianceScripts", obj)

    def shell_script(self, name: str) -> Obj:
        """A macOS shell script (content only on item GET)."""
        obj = self.base("deviceShellScript")
        body = f"#!/bin/zsh\n# {name}\ndefaults write com.contoso.agent level {self.rng.randrange(9)}\n"
        obj.update({"displayName": name, "description": "", "runAsAccount": "system",
                    "fileName": name.replace(" ", "_") + ".sh", "executionFrequency": "PT0S",
                    "retryCount": self.rng.randrange(0, 4), "blockExecutionNotifications": True,
                    "scriptContent": base64.b64encode(body.encode()).decode()})
        obj["assignments"] = self.assignments(obj["id"], kind="script")
        return self.add("deviceShellScripts", obj)

    def custom_attribute(self, name: str) -> Obj:
        """A macOS custom attribute script (content only on item GET)."""
        obj = self.base("deviceCustomAttributeShellScript")
        attribute = "".join(ch for ch in name.title() if ch.isalnum())
        body = f"#!/bin/zsh\n# {name}\nsysctl -n machdep.cpu.brand_string\n"
        obj.update({"displayName": name, "description": "", "customAttributeName": attribute,
                    "customAttributeType": self.rng.choice(["string", "integer", "dateTime"]),
                    "runAsAccount": "system", "fileName": attribute + ".sh",
                    "scriptContent": base64.b64encode(body.encode()).decode()})
        obj["assignments"] = self.assignments(obj["id"], kind="script")
        return self.add("deviceCustomAttributeShellScripts", obj)

    def driver_update(self, name: str) -> Obj:
        """A Windows driver update profile with its driver inventory (approvals for manual)."""
        obj = self.base("windowsDriverUpdateProfile")
        manual = self.rng.random() < 0.5
        obj.update({"displayName": name, "description": "",
                    "approvalType": "manual" if manual else "automatic",
                    "deploymentDeferralInDays": 0 if manual else self.rng.choice([0, 7, 14]),
                    "deviceReporting": self.rng.randrange(0, 50), "newUpdates": 0,
                    "inventorySyncStatus": {"lastSuccessfulSyncDateTime": obj["lastModifiedDateTime"],
                                            "driverInventorySyncState": "success"}})
        obj["driverInventories"] = [
            {"@odata.type": G + "windowsDriverUpdateInventory", "id": self.uid(),
             "name": f"Contoso Chipset Driver {index}", "version": f"10.{index}.0.1",
             "manufacturer": "Contoso", "releaseDateTime": obj["createdDateTime"],
             "driverClass": "System", "applicableDeviceCount": self.rng.randrange(1, 40),
             "approvalStatus": "approved" if manual and index == 0 else "needsReview",
             "category": "recommended", "deployDateTime": obj["createdDateTime"] if manual
             and index == 0 else None} for index in range(self.rng.randrange(1, 4))]
        obj["assignments"] = self.assignments(obj["id"])
        return self.add("windowsDriverUpdateProfiles", obj)

    def role_definition(self, name: str) -> Obj:
        """A custom Intune role."""
        obj = self.base("deviceAndAppManagementRoleDefinition")
        del obj["createdDateTime"], obj["lastModifiedDateTime"]
        actions = self.rng.sample(["Microsoft.Intune_DeviceConfigurations_Read",
                                   "Microsoft.Intune_DeviceConfigurations_Update",
                                   "Microsoft.Intune_ManagedDevices_Read",
                                   "Microsoft.Intune_RemoteTasks_SyncDevice",
                                   "Microsoft.Intune_Audit_Read"], 3)
        permissions = role_permissions(actions)
        obj.update({"displayName": name, "description": f"{name} (seeded)", "isBuiltIn": False,
                    "isBuiltInRoleDefinition": False, "permissions": permissions,
                    "rolePermissions": permissions})
        return self.add("roleDefinitions", obj)

    def role_assignment(self, name: str) -> Obj:
        """An assignment of a (built-in or custom) role to admin groups over scope groups."""
        roles = self.tenant.items("roleDefinitions")
        role = self.rng.choice(roles)
        obj = {"@odata.type": G + "deviceAndAppManagementRoleAssignment", "id": self.uid(),
               "displayName": name, "description": "", "scopeType": "resourceScope",
               "members": self.rng.sample(self.groups, min(1, len(self.groups))),
               "scopeMembers": self.rng.sample(self.groups, min(2, len(self.groups))),
               "resourceScopes": [], "roleDefinition": {"id": role["id"]},
               "roleScopeTags": [{"id": tag} for tag in self.pick_tags()]}
        obj["resourceScopes"] = list(obj["scopeMembers"])
        return self.add("roleAssignments", obj)

    def terms(self, name: str) -> Obj:
        """Terms and conditions shown at enrollment (assignments POSTed one by one)."""
        obj = self.base("termsAndConditions")
        obj.update({"displayName": name, "description": "", "title": f"{name} terms",
                    "bodyText": "Devices enrolled in Contoso management may be wiped.",
                    "acceptanceStatement": "I accept the Contoso device terms.",
                    "version": self.rng.randrange(1, 4)})
        obj["assignments"] = [
            {"@odata.type": G + "termsAndConditionsAssignment", "id": a["id"], "target": a["target"]}
            for a in self.assignments(obj["id"], count=1)]
        obj["acceptanceStatuses"] = []
        return self.add("termsAndConditions", obj)

    def branding(self, name: str) -> Obj:
        """A custom Company Portal branding profile with a logo (images only on item GET)."""
        obj = self.base("intuneBrandingProfile")
        logo = {"@odata.type": G + "mimeContent", "type": "image/png",
                "value": base64.b64encode(bytes(self.rng.randrange(256) for _ in range(48))).decode()}
        obj.update({"profileName": name, "profileDescription": f"{name} (seeded)",
                    "isDefaultProfile": False, "displayName": f"Contoso {name}",
                    "contactITName": "Contoso Helpdesk", "contactITPhoneNumber": "+1 555 0100",
                    "contactITEmailAddress": "helpdesk@contoso.example", "contactITNotes": None,
                    "privacyUrl": "https://contoso.example/privacy", "onlineSupportSiteUrl": None,
                    "onlineSupportSiteName": None,
                    "themeColor": {"r": self.rng.randrange(256), "g": 80, "b": 160},
                    "showLogo": True, "showDisplayNameNextToLogo": False,
                    "themeColorLogo": logo, "lightBackgroundLogo": dict(logo),
                    "landingPageCustomizedImage": None, "customPrivacyMessage": None,
                    "isRemoveDeviceDisabled": False, "isFactoryResetDisabled": True,
                    "companyPortalBlockedActions": [], "showAzureADEnterpriseApps": False,
                    "showOfficeWebApps": True, "enrollmentAvailability": "availableWithPrompts",
                    "disableClientTelemetry": False, "disableDeviceCategorySelection": False})
        obj["assignments"] = self.assignments(obj["id"], count=1)
        return self.add("intuneBrandingProfiles", obj)

    def management_partner(self, name: str) -> Obj:
        """A device management (compliance) partner connection."""
        obj = {"@odata.type": G + "deviceManagementPartner", "id": self.uid(),
               "displayName": name, "isConfigured": True, "partnerState": "enabled",
               "partnerAppType": "multiTenantApp", "lastHeartbeatDateTime": self.stamp(),
               "singleTenantAppId": None, "whenPartnerDevicesWillBeRemovedDateTime": None,
               "whenPartnerDevicesWillBeMarkedAsNonCompliantDateTime": None,
               "groupsRequiringPartnerEnrollment": [
                   {"@odata.type": G + "deviceManagementPartnerAssignment", "target": {
                       "@odata.type": G + "groupAssignmentTarget",
                       "groupId": self.rng.choice(self.groups),
                       "deviceAndAppManagementAssignmentFilterId": None,
                       "deviceAndAppManagementAssignmentFilterType": "none"}}]}
        return self.add("deviceManagementPartners", obj)

    def remote_assistance(self, name: str) -> Obj:
        """A remote assistance partner (onboarded from the partner's side)."""
        obj = {"@odata.type": G + "remoteAssistancePartner", "id": self.uid(),
               "displayName": name, "onboardingUrl": "https://remote.partner.example/onboard",
               "onboardingStatus": "onboarded", "lastConnectionDateTime": self.stamp()}
        return self.add("remoteAssistancePartners", obj)

    def reusable_setting(self, name: str) -> Obj:
        """A reusable settings group (Defender device control / firewall rules)."""
        obj = self.base("deviceManagementReusablePolicySetting", tags=False)
        definition = "vendor_msft_defender_configuration_devicecontrol_policygroups_{groupid}"
        obj.update({"displayName": name, "description": "", "version": self.rng.randrange(1, 4),
                    "settingDefinitionId": definition, "referencingConfigurationPolicyCount": 0,
                    "settingInstance": {
                        "@odata.type": G + "deviceManagementConfigurationGroupSettingCollection"
                                           "Instance",
                        "settingDefinitionId": definition, "settingInstanceTemplateReference": None,
                        "groupSettingCollectionValue": [{
                            "settingValueTemplateReference": None, "children": [{
                                "@odata.type": G + "deviceManagementConfigurationSimpleSetting"
                                                   "Instance",
                                "settingDefinitionId": definition + "_name",
                                "settingInstanceTemplateReference": None,
                                "simpleSettingValue": {
                                    "@odata.type": G + "deviceManagementConfigurationString"
                                                       "SettingValue",
                                    "value": name, "settingValueTemplateReference": None}}]}]}})
        obj["referencingConfigurationPolicies"] = []
        return self.add("reusablePolicySettings", obj)

    def policy_set(self, name: str) -> Obj:
        """A policy set bundling existing policies (items reference them by payloadId)."""
        obj = self.base("policySet", tags=False)
        obj.update({"displayName": name, "description": "", "status": "notAssigned",
                    "errorCode": "noError", "guidedDeploymentTags": [], "roleScopeTags": ["0"]})
        kinds = [("configurationPolicies", "deviceManagementConfigurationPolicyPolicySetItem",
                  "#microsoft.graph.deviceManagementConfigurationPolicy"),
                 ("deviceCompliancePolicies", "deviceCompliancePolicyPolicySetItem",
                  "#microsoft.graph.windows10CompliancePolicy")]
        items = []
        for coll, item_type, payload_type in kinds:
            candidates = self.tenant.items(coll)
            if not candidates:
                continue
            payload = self.rng.choice(candidates)
            items.append({"@odata.type": G + item_type, "id": self.uid(),
                          "createdDateTime": obj["createdDateTime"],
                          "lastModifiedDateTime": obj["lastModifiedDateTime"],
                          "payloadId": payload["id"], "itemType": payload_type,
                          "displayName": payload.get("displayName") or payload.get("name"),
                          "status": "notAssigned", "errorCode": "noError",
                          "guidedDeploymentTags": []})
        obj["items"] = items
        obj["assignments"] = self.assignments(obj["id"], count=1)
        return self.add("policySets", obj)

    def named_location(self, name: str, kind: str = "ip") -> Obj:
        """A Conditional Access named location (IP ranges or countries)."""
        stamp = self.stamp()
        obj: Obj = {"id": self.uid(), "displayName": name, "createdDateTime": stamp,
                    "modifiedDateTime": stamp}
        if kind == "ip":
            obj = {"@odata.type": G + "ipNamedLocation", **obj, "isTrusted": True,
                   "ipRanges": [{"@odata.type": G + "iPv4CidrRange",
                                 "cidrAddress": f"203.0.{self.rng.randrange(256)}.0/24"}]}
        else:
            obj = {"@odata.type": G + "countryNamedLocation", **obj,
                   "countriesAndRegions": self.rng.sample(["NL", "DE", "FR", "BE", "US"], 2),
                   "includeUnknownCountriesAndRegions": False,
                   "countryLookupMethod": "clientIpAddress"}
        return self.add("namedLocations", obj)

    def auth_strength(self, name: str) -> Obj:
        """A custom authentication strength (FIDO2 restricted to one key model)."""
        stamp = self.stamp()
        obj = {"@odata.type": G + "authenticationStrengthPolicy", "id": self.uid(),
               "createdDateTime": stamp, "modifiedDateTime": stamp, "displayName": name,
               "description": f"{name} (seeded)", "policyType": "custom",
               "requirementsSatisfied": "mfa",
               "allowedCombinations": ["fido2", "windowsHelloForBusiness"],
               "combinationConfigurations": [{
                   "@odata.type": G + "fido2CombinationConfiguration", "id": self.uid(),
                   "appliesToCombinations": ["fido2"],
                   "allowedAAGUIDs": [self.uid()]}]}
        return self.add("authenticationStrengthPolicies", obj)

    def conditional_access(self, name: str) -> Obj:
        """A Conditional Access policy referencing seeded groups, locations and strengths."""
        stamp = self.stamp()
        locations = [loc["id"] for loc in self.tenant.items("namedLocations")]
        strengths = self.tenant.items("authenticationStrengthPolicies")
        grant: Obj = {"operator": "OR", "builtInControls": ["mfa"], "customAuthenticationFactors": [],
                      "termsOfUse": [], "authenticationStrength": None}
        custom = [st for st in strengths if st.get("policyType") == "custom"]
        if custom and self.rng.random() < 0.5:
            chosen = self.rng.choice(custom)
            grant = {"operator": "OR", "builtInControls": [], "customAuthenticationFactors": [],
                     "termsOfUse": [], "authenticationStrength": {
                         "id": chosen["id"], "displayName": chosen["displayName"]}}
        obj = {"@odata.type": G + "conditionalAccessPolicy", "id": self.uid(),
               "templateId": None, "displayName": name, "createdDateTime": stamp,
               "modifiedDateTime": None, "state": self.rng.choice(
                   ["enabled", "enabledForReportingButNotEnforced", "disabled"]),
               "sessionControls": None, "conditions": {
                   "userRiskLevels": [], "signInRiskLevels": [], "clientAppTypes": ["all"],
                   "servicePrincipalRiskLevels": [], "platforms": None, "devices": None,
                   "applications": {"includeApplications": ["All"], "excludeApplications": [],
                                    "includeUserActions": [],
                                    "includeAuthenticationContextClassReferences": []},
                   "users": {"includeUsers": [], "excludeUsers": [],
                             "includeGroups": self.rng.sample(self.groups, min(1, len(self.groups))),
                             "excludeGroups": [], "includeRoles": [], "excludeRoles": []},
                   "locations": {"includeLocations": ["All"],
                                 "excludeLocations": locations[:1]} if locations else None},
               "grantControls": grant}
        return self.add("conditionalAccessPolicies", obj)

    # ------------------------------------------------------------------ apps, Apple, partners, cleanup
    def app_category(self, name: str) -> Obj:
        """A custom app category."""
        obj = {"@odata.type": G + "mobileAppCategory", "id": self.uid(), "displayName": name,
               "lastModifiedDateTime": self.stamp()}
        return self.add("mobileAppCategories", obj)

    def _app(self, odata_type: str, name: str) -> Obj:
        obj = self.base(odata_type)
        icon = base64.b64encode(bytes(self.rng.randrange(256) for _ in range(32))).decode()
        categories = self.tenant.items("mobileAppCategories")
        obj.update({"displayName": name, "description": f"{name} (seeded)", "publisher": "Contoso",
                    "largeIcon": {"@odata.type": G + "mimeContent", "type": "image/png",
                                  "value": icon},
                    "isFeatured": False, "privacyInformationUrl": None, "informationUrl": None,
                    "owner": "", "developer": "", "notes": "", "uploadState": 1,
                    "publishingState": "published", "isAssigned": False,
                    "dependentAppCount": 0, "supersedingAppCount": 0, "supersededAppCount": 0,
                    "categories": [dict(c) for c in self.rng.sample(categories,
                                                                    min(1, len(categories)))]})
        obj["assignments"] = self.assignments(obj["id"], kind="app")
        obj["isAssigned"] = bool(obj["assignments"])
        return obj

    def store_app(self, name: str, kind: str = "web") -> Obj:
        """An app Graph can create from metadata: a web link, a store listing or a WinGet package."""
        if kind == "web":
            obj = self._app("webApp", name)
            obj.update({"appUrl": f"https://apps.contoso.example/{self.rng.randrange(10**4)}",
                        "useManagedBrowser": False})
        elif kind == "ios":
            obj = self._app("iosStoreApp", name)
            obj.update({"bundleId": "com.microsoft.authenticator",
                        "appStoreUrl": "https://apps.apple.com/app/id983156458",
                        "applicableDeviceType": {"iPad": True, "iPhoneAndIPod": True},
                        "minimumSupportedOperatingSystem": {"v15_0": True}})
        else:
            obj = self._app("winGetApp", name)
            obj.update({"packageIdentifier": "9WZDNCRD29V9", "manifestHash": None,
                        "installExperience": {"runAsAccount": "user"}})
        return self.add("mobileApps", obj)

    def content_app(self, name: str, kind: str = "win32") -> Obj:
        """An app whose content is an uploaded binary (Win32) or a VPP licence."""
        if kind == "win32":
            obj = self._app("win32LobApp", name)
            obj.update({"fileName": name.replace(" ", "_") + ".intunewin",
                        "size": self.rng.randrange(10**6, 10**8), "committedContentVersion": "1",
                        "installCommandLine": "setup.exe /quiet",
                        "uninstallCommandLine": "setup.exe /uninstall /quiet",
                        "applicableArchitectures": "x64", "setupFilePath": "setup.exe",
                        "rules": [{"@odata.type": G + "win32LobAppFileSystemRule",
                                   "ruleType": "detection", "path": "C:\\Program Files\\Contoso",
                                   "fileOrFolderName": "agent.exe", "check32BitOn64System": False,
                                   "operationType": "exists", "operator": "notConfigured",
                                   "comparisonValue": None}],
                        "installExperience": {"runAsAccount": "system",
                                              "deviceRestartBehavior": "suppress"}})
        else:
            obj = self._app("iosVppApp", name)
            obj.update({"bundleId": "com.contoso.field", "usedLicenseCount": 3,
                        "totalLicenseCount": 25, "vppTokenOrganizationName": "Contoso",
                        "vppTokenAccountType": "business", "appStoreUrl": None,
                        "licensingType": {"supportsUserLicensing": False,
                                          "supportsDeviceLicensing": True}})
        return self.add("mobileApps", obj)

    def device_app_configuration(self, name: str) -> Obj:
        """An app configuration for managed devices targeting one of the tenant's apps."""
        apps = [a for a in self.tenant.items("mobileApps")
                if a["@odata.type"] == G + "iosStoreApp"] or self.tenant.items("mobileApps")
        obj = self.base("iosMobileAppConfiguration")
        obj.update({"displayName": name, "description": "", "version": self.rng.randrange(1, 4),
                    "targetedMobileApps": [self.rng.choice(apps)["id"]] if apps else [],
                    "encodedSettingXml": None,
                    "settings": [{"appConfigKey": "ServerUrl", "appConfigKeyType": "stringType",
                                  "appConfigKeyValue": "https://mdm.contoso.example"},
                                 {"appConfigKey": "AllowSync", "appConfigKeyType": "booleanType",
                                  "appConfigKeyValue": "true"}]})
        obj["assignments"] = self.assignments(obj["id"])
        return self.add("mobileAppConfigurations", obj)

    def windows_app_protection(self, name: str) -> Obj:
        """A Windows (Edge) app protection policy."""
        obj = self.base("windowsManagedAppProtection")
        obj.update({"displayName": name, "description": "", "version": '"1"',
                    "isAssigned": False, "deployedAppCount": 1, "appGroupType": "selectedPublicApps",
                    "allowedInboundDataTransferSources": "allApps",
                    "allowedOutboundClipboardSharingLevel": "none",
                    "allowedOutboundDataTransferDestinations": "none",
                    "printBlocked": True, "maximumAllowedDeviceThreatLevel": "notConfigured"})
        obj["apps"] = [{"id": "com.microsoft.edge.windows", "version": "-1", "mobileAppIdentifier": {
            "@odata.type": G + "windowsAppIdentifier", "windowsAppId": "com.microsoft.edge"}}]
        obj["assignments"] = self.assignments(obj["id"])
        obj["isAssigned"] = bool(obj["assignments"])
        return self.add("windowsManagedAppProtections", obj)

    def wip(self, name: str, *, mdm: bool = False) -> Obj:
        """A Windows Information Protection policy with an AppLocker file."""
        odata = "mdmWindowsInformationProtectionPolicy" if mdm else "windowsInformationProtectionPolicy"
        obj = self.base(odata)
        xml = f"<AppLockerPolicy Version='1'><!-- {name} --></AppLockerPolicy>"
        obj.update({"displayName": name, "description": "", "version": '"1"',
                    "enforcementLevel": "encryptAuditAndPrompt",
                    "enterpriseDomain": "contoso.example", "isAssigned": False,
                    "deployedAppCount": 1, "protectionUnderLockConfigRequired": False,
                    "revokeOnUnenrollDisabled": False, "azureRightsManagementServicesAllowed": False,
                    "protectedApps": [{"@odata.type": G + "windowsInformationProtectionDesktopApp",
                                       "displayName": "Contoso Notes", "publisherName":
                                       "O=CONTOSO", "productName": "NOTES", "denied": False,
                                       "binaryName": "notes.exe", "binaryVersionLow": "*",
                                       "binaryVersionHigh": "*"}],
                    "enterpriseIPRanges": [], "enterpriseProxyServers": []})
        obj["protectedAppLockerFiles"] = [
            {"@odata.type": G + "windowsInformationProtectionAppLockerFile", "id": self.uid(),
             "displayName": "Contoso allow list", "fileHash": self.uid().replace("-", ""),
             "file": base64.b64encode(xml.encode()).decode(), "version": "1"}]
        obj["exemptAppLockerFiles"] = []
        obj["assignments"] = self.assignments(obj["id"])
        obj["isAssigned"] = bool(obj["assignments"])
        return self.add(odata.replace("Policy", "Policies"), obj)

    def apple_update(self, name: str, platform: str = "ios") -> Obj:
        """An iOS update policy or a macOS software update policy (deviceConfiguration subtypes)."""
        if platform == "ios":
            obj = self.base("iosUpdateConfiguration")
            obj.update({"activeHoursStart": "08:00:00.0000000", "activeHoursEnd": "17:00:00.0000000",
                        "scheduledInstallDays": ["saturday", "sunday"],
                        "utcTimeOffsetInMinutes": 60, "enforcedSoftwareUpdateDelayInDays": None,
                        "updateScheduleType": "updateOutsideOfActiveHours",
                        "desiredOsVersion": self.rng.choice(["17.6", "18.1"]),
                        "customUpdateTimeWindows": [], "isEnabled": True})
        else:
            obj = self.base("macOSSoftwareUpdateConfiguration")
            obj.update({"criticalUpdateBehavior": "installASAP",
                        "configDataUpdateBehavior": "notifyOnly",
                        "firmwareUpdateBehavior": "default", "allOtherUpdateBehavior": "default",
                        "updateScheduleType": "alwaysUpdate", "customUpdateTimeWindows": [],
                        "updateTimeWindowUtcOffsetInMinutes": 0, "maxUserDeferralsCount": 3,
                        "priority": "low"})
        obj.update({"displayName": name, "description": "", "version": self.rng.randrange(1, 5),
                    "supportsScopeTags": True})
        obj["assignments"] = self.assignments(obj["id"])
        return self.add("deviceConfigurations", obj)

    def apple_enrollment_type(self, name: str) -> Obj:
        """A user-initiated Apple enrollment type profile."""
        obj = self.base("appleUserInitiatedEnrollmentProfile")
        priority = len(self.tenant.items("appleUserInitiatedEnrollmentProfiles")) + 1
        obj.update({"displayName": name, "description": "", "platform": "iOS",
                    "defaultEnrollmentType": "accountDrivenUserEnrollment", "priority": priority,
                    "availableEnrollmentTypeOptions": [
                        {"@odata.type": G + "appleOwnerTypeEnrollmentType",
                         "ownerType": "personal", "enrollmentType": "accountDrivenUserEnrollment"},
                        {"@odata.type": G + "appleOwnerTypeEnrollmentType",
                         "ownerType": "company", "enrollmentType": "device"}]})
        obj["assignments"] = [
            {"@odata.type": G + "appleEnrollmentProfileAssignment", "id": a["id"],
             "target": a["target"]} for a in self.assignments(obj["id"], count=1)]
        return self.add("appleUserInitiatedEnrollmentProfiles", obj)

    def dep_token(self, name: str, profiles: int = 2) -> Obj:
        """An Apple automated device enrollment token with enrollment profiles below it."""
        token_id = self.uid()
        stamp = self.stamp()
        obj = {"@odata.type": G + "depOnboardingSetting", "id": token_id,
               "appleIdentifier": "mdm@contoso.example", "tokenName": name,
               "tokenExpirationDateTime": "2026-09-01T00:00:00Z", "lastModifiedDateTime": stamp,
               "lastSuccessfulSyncDateTime": stamp, "lastSyncTriggeredDateTime": stamp,
               "shareTokenWithSchoolDataSyncService": False, "lastSyncErrorCode": 0,
               "tokenType": "dep", "syncedDeviceCount": self.rng.randrange(0, 400),
               "dataSharingConsentGranted": True, "roleScopeTagIds": ["0"]}
        obj["enrollmentProfiles"] = [
            {"@odata.type": G + ("depIOSEnrollmentProfile" if index % 2 == 0
                                 else "depMacOSEnrollmentProfile"),
             "id": f"{token_id}_{self.uid()}", "displayName": f"{name} - profile {index + 1}",
             "description": "", "requiresUserAuthentication": True,
             "configurationEndpointUrl": "https://appleconfigurator2.manage.microsoft.com/"
                                         "MDMServiceConfig?id=seeded",
             "enableAuthenticationViaCompanyPortal": True, "isDefault": index == 0,
             "supervisedModeEnabled": True, "supportDepartment": "IT",
             "supportPhoneNumber": "+1 555 0100", "isMandatory": True,
             "locationServicesSetupPaneDisabled": False, "privacyPaneDisabled": True}
            for index in range(profiles)]
        return self.add("depOnboardingSettings", obj)

    def vpp_token(self, name: str) -> Obj:
        """An Apple VPP token (Graph returns the token string; a backup never keeps it)."""
        stamp = self.stamp()
        obj = {"@odata.type": G + "vppToken", "id": self.uid(), "organizationName": "Contoso",
               "vppTokenAccountType": "business", "appleId": "vpp@contoso.example",
               "expirationDateTime": "2026-08-01T00:00:00Z", "lastSyncDateTime": stamp,
               "token": base64.b64encode(self.uid().encode()).decode(), "lastModifiedDateTime": stamp,
               "state": "valid", "lastSyncStatus": "completed", "automaticallyUpdateApps": True,
               "countryOrRegion": "us", "dataSharingConsentGranted": True, "displayName": name,
               "locationName": "Contoso HQ", "claimTokenManagementFromExternalMdm": False,
               "roleScopeTagIds": ["0"]}
        return self.add("vppTokens", obj)

    def compliance_partner(self, name: str) -> Obj:
        """A connected compliance partner."""
        obj = {"@odata.type": G + "complianceManagementPartner", "id": self.uid(),
               "lastHeartbeatDateTime": self.stamp(), "partnerState": "enabled",
               "displayName": name, "macOsOnboarded": True, "windowsOnboarded": False,
               "androidOnboarded": False, "iosOnboarded": True,
               "macOsEnrollmentAssignments": [{"target": {
                   "@odata.type": G + "groupAssignmentTarget",
                   "groupId": self.rng.choice(self.groups)}}] if self.groups else [],
               "androidEnrollmentAssignments": [], "iosEnrollmentAssignments": []}
        return self.add("complianceManagementPartners", obj)

    def cleanup_rule(self, platform: str) -> Obj | None:
        """A device cleanup rule for one platform (one rule per platform)."""
        if any(r["deviceCleanupRulePlatformType"] == platform
               for r in self.tenant.items("managedDeviceCleanupRules")):
            return None
        obj = {"@odata.type": G + "managedDeviceCleanupRule", "id": self.uid(),
               "displayName": f"Retire stale {platform} devices", "description": "",
               "deviceCleanupRulePlatformType": platform,
               "deviceInactivityBeforeRetirementInDays": self.rng.choice([60, 90, 180]),
               "lastModifiedDateTime": self.stamp()}
        return self.add("managedDeviceCleanupRules", obj)

    def tenant_wide(self) -> None:
        """A push certificate, a Google Play binding and tuned tenant and cleanup settings."""
        stamp = self.stamp()
        self.tenant.coll("applePushNotificationCertificate")["singleton"] = {
            "@odata.type": G + "applePushNotificationCertificate", "id": self.uid(),
            "appleIdentifier": "mdm@contoso.example",
            "topicIdentifier": f"com.apple.mgmt.External.{self.uid()}",
            "lastModifiedDateTime": stamp, "expirationDateTime": "2026-10-01T00:00:00Z",
            "certificateUploadStatus": None, "certificateUploadFailureReason": None,
            "certificateSerialNumber": f"{self.rng.getrandbits(64):016X}", "certificate": None}
        self.tenant.coll("androidManagedStoreAccountEnterpriseSettings")["singleton"] = {
            "@odata.type": G + "androidManagedStoreAccountEnterpriseSettings", "id": self.uid(),
            "bindStatus": "boundAndValidated", "lastAppSyncDateTime": stamp,
            "lastAppSyncStatus": "success", "ownerUserPrincipalName": "admin@contoso.example",
            "ownerOrganizationName": "Contoso", "lastModifiedDateTime": stamp,
            "enrollmentTarget": "targetedAsEnrollmentRestrictions", "targetGroupIds": [],
            "deviceOwnerManagementEnabled": True, "androidDeviceOwnerFullyManagedEnrollmentEnabled":
            True, "managedGooglePlayInitialScopeTagIds": ["0"], "companyCodes": []}
        self.tenant.coll("managedDeviceCleanupSettings")["singleton"].update(
            {"deviceInactivityBeforeRetirementInDays": "90"})
        self.tenant.coll("deviceManagementSettings")["singleton"].update(
            {"deviceComplianceCheckinThresholdDays": 21, "secureByDefault": True})


def _apps_apple_and_tenant(s: Seeder) -> None:
    """One or two of each app, Apple, partner and cleanup type, and the tenant-wide objects."""
    s.app_category("Contoso line of business")
    s.store_app("Contoso intranet", "web")
    s.store_app("Microsoft Authenticator", "ios")
    s.store_app("Company Portal", "winget")
    s.content_app("Contoso Agent", "win32")
    s.content_app("Contoso Field (VPP)", "vpp")
    s.device_app_configuration("Authenticator - managed configuration")
    s.windows_app_protection("Windows - Edge MAM")
    s.wip("WIP - Contoso (without enrollment)")
    s.wip("WIP - Contoso (MDM)", mdm=True)
    s.apple_update("iOS - Update to latest", "ios")
    s.apple_update("macOS - Software updates", "macos")
    s.apple_enrollment_type("iOS - BYOD account-driven")
    s.dep_token("Contoso ABM")
    s.vpp_token("Contoso VPP")
    s.compliance_partner("Jamf Pro compliance")
    s.cleanup_rule("windows")
    s.cleanup_rule("ios")
    s.tenant_wide()


def _entra_and_admin(s: Seeder) -> None:
    """One or two of each tenant-administration, script and Entra type (demo and generated)."""
    s.compliance_settings("Linux - Compliance (settings catalog)", 30)
    s.compliance_script("Compliance - BIOS version discovery")
    s.shell_script("macOS - Configure agent")
    s.custom_attribute("macOS CPU model")
    s.driver_update("Drivers - Manual approval")
    s.role_definition("Contoso - Policy reviewer")
    s.role_assignment("Helpdesk - Region EU")
    s.role_assignment("Reviewers - All devices")
    s.terms("Contoso device terms")
    s.branding("Finance branding")
    s.management_partner("Jamf Pro")
    s.remote_assistance("TeamViewer")
    s.reusable_setting("USB - Approved devices")
    s.policy_set("Baseline - Windows bundle")
    s.named_location("Contoso offices", "ip")
    s.named_location("Allowed countries", "country")
    s.auth_strength("FIDO2 - Contoso keys")
    s.conditional_access("CA001 - Require MFA for admins")
    s.conditional_access("CA002 - Block legacy authentication")
    _apps_apple_and_tenant(s)


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
    _entra_and_admin(s)


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
    (3, lambda s, i: s.compliance_settings(f"Gen - Compliance settings {i:05d}",
                                           s.rng.choice([3, 12, 30]))),
    (2, lambda s, i: s.compliance_script(f"Gen - Compliance script {i:05d}")),
    (2, lambda s, i: s.shell_script(f"Gen - Shell script {i:05d}")),
    (1, lambda s, i: s.custom_attribute(f"Gen - Custom attribute {i:05d}")),
    (1, lambda s, i: s.driver_update(f"Gen - Driver update {i:05d}")),
    (1, lambda s, i: s.role_definition(f"Gen - Role {i:05d}")),
    (1, lambda s, i: s.role_assignment(f"Gen - Role assignment {i:05d}")),
    (1, lambda s, i: s.terms(f"Gen - Terms {i:05d}")),
    (1, lambda s, i: s.branding(f"Gen - Branding {i:05d}")),
    (1, lambda s, i: s.management_partner(f"Gen - Partner {i:05d}")),
    (1, lambda s, i: s.remote_assistance(f"Gen - Remote assistance {i:05d}")),
    (1, lambda s, i: s.reusable_setting(f"Gen - Reusable setting {i:05d}")),
    (1, lambda s, i: s.policy_set(f"Gen - Policy set {i:05d}")),
    (2, lambda s, i: s.named_location(f"Gen - Location {i:05d}", "ip" if i % 2 else "country")),
    (1, lambda s, i: s.auth_strength(f"Gen - Strength {i:05d}")),
    (3, lambda s, i: s.conditional_access(f"Gen - CA policy {i:05d}")),
    (1, lambda s, i: s.app_category(f"Gen - App category {i:05d}")),
    (2, lambda s, i: s.store_app(f"Gen - Store app {i:05d}", ("web", "ios", "winget")[i % 3])),
    (1, lambda s, i: s.content_app(f"Gen - Content app {i:05d}", "win32" if i % 2 else "vpp")),
    (1, lambda s, i: s.device_app_configuration(f"Gen - Device app configuration {i:05d}")),
    (1, lambda s, i: s.windows_app_protection(f"Gen - Windows app protection {i:05d}")),
    (1, lambda s, i: s.wip(f"Gen - WIP {i:05d}", mdm=i % 2 == 0)),
    (1, lambda s, i: s.apple_update(f"Gen - Apple update {i:05d}", "ios" if i % 2 else "macos")),
    (1, lambda s, i: s.apple_enrollment_type(f"Gen - Apple enrollment type {i:05d}")),
    (1, lambda s, i: s.dep_token(f"Gen - DEP token {i:05d}", profiles=1 + i % 3)),
    (1, lambda s, i: s.vpp_token(f"Gen - VPP token {i:05d}")),
    (1, lambda s, i: s.compliance_partner(f"Gen - Compliance partner {i:05d}")),
]


def _generated(s: Seeder, policies: int) -> None:
    _foundations(s)
    for index in range(20):
        s.group(f"Gen - Group {index:03d}")
    s.tenant_wide()
    for platform in ("windows", "macOS", "androidAOSP"):
        s.cleanup_rule(platform)
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

