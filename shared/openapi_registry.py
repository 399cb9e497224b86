"""What each route says about itself in the OpenAPI document, recorded where the route is declared.

An HTTP trigger declares its route (path, method, whether it is anonymous) once, on the Functions
registration; the decorator next to it (``http_triggers._support.documented``) adds an :class:`OperationDoc`
(summary, success answers, query and header parameters, the body model the handler parses, its role and the
errors its service can answer) and records both here as a :class:`DocumentedRoute`. :mod:`shared.openapi`
assembles the document from these records alone, so an operation cannot exist in the document without a
route, and the route test fails for a route without a record.

Framework-free: the decorator turns the Functions registration into plain values before recording it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, Literal

from pydantic import BaseModel

from shared.domain import Role

__all__ = [
    "ANY_CALLER", "AS_FOR_RUN_KIND", "CONTINUATION", "GRANT_ADMIN", "IDEMPOTENCY_KEY", "JSON",
    "PLATFORM_ADMIN", "REGISTRY", "RUN_ACCEPTED", "DocumentedRoute", "OperationDoc", "OperationRegistry",
    "Param", "RoleNeeded", "accepted", "enum_query", "html_answer", "json_answer", "no_content", "query",
    "top",
]

JSON: Final = "application/json"
REF_PREFIX: Final = "#/components/schemas/"

# Who may call an operation, besides a tenant role: any caller with a valid token, the provisioning app role,
# a tenant admin or the provisioning role, or the role that starting the run's kind needs.
ANY_CALLER: Final = "authenticated"
PLATFORM_ADMIN: Final = "Platform.Admin"
GRANT_ADMIN: Final = "admin or Platform.Admin"
AS_FOR_RUN_KIND: Final = "as for the run's kind"
RoleNeeded = (Role | Literal["authenticated", "Platform.Admin", "admin or Platform.Admin",
                             "as for the run's kind"])


@dataclass(frozen=True)
class Param:
    """A query or header parameter (path parameters come from the route template)."""

    name: str
    location: Literal["query", "header"]
    schema: Mapping[str, Any]
    description: str = ""

    def render(self) -> dict[str, Any]:
        """The OpenAPI parameter object."""
        return {"name": self.name, "in": self.location, "required": False, "schema": dict(self.schema),
                "description": self.description}


def query(name: str, schema: Mapping[str, Any], description: str = "") -> Param:
    """An optional query parameter."""
    return Param(name, "query", schema, description)


def enum_query(name: str, values: type[Enum] | list[str], description: str = "") -> Param:
    """An optional query parameter taking one of ``values`` (the members of an enum, in order)."""
    members = [str(m.value) for m in values] if isinstance(values, type) else list(values)
    return query(name, {"enum": members}, description)


def top(*, default: int, maximum: int, minimum: int = 1) -> Param:
    """The page size, with the bounds the handler passes to ``query_int``."""
    return query("top", {"type": "integer", "minimum": minimum, "maximum": maximum, "default": default},
                 "page size")


CONTINUATION: Final = query("continuation", {"type": "string"}, "opaque token from the previous page")
IDEMPOTENCY_KEY: Final = Param("Idempotency-Key", "header",
                               {"type": "string", "minLength": 1, "maxLength": 255})

_INT_HEADER: Final = {"schema": {"type": "integer", "minimum": 1}}


def json_answer(description: str, schema_name: str | None = None, *,
                headers: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A JSON answer whose body is the component schema ``schema_name``."""
    answer: dict[str, Any] = {"description": description}
    if schema_name:
        answer["content"] = {JSON: {"schema": {"$ref": REF_PREFIX + schema_name}}}
    if headers:
        answer["headers"] = dict(headers)
    return answer


def accepted(description: str = "Run accepted (or the active run reused)",
             schema_name: str = "Run") -> dict[str, Any]:
    """A started run: ``202`` with the run, ``Location`` (the monitor URL) and ``Retry-After``."""
    return json_answer(description, schema_name, headers={
        "Location": {"schema": {"type": "string"}, "required": True, "description": "monitor URL"},
        "Retry-After": {**_INT_HEADER, "required": True, "description": "seconds between polls"}})


RUN_ACCEPTED: Final = accepted()


def no_content(description: str) -> dict[str, Any]:
    """A ``204`` answer."""
    return {"description": description}


def html_answer(description: str) -> dict[str, Any]:
    """An HTML page."""
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


@dataclass(frozen=True)
class OperationDoc:
    """What the document says about one operation beyond what its route registration says.

    Attributes:
        summary: one line on what the operation does.
        ok: the success answers by status (see :func:`json_answer`, :func:`accepted`).
        role: who may call it; ``None`` for an anonymous route.
        params: its query and header parameters.
        body: the model the handler parses its JSON body into (``read_json(req, Model)``).
        errors: error statuses its service can answer beyond those :meth:`statuses` derives.
        takes_no_body: the handler refuses oversized bodies although it parses none (``reject_body``).
    """

    summary: str
    ok: Mapping[str, Mapping[str, Any]]
    role: RoleNeeded | None
    params: tuple[Param, ...] = ()
    body: type[BaseModel] | None = None
    errors: frozenset[int] = frozenset()
    takes_no_body: bool = False


@dataclass(frozen=True)
class DocumentedRoute:
    """One method of one registered route with its documentation."""

    method: str  # lower case, as OpenAPI spells it
    path: str  # with the route prefix: /api/...
    public: bool  # anonymous: no token needed, and no storage behind it
    doc: OperationDoc
    handler: Callable[..., Any]  # the user function, so tests can compare it with what is documented

    def statuses(self) -> frozenset[int]:
        """Error statuses this operation can answer.

        Every authenticated route can answer 401 and, because it reads storage, 503; a route under a tenant
        answers 404 to callers without a grant; a role above reader (or the provisioning role) is 403 for a
        lower one; any parameter or body can be invalid (400); a body can be too large (413) or not JSON
        (415), and a route that takes none still refuses an oversized one (413).
        """
        statuses = set(self.doc.errors)
        if not self.public:
            statuses |= {401, 503}
        if "{tenantId}" in self.path:
            statuses.add(404)
        if self.doc.role not in (None, ANY_CALLER, Role.READER):
            statuses.add(403)
        if self.doc.params or self.doc.body or "{" in self.path:
            statuses.add(400)
        if self.doc.body:
            statuses |= {413, 415}
        if self.doc.takes_no_body:
            statuses.add(413)
        return frozenset(statuses)


class OperationRegistry:
    """Every documented route of the process, in registration order."""

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], DocumentedRoute] = {}

    def add(self, route: DocumentedRoute) -> None:
        """Record ``route``.

        Raises:
            ValueError: the same method and path were documented already.
        """
        key = (route.path, route.method)
        if key in self._routes:
            raise ValueError(f"{route.method.upper()} {route.path} is documented twice")
        self._routes[key] = route

    def routes(self) -> tuple[DocumentedRoute, ...]:
        """The documented routes."""
        return tuple(self._routes.values())


REGISTRY: Final = OperationRegistry()
