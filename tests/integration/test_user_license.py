"""webex_user_license through ansible-playbook against the simulator (Borealis Logistics).

Borealis has two subscriptions (Sub-BOR100 with site borealis.webex.com, Sub-BOR101 with
borealis-eu.webex.com) that repeat license names; its Webex Calling - Standard of Sub-BOR101
has no units left. Every test adds the customer and syncs it first, then checks after each
step that the inventory's consumed units equal the simulator's for the licenses involved.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.integration.helpers import (
    ORGS,
    connection_defaults,
    customer_setup_tasks,
    inventory_consumed_units,
    inventory_person,
    live_consumed_units,
    live_person,
)

CUSTOMER = "Borealis Logistics"
BOREALIS = ORGS[CUSTOMER]
ORG_ID = BOREALIS["id"]
US_DEFAULTS = {"default_subscription_id": "Sub-BOR100", "default_site_url": "borealis.webex.com"}
EU_DEFAULTS = {"default_subscription_id": "Sub-BOR101",
               "default_site_url": "borealis-eu.webex.com"}
TASK = "manage licenses"
BOREALIS_LICENSES = {item["id"]: item for item in BOREALIS["licenses"]}


def license_id(name: str, subscription: str | None = None) -> str:
    matches = [lic["id"] for lic in BOREALIS["licenses"]
               if lic["name"] == name and lic.get("subscriptionId") == subscription]
    assert len(matches) == 1, f"{name} / {subscription}: {len(matches)} licenses"
    return matches[0]


MEETING_US = license_id("Meeting - Webex Enterprise Edition", "Sub-BOR100")
MESSAGING_US = license_id("Advanced Messaging", "Sub-BOR100")
MESSAGING_EU = license_id("Advanced Messaging", "Sub-BOR101")
PROFESSIONAL_US = license_id("Webex Calling - Professional", "Sub-BOR100")
PROFESSIONAL_EU = license_id("Webex Calling - Professional", "Sub-BOR101")
STANDARD_US = license_id("Webex Calling - Standard", "Sub-BOR100")
STANDARD_EU = license_id("Webex Calling - Standard", "Sub-BOR101")
BUNDLED = {license_id("Basic Messaging"), license_id("Free screen share"),
           license_id("Basic Space Meetings")}

# People of the demo fixture and what they hold at the start.
NO_LICENSE_USER = "gustav.weber13@borealis.example.com"  # bundled only, no location
MESSAGING_USER = "gustav.garcia16@borealis.example.com"  # meeting, Professional, Messaging
MIXED_USER = "bianca.abbott8@borealis.example.com"  # meeting US, Professional EU
PROFESSIONAL_USER = "zoe.zhang17@borealis.example.com"  # meeting US, Professional US
EU_MESSAGING_USER = "farah.moreau31@borealis.example.com"  # Professional EU, Messaging EU


@pytest.fixture
def borealis(simulator, run_playbook, inventory_db):
    """Set Borealis up with the given defaults; return a runner of user license tasks."""

    def setup(**defaults):
        run = run_playbook(customer_setup_tasks(CUSTOMER, **defaults),
                           module_defaults=connection_defaults(simulator))
        assert run.rc == 0, run.stdout[-3000:]
        return run

    return setup


@pytest.fixture
def license_task(simulator, run_playbook):
    """Run one webex_user_license task in its own ansible-playbook run; return its record."""

    def run(check: bool = False, diff: bool = False, **options):
        module_args = {"customer": CUSTOMER}
        module_args.update(options)
        task = {"name": TASK, "ucops.webex.webex_user_license": module_args,
                "ignore_errors": True}
        playbook_run = run_playbook([task], check=check, diff=diff,
                                    module_defaults=connection_defaults(simulator))
        return playbook_run.task(TASK), playbook_run

    return run


def assert_counts_match(simulator, inventory_db, license_ids):
    stored = inventory_consumed_units(inventory_db, CUSTOMER)
    live = live_consumed_units(simulator, ORG_ID)
    for lic in license_ids:
        assert stored[lic] == live[lic], f"consumed units of {lic}"


def patch_requests(simulator):
    return [item for item in simulator.requests()
            if item["method"] == "PATCH" and item["path"] == "/v1/licenses/users"]


def ids_of(entries):
    return [entry["id"] for entry in entries]


def run_rhythm(license_task, simulator, inventory_db, involved, **options):
    """Run check, apply, check, apply; assert changed, changed, unchanged, unchanged."""
    records = []
    for step, (check, expected) in enumerate(
        [(True, True), (False, True), (True, False), (False, False)], start=1
    ):
        record, playbook_run = license_task(check=check, diff=True, **options)
        assert not record["failed"], f"step {step}: {record['result'].get('msg')}"
        assert record["changed"] is expected, f"step {step} changed"
        assert_counts_match(simulator, inventory_db, involved)
        records.append((record, playbook_run))
    assert not any(item["method"] == "PUT" for item in simulator.requests())
    return records


def test_add_rhythm_default_subscription(simulator, borealis, license_task, inventory_db):
    borealis(**US_DEFAULTS)
    before = live_consumed_units(simulator, ORG_ID)
    involved = [MESSAGING_US, MEETING_US, MESSAGING_EU]
    simulator.clear_requests()

    records = run_rhythm(license_task, simulator, inventory_db, involved,
                         user=NO_LICENSE_USER,
                         licenses=["Advanced Messaging", "meeting - webex enterprise edition"])

    check, check_run = records[0]
    assert ids_of(check["result"]["added"]) == [MESSAGING_US, MEETING_US]
    assert check["result"]["removed"] == []
    assert "Advanced Messaging (Sub-BOR100)" in check["result"]["diff"]["after"]["licenses"]
    assert "Advanced Messaging (Sub-BOR100)" not in check["result"]["diff"]["before"]["licenses"]
    assert re.search(r'^\+\s+"Advanced Messaging \(Sub-BOR100\)"', check_run.stdout, re.M), (
        check_run.stdout)

    applied = records[1][0]["result"]
    assert ids_of(applied["added"]) == [MESSAGING_US, MEETING_US]
    assert applied["user"]["email"] == NO_LICENSE_USER
    assert {item["reason"] for item in applied["kept"]} == {"unsubscribed"}
    assert set(ids_of(applied["licenses"])) == BUNDLED | {MESSAGING_US, MEETING_US}
    assert records[3][0]["result"]["added"] == []

    after = live_consumed_units(simulator, ORG_ID)
    assert after[MESSAGING_US] == before[MESSAGING_US] + 1
    assert after[MEETING_US] == before[MEETING_US] + 1
    assert after[MESSAGING_EU] == before[MESSAGING_EU]
    person = inventory_person(inventory_db, CUSTOMER, NO_LICENSE_USER)
    assert set(person["license_ids"]) == BUNDLED | {MESSAGING_US, MEETING_US}
    assert len(patch_requests(simulator)) == 1


def test_remove_rhythm(simulator, borealis, license_task, inventory_db):
    borealis(**US_DEFAULTS)
    before = live_consumed_units(simulator, ORG_ID)

    records = run_rhythm(license_task, simulator, inventory_db, [MESSAGING_US],
                         user=MESSAGING_USER, licenses=["Advanced Messaging"], state="absent")

    check = records[0][0]["result"]
    assert ids_of(check["removed"]) == [MESSAGING_US]
    assert "Advanced Messaging (Sub-BOR100)" in check["diff"]["before"]["licenses"]
    assert "Advanced Messaging (Sub-BOR100)" not in check["diff"]["after"]["licenses"]
    assert live_consumed_units(simulator, ORG_ID)[MESSAGING_US] == before[MESSAGING_US] - 1
    person = inventory_person(inventory_db, CUSTOMER, MESSAGING_USER)
    assert MESSAGING_US not in person["license_ids"]
    assert MEETING_US in person["license_ids"]
    assert MESSAGING_US not in live_person(simulator, ORG_ID, MESSAGING_USER)["licenses"]


def test_exact_rhythm_drops_other_subscription(simulator, borealis, license_task, inventory_db):
    borealis(**US_DEFAULTS)
    before = live_consumed_units(simulator, ORG_ID)

    records = run_rhythm(license_task, simulator, inventory_db,
                         [PROFESSIONAL_EU, MEETING_US, *BUNDLED],
                         user=MIXED_USER, licenses=["Meeting - Webex Enterprise Edition"],
                         state="exact")

    for record, _run in records[:2]:
        result = record["result"]
        assert ids_of(result["removed"]) == [PROFESSIONAL_EU]
        assert result["removed"][0]["subscription_id"] == "Sub-BOR101"
        assert result["added"] == []
        assert {item["id"]: item["reason"] for item in result["kept"]} == {
            lic: "unsubscribed" for lic in BUNDLED}
    kept_names = {item["name"] for item in records[3][0]["result"]["kept"]}
    assert {"Basic Messaging", "Free screen share"} <= kept_names

    after = live_consumed_units(simulator, ORG_ID)
    assert after[PROFESSIONAL_EU] == before[PROFESSIONAL_EU] - 1
    assert all(after[lic] == before[lic] for lic in BUNDLED)
    person = inventory_person(inventory_db, CUSTOMER, MIXED_USER)
    assert set(person["license_ids"]) == BUNDLED | {MEETING_US}
    assert set(live_person(simulator, ORG_ID, MIXED_USER)["licenses"]) == BUNDLED | {MEETING_US}


@pytest.mark.parametrize("state", ["present", "exact"])
def test_two_calling_licenses_rejected(simulator, borealis, license_task, inventory_db, state):
    borealis(**US_DEFAULTS)
    before = inventory_person(inventory_db, CUSTOMER, NO_LICENSE_USER)
    simulator.clear_requests()

    record, _run = license_task(user=NO_LICENSE_USER, state=state, extension="4712",
                                location=BOREALIS["locations"][0]["name"],
                                licenses=["Webex Calling - Professional",
                                          "Webex Calling - Standard"])

    assert record["failed"]
    message = record["result"]["msg"]
    assert f"this task would give user '{NO_LICENSE_USER}' Webex Calling - Professional" in message
    assert "a user has one calling license" in message
    assert "Nothing was changed" in message
    assert patch_requests(simulator) == []
    assert inventory_person(inventory_db, CUSTOMER, NO_LICENSE_USER) == before


def test_present_refuses_second_calling_license(simulator, borealis, license_task,
                                                inventory_db):
    """MIXED_USER has Webex Calling - Professional of Sub-BOR101. Present neither adds the
    default's beside it nor replaces it, and exact replaces it in one request."""
    borealis(**US_DEFAULTS)
    simulator.clear_requests()

    rejected, _run = license_task(user=MIXED_USER, licenses=["Webex Calling - Professional"],
                                  extension="4711")
    assert rejected["failed"]
    assert "a user has one calling license" in rejected["result"]["msg"]
    assert patch_requests(simulator) == []

    record, _run = license_task(user=MIXED_USER, state="exact", extension="4711",
                                licenses=["Webex Calling - Professional",
                                          "Meeting - Webex Enterprise Edition"])
    assert not record["failed"], record["result"].get("msg")
    assert ids_of(record["result"]["added"]) == [PROFESSIONAL_US]
    assert ids_of(record["result"]["removed"]) == [PROFESSIONAL_EU]
    live = set(live_person(simulator, ORG_ID, MIXED_USER)["licenses"])
    assert PROFESSIONAL_US in live
    assert PROFESSIONAL_EU not in live
    assert len(patch_requests(simulator)) == 1
    assert_counts_match(simulator, inventory_db, [PROFESSIONAL_EU, PROFESSIONAL_US])


def work_digits(numbers):
    """Return the digits of each work number of a person's phoneNumbers."""
    return ["".join(char for char in item["value"] if char.isdigit())
            for item in numbers if item["type"] == "work"]


def test_exact_replacement_keeps_user_number(simulator, borealis, license_task, inventory_db):
    # Moving a user to the default's calling license at the same location keeps the
    # user's extension and work number, so the task needs neither.
    borealis(**US_DEFAULTS)
    before = live_person(simulator, ORG_ID, MIXED_USER)

    record, _run = license_task(user=MIXED_USER, state="exact",
                                licenses=["Webex Calling - Professional",
                                          "Meeting - Webex Enterprise Edition"])

    assert not record["failed"], record["result"].get("msg")
    assert ids_of(record["result"]["added"]) == [PROFESSIONAL_US]
    after = live_person(simulator, ORG_ID, MIXED_USER)
    assert after["extension"] == before["extension"]
    assert after["locationId"] == before["locationId"]
    # The number is sent as + and digits, the form of phoneNumber in the change request.
    assert work_digits(after["phoneNumbers"]) == work_digits(before["phoneNumbers"])
    assert record["result"]["diff"]["after"]["calling"]["extension"] == before["extension"]


def test_present_replaces_add_on_of_other_subscription(simulator, borealis, license_task,
                                                       inventory_db):
    """EU_MESSAGING_USER has Advanced Messaging of Sub-BOR101. Given the default's, the user
    keeps one unit, not two."""
    borealis(**US_DEFAULTS)
    before = live_consumed_units(simulator, ORG_ID)

    records = run_rhythm(license_task, simulator, inventory_db, [MESSAGING_EU, MESSAGING_US],
                         user=EU_MESSAGING_USER, licenses=["Advanced Messaging"])

    for record, _run in records[:2]:
        assert ids_of(record["result"]["added"]) == [MESSAGING_US]
        assert ids_of(record["result"]["removed"]) == [MESSAGING_EU]
    after = live_consumed_units(simulator, ORG_ID)
    assert after[MESSAGING_EU] == before[MESSAGING_EU] - 1
    assert after[MESSAGING_US] == before[MESSAGING_US] + 1
    live = set(live_person(simulator, ORG_ID, EU_MESSAGING_USER)["licenses"])
    assert MESSAGING_US in live
    assert MESSAGING_EU not in live
    # The user's calling license of Sub-BOR101 is no add-on and stays.
    assert PROFESSIONAL_EU in live


def test_replacement_checks_units_live(simulator, borealis, license_task, inventory_db):
    """Another admin took the last free units of the default's Advanced Messaging after the
    sync. The inventory still shows free units, so the units are read live before the
    replacement, which fails before any change instead of costing the user the license."""
    borealis(**EU_DEFAULTS)
    free = BOREALIS_LICENSES[MESSAGING_EU]["totalUnits"] - live_consumed_units(
        simulator, ORG_ID)[MESSAGING_EU]
    others = [p for p in BOREALIS["people"]
              if MESSAGING_EU not in p.get("licenses", []) and MESSAGING_USER not in p["emails"]]
    for person in others[:free]:
        response = simulator.api("PATCH", "/licenses/users", json={
            "orgId": ORG_ID, "personId": person["id"], "licenses": [{"id": MESSAGING_EU}]})
        assert response.status_code == 200, response.text
    simulator.clear_requests()

    record, _run = license_task(user=MESSAGING_USER, licenses=["Advanced Messaging"])

    assert record["failed"]
    message = record["result"]["msg"]
    assert "has no units left in Webex (read just now)" in message
    assert "Nothing was changed" in message
    assert patch_requests(simulator) == []
    assert MESSAGING_US in live_person(simulator, ORG_ID, MESSAGING_USER)["licenses"]


def test_calling_license_with_location(simulator, borealis, license_task, inventory_db):
    borealis(**US_DEFAULTS)
    location = BOREALIS["locations"][0]

    record, _run = license_task(user=NO_LICENSE_USER, licenses=["Webex Calling - Professional"],
                                location=location["name"].upper(), extension="4711")

    assert not record["failed"], record["result"].get("msg")
    assert ids_of(record["result"]["added"]) == [PROFESSIONAL_US]
    assert_counts_match(simulator, inventory_db, [PROFESSIONAL_US, PROFESSIONAL_EU])
    person = inventory_person(inventory_db, CUSTOMER, NO_LICENSE_USER)
    assert PROFESSIONAL_US in person["license_ids"]
    assert person["location_id"] == location["id"]
    assert live_person(simulator, ORG_ID, NO_LICENSE_USER)["locationId"] == location["id"]
    # The diff shows where the calling license puts the user.
    diff = record["result"]["diff"]
    assert diff["before"]["calling"] == {"location_id": None, "extension": None}
    assert diff["after"]["calling"] == {"location_id": location["id"], "extension": "4711"}


def test_calling_license_without_location_fails(simulator, borealis, license_task, inventory_db):
    borealis(**US_DEFAULTS)
    stored = inventory_consumed_units(inventory_db, CUSTOMER)
    simulator.clear_requests()

    record, _run = license_task(user=NO_LICENSE_USER, licenses=["Webex Calling - Professional"],
                                extension="4711")

    assert record["failed"]
    assert record["changed"] is False
    message = record["result"]["msg"]
    assert "has no location" in message
    assert "set location" in message
    assert patch_requests(simulator) == []
    assert inventory_consumed_units(inventory_db, CUSTOMER) == stored
    assert PROFESSIONAL_US not in live_person(simulator, ORG_ID, NO_LICENSE_USER)["licenses"]


def test_calling_license_without_extension_fails(simulator, borealis, license_task):
    # A move to another location keeps no number, so the task must name one.
    borealis(**US_DEFAULTS)
    current = live_person(simulator, ORG_ID, PROFESSIONAL_USER)["locationId"]
    other = next(item for item in BOREALIS["locations"] if item["id"] != current)
    simulator.clear_requests()

    record, _run = license_task(user=PROFESSIONAL_USER, state="exact",
                                location=other["name"], licenses=["Webex Calling - Standard"])

    assert record["failed"]
    assert "set extension or phone_number" in record["result"]["msg"]
    assert patch_requests(simulator) == []


def test_name_only_in_other_subscription_fails(simulator, borealis, license_task):
    borealis(**EU_DEFAULTS)
    simulator.clear_requests()

    record, _run = license_task(user=NO_LICENSE_USER, licenses=["Webex Attendant Console"])

    assert record["failed"]
    message = record["result"]["msg"]
    assert "Webex Attendant Console" in message
    assert "subscriptions: Sub-BOR100" in message
    assert patch_requests(simulator) == []


def test_license_id_of_other_subscription_fails(simulator, borealis, license_task):
    borealis(**US_DEFAULTS)

    record, _run = license_task(user=NO_LICENSE_USER, licenses=[PROFESSIONAL_EU])

    assert record["failed"]
    assert "subscriptions: Sub-BOR101" in record["result"]["msg"]


def test_unknown_name_lists_managed_names(simulator, borealis, license_task):
    borealis(**US_DEFAULTS)

    record, _run = license_task(user=NO_LICENSE_USER, licenses=["Webex Teleportation"])

    assert record["failed"]
    message = record["result"]["msg"]
    assert "license 'Webex Teleportation' was not found" in message
    assert "Advanced Messaging" in message
    assert "Webex Calling - Professional" in message
    assert "Basic Messaging" not in message


def test_unknown_user_fails(simulator, borealis, license_task):
    borealis(**US_DEFAULTS)

    record, _run = license_task(user="nobody@borealis.example.com",
                                licenses=["Advanced Messaging"])

    assert record["failed"]
    assert "user 'nobody@borealis.example.com' was not found" in record["result"]["msg"]


def test_person_of_another_org_fails_before_change(simulator, borealis, license_task):
    borealis(**US_DEFAULTS)
    alpine_person = ORGS["Alpine Dental"]["people"][0]
    simulator.clear_requests()

    record, _run = license_task(user=alpine_person["id"], licenses=["Advanced Messaging"])

    assert record["failed"]
    message = record["result"]["msg"]
    assert (f"user '{alpine_person['id']}' belongs to org '{ORGS['Alpine Dental']['id']}', "
            f"not to org '{ORG_ID}' of customer '{CUSTOMER}'") in message
    assert patch_requests(simulator) == []


def test_org_variable_of_other_org_ignored(simulator, borealis, run_playbook, inventory_db):
    # A WEBEX_ORG_ID left from other work names another org: webex_license_sync ignores it
    # with a warning, so the user license change must do the same, not fail.
    borealis(**US_DEFAULTS)
    alpine = ORGS["Alpine Dental"]["id"]
    task = {"name": TASK, "ignore_errors": True, "ucops.webex.webex_user_license": {
        "customer": CUSTOMER, "user": NO_LICENSE_USER, "licenses": ["Advanced Messaging"]}}

    run = run_playbook([task], module_defaults=connection_defaults(simulator),
                       extra_env={"WEBEX_ORG_ID": alpine})

    record = run.task(TASK)
    assert not record["failed"], record["result"].get("msg")
    assert record["changed"]
    warnings = " ".join(record["result"].get("warnings", []))
    assert f"WEBEX_ORG_ID is '{alpine}', but customer '{CUSTOMER}' has org id {ORG_ID}" in warnings
    assert len(patch_requests(simulator)) == 1
    people_reads = [entry for entry in simulator.requests() if entry["path"] == "/v1/people"]
    assert people_reads
    assert all(entry["query"].get("orgId") == ORG_ID for entry in people_reads)
    assert_counts_match(simulator, inventory_db, [MESSAGING_US])


def test_unknown_customer_fails(simulator, borealis, license_task):
    borealis(**US_DEFAULTS)

    record, _run = license_task(customer="Nobody Inc", user=NO_LICENSE_USER,
                                licenses=["Advanced Messaging"])

    assert record["failed"]
    assert "customer 'Nobody Inc' is not in the inventory" in record["result"]["msg"]
    assert "webex_customer" in record["result"]["msg"]


def test_partial_success_records_applied(simulator, borealis, license_task, inventory_db):
    borealis(**EU_DEFAULTS)
    before = live_consumed_units(simulator, ORG_ID)
    involved = [MESSAGING_EU, STANDARD_EU]

    record, _run = license_task(user=NO_LICENSE_USER,
                                licenses=["Advanced Messaging", "Webex Calling - Standard"],
                                location=BOREALIS["locations"][1]["id"], extension="4712")

    assert record["failed"]
    assert record["changed"] is True
    result = record["result"]
    assert result["status"] == 206
    assert "assigned: Advanced Messaging (Sub-BOR101)" in result["msg"]
    assert "not assigned: Webex Calling - Standard (Sub-BOR101)" in result["msg"]
    assert ids_of(result["added"]) == [MESSAGING_EU]
    assert ids_of(result["not_added"]) == [STANDARD_EU]
    assert_counts_match(simulator, inventory_db, involved)
    after = live_consumed_units(simulator, ORG_ID)
    assert after[MESSAGING_EU] == before[MESSAGING_EU] + 1
    assert after[STANDARD_EU] == before[STANDARD_EU]
    person = inventory_person(inventory_db, CUSTOMER, NO_LICENSE_USER)
    assert MESSAGING_EU in person["license_ids"]
    assert STANDARD_EU not in person["license_ids"]
    # The 206 lists only the added license; the user keeps the bundled ones.
    live = live_person(simulator, ORG_ID, NO_LICENSE_USER)["licenses"]
    assert sorted(ids_of(result["licenses"])) == sorted(live)
    assert BUNDLED <= set(ids_of(result["kept"]))


def test_check_mode_warns_without_units(simulator, borealis, license_task):
    borealis(**EU_DEFAULTS)

    record, _run = license_task(check=True, user=NO_LICENSE_USER,
                                licenses=["Webex Calling - Standard"],
                                location=BOREALIS["locations"][1]["id"], extension="4712")

    assert not record["failed"], record["result"].get("msg")
    assert record["changed"] is True
    warnings = " ".join(record["result"].get("warnings", []))
    assert "no units left of Webex Calling - Standard (Sub-BOR101)" in warnings


def test_partial_success_for_user_not_stored(simulator, run_playbook, license_task,
                                             inventory_db):
    """A user that the inventory lacks (people not synced) is stored with the licenses
    read after a 206, not only with the one the 206 lists."""
    run = run_playbook(customer_setup_tasks(CUSTOMER, scope=["licenses"], **EU_DEFAULTS),
                       module_defaults=connection_defaults(simulator))
    assert run.rc == 0, run.stdout[-3000:]
    assert inventory_person(inventory_db, CUSTOMER, NO_LICENSE_USER) is None

    record, _run = license_task(user=NO_LICENSE_USER,
                                licenses=["Advanced Messaging", "Webex Calling - Standard"],
                                location=BOREALIS["locations"][1]["id"], extension="4712")

    assert record["failed"]
    assert record["result"]["status"] == 206
    live = live_person(simulator, ORG_ID, NO_LICENSE_USER)["licenses"]
    person = inventory_person(inventory_db, CUSTOMER, NO_LICENSE_USER)
    assert person["license_ids"] == sorted(live)
    assert_counts_match(simulator, inventory_db, [MESSAGING_EU, STANDARD_EU, *BUNDLED])


def test_rejected_change_reports_error_code(simulator, borealis, license_task, inventory_db):
    borealis(**US_DEFAULTS)
    stored = inventory_consumed_units(inventory_db, CUSTOMER)
    person_before = inventory_person(inventory_db, CUSTOMER, PROFESSIONAL_USER)

    # Present would fail before the request (a second calling license); exact sends the
    # change from Professional to Standard, which Webex refuses.
    record, _run = license_task(user=PROFESSIONAL_USER, state="exact", extension="4713",
                                licenses=["Webex Calling - Standard",
                                          "Meeting - Webex Enterprise Edition"])

    assert record["failed"]
    assert record["changed"] is False
    result = record["result"]
    assert result["status"] == 400
    assert result["error_codes"] == [400112]
    assert "errorCode: 400112" in result["msg"]
    assert "from Professional to Standard" in result["msg"]
    assert inventory_consumed_units(inventory_db, CUSTOMER) == stored
    assert inventory_person(inventory_db, CUSTOMER, PROFESSIONAL_USER) == person_before
    assert_counts_match(simulator, inventory_db, [STANDARD_US, PROFESSIONAL_US])


def test_missing_prerequisite_reports_error_code(
        simulator, borealis, license_task, inventory_db):
    """Webex Attendant Console needs Webex Calling Professional: the API refuses it with
    400408, and the task names the code and changes nothing."""
    borealis(**US_DEFAULTS)
    console = license_id("Webex Attendant Console", "Sub-BOR100")
    stored = inventory_consumed_units(inventory_db, CUSTOMER)
    person_before = inventory_person(inventory_db, CUSTOMER, NO_LICENSE_USER)

    record, _run = license_task(user=NO_LICENSE_USER, licenses=["Webex Attendant Console"])

    assert record["failed"]
    assert record["changed"] is False
    result = record["result"]
    assert result["status"] == 400
    assert result["error_codes"] == [400408]
    assert "errorCode: 400408" in result["msg"]
    assert "Webex Calling Professional" in result["msg"]
    assert inventory_consumed_units(inventory_db, CUSTOMER) == stored
    assert inventory_person(inventory_db, CUSTOMER, NO_LICENSE_USER) == person_before
    assert_counts_match(simulator, inventory_db, [console])


def test_fault_rule_error_changes_nothing(simulator, borealis, license_task, inventory_db):
    borealis(**US_DEFAULTS)
    stored = inventory_consumed_units(inventory_db, CUSTOMER)
    simulator.set_faults(rules=[{"method": "PATCH", "path": "/v1/licenses/users",
                                 "status": 400, "times": 1}])

    record, _run = license_task(user=NO_LICENSE_USER, licenses=["Advanced Messaging"])

    assert record["failed"]
    assert record["result"]["status"] == 400
    assert "was rejected and nothing was changed" in record["result"]["msg"]
    assert inventory_consumed_units(inventory_db, CUSTOMER) == stored
    assert MESSAGING_US not in live_person(simulator, ORG_ID, NO_LICENSE_USER)["licenses"]


def test_success_status_without_the_change_is_not_recorded(simulator, borealis, license_task,
                                                           inventory_db):
    """An HTTP 200 whose user, read again, lacks the change did not apply it: the task fails
    unchanged and the inventory records nothing."""
    borealis(**US_DEFAULTS)
    stored = inventory_consumed_units(inventory_db, CUSTOMER)
    person_before = inventory_person(inventory_db, CUSTOMER, NO_LICENSE_USER)
    # An empty 200 that the simulator sends without applying the change.
    simulator.set_faults(rules=[{"method": "PATCH", "path": "/v1/licenses/users",
                                 "status": 200, "body": "empty", "times": 1}])

    record, _run = license_task(user=NO_LICENSE_USER, licenses=["Advanced Messaging"])

    assert record["failed"]
    assert record["changed"] is False
    message = record["result"]["msg"]
    assert "answered HTTP 200 but applied none of the license change" in message
    assert "not assigned: Advanced Messaging (Sub-BOR100)" in message
    assert inventory_consumed_units(inventory_db, CUSTOMER) == stored
    assert inventory_person(inventory_db, CUSTOMER, NO_LICENSE_USER) == person_before
    assert MESSAGING_US not in live_person(simulator, ORG_ID, NO_LICENSE_USER)["licenses"]


def test_failed_reread_records_change(simulator, borealis, license_task, inventory_db):
    """The change is made once the PATCH succeeds, so a failed read of the user after it
    must not report 'unchanged', and the inventory must record the change."""
    borealis(**US_DEFAULTS)
    person_id = live_person(simulator, ORG_ID, NO_LICENSE_USER)["id"]
    simulator.set_faults(rules=[{"method": "GET", "path": f"/v1/people/{person_id}",
                                 "status": 500}])

    record, _run = license_task(user=NO_LICENSE_USER, licenses=["Advanced Messaging"])

    assert not record["failed"], record["result"].get("msg")
    assert record["changed"] is True
    assert ids_of(record["result"]["added"]) == [MESSAGING_US]
    assert any("reading the user again failed" in text
               for text in record["result"].get("warnings", []))
    assert MESSAGING_US in live_person(simulator, ORG_ID, NO_LICENSE_USER)["licenses"]
    assert MESSAGING_US in inventory_person(inventory_db, CUSTOMER, NO_LICENSE_USER)["license_ids"]
    assert_counts_match(simulator, inventory_db, [MESSAGING_US])

    simulator.set_faults(rules=[])
    again, _run = license_task(user=NO_LICENSE_USER, licenses=["Advanced Messaging"])
    assert again["changed"] is False
    assert_counts_match(simulator, inventory_db, [MESSAGING_US])


@pytest.mark.parametrize("scope", [["licenses"], ["licenses", "people"]])
def test_counts_follow_api_any_scope(simulator, run_playbook, license_task, inventory_db,
                                     scope):
    """With or without the people synced, each change moves the counters like the API."""
    run = run_playbook(customer_setup_tasks(CUSTOMER, scope=scope, **US_DEFAULTS),
                       module_defaults=connection_defaults(simulator))
    assert run.rc == 0, run.stdout[-3000:]
    involved = [MESSAGING_US, MEETING_US, *BUNDLED]

    for options in (
        {"user": MESSAGING_USER, "licenses": ["Advanced Messaging"], "state": "absent"},
        {"user": NO_LICENSE_USER, "licenses": ["Advanced Messaging"]},
        {"user": MESSAGING_USER, "licenses": ["Advanced Messaging"]},
    ):
        record, _run = license_task(**options)
        assert not record["failed"], record["result"].get("msg")
        assert record["changed"] is True
        assert_counts_match(simulator, inventory_db, involved)


@pytest.mark.parametrize("check", [True, False])
def test_workspace_license_rejected_for_user(simulator, borealis, license_task, check):
    borealis(**US_DEFAULTS)
    simulator.clear_requests()

    record, _run = license_task(check=check, user=NO_LICENSE_USER,
                                licenses=["Webex Calling - Workspaces"], extension="4711")

    assert record["failed"]
    message = record["result"]["msg"]
    assert "'Webex Calling - Workspaces (Sub-BOR100)' is for workspaces" in message
    assert "Webex Calling - Professional or Webex Calling - Standard" in message
    assert patch_requests(simulator) == []


def test_lost_response_after_change_recorded(simulator, borealis, license_task, inventory_db):
    """A gateway error after Webex applied the change: reading the user again finds it."""
    borealis(**US_DEFAULTS)
    simulator.set_faults(rules=[{"method": "PATCH", "path": "/v1/licenses/users",
                                 "status": 504, "after_handler": True, "times": 1}])

    record, _run = license_task(user=NO_LICENSE_USER, licenses=["Advanced Messaging"])

    assert not record["failed"], record["result"].get("msg")
    assert record["changed"] is True
    assert any("Webex applied the whole change" in text
               for text in record["result"].get("warnings", []))
    assert MESSAGING_US in inventory_person(inventory_db, CUSTOMER, NO_LICENSE_USER)["license_ids"]
    assert_counts_match(simulator, inventory_db, [MESSAGING_US])
    assert len(patch_requests(simulator)) == 1


def test_rerun_after_unknown_outcome_warns(simulator, borealis, license_task, inventory_db):
    """The change was applied but neither its response nor a read of the user arrived, so
    the inventory stayed unchanged. A new run finds nothing to change, and warns that the
    inventory lacks the license, so the user knows to sync."""
    borealis(**US_DEFAULTS)
    simulator.set_faults(rules=[
        {"method": "PATCH", "path": "/v1/licenses/users", "status": 502, "after_handler": True,
         "times": 1},
        {"method": "GET", "path": "/v1/people/*", "status": 503, "times": 5}])
    options = {"user": NO_LICENSE_USER, "licenses": ["Advanced Messaging"]}

    first, _run = license_task(**options)
    simulator.set_faults()
    again, _run = license_task(**options)

    assert first["failed"]
    assert first["changed"] is True
    assert not again["failed"], again["result"].get("msg")
    assert again["changed"] is False
    warnings = " ".join(again["result"].get("warnings", []))
    assert "differ from Webex: Webex shows Advanced Messaging (Sub-BOR100)" in warnings
    assert "run ucops.webex.webex_license_sync for customer 'Borealis Logistics'" in warnings
    borealis(**US_DEFAULTS)  # adds the customer again (no change) and syncs it
    synced, _run = license_task(**options)
    assert "differ from Webex" not in " ".join(synced["result"].get("warnings", []))
    assert_counts_match(simulator, inventory_db, [MESSAGING_US])


def test_server_error_without_change_unchanged(simulator, borealis, license_task,
                                               inventory_db):
    borealis(**US_DEFAULTS)
    stored = inventory_consumed_units(inventory_db, CUSTOMER)
    simulator.set_faults(rules=[{"method": "PATCH", "path": "/v1/licenses/users",
                                 "status": 500, "times": 1}])

    record, _run = license_task(user=NO_LICENSE_USER, licenses=["Advanced Messaging"])

    assert record["failed"]
    assert record["changed"] is False
    assert "shows that nothing was changed" in record["result"]["msg"]
    assert record["result"]["status"] == 500
    assert inventory_consumed_units(inventory_db, CUSTOMER) == stored
    assert MESSAGING_US not in live_person(simulator, ORG_ID, NO_LICENSE_USER)["licenses"]


def test_timed_out_change_applied_later(simulator, borealis, license_task, inventory_db):
    """A change request without a response may still be applied after the read that follows
    it, so the task does not claim that nothing changed."""
    borealis(**US_DEFAULTS)
    stored = inventory_consumed_units(inventory_db, CUSTOMER)
    simulator.set_faults(rules=[{"method": "PATCH", "path": "/v1/licenses/users",
                                 "status": 504, "after_handler": True, "delay_ms": 2500,
                                 "times": 1}])
    options = {"user": NO_LICENSE_USER, "licenses": ["Advanced Messaging"], "timeout": 1,
               "max_retry_wait": 0}

    record, _run = license_task(**options)

    assert record["failed"]
    assert record["changed"] is False
    message = record["result"]["msg"]
    assert "got no response" in message
    assert "Webex may still apply the request" in message
    assert "shows that nothing was changed" not in message
    assert inventory_consumed_units(inventory_db, CUSTOMER) == stored
    for _attempt in range(50):
        if MESSAGING_US in live_person(simulator, ORG_ID, NO_LICENSE_USER)["licenses"]:
            break
        time.sleep(0.2)
    simulator.set_faults()
    again, _run = license_task(**options)
    assert not again["failed"], again["result"].get("msg")
    assert "differ from Webex" in " ".join(again["result"].get("warnings", []))


def test_failed_lookup_names_user(simulator, borealis, license_task, inventory_db):
    borealis(**US_DEFAULTS)
    stored = inventory_consumed_units(inventory_db, CUSTOMER)
    simulator.set_faults(rules=[{"method": "GET", "path": "/v1/people", "status": 403}])

    record, _run = license_task(user=NO_LICENSE_USER, licenses=["Advanced Messaging"])

    assert record["failed"]
    assert record["changed"] is False
    message = record["result"]["msg"]
    assert (f"reading Webex for user '{NO_LICENSE_USER}' of customer '{CUSTOMER}' failed, "
            "so no change was sent") in message
    assert "HTTP 403" in message
    assert record["result"]["status"] == 403
    assert patch_requests(simulator) == []
    assert inventory_consumed_units(inventory_db, CUSTOMER) == stored


def test_unreadable_success_body_rereads(simulator, borealis, license_task, inventory_db):
    """A 200 response whose body is cut off: the change was made, so the user is read again."""
    borealis(**US_DEFAULTS)
    simulator.set_faults(rules=[{"method": "PATCH", "path": "/v1/licenses/users",
                                 "status": 200, "body": "truncated", "times": 1}])

    record, _run = license_task(user=NO_LICENSE_USER, licenses=["Advanced Messaging"])

    assert not record["failed"], record["result"].get("msg")
    assert record["changed"] is True
    assert MESSAGING_US in live_person(simulator, ORG_ID, NO_LICENSE_USER)["licenses"]
    assert_counts_match(simulator, inventory_db, [MESSAGING_US])


# -- Variants of the demo org, each in a simulator of its own -----------------------------


def _borealis_variant():
    """Return a copy of the demo fixture and its Borealis org, to change for one test."""
    import copy

    from tests.integration.helpers import DEMO

    fixture = copy.deepcopy(DEMO)
    return fixture, next(o for o in fixture["organizations"] if o["id"] == ORG_ID)


def _sibling_license_id(license_id, code):
    """Return a license id of the same org as ``license_id`` with another license code."""
    import base64

    decoded = base64.b64decode(license_id + "=" * (-len(license_id) % 4)).decode()
    prefix, _code = decoded.rsplit(":", 1)
    return base64.b64encode(f"{prefix}:{code}".encode()).decode().rstrip("=")


def _write_fixture(tmp_path, name, fixture):
    import json

    path = tmp_path / name
    path.write_text(json.dumps(fixture))
    return path


def _variant_runner(start_simulator, run_playbook, path):
    """Start a simulator on ``path``, sync Borealis with the US defaults; return the
    simulator and a runner of one user license task (in diff mode)."""
    simulator = start_simulator(path)
    setup = run_playbook(customer_setup_tasks(CUSTOMER, **US_DEFAULTS),
                         module_defaults=connection_defaults(simulator))
    assert setup.rc == 0, setup.stdout[-3000:]

    def run(check: bool = False, **options):
        task = {"name": TASK, "ucops.webex.webex_user_license": dict(customer=CUSTOMER,
                                                                     **options),
                "ignore_errors": True}
        playbook_run = run_playbook([task], check=check, diff=True,
                                    module_defaults=connection_defaults(simulator))
        return playbook_run.task(TASK)

    return simulator, run


# -- Messenger licenses, which Webex does not let administrators manage -------------------


def _messenger_fixture(tmp_path):
    """The demo fixture with a Webex Messenger license of Sub-BOR100 held by the user with
    bundled licenses only. Returns (fixture path, the Messenger license id)."""
    fixture, org = _borealis_variant()
    messenger_id = _sibling_license_id(MESSAGING_US, "MS_messenger-1")
    org["licenses"].append({
        "id": messenger_id, "name": "Webex Messenger", "totalUnits": 5, "consumedUnits": 1,
        "consumedByUsers": 1, "consumedByWorkspaces": 0, "subscriptionId": "Sub-BOR100"})
    person = next(p for p in org["people"] if NO_LICENSE_USER in p["emails"])
    person["licenses"].append(messenger_id)
    return _write_fixture(tmp_path, "messenger.json", fixture), messenger_id


@pytest.fixture
def messenger_org(start_simulator, run_playbook, tmp_path):
    """A simulator with the Messenger fixture, Borealis synced with the US defaults.
    Returns (simulator, Messenger license id, runner of one user license task)."""
    path, messenger_id = _messenger_fixture(tmp_path)
    simulator, run = _variant_runner(start_simulator, run_playbook, path)
    return simulator, messenger_id, run


def test_exact_keeps_messenger_license(messenger_org, inventory_db):
    """State exact leaves a Messenger license in place (Webex refuses its removal with
    error 400118), so the task converges instead of failing on every run."""
    simulator, messenger_id, run = messenger_org
    options = {"user": NO_LICENSE_USER, "licenses": ["Advanced Messaging"], "state": "exact"}

    for check, expected in [(True, True), (False, True), (True, False), (False, False)]:
        record = run(check=check, **options)
        assert not record["failed"], record["result"].get("msg")
        assert record["changed"] is expected
        kept = {entry["id"]: entry["reason"] for entry in record["result"]["kept"]}
        assert kept[messenger_id] == "not_manageable"

    assert messenger_id in live_person(simulator, ORG_ID, NO_LICENSE_USER)["licenses"]
    assert messenger_id in inventory_person(inventory_db, CUSTOMER, NO_LICENSE_USER)["license_ids"]
    assert all(item["status"] == 200 for item in patch_requests(simulator))


@pytest.mark.parametrize("state", ["present", "absent"])
def test_messenger_license_requested_fails_before_change(messenger_org, state):
    simulator, _messenger_id, run = messenger_org
    simulator.clear_requests()

    record = run(user=NO_LICENSE_USER, licenses=["Webex Messenger"], state=state)

    assert record["failed"]
    message = record["result"]["msg"]
    assert "'Webex Messenger (Sub-BOR100)' is a Messenger license" in message
    assert "400118" in message
    assert patch_requests(simulator) == []


def _trial_calling_fixture(tmp_path):
    """The demo fixture where the Professional user has Webex Calling - Professional
    without a subscription (a trial) instead of Sub-BOR100's. Returns (path, trial id)."""
    fixture, org = _borealis_variant()
    trial_id = _sibling_license_id(PROFESSIONAL_US, "BCSTD_trial-1")
    org["licenses"].append({
        "id": trial_id, "name": "Webex Calling - Professional", "totalUnits": 10,
        "consumedUnits": 1, "consumedByUsers": 1, "consumedByWorkspaces": 0})
    person = next(p for p in org["people"] if PROFESSIONAL_USER in p["emails"])
    person["licenses"] = [trial_id if license_id == PROFESSIONAL_US else license_id
                          for license_id in person["licenses"]]
    for item in org["licenses"]:
        if item["id"] == PROFESSIONAL_US:
            item["consumedUnits"] -= 1
            item["consumedByUsers"] -= 1
    return _write_fixture(tmp_path, "trial.json", fixture), trial_id


@pytest.fixture
def trial_org(start_simulator, run_playbook, tmp_path):
    """A simulator with the trial calling fixture, Borealis synced with the US defaults.
    Returns (simulator, trial license id, runner of one user license task)."""
    path, trial_id = _trial_calling_fixture(tmp_path)
    simulator, run = _variant_runner(start_simulator, run_playbook, path)
    return simulator, trial_id, run


def test_exact_replaces_trial_calling_license(trial_org, inventory_db):
    simulator, trial_id, run = trial_org
    options = {"user": PROFESSIONAL_USER, "state": "exact", "extension": "4711",
               "licenses": ["Meeting - Webex Enterprise Edition", "Webex Calling - Professional"]}

    records = []
    for check, expected in [(True, True), (False, True), (True, False), (False, False)]:
        record = run(check=check, **options)
        assert not record["failed"], record["result"].get("msg")
        assert record["changed"] is expected
        records.append(record["result"])
    first_check = records[0]

    live = live_person(simulator, ORG_ID, PROFESSIONAL_USER)["licenses"]
    assert PROFESSIONAL_US in live
    assert trial_id not in live
    # Check mode showed the move from the trial's extension to the new one.
    assert first_check["diff"]["after"]["calling"]["extension"] == "4711"
    assert first_check["diff"]["before"]["calling"]["extension"] != "4711"
    stored = inventory_person(inventory_db, CUSTOMER, PROFESSIONAL_USER)["license_ids"]
    assert sorted(stored) == sorted(live)
    assert_counts_match(simulator, inventory_db, [PROFESSIONAL_US, trial_id])


def test_exact_without_calling_keeps_trial(trial_org):
    simulator, trial_id, run = trial_org

    record = run(user=PROFESSIONAL_USER, state="exact",
                 licenses=["Meeting - Webex Enterprise Edition"])

    assert not record["failed"], record["result"].get("msg")
    kept = {entry["id"]: entry["reason"] for entry in record["result"]["kept"]}
    assert kept[trial_id] == "unsubscribed"
    assert trial_id in live_person(simulator, ORG_ID, PROFESSIONAL_USER)["licenses"]


def test_absent_by_name_removes_trial(trial_org, inventory_db):
    simulator, trial_id, run = trial_org

    record = run(user=PROFESSIONAL_USER, state="absent",
                 licenses=["Webex Calling - Professional"])

    assert not record["failed"], record["result"].get("msg")
    assert record["changed"]
    assert [entry["id"] for entry in record["result"]["removed"]] == [trial_id]
    assert trial_id not in live_person(simulator, ORG_ID, PROFESSIONAL_USER)["licenses"]
    assert_counts_match(simulator, inventory_db, [trial_id])
