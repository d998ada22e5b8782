"""Reliability of webex_license_sync under API faults: every failure leaves the store as it was.

Each case runs the real module through ansible-playbook against the simulator, with faults
injected by the simulator's control API, and then reads the inventory file with sqlite3.
docs/reliability.md lists the cases and what each one proves.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from ansible_collections.ucops.webex.plugins.module_utils.inventory_schema import SCHEMA_VERSION
from tests.integration.helpers import inventory_consumed_units, live_consumed_units
from tests.integration.reliability_support import (
    BOREALIS,
    assert_inventory_matches_org,
    assert_store_unchanged,
    assign_outside_license,
    dump_store,
    module_args,
)
from tests.simulator.generate import build_fixture, write_fixture

CUSTOMER = "Borealis Logistics"
# Borealis has 150 people, so 50 per page gives three pages of GET /v1/people.
PAGE_SIZE = 50
PEOPLE_PAGES = 3
REFRESH_OPTIONS = {"client_id": "demo-client-id", "client_secret": "demo-client-secret",
                   "refresh_token": "demo-refresh-token"}

# Inventory files prepared once per test process, copied into each test's own path.
_PREPARED: dict[str, Path] = {}


def sync_task(simulator, **options):
    args = module_args(simulator, customer=CUSTOMER, people_page_size=PAGE_SIZE)
    args.update(options)
    return {"name": "sync", "ucops.webex.webex_license_sync": args, "ignore_errors": True}


@pytest.fixture
def borealis_store(simulator, run_playbook, inventory_db, tmp_path_factory):
    """Borealis added and synced, then one license assigned live that the store lacks.

    Returns (dump of the store, the (person id, license id) assigned after the sync).
    """
    prepared = _PREPARED.get(CUSTOMER)
    if prepared is None:
        run = run_playbook([
            {"name": "add", "ucops.webex.webex_customer": module_args(
                simulator, name=CUSTOMER, org_id=BOREALIS["id"])},
            sync_task(simulator),
        ])
        assert run.rc == 0, run.stdout
        prepared = tmp_path_factory.mktemp("prepared") / "inventory.db"
        shutil.copyfile(inventory_db, prepared)
        _PREPARED[CUSTOMER] = prepared
    else:
        shutil.copyfile(prepared, inventory_db)
    assert not Path(f"{inventory_db}-wal").exists()

    assigned = assign_outside_license(simulator)
    simulator.clear_requests()
    return dump_store(inventory_db), assigned


def people_statuses(simulator) -> list[int]:
    return [entry["status"] for entry in simulator.requests() if entry["path"] == "/v1/people"]


def assert_failed_unchanged(run, inventory_db, before, *fragments: str) -> dict:
    record = run.task("sync")
    assert record["failed"], record["result"]
    message = record["result"]["msg"]
    assert f"sync of customer '{CUSTOMER}' failed and the inventory was not changed" in message
    for fragment in fragments:
        assert fragment in message
    new_history = assert_store_unchanged(inventory_db, before, failed_syncs=1)
    assert record["result"]["history_id"] == new_history[0]["id"]
    return record["result"]


def assert_synced_live(run, inventory_db, simulator, assigned) -> dict:
    record = run.task("sync")
    assert not record["failed"], record["result"].get("msg")
    assert record["changed"]
    assert_inventory_matches_org(inventory_db, CUSTOMER, BOREALIS, extra_links=(assigned,))
    live = live_consumed_units(simulator, BOREALIS["id"])
    stored = inventory_consumed_units(inventory_db, CUSTOMER)
    hybrid = {item["id"] for item in BOREALIS["licenses"] if item["name"].startswith("Hybrid")}
    assert {k: v for k, v in stored.items() if k not in hybrid} == {
        k: v for k, v in live.items() if k not in hybrid}
    return record["result"]


# -- throttling ---------------------------------------------------------------------------


def test_throttled_large_sync_completes(start_simulator, run_playbook, inventory_db, tmp_path):
    fixture = build_fixture(20000, seed=11, locations=50, workspaces=200)
    org = fixture["organizations"][0]
    fixture_path = tmp_path / "large.json"
    write_fixture(fixture, str(fixture_path))
    simulator = start_simulator(fixture_path, "--throttle-every", "3", "--retry-after", "0")
    args = {"api_url": simulator.api_url, "access_token": "sim-token"}
    added = run_playbook([{"name": "add", "ucops.webex.webex_customer": dict(
        args, name="Large", org_id=org["id"])}])
    assert added.rc == 0, added.stdout
    # Two 429s with Retry-After: 1 on top, so the wait budget is really used.
    simulator.set_faults(throttle_every=3, retry_after=0, rules=[
        {"method": "GET", "path": "/v1/licenses", "status": 429, "times": 2, "retry_after": 1}])
    simulator.clear_requests()
    sync = {"name": "sync", "ucops.webex.webex_license_sync": dict(
        args, customer="Large", people_page_size=100, max_retry_wait=5), "ignore_errors": True}

    run = run_playbook([sync])

    record = run.task("sync")
    assert not record["failed"], record["result"].get("msg")
    stats = record["result"]["api_requests"]
    throttled = [entry for entry in simulator.requests() if entry["status"] == 429]
    assert len(throttled) >= stats["requests"] // 3
    assert stats["retries"] == len(throttled)
    assert stats["waited_seconds"] == 2.0
    assert stats["waited_seconds"] <= 5
    assert record["result"]["fetched"]["people"] == 20000
    assert_inventory_matches_org(inventory_db, "Large", org)

    simulator.set_faults()
    clean = run_playbook([sync], check=True)

    record = clean.task("sync")
    assert not record["failed"], record["result"].get("msg")
    assert record["changed"] is False
    assert record["result"]["api_requests"]["retries"] == 0
    assert record["result"]["summary"]["people"]["unchanged"] == 20000


def test_throttle_budget_exceeded_fails(simulator, run_playbook, inventory_db, borealis_store):
    before, _assigned = borealis_store
    simulator.set_faults(rules=[{"method": "GET", "path": "/v1/people", "status": 429,
                                 "skip": 1, "times": None, "retry_after": 1}])

    run = run_playbook([sync_task(simulator, max_retry_wait=2.5)])

    result = assert_failed_unchanged(run, inventory_db, before, "GET /v1/people", "HTTP 429",
                                     "would exceed max_retry_wait (2.5 s")
    assert result["api_requests"]["waited_seconds"] == 2.0
    assert people_statuses(simulator) == [200, 429, 429, 429]


def test_locked_with_retry_after_is_sent_again(simulator, run_playbook, inventory_db,
                                               borealis_store):
    """HTTP 423 (Locked) with Retry-After, on a read of the sync: waited out, then sent again;
    without Retry-After the sync fails and names the status."""
    before, assigned = borealis_store
    simulator.set_faults(rules=[
        {"method": "GET", "path": "/v1/people", "status": 423, "times": 2, "retry_after": 0}])

    run = run_playbook([sync_task(simulator)])

    result = assert_synced_live(run, inventory_db, simulator, assigned)
    assert result["api_requests"]["retries"] == 2
    assert people_statuses(simulator)[:3] == [423, 423, 200]


def test_locked_without_retry_after_fails(simulator, run_playbook, inventory_db, borealis_store):
    before, _assigned = borealis_store
    simulator.set_faults(rules=[{"method": "GET", "path": "/v1/people", "status": 423}])

    run = run_playbook([sync_task(simulator)])

    assert_failed_unchanged(run, inventory_db, before, "GET /v1/people", "HTTP 423")
    assert people_statuses(simulator) == [423]


# -- paging -------------------------------------------------------------------------------


def test_offset_short_pages_read_whole(
    simulator, run_playbook, inventory_db, borealis_store
):
    """GET /v1/workspaces without Link headers (offset paging, as its OpenAPI description
    has it) from a server whose pages hold fewer items than max: the sync reads to the
    first empty page, so it removes no stored workspace."""
    _before, assigned = borealis_store
    workspaces = len(BOREALIS["workspaces"])
    per_page = 5
    simulator.set_faults(rules=[{"method": "GET", "path": "/v1/workspaces", "drop_link": True,
                                 "max_items": per_page}])

    run = run_playbook([sync_task(simulator)])

    result = assert_synced_live(run, inventory_db, simulator, assigned)
    assert result["fetched"]["workspaces"] == workspaces
    assert result["summary"]["workspaces"]["removed"] == 0
    starts = [entry["query"].get("start") for entry in simulator.requests()
              if entry["path"] == "/v1/workspaces"]
    pages = -(-workspaces // per_page)
    assert starts == [None] + [str(n * per_page) for n in range(1, pages)] + [str(workspaces)]


# -- server errors ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [502, 503, 504])
def test_short_server_error_burst_completes(simulator, run_playbook, inventory_db,
                                            borealis_store, status):
    _before, assigned = borealis_store
    simulator.set_faults(rules=[{"method": "GET", "path": "/v1/people", "status": status,
                                 "skip": 1, "times": 2}])

    run = run_playbook([sync_task(simulator)])

    result = assert_synced_live(run, inventory_db, simulator, assigned)
    assert people_statuses(simulator) == [200, status, status, 200, 200]
    assert result["api_requests"]["retries"] == 2


@pytest.mark.parametrize(("status", "max_retry_wait", "fragment"), [
    (502, 30, "Gave up after 4 retries"),
    (504, 2, "would exceed max_retry_wait (2 s"),
], ids=["retry-count", "wait-budget"])
def test_long_server_error_burst_fails(simulator, run_playbook, inventory_db, borealis_store,
                                       status, max_retry_wait, fragment):
    before, _assigned = borealis_store
    simulator.set_faults(rules=[{"method": "GET", "path": "/v1/people", "status": status,
                                 "skip": 1, "times": None}])

    run = run_playbook([sync_task(simulator, max_retry_wait=max_retry_wait)])

    result = assert_failed_unchanged(run, inventory_db, before, "GET /v1/people",
                                     f"HTTP {status}", fragment)
    assert result["status"] == status
    assert result["api_requests"]["waited_seconds"] <= max_retry_wait


def test_error_on_last_people_page(simulator, run_playbook, inventory_db, borealis_store):
    before, _assigned = borealis_store
    simulator.set_faults(rules=[{"method": "GET", "path": "/v1/people", "status": 500,
                                 "skip": PEOPLE_PAGES - 1, "times": None}])

    run = run_playbook([sync_task(simulator)])

    assert_failed_unchanged(run, inventory_db, before, "GET /v1/people", "HTTP 500")
    assert people_statuses(simulator) == [200] * (PEOPLE_PAGES - 1) + [500]


# -- token expiry -------------------------------------------------------------------------

EXPIRED_ON_PAGE_TWO = {"method": "GET", "path": "/v1/people", "status": 401, "skip": 1,
                       "times": 1}


def test_token_expiry_with_refresh_completes(simulator, run_playbook, inventory_db,
                                             borealis_store):
    _before, assigned = borealis_store
    simulator.set_faults(rules=[EXPIRED_ON_PAGE_TWO])

    run = run_playbook([sync_task(simulator, **REFRESH_OPTIONS)])

    result = assert_synced_live(run, inventory_db, simulator, assigned)
    assert result["api_requests"]["refreshes"] == 1
    log = [(entry["method"], entry["path"], entry["status"]) for entry in simulator.requests()]
    expired_at = log.index(("GET", "/v1/people", 401))
    assert log[expired_at + 1] == ("POST", "/v1/access_token", 200)
    assert log[expired_at + 2] == ("GET", "/v1/people", 200)


def test_token_expiry_without_refresh_fails(simulator, run_playbook, inventory_db,
                                            borealis_store):
    before, _assigned = borealis_store
    simulator.set_faults(rules=[EXPIRED_ON_PAGE_TWO])

    run = run_playbook([sync_task(simulator)])

    result = assert_failed_unchanged(run, inventory_db, before, "GET /v1/people", "HTTP 401",
                                     "access token is invalid or expired", "refresh_token")
    assert result["status"] == 401
    assert people_statuses(simulator) == [200, 401]


# -- malformed responses ------------------------------------------------------------------

MALFORMED = {
    "truncated": ({"body": "truncated", "status": 200}, 30, ["invalid JSON in response"], 2),
    "proxy-html-200": ({"body": "html", "status": 200}, 30,
                       ["invalid JSON in response (content-type text/html", "nginx"], 2),
    "proxy-html-502": ({"body": "html", "status": 502, "times": None}, 2,
                       ["HTTP 502", "content-type text/html", "Bad Gateway",
                        "max_retry_wait"], None),
    "no-items": ({"body": "no_items"}, 30, ["page 2 of the list has no 'items' key"], 2),
    "repeat-page": ({"repeat_page": True, "times": 1}, 30,
                    ["page 2 links to a page that was already fetched",
                     "to avoid a loop"], 2),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_response_fails(simulator, run_playbook, inventory_db, borealis_store, case):
    before, _assigned = borealis_store
    rule, max_retry_wait, fragments, people_requests = MALFORMED[case]
    simulator.set_faults(rules=[dict({"method": "GET", "path": "/v1/people", "skip": 1},
                                     **rule)])

    run = run_playbook([sync_task(simulator, max_retry_wait=max_retry_wait)])

    assert_failed_unchanged(run, inventory_db, before, "GET /v1/people", *fragments)
    statuses = people_statuses(simulator)
    if people_requests is not None:
        # The page bodies are decoded by the module process, after the fetch process has
        # already asked for the next page, so pages after the malformed one may be read.
        assert statuses[:people_requests] == [200] * people_requests
        assert people_requests <= len(statuses) <= PEOPLE_PAGES
    else:
        assert 2 < len(statuses) <= 6


# -- unusable store files -----------------------------------------------------------------


def write_newer_schema(path: Path) -> None:
    connection = sqlite3.connect(str(path))
    connection.execute("CREATE TABLE customers (name TEXT PRIMARY KEY)")
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.commit()
    connection.close()


STORE_FILES = {
    "text": (lambda path: path.write_text("customer,org\nAlpine,abc\n" * 20),
             "is not an SQLite database"),
    "short": (lambda path: path.write_bytes(b"\x00garbage"), "is not an SQLite database"),
    "newer-schema": (write_newer_schema, f"has schema version {SCHEMA_VERSION + 1}, newer"),
}


@pytest.mark.parametrize("kind", list(STORE_FILES))
def test_unusable_store_file_untouched(simulator, run_playbook, inventory_db, kind):
    write_file, fragment = STORE_FILES[kind]
    write_file(inventory_db)
    original = inventory_db.read_bytes()
    tasks = [
        {"name": "customer", "ucops.webex.webex_customer": module_args(
            simulator, name=CUSTOMER, org_id=BOREALIS["id"])},
        sync_task(simulator),
        {"name": "info", "ucops.webex.webex_license_info": module_args(
            simulator, source="inventory", customer=CUSTOMER)},
        {"name": "user license", "ucops.webex.webex_user_license": module_args(
            simulator, customer=CUSTOMER, user=BOREALIS["people"][5]["emails"][0],
            licenses=["Advanced Messaging"])},
    ]
    for task in tasks:
        task["ignore_errors"] = True

    run = run_playbook(tasks)

    for name in ("customer", "sync", "info", "user license"):
        record = run.task(name)
        assert record["failed"], (name, record["result"])
        message = record["result"]["msg"]
        assert str(inventory_db) in message, (name, message)
        assert fragment in message, (name, message)
        assert "inventory_db" in message, (name, message)
    assert inventory_db.read_bytes() == original
    assert sorted(path.name for path in inventory_db.parent.iterdir()
                  if path.name.startswith(inventory_db.name)) == [inventory_db.name]
    assert [entry for entry in simulator.requests() if entry["method"] != "GET"] == []
