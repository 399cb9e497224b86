"""Every sample app imports and indexes the way the Python worker indexes it.

Each app is imported with its folder as the working directory and on ``sys.path`` (as the worker
runs it), and ``app.get_functions()`` is called once. This catches import errors and decorator
mistakes without a host: the real host would only report "0 functions loaded".
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.samples.support import SAMPLE_APPS_DIR

# Indexes every app folder given on the command line, one after another in one interpreter (one
# import of the SDKs instead of one per app). Each app gets a fresh ``function_app`` module and only
# its own folder on ``sys.path``, as the worker would give it.
INDEX_SCRIPT = """
import importlib.util, json, os, sys, traceback
report = {}
for app_dir in sys.argv[1:]:
    sys.path.insert(0, app_dir)
    os.chdir(app_dir)
    sys.modules.pop("function_app", None)
    try:
        spec = importlib.util.spec_from_file_location("function_app", app_dir + "/function_app.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["function_app"] = module
        spec.loader.exec_module(module)
        functions = module.app.get_functions()
        report[app_dir] = {f.get_function_name(): f.get_trigger().get_binding_name()
                           for f in functions}
    except Exception:
        report[app_dir] = {"error": traceback.format_exc()}
    finally:
        sys.path.remove(app_dir)
print(json.dumps(report))
"""

EXPECTED: dict[str, dict[str, str]] = {
    "function_chaining": {
        "http_start": "httpTrigger",
        "my_orchestrator": "orchestrationTrigger",
        "say_hello": "activityTrigger",
    },
    "fan_in_fan_out": {
        "durable_trigger": "httpTrigger",
        "E2_BackupSiteContent": "orchestrationTrigger",
        "E2_GetFileList": "activityTrigger",
        "E2_CopyFileToBlob": "activityTrigger",
        "FanOutFanIn": "orchestrationTrigger",
        "GetActivityCount": "activityTrigger",
        "ParrotValue": "activityTrigger",
        "ShowMeTheSum": "activityTrigger",
    },
    "blueprint": {
        "start_orchestrator": "httpTrigger",
        "my_orchestrator": "orchestrationTrigger",
        "say_hello": "activityTrigger",
        "http_trigger": "httpTrigger",
    },
    "human_interaction": {
        "http_start": "httpTrigger",
        "E4_SMSPhoneVerification": "orchestrationTrigger",
        "SendSMSChallenge": "activityTrigger",
    },
    "monitor": {
        "http_start": "httpTrigger",
        "E3_Monitor": "orchestrationTrigger",
        "E3_TooManyOpenIssues": "activityTrigger",
        "E3_SendAlert": "activityTrigger",
    },
    "sub_orchestration": {
        "http_start": "httpTrigger",
        "DurableOrchestrator": "orchestrationTrigger",
        "DurableSubOrchestrator": "orchestrationTrigger",
        "BatchedGreetings": "orchestrationTrigger",
        "GreetBatch": "orchestrationTrigger",
        "Hello": "activityTrigger",
    },
    "custom_status": {
        "http_start": "httpTrigger",
        "DurableOrchestration": "orchestrationTrigger",
        "DurableOrchestrationWithCheckpoints": "orchestrationTrigger",
        "DurableActivity": "activityTrigger",
    },
    "external_events": {
        "durable_trigger": "httpTrigger",
        "raise_event": "httpTrigger",
        "DurableOrchestration": "orchestrationTrigger",
        "SuccessActions": "activityTrigger",
    },
}


@pytest.fixture(scope="module")
def indexed() -> dict[str, dict[str, str]]:
    """``{app name: {function name: trigger type}}`` (or ``{"error": traceback}``) per app."""
    dirs = [str(SAMPLE_APPS_DIR / name) for name in sorted(EXPECTED)]
    result = subprocess.run([sys.executable, "-c", INDEX_SCRIPT, *dirs], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    report: dict[str, dict[str, str]] = json.loads(result.stdout)
    return {Path(app_dir).name: functions for app_dir, functions in report.items()}


def test_every_sample_app_folder_is_covered() -> None:
    folders = {p.name for p in SAMPLE_APPS_DIR.iterdir() if (p / "function_app.py").is_file()}
    assert folders == set(EXPECTED)


@pytest.mark.parametrize("app_name", sorted(EXPECTED))
def test_sample_app_indexes_with_the_expected_functions(
        app_name: str, indexed: dict[str, dict[str, str]]) -> None:
    assert indexed[app_name] == EXPECTED[app_name]


@pytest.mark.parametrize("app_name", sorted(EXPECTED))
def test_sample_app_has_a_host_json(app_name: str) -> None:
    host = json.loads((SAMPLE_APPS_DIR / app_name / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensions"]["durableTask"]["hubName"]
