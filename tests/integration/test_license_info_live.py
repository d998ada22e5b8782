"""webex_license_info with source=live, run through ansible-playbook against the simulator."""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import DEMO_FIXTURE

PARTNER_TOKEN = "demo-partner-token"
DEMO = json.loads(DEMO_FIXTURE.read_text())
ORGS = {org["displayName"]: org for org in DEMO["organizations"]}
ALPINE = ORGS["Alpine Dental"]
BOREALIS = ORGS["Borealis Logistics"]
COBALT = ORGS["Cobalt Health"]
PARTNER = DEMO["organizations"][0]


def info_task(simulator, task_name="list licenses", token=PARTNER_TOKEN, **options):
    module_args = {"api_url": simulator.api_url, "access_token": token, "max_retry_wait": 30}
    module_args.update(options)
    return {"name": task_name, "ucops.webex.webex_license_info": module_args,
            "register": "listing", "ignore_errors": True}


def licenses_of(run, task="list licenses"):
    record = run.task(task)
    assert not record["failed"], record["result"].get("msg")
    return record["result"]["licenses"]


def test_several_orgs_with_partner_token(simulator, run_playbook):
    tasks = [info_task(simulator, task_name=name, org_id=org["id"]) for name, org in ORGS.items()]

    run = run_playbook(tasks)

    assert run.rc == 0, run.stdout
    for name, org in ORGS.items():
        rows = licenses_of(run, name)
        assert sorted(row["id"] for row in rows) == sorted(lic["id"] for lic in org["licenses"])
        assert run.task(name)["changed"] is False
    borealis = run.task("Borealis Logistics")["result"]
    assert borealis["subscriptions"] == ["Sub-BOR100", "Sub-BOR101"]
    assert borealis["site_urls"] == ["borealis-eu.webex.com", "borealis.webex.com"]
    assert run.task("Alpine Dental")["result"]["subscriptions"] == ["Sub-ALP100"]


def test_own_org_without_org_id(simulator, run_playbook):
    run = run_playbook([info_task(simulator)])

    rows = licenses_of(run)
    assert sorted(row["id"] for row in rows) == sorted(lic["id"] for lic in PARTNER["licenses"])


def test_row_fields_and_counts(simulator, run_playbook):
    run = run_playbook([info_task(simulator, org_id=BOREALIS["id"],
                                  name="Webex Calling - Professional")])

    rows = licenses_of(run)
    assert {row["subscription_id"] for row in rows} == {"Sub-BOR100", "Sub-BOR101"}
    expected = {lic["id"]: lic for lic in BOREALIS["licenses"]}
    for row in rows:
        source = expected[row["id"]]
        assert row["name"] == "Webex Calling - Professional"
        assert row["total_units"] == source["totalUnits"]
        assert row["consumed_units"] == source["consumedUnits"]
        assert row["consumed_by_users"] == source["consumedByUsers"]
        assert row["available_units"] == source["totalUnits"] - source["consumedUnits"]
        assert row["utilization"] == round(100 * source["consumedUnits"] / source["totalUnits"], 1)
        assert row["site_url"] is None


def test_filters_subscription_and_site_url(simulator, run_playbook):
    tasks = [
        info_task(simulator, task_name="by subscription", org_id=BOREALIS["id"],
                  subscription_id="Sub-BOR101"),
        info_task(simulator, task_name="by site url", org_id=BOREALIS["id"],
                  site_url="HTTPS://Borealis-EU.webex.com/"),
    ]

    run = run_playbook(tasks)

    by_subscription = licenses_of(run, "by subscription")
    assert by_subscription
    assert {row["subscription_id"] for row in by_subscription} == {"Sub-BOR101"}
    by_site = licenses_of(run, "by site url")
    assert [row["site_url"] for row in by_site] == ["borealis-eu.webex.com"]


def test_licenses_without_site_or_subscription(simulator, run_playbook):
    run = run_playbook([info_task(simulator, org_id=BOREALIS["id"])])

    rows = {row["name"]: row for row in licenses_of(run) if row["subscription_id"] is None}
    assert "Basic Messaging" in rows
    assert rows["Basic Messaging"]["site_url"] is None
    route_list = [row for row in licenses_of(run)
                  if row["name"] == "Webex Calling - Route List Calls"]
    assert route_list[0]["consumed_by_users"] is None
    assert route_list[0]["consumed_by_workspaces"] is None


def test_check_mode_same_result(simulator, run_playbook):
    run = run_playbook([info_task(simulator, org_id=ALPINE["id"])], check=True)

    assert run.rc == 0
    assert len(licenses_of(run)) == len(ALPINE["licenses"])
    assert run.task("list licenses")["changed"] is False


def test_assigned_users_over_pages(simulator, run_playbook):
    """Cobalt's meeting license has more than 1,500 users: six pages of 300."""
    simulator.clear_requests()

    run = run_playbook([info_task(simulator, org_id=COBALT["id"],
                                  name="Meeting - Webex Enterprise Edition",
                                  include_assigned_users=True)])

    rows = licenses_of(run)
    assert len(rows) == 1
    holders = [p["id"] for p in COBALT["people"] if rows[0]["id"] in p["licenses"]]
    assert len(holders) > 900
    assert sorted(user["id"] for user in rows[0]["assigned_users"]) == sorted(holders)
    user_pages = [r for r in simulator.requests() if r["path"].startswith("/v1/licenses/")]
    assert len(user_pages) == -(-len(holders) // 300)


def test_faults_mid_listing_same_result(simulator, run_playbook):
    """429s and 503s while paging give the same rows; the retries show in the request log."""
    options = dict(org_id=COBALT["id"], name="Meeting - Webex Enterprise Edition",
                   include_assigned_users=True)
    clean = licenses_of(run_playbook([info_task(simulator, **options)]))
    simulator.clear_requests()
    simulator.set_faults(rules=[
        {"method": "GET", "path": "/v1/licenses/*", "status": 429, "retry_after": 1,
         "skip": 1, "times": 2},
        {"method": "GET", "path": "/v1/licenses/*", "status": 503, "skip": 4, "times": 1},
    ])

    run = run_playbook([info_task(simulator, **options)])

    assert licenses_of(run) == clean
    log = simulator.requests()
    statuses = [entry["status"] for entry in log if entry["path"].startswith("/v1/licenses/")]
    pages = -(-len(clean[0]["assigned_users"]) // 300)
    assert statuses.count(429) == 2
    assert statuses.count(503) == 1
    assert statuses.count(200) == pages
    assert len(log) == 1 + pages + 3


def test_throttle_every_other_request_cli(start_simulator, run_playbook):
    simulator = start_simulator(DEMO_FIXTURE, "--throttle-every", "2", "--retry-after", "0")
    options = dict(org_id=COBALT["id"], name="Meeting - Webex Enterprise Edition",
                   include_assigned_users=True)

    run = run_playbook([info_task(simulator, **options)])

    rows = licenses_of(run)
    pages = -(-len(rows[0]["assigned_users"]) // 300)
    log = simulator.requests()
    statuses = [entry["status"] for entry in log]
    assert statuses.count(200) == 1 + pages
    assert statuses.count(429) == pages
    for throttled, retried in zip(log, log[1:]):
        if throttled["status"] == 429:
            assert retried["path"] == throttled["path"]
            assert retried["query"] == throttled["query"]


def test_retry_budget_exhausted(simulator, run_playbook):
    simulator.set_faults(rules=[{"method": "GET", "path": "/v1/licenses", "status": 429,
                                 "retry_after": 5, "times": None}])

    run = run_playbook([info_task(simulator, org_id=ALPINE["id"], max_retry_wait=3)])

    record = run.task("list licenses")
    assert record["failed"]
    assert "429" in record["result"]["msg"]
    assert "max_retry_wait" in record["result"]["msg"]


def test_expired_token_without_refresh(simulator, run_playbook):
    run = run_playbook([info_task(simulator, token="demo-expired-token", org_id=ALPINE["id"])])

    record = run.task("list licenses")
    assert record["failed"]
    message = record["result"]["msg"]
    assert "401" in message
    assert "invalid or expired" in message
    assert "refresh_token" in message
    assert "demo-expired-token" not in json.dumps(record["result"])


def test_expired_token_with_refresh(simulator, run_playbook):
    simulator.clear_requests()

    run = run_playbook([info_task(
        simulator, token="demo-expired-token", org_id=ALPINE["id"],
        client_id="demo-client-id", client_secret="demo-client-secret",
        refresh_token="demo-refresh-token")], verbosity=3)

    assert len(licenses_of(run)) == len(ALPINE["licenses"])
    paths = [(entry["method"], entry["path"], entry["status"]) for entry in simulator.requests()]
    assert paths == [("GET", "/v1/licenses", 401), ("POST", "/v1/access_token", 200),
                     ("GET", "/v1/licenses", 200)]
    for secret in ("demo-expired-token", "demo-client-secret", "demo-refresh-token"):
        assert secret not in run.stdout
        assert secret not in json.dumps(run.results)


def test_unknown_org(simulator, run_playbook):
    run = run_playbook([info_task(simulator, org_id="Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi9ubw")])

    record = run.task("list licenses")
    assert record["failed"]
    message = record["result"]["msg"]
    assert "GET /v1/licenses" in message
    assert "403" in message
    assert "trackingId" in message
    assert "org_id" in message


def test_token_limited_to_one_customer(simulator, run_playbook):
    run = run_playbook([info_task(simulator, token="demo-alpine-token", org_id=BOREALIS["id"])])

    record = run.task("list licenses")
    assert record["failed"]
    assert record["result"]["status"] == 403


@pytest.mark.parametrize("option", ["hierarchy", "customer"])
def test_inventory_options_rejected_live(simulator, run_playbook, option):
    run = run_playbook([info_task(simulator, **{option: "Provider"})])

    record = run.task("list licenses")
    assert record["failed"]
    assert "source=inventory" in record["result"]["msg"]


def test_invalid_license_from_the_api_fails_cleanly(start_simulator, run_playbook, tmp_path,
                                                    inventory_db):
    """A license the API returns with a total too large to store fails both modules that
    read the org with a message naming the license; the customer is not saved. (The
    simulator refuses other invalid counts in a fixture; the unit tests of
    normalize_license cover them.)"""
    total = 2**64
    fixture = json.loads(DEMO_FIXTURE.read_text())
    alpine = next(org for org in fixture["organizations"] if org["id"] == ALPINE["id"])
    bad = next(item for item in alpine["licenses"] if item["name"] == "Advanced Messaging")
    bad["totalUnits"] = total
    path = tmp_path / "fixture.json"
    path.write_text(json.dumps(fixture))
    simulator = start_simulator(path)
    customer = {"name": "add", "ignore_errors": True, "ucops.webex.webex_customer": {
        "api_url": simulator.api_url, "access_token": PARTNER_TOKEN, "name": "Alpine Dental",
        "org_id": ALPINE["id"], "default_subscription_id": "Sub-ALP100"}}

    run = run_playbook([info_task(simulator, org_id=ALPINE["id"]), customer])

    for task in ("list licenses", "add"):
        record = run.task(task)
        assert record["failed"]
        message = record["result"]["msg"]
        # An exception the module did not handle shows as "Module failed" (ansible-core
        # 2.19) or "MODULE FAILURE" (older releases).
        assert "Module failed" not in message, message
        assert "MODULE FAILURE" not in message, message
        assert f"license '{bad['id']}' has" in message
        assert "totalUnits" in message
    # The org is read before a new inventory is created, so no file is left behind.
    assert not inventory_db.exists()


def test_negative_total_units_shown_as_zero_with_warning(start_simulator, run_playbook,
                                                         tmp_path):
    fixture = json.loads(DEMO_FIXTURE.read_text())
    org = next(o for o in fixture["organizations"] if o["id"] == ALPINE["id"])
    webinar = dict(org["licenses"][0], id=org["licenses"][0]["id"] + "X", name="Webinars",
                   totalUnits=-1, consumedUnits=3)
    org["licenses"].append(webinar)
    path = tmp_path / "negative.json"
    path.write_text(json.dumps(fixture))
    simulator = start_simulator(path)

    run = run_playbook([info_task(simulator, org_id=ALPINE["id"])])

    row = next(item for item in licenses_of(run) if item["id"] == webinar["id"])
    assert (row["total_units"], row["available_units"], row["utilization"]) == (0, 0, None)
    warnings = " ".join(run.task("list licenses")["result"].get("warnings", []))
    assert f"license(s) {webinar['id']} with a negative totalUnits" in warnings
