"""Offline model of the Bicep templates under ``infra/``, built with ``pycep-parser``.

Every ``.bicep`` file is parsed once; a syntax error becomes :class:`BicepSyntaxError` whose message
starts with ``infra/<file>:<line>:<column>``. Checks report problems as ``infra/<file>:<line>: <problem>``
so a failing CI run points at the line to fix. pycep gives line numbers for top-level elements only, so a
property's line is found by searching the element's lines for ``<key>:``.

A deliberately small evaluator resolves what the checks need: variable and parameter names, ``==``, ``?:``,
``union()`` and object literals. Anything else stays an :class:`Expr` (rendered back to Bicep-like text).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from lark.exceptions import UnexpectedInput
from pycep import BicepParser

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA_ROOT = REPO_ROOT / "infra"

_PARSER = BicepParser(add_line_numbers=True)


class BicepSyntaxError(ValueError):
    """A ``.bicep`` file does not parse; the message names the file, line and column."""


@dataclass(frozen=True)
class Ref:
    """A reference to a parameter (or anything the evaluator leaves symbolic), e.g. ``identityClientId``."""

    name: str


@dataclass(frozen=True)
class Expr:
    """An expression the evaluator does not compute (function call, property access, lambda...)."""

    text: str
    raw: Any = field(compare=False, repr=False)


def unquote(key: str) -> str:
    """An object key without the quotes Bicep needs for keys like ``'azd-service-name'``."""
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == "'" else key


def expr_text(node: Any) -> str:
    """Render a pycep expression node back to compact Bicep-like text (for messages and matching)."""
    if isinstance(node, str):
        return node
    if node is None:
        return "null"
    if isinstance(node, bool):
        return "true" if node else "false"
    if isinstance(node, int | float):
        return str(node)
    if isinstance(node, list):
        return "[" + ", ".join(expr_text(n) for n in node) + "]"
    if isinstance(node, dict):
        if "operator" in node:
            op = node["operator"]
            operands = list(op.get("operands", {}).values())
            kind = op.get("type")
            if kind == "property_accessor":
                return f"{expr_text(operands[0])}.{expr_text(operands[1])}"
            if kind == "conditional":
                return f"{expr_text(operands[0])} ? {expr_text(operands[1])} : {expr_text(operands[2])}"
            symbols = {"equals": "==", "not_equals": "!=", "and_op": "&&", "or_op": "||", "add": "+"}
            if kind in symbols and len(operands) == 2:
                return f"{expr_text(operands[0])} {symbols[kind]} {expr_text(operands[1])}"
            if kind == "not_op":
                return f"!{expr_text(operands[0])}"
            return f"{kind}({', '.join(expr_text(o) for o in operands)})"
        if "function" in node:
            fn = node["function"]
            args = [expr_text(a) for a in fn.get("parameters", {}).values() if a is not None]
            return f"{fn.get('type')}({', '.join(args)})"
        if node.get("type") == "lambda_expression":
            detail = node.get("detail", {})
            return f"{detail.get('var_1')} => {expr_text(detail.get('expression'))}"
        return "{" + ", ".join(f"{k}: {expr_text(v)}" for k, v in node.items()) + "}"
    return repr(node)


@dataclass(frozen=True)
class BicepFile:
    """One parsed template."""

    path: Path
    rel: str
    text: str
    doc: dict[str, Any]

    @cached_property
    def lines(self) -> list[str]:
        """The file's lines (index 0 is line 1)."""
        return self.text.splitlines()

    def section(self, name: str) -> dict[str, Any]:
        """A top-level section (``parameters``, ``variables``, ``resources``, ``modules``, ``outputs``)."""
        items = self.doc.get(name, {})
        return {k: v for k, v in items.items() if not k.startswith("__")}

    @property
    def parameters(self) -> dict[str, Any]:
        """Parameters by name."""
        return self.section("parameters")

    @property
    def variables(self) -> dict[str, Any]:
        """Variables by name."""
        return self.section("variables")

    @property
    def modules(self) -> dict[str, Any]:
        """Modules by symbolic name."""
        return self.section("modules")

    @property
    def outputs(self) -> dict[str, Any]:
        """Outputs by name."""
        return self.section("outputs")

    @cached_property
    def resources(self) -> list[Resource]:
        """Resources declared in this file, in order."""
        return [Resource(self, symbol, element) for symbol, element in self.section("resources").items()]

    def line_of(self, element: Mapping[str, Any], key: str | None = None) -> int:
        """Line of ``element`` (a parsed top-level element), or of ``key:`` inside it when given."""
        start = int(element.get("__start_line__", 1))
        end = int(element.get("__end_line__", start))
        if key is not None:
            pattern = re.compile(rf"^\s*'?{re.escape(key)}'?\s*:")
            for number in range(start, end + 1):
                if number - 1 < len(self.lines) and pattern.search(self.lines[number - 1]):
                    return number
        return start

    def where(self, element: Mapping[str, Any], key: str | None = None) -> str:
        """``infra/<file>:<line>`` of ``element`` (or of ``key`` inside it)."""
        return f"{self.rel}:{self.line_of(element, key)}"

    def evaluate(self, node: Any, scope: Mapping[str, Any] | None = None, _depth: int = 0) -> Any:
        """Evaluate the subset of Bicep the checks rely on.

        Args:
            node: A pycep expression node.
            scope: Values of parameters (others become :class:`Ref`).

        Returns:
            Python values for literals, objects, ``==``, ``?:`` and ``union()``; :class:`Ref` for parameters;
            :class:`Expr` for anything else.
        """
        scope = scope or {}
        if _depth > 50:
            raise RecursionError(f"{self.rel}: variables refer to each other in a loop")
        depth = _depth + 1
        if isinstance(node, str):
            if node in scope:
                return scope[node]
            if node in self.variables:
                return self.evaluate(self.variables[node]["value"], scope, depth)
            if node in self.parameters:
                return Ref(node)
            return node
        if isinstance(node, list):
            return [self.evaluate(n, scope, depth) for n in node]
        if not isinstance(node, dict):
            return node
        if "operator" in node:
            op = node["operator"]
            operands = list(op.get("operands", {}).values())
            if op.get("type") == "equals":
                left, right = (self.evaluate(o, scope, depth) for o in operands)
                if isinstance(left, Ref | Expr) or isinstance(right, Ref | Expr):
                    return Expr(expr_text(node), node)
                return left == right
            if op.get("type") == "conditional":
                condition = self.evaluate(operands[0], scope, depth)
                if isinstance(condition, bool):
                    return self.evaluate(operands[1 if condition else 2], scope, depth)
            return Expr(expr_text(node), node)
        if "function" in node:
            fn = node["function"]
            if fn.get("type") == "union":
                merged: dict[str, Any] = {}
                for arg in fn.get("parameters", {}).values():
                    value = self.evaluate(arg, scope, depth)
                    if isinstance(value, dict):
                        merged.update(value)
                    else:
                        merged.setdefault("__dynamic__", []).append(value)
                return merged
            return Expr(expr_text(node), node)
        if node.get("type") == "lambda_expression":
            return Expr(expr_text(node), node)
        return {unquote(k): self.evaluate(v, scope, depth) for k, v in node.items() if not k.startswith("__")}


@dataclass(frozen=True)
class Resource:
    """One ``resource`` declaration (possibly conditional)."""

    file: BicepFile
    symbol: str
    element: dict[str, Any]

    @property
    def type(self) -> str:
        """Resource type without API version, e.g. ``Microsoft.Web/sites``."""
        return str(self.element.get("type", ""))

    @property
    def existing(self) -> bool:
        """Whether this is an ``existing`` reference rather than a deployed resource."""
        return bool(self.element.get("existing"))

    @property
    def condition(self) -> Any:
        """The ``if (...)`` condition node, or None."""
        config = self.element.get("config", {})
        return config.get("condition") if _is_conditional(config) else None

    @property
    def body(self) -> dict[str, Any]:
        """The resource body (``name``, ``properties``, ...)."""
        config = self.element.get("config", {})
        return dict(config["config"]) if _is_conditional(config) else dict(config)

    @property
    def name(self) -> Any:
        """The ``name`` expression (a string for literal names)."""
        return self.body.get("name")

    @property
    def properties(self) -> dict[str, Any]:
        """The ``properties`` object (empty when absent or computed)."""
        value = self.body.get("properties", {})
        return value if isinstance(value, dict) else {}

    def where(self, key: str | None = None) -> str:
        """``infra/<file>:<line>`` of this resource or of ``key`` inside it."""
        return self.file.where(self.element, key)

    def __str__(self) -> str:
        return f"resource {self.symbol} '{self.type}' ({self.where()})"


def _is_conditional(config: Mapping[str, Any]) -> bool:
    return set(config) == {"condition", "config"}


@dataclass(frozen=True)
class Infra:
    """All templates of one ``infra/`` folder."""

    root: Path
    files: dict[str, BicepFile]

    @property
    def main(self) -> BicepFile:
        """``infra/main.bicep``."""
        return self.file("main.bicep")

    def file(self, relative_to_root: str) -> BicepFile:
        """A file by its path relative to the ``infra`` folder, e.g. ``app/api.bicep``."""
        return self.files[f"{self.root.name}/{relative_to_root}"]

    def resources(self, type_: str | None = None, *, include_existing: bool = False) -> Iterator[Resource]:
        """Every resource in every file, optionally of one type (case-insensitive)."""
        for bicep in self.files.values():
            for resource in bicep.resources:
                if resource.existing and not include_existing:
                    continue
                if type_ is None or resource.type.lower() == type_.lower():
                    yield resource

    def only(self, type_: str, name: str | None = None) -> Resource:
        """The one deployed resource of a type (and literal name); fails loudly otherwise."""
        found = [r for r in self.resources(type_) if name is None or r.name == name]
        if len(found) != 1:
            where = ", ".join(str(r) for r in found) or "none"
            label = f"{type_}" + (f" named {name!r}" if name else "")
            raise AssertionError(f"expected exactly one {label} under {self.root}, found: {where}")
        return found[0]


@lru_cache(maxsize=64)
def _parse_text(text: str) -> dict[str, Any]:
    # Broken copies differ from the real templates in one file only: parse every distinct text once.
    return dict(_PARSER.parse(text=text))


def _unterminated_string(text: str) -> tuple[int, int] | None:
    """Line and column of the first single-quoted string left open at the end of its line, if any."""
    in_block_comment = False
    in_multiline = False
    for number, line in enumerate(text.splitlines(), 1):
        index, opened = 0, None
        while index < len(line):
            if in_block_comment:
                end = line.find("*/", index)
                if end < 0:
                    break
                in_block_comment, index = False, end + 2
            elif in_multiline:
                end = line.find("'''", index)
                if end < 0:
                    break
                in_multiline, index = False, end + 3
            elif opened is not None:
                if line[index] == "\\":
                    index += 2
                    continue
                if line[index] == "'":
                    opened = None
                index += 1
            elif line.startswith("//", index):
                break
            elif line.startswith("/*", index):
                in_block_comment, index = True, index + 2
            elif line.startswith("'''", index):
                in_multiline, index = True, index + 3
            elif line[index] == "'":
                opened, index = index, index + 1
            else:
                index += 1
        if opened is not None:
            return number, opened + 1
    return None


def parse_file(path: Path, root: Path) -> BicepFile:
    """Parse one template.

    Args:
        path: The ``.bicep`` file.
        root: The ``infra`` folder (messages name files relative to its parent).

    Returns:
        The parsed file.

    Raises:
        BicepSyntaxError: The file does not parse; the message starts with ``infra/<file>:<line>:<column>``.
    """
    rel = path.relative_to(root.parent).as_posix()
    text = path.read_text(encoding="utf-8")
    try:
        doc = copy.deepcopy(_parse_text(text))
    except UnexpectedInput as error:
        # A string cannot span lines in Bicep, but the lexer only notices at the next quote, often many lines
        # later: point at the line that opened the string instead.
        unterminated = _unterminated_string(text)
        if unterminated is not None:
            line, column = unterminated
            raise BicepSyntaxError(f"{rel}:{line}:{column}: string is not closed on its line") from error
        first = str(error).strip().splitlines()[0]
        raise BicepSyntaxError(f"{rel}:{error.line}:{error.column}: {first}") from error
    except ValueError as error:
        # pycep's own pre-check (an unbalanced ''' multi-line string) carries no position: use the last one.
        marks = [n for n, line in enumerate(text.splitlines(), 1) if "'''" in line]
        line = marks[-1] if marks else 1
        raise BicepSyntaxError(f"{rel}:{line}:1: {error}") from error
    return BicepFile(path=path, rel=rel, text=text, doc=doc)


def load_infra(root: Path = INFRA_ROOT) -> Infra:
    """Parse every ``.bicep`` file under ``root``.

    Raises:
        BicepSyntaxError: For the first file that does not parse.
        AssertionError: ``root`` holds no ``main.bicep``.
    """
    files = {}
    for path in sorted(root.rglob("*.bicep")):
        parsed = parse_file(path, root)
        files[parsed.rel] = parsed
    if f"{root.name}/main.bicep" not in files:
        raise AssertionError(f"{root}/main.bicep is missing")
    return Infra(root=root, files=files)
