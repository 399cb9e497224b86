"""The claim's hand-written entity-group transaction behaves as the SDK's ``submit_transaction`` did."""

from __future__ import annotations

import uuid

import pytest
from azure.data.tables import TableClient, TableTransactionError

from localdev.azurite import connection_string
from localdev.procs import free_port
from shared.ports import ClaimConflict
from shared.storage import StorageFactory
from shared.storage.errors import StorageUnavailable, guarded
from shared.storage.table_batch import InsertConflict, insert_batch
from shared.storage.table_runs import TableRunRepository
from tests.unit.storage_contract import claim_for, make_run

pytestmark = pytest.mark.azurite


def test_a_claim_returns_the_etags_that_later_conditional_writes_need(storage: StorageFactory) -> None:
    runs = storage.runs()
    run = make_run()
    receipt = runs.claim(claim_for(run, idem="scope-1", outbox=True))
    stored = runs.get(tenant_id=run.tenant_id, run_id=run.id)
    outbox = runs.get_outbox(tenant_id=run.tenant_id, run_id=run.id)
    assert stored is not None
    assert outbox is not None
    assert (receipt.run_etag, receipt.outbox_etag) == (stored.etag, outbox.etag)
    assert stored.value == run
    # The receipt's ETags are what the launch settles with: a stale one would be refused.
    runs.settle_outbox(outbox.value, etag=str(receipt.outbox_etag))
    assert runs.get_outbox(tenant_id=run.tenant_id, run_id=run.id) is None


def test_a_conflict_names_the_operation_and_writes_nothing(storage: StorageFactory) -> None:
    table = storage.table("runs")
    partition = str(uuid.uuid4())
    insert_batch(table, [{"PartitionKey": partition, "RowKey": "taken"}])
    with pytest.raises(InsertConflict) as raised:
        insert_batch(table, [{"PartitionKey": partition, "RowKey": "new"},
                             {"PartitionKey": partition, "RowKey": "taken"}])
    assert raised.value.index == 1
    rows = list(table.query_entities("PartitionKey eq @pk", parameters={"pk": partition}))
    assert [r["RowKey"] for r in rows] == ["taken"]


def test_a_claim_that_loses_raises_claim_conflict(storage: StorageFactory) -> None:
    runs = storage.runs()
    first = make_run(key="same")
    runs.claim(claim_for(first))
    with pytest.raises(ClaimConflict):
        runs.claim(claim_for(make_run(key="same")))


def test_other_refusals_raise_the_sdk_error_with_its_status_and_index(storage: StorageFactory) -> None:
    table = storage.table("runs")
    partition = str(uuid.uuid4())
    with pytest.raises(TableTransactionError) as raised:
        insert_batch(table, [{"PartitionKey": partition, "RowKey": "a"},
                             {"PartitionKey": partition, "RowKey": "a"}])
    assert (raised.value.status_code, raised.value.index) == (400, 1)


def test_unreachable_storage_is_storage_unavailable() -> None:
    port = free_port()
    client = TableClient.from_connection_string(
        connection_string(port, port, port), table_name="runs", retry_total=0, connection_timeout=2)
    runs = TableRunRepository(guarded(client))
    with pytest.raises(StorageUnavailable):
        runs.claim(claim_for(make_run()))
