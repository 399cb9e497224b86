"""Errors raised by the Microsoft Graph client, each with a stable machine ``code``.

Everything Graph and Entra send back is untrusted. An error's ``detail`` is our own text only: the method,
our path (never the query string), the HTTP status and what it means; never Graph's or Entra's free text
(``error.message``, ``error_description``), which can echo anything, credentials included, in words no
redaction recognises. What the upstream said is kept only as structured facts of a strict shape
(:meth:`GraphError.facts`): Graph's error code, request id and date, Entra's AADSTS number, the property
Graph rejected. Values of any other shape are dropped when the error is built. The detail is also passed
through :func:`shared.redaction.redact`, as a second line of defence, so an error can be logged, stored on
a run item or shown to a caller as it is.

Hierarchy::

    AppError                                   (shared.errors)
    └── GraphError                 502 graph-error
        ├── GraphAuthError         502 graph-auth-failed       token request refused (AADSTS code kept)
        ├── GraphPermissionMissing 502 graph-permission-missing 403: the app lacks an application permission
        ├── GraphNotFound          404 policy-not-found        404 on an object
        ├── GraphThrottled         503 graph-throttled         429/503 beyond the retry budget (retry_after)
        ├── GraphBadRequest        502 graph-bad-request       other 4xx (validation, unsupported query)
        │   └── GraphConflict      409 graph-conflict          409 (duplicate, concurrent change)
        ├── GraphServerError       502 graph-server-error      5xx or transport failure beyond the budget
        ├── GraphWriteRefused      409 graph-write-refused     a read-only client was asked to write
        └── GraphIncompleteRead    502 graph-incomplete-read   a read came back partial (short page,
                                                               count mismatch, truncated body)
"""

from __future__ import annotations

from typing import Any, ClassVar

from shared.domain.base import safe_aadsts, safe_date, safe_graph_code, safe_request_id, safe_target
from shared.errors import AppError
from shared.redaction import redact

__all__ = [
    "GraphAuthError",
    "GraphBadRequest",
    "GraphConflict",
    "GraphError",
    "GraphIncompleteRead",
    "GraphNotFound",
    "GraphPermissionMissing",
    "GraphServerError",
    "GraphThrottled",
    "GraphWriteRefused",
]


class GraphError(AppError):
    """Base class of every Graph client error.

    ``detail`` must be our own text; the keyword facts may come from Graph and are kept only when they have
    the strict shape of what they claim to be.

    Attributes:
        status_code: the HTTP status Graph answered with, when there was an answer.
        graph_code: Graph's ``error.code`` (``Forbidden``, ``TooManyRequests``, ...), when it has that shape.
        request_id: Graph's request id (a GUID), for support cases.
        date: when Graph reported the error (its ``innerError.date`` or ``Date`` header).
        target: the property Graph rejected, when it named one in structured form.
    """

    status: ClassVar[int] = 502
    title: ClassVar[str] = "Microsoft Graph error"
    code: ClassVar[str] = "graph-error"

    def __init__(
        self,
        detail: str,
        *,
        status_code: int | None = None,
        graph_code: object = None,
        request_id: object = None,
        date: object = None,
        target: object = None,
        **extra: Any,
    ) -> None:
        # Redact here, once, so no caller can forget it.
        super().__init__(redact(detail), **extra)
        self.status_code = status_code if isinstance(status_code, int) and 100 <= status_code <= 599 else None
        self.graph_code = safe_graph_code(graph_code)
        self.request_id = safe_request_id(request_id)
        self.date = safe_date(date)
        self.target = safe_target(target)

    def facts(self) -> dict[str, str | int]:
        """The structured facts that are known, keyed like :class:`shared.domain.ErrorInfo`'s fields."""
        facts: dict[str, str | int | None] = {
            "http_status": self.status_code, "graph_code": self.graph_code, "request_id": self.request_id,
            "date": self.date, "aadsts": getattr(self, "aadsts", None), "target": self.target,
        }
        return {key: value for key, value in facts.items() if value is not None}


class GraphAuthError(GraphError):
    """The token request was refused or failed; ``aadsts`` holds the Entra code (``AADSTS7000215``)."""

    title = "Microsoft Graph authentication failed"
    code = "graph-auth-failed"

    def __init__(self, detail: str, *, aadsts: object = None, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.aadsts = safe_aadsts(aadsts)


class GraphPermissionMissing(GraphError):
    """Graph answered 403; ``permission`` is the application permission the catalog says the route needs."""

    title = "Microsoft Graph permission missing"
    code = "graph-permission-missing"

    def __init__(self, detail: str, *, permission: str | None = None, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.permission = permission


class GraphNotFound(GraphError):
    """Graph answered 404: the object does not exist (any more)."""

    status = 404
    title = "Policy not found"
    code = "policy-not-found"


class GraphThrottled(GraphError):
    """Graph kept throttling (429/503) beyond the client's retry budget.

    ``retry_after`` is the number of seconds Graph last asked for (or the client's backoff estimate), so
    an orchestrator can wait with a durable timer and try again instead of spinning.
    """

    status = 503
    title = "Microsoft Graph throttled the request"
    code = "graph-throttled"

    def __init__(self, detail: str, *, retry_after: float, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.retry_after = retry_after


class GraphBadRequest(GraphError):
    """Graph rejected the request (4xx other than 401/403/404/429)."""

    title = "Microsoft Graph rejected the request"
    code = "graph-bad-request"


class GraphConflict(GraphBadRequest):
    """Graph answered 409."""

    status = 409
    title = "Microsoft Graph reported a conflict"
    code = "graph-conflict"


class GraphServerError(GraphError):
    """Graph failed (5xx) or the connection failed, and retrying did not help."""

    title = "Microsoft Graph failed"
    code = "graph-server-error"


class GraphWriteRefused(GraphError):
    """A read-only client refused to send a write; nothing left the process."""

    status = 409
    title = "Write refused in read-only mode"
    code = "graph-write-refused"


class GraphIncompleteRead(GraphError):
    """A read returned less than Graph said exists; the capture must not count as a success."""

    title = "Incomplete read from Microsoft Graph"
    code = "graph-incomplete-read"
