"""Integration harness: the simulator as a real process and ansible-playbook as users run it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_FIXTURE = REPO_ROOT / "tests" / "simulator" / "fixtures" / "demo.json"
CALLBACK_DIR = Path(__file__).resolve().parent / "callback_plugins"
COLLECTIONS_DIR = REPO_ROOT / ".build" / "collections"
BIN_DIR = Path(sys.executable).parent
READY_PREFIX = "Webex API simulator listening on "
START_TIMEOUT = 60


class Simulator:
    """A simulator process on 127.0.0.1 and helpers for its /_simulator/ control API."""

    def __init__(self, fixture: Path, *cli_args: str) -> None:
        self.fixture = fixture
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.simulator", "--fixture", str(fixture),
             "--host", "127.0.0.1", "--port", "0", *cli_args],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.api_url = self._wait_until_ready()
        self.base_url = self.api_url[: -len("/v1")]
        self._stderr_lines: list[str] = []
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def _wait_until_ready(self) -> str:
        timer = threading.Timer(START_TIMEOUT, self.process.kill)
        timer.start()
        try:
            line = self.process.stdout.readline()
        finally:
            timer.cancel()
        if not line.startswith(READY_PREFIX):
            self.process.kill()
            raise RuntimeError(
                f"simulator did not start: stdout {line!r}, stderr {self.process.stderr.read()!r}"
            )
        return line[len(READY_PREFIX):].strip()

    def _drain_stderr(self) -> None:
        for line in self.process.stderr:
            self._stderr_lines.append(line)

    def control(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(method, f"{self.base_url}/_simulator/{path}", timeout=30,
                                    **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def set_faults(self, **faults: Any) -> None:
        self.control("PUT", "faults", json=faults)

    def requests(self) -> list[dict]:
        return self.control("GET", "requests")["items"]

    def clear_requests(self) -> None:
        self.control("DELETE", "requests")

    def reset(self) -> None:
        self.control("POST", "reset")

    def api(self, method: str, path: str, token: str = "demo-partner-token", **kwargs: Any):
        """Call the simulated Webex API directly, as another admin would between two runs."""
        headers = {"Authorization": f"Bearer {token}"}
        return requests.request(method, f"{self.api_url}{path}", headers=headers, timeout=30,
                                **kwargs)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class PlaybookRun:
    rc: int
    stdout: str
    stderr: str
    results: list[dict] = field(default_factory=list)

    def task(self, name: str, host: str | None = None) -> dict:
        """Return the record of the named task (the last one when a task ran several times)."""
        matches = [r for r in self.results
                   if r["task"] == name and (host is None or r["host"] == host)]
        assert matches, f"task {name!r} not found in {[r['task'] for r in self.results]}"
        return matches[-1]


@pytest.fixture(scope="module")
def _demo_simulator():
    simulator = Simulator(DEMO_FIXTURE)
    yield simulator
    simulator.stop()


@pytest.fixture
def simulator(_demo_simulator):
    """The demo simulator, reset to the fixture state for each test."""
    _demo_simulator.reset()
    yield _demo_simulator


@pytest.fixture
def start_simulator():
    started: list[Simulator] = []

    def start(fixture: Path | str, *cli_args: str) -> Simulator:
        simulator = Simulator(Path(fixture), *cli_args)
        started.append(simulator)
        return simulator

    yield start
    for simulator in started:
        simulator.stop()


@pytest.fixture
def inventory_db(tmp_path) -> Path:
    return tmp_path / "inventory.db"


@pytest.fixture
def ansible_env(tmp_path, inventory_db) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("WEBEX_")}
    # Modules unpack their payload under TMPDIR; a module killed by a test leaves it there,
    # so keep it inside the test's own directory.
    module_tmp = tmp_path / "module-tmp"
    module_tmp.mkdir(exist_ok=True)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_DIR),
        "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACK_DIR),
        "ANSIBLE_CALLBACKS_ENABLED": "result_log",
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
        "WEBEX_INVENTORY_DB": str(inventory_db),
        "TMPDIR": str(module_tmp),
        "PATH": f"{BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}",
    })
    return env


@pytest.fixture
def run_playbook(tmp_path, ansible_env):
    """Run tasks (or a playbook file) with ansible-playbook and collect each task's result."""
    counter = {"runs": 0}

    def run(tasks: list[dict] | None = None, *, playbook: Path | str | None = None,
            check: bool = False, diff: bool = False, extra_env: dict | None = None,
            verbosity: int = 0, module_defaults: dict | None = None,
            play_vars: dict | None = None, inventory: Path | str | None = None,
            extra_vars: dict | None = None, forks: int | None = None,
            limit: str | None = None) -> PlaybookRun:
        counter["runs"] += 1
        run_dir = tmp_path / f"run{counter['runs']}"
        run_dir.mkdir()
        if playbook is None:
            play = {"name": "integration test", "hosts": "localhost",
                    "connection": "local", "gather_facts": False, "tasks": tasks or []}
            if module_defaults:
                play["module_defaults"] = module_defaults
            if play_vars:
                play["vars"] = play_vars
            playbook = run_dir / "playbook.yml"
            playbook.write_text(yaml.safe_dump([play], sort_keys=False))
        result_log = run_dir / "results.jsonl"
        env = dict(ansible_env, RESULT_LOG=str(result_log), **(extra_env or {}))

        command = [str(BIN_DIR / "ansible-playbook"), str(playbook)]
        command += ["-i", str(inventory) if inventory else "localhost,"]
        if check:
            command.append("--check")
        if diff:
            command.append("--diff")
        if verbosity:
            command.append("-" + "v" * verbosity)
        if extra_vars:
            command += ["--extra-vars", json.dumps(extra_vars)]
        if forks:
            command += ["--forks", str(forks)]
        if limit:
            command += ["--limit", limit]

        completed = subprocess.run(command, cwd=run_dir, env=env, capture_output=True,
                                   text=True, timeout=900, check=False)
        results = []
        if result_log.exists():
            results = [json.loads(line) for line in result_log.read_text().splitlines()]
        return PlaybookRun(completed.returncode, completed.stdout, completed.stderr, results)

    return run
