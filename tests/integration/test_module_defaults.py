"""`module_defaults: group/ucops.webex.webex` sets the connection options of every module.

Each case runs one module with neither `api_url` nor `access_token` in its task: both come
from the play's `module_defaults` for the action group that meta/runtime.yml defines. With
the demo token the task succeeds against the simulator. With a token that the simulator does
not know, the same task fails with HTTP 401, which shows that the module sent that token.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import DEMO_FIXTURE, REPO_ROOT

PARTNER_TOKEN = "demo-partner-token"
UNKNOWN_TOKEN = "token-the-simulator-does-not-know"
GROUP = "group/ucops.webex.webex"
TASK = "module under test"

DEMO = json.loads(DEMO_FIXTURE.read_text())
ALPINE = next(org for org in DEMO["organizations"] if org["displayName"] == "Alpine Dental")
ALPINE_USER = ALPINE["people"][0]["emails"][0]
ALPINE_MEETING_LICENSE = "Meeting - Webex Enterprise Edition"

# Tasks that put Alpine Dental into the inventory and sync its licenses and people. They
# name the demo token themselves, so they succeed whatever token module_defaults sets.
ADD_ALPINE = {"name": "add Alpine Dental",
              "ucops.webex.webex_customer": {"name": "Alpine Dental", "org_id": ALPINE["id"],
                                             "access_token": PARTNER_TOKEN}}
SYNC_ALPINE = {"name": "sync Alpine Dental",
               "ucops.webex.webex_license_sync": {"customer": "Alpine Dental",
                                                  "scope": ["licenses", "people"],
                                                  "access_token": PARTNER_TOKEN}}

# module name -> (setup tasks, options of the task under test, run it in check mode)
CASES = {
    "webex_license_info": ([], {"source": "live"}, False),
    "webex_customer": ([], {"name": "Alpine Dental", "org_id": ALPINE["id"]}, False),
    "webex_license_sync": ([ADD_ALPINE], {"customer": "Alpine Dental", "scope": ["licenses"]},
                           False),
    "webex_user_license": ([ADD_ALPINE, SYNC_ALPINE],
                           {"customer": "Alpine Dental", "user": ALPINE_USER,
                            "licenses": [ALPINE_MEETING_LICENSE], "state": "present"},
                           True),
}


def require_modules(module: str) -> None:
    """Skip the case unless the module and the modules of its setup tasks exist."""
    setup, _options, _check_mode = CASES[module]
    setup_modules = [name.split(".")[-1] for task in setup for name in task
                     if name.startswith("ucops.")]
    for name in [*setup_modules, module]:
        if not (REPO_ROOT / "plugins" / "modules" / f"{name}.py").exists():
            pytest.skip(f"plugins/modules/{name}.py does not exist yet")


def build_tasks(module: str) -> list[dict]:
    setup, options, check_mode = CASES[module]
    task = {"name": TASK, f"ucops.webex.{module}": dict(options), "ignore_errors": True}
    if check_mode:
        task["check_mode"] = True
    return [*setup, task]


def run_with_defaults(run_playbook, simulator, module: str, token: str):
    defaults = {GROUP: {"api_url": simulator.api_url, "access_token": token,
                        "max_retry_wait": 30}}
    return run_playbook(build_tasks(module), module_defaults=defaults)


@pytest.mark.parametrize("module", sorted(CASES))
def test_group_defaults_connect_module(module, run_playbook, simulator):
    require_modules(module)

    run = run_with_defaults(run_playbook, simulator, module, PARTNER_TOKEN)
    record = run.task(TASK)

    assert run.rc == 0, run.stdout + run.stderr
    assert not record["failed"], record["result"].get("msg")
    assert simulator.requests(), "no request reached the simulator"


@pytest.mark.parametrize("module", sorted(CASES))
def test_group_defaults_token_is_sent(module, run_playbook, simulator):
    require_modules(module)
    setup, _options, _check_mode = CASES[module]

    run = run_with_defaults(run_playbook, simulator, module, UNKNOWN_TOKEN)
    record = run.task(TASK)
    statuses = [request["status"] for request in simulator.requests()]

    for setup_task in setup:
        assert not run.task(setup_task["name"])["failed"], setup_task["name"]

    assert record["failed"], record["result"]
    assert 401 in statuses, statuses


def test_runtime_group_lists_every_module():
    runtime = (REPO_ROOT / "meta" / "runtime.yml").read_text()
    modules = sorted(path.stem for path in Path(REPO_ROOT, "plugins", "modules").glob("*.py")
                     if not path.stem.startswith("_"))

    for module in modules:
        assert f"- {module}\n" in runtime, f"{module} is not in the webex action group"
    assert set(modules) <= set(CASES), "add a module_defaults case for every module"
