"""What a table operation costs on Azurite as its partition grows, and what a backup set's reads cost there.

Starts its own Azurite (in memory) and prints, with wall time and Azurite's CPU (``/proc``) per call:

- an entity-group transaction of 100 upserts into an empty partition, into a partition of 10,000 rows,
  into another partition of the same table, and 100 single upserts beside the 10,000 rows: Azurite's cost
  per operation grows with the rows already in the partition (Table Storage keys its partitions), which is
  why a set's changes are kept in pages of 100 lines (``shared/storage/table_backupsets.py``);
- for a set of 5,034 planned items with 51 finished batches: counting the run from its batches' summary
  columns (``batch_counts``) against counting the run's 5,034 item rows (``ItemRepository.counts``), which
  is what a monitor poll of a running backup costs; listing the set's items; and writing the set's 5,034
  change lines as pages (``replace_changes``) against one row per line, as they were written before.

Run: ``.venv/bin/python -m benchmarks.azurite_partition_cost [--items 5034]``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from azure.data.tables import TableClient, TableServiceClient, UpdateMode

from benchmarks.backup_set_capture import cpu_seconds
from localdev.azurite import start_azurite
from shared.domain import BackupSetBatch, BackupSetItem, ItemOutcome, PolicyRef, new_run_id
from shared.domain.backupsets import BackupSetChange, backup_set_id_for_run
from shared.domain.batches import chunked
from shared.storage.table_backupsets import TableBackupSetRepository
from shared.storage.table_batch import submit_transaction
from shared.storage.table_common import pack_body
from shared.storage.table_records import TableItemRepository

TENANT = "22222222-2222-2222-2222-222222222222"


def measure(name: str, azurite_pid: int, call: Callable[[], Any], repeat: int = 1) -> None:
    cpu, wall = cpu_seconds(azurite_pid), time.perf_counter()
    for _ in range(repeat):
        call()
    print(f"  {name:66s} {(time.perf_counter() - wall) / repeat * 1000:8.1f} ms, Azurite CPU "
          f"{(cpu_seconds(azurite_pid) - cpu) / repeat * 1000:8.1f} ms")


def upserts(table: TableClient, partition: str, start: int, prefix: str = "r") -> None:
    submit_transaction(table, [("upsert", {"PartitionKey": partition, "RowKey": f"{prefix}{n:06d}",
                                           "Body": "x" * 400}, {"mode": UpdateMode.REPLACE})
                               for n in range(start, start + 100)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5034, help="items of the backup set (default 5034)")
    args = parser.parse_args(argv)
    azurite = start_azurite()
    try:
        tables = TableServiceClient.from_connection_string(azurite.connection_string)
        pid = azurite.pid

        print("one entity-group transaction of 100 upserts (per transaction):")
        table = tables.create_table("partitioncost")
        measure("into an empty partition", pid, lambda: upserts(table, "A", 0))
        for start in range(100, 10_000, 100):
            upserts(table, "A", start)
        measure("new rows into a partition of 10,000 rows", pid, lambda: upserts(table, "A", 0, "z"))
        measure("new rows into another partition of the same table", pid, lambda: upserts(table, "B", 0))
        measure("100 single upserts beside a partition of 10,000 rows (all 100)", pid, lambda: [
            table.upsert_entity({"PartitionKey": "A", "RowKey": f"s{n:06d}", "Body": "x" * 400})
            for n in range(100)])

        print(f"\na backup set of {args.items} items in 100-item batches (per call):")
        sets = TableBackupSetRepository(tables.create_table("backupsets"))
        run_items = TableItemRepository(tables.create_table("runitems"))
        run_id = new_run_id(datetime(2026, 1, 1, tzinfo=UTC))
        set_id = backup_set_id_for_run(run_id)
        ids = [f"p-{n:05d}" for n in range(args.items)]
        sets.create_items([BackupSetItem.pending(tenant_id=TENANT, backup_set_id=set_id,
                                                 policy_type="settingsCatalog", policy_id=policy_id,
                                                 display_name=f"Policy {policy_id}", batch=n // 100)
                           for n, policy_id in enumerate(ids)])
        sets.create_batches([
            BackupSetBatch(tenant_id=TENANT, backup_set_id=set_id, batch=number, finished=True,
                           members=tuple(PolicyRef(type="settingsCatalog", id=i) for i in chunk),
                           succeeded=len(chunk))
            for number, chunk in enumerate(chunked(ids, 100))])
        run_items.upsert_many(tenant_id=TENANT, run_id=run_id, outcomes=[
            ItemOutcome(item_id=f"settingsCatalog:{i}", action="captured", status="succeeded") for i in ids])
        measure("count the run from its finished batches (batch_counts)", pid,
                lambda: sets.batch_counts(tenant_id=TENANT, backup_set_id=set_id), repeat=5)
        measure("count the run from its item rows (ItemRepository.counts)", pid,
                lambda: run_items.counts(tenant_id=TENANT, run_id=run_id), repeat=5)

        def every_item() -> None:
            continuation = None
            while True:
                page = sets.list_items(tenant_id=TENANT, backup_set_id=set_id, top=1000,
                                       continuation=continuation)
                if not (continuation := page.continuation):
                    return

        measure("list the set's items (pages of 1,000)", pid, every_item, repeat=2)
        changes = [BackupSetChange(tenant_id=TENANT, backup_set_id=set_id, item_id=f"settingsCatalog:{i}",
                                   policy_type="settingsCatalog", source_id=i, display_name=f"Policy {i}",
                                   change="new") for i in ids]
        measure(f"write {args.items} change lines as pages of 100 (replace_changes)", pid,
                lambda: sets.replace_changes(tenant_id=TENANT, backup_set_id=set_id, changes=changes))
        one_per_line = tables.create_table("changelines")
        for chunk in chunked(changes, 100):  # the same partition as the set's items, as before
            submit_transaction(one_per_line, [("upsert", {
                "PartitionKey": TENANT, "RowKey": f"item|{c.item_id}", "Body": "x" * 300},
                {"mode": UpdateMode.REPLACE}) for c in chunk])

        def lines_as_rows() -> None:
            for chunk in chunked(changes, 100):
                submit_transaction(one_per_line, [("upsert", {
                    "PartitionKey": TENANT, "RowKey": f"change|{c.item_id}",
                    **pack_body(c.model_dump_json())}, {"mode": UpdateMode.REPLACE}) for c in chunk])

        measure(f"write {args.items} change lines one row each beside {args.items} item rows", pid,
                lines_as_rows)
    finally:
        azurite.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
