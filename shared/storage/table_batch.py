"""An entity-group transaction of inserts, written and read without the SDK's multipart machinery.

``TableClient.submit_transaction`` builds its multipart body with the standard ``email`` package, parses the
answer the same way, and starts a thread pool for each level of the body (to run its header policy on each
part) and another for the answer. On the start path, whose only storage call is such a transaction (the
claim), that was most of the call's CPU. The body of a batch of inserts is simple and fixed, so it is written
here as bytes and the answer's per-operation status lines are read directly; the request still goes through
the client's own pipeline (shared-key signing, retries, timeouts, logging policies).

Only inserts are built here. Anything this reader does not expect (an operation failing with something
other than ``409 Conflict``) is sent again through ``submit_transaction``: a failed transaction wrote
nothing, so the SDK then raises exactly the error it always raised.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Sequence
from typing import Any
from wsgiref.handlers import format_date_time

from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest
from azure.core.serialization import AzureJSONEncoder
from azure.data.tables import TableClient
from azure.data.tables._error import _decode_error
from azure.data.tables._serialize import _add_entity_properties

from shared.storage.errors import storage_errors

__all__ = ["InsertConflict", "insert_batch", "read_answers"]

# A status line of one operation's answer inside the multipart body. JSON bodies escape CR and LF, so a line
# that starts this way is always a status line.
_STATUS_LINE = re.compile(rb"(?:^|\r\n)HTTP/1\.1 (\d{3})[^\r\n]*\r\n(.*?)\r\n\r\n", re.DOTALL)
_ETAG_HEADER = re.compile(rb"(?:^|\r\n)etag:[ \t]*([^\r\n]*)", re.IGNORECASE)
# The service prefixes an operation's error message with its index ("1:The specified entity already exists").
_ERROR_INDEX = re.compile(r'"value"\s*:\s*"(\d+):')


class InsertConflict(Exception):
    """An entity of the batch already exists (``409``); nothing was written.

    Attributes:
        index: the position of the operation the service named (0 when it named none).
    """

    def __init__(self, index: int) -> None:
        super().__init__(f"entity exists (operation {index})")
        self.index = index


def _raw(client: TableClient) -> Any:
    """The client, typed so that the SDK's own attributes (its pipeline, host and version) can be read."""
    return client


def _body(base_url: str, table: str, version: str, entities: Sequence[dict[str, Any]]) -> tuple[bytes, str]:
    batch = f"batch_{uuid.uuid4()}"
    changeset = f"changeset_{uuid.uuid4()}"
    date = format_date_time(time.time())
    out = [f"--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n".encode()]
    for index, entity in enumerate(entities):
        payload = json.dumps(_add_entity_properties(entity), cls=AzureJSONEncoder).encode()
        out.append(
            f"--{changeset}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
            f"Content-ID: {index}\r\n\r\n"
            f"POST {base_url}/{table} HTTP/1.1\r\nx-ms-version: {version}\r\nDataServiceVersion: 3.0\r\n"
            "Content-Type: application/json\r\nAccept: application/json;odata=minimalmetadata\r\n"
            f"x-ms-date: {date}\r\nDate: {date}\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n".encode())
        out.append(payload + b"\r\n")
    out.append(f"--{changeset}--\r\n\r\n--{batch}--\r\n".encode())
    return b"".join(out), batch


def read_answers(content: bytes) -> list[tuple[int, str]]:
    """The status and ETag (``""`` if none) of each operation in a transaction's answer, in order."""
    answers = []
    for status, headers in _STATUS_LINE.findall(content):
        found = _ETAG_HEADER.search(headers)
        answers.append((int(status), found.group(1).decode("latin-1").strip() if found else ""))
    return answers


def insert_batch(client: TableClient, entities: Sequence[dict[str, Any]]) -> list[str]:
    """Insert ``entities`` (one partition) in one entity-group transaction; return their ETags in order.

    Args:
        client: the table's client (guarded by :func:`shared.storage.errors.guarded` or not).
        entities: the rows, each with ``PartitionKey`` and ``RowKey``; at most 100.

    Returns:
        The ETag of each inserted row, in the order of ``entities``.

    Raises:
        InsertConflict: a row already exists; nothing was written.
        StorageUnavailable: storage is unreachable, slow or busy.
        HttpResponseError: any other refusal, as ``submit_transaction`` raises it.
    """
    if not entities:
        return []
    sdk = _raw(client)
    base_url = f"{sdk.scheme}://{sdk._primary_hostname}"
    body, boundary = _body(base_url, sdk.table_name, sdk._client._config.version, entities)
    request = HttpRequest("POST", f"{base_url}/$batch", content=body, headers={
        "x-ms-version": sdk.api_version, "DataServiceVersion": "3.0", "MaxDataServiceVersion": "3.0;NetFx",
        "Content-Type": f"multipart/mixed; boundary={boundary}", "Accept": "application/json"})
    with storage_errors():
        # Streamed, as the SDK does: its content policy would otherwise try to decode the multipart answer.
        response = sdk._client.send_request(request, stream=True)
        content = response.read()
        if response.status_code != 202:
            raise _decode_error(response)  # type: ignore[no-untyped-call]
        answers = read_answers(content)
        statuses = [status for status, _ in answers]
        if len(answers) == len(entities) and all(200 <= s < 300 for s in statuses):
            return [etag for _, etag in answers]
        if 409 in statuses:
            found_index = _ERROR_INDEX.search(content.decode("utf-8", "replace"))
            raise InsertConflict(int(found_index.group(1)) if found_index else 0)
        if not any(status >= 300 for status in statuses):
            # Not a refusal, yet not one answer per row: whether it was written is unknown, so it must not be
            # sent again (a second attempt would find its own rows and report a conflict).
            raise HttpResponseError(message="The transaction's answer could not be read.", response=response)
        results = sdk.submit_transaction([("create", entity) for entity in entities])
    return [str(result.get("etag", "")) for result in results]
