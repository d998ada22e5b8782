"""Inventory writes from several processes, and a writer killed in the middle of a commit."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import sys
import time
import traceback

import pytest

from ansible_collections.ucops.webex.plugins.module_utils.inventory import InventoryStore
from ansible_collections.ucops.webex.plugins.module_utils.inventory_sync import PeopleChangedError

# Spawned children import this module again; they get sys.path from the parent.
CONTEXT = multiprocessing.get_context("spawn")
WRITERS = 8
PEOPLE_PER_CUSTOMER = 600


def customer_licenses(tag):
    return [
        {
            "id": f"{tag}-C",
            "name": "Webex Calling - Professional",
            "subscriptionId": f"Sub-{tag}",
            "totalUnits": 1000,
            "consumedUnits": PEOPLE_PER_CUSTOMER,
        },
        {
            "id": f"{tag}-M",
            "name": "Meeting - Webex Meeting Center",
            "subscriptionId": f"Sub-{tag}",
            "siteUrl": f"{tag.lower()}.webex.com",
            "totalUnits": 100,
            "consumedUnits": 10,
        },
    ]


def customer_pages(tag, count=PEOPLE_PER_CUSTOMER, page_size=200):
    pages = []
    for start in range(0, count, page_size):
        pages.append(
            [
                {
                    "id": f"{tag}-P{i}",
                    "emails": [f"u{i}@{tag}.example"],
                    "displayName": f"U{i}",
                    "licenses": [f"{tag}-C"],
                }
                for i in range(start, min(start + page_size, count))
            ]
        )
    return pages


def sync_customer(store, name, tag, attempts=5):
    """Sync like the module: list again when stored people changed during the sync."""
    for attempt in range(attempts):
        session = store.begin_sync(name, scope=["licenses", "people"])
        try:
            session.stage_licenses(customer_licenses(tag))
            for page in customer_pages(tag):
                session.stage_people(page)
            return session.commit()
        except PeopleChangedError:
            session.discard()
            if attempt == attempts - 1:
                raise
    return None


def write_customer(path, name, tag, start, errors, busy_timeout):
    """Create a customer, sync it and record license changes, after a common start signal."""
    try:
        start.wait(30)
        with InventoryStore(path, lock_timeout=60, busy_timeout=busy_timeout) as store:
            store.upsert_customer(
                name,
                org_id=f"ORG-{name}",
                hierarchy="Provider",
                default_subscription_id=f"Sub-{tag}",
            )
            sync_customer(store, name, tag)
            for index in range(5):
                store.apply_user_license_change(name, f"{tag}-P{index}", [f"{tag}-M"])
    except Exception:  # the parent reports every failure of a child
        errors.put(f"{name}/{tag}: {traceback.format_exc()}")


# 5 s lets SQLite's busy handler wait; 0.01 s makes most waits go through the retry loop.
@pytest.mark.parametrize("busy_timeout", [5.0, 0.01])
def test_concurrent_writers_lose_no_rows(tmp_path, busy_timeout):
    path = str(tmp_path / "inventory.db")
    start = CONTEXT.Event()
    errors = CONTEXT.Queue()
    jobs = [(f"Customer{i}", f"T{i}") for i in range(WRITERS)]
    # Two processes write the same customer (same org, same data).
    jobs += [("Shared", "SH"), ("Shared", "SH")]
    processes = [
        CONTEXT.Process(target=write_customer, args=(path, name, tag, start, errors, busy_timeout))
        for name, tag in jobs
    ]
    for process in processes:
        process.start()
    start.set()
    for process in processes:
        process.join(120)
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert not failures, "\n".join(failures)
    assert [process.exitcode for process in processes] == [0] * len(processes)

    with InventoryStore(path) as store:
        for name, tag in jobs[:WRITERS]:
            licenses = {r["id"]: r for r in store.list_licenses(name)}
            assert licenses[f"{tag}-M"]["consumed_units"] == 15, name
            assert licenses[f"{tag}-C"]["managed"] is True
            assert len(store.sync_history(name)) == 1
        shared = {r["id"]: r for r in store.list_licenses("Shared")}
        # Whatever the order, the last sync or change leaves 10 synced units plus 5 changes:
        # a later sync resets both links and counters to the synced state.
        assert shared["SH-M"]["consumed_units"] == 15
        assert len(store.sync_history("Shared")) == 2
    connection = sqlite3.connect(path)
    counts = dict(
        connection.execute("SELECT customer, COUNT(*) FROM people GROUP BY customer").fetchall()
    )
    links = connection.execute("SELECT COUNT(*) FROM person_licenses").fetchone()[0]
    integrity = connection.execute("PRAGMA integrity_check").fetchone()[0]
    connection.close()
    assert counts == {name: PEOPLE_PER_CUSTOMER for name, _tag in jobs}
    assert links == (WRITERS + 1) * (PEOPLE_PER_CUSTOMER + 5)
    assert integrity == "ok"


def commit_until_killed(path, ready):
    """Start a large commit and stop inside its transaction until the parent kills us."""
    with InventoryStore(path) as store:
        session = store.begin_sync("Acme", scope=["licenses", "people"])
        session.stage_licenses(customer_licenses("NEW"))
        for page in customer_pages("NEW", count=3000, page_size=1000):
            session.stage_people(page)
        connection = session._conn
        # A tiny page cache makes SQLite spill uncommitted pages into the WAL file.
        connection.execute("PRAGMA cache_size = 5")
        wal = path + "-wal"

        def pause_inside_commit():
            # Staging and change tables are TEMP tables, outside the WAL, so frames in the
            # WAL mean a data statement has written to the inventory.
            if connection.in_transaction and os.path.exists(wal) and os.path.getsize(wal) > 0:
                ready.set()
                time.sleep(600)
            return 0

        connection.set_progress_handler(pause_inside_commit, 1000)
        session.commit()


def test_writer_killed_mid_commit_keeps_old_inventory(tmp_path):
    path = str(tmp_path / "inventory.db")
    with InventoryStore(path) as store:
        store.upsert_customer("Acme", org_id="ORG-Acme", default_subscription_id="Sub-OLD")
        sync_customer(store, "Acme", "OLD")
        before_licenses = store.list_licenses("Acme")
        before_person = store.find_person("Acme", "OLD-P7")

    ready = CONTEXT.Event()
    child = CONTEXT.Process(target=commit_until_killed, args=(path, ready))
    child.start()
    try:
        assert ready.wait(60), "the child never reached the middle of its commit"
        # Uncommitted frames of the child are in the WAL when it dies.
        assert os.path.getsize(path + "-wal") > 0
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.join(30)
    assert child.exitcode == -signal.SIGKILL

    with InventoryStore(path, lock_timeout=10) as store:
        assert store.list_licenses("Acme") == before_licenses
        assert store.find_person("Acme", "OLD-P7") == before_person
        assert store.find_person("Acme", "NEW-P7") is None
        # The lock died with the child: the next write goes through.
        assert store.upsert_customer("Acme", hierarchy="Provider")[0]
    connection = sqlite3.connect(path)
    people = connection.execute("SELECT COUNT(*) FROM people").fetchone()[0]
    integrity = connection.execute("PRAGMA integrity_check").fetchone()[0]
    connection.close()
    assert people == PEOPLE_PER_CUSTOMER
    assert integrity == "ok"


@pytest.mark.slow
@pytest.mark.skipif(sys.version_info < (3, 9), reason="tracemalloc.reset_peak needs Python 3.9")
def test_large_sync_memory_stays_flat(tmp_path):
    """Stage 50,000 people in pages of 1,000; Python memory grows by the id digests only."""
    import tracemalloc

    path = str(tmp_path / "inventory.db")
    with InventoryStore(path) as store:
        store.upsert_customer("Big", default_subscription_id="Sub-BIG")
        session = store.begin_sync("Big", scope=["licenses", "people"])
        session.stage_licenses(customer_licenses("BIG"))
        tracemalloc.start()
        peaks = []
        for page_number in range(50):
            page = [
                {
                    "id": f"P{page_number}-{i}",
                    "emails": [f"u{page_number}-{i}@big.example"],
                    "licenses": ["BIG-C"],
                    "roles": [],
                }
                for i in range(1000)
            ]
            session.stage_people(page)
            del page
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.reset_peak()
        result = session.commit()
        tracemalloc.stop()
    assert result["summary"]["people"]["added"] == 50_000
    # The peak of the last pages is no higher than that of the first pages (plus slack),
    # except for the 8-byte digest that the session stores per person listed. The bound
    # allows 16 bytes per person for the array's spare capacity and its copy when it grows.
    assert max(peaks[-10:]) < max(peaks[:10]) * 1.5 + 16 * 50_000
