"""The child process that reads a sync's pages (fetch_process.PageProcess), over HTTP against
the demo simulator. The module tests (test_license_sync.py, test_reliability_*.py) run
every sync through it. These tests cover what only shows from the parent's side."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from ansible_collections.ucops.webex.plugins.module_utils import fetch_process, sync
from ansible_collections.ucops.webex.plugins.module_utils.fetch_process import PageProcess
from ansible_collections.ucops.webex.plugins.module_utils.inventory import InventoryStore
from ansible_collections.ucops.webex.plugins.module_utils.inventory_sync import SyncSession
from ansible_collections.ucops.webex.plugins.module_utils.webex_api import (
    WebexApiError,
    WebexClient,
)
from tests.integration.helpers import ORGS, PARTNER_TOKEN

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the fetch process is used on Linux only")

BOREALIS = ORGS["Borealis Logistics"]
SCOPE = ("licenses", "roles", "people", "locations", "workspaces")
PAGE_SIZE = 2
REFRESH_OPTIONS = {"client_id": "demo-client-id", "client_secret": "demo-client-secret",
                   "refresh_token": "demo-refresh-token"}


def new_client(simulator, **options) -> WebexClient:
    options.setdefault("access_token", PARTNER_TOKEN)
    client = WebexClient(simulator.api_url, org_id=BOREALIS["id"], **options)
    return client


def requests_list(client):
    return sync.list_requests(client, SCOPE, PAGE_SIZE)


def read_all(source: PageProcess) -> list:
    try:
        return list(source.pages())
    finally:
        source.stop()


def assert_reaped(pid: int) -> None:
    """The child has ended and was waited for (no zombie left)."""
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_pages_equal_those_read_in_process(simulator):
    in_process = new_client(simulator)
    expected = list(sync.fetch_pages(in_process, SCOPE, PAGE_SIZE))
    simulator.clear_requests()
    client = new_client(simulator)

    source = PageProcess(client, requests_list(client))
    pages = list(sync.whole_lists(iter(read_all(source))))

    assert pages == expected
    assert [object_type for object_type, _page in pages].count("people") > 2
    assert client.stats["requests"] == len(simulator.requests()) == in_process.stats["requests"]
    assert_reaped(source.pid)


def test_api_error_reaches_parent_with_details(simulator):
    simulator.set_faults(rules=[{"method": "GET", "path": "/v1/people", "status": 400,
                                 "skip": 1, "times": 1}])
    client = new_client(simulator)
    source = PageProcess(client, requests_list(client))

    with pytest.raises(WebexApiError) as raised:
        read_all(source)

    error = raised.value
    assert error.status == 400
    assert error.method == "GET"
    assert error.path == "/v1/people"
    assert error.tracking_id
    assert error.tracking_id in str(error)
    # licenses, roles and two people pages
    assert client.stats["requests"] == 4
    assert_reaped(source.pid)


def test_invalid_json_is_reported_by_parent(simulator):
    simulator.set_faults(rules=[{"method": "GET", "path": "/v1/people", "skip": 1,
                                 "body": "truncated", "status": 200, "times": 1}])
    client = new_client(simulator)

    source = PageProcess(client, requests_list(client))

    with pytest.raises(WebexApiError, match="invalid JSON in response") as raised:
        read_all(source)

    assert raised.value.path == "/v1/people"
    assert_reaped(source.pid)


def test_retries_in_child_are_counted_in_parent(simulator):
    simulator.set_faults(rules=[{"method": "GET", "path": "/v1/people", "status": 429,
                                 "skip": 1, "times": 2, "retry_after": 0}])
    client = new_client(simulator, max_retry_wait=10)

    read_all(PageProcess(client, requests_list(client)))

    assert client.stats["retries"] == 2
    assert client.stats["requests"] == len(simulator.requests())


def test_token_refreshed_in_child_is_kept_by_parent(simulator):
    simulator.set_faults(rules=[{"method": "GET", "path": "/v1/people", "status": 401,
                                 "skip": 1, "times": 1}])
    client = new_client(simulator, **REFRESH_OPTIONS)

    read_all(PageProcess(client, requests_list(client)))

    assert client.stats["refreshes"] == 1
    assert client.access_token != PARTNER_TOKEN
    # The parent uses the new token without a second refresh.
    simulator.set_faults()
    client.get("/licenses", client.org_params())
    assert client.stats["refreshes"] == 1
    assert client._scrub(f"token {client.access_token}") == "token ********"


def start_and_read_one_page(simulator):
    """Start a child with 50 ms before every response and read its first page."""
    simulator.set_faults(latency_ms=50)
    client = new_client(simulator)
    source = PageProcess(client, requests_list(client))
    pages = source.pages()
    next(pages)
    return source, pages


def test_stop_ends_a_child_still_reading(simulator):
    source, _pages = start_and_read_one_page(simulator)
    started = time.monotonic()

    source.stop()

    assert time.monotonic() - started < 5
    assert_reaped(source.pid)
    simulator.set_faults()
    assert len(simulator.requests()) < 8


def test_child_killed_is_reported(simulator):
    source, pages = start_and_read_one_page(simulator)
    os.kill(source.pid, signal.SIGKILL)

    with pytest.raises(WebexApiError, match="ended before it finished .killed by SIGKILL"):
        list(pages)

    source.stop()
    assert_reaped(source.pid)


def test_child_streams_and_name(simulator):
    simulator.set_faults(latency_ms=100)
    client = new_client(simulator)
    source = PageProcess(client, requests_list(client))
    try:
        deadline = time.monotonic() + 5
        while True:  # the child detaches its streams right after the fork
            links = {os.readlink(f"/proc/{source.pid}/fd/{fd}") for fd in (0, 1, 2)}
            comm = Path(f"/proc/{source.pid}/comm").read_text().strip()
            if links == {os.devnull} or time.monotonic() > deadline:
                break
            time.sleep(0.01)
    finally:
        source.stop()
    assert links == {os.devnull}
    assert comm == "webex-pages"


def test_child_uses_new_session(simulator):
    client = new_client(simulator)
    parent_session = client.session

    assert client.renew_session() is True
    assert client.session is not parent_session
    assert client.session.headers["User-Agent"] == parent_session.headers["User-Agent"]
    assert client.session.trust_env is False


def test_caller_session_disables_child(simulator):
    caller_session = requests.Session()
    client = WebexClient(simulator.api_url, access_token=PARTNER_TOKEN, session=caller_session)

    assert fetch_process.fetch_process_available(client) is False
    assert client.renew_session() is False
    assert client.session is caller_session
    assert fetch_process.fetch_process_available(new_client(simulator)) is True


def test_child_never_sends_through_parent_session(simulator, tmp_path):
    client = new_client(simulator)
    marker = tmp_path / "parent-session-used"
    send = client.session.request

    def spy(*args, **kwargs):
        marker.write_text("used")
        return send(*args, **kwargs)

    client.session.request = spy
    read_all(PageProcess(client, requests_list(client)))

    assert client.stats["requests"] > 3
    assert not marker.exists()


CHILD_OF_KILLED_PARENT = """
import os, sys, time
from ansible_collections.ucops.webex.plugins.module_utils import sync
from ansible_collections.ucops.webex.plugins.module_utils.fetch_process import PageProcess
from ansible_collections.ucops.webex.plugins.module_utils.webex_api import WebexClient

client = WebexClient(sys.argv[1], access_token=sys.argv[2], org_id=sys.argv[3])
source = PageProcess(client, sync.list_requests(client, ("people",), 1))
print(source.pid, flush=True)
time.sleep(60)
"""


def process_running(pid: int) -> bool:
    """Return True while ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_child_ends_when_parent_killed(simulator, tmp_path):
    # 20 s before each response: the child is waiting for its first page when the parent
    # is killed, so only the parent-death signal can end it within 5 s.
    simulator.set_faults(latency_ms=20000)
    script = tmp_path / "parent.py"
    script.write_text(CHILD_OF_KILLED_PARENT)
    parent = subprocess.Popen(
        [sys.executable, str(script), simulator.api_url, PARTNER_TOKEN, BOREALIS["id"]],
        stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    try:
        child = int(parent.stdout.readline())
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 5
        while process_running(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not process_running(child)
    finally:
        parent.kill()
        parent.wait(10)


# -- the child path against the in-process path, through run_license_sync ----------------

CUSTOMER = "Borealis Logistics"


def sync_once(api_url: str, db_path: Path, in_process: bool, **options) -> dict:
    """Run one sync of Borealis and return its outcome, request counters and message.

    A client given its own requests session reads the pages in this process.
    """
    params = {"customer": CUSTOMER, "inventory_db": str(db_path), "org_id": None,
              "scope": list(SCOPE), "people_page_size": PAGE_SIZE, "people_sample": 20,
              "warn_missing_defaults": False}
    options.setdefault("access_token", PARTNER_TOKEN)
    if in_process:
        options["session"] = requests.Session()
    try:
        result = sync.run_license_sync(
            params, lambda: WebexClient(api_url, **options), False, False, lambda _m: None)
    except sync.SyncError as error:
        outcome, stats, message = "failed", error.details["api_requests"], str(error)
    else:
        outcome, stats, message = "synced", result["api_requests"], ""
    return {"outcome": outcome, "stats": stats,
            "message": re.sub(r"ROUTER_[0-9A-F-]+", "ROUTER_*", message)}


def requests_of_sync(simulator) -> list:
    """Return the simulator's requests from the sync's first one (GET /v1/licenses) on.

    A request that a process of an earlier test sent just before that process was killed
    can reach the log after the simulator's reset for this test, with two pytest workers.
    Such a request comes before this test's first request.
    """
    logged = simulator.requests()
    first = next((index for index, entry in enumerate(logged)
                  if entry["path"] == "/v1/licenses"), 0)
    return logged[first:]


@pytest.fixture
def borealis_db(tmp_path) -> Path:
    path = tmp_path / "inventory.db"
    with InventoryStore(str(path)) as store:
        store.upsert_customer(CUSTOMER, org_id=BOREALIS["id"])
    return path


FAULTS = {
    "none": [],
    "people-400": [{"method": "GET", "path": "/v1/people", "status": 400, "skip": 1,
                    "times": 1}],
    "roles-truncated": [{"method": "GET", "path": "/v1/roles", "status": 200,
                         "body": "truncated", "times": 1}],
    "people-no-items": [{"method": "GET", "path": "/v1/people", "body": "no_items",
                         "skip": 2, "times": 1}],
    "locations-html": [{"method": "GET", "path": "/v1/locations", "status": 200,
                        "body": "html", "times": 1}],
    "workspaces-403": [{"method": "GET", "path": "/v1/workspaces", "status": 403,
                        "times": 1}],
}


@pytest.mark.parametrize("case", list(FAULTS))
def test_child_sync_matches_in_process(simulator, borealis_db, case):
    outcomes = {}
    for in_process in (True, False):
        simulator.reset()
        simulator.set_faults(rules=FAULTS[case])
        outcome = sync_once(simulator.api_url, borealis_db, in_process)
        outcome["logged"] = len(simulator.requests())
        outcomes[in_process] = outcome
    child, thread = outcomes[False], outcomes[True]

    assert child["outcome"] == thread["outcome"]
    assert child["message"] == thread["message"]
    assert thread["stats"]["requests"] == thread["logged"]
    # The child may read pages after a page the module process cannot decode. A request
    # still in flight when the module stops it is in the log but not counted.
    assert child["logged"] - 1 <= child["stats"]["requests"] <= child["logged"]
    assert child["stats"]["requests"] >= thread["stats"]["requests"]


def test_staging_error_keeps_child_counters(simulator, borealis_db, monkeypatch):
    stage_people = SyncSession.stage_people
    pages = []

    def stage_without_id(self, items):
        pages.append(len(items))
        if len(pages) == 2:
            items = [{key: value for key, value in items[0].items() if key != "id"}]
        return stage_people(self, items)

    monkeypatch.setattr(SyncSession, "stage_people", stage_without_id)
    outcome = sync_once(simulator.api_url, borealis_db, in_process=False)

    assert outcome["outcome"] == "failed"
    assert "id" in outcome["message"]
    logged = len(simulator.requests())
    assert logged - 1 <= outcome["stats"]["requests"] <= logged
    assert outcome["stats"]["requests"] >= 4


@pytest.mark.parametrize("in_process", [True, False], ids=["in-process", "child"])
def test_second_attempt_refreshes_expired_token(simulator, borealis_db, monkeypatch,
                                                in_process):
    # Only refresh credentials: the first attempt gets a token, which expires before the
    # second attempt (a sync runs again when stored people changed during the listing).
    stage_objects = sync.stage_objects
    attempts = []

    def stage_then_change(client, session, people_page_size):
        stage_objects(client, session, people_page_size)
        attempts.append(client.access_token)
        if len(attempts) == 1:
            simulator.control("POST", "tokens/expire", json={"accessToken": client.access_token})
            raise sync.PeopleChangedError("stored people changed")

    monkeypatch.setattr(sync, "stage_objects", stage_then_change)
    outcome = sync_once(simulator.api_url, borealis_db, in_process, access_token=None,
                        **REFRESH_OPTIONS)

    assert outcome["message"] == ""
    assert outcome["outcome"] == "synced"
    assert outcome["stats"]["refreshes"] == 2
    assert attempts[0] != attempts[1]


def test_other_child_error_matches_in_process(simulator, borealis_db, monkeypatch):
    next_link_url = WebexClient._next_link_url

    def broken_second_link(self, response, page_url, first_query):
        url = next_link_url(self, response, page_url, first_query)
        if url and "/people" in url:
            raise ValueError("Invalid IPv6 URL")
        return url

    monkeypatch.setattr(WebexClient, "_next_link_url", broken_second_link)
    outcomes = [sync_once(simulator.api_url, borealis_db, in_process)
                for in_process in (True, False)]

    assert outcomes[0]["outcome"] == outcomes[1]["outcome"] == "failed"
    assert outcomes[1]["message"] == outcomes[0]["message"]
    assert outcomes[1]["message"].endswith("Invalid IPv6 URL")
    assert outcomes[1]["stats"]["requests"] == outcomes[0]["stats"]["requests"] == 3


def test_failed_fork_reads_in_process(simulator, borealis_db, monkeypatch):
    def no_fork():
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(fetch_process.os, "fork", no_fork)
    outcome = sync_once(simulator.api_url, borealis_db, in_process=False)

    assert outcome["message"] == ""
    assert outcome["outcome"] == "synced"
    assert outcome["stats"]["requests"] == len(requests_of_sync(simulator))
    with contextlib.closing(sqlite3.connect(str(borealis_db))) as connection:
        people = connection.execute("SELECT COUNT(*) FROM people").fetchone()[0]
    assert people == len(BOREALIS["people"])
