"""Base model and small value types shared by every domain model."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from shared.redaction import redact

__all__ = [
    "ApiModel",
    "ErrorInfo",
    "Page",
    "every_page",
    "safe_aadsts",
    "safe_date",
    "safe_graph_code",
    "safe_request_id",
    "safe_target",
    "utc",
]

T = TypeVar("T")

# What Graph and Entra send back is untrusted: only values of these strict shapes are kept, anything else is
# dropped (never shortened or cleaned up, which would keep part of an unknown text).
# A code is words (``BadRequest``, ``Request_ResourceNotFound``, ``invalid_client``) or a number (``429``):
# letters mixed with digits are the shape of a key or token, not of a code, and are dropped.
_GRAPH_CODE: Final = re.compile(r"[A-Za-z][A-Za-z_.\-]{0,63}|\d{1,6}")
_GUID: Final = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Graph's innerError date (ISO 8601, UTC) or an HTTP Date header.
_DATE: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?Z?"
    r"|(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
    r"\d{2}:\d{2}:\d{2} GMT")
_AADSTS: Final = re.compile(r"(?:AADSTS)?(\d{1,10})")
# A property path as Graph names it in ``error.target`` / ``details[].target`` (``displayName``,
# ``settings[0].settingInstance``, ``@odata.type``): dotted names of letters, with numeric indexes.
_TARGET: Final = re.compile(r"@?[A-Za-z_]{1,64}(\[\d{1,4}\])?(\.@?[A-Za-z_]{1,64}(\[\d{1,4}\])?){0,5}")


def _fullmatch(pattern: re.Pattern[str], value: object) -> str | None:
    if isinstance(value, str) and pattern.fullmatch(value):
        return value
    return None


def safe_graph_code(value: object) -> str | None:
    """Graph's ``error.code`` (``BadRequest``, ``Request_ResourceNotFound``), else ``None``."""
    return _fullmatch(_GRAPH_CODE, value)


def safe_request_id(value: object) -> str | None:
    """A request or correlation id if it is a GUID, else ``None``."""
    return _fullmatch(_GUID, value)


def safe_date(value: object) -> str | None:
    """Graph's error date (ISO 8601 or HTTP date) if it has one of those shapes, else ``None``."""
    return _fullmatch(_DATE, value)


def safe_aadsts(value: object) -> str | None:
    """An Entra error number as ``AADSTS<digits>`` (from ``7000215`` or ``AADSTS7000215``), else ``None``."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**10:
        return f"AADSTS{value}"
    match = _AADSTS.fullmatch(value) if isinstance(value, str) else None
    return f"AADSTS{match.group(1)}" if match else None


def safe_target(value: object) -> str | None:
    """The property Graph says it rejected, if it is shaped like a property name, else ``None``."""
    return _fullmatch(_TARGET, value)


class ApiModel(BaseModel):
    """Immutable model with camelCase aliases for API output and snake_case names in code.

    ``model_dump(mode="json", by_alias=True)`` gives the API shape; both the alias and the field name
    are accepted on input so records round-trip through storage and the durable boundary.
    """

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, frozen=True,
        extra="ignore",
    )


class ErrorInfo(ApiModel):
    """A safe, stable description of a failure: ``{code, message}`` plus optional structured facts.

    ``message`` is always our own text (what we did and what it means), never text Graph or Entra sent
    back: free text defeats any redaction. What the upstream said is kept only as facts of a strict shape
    (HTTP status, Graph's error code, request id, date, Entra's AADSTS number, the rejected property);
    a value of another shape is dropped on construction, so a stored record cannot carry one either.
    The message is also redacted on construction, as a second line of defence.
    """

    code: str = Field(min_length=1, max_length=100)
    message: str = ""
    http_status: int | None = Field(default=None, ge=100, le=599,
                                    description="HTTP status Microsoft Graph or Entra answered with.")
    graph_code: str | None = Field(default=None, description="Microsoft Graph's (or Entra's) error code.")
    request_id: str | None = Field(default=None, description="Graph's request id, for a support case.")
    date: str | None = Field(default=None, description="When Graph reported the error.")
    aadsts: str | None = Field(default=None, description="Entra's error number, e.g. AADSTS7000215.")
    target: str | None = Field(default=None, description="The property Graph rejected, when it named one.")

    @field_validator("message", mode="before")
    @classmethod
    def _redact_message(cls, value: object) -> str:
        return redact(str(value) if value is not None else "")

    @field_validator("graph_code", mode="before")
    @classmethod
    def _graph_code(cls, value: object) -> str | None:
        return safe_graph_code(value)

    @field_validator("request_id", mode="before")
    @classmethod
    def _request_id(cls, value: object) -> str | None:
        return safe_request_id(value)

    @field_validator("date", mode="before")
    @classmethod
    def _date(cls, value: object) -> str | None:
        return safe_date(value)

    @field_validator("aadsts", mode="before")
    @classmethod
    def _aadsts(cls, value: object) -> str | None:
        return safe_aadsts(value)

    @field_validator("target", mode="before")
    @classmethod
    def _target(cls, value: object) -> str | None:
        return safe_target(value)


class Page(BaseModel, Generic[T]):
    """One page of a listing; ``continuation`` is an opaque token for the next page, or ``None``."""

    items: list[T]
    continuation: str | None = None


def every_page(fetch: Callable[[str | None], Page[T]]) -> list[T]:
    """Every item of a listing: ``fetch(continuation)`` page after page until the last."""
    items: list[T] = []
    continuation: str | None = None
    while True:
        page = fetch(continuation)
        items.extend(page.items)
        if not page.continuation:
            return items
        continuation = page.continuation


def utc(value: datetime) -> datetime:
    """Return ``value`` as an aware UTC datetime (naive values are taken to be UTC already)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
