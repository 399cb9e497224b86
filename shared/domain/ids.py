"""Identifier helpers: time-ordered run ids and their lexicographic inversion for newest-first keys."""

from __future__ import annotations

import secrets
from datetime import datetime

__all__ = ["CROCKFORD", "RUN_ID_PREFIX", "invert_sortable", "new_run_id", "new_ulid", "run_id_time"]

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_INDEX = {c: i for i, c in enumerate(CROCKFORD)}
RUN_ID_PREFIX = "run_"
_TIME_CHARS = 10
_RANDOM_CHARS = 16


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(CROCKFORD[rem])
    return "".join(reversed(chars))


def new_ulid(now: datetime) -> str:
    """Return a 26-character ULID-like string: 48-bit millisecond time, then 80 random bits.

    Args:
        now: the creation time (aware).

    Returns:
        Crockford base32 text that sorts by creation time, then randomly within a millisecond.
    """
    millis = int(now.timestamp() * 1000)
    return _encode(millis, _TIME_CHARS) + _encode(secrets.randbits(80), _RANDOM_CHARS)


def new_run_id(now: datetime) -> str:
    """Return a new run id, ``run_`` plus a ULID-like value (time-ordered, unguessable).

    The id doubles as the Durable orchestration instance id, so it must be unique and safe in URLs and
    Table keys (Crockford base32 has neither ``/`` nor ``#``).
    """
    return RUN_ID_PREFIX + new_ulid(now)


def run_id_time(run_id: str) -> int:
    """Return the creation time encoded in a run id, in milliseconds since the epoch."""
    body = run_id.removeprefix(RUN_ID_PREFIX)[:_TIME_CHARS]
    value = 0
    for char in body:
        value = value * 32 + _INDEX[char]
    return value


def invert_sortable(value: str) -> str:
    """Map each Crockford character to its mirror so ascending key order becomes newest first.

    Table Storage only returns rows in ascending ``RowKey`` order; storing the inverted id gives
    "newest first" listings without a secondary index. The mapping is its own inverse.

    Raises:
        ValueError: when ``value`` contains a character outside the Crockford alphabet.
    """
    try:
        return "".join(CROCKFORD[31 - _INDEX[c]] for c in value)
    except KeyError as exc:
        raise ValueError("not a Crockford base32 value") from exc
