from __future__ import annotations

from tests.dfhost.unit.conftest import run_to_end


async def test_chaining_completes_with_each_result_in_order(engine, calls):
    status = await run_to_end(engine, "chain", ["Tokyo", "Seattle", "London"])
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    assert status["input"] == '["Tokyo", "Seattle", "London"]'
    assert calls["hello"] == 3
    kinds = [e["EventType"] for e in status["historyEvents"]]
    assert kinds.count("TaskScheduled") == 3
    assert kinds.count("TaskCompleted") == 3
    assert kinds[-2:] == ["ExecutionCompleted", "OrchestratorCompleted"]
