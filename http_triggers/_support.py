"""What every HTTP trigger shares: problem+json on errors, JSON bodies, size limits, absolute links."""

from __future__ import annotations

import functools
import inspect
import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import azure.functions as func
from azure.functions.decorators.function_app import Function, FunctionBuilder
from azure.functions.decorators.http import HttpTrigger
from pydantic import BaseModel, ValidationError

from shared import container
from shared.auth import authenticate
from shared.domain import Principal
from shared.errors import AppError, InvalidRequest
from shared.http import (
    DEFAULT_JSON_LIMITS,
    PROBLEM_CONTENT_TYPE,
    JsonLimits,
    enforce_body_size,
    parse_json_body,
    problem_from_error,
    problem_from_validation,
    require_json_media_type,
)
from shared.openapi_registry import (
    REGISTRY,
    DocumentedRoute,
    OperationDoc,
    OperationRegistry,
    Param,
    RoleNeeded,
)

__all__ = [
    "JsonLimits", "api_base_url", "caller", "documented", "json_response", "problem_responses", "query_bool",
    "query_int", "read_json", "reject_body", "undocumented_routes",
]

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = DEFAULT_JSON_LIMITS.max_body_bytes
DEFAULT_RETRY_AFTER_SECONDS = 10
ROUTE_PREFIX = "api"
ModelT = TypeVar("ModelT", bound=BaseModel)
HandlerT = TypeVar("HandlerT", bound=Callable[..., Any])


def json_response(body: Any, *, status: int = 200,
                  headers: Mapping[str, str] | None = None) -> func.HttpResponse:
    """A JSON response."""
    return func.HttpResponse(json.dumps(body, separators=(",", ":")), status_code=status,
                             headers=dict(headers or {}), mimetype="application/json", charset="utf-8")


def _problem_response(body: dict[str, Any], headers: Mapping[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=int(body["status"]), headers=dict(headers or {}),
                             mimetype=PROBLEM_CONTENT_TYPE, charset="utf-8")


class RequestValidationError(InvalidRequest):
    """The request body did not fit its model; carries pydantic's errors (rendered without input)."""

    code = "validation-failed"

    def __init__(self, error: ValidationError) -> None:
        super().__init__("The request body or parameters are invalid.")
        self.validation_error = error


def _render_error(exc: Exception, req: func.HttpRequest | None) -> func.HttpResponse:
    instance = urlsplit(req.url).path if req is not None else None
    try:
        return _render_known_error(exc, req, instance)
    except Exception:  # rendering an error must never end in the host's plain-text 500
        logger.exception("error while rendering an error route=%s", instance)
        return _internal_error(instance)


def _render_known_error(exc: Exception, req: func.HttpRequest | None,
                        instance: str | None) -> func.HttpResponse:
    if isinstance(exc, RequestValidationError):
        return _problem_response(problem_from_validation(exc.validation_error, instance=instance))
    if isinstance(exc, AppError):
        headers: dict[str, str] = {}
        if exc.status == 401:
            # RFC 6750: name the error only when a token was presented.
            presented = req is not None and bool(req.headers.get("Authorization"))
            headers["WWW-Authenticate"] = 'Bearer error="invalid_token"' if presented else "Bearer"
        if exc.status in (429, 503):
            retry_after = getattr(exc, "retry_after", None) or DEFAULT_RETRY_AFTER_SECONDS
            headers["Retry-After"] = str(max(1, math.ceil(float(retry_after))))
        return _problem_response(problem_from_error(exc, instance=instance), headers)
    # Anything else, including a ValidationError of a stored record or of the settings, is our fault:
    # a generic 500 that names no internals.
    logger.exception("unhandled error route=%s", instance)
    return _internal_error(instance)


def _internal_error(instance: str | None) -> func.HttpResponse:
    return _problem_response({"type": "about:blank", "title": "Internal error", "status": 500,
                              "detail": "An unexpected error occurred.", "code": "internal-error",
                              "instance": instance})


def _request(args: tuple[Any, ...], kwargs: dict[str, Any]) -> func.HttpRequest | None:
    req = kwargs.get("req")
    if isinstance(req, func.HttpRequest):
        return req
    return next((a for a in args if isinstance(a, func.HttpRequest)), None)


def problem_responses(handler: HandlerT) -> HandlerT:
    """Map errors raised by ``handler`` (sync or async) to RFC 9457 problem responses.

    Application and validation errors keep their status and stable code; unexpected exceptions become a
    generic 500 whose body says nothing about internals, while the details go to the (redacted) log.
    """
    if inspect.iscoroutinefunction(handler):

        @functools.wraps(handler)
        async def async_wrapper(*args: Any, **kwargs: Any) -> func.HttpResponse:
            try:
                return cast(func.HttpResponse, await handler(*args, **kwargs))
            except Exception as exc:  # noqa: BLE001 - every error becomes a problem response
                return _render_error(exc, _request(args, kwargs))

        return cast(HandlerT, async_wrapper)

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> func.HttpResponse:
        try:
            return cast(func.HttpResponse, handler(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - every error becomes a problem response
            return _render_error(exc, _request(args, kwargs))

    return cast(HandlerT, wrapper)


def read_json(req: func.HttpRequest, model: type[ModelT], *, allow_empty: bool = False,
              limits: JsonLimits = DEFAULT_JSON_LIMITS) -> ModelT:
    """Parse the request body into ``model``, within ``limits``.

    Call it only after the caller is authenticated and authorised for the route (role on the tenant
    included), so that nobody without access learns anything from how a body is refused, or makes the
    service parse one. The codes are listed in :mod:`shared.http`.

    Args:
        req: the request.
        model: the body's model.
        allow_empty: an absent body means ``{}`` (and then needs no content type).
        limits: the route's bounds; routes with small bodies pass tighter ones.

    Raises:
        PayloadTooLarge: the body exceeds the limit (413).
        UnsupportedMediaType: the body is not ``application/json`` in UTF-8 (415).
        InvalidRequest: the body is missing (``body-required``), or is not acceptable JSON
            (:class:`~shared.errors.InvalidJson`, 400).
        RequestValidationError: the JSON does not fit the model (a 400 listing the errors).
    """
    body = req.get_body() or b""
    enforce_body_size(body, limits.max_body_bytes)
    if not body.strip():
        if allow_empty:
            return model.model_validate({})
        raise InvalidRequest("A JSON request body is required.", code="body-required")
    require_json_media_type(req.headers.get("Content-Type"))
    data = parse_json_body(body, limits)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise RequestValidationError(error) from None


def reject_body(req: func.HttpRequest) -> None:
    """Routes that take no body still refuse oversized ones (the body is never parsed)."""
    enforce_body_size(req.get_body() or b"", MAX_BODY_BYTES)


def api_base_url(req: func.HttpRequest) -> str:
    """Absolute base of our API (``scheme://host/api``) as the caller reached it.

    Forwarding headers are not trusted: nothing in front of the app sets them, so a caller could.
    """
    parts = urlsplit(req.url)
    return f"{parts.scheme}://{parts.netloc}/{ROUTE_PREFIX}"


def caller(req: func.HttpRequest) -> Principal:
    """Authenticate the request, failing closed (``Unauthenticated`` becomes a 401)."""
    return authenticate(dict(req.headers.items()), container.settings())


def query_int(req: func.HttpRequest, name: str, *, default: int, minimum: int = 1, maximum: int = 200) -> int:
    """An integer query parameter within bounds.

    Raises:
        InvalidRequest: not an integer, or out of bounds.
    """
    raw = req.params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"Query parameter '{name}' must be an integer.") from None
    if not minimum <= value <= maximum:
        raise InvalidRequest(f"Query parameter '{name}' must be between {minimum} and {maximum}.")
    return value


def query_bool(req: func.HttpRequest, name: str) -> bool:
    """A boolean query parameter (``true``/``false``)."""
    raw = (req.params.get(name) or "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise InvalidRequest(f"Query parameter '{name}' must be true or false.")
    return raw in ("true", "1")


def documented(summary: str, *, ok: Mapping[str, Mapping[str, Any]], role: RoleNeeded | None,
               params: tuple[Param, ...] = (), body: type[BaseModel] | None = None,
               errors: frozenset[int] = frozenset(), takes_no_body: bool = False,
               registry: OperationRegistry = REGISTRY) -> Callable[[FunctionBuilder], FunctionBuilder]:
    """Document the route declared just below (place it above ``@bp.route``).

    The path, the methods and whether the route is anonymous are read from the route's registration; the
    arguments are what the registration cannot say (see :class:`~shared.openapi_registry.OperationDoc`).

    Raises:
        TypeError: it is not placed above a ``@bp.route`` registration.
    """
    doc = OperationDoc(summary=summary, ok=ok, role=role, params=params, body=body, errors=errors,
                       takes_no_body=takes_no_body)

    def record(builder: FunctionBuilder) -> FunctionBuilder:
        trigger = builder.build().get_trigger() if isinstance(builder, FunctionBuilder) else None
        if not isinstance(trigger, HttpTrigger):
            raise TypeError("@documented goes above the @bp.route of the handler it documents")
        public = trigger.auth_level == func.AuthLevel.ANONYMOUS
        for method in trigger.methods or ():
            registry.add(DocumentedRoute(method=_method_name(method), path=f"/{ROUTE_PREFIX}/{trigger.route}",
                                         public=public, doc=doc, handler=builder.build().get_user_function()))
        return builder

    return record


def _method_name(method: object) -> str:
    return str(getattr(method, "value", method)).lower()


def undocumented_routes(functions: Iterable[Function],
                        registry: OperationRegistry = REGISTRY) -> list[str]:
    """``METHOD /api/route`` of every HTTP route among ``functions`` that no ``@documented`` describes."""
    documented_keys = {(route.method, route.path) for route in registry.routes()}
    missing = []
    for function in functions:
        trigger = function.get_trigger()
        if not isinstance(trigger, HttpTrigger):
            continue
        for method in trigger.methods or ():
            key = (_method_name(method), f"/{ROUTE_PREFIX}/{trigger.route}")
            if key not in documented_keys:
                missing.append(f"{key[0].upper()} {key[1]}")
    return missing
