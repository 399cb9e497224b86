"""Base model and small value types shared by every domain model."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from shared.redaction import redact

__all__ = ["ApiModel", "ErrorInfo", "Page", "utc"]

T = TypeVar("T")


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
    """A safe, stable description of a failure: ``{code, message}``.

    The message is redacted on construction because error infos are persisted on runs and items and
    shown to callers; whatever produced the text (Graph, the SDKs) may have echoed a credential.
    """

    code: str = Field(min_length=1, max_length=100)
    message: str = ""

    @field_validator("message", mode="before")
    @classmethod
    def _redact_message(cls, value: object) -> str:
        return redact(str(value) if value is not None else "")


class Page(BaseModel, Generic[T]):
    """One page of a listing; ``continuation`` is an opaque token for the next page, or ``None``."""

    items: list[T]
    continuation: str | None = None


def utc(value: datetime) -> datetime:
    """Return ``value`` as an aware UTC datetime (naive values are taken to be UTC already)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
