"""The playbooks under playbooks/ run through ansible-playbook against the simulator."""

from __future__ import annotations

import csv
import json
import re
import shutil
import sqlite3

import pytest
import yaml

from tests.integration.conftest import DEMO_FIXTURE, REPO_ROOT

PLAYBOOKS = REPO_ROOT / "playbooks"
DEMO_INVENTORY = PLAYBOOKS / "inventory" / "demo"
DEMO = json.loads(DEMO_FIXTURE.read_text())
ORGS = {org["displayName"]: org for org in DEMO["organizations"]}
DEMO_HOSTS = {"alpine_dental": "Alpine Dental", "borealis_logistics": "Borealis Logistics",
              "cobalt_health": "Cobalt Health"}
SMALL_CUSTOMERS = "alpine_dental,borealis_logistics"
NORTH = "Keystone/Reseller North"  # the place of both SMALL_CUSTOMERS
RECAP_LINE = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+"
                        r"failed=(\d+)\s+skipped=(\d+)\s+rescued=(\d+)", re.MULTILINE)


def recap(run) -> dict[str, dict[str, int]]:
    """Return the PLAY RECAP counters per host."""
    counters = {}
    for match in RECAP_LINE.finditer(run.stdout):
        host, ok, changed, unreachable, failed, skipped, rescued = match.groups()
        counters[host] = {"ok": int(ok), "changed": int(changed), "failed": int(failed),
                          "unreachable": int(unreachable), "rescued": int(rescued)}
    return counters


def run_upgrade(run_playbook, simulator, inventory=DEMO_INVENTORY, limit=None):
    return run_playbook(playbook=PLAYBOOKS / "upgrade_21_1.yml", inventory=inventory,
                        forks=3, limit=limit, extra_env={"WEBEX_API_URL": simulator.api_url})


def run_report(run_playbook, report_dir, **extra_vars):
    extra_vars["webex_report_dir"] = str(report_dir)
    return run_playbook(playbook=PLAYBOOKS / "license_inventory.yml", inventory=DEMO_INVENTORY,
                        extra_vars=extra_vars)


def outcome_lines(run) -> list[str]:
    return run.task("Show the outcome of every customer")["result"]["msg"]


def test_upgrade_demo_then_rerun_unchanged(simulator, run_playbook):
    first = run_upgrade(run_playbook, simulator)

    assert first.rc == 0, first.stdout[-3000:]
    counters = recap(first)
    # localhost runs the check that group webex_customers has hosts, and changes nothing.
    guard = counters.pop("localhost")
    assert guard["changed"] == 0
    assert guard["failed"] == 0
    assert set(counters) == set(DEMO_HOSTS)
    for host in DEMO_HOSTS:
        assert counters[host]["failed"] == 0
        assert counters[host]["rescued"] == 0
        assert counters[host]["changed"] > 0, host
    lines = outcome_lines(first)
    assert len(lines) == 3
    for name in DEMO_HOSTS.values():
        assert any(line.startswith(f"{name}: upgraded") for line in lines), lines
    reports = {record["host"]: record["result"]["ansible_facts"]["upgrade_21_1_outcome"]["report"]
               for record in first.results if record["task"] == "Record the success"}
    assert reports["borealis_logistics"]["default_subscription_id"] == "Sub-BOR100"
    assert reports["borealis_logistics"]["default_site_url"] == "borealis.webex.com"
    assert reports["borealis_logistics"]["users_not_retained"]["count"] == 32
    assert reports["alpine_dental"]["default_subscription_id"] == "Sub-ALP100"
    assert reports["cobalt_health"]["hierarchy"] == "Keystone/Reseller South"
    borealis_managed = reports["borealis_logistics"]["managed_licenses"]
    assert {row["subscription_id"] for row in borealis_managed} == {"Sub-BOR100"}
    assert {row["site_url"] for row in borealis_managed} - {None} == {"borealis.webex.com"}

    second = run_upgrade(run_playbook, simulator)

    assert second.rc == 0, second.stdout[-3000:]
    for host, counter in recap(second).items():
        assert counter["changed"] == 0, host


def inventory_with_borealis_vars(tmp_path, **host_vars):
    """Copy the demo inventory with Borealis's host vars changed; None removes a var."""
    inventory = tmp_path / "inventory"
    shutil.copytree(DEMO_INVENTORY, inventory)
    hosts = yaml.safe_load((inventory / "hosts.yml").read_text())
    borealis = hosts["webex_customers"]["children"]["reseller_north"]["hosts"]["borealis_logistics"]
    for name, value in host_vars.items():
        if value is None:
            del borealis[name]
        else:
            borealis[name] = value
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts))
    return inventory


def inventory_without_borealis_defaults(tmp_path):
    return inventory_with_borealis_vars(tmp_path, webex_default_subscription_id=None,
                                        webex_default_site_url=None)


def test_upgrade_customer_without_default_fails_alone(simulator, run_playbook, tmp_path):
    inventory = inventory_without_borealis_defaults(tmp_path)

    run = run_upgrade(run_playbook, simulator, inventory=inventory)

    assert run.rc != 0
    counters = recap(run)
    assert counters["borealis_logistics"]["rescued"] == 1
    assert counters["alpine_dental"]["rescued"] == 0
    assert counters["cobalt_health"]["rescued"] == 0
    # The recap marks the customer that failed, not the host that printed the summary.
    assert counters["borealis_logistics"]["failed"] == 1
    assert counters["alpine_dental"]["failed"] == 0
    assert counters["cobalt_health"]["failed"] == 0
    failure = run.task("Record the failure", host="borealis_logistics")
    outcome = failure["result"]["ansible_facts"]["upgrade_21_1_outcome"]
    assert "Sub-BOR100, Sub-BOR101" in outcome["message"]
    assert "webex_default_subscription_id" in outcome["message"]
    # The sites are named per subscription, since the default site must be one of the
    # default subscription.
    assert ("Sub-BOR100: borealis.webex.com; Sub-BOR101: borealis-eu.webex.com"
            in outcome["message"])
    assert "webex_default_site_url" in outcome["message"]
    succeeded = {record["host"] for record in run.results if record["task"] == "Record the success"}
    assert succeeded == {"alpine_dental", "cobalt_health"}
    summary = run.task("Fail when a customer was not upgraded", host="borealis_logistics")
    assert summary["failed"]
    assert "1 of 3 customers were not upgraded" in summary["result"]["msg"]
    assert "Borealis Logistics (borealis_logistics)" in summary["result"]["msg"]
    assert "Sub-BOR100, Sub-BOR101" in summary["result"]["msg"]
    lines = outcome_lines(run)
    assert any(line.startswith("Borealis Logistics: FAILED") for line in lines), lines


def test_upgrade_customer_list_variable_fails_alone(simulator, run_playbook, tmp_path):
    inventory = inventory_with_borealis_vars(tmp_path,
                                             webex_hierarchy=["Keystone", "Reseller North"])

    run = run_upgrade(run_playbook, simulator, inventory=inventory,
                      limit="alpine_dental,borealis_logistics")

    assert run.rc != 0
    failure = run.task("Record the failure", host="borealis_logistics")
    message = failure["result"]["ansible_facts"]["upgrade_21_1_outcome"]["message"]
    assert "Host borealis_logistics: webex_hierarchy must be one text value each" in message
    succeeded = {record["host"] for record in run.results if record["task"] == "Record the success"}
    assert succeeded == {"alpine_dental"}


def test_upgrade_default_list_fails_before_sync(simulator, run_playbook, tmp_path,
                                                inventory_db):
    """A list as default subscription fails before the first sync writes anything."""
    inventory = inventory_with_borealis_vars(tmp_path,
                                             webex_default_subscription_id=["Sub-BOR100"])

    run = run_upgrade(run_playbook, simulator, inventory=inventory,
                      limit="borealis_logistics")

    assert run.rc != 0
    failure = run.task("Record the failure", host="borealis_logistics")
    message = failure["result"]["ansible_facts"]["upgrade_21_1_outcome"]["message"]
    assert ("Host borealis_logistics: webex_default_subscription_id must be one text value "
            "each, not a list or mapping.") in message
    assert "Write a hierarchy" not in message
    if inventory_db.exists():
        with sqlite3.connect(inventory_db) as connection:
            names = {row[0] for row in connection.execute("SELECT name FROM customers")}
        assert "Borealis Logistics" not in names


@pytest.mark.parametrize("limit", ["borealis_logistics", "reseller_north"])
def test_upgrade_limited_failure_fails_run(simulator, run_playbook, tmp_path, limit):
    """With --limit (which leaves localhost out), a failed customer still fails the run."""
    inventory = inventory_without_borealis_defaults(tmp_path)

    run = run_upgrade(run_playbook, simulator, inventory=inventory, limit=limit)

    assert run.rc != 0, run.stdout[-3000:]
    summary = run.task("Fail when a customer was not upgraded", host="borealis_logistics")
    assert summary["failed"]
    assert "Borealis Logistics (borealis_logistics)" in summary["result"]["msg"]
    lines = outcome_lines(run)
    assert any(line.startswith("Borealis Logistics: FAILED") for line in lines), lines
    assert not any(line.startswith("Cobalt Health") for line in lines), lines


def test_sync_playbook_syncs_every_customer(simulator, run_playbook):
    run = run_playbook(playbook=PLAYBOOKS / "sync.yml", inventory=DEMO_INVENTORY,
                       limit=SMALL_CUSTOMERS, extra_env={"WEBEX_API_URL": simulator.api_url})

    assert run.rc == 0, run.stdout[-3000:]
    syncs = {record["host"]: record["result"] for record in run.results
             if record["task"].endswith("Sync the customer from its Webex org")}
    assert set(syncs) == {"alpine_dental", "borealis_logistics"}
    assert syncs["alpine_dental"]["fetched"]["people"] == len(ORGS["Alpine Dental"]["people"])
    assert syncs["borealis_logistics"]["defaults"]["subscription_id"] is None
    assert {item["option"] for item in syncs["borealis_logistics"]["defaults_required"]} == {
        "default_subscription_id", "default_site_url"}
    summary = run.task("ucops.webex.license_sync : Report the sync summary",
                       host="borealis_logistics")["result"]["msg"]
    required = [line for line in summary if line.startswith("Defaults required:")]
    assert len(required) == 2, summary
    assert ("(in the Ansible inventory: webex_default_subscription_id of host "
            "borealis_logistics, applied by the ucops.webex.license_defaults role") in required[0]


def test_sync_playbook_passes_connection_variables(simulator, run_playbook):
    """webex_max_retry_wait reaches the modules: a 429 with Retry-After 2 fails at once."""
    simulator.set_faults(rules=[{"method": "GET", "path": "/v1/people", "status": 429,
                                 "retry_after": 2, "times": 1}])

    run = run_playbook(playbook=PLAYBOOKS / "sync.yml", inventory=DEMO_INVENTORY,
                       limit="alpine_dental", extra_env={"WEBEX_API_URL": simulator.api_url},
                       extra_vars={"webex_max_retry_wait": 1, "webex_timeout": 20})

    assert run.rc != 0
    sync = run.task("ucops.webex.license_sync : Sync the customer from its Webex org",
                    host="alpine_dental")
    assert sync["failed"]
    assert "waiting another 2.0 s would exceed max_retry_wait (1 s" in sync["result"]["msg"]


def test_duplicate_customer_hosts_fail(simulator, run_playbook, tmp_path, inventory_db):
    """Two hosts with one customer name would write one inventory record in turn; both
    fail naming each other, and the third customer syncs."""
    inventory = inventory_with_borealis_vars(tmp_path, webex_customer_name="Alpine Dental")

    run = run_playbook(playbook=PLAYBOOKS / "sync.yml", inventory=inventory,
                       extra_env={"WEBEX_API_URL": simulator.api_url})

    assert run.rc != 0
    counters = recap(run)
    assert counters["alpine_dental"]["failed"] == counters["borealis_logistics"]["failed"] == 1
    assert counters["cobalt_health"]["failed"] == 0
    for host in ("alpine_dental", "borealis_logistics"):
        record = next(item for item in run.results if item["host"] == host and item[
            "task"].endswith("Fail when another host of the play is the same customer"))
        assert record["failed"]
        message = record["result"]["msg"]
        assert ("Hosts alpine_dental, borealis_logistics all have the customer name "
                "'Alpine Dental'") in message
    customers = {row[0] for row in sqlite3.connect(inventory_db).execute(
        "SELECT name FROM customers")}
    assert customers == {"Cobalt Health"}


def test_sync_playbook_check_mode_report(simulator, run_playbook):
    env = {"WEBEX_API_URL": simulator.api_url}
    first = run_playbook(playbook=PLAYBOOKS / "sync.yml", inventory=DEMO_INVENTORY,
                         limit=SMALL_CUSTOMERS, extra_env=env,
                         extra_vars={"license_sync_scope": ["licenses"]})
    assert first.rc == 0, first.stdout[-3000:]

    run = run_playbook(playbook=PLAYBOOKS / "sync.yml", inventory=DEMO_INVENTORY,
                       limit=SMALL_CUSTOMERS, extra_env=env, check=True)

    assert run.rc == 0, run.stdout[-3000:]
    headlines = [record["result"]["msg"][0] for record in run.results
                 if record["task"].endswith("Report the sync summary")]
    assert len(headlines) == 2
    for headline in headlines:
        assert "would change the inventory (check mode)" in headline


def read_report(report_dir):
    listing = json.loads((report_dir / "licenses.json").read_text())
    with open(report_dir / "licenses.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return listing, rows


def test_license_report_files_at_provider_level(simulator, run_playbook, tmp_path):
    assert run_upgrade(run_playbook, simulator, limit=SMALL_CUSTOMERS).rc == 0
    report_dir = tmp_path / "report"

    run = run_report(run_playbook, report_dir, webex_report_hierarchy="Keystone")

    assert run.rc == 0, run.stdout[-3000:]
    listing, rows = read_report(report_dir)
    assert listing["level"] == "hierarchy"
    assert listing["threshold_offenders"] == []
    expected_ids = {(name, org_license["id"]) for name in ("Alpine Dental", "Borealis Logistics")
                    for org_license in ORGS[name]["licenses"]}
    assert {(row["customer"], row["id"]) for row in listing["licenses"]} == expected_ids
    assert [(row["customer"], row["id"]) for row in rows] == [
        (row["customer"], row["id"]) for row in listing["licenses"]]
    by_id = {row["id"]: row for row in listing["licenses"]}
    for row in rows:
        source = by_id[row["id"]]
        assert row["name"] == source["name"]
        assert row["subscription_id"] == (source["subscription_id"] or "")
        assert int(row["available_units"]) == source["available_units"]
        assert row["managed"] == ("true" if source["managed"] else "false")
    managed = {(row["customer"], row["subscription_id"])
               for row in rows if row["managed"] == "true"}
    assert managed == {("Alpine Dental", "Sub-ALP100"), ("Borealis Logistics", "Sub-BOR100")}
    with open(report_dir / "totals.csv", newline="", encoding="utf-8") as handle:
        totals = list(csv.DictReader(handle))
    assert len(totals) == len(listing["totals"])
    assert [(row["name"], row["subscription_id"], row["site_url"]) for row in totals] == [
        (total["name"], total["subscription_id"] or "", total["site_url"] or "")
        for total in listing["totals"]]
    table = (report_dir / "licenses.txt").read_text()
    assert "Licenses at hierarchy level (hierarchy Keystone)" in table
    totals_header = table.split("Totals per license, subscription and site URL")[1]
    assert totals_header.split("\n")[1].split() == [
        "License", "Subscription", "Site", "URL", "Customers", "Total", "Used", "Available",
        "Used", "%"]
    printed = run.task("Print the license table")["result"]["msg"]
    assert printed == table.strip().split("\n")
    header = printed[1]
    assert header.split() == ["Customer", "License", "Subscription", "Site", "URL", "Total",
                              "Used", "Available", "Used", "%", "Managed"]


def inventory_with_file_for_customers(tmp_path, files: dict[str, str]) -> object:
    """Copy the demo inventory; set webex_inventory_db per host instead of for all hosts."""
    inventory = tmp_path / "inventory"
    shutil.copytree(DEMO_INVENTORY, inventory)
    group_vars = inventory / "group_vars" / "all.yml"
    all_vars = yaml.safe_load(group_vars.read_text())
    del all_vars["webex_inventory_db"]
    group_vars.write_text(yaml.safe_dump(all_vars))
    hosts = yaml.safe_load((inventory / "hosts.yml").read_text())
    for reseller in hosts["webex_customers"]["children"].values():
        for host, host_vars in reseller["hosts"].items():
            host_vars["webex_inventory_db"] = files[host]
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts))
    return inventory


def test_license_report_reads_the_customers_file(simulator, run_playbook, tmp_path,
                                                 inventory_db):
    """localhost is no customer host: the report reads the file the customers' hosts set,
    not the default inventory, and fails when they name several."""
    assert run_upgrade(run_playbook, simulator, limit=SMALL_CUSTOMERS).rc == 0
    elsewhere = tmp_path / "elsewhere.db"
    shared = tmp_path / "customers-inventory.db"
    inventory_db.rename(shared)
    for suffix in ("-wal", "-shm"):
        inventory_db.with_name(inventory_db.name + suffix).unlink(missing_ok=True)
    one_file = inventory_with_file_for_customers(
        tmp_path / "one", dict.fromkeys(DEMO_HOSTS, str(shared)))
    two_files = inventory_with_file_for_customers(
        tmp_path / "two", dict(dict.fromkeys(DEMO_HOSTS, str(shared)),
                               cobalt_health=str(elsewhere)))
    # WEBEX_INVENTORY_DB names a file without customers, as a default inventory would be.
    environment = {"WEBEX_INVENTORY_DB": str(tmp_path / "default.db")}

    run = run_playbook(playbook=PLAYBOOKS / "license_inventory.yml", inventory=one_file,
                       extra_vars={"webex_report_dir": str(tmp_path / "report"),
                                   "webex_report_customer": "Borealis Logistics"},
                       extra_env=environment)
    rejected = run_playbook(playbook=PLAYBOOKS / "license_inventory.yml", inventory=two_files,
                            extra_vars={"webex_report_dir": str(tmp_path / "report2")},
                            extra_env=environment)

    assert run.rc == 0, run.stdout[-3000:]
    listing, _rows = read_report(tmp_path / "report")
    assert {row["customer"] for row in listing["licenses"]} == {"Borealis Logistics"}
    assert rejected.rc != 0
    message = rejected.task("Fail when the customers' hosts use several inventory files")
    assert str(elsewhere) in message["result"]["msg"]
    assert "-e webex_inventory_db=PATH" in message["result"]["msg"]
    assert not (tmp_path / "report2").exists()


def test_license_report_thresholds_fail(simulator, run_playbook, tmp_path):
    assert run_upgrade(run_playbook, simulator, limit=SMALL_CUSTOMERS).rc == 0
    report_dir = tmp_path / "report"
    min_by_name = {"Webex Calling - Professional": 10}

    run = run_report(run_playbook, report_dir, webex_report_hierarchy="Keystone/Reseller North",
                     webex_min_available_units_by_name=min_by_name, webex_max_utilization=85)

    assert run.rc != 0
    listing = read_report(report_dir)[0]
    expected = []
    for row in listing["licenses"]:
        if not row["managed"]:
            continue
        limit = min_by_name.get(row["name"])
        if limit is not None and row["available_units"] < limit:
            expected.append((row["customer"], row["name"], "available_units",
                             row["available_units"], limit))
        exact = row["consumed_units"] * 100 / row["total_units"] if row["total_units"] else None
        if exact is not None and exact > 85:
            expected.append((row["customer"], row["name"], "utilization", round(exact, 3), 85))
    offenders = [(item["customer"], item["license"], item["check"], item["value"], item["limit"])
                 for item in listing["threshold_offenders"]]
    assert sorted(offenders) == sorted(expected)
    assert ("Alpine Dental", "Webex Calling - Professional", "available_units", 6, 10) in offenders
    assert ("Borealis Logistics", "Meeting - Webex Enterprise Edition", "utilization", 87.705,
            85) in offenders
    # Sub-BOR101 is not the default subscription, so its full Standard license is no offender.
    assert all(item["subscription_id"] != "Sub-BOR101" for item in listing["threshold_offenders"])
    message = run.task("Fail when a managed license is outside a threshold")["result"]["msg"]
    assert f"({len(expected)})" in message
    assert ("Alpine Dental / Webex Calling - Professional [Sub-ALP100]: available_units 6 "
            "below the minimum 10") in message
    assert ("Borealis Logistics / Meeting - Webex Enterprise Edition [Sub-BOR100, "
            "borealis.webex.com]: utilization 87.705 above the maximum 85.0") in message


def test_license_report_utilization_not_rounded(simulator, run_playbook, tmp_path):
    """The listing rounds the utilization to 0.1; the maximum compares the exact share:
    107 of 122 is 87.705 % and 34 of 42 is 80.952 %."""
    assert run_upgrade(run_playbook, simulator, limit=SMALL_CUSTOMERS).rc == 0
    report_dir = tmp_path / "report"

    run = run_report(run_playbook, report_dir, webex_report_hierarchy="Keystone",
                     webex_max_utilization_by_name={"Meeting - Webex Enterprise Edition": 80.96,
                                                    "Webex Calling - Professional": 85.13})

    assert run.rc != 0
    offenders = {(item["customer"], item["license"]): item["value"]
                 for item in read_report(report_dir)[0]["threshold_offenders"]}
    assert offenders == {
        ("Borealis Logistics", "Meeting - Webex Enterprise Edition"): 87.705,
        ("Borealis Logistics", "Webex Calling - Professional"): 85.135,
    }


def test_license_report_thresholds_pass(simulator, run_playbook, tmp_path):
    assert run_upgrade(run_playbook, simulator, limit=SMALL_CUSTOMERS).rc == 0
    report_dir = tmp_path / "report"

    # Both customers upgraded are those of Reseller North.
    run = run_report(run_playbook, report_dir, webex_report_hierarchy="Keystone/Reseller North",
                     webex_min_available_units=5, webex_max_utilization=95,
                     webex_max_utilization_by_name={"Advanced Messaging": 99})

    assert run.rc == 0, run.stdout[-3000:]
    assert run.task("Fail when a managed license is outside a threshold")["status"] == "skipped"
    listing = read_report(report_dir)[0]
    managed = [row for row in listing["licenses"] if row["managed"]]
    assert managed
    assert min(row["available_units"] for row in managed) >= 5


def test_license_report_customer_and_location_level(simulator, run_playbook, tmp_path):
    assert run_upgrade(run_playbook, simulator, limit="cobalt_health").rc == 0
    location = ORGS["Cobalt Health"]["locations"][0]["name"]

    customer_run = run_report(run_playbook, tmp_path / "customer",
                              webex_report_customer="Cobalt Health")
    location_run = run_report(run_playbook, tmp_path / "location",
                              webex_report_customer="Cobalt Health", webex_report_location=location)

    assert customer_run.rc == 0, customer_run.stdout[-3000:]
    customer_listing, customer_rows = read_report(tmp_path / "customer")
    assert customer_listing["level"] == "customer"
    assert len(customer_rows) == len(ORGS["Cobalt Health"]["licenses"])
    assert not (tmp_path / "customer" / "totals.csv").exists()
    assert location_run.rc == 0, location_run.stdout[-3000:]
    location_listing, location_rows = read_report(tmp_path / "location")
    assert location_listing["level"] == "location"
    assert location_rows
    assert {row["location_name"] for row in location_rows} == {location}
    # consumed_units counts the location; the org's use explains available_units.
    by_id = {row["id"]: row for row in location_listing["licenses"]}
    for row in location_rows:
        source = by_id[row["id"]]
        assert int(row["org_consumed_units"]) == source["org_consumed_units"]
        assert int(row["consumed_units"]) == source["consumed_units"]
        if source["total_units"] >= source["org_consumed_units"]:
            assert int(row["available_units"]) == (
                int(row["total_units"]) - int(row["org_consumed_units"]))
    table = (tmp_path / "location" / "licenses.txt").read_text()
    assert f"location {location}" in table

    # Units are pooled per org: a location's thresholds check every managed license of the
    # customer, also those that nobody in the location uses.
    threshold_run = run_report(run_playbook, tmp_path / "threshold",
                               webex_report_customer="Cobalt Health",
                               webex_report_location=location, webex_min_available_units=10**6)
    assert threshold_run.rc != 0
    offenders = read_report(tmp_path / "threshold")[0]["threshold_offenders"]
    managed = {row["id"] for row in customer_listing["licenses"] if row["managed"]}
    assert {item["license_id"] for item in offenders} == managed
    assert managed - {row["id"] for row in location_listing["licenses"]}


def test_license_report_never_synced_customer(simulator, run_playbook, tmp_path, inventory_db):
    """A customer added but never synced has no rows: the report names it, and with a
    threshold set the run fails after writing the report."""
    # Both customers upgraded and Never Synced are those of Reseller North.
    assert run_upgrade(run_playbook, simulator, limit=SMALL_CUSTOMERS).rc == 0
    added = run_playbook([{"name": "add", "ucops.webex.webex_customer": {
        "name": "Never Synced", "hierarchy": "Keystone/Reseller North",
        "inventory_db": str(inventory_db)}}])
    assert added.rc == 0, added.stdout[-3000:]

    plain = run_report(run_playbook, tmp_path / "plain", webex_inventory_db=str(inventory_db),
                       webex_report_hierarchy=NORTH)
    gated = run_report(run_playbook, tmp_path / "gated", webex_inventory_db=str(inventory_db),
                       webex_report_hierarchy=NORTH, webex_min_available_units=0)

    assert plain.rc == 0, plain.stdout[-3000:]
    assert read_report(tmp_path / "plain")[0]["not_synced"] == ["Never Synced"]
    assert "were never synced" in plain.stdout
    assert gated.rc != 0
    failure = gated.task("Fail when thresholds are set and customers at this level were never "
                         "synced")
    assert "The licenses of Never Synced were never synced" in failure["result"]["msg"]
    assert read_report(tmp_path / "gated")[0]["not_synced"] == ["Never Synced"]
    # A threshold by name cannot match a customer without synced licenses: the run fails
    # on the customer never synced, after writing the report, not on the name.
    named = run_report(run_playbook, tmp_path / "named", webex_inventory_db=str(inventory_db),
                       webex_report_customer="Never Synced",
                       webex_min_available_units_by_name={"Advanced Messaging": 1})
    assert named.rc != 0
    assert (tmp_path / "named" / "licenses.json").exists()
    assert "were never synced" in named.task(
        "Fail when thresholds are set and customers at this level were never synced"
    )["result"]["msg"]
    # At a level with a synced customer the name check still applies, and names the
    # customers whose licenses cannot match.
    mixed = run_report(run_playbook, tmp_path / "mixed", webex_inventory_db=str(inventory_db),
                       webex_report_hierarchy=NORTH,
                       webex_min_available_units_by_name={"Webex Webinars": 1})
    assert mixed.rc != 0
    message = mixed.task("Fail on threshold license names that match no license at this "
                         "level")["result"]["msg"]
    assert "The licenses of Never Synced were never synced, so their names cannot match" in (
        message)


def test_license_report_customer_never_added(simulator, run_playbook, tmp_path):
    # Cobalt Health's upgrade never ran (like a first webex_customer task that failed on a
    # rejected token), so its host is in group webex_customers but not in the inventory.
    assert run_upgrade(run_playbook, simulator, limit=SMALL_CUSTOMERS).rc == 0

    plain = run_report(run_playbook, tmp_path / "plain", webex_report_hierarchy="Keystone")
    north = run_report(run_playbook, tmp_path / "north", webex_min_available_units=0,
                       webex_report_hierarchy="Keystone/Reseller North")
    gated = run_report(run_playbook, tmp_path / "gated", webex_min_available_units=0,
                       webex_report_hierarchy="Keystone")
    # The hosts of another inventory file are left out by naming the group of this one.
    grouped = run_report(run_playbook, tmp_path / "grouped", webex_min_available_units=0,
                         webex_report_hierarchy="Keystone",
                         webex_report_expected_group="reseller_north")

    assert plain.rc == 0, plain.stdout[-3000:]
    listing = read_report(tmp_path / "plain")[0]
    assert listing["not_in_inventory"] == ["Cobalt Health"]
    assert listing["not_synced"] == []
    warnings = plain.task("Read the licenses at the chosen level")["result"]["warnings"]
    assert any("Cobalt Health were expected at this level but are not in the inventory" in
               warning for warning in warnings)
    # Cobalt Health belongs to Reseller South, so Reseller North's report passes.
    assert north.rc == 0, north.stdout[-3000:]
    assert read_report(tmp_path / "north")[0]["not_in_inventory"] == []
    assert gated.rc != 0
    failure = gated.task("Fail when thresholds are set and customers at this level were never "
                         "synced")["result"]["msg"]
    assert "The licenses of Cobalt Health were never synced" in failure
    assert "Not in the inventory at all" in failure
    assert grouped.rc == 0, grouped.stdout[-3000:]
    assert read_report(tmp_path / "grouped")[0]["not_in_inventory"] == []


def test_license_report_removes_stale_totals(simulator, run_playbook, tmp_path):
    assert run_upgrade(run_playbook, simulator, limit=SMALL_CUSTOMERS).rc == 0
    report_dir = tmp_path / "report"

    provider = run_report(run_playbook, report_dir, webex_report_hierarchy="Keystone")
    assert provider.rc == 0, provider.stdout[-3000:]
    assert (report_dir / "totals.csv").exists()
    customer = run_report(run_playbook, report_dir, webex_report_customer="Alpine Dental")

    assert customer.rc == 0, customer.stdout[-3000:]
    assert not (report_dir / "totals.csv").exists()


@pytest.mark.parametrize("extra_vars", [
    {"webex_report_location": "Austin"},
    {"webex_report_hierarchy": "Keystone", "webex_report_customer": "Alpine Dental"},
])
def test_license_report_level_variables_checked(run_playbook, tmp_path, extra_vars):
    run = run_report(run_playbook, tmp_path / "report", **extra_vars)

    assert run.rc != 0
    message = run.task("Check the level variables")["result"]["msg"]
    assert "Set webex_report_customer with webex_report_location" in message


@pytest.mark.parametrize("extra_vars, expected", [
    ({"webex_min_available_units": "abc"},
     'webex_min_available_units is "abc", which is not a whole number of units'),
    ({"webex_max_utilization": "ninety"},
     'webex_max_utilization is "ninety", which is not a percentage'),
    ({"webex_max_utilization": "-5"}, 'webex_max_utilization is "-5"'),
    ({"webex_min_available_units_by_name": {"Advanced Messaging": "ten"}},
     'webex_min_available_units_by_name["Advanced Messaging"] is "ten"'),
    ({"webex_max_utilization_by_name": ["Advanced Messaging"]},
     "webex_max_utilization_by_name is [\"Advanced Messaging\"], which is not a mapping"),
    ({"webex_min_available_units_by_name": {"Advanced Messaging": 1, "advanced messaging": 2}},
     'names "Advanced Messaging" and "advanced messaging", which differ only in case'),
])
def test_license_report_invalid_threshold(run_playbook, tmp_path, extra_vars, expected):
    report_dir = tmp_path / "report"

    run = run_report(run_playbook, report_dir, **extra_vars)

    assert run.rc != 0
    record = run.task("Check the threshold values")
    assert record["failed"]
    assert expected in record["result"]["msg"], record["result"]["msg"]
    assert not report_dir.exists()


def test_license_report_threshold_names(simulator, run_playbook, tmp_path, inventory_db):
    """Names compare without case, unknown names are listed, and a license with 0 units
    in total and some in use is over any maximum utilization."""
    assert run_upgrade(run_playbook, simulator, limit="alpine_dental").rc == 0
    with sqlite3.connect(inventory_db) as connection:
        connection.execute("UPDATE licenses SET total_units = 0 WHERE customer = 'Alpine Dental' "
                           "AND name = 'Advanced Messaging' AND consumed_units > 0")
        assert connection.total_changes == 1
    report_dir = tmp_path / "report"

    thresholds = {"webex_report_customer": "Alpine Dental", "webex_max_utilization": 99,
                  "webex_min_available_units_by_name": {"webex calling - PROFESSIONAL": 10,
                                                        "Advanced Messagin": 1}}

    typo = run_report(run_playbook, report_dir, **thresholds)

    assert typo.rc != 0
    failure = typo.task("Fail on threshold license names that match no license at this level")
    assert "(customer Alpine Dental) is named Advanced Messagin, so" in failure["result"]["msg"]
    assert "No managed license at this level" in failure["result"]["msg"]

    # Basic Messaging has no subscription, so it is never managed and never checked.
    unmanaged = run_report(run_playbook, tmp_path / "unmanaged",
                           webex_report_customer="Alpine Dental",
                           webex_min_available_units_by_name={"Basic Messaging": 1000})
    assert unmanaged.rc != 0
    assert "is named Basic Messaging, so" in unmanaged.task(
        "Fail on threshold license names that match no license at this level")["result"]["msg"]
    assert "webex_report_allow_unknown_names=true" in failure["result"]["msg"]
    assert not report_dir.exists()

    run = run_report(run_playbook, report_dir, webex_report_allow_unknown_names=True,
                     **thresholds)

    assert run.rc != 0
    unknown = run.task("Name the threshold license names that match no license at this level")
    assert "not found at this level" in unknown["result"]["msg"]
    assert unknown["result"]["msg"].endswith("allows: Advanced Messagin")
    message = run.task("Fail when a managed license is outside a threshold")["result"]["msg"]
    assert ("Alpine Dental / Webex Calling - Professional [Sub-ALP100]: available_units 6 "
            "below the minimum 10") in message
    assert "Advanced Messaging [Sub-ALP100]: utilization unbounded (" in message
    assert "units used of 0) above the maximum 99.0" in message


def test_upgrade_check_mode_names_stored_defaults(simulator, run_playbook, tmp_path):
    """A check-mode upgrade that would change the defaults reports that its lists follow
    the stored defaults, which check mode does not change."""
    assert run_upgrade(run_playbook, simulator, limit="borealis_logistics").rc == 0
    inventory = inventory_with_borealis_vars(tmp_path,
                                             webex_default_subscription_id="Sub-BOR101",
                                             webex_default_site_url="borealis-eu.webex.com")

    run = run_playbook(playbook=PLAYBOOKS / "upgrade_21_1.yml", inventory=inventory,
                       limit="borealis_logistics", check=True,
                       extra_env={"WEBEX_API_URL": simulator.api_url})

    assert run.rc == 0, run.stdout[-3000:]
    report = run.task("ucops.webex.upgrade_21_1 : Show the upgrade report",
                      host="borealis_logistics")["result"]["msg"]
    assert report[0].endswith("default subscription Sub-BOR101, default site URL "
                              "borealis-eu.webex.com"), report
    assert report[1] == ("Check mode: these defaults are not stored yet, so the licenses and "
                         "users below are those of the stored defaults (subscription "
                         "Sub-BOR100, site URL borealis.webex.com). Run without --check to "
                         "list them for the new defaults."), report
    assert any("Meeting - Webex Enterprise Edition [Sub-BOR101, borealis-eu.webex.com]" in line
               for line in report), report

    again = run_upgrade(run_playbook, simulator, limit="borealis_logistics")
    plain = again.task("ucops.webex.upgrade_21_1 : Show the upgrade report",
                       host="borealis_logistics")["result"]["msg"]
    assert not any(line.startswith("Check mode:") for line in plain)


def test_upgrade_check_mode_names_counts_not_stored(simulator, run_playbook):
    """A license assigned in Webex after the last run: --check previews a sync that would
    change its count, and the report says that its counts are the stored ones."""
    assert run_upgrade(run_playbook, simulator, limit="borealis_logistics").rc == 0
    borealis = ORGS["Borealis Logistics"]
    messaging = next(item["id"] for item in borealis["licenses"]
                     if item["name"] == "Advanced Messaging"
                     and item.get("subscriptionId") == "Sub-BOR100")
    person = next(item for item in borealis["people"] if messaging not in item["licenses"])
    response = simulator.api("PATCH", "/licenses/users", json={
        "personId": person["id"], "orgId": borealis["id"],
        "licenses": [{"id": messaging, "operation": "add"}]})
    assert response.status_code == 200, response.text

    run = run_playbook(playbook=PLAYBOOKS / "upgrade_21_1.yml", inventory=DEMO_INVENTORY,
                       limit="borealis_logistics", check=True,
                       extra_env={"WEBEX_API_URL": simulator.api_url})

    assert run.rc == 0, run.stdout[-3000:]
    report = run.task("ucops.webex.upgrade_21_1 : Show the upgrade report",
                      host="borealis_logistics")["result"]["msg"]
    assert ("Check mode: the sync would change 1 license row(s) of the inventory, so the "
            "counts below are the stored ones") in " ".join(report), report


def test_license_report_csv_formula_text(simulator, run_playbook, tmp_path, inventory_db):
    """Text that a spreadsheet would run as a formula is written with a leading apostrophe."""
    assert run_upgrade(run_playbook, simulator, limit="alpine_dental").rc == 0
    with sqlite3.connect(inventory_db) as connection:
        connection.execute("UPDATE licenses SET name = '=HYPERLINK(\"x\",\"y\")' "
                           "WHERE customer = 'Alpine Dental' AND name = 'Advanced Messaging'")
        connection.execute("UPDATE licenses SET name = '-Basic, Messaging' "
                           "WHERE customer = 'Alpine Dental' AND name = 'Basic Messaging'")
        connection.execute("UPDATE licenses SET total_units = -1 "
                           "WHERE customer = 'Alpine Dental' AND name = '-Basic, Messaging'")
    report_dir = tmp_path / "report"

    run = run_report(run_playbook, report_dir, webex_report_hierarchy="Keystone")

    assert run.rc == 0, run.stdout[-3000:]
    _listing, rows = read_report(report_dir)
    names = {row["name"]: row for row in rows}
    assert "'=HYPERLINK(\"x\",\"y\")" in names
    assert "'-Basic, Messaging" in names
    assert names["'-Basic, Messaging"]["total_units"] == "-1"
    totals = (report_dir / "totals.csv").read_text()
    assert "'=HYPERLINK" in totals


def test_license_table_keeps_one_row_per_line(simulator, run_playbook, tmp_path,
                                              inventory_db):
    """A line break in a name (the API allows one) is shown as a space in the text table,
    so each row stays on one line. The CSV keeps the name as it is."""
    assert run_upgrade(run_playbook, simulator, limit="alpine_dental").rc == 0
    with sqlite3.connect(inventory_db) as connection:
        connection.execute("UPDATE licenses SET name = 'Advanced\nMessaging' "
                           "WHERE customer = 'Alpine Dental' AND name = 'Advanced Messaging'")
    report_dir = tmp_path / "report"

    run = run_report(run_playbook, report_dir, webex_report_customer="Alpine Dental")

    assert run.rc == 0, run.stdout[-3000:]
    table = (report_dir / "licenses.txt").read_text().splitlines()
    rows = [line for line in table if "Advanced Messaging" in line]
    assert rows, table
    assert rows[0].startswith("Alpine Dental")
    assert not any(line.startswith("Messaging") for line in table)
    _listing, rows = read_report(report_dir)
    assert "Advanced\nMessaging" in {row["name"] for row in rows}


def test_upgrade_to_subscription_without_sites(start_simulator, run_playbook, tmp_path,
                                               inventory_db):
    """Moving a customer to a subscription without meeting sites clears its site URL."""
    fixture = json.loads(DEMO_FIXTURE.read_text())
    borealis_org = next(org for org in fixture["organizations"]
                        if org["displayName"] == "Borealis Logistics")
    borealis_org["licenses"].append({
        "id": "Y2lzY29zcGFyazovL3VzL0xJQ0VOU0UvYm9yMTAyLWNhbGxpbmc",
        "name": "Webex Calling - Professional", "totalUnits": 10, "consumedUnits": 0,
        "consumedByUsers": 0, "consumedByWorkspaces": 0, "subscriptionId": "Sub-BOR102"})
    fixture_path = tmp_path / "fixture.json"
    fixture_path.write_text(json.dumps(fixture))
    simulator = start_simulator(fixture_path)
    assert run_upgrade(run_playbook, simulator, limit="borealis_logistics").rc == 0

    inventory = inventory_with_borealis_vars(tmp_path,
                                             webex_default_subscription_id="Sub-BOR102",
                                             webex_default_site_url=None)

    run = run_upgrade(run_playbook, simulator, inventory=inventory, limit="borealis_logistics")

    assert run.rc == 0, run.stdout[-3000:]
    with sqlite3.connect(inventory_db) as connection:
        stored = connection.execute(
            "SELECT default_subscription_id, default_site_url FROM customers "
            "WHERE name = 'Borealis Logistics'").fetchone()
    assert stored == ("Sub-BOR102", None)


def test_upgrade_fails_on_stored_default_the_org_lost(simulator, start_simulator, run_playbook,
                                                      tmp_path):
    """After a renewal under a new subscription id the stored default (still in the host
    vars) is in the org no more: the upgrade fails that customer instead of passing it with
    no managed license."""
    assert run_upgrade(run_playbook, simulator, limit="borealis_logistics").rc == 0
    fixture = json.loads(DEMO_FIXTURE.read_text())
    renewed = json.loads(json.dumps(fixture).replace("Sub-BOR100", "Sub-BOR200"))
    fixture_path = tmp_path / "renewed.json"
    fixture_path.write_text(json.dumps(renewed))
    renewed_simulator = start_simulator(fixture_path)

    run = run_upgrade(run_playbook, renewed_simulator, limit="borealis_logistics")

    assert run.rc != 0, run.stdout[-3000:]
    failure = run.task("Record the failure", host="borealis_logistics")
    message = failure["result"]["ansible_facts"]["upgrade_21_1_outcome"]["message"]
    assert ("default_subscription_id 'Sub-BOR100' (webex_default_subscription_id) is not a "
            "subscription of org 'Borealis Logistics' (found: Sub-BOR101, Sub-BOR200)") in message
    assert "default_site_url 'borealis.webex.com'" not in message


def test_upgrade_check_mode_of_new_customer(simulator, run_playbook):
    """A check-mode upgrade of a customer without stored defaults gives no warning about
    the defaults that the run would set, and its outcome line states that the counts are
    the stored ones."""
    borealis = ORGS["Borealis Logistics"]
    added = run_playbook([{"name": "add", "ucops.webex.webex_customer": {
        "name": "Borealis Logistics", "org_id": borealis["id"],
        "hierarchy": "Keystone/Reseller North", "api_url": simulator.api_url,
        "access_token": "demo-partner-token"}}])
    assert not added.task("add")["failed"], added.task("add")["result"]["msg"]

    run = run_playbook(playbook=PLAYBOOKS / "upgrade_21_1.yml", inventory=DEMO_INVENTORY,
                       limit="borealis_logistics", check=True,
                       extra_env={"WEBEX_API_URL": simulator.api_url})

    assert run.rc == 0, run.stdout[-3000:]
    syncs = [record for record in run.results
             if record["task"] == "ucops.webex.license_sync : Sync the customer from its Webex org"]
    assert len(syncs) == 2
    assert syncs[-1]["result"]["defaults_required"]
    assert not [text for text in syncs[-1]["result"].get("warnings", [])
                if "is not set" in text]
    [line] = outcome_lines(run)
    assert line.startswith("Borealis Logistics: upgraded; ")
    assert line.endswith("(check mode: counts of the stored defaults and licenses, which the "
                         "run would change)")


def test_license_report_names_with_separators(simulator, run_playbook, tmp_path):
    """A ; or quote in a customer name stays readable in totals.csv, and blanks at the
    start of a name keep the text table aligned."""
    assert run_upgrade(run_playbook, simulator, limit=SMALL_CUSTOMERS).rc == 0
    odd, spaced = 'Smith, "Jones"; Partners', "  Spaced Customer"
    renames = run_playbook([
        {"name": "first", "ucops.webex.webex_customer": {"name": "Alpine Dental",
                                                         "new_name": odd}},
        {"name": "second", "ucops.webex.webex_customer": {"name": "Borealis Logistics",
                                                          "new_name": spaced}}])
    assert renames.rc == 0, renames.stdout[-3000:]
    report_dir = tmp_path / "report"

    run = run_report(run_playbook, report_dir, webex_report_hierarchy="Keystone",
                     webex_report_expected_group="")

    assert run.rc == 0, run.stdout[-3000:]
    listing, _rows = read_report(report_dir)
    with open(report_dir / "totals.csv", newline="", encoding="utf-8") as handle:
        totals = list(csv.DictReader(handle))
    assert len(totals) == len(listing["totals"])
    for row, total in zip(totals, listing["totals"]):
        names = next(csv.reader([row["customers"]], delimiter=";"))
        assert names == total["customers"], row["customers"]
    assert any(odd in total["customers"] for total in listing["totals"])
    table = (report_dir / "licenses.txt").read_text().split("\n")
    column = table[1].index("Subscription")
    spaced_rows = [line for line in table if line.startswith(spaced + " ")]
    assert spaced_rows, table
    for line in spaced_rows:
        assert line[column - 2:column] == "  ", line
        assert line[column] != " ", line


def test_license_report_limit_without_localhost_fails(simulator, run_playbook, tmp_path):
    """--limit on customer hosts would skip the report play (on localhost) and pass."""
    report_dir = tmp_path / "report"
    run = run_playbook(playbook=PLAYBOOKS / "license_inventory.yml", inventory=DEMO_INVENTORY,
                       extra_vars={"webex_report_dir": str(report_dir)},
                       limit="alpine_dental")

    assert run.rc != 0, run.stdout[-3000:]
    assert "--limit 'alpine_dental' left out" in run.stdout
    assert "--limit 'localhost,alpine_dental'" in run.stdout
    assert not report_dir.exists()


@pytest.mark.parametrize("limit", ["localhost,alpine_dental", "@limit.txt"])
def test_license_report_limit_with_localhost_runs(simulator, run_playbook, tmp_path, limit):
    assert run_upgrade(run_playbook, simulator, limit="alpine_dental").rc == 0
    report_dir = tmp_path / "report"
    limit_file = tmp_path / "limit.txt"
    limit_file.write_text("localhost\nalpine_dental\n")
    run = run_playbook(playbook=PLAYBOOKS / "license_inventory.yml", inventory=DEMO_INVENTORY,
                       extra_vars={"webex_report_dir": str(report_dir),
                                   "webex_report_customer": "Alpine Dental"},
                       limit=limit.replace("@limit.txt", f"@{limit_file}"))

    assert run.rc == 0, run.stdout[-3000:]
    assert (report_dir / "licenses.json").exists()


@pytest.mark.parametrize("playbook, job", [("sync.yml", "sync"), ("upgrade_21_1.yml", "upgrade")])
def test_customer_playbooks_fail_without_customers(run_playbook, tmp_path, playbook, job):
    inventory = tmp_path / "customers.yml"
    inventory.write_text("customers:\n  hosts:\n    alpine:\n      ansible_connection: local\n")

    run = run_playbook(playbook=PLAYBOOKS / playbook, inventory=inventory)

    assert run.rc != 0, run.stdout[-3000:]
    assert "Group webex_customers of the Ansible inventory has no host" in run.stdout
    assert f"(it is not defined; groups: customers), so there is no customer to {job}" in (
        run.stdout.replace("\n", " "))


def test_license_report_list_level_variable_fails(run_playbook, tmp_path):
    report_dir = tmp_path / "report"
    run = run_playbook(playbook=PLAYBOOKS / "license_inventory.yml", inventory=DEMO_INVENTORY,
                       extra_vars={"webex_report_dir": str(report_dir),
                                   "webex_report_customer": ["Alpine Dental"]})

    assert run.rc != 0, run.stdout[-3000:]
    assert ("webex_report_customer must be one text value each, not a list or mapping"
            in run.stdout)
    assert "Provider/Reseller North" not in run.stdout
    assert not report_dir.exists()


@pytest.mark.parametrize("extra_vars, named", [
    ({"license_sync_people_sample": -1}, "license_sync_people_sample (upgrade_21_1_people_sample"
                                         " in the upgrade) must be 0 or more, got -1"),
    ({"license_sync_people_page_size": 0}, "license_sync_people_page_size must be 1 or more"),
    ({"webex_timeout": -1}, "webex_timeout must be more than 0 seconds, got -1"),
    ({"webex_max_retry_wait": -5}, "webex_max_retry_wait must be 0 or more seconds"),
    ({"license_sync_scope": []}, "license_sync_scope must list at least one of"),
])
def test_sync_role_names_variable_out_of_range(run_playbook, inventory_db, extra_vars, named):
    # The role fails before any request, so the URL (a closed port) is never used.
    run = run_playbook(playbook=PLAYBOOKS / "sync.yml", inventory=DEMO_INVENTORY,
                       limit="alpine_dental", extra_vars=extra_vars,
                       extra_env={"WEBEX_API_URL": "http://127.0.0.1:9/v1"})

    assert run.rc != 0, run.stdout[-3000:]
    assert f"Host alpine_dental: {named}" in run.stdout
    assert not inventory_db.exists()
