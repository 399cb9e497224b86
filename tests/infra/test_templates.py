"""The real templates satisfy every deployment policy (see checks.py for what each one enforces)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.infra import checks
from tests.infra.bicep_model import Infra, Ref, _unterminated_string


@pytest.mark.parametrize("check", checks.ALL_CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_templates_pass(infra: Infra, check: Callable[[Infra], list[str]]) -> None:
    assert check(infra) == []


def test_every_role_assignment_is_present_with_its_role_definition_id(infra: Infra) -> None:
    assigned = {checks._role_id(a): a for a in infra.resources("Microsoft.Authorization/roleAssignments")}
    for role_id, (label, scope_type) in checks.APP_ROLES.items():
        assert role_id in assigned, f"{label} is not assigned"
        assignment = assigned[role_id]
        assert assignment.properties["principalType"] == "ServicePrincipal", label
        scope = next(r for r in assignment.file.resources if r.symbol == assignment.body["scope"])
        assert scope.type == scope_type, label


def test_app_identity_is_the_principal_of_every_app_role(infra: Infra) -> None:
    main = infra.main
    rbac = main.modules["rbac"]["config"]["params"]
    scheduler = main.modules["durableTaskScheduler"]["config"]["config"]["params"]
    assert main.evaluate(rbac["principalId"]).text == "identity.outputs.principalId"
    assert main.evaluate(scheduler["principalId"]).text == "identity.outputs.principalId"


def test_outputs_needed_by_azd_are_declared(infra: Infra) -> None:
    outputs = infra.main.outputs
    for name in checks.REQUIRED_OUTPUTS:
        assert name in outputs
    assert infra.main.evaluate(outputs["AZURE_LOCATION"]["value"]) == Ref("location")
    assert "tenant().tenantId" in infra.main.lines[outputs["AZURE_TENANT_ID"]["__start_line__"] - 1]


def test_durable_task_scheduler_setting_is_identity_based(infra: Infra) -> None:
    scheduler = checks.app_settings(infra, "DurableTaskScheduler")
    storage = checks.app_settings(infra, "AzureStorage")
    value = scheduler["DURABLE_TASK_SCHEDULER_CONNECTION_STRING"]
    assert "Authentication=ManagedIdentity" in value
    assert "ClientID=${identityClientId}" in value
    assert "DURABLE_TASK_SCHEDULER_CONNECTION_STRING" not in storage


def test_every_bicep_file_is_checked(infra: Infra) -> None:
    on_disk = {p.relative_to(infra.root.parent).as_posix() for p in infra.root.rglob("*.bicep")}
    assert set(infra.files) == on_disk
    assert len(on_disk) >= 8


def test_no_real_template_looks_like_an_unterminated_string(infra: Infra) -> None:
    # The syntax-error locator must never blame a valid line.
    for bicep in infra.files.values():
        assert _unterminated_string(bicep.text) is None, bicep.rel
