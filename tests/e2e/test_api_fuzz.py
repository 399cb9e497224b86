"""Property-based fuzzing of the whole API from its own OpenAPI document (schemathesis), on the local stack.

Every operation the served document declares gets generated requests, valid and invalid, from several callers:
an admin of a real tenant (path ids fixed to that tenant and to real runs, so cases reach the real logic), a
``Platform.Admin`` app, a user without any grant and a caller without a token. Every answer must be no 5xx and
must match the document: declared status, content type, headers and body schema. The number of examples is
bounded and generation is derandomized, so the run is repeatable and takes a few minutes at most.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import CheckFunction
from schemathesis.core import NotSet
from schemathesis.core.failures import FailureGroup
from schemathesis.schemas import APIOperation

from tests.e2e.conftest import Stack, wait_terminal

pytestmark = pytest.mark.e2e

CHECKS: list[CheckFunction] = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
]
MAX_EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 8}
# Without a token every secured answer is the same 401, so fewer examples say all there is to say.
ANONYMOUS_EXAMPLES = 4


def _hypothesis_settings(max_examples: int) -> settings:
    # No shrinking (each failure is reported with its request as found) and no example database, so the run is
    # bounded and repeatable; the local host is slower than Hypothesis expects of a test body.
    return settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])


@dataclass
class Caller:
    """One identity, and the path parameters pinned for it in valid cases (the rest is generated)."""

    name: str
    token: str | None
    pinned: dict[str, str] = field(default_factory=dict)


@dataclass
class FuzzOutcome:
    """What the server answered, and every check failure (one per operation, check and status)."""

    statuses: Counter[int] = field(default_factory=Counter)
    valid_statuses: Counter[int] = field(default_factory=Counter)
    by_operation: dict[str, Counter[int]] = field(default_factory=dict)
    failures: dict[tuple[str, str, int], str] = field(default_factory=dict)
    # Answers to valid bodies sent as ``text/plain`` instead of JSON.
    not_json_statuses: Counter[int] = field(default_factory=Counter)

    def record(self, label: str, mode: GenerationMode, status: int) -> None:
        self.statuses[status] += 1
        if mode is GenerationMode.POSITIVE:
            self.valid_statuses[status] += 1
        self.by_operation.setdefault(label, Counter())[status] += 1

    def count(self, low: int, high: int) -> int:
        return sum(n for status, n in self.statuses.items() if low <= status <= high)

    def report(self) -> str:
        return "\n\n".join(self.failures.values())


def _has_inputs(operation: APIOperation) -> bool:
    return any(len(group) for group in (operation.path_parameters, operation.query, operation.headers,
                                        operation.body))


@dataclass
class Fuzz:
    """The schema as the stack serves it, plus the ids the callers need."""

    schema: Any
    server_url: str
    stack: Stack
    tenant_id: str
    run_id: str
    notification_id: str
    admin_token: str

    def operations(self) -> Iterator[APIOperation]:
        for result in self.schema.get_all_operations():
            yield result.ok()

    def run(self, caller: Caller) -> FuzzOutcome:
        outcome = FuzzOutcome()
        headers = {"Authorization": f"Bearer {caller.token}"} if caller.token else {}
        modes = [GenerationMode.POSITIVE] if caller.token is None else list(MAX_EXAMPLES)
        with requests.Session() as session:
            for operation in self.operations():
                for mode in modes:
                    if mode is GenerationMode.NEGATIVE and not _has_inputs(operation):
                        continue  # nothing to make invalid
                    examples = ANONYMOUS_EXAMPLES if caller.token is None else MAX_EXAMPLES[mode]
                    self._fuzz(operation, mode, examples, caller, headers, session, outcome)
        return outcome

    def _fuzz(self, operation: APIOperation, mode: GenerationMode, examples: int, caller: Caller,
              headers: dict[str, str], session: requests.Session, outcome: FuzzOutcome) -> None:
        # Pinned ids only where the operation has them, and only in valid cases: invalid cases are free to
        # mutate every path parameter.
        names = {p.name for p in operation.path_parameters}
        valid = mode is GenerationMode.POSITIVE
        pinned = {k: v for k, v in caller.pinned.items() if k in names} if valid else {}
        strategy = operation.as_strategy(generation_mode=mode, path_parameters=pinned or None)

        def call_and_check(case: schemathesis.Case, sent: dict[str, str], variant: str) -> int:
            response = case.call(base_url=self.server_url, session=session, headers=sent, timeout=60)
            try:
                case.validate_response(response, checks=CHECKS, headers=sent)
            except FailureGroup as group:
                for failure in group.exceptions:
                    key = (operation.label, failure.title, response.status_code)
                    outcome.failures.setdefault(key, f"[{caller.name}, {variant}] {group.args[0]}")
            return response.status_code

        @_hypothesis_settings(examples)
        @given(case=strategy)
        def exercise(case: schemathesis.Case) -> None:
            outcome.record(operation.label, mode, call_and_check(case, headers, mode.value))
            if mode is GenerationMode.POSITIVE and not isinstance(case.body, NotSet):
                # The same valid body, labelled as something other than JSON.
                not_json = {**headers, "Content-Type": "text/plain; charset=utf-8"}
                outcome.not_json_statuses[call_and_check(case, not_json, "text/plain body")] += 1

        exercise()


@pytest.fixture(scope="module")
def fuzz(stack: Stack) -> Fuzz:
    tenant_id = stack.new_customer_tenant()
    admin_api, _ = stack.user(tenant_id, "admin", name="Fuzz Admin")
    # A finished run gives the admin a real run id and notifications, so cases about them reach them.
    policies = admin_api.get(f"/tenants/{tenant_id}/policies", params={"type": "settingsCatalog"})
    assert policies.status_code == 200, policies.text
    policy_id = policies.json()["items"][0]["id"]
    started = admin_api.post(f"/tenants/{tenant_id}/policies/settingsCatalog/{policy_id}/snapshots")
    assert started.status_code == 202, started.text
    run = wait_terminal(admin_api, started.headers["Location"])
    notes = admin_api.get("/notifications")
    assert notes.status_code == 200, notes.text
    assert notes.json()["items"], notes.text
    parts = urlsplit(stack.info.api_base_url)
    server_url = f"{parts.scheme}://{parts.netloc}"
    schema = schemathesis.openapi.from_url(f"{stack.info.api_base_url}/openapi.json")
    return Fuzz(schema=schema, server_url=server_url, stack=stack, tenant_id=tenant_id, run_id=run["id"],
                notification_id=notes.json()["items"][0]["id"], admin_token=admin_api.token)


CALLERS: dict[str, Callable[[Fuzz], Caller]] = {
    "tenant-admin": lambda f: Caller("tenant-admin", f.admin_token, {
        "tenantId": f.tenant_id, "runId": f.run_id, "notificationId": f.notification_id}),
    "platform-admin": lambda f: Caller("platform-admin", f.stack.mint(idtyp="app", roles=["Platform.Admin"])),
    "no-grant": lambda f: Caller("no-grant", f.stack.mint(), {"tenantId": f.tenant_id, "runId": f.run_id}),
    "anonymous": lambda f: Caller("anonymous", None),
}


@pytest.mark.parametrize("caller_name", list(CALLERS))
def test_every_generated_request_gets_an_answer_the_document_declares(fuzz: Fuzz, caller_name: str) -> None:
    caller = CALLERS[caller_name](fuzz)

    outcome = fuzz.run(caller)

    assert not outcome.failures, f"{len(outcome.failures)} distinct failures:\n\n{outcome.report()}"
    # The run must have exercised the API, not just bounced off one error.
    total = sum(outcome.statuses.values())
    assert total >= 40, outcome.statuses
    assert outcome.count(500, 599) == 0, outcome.statuses
    if caller.token is None:
        secured = {label: c for label, c in outcome.by_operation.items()
                   if label not in ("GET /api/health", "GET /api/openapi.json", "GET /api/progress/page")}
        assert all(set(c) == {401} for c in secured.values()), secured
        assert set(outcome.by_operation["GET /api/health"]) == {200}
        return
    assert outcome.count(200, 299) >= 10, outcome.statuses
    assert outcome.count(400, 499) >= 10, outcome.statuses
    # Invalid cases may drop or mangle the token (401); valid ones always carry the caller's.
    assert 401 not in outcome.valid_statuses, outcome.valid_statuses
    # A body that does not say it is JSON is never acted upon.
    assert not any(200 <= status < 300 for status in outcome.not_json_statuses), outcome.not_json_statuses
    if caller_name in ("tenant-admin", "platform-admin"):
        assert outcome.not_json_statuses[415] > 0, outcome.not_json_statuses
    if caller_name == "tenant-admin":
        # Valid cases reach the tenant's real data: runs, the pinned run, its items, live policies, grants.
        tenant = "/api/tenants/{tenantId}"
        for label in (f"GET {tenant}/runs", f"GET {tenant}/runs/{{runId}}",
                      f"GET {tenant}/runs/{{runId}}/items", f"GET {tenant}/policies",
                      f"PUT {tenant}/grants/{{principalId}}", f"GET {tenant}/audit"):
            assert outcome.by_operation[label][200] > 0, (label, outcome.by_operation[label])
        snapshots = outcome.by_operation[f"POST {tenant}/policies/{{policyType}}/{{policyId}}/snapshots"]
        assert snapshots[202] > 0, snapshots
    if caller_name == "no-grant":
        # Everything under a tenant the caller has no grant on is 404 (or a refusal of the request itself:
        # a mangled token, body or parameter), never 403 or data.
        for label, counts in outcome.by_operation.items():
            if "{tenantId}" in label and label != "PUT /api/tenants/{tenantId}":
                assert set(counts) <= {400, 401, 404, 413, 415}, (label, counts)
