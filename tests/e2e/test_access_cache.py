"""The grant cache over HTTP on the local stack: a grant revoked elsewhere stops working within the stated
window (``GRANT_CACHE_SECONDS``), and a revoke or role change through our API takes effect at once."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import httpx
import pytest
from azure.data.tables import TableServiceClient

from localdev.stack import running_stack, sim_client
from shared.storage.factory import TABLES
from shared.storage.table_audit import tenant_partition
from tests.e2e.conftest import Api, Stack

pytestmark = pytest.mark.e2e

# Short enough to wait out, long enough that a request right after a revoke still lands inside it.
CACHE_SECONDS = 5
# Time for the last request of the poll to come back after the window has ended.
SLACK_SECONDS = 3


@pytest.fixture(scope="module")
def stack(azurite_connection_string: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """This module's own stack: like the shared one, with a short grant cache."""
    demo_secret = secrets.token_urlsafe(24)
    extra_env = {"GRANT_CACHE_SECONDS": str(CACHE_SECONDS)}
    with running_stack(storage=azurite_connection_string, state_dir=tmp_path_factory.mktemp("cache-stack"),
                       demo_secret=demo_secret, extra_env=extra_env) as info, sim_client(info) as sim:
        yield Stack(info=info, sim=sim, demo_secret=demo_secret)


def _delete_grant_row(stack: Stack, tenant_id: str, oid: str) -> None:
    """Revoke as another process would: the grant's rows go straight from storage (layout in
    shared/storage/table_access.py), without this app process hearing of it."""
    principal = f"{stack.info.operator_tenant_id}|{oid}"
    name = stack.info.table_prefix + TABLES["grants"]
    with TableServiceClient.from_connection_string(stack.info.storage_connection_string) as service:
        table = service.get_table_client(name)
        table.delete_entity(partition_key=f"principal|{principal}", row_key=tenant_id)
        table.delete_entity(partition_key=tenant_partition(tenant_id), row_key=f"grant|{principal}")
        assert not list(table.query_entities("PartitionKey eq @pk and RowKey eq @rk", parameters={
            "pk": tenant_partition(tenant_id), "rk": f"grant|{principal}"}))


def _runs(api: Api, tenant_id: str) -> httpx.Response:
    return api.get(f"/tenants/{tenant_id}/runs")


def test_a_grant_revoked_in_another_process_stops_working_within_the_window(stack: Stack) -> None:
    tenant = stack.new_customer_tenant()
    api, oid = stack.user(tenant, "reader")
    assert _runs(api, tenant).status_code == 200  # the grant is now in the app's cache

    _delete_grant_row(stack, tenant, oid)
    revoked = time.monotonic()
    # Inside the window the app still trusts what it read: no storage read on the hot path.
    assert _runs(api, tenant).status_code == 200

    while (answer := _runs(api, tenant)).status_code == 200:
        assert time.monotonic() - revoked < CACHE_SECONDS + SLACK_SECONDS, "the revoke was not seen in time"
        time.sleep(0.25)
    assert answer.status_code == 404, answer.text
    # And it stays ended.
    assert _runs(api, tenant).status_code == 404


def test_a_revoke_or_role_change_through_the_api_takes_effect_at_once(stack: Stack) -> None:
    tenant = stack.new_customer_tenant()
    admin = stack.admin()
    api, oid = stack.user(tenant, "admin")
    assert api.get(f"/tenants/{tenant}/grants").status_code == 200  # cached as an admin

    demoted = admin.put(f"/tenants/{tenant}/grants/{oid}", json={"role": "reader"})
    assert demoted.status_code in (200, 201), demoted.text
    assert api.get(f"/tenants/{tenant}/grants").status_code == 403
    assert _runs(api, tenant).status_code == 200  # cached as a reader

    revoked = admin.request("DELETE", f"/tenants/{tenant}/grants/{oid}")
    assert revoked.status_code == 204, revoked.text
    assert _runs(api, tenant).status_code == 404
