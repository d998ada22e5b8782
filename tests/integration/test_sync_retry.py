"""A sync lists people again when a license change lands in the inventory while it runs."""

from __future__ import annotations

import contextlib
import sqlite3

import pytest

from ansible_collections.ucops.webex.plugins.module_utils import sync
from ansible_collections.ucops.webex.plugins.module_utils.inventory import InventoryStore
from ansible_collections.ucops.webex.plugins.module_utils.webex_api import WebexClient
from tests.integration.helpers import ORGS, PARTNER_TOKEN, live_consumed_units

CUSTOMER = next(iter(ORGS))
PEOPLE = [person["id"] for person in ORGS[CUSTOMER]["people"]]


def run(simulator, db_path):
    params = {
        "customer": CUSTOMER,
        "inventory_db": str(db_path),
        "org_id": None,
        "scope": ["licenses", "roles", "people", "locations", "workspaces"],
        "people_page_size": 100,
        "people_sample": 20,
        "warn_missing_defaults": False,
    }

    def client():
        return WebexClient(api_url=simulator.api_url, access_token=PARTNER_TOKEN)

    return sync.run_license_sync(params, client, False, False, lambda _message: None)


def stored(db_path, person_id):
    with InventoryStore(str(db_path)) as store:
        return store.find_person(CUSTOMER, person_id)


def unheld_license(db_path, person_id):
    with InventoryStore(str(db_path)) as store:
        licenses = store.list_licenses(CUSTOMER)
    held_ids = set(stored(db_path, person_id)["license_ids"])
    return next(item["id"] for item in licenses if item["id"] not in held_ids)


@pytest.mark.parametrize("changes", [1, sync.PEOPLE_CHANGED_ATTEMPTS])
def test_change_during_sync_lists_again(simulator, inventory_db, monkeypatch, changes):
    with InventoryStore(str(inventory_db)) as store:
        store.upsert_customer(CUSTOMER, org_id=ORGS[CUSTOMER]["id"])
    run(simulator, inventory_db)
    before = {person_id: stored(inventory_db, person_id) for person_id in PEOPLE[:changes]}
    real_stage = sync.stage_objects
    calls = []

    def stage_then_change(client, session, page_size):
        real_stage(client, session, page_size)
        calls.append(page_size)
        if len(calls) <= changes:
            # Another task records an assignment after this sync listed the people. Each
            # run finds a different person changed.
            person_id = PEOPLE[len(calls) - 1]
            extra = unheld_license(inventory_db, person_id)
            with InventoryStore(str(inventory_db)) as store:
                store.apply_user_license_change(CUSTOMER, person_id, [extra])

    monkeypatch.setattr(sync, "stage_objects", stage_then_change)
    if changes < sync.PEOPLE_CHANGED_ATTEMPTS:
        result = run(simulator, inventory_db)
        assert len(calls) == changes + 1
        # The second listing wins: the person holds the licenses of the API again.
        assert stored(inventory_db, PEOPLE[0]) == before[PEOPLE[0]]
        assert result["summary"]["people"]["updated"] == 1
    else:
        with pytest.raises(sync.SyncError, match="changed in the inventory during the sync"):
            run(simulator, inventory_db)
        assert len(calls) == sync.PEOPLE_CHANGED_ATTEMPTS
        # The failed sync wrote nothing: each person keeps the license recorded for it.
        for person_id in PEOPLE[:changes]:
            assert len(stored(inventory_db, person_id)["license_ids"]) == (
                len(before[person_id]["license_ids"]) + 1
            )


def test_counts_changed_during_sync_listed_again(simulator, inventory_db, monkeypatch):
    """An assignment after the sync listed the licenses, recorded by another task before the
    commit: the listed counts are older than the stored ones, so the sync lists again
    instead of writing them back."""
    org_id = ORGS[CUSTOMER]["id"]
    with InventoryStore(str(inventory_db)) as store:
        store.upsert_customer(CUSTOMER, org_id=org_id)
    run(simulator, inventory_db)
    person_id = PEOPLE[0]
    license_id = unheld_license(inventory_db, person_id)
    real_stage = sync.stage_objects
    calls = []

    def stage_then_assign(client, session, page_size):
        real_stage(client, session, page_size)
        calls.append(page_size)
        if len(calls) == 1:
            response = simulator.api("PATCH", "/licenses/users", json={
                "personId": person_id, "orgId": org_id,
                "licenses": [{"id": license_id, "operation": "add"}]})
            assert response.status_code == 200, response.text
            # The other task moved the stored count but left the person row as listed.
            # Only the counts show that the listing is old.
            with contextlib.closing(sqlite3.connect(inventory_db)) as connection:
                connection.execute(
                    "UPDATE licenses SET consumed_units = consumed_units + 1 "
                    "WHERE customer = ? AND id = ?", (CUSTOMER, license_id))
                connection.commit()

    monkeypatch.setattr(sync, "stage_objects", stage_then_assign)
    run(simulator, inventory_db)

    assert len(calls) == 2
    with InventoryStore(str(inventory_db)) as store:
        stored_units = {row["id"]: row["consumed_units"] for row in store.list_licenses(CUSTOMER)}
    assert stored_units[license_id] == live_consumed_units(simulator, org_id)[license_id]
    assert license_id in stored(inventory_db, person_id)["license_ids"]
