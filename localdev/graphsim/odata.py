"""OData pieces Graph clients depend on: error bodies, query options, paging tokens, `$filter`."""

from __future__ import annotations

import base64
import json
import re
import secrets
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "JSON_CONTENT_TYPE", "GraphError", "decode_skiptoken", "encode_skiptoken", "error_body",
    "now_iso", "parse_expand", "parse_filter", "select_fields",
]

JSON_CONTENT_TYPE = ("application/json;odata.metadata=minimal;odata.streaming=true;"
                     "IEEE754Compatible=false;charset=utf-8")

Item = dict[str, Any]


def now_iso() -> str:
    """Current UTC time in Graph's seven-digit-fraction form."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


class GraphError(Exception):
    """A Graph error response (status, code, message); ``nested`` uses Intune's JSON-in-message style."""

    def __init__(self, status: int, code: str, message: str, *, nested: bool = False,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.nested = nested
        self.headers = headers or {}


def _nested_message(message: str, request_id: str, path: str) -> str:
    # Intune's front ends wrap their own error record as a JSON string inside `message`.
    record = {
        "_version": 3,
        "Message": (f"{message} - Operation ID (for customer support): 00000000-0000-0000-0000-"
                    f"000000000000 - Activity ID: {request_id} - Url: https://fef.msub03.manage."
                    f"microsoft.com/StatelessDeviceConfigurationFEService{path} - "
                    "CustomApiErrorPhrase: "),
        "CustomApiErrorPhrase": "",
        "RetryAfter": None,
        "ErrorSourceService": "",
        "HttpHeaders": "{}",
    }
    return json.dumps(record, indent=2).replace("\n", "\r\n")


def error_body(err: GraphError, *, request_id: str, client_request_id: str,
               path: str = "") -> dict[str, Any]:
    """Graph's ``{"error": {...}}`` body for ``err``."""
    message = _nested_message(err.message, request_id, path) if err.nested else err.message
    inner: dict[str, Any] = {"date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                             "request-id": request_id, "client-request-id": client_request_id}
    if err.status == 429:
        inner.update({"code": "429", "status": "429"})
    return {"error": {"code": err.code, "message": message, "innerError": inner}}


def encode_skiptoken(offset: int) -> str:
    """An opaque `$skiptoken` for ``offset`` (salted, so clients cannot treat it as a number)."""
    raw = json.dumps({"o": offset, "s": secrets.token_hex(4)}).encode()
    return "RFNwdAIAAQAAAD" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_skiptoken(token: str) -> int:
    """The offset inside a token made by :func:`encode_skiptoken`.

    Raises:
        GraphError: 400 when the token is not one of ours.
    """
    try:
        body = token.removeprefix("RFNwdAIAAQAAAD")
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        offset = int(json.loads(raw)["o"])
    except (ValueError, KeyError, TypeError) as exc:
        raise GraphError(400, "BadRequest", "The $skiptoken is invalid.") from exc
    return max(offset, 0)


def _split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside parentheses and quotes."""
    parts: list[str] = []
    depth, quoted, start = 0, False, 0
    for i, ch in enumerate(text):
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        elif not quoted and depth == 0 and text.startswith(sep, i):
            parts.append(text[start:i])
            start = i + len(sep)
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def parse_expand(text: str | None) -> dict[str, dict[str, str]]:
    """Parse ``$expand`` into ``{navigation: {nested option: value}}``."""
    result: dict[str, dict[str, str]] = {}
    if not text:
        return result
    for part in _split_top(text, ","):
        m = re.fullmatch(r"([\w.]+)\s*(?:\((.*)\))?", part, re.S)
        if not m:
            raise GraphError(400, "BadRequest", f"Invalid $expand clause '{part}'.")
        options: dict[str, str] = {}
        for opt in _split_top(m.group(2) or "", ";"):
            key, _, value = opt.partition("=")
            options[key.strip()] = value.strip()
        result[m.group(1)] = options
    return result


def select_fields(item: Item, select: list[str] | None, *, keep_id: bool = False,
                  expanded: Iterable[str] = ()) -> Item:
    """Apply ``$select`` (``@odata.type`` survives so derived types stay recognisable).

    ``keep_id``: Intune returns the key even when ``$select`` leaves it out, and clients that match
    batched answers by ``id`` depend on it. ``expanded``: navigations named in ``$expand`` are answered
    whether or not ``$select`` names them, as OData has it.
    """
    if not select:
        return item
    kept = set(select) | {"@odata.type"} | ({"id"} if keep_id else set())
    for nav in expanded:
        kept |= {nav, f"{nav}@odata.context"}
    return {k: v for k, v in item.items() if k in kept}


_CLAUSES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"not\s+isof\('([\w.]+)'\)", re.I), "notisof"),
    (re.compile(r"isof\('([\w.]+)'\)", re.I), "isof"),
    (re.compile(r"(\w+)\s+eq\s+'((?:[^']|'')*)'", re.I), "eqstr"),
    (re.compile(r"(\w+)\s+eq\s+(true|false|null|-?\d+)", re.I), "eqlit"),
    (re.compile(r"(\w+)\s+ne\s+'((?:[^']|'')*)'", re.I), "nestr"),
    (re.compile(r"startswith\((\w+)\s*,\s*'((?:[^']|'')*)'\)", re.I), "startswith"),
]


def _literal(text: str) -> Any:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "null":
        return None
    return int(text)


def _clause(text: str) -> Callable[[Item], bool]:
    for pattern, kind in _CLAUSES:
        m = pattern.fullmatch(text.strip())
        if not m:
            continue
        if kind in ("isof", "notisof"):
            wanted = "#" + m.group(1)
            if kind == "isof":
                return lambda it: it.get("@odata.type") == wanted
            return lambda it: it.get("@odata.type") != wanted
        prop, raw = m.group(1), m.group(2)
        if kind == "eqstr":
            value = raw.replace("''", "'")
            return lambda it: it.get(prop) == value
        if kind == "nestr":
            value = raw.replace("''", "'")
            return lambda it: it.get(prop) != value
        if kind == "startswith":
            prefix = raw.replace("''", "'").lower()
            return lambda it: str(it.get(prop) or "").lower().startswith(prefix)
        lit = _literal(raw)
        return lambda it: it.get(prop) == lit
    raise GraphError(400, "BadRequest", f"Invalid filter clause: '{text}' is not supported.")


def parse_filter(text: str | None) -> Callable[[Item], bool] | None:
    """Compile the small ``$filter`` subset Intune tools use (``eq``, ``isof``, ``and``/``or``).

    Raises:
        GraphError: 400 for anything outside the subset, as Graph does for unsupported filters.
    """
    if not text:
        return None
    ors = [_split_top(part, " and ") for part in _split_top(text, " or ")]
    compiled = [[_clause(c) for c in ands] for ands in ors]
    return lambda it: any(all(c(it) for c in ands) for ands in compiled)


def new_id() -> str:
    """A new server-assigned GUID."""
    return str(uuid.uuid4())
