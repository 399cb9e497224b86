"""Test helpers for webhooks: an Adaptive Card checker against the pinned 1.4 rules, an inline executor,
and a loopback receiver that records (or refuses) deliveries."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = ["InlineExecutor", "Received", "Receiver", "adaptive_card_errors"]

_RULES = json.loads((Path(__file__).parent / "fixtures" / "adaptive_card_1_4_rules.json").read_text())


def adaptive_card_errors(message: dict[str, Any]) -> list[str]:
    """What is wrong with a Teams workflow message and its Adaptive Card, by the pinned 1.4 rules."""
    errors: list[str] = []
    envelope = _RULES["envelope"]
    if message.get("type") != envelope["type"]:
        errors.append("message type is not 'message'")
    attachments = message.get("attachments")
    if not isinstance(attachments, list) or len(attachments) != 1:
        return [*errors, "a message holds exactly one attachment"]
    attachment = attachments[0]
    errors += [f"attachment lacks {k}" for k in envelope["attachment_required"] if k not in attachment]
    if attachment.get("contentType") != envelope["contentType"]:
        errors.append("attachment is not an Adaptive Card")
    card = attachment.get("content") or {}
    rules = _RULES["card"]
    errors += [f"card lacks {k}" for k in rules["required"] if k not in card]
    errors += [f"card has unknown property {k}" for k in card if k not in rules["allowed"]]
    if card.get("type") != "AdaptiveCard":
        errors.append("card type is not AdaptiveCard")
    if card.get("version") not in rules["versions"]:
        errors.append("card version is not one Teams renders")
    for element in card.get("body", []):
        errors += _element_errors(element)
    for action in card.get("actions", []):
        spec = _RULES["actions"].get(action.get("type"))
        if spec is None:
            errors.append(f"unknown action {action.get('type')}")
            continue
        errors += [f"{action['type']} lacks {k}" for k in spec["required"] if not action.get(k)]
        errors += [f"{action['type']} has unknown {k}" for k in action if k not in spec["allowed"]]
    return errors


def _element_errors(element: dict[str, Any]) -> list[str]:
    kind = element.get("type")
    spec = _RULES["elements"].get(kind)
    if spec is None:
        return [f"unknown element {kind}"]
    errors = [f"{kind} lacks {k}" for k in spec["required"] if k not in element]
    allowed = set(spec["allowed"]) | set(_RULES["common_element"])
    errors += [f"{kind} has unknown {k}" for k in element if k not in allowed]
    for name, values in _RULES["enums"].items():
        if name in element and element[name] not in values:
            errors.append(f"{kind}.{name} {element[name]!r} is not one of {values}")
    errors += [f"{kind}.{k} is not a string" for k in spec.get("strings", [])
               if not isinstance(element.get(k), str)]
    errors += [f"{kind}.{k} is not a boolean" for k in spec.get("booleans", [])
               if k in element and not isinstance(element[k], bool)]
    if kind == "FactSet":
        fact_rules = _RULES["fact"]
        for fact in element.get("facts", []):
            errors += [f"fact lacks {k}" for k in fact_rules["required"] if not isinstance(fact.get(k), str)]
            errors += [f"fact has unknown {k}" for k in fact if k not in fact_rules["allowed"]]
    return errors


class InlineExecutor(Executor):
    """Runs each submitted call at once, on the caller's thread (deterministic unit tests)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the future, as a pool would
            future.set_exception(exc)
        return future


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A loopback HTTP receiver standing in for a Power Automate trigger; ``status`` is what it answers."""

    status: int = 200
    retry_after: str | None = None
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = receiver.status
                if 200 <= status < 300:
                    receiver.received.append(Received(self.path, dict(self.headers.items()), body))
                self.send_response(status)
                if receiver.retry_after is not None and status >= 400:
                    self.send_header("Retry-After", receiver.retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
