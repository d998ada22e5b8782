"""A sync whose module process is killed or stopped leaves the store intact.

SIGKILL while it commits:

The kill is real and timed by polling: the test waits until the inventory's write-ahead log
(``inventory.db-wal``) grows, which happens only inside the sync's commit transaction, and
then sends SIGKILL to the module's Python process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

from tests.integration.reliability_support import (
    BOREALIS,
    assert_inventory_matches_org,
    assert_store_unchanged,
    dump_store,
    history_rows,
    module_args,
)
from tests.simulator.generate import build_fixture, write_fixture

MODULE_SCRIPT = "AnsiballZ_webex_license_sync.py"
# The staging tables live in temporary files, so the WAL of the inventory only grows in
# the commit. A commit of 10,000 people writes tens of MB, so 1 MB is well inside it.
WAL_COMMIT_BYTES = 1024 * 1024
POLL_SECONDS = 0.0005
KILL_DEADLINE_SECONDS = 240


def find_module_process(remote_tmp: Path) -> int | None:
    """Return the pid of the Python process running the sync module from ``remote_tmp``."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(argv) < 2:
            continue
        script = argv[1].decode(errors="replace")
        if script.startswith(str(remote_tmp)) and script.endswith(MODULE_SCRIPT):
            return int(entry)
    return None


def wal_size(db_path: Path) -> int:
    try:
        return os.stat(f"{db_path}-wal").st_size
    except FileNotFoundError:
        return 0


def kill_during_commit(db_path: Path, remote_tmp: Path, finished: threading.Event) -> dict:
    """Wait for the module process and its commit, then SIGKILL it; return what was seen."""
    deadline = time.monotonic() + KILL_DEADLINE_SECONDS
    pid = None
    while pid is None and not finished.is_set() and time.monotonic() < deadline:
        pid = find_module_process(remote_tmp)
        time.sleep(0.01)
    assert pid is not None, "the module process never started"

    while not finished.is_set() and time.monotonic() < deadline:
        size = wal_size(db_path)
        if size > WAL_COMMIT_BYTES:
            os.kill(pid, signal.SIGKILL)
            return {"pid": pid, "wal_bytes": size}
        time.sleep(POLL_SECONDS)
    raise AssertionError("the sync ended before its commit was seen in the WAL")


def test_sigkill_during_commit_keeps_store(start_simulator, run_playbook, inventory_db,
                                           tmp_path):
    fixture = build_fixture(10000, seed=13, locations=20, workspaces=100)
    org = fixture["organizations"][0]
    fixture_path = tmp_path / "large.json"
    write_fixture(fixture, str(fixture_path))
    simulator = start_simulator(fixture_path)
    args = {"api_url": simulator.api_url, "access_token": "sim-token"}
    sync = {"name": "sync", "ucops.webex.webex_license_sync": dict(args, customer="Killed"),
            "ignore_errors": True}
    light = run_playbook([
        {"name": "add", "ucops.webex.webex_customer": dict(args, name="Killed", org_id=org["id"])},
        {"name": "light sync", "ucops.webex.webex_license_sync": dict(
            args, customer="Killed", scope=["licenses", "roles"])},
    ])
    assert light.rc == 0, light.stdout
    assert not Path(f"{inventory_db}-wal").exists()
    before = dump_store(inventory_db)

    # The full sync runs in a thread; this thread kills its module process mid-commit.
    remote_tmp = tmp_path / "remote-tmp"
    outcome: dict = {}
    finished = threading.Event()

    def run_sync() -> None:
        outcome["run"] = run_playbook([sync], extra_env={"ANSIBLE_REMOTE_TMP": str(remote_tmp)})
        finished.set()

    worker = threading.Thread(target=run_sync)
    worker.start()
    try:
        killed = kill_during_commit(inventory_db, remote_tmp, finished)
    finally:
        worker.join(timeout=KILL_DEADLINE_SECONDS)

    record = outcome["run"].task("sync")
    assert record["failed"], record["result"]
    assert killed["wal_bytes"] > WAL_COMMIT_BYTES
    assert find_module_process(remote_tmp) is None
    assert dump_store(inventory_db) == before
    with contextlib.closing(sqlite3.connect(str(inventory_db))) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    rerun = run_playbook([sync])

    record = rerun.task("sync")
    assert not record["failed"], record["result"].get("msg")
    assert record["changed"]
    assert record["result"]["summary"]["people"]["added"] == 10000
    assert_inventory_matches_org(inventory_db, "Killed", org)
    with contextlib.closing(sqlite3.connect(str(inventory_db))) as connection:
        outcomes = [row[0] for row in connection.execute(
            "SELECT outcome FROM sync_history ORDER BY id")]
    assert outcomes == ["success", "success"]


def sync_module_running(inventory_db) -> bool:
    """Tell whether a webex_license_sync module process of this test's inventory runs."""
    marker = f"WEBEX_INVENTORY_DB={inventory_db}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                command = handle.read()
            with open(f"/proc/{entry}/environ", "rb") as handle:
                environment = handle.read().split(b"\0")
        except OSError:
            continue
        if b"webex_license_sync" in command and marker in environment:
            return True
    return False


def add_slow_customer(simulator, run_playbook, inventory_db):
    """Add Borealis and slow the simulator down; return the module arguments and the store
    dump before the sync. With 2 people per page the listing then takes about 8 s (100 ms
    per request)."""
    args = module_args(simulator)
    added = run_playbook([{"name": "add", "ucops.webex.webex_customer": dict(
        args, name="Borealis Logistics", org_id=BOREALIS["id"])}])
    assert added.rc == 0, added.stdout
    before = dump_store(inventory_db)
    simulator.set_faults(latency_ms=100)
    return args, before


def test_task_timeout_commits_nothing(simulator, run_playbook, inventory_db):
    # Ansible stops waiting for a task at its timeout but leaves a module that runs on the
    # controller running. The sync must notice that Ansible no longer reads its result and
    # commit nothing.
    args, before = add_slow_customer(simulator, run_playbook, inventory_db)

    run = run_playbook([{"name": "sync", "timeout": 2, "ignore_errors": True,
                         "ucops.webex.webex_license_sync": dict(
                             args, customer="Borealis Logistics", people_page_size=2)}])

    record = run.task("sync")
    assert record["failed"]
    # ansible-core 2.19 writes "Timed out after 2 seconds", older releases
    # "The task ... timed out after 2 seconds".
    assert "timed out" in record["result"]["msg"].lower()
    # The module ends after its listing (about 8 s, much longer on a loaded machine) and
    # records the failure, unless it was ended before that. The row is written just before
    # the process ends, so wait for the process itself.
    deadline = time.monotonic() + 180
    while sync_module_running(inventory_db) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not sync_module_running(inventory_db), "the sync module is still running"
    recorded = len(history_rows(inventory_db))
    assert recorded <= 1
    failed = assert_store_unchanged(inventory_db, before, failed_syncs=recorded)
    # With ansible-core 2.19 the module receives SIGTERM, passed on by the ended worker
    # process. A module left running finds no reader of its standard output instead.
    for row in failed:
        assert ("task that ran this sync has ended" in row["error"]
                or "received SIGTERM before the changes were committed" in row["error"])


def test_sigterm_during_listing_records_failure(simulator, run_playbook, inventory_db, tmp_path):
    # A cancelled AWX job or CI run sends SIGTERM. The sync must abort, keep the store and
    # record the failure in the sync history, instead of ending without a trace.
    args, before = add_slow_customer(simulator, run_playbook, inventory_db)
    simulator.clear_requests()
    remote_tmp = tmp_path / "remote-tmp"
    outcome: dict = {}
    finished = threading.Event()

    def run_sync() -> None:
        outcome["run"] = run_playbook(
            [{"name": "sync", "ignore_errors": True, "ucops.webex.webex_license_sync": dict(
                args, customer="Borealis Logistics", people_page_size=2)}],
            extra_env={"ANSIBLE_REMOTE_TMP": str(remote_tmp)},
        )
        finished.set()

    worker = threading.Thread(target=run_sync)
    worker.start()
    try:
        # The handlers are installed before the first request, so wait for a page of people.
        deadline = time.monotonic() + KILL_DEADLINE_SECONDS
        pid = None
        while not finished.is_set() and time.monotonic() < deadline:
            pid = find_module_process(remote_tmp)
            listed = [entry for entry in simulator.requests()
                      if entry["path"].startswith("/v1/people")]
            if pid is not None and listed:
                break
            time.sleep(0.05)
        assert pid is not None and not finished.is_set(), "the listing was not seen"
        os.kill(pid, signal.SIGTERM)
    finally:
        worker.join(timeout=KILL_DEADLINE_SECONDS)

    record = outcome["run"].task("sync")
    assert record["failed"]
    message = record["result"]["msg"]
    assert "received SIGTERM before the changes were committed" in message, message
    assert "the inventory was not changed" in message, message
    assert find_module_process(remote_tmp) is None
    failed = assert_store_unchanged(inventory_db, before, failed_syncs=1)
    assert "received SIGTERM" in failed[0]["error"], failed[0]
    assert record["result"]["history_id"] == failed[0]["id"]


def run_sync_in_thread(run_playbook, args, remote_tmp, **options):
    """Start the Borealis sync in a thread; return (outcome dict, finished event, thread)."""
    outcome: dict = {}
    finished = threading.Event()

    def run_sync() -> None:
        outcome["run"] = run_playbook(
            [{"name": "sync", "ignore_errors": True, "ucops.webex.webex_license_sync": dict(
                args, customer="Borealis Logistics", **options)}],
            extra_env={"ANSIBLE_REMOTE_TMP": str(remote_tmp)},
        )
        finished.set()

    worker = threading.Thread(target=run_sync)
    worker.start()
    return outcome, finished, worker


def wait_for_request(simulator, remote_tmp, finished, predicate) -> int:
    """Wait until the module process runs and the simulator logged a matching request;
    return the module's pid."""
    deadline = time.monotonic() + KILL_DEADLINE_SECONDS
    while not finished.is_set() and time.monotonic() < deadline:
        pid = find_module_process(remote_tmp)
        if pid is not None and any(predicate(entry) for entry in simulator.requests()):
            return pid
        time.sleep(0.05)
    raise AssertionError("the module process or the request was not seen")


def test_sigterm_ends_long_retry_wait(simulator, run_playbook, inventory_db, tmp_path):
    # The page-reading child sleeps through a Retry-After of 300 s. A stop signal must end
    # the sync without waiting for it.
    args = module_args(simulator)
    added = run_playbook([{"name": "add", "ucops.webex.webex_customer": dict(
        args, name="Borealis Logistics", org_id=BOREALIS["id"])}])
    assert added.rc == 0, added.stdout
    before = dump_store(inventory_db)
    simulator.set_faults(rules=[{"method": "GET", "path": "/v1/people", "status": 429,
                                 "retry_after": 300, "skip": 1, "times": None}])
    remote_tmp = tmp_path / "remote-tmp"

    outcome, finished, worker = run_sync_in_thread(
        run_playbook, args, remote_tmp, people_page_size=2, max_retry_wait=600)
    try:
        pid = wait_for_request(simulator, remote_tmp, finished,
                               lambda entry: entry["status"] == 429)
        os.kill(pid, signal.SIGTERM)
        # Far below the Retry-After: the sync ends at the signal, not after the wait.
        worker.join(timeout=120)
        assert not worker.is_alive(), "the sync still waits out the Retry-After"
    finally:
        worker.join(timeout=KILL_DEADLINE_SECONDS)

    record = outcome["run"].task("sync")
    assert record["failed"]
    assert "received SIGTERM" in record["result"]["msg"]
    failed = assert_store_unchanged(inventory_db, before, failed_syncs=1)
    assert "received SIGTERM" in failed[0]["error"]


def test_sigterm_during_lock_wait_commits_nothing(simulator, run_playbook, inventory_db,
                                                  tmp_path):
    # Another writer has the inventory's write lock while the sync lists. A stop signal before the
    # sync's write transaction begins must stop it, not let the commit land later.
    args = module_args(simulator)
    added = run_playbook([{"name": "add", "ucops.webex.webex_customer": dict(
        args, name="Borealis Logistics", org_id=BOREALIS["id"])}])
    assert added.rc == 0, added.stdout
    before = dump_store(inventory_db)
    remote_tmp = tmp_path / "remote-tmp"
    holder = sqlite3.connect(str(inventory_db), isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        outcome, finished, worker = run_sync_in_thread(run_playbook, args, remote_tmp)
        try:
            pid = wait_for_request(simulator, remote_tmp, finished,
                                   lambda entry: entry["path"] == "/v1/workspaces")
            os.kill(pid, signal.SIGTERM)
        finally:
            holder.execute("ROLLBACK")
    finally:
        holder.close()
    worker.join(timeout=KILL_DEADLINE_SECONDS)

    record = outcome["run"].task("sync")
    assert record["failed"], record["result"]
    assert "received SIGTERM" in record["result"]["msg"]
    failed = assert_store_unchanged(inventory_db, before, failed_syncs=1)
    assert "received SIGTERM" in failed[0]["error"]
