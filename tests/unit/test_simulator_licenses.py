"""License assignment in the simulator: PATCH /licenses/users, PUT /people and counters."""

from __future__ import annotations

import json

import pytest

from tests.simulator.app import create_app
from tests.simulator.testkit import auth, demo_client, demo_fixture_text, org_ids


@pytest.fixture()
def client():
    return demo_client()


@pytest.fixture()
def borealis(client):
    return org_ids(client)["Borealis Logistics"]


def licenses_of(client, org_id) -> list[dict]:
    return client.get("/v1/licenses", query_string={"orgId": org_id}, headers=auth()).get_json()[
        "items"
    ]


def find_license(client, org_id, name, subscription_id=None) -> dict:
    for lic in licenses_of(client, org_id):
        if lic["name"] == name and (subscription_id is None or
                                    lic.get("subscriptionId") == subscription_id):
            return lic
    raise AssertionError(f"no license {name} ({subscription_id}) in org {org_id}")


def people_of(client, org_id) -> list[dict]:
    response = client.get("/v1/people", query_string={"orgId": org_id, "max": 1000,
                                                      "callingData": "false"}, headers=auth())
    return response.get_json()["items"]


def person_without(client, org_id, *license_ids) -> dict:
    for person in people_of(client, org_id):
        if not set(license_ids) & set(person.get("licenses", [])):
            return person
    raise AssertionError("every person holds one of the licenses")


def patch(client, body):
    return client.patch("/v1/licenses/users", json=body, headers=auth())


def get_person(client, person_id, calling=True) -> dict:
    return client.get(f"/v1/people/{person_id}", query_string={"callingData": str(calling).lower()},
                      headers=auth()).get_json()


def test_assign_meeting_updates_counters(client, borealis):
    meeting = find_license(client, borealis, "Meeting - Webex Enterprise Edition", "Sub-BOR100")
    person = person_without(client, borealis, meeting["id"])

    response = patch(client, {"orgId": borealis, "personId": person["id"],
                              "licenses": [{"id": meeting["id"], "operation": "add"}]})
    after = find_license(client, borealis, "Meeting - Webex Enterprise Edition", "Sub-BOR100")
    stored = get_person(client, person["id"])

    assert response.status_code == 200
    body = response.get_json()
    assert body["personId"] == person["id"]
    assert body["orgId"] == borealis
    assert meeting["id"] in body["licenses"]
    assert {"siteUrl": "borealis.webex.com", "accountType": "host"} in body["siteUrls"]
    assert after["consumedUnits"] == meeting["consumedUnits"] + 1
    assert after["consumedByUsers"] == meeting["consumedByUsers"] + 1
    assert meeting["id"] in stored["licenses"]
    assert "borealis.webex.com" in stored["siteUrls"]


def test_remove_license_updates_counters(client, borealis):
    messaging = find_license(client, borealis, "Advanced Messaging", "Sub-BOR100")
    holder = next(p for p in people_of(client, borealis) if messaging["id"] in p["licenses"])

    response = patch(client, {"orgId": borealis, "email": holder["emails"][0],
                              "licenses": [{"id": messaging["id"], "operation": "remove"}]})
    after = find_license(client, borealis, "Advanced Messaging", "Sub-BOR100")

    assert response.status_code == 200
    assert messaging["id"] not in response.get_json()["licenses"]
    assert after["consumedUnits"] == messaging["consumedUnits"] - 1
    assert after["consumedByUsers"] == messaging["consumedByUsers"] - 1
    assert messaging["id"] not in get_person(client, holder["id"])["licenses"]


def test_remove_meeting_drops_site(client, borealis):
    meeting = find_license(client, borealis, "Meeting - Webex Enterprise Edition", "Sub-BOR100")
    holder = next(p for p in people_of(client, borealis) if meeting["id"] in p["licenses"])

    patch(client, {"orgId": borealis, "personId": holder["id"],
                   "licenses": [{"id": meeting["id"], "operation": "remove"}]})

    assert "borealis.webex.com" not in get_person(client, holder["id"]).get("siteUrls", [])


def test_calling_license_sets_location(client, borealis):
    pro = find_license(client, borealis, "Webex Calling - Professional", "Sub-BOR100")
    std = [lic["id"] for lic in licenses_of(client, borealis)
           if lic["name"].startswith("Webex Calling - ")]
    person = person_without(client, borealis, *std)
    location = client.get("/v1/locations", query_string={"orgId": borealis},
                          headers=auth()).get_json()["items"][0]

    response = patch(client, {
        "orgId": borealis, "personId": person["id"],
        "licenses": [{"id": pro["id"], "operation": "add",
                      "properties": {"locationId": location["id"], "extension": "4242"}}],
    })
    stored = get_person(client, person["id"])

    assert response.status_code == 200
    assert stored["locationId"] == location["id"]
    assert stored["extension"] == "4242"
    assert find_license(client, borealis, "Webex Calling - Professional",
                        "Sub-BOR100")["consumedByUsers"] == pro["consumedByUsers"] + 1


def test_partial_success_206(client, borealis):
    messaging = find_license(client, borealis, "Advanced Messaging", "Sub-BOR100")
    person = person_without(client, borealis, messaging["id"])

    response = patch(client, {"orgId": borealis, "personId": person["id"], "licenses": [
        {"id": messaging["id"], "operation": "add"},
        {"id": "bm90LWEtbGljZW5zZQ", "operation": "add"},
    ]})

    assert response.status_code == 206
    # Only what the request added, not the person's other licenses.
    assert response.get_json()["licenses"] == [messaging["id"]]
    assert set(person["licenses"]) < set(get_person(client, person["id"])["licenses"])
    assert find_license(client, borealis, "Advanced Messaging",
                        "Sub-BOR100")["consumedUnits"] == messaging["consumedUnits"] + 1


def test_exhausted_license_partial(client, borealis):
    exhausted = find_license(client, borealis, "Webex Calling - Standard", "Sub-BOR101")
    messaging = find_license(client, borealis, "Advanced Messaging", "Sub-BOR101")
    calling = [lic["id"] for lic in licenses_of(client, borealis)
               if lic["name"].startswith("Webex Calling - ")]
    person = person_without(client, borealis, messaging["id"], *calling)
    location = client.get("/v1/locations", query_string={"orgId": borealis},
                          headers=auth()).get_json()["items"][0]

    assert exhausted["consumedUnits"] == exhausted["totalUnits"]
    response = patch(client, {"orgId": borealis, "personId": person["id"], "licenses": [
        {"id": exhausted["id"], "properties": {"locationId": location["id"], "extension": "77"}},
        {"id": messaging["id"]},
    ]})

    assert response.status_code == 206
    assert exhausted["id"] not in response.get_json()["licenses"]
    assert messaging["id"] in response.get_json()["licenses"]
    assert find_license(client, borealis, "Webex Calling - Standard",
                        "Sub-BOR101")["consumedUnits"] == exhausted["consumedUnits"]


def test_exhausted_license_alone_400(client, borealis):
    exhausted = find_license(client, borealis, "Webex Calling - Standard", "Sub-BOR101")
    calling = [lic["id"] for lic in licenses_of(client, borealis)
               if lic["name"].startswith("Webex Calling - ")]
    person = person_without(client, borealis, *calling)
    location = client.get("/v1/locations", query_string={"orgId": borealis},
                          headers=auth()).get_json()["items"][0]

    response = patch(client, {"orgId": borealis, "personId": person["id"], "licenses": [
        {"id": exhausted["id"], "properties": {"locationId": location["id"], "extension": "77"}},
    ]})

    assert response.status_code == 400
    assert "No units left" in response.get_json()["errors"][0]["description"]


def error_codes(response) -> list:
    return [e.get("errorCode") for e in response.get_json()["errors"]]


def test_unknown_license_400000(client, borealis):
    person = people_of(client, borealis)[0]
    response = patch(client, {"orgId": borealis, "personId": person["id"],
                              "licenses": [{"id": "bm90LWEtbGljZW5zZQ"}]})

    assert response.status_code == 400
    assert error_codes(response) == [400000]
    assert response.get_json()["message"] == "License not recognized"


def test_calling_without_properties_400411(client, borealis):
    pro = find_license(client, borealis, "Webex Calling - Professional", "Sub-BOR100")
    calling = [lic["id"] for lic in licenses_of(client, borealis)
               if lic["name"].startswith("Webex Calling - ")]
    person = person_without(client, borealis, *calling)

    response = patch(client, {"orgId": borealis, "personId": person["id"],
                              "licenses": [{"id": pro["id"], "operation": "add"}]})

    assert response.status_code == 400
    assert error_codes(response) == [400411]


def test_calling_unknown_location_400(client, borealis):
    pro = find_license(client, borealis, "Webex Calling - Professional", "Sub-BOR100")
    calling = [lic["id"] for lic in licenses_of(client, borealis)
               if lic["name"].startswith("Webex Calling - ")]
    person = person_without(client, borealis, *calling)

    response = patch(client, {"orgId": borealis, "personId": person["id"], "licenses": [
        {"id": pro["id"], "properties": {"locationId": "bm93aGVyZQ", "extension": "12"}},
    ]})

    assert response.status_code == 400
    assert error_codes(response) == [400]
    assert response.get_json()["message"] == "Unable to find location"


def test_professional_and_standard_400404(client, borealis):
    pro = find_license(client, borealis, "Webex Calling - Professional", "Sub-BOR100")
    std = find_license(client, borealis, "Webex Calling - Standard", "Sub-BOR100")
    holder = next(p for p in people_of(client, borealis) if pro["id"] in p["licenses"])

    response = patch(client, {"orgId": borealis, "personId": holder["id"], "licenses": [
        {"id": std["id"], "properties": {"extension": "55"}},
    ]})

    assert response.status_code == 400
    assert error_codes(response) == [400404]


def test_downgrade_professional_400112(client, borealis):
    pro = find_license(client, borealis, "Webex Calling - Professional", "Sub-BOR100")
    std = find_license(client, borealis, "Webex Calling - Standard", "Sub-BOR100")
    holder = next(p for p in people_of(client, borealis) if pro["id"] in p["licenses"])

    response = patch(client, {"orgId": borealis, "personId": holder["id"], "licenses": [
        {"id": pro["id"], "operation": "remove"},
        {"id": std["id"], "properties": {"extension": "55"}},
    ]})

    assert response.status_code == 400
    assert error_codes(response) == [400112]
    assert pro["id"] in get_person(client, holder["id"])["licenses"]


@pytest.fixture()
def cobalt(client):
    return org_ids(client)["Cobalt Health"]


def holder_of(client, org_id, lic, *without) -> dict:
    """A person who holds ``lic`` and none of the licenses ``without``."""
    return next(p for p in people_of(client, org_id)
                if lic["id"] in p["licenses"] and not set(without) & set(p["licenses"]))


def test_attendant_console_with_standard_400406(client, cobalt):
    std = find_license(client, cobalt, "Webex Calling - Standard")
    console = find_license(client, cobalt, "Webex Attendant Console")
    holder = holder_of(client, cobalt, std, console["id"])

    response = patch(client, {"orgId": cobalt, "personId": holder["id"],
                              "licenses": [{"id": console["id"]}]})

    assert response.status_code == 400
    assert error_codes(response) == [400406]
    assert response.get_json()["message"] == "License conflict"
    assert console["id"] not in get_person(client, holder["id"])["licenses"]


def test_cx_essentials_with_standard_400407(client, cobalt):
    std = find_license(client, cobalt, "Webex Calling - Standard")
    cx = find_license(client, cobalt, "Customer Experience Essentials")
    holder = holder_of(client, cobalt, std, cx["id"])

    response = patch(client, {"orgId": cobalt, "personId": holder["id"],
                              "licenses": [{"id": cx["id"]}]})

    assert response.status_code == 400
    assert error_codes(response) == [400407]


def test_standard_beside_cx_essentials_400407_and_downgrade_400410(client, cobalt):
    pro = find_license(client, cobalt, "Webex Calling - Professional")
    std = find_license(client, cobalt, "Webex Calling - Standard")
    cx = find_license(client, cobalt, "Customer Experience Essentials")
    person = person_without(client, cobalt, pro["id"], std["id"], cx["id"])
    location = client.get("/v1/locations", query_string={"orgId": cobalt},
                          headers=auth()).get_json()["items"][0]["id"]
    standard = {"id": std["id"], "properties": {"locationId": location, "extension": "4711"}}
    assert patch(client, {"orgId": cobalt, "personId": person["id"],
                          "licenses": [{"id": cx["id"]}]}).status_code == 200

    beside = patch(client, {"orgId": cobalt, "personId": person["id"], "licenses": [standard]})
    downgrade = patch(client, {"orgId": cobalt, "personId": person["id"], "licenses": [
        {"id": cx["id"], "operation": "remove"}, standard]})

    assert beside.status_code == 400
    assert error_codes(beside) == [400407]
    assert downgrade.status_code == 400
    assert error_codes(downgrade) == [400410]
    assert downgrade.get_json()["message"] == "License downgrade not allowed"
    person_licenses = get_person(client, person["id"])["licenses"]
    assert cx["id"] in person_licenses
    assert std["id"] not in person_licenses


def test_attendant_console_needs_professional_400408(client, cobalt):
    pro = find_license(client, cobalt, "Webex Calling - Professional")
    std = find_license(client, cobalt, "Webex Calling - Standard")
    console = find_license(client, cobalt, "Webex Attendant Console")
    without_calling = person_without(client, cobalt, pro["id"], std["id"], console["id"])
    professional = holder_of(client, cobalt, pro, console["id"])

    rejected = patch(client, {"orgId": cobalt, "personId": without_calling["id"],
                              "licenses": [{"id": console["id"]}]})
    with_professional = patch(client, {"orgId": cobalt, "personId": professional["id"],
                                       "licenses": [{"id": console["id"]}]})

    assert rejected.status_code == 400
    assert error_codes(rejected) == [400408]
    assert rejected.get_json()["message"] == "License prerequisite missing"
    assert with_professional.status_code == 200
    assert console["id"] in with_professional.get_json()["licenses"]


def test_attendant_console_needs_professional_that_is_applied(client, cobalt):
    """The console's prerequisite is a Professional license that the request really adds
    (in any order), not one that it only asks for."""
    pro = find_license(client, cobalt, "Webex Calling - Professional")
    std = find_license(client, cobalt, "Webex Calling - Standard")
    console = find_license(client, cobalt, "Webex Attendant Console")
    people = [p for p in people_of(client, cobalt)
              if not {pro["id"], std["id"], console["id"]} & set(p["licenses"])]
    location = client.get("/v1/locations", query_string={"orgId": cobalt},
                          headers=auth()).get_json()["items"][0]["id"]

    rejected = patch(client, {"orgId": cobalt, "personId": people[0]["id"], "licenses": [
        {"id": console["id"]}, {"id": pro["id"]}]})
    accepted = patch(client, {"orgId": cobalt, "personId": people[1]["id"], "licenses": [
        {"id": console["id"]},
        {"id": pro["id"], "properties": {"locationId": location, "extension": "4712"}}]})

    assert rejected.status_code == 400
    assert sorted(error_codes(rejected)) == [400408, 400411]
    assert accepted.status_code == 200, accepted.get_json()
    assert {pro["id"], console["id"]} <= set(accepted.get_json()["licenses"])


def test_screen_share_removal_700006(client, borealis):
    screen_share = find_license(client, borealis, "Free screen share")
    person = people_of(client, borealis)[0]

    response = patch(client, {"orgId": borealis, "personId": person["id"], "licenses": [
        {"id": screen_share["id"], "operation": "remove"},
    ]})

    assert response.status_code == 400
    assert error_codes(response) == [700006]
    assert screen_share["id"] in get_person(client, person["id"])["licenses"]


def test_patch_needs_person(client, borealis):
    missing = patch(client, {"orgId": borealis, "licenses": [{"id": "x"}]})
    unknown = patch(client, {"orgId": borealis, "email": "nobody@example.com",
                             "licenses": [{"id": "x"}]})
    bad_operation = patch(client, {"orgId": borealis, "email": "nobody@example.com",
                                   "licenses": [{"id": "x", "operation": "swap"}]})

    assert missing.status_code == 400
    assert unknown.status_code == 404
    assert bad_operation.status_code == 400


def test_attendee_site_urls(client, borealis):
    person = people_of(client, borealis)[0]

    added = patch(client, {"orgId": borealis, "personId": person["id"], "siteUrls": [
        {"siteUrl": "borealis-eu.webex.com", "accountType": "attendee", "operation": "add"},
    ]})
    invalid = patch(client, {"orgId": borealis, "personId": person["id"], "siteUrls": [
        {"siteUrl": "elsewhere.webex.com", "accountType": "attendee"},
    ]})

    assert added.status_code == 200
    assert {"siteUrl": "borealis-eu.webex.com", "accountType": "attendee"} in added.get_json()[
        "siteUrls"]
    assert "borealis-eu.webex.com#attendee" in get_person(client, person["id"])["siteUrls"]
    assert invalid.status_code == 400
    assert error_codes(invalid) == [400216]


def test_hybrid_license_never_counts(client, borealis):
    hybrid = find_license(client, borealis, "Hybrid - Exchange Calendar")
    person = person_without(client, borealis, hybrid["id"])

    response = patch(client, {"orgId": borealis, "personId": person["id"],
                              "licenses": [{"id": hybrid["id"]}]})
    after = find_license(client, borealis, "Hybrid - Exchange Calendar")

    assert response.status_code == 200
    assert after["consumedUnits"] == hybrid["consumedUnits"] == 0
    assert after["totalUnits"] == 1


def test_null_counters_stay_null(client, borealis):
    route_list = find_license(client, borealis, "Webex Calling - Route List Calls")

    assert route_list["consumedByUsers"] is None
    assert route_list["consumedByWorkspaces"] is None
    assert "siteUrl" not in route_list


def test_workspace_counters_from_fixture(client, borealis):
    workspaces = client.get("/v1/workspaces", query_string={"orgId": borealis, "max": 100},
                            headers=auth()).get_json()["items"]
    license_obj = find_license(client, borealis, "Webex Calling - Workspaces", "Sub-BOR100")
    holding = [ws for ws in workspaces
               if license_obj["id"] in ws["calling"].get("webexCalling", {}).get("licenses", [])]

    assert holding
    assert license_obj["consumedByWorkspaces"] == len(holding)
    assert license_obj["consumedUnits"] == license_obj["consumedByUsers"] + len(holding)


def test_counts_recomputed_at_load():
    fixture = json.loads(demo_fixture_text())
    borealis = fixture["organizations"][2]
    messaging = next(lic for lic in borealis["licenses"] if lic["name"] == "Advanced Messaging")
    real = messaging["consumedUnits"]
    messaging["consumedUnits"] = messaging["consumedByUsers"] = 9999
    client = create_app(fixture).test_client()

    served = find_license(client, borealis["id"], "Advanced Messaging",
                          messaging["subscriptionId"])
    assert served["consumedUnits"] == real


def test_put_person_replaces_licenses(client, borealis):
    messaging = find_license(client, borealis, "Advanced Messaging", "Sub-BOR100")
    holder = next(p for p in people_of(client, borealis)
                  if messaging["id"] in p["licenses"] and "locationId" not in
                  get_person(client, p["id"]))
    body = get_person(client, holder["id"])
    body["licenses"] = [i for i in body["licenses"] if i != messaging["id"]]
    body["title"] = "Dispatcher"

    response = client.put(f"/v1/people/{holder['id']}", json=body, headers=auth())

    assert response.status_code == 200
    assert response.get_json()["title"] == "Dispatcher"
    assert messaging["id"] not in response.get_json()["licenses"]
    assert find_license(client, borealis, "Advanced Messaging",
                        "Sub-BOR100")["consumedUnits"] == messaging["consumedUnits"] - 1


def test_put_person_keeps_implicit_license(client, borealis):
    screen_share = find_license(client, borealis, "Free screen share")
    person = people_of(client, borealis)[0]
    body = get_person(client, person["id"])
    body["licenses"] = [i for i in body["licenses"] if i != screen_share["id"]]

    response = client.put(f"/v1/people/{person['id']}", json=body, headers=auth())

    assert response.status_code == 400
    assert error_codes(response) == [700006]


def test_put_person_requires_display_name(client, borealis):
    person = people_of(client, borealis)[0]
    body = get_person(client, person["id"])
    del body["displayName"]

    assert client.put(f"/v1/people/{person['id']}", json=body, headers=auth()).status_code == 400


def test_put_person_min_response(client, borealis):
    person = people_of(client, borealis)[0]
    body = get_person(client, person["id"])

    response = client.put(f"/v1/people/{person['id']}", json=body,
                          query_string={"minResponse": "true"}, headers=auth())

    assert response.status_code == 204
    assert response.data == b""


def test_calling_extension_needs_location(client, borealis):
    """Without phoneNumber the API needs locationId, even for a person with a location."""
    pro_us = find_license(client, borealis, "Webex Calling - Professional", "Sub-BOR100")
    pro_eu = find_license(client, borealis, "Webex Calling - Professional", "Sub-BOR101")
    response = client.get("/v1/people", query_string={"orgId": borealis, "max": 100,
                                                      "callingData": "true"}, headers=auth())
    person = next(item for item in response.get_json()["items"]
                  if pro_eu["id"] in item.get("licenses", []) and item.get("locationId"))

    response = patch(client, {"orgId": borealis, "personId": person["id"], "licenses": [
        {"id": pro_eu["id"], "operation": "remove"},
        {"id": pro_us["id"], "operation": "add", "properties": {"extension": "4711"}}]})

    # The removal is applied, the addition is not: a partial success.
    assert response.status_code == 206
    assert pro_us["id"] not in response.get_json()["licenses"]
    assert pro_eu["id"] not in response.get_json()["licenses"]
