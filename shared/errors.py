"""Application errors with a stable machine ``code``.

Every error that reaches a caller or is stored on a run is an :class:`AppError`. HTTP adapters map them to
RFC 9457 problem+json with ``status``, ``title`` and ``code``; messages must already be safe (see
:func:`shared.redaction.redact`), because they are shown to callers and persisted.

Hierarchy::

    AppError
    ├── InvalidRequest            400 invalid-request
    │   └── InvalidJson           400 malformed-json (also json-too-deep, json-number-too-large,
    │                                 json-string-too-long, duplicate-json-key)
    ├── Unauthenticated           401 unauthenticated
    ├── Forbidden                 403 forbidden
    │   └── RoleTooLow            403 role-too-low
    ├── NotFound                  404 not-found
    │   ├── TenantNotFound        404 tenant-not-found
    │   ├── RunNotFound           404 run-not-found
    │   └── NotificationNotFound  404 notification-not-found
    ├── Conflict                  409 conflict
    │   ├── RestoreAlreadyActive  409 restore-already-active
    │   ├── InvalidTransition     409 invalid-transition
    │   └── ConcurrentUpdate      409 concurrent-update
    ├── PayloadTooLarge           413 payload-too-large
    ├── UnsupportedMediaType      415 unsupported-media-type
    ├── UnprocessableRequest      422 unprocessable
    │   └── IdempotencyKeyReused  422 idempotency-key-reused
    ├── UpstreamError             502 upstream-error
    └── ServiceUnavailable        503 service-unavailable
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AppError",
    "ConcurrentUpdate",
    "Conflict",
    "Forbidden",
    "IdempotencyKeyReused",
    "InvalidJson",
    "InvalidRequest",
    "InvalidTransition",
    "NotFound",
    "NotificationNotFound",
    "PayloadTooLarge",
    "RestoreAlreadyActive",
    "RoleTooLow",
    "RunNotFound",
    "ServiceUnavailable",
    "TenantNotFound",
    "Unauthenticated",
    "UnprocessableRequest",
    "UnsupportedMediaType",
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
    """The request is malformed or fails validation."""

    status = 400
    title = "Invalid request"
    code = "invalid-request"


class Unauthenticated(AppError):
    """No valid credentials: missing, malformed, expired or untrusted."""

    status = 401
    title = "Unauthenticated"
    code = "unauthenticated"


class Forbidden(AppError):
    """Authenticated, but not allowed to do this."""

    status = 403
    title = "Forbidden"
    code = "forbidden"


class NotFound(AppError):
    """The resource does not exist, or the caller may not know that it does."""

    status = 404
    title = "Not found"
    code = "not-found"


class TenantNotFound(NotFound):
    """Unknown managed tenant, or the caller has no grant on it."""

    code = "tenant-not-found"


class RunNotFound(NotFound):
    """No such run in this tenant."""

    code = "run-not-found"


class Conflict(AppError):
    """The request conflicts with the current state."""

    status = 409
    title = "Conflict"
    code = "conflict"


class PayloadTooLarge(AppError):
    """The request body is too large."""

    status = 413
    title = "Payload too large"
    code = "payload-too-large"


class UnsupportedMediaType(AppError):
    """The request body is not in a media type (or charset) the route accepts."""

    status = 415
    title = "Unsupported media type"
    code = "unsupported-media-type"


class UnprocessableRequest(AppError):
    """Well-formed, but cannot be processed as sent."""

    status = 422
    title = "Unprocessable request"
    code = "unprocessable"


class UpstreamError(AppError):
    """Microsoft Graph (or another upstream) failed."""

    status = 502
    title = "Upstream error"
    code = "upstream-error"


class ServiceUnavailable(AppError):
    """Temporarily unable to serve; retry later."""

    status = 503
    title = "Service unavailable"
    code = "service-unavailable"


# --- Runs, access and storage (added with the runs core) ----------------------------------------


class RoleTooLow(Forbidden):
    """The caller has a grant on the tenant, but its role does not allow this operation."""

    code = "role-too-low"


class IdempotencyKeyReused(UnprocessableRequest):
    """The same ``Idempotency-Key`` was sent with a different request."""

    title = "Idempotency key reused"
    code = "idempotency-key-reused"


class RestoreAlreadyActive(Conflict):
    """Another restore is running on the tenant; ``extra['active_run_id']`` names it."""

    title = "Restore already active"
    code = "restore-already-active"


class InvalidTransition(Conflict):
    """A run status change that would move backwards or leave a terminal status."""

    code = "invalid-transition"


class ConcurrentUpdate(Conflict):
    """An optimistic-concurrency write lost (ETag mismatch, or the row appeared meanwhile)."""

    code = "concurrent-update"


class NotificationNotFound(NotFound):
    """No such notification for this caller (someone else's is reported the same way)."""

    code = "notification-not-found"



# --- Request bodies (added with the hardened JSON parser) ---------------------------------------


class InvalidJson(InvalidRequest):
    """The body is not acceptable JSON: not UTF-8, not JSON, or beyond a parser limit.

    The instance code says which: ``malformed-json``, ``json-too-deep``, ``json-number-too-large``,
    ``json-string-too-long`` or ``duplicate-json-key``.
    """

    code = "malformed-json"
