"""Load a v2-model function app and index its functions by trigger type.

The registry is the host's only contact with user code. It imports ``function_app.py`` the way
the Python worker indexes it, calls ``get_functions()`` exactly once (the SDK refuses a second
call), and implements :class:`~localdev.dfhost.invoker.FunctionInvoker` for the engine.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import logging
import sys
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

__all__ = ["AppLoadError", "FunctionSpec", "InvocationContext", "Registry", "load_registry"]

logger = logging.getLogger(__name__)

HTTP = "httpTrigger"
ORCHESTRATION = "orchestrationTrigger"
ACTIVITY = "activityTrigger"
TIMER = "timerTrigger"
QUEUE = "queueTrigger"
ENTITY = "entityTrigger"
DURABLE_CLIENT = "durableClient"


class AppLoadError(Exception):
    """The function app cannot be loaded; the message says why (and carries any traceback)."""


@dataclass
class InvocationContext:
    """What the worker passes as ``context: func.Context`` (the attributes apps read)."""

    invocation_id: str
    function_name: str
    function_directory: str
    trace_context: Any = None
    retry_context: Any = None


@dataclass
class FunctionSpec:
    """One indexed function."""

    name: str
    trigger_type: str
    trigger_param: str
    trigger: Any
    user_function: Callable[..., Any]
    client_param: str | None = None
    wants_context: bool = False
    bindings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_async(self) -> bool:
        """Whether the user function is a coroutine function."""
        return inspect.iscoroutinefunction(self.user_function)


def _import_app_module(app_dir: Path) -> Any:
    script = app_dir / "function_app.py"
    if not app_dir.is_dir():
        raise AppLoadError(f"App folder not found: {app_dir}")
    if not script.is_file():
        raise AppLoadError(f"No function_app.py in {app_dir}: not a v2 Python function app")
    # The worker runs with the app root importable, so sibling packages resolve the same way here.
    if str(app_dir) not in sys.path:
        sys.path.insert(0, str(app_dir))
    spec = importlib.util.spec_from_file_location("function_app", script)
    if spec is None or spec.loader is None:
        raise AppLoadError(f"Cannot import {script}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["function_app"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop("function_app", None)
        details = "".join(traceback.format_exception(exc))
        # The real host hides this as "0 functions loaded"; show the cause instead.
        raise AppLoadError(f"Importing {script} failed:\n{details}") from exc
    return module


def _find_register(module: Any, script: Path) -> func.FunctionRegister:
    found = [value for value in vars(module).values() if isinstance(value, func.FunctionRegister)]
    unique = list({id(v): v for v in found}.values())
    if not unique:
        raise AppLoadError(
            f"{script} defines no function app object (FunctionApp or DFApp at module level)")
    if len(unique) > 1:
        raise AppLoadError(f"{script} defines {len(unique)} function app objects; expected one")
    return unique[0]


def _spec_for(function: Any) -> FunctionSpec:
    trigger = function.get_trigger()
    name = function.get_function_name()
    if trigger is None or name is None:
        raise AppLoadError(f"Function {name or function} has no trigger")
    trigger_type = trigger.get_binding_name()
    bindings = [b.get_dict_repr() for b in function.get_bindings()]
    client = next((b["name"] for b in bindings if b.get("type") == DURABLE_CLIENT), None)
    user_function = function.get_user_function()
    parameters = inspect.signature(user_function).parameters
    binding_names = {b.get("name") for b in bindings}
    wants_context = "context" in parameters and "context" not in binding_names
    return FunctionSpec(name=name, trigger_type=trigger_type, trigger_param=trigger.name,
                        trigger=trigger, user_function=user_function, client_param=client,
                        wants_context=wants_context, bindings=bindings)


class Registry:
    """The loaded app's functions; implements ``FunctionInvoker``."""

    def __init__(self, app_dir: Path, specs: list[FunctionSpec]) -> None:
        self.app_dir = app_dir
        self.functions: dict[str, FunctionSpec] = {s.name: s for s in specs}

    def of_type(self, trigger_type: str) -> list[FunctionSpec]:
        """Return the functions with the given trigger type, in registration order."""
        return [s for s in self.functions.values() if s.trigger_type == trigger_type]

    def orchestrator_names(self) -> set[str]:
        """Return the names of all orchestration-trigger functions."""
        return {s.name for s in self.of_type(ORCHESTRATION)}

    def activity_names(self) -> set[str]:
        """Return the names of all activity-trigger functions."""
        return {s.name for s in self.of_type(ACTIVITY)}

    def _get(self, name: str, trigger_type: str) -> FunctionSpec:
        spec = self.functions.get(name)
        if spec is None or spec.trigger_type != trigger_type:
            raise KeyError(f"No {trigger_type} function named {name!r}")
        return spec

    def run_orchestrator(self, name: str, context_json: str) -> str:
        """Run one orchestrator episode and return the orchestrator state JSON.

        Args:
            name: Orchestrator function name.
            context_json: The durable context JSON string.

        Returns:
            The ``OrchestratorState`` JSON string.
        """
        spec = self._get(name, ORCHESTRATION)
        # The worker hands the SDK's ``handle`` an OrchestrationContext wrapping the raw body.
        result = spec.user_function(func.OrchestrationContext(context_json))
        return str(result)

    async def run_activity(self, name: str, input_json: str | None) -> str:
        """Run one activity invocation with the worker's encoding on both sides.

        Args:
            name: Activity function name.
            input_json: JSON-encoded input, or None.

        Returns:
            The JSON-encoded result.
        """
        spec = self._get(name, ACTIVITY)
        arg = None if input_json is None else ActivityTriggerConverter.decode(
            meta.Datum(type="json", value=input_json), trigger_metadata=None)
        kwargs: dict[str, Any] = {spec.trigger_param: arg}
        self._add_context(spec, kwargs)
        out = await self.call(spec, kwargs)
        encoded = ActivityTriggerConverter.encode(out, expected_type=None).value
        return str(encoded)

    def _add_context(self, spec: FunctionSpec, kwargs: dict[str, Any]) -> None:
        if spec.wants_context:
            kwargs["context"] = InvocationContext(
                invocation_id=str(uuid.uuid4()), function_name=spec.name,
                function_directory=str(self.app_dir))

    def build_kwargs(self, spec: FunctionSpec, trigger_value: Any,
                     client_json: str | None) -> dict[str, Any]:
        """Build the keyword arguments of an invocation (trigger, client binding, context)."""
        kwargs: dict[str, Any] = {spec.trigger_param: trigger_value}
        if spec.client_param is not None:
            kwargs[spec.client_param] = client_json
        self._add_context(spec, kwargs)
        return kwargs

    async def call(self, spec: FunctionSpec, kwargs: dict[str, Any]) -> Any:
        """Call a user function: sync ones in a worker thread, async ones awaited."""
        if spec.is_async:
            return await spec.user_function(**kwargs)
        result = await asyncio.to_thread(spec.user_function, **kwargs)
        if inspect.isawaitable(result):
            return await result
        return result


def load_registry(app_dir: Path) -> Registry:
    """Import ``app_dir/function_app.py`` and index its functions.

    Args:
        app_dir: The function app folder.

    Returns:
        The registry.

    Raises:
        AppLoadError: The folder or script is missing, the import failed, or no app object exists.
    """
    app_dir = app_dir.resolve()
    module = _import_app_module(app_dir)
    register = _find_register(module, app_dir / "function_app.py")
    try:
        functions = register.get_functions()  # once: the SDK's name validation is stateful
    except Exception as exc:
        details = "".join(traceback.format_exception(exc))
        raise AppLoadError(f"Indexing the functions failed:\n{details}") from exc
    specs = [_spec_for(f) for f in functions]
    for spec in specs:
        if spec.trigger_type not in {HTTP, ORCHESTRATION, ACTIVITY, TIMER, QUEUE}:
            logger.warning("Function %s has trigger %s, which this host does not run",
                           spec.name, spec.trigger_type)
    return Registry(app_dir, specs)
