"""The structure check that the simulator runs on a fixture before it loads it."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.simulator.app import create_app
from tests.simulator.fixture_check import check_fixture


def org(**fields):
    base = {"id": "ORG-1", "displayName": "Acme", "licenses": [], "people": [],
            "locations": [{"id": "LOC-1", "name": "HQ"}], "workspaces": [], "roles": []}
    base.update(fields)
    return base


@pytest.mark.parametrize("fixture, problem", [
    ([], "top level: is a list [], expected an object"),
    ({"organizations": {"id": "ORG-1"}}, "top level: organizations is an object"),
    ({"organizations": ["ORG-1"]}, "organizations[0]: is text 'ORG-1', expected an object"),
    ({"organizations": [org(id=None)]}, "organizations[0]: id is missing or null"),
    ({"organizations": [org(), org()]}, "organizations[1]: repeats the org id 'ORG-1'"),
    ({"organizations": [org(displayName=7)]}, "displayName is a number 7, expected text"),
    ({"organizations": [org(licenses="none")]}, "licenses is text 'none', expected a list"),
    ({"organizations": [org(licenses=[{"id": "L1", "name": "X", "totalUnits": "5"}])]},
     ".licenses[0] (id 'L1'): totalUnits is text '5', expected a whole number or null"),
    ({"organizations": [org(licenses=[{"id": "L1", "name": 3}])]},
     "licenses[0] (id 'L1'): name is a number 3, expected text"),
    ({"organizations": [org(people=[{"id": "P1"}, {"id": "P1"}])]},
     "people[1]: repeats the id 'P1' of another person"),
    ({"organizations": [org(people=[{"id": "P1", "licenses": "L1"}])]},
     "people[0] (id 'P1'): licenses is text 'L1', expected a list of texts"),
    ({"organizations": [org(people=[{"id": "P1", "locationId": "LOC-9"}])]},
     "people[0] (id 'P1'): locationId 'LOC-9' is not a location of the org"),
    ({"organizations": [org(locations=[{"id": "LOC-1", "address": "1 Main St"}])]},
     "locations[0] (id 'LOC-1'): address is text '1 Main St', expected an object"),
    ({"organizations": [org(workspaces=[{"id": "W1", "calling": "webexCalling"}])]},
     "workspaces[0] (id 'W1'): calling is text 'webexCalling', expected an object"),
    ({"organizations": [org()], "tokens": [{"accessToken": "t", "orgIds": "ORG-1"}]},
     "tokens[0]: orgIds is text 'ORG-1', expected a list of texts"),
])
def test_wrong_structure_is_named(fixture, problem):
    with pytest.raises(ValueError) as raised:
        check_fixture(fixture)

    assert problem in str(raised.value)


def test_many_problems_are_counted():
    people = [{"id": f"P{number}", "roles": "admin"} for number in range(15)]

    with pytest.raises(ValueError, match=r"^15 problem\(s\): .*; and 5 more$"):
        check_fixture({"organizations": [org(people=people)]})


def test_unusual_but_valid_fixture_passes():
    check_fixture({"organizations": [org(
        licenses=[{"id": "L1", "name": "Webex Calling - Professional", "totalUnits": -1,
                   "consumedUnits": 0, "consumedByUsers": None}],
        people=[{"id": "P1"}, {"id": "P2", "emails": [], "licenses": [], "locationId": "LOC-1"}],
        workspaces=[{"id": "W1", "calling": {"type": "freeCalling"}}],
    )], "tokens": [{"accessToken": "t"}]})
    check_fixture({})


def test_ids_with_slashes_are_served():
    """Webex ids are base64, whose alphabet has "/"; a client sends it as %2F."""
    fixture = {"organizations": [org(
        licenses=[{"id": "L/1+x", "name": "Advanced Messaging", "totalUnits": 5}],
        people=[{"id": "P/1", "emails": ["ann@acme.example"], "displayName": "Ann"}],
    )], "tokens": [{"accessToken": "t"}]}
    client = create_app(fixture).test_client()
    headers = {"Authorization": "Bearer t"}

    lic = client.get(f"/v1/licenses/{quote('L/1+x', safe='')}", headers=headers)
    person = client.get(f"/v1/people/{quote('P/1', safe='')}", headers=headers)

    assert lic.status_code == 200
    assert lic.get_json()["id"] == "L/1+x"
    assert person.status_code == 200
    assert person.get_json()["id"] == "P/1"
