"""Ten parallel syncs into one inventory file: eight customers, plus one customer twice."""

from __future__ import annotations

import contextlib
import sqlite3
import sys

import yaml

from tests.integration.reliability_support import assert_inventory_matches_org, count_rows
from tests.simulator.generate import build_fixture, write_fixture

CUSTOMERS = 8
SHARED_HOSTS = ("partner-a", "partner-b")


def test_parallel_syncs_ten_hosts(start_simulator, run_playbook, inventory_db, tmp_path):
    fixture = build_fixture(1000, seed=17, locations=10, workspaces=20, customers=CUSTOMERS)
    partner, *customer_orgs = fixture["organizations"]
    fixture_path = tmp_path / "customers.json"
    write_fixture(fixture, str(fixture_path))
    simulator = start_simulator(fixture_path)

    # One host per customer org, and two hosts that are the same customer (the partner org).
    hosts = {f"customer{n}": {"webex_customer_name": org["displayName"],
                              "webex_org_id": org["id"]}
             for n, org in enumerate(customer_orgs, start=1)}
    for host in SHARED_HOSTS:
        hosts[host] = {"webex_customer_name": partner["displayName"],
                       "webex_org_id": partner["id"]}
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": hosts, "vars": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}))
    args = {"api_url": simulator.api_url, "access_token": "sim-partner-token",
            "max_retry_wait": 30}
    play = {"name": "sync in parallel", "hosts": "all", "gather_facts": False, "tasks": [
        {"name": "add", "ucops.webex.webex_customer": dict(
            args, name="{{ webex_customer_name }}", org_id="{{ webex_org_id }}")},
        {"name": "sync", "ucops.webex.webex_license_sync": dict(
            args, customer="{{ webex_customer_name }}")},
    ]}
    playbook = tmp_path / "sync.yml"
    playbook.write_text(yaml.safe_dump([play], sort_keys=False))

    run = run_playbook(playbook=playbook, inventory=inventory, forks=10)

    assert run.rc == 0, run.stdout
    for host in hosts:
        for task in ("add", "sync"):
            record = run.task(task, host=host)
            assert not record["failed"], (host, task, record["result"].get("msg"))
    for org in customer_orgs:
        assert_inventory_matches_org(inventory_db, org["displayName"], org)
        assert run.task("sync", host=f"customer{customer_orgs.index(org) + 1}")["changed"]
    assert_inventory_matches_org(inventory_db, partner["displayName"], partner)

    # The two runs of the same customer: one added it and one saw it unchanged, at both steps.
    for task in ("add", "sync"):
        changed = [run.task(task, host=host)["changed"] for host in SHARED_HOSTS]
        assert sorted(changed) == [False, True], (task, changed)
    with contextlib.closing(sqlite3.connect(str(inventory_db))) as connection:
        customers = [row[0] for row in connection.execute("SELECT name FROM customers")]
        history = connection.execute(
            "SELECT customer, outcome, changed FROM sync_history ORDER BY id").fetchall()
    assert sorted(customers) == sorted(org["displayName"] for org in fixture["organizations"])
    assert len(history) == len(hosts)
    assert {outcome for _customer, outcome, _changed in history} == {"success"}
    shared = [changed for customer, _outcome, changed in history
              if customer == partner["displayName"]]
    assert sorted(shared) == [0, 1]
    assert count_rows(inventory_db, "people", partner["displayName"]) == len(partner["people"])
