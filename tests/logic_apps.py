"""A small stand-in for the Logic Apps runtime, enough to run our sample workflow definitions in tests.

It runs a workflow definition's ``Http`` actions the way a stateful Logic Apps workflow does (documented
behaviour, see ``../shared/reference/ecosystem.md`` section 1):

* actions run in ``runAfter`` order; an action whose predecessors ended in a status it does not list is
  ``Skipped``;
* the asynchronous pattern: a ``202 Accepted`` with ``Location`` is followed with GETs of that URL (with the
  same authentication), waiting ``Retry-After`` seconds between polls, until an answer other than 202; that
  answer is the action's output;
* the retry policy: 408, 429 and 5xx answers (and lost answers) are retried up to ``count`` times, waiting
  ``Retry-After`` when given, else the policy's interval;
* expressions: ``@...`` (typed) and ``@{...}`` (string interpolation) with ``parameters()``, ``workflow()``,
  ``utcNow()``, ``body()`` and ``outputs()``, and ``?['key']`` / ``['key']`` / ``.key`` member access.

A managed identity token is whatever ``token_for(audience)`` returns (the test mints one at the local Entra).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

RETRIED_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))
DEFAULT_POLL_SECONDS = 20.0  # what Logic Apps waits between polls when no Retry-After is given


class ExpressionError(ValueError):
    """An expression this stand-in does not understand (or that names something undefined)."""


@dataclass
class HttpExchange:
    """One request an action sent and what came back (``status`` 0: the answer was lost)."""

    action: str
    method: str
    url: str
    headers: dict[str, str]
    body: Any
    status: int
    response_headers: dict[str, str]
    response_body: Any
    sent_at: float


@dataclass
class WorkflowRun:
    """One run of a workflow definition."""

    definition: dict[str, Any]
    parameters: dict[str, Any]
    run_name: str
    token_for: Callable[[str], str]
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30.0))
    # Retry-policy intervals are multiplied by this (Retry-After and poll waits are honoured as sent).
    interval_scale: float = 1.0
    # Actions whose first answer is lost (sent and processed, then a timeout for the caller).
    lose_first_answer_of: frozenset[str] = frozenset()
    max_wait_seconds: float = 300.0
    statuses: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    exchanges: list[HttpExchange] = field(default_factory=list)

    # ------------------------------------------------------------------------------------------- running

    def run(self) -> dict[str, str]:
        """Run every action; returns each action's status."""
        actions: dict[str, Any] = self.definition["actions"]
        pending = list(actions)
        while pending:
            ready = [name for name in pending
                     if all(dep in self.statuses for dep in actions[name].get("runAfter", {}))]
            if not ready:
                raise ExpressionError(f"runAfter cycle or unknown predecessor among {pending}")
            for name in ready:
                pending.remove(name)
                action = actions[name]
                wanted = action.get("runAfter", {})
                if all(self.statuses[dep] in allowed for dep, allowed in wanted.items()):
                    self.statuses[name] = self._run_action(name, action)
                else:
                    self.statuses[name] = "Skipped"
        return self.statuses

    def _run_action(self, name: str, action: dict[str, Any]) -> str:
        if action["type"] != "Http":
            raise ExpressionError(f"{name}: only Http actions are supported, not {action['type']}")
        inputs = self.evaluate(action["inputs"])
        headers = {k: str(v) for k, v in inputs.get("headers", {}).items()}
        auth = inputs.get("authentication")
        if auth:
            if auth["type"] != "ManagedServiceIdentity":
                raise ExpressionError(f"{name}: unsupported authentication {auth['type']}")
            headers["Authorization"] = f"Bearer {self.token_for(auth['audience'])}"
        deadline = time.monotonic() + min(_duration(action.get("limit", {}).get("timeout")),
                                          self.max_wait_seconds)
        response = self._send_with_retries(name, inputs["method"], inputs["uri"], headers, inputs.get("body"),
                                           inputs.get("retryPolicy", {}), deadline)
        disabled = "DisableAsyncPattern" in action.get("operationOptions", "")
        while response is not None and response.status_code == 202 and not disabled \
                and "Location" in response.headers:
            wait = _retry_after(response) or DEFAULT_POLL_SECONDS
            if time.monotonic() + wait > deadline:
                return self._finish(name, response, "TimedOut")
            time.sleep(wait)
            response = self._send_with_retries(name, "GET", response.headers["Location"], headers, None,
                                               inputs.get("retryPolicy", {}), deadline)
        if response is None:
            return self._finish(name, None, "Failed")
        return self._finish(name, response, "Succeeded" if 200 <= response.status_code < 300 else "Failed")

    def _finish(self, name: str, response: httpx.Response | None, status: str) -> str:
        body: Any = None
        if response is not None and response.content:
            try:
                body = response.json()
            except ValueError:
                body = response.text
        self.outputs[name] = {"statusCode": response.status_code if response is not None else None,
                              "headers": dict(response.headers) if response is not None else {},
                              "body": body}
        return status

    def _send_with_retries(self, name: str, method: str, url: str, headers: dict[str, str], body: Any,
                           policy: dict[str, Any], deadline: float) -> httpx.Response | None:
        count = 4 if policy.get("type", "exponential") != "none" else 0
        count = int(policy.get("count", count))
        interval = _duration(policy.get("interval", "PT7.5S"))
        response: httpx.Response | None = None
        for attempt in range(count + 1):
            sent_at = time.monotonic()
            response = self.client.request(method, url, headers=headers,
                                           json=body if body is not None else None)
            lost = attempt == 0 and method != "GET" and name in self.lose_first_answer_of
            self._record(name, method, url, headers, body, None if lost else response, sent_at)
            if not lost and response.status_code not in RETRIED_STATUSES:
                return response
            if lost:
                response = None
            wait = (_retry_after(response) if response is not None else None) \
                or interval * self.interval_scale * (2 ** attempt)
            if attempt == count or time.monotonic() + wait > deadline:
                break
            time.sleep(wait)
        return response

    def _record(self, name: str, method: str, url: str, headers: dict[str, str], body: Any,
                response: httpx.Response | None, sent_at: float) -> None:
        parsed: Any = None
        if response is not None and response.content:
            try:
                parsed = response.json()
            except ValueError:
                parsed = response.text
        self.exchanges.append(HttpExchange(
            action=name, method=method, url=url, headers=dict(headers), body=body,
            status=response.status_code if response is not None else 0,
            response_headers=dict(response.headers) if response is not None else {},
            response_body=parsed, sent_at=sent_at))

    # --------------------------------------------------------------------------------------- expressions

    def evaluate(self, value: Any) -> Any:
        """A definition value with its expressions evaluated."""
        if isinstance(value, dict):
            return {k: self.evaluate(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.evaluate(v) for v in value]
        if not isinstance(value, str):
            return value
        if value.startswith("@@"):
            return value[1:]
        if value.startswith("@") and not value.startswith("@{"):
            return self.expression(value[1:])
        return re.sub(r"@\{([^}]*)\}", lambda m: _text(self.expression(m.group(1))), value)

    def expression(self, source: str) -> Any:
        """Evaluate one expression (without its leading ``@``)."""
        parser = _Parser(source, self._call)
        result = parser.parse()
        return result

    def _call(self, function: str, args: list[Any]) -> Any:
        if function == "parameters":
            (name,) = args
            if name in self.parameters:
                return self.parameters[name]
            declared = self.definition.get("parameters", {}).get(name)
            if declared is None or "defaultValue" not in declared:
                raise ExpressionError(f"parameter '{name}' has no value")
            return declared["defaultValue"]
        if function == "workflow":
            return {"run": {"name": self.run_name}, "name": "workflow"}
        if function == "utcNow":
            now = datetime.now(UTC)
            if not args:
                return now.isoformat().replace("+00:00", "Z")
            return _dotnet_format(now, args[0])
        if function in ("body", "outputs"):
            (name,) = args
            if name not in self.outputs:
                raise ExpressionError(f"{function}('{name}') before that action ran")
            return self.outputs[name]["body"] if function == "body" else self.outputs[name]
        raise ExpressionError(f"unsupported function {function}()")


class _Parser:
    """``call(args)`` followed by member accesses; arguments are 'strings', numbers or expressions."""

    def __init__(self, source: str, call: Callable[[str, list[Any]], Any]) -> None:
        self.source = source.strip()
        self.pos = 0
        self.call = call

    def parse(self) -> Any:
        value = self._expression()
        self._space()
        if self.pos != len(self.source):
            raise ExpressionError(f"unexpected text at {self.pos} in {self.source!r}")
        return value

    def _space(self) -> None:
        while self.pos < len(self.source) and self.source[self.pos].isspace():
            self.pos += 1

    def _expression(self) -> Any:
        self._space()
        match = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(self.source, self.pos)
        if not match:
            return self._literal()
        self.pos = match.end()
        self._expect("(")
        args: list[Any] = []
        self._space()
        if not self._peek(")"):
            while True:
                args.append(self._argument())
                self._space()
                if self._peek(","):
                    self.pos += 1
                    continue
                break
        self._expect(")")
        return self._accessors(self.call(match.group(0), args))

    def _argument(self) -> Any:
        self._space()
        if self._peek("'") or self.source[self.pos].isdigit() or self._peek("-"):
            return self._literal()
        return self._expression()

    def _literal(self) -> Any:
        self._space()
        if self._peek("'"):
            end = self.pos + 1
            text = []
            while True:
                if end >= len(self.source):
                    raise ExpressionError(f"unterminated string in {self.source!r}")
                if self.source[end] == "'":
                    if self.source[end + 1:end + 2] == "'":
                        text.append("'")
                        end += 2
                        continue
                    break
                text.append(self.source[end])
                end += 1
            self.pos = end + 1
            return "".join(text)
        match = re.compile(r"-?\d+(\.\d+)?").match(self.source, self.pos)
        if not match:
            raise ExpressionError(f"expected a value at {self.pos} in {self.source!r}")
        self.pos = match.end()
        return float(match.group(0)) if match.group(1) else int(match.group(0))

    def _accessors(self, value: Any) -> Any:
        while True:
            self._space()
            safe = self._peek("?")
            if safe:
                self.pos += 1
            if self._peek("["):
                self.pos += 1
                key = self._literal()
                self._expect("]")
            elif self._peek("."):
                self.pos += 1
                match = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(self.source, self.pos)
                if not match:
                    raise ExpressionError(f"expected a member name in {self.source!r}")
                self.pos = match.end()
                key = match.group(0)
            else:
                if safe:
                    raise ExpressionError(f"'?' without a member access in {self.source!r}")
                return value
            in_list = isinstance(value, list) and isinstance(key, int) and 0 <= key < len(value)
            if (isinstance(value, dict) and key in value) or in_list:
                value = value[key]
            elif safe or value is None:
                value = None
            else:
                raise ExpressionError(f"no member {key!r} in {self.source!r}")

    def _peek(self, text: str) -> bool:
        return self.source.startswith(text, self.pos)

    def _expect(self, text: str) -> None:
        self._space()
        if not self._peek(text):
            raise ExpressionError(f"expected {text!r} at {self.pos} in {self.source!r}")
        self.pos += len(text)


def _text(value: Any) -> str:
    """How ``@{...}`` interpolates a value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def _dotnet_format(moment: datetime, pattern: str) -> str:
    tokens = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}
    return moment.strftime(re.sub("|".join(tokens), lambda m: tokens[m.group(0)], pattern))


def _duration(iso: str | None) -> float:
    """Seconds of an ISO 8601 duration like ``PT6H`` or ``PT7.5S`` (no duration: unbounded)."""
    if not iso:
        return float("inf")
    match = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?)?", iso)
    if not match:
        raise ExpressionError(f"unsupported duration {iso}")
    days, hours, minutes, seconds = match.groups()
    return (int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes or 0) * 60
            + float(seconds or 0))


def _retry_after(response: httpx.Response | None) -> float | None:
    if response is None:
        return None
    raw = response.headers.get("Retry-After")
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


@dataclass
class Callback:
    """One request posted to a :class:`CallbackReceiver`."""

    path: str
    headers: dict[str, str]
    body: Any


class CallbackReceiver:
    """Stands in for a flow's trigger URL on loopback: records every JSON body posted to it, answers 202."""

    def __init__(self, path: str = "/workflows/flow/triggers/manual/paths/invoke") -> None:
        self.received: list[Callback] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                received.append(Callback(path=self.path, headers=dict(self.headers.items()),
                                         body=json.loads(raw) if raw else None))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}{path}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def bodies(self) -> list[Any]:
        """The bodies received so far, in order."""
        return [callback.body for callback in self.received]

    def __enter__(self) -> CallbackReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
