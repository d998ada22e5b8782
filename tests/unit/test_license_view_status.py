"""license_view: the sync status of each level, and totals that follow the filters."""

from __future__ import annotations

import pytest

from ansible_collections.ucops.webex.plugins.module_utils.inventory import InventoryStore
from ansible_collections.ucops.webex.plugins.module_utils.license_view import build_license_view
from tests.unit.factories import api_license


def api_person(person_id, licenses, location=None):
    return {"id": person_id, "emails": [f"{person_id.lower()}@acme.example"],
            "displayName": person_id, "locationId": location, "licenses": licenses,
            "roles": []}


@pytest.fixture
def store(tmp_path):
    with InventoryStore(str(tmp_path / "inventory.db"), lock_timeout=10) as opened:
        opened.upsert_customer("Acme", org_id="ORG-Acme", hierarchy="Provider/Reseller",
                               default_subscription_id="S1")
        yield opened


def sync(store, scope, licenses=(), people=(), locations=()):
    with store.begin_sync("Acme", scope=scope) as session:
        if "licenses" in scope:
            session.stage_licenses(list(licenses))
        if "people" in scope:
            session.stage_people(list(people))
        if "locations" in scope:
            session.stage_locations(list(locations))
        return session.commit()


def test_people_only_sync_is_not_synced(store):
    # The people were synced, the licenses never: the customer is named, not shown as empty.
    sync(store, ["people"], people=[api_person("P1", [])])

    view = build_license_view(store, customer="Acme")

    assert view["licenses"] == []
    assert view["not_synced"] == ["Acme"]


def test_location_level_names_failed_sync(store):
    calling = api_license("C", "Webex Calling - Professional", "S1", total=5, consumed=1)
    sync(store, ["licenses", "people", "locations"], licenses=[calling],
         people=[api_person("P1", ["C"], "LOC1")], locations=[{"id": "LOC1", "name": "HQ"}])
    store.record_failed_sync("Acme", ["licenses"], None, "2030-01-01T00:00:00Z", "HTTP 503")

    view = build_license_view(store, customer="Acme", location="HQ")

    assert view["level"] == "location"
    assert view["last_sync_failed"] == ["Acme"]


def test_hierarchy_totals_follow_managed_only(store):
    sync(store, ["licenses"], licenses=[
        api_license("M", "Webex Calling - Professional", "S1", total=10, consumed=2),
        api_license("U", "Webex Calling - Professional", "S2", total=50, consumed=40),
    ])

    view = build_license_view(store, hierarchy="Provider", managed_only=True)

    assert [row["id"] for row in view["licenses"]] == ["M"]
    assert [(row["subscription_id"], row["total_units"]) for row in view["totals"]] == [
        ("S1", 10)]
