"""HTTP concerns without a framework: RFC 9457 problem details and hardened JSON request bodies.

Request bodies are parsed only after the caller is authorised, and then within limits, so that a hostile body
costs a bounded amount of work and always ends in a ``4xx`` problem, never a ``500``:

=========================  ======  ===========================================================================
code                       status  when
=========================  ======  ===========================================================================
``payload-too-large``      413     the body exceeds the route's byte limit
``unsupported-media-type`` 415     ``Content-Type`` is not ``application/json`` (optionally ``charset=utf-8``)
``malformed-json``         400     not UTF-8 (UTF-16/32, a byte order mark), not JSON, or ``NaN``/``Infinity``
``json-too-deep``          400     arrays and objects nested deeper than the limit
``json-number-too-large``  400     a number literal longer than the limit, or one that overflows a float
``json-string-too-long``   400     a string (member name or value) longer than the limit
``duplicate-json-key``     400     one object names a member twice (parsers disagree on which one wins)
=========================  ======  ===========================================================================
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from shared.errors import AppError, InvalidJson, InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from shared.redaction import redact

__all__ = [
    "DEFAULT_JSON_LIMITS", "JSON_MEDIA_TYPE", "PROBLEM_CONTENT_TYPE", "JsonLimits", "enforce_body_size",
    "parse_json_body", "problem_from_error", "problem_from_validation", "require_json_media_type",
]

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


# --- JSON request bodies ------------------------------------------------------------------------

JSON_MEDIA_TYPE = "application/json"
_UTF8_CHARSETS = frozenset({"utf-8", "utf8"})
# A JSON string literal (escapes included, unterminated up to the end) or one bracket. Possessive quantifiers
# and the optional closing quote keep the scan linear whatever the input.
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"?|[\[\]{}]', re.DOTALL)


@dataclass(frozen=True)
class JsonLimits:
    """Bounds on one JSON request body; routes with small bodies pass tighter ones.

    Attributes:
        max_body_bytes: the body's size in bytes.
        max_depth: how deeply arrays and objects may nest (``{"a": [1]}`` is 2).
        max_number_chars: the length of one number literal (sign, digits, point and exponent).
        max_string_chars: the length of one string, member names included.
    """

    max_body_bytes: int = 256 * 1024
    max_depth: int = 32
    max_number_chars: int = 32
    max_string_chars: int = 32 * 1024


DEFAULT_JSON_LIMITS = JsonLimits()


def enforce_body_size(body: bytes, max_bytes: int) -> None:
    """Refuse a body larger than ``max_bytes``.

    Raises:
        PayloadTooLarge: it is larger.
    """
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"The request body exceeds {max_bytes} bytes.")


def require_json_media_type(content_type: str | None) -> None:
    """Accept only ``application/json``, in any case, with no charset or ``charset=utf-8``.

    Args:
        content_type: the request's ``Content-Type`` header, if any.

    Raises:
        UnsupportedMediaType: no content type, another media type, or another charset.
    """
    media_type, *parameters = (content_type or "").split(";")
    if media_type.strip().lower() != JSON_MEDIA_TYPE:
        raise UnsupportedMediaType(f"The request body must be sent as {JSON_MEDIA_TYPE}.")
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in _UTF8_CHARSETS:
            raise UnsupportedMediaType(f"The request body must be {JSON_MEDIA_TYPE} encoded as UTF-8.")


def parse_json_body(body: bytes, limits: JsonLimits = DEFAULT_JSON_LIMITS) -> Any:
    """Parse a UTF-8 JSON body within ``limits``.

    The work is bounded before the parser runs (size, then nesting), and every failure is a 4xx error with
    a stable code (see the module docstring); nothing of the body is echoed back.

    Args:
        body: the raw request body.
        limits: the route's bounds.

    Returns:
        The parsed value (objects as ``dict``, arrays as ``list``).

    Raises:
        PayloadTooLarge: the body exceeds ``limits.max_body_bytes``.
        InvalidJson: not UTF-8, not JSON, or beyond one of the limits.
    """
    enforce_body_size(body, limits.max_body_bytes)
    try:
        # Strict UTF-8: json.loads(bytes) would otherwise guess UTF-16 or UTF-32 from the first bytes.
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidJson("The request body must be JSON encoded as UTF-8.") from None
    _check_depth(text, limits.max_depth)
    try:
        value = json.loads(text, object_pairs_hook=_object_without_duplicates,
                           parse_int=lambda literal: _number(literal, int, limits),
                           parse_float=lambda literal: _number(literal, float, limits),
                           parse_constant=_reject_constant)
    except json.JSONDecodeError:
        raise InvalidJson("The request body is not valid JSON.") from None
    except RecursionError:  # pragma: no cover - the depth check runs first; kept so it can never be a 500
        raise _too_deep(limits.max_depth) from None
    _check_strings(value, limits.max_string_chars)
    return value


def _too_deep(max_depth: int) -> InvalidJson:
    return InvalidJson(f"The request body nests arrays and objects deeper than {max_depth} levels.",
                       code="json-too-deep")


def _check_depth(text: str, max_depth: int) -> None:
    # Python's parser recurses once per level and would hit the interpreter's recursion limit first.
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > max_depth:
                raise _too_deep(max_depth)
        elif token in ("]", "}"):
            depth -= 1


def _number(literal: str, kind: type[int] | type[float], limits: JsonLimits) -> int | float:
    # int() refuses more than 4,300 digits with a ValueError; a long float literal silently becomes inf.
    too_large = InvalidJson(f"A number in the request body is longer than {limits.max_number_chars} "
                            "characters or out of range.", code="json-number-too-large")
    if len(literal) > limits.max_number_chars:
        raise too_large
    value = kind(literal)
    if not math.isfinite(value):
        raise too_large
    return value


def _reject_constant(literal: str) -> Any:
    raise InvalidJson(f"The request body is not valid JSON ({literal} is not a JSON number).")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        # The name is not echoed: it is caller input.
        raise InvalidJson("An object in the request body names the same member more than once.",
                          code="duplicate-json-key")
    return obj


def _check_strings(value: Any, max_chars: int) -> None:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str) and len(item) > max_chars:
            raise InvalidJson(f"A string in the request body is longer than {max_chars} characters.",
                              code="json-string-too-long")
