"""An in-memory Graph for service tests: a :class:`shared.graph.tenants.GraphPort` and its clients.

It serves a few policy types (settings catalog, device configuration, scope tags, assignment filters) and
groups the way Graph does for a restore: lists without settings, settings and assignments as their own
collections, creates, ``PUT``/``PATCH`` updates and the ``assign`` action. Every other collection of the
catalog lists empty. A read-only client refuses any write before it is "sent", as ``GraphClient`` does.

Writes can be told to fail (``fail_next``), before or after Graph applied them (an answer lost on the way).
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import httpx

from shared.graph.catalog import CATALOG
from shared.graph.client import GraphClient, GraphResponse
from shared.graph.errors import GraphError, GraphNotFound, GraphWriteRefused

__all__ = ["FakeGraph", "FakeGraphClient", "FakeTenant", "Fault", "SentRequest"]

SERVED_TYPES = ("settingsCatalog", "deviceConfiguration", "scopeTag", "assignmentFilter")
# Sub-collections Graph keeps apart from the object (read through their own calls).
_SEPARATE = ("settings", "assignments")
_STAMP = "2026-01-01T00:00:00Z"
_GROUP_FILTER = re.compile(r"^displayName eq '(?P<name>(?:[^']|'')*)'$")


@dataclass
class SentRequest:
    """A request that reached the fake Graph."""

    tenant_id: str
    method: str
    path: str
    body: Any = None


@dataclass
class Fault:
    """A planned failure of the next write matching ``method`` and ``path_suffix``."""

    method: str
    path_suffix: str
    error: GraphError
    after_write: bool = False


class FakeTenant:
    """One tenant's objects by policy type, and its groups."""

    def __init__(self, tenant_id: str, *, first_tag_id: int = 100) -> None:
        self.tenant_id = tenant_id
        self.objects: dict[str, dict[str, dict[str, Any]]] = {key: {} for key in SERVED_TYPES}
        self.groups: dict[str, str] = {}
        self._ids = itertools.count(1)
        # Scope tag ids are small integers, numbered apart per tenant so a remap is visible.
        self._tag_ids = itertools.count(first_tag_id)
        self.modified = 0

    def new_id(self, type_key: str) -> str:
        if type_key == "scopeTag":
            return str(next(self._tag_ids))
        return f"{self.tenant_id[:8]}-0000-4000-8000-{next(self._ids):012d}"

    def touch(self, obj: dict[str, Any]) -> None:
        # Graph stamps every write, so a listing shows that the object changed.
        self.modified += 1
        obj["lastModifiedDateTime"] = f"2026-02-01T00:00:{self.modified % 60:02d}.{self.modified:06d}Z"

    def add(self, type_key: str, body: Mapping[str, Any], *, object_id: str | None = None) -> str:
        """Put an object in the tenant directly (as an admin would through the portal)."""
        obj = copy.deepcopy(dict(body))
        obj["id"] = object_id or self.new_id(type_key)
        obj.setdefault("createdDateTime", _STAMP)
        self._number(type_key, obj)
        self.touch(obj)
        self.objects[type_key][obj["id"]] = obj
        return str(obj["id"])

    def edit(self, type_key: str, object_id: str, **changes: Any) -> None:
        obj = self.objects[type_key][object_id]
        obj.update(copy.deepcopy(changes))
        self._number(type_key, obj)
        self.touch(obj)

    def delete(self, type_key: str, object_id: str) -> None:
        del self.objects[type_key][object_id]

    def named(self, type_key: str, name: str) -> list[dict[str, Any]]:
        prop = CATALOG[type_key].name_property
        return [o for o in self.objects[type_key].values() if o.get(prop) == name]

    def add_group(self, name: str, group_id: str) -> str:
        self.groups[group_id] = name
        return group_id

    def _number(self, type_key: str, obj: dict[str, Any]) -> None:
        """Ids of sub-objects, and the counts Graph derives from them."""
        for sub in _SEPARATE:
            if isinstance(obj.get(sub), list):
                obj[sub] = [dict(v, id=v.get("id") or f"{sub}-{n}") for n, v in enumerate(obj[sub])]
        if type_key == "settingsCatalog":
            obj["settingCount"] = len(obj.get("settings") or [])


_COLLECTIONS = {f"/{CATALOG[key].api_version}/{CATALOG[key].collection}": key for key in SERVED_TYPES}
_OTHER_COLLECTIONS = {f"/{t.api_version}/{t.collection}" for t in CATALOG.values()}


class FakeGraphClient:
    """One tenant's client: what :class:`shared.graph.tenants.GraphApi` and the reader use."""

    def __init__(self, graph: FakeGraph, tenant: FakeTenant, *, read_only: bool) -> None:
        self._graph = graph
        self._tenant = tenant
        self.read_only = read_only

    # ------------------------------------------------------------------------------ reads

    async def get(self, url: str, *, params: Any = None) -> dict[str, Any]:
        self._graph.sent.append(SentRequest(self._tenant.tenant_id, "GET", url))
        if url.startswith("/v1.0/groups/"):
            group_id = url.rsplit("/", 1)[1]
            if group_id not in self._tenant.groups:
                raise GraphNotFound("group not found", status_code=404)
            return {"id": group_id, "displayName": self._tenant.groups[group_id]}
        type_key, object_id, rest = self._route(url)
        if object_id is None or rest:
            raise GraphNotFound("no such resource", status_code=404)
        return self._public(self._object(type_key, object_id))

    async def iter_pages(
        self, url: str, *, params: Mapping[str, str] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        yield {"value": await self.get_all(url, params=params)}

    async def get_all(self, url: str, *, params: Any = None) -> list[dict[str, Any]]:
        self._graph.sent.append(SentRequest(self._tenant.tenant_id, "GET", url))
        if url == "/v1.0/groups":
            match = _GROUP_FILTER.match((params or {}).get("$filter", ""))
            name = match.group("name").replace("''", "'") if match else None
            return [
                {"id": i, "displayName": n}
                for i, n in self._tenant.groups.items()
                if name is None or n == name
            ]
        if url in _OTHER_COLLECTIONS and url not in _COLLECTIONS:
            return []
        type_key, object_id, rest = self._route(url)
        if object_id is None:
            return [self._public(o) for o in self._tenant.objects[type_key].values()]
        obj = self._object(type_key, object_id)
        if rest in _SEPARATE:
            return copy.deepcopy(list(obj.get(rest) or []))
        raise GraphNotFound("no such resource", status_code=404)

    # ----------------------------------------------------------------------------- writes

    async def post(self, url: str, *, json_body: Any = None, idempotent: bool = False) -> GraphResponse:
        return self._write("POST", url, json_body)

    async def patch(self, url: str, *, json_body: Any) -> GraphResponse:
        return self._write("PATCH", url, json_body)

    async def put(self, url: str, *, json_body: Any) -> GraphResponse:
        return self._write("PUT", url, json_body)

    def _write(self, method: str, url: str, body: Any) -> GraphResponse:
        if self.read_only:
            self._graph.refused.append(SentRequest(self._tenant.tenant_id, method, url, body))
            raise GraphWriteRefused(f"read-only client refused {method} {url}")
        self._graph.sent.append(SentRequest(self._tenant.tenant_id, method, url, copy.deepcopy(body)))
        fault = self._graph.take_fault(method, url)
        if fault is not None and not fault.after_write:
            raise fault.error
        answer = self._apply(method, url, body)
        if fault is not None:
            raise fault.error
        return answer

    def _apply(self, method: str, url: str, body: Any) -> GraphResponse:
        type_key, object_id, rest = self._route(url)
        tenant = self._tenant
        if method == "POST" and object_id is None:
            new_id = tenant.add(
                type_key, {k: v for k, v in body.items() if "@odata." not in k or k == "@odata.type"}
            )
            return _response(201, self._public(tenant.objects[type_key][new_id]))
        if object_id is None:
            raise GraphNotFound("no such resource", status_code=404)
        obj = self._object(type_key, object_id)
        if method == "POST" and rest == "assign":
            obj["assignments"] = [
                dict(copy.deepcopy(a), id=f"{object_id}_{n}")
                for n, a in enumerate(body.get("assignments") or [])
            ]
            return _response(200, None)
        if rest:
            raise GraphNotFound("no such action", status_code=404)
        if method == "PUT":
            kept: dict[str, Any] = {k: obj[k] for k in ("id", "createdDateTime", "assignments") if k in obj}
            obj.clear()
            obj.update(copy.deepcopy(body))
            obj.update(kept)
        else:
            obj.update(copy.deepcopy(body))
        tenant.edit(type_key, object_id)
        return _response(204, None)

    # ---------------------------------------------------------------------------- helpers

    def _route(self, url: str) -> tuple[str, str | None, str]:
        for collection, type_key in _COLLECTIONS.items():
            if url == collection:
                return type_key, None, ""
            if url.startswith(collection + "/"):
                object_id, _, rest = url[len(collection) + 1 :].partition("/")
                return type_key, object_id, rest
        raise GraphNotFound(f"the fake Graph does not serve {url}", status_code=404)

    def _object(self, type_key: str, object_id: str) -> dict[str, Any]:
        obj = self._tenant.objects[type_key].get(object_id)
        if obj is None:
            raise GraphNotFound("policy not found", status_code=404)
        return obj

    @staticmethod
    def _public(obj: Mapping[str, Any]) -> dict[str, Any]:
        return copy.deepcopy({k: v for k, v in obj.items() if k not in _SEPARATE})


def _response(status: int, body: Any) -> GraphResponse:
    return GraphResponse(status_code=status, headers=httpx.Headers(), body=body)


@dataclass
class FakeGraph:
    """The Graph port over in-memory tenants; records what was sent, refused and handed out."""

    tenants: dict[str, FakeTenant] = field(default_factory=dict)
    sent: list[SentRequest] = field(default_factory=list)
    refused: list[SentRequest] = field(default_factory=list)
    handed_out: list[tuple[str, bool]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)

    def tenant(self, tenant_id: str) -> FakeTenant:
        if tenant_id not in self.tenants:
            self.tenants[tenant_id] = FakeTenant(tenant_id, first_tag_id=100 * (len(self.tenants) + 1))
        return self.tenants[tenant_id]

    async def client(self, tenant_id: str, *, writes: bool = False) -> GraphClient:
        self.handed_out.append((tenant_id, writes))
        # Typed as the port promises: the services and the reader use only what the fake implements.
        return cast("GraphClient", FakeGraphClient(self, self.tenant(tenant_id), read_only=not writes))

    async def forget(self, tenant_id: str) -> None:
        return None

    def fail_next(
        self, method: str, path_suffix: str, error: GraphError, *, after_write: bool = False
    ) -> None:
        self.faults.append(Fault(method, path_suffix, error, after_write))

    def take_fault(self, method: str, url: str) -> Fault | None:
        for fault in self.faults:
            if fault.method == method and url.endswith(fault.path_suffix):
                self.faults.remove(fault)
                return fault
        return None

    def writes(self, tenant_id: str | None = None) -> list[SentRequest]:
        return [r for r in self.sent if r.method != "GET" and (tenant_id is None or r.tenant_id == tenant_id)]
