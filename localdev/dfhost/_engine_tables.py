"""The engine's store in Azure Table Storage (Azurite locally): one table per task hub.

Per instance one partition (PartitionKey = the encoded instance id):

* ``state``: name, execution id, status, input/output/custom status, parent, episode count.
* ``ep:{executionId}:{episode:08d}:{part:03d}``: the history events one episode appended, as
  JSON split into properties of at most 30,000 characters (a string property holds 32K UTF-16
  characters) and into several rows when an episode is larger than one entity may be.
* ``msg:...``: inbox messages with deterministic keys, ``VisibleAt`` for timers.
* ``work:{executionId}:{taskId}``: activity invocations not yet completed.

An episode commits as ONE entity-group transaction (new episode rows + the state row with its
ETag + deletes of the consumed messages); an activity result is one transaction (insert its
message + delete its work row), so a duplicate execution cannot record a second result.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import quote

import aiohttp
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.pipeline.transport import AioHttpTransport
from azure.data.tables import TableEntity, UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from localdev.dfhost.history import HistoryEvent
from localdev.dfhost.store import (
    ConcurrencyConflict,
    EpisodeCommit,
    InstanceState,
    Message,
    ParentRef,
    WorkItem,
)

__all__ = ["TableStore"]

CHUNK = 30_000
# Keeps one entity well under the 1 MiB entity limit (UTF-16 doubles the size of text).
PARTS_PER_ROW = 12
MAX_BATCH_OPS = 100
# How long an idle pooled connection may be reused. Azurite (like Node's HTTP server) closes a
# kept-alive connection after 5 idle seconds; aiohttp's default of 15 s let the client send a
# request on a connection the server was closing at that moment, which fails with "Server
# disconnected". POSTs (every transaction) are not retried by azure-core, so under load that
# cost activity results. Reusing only connections idle for less than this avoids the race.
POOL_KEEPALIVE_SECONDS = 2.0
# Transaction failures that mean "already done": the result row exists, or the work row is gone.
_ALREADY_RECORDED = (404, 409)


def encode_key(value: str) -> str:
    r"""Escape characters Azure Tables (and Azurite) refuse in keys: / \\ # ? % and controls."""
    return quote(value, safe=" !$&'()*+,-.:;=@[]^_`{|}~")


def _put_text(entity: dict[str, Any], prefix: str, text: str | None) -> None:
    if text is None:
        entity[f"{prefix}N"] = -1
        return
    chunks = [text[i:i + CHUNK] for i in range(0, len(text), CHUNK)] or [""]
    entity[f"{prefix}N"] = len(chunks)
    for index, chunk in enumerate(chunks):
        entity[f"{prefix}{index}"] = chunk


def _get_text(entity: TableEntity, prefix: str) -> str | None:
    count = int(entity.get(f"{prefix}N", -1))
    if count < 0:
        return None
    return "".join(str(entity.get(f"{prefix}{i}", "")) for i in range(count))


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class TableStore:
    """:class:`localdev.dfhost.store.Store` over Azure Table Storage."""

    def __init__(self, connection_string: str, hub: str) -> None:
        self._connection_string = connection_string
        self._table_name = f"{hub}DFHost"
        self._service: TableServiceClient | None = None
        self._table: TableClient | None = None

    @property
    def table(self) -> TableClient:
        if self._table is None:
            raise RuntimeError("TableStore.open() was not called")
        return self._table

    async def open(self) -> None:
        # Locally a failing call should surface at once rather than after minutes of retries.
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(keepalive_timeout=POOL_KEEPALIVE_SECONDS))
        self._service = TableServiceClient.from_connection_string(
            self._connection_string, retry_total=2, retry_backoff_factor=0.2,
            transport=AioHttpTransport(session=session, session_owner=True))
        self._table = await self._service.create_table_if_not_exists(self._table_name)

    async def close(self) -> None:
        if self._table is not None:
            await self._table.close()
        if self._service is not None:
            await self._service.close()
        self._table = self._service = None

    # ------------------------------------------------------------------ mapping
    @staticmethod
    def _state_entity(state: InstanceState) -> dict[str, Any]:
        entity: dict[str, Any] = {
            "PartitionKey": encode_key(state.instance_id), "RowKey": "state",
            "InstanceId": state.instance_id, "Name": state.name,
            "ExecutionId": state.execution_id, "Status": state.status,
            "Created": state.created, "Updated": state.updated,
            "Version": state.version or "", "Episodes": state.episodes,
        }
        _put_text(entity, "Input", state.input_json)
        _put_text(entity, "Output", state.output_json)
        _put_text(entity, "Custom", state.custom_status_json)
        if state.parent is not None:
            entity.update(ParentInstanceId=state.parent.instance_id,
                          ParentExecutionId=state.parent.execution_id,
                          ParentTaskId=state.parent.task_id)
        return entity

    @staticmethod
    def _state_from(entity: TableEntity) -> InstanceState:
        parent = None
        if entity.get("ParentInstanceId"):
            parent = ParentRef(str(entity["ParentInstanceId"]), str(entity["ParentExecutionId"]),
                               int(entity["ParentTaskId"]))
        created: datetime = entity["Created"]
        updated: datetime = entity["Updated"]
        return InstanceState(
            instance_id=str(entity["InstanceId"]), name=str(entity["Name"]),
            execution_id=str(entity["ExecutionId"]), status=str(entity["Status"]),
            input_json=_get_text(entity, "Input"), created=created, updated=updated,
            output_json=_get_text(entity, "Output"),
            custom_status_json=_get_text(entity, "Custom"),
            version=str(entity.get("Version") or "") or None, parent=parent,
            episodes=int(entity.get("Episodes", 0)), etag=entity.metadata.get("etag"))

    @staticmethod
    def _message_entity(instance_id: str, message: Message) -> dict[str, Any]:
        entity: dict[str, Any] = {"PartitionKey": encode_key(instance_id),
                                  "RowKey": encode_key(message.key),
                                  "Key": message.key, "ExecutionId": message.execution_id,
                                  # as text: Edm.Int32 cannot hold it
                                  "Sequence": str(message.sequence)}
        if message.visible_at is not None:
            entity["VisibleAt"] = message.visible_at
        _put_text(entity, "Event", json.dumps(message.event))
        return entity

    @staticmethod
    def _message_from(entity: TableEntity) -> Message:
        return Message(key=str(entity["Key"]), execution_id=str(entity["ExecutionId"]),
                       event=json.loads(_get_text(entity, "Event") or "{}"),
                       sequence=int(entity.get("Sequence", 0)),
                       visible_at=entity.get("VisibleAt"))

    @staticmethod
    def _work_entity(instance_id: str, item: WorkItem) -> dict[str, Any]:
        entity: dict[str, Any] = {"PartitionKey": encode_key(instance_id),
                                  "RowKey": encode_key(item.key), "Key": item.key,
                                  "ExecutionId": item.execution_id, "TaskId": item.task_id,
                                  "Name": item.name}
        _put_text(entity, "Input", item.input_json)
        return entity

    @staticmethod
    def _work_from(entity: TableEntity) -> WorkItem:
        return WorkItem(key=str(entity["Key"]), execution_id=str(entity["ExecutionId"]),
                        task_id=int(entity["TaskId"]), name=str(entity["Name"]),
                        input_json=_get_text(entity, "Input"))

    @staticmethod
    def _episode_rows(instance_id: str, execution_id: str, episode: int,
                      events: list[HistoryEvent]) -> list[dict[str, Any]]:
        text = json.dumps(events)
        per_row = CHUNK * PARTS_PER_ROW
        rows = []
        for part, start in enumerate(range(0, max(len(text), 1), per_row)):
            entity: dict[str, Any] = {
                "PartitionKey": encode_key(instance_id),
                "RowKey": f"ep:{execution_id}:{episode:08d}:{part:03d}"}
            _put_text(entity, "D", text[start:start + per_row])
            rows.append(entity)
        return rows

    # ------------------------------------------------------------------ queries
    async def _rows(self, instance_id: str, prefix: str) -> list[TableEntity]:
        # Key ranges instead of 'startswith': ';' sorts right after ':'.
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        flt = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
        params = {"pk": encode_key(instance_id), "lo": prefix, "hi": upper}
        return [e async for e in self.table.query_entities(flt, parameters=params)]

    async def _delete_rows(self, instance_id: str, row_keys: list[str]) -> None:
        pk = encode_key(instance_id)
        for chunk in _chunks(row_keys, MAX_BATCH_OPS):
            try:
                await self.table.submit_transaction(
                    [("delete", {"PartitionKey": pk, "RowKey": rk}) for rk in chunk])
            except HttpResponseError:
                # Some rows were already gone: delete one by one (delete is idempotent).
                for rk in chunk:
                    await self.table.delete_entity(pk, rk)

    async def _upsert_rows(self, rows: list[dict[str, Any]]) -> None:
        for chunk in _chunks(rows, MAX_BATCH_OPS):
            await self.table.submit_transaction(
                [("upsert", row, {"mode": UpdateMode.REPLACE}) for row in chunk])

    # ------------------------------------------------------------------ Store
    async def get_state(self, instance_id: str) -> InstanceState | None:
        try:
            entity = await self.table.get_entity(encode_key(instance_id), "state")
        except ResourceNotFoundError:
            return None
        return self._state_from(entity)

    async def _all_keys(self, instance_id: str) -> list[str]:
        flt = "PartitionKey eq @pk"
        entities = self.table.query_entities(flt, parameters={"pk": encode_key(instance_id)},
                                             select=["RowKey"])
        return [str(e["RowKey"]) async for e in entities]

    async def create_instance(self, state: InstanceState, start: Message) -> None:
        await self._delete_rows(state.instance_id, await self._all_keys(state.instance_id))
        await self.table.submit_transaction([
            ("upsert", self._state_entity(state), {"mode": UpdateMode.REPLACE}),
            ("upsert", self._message_entity(state.instance_id, start),
             {"mode": UpdateMode.REPLACE})])

    async def load_history(self, instance_id: str, execution_id: str) -> list[HistoryEvent]:
        rows = await self._rows(instance_id, f"ep:{execution_id}:")
        rows.sort(key=lambda e: str(e["RowKey"]))
        events: list[HistoryEvent] = []
        episode_key, text = "", ""
        for row in rows:
            key = str(row["RowKey"]).rsplit(":", 1)[0]
            if key != episode_key and text:
                events.extend(json.loads(text))
                text = ""
            episode_key = key
            text += _get_text(row, "D") or ""
        if text:
            events.extend(json.loads(text))
        return events

    async def messages(self, instance_id: str) -> list[Message]:
        return [self._message_from(e) for e in await self._rows(instance_id, "msg:")]

    async def add_messages(self, instance_id: str, messages: list[Message]) -> None:
        await self._upsert_rows([self._message_entity(instance_id, m) for m in messages])

    async def delete_messages(self, instance_id: str, keys: list[str]) -> None:
        await self._delete_rows(instance_id, [encode_key(k) for k in keys])

    async def add_work(self, instance_id: str, items: list[WorkItem]) -> None:
        await self._upsert_rows([self._work_entity(instance_id, i) for i in items])

    async def work(self, instance_id: str) -> list[WorkItem]:
        return [self._work_from(e) for e in await self._rows(instance_id, "work:")]

    async def delete_work(self, instance_id: str, keys: list[str]) -> None:
        await self._delete_rows(instance_id, [encode_key(k) for k in keys])

    async def complete_work(self, instance_id: str, work_key: str, message: Message) -> bool:
        pk = encode_key(instance_id)
        try:
            await self.table.submit_transaction([
                ("create", self._message_entity(instance_id, message)),
                ("delete", {"PartitionKey": pk, "RowKey": encode_key(work_key)}),
            ])
        except HttpResponseError as exc:
            if exc.status_code in _ALREADY_RECORDED:
                # The work row is gone or the result exists: a duplicate execution, or an
                # earlier attempt of this write that applied although its answer was lost.
                return False
            raise
        return True

    async def commit_episode(self, instance_id: str, commit: EpisodeCommit) -> None:
        pk = encode_key(instance_id)
        state = commit.state
        operations: list[Any] = [
            ("create", row) for row in self._episode_rows(
                instance_id, commit.history_execution_id, state.episodes
                if state.execution_id == commit.history_execution_id else -1, commit.events)]
        operations.append(("update", self._state_entity(state),
                           {"mode": UpdateMode.REPLACE, "etag": state.etag,
                            "match_condition": MatchConditions.IfNotModified}))
        operations += [("delete", {"PartitionKey": pk, "RowKey": encode_key(k)})
                       for k in commit.consumed]
        operations += [("upsert", self._message_entity(instance_id, m),
                        {"mode": UpdateMode.REPLACE}) for m in commit.new_messages]
        if len(operations) > MAX_BATCH_OPS:
            raise ValueError(f"episode commit needs {len(operations)} operations")
        room = MAX_BATCH_OPS - len(operations)
        now_too, later = commit.consumed_later[:room], commit.consumed_later[room:]
        operations += [("delete", {"PartitionKey": pk, "RowKey": encode_key(k)}) for k in now_too]
        try:
            await self.table.submit_transaction(operations)
        except HttpResponseError as exc:
            if exc.status_code in (409, 412) or "UpdateConditionNotSatisfied" in str(exc):
                raise ConcurrencyConflict(instance_id) from exc
            raise
        if later:
            # A crash before these deletes leaves duplicates the engine drops on its next read.
            await self._delete_rows(instance_id, [encode_key(k) for k in later])
        if state.execution_id != commit.history_execution_id:
            # continue-as-new resets the history: drop the old execution's episodes
            old = await self._rows(instance_id, f"ep:{commit.history_execution_id}:")
            await self._delete_rows(instance_id, [str(e["RowKey"]) for e in old])

    async def update_state(self, state: InstanceState, consumed: list[str]) -> None:
        pk = encode_key(state.instance_id)
        operations: list[Any] = [("update", self._state_entity(state),
                                  {"mode": UpdateMode.REPLACE, "etag": state.etag,
                                   "match_condition": MatchConditions.IfNotModified})]
        operations += [("delete", {"PartitionKey": pk, "RowKey": encode_key(k)})
                       for k in consumed]
        try:
            await self.table.submit_transaction(operations)
        except HttpResponseError as exc:
            raise ConcurrencyConflict(state.instance_id) from exc

    async def pending_instances(self) -> list[str]:
        found: set[str] = set()
        for prefix in ("msg:", "work:"):
            upper = prefix[:-1] + ";"
            entities = self.table.query_entities(
                "RowKey ge @lo and RowKey lt @hi", parameters={"lo": prefix, "hi": upper},
                select=["PartitionKey"])
            found.update([str(e["PartitionKey"]) async for e in entities])
        instances = []
        for pk in sorted(found):
            try:
                instances.append(str((await self.table.get_entity(pk, "state"))["InstanceId"]))
            except ResourceNotFoundError:
                continue   # leftovers of a purged instance
        return instances

    async def list_states(self) -> list[InstanceState]:
        entities = self.table.query_entities("RowKey eq @rk", parameters={"rk": "state"})
        return [self._state_from(e) async for e in entities]

    async def purge(self, instance_id: str) -> bool:
        keys = await self._all_keys(instance_id)
        await self._delete_rows(instance_id, keys)
        return "state" in keys
