"""Bad input: each case fails with an error that names the value and the fix, and changes nothing.

Several cases run as tasks of one playbook (ignore_errors), after which the inventory must
equal its snapshot and the simulator must have received no change request.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3

from tests.integration.conftest import DEMO_FIXTURE
from tests.integration.reliability_support import (
    BOREALIS,
    assert_store_unchanged,
    dump_store,
    module_args,
)

CUSTOMER = "Borealis Logistics"
# A Borealis person without a location, for the calling license cases.
NO_LOCATION = next(p for p in BOREALIS["people"] if not p.get("locationId"))["emails"][0]


def closed_port_url() -> str:
    """Return an API URL on 127.0.0.1 whose port has no listener."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def task(title: str, module: str, **args) -> dict:
    return {"name": title, f"ucops.webex.{module}": args, "ignore_errors": True}


def failure(run, name: str) -> str:
    record = run.task(name)
    assert record["failed"], (name, record["result"])
    assert not record["changed"], name
    return record["result"]["msg"]


def add_borealis(run_playbook, simulator, **options) -> None:
    run = run_playbook([
        task("add", "webex_customer", **module_args(simulator, name=CUSTOMER,
                                                    org_id=BOREALIS["id"], **options)),
        task("sync", "webex_license_sync", **module_args(simulator, customer=CUSTOMER,
                                                         scope=["licenses", "roles"])),
    ])
    assert run.rc == 0, run.stdout


def test_bad_input_without_defaults(simulator, run_playbook, inventory_db):
    add_borealis(run_playbook, simulator)
    before = dump_store(inventory_db)
    simulator.clear_requests()
    person = BOREALIS["people"][7]["emails"][0]
    unreachable = closed_port_url()

    run = run_playbook([
        task("sync unknown customer", "webex_license_sync",
             **module_args(simulator, customer="Nobody Inc")),
        task("license unknown customer", "webex_user_license",
             **module_args(simulator, customer="Nobody Inc", user=person,
                           licenses=["Advanced Messaging"])),
        task("info unknown customer", "webex_license_info",
             **module_args(simulator, source="inventory", customer="Nobody Inc")),
        task("invalid org_id", "webex_customer",
             **module_args(simulator, name="Ghost Org", org_id="not-an-org-id")),
        task("subscription not in org", "webex_customer",
             **module_args(simulator, name=CUSTOMER, org_id=BOREALIS["id"],
                           default_subscription_id="Sub-XYZ999")),
        task("site URL not in org", "webex_customer",
             **module_args(simulator, name=CUSTOMER, org_id=BOREALIS["id"],
                           default_site_url="https://elsewhere.webex.com/")),
        task("license in two subscriptions", "webex_user_license",
             **module_args(simulator, customer=CUSTOMER, user=person,
                           licenses=["Advanced Messaging"])),
        task("api_url not a URL", "webex_license_sync",
             **module_args(simulator, customer=CUSTOMER, api_url="webexapis.com/v1")),
        task("api_url unreachable", "webex_customer",
             **module_args(simulator, name="Offline Corp", org_id=BOREALIS["id"],
                           api_url=unreachable, max_retry_wait=1)),
    ])

    for name in ("sync unknown customer", "license unknown customer", "info unknown customer"):
        message = failure(run, name)
        assert "customer 'Nobody Inc'" in message, message
        assert "not" in message, message
        assert "ucops.webex.webex_customer" in message, message

    message = failure(run, "invalid org_id")
    assert "org_id 'not-an-org-id'" in message
    assert "Check org_id" in message
    assert "nothing was saved" in message

    message = failure(run, "subscription not in org")
    assert "'Sub-XYZ999'" in message
    assert "Sub-BOR100, Sub-BOR101" in message
    assert "Nothing was saved" in message

    message = failure(run, "site URL not in org")
    assert "default_site_url 'elsewhere.webex.com'" in message
    assert "borealis-eu.webex.com, borealis.webex.com" in message

    message = failure(run, "license in two subscriptions")
    assert "'Advanced Messaging'" in message
    assert "Sub-BOR100" in message
    assert "Sub-BOR101" in message
    assert "default_subscription_id" in message

    message = failure(run, "api_url not a URL")
    assert "invalid api_url 'webexapis.com/v1'" in message
    assert "https://" in message

    message = failure(run, "api_url unreachable")
    assert f"cannot connect to {unreachable}" in message
    assert "Check api_url" in message

    assert_store_unchanged(inventory_db, before)
    assert [entry for entry in simulator.requests() if entry["method"] != "GET"] == []


def test_bad_input_with_defaults(simulator, run_playbook, inventory_db):
    add_borealis(run_playbook, simulator, default_subscription_id="Sub-BOR100",
                 default_site_url="borealis.webex.com")
    before = dump_store(inventory_db)
    simulator.clear_requests()

    run = run_playbook([
        task("unknown user", "webex_user_license",
             **module_args(simulator, customer=CUSTOMER, user="nobody@borealis.example.com",
                           licenses=["Advanced Messaging"])),
        task("calling without location", "webex_user_license",
             **module_args(simulator, customer=CUSTOMER, user=NO_LOCATION,
                           licenses=["Webex Calling - Professional"], extension="4711")),
        task("unknown location", "webex_user_license",
             **module_args(simulator, customer=CUSTOMER, user=NO_LOCATION,
                           licenses=["Webex Calling - Professional"], extension="4711",
                           location="Atlantis")),
    ])

    message = failure(run, "unknown user")
    assert "nobody@borealis.example.com" in message
    assert "not found" in message

    message = failure(run, "calling without location")
    assert "location" in message
    assert NO_LOCATION in message

    message = failure(run, "unknown location")
    assert "'Atlantis'" in message

    assert_store_unchanged(inventory_db, before)
    assert [entry for entry in simulator.requests() if entry["method"] != "GET"] == []


def corrupt_table(path, table: str) -> None:
    """Overwrite the header of a table's root page, as a damaged disk would."""
    with contextlib.closing(sqlite3.connect(str(path))) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
        root = connection.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    with open(path, "r+b") as handle:
        handle.seek((root - 1) * page_size)
        handle.write(b"\xff" * 64)


def test_damaged_inventory_named_in_error(simulator, run_playbook, inventory_db):
    add_borealis(run_playbook, simulator)
    corrupt_table(inventory_db, "licenses")

    run = run_playbook([
        task("info", "webex_license_info",
             **module_args(simulator, source="inventory", customer=CUSTOMER)),
        task("sync", "webex_license_sync",
             **module_args(simulator, customer=CUSTOMER, scope=["licenses", "roles"])),
        task("defaults", "webex_customer",
             **module_args(simulator, name=CUSTOMER, default_subscription_id="Sub-BOR100")),
        task("license", "webex_user_license",
             **module_args(simulator, customer=CUSTOMER, user=NO_LOCATION,
                           licenses=["Advanced Messaging"])),
    ])

    for name in ("info", "sync", "defaults", "license"):
        message = failure(run, name)
        assert f"the inventory database {inventory_db} failed: " in message, (name, message)
        assert "database disk image is malformed" in message, (name, message)
        assert "PRAGMA integrity_check" in message, (name, message)
        # A task error, not a module crash with a Python traceback.
        assert "Traceback" not in str(run.task(name)["result"]), name


def test_database_url_is_refused_before_any_file(simulator, run_playbook, tmp_path):
    url = "postgresql://inventory:s3cret-pw@127.0.0.1:5432/webex"
    options = {"inventory_db": url}
    run = run_playbook([
        task("customer", "webex_customer",
             **module_args(simulator, name=CUSTOMER, org_id=BOREALIS["id"], **options)),
        task("sync", "webex_license_sync",
             **module_args(simulator, customer=CUSTOMER, **options)),
        task("info", "webex_license_info",
             **module_args(simulator, source="inventory", customer=CUSTOMER, **options)),
        task("license", "webex_user_license",
             **module_args(simulator, customer=CUSTOMER, user=NO_LOCATION,
                           licenses=["Advanced Messaging"], **options)),
        task("remove", "webex_customer",
             **module_args(simulator, name=CUSTOMER, state="absent", **options)),
    ])

    for name in ("customer", "sync", "info", "license", "remove"):
        message = failure(run, name)
        assert "is a postgresql:// URL" in message, (name, message)
        assert "Set inventory_db to a file path" in message, (name, message)
        assert "s3cret-pw" not in message, (name, message)
    # Each task ran in a directory of its own under tmp_path; none made "postgresql:".
    assert not list(tmp_path.rglob("postgresql:*")), list(tmp_path.rglob("postgresql:*"))
    assert [entry for entry in simulator.requests() if entry["method"] != "GET"] == []


def test_lone_surrogate_from_the_api_named(start_simulator, run_playbook, tmp_path,
                                           inventory_db):
    """JSON can escape a lone UTF-16 surrogate, which the inventory (UTF-8) cannot hold. Each
    module that stores such a value fails naming the object, and stores nothing."""
    fixture = json.loads(DEMO_FIXTURE.read_text())
    borealis = next(org for org in fixture["organizations"] if org["id"] == BOREALIS["id"])
    named = borealis["people"][7]
    named["displayName"] = "Quentin \ud800"
    path = tmp_path / "fixture.json"
    path.write_text(json.dumps(fixture))
    simulator = start_simulator(path)
    add_borealis(run_playbook, simulator, default_subscription_id="Sub-BOR100",
                 default_site_url="borealis.webex.com")
    before = dump_store(inventory_db)

    run = run_playbook([
        task("sync", "webex_license_sync", **module_args(simulator, customer=CUSTOMER)),
        task("license", "webex_user_license",
             **module_args(simulator, customer=CUSTOMER, user=named["emails"][0],
                           licenses=["Advanced Messaging"])),
    ])

    message = failure(run, "sync")
    assert f"person '{named['id']}' has display_name 'Quentin \\ud800'" in message, message
    assert "not valid Unicode" in message
    message = failure(run, "license")
    assert f"person '{named['id']}' has displayName 'Quentin \\ud800'" in message, message
    assert "Nothing was changed" in message
    assert [entry for entry in simulator.requests() if entry["method"] != "GET"] == []
    assert_store_unchanged(inventory_db, before, failed_syncs=1)
