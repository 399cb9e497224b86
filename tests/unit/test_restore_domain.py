"""The pure rules of a restore plan: targets, diffs, remapping, assignments, stages, scope and retries."""

from __future__ import annotations

from typing import Any

import pytest

from shared.domain.capture import DEFAULT_RETRY_DELAY_SECONDS, MAX_CAPTURE_ATTEMPTS
from shared.domain.normalise import NormalForm
from shared.domain.restore import (
    ASSIGNMENTS_STAGE,
    AssignmentPlan,
    IdMaps,
    PlanItem,
    PlanSummary,
    RestoreApplyResult,
    RestoreRequest,
    apply_round,
    assignment_key,
    choose_target,
    comparable,
    diff,
    item_error,
    map_assignments,
    normal_hash,
    remap_references,
    restore_normal_form,
    restore_scope,
    stages_of,
    summarise,
)

TENANT = "22222222-2222-2222-2222-222222222222"
OTHER = "33333333-3333-3333-3333-333333333333"
GROUP_A = "aaaaaaaa-0000-0000-0000-000000000001"
GROUP_B = "aaaaaaaa-0000-0000-0000-000000000002"
TARGET_GROUP = "bbbbbbbb-0000-0000-0000-000000000001"
FILTER = "ffffffff-0000-0000-0000-000000000001"
TARGET_FILTER = "ffffffff-0000-0000-0000-0000000000aa"
NO_FILTER = "00000000-0000-0000-0000-000000000000"
RUN_ID = "run_01HZZZZZZZZZZZZZZZZZZZZZZZ"

FORM = NormalForm(drop_everywhere=frozenset({"lastModifiedDateTime"}), drop_top_level=frozenset({"version"}),
                  unordered=frozenset({"settings", "assignments"}),
                  unordered_scalars=frozenset({"roleScopeTagIds"}))
RESTORE_FORM = restore_normal_form(FORM)


# ----------------------------------------------------------------------------- choose_target


def _choose(*, ledger: str | None = None, source: str = "src-1", same: bool = True,
            ids: tuple[str, ...] = (), names: dict[str, list[str]] | None = None,
            name: str = "Baseline") -> Any:
    return choose_target(ledger_target=ledger, source_id=source, same_tenant=same, live_ids=ids,
                         live_names=names or {}, name=name)


def test_the_ledger_wins_over_the_same_id_and_the_name() -> None:
    match = _choose(ledger="tgt-9", source="src-1", ids=("src-1", "tgt-9", "named"),
                    names={"Baseline": ["named"]})
    assert (match.target_id, match.via, match.conflict) == ("tgt-9", "ledger", None)


def test_a_ledger_target_that_no_longer_exists_falls_back_to_the_same_id_then_the_name() -> None:
    same = _choose(ledger="gone", source="src-1", ids=("src-1",), names={"Baseline": ["src-1"]})
    assert (same.target_id, same.via) == ("src-1", "same-id")
    named = _choose(ledger="gone", source="src-1", ids=("named",), names={"Baseline": ["named"]})
    assert (named.target_id, named.via) == ("named", "name")


def test_the_same_id_counts_only_in_the_source_tenant() -> None:
    across = _choose(source="src-1", same=False, ids=("src-1",), names={})
    assert across.target_id is None
    assert across.conflict is None
    assert across.via == "none"
    across_named = _choose(source="src-1", same=False, ids=("src-1", "named"), names={"Baseline": ["named"]})
    assert (across_named.target_id, across_named.via) == ("named", "name")


def test_an_ambiguous_display_name_is_a_conflict_never_a_guess() -> None:
    match = _choose(ids=("a", "b"), names={"Baseline": ["a", "b"]})
    assert match.target_id is None
    assert match.conflict is not None
    assert "2 objects" in match.conflict


def test_no_match_means_create_and_an_empty_name_never_matches() -> None:
    assert _choose(ids=("x",), names={"Other": ["x"]}).target_id is None
    nameless = _choose(ids=("x",), names={"": ["x"]}, name="")
    assert nameless.target_id is None
    assert nameless.conflict is None


# ------------------------------------------------------------------------------------- diff


def test_diff_lists_changed_added_and_removed_fields_as_json_pointers() -> None:
    before = {"a": 1, "nested": {"x": "old", "gone": True}, "same": [1, 2]}
    after = {"a": 2, "nested": {"x": "new", "added": "yes"}, "same": [1, 2]}
    changes = [(c.path, c.before, c.after) for c in diff(before, after)]
    assert changes == [("/a", 1, 2), ("/nested/added", None, "yes"), ("/nested/gone", True, None),
                       ("/nested/x", "old", "new")]


def test_diff_escapes_slash_and_tilde_in_keys() -> None:
    changes = diff({"a/b": 1, "c~d": 1, "~/": 1}, {"a/b": 2, "c~d": 2, "~/": 2})
    assert sorted(c.path for c in changes) == ["/a~1b", "/c~0d", "/~0~1"]


def test_diff_walks_lists_of_equal_length_by_index_and_replaces_lists_of_another_length() -> None:
    same_length = diff({"settings": [{"v": 1}, {"v": 2}]}, {"settings": [{"v": 1}, {"v": 3}]})
    assert [(c.path, c.before, c.after) for c in same_length] == [("/settings/1/v", 2, 3)]
    longer = diff({"settings": [1]}, {"settings": [1, 2]})
    assert [(c.path, c.before, c.after) for c in longer] == [("/settings", [1], [1, 2])]


def test_diff_of_equal_values_is_empty_and_of_changed_scalars_is_the_root() -> None:
    assert diff({"a": {"b": [1, {"c": None}]}}, {"a": {"b": [1, {"c": None}]}}) == []
    root = diff("x", "y")
    assert [(c.path, c.before, c.after) for c in root] == [("/", "x", "y")]
    typed = diff({"a": 1}, {"a": "1"})
    assert [c.path for c in typed] == ["/a"]


# ------------------------------------------------------------------------------- comparable


def test_comparable_drops_nulls_at_every_depth_and_unwritable_properties() -> None:
    body = {"displayName": "P", "description": None, "platform": "windows10",
            "nested": {"keep": 1, "empty": None}, "computed": 5}
    assert comparable(body, RESTORE_FORM, unwritable=("computed",)) == {
        "displayName": "P", "platform": "windows10", "nested": {"keep": 1}}


def test_comparable_uses_the_restore_normal_form() -> None:
    body = {"id": "p1", "displayName": "P", "version": 3, "lastModifiedDateTime": "2026-01-01",
            "roleScopeTagIds": ["5", "0"], "assignments": [{"target": {}}], "isAssigned": True,
            "settings": [{"id": "s2", "v": 2}, {"id": "s1", "v": 1, "sourceId": "x"}],
            "@odata.context": "https://graph/x"}
    assert comparable(body, RESTORE_FORM) == {
        "displayName": "P", "roleScopeTagIds": ["0", "5"], "settings": [{"v": 1}, {"v": 2}]}


def test_a_missing_property_and_a_null_one_compare_equal() -> None:
    assert diff(comparable({"a": 1, "b": None}, RESTORE_FORM), comparable({"a": 1}, RESTORE_FORM)) == []
    assert normal_hash({"a": 1, "b": None, "version": 1}, RESTORE_FORM) == normal_hash({"a": 1}, RESTORE_FORM)
    assert normal_hash({"a": 1}, RESTORE_FORM) != normal_hash({"a": 2}, RESTORE_FORM)
    unwritable_ignored = normal_hash({"a": 1, "x": 2}, RESTORE_FORM, unwritable=("x",))
    assert unwritable_ignored == normal_hash({"a": 1}, RESTORE_FORM)


# -------------------------------------------------------------------------- remap_references


def test_scope_tags_are_remapped_as_ids_and_as_objects_with_an_id() -> None:
    maps = IdMaps(scope_tags={"5": "17", "0": "0"})
    body = {"roleScopeTagIds": ["0", "5", 5, "9"], "roleScopeTags": [{"id": "5", "displayName": "T"}]}
    # Across tenants "9" is another tenant's tag: left out rather than landing on an unrelated one.
    assert remap_references(body, maps) == {
        "roleScopeTagIds": ["0", "17", "17"], "roleScopeTags": [{"id": "17", "displayName": "T"}]}
    # In the source tenant an unmapped tag is still itself.
    same_tenant = maps.model_copy(update={"identity_fallback": True})
    assert remap_references(body, same_tenant)["roleScopeTagIds"] == ["0", "17", "17", "9"]


def test_small_integers_outside_scope_tag_lists_are_left_alone() -> None:
    maps = IdMaps(scope_tags={"5": "17"})
    assert remap_references({"retries": "5", "values": ["5"], "count": 5}, maps) == {
        "retries": "5", "values": ["5"], "count": 5}


def test_filters_groups_and_object_guids_are_remapped_at_any_depth() -> None:
    referenced = "cccccccc-0000-0000-0000-000000000001"
    maps = IdMaps(filters={FILTER: TARGET_FILTER}, groups={GROUP_A: TARGET_GROUP},
                  objects={referenced: "dddddddd-0000-0000-0000-000000000001"})
    target = {"groupId": GROUP_A, "deviceAndAppManagementAssignmentFilterId": FILTER}
    body = {"assignments": [{"target": target}],
            "scheduledActionsForRule": [{"notificationTemplateId": referenced,
                                         "notes": f"see {referenced}"}],
            "list": [referenced]}
    out = remap_references(body, maps)
    assert out["assignments"][0]["target"] == {"groupId": TARGET_GROUP,
                                               "deviceAndAppManagementAssignmentFilterId": TARGET_FILTER}
    # Whole values only: a GUID inside free text is not a reference.
    assert out["scheduledActionsForRule"] == [
        {"notificationTemplateId": "dddddddd-0000-0000-0000-000000000001", "notes": f"see {referenced}"}]
    assert out["list"] == ["dddddddd-0000-0000-0000-000000000001"]
    assert target["groupId"] == GROUP_A  # the input is not changed


def test_unmapped_references_are_kept_except_scope_tags_across_tenants() -> None:
    body = {"groupId": GROUP_B, "deviceAndAppManagementAssignmentFilterId": FILTER, "roleScopeTagIds": ["3"]}
    assert remap_references(body, IdMaps(identity_fallback=True)) == body
    # A policy left with no tag gets the built-in one, as Graph does.
    assert remap_references(body, IdMaps()) == {**body, "roleScopeTagIds": ["0"]}


# --------------------------------------------------------------------------- map_assignments


def _group_assignment(group: str, *, filter_id: str | None = None, exclude: bool = False) -> dict[str, Any]:
    target: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget" if exclude
        else "#microsoft.graph.groupAssignmentTarget", "groupId": group}
    if filter_id is not None:
        target["deviceAndAppManagementAssignmentFilterId"] = filter_id
        target["deviceAndAppManagementAssignmentFilterType"] = "include"
    return {"id": f"{group}_1", "source": "direct", "sourceId": "p1", "target": target}


def test_groups_map_to_the_target_and_unmapped_groups_are_reported_not_guessed() -> None:
    maps = IdMaps(groups={GROUP_A: TARGET_GROUP})
    mapped, unmapped = map_assignments([_group_assignment(GROUP_A), _group_assignment(GROUP_B, exclude=True),
                                        _group_assignment(GROUP_B)], maps)
    assert mapped == [{"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget",
                                  "groupId": TARGET_GROUP}}]
    assert unmapped == [f"group:{GROUP_B}"]


def test_a_group_target_without_a_group_id_is_unmapped() -> None:
    mapped, unmapped = map_assignments(
        [{"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget"}}], IdMaps())
    assert mapped == []
    assert unmapped == ["group:None"]


def test_filters_map_to_the_target_and_unmapped_filters_drop_the_assignment() -> None:
    maps = IdMaps(groups={GROUP_A: TARGET_GROUP, GROUP_B: GROUP_B}, filters={FILTER: TARGET_FILTER})
    other_filter = "ffffffff-0000-0000-0000-000000000002"
    mapped, unmapped = map_assignments([_group_assignment(GROUP_A, filter_id=FILTER),
                                        _group_assignment(GROUP_B, filter_id=other_filter)], maps)
    assert [a["target"]["deviceAndAppManagementAssignmentFilterId"] for a in mapped] == [TARGET_FILTER]
    assert mapped[0]["target"]["groupId"] == TARGET_GROUP
    assert unmapped == [f"filter:{other_filter}"]


def test_in_the_source_tenant_an_unmapped_filter_is_itself() -> None:
    maps = IdMaps(groups={GROUP_A: GROUP_A}, identity_fallback=True)
    mapped, unmapped = map_assignments([_group_assignment(GROUP_A, filter_id=FILTER)], maps)
    assert unmapped == []
    assert mapped[0]["target"]["deviceAndAppManagementAssignmentFilterId"] == FILTER
    assert maps.filter_for(FILTER) == FILTER
    assert IdMaps().filter_for(FILTER) is None


def test_all_devices_and_all_users_targets_and_the_empty_filter_pass_unchanged() -> None:
    assignments: list[dict[str, Any]] = [
        {"id": "x", "target": {"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget",
                               "deviceAndAppManagementAssignmentFilterId": NO_FILTER,
                               "deviceAndAppManagementAssignmentFilterType": "none"}},
        {"intent": "required", "settings": {"notify": True}, "target@odata.context": "ignored",
         "target": {"@odata.type": "#microsoft.graph.allLicensedUsersAssignmentTarget",
                    "target@odata.context": "x"}},
        {"no": "target"},
    ]
    mapped, unmapped = map_assignments(assignments, IdMaps())
    assert unmapped == []
    assert mapped == [
        {"target": {"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget",
                    "deviceAndAppManagementAssignmentFilterId": NO_FILTER,
                    "deviceAndAppManagementAssignmentFilterType": "none"}},
        {"intent": "required", "settings": {"notify": True},
         "target": {"@odata.type": "#microsoft.graph.allLicensedUsersAssignmentTarget"}},
    ]


def test_unmapped_names_are_sorted_and_listed_once() -> None:
    _, unmapped = map_assignments([_group_assignment(GROUP_B), _group_assignment(GROUP_A),
                                   _group_assignment(GROUP_B, exclude=True)], IdMaps())
    assert unmapped == [f"group:{GROUP_A}", f"group:{GROUP_B}"]


def test_assignment_key_is_the_target_without_annotations_other_than_its_type() -> None:
    plain = {"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": GROUP_A}}
    annotated = {"id": "other", "intent": "apply",
                 "target": {"groupId": GROUP_A, "@odata.type": "#microsoft.graph.groupAssignmentTarget",
                            "@odata.context": "x"}}
    excluded = {"target": {"@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget",
                           "groupId": GROUP_A}}
    assert assignment_key(plain) == assignment_key(annotated)
    assert assignment_key(plain) != assignment_key(excluded)
    assert assignment_key({}) == assignment_key({"target": None}) == "{}"


# --------------------------------------------------------------------------------- stages_of


def _item(n: int, policy_type: str, action: str = "create", assign: str = "skip") -> PlanItem:
    return PlanItem.model_validate({
        "item_id": f"{policy_type}:{n}", "policy_type": policy_type, "source_id": str(n), "action": action,
        "assignments": AssignmentPlan.model_validate({"action": assign})})


ORDER = {"scopeTag": 10, "assignmentFilter": 15, "settingsCatalog": 100, "deviceConfiguration": 100,
         "policySet": 2000}
FAMILY = {"settingsCatalog": "deviceConfigV2", "deviceConfiguration": "deviceConfiguration"}


def test_stages_follow_the_restore_order_with_assignments_last() -> None:
    items = [_item(0, "policySet", assign="replace"), _item(1, "settingsCatalog", "update", "replace"),
             _item(2, "scopeTag"), _item(3, "settingsCatalog", "unchanged", "merge"),
             _item(4, "assignmentFilter"), _item(5, "unknownType")]
    stages = stages_of(items, restore_order=ORDER, family=FAMILY, with_assignments=True)
    assert [(s.stage, s.positions) for s in stages] == [
        (0, [5]), (10, [2]), (15, [4]), (100, [1, 3]), (2000, [0]), (ASSIGNMENTS_STAGE, [0, 1, 3])]


def test_only_items_whose_assignments_change_go_to_the_assignment_stage() -> None:
    sc = "settingsCatalog"
    items = [_item(0, sc, "create", "replace"), _item(1, sc, "update", "unchanged"),
             _item(2, sc, "unchanged", "skip"), _item(3, sc, "conflict", "replace"),
             _item(4, sc, "unsupported", "replace"), _item(5, sc, "update", "merge")]
    stages = stages_of(items, restore_order=ORDER, family=FAMILY, with_assignments=True)
    assert [(s.stage, s.positions) for s in stages] == [(100, [0, 1, 2, 3, 4, 5]),
                                                         (ASSIGNMENTS_STAGE, [0, 5])]


def test_without_assignments_there_is_no_assignment_stage() -> None:
    items = [_item(0, "settingsCatalog", "create", "replace")]
    without = stages_of(items, restore_order=ORDER, family=FAMILY, with_assignments=False)
    assert [s.stage for s in without] == [100]
    assert stages_of([], restore_order=ORDER, family=FAMILY, with_assignments=True) == []
    nothing_to_assign = [_item(0, "settingsCatalog", "unchanged", "unchanged")]
    stages = stages_of(nothing_to_assign, restore_order=ORDER, family=FAMILY, with_assignments=True)
    assert [s.stage for s in stages] == [100]


def test_families_take_turns_within_a_stage_and_the_busiest_assigns_last() -> None:
    dc, sc = "deviceConfiguration", "settingsCatalog"
    items = [_item(0, dc, assign="replace"), _item(1, dc, assign="replace"), _item(2, dc, assign="replace"),
             _item(3, sc, assign="replace"), _item(4, sc)]
    stages = stages_of(items, restore_order=ORDER, family=FAMILY, with_assignments=True)
    # No chunk is all one family waiting for its budget; each family keeps its own order.
    assert [(s.stage, s.positions) for s in stages] == [(100, [0, 3, 1, 4, 2]),
                                                        (ASSIGNMENTS_STAGE, [3, 0, 1, 2])]


def test_summarise_counts_items_per_action() -> None:
    items = [_item(0, "a", "create"), _item(1, "a", "create"), _item(2, "a", "conflict"),
             _item(3, "a", "unchanged")]
    assert summarise(items) == PlanSummary(create=2, conflict=1, unchanged=1)
    assert summarise([]) == PlanSummary()


def test_an_item_error_carries_only_the_code_and_our_message() -> None:
    error = item_error("restore-conflict", "The target changed since the preview.")
    assert error.model_dump(exclude_none=True) == {"code": "restore-conflict",
                                                   "message": "The target changed since the preview."}


# ------------------------------------------------------------------------------ restore_scope


def _request(**fields: Any) -> RestoreRequest:
    return RestoreRequest.model_validate({"backupSetId": "bs_01HZZZZZZZZZZZZZZZZZZZZZZZ", **fields})


def test_scope_defaults_to_assignments_in_the_same_tenant_and_none_across_tenants() -> None:
    same = restore_scope(_request(), target_tenant_id=TENANT, execute=False)
    assert same["options"]["includeAssignments"] is True
    assert same["sourceTenantId"] == TENANT
    same_upper = restore_scope(_request(sourceTenantId=TENANT.upper()), target_tenant_id=TENANT,
                               execute=False)
    assert same_upper["options"]["includeAssignments"] is True
    assert same_upper["sourceTenantId"] == TENANT
    across = restore_scope(_request(sourceTenantId=OTHER), target_tenant_id=TENANT, execute=True)
    assert across["options"]["includeAssignments"] is False
    assert across["sourceTenantId"] == OTHER


def test_an_explicit_include_assignments_wins_over_the_default() -> None:
    across = restore_scope(_request(sourceTenantId=OTHER, options={"includeAssignments": True}),
                           target_tenant_id=TENANT, execute=False)
    assert across["options"]["includeAssignments"] is True
    same = restore_scope(_request(options={"includeAssignments": False}), target_tenant_id=TENANT,
                         execute=False)
    assert same["options"]["includeAssignments"] is False


def test_scope_spells_equivalent_requests_the_same() -> None:
    one = restore_scope(_request(itemIds=["settingsCatalog:b", "settingsCatalog:a", "settingsCatalog:b"],
                                 options={"groupMapping": {GROUP_B: TARGET_GROUP, GROUP_A: TARGET_GROUP}}),
                        target_tenant_id=TENANT, execute=False)
    other = restore_scope(_request(itemIds=["settingsCatalog:a", "settingsCatalog:b"],
                                   options={"groupMapping": {GROUP_A: TARGET_GROUP, GROUP_B: TARGET_GROUP}}),
                          target_tenant_id=TENANT, execute=False)
    assert one == other
    assert one["itemIds"] == ["settingsCatalog:a", "settingsCatalog:b"]
    assert list(one["options"]["groupMapping"]) == [GROUP_A, GROUP_B]
    assert one["options"]["assignmentMode"] == "replace"
    assert restore_scope(_request(), target_tenant_id=TENANT, execute=False)["itemIds"] is None


@pytest.mark.parametrize(("fields", "execute", "field"), [
    ({"itemIds": ["no-type-separator"]}, False, "itemIds"),
    ({"itemIds": ["settingsCatalog:ok", "bad type:x"]}, False, "itemIds"),
    ({"options": {"groupMapping": {"not-a-guid": TARGET_GROUP}}}, False, "groupMapping"),
    ({"options": {"groupMapping": {GROUP_A: "not-a-guid"}}}, False, "groupMapping"),
    ({"previewRunId": RUN_ID}, False, "previewRunId"),
    ({"previewRunId": "run_short"}, True, "previewRunId"),
    ({"previewRunId": "bs_01HZZZZZZZZZZZZZZZZZZZZZZZ"}, True, "previewRunId"),
])
def test_malformed_scopes_are_refused(fields: dict[str, Any], execute: bool, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        restore_scope(_request(**fields), target_tenant_id=TENANT, execute=execute)


def test_an_execution_may_name_its_preview() -> None:
    scope = restore_scope(_request(previewRunId=RUN_ID), target_tenant_id=TENANT, execute=True)
    assert scope["previewRunId"] == RUN_ID


# -------------------------------------------------------------------------------- apply_round


def _result(position: int, status: str, retry_after: float | None = None) -> RestoreApplyResult:
    return RestoreApplyResult.model_validate({"position": position, "status": status,
                                              "retry_after_seconds": retry_after})


def test_a_round_retries_only_items_that_asked_with_the_longest_wait() -> None:
    results = [_result(3, "succeeded"), _result(4, "retry", 20), _result(7, "retry", 5), _result(8, "failed"),
               _result(9, "skipped")]
    round_ = apply_round(results, attempt=1)
    assert round_.retry == [4, 7]
    assert round_.delay_seconds == 20


def test_a_round_waits_the_default_without_retry_after_and_within_bounds() -> None:
    assert apply_round([_result(1, "retry")], attempt=1).delay_seconds == DEFAULT_RETRY_DELAY_SECONDS
    assert apply_round([_result(1, "retry", 0.01)], attempt=1).delay_seconds == 1.0
    assert apply_round([_result(1, "retry", 10_000)], attempt=1).delay_seconds == 300.0


def test_no_retry_after_the_last_attempt_or_when_nothing_asked() -> None:
    last = apply_round([_result(1, "retry", 5)], attempt=MAX_CAPTURE_ATTEMPTS)
    assert last.retry == []
    assert last.delay_seconds is None
    settled = apply_round([_result(1, "succeeded"), _result(2, "failed")], attempt=1)
    assert settled.retry == []
    assert settled.delay_seconds is None


def test_default_enrollment_configurations_are_updated_in_place_never_created_or_assigned() -> None:
    from shared.graph.catalog import CATALOG

    enrollment = CATALOG["enrollmentConfiguration"]
    default, own = {"priority": 0}, {"priority": 3}
    assert enrollment.is_default(default)
    assert not enrollment.can_assign(default)
    assert not enrollment.is_default(own)
    assert enrollment.can_assign(own)
