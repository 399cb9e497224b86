"""JSON ``$batch`` request and response types, and how a long list is cut into batches.

Graph takes at most 20 requests per ``$batch``; each one is throttled on its own and answers with its own
status, in any order. Requests linked by ``dependsOn`` must travel in the same batch, so chunking keeps each
dependency group together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["MAX_BATCH", "BatchRequest", "BatchResponse", "chunk_requests"]

MAX_BATCH: Final = 20


@dataclass(frozen=True)
class BatchRequest:
    """One request inside a ``$batch``.

    Attributes:
        id: unique within the call.
        method: HTTP method.
        url: URL relative to the API version, e.g. ``/deviceManagement/deviceCategories/{id}``.
        body: JSON body for writes.
        headers: extra headers (``Content-Type: application/json`` is added when there is a body).
        depends_on: ids of requests that must succeed first.
    """

    id: str
    method: str
    url: str
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()

    @property
    def is_read(self) -> bool:
        """Whether this sub-request is a GET."""
        return self.method.upper() == "GET"

    def to_json(self, *, keep_depends_on: frozenset[str] | None = None) -> dict[str, Any]:
        """The request as Graph expects it; ``keep_depends_on`` drops links to requests already done."""
        out: dict[str, Any] = {"id": self.id, "method": self.method.upper(), "url": self.url}
        headers = dict(self.headers)
        if self.body is not None:
            out["body"] = self.body
            headers.setdefault("Content-Type", "application/json")
        if headers:
            out["headers"] = headers
        deps = [d for d in self.depends_on if keep_depends_on is None or d in keep_depends_on]
        if deps:
            out["dependsOn"] = deps
        return out


@dataclass(frozen=True)
class BatchResponse:
    """The answer to one :class:`BatchRequest` (headers with lower-case names)."""

    id: str
    status: int
    headers: Mapping[str, str]
    body: Any

    @property
    def ok(self) -> bool:
        """Whether the sub-request succeeded (2xx)."""
        return 200 <= self.status < 300


def chunk_requests(requests: Sequence[BatchRequest], size: int = MAX_BATCH) -> list[list[BatchRequest]]:
    """Cut ``requests`` into batches of at most ``size``, keeping ``dependsOn`` groups together.

    Args:
        requests: requests with unique ids; ``depends_on`` must name ids in the same list.
        size: maximum requests per batch.

    Returns:
        Batches in the original order of their first request.

    Raises:
        ValueError: duplicate ids, an unknown ``dependsOn`` id, or a dependency group larger than ``size``.
    """
    index = {r.id: i for i, r in enumerate(requests)}
    if len(index) != len(requests):
        raise ValueError("batch request ids must be unique")
    parent = list(range(len(requests)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, request in enumerate(requests):
        for dep in request.depends_on:
            if dep not in index:
                raise ValueError(f"request {request.id!r} depends on unknown id {dep!r}")
            parent[find(i)] = find(index[dep])
    groups: dict[int, list[BatchRequest]] = {}
    for i, request in enumerate(requests):
        groups.setdefault(find(i), []).append(request)
    chunks: list[list[BatchRequest]] = []
    current: list[BatchRequest] = []
    for group in groups.values():
        if len(group) > size:
            raise ValueError(f"a dependsOn group of {len(group)} requests does not fit in one batch")
        if len(current) + len(group) > size:
            chunks.append(current)
            current = []
        current.extend(group)
    if current:
        chunks.append(current)
    return chunks
