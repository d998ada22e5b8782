"""webex_customer run through ansible-playbook against the simulator."""

from __future__ import annotations

import base64
import contextlib
import json
import sqlite3

import pytest

from tests.integration.conftest import DEMO_FIXTURE

PARTNER_TOKEN = "demo-partner-token"
DEMO = json.loads(DEMO_FIXTURE.read_text())
ORGS = {org["displayName"]: org for org in DEMO["organizations"]}
ALPINE = ORGS["Alpine Dental"]
BOREALIS = ORGS["Borealis Logistics"]
KEYSTONE = ORGS["Keystone Partner Services"]
MISSING_ORG_ID = "Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi9ubw"


def customer_task(simulator, customer, task="customer", token=PARTNER_TOKEN, **options):
    module_args = {"api_url": simulator.api_url, "name": customer, "max_retry_wait": 30}
    if token:
        module_args["access_token"] = token
    module_args.update(options)
    return {"name": task, "ucops.webex.webex_customer": module_args, "ignore_errors": True}


def sync_task(simulator, customer, name="sync"):
    module_args = {"api_url": simulator.api_url, "access_token": PARTNER_TOKEN,
                   "customer": customer, "max_retry_wait": 30}
    return {"name": name, "ucops.webex.webex_license_sync": module_args, "ignore_errors": True}


def dump_inventory(path) -> dict:
    """Return every row of every table, sorted, or {} when the file does not exist."""
    if not path.exists():
        return {}
    with contextlib.closing(sqlite3.connect(path)) as connection:
        tables = [row[0] for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        return {table: sorted(connection.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
                for table in tables}


def customer_rows(path) -> list[dict]:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.row_factory = sqlite3.Row
        return [dict(row) for row in connection.execute("SELECT * FROM customers ORDER BY name")]


def count_rows(path, table, customer) -> int:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        return connection.execute(f"SELECT COUNT(*) FROM {table} WHERE customer = ?",
                                  (customer,)).fetchone()[0]


def run_rhythm(run_playbook, task, inventory_db):
    """Run check, apply, check, apply; return the four records and the dumps around checks."""
    records = []
    dumps = []
    for check in (True, False, True, False):
        before = dump_inventory(inventory_db)
        run = run_playbook([task], check=check)
        records.append(run.task(task["name"]))
        if check:
            dumps.append((before, dump_inventory(inventory_db)))
    return records, dumps


def assert_ok(record):
    assert not record["failed"], record["result"].get("msg")


def test_customer_rhythm_new_customer(simulator, run_playbook, inventory_db):
    task = customer_task(simulator, "Borealis Logistics", org_id=BOREALIS["id"],
                         hierarchy="Provider/ Reseller/")

    records, dumps = run_rhythm(run_playbook, task, inventory_db)

    for record in records:
        assert_ok(record)
    assert [record["changed"] for record in records] == [True, True, False, False]
    for before, after in dumps:
        assert before == after
    assert dumps[0] == ({}, {})
    customer = records[1]["result"]["customer"]
    assert customer["name"] == "Borealis Logistics"
    assert customer["org_id"] == BOREALIS["id"]
    assert customer["hierarchy"] == "Provider/Reseller"
    assert customer["device"] == f"{simulator.api_url.split('/')[2]}/{BOREALIS['id']}"
    assert records[0]["result"]["customer"] == customer
    assert records[1]["result"]["subscriptions"] == ["Sub-BOR100", "Sub-BOR101"]
    assert records[1]["result"]["site_urls"] == ["borealis-eu.webex.com", "borealis.webex.com"]
    assert [row["name"] for row in customer_rows(inventory_db)] == ["Borealis Logistics"]


def test_customer_rhythm_defaults(simulator, run_playbook, inventory_db):
    run_playbook([customer_task(simulator, "Borealis Logistics", org_id=BOREALIS["id"])])
    task = customer_task(simulator, "Borealis Logistics",
                         default_subscription_id="Sub-BOR100",
                         default_site_url="HTTPS://Borealis.webex.com/")

    records, dumps = run_rhythm(run_playbook, task, inventory_db)

    for record in records:
        assert_ok(record)
    assert [record["changed"] for record in records] == [True, True, False, False]
    for before, after in dumps:
        assert before == after
    stored = customer_rows(inventory_db)[0]
    assert stored["default_subscription_id"] == "Sub-BOR100"
    assert stored["default_site_url"] == "borealis.webex.com"
    assert "subscriptions" not in records[3]["result"]


def test_invalid_subscription_lists_valid(simulator, run_playbook, inventory_db):
    run_playbook([customer_task(simulator, "Borealis Logistics", org_id=BOREALIS["id"])])
    before = dump_inventory(inventory_db)

    run = run_playbook([customer_task(simulator, "Borealis Logistics",
                                      default_subscription_id="Sub-BOR999")])

    record = run.task("customer")
    assert record["failed"]
    message = record["result"]["msg"]
    assert "default_subscription_id 'Sub-BOR999'" in message
    assert "Sub-BOR100, Sub-BOR101" in message
    assert "Nothing was saved" in message
    # The customer has an org_id, so the message does not blame a missing one.
    assert "No org_id is set" not in message
    assert dump_inventory(inventory_db) == before


@pytest.mark.parametrize("options, expected", [
    ({"org_id": BOREALIS["id"], "default_subscription_id": "Sub-BOR999"},
     "default_subscription_id 'Sub-BOR999'"),
    ({"org_id": "bm8tc3VjaC1vcmc"}, "cannot read the licenses of org_id 'bm8tc3VjaC1vcmc'"),
])
def test_first_customer_with_bad_org_creates_no_inventory(simulator, run_playbook,
                                                          inventory_db, options, expected):
    """Bad input changes nothing: a first call that fails leaves no new inventory file."""
    run = run_playbook([customer_task(simulator, "Borealis Logistics", **options)])

    record = run.task("customer")
    assert record["failed"]
    assert expected in record["result"]["msg"]
    assert not inventory_db.exists()
    assert not list(inventory_db.parent.glob(inventory_db.name + "*"))

    # A good call then creates it and reads the org once.
    simulator.clear_requests()
    good = run_playbook([customer_task(simulator, "Borealis Logistics", org_id=BOREALIS["id"],
                                       default_subscription_id="Sub-BOR100",
                                       default_site_url="borealis.webex.com")])
    assert not good.task("customer")["failed"], good.task("customer")["result"].get("msg")
    assert [row["name"] for row in customer_rows(inventory_db)] == ["Borealis Logistics"]
    assert [entry["path"] for entry in simulator.requests()] == ["/v1/licenses"]


def test_invalid_subscription_without_org_id(simulator, run_playbook, inventory_db):
    run = run_playbook([customer_task(simulator, "Borealis Logistic",
                                      default_subscription_id="Sub-BOR100")])

    record = run.task("customer")
    assert record["failed"]
    message = record["result"]["msg"]
    assert "default_subscription_id 'Sub-BOR100'" in message
    assert "the values were read from the token's own org. Set org_id" in message
    assert not inventory_db.exists()


def test_invalid_site_url_lists_valid(simulator, run_playbook, inventory_db):
    run_playbook([customer_task(simulator, "Borealis Logistics", org_id=BOREALIS["id"])])
    before = dump_inventory(inventory_db)

    run = run_playbook([customer_task(simulator, "Borealis Logistics",
                                      default_subscription_id="Sub-BOR100",
                                      default_site_url="alpinedental.webex.com")])

    record = run.task("customer")
    assert record["failed"]
    message = record["result"]["msg"]
    assert "default_site_url 'alpinedental.webex.com'" in message
    # The candidates are the site URLs of the default subscription.
    assert "of subscription 'Sub-BOR100' of org 'Borealis Logistics' (found: " in message
    assert "(found: borealis.webex.com)" in message
    assert record["result"]["site_urls"] == ["borealis-eu.webex.com", "borealis.webex.com"]
    assert dump_inventory(inventory_db) == before


def test_site_url_of_other_subscription_rejected(simulator, run_playbook, inventory_db):
    run_playbook([customer_task(simulator, "Borealis Logistics", org_id=BOREALIS["id"])])
    before = dump_inventory(inventory_db)

    run = run_playbook([customer_task(simulator, "Borealis Logistics",
                                      default_subscription_id="Sub-BOR100",
                                      default_site_url="https://Borealis-EU.webex.com/")])

    record = run.task("customer")
    assert record["failed"]
    message = record["result"]["msg"]
    assert "default_site_url 'borealis-eu.webex.com'" in message
    assert "not of its default subscription 'Sub-BOR100'" in message
    assert "(site URLs of 'Sub-BOR100': borealis.webex.com)" in message
    assert dump_inventory(inventory_db) == before


def test_org_not_accessible_saves_nothing(simulator, run_playbook, inventory_db):
    run = run_playbook([
        customer_task(simulator, "Borealis Logistics", task="other customer",
                      token="demo-alpine-token", org_id=BOREALIS["id"]),
        customer_task(simulator, "Nowhere", task="missing org", org_id=MISSING_ORG_ID),
    ])

    for task_name, org_id in (("other customer", BOREALIS["id"]), ("missing org", MISSING_ORG_ID)):
        record = run.task(task_name)
        assert record["failed"]
        message = record["result"]["msg"]
        assert f"org_id '{org_id}'" in message
        assert "nothing was saved" in message
        assert "403" in message
        assert record["result"]["status"] == 403
    assert not inventory_db.exists()


def test_token_not_sent_in_result(simulator, run_playbook):
    run = run_playbook([customer_task(simulator, "Alpine Dental", org_id=ALPINE["id"])],
                       verbosity=3)

    assert_ok(run.task("customer"))
    assert PARTNER_TOKEN not in run.stdout
    assert PARTNER_TOKEN not in json.dumps(run.results)


def test_no_api_call_without_org_change(simulator, run_playbook, inventory_db):
    run_playbook([customer_task(simulator, "Alpine Dental", org_id=ALPINE["id"])])
    simulator.clear_requests()

    run = run_playbook([customer_task(simulator, "Alpine Dental", token=None,
                                      hierarchy="Provider/Reseller North")])

    record = run.task("customer")
    assert_ok(record)
    assert record["changed"]
    assert record["result"]["customer"]["hierarchy"] == "Provider/Reseller North"
    assert simulator.requests() == []


def test_missing_token_when_org_must_be_read(simulator, run_playbook, inventory_db):
    run = run_playbook([customer_task(simulator, "Alpine Dental", token=None,
                                      org_id=ALPINE["id"])])

    record = run.task("customer")
    assert record["failed"]
    assert "missing access_token" in record["result"]["msg"]
    assert not inventory_db.exists()


def test_org_id_of_another_customer(simulator, run_playbook, inventory_db):
    run_playbook([customer_task(simulator, "Alpine Dental", org_id=ALPINE["id"])])

    run = run_playbook([customer_task(simulator, "Alpine Copy", org_id=ALPINE["id"])])

    record = run.task("customer")
    assert record["failed"]
    assert "already belongs to customer 'Alpine Dental'" in record["result"]["msg"]
    assert [row["name"] for row in customer_rows(inventory_db)] == ["Alpine Dental"]


def test_blank_org_id_does_not_clear_stored_org(simulator, run_playbook, inventory_db):
    run_playbook([customer_task(simulator, "Alpine Dental", org_id=ALPINE["id"])])
    before = dump_inventory(inventory_db)

    run = run_playbook([customer_task(simulator, "Alpine Dental", org_id=""),
                        customer_task(simulator, "Zeta Corp", task="new", org_id="")])

    record = run.task("customer")
    assert_ok(record)
    assert not record["changed"]
    assert record["result"]["customer"]["org_id"] == ALPINE["id"]
    assert_ok(run.task("new"))
    rows = {row["name"]: row["org_id"] for row in customer_rows(inventory_db)}
    assert rows == {"Alpine Dental": ALPINE["id"], "Zeta Corp": None}
    after = dump_inventory(inventory_db)
    after["customers"] = [row for row in after["customers"] if "Zeta Corp" not in row]
    assert after == before


def test_list_for_text_option_rejected(simulator, run_playbook, inventory_db):
    run_playbook([customer_task(simulator, "Alpine Dental", org_id=ALPINE["id"])])
    before = dump_inventory(inventory_db)

    run = run_playbook([customer_task(simulator, "Alpine Dental",
                                      hierarchy=["Keystone", "Reseller North"])])

    record = run.task("customer")
    assert record["failed"]
    message = record["result"]["msg"]
    assert "hierarchy=['Keystone', 'Reseller North']" in message
    assert "a list or mapping was given where the module expects one text value" in message
    assert "a hierarchy as levels separated by '/'" in message
    assert dump_inventory(inventory_db) == before

    other = run_playbook([customer_task(simulator, "Alpine Dental",
                                        default_subscription_id=["Sub-ALP100"])])
    message = other.task("customer")["result"]["msg"]
    assert "default_subscription_id=['Sub-ALP100']" in message
    assert "hierarchy" not in message
    assert dump_inventory(inventory_db) == before


def test_rename_keeps_data_and_history(simulator, run_playbook, inventory_db):
    run_playbook([customer_task(simulator, "Alpine Dental", org_id=ALPINE["id"]),
                  sync_task(simulator, "Alpine Dental")])
    before = dump_inventory(inventory_db)
    people = count_rows(inventory_db, "people", "Alpine Dental")
    history = count_rows(inventory_db, "sync_history", "Alpine Dental")
    rename = {"name": "rename", "ucops.webex.webex_customer": {
        "name": "Alpine Dental", "new_name": "Alpine Dental Group"}}

    preview = run_playbook([rename], check=True, diff=True).task("rename")
    assert_ok(preview)
    assert preview["changed"]
    assert preview["result"]["diff"]["before"]["name"] == "Alpine Dental"
    assert preview["result"]["diff"]["after"]["name"] == "Alpine Dental Group"
    assert dump_inventory(inventory_db) == before

    applied = run_playbook([rename]).task("rename")
    assert_ok(applied)
    assert applied["changed"]
    assert applied["result"]["customer"]["name"] == "Alpine Dental Group"
    assert applied["result"]["customer"]["org_id"] == ALPINE["id"]
    assert [row["name"] for row in customer_rows(inventory_db)] == ["Alpine Dental Group"]
    assert count_rows(inventory_db, "people", "Alpine Dental Group") == people > 0
    assert count_rows(inventory_db, "sync_history", "Alpine Dental Group") == history
    assert count_rows(inventory_db, "people", "Alpine Dental") == 0

    again = run_playbook([rename, sync_task(simulator, "Alpine Dental Group")])
    assert_ok(again.task("rename"))
    assert not again.task("rename")["changed"]
    assert_ok(again.task("sync"))
    assert not again.task("sync")["changed"]


def test_rename_keeps_name_as_given(simulator, run_playbook, inventory_db):
    # The new name is stored as given, like a name at creation, so later tasks find the
    # customer under the same string.
    run_playbook([customer_task(simulator, "Alpine Dental", org_id=ALPINE["id"])])
    rename = {"name": "rename", "ucops.webex.webex_customer": {
        "name": "Alpine Dental", "new_name": "  Alpine Padded  "}}
    again = {"name": "again", "ucops.webex.webex_customer": {"name": "  Alpine Padded  "}}
    blank = {"name": "blank", "ucops.webex.webex_customer": {
        "name": "  Alpine Padded  ", "new_name": " "}}

    run = run_playbook([rename, again, blank])
    for task in ("rename", "again", "blank"):
        assert_ok(run.task(task))
    assert run.task("rename")["changed"]
    assert not run.task("again")["changed"]
    assert not run.task("blank")["changed"]
    assert [row["name"] for row in customer_rows(inventory_db)] == ["  Alpine Padded  "]


def test_failed_rename_task_keeps_old_name(simulator, run_playbook, inventory_db):
    run_playbook([customer_task(simulator, "Borealis Logistics", org_id=BOREALIS["id"])])
    before = dump_inventory(inventory_db)

    run = run_playbook([customer_task(simulator, "Borealis Logistics", task="rename",
                                      new_name="Borealis Freight",
                                      default_subscription_id="Sub-NOPE")])

    record = run.task("rename")
    assert record["failed"]
    assert "Sub-NOPE" in record["result"]["msg"]
    assert dump_inventory(inventory_db) == before


def test_rename_onto_existing_customer_fails(simulator, run_playbook, inventory_db):
    run_playbook([customer_task(simulator, "Alpine Dental", org_id=ALPINE["id"]),
                  customer_task(simulator, "Borealis Logistics", task="second",
                                org_id=BOREALIS["id"])])
    before = dump_inventory(inventory_db)

    run = run_playbook([{"name": "rename", "ucops.webex.webex_customer": {
        "name": "Alpine Dental", "new_name": "Borealis Logistics"}}])

    record = run.task("rename")
    assert record["failed"]
    assert ("customer 'Alpine Dental' cannot be renamed to 'Borealis Logistics', because a "
            "customer of that name is in the inventory") in record["result"]["msg"]
    assert dump_inventory(inventory_db) == before


def test_diff_shows_record_before_after(simulator, run_playbook):
    run_playbook([customer_task(simulator, "Borealis Logistics", org_id=BOREALIS["id"])])

    run = run_playbook([customer_task(simulator, "Borealis Logistics",
                                      default_subscription_id="Sub-BOR101")], diff=True)

    record = run.task("customer")
    assert_ok(record)
    diff = record["result"]["diff"]
    assert diff["before"]["default_subscription_id"] is None
    assert diff["after"]["default_subscription_id"] == "Sub-BOR101"
    assert '+    "default_subscription_id": "Sub-BOR101"' in run.stdout


def test_absent_removes_customer_and_synced_data(simulator, run_playbook, inventory_db):
    run = run_playbook([
        customer_task(simulator, "Alpine Dental", task="add alpine", org_id=ALPINE["id"]),
        customer_task(simulator, "Borealis Logistics", task="add borealis",
                      org_id=BOREALIS["id"]),
        sync_task(simulator, "Alpine Dental", name="sync alpine"),
        sync_task(simulator, "Borealis Logistics", name="sync borealis"),
    ])
    assert_ok(run.task("sync alpine"))
    assert count_rows(inventory_db, "people", "Alpine Dental") == len(ALPINE["people"])
    borealis_before = {table: [row for row in rows if "Borealis Logistics" in row]
                       for table, rows in dump_inventory(inventory_db).items()}
    task = customer_task(simulator, "Alpine Dental", token=None, state="absent")

    records, dumps = run_rhythm(run_playbook, task, inventory_db)

    for record in records:
        assert_ok(record)
    assert [record["changed"] for record in records] == [True, True, False, False]
    for before, after in dumps:
        assert before == after
    assert records[1]["result"]["customer"] is None
    for table in ("people", "licenses", "person_licenses", "locations", "workspaces",
                  "roles", "sync_history", "sync_state"):
        assert count_rows(inventory_db, table, "Alpine Dental") == 0, table
    assert [row["name"] for row in customer_rows(inventory_db)] == ["Borealis Logistics"]
    borealis_after = {table: [row for row in rows if "Borealis Logistics" in row]
                      for table, rows in dump_inventory(inventory_db).items()}
    assert borealis_after == borealis_before


def test_absent_without_inventory(simulator, run_playbook, inventory_db):
    run = run_playbook([customer_task(simulator, "Nobody", token=None, state="absent")])

    record = run.task("customer")
    assert_ok(record)
    assert not record["changed"]
    assert not inventory_db.exists()


def test_new_name_close_to_stored_warns(simulator, run_playbook, inventory_db):
    run_playbook([customer_task(simulator, "Borealis Logistics", org_id=BOREALIS["id"])])
    # Without org_id the new customer is the token's own org, so nothing else fails.
    typo = customer_task(simulator, "Borealis Logistic", task="typo")

    checked = run_playbook([typo], check=True).task("typo")
    names_after_check = [row["name"] for row in customer_rows(inventory_db)]
    added = run_playbook([typo]).task("typo")
    again = run_playbook([typo]).task("typo")

    assert_ok(checked)
    assert names_after_check == ["Borealis Logistics"]
    check_warning = " ".join(checked["result"]["warnings"])
    assert "customer 'Borealis Logistic' is not in the inventory and would be added" in (
        check_warning
    )
    assert "If you meant 'Borealis Logistics', correct the name" in check_warning
    assert_ok(added)
    assert "and was added, but a customer named 'Borealis Logistics'" in " ".join(
        added["result"]["warnings"]
    )
    # Once stored, the name is no longer new, so the warning stops.
    assert not again["result"].get("warnings")


def test_new_name_unlike_stored_no_warning(simulator, run_playbook, inventory_db):
    run_playbook([customer_task(simulator, "Borealis Logistics", org_id=BOREALIS["id"])])
    record = run_playbook(
        [customer_task(simulator, "Alpine Dental", task="alpine", org_id=ALPINE["id"])]
    ).task("alpine")

    assert_ok(record)
    assert not record["result"].get("warnings")


def test_close_name_of_another_org_no_warning(simulator, run_playbook, inventory_db):
    """A close name with an org id other than the stored customer's is another org."""
    run_playbook([customer_task(simulator, "Borealis Logistics", org_id=BOREALIS["id"])])
    record = run_playbook(
        [customer_task(simulator, "Borealis Logistic", task="other", org_id=ALPINE["id"])]
    ).task("other")

    assert_ok(record)
    assert "If you meant" not in " ".join(record["result"].get("warnings", []))


def test_absent_name_close_to_stored_warns(simulator, run_playbook, inventory_db):
    run_playbook([customer_task(simulator, "Borealis Logistics", org_id=BOREALIS["id"])])
    typo = customer_task(simulator, "Borealis Logistic", task="typo", token=None,
                         state="absent")

    record = run_playbook([typo]).task("typo")

    assert_ok(record)
    assert not record["changed"]
    warning = " ".join(record["result"]["warnings"])
    assert "customer 'Borealis Logistic' is not in the inventory, so nothing was removed" in (
        warning
    )
    assert "If you meant 'Borealis Logistics', correct the name" in warning
    assert [row["name"] for row in customer_rows(inventory_db)] == ["Borealis Logistics"]


def test_absent_unknown_name_no_warning(simulator, run_playbook, inventory_db):
    run_playbook([customer_task(simulator, "Borealis Logistics", org_id=BOREALIS["id"])])
    record = run_playbook(
        [customer_task(simulator, "Alpine Dental", task="gone", token=None, state="absent")]
    ).task("gone")

    assert_ok(record)
    assert not record["changed"]
    assert not record["result"].get("warnings")


def test_new_inventory_file_warns(simulator, run_playbook, inventory_db):
    task = customer_task(simulator, "Borealis Logistics", org_id=BOREALIS["id"])

    checked = run_playbook([task], check=True).task("customer")
    created = run_playbook([task]).task("customer")
    again = run_playbook([task]).task("customer")

    assert_ok(checked)
    assert f"the inventory database {inventory_db} did not exist and would be created" in (
        " ".join(checked["result"]["warnings"])
    )
    assert_ok(created)
    assert f"the inventory database {inventory_db} did not exist and was created" in (
        " ".join(created["result"]["warnings"])
    )
    assert "check inventory_db or WEBEX_INVENTORY_DB" in " ".join(created["result"]["warnings"])
    assert not again["result"].get("warnings")


def test_org_change_warns_until_sync(simulator, run_playbook, inventory_db):
    run_playbook([customer_task(simulator, "Borealis Logistics", org_id=BOREALIS["id"]),
                  {"name": "sync", "ucops.webex.webex_license_sync": {
                      "api_url": simulator.api_url, "access_token": PARTNER_TOKEN,
                      "customer": "Borealis Logistics", "scope": ["licenses"]}}])

    run = run_playbook([customer_task(simulator, "Borealis Logistics", task="move",
                                      org_id=ALPINE["id"])])

    record = run.task("move")
    assert_ok(record)
    warnings = " ".join(record["result"].get("warnings", []))
    assert f"synced from its previous org '{BOREALIS['id']}' until its next sync" in warnings


def test_rejected_token_blames_credentials_not_org(simulator, run_playbook, inventory_db):
    run = run_playbook([customer_task(simulator, "Borealis Logistics", token="expired-token",
                                      org_id=BOREALIS["id"])])

    record = run.task("customer")
    assert record["failed"]
    message = record["result"]["msg"]
    assert "nothing was saved. Check the credentials:" in message
    assert "Check org_id" not in message
    assert "The access token is invalid or expired" in message


def test_same_org_in_another_form_does_not_warn(simulator, run_playbook, inventory_db):
    """An org id stored as its UUID and given again as the base64 id names the same org:
    the id is stored in the new form without the warning about data of another org."""
    run_playbook([customer_task(simulator, "Borealis Logistics", org_id=BOREALIS["id"]),
                  {"name": "sync", "ucops.webex.webex_license_sync": {
                      "api_url": simulator.api_url, "access_token": PARTNER_TOKEN,
                      "customer": "Borealis Logistics", "scope": ["licenses"]}}])
    uuid = base64.b64decode(BOREALIS["id"] + "==").decode().rsplit("/", 1)[1]
    with sqlite3.connect(inventory_db) as connection:
        connection.execute("UPDATE customers SET org_id = ? WHERE name = 'Borealis Logistics'",
                           (uuid,))

    run = run_playbook([customer_task(simulator, "Borealis Logistics", task="form",
                                      org_id=BOREALIS["id"])])

    record = run.task("form")
    assert_ok(record)
    assert record["result"]["customer"]["org_id"] == BOREALIS["id"]
    assert "previous org" not in " ".join(record["result"].get("warnings", []))


@pytest.mark.parametrize("change", [
    {"default_site_url": "borealis-eu.webex.com"},
    {"default_subscription_id": "Sub-BOR101"},
])
def test_one_default_changed_checks_pair(simulator, run_playbook, inventory_db, change):
    """Changing one default checks it against the other one the customer keeps."""
    run_playbook([customer_task(simulator, "Borealis Logistics", org_id=BOREALIS["id"],
                                default_subscription_id="Sub-BOR100",
                                default_site_url="borealis.webex.com")])
    before = dump_inventory(inventory_db)

    run = run_playbook([customer_task(simulator, "Borealis Logistics", task="change",
                                      **change)])

    record = run.task("change")
    assert record["failed"]
    assert "not of its default subscription" in record["result"]["msg"]
    assert dump_inventory(inventory_db) == before


def test_org_id_variable_does_not_move_stored_customer(simulator, run_playbook, inventory_db):
    """WEBEX_ORG_ID left in the environment names the org of new customers only."""
    run_playbook([customer_task(simulator, "Alpine Dental", org_id=ALPINE["id"]),
                  customer_task(simulator, "Keystone", task="own org"),
                  sync_task(simulator, "Keystone")])
    simulator.clear_requests()
    environment = {"WEBEX_ORG_ID": BOREALIS["id"]}

    run = run_playbook([
        customer_task(simulator, "Alpine Dental", task="move hierarchy", token=None,
                      hierarchy="Provider/Reseller North"),
        customer_task(simulator, "Keystone", task="synced without org id", token=None,
                      hierarchy="Provider"),
        customer_task(simulator, "Borealis Logistics", task="new customer",
                      default_subscription_id="Sub-BOR100",
                      default_site_url="borealis.webex.com"),
    ], extra_env=environment)

    moved = run.task("move hierarchy")
    assert_ok(moved)
    assert moved["result"]["customer"]["org_id"] == ALPINE["id"]
    warnings = " ".join(moved["result"].get("warnings", []))
    assert f"WEBEX_ORG_ID is '{BOREALIS['id']}'" in warnings
    assert "it names the org of a new customer only" in warnings
    added = run.task("new customer")
    assert_ok(added)
    assert added["result"]["customer"]["org_id"] == BOREALIS["id"]
    own_org = run.task("synced without org id")
    assert_ok(own_org)
    # Its sync stored the token's own org as the customer's org.
    assert own_org["result"]["customer"]["org_id"] == KEYSTONE["id"]
    assert f"stored with org id {KEYSTONE['id']}, so the variable was ignored" in " ".join(
        own_org["result"].get("warnings", []))
    rows = {row["name"]: row["org_id"] for row in customer_rows(inventory_db)}
    assert rows == {"Alpine Dental": ALPINE["id"], "Borealis Logistics": BOREALIS["id"],
                    "Keystone": KEYSTONE["id"]}
    read_orgs = {entry["query"].get("orgId") for entry in simulator.requests()}
    assert read_orgs == {BOREALIS["id"]}


def test_corrected_org_id_clears_defaults_of_former_org(simulator, run_playbook,
                                                        inventory_db):
    """An org id set by mistake and its defaults: correcting the org id alone succeeds and
    clears the defaults that the new org lacks, so the defaults can be set next."""
    run_playbook([customer_task(simulator, "Acme", org_id=BOREALIS["id"],
                                default_subscription_id="Sub-BOR100",
                                default_site_url="borealis.webex.com")])

    run = run_playbook([
        customer_task(simulator, "Acme", task="correct", org_id=ALPINE["id"]),
        customer_task(simulator, "Acme", task="defaults", default_subscription_id="Sub-ALP100"),
    ])

    corrected = run.task("correct")
    assert_ok(corrected)
    customer = corrected["result"]["customer"]
    assert customer["org_id"] == ALPINE["id"]
    assert customer["default_subscription_id"] is None
    assert customer["default_site_url"] is None
    warnings = " ".join(corrected["result"].get("warnings", []))
    assert "lacks the stored default_subscription_id 'Sub-BOR100' and default_site_url " \
        "'borealis.webex.com' of its former org, so they were cleared" in warnings
    assert_ok(run.task("defaults"))
    assert customer_rows(inventory_db)[0]["default_subscription_id"] == "Sub-ALP100"
