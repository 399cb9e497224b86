"""RFC 9457 problem details, framework-free (HTTP adapters render them)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from shared.errors import AppError, InvalidRequest
from shared.redaction import redact

__all__ = ["PROBLEM_CONTENT_TYPE", "problem_from_error", "problem_from_validation"]

PROBLEM_CONTENT_TYPE = "application/problem+json"
_TYPE_BASE = "https://intune-backup.example/problems/"


def _problem(*, status: int, title: str, code: str, detail: str, instance: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": _TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": redact(detail),
        "code": code,
    }
    if instance:
        body["instance"] = instance
    return body


def problem_from_error(error: AppError, *, instance: str | None = None) -> dict[str, Any]:
    """Problem body for an application error (detail redacted; extra fields such as ids kept)."""
    body = _problem(status=error.status, title=error.title, code=error.instance_code, detail=error.detail,
                    instance=instance)
    for key, value in error.extra.items():
        body.setdefault(to_camel(key), value)
    return body


def problem_from_validation(error: ValidationError, *, instance: str | None = None) -> dict[str, Any]:
    """400 problem listing validation errors without echoing the input."""
    body = _problem(status=InvalidRequest.status, title=InvalidRequest.title, code="validation-failed",
                    detail="The request body or parameters are invalid.", instance=instance)
    body["errors"] = [
        {"loc": [str(part) for part in err["loc"]], "msg": err["msg"], "type": err["type"]}
        for err in error.errors(include_url=False, include_input=False, include_context=False)
    ]
    return body
