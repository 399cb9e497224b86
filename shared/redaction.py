"""One redaction function for logs and for stored error messages.

Anything that may carry a credential passes through :func:`redact` before it is logged, stored on a run or
item, or returned to a caller: bearer tokens, JWTs, client secrets and assertions, authorization headers,
SAS signatures, function keys, account keys and PEM blocks.
"""

from __future__ import annotations

import logging
import re

__all__ = ["REDACTED", "RedactingFilter", "redact"]

REDACTED = "[REDACTED]"
MAX_MESSAGE_CHARS = 500

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # PEM blocks (private keys, certificates).
    (re.compile(r"-----BEGIN [A-Z ]+-----.*?(-----END [A-Z ]+-----|$)", re.S), REDACTED),
    # Authorization headers and bearer tokens, in any quoting.
    (re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(bearer\s+|basic\s+)?[^\s\"',;}]+"),
     r"\1" + REDACTED),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]+=*"), "Bearer " + REDACTED),
    # JWT-shaped strings (header.payload.signature, base64url).
    (re.compile(r"\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"), REDACTED),
    # Secret-bearing key=value pairs in query strings, form bodies, JSON and connection strings.
    (re.compile(
        r"(?i)([\"']?\b(client_secret|client_assertion|clientsecret|secret|password|passwd|"
        r"access_token|refresh_token|id_token|token|sig|code|accountkey|sharedaccesskey|"
        r"x-functions-key|x-ms-client-principal|apikey|api_key)\b[\"']?\s*[=:]\s*[\"']?)"
        r"[^\s&\"',;}]+"),
     r"\1" + REDACTED),
]


def redact(text: str | None, *, limit: int | None = MAX_MESSAGE_CHARS) -> str:
    """Remove credentials from ``text`` and cap its length.

    Args:
        text: any message, possibly containing tokens, secrets or signed URLs.
        limit: maximum length of the result (``None`` for no cap).

    Returns:
        The message with every credential replaced by ``[REDACTED]``.
    """
    if not text:
        return ""
    out = text
    for pattern, replacement in _PATTERNS:
        out = pattern.sub(replacement, out)
    if limit is not None and len(out) > limit:
        out = out[: limit - 1] + "…"
    return out


class RedactingFilter(logging.Filter):
    """Logging filter that redacts the rendered message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Render the record, redact it, and keep it."""
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must not break logging
            message = str(record.msg)
        record.msg = redact(message, limit=None)
        record.args = None
        # Tracebacks carry exception texts (URLs with signatures, echoed headers): render and redact them
        # here, since formatters print exc_info and stack_info verbatim.
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text, limit=None)
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text, limit=None)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, limit=None)
        return True
