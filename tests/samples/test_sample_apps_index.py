"""Every sample app imports and indexes the way the Python worker indexes it.

Each app is imported in its own interpreter, with its folder as the working directory and on
``sys.path`` (as the worker runs it), and ``app.get_functions()`` is called once. This catches
import errors and decorator mistakes without a host: the real host would only report
"0 functions loaded".
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.samples.support import SAMPLE_APPS_DIR

INDEX_SCRIPT = """
import json, sys
sys.path.insert(0, ".")
import function_app
functions = function_app.app.get_functions()
print(json.dumps({f.get_function_name(): f.get_trigger().get_binding_name() for f in functions}))
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


def _index(app_name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", INDEX_SCRIPT], cwd=SAMPLE_APPS_DIR / app_name,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def indexed() -> dict[str, subprocess.CompletedProcess[str]]:
    names = sorted(EXPECTED)
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(names, pool.map(_index, names), strict=True))


def test_every_sample_app_folder_is_covered() -> None:
    folders = {p.name for p in SAMPLE_APPS_DIR.iterdir() if (p / "function_app.py").is_file()}
    assert folders == set(EXPECTED)


@pytest.mark.parametrize("app_name", sorted(EXPECTED))
def test_sample_app_indexes_with_the_expected_functions(
        app_name: str, indexed: dict[str, subprocess.CompletedProcess[str]]) -> None:
    result = indexed[app_name]
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == EXPECTED[app_name]


@pytest.mark.parametrize("app_name", sorted(EXPECTED))
def test_sample_app_has_a_host_json(app_name: str) -> None:
    host = json.loads((SAMPLE_APPS_DIR / app_name / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensions"]["durableTask"]["hubName"]
