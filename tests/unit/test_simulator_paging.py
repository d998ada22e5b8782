"""Paging of the simulator's list endpoints: cursors, caps per filter and Link headers."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.simulator.testkit import auth, demo_client, next_url, org_ids, walk_pages


@pytest.fixture()
def client():
    return demo_client()


@pytest.fixture()
def cobalt(client):
    return org_ids(client)["Cobalt Health"]


def test_people_pages_cover_everyone_once(client, cobalt):
    pages = walk_pages(client, "/v1/people", {"orgId": cobalt, "max": 800})
    ids = [person["id"] for page in pages for person in page]

    assert [len(page) for page in pages] == [800, 800, 500]
    assert len(ids) == 2100
    assert len(set(ids)) == 2100


def test_people_page_sizes_exact(client, cobalt):
    pages = walk_pages(client, "/v1/people", {"orgId": cobalt, "max": 1000})

    assert [len(page) for page in pages] == [1000, 1000, 100]


@pytest.mark.parametrize(
    ("params", "expected_size"),
    [
        ({}, 100),
        ({"max": 5000}, 1000),
        ({"max": 5000, "callingData": "true"}, 100),
        ({"max": 60, "callingData": "true"}, 60),
    ],
)
def test_people_max_caps(client, cobalt, params, expected_size):
    response = client.get("/v1/people", query_string={"orgId": cobalt, **params}, headers=auth())

    assert response.status_code == 200
    assert len(response.get_json()["items"]) == expected_size
    assert next_url(response) is not None


def test_people_location_filter_cap(client, cobalt):
    people = walk_pages(client, "/v1/people", {"orgId": cobalt, "max": 1000, "callingData": "true"})
    by_location: dict[str, int] = {}
    for person in (p for page in people for p in page):
        if person.get("locationId"):
            by_location[person["locationId"]] = by_location.get(person["locationId"], 0) + 1
    location_id, count = max(by_location.items(), key=lambda item: item[1])
    assert count > 50

    pages = walk_pages(
        client, "/v1/people", {"orgId": cobalt, "locationId": location_id, "max": 1000,
                               "callingData": "true"}
    )

    assert all(len(page) <= 50 for page in pages)
    assert len(pages[0]) == 50
    found = [p for page in pages for p in page]
    assert len(found) == count
    assert {p["locationId"] for p in found} == {location_id}


def test_people_link_keeps_params(client, cobalt):
    response = client.get(
        "/v1/people",
        query_string={"orgId": cobalt, "max": 10, "callingData": "true", "displayName": "A"},
        headers=auth(),
    )
    link = response.headers["Link"]
    url = link.split(";")[0].strip()[1:-1]
    query = parse_qs(urlsplit(url).query)

    assert link.endswith('rel="next"')
    assert url.startswith("http://localhost/v1/people?")
    assert query["orgId"] == [cobalt]
    assert query["max"] == ["10"]
    assert query["callingData"] == ["true"]
    assert query["displayName"] == ["A"]
    assert "after" in query


def test_people_display_name_filter_pages(client, cobalt):
    pages = walk_pages(client, "/v1/people", {"orgId": cobalt, "displayName": "ada", "max": 20})
    found = [p for page in pages for p in page]

    assert len(pages) >= 3
    assert all(p["displayName"].lower().startswith("ada") for p in found)
    assert len({p["id"] for p in found}) == len(found)


def test_people_location_only_with_calling_data(client, cobalt):
    plain = client.get("/v1/people", query_string={"orgId": cobalt, "max": 200}, headers=auth())
    calling = client.get(
        "/v1/people", query_string={"orgId": cobalt, "max": 100, "callingData": "true"},
        headers=auth(),
    )

    assert not any("locationId" in p for p in plain.get_json()["items"])
    assert any("locationId" in p for p in calling.get_json()["items"])


def test_people_by_ids_reports_not_found(client, cobalt):
    first = client.get("/v1/people", query_string={"orgId": cobalt, "max": 3}, headers=auth())
    known = [p["id"] for p in first.get_json()["items"]]
    response = client.get(
        "/v1/people", query_string={"orgId": cobalt, "id": ",".join(known + ["bm8tc3VjaC1pZA"])},
        headers=auth(),
    )
    body = response.get_json()

    assert [p["id"] for p in body["items"]] == known
    assert body["notFoundIds"] == ["bm8tc3VjaC1pZA"]
    assert all("status" not in p for p in body["items"])
    # Licenses and roles come with GET /people/{id}, not with a lookup by id.
    assert all("licenses" not in p and "roles" not in p for p in body["items"])
    single = client.get(f"/v1/people/{known[0]}", headers=auth()).get_json()
    assert "licenses" in single
    assert "roles" in single


def test_people_exclude_status_drops_presence_only(client, cobalt):
    query = {"orgId": cobalt, "max": 50, "callingData": "true"}
    full = client.get("/v1/people", query_string=query, headers=auth()).get_json()["items"]
    lean = client.get("/v1/people", query_string=dict(query, excludeStatus="true"),
                      headers=auth()).get_json()["items"]

    assert any("status" in p for p in full)
    assert all("status" not in p and "lastActivity" not in p for p in lean)
    assert [{k: v for k, v in p.items() if k not in ("status", "lastActivity")} for p in full] \
        == lean


def test_people_me_is_the_token_admin(client):
    me = client.get("/v1/people/me", headers=auth("demo-alpine-token"))
    other = client.get("/v1/people/me", headers=auth("not-a-token"))

    assert me.status_code == 200
    body = me.get_json()
    assert body["orgId"] == org_ids(client)["Alpine Dental"]
    assert body["roles"]
    assert other.status_code == 401


def test_people_too_many_ids_rejected(client, cobalt):
    response = client.get(
        "/v1/people", query_string={"orgId": cobalt, "id": ",".join(["x"] * 86)}, headers=auth()
    )

    assert response.status_code == 400


def test_people_email_lookup(client, cobalt):
    person = client.get("/v1/people", query_string={"orgId": cobalt, "max": 1},
                        headers=auth()).get_json()["items"][0]
    response = client.get(
        "/v1/people", query_string={"orgId": cobalt, "email": person["emails"][0].upper()},
        headers=auth(),
    )

    assert [p["id"] for p in response.get_json()["items"]] == [person["id"]]


def test_people_invalid_cursor_rejected(client, cobalt):
    response = client.get(
        "/v1/people", query_string={"orgId": cobalt, "after": "garbage!"}, headers=auth()
    )

    assert response.status_code == 400
    assert response.get_json()["trackingId"].startswith("ROUTER_")


def test_license_users_pages(client, cobalt):
    licenses = client.get("/v1/licenses", query_string={"orgId": cobalt},
                          headers=auth()).get_json()["items"]
    pro = next(lic for lic in licenses if lic["name"] == "Webex Calling - Professional")
    pages = walk_pages(
        client, f"/v1/licenses/{pro['id']}", {"includeAssignedTo": "user", "limit": 5000},
        item_key="users",
    )
    users = [u["id"] for page in pages for u in page]

    assert pro["consumedByUsers"] > 600
    assert len(pages) >= 3
    assert all(len(page) <= 300 for page in pages)
    assert len(users) == pro["consumedByUsers"]
    assert len(set(users)) == len(users)


def test_license_without_users_has_no_link(client, cobalt):
    licenses = client.get("/v1/licenses", query_string={"orgId": cobalt},
                          headers=auth()).get_json()["items"]
    response = client.get(f"/v1/licenses/{licenses[0]['id']}", headers=auth())

    assert response.status_code == 200
    assert "users" not in response.get_json()
    assert "Link" not in response.headers


def test_locations_paging_and_filters(client, cobalt):
    pages = walk_pages(client, "/v1/locations", {"orgId": cobalt, "max": 10})
    names = [loc["name"] for page in pages for loc in page]
    filtered = client.get("/v1/locations", query_string={"orgId": cobalt, "name": "denver"},
                          headers=auth()).get_json()["items"]

    assert [len(page) for page in pages] == [10, 10, 5]
    assert len(set(names)) == 25
    assert filtered
    assert all("denver" in loc["name"].lower() for loc in filtered)


def test_locations_default_max(client, cobalt):
    response = client.get("/v1/locations", query_string={"orgId": cobalt}, headers=auth())

    assert len(response.get_json()["items"]) == 25
    assert "Link" not in response.headers


def test_workspaces_offset_and_link(client, cobalt):
    pages = walk_pages(client, "/v1/workspaces", {"orgId": cobalt, "max": 25})
    direct = client.get("/v1/workspaces", query_string={"orgId": cobalt, "start": 25, "max": 25},
                        headers=auth()).get_json()["items"]
    ids = [ws["id"] for page in pages for ws in page]

    assert [len(page) for page in pages] == [25, 25, 10]
    assert len(set(ids)) == 60
    assert [ws["id"] for ws in direct] == [ws["id"] for ws in pages[1]]


def test_workspaces_location_filter(client, cobalt):
    workspaces = client.get("/v1/workspaces", query_string={"orgId": cobalt, "max": 100},
                            headers=auth()).get_json()["items"]
    location_id = workspaces[0]["locationId"]
    found = client.get(
        "/v1/workspaces", query_string={"orgId": cobalt, "locationId": location_id},
        headers=auth(),
    ).get_json()["items"]

    assert found
    assert {ws["locationId"] for ws in found} == {location_id}
    assert len(found) == sum(1 for ws in workspaces if ws.get("locationId") == location_id)
