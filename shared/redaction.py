"""One redaction function for logs and for stored error messages.

Anything that may carry a credential passes through :func:`redact` before it is logged, stored on a run or
item, or returned to a caller: bearer tokens, JWTs, client secrets and assertions, authorization headers,
SAS signatures, function keys, account keys and PEM blocks.

Logs are redacted where records are made (:func:`install_log_redaction`), not where they are written: a
handler added after start-up (the Azure Monitor OpenTelemetry exporter, the Functions worker's own handler)
and records from any logger then only ever see redacted text.
"""

from __future__ import annotations

import logging
import re
import weakref
from typing import Any, cast

__all__ = ["REDACTED", "RedactedException", "RedactingFilter", "install_log_redaction", "redact",
           "redact_record"]

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


class RedactedException(Exception):
    """Stands in for a logged exception: the original's type name, frames and chain, with redacted text.

    Handlers and exporters render ``exc_info`` themselves (OpenTelemetry turns it into the exception type,
    message and stack trace that Application Insights shows), so the record keeps an exception, just not one
    that can print a credential.
    """


# Exceptions chained deeper than this are dropped from the stand-in (chains can even be cyclic).
_MAX_CHAIN = 8
_UNREDACTABLE = "[a log record could not be redacted]"


_STAND_IN_TYPES: weakref.WeakKeyDictionary[type[BaseException], type[RedactedException]] = (
    weakref.WeakKeyDictionary())


def _stand_in_type(original: type[BaseException]) -> type[RedactedException]:
    known = _STAND_IN_TYPES.get(original)
    if known is None:
        # Same name and module as the original, so "shared.errors.AppError: ..." still reads as it did.
        attributes = {"__module__": original.__module__, "__qualname__": original.__qualname__}
        known = cast(type[RedactedException], type(original.__name__, (RedactedException,), attributes))
        _STAND_IN_TYPES[original] = known
    return known


def _stand_in(exc: BaseException, depth: int = 0) -> RedactedException:
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - an exception whose __str__ fails is still logged
        text = f"<unprintable {type(exc).__name__}>"
    stand_in = _stand_in_type(type(exc))(redact(text, limit=None))
    # Frames only name files, lines and functions; message text lives on the exception, never the frame.
    stand_in.__traceback__ = exc.__traceback__
    if depth < _MAX_CHAIN:
        if exc.__cause__ is not None:
            stand_in.__cause__ = _stand_in(exc.__cause__, depth + 1)
        if exc.__context__ is not None:
            stand_in.__context__ = _stand_in(exc.__context__, depth + 1)
    stand_in.__suppress_context__ = exc.__suppress_context__
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list):
        stand_in.__notes__ = [redact(str(note), limit=None) for note in notes]
    return stand_in


def redact_record(record: logging.LogRecord) -> None:
    """Redact a log record in place: its rendered message, its exception and its stack text.

    The message is rendered with its arguments first (a secret is as likely in ``args`` as in ``msg``), and
    the exception is replaced by a :class:`RedactedException` stand-in with the same traceback frames. Fields
    passed with ``extra=`` are set by the caller after the record is made and are not redacted: keep them
    structured (ids, counts), never free text.

    Args:
        record: the record; after the call ``args`` is empty and no field holds an unredacted credential.
    """
    try:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must not break logging
            message = str(record.msg)
        record.msg = redact(message, limit=None)
        record.args = ()
        if record.exc_info and record.exc_info[1] is not None:
            if not isinstance(record.exc_info[1], RedactedException):  # else redacted already (a filter)
                stand_in = _stand_in(record.exc_info[1])
                record.exc_info = (type(stand_in), stand_in, record.exc_info[2])
            # Formatters print exc_text verbatim when it is set, so it is rendered from the stand-in here.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info), limit=None)
        elif record.exc_text:
            record.exc_text = redact(record.exc_text, limit=None)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, limit=None)
    except Exception:  # noqa: BLE001 - fail closed: a record that cannot be redacted says nothing
        record.msg, record.args = _UNREDACTABLE, ()
        record.exc_info, record.exc_text, record.stack_info = None, None, None


class RedactingFilter(logging.Filter):
    """Logging filter that redacts every record it sees (for records made before redaction was installed)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record and keep it."""
        redact_record(record)
        return True


def install_log_redaction() -> None:
    """Redact every log record as it is made, for every logger and every handler, present or added later.

    Wraps the process's log record factory, so the record that any handler, filter or exporter receives is
    already redacted, whichever logger made it. Installing twice does nothing.
    """
    current = logging.getLogRecordFactory()
    if getattr(current, "redacts_records", False):
        return

    def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        redact_record(record)
        return record

    redacting_factory.redacts_records = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting_factory)
