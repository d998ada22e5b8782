"""webex_license_info with source=inventory: views per hierarchy level after real syncs."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from tests.integration.conftest import DEMO_FIXTURE

DEMO = json.loads(DEMO_FIXTURE.read_text())
ORGS = {org["displayName"]: org for org in DEMO["organizations"]}
HIERARCHY = {
    "Alpine Dental": "Keystone/Reseller North",
    "Borealis Logistics": "Keystone/Reseller North",
    "Cobalt Health": "Keystone/Reseller South",
}
BOREALIS_DEFAULTS = {"default_subscription_id": "Sub-BOR100",
                     "default_site_url": "borealis.webex.com"}


def setup_tasks(api_url: str) -> list[dict]:
    """Add the three demo customers (Borealis with defaults) and sync each of them."""
    tasks = []
    for name, hierarchy in HIERARCHY.items():
        customer = {"name": name, "org_id": ORGS[name]["id"], "hierarchy": hierarchy}
        if name == "Borealis Logistics":
            customer.update(BOREALIS_DEFAULTS)
        tasks.append({"name": f"add {name}", "ucops.webex.webex_customer": customer})
        tasks.append({"name": f"sync {name}",
                      "ucops.webex.webex_license_sync": {"customer": name}})
    return tasks


def view_task(task_name: str, **options) -> dict:
    options["source"] = "inventory"
    return {"name": task_name, "ucops.webex.webex_license_info": options, "ignore_errors": True}


@pytest.fixture
def synced(simulator, run_playbook):
    """Run views after the setup tasks, in the same playbook (one ansible-playbook run)."""
    defaults = {"group/ucops.webex.webex": {"api_url": simulator.api_url,
                                            "access_token": "demo-partner-token"}}

    def run(*views: dict, check: bool = False):
        run = run_playbook(setup_tasks(simulator.api_url), module_defaults=defaults)
        assert run.rc == 0, run.stdout[-3000:]
        views_run = run_playbook(list(views), module_defaults=defaults, check=check)
        return views_run

    return run


def result_of(run, task_name: str) -> dict:
    record = run.task(task_name)
    assert not record["failed"], record["result"].get("msg")
    assert record["changed"] is False
    return record["result"]


def fixture_license_rows(*names: str) -> list[dict]:
    rows = []
    for name in names:
        for lic in ORGS[name]["licenses"]:
            rows.append(dict(lic, customer=name))
    return rows


def test_provider_level_totals_per_subscription(synced):
    run = synced(view_task("provider", hierarchy="Keystone"))

    result = result_of(run, "provider")
    assert result["level"] == "hierarchy"
    expected = fixture_license_rows(*HIERARCHY)
    assert len(result["licenses"]) == len(expected)
    assert {row["customer"] for row in result["licenses"]} == set(HIERARCHY)

    totals = {(row["name"], row["subscription_id"], row["site_url"]): row
              for row in result["totals"]}
    assert len(totals) == len(result["totals"])
    expected_totals: dict = defaultdict(lambda: {"total": 0, "consumed": 0})
    for lic in expected:
        if lic["name"].startswith("Hybrid"):
            continue
        site_url = lic.get("siteUrl")
        key = (lic["name"], lic.get("subscriptionId"), site_url.lower() if site_url else None)
        expected_totals[key]["total"] += lic["totalUnits"]
        expected_totals[key]["consumed"] += lic["consumedUnits"]
    for key, value in expected_totals.items():
        assert totals[key]["total_units"] == value["total"], key
        assert totals[key]["consumed_units"] == value["consumed"], key
    # One total per license name, subscription and site URL, hybrid licenses included.
    assert set(totals) == {
        (lic["name"], lic.get("subscriptionId"),
         lic["siteUrl"].lower() if lic.get("siteUrl") else None) for lic in expected}
    calling = [key for key in totals if key[0] == "Webex Calling - Professional"]
    assert sorted(key[1] for key in calling) == ["Sub-ALP100", "Sub-BOR100", "Sub-BOR101",
                                                 "Sub-COB100"]


def test_reseller_level_rows(synced):
    run = synced(view_task("north", hierarchy="Keystone/Reseller North"),
                 view_task("half name", hierarchy="Keystone/Reseller"))

    north = result_of(run, "north")
    assert {row["customer"] for row in north["licenses"]} == {"Alpine Dental",
                                                              "Borealis Logistics"}
    for row in north["licenses"]:
        assert row["hierarchy"] == f"Keystone/Reseller North/{row['customer']}"
        assert row["device"]
        assert row["synced_at"]
    failed = run.task("half name")
    assert failed["failed"]
    assert "Keystone/Reseller North" in failed["result"]["msg"]


def test_customer_level_managed_flags(synced):
    run = synced(view_task("all", customer="Borealis Logistics"),
                 view_task("managed", customer="Borealis Logistics", managed_only=True))

    rows = result_of(run, "all")["licenses"]
    assert len(rows) == len(ORGS["Borealis Logistics"]["licenses"])
    for row in rows:
        expected = (row["subscription_id"] == "Sub-BOR100"
                    and row["site_url"] in (None, "borealis.webex.com"))
        assert row["managed"] is expected, row
    managed = result_of(run, "managed")["licenses"]
    assert managed == [row for row in rows if row["managed"]]
    assert result_of(run, "managed")["subscriptions"] == ["Sub-BOR100"]


def test_filters_at_hierarchy_level(synced):
    run = synced(
        view_task("by subscription", hierarchy="Keystone", subscription_id="Sub-BOR101"),
        view_task("by site", hierarchy="Keystone", site_url="https://BOREALIS-EU.webex.com/"),
        view_task("by name", hierarchy="Keystone", name="Webex Calling - Standard"),
    )

    by_subscription = result_of(run, "by subscription")["licenses"]
    assert by_subscription
    assert {row["subscription_id"] for row in by_subscription} == {"Sub-BOR101"}
    by_site = result_of(run, "by site")["licenses"]
    assert [row["site_url"] for row in by_site] == ["borealis-eu.webex.com"]
    by_name = result_of(run, "by name")
    assert {row["name"] for row in by_name["licenses"]} == {"Webex Calling - Standard"}
    assert sorted(row["subscription_id"] for row in by_name["totals"]) == [
        "Sub-ALP100", "Sub-BOR100", "Sub-BOR101", "Sub-COB100"]


def test_location_level_counts(synced):
    cobalt = ORGS["Cobalt Health"]
    location = next(loc for loc in cobalt["locations"] if loc["name"] == "Boston 005")
    run = synced(view_task("boston", customer="Cobalt Health", location="boston 005"),
                 view_task("by id", customer="Cobalt Health", location=location["id"]))

    result = result_of(run, "boston")
    assert result["level"] == "location"
    expected_users: dict = defaultdict(int)
    expected_workspaces: dict = defaultdict(int)
    for person in cobalt["people"]:
        if person.get("locationId") == location["id"]:
            for license_id in person["licenses"]:
                expected_users[license_id] += 1
    for workspace in cobalt["workspaces"]:
        if workspace.get("locationId") == location["id"]:
            calling = workspace.get("calling", {}).get("webexCalling", {})
            for license_id in calling.get("licenses", []):
                expected_workspaces[license_id] += 1
    hybrid = {lic["id"] for lic in cobalt["licenses"] if lic["name"].startswith("Hybrid")}
    expected_ids = (set(expected_users) | set(expected_workspaces)) - hybrid

    rows = {row["id"]: row for row in result["licenses"]}
    assert set(rows) == expected_ids
    for license_id, row in rows.items():
        assert row["consumed_by_users"] == expected_users[license_id]
        assert row["consumed_by_workspaces"] == expected_workspaces[license_id]
        assert row["consumed_units"] == (expected_users[license_id]
                                         + expected_workspaces[license_id])
        assert row["hierarchy"] == "Keystone/Reseller South/Cobalt Health/Boston 005"
    assert result_of(run, "by id")["licenses"] == result["licenses"]


def test_view_in_check_mode(synced):
    run = synced(view_task("customer", customer="Alpine Dental"), check=True)

    assert len(result_of(run, "customer")["licenses"]) == len(ORGS["Alpine Dental"]["licenses"])


def test_unknown_customer_and_location(synced):
    run = synced(view_task("customer", customer="Nobody Inc"),
                 view_task("location", customer="Cobalt Health", location="Atlantis"),
                 view_task("empty location", customer="Cobalt Health", location=" "))

    customer = run.task("customer")
    assert customer["failed"]
    assert "'Nobody Inc'" in customer["result"]["msg"]
    assert "Alpine Dental" in customer["result"]["msg"]
    location = run.task("location")
    assert location["failed"]
    assert "'Atlantis'" in location["result"]["msg"]
    assert "Boston 005" in location["result"]["msg"]
    empty = run.task("empty location")
    assert empty["failed"]
    assert "location is empty" in empty["result"]["msg"]


def test_expected_customers_not_in_inventory(synced):
    expected = [{"name": "Alpine Dental", "hierarchy": HIERARCHY["Alpine Dental"]},
                {"name": "Dropped Inc", "hierarchy": "Keystone/Reseller North"},
                {"name": "Elsewhere Ltd", "hierarchy": "Orbit/Reseller West"}]
    run = synced(view_task("provider", hierarchy="Keystone", expected_customers=expected),
                 view_task("customer", customer="Alpine Dental", expected_customers=expected),
                 view_task("empty node", hierarchy="Orbit", expected_customers=expected),
                 {"name": "live", "ignore_errors": True, "ucops.webex.webex_license_info": {
                     "expected_customers": expected}})

    provider = result_of(run, "provider")
    assert provider["not_in_inventory"] == ["Dropped Inc"]
    assert any("Dropped Inc were expected at this level" in warning
               for warning in provider["warnings"])
    assert result_of(run, "customer")["not_in_inventory"] == []
    # No stored customer under Orbit: the failure names the one expected there.
    empty = run.task("empty node")
    assert empty["failed"]
    assert "expected there but missing: Elsewhere Ltd" in empty["result"]["msg"]
    live = run.task("live")
    assert live["failed"]
    assert "expected_customers is only valid with source=inventory" in live["result"]["msg"]


def test_missing_inventory_file(run_playbook, tmp_path):
    run = run_playbook([view_task("view", hierarchy="Keystone",
                                  inventory_db=str(tmp_path / "absent.db"))])

    record = run.task("view")
    assert record["failed"]
    assert "absent.db" in record["result"]["msg"]
    assert "webex_license_sync" in record["result"]["msg"]
    assert not (tmp_path / "absent.db").exists()


def test_old_inventory_upgraded_with_copy(run_playbook, inventory_db):
    """An inventory of schema version 1 is copied, upgraded, and the task names the copy."""
    from tests.unit.test_people_fingerprint import UPGRADE_PAGES, create_schema_1_database

    create_schema_1_database(str(inventory_db), [item for page in UPGRADE_PAGES
                                                 for item in page])

    run = run_playbook([{"name": "read", "ucops.webex.webex_license_info": {
        "source": "inventory", "customer": "Acme"}}])

    record = run.task("read")
    assert not record["failed"], record["result"].get("msg")
    warnings = " ".join(record["result"].get("warnings", []))
    assert f"A copy of the file as it was is {inventory_db}.schema-1.bak" in warnings
    assert (inventory_db.parent / f"{inventory_db.name}.schema-1.bak").is_file()
