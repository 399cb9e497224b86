"""An in-test FunctionInvoker over the fixture app, calling the real SDK entry points."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import azure.functions as func
import pytest
from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

from localdev.dfhost.engine import Engine, EngineOptions
from tests.dfhost.unit.apps.sample import function_app


class SdkInvoker:
    """Runs orchestrators and activities of a DFApp exactly as the Python worker would."""

    def __init__(self, app: Any) -> None:
        functions = app.get_functions()   # once: a second call raises in the SDK
        self._by_name = {f.get_function_name(): f for f in functions}
        self._orchestrators = {n for n, f in self._by_name.items()
                               if f.get_trigger().get_binding_name() == "orchestrationTrigger"}
        self._activities = {n for n, f in self._by_name.items()
                            if f.get_trigger().get_binding_name() == "activityTrigger"}

    def orchestrator_names(self) -> set[str]:
        return set(self._orchestrators)

    def activity_names(self) -> set[str]:
        return set(self._activities)

    def run_orchestrator(self, name: str, context_json: str) -> str:
        result: str = self._by_name[name].get_user_function()(context_json)
        return result

    async def run_activity(self, name: str, input_json: str | None) -> str:
        function = self._by_name[name]
        argument = ActivityTriggerConverter.decode(
            meta.Datum(type="json", value=input_json), trigger_metadata=None)
        user: Callable[..., Any] = function.get_user_function()
        kwargs = {function.get_trigger().name: argument}
        if inspect.iscoroutinefunction(user):
            output = await user(**kwargs)
        else:
            output = await asyncio.to_thread(user, **kwargs)
        encoded = ActivityTriggerConverter.encode(output, expected_type=None)
        assert encoded is not None
        return str(encoded.value)


_INVOKER: SdkInvoker | None = None


def sample_invoker() -> SdkInvoker:
    global _INVOKER
    if _INVOKER is None:
        _INVOKER = SdkInvoker(function_app.app)
    return _INVOKER


@pytest.fixture
def invoker() -> SdkInvoker:
    return sample_invoker()


@pytest.fixture
def calls():
    function_app.CALLS.clear()
    function_app.FLAGS["nondeterministic"] = False
    yield function_app.CALLS
    function_app.CALLS.clear()
    function_app.FLAGS["nondeterministic"] = False


def make_engine(invoker: SdkInvoker, *, connection_string: str | None = None,
                hub: str = "UnitHub", **options: Any) -> Engine:
    options.setdefault("clock", "virtual")
    return Engine(invoker=invoker, connection_string=connection_string,
                  options=EngineOptions(hub=hub, **options))


@pytest.fixture
async def engine(invoker, calls) -> AsyncIterator[Engine]:
    eng = make_engine(invoker)
    await eng.start()
    yield eng
    await eng.stop()


async def run_to_end(engine: Engine, name: str, payload: Any = None, *,
                     instance_id: str | None = None, wait: float = 30.0) -> dict[str, Any]:
    """Start an instance with a client-shaped (double-encoded) body and wait for quiescence."""
    import json
    body = None if payload is None else json.dumps(json.dumps(payload))
    iid = await engine.start_instance(name, instance_id, body)
    assert await engine.wait_idle(wait)
    status = await engine.get_status(iid, show_history=True, show_history_output=True)
    assert status is not None
    return status


_ = func  # azure.functions must be importable for the converters above
