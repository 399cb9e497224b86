"""PolicyWriter: the calls a restore makes per catalog entry (URLs, methods and bodies)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from shared.graph.catalog import CATALOG
from shared.graph.client import GraphResponse
from shared.graph.writer import PolicyWriter, create_body, unrestorable_properties, update_body

GRAPH = "https://graph.microsoft.com"
IOS_MAM = "#microsoft.graph.iosManagedAppProtection"


@dataclass
class Call:
    method: str
    url: str
    body: Any
    idempotent: bool = False


@dataclass
class RecordingClient:
    """Records every call and answers writes with a new object id."""

    new_id: str = "new-1"
    calls: list[Call] = field(default_factory=list)
    answer_body: Any = None
    # What a collection read (``get_all``) answers.
    collection: list[dict[str, Any]] = field(default_factory=list)

    async def get(self, url: str, *, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        self.calls.append(Call("GET", url, params))
        return {}

    def _answer(self) -> GraphResponse:
        body = self.answer_body if self.answer_body is not None else {"id": self.new_id}
        return GraphResponse(status_code=201, headers=httpx.Headers(), body=body)

    async def post(self, url: str, *, json_body: Any = None, idempotent: bool = False) -> GraphResponse:
        self.calls.append(Call("POST", url, json_body, idempotent))
        return self._answer()

    async def patch(self, url: str, *, json_body: Any) -> GraphResponse:
        self.calls.append(Call("PATCH", url, json_body))
        return GraphResponse(status_code=204, headers=httpx.Headers(), body=None)

    async def put(self, url: str, *, json_body: Any) -> GraphResponse:
        self.calls.append(Call("PUT", url, json_body))
        return GraphResponse(status_code=204, headers=httpx.Headers(), body=None)

    async def delete(self, url: str) -> GraphResponse:
        self.calls.append(Call("DELETE", url, None))
        return GraphResponse(status_code=204, headers=httpx.Headers(), body=None)

    async def get_all(self, url: str, *, params: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        self.calls.append(Call("GET", url, params))
        return list(self.collection)

    def requests(self) -> list[tuple[str, str]]:
        return [(c.method, c.url) for c in self.calls]


@pytest.fixture
def client() -> RecordingClient:
    return RecordingClient()


@pytest.fixture
def writer(client: RecordingClient) -> PolicyWriter:
    return PolicyWriter(client)


STAMPS = {
    "id": "src-1",
    "createdDateTime": "2026-01-01T00:00:00Z",
    "lastModifiedDateTime": "2026-01-02T00:00:00Z",
    "version": 4,
    "@odata.context": "https://graph.microsoft.com/beta/$metadata#x/$entity",
}


# -------------------------------------------------------------------------------- creates


async def test_a_create_posts_to_the_collection_without_stamps_and_returns_the_new_id(
    writer: PolicyWriter, client: RecordingClient
) -> None:
    captured = {
        **STAMPS,
        "name": "Baseline",
        "settingCount": 1,
        "creationSource": None,
        "settings@odata.context": "x",
        "settings": [{"id": "0", "settingInstance": {"v": 1}}],
        "assignments": [{"target": {}}],
    }
    new_id = await writer.create("settingsCatalog", captured)
    assert new_id == "new-1"
    assert client.requests() == [("POST", "/beta/deviceManagement/configurationPolicies")]
    assert client.calls[0].body == {
        "name": "Baseline",
        "settings": [{"id": "0", "settingInstance": {"v": 1}}],
    }


async def test_a_create_keeps_the_odata_type(writer: PolicyWriter, client: RecordingClient) -> None:
    await writer.create(
        "deviceConfiguration",
        {
            **STAMPS,
            "@odata.type": "#microsoft.graph.windows10GeneralConfiguration",
            "displayName": "Restrictions",
            "passwordRequired": True,
        },
    )
    assert client.requests() == [("POST", "/beta/deviceManagement/deviceConfigurations")]
    assert client.calls[0].body == {
        "@odata.type": "#microsoft.graph.windows10GeneralConfiguration",
        "displayName": "Restrictions",
        "passwordRequired": True,
    }


async def test_app_protection_is_created_in_its_platform_collection_then_gets_its_apps(
    writer: PolicyWriter, client: RecordingClient
) -> None:
    apps = [
        {
            "id": "com.x.ios",
            "mobileAppIdentifier": {
                "@odata.type": "#microsoft.graph.iosMobileAppIdentifier",
                "bundleId": "com.x",
            },
            "version": "1",
        }
    ]
    captured = {
        **STAMPS,
        "@odata.type": IOS_MAM,
        "displayName": "MAM",
        "apps": apps,
        "apps@odata.context": "x",
        "deployedAppCount": 3,
        "isAssigned": True,
        "appGroupType": "selectedPublicApps",
    }
    await writer.create("appProtectionPolicy", captured)
    assert client.requests() == [
        ("POST", "/beta/deviceAppManagement/iosManagedAppProtections"),
        ("POST", "/beta/deviceAppManagement/iosManagedAppProtections/new-1/targetApps"),
    ]
    assert client.calls[0].body == {
        "@odata.type": IOS_MAM,
        "displayName": "MAM",
        "appGroupType": "selectedPublicApps",
    }
    assert client.calls[1].body == {
        "apps": [
            {
                "mobileAppIdentifier": {
                    "@odata.type": "#microsoft.graph.iosMobileAppIdentifier",
                    "bundleId": "com.x",
                }
            }
        ],
        "appGroupType": "selectedPublicApps",
    }
    assert client.calls[1].idempotent is True


async def test_app_protection_without_a_known_platform_is_refused_before_any_call(
    writer: PolicyWriter, client: RecordingClient
) -> None:
    with pytest.raises(ValueError, match=r"odata\.type"):
        await writer.create("appProtectionPolicy", {"displayName": "MAM"})
    assert client.calls == []


async def test_an_intent_is_created_from_its_template_with_its_settings_as_the_delta(
    writer: PolicyWriter, client: RecordingClient
) -> None:
    captured = {
        **STAMPS,
        "templateId": "tmpl-1",
        "displayName": "AV",
        "description": "d",
        "isAssigned": False,
        "roleScopeTagIds": ["0", "3"],
        "settings": [
            {
                "id": "s1",
                "@odata.type": "#microsoft.graph.deviceManagementBooleanSettingInstance",
                "definitionId": "def_a",
                "valueJson": "true",
                "value": True,
            }
        ],
    }
    await writer.create("endpointSecurityIntent", captured)
    assert client.requests() == [("POST", "/beta/deviceManagement/templates/tmpl-1/createInstance")]
    assert client.calls[0].body == {
        "displayName": "AV",
        "description": "d",
        "roleScopeTagIds": ["0", "3"],
        "settingsDelta": [
            {
                "@odata.type": "#microsoft.graph.deviceManagementBooleanSettingInstance",
                "definitionId": "def_a",
                "valueJson": "true",
                "value": True,
            }
        ],
    }


async def test_an_intent_without_scope_tags_gets_the_default_tag(
    writer: PolicyWriter, client: RecordingClient
) -> None:
    await writer.create("endpointSecurityIntent", {"templateId": "t", "displayName": "AV"})
    assert client.calls[0].body["roleScopeTagIds"] == ["0"]
    assert client.calls[0].body["settingsDelta"] == []


async def test_a_create_answer_without_an_id_is_an_error(client: RecordingClient) -> None:
    client.answer_body = {}
    with pytest.raises(ValueError, match="no id"):
        await PolicyWriter(client).create("deviceCategory", {"displayName": "Kiosk"})


async def test_every_write_waits_for_the_budget_first(client: RecordingClient) -> None:
    seen: list[tuple[str, str, int]] = []

    async def budget(method: str, url: str) -> None:
        seen.append((method, url, len(client.calls)))

    await PolicyWriter(client, on_write=budget).create(
        "appProtectionPolicy", {"@odata.type": IOS_MAM, "displayName": "MAM", "apps": []}
    )
    assert seen == [
        ("POST", "/beta/deviceAppManagement/iosManagedAppProtections", 0),
        ("POST", "/beta/deviceAppManagement/iosManagedAppProtections/new-1/targetApps", 1),
    ]


# ---------------------------------------------------------------------------- child writes


COMPLIANCE_ACTIONS = [
    {
        "id": "rule-1",
        "ruleName": "PasswordRequired",
        "scheduledActionConfigurations": [
            {
                "id": "cfg-1",
                "actionType": "block",
                "gracePeriodHours": 0,
                "notificationTemplateId": "",
                "lastModifiedDateTime": "x",
            }
        ],
    }
]


async def test_a_compliance_create_sends_its_scheduled_actions_inline(
    writer: PolicyWriter, client: RecordingClient
) -> None:
    await writer.create(
        "compliancePolicy",
        {
            **STAMPS,
            "@odata.type": "#microsoft.graph.windows10CompliancePolicy",
            "displayName": "C",
            "scheduledActionsForRule": COMPLIANCE_ACTIONS,
            "scheduledActionsForRule@odata.context": "x",
        },
    )
    assert client.requests() == [("POST", "/beta/deviceManagement/deviceCompliancePolicies")]
    assert client.calls[0].body["scheduledActionsForRule"] == COMPLIANCE_ACTIONS
    assert "scheduledActionsForRule@odata.context" not in client.calls[0].body


async def test_a_compliance_update_patches_then_schedules_its_actions(
    writer: PolicyWriter, client: RecordingClient
) -> None:
    captured = {
        **STAMPS,
        "@odata.type": "#microsoft.graph.windows10CompliancePolicy",
        "displayName": "C",
        "passwordRequired": True,
        "scheduledActionsForRule": COMPLIANCE_ACTIONS,
    }
    await writer.update("compliancePolicy", "tgt-1", captured, current={})
    item = "/beta/deviceManagement/deviceCompliancePolicies/tgt-1"
    assert client.requests() == [("PATCH", item), ("POST", f"{item}/scheduleActionsForRules")]
    assert client.calls[0].body == {"displayName": "C", "passwordRequired": True}
    assert client.calls[1].body == {
        "deviceComplianceScheduledActionForRules": [
            {
                "ruleName": "PasswordRequired",
                "scheduledActionConfigurations": [
                    {"actionType": "block", "gracePeriodHours": 0, "notificationTemplateId": ""}
                ],
            }
        ]
    }


GPO_VALUES = [
    {
        "id": "dv-src",
        "enabled": True,
        "configurationType": "policy",
        "createdDateTime": "x",
        "definition": {"id": "def-1", "displayName": "Allow X", "classType": "machine"},
        "presentationValues": [
            {
                "id": "pv-src",
                "@odata.type": "#microsoft.graph.groupPolicyPresentationValueText",
                "value": "hello",
                "lastModifiedDateTime": "x",
                "presentation@odata.context": "ctx",
                "presentation": {"id": "pres-1", "label": "Text"},
            }
        ],
    }
]


def _gpo_value_body() -> dict[str, Any]:
    definition = f"{GRAPH}/beta/deviceManagement/groupPolicyDefinitions('def-1')"
    return {
        "enabled": True,
        "configurationType": "policy",
        "definition@odata.bind": definition,
        "presentationValues": [
            {
                "@odata.type": "#microsoft.graph.groupPolicyPresentationValueText",
                "value": "hello",
                "presentation@odata.bind": f"{definition}/presentations('pres-1')",
            }
        ],
    }


async def test_administrative_template_values_are_bound_to_their_definitions_on_create(
    writer: PolicyWriter, client: RecordingClient
) -> None:
    await writer.create(
        "administrativeTemplate",
        {
            **STAMPS,
            "displayName": "GPO",
            "definitionValues": GPO_VALUES,
            "policyConfigurationIngestionType": "builtIn",
        },
    )
    item = "/beta/deviceManagement/groupPolicyConfigurations/new-1"
    assert client.requests() == [
        ("POST", "/beta/deviceManagement/groupPolicyConfigurations"),
        ("POST", f"{item}/updateDefinitionValues"),
    ]
    assert client.calls[0].body == {"displayName": "GPO"}
    assert client.calls[1].body == {"added": [_gpo_value_body()], "updated": [], "deletedIds": []}


async def test_an_administrative_template_update_replaces_the_current_values(
    writer: PolicyWriter, client: RecordingClient
) -> None:
    current = {"definitionValues": [{"id": "dv-a", "enabled": False}, {"id": "dv-b"}, {"enabled": True}]}
    await writer.update(
        "administrativeTemplate", "tgt-1", {"displayName": "GPO", "definitionValues": GPO_VALUES}, current
    )
    item = "/beta/deviceManagement/groupPolicyConfigurations/tgt-1"
    assert client.requests() == [("PATCH", item), ("POST", f"{item}/updateDefinitionValues")]
    assert client.calls[1].body == {
        "added": [_gpo_value_body()],
        "updated": [],
        "deletedIds": ["dv-a", "dv-b"],
    }


async def test_enrollment_priority_is_set_through_set_priority_but_never_for_the_defaults(
    writer: PolicyWriter, client: RecordingClient
) -> None:
    limit = {
        "@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration",
        "displayName": "Limit",
        "limit": 5,
        "deviceEnrollmentConfigurationType": "limit",
    }
    await writer.update("enrollmentConfiguration", "tgt-1", {**limit, "priority": 2}, current={})
    item = "/beta/deviceManagement/deviceEnrollmentConfigurations/tgt-1"
    assert client.requests() == [("PATCH", item), ("POST", f"{item}/setPriority")]
    assert client.calls[0].body == {"displayName": "Limit", "limit": 5}
    assert client.calls[1].body == {"priority": 2}
    client.calls.clear()
    await writer.update("enrollmentConfiguration", "default-1", {**limit, "priority": 0}, current={})
    assert client.requests() == [("PATCH", "/beta/deviceManagement/deviceEnrollmentConfigurations/default-1")]


async def test_a_created_enrollment_configuration_gets_the_backups_priority(
    writer: PolicyWriter, client: RecordingClient
) -> None:
    # Graph gives a new configuration the next free priority whatever the POST says; only setPriority
    # changes it (the catalog: "priority changes only through setPriority").
    await writer.create(
        "enrollmentConfiguration",
        {
            "@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration",
            "displayName": "Limit",
            "limit": 5,
            "priority": 2,
        },
    )
    item = "/beta/deviceManagement/deviceEnrollmentConfigurations/new-1"
    assert ("POST", f"{item}/setPriority") in client.requests()
    assert client.calls[-1].body == {"priority": 2}


MESSAGES = [
    {
        "id": "m-src-1",
        "locale": "en-US",
        "subject": "Fix it",
        "messageTemplate": "Please",
        "isDefault": True,
        "lastModifiedDateTime": "x",
    },
    {"id": "m-src-2", "locale": "de-DE", "subject": "Bitte", "messageTemplate": "Bitte", "isDefault": False},
]


async def test_localized_messages_are_posted_after_a_template_is_created(
    writer: PolicyWriter, client: RecordingClient
) -> None:
    await writer.create(
        "notificationTemplate",
        {
            **STAMPS,
            "displayName": "Mail",
            "defaultLocale": "en-US",
            "brandingOptions": "none",
            "localizedNotificationMessages": MESSAGES,
        },
    )
    base = "/beta/deviceManagement/notificationMessageTemplates"
    assert client.requests() == [
        ("POST", base),
        ("POST", f"{base}/new-1/localizedNotificationMessages"),
        ("POST", f"{base}/new-1/localizedNotificationMessages"),
    ]
    assert client.calls[0].body == {"displayName": "Mail", "brandingOptions": "none"}
    assert [c.body for c in client.calls[1:]] == [
        {"locale": "en-US", "subject": "Fix it", "messageTemplate": "Please", "isDefault": True},
        {"locale": "de-DE", "subject": "Bitte", "messageTemplate": "Bitte", "isDefault": False},
    ]


async def test_localized_messages_patch_existing_locales_and_post_new_ones(
    writer: PolicyWriter, client: RecordingClient
) -> None:
    current = {"localizedNotificationMessages": [{"id": "m-tgt-1", "locale": "en-us", "subject": "Old"}]}
    await writer.update(
        "notificationTemplate",
        "tgt-1",
        {"displayName": "Mail", "defaultLocale": "en-US", "localizedNotificationMessages": MESSAGES},
        current,
    )
    item = "/beta/deviceManagement/notificationMessageTemplates/tgt-1"
    assert client.requests() == [
        ("PATCH", item),
        ("PATCH", f"{item}/localizedNotificationMessages/m-tgt-1"),
        ("POST", f"{item}/localizedNotificationMessages"),
    ]
    assert client.calls[0].body == {"displayName": "Mail"}
    assert client.calls[1].body == {"subject": "Fix it", "messageTemplate": "Please", "isDefault": True}
    assert client.calls[2].body["locale"] == "de-DE"


async def test_a_policy_set_update_replaces_its_items(writer: PolicyWriter, client: RecordingClient) -> None:
    items = [
        {
            "id": "psi-src",
            "@odata.type": "#microsoft.graph.deviceConfigurationPolicySetItem",
            "payloadId": "cfg-tgt",
            "status": "validating",
            "errorCode": "noError",
            "displayName": "Cfg",
        }
    ]
    current = {"items": [{"id": "psi-a"}, {"id": "psi-b"}]}
    await writer.update(
        "policySet", "ps-1", {**STAMPS, "displayName": "Set", "status": "success", "items": items}, current
    )
    item = "/beta/deviceAppManagement/policySets/ps-1"
    assert client.requests() == [("PATCH", item), ("POST", f"{item}/update")]
    assert client.calls[0].body == {"displayName": "Set"}
    assert client.calls[1].body == {
        "addedPolicySetItems": [
            {
                "@odata.type": "#microsoft.graph.deviceConfigurationPolicySetItem",
                "payloadId": "cfg-tgt",
                "displayName": "Cfg",
            }
        ],
        "updatedPolicySetItems": [],
        "deletedPolicySetItems": ["psi-a", "psi-b"],
    }


async def test_authentication_strength_combinations_are_sent_inline_on_create_and_by_action_on_update(
    writer: PolicyWriter, client: RecordingClient
) -> None:
    captured = {
        **STAMPS,
        "displayName": "Phish-resistant",
        "policyType": "custom",
        "requirementsSatisfied": "mfa",
        "allowedCombinations": ["fido2", "windowsHelloForBusiness"],
        "combinationConfigurations": [],
    }
    await writer.create("authenticationStrengthPolicy", captured)
    assert client.requests() == [("POST", "/v1.0/policies/authenticationStrengthPolicies")]
    assert client.calls[0].body == {
        "displayName": "Phish-resistant",
        "allowedCombinations": ["fido2", "windowsHelloForBusiness"],
    }
    client.calls.clear()
    await writer.update("authenticationStrengthPolicy", "as-1", captured, current={})
    item = "/v1.0/policies/authenticationStrengthPolicies/as-1"
    assert client.requests() == [("PATCH", item), ("POST", f"{item}/updateAllowedCombinations")]
    assert client.calls[0].body == {"displayName": "Phish-resistant"}
    assert client.calls[1].body == {"allowedCombinations": ["fido2", "windowsHelloForBusiness"]}


async def test_a_role_assignment_binds_its_role_and_scope_tags(
    writer: PolicyWriter, client: RecordingClient
) -> None:
    await writer.create(
        "roleAssignment",
        {
            **STAMPS,
            "displayName": "Helpdesk",
            "members": ["g1"],
            "scopeMembers": ["g2"],
            "roleDefinition": {"id": "rd-1", "displayName": "Help"},
            "roleDefinition@odata.context": "x",
            "roleScopeTags": [{"id": "3", "displayName": "T"}, {"id": "4"}, {"displayName": "no id"}],
        },
    )
    assert client.requests() == [("POST", "/beta/deviceManagement/roleAssignments")]
    assert client.calls[0].body == {
        "displayName": "Helpdesk",
        "members": ["g1"],
        "scopeMembers": ["g2"],
        "roleDefinition@odata.bind": f"{GRAPH}/beta/deviceManagement/roleDefinitions('rd-1')",
        "roleScopeTags@odata.bind": [
            f"{GRAPH}/beta/deviceManagement/roleScopeTags('3')",
            f"{GRAPH}/beta/deviceManagement/roleScopeTags('4')",
        ],
    }


# -------------------------------------------------------------------------------- updates


async def test_settings_catalog_is_replaced_with_put(writer: PolicyWriter, client: RecordingClient) -> None:
    captured = {**STAMPS, "name": "Baseline", "settingCount": 2, "settings": [{"settingInstance": {}}]}
    await writer.update("settingsCatalog", "tgt-1", captured, current={})
    assert client.requests() == [("PUT", "/beta/deviceManagement/configurationPolicies/tgt-1")]
    assert client.calls[0].body == {"name": "Baseline", "settings": [{"settingInstance": {}}]}


async def test_a_patch_update_drops_the_odata_type_and_what_the_type_cannot_update(
    writer: PolicyWriter, client: RecordingClient
) -> None:
    captured = {
        **STAMPS,
        "@odata.type": "#microsoft.graph.deviceAndAppManagementAssignmentFilter",
        "displayName": "Corp",
        "platform": "windows10AndLater",
        "rule": "(device.x -eq 1)",
        "payloads": [],
    }
    await writer.update("assignmentFilter", "f-1", captured, current={})
    assert client.requests() == [("PATCH", "/beta/deviceManagement/assignmentFilters/f-1")]
    assert client.calls[0].body == {"displayName": "Corp", "rule": "(device.x -eq 1)"}
    client.calls.clear()
    await writer.create("assignmentFilter", captured)
    assert client.calls[0].body["platform"] == "windows10AndLater"


async def test_an_intent_update_renames_it_and_writes_its_settings(
    writer: PolicyWriter, client: RecordingClient
) -> None:
    captured = {
        "templateId": "t",
        "displayName": "AV",
        "description": "d",
        "roleScopeTagIds": ["0"],
        "isMigratingToConfigurationPolicy": False,
        "settings": [{"id": "s1", "definitionId": "def_a", "valueJson": "false"}],
    }
    await writer.update("endpointSecurityIntent", "i-1", captured, current={})
    item = "/beta/deviceManagement/intents/i-1"
    assert client.requests() == [("PATCH", item), ("POST", f"{item}/updateSettings")]
    assert client.calls[0].body == {"displayName": "AV", "description": "d", "roleScopeTagIds": ["0"]}
    assert client.calls[1].body == {"settings": [{"definitionId": "def_a", "valueJson": "false"}]}


async def test_an_app_protection_update_goes_to_its_platform_collection(
    writer: PolicyWriter, client: RecordingClient
) -> None:
    await writer.update(
        "appProtectionPolicy", "mam-1", {"@odata.type": IOS_MAM, "displayName": "MAM"}, current={}
    )
    assert client.requests() == [("PATCH", "/beta/deviceAppManagement/iosManagedAppProtections/mam-1")]


async def test_tenant_settings_are_written_through_device_management(
    writer: PolicyWriter, client: RecordingClient
) -> None:
    # deviceManagement/settings is a property of deviceManagement: the catalog says the update goes to
    # ``update_path`` nested under ``update_wrapper``.
    captured = {
        "@odata.type": "#microsoft.graph.deviceManagementSettings",
        "deviceComplianceCheckinThresholdDays": 30,
        "isScheduledActionEnabled": True,
    }
    await writer.update("tenantSettings", "tenantSettings", captured, current={})
    assert client.requests() == [("PATCH", "/beta/deviceManagement")]
    assert client.calls[0].body == {
        "settings": {"deviceComplianceCheckinThresholdDays": 30, "isScheduledActionEnabled": True}
    }


APPS = "/beta/deviceAppManagement/mobileApps"
CATEGORIES = "/beta/deviceAppManagement/mobileAppCategories"
WEB_APP = {**STAMPS, "@odata.type": "#microsoft.graph.webApp", "displayName": "Portal", "publisher": "Us",
           "appUrl": "https://portal.example.com", "categories@odata.context": "x"}


def _category(category_id: str, name: str) -> dict[str, Any]:
    return {"@odata.type": "#microsoft.graph.mobileAppCategory", "id": category_id, "displayName": name}


async def test_a_created_app_is_filed_under_the_target_tenants_categories_of_the_same_names(
        writer: PolicyWriter, client: RecordingClient) -> None:
    # The backup's category ids are another tenant's; only the names mean the same thing here.
    client.collection = [_category("t-hr", "HR"), _category("t-it", "IT"), _category("t-ops", "Ops")]
    captured = {**WEB_APP, "categories": [_category("s-it", "IT"), _category("s-hr", "HR"),
                                          _category("s-gone", "Not here")]}
    assert await writer.create("mobileApp", captured) == "new-1"
    post = client.calls[0]
    assert (post.method, post.url) == ("POST", APPS)
    assert "categories" not in post.body
    assert client.requests()[1:] == [("GET", CATEGORIES), ("POST", f"{APPS}/new-1/categories/$ref"),
                                     ("POST", f"{APPS}/new-1/categories/$ref")]
    assert [c.body for c in client.calls[2:]] == [
        {"@odata.id": f"{GRAPH}/beta/deviceAppManagement/mobileAppCategories/t-hr"},
        {"@odata.id": f"{GRAPH}/beta/deviceAppManagement/mobileAppCategories/t-it"}]
    assert [c.idempotent for c in client.calls[2:]] == [False, False]


async def test_an_updated_app_gains_and_loses_categories_to_match_the_backup(
        writer: PolicyWriter, client: RecordingClient) -> None:
    client.collection = [_category("t-hr", "HR"), _category("t-it", "IT"), _category("t-ops", "Ops")]
    captured = {**WEB_APP, "categories": [_category("s-it", "IT"), _category("s-hr", "HR")]}
    current = {**WEB_APP, "id": "a-1", "categories": [_category("t-it", "IT"), _category("t-ops", "Ops")]}
    await writer.update("mobileApp", "a-1", captured, current)
    assert client.requests() == [("PATCH", f"{APPS}/a-1"), ("GET", CATEGORIES),
                                 ("POST", f"{APPS}/a-1/categories/$ref"),
                                 ("DELETE", f"{APPS}/a-1/categories/t-ops/$ref")]
    assert client.calls[2].body == {"@odata.id": f"{GRAPH}/beta/deviceAppManagement/mobileAppCategories/t-hr"}


async def test_an_app_already_in_its_categories_reads_and_writes_nothing_more(
        writer: PolicyWriter, client: RecordingClient) -> None:
    captured = {**WEB_APP, "categories": [_category("s-it", "IT")]}
    await writer.update("mobileApp", "a-1", captured, {"categories": [_category("t-it", "IT")]})
    assert client.requests() == [("PATCH", f"{APPS}/a-1")]


WIP = "/beta/deviceAppManagement/windowsInformationProtectionPolicies"


def _applocker(name: str, file_hash: str, file_id: str | None = None) -> dict[str, Any]:
    return {"@odata.type": "#microsoft.graph.windowsInformationProtectionAppLockerFile",
            "displayName": name, "fileHash": file_hash, "file": "PEFwcExvY2tlcj4=", "version": "1",
            **({"id": file_id} if file_id else {})}


async def test_a_created_wip_policy_gets_its_applocker_files_one_by_one(
        writer: PolicyWriter, client: RecordingClient) -> None:
    captured = {**STAMPS, "@odata.type": "#microsoft.graph.windowsInformationProtectionPolicy",
                "displayName": "WIP", "protectedAppLockerFiles": [_applocker("Allow", "h1", "s-1")],
                "exemptAppLockerFiles": [_applocker("Exempt", "h2", "s-2")],
                "protectedAppLockerFiles@odata.context": "x"}
    await writer.create("wipPolicy", captured)
    assert "protectedAppLockerFiles" not in client.calls[0].body
    assert client.requests()[1:] == [("POST", f"{WIP}/new-1/protectedAppLockerFiles"),
                                     ("POST", f"{WIP}/new-1/exemptAppLockerFiles")]
    assert client.calls[1].body == {k: v for k, v in _applocker("Allow", "h1").items() if k != "@odata.type"}
    # A file that got through would be added twice by a blind repeat.
    assert [c.idempotent for c in client.calls[1:]] == [False, False]


async def test_a_wip_update_adds_missing_applocker_files_and_removes_the_others(
        writer: PolicyWriter, client: RecordingClient) -> None:
    captured = {"@odata.type": "#microsoft.graph.windowsInformationProtectionPolicy", "displayName": "WIP",
                "protectedAppLockerFiles": [_applocker("Keep", "h1", "s-1"), _applocker("New", "h3", "s-3")],
                "exemptAppLockerFiles": []}
    current = {"protectedAppLockerFiles": [_applocker("Keep", "h1", "t-1"), _applocker("Old", "h9", "t-9")],
               "exemptAppLockerFiles": []}
    await writer.update("wipPolicy", "w-1", captured, current)
    assert client.requests() == [("PATCH", f"{WIP}/w-1"), ("POST", f"{WIP}/w-1/protectedAppLockerFiles"),
                                 ("DELETE", f"{WIP}/w-1/protectedAppLockerFiles/t-9")]
    assert client.calls[1].body["displayName"] == "New"


def test_body_builders_follow_the_catalog_strip_lists() -> None:
    compliance = CATALOG["compliancePolicy"]
    captured = {
        **STAMPS,
        "@odata.type": "#microsoft.graph.windows10CompliancePolicy",
        "displayName": "C",
        "scheduledActionsForRule": [],
        "scheduledActionsForRule@odata.context": "x",
        "assignments": [],
        "assignments@odata.context": "y",
    }
    assert create_body(compliance, captured) == {
        "@odata.type": "#microsoft.graph.windows10CompliancePolicy",
        "displayName": "C",
        "scheduledActionsForRule": [],
    }
    assert update_body(compliance, captured) == {"displayName": "C"}
    settings_catalog = CATALOG["settingsCatalog"]
    assert update_body(settings_catalog, {"@odata.type": "#x", "name": "n"}) == {
        "@odata.type": "#x",
        "name": "n",
    }


def test_unrestorable_properties_leave_out_what_other_calls_write() -> None:
    assert unrestorable_properties(CATALOG["appProtectionPolicy"]) == frozenset(
        {"apps@odata.context", "deployedAppCount", "isAssigned"}
    )
    assert "roleDefinition" not in unrestorable_properties(CATALOG["roleAssignment"])
    assert "roleScopeTags" not in unrestorable_properties(CATALOG["roleAssignment"])
    assert "settingCount" in unrestorable_properties(CATALOG["settingsCatalog"])
    assert unrestorable_properties(CATALOG["deviceConfiguration"]) == frozenset()
    assert "categories" not in unrestorable_properties(CATALOG["mobileApp"])
    assert "categories" in unrestorable_properties(CATALOG["contentApp"])
    assert unrestorable_properties(CATALOG["wipPolicy"]) == frozenset(
        {"protectedAppLockerFiles@odata.context", "exemptAppLockerFiles@odata.context", "deployedAppCount"})


# ------------------------------------------------------------------------------ assignments


GROUP_TARGET = {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "g-1"}
ALL_DEVICES = {"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget"}


@pytest.mark.parametrize(
    ("type_key", "url", "body_key"),
    [
        ("settingsCatalog", "/beta/deviceManagement/configurationPolicies/p-1/assign", "assignments"),
        ("deviceConfiguration", "/beta/deviceManagement/deviceConfigurations/p-1/assign", "assignments"),
        (
            "powerShellScript",
            "/beta/deviceManagement/deviceManagementScripts/p-1/assign",
            "deviceManagementScriptAssignments",
        ),
        (
            "remediationScript",
            "/beta/deviceManagement/deviceHealthScripts/p-1/assign",
            "deviceHealthScriptAssignments",
        ),
        (
            "enrollmentConfiguration",
            "/beta/deviceManagement/deviceEnrollmentConfigurations/p-1/assign",
            "enrollmentConfigurationAssignments",
        ),
        ("mobileApp", "/beta/deviceAppManagement/mobileApps/p-1/assign", "mobileAppAssignments"),
    ],
)
async def test_assignments_go_through_the_types_assign_action(
    client: RecordingClient, type_key: str, url: str, body_key: str
) -> None:
    assignments = [{"target": GROUP_TARGET}, {"target": ALL_DEVICES}]
    await PolicyWriter(client).assign(type_key, "p-1", None, assignments)
    assert client.requests() == [("POST", url)]
    assert client.calls[0].body == {body_key: assignments}
    assert client.calls[0].idempotent is True


async def test_an_empty_assignment_list_still_replaces_the_targets(
    writer: PolicyWriter, client: RecordingClient
) -> None:
    await writer.assign("settingsCatalog", "p-1", None, [])
    assert client.calls[0].body == {"assignments": []}


async def test_app_protection_assignments_go_to_the_platform_item(
    writer: PolicyWriter, client: RecordingClient
) -> None:
    await writer.assign("appProtectionPolicy", "mam-1", IOS_MAM, [{"target": ALL_DEVICES}])
    assert client.requests() == [("POST", "/beta/deviceAppManagement/iosManagedAppProtections/mam-1/assign")]


async def test_one_per_request_types_post_only_the_missing_targets(
    writer: PolicyWriter, client: RecordingClient
) -> None:
    other_group = {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "g-2"}
    current = [{"id": "a-1", "target": {**GROUP_TARGET, "@odata.context": "ignored"}}]
    await writer.assign(
        "termsAndConditions",
        "tc-1",
        None,
        [{"target": GROUP_TARGET}, {"target": other_group, "intent": "ignored"}],
        current=current,
    )
    assert client.requests() == [("POST", "/beta/deviceManagement/termsAndConditions/tc-1/assignments")]
    assert client.calls[0].body == {"target": other_group}


async def test_policy_set_assignments_are_written_through_its_update_action(
    writer: PolicyWriter, client: RecordingClient
) -> None:
    await writer.assign("policySet", "ps-1", None, [{"target": GROUP_TARGET}])
    assert client.requests() == [("POST", "/beta/deviceAppManagement/policySets/ps-1/update")]
    assert client.calls[0].body == {"assignments": [{"target": GROUP_TARGET}]}


async def test_types_without_assignments_write_nothing(writer: PolicyWriter, client: RecordingClient) -> None:
    await writer.assign("assignmentFilter", "f-1", None, [{"target": GROUP_TARGET}])
    assert client.calls == []
