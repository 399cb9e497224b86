"""A tenant's backup schedule over HTTP on the local stack, and its slots started once against the stack's
storage however often they fire."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from shared.services.backupsets import BackupSetService
from shared.services.notifications import NotificationService
from shared.services.runs import RunService
from shared.services.schedules import ScheduleService
from shared.storage.factory import StorageFactory
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

BODY = {"cron": "0 2 * * *", "timeZone": "UTC", "selection": {"types": ["settingsCatalog"]},
        "retention": {"keepLast": 7, "keepDays": 30}}


def _path(tenant_id: str) -> str:
    return f"/tenants/{tenant_id}/schedule"


def _problem(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    if code is not None:
        assert response.json()["code"] == code


def test_an_admin_sets_reads_and_removes_a_schedule(stack: Stack) -> None:
    tenant_id = stack.new_customer_tenant()
    admin, _ = stack.user(tenant_id, "admin")
    reader, _ = stack.user(tenant_id, "reader")

    _problem(reader.get(_path(tenant_id)), 404, "schedule-not-found")
    saved = admin.put(_path(tenant_id), json={**BODY, "cron": "0  2 * *   *"})
    assert saved.status_code == 200, saved.text
    body = reader.get(_path(tenant_id)).json()
    assert body == saved.json()
    assert (body["cron"], body["timeZone"], body["tenantId"]) == ("0 2 * * *", "UTC", tenant_id)
    assert body["selection"]["types"] == ["settingsCatalog"]
    assert body["retention"] == {"keepLast": 7, "keepDays": 30}

    deleted = admin.request("DELETE", _path(tenant_id))
    assert deleted.status_code == 204
    _problem(reader.get(_path(tenant_id)), 404, "schedule-not-found")
    assert admin.request("DELETE", _path(tenant_id)).status_code == 204


@pytest.mark.parametrize(("change", "code"), [
    ({"cron": "0 2 * *"}, "invalid-cron"),
    ({"cron": "0 25 * * *"}, "invalid-cron"),
    ({"cron": "0 0 2 * * *"}, "invalid-cron"),
    ({"timeZone": "Europe/Berlin"}, None),
    ({"selection": {"types": ["nope"]}}, "unknown-policy-type"),
    ({"selection": {"types": []}}, "empty-selection"),
    ({"retention": {"keepLast": 0}}, None),
    ({"retention": {"keepDays": 3651}}, None),
])
def test_a_bad_schedule_is_refused(stack: Stack, change: dict[str, object], code: str | None) -> None:
    tenant_id = stack.new_customer_tenant()
    admin, _ = stack.user(tenant_id, "admin")
    _problem(admin.put(_path(tenant_id), json={**BODY, **change}), 400, code)
    _problem(admin.get(_path(tenant_id)), 404, "schedule-not-found")


def test_only_admins_change_it_and_strangers_see_nothing(stack: Stack) -> None:
    tenant_id = stack.new_customer_tenant()
    admin, _ = stack.user(tenant_id, "admin")
    reader, _ = stack.user(tenant_id, "reader")
    operator, _ = stack.user(tenant_id, "operator")
    stranger, _ = stack.user(None, None)
    assert admin.put(_path(tenant_id), json=BODY).status_code == 200

    _problem(reader.put(_path(tenant_id), json=BODY), 403)
    _problem(operator.put(_path(tenant_id), json={"not": "read before the role is checked"}), 403)
    _problem(operator.request("DELETE", _path(tenant_id)), 403)
    for method in ("GET", "PUT", "DELETE"):
        _problem(stranger.request(method, _path(tenant_id), json=BODY), 404)
    assert reader.get(_path(tenant_id)).status_code == 200  # still there


def test_a_slot_fired_twice_starts_one_run(stack: Stack) -> None:
    tenant_id = stack.new_customer_tenant()
    admin, _ = stack.user(tenant_id, "admin")
    # A daily slot a few minutes ahead, so the stack's own timer does not reach it during the test; the
    # services below see the clock just past it.
    slot = (datetime.now(UTC) + timedelta(minutes=5)).replace(second=0, microsecond=0)
    saved = admin.put(_path(tenant_id), json={**BODY, "cron": f"{slot.minute} {slot.hour} * * *"})
    assert saved.status_code == 200, saved.text

    def clock() -> datetime:
        return slot + timedelta(seconds=20)

    async def no_listing(**_: object) -> list[object]:
        return []

    storage = StorageFactory.from_connection_string(stack.info.storage_connection_string,
                                                    table_prefix=stack.info.table_prefix,
                                                    snapshot_container=stack.info.snapshot_container)
    try:
        runs = RunService(runs=storage.runs(), items=storage.items(), clock=clock,
                          notifications=NotificationService(repository=storage.notifications(), clock=clock))
        backup_sets = BackupSetService(sets=storage.backup_sets(), runs=runs, run_rows=storage.runs(),
                                       blobs=storage.blobs(), list_policies=no_listing, clock=clock)

        def instance() -> ScheduleService:  # each timer instance has its own services over one storage
            return ScheduleService(sets=storage.backup_sets(), backup_sets=backup_sets,
                                   tenant_ids=lambda: [tenant_id], clock=clock)

        async def fire_twice() -> list[int]:
            first, second = await asyncio.gather(instance().start_due(), instance().start_due())
            third = await instance().start_due()
            return [len(first), len(second), len(third)]

        started = asyncio.run(fire_twice())
    finally:
        storage.close()

    assert started[2] == 0  # the slot is recorded as started
    listed = admin.get(f"/tenants/{tenant_id}/runs", params={"kind": "backupset.capture"}).json()["items"]
    assert len(listed) == 1, listed
    sets = admin.get(f"/tenants/{tenant_id}/backup-sets").json()["items"]
    assert [s["name"] for s in sets] == [f"Scheduled backup {slot:%Y-%m-%d %H:%M} UTC"]
    assert admin.get(_path(tenant_id)).json()["lastSlot"].startswith(slot.strftime("%Y-%m-%dT%H:%M"))
