"""Key validation and opaque continuation tokens shared by every storage adapter."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from shared.errors import InvalidRequest

__all__ = ["MAX_KEY_CHARS", "decode_token", "encode_token", "validate_key"]

MAX_KEY_CHARS = 1024
# Table Storage refuses these in PartitionKey/RowKey, and Azurite answers 500 instead of 400 (with
# client retries that cost seconds), so we refuse them ourselves before any request is sent.
_FORBIDDEN = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")


def validate_key(value: str, *, what: str = "key") -> str:
    r"""Return ``value`` if it is usable as a Table key part.

    Raises:
        InvalidRequest: empty, longer than 1024 characters, or containing ``/ \\ # ?`` or control characters.
    """
    if not value or len(value) > MAX_KEY_CHARS or _FORBIDDEN.search(value):
        raise InvalidRequest(f"{what} is empty, too long, or contains a character that is not allowed")
    return value


def encode_token(value: Any) -> str:
    """Encode a continuation position as an opaque URL-safe token."""
    raw = json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> Any:
    """Decode a token made by :func:`encode_token`.

    Raises:
        InvalidRequest: the token was not produced by us.
    """
    try:
        padded = token + "=" * (-len(token) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest("continuation token is not valid") from exc
