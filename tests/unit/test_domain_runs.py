from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from shared.domain import (
    CreatedBy,
    CredentialRef,
    ErrorInfo,
    RunCounts,
    RunKind,
    RunRecord,
    RunStatus,
    RunTarget,
    can_transition,
    canonical_json,
    derive_idempotency_key,
    final_status,
    invert_sortable,
    new_run_id,
)
from shared.domain.ids import run_id_time
from shared.storage.rows import run_id_from_row_key, run_row_key

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TENANT = "22222222-2222-2222-2222-222222222222"


class TestTransitions:
    @pytest.mark.parametrize(("current", "new"), [
        (RunStatus.QUEUED, RunStatus.RUNNING),
        (RunStatus.RUNNING, RunStatus.SUCCEEDED),
        (RunStatus.RUNNING, RunStatus.PARTIAL),
        (RunStatus.RUNNING, RunStatus.FAILED),
        (RunStatus.RUNNING, RunStatus.CANCELLED),
        (RunStatus.QUEUED, RunStatus.CANCELLED),
        (RunStatus.QUEUED, RunStatus.FAILED),
    ])
    def test_forward_moves_are_allowed(self, current, new):
        assert can_transition(current, new)

    @pytest.mark.parametrize(("current", "new"), [
        (RunStatus.RUNNING, RunStatus.QUEUED),
        (RunStatus.SUCCEEDED, RunStatus.RUNNING),
        (RunStatus.FAILED, RunStatus.SUCCEEDED),
        (RunStatus.PARTIAL, RunStatus.CANCELLED),
        (RunStatus.CANCELLED, RunStatus.QUEUED),
        (RunStatus.RUNNING, RunStatus.RUNNING),
    ])
    def test_backward_sideways_and_terminal_moves_are_refused(self, current, new):
        assert not can_transition(current, new)


class TestFinalStatus:
    def test_some_succeeded_some_failed_is_partial(self):
        assert final_status(RunCounts(total=3, succeeded=2, failed=1)) == RunStatus.PARTIAL

    def test_all_failed_is_failed(self):
        assert final_status(RunCounts(total=2, failed=2)) == RunStatus.FAILED

    def test_all_succeeded_or_skipped_is_succeeded(self):
        assert final_status(RunCounts(total=3, succeeded=2, skipped=1)) == RunStatus.SUCCEEDED

    def test_zero_items_with_a_run_failure_is_failed(self):
        assert final_status(RunCounts(), run_failed=True) == RunStatus.FAILED

    def test_zero_items_without_failure_is_succeeded(self):
        assert final_status(RunCounts()) == RunStatus.SUCCEEDED

    def test_run_failure_after_some_successes_is_partial(self):
        assert final_status(RunCounts(total=1, succeeded=1), run_failed=True) == RunStatus.PARTIAL


class TestDerivedKey:
    def test_canonical_json_sorts_keys_without_spaces(self):
        assert canonical_json({"b": [1, {"d": 1, "c": 2}], "a": "é"}) == \
            '{"a":"é","b":[1,{"c":2,"d":1}]}'

    def test_key_is_sha256_of_the_documented_material(self):
        import hashlib
        target = RunTarget(policy_type="settingsCatalog", policy_id="p1")
        scope = {"selection": {"all": True}, "options": {"x": 1}}
        material = "|".join([
            TENANT, "policy.capture",
            '{"backupSetId":null,"policyId":"p1","policyType":"settingsCatalog"}',
            '{"options":{"x":1},"selection":{"all":true}}',
        ])
        assert derive_idempotency_key(TENANT, RunKind.POLICY_CAPTURE, target, scope) == \
            hashlib.sha256(material.encode()).hexdigest()

    def test_key_ignores_key_order_and_spacing_of_the_request(self):
        target = RunTarget(backup_set_id="bs1")
        a = json.loads('{"selection": {"types": ["a", "b"]}, "includeAssignments": true}')
        b = json.loads('{"includeAssignments":true,"selection":{"types":["a","b"]}}')
        assert derive_idempotency_key(TENANT, RunKind.BACKUPSET_CAPTURE, target, a) == \
            derive_idempotency_key(TENANT, RunKind.BACKUPSET_CAPTURE, target, b)

    @pytest.mark.parametrize("change", ["tenant_id", "kind", "target", "scope"])
    def test_any_part_changes_the_key(self, change):
        base: dict[str, Any] = {"tenant_id": TENANT, "kind": RunKind.RESTORE_PREVIEW,
                                "target": RunTarget(backup_set_id="bs1"),
                                "scope": {"itemIds": ["a"]}}
        other = dict(base)
        other[change] = {
            "tenant_id": "33333333-3333-3333-3333-333333333333",
            "kind": RunKind.RESTORE_EXECUTE,
            "target": RunTarget(backup_set_id="bs2"),
            "scope": {"itemIds": ["b"]},
        }[change]
        assert derive_idempotency_key(**base) != derive_idempotency_key(**other)


class TestRunIds:
    def test_shape(self):
        run_id = new_run_id(T0)
        assert run_id.startswith("run_")
        assert len(run_id) == 30
        assert set(run_id[4:]) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")

    def test_ids_sort_by_time_and_are_unique(self):
        ids = [new_run_id(T0 + timedelta(milliseconds=i)) for i in range(200)]
        assert ids == sorted(ids)
        same_ms = {new_run_id(T0) for _ in range(1000)}
        assert len(same_ms) == 1000

    def test_time_round_trips(self):
        assert run_id_time(new_run_id(T0)) == int(T0.timestamp() * 1000)

    def test_row_keys_list_newest_first_and_invert_back(self):
        ids = [new_run_id(T0 + timedelta(seconds=i)) for i in range(50)]
        keys = [run_row_key(i) for i in ids]
        assert sorted(keys) == list(reversed(keys))
        assert [run_id_from_row_key(k) for k in keys] == ids
        assert invert_sortable(invert_sortable("0AZ9")) == "0AZ9"


class TestModels:
    def test_error_info_message_is_redacted(self):
        info = ErrorInfo(code="graph-error",
                         message="failed: Authorization: Bearer eyJhbGciOi.eyJzdWIiOi.c2ln")
        assert "eyJ" not in info.message
        assert "[REDACTED]" in info.message

    def test_run_dumps_camel_case_json(self):
        run = RunRecord(id=new_run_id(T0), tenant_id=TENANT, kind=RunKind.POLICY_CAPTURE,
                        target=RunTarget(policy_type="t", policy_id="p"),
                        created_by=CreatedBy(id="oid", name="Ada"), created_at=T0,
                        derived_key="k")
        out = run.model_dump(mode="json", by_alias=True)
        assert out["tenantId"] == TENANT
        assert out["target"] == {"policyType": "t", "policyId": "p", "backupSetId": None}
        assert out["createdAt"] == "2026-03-01T12:00:00Z"
        assert out["counts"] == {"total": 0, "succeeded": 0, "failed": 0, "skipped": 0}
        assert RunRecord.model_validate(out) == run

    @pytest.mark.parametrize("name", ["graph-cert", "contosoGraphSecret", "GRAPH_CLIENT_SECRET",
                                      "ContosoProductionGraphCertificate", ""])
    def test_credential_reference_names_are_accepted(self, name):
        assert CredentialRef(type="keyVaultSecret", name=name).name == name

    @pytest.mark.parametrize("value", [
        "abc8Q~aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",  # Entra client secret shape
        "Xk9vQ2mL7pR4tW8zB3nF6hJ1cV5yD0sA",  # random-looking
        "3f2a9c0d4b1e8f7a6c5d4e3f2a1b0c9d8e7f6a5b",  # long hex
        "has space", "with/slash", "eyJhbGciOiJSUzI1NiJ9.e30.sig",
    ])
    def test_secret_looking_credential_values_are_refused(self, value):
        with pytest.raises(ValidationError):
            CredentialRef(type="keyVaultSecret", name=value)
