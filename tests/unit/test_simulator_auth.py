"""Authentication, org scoping, tracking ids and the OAuth refresh grant of the simulator."""

from __future__ import annotations

import json

import pytest

from tests.simulator.app import create_app
from tests.simulator.testkit import (
    ALPINE_TOKEN,
    EXPIRED_TOKEN,
    auth,
    demo_client,
    demo_fixture_text,
    org_ids,
)


@pytest.fixture()
def client():
    return demo_client()


@pytest.fixture()
def orgs(client):
    return org_ids(client)


def assert_error_body(response, status: int) -> None:
    body = response.get_json()
    assert response.status_code == status
    assert isinstance(body["message"], str) and body["message"]
    assert body["errors"][0]["description"]
    assert body["trackingId"] == response.headers["Trackingid"]
    assert body["trackingId"].startswith("ROUTER_")


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer no-such-token"}, {"Authorization": "Basic abc"},
     auth(EXPIRED_TOKEN)],
    ids=["missing", "unknown", "not-bearer", "expired"],
)
def test_unauthorized_tokens(client, headers):
    response = client.get("/v1/licenses", headers=headers)

    assert_error_body(response, 401)


def test_forbidden_org_query(client, orgs):
    response = client.get(
        "/v1/licenses", query_string={"orgId": orgs["Cobalt Health"]}, headers=auth(ALPINE_TOKEN)
    )

    assert_error_body(response, 403)


def test_forbidden_org_in_body(client, orgs):
    response = client.patch(
        "/v1/licenses/users",
        json={"orgId": orgs["Cobalt Health"], "email": "x@example.com",
              "licenses": [{"id": "abc", "operation": "add"}]},
        headers=auth(ALPINE_TOKEN),
    )

    assert_error_body(response, 403)


def test_limited_token_own_org(client, orgs):
    response = client.get("/v1/organizations", headers=auth(ALPINE_TOKEN))
    licenses = client.get("/v1/licenses", headers=auth(ALPINE_TOKEN))

    assert [org["displayName"] for org in response.get_json()["items"]] == ["Alpine Dental"]
    assert licenses.status_code == 200
    assert any(lic.get("siteUrl") == "alpinedental.webex.com"
               for lic in licenses.get_json()["items"])


def test_unknown_ids_not_found(client, orgs):
    for path in ("/v1/people/bm9ib2R5", "/v1/licenses/bm9ib2R5", "/v1/locations/bm9ib2R5",
                 "/v1/workspaces/bm9ib2R5", "/v1/roles/bm9ib2R5"):
        response = client.get(path, headers=auth())
        assert_error_body(response, 404)


def test_other_org_person_hidden(client, orgs):
    person = client.get(
        "/v1/people", query_string={"orgId": orgs["Cobalt Health"], "max": 1}, headers=auth()
    ).get_json()["items"][0]

    assert client.get(f"/v1/people/{person['id']}", headers=auth()).status_code == 200
    assert client.get(f"/v1/people/{person['id']}", headers=auth(ALPINE_TOKEN)).status_code == 404


def test_organization_detail(client, orgs):
    allowed = client.get(f"/v1/organizations/{orgs['Alpine Dental']}", headers=auth(ALPINE_TOKEN))
    denied = client.get(f"/v1/organizations/{orgs['Cobalt Health']}", headers=auth(ALPINE_TOKEN))

    assert allowed.get_json()["displayName"] == "Alpine Dental"
    assert_error_body(denied, 403)


def test_tracking_id_on_success(client):
    first = client.get("/v1/roles", headers=auth())
    second = client.get("/v1/roles", headers=auth())

    assert first.status_code == 200
    assert first.headers["Trackingid"].startswith("ROUTER_")
    assert first.headers["Trackingid"] != second.headers["Trackingid"]
    assert client.get("/_simulator/faults").headers["Trackingid"].startswith("ROUTER_")


def test_wrong_method_json_error(client):
    response = client.delete("/v1/licenses", headers=auth())

    assert_error_body(response, 405)


def refresh(client, **overrides):
    form = {"grant_type": "refresh_token", "client_id": "demo-client-id",
            "client_secret": "demo-client-secret", "refresh_token": "demo-refresh-token"}
    form.update(overrides)
    return client.post("/v1/access_token", data=form)


def test_refresh_grant_issues_token(client, orgs):
    response = refresh(client)
    body = response.get_json()

    assert response.status_code == 200
    assert set(body) == {"access_token", "expires_in", "refresh_token",
                         "refresh_token_expires_in", "token_type"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] > 0
    assert body["refresh_token"] == "demo-refresh-token"
    listed = client.get("/v1/organizations", headers=auth(body["access_token"]))
    cobalt = client.get("/v1/licenses", query_string={"orgId": orgs["Cobalt Health"]},
                        headers=auth(body["access_token"]))
    assert len(listed.get_json()["items"]) == 4
    assert cobalt.status_code == 200


@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        ({"grant_type": "password"}, 400),
        ({"refresh_token": ""}, 400),
        ({"refresh_token": "stale-token"}, 400),
        ({"client_secret": "wrong"}, 401),
        ({"client_id": "someone-else"}, 401),
    ],
)
def test_refresh_grant_rejects(client, overrides, status):
    response = refresh(client, **overrides)

    assert_error_body(response, status)


def test_refresh_needs_form_body(client):
    response = client.post("/v1/access_token", json={"grant_type": "refresh_token"})

    assert_error_body(response, 415)


def test_refresh_token_scoped_orgs():
    fixture = json.loads(demo_fixture_text())
    alpine, cobalt = fixture["organizations"][1]["id"], fixture["organizations"][3]["id"]
    fixture["integrations"][0]["orgIds"] = [alpine]
    client = create_app(fixture).test_client()
    token = refresh(client).get_json()["access_token"]

    assert client.get("/v1/licenses", headers=auth(token)).status_code == 200
    denied = client.get("/v1/licenses", query_string={"orgId": cobalt}, headers=auth(token))
    assert denied.status_code == 403


def test_refresh_default_orgs_any():
    fixture = json.loads(demo_fixture_text())
    del fixture["integrations"][0]["orgIds"]
    client = create_app(fixture).test_client()
    token = refresh(client).get_json()["access_token"]

    assert len(client.get("/v1/organizations", headers=auth(token)).get_json()["items"]) == 4
