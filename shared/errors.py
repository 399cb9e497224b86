"""Application errors with a stable machine ``code``.

Every error that reaches a caller or is stored on a run is an :class:`AppError`. HTTP adapters map them to
RFC 9457 problem+json with ``status``, ``title`` and ``code``; messages must already be safe (see
:func:`shared.redaction.redact`), because they are shown to callers and persisted.

Hierarchy::

    AppError
    ├── InvalidRequest            400 invalid-request
    ├── Unauthenticated           401 unauthenticated
    ├── Forbidden                 403 forbidden
    ├── NotFound                  404 not-found
    │   ├── TenantNotFound        404 tenant-not-found
    │   └── RunNotFound           404 run-not-found
    ├── Conflict                  409 conflict
    ├── PayloadTooLarge           413 payload-too-large
    ├── UnprocessableRequest      422 unprocessable
    ├── UpstreamError             502 upstream-error
    └── ServiceUnavailable        503 service-unavailable
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AppError",
    "Conflict",
    "Forbidden",
    "InvalidRequest",
    "NotFound",
    "PayloadTooLarge",
    "RunNotFound",
    "ServiceUnavailable",
    "TenantNotFound",
    "Unauthenticated",
    "UnprocessableRequest",
    "UpstreamError",
]


class AppError(Exception):
    """Base class: an error with an HTTP status, a title and a stable code."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"
    code: ClassVar[str] = "internal-error"

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.instance_code = code or self.code
        self.extra = extra


class InvalidRequest(AppError):
    status = 400
    title = "Invalid request"
    code = "invalid-request"


class Unauthenticated(AppError):
    status = 401
    title = "Unauthenticated"
    code = "unauthenticated"


class Forbidden(AppError):
    status = 403
    title = "Forbidden"
    code = "forbidden"


class NotFound(AppError):
    status = 404
    title = "Not found"
    code = "not-found"


class TenantNotFound(NotFound):
    code = "tenant-not-found"


class RunNotFound(NotFound):
    code = "run-not-found"


class Conflict(AppError):
    status = 409
    title = "Conflict"
    code = "conflict"


class PayloadTooLarge(AppError):
    status = 413
    title = "Payload too large"
    code = "payload-too-large"


class UnprocessableRequest(AppError):
    status = 422
    title = "Unprocessable request"
    code = "unprocessable"


class UpstreamError(AppError):
    status = 502
    title = "Upstream error"
    code = "upstream-error"


class ServiceUnavailable(AppError):
    status = 503
    title = "Service unavailable"
    code = "service-unavailable"
