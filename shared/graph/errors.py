"""Errors raised by the Microsoft Graph client, each with a stable machine ``code``.

Every message is passed through :func:`shared.redaction.redact` when the error is built, so an error can be
logged, stored on a run item or shown to a caller as it is. Messages name the method, the path (never the
query string), the HTTP status, Graph's own error code and request id; they never carry tokens, secrets,
client assertions, authorization headers or raw Graph bodies.

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

    Attributes:
        status_code: the HTTP status Graph answered with, when there was an answer.
        graph_code: Graph's ``error.code`` (``Forbidden``, ``TooManyRequests``, ...), when known.
        request_id: Graph's ``request-id`` header, for support cases.
    """

    status: ClassVar[int] = 502
    title: ClassVar[str] = "Microsoft Graph error"
    code: ClassVar[str] = "graph-error"

    def __init__(
        self,
        detail: str,
        *,
        status_code: int | None = None,
        graph_code: str | None = None,
        request_id: str | None = None,
        **extra: Any,
    ) -> None:
        # Redact here, once, so no caller can forget it.
        super().__init__(redact(detail), **extra)
        self.status_code = status_code
        self.graph_code = graph_code
        self.request_id = request_id


class GraphAuthError(GraphError):
    """The token request was refused or failed; ``aadsts`` holds the Entra code (``AADSTS7000215``)."""

    title = "Microsoft Graph authentication failed"
    code = "graph-auth-failed"

    def __init__(self, detail: str, *, aadsts: str | None = None, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.aadsts = aadsts


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
