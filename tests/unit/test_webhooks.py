"""Webhooks: payload builders, signatures, target checks, secrets at rest, and delivery over the outbox."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from shared.domain import CreatedBy, ErrorInfo, RunCounts, RunKind, RunRecord, RunStatus, RunTarget
from shared.domain.webhooks import (
    DeliveryState,
    build_event,
    build_teams_message,
    mask_url,
    signature_header,
    verify_signature,
)
from shared.errors import InvalidRequest
from shared.services.outbox import OutboxDispatcher
from shared.services.runs import RunService
from shared.services.webhook_transport import (
    DeliveryResponse,
    HttpWebhookSender,
    SecretBox,
    TargetRefused,
    check_target,
)
from shared.services.webhooks import SubscriptionRequest, WebhookService
from shared.storage.memory_webhooks import InMemoryWebhookRepository
from tests.fakes import FakeClock, RunsHarness, make_principal
from tests.webhook_support import InlineExecutor, Receiver, adaptive_card_errors

TENANT = "22222222-2222-2222-2222-222222222222"
ADA = make_principal()
API = "https://app.example/api"
PUBLIC = "20.50.2.1"


def _public(host: str, port: int) -> list[str]:
    return [PUBLIC]


def sample_run(status: RunStatus = RunStatus.SUCCEEDED, **update: Any) -> RunRecord:
    clock = FakeClock()
    run = RunRecord(id="run_01JABCDEF", tenant_id=TENANT, kind=RunKind.POLICY_CAPTURE, status=status,
                    target=RunTarget(policy_type="settingsCatalog", policy_id="pol-1"),
                    created_by=CreatedBy(id="oid", name="Ada"), created_at=clock.now,
                    started_at=clock.now + timedelta(seconds=1),
                    finished_at=clock.now + timedelta(seconds=9) if status.is_terminal else None,
                    derived_key="k", counts=RunCounts(total=3, succeeded=2, failed=1))
    return run.model_copy(update=update)


class TestPayloads:
    def test_event_is_flat_cloudevents_shaped_and_never_null(self):
        event = build_event(sample_run(RunStatus.RUNNING), RunStatus.RUNNING, api_base=API)
        for name in ("specversion", "id", "type", "source", "time", "subject"):
            assert isinstance(event[name], str), name
            assert event[name], name
        assert event["specversion"] == "1.0"
        assert event["id"] == "run_01JABCDEF:running"
        assert event["type"] == "run.running"
        assert event["schemaVersion"] == 1
        assert event["finishedAt"] == ""
        assert event["errorCode"] == ""
        assert not any(v is None or isinstance(v, (dict, list)) for v in event.values())
        assert event["statusUrl"] == f"{API}/tenants/{TENANT}/runs/run_01JABCDEF"
        assert (event["itemsTotal"], event["itemsSucceeded"], event["itemsFailed"]) == (3, 2, 1)

    def test_terminal_event_carries_outcome_and_error_code_only(self):
        run = sample_run(RunStatus.FAILED, failure=ErrorInfo(code="graph-forbidden", message="ours"))
        event = build_event(run, RunStatus.FAILED, api_base=API)
        assert event["type"] == "run.completed"
        assert event["status"] == "failed"
        assert event["terminal"] is True
        assert event["errorCode"] == "graph-forbidden"
        assert event["finishedAt"].endswith("Z")

    @pytest.mark.parametrize("status", list(RunStatus))
    def test_teams_message_is_a_valid_adaptive_card(self, status):
        run = sample_run(status, failure=ErrorInfo(code="x", message="m") if status.is_terminal else None)
        message = build_teams_message(run, status, api_base=API)
        assert adaptive_card_errors(message) == []
        card = message["attachments"][0]["content"]
        assert card["version"] == "1.4"
        assert card["actions"][0]["url"].startswith(API)

    def test_the_card_checker_catches_what_teams_refuses(self):
        message = build_teams_message(sample_run(), RunStatus.SUCCEEDED, api_base=API)
        card = message["attachments"][0]["content"]
        card["body"][0]["weight"] = "Heavy"
        card["body"][2]["facts"][0].pop("value")
        del card["version"]
        errors = adaptive_card_errors(message)
        assert "card lacks version" in errors
        assert "fact lacks value" in errors
        assert any("weight 'Heavy'" in e for e in errors)

    def test_mask_keeps_scheme_host_and_first_segment_only(self):
        url = ("https://prod-01.westeurope.logic.azure.com:443/workflows/abc123/triggers/manual/paths/invoke"
               "?api-version=2016-06-01&sp=%2Ftriggers&sig=SECRETSIG")
        masked = mask_url(url)
        assert masked == "https://prod-01.westeurope.logic.azure.com:443/workflows/…"
        assert "SECRETSIG" not in masked
        assert "abc123" not in masked


class TestSignature:
    def test_a_receiver_verifies_the_signature_and_rejects_tampering_and_replays(self):
        body = b'{"id":"run_1:queued"}'
        now = int(time.time())
        header = signature_header("whsec_abc", now, body)
        assert header.startswith(f"t={now},v1=")
        assert verify_signature("whsec_abc", header, body, now=now)
        assert not verify_signature("whsec_abc", header, body + b" ", now=now)
        assert not verify_signature("whsec_other", header, body, now=now)
        assert not verify_signature("whsec_abc", header, body, now=now + 301)


class TestTargets:
    def test_a_public_https_target_is_accepted(self):
        target = check_target("https://flow.example.com/hook?sig=x", allow_loopback=False, resolve=_public)
        assert target.addresses == (PUBLIC,)
        assert target.port == 443

    @pytest.mark.parametrize(("url", "addresses", "code"), [
        ("http://flow.example.com/hook", [PUBLIC], "webhook-url-not-https"),
        ("ftp://flow.example.com/hook", [PUBLIC], "invalid-webhook-url"),
        ("https://user:pw@flow.example.com/", [PUBLIC], "invalid-webhook-url"),
        ("not a url", [PUBLIC], "invalid-webhook-url"),
        ("https://internal/", ["10.1.2.3"], "webhook-url-not-allowed"),
        ("https://internal/", ["192.168.0.10"], "webhook-url-not-allowed"),
        ("https://internal/", ["172.16.5.5"], "webhook-url-not-allowed"),
        ("https://metadata/", ["169.254.169.254"], "webhook-url-not-allowed"),
        ("https://cgnat/", ["100.64.0.1"], "webhook-url-not-allowed"),
        ("https://localhost/", ["127.0.0.1"], "webhook-url-not-allowed"),
        ("https://v6/", ["::1"], "webhook-url-not-allowed"),
        ("https://v6/", ["fd00::1"], "webhook-url-not-allowed"),
        ("https://v6/", ["fe80::1"], "webhook-url-not-allowed"),
        ("https://mapped/", ["::ffff:127.0.0.1"], "webhook-url-not-allowed"),
        ("https://mixed/", [PUBLIC, "10.0.0.1"], "webhook-url-not-allowed"),
        ("https://nowhere/", [], "webhook-host-unresolved"),
    ])
    def test_non_public_or_malformed_targets_are_refused(self, url, addresses, code):
        with pytest.raises(TargetRefused) as refused:
            check_target(url, allow_loopback=False, resolve=lambda h, p: addresses)
        assert refused.value.code == code
        assert url not in str(refused.value)

    def test_loopback_setting_opens_loopback_only(self):
        check_target("http://127.0.0.1:8080/hook", allow_loopback=True, resolve=lambda h, p: ["127.0.0.1"])
        with pytest.raises(TargetRefused):
            check_target("http://10.0.0.1/hook", allow_loopback=True, resolve=lambda h, p: ["10.0.0.1"])
        with pytest.raises(TargetRefused) as refused:
            check_target("http://flow.example.com/", allow_loopback=True, resolve=_public)
        assert refused.value.code == "webhook-url-not-https"

    def test_a_host_that_resolves_elsewhere_at_delivery_is_not_contacted(self):
        receiver = Receiver()
        answers = iter([["127.0.0.1"], ["10.0.0.7"]])
        sender = HttpWebhookSender(allow_loopback=True, resolve=lambda h, p: next(answers))
        try:
            url = receiver.url("/hook")
            check_target(url, allow_loopback=True, resolve=lambda h, p: ["127.0.0.1"])  # at PUT: fine
            first = sender.send(url, headers={}, body=b"{}")
            assert first.ok
            rebound = sender.send(url, headers={}, body=b"{}")  # DNS now answers a private address
            assert rebound == DeliveryResponse(None, error="webhook-url-not-allowed")
            assert len(receiver.received) == 1
        finally:
            sender.close()
            receiver.close()


class TestSecretBox:
    def test_round_trip_rotation_and_tamper(self):
        old_key, new_key = SecretBox.generate_key(), SecretBox.generate_key()
        old = SecretBox(old_key)
        token = old.encrypt("https://h/p?sig=TOPSECRET")
        assert "TOPSECRET" not in token
        assert old.encrypt("same") != old.encrypt("same")  # a fresh IV each time
        rotated = SecretBox(f"{new_key},{old_key}")
        assert rotated.decrypt(token) == "https://h/p?sig=TOPSECRET"
        with pytest.raises(ValueError, match="decrypt"):
            SecretBox(new_key).decrypt(token)
        with pytest.raises(ValueError, match="not a valid key"):
            SecretBox("not-a-key")


@dataclass
class ScriptedSender:
    """Answers with the scripted responses in turn (then 200), recording what was sent."""

    answers: list[DeliveryResponse] = field(default_factory=list)
    sent: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    def send(self, url: str, *, headers: dict[str, str], body: bytes) -> DeliveryResponse:
        self.sent.append((url, headers, body))
        return self.answers.pop(0) if self.answers else DeliveryResponse(200)

    def event_ids(self) -> list[str]:
        return [h["X-Event-Id"] for _, h, _ in self.sent]


@dataclass
class Webhooks(RunsHarness):
    """A RunService whose sinks are the notifications and a webhook service over in-memory storage."""

    sender: ScriptedSender = field(default_factory=ScriptedSender)
    repo: InMemoryWebhookRepository = field(init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.repo = InMemoryWebhookRepository(clock=self.clock)
        self.box = SecretBox(SecretBox.generate_key())
        self.webhooks = WebhookService(
            repository=self.repo, read_run=self.read_run, sender=self.sender, clock=self.clock,
            tenant_ids=lambda: [TENANT], box=self.box, api_base=API, allow_loopback=False,
            max_attempts=3, background=InlineExecutor())
        self.service = RunService(runs=self.runs, items=self.items, notifications=self.notifications,
                                  clock=self.clock, sinks=[self.webhooks])
        self.outbox = OutboxDispatcher(runs=self.runs, service=self.service, clock=self.clock,
                                       tenant_ids=lambda: [TENANT])

    def read_run(self, tenant_id: str, run_id: str) -> RunRecord | None:
        stored = self.runs.get(tenant_id=tenant_id, run_id=run_id)
        return stored.value if stored else None

    def subscribe(self, name: str = "flow", **request: Any) -> str:
        body = {"url": "https://flow.example.com/workflows/WF123/invoke?sig=S3CRET",
                "events": ["run.queued", "run.running", "run.completed"], **request}
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("shared.services.webhooks.check_target",
                          lambda url, allow_loopback: check_target(url, allow_loopback=allow_loopback,
                                                                   resolve=_public))
            _, secret, _ = self.webhooks.put(principal=ADA, tenant_id=TENANT, name=name,
                                             request=SubscriptionRequest.model_validate(body))
        return secret

    async def start(self) -> RunRecord:
        result = await self.service.start(principal=ADA, tenant_id=TENANT, kind=RunKind.POLICY_CAPTURE,
                                          target=RunTarget(policy_type="settingsCatalog", policy_id="p"),
                                          scope={}, idempotency_key=None)
        self.outbox.submit(result, self.launcher)
        await self.outbox.idle()
        return result.run


@pytest.fixture
def w() -> Webhooks:
    return Webhooks()


class TestSubscriptions:
    def test_secrets_are_stored_encrypted_and_never_shown_again(self, w):
        secret = w.subscribe()
        assert secret.startswith("whsec_")
        stored = w.repo.get_subscription(tenant_id=TENANT, name="flow")
        assert stored is not None
        assert "S3CRET" not in stored.url_cipher
        assert secret not in stored.secret_cipher
        assert w.box.decrypt(stored.url_cipher).endswith("sig=S3CRET")
        shown = w.webhooks.get(tenant_id=TENANT, name="flow").model_dump_json()
        assert "S3CRET" not in shown
        assert secret not in shown
        assert "WF123" not in shown
        assert w.webhooks.get(tenant_id=TENANT, name="flow").url_masked == "https://flow.example.com/workflows/…"

    @pytest.mark.parametrize(("body", "code"), [
        ({"url": "http://flow.example.com/"}, "webhook-url-not-https"),
        ({"format": "slack"}, "invalid-webhook-format"),
        ({"events": []}, "invalid-webhook-events"),
        ({"events": ["run.completed", "run.completed"]}, "invalid-webhook-events"),
        ({"events": ["run.test"]}, "invalid-webhook-events"),
        ({"filters": {"kinds": ["nope"]}}, "invalid-webhook-filters"),
    ])
    def test_bad_requests_have_stable_codes(self, w, body, code):
        with pytest.raises(InvalidRequest) as refused:
            w.subscribe(**body)
        assert refused.value.instance_code == code

    def test_an_invalid_name_is_refused(self, w):
        with pytest.raises(InvalidRequest) as refused:
            w.subscribe(name="has space")
        assert refused.value.instance_code == "invalid-subscription-name"


class TestDelivery:
    async def test_every_transition_is_delivered_once_in_order_signed(self, w):
        secret = w.subscribe()
        run = await w.start()
        w.service.mark_running(tenant_id=TENANT, run_id=run.id)
        w.service.complete(tenant_id=TENANT, run_id=run.id)
        assert w.sender.event_ids() == [f"{run.id}:queued", f"{run.id}:running", f"{run.id}:succeeded"]
        for url, headers, body in w.sender.sent:
            assert url.endswith("sig=S3CRET")
            assert verify_signature(secret, headers["X-Signature"], body, now=int(w.clock.now.timestamp()))
        assert json.loads(w.sender.sent[-1][2])["type"] == "run.completed"
        # Every event row was delivered and removed: nothing is left for the sweeper.
        assert w.runs.list_run_outbox(tenant_id=TENANT, run_id=run.id) == []
        states = [d.state for d in w.repo.list_deliveries(tenant_id=TENANT, subscription="flow").items]
        assert states == [DeliveryState.DELIVERED] * 3

    async def test_delivered_events_are_pruned_after_the_retention_and_nothing_owed_is(self, w):
        w.subscribe()
        old = await w.start()
        w.service.complete(tenant_id=TENANT, run_id=old.id)
        w.sender.answers.append(DeliveryResponse(500))
        stuck = await w.start()  # its "queued" stays pending, owed to the receiver
        w.clock.advance(days=29)
        assert w.webhooks.prune_delivered() == 0
        w.clock.advance(days=2)
        assert w.webhooks.prune_delivered() == 2
        left = w.repo.list_deliveries(tenant_id=TENANT, subscription="flow").items
        assert [(d.event_id, d.state) for d in left] == [(f"{stuck.id}:queued", DeliveryState.PENDING)]
        assert w.webhooks.prune_delivered() == 0

    async def test_filters_pick_events_kinds_and_statuses(self, w):
        w.subscribe("failures", events=["run.completed"], filters={"statuses": ["failed"]})
        w.subscribe("restores", events=["run.completed"], filters={"kinds": ["restore.execute"]})
        ok = await w.start()
        w.service.complete(tenant_id=TENANT, run_id=ok.id)
        assert w.sender.sent == []
        bad = await w.start()
        w.service.complete(tenant_id=TENANT, run_id=bad.id, failure=ErrorInfo(code="x", message="m"))
        assert w.sender.event_ids() == [f"{bad.id}:failed"]

    async def test_a_transition_whose_delivery_failed_is_delivered_by_the_sweeper(self, w):
        w.subscribe()
        run = await w.start()

        def storage_down(*args: Any, **kwargs: Any) -> None:
            raise ConnectionError("storage down")

        # The process fails right after the status write: the event row is the only record of the event.
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(w.repo, "list_subscriptions", storage_down)
            w.service.complete(tenant_id=TENANT, run_id=run.id)
        assert w.service.get(tenant_id=TENANT, run_id=run.id).status == RunStatus.SUCCEEDED
        rows = w.runs.list_run_outbox(tenant_id=TENANT, run_id=run.id)
        assert [r.value.events for r in rows] == [(RunStatus.SUCCEEDED,)]
        assert w.sender.event_ids() == [f"{run.id}:queued"]
        await w.outbox.sweep(w.launcher)
        assert w.sender.event_ids() == [f"{run.id}:queued"]  # still within the writer's lease
        w.clock.advance(seconds=11)
        await w.outbox.sweep(w.launcher)
        await w.outbox.idle()
        assert w.sender.event_ids() == [f"{run.id}:queued", f"{run.id}:succeeded"]
        assert w.runs.list_run_outbox(tenant_id=TENANT, run_id=run.id) == []

    async def test_a_later_event_waits_for_the_runs_earlier_one(self, w):
        w.subscribe()
        # The orchestration marks the run running before the start's own delivery published "queued".
        result = await w.service.start(principal=ADA, tenant_id=TENANT, kind=RunKind.POLICY_CAPTURE,
                                       target=RunTarget(policy_type="settingsCatalog", policy_id="p"),
                                       scope={}, idempotency_key=None)
        w.service.mark_running(tenant_id=TENANT, run_id=result.run.id)
        w.outbox.submit(result, w.launcher)
        await w.outbox.idle()
        assert w.sender.event_ids() == [f"{result.run.id}:queued", f"{result.run.id}:running"]
        assert [n.status for n in w.notifications.list(principal=ADA).items] == [RunStatus.RUNNING,
                                                                                   RunStatus.QUEUED]

    async def test_retries_back_off_honour_retry_after_then_park_and_replay(self, w):
        w.subscribe(events=["run.completed"])
        w.sender.answers = [DeliveryResponse(503, error="http-503"),
                            DeliveryResponse(429, retry_after=120, error="http-429"),
                            DeliveryResponse(None, error="webhook-timeout")]
        run = await w.start()
        w.service.complete(tenant_id=TENANT, run_id=run.id)
        event = f"{run.id}:succeeded"
        first = w.repo.get_delivery(tenant_id=TENANT, subscription="flow", event_id=event).value
        assert (first.state, first.attempts, first.last_status_code) == (DeliveryState.PENDING, 1, 503)
        assert first.due_at == w.clock.now + timedelta(seconds=5)
        w.clock.advance(seconds=5)
        w.webhooks.send_due()
        second = w.repo.get_delivery(tenant_id=TENANT, subscription="flow", event_id=event).value
        assert second.attempts == 2
        assert second.due_at == w.clock.now + timedelta(seconds=120)
        w.clock.advance(seconds=119)
        assert w.webhooks.send_due() == 0
        w.clock.advance(seconds=1)
        w.webhooks.send_due()
        parked = w.repo.list_deliveries(tenant_id=TENANT, subscription="flow", state=DeliveryState.PARKED)
        assert [(d.event_id, d.attempts, d.last_error) for d in parked.items] == [
            (event, 3, "webhook-timeout")]
        assert len(w.sender.sent) == 3
        w.clock.advance(hours=1)
        assert w.webhooks.send_due() == 0  # parked: only a replay sends it again
        w.webhooks.replay(tenant_id=TENANT, name="flow", event_id_=event)
        assert w.sender.event_ids()[-1] == event
        final = w.repo.get_delivery(tenant_id=TENANT, subscription="flow", event_id=event).value
        assert (final.state, final.attempts) == (DeliveryState.DELIVERED, 1)

    async def test_a_permanent_refusal_parks_at_once(self, w):
        w.subscribe(events=["run.completed"])
        w.sender.answers = [DeliveryResponse(404, error="http-404")]
        run = await w.start()
        w.service.complete(tenant_id=TENANT, run_id=run.id)
        parked = w.repo.list_deliveries(tenant_id=TENANT, subscription="flow", state=DeliveryState.PARKED)
        assert [(d.attempts, d.last_status_code) for d in parked.items] == [(1, 404)]

    async def test_events_of_a_run_stay_in_order_while_an_earlier_one_is_retried(self, w):
        w.subscribe()
        w.sender.answers = [DeliveryResponse(500, error="http-500")]
        run = await w.start()  # queued fails once
        w.service.mark_running(tenant_id=TENANT, run_id=run.id)
        w.service.complete(tenant_id=TENANT, run_id=run.id)
        assert w.sender.event_ids() == [f"{run.id}:queued"]
        w.clock.advance(seconds=5)
        w.webhooks.send_due()
        assert w.sender.event_ids() == [f"{run.id}:queued", f"{run.id}:queued", f"{run.id}:running",
                                        f"{run.id}:succeeded"]

    async def test_a_repeated_fan_out_sends_nothing_again(self, w):
        w.subscribe(events=["run.completed"])
        run = await w.start()
        done = w.service.complete(tenant_id=TENANT, run_id=run.id)
        w.webhooks.publish(done, RunStatus.SUCCEEDED)
        w.service.publish_event(done, RunStatus.SUCCEEDED)
        assert w.sender.event_ids() == [f"{run.id}:succeeded"]

    async def test_a_failing_webhook_never_fails_the_run(self, w):
        w.subscribe()
        w.sender.answers = [DeliveryResponse(None, error="webhook-unreachable")] * 10
        run = await w.start()
        w.service.mark_running(tenant_id=TENANT, run_id=run.id)
        done = w.service.complete(tenant_id=TENANT, run_id=run.id)
        assert done.status == RunStatus.SUCCEEDED
        assert [n.status for n in w.notifications.list(principal=ADA).items] == [
            RunStatus.SUCCEEDED, RunStatus.RUNNING, RunStatus.QUEUED]

    def test_test_fire_sends_a_signed_test_event(self, w):
        secret = w.subscribe(format="teams")
        result = w.webhooks.test(principal=ADA, tenant_id=TENANT, name="flow")
        assert result.delivered
        assert result.event_id.startswith("test:")
        _, headers, body = w.sender.sent[0]
        assert headers["X-Event-Id"] == result.event_id
        assert verify_signature(secret, headers["X-Signature"], body, now=int(w.clock.now.timestamp()))
        assert adaptive_card_errors(json.loads(body)) == []

    async def test_deleting_a_subscription_drops_what_it_was_owed(self, w):
        w.subscribe(events=["run.completed"])
        w.sender.answers = [DeliveryResponse(503, error="http-503")]
        run = await w.start()
        w.service.complete(tenant_id=TENANT, run_id=run.id)
        w.webhooks.delete(tenant_id=TENANT, name="flow")
        w.clock.advance(minutes=5)
        assert w.webhooks.send_due() == 0
        assert len(w.sender.sent) == 1
