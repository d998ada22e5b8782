"""webex_license_sync run through ansible-playbook against the simulator."""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
import sys

import pytest
import yaml

from tests.integration.conftest import DEMO_FIXTURE

PARTNER_TOKEN = "demo-partner-token"
DEMO = json.loads(DEMO_FIXTURE.read_text())
ORGS = {org["displayName"]: org for org in DEMO["organizations"]}
ALPINE = ORGS["Alpine Dental"]
BOREALIS = ORGS["Borealis Logistics"]
COBALT = ORGS["Cobalt Health"]
PEOPLE_PAGE = 100  # the API's page cap of GET /v1/people with callingData=true
DATA_TABLES = ("licenses", "roles", "people", "person_licenses", "person_roles", "locations",
               "workspaces", "workspace_licenses")


def customer_task(simulator, customer, org, task="add customer", **options):
    module_args = {"api_url": simulator.api_url, "access_token": PARTNER_TOKEN,
                   "name": customer, "org_id": org["id"]}
    module_args.update(options)
    return {"name": task, "ucops.webex.webex_customer": module_args, "ignore_errors": True}


def sync_task(simulator, customer, task="sync", token=PARTNER_TOKEN, **options):
    module_args = {"api_url": simulator.api_url, "customer": customer, "max_retry_wait": 30}
    if token:
        module_args["access_token"] = token
    module_args.update(options)
    return {"name": task, "ucops.webex.webex_license_sync": module_args, "ignore_errors": True}


def add_customer(run_playbook, simulator, org, **options):
    run = run_playbook([customer_task(simulator, org["displayName"], org, **options)])
    assert not run.task("add customer")["failed"], run.task("add customer")["result"]["msg"]


def synced(run, task="sync"):
    record = run.task(task)
    assert not record["failed"], record["result"].get("msg")
    return record


def query(path, sql, *params):
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.row_factory = sqlite3.Row
        return [dict(row) for row in connection.execute(sql, params)]


def dump_inventory(path, skip=()) -> dict:
    """Return every row of every table (except ``skip``), sorted."""
    with contextlib.closing(sqlite3.connect(path)) as connection:
        tables = [row[0] for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        return {table: sorted(connection.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
                for table in tables if table not in skip}


def person_license_ids(path, customer, email):
    rows = query(path, "SELECT pl.license_id FROM person_licenses pl JOIN people p "
                       "ON p.customer = pl.customer AND p.id = pl.person_id "
                       "WHERE p.customer = ? AND p.email = ? ORDER BY pl.license_id",
                 customer, email)
    return [row["license_id"] for row in rows]


def live_licenses(simulator, org):
    response = simulator.api("GET", "/licenses", params={"orgId": org["id"]})
    assert response.status_code == 200
    return {item["id"]: item for item in response.json()["items"]}


def assign_license(simulator, org, license_name, subscription_id):
    """Assign a license to a person who lacks it, as another admin; return (email, id)."""
    license_id = next(lic["id"] for lic in org["licenses"]
                      if lic["name"] == license_name
                      and lic.get("subscriptionId") == subscription_id)
    person = next(p for p in org["people"] if license_id not in p["licenses"])
    email = person["emails"][0]
    response = simulator.api("PATCH", "/licenses/users", json={
        "email": email, "orgId": org["id"],
        "licenses": [{"id": license_id, "operation": "add"}]})
    assert response.status_code == 200, response.text
    return email, license_id


def test_sync_rhythm(simulator, run_playbook, inventory_db):
    add_customer(run_playbook, simulator, ALPINE)
    task = sync_task(simulator, "Alpine Dental")

    records = []
    simulator.clear_requests()
    for check in (True, False, True, False):
        before = dump_inventory(inventory_db)
        run = run_playbook([task], check=check)
        records.append(synced(run))
        if check:
            assert dump_inventory(inventory_db) == before

    # People are listed with calling data (locations) and without presence, which the
    # inventory does not keep and which slows the API down.
    people_queries = [entry["query"] for entry in simulator.requests()
                      if entry["path"] == "/v1/people"]
    assert people_queries
    assert all(q.get("callingData") == "true" for q in people_queries)
    assert all(q.get("excludeStatus") == "true" for q in people_queries)

    assert [record["changed"] for record in records] == [True, True, False, False]
    assert records[0]["result"]["summary"] == records[1]["result"]["summary"]
    assert records[0]["result"]["history_id"] is None
    assert records[1]["result"]["summary"]["people"]["added"] == len(ALPINE["people"])
    assert records[3]["result"]["summary"]["people"]["unchanged"] == len(ALPINE["people"])
    people = query(inventory_db, "SELECT COUNT(*) AS n FROM people WHERE customer = ?",
                   "Alpine Dental")
    assert people[0]["n"] == len(ALPINE["people"])
    history = query(inventory_db, "SELECT outcome, changed FROM sync_history ORDER BY id")
    assert history == [{"outcome": "success", "changed": 1}, {"outcome": "success", "changed": 0}]
    result = records[1]["result"]
    assert result["subscriptions"] == ["Sub-ALP100"]
    assert result["defaults"]["subscription_id"] == "Sub-ALP100"
    assert result["defaults_required"] == []
    assert sorted(item["name"] for item in result["unsubscribed_licenses"]) == [
        "Basic Messaging", "Basic Space Meetings", "Free screen share",
        "Hybrid - Exchange Calendar"]


def test_borealis_defaults_flow(simulator, run_playbook, inventory_db):
    add_customer(run_playbook, simulator, BOREALIS)

    first = run_playbook([sync_task(simulator, "Borealis Logistics")])

    record = synced(first)
    required = {item["option"]: item["candidates"]
                for item in record["result"]["defaults_required"]}
    assert required == {"default_subscription_id": ["Sub-BOR100", "Sub-BOR101"],
                        "default_site_url": ["borealis-eu.webex.com", "borealis.webex.com"]}
    warnings = " ".join(record["result"]["warnings"])
    assert "default_subscription_id" in warnings
    assert "Sub-BOR100, Sub-BOR101" in warnings
    assert "borealis-eu.webex.com, borealis.webex.com" in warnings
    assert query(inventory_db, "SELECT id FROM licenses WHERE managed = 1") == []

    second = run_playbook([
        customer_task(simulator, "Borealis Logistics", BOREALIS, task="set defaults",
                      default_subscription_id="Sub-BOR100",
                      default_site_url="borealis.webex.com"),
        sync_task(simulator, "Borealis Logistics", task="sync again", people_sample=5),
    ])

    assert not second.task("set defaults")["failed"]
    result = synced(second, "sync again")["result"]
    assert result["defaults_required"] == []
    assert result["defaults"]["subscription_id"] == "Sub-BOR100"
    assert result["defaults"]["site_url"] == "borealis.webex.com"
    expected_managed = {
        lic["id"] for lic in BOREALIS["licenses"]
        if lic.get("subscriptionId") == "Sub-BOR100"
        and lic.get("siteUrl") in (None, "borealis.webex.com")}
    managed = {row["id"] for row in query(inventory_db,
                                          "SELECT id FROM licenses WHERE managed = 1")}
    assert managed == expected_managed
    outside_ids = {lic["id"] for lic in BOREALIS["licenses"]
                   if lic.get("subscriptionId") and lic["id"] not in expected_managed}
    holders = {p["emails"][0] for p in BOREALIS["people"] if outside_ids & set(p["licenses"])}
    outside = result["users_outside_defaults"]
    assert outside["count"] == len(holders)
    assert len(outside["sample"]) == 5
    for person in outside["sample"]:
        assert person["email"] in holders
        assert {lic["subscription_id"] for lic in person["licenses"]} == {"Sub-BOR101"}


@pytest.mark.parametrize("path, pages_read, listed", [
    ("/v1/licenses", {}, "none"),
    ("/v1/roles", {"licenses": 1}, "1 of licenses"),
    ("/v1/people", {"licenses": 1, "roles": 1}, "1 of licenses, 1 of roles"),
])
def test_failed_first_page_counts_pages(simulator, run_playbook, inventory_db, path,
                                        pages_read, listed):
    add_customer(run_playbook, simulator, BOREALIS)
    simulator.set_faults(rules=[{"method": "GET", "path": path, "status": 503,
                                 "times": None}])

    failed = run_playbook([sync_task(simulator, "Borealis Logistics", max_retry_wait=0.1)])

    record = failed.task("sync")
    assert record["failed"]
    assert f"GET {path} failed" in record["result"]["msg"]
    assert f"(pages read before the failure: {listed})" in record["result"]["msg"]
    assert record["result"]["pages_read"] == pages_read


def test_interrupted_sync_keeps_store(simulator, run_playbook, inventory_db):
    add_customer(run_playbook, simulator, BOREALIS)
    synced(run_playbook([sync_task(simulator, "Borealis Logistics")]))
    assign_license(simulator, BOREALIS, "Advanced Messaging", "Sub-BOR100")
    before = dump_inventory(inventory_db, skip=("sync_history",))
    simulator.clear_requests()
    simulator.set_faults(rules=[{"method": "GET", "path": "/v1/people", "status": 503,
                                 "skip": 1, "times": None}])

    failed = run_playbook([sync_task(simulator, "Borealis Logistics")])

    record = failed.task("sync")
    assert record["failed"]
    message = record["result"]["msg"]
    assert "sync of customer 'Borealis Logistics' failed" in message
    assert "inventory was not changed" in message
    assert "GET /v1/people" in message
    assert "503" in message
    assert "(pages read before the failure: 1 of licenses, 1 of roles, 1 of people)" in message
    assert record["result"]["status"] == 503
    assert record["result"]["pages_read"] == {"licenses": 1, "roles": 1, "people": 1}
    people_statuses = [entry["status"] for entry in simulator.requests()
                       if entry["path"] == "/v1/people"]
    assert people_statuses[0] == 200
    assert people_statuses[1:] == [503] * 5
    assert dump_inventory(inventory_db, skip=("sync_history",)) == before
    history = query(inventory_db, "SELECT id, outcome, error FROM sync_history ORDER BY id")
    assert [row["outcome"] for row in history] == ["success", "failed"]
    assert "1 of people)" in history[1]["error"]
    assert "503" in history[-1]["error"]
    assert record["result"]["history_id"] == history[-1]["id"]

    simulator.set_faults()
    retried = run_playbook([sync_task(simulator, "Borealis Logistics")])

    assert synced(retried)["changed"]
    outcomes = [row["outcome"] for row in query(
        inventory_db, "SELECT outcome FROM sync_history ORDER BY id")]
    assert outcomes == ["success", "failed", "success"]


def test_assignment_between_syncs(simulator, run_playbook, inventory_db):
    add_customer(run_playbook, simulator, BOREALIS)
    synced(run_playbook([sync_task(simulator, "Borealis Logistics")]))
    email, license_id = assign_license(simulator, BOREALIS, "Advanced Messaging", "Sub-BOR100")
    assert license_id not in person_license_ids(inventory_db, "Borealis Logistics", email)

    run = run_playbook([sync_task(simulator, "Borealis Logistics")])

    record = synced(run)
    assert record["changed"]
    summary = record["result"]["summary"]
    assert summary["people"]["updated"] == 1
    assert summary["licenses"]["updated"] == 1
    live = live_licenses(simulator, BOREALIS)
    stored = {row["id"]: row for row in query(
        inventory_db, "SELECT * FROM licenses WHERE customer = ?", "Borealis Logistics")}
    assert set(stored) == set(live)
    for lic_id, item in live.items():
        if item["name"].startswith("Hybrid -"):
            continue
        assert stored[lic_id]["consumed_units"] == item["consumedUnits"], item["name"]
        assert stored[lic_id]["consumed_by_users"] == item.get("consumedByUsers"), item["name"]
    assert license_id in person_license_ids(inventory_db, "Borealis Logistics", email)
    changes = record["result"]["people_changes"]["changes"]
    assert [(c["email"], c["licenses_added"]) for c in changes] == [(email, [license_id])]


def test_parallel_syncs_three_customers(simulator, run_playbook, inventory_db, tmp_path):
    hosts = {}
    for host, org in (("alpine", ALPINE), ("borealis", BOREALIS), ("cobalt", COBALT)):
        hosts[host] = {"webex_customer_name": org["displayName"], "webex_org_id": org["id"]}
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": hosts, "vars": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}))
    module_args = {"api_url": simulator.api_url, "access_token": PARTNER_TOKEN}
    play = {"name": "sync customers", "hosts": "all", "gather_facts": False, "tasks": [
        {"name": "add customer", "ucops.webex.webex_customer": dict(
            module_args, name="{{ webex_customer_name }}", org_id="{{ webex_org_id }}")},
        {"name": "sync", "ucops.webex.webex_license_sync": dict(
            module_args, customer="{{ webex_customer_name }}")},
    ]}
    playbook = tmp_path / "sync.yml"
    playbook.write_text(yaml.safe_dump([play], sort_keys=False))

    run = run_playbook(playbook=playbook, inventory=inventory, forks=3)

    assert run.rc == 0, run.stdout
    for host, org in (("alpine", ALPINE), ("borealis", BOREALIS), ("cobalt", COBALT)):
        record = run.task("sync", host=host)
        assert not record["failed"], record["result"].get("msg")
        name = org["displayName"]
        counts = {table: query(inventory_db, f"SELECT COUNT(*) AS n FROM {table} "
                                             "WHERE customer = ?", name)[0]["n"]
                  for table in ("licenses", "people", "locations", "workspaces", "roles")}
        assert counts == {"licenses": len(org["licenses"]), "people": len(org["people"]),
                          "locations": len(org["locations"]),
                          "workspaces": len(org["workspaces"]), "roles": len(org["roles"])}
        links = query(inventory_db, "SELECT COUNT(*) AS n FROM person_licenses "
                                    "WHERE customer = ?", name)[0]["n"]
        assert links == sum(len(person["licenses"]) for person in org["people"])


def test_light_sync_touches_only_scope(simulator, run_playbook, inventory_db):
    add_customer(run_playbook, simulator, BOREALIS)
    synced(run_playbook([sync_task(simulator, "Borealis Logistics")]))
    email, license_id = assign_license(simulator, BOREALIS, "Advanced Messaging", "Sub-BOR100")
    untouched = ("people", "person_licenses", "person_roles", "locations", "workspaces",
                 "workspace_licenses")
    before = {table: rows for table, rows in dump_inventory(inventory_db).items()
              if table in untouched}
    people_state = query(inventory_db, "SELECT * FROM sync_state WHERE object_type = 'people'")
    simulator.clear_requests()

    run = run_playbook([sync_task(simulator, "Borealis Logistics", scope=["roles", "licenses"])])

    record = synced(run)
    assert record["changed"]
    assert set(record["result"]["summary"]) == {"licenses", "roles"}
    assert record["result"]["summary"]["licenses"]["updated"] == 1
    assert sorted(entry["path"] for entry in simulator.requests()) == ["/v1/licenses",
                                                                       "/v1/roles"]
    after = {table: rows for table, rows in dump_inventory(inventory_db).items()
             if table in untouched}
    assert after == before
    assert license_id not in person_license_ids(inventory_db, "Borealis Logistics", email)
    assert query(inventory_db,
                 "SELECT * FROM sync_state WHERE object_type = 'people'") == people_state
    stored = query(inventory_db, "SELECT consumed_units FROM licenses WHERE id = ?", license_id)
    assert stored[0]["consumed_units"] == live_licenses(simulator, BOREALIS)[license_id][
        "consumedUnits"]
    history = query(inventory_db, "SELECT scope FROM sync_history ORDER BY id DESC LIMIT 1")
    assert history[0]["scope"] == "licenses,roles"


def test_diff_shows_license_before_after(simulator, run_playbook, inventory_db):
    add_customer(run_playbook, simulator, ALPINE)
    synced(run_playbook([sync_task(simulator, "Alpine Dental")]))
    email, license_id = assign_license(simulator, ALPINE, "Advanced Messaging", "Sub-ALP100")
    consumed = live_licenses(simulator, ALPINE)[license_id]["consumedUnits"]
    # Another person is renamed only: the license diffs leave that person out, and the
    # diff of people fields shows the name before and after.
    renamed = next(p for p in ALPINE["people"] if p["emails"][0] != email)
    response = simulator.api("PUT", f"/people/{renamed['id']}",
                             json=dict(renamed, displayName="Renamed Person"))
    assert response.status_code == 200, response.text

    run = run_playbook([sync_task(simulator, "Alpine Dental")], check=True, diff=True)

    record = synced(run)
    assert record["changed"]
    licenses_diff, people_diff, fields_diff = record["result"]["diff"]
    label = "Advanced Messaging (Sub-ALP100)"
    assert licenses_diff["before"][label]["consumed_units"] == consumed - 1
    assert licenses_diff["after"][label]["consumed_units"] == consumed
    assert label in people_diff["after"][email]
    assert label not in people_diff["before"][email]
    assert record["result"]["summary"]["people"]["updated"] == 2
    assert renamed["emails"][0] not in people_diff["before"]
    assert renamed["emails"][0] not in people_diff["after"]
    assert fields_diff["before_header"] == "people fields"
    assert fields_diff["before"] == {renamed["emails"][0]: {
        "display_name": renamed["displayName"]}}
    assert fields_diff["after"] == {renamed["emails"][0]: {"display_name": "Renamed Person"}}
    changes = {change["id"]: change for change in record["result"]["people_changes"]["changes"]}
    assert changes[renamed["id"]]["previous"] == {"display_name": renamed["displayName"]}
    assert f'-        "consumed_units": {consumed - 1},' in run.stdout
    assert f'+        "consumed_units": {consumed},' in run.stdout
    assert license_id not in person_license_ids(inventory_db, "Alpine Dental", email)


def test_requests_equal_pages(simulator, run_playbook, inventory_db):
    add_customer(run_playbook, simulator, COBALT)
    simulator.clear_requests()

    run = run_playbook([sync_task(simulator, "Cobalt Health")])

    record = synced(run)
    log = simulator.requests()
    paths = [entry["path"] for entry in log]
    expected = {
        "/v1/licenses": 1,
        "/v1/roles": 1,
        "/v1/people": math.ceil(len(COBALT["people"]) / PEOPLE_PAGE),
        "/v1/locations": 1,
        # One page of 60 without a next link, then an empty page at start=60: a list paged
        # by offsets only ends at an empty page, since a server may send fewer than max.
        "/v1/workspaces": 2,
    }
    assert {path: paths.count(path) for path in set(paths)} == expected
    assert record["result"]["api_requests"]["requests"] == len(log) == sum(expected.values())
    assert record["result"]["fetched"]["people"] == len(COBALT["people"])


def test_unknown_customer(simulator, run_playbook, inventory_db):
    add_customer(run_playbook, simulator, ALPINE)

    run = run_playbook([sync_task(simulator, "Nobody Inc")])

    record = run.task("sync")
    assert record["failed"]
    message = record["result"]["msg"]
    assert "customer 'Nobody Inc' is not in the inventory" in message
    assert "Alpine Dental" in message
    assert "ucops.webex.webex_customer" in message
    assert "In check mode" not in message


def test_unknown_customer_check_mode_hint(simulator, run_playbook, inventory_db):
    add_customer(run_playbook, simulator, ALPINE)

    run = run_playbook([sync_task(simulator, "Alpine Dentistry")], check=True)

    message = run.task("sync")["result"]["msg"]
    assert "did you mean 'Alpine Dental'?" in message
    assert "case-sensitive" not in message
    assert "In check mode webex_customer adds no customer" in message


def test_unknown_customer_without_inventory(simulator, run_playbook, inventory_db):
    run = run_playbook([sync_task(simulator, "Nobody Inc")])

    record = run.task("sync")
    assert record["failed"]
    assert "ucops.webex.webex_customer" in record["result"]["msg"]
    assert not inventory_db.exists()

    checked = run_playbook([sync_task(simulator, "Nobody Inc")], check=True)
    assert "In check mode webex_customer adds no customer" in (
        checked.task("sync")["result"]["msg"])


def test_missing_access_token(simulator, run_playbook, inventory_db):
    add_customer(run_playbook, simulator, ALPINE)
    simulator.clear_requests()

    run = run_playbook([sync_task(simulator, "Alpine Dental", token=None)])

    record = run.task("sync")
    assert record["failed"]
    assert "missing access_token" in record["result"]["msg"]
    assert simulator.requests() == []


def test_org_id_must_match_customer(simulator, run_playbook, inventory_db):
    add_customer(run_playbook, simulator, ALPINE)

    run = run_playbook([sync_task(simulator, "Alpine Dental", org_id=BOREALIS["id"])])

    record = run.task("sync")
    assert record["failed"]
    assert f"org_id '{BOREALIS['id']}' does not match" in record["result"]["msg"]
    assert query(inventory_db, "SELECT COUNT(*) AS n FROM people")[0]["n"] == 0


def test_org_of_another_customer_rejected(simulator, run_playbook, inventory_db):
    """A customer without org_id cannot read the org of another customer."""
    add_customer(run_playbook, simulator, ALPINE)
    run_playbook([{"name": "floating", "ucops.webex.webex_customer": {
        "name": "Floating", "hierarchy": "Keystone/Reseller North"}}])
    before = dump_inventory(inventory_db)

    run = run_playbook([sync_task(simulator, "Floating", org_id=ALPINE["id"])])

    record = run.task("sync")
    assert record["failed"]
    message = record["result"]["msg"]
    assert (f"the org that this sync read, '{ALPINE['id']}' (the token's own org, or the "
            "org_id option), is the org of customer 'Alpine Dental'") in message
    assert "or sync customer 'Alpine Dental' instead" in message
    assert dump_inventory(inventory_db, skip=("sync_history",)) == {
        table: rows for table, rows in before.items() if table != "sync_history"}


def test_org_option_without_stored_org_warns(simulator, run_playbook, inventory_db):
    run_playbook([{"name": "floating", "ucops.webex.webex_customer": {"name": "Floating"}}])

    run = run_playbook([sync_task(simulator, "Floating", org_id=ALPINE["id"],
                                  scope=["licenses"])])

    record = run.task("sync")
    assert not record["failed"], record["result"].get("msg")
    warnings = record["result"].get("warnings", [])
    assert (f"customer 'Floating' had no org_id; this sync read org '{ALPINE['id']}' and "
            "stored it as the customer's org_id") in " ".join(warnings), warnings
    assert "partner's own org" not in " ".join(warnings)
    assert record["result"]["org_id"] == ALPINE["id"]
    stored = query(inventory_db, "SELECT org_id FROM customers WHERE name = 'Floating'")
    assert stored == [{"org_id": ALPINE["id"]}]


def test_token_org_recorded_once(simulator, run_playbook, inventory_db):
    """A customer without org_id keeps the org of its first sync; no other customer reads it."""
    keystone = ORGS["Keystone Partner Services"]
    run_playbook([{"name": "add", "ucops.webex.webex_customer": {"name": name}}
                  for name in ("Keystone", "Zeta Corp")])

    first = synced(run_playbook([sync_task(simulator, "Keystone")]))
    assert first["result"]["org_id"] == keystone["id"]
    first_warnings = " ".join(first["result"]["warnings"])
    assert "stored it as the customer's org_id" in first_warnings
    assert "which for a partner administrator's token is the partner's own org" in (
        first_warnings)
    before = dump_inventory(inventory_db, skip=("sync_history",))

    run = run_playbook([sync_task(simulator, "Zeta Corp")])

    record = run.task("sync")
    assert record["failed"]
    assert (f"customer 'Zeta Corp' has no org_id, and the org that this sync read, "
            f"'{keystone['id']}'") in record["result"]["msg"]
    assert "is the org of customer 'Keystone'" in record["result"]["msg"]
    assert dump_inventory(inventory_db, skip=("sync_history",)) == before
    again = synced(run_playbook([sync_task(simulator, "Keystone", task="again")]), "again")
    assert not again["result"]["changed"]
    assert not again["result"].get("warnings")
    requests = [entry for entry in simulator.requests() if entry["path"] == "/v1/people"]
    assert requests and all(entry["query"].get("orgId") == keystone["id"]
                            for entry in requests[-1:])


def test_org_variable_names_org_of_unsynced_customer(simulator, run_playbook, inventory_db):
    """WEBEX_ORG_ID left in the environment is not stored on a customer synced before."""
    run_playbook([{"name": "add", "ucops.webex.webex_customer": {"name": name}}
                  for name in ("Keystone", "Floating")])
    synced(run_playbook([sync_task(simulator, "Keystone", scope=["licenses", "roles"])]))
    environment = {"WEBEX_ORG_ID": ALPINE["id"]}

    run = run_playbook([sync_task(simulator, "Keystone", scope=["licenses", "roles"]),
                        sync_task(simulator, "Floating", task="never synced",
                                  scope=["licenses", "roles"])], extra_env=environment)

    ignored = synced(run)
    assert ignored["result"]["org_id"] is None
    assert (f"WEBEX_ORG_ID is '{ALPINE['id']}', but customer 'Keystone' was synced before "
            "from the org of the access token, so the variable was ignored") in " ".join(
        ignored["result"]["warnings"])
    assert synced(run, "never synced")["result"]["org_id"] == ALPINE["id"]
    stored = query(inventory_db, "SELECT name, org_id FROM customers ORDER BY name")
    assert stored == [{"name": "Floating", "org_id": ALPINE["id"]},
                      {"name": "Keystone", "org_id": None}]


def test_org_recording_alone_is_a_change(simulator, run_playbook, inventory_db):
    # The org's data is unchanged, but the sync would store the org id: check mode must
    # report the change that the real run then makes.
    keystone = ORGS["Keystone Partner Services"]
    run_playbook([{"name": "add", "ucops.webex.webex_customer": {"name": "Keystone"}}])
    synced(run_playbook([sync_task(simulator, "Keystone")]))
    with contextlib.closing(sqlite3.connect(str(inventory_db))) as connection:
        with connection:
            connection.execute("UPDATE customers SET org_id = NULL WHERE name = 'Keystone'")

    check = synced(run_playbook([sync_task(simulator, "Keystone")], check=True))
    real = synced(run_playbook([sync_task(simulator, "Keystone")]))

    assert check["result"]["summary"]["people"]["added"] == 0
    assert check["result"]["changed"]
    assert real["result"]["changed"]
    stored = query(inventory_db, "SELECT org_id FROM customers WHERE name = 'Keystone'")
    assert stored == [{"org_id": keystone["id"]}]


def test_token_org_not_recorded_in_check_mode(simulator, run_playbook, inventory_db):
    keystone = ORGS["Keystone Partner Services"]
    run_playbook([{"name": "add", "ucops.webex.webex_customer": {"name": "Keystone"}}])

    run = run_playbook([sync_task(simulator, "Keystone")], check=True)

    record = synced(run)
    assert record["result"]["changed"]
    assert record["result"]["org_id"] == keystone["id"]
    assert "would store it as the customer's org_id" in " ".join(record["result"]["warnings"])
    stored = query(inventory_db, "SELECT org_id FROM customers WHERE name = 'Keystone'")
    assert stored == [{"org_id": None}]


def people_page_digests(path, customer):
    rows = query(path, "SELECT digest FROM people_pages WHERE customer = ? ORDER BY digest",
                 customer)
    return [row["digest"] for row in rows]


def test_resync_recorded_page_person_changed_in_inventory(
    simulator, run_playbook, inventory_db
):
    """A sync takes a page of people that Webex sends unchanged from its record (table
    people_pages). A person of that page whose stored licenses changed since, with the
    fingerprint cleared as webex_user_license does, is read from the page again."""
    add_customer(run_playbook, simulator, ALPINE)
    task = sync_task(simulator, "Alpine Dental", people_page_size=5)
    synced(run_playbook([task]))
    recorded = people_page_digests(inventory_db, "Alpine Dental")
    assert len(recorded) == math.ceil(len(ALPINE["people"]) / 5)
    holder = next(p for p in ALPINE["people"] if p["licenses"])
    email = holder["emails"][0]
    before = person_license_ids(inventory_db, "Alpine Dental", email)
    assert before
    with contextlib.closing(sqlite3.connect(inventory_db)) as connection:
        with connection:
            connection.execute(
                "DELETE FROM person_licenses WHERE customer = ? AND person_id = ?",
                ("Alpine Dental", holder["id"]))
            connection.execute(
                "UPDATE people SET fingerprint = NULL WHERE customer = ? AND id = ?",
                ("Alpine Dental", holder["id"]))

    record = synced(run_playbook([task]))

    assert person_license_ids(inventory_db, "Alpine Dental", email) == before
    assert record["changed"]
    assert record["result"]["summary"]["people"]["updated"] == 1
    # Webex sent the same pages: their records were kept, and none was added.
    assert people_page_digests(inventory_db, "Alpine Dental") == recorded
    again = synced(run_playbook([task]))
    assert not again["changed"]
    assert again["result"]["summary"]["people"]["unchanged"] == len(ALPINE["people"])
