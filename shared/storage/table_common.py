"""Helpers shared by the Table Storage adapters: JSON bodies split across properties, paging, errors."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, TableEntity

from shared.domain import Page
from shared.errors import InvalidRequest, PayloadTooLarge
from shared.storage.keys import decode_token, encode_token

__all__ = ["body_json", "etag_of", "get_entity", "pack_body", "page_query"]

T = TypeVar("T")

# A string property holds at most 64 KiB of UTF-16 (32K characters), and an entity at most 1 MiB, so a
# JSON body is split over a few properties; anything bigger belongs in Blob Storage.
_CHUNK_CHARS = 30_000
_MAX_CHUNKS = 14
# How many server pages one listing call may scan to fill a page when a filter skips rows.
_MAX_SERVER_PAGES = 5


def pack_body(text: str) -> dict[str, str]:
    """Split a JSON text over ``Body``, ``Body1``, ... properties.

    Raises:
        PayloadTooLarge: the text would not fit in one entity.
    """
    chunks = [text[i:i + _CHUNK_CHARS] for i in range(0, len(text), _CHUNK_CHARS)] or [""]
    if len(chunks) > _MAX_CHUNKS:
        raise PayloadTooLarge("the record is too large to store")
    return {("Body" if i == 0 else f"Body{i}"): chunk for i, chunk in enumerate(chunks)}


def body_json(entity: Mapping[str, Any]) -> Any:
    """Join and parse the body written by :func:`pack_body`."""
    parts = [str(entity.get("Body", ""))]
    i = 1
    while f"Body{i}" in entity:
        parts.append(str(entity[f"Body{i}"]))
        i += 1
    return json.loads("".join(parts))


def etag_of(entity: TableEntity) -> str:
    """The ETag the service returned with an entity."""
    return str(entity.metadata["etag"])


def get_entity(table: TableClient, partition_key: str, row_key: str) -> TableEntity | None:
    """Read one entity, or ``None`` when it does not exist."""
    try:
        return table.get_entity(partition_key=partition_key, row_key=row_key)
    except ResourceNotFoundError:
        return None


def page_query(
    table: TableClient, *, query_filter: str, parameters: dict[str, Any], top: int,
    continuation: str | None, convert: Callable[[TableEntity], T],
    select: list[str] | None = None,
) -> Page[T]:
    """Run a parameterised query and return up to ``top`` rows with an opaque continuation token.

    Args:
        table: the table.
        query_filter: OData filter using ``@name`` parameters (never string interpolation).
        parameters: values of the parameters.
        top: page size (1-1000).
        continuation: token from a previous page.
        convert: maps an entity to the returned item.
        select: properties to fetch (all when ``None``).

    Returns:
        The page; ``continuation`` is ``None`` once the listing is exhausted.
    """
    if not 1 <= top <= 1000:
        raise InvalidRequest("top must be between 1 and 1000")
    token = decode_token(continuation) if continuation else None
    if token is not None and not (isinstance(token, dict) and set(token) <= {"PartitionKey", "RowKey"}):
        raise InvalidRequest("continuation token is not valid")
    items: list[T] = []
    for _ in range(_MAX_SERVER_PAGES):
        pager = table.query_entities(
            query_filter, parameters=parameters, results_per_page=top - len(items), select=select,
        ).by_page(continuation_token=token)  # type: ignore[arg-type]  # the SDK's token is a dict
        page: list[TableEntity] = list(next(pager, []))
        items.extend(convert(e) for e in page)
        token = pager.continuation_token  # type: ignore[attr-defined]
        if not token or len(items) >= top:
            break
    return Page[T](items=items, continuation=encode_token(token) if token else None)
