from __future__ import annotations

import json
import re

import pytest

from localdev.dfhost.engine import (
    InstanceGone,
    InstanceNotFound,
    InvalidInstanceId,
    OrchestrationAlreadyExists,
    UnknownOrchestrator,
)
from tests.dfhost.unit.apps.sample import function_app
from tests.dfhost.unit.conftest import make_engine, run_to_end


def body(value):
    """What the SDK client posts: df_dumps(value) sent again through aiohttp's json=."""
    return json.dumps(json.dumps(value))


@pytest.fixture
async def manual(invoker, calls):
    """Virtual clock without auto-advance: timers fire only when the test advances time."""
    engine = make_engine(invoker, auto_advance=False)
    await engine.start()
    yield engine
    await engine.stop()


async def status_of(engine, iid):
    assert await engine.wait_idle(10)
    return await engine.get_status(iid, show_history=True, show_history_output=True)


async def test_event_raised_after_the_wait_arrives_as_a_json_string(manual):
    iid = await manual.start_instance("wait_event", "e1", None)
    assert (await status_of(manual, iid))["runtimeStatus"] == "Running"
    await manual.raise_event(iid, "Approval", body({"ok": True}))
    status = await status_of(manual, iid)
    assert status["runtimeStatus"] == "Completed"
    # production quirk: the client double-encodes, so a dict reaches the orchestrator as text
    assert status["output"] == {"type": "str", "value": '{"ok": true}'}


async def test_event_raised_before_the_wait_is_buffered(manual):
    iid = await manual.start_instance("wait_event", "e2", None)
    await manual.raise_event(iid, "Approval", body("yes"))
    status = await status_of(manual, iid)
    assert status["runtimeStatus"] == "Completed"
    # a str sent by the SDK client keeps its quotes (azure-functions-durable-python#295)
    assert status["output"] == {"type": "str", "value": '"yes"'}


async def test_two_buffered_events_reproduce_the_sdk_double_delivery(manual):
    iid = await manual.start_instance("wait_twice", "e3", None)
    # both arrive while the orchestrator is still in its activity, before it waits:
    # the SDK keeps one deferred callback per name (azure-functions-durable-python#507)
    await manual.raise_event(iid, "E", "1")
    await manual.raise_event(iid, "E", "2")
    status = await status_of(manual, iid)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == [2, 2]


async def test_two_events_after_the_waits_are_delivered_in_order(manual):
    iid = await manual.start_instance("wait_twice", "e4", None)
    await status_of(manual, iid)
    await manual.raise_event(iid, "E", "1")   # raw JSON bodies, as an HTTP caller posts them
    await status_of(manual, iid)
    await manual.raise_event(iid, "E", "2")
    assert (await status_of(manual, iid))["output"] == [1, 2]


async def test_human_interaction_with_the_right_code_cancels_the_timer(manual):
    iid = await manual.start_instance("human", "h1", body({"code": "1234"}))
    await status_of(manual, iid)
    await manual.raise_event(iid, "Code", json.dumps("1234"))
    status = await status_of(manual, iid)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == "approved"
    timers = [e for e in status["historyEvents"] if e["EventType"] == "TimerCreated"]
    assert len(timers) == 1   # canceled, yet recorded


async def test_sdk_client_encoded_code_never_matches_like_production(manual):
    iid = await manual.start_instance("human", "h0", body({"code": "1234"}))
    await status_of(manual, iid)
    await manual.raise_event(iid, "Code", body("1234"))   # arrives as '"1234"'
    assert (await status_of(manual, iid))["runtimeStatus"] == "Running"


async def test_human_interaction_wrong_code_then_timeout_hangs_like_production(manual):
    iid = await manual.start_instance("human", "h2", body({"code": "1234"}))
    await status_of(manual, iid)
    await manual.raise_event(iid, "Code", body("0000"))
    await status_of(manual, iid)
    await manual.advance_clock(3600)
    status = await status_of(manual, iid)
    # the SDK says isDone ("timeout") but the shim still awaits the second WhenAny, which
    # lists only the new event wait: the instance stays Running (durable_internals §5.9)
    assert status["runtimeStatus"] == "Running"
    assert status["output"] is None
    assert any(e["EventType"] == "TimerFired" for e in status["historyEvents"])


async def test_completion_waits_for_open_timers(manual):
    iid = await manual.start_instance("gated", "g1", None)
    status = await status_of(manual, iid)
    assert status["runtimeStatus"] == "Running"   # activity won the race, the timer is open
    await manual.advance_clock(2 * 3600)
    status = await status_of(manual, iid)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == 2


async def test_terminate_stops_a_waiting_instance_and_events_then_are_gone(manual):
    iid = await manual.start_instance("wait_event", "t1", None)
    await status_of(manual, iid)
    await manual.terminate(iid, "user asked")
    status = await status_of(manual, iid)
    assert status["runtimeStatus"] == "Terminated"
    assert status["output"] == "user asked"
    with pytest.raises(InstanceGone):
        await manual.raise_event(iid, "Approval", body(1))
    with pytest.raises(InstanceGone):
        await manual.terminate(iid, "again")
    with pytest.raises(InstanceNotFound):
        await manual.terminate("nobody", "x")


async def test_suspend_holds_events_until_resume(manual):
    iid = await manual.start_instance("wait_event", "s1", None)
    await status_of(manual, iid)
    await manual.suspend(iid, "pause")
    assert (await status_of(manual, iid))["runtimeStatus"] == "Suspended"
    await manual.raise_event(iid, "Approval", json.dumps("later"))
    assert (await status_of(manual, iid))["runtimeStatus"] == "Suspended"
    await manual.resume(iid, "go")
    status = await status_of(manual, iid)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"]["value"] == "later"


async def test_purge_deletes_the_instance(engine):
    status = await run_to_end(engine, "chain", ["A"], instance_id="p1")
    assert status["runtimeStatus"] == "Completed"
    assert await engine.purge("p1") == 1
    assert await engine.get_status("p1") is None
    assert await engine.purge("p1") == 0


async def test_purge_by_and_query_filter_on_status(engine):
    await run_to_end(engine, "chain", ["A"], instance_id="q-done")
    await run_to_end(engine, "failing", instance_id="q-failed")
    failed = await engine.query(runtime_status=["Failed"])
    assert [s["instanceId"] for s in failed] == ["q-failed"]
    prefixed = await engine.query(instance_id_prefix="q-")
    assert {s["instanceId"] for s in prefixed} == {"q-done", "q-failed"}
    assert await engine.purge_by(runtime_status=["Completed"]) == 1
    assert [s["instanceId"] for s in await engine.query()] == ["q-failed"]


async def test_custom_status_is_reported_per_episode(engine):
    status = await run_to_end(engine, "status_reporter", {"size": 10}, instance_id="cs1")
    assert status["runtimeStatus"] == "Completed"
    assert status["customStatus"] == {"stage": "big", "blob": "x" * 10}


async def test_custom_status_over_16_kb_fails_the_orchestration(engine):
    # 8,200 characters of UTF-16 JSON are just over 16 KB
    status = await run_to_end(engine, "status_reporter", {"size": 8200}, instance_id="cs2")
    assert status["runtimeStatus"] == "Failed"
    assert "exceeds the maximum of 16 KB" in status["output"]
    assert status["customStatus"] == {"stage": "start"}


async def test_custom_status_just_under_16_kb_is_accepted(engine):
    status = await run_to_end(engine, "status_reporter", {"size": 8100}, instance_id="cs3")
    assert status["runtimeStatus"] == "Completed"


async def test_non_determinism_names_the_recorded_and_the_replayed_task(manual):
    iid = await manual.start_instance("drifting", "nd1", None)
    assert (await status_of(manual, iid))["runtimeStatus"] == "Running"   # waits for "go"
    function_app.FLAGS["nondeterministic"] = True    # a deployment changed the code
    await manual.raise_event(iid, "go", "null")
    status = await status_of(manual, iid)
    assert status["runtimeStatus"] == "Failed"
    assert "Non-Deterministic workflow detected" in status["output"]
    assert "activity task named 'double' with sequence ID 1" in status["output"]
    assert "instead scheduled an activity task named 'hello'" in status["output"]


async def test_reuse_rule_rejects_running_and_overwrites_terminal(manual):
    iid = await manual.start_instance("wait_event", "r1", None)
    await status_of(manual, iid)
    with pytest.raises(OrchestrationAlreadyExists,
                       match=re.escape("An Orchestration instance with the status Running already "
                                         "exists.")):
        await manual.start_instance("wait_event", "r1", None)
    await manual.terminate(iid, "done")
    await status_of(manual, iid)
    await manual.start_instance("chain", "r1", body(["X"]))
    status = await status_of(manual, iid)
    assert status["name"] == "chain"
    assert status["runtimeStatus"] == "Completed"
    assert [e["EventType"] for e in status["historyEvents"]].count("ExecutionStarted") == 1


async def test_any_state_lifts_the_reuse_rule(invoker, calls):
    engine = make_engine(invoker, auto_advance=False,
                         overridable_existing_instance_states="AnyState")
    await engine.start()
    try:
        await engine.start_instance("wait_event", "r2", None)
        assert await engine.wait_idle(10)
        await engine.start_instance("chain", "r2", body(["Y"]))
        assert await engine.wait_idle(10)
        status = await engine.get_status("r2")
        assert status["name"] == "chain"
        assert status["output"] == ["Hello Y!"]
    finally:
        await engine.stop()


@pytest.mark.parametrize("bad", ["@entity", "a/b", "a\\b", "a#b", "a?b", "a\x07b", "x" * 257])
async def test_invalid_instance_ids_are_rejected(engine, bad):
    with pytest.raises(InvalidInstanceId):
        await engine.start_instance("chain", bad, None)


async def test_unknown_orchestrator_is_rejected(engine):
    with pytest.raises(UnknownOrchestrator, match="The function 'nope' doesn't exist"):
        await engine.start_instance("nope", None, None)


async def test_unknown_instance_has_no_status(engine):
    assert await engine.get_status("missing") is None
    with pytest.raises(InstanceNotFound):
        await engine.raise_event("missing", "E", None)



async def test_calling_an_unknown_activity_fails_the_orchestration(engine):
    status = await run_to_end(engine, "calls_missing")
    assert status["runtimeStatus"] == "Failed"
    assert status["output"] == ("Orchestrator function 'calls_missing' failed: The function "
                                "'no_such_activity' doesn't exist, is disabled, or is not an "
                                "activity function.")


async def test_a_failed_child_fails_the_parents_task(engine):
    status = await run_to_end(engine, "parent_of_failing")
    assert status["runtimeStatus"] == "Completed"
    assert status["output"]["child_failed"] == (
        "Orchestrator function 'failing' failed: Activity function 'explode' failed: boom x ")


async def test_terminating_a_child_fails_the_parents_task(manual):
    iid = await manual.start_instance("parent_of_waiter", "pw", None)
    assert (await status_of(manual, "the-child"))["runtimeStatus"] == "Running"
    await manual.terminate("the-child", "stop it")
    status = await status_of(manual, iid)
    assert status["runtimeStatus"] == "Completed"
    assert "stop it" in status["output"]["child_failed"]


async def test_real_clock_engine_runs_a_chain(invoker, calls):
    engine = make_engine(invoker, clock="real")
    await engine.start()
    try:
        status = await run_to_end(engine, "chain", ["Rome"])
    finally:
        await engine.stop()
    assert status["output"] == ["Hello Rome!"]


async def test_continue_as_new_drops_events_the_old_execution_did_not_use(manual):
    iid = await manual.start_instance("can_waiter", "cw", body(0))
    await status_of(manual, iid)
    await manual.raise_event(iid, "next", "1")
    await manual.raise_event(iid, "next", "2")   # same batch, unused by execution 1
    status = await status_of(manual, iid)
    # Python cannot ask for preserveUnprocessedEvents: execution 2 waits again
    assert status["runtimeStatus"] == "Running"
    assert status["input"] == "1"
    assert [e["EventType"] for e in status["historyEvents"]].count("EventRaised") == 0
    await manual.raise_event(iid, "next", "3")
    status = await status_of(manual, iid)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == 1
