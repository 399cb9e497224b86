"""The normal form of a captured policy: what two captures of an unchanged policy have in common.

Graph changes some properties on its own (timestamps, versions, ``@odata`` annotations, counters derived from
other properties) and returns collections in no guaranteed order, so the raw bodies of two captures of an
untouched policy can differ. The normal form removes those properties and sorts those collections; its hash
tells whether a policy changed between two backups.

What counts as a collection without order comes from the policy catalog (the sub-collections and expansions
it reads, and assignments); the caller passes it in, so this module stays free of Graph specifics.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["NormalForm", "canonical_text", "normalise", "normalised_hash"]


@dataclass(frozen=True)
class NormalForm:
    """Which properties a normal form drops and which collections it sorts.

    Attributes:
        drop_everywhere: properties removed at every depth (timestamps and versions the service stamps).
        drop_top_level: properties removed from the policy object itself (its id, read-only counters and
            display fields the service computes).
        unordered: properties whose arrays Graph returns in no guaranteed order; their elements are
            sorted, and an element's own ``id`` (assigned by the service, not chosen by the admin) dropped.
        unordered_scalars: properties holding sets of plain values (scope tag ids), sorted as they are.
    """

    drop_everywhere: frozenset[str]
    drop_top_level: frozenset[str]
    unordered: frozenset[str]
    unordered_scalars: frozenset[str] = frozenset()


def _is_annotation(key: str) -> bool:
    """``@odata.context``, ``settings@odata.count``, ``@odata.etag``...: every annotation but the type."""
    return "@odata." in key and key != "@odata.type"


def canonical_text(value: Any) -> str:
    """One spelling of a JSON value: sorted keys, no whitespace."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def normalise(body: Mapping[str, Any], form: NormalForm) -> dict[str, Any]:
    """The normal form of a captured policy body (a new object; ``body`` is not changed)."""
    top = _object(body, form)
    return {key: value for key, value in top.items() if key not in form.drop_top_level}


def normalised_hash(body: Mapping[str, Any], form: NormalForm) -> str:
    """SHA-256 (hex) of the canonical text of the normal form."""
    return hashlib.sha256(canonical_text(normalise(body, form)).encode("utf-8")).hexdigest()


def _object(value: Mapping[str, Any], form: NormalForm) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key in form.drop_everywhere or _is_annotation(key):
            continue
        if isinstance(item, list) and key in form.unordered:
            out[key] = _unordered(item, form)
        elif isinstance(item, list) and key in form.unordered_scalars:
            out[key] = sorted((_value(v, form) for v in item), key=canonical_text)
        else:
            out[key] = _value(item, form)
    return out


def _unordered(items: list[Any], form: NormalForm) -> list[Any]:
    elements = []
    for element in items:
        normal = _value(element, form)
        if isinstance(normal, dict):
            normal.pop("id", None)
        elements.append(normal)
    return sorted(elements, key=canonical_text)


def _value(value: Any, form: NormalForm) -> Any:
    if isinstance(value, Mapping):
        return _object(value, form)
    if isinstance(value, list):
        # Arrays inside a setting's value keep their order: it can be the admin's choice.
        return [_value(v, form) for v in value]
    return value
