"""Route templates of HTTP-triggered functions, matched the way the Functions host matches them.

Supported: literal segments (case-insensitive), ``{x}``, optional ``{x?}``, constraints
``{x:int}``, ``{x:guid}``, ``{x:alpha}``, ``{x:bool}`` and a trailing catch-all ``{*rest}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

__all__ = ["RouteError", "RouteTemplate"]

_CONSTRAINTS = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "guid": r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}",
    "alpha": r"[A-Za-z]+",
    "bool": r"(?i:true|false)",
}
_PARAM = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z]+))?(\?)?\}")


class RouteError(ValueError):
    """A route template cannot be parsed."""


@dataclass
class RouteTemplate:
    """A compiled route template."""

    template: str
    pattern: re.Pattern[str] = field(init=False)
    literal_segments: int = field(init=False, default=0)
    parameters: int = field(init=False, default=0)
    catch_all: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        regex = ""
        segments = [s for s in self.template.strip("/").split("/") if s]
        for index, segment in enumerate(segments):
            whole = _PARAM.fullmatch(segment)
            if whole and (whole.group(1) or whole.group(4)):
                star, name, constraint, _ = whole.groups()
                if star and index != len(segments) - 1:
                    raise RouteError(f"{self.template}: a catch-all must be the last segment")
                value = ".*" if star else self._constraint(constraint)
                # An absent optional or catch-all segment also drops its leading slash.
                regex += f"(?:/(?P<{name}>{value}))?"
                self.parameters += 1
                self.catch_all = self.catch_all or bool(star)
                continue
            regex += "/" + self._segment(segment)
        self.pattern = re.compile("^" + regex + "/?$")

    def _constraint(self, constraint: str | None) -> str:
        if constraint is None:
            return "[^/]+"
        try:
            return _CONSTRAINTS[constraint.lower()]
        except KeyError:
            raise RouteError(f"{self.template}: unsupported constraint {constraint!r}") from None

    def _segment(self, segment: str) -> str:
        out = ""
        position = 0
        literal = True
        for match in _PARAM.finditer(segment):
            out += _literal(segment[position:match.start()])
            star, name, constraint, optional = match.groups()
            if star or optional:
                raise RouteError(f"{self.template}: {match.group(0)} must be a whole segment")
            out += f"(?P<{name}>{self._constraint(constraint)})"
            self.parameters += 1
            literal = False
            position = match.end()
        out += _literal(segment[position:])
        if literal:
            self.literal_segments += 1
        return out

    @property
    def sort_key(self) -> tuple[int, int, int]:
        """More specific templates first: literals, then fewer parameters, catch-alls last."""
        return (int(self.catch_all), -self.literal_segments, self.parameters)

    def match(self, path: str) -> dict[str, str] | None:
        """Match a path relative to the route prefix; return the route parameters or None."""
        found = self.pattern.match("/" + path.strip("/") if path.strip("/") else "")
        if found is None:
            return None
        return {k: unquote(v) for k, v in found.groupdict().items() if v is not None}


def _literal(text: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in text)
