"""A Logic Apps style client completes a backup set through the public API: the sample nightly workflow
(docs/logic-app-nightly-backup.json) run by a stand-in of the Logic Apps runtime (tests/logic_apps.py) that
sends the Idempotency-Key, retries a lost answer, follows Location and honours Retry-After, against the whole
local stack, posting the outcome to a receiver on loopback."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Stack
from tests.logic_apps import CallbackReceiver, WorkflowRun

pytestmark = pytest.mark.e2e

SAMPLE = Path(__file__).resolve().parents[2] / "docs" / "logic-app-nightly-backup.json"


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    with CallbackReceiver("/workflows/outcome/invoke") as receiver:
        yield receiver


def _workflow(stack: Stack, tenant: str, receiver: CallbackReceiver, token: str,
              **options: Any) -> WorkflowRun:
    sample = json.loads(SAMPLE.read_text(encoding="utf-8"))

    def token_for(audience: str) -> str:
        # The workflow's managed identity asks for a token for the API's audience.
        assert audience == stack.info.api_audience
        return token

    return WorkflowRun(
        definition=sample["definition"], run_name=f"08584{uuid.uuid4().hex[:20].upper()}CU00",
        token_for=token_for, interval_scale=0.05, max_wait_seconds=240,
        parameters={"apiBaseUrl": stack.info.api_base_url, "apiAudience": stack.info.api_audience,
                    "tenantId": tenant, "functionKey": "not-checked-locally", "outcomeUrl": receiver.url},
        **options)


def _workflow_identity(stack: Stack, tenant: str | None) -> str:
    """An app-only token for the workflow's managed identity, operator on ``tenant`` (or on nothing)."""
    oid = str(uuid.uuid4())
    if tenant:
        stack.grant(tenant, oid, "operator")
    return stack.mint(oid=oid, idtyp="app", name="Nightly backup workflow")


def test_the_nightly_workflow_backs_up_the_tenant_and_posts_the_outcome(
        stack: Stack, receiver: CallbackReceiver) -> None:
    tenant = stack.new_customer_tenant()
    token = _workflow_identity(stack, tenant)
    # The first answer to the start is lost (a timeout for Logic Apps), so the runtime sends it again.
    run = _workflow(stack, tenant, receiver, token, lose_first_answer_of=frozenset({"Start_backup_set"}))

    statuses = run.run()

    assert statuses == {"Start_backup_set": "Succeeded", "Post_outcome": "Succeeded",
                        "Post_failure": "Skipped"}
    starts = [e for e in run.exchanges if e.method == "POST" and e.url.endswith("/backup-sets")]
    polls = [e for e in run.exchanges if e.action == "Start_backup_set" and e.method == "GET"]
    # Both attempts carried the workflow run's name as Idempotency-Key, and the retry got the one run back.
    assert [e.headers["Idempotency-Key"] for e in starts] == [run.run_name] * 2
    assert [e.status for e in starts] == [0, 202]
    run_id = starts[1].response_body["id"]
    api = stack.api(token)
    listed = api.get(f"/tenants/{tenant}/runs", params={"kind": "backupset.capture"}).json()["items"]
    assert [r["id"] for r in listed] == [run_id]
    # Location was followed, Retry-After honoured, until the monitor answered 200 with the ended run.
    assert polls
    assert polls[-1].status == 200
    previous = starts[1]
    for poll in polls:
        assert poll.url == previous.response_headers["location"]
        assert poll.sent_at - previous.sent_at >= float(previous.response_headers["retry-after"])
        assert poll.headers["Authorization"] == f"Bearer {token}"
        previous = poll
    ended = run.outputs["Start_backup_set"]["body"]
    assert ended["id"] == run_id
    assert ended["status"] == "succeeded"
    assert ended["counts"]["total"] > 0
    assert ended["counts"]["failed"] == 0
    backup_set = api.get(f"/tenants/{tenant}/backup-sets/{starts[1].response_body['backupSet']['id']}").json()
    assert backup_set["status"] == "complete"
    # The outcome reached the flow once, typed as the workflow declares it.
    assert receiver.bodies == [{
        "tenantId": tenant, "runId": run_id, "status": "succeeded",
        "itemsTotal": ended["counts"]["total"], "itemsSucceeded": ended["counts"]["succeeded"],
        "itemsFailed": 0, "finishedAt": ended["finishedAt"], "runUrl": ended["links"]["self"]}]


def test_a_start_the_api_refuses_is_not_retried_and_posts_the_failure(
        stack: Stack, receiver: CallbackReceiver) -> None:
    tenant = stack.new_customer_tenant()
    # The workflow's identity was never granted on the tenant: the API answers 404, which is final.
    run = _workflow(stack, tenant, receiver, _workflow_identity(stack, None))

    statuses = run.run()

    assert statuses == {"Start_backup_set": "Failed", "Post_outcome": "Skipped", "Post_failure": "Succeeded"}
    assert [e.status for e in run.exchanges if e.action == "Start_backup_set"] == [404]
    assert receiver.bodies == [{"tenantId": tenant, "runId": "", "status": "not-started", "httpStatus": 404,
                                "errorCode": run.outputs["Start_backup_set"]["body"]["code"]}]
    reader, _ = stack.user(tenant, "reader")
    assert reader.get(f"/tenants/{tenant}/runs").json()["items"] == []
