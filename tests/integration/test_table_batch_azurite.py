"""The claim's hand-written entity-group transaction behaves as the SDK's ``submit_transaction`` did."""

from __future__ import annotations

import uuid
from typing import Any
from unittest import mock

import pytest
from azure.core import MatchConditions
from azure.data.tables import TableClient, TableTransactionError, UpdateMode

from localdev.azurite import connection_string
from localdev.procs import free_port
from shared.ports import ClaimConflict
from shared.storage import StorageFactory
from shared.storage.errors import StorageUnavailable, guarded
from shared.storage.table_batch import InsertConflict, insert_batch, submit_transaction
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


def _rows(table: TableClient, partition: str) -> dict[str, dict[str, object]]:
    return {row["RowKey"]: {k: v for k, v in row.items() if k not in ("PartitionKey", "RowKey")}
            for row in table.query_entities("PartitionKey eq @pk", parameters={"pk": partition})}


def _without_sdk_fallback(table: TableClient, ops: list[Any]) -> list[dict[str, str]]:
    with mock.patch.object(TableClient, "submit_transaction", side_effect=AssertionError("fell back")):
        return submit_transaction(table, ops)


def test_every_kind_of_operation_writes_what_the_sdk_writes(storage: StorageFactory) -> None:
    """Create, upsert, update (conditional or not) and delete, side by side with the SDK."""
    table = storage.table("runs")
    written: dict[str, dict[str, dict[str, object]]] = {}
    for name, submit in (("ours", lambda ops: _without_sdk_fallback(table, ops)),
                         ("sdk", lambda ops: [dict(r) for r in table.submit_transaction(ops)])):
        partition = f"{name}-{uuid.uuid4()}"
        seeded = submit([("create", {"PartitionKey": partition, "RowKey": key, "Value": 1, "Keep": "k"})
                         for key in ("merge", "replace", "conditional", "gone", "upsert-merge")])
        etags = [result["etag"] for result in seeded]
        results = submit([
            ("create", {"PartitionKey": partition, "RowKey": "new", "Text": "it's \"quoted\" é",
                        "Count": 123456, "Ratio": 0.5, "Flag": True}),
            ("update", {"PartitionKey": partition, "RowKey": "merge", "Value": 2},
             {"mode": UpdateMode.MERGE}),
            ("update", {"PartitionKey": partition, "RowKey": "replace", "Value": 3},
             {"mode": UpdateMode.REPLACE}),
            ("update", {"PartitionKey": partition, "RowKey": "conditional", "Value": 4},
             {"mode": UpdateMode.MERGE, "etag": etags[2], "match_condition": MatchConditions.IfNotModified}),
            ("delete", {"PartitionKey": partition, "RowKey": "gone"},
             {"etag": etags[3], "match_condition": MatchConditions.IfNotModified}),
            ("upsert", {"PartitionKey": partition, "RowKey": "upsert-merge", "Extra": "x"},
             {"mode": UpdateMode.MERGE}),
            ("upsert", {"PartitionKey": partition, "RowKey": "upsert-new", "Value": 5},
             {"mode": UpdateMode.REPLACE}),
            ("create", {"PartitionKey": partition, "RowKey": "key with 'quote', spaces and é"}),
        ])
        # ETags for every write, none for the delete: what the SDK's results hold.
        assert [bool(result.get("etag")) for result in results] == [True] * 4 + [False] + [True] * 3, name
        rows = _rows(table, partition)
        assert rows["conditional"]["Value"] == 4
        written[name] = rows
    assert written["ours"] == written["sdk"]
    assert "gone" not in written["ours"]
    assert written["ours"]["replace"] == {"Value": 3}
    assert written["ours"]["upsert-merge"] == {"Value": 1, "Keep": "k", "Extra": "x"}


def test_a_refused_operation_raises_the_sdk_error_and_writes_nothing(storage: StorageFactory) -> None:
    table = storage.table("runs")
    partition = str(uuid.uuid4())
    [first] = submit_transaction(table, [("create", {"PartitionKey": partition, "RowKey": "a", "Value": 1})])
    submit_transaction(table, [("update", {"PartitionKey": partition, "RowKey": "a", "Value": 2},
                                {"mode": UpdateMode.MERGE})])
    with pytest.raises(TableTransactionError) as stale:
        submit_transaction(table, [
            ("create", {"PartitionKey": partition, "RowKey": "b"}),
            ("update", {"PartitionKey": partition, "RowKey": "a", "Value": 3},
             {"mode": UpdateMode.MERGE, "etag": first["etag"],
              "match_condition": MatchConditions.IfNotModified}),
        ])
    assert (stale.value.status_code, stale.value.index) == (412, 1)
    with pytest.raises(TableTransactionError) as missing:
        submit_transaction(table, [("update", {"PartitionKey": partition, "RowKey": "never", "Value": 1},
                                    {"mode": UpdateMode.MERGE})])
    assert missing.value.status_code == 404
    assert _rows(table, partition) == {"a": {"Value": 2}}


def test_a_transaction_on_unreachable_storage_is_storage_unavailable() -> None:
    port = free_port()
    client = TableClient.from_connection_string(
        connection_string(port, port, port), table_name="runs", retry_total=0, connection_timeout=2)
    with pytest.raises(StorageUnavailable):
        submit_transaction(client, [("create", {"PartitionKey": "p", "RowKey": "r"})])
