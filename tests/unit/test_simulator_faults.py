"""Fault injection and the control API of the simulator."""

from __future__ import annotations

import json
import time

import pytest

from tests.simulator.testkit import ALPINE_TOKEN, auth, demo_client, next_url, org_ids


@pytest.fixture()
def client():
    return demo_client()


def set_faults(client, **settings):
    response = client.put("/_simulator/faults", json=settings)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_throttle_every_nth(client):
    set_faults(client, throttle_every=3, retry_after=7)

    responses = [client.get("/v1/roles", headers=auth()) for _attempt in range(6)]
    throttled = responses[2]

    assert [r.status_code for r in responses] == [200, 200, 429, 200, 200, 429]
    assert throttled.headers["Retry-After"] == "7"
    assert throttled.get_json()["trackingId"] == throttled.headers["Trackingid"]
    assert "Retry-After" not in responses[0].headers


def test_fail_every_nth(client):
    set_faults(client, fail_every=2, fail_status=502)

    statuses = [client.get("/v1/roles", headers=auth()).status_code for _attempt in range(4)]

    assert statuses == [200, 502, 200, 502]


def test_startup_faults_from_cli_values():
    client = demo_client({"throttle_every": 2, "retry_after": 3})

    statuses = [client.get("/v1/roles", headers=auth()).status_code for _attempt in range(2)]

    assert statuses == [200, 429]
    client.post("/_simulator/reset")
    assert client.get("/_simulator/faults").get_json()["throttle_every"] == 2


def test_latency(client):
    set_faults(client, latency_ms=150)

    started = time.monotonic()
    client.get("/v1/roles", headers=auth())

    assert time.monotonic() - started >= 0.15


def test_rule_skip_and_times(client):
    set_faults(client, rules=[{"method": "GET", "path": "/v1/licenses", "status": 503,
                               "skip": 1, "times": 2}])

    statuses = [client.get("/v1/licenses", headers=auth()).status_code for _attempt in range(5)]
    other = client.get("/v1/roles", headers=auth())
    rule = client.get("/_simulator/faults").get_json()["rules"][0]

    assert statuses == [200, 503, 503, 200, 200]
    assert other.status_code == 200
    assert rule["matched"] == 5
    assert rule["fired"] == 2


def test_rule_query_subset(client):
    orgs = org_ids(client)
    set_faults(client, rules=[{"path": "/v1/licenses", "query": {"orgId": orgs["Cobalt Health"]},
                               "status": 500}])

    cobalt = client.get("/v1/licenses", query_string={"orgId": orgs["Cobalt Health"]},
                        headers=auth())
    alpine = client.get("/v1/licenses", query_string={"orgId": orgs["Alpine Dental"]},
                        headers=auth())

    assert cobalt.status_code == 500
    assert alpine.status_code == 200


def test_rule_glob_path(client):
    set_faults(client, rules=[{"path": "/v1/licenses/*", "status": 504, "times": 1}])

    lic_id = client.get("/v1/licenses", headers=auth()).get_json()["items"][0]["id"]

    assert client.get(f"/v1/licenses/{lic_id}", headers=auth()).status_code == 504
    assert client.get(f"/v1/licenses/{lic_id}", headers=auth()).status_code == 200


def test_rule_html_body(client):
    set_faults(client, rules=[{"path": "/v1/people", "status": 502, "body": "html"}])

    response = client.get("/v1/people", headers=auth())

    assert response.status_code == 502
    assert response.mimetype == "text/html"
    assert b"502 Bad Gateway" in response.data


def test_rule_truncated_success(client):
    set_faults(client, rules=[{"path": "/v1/licenses", "status": 200, "body": "truncated"}])

    response = client.get("/v1/licenses", headers=auth())

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    with pytest.raises(ValueError):
        json.loads(response.data)


def test_rule_truncated_error(client):
    set_faults(client, rules=[{"path": "/v1/licenses", "status": 500, "body": "truncated"}])

    response = client.get("/v1/licenses", headers=auth())

    assert response.status_code == 500
    with pytest.raises(ValueError):
        json.loads(response.data)


def test_rule_no_items(client):
    set_faults(client, rules=[{"path": "/v1/people", "body": "no_items", "times": 1}])

    broken = client.get("/v1/people", headers=auth())
    fine = client.get("/v1/people", headers=auth())

    assert broken.status_code == 200
    assert "items" not in broken.get_json()
    assert "items" in fine.get_json()


def test_rule_empty_429(client):
    set_faults(client, rules=[{"path": "/v1/roles", "status": 429, "body": "empty",
                               "retry_after": 2, "times": 1}])

    response = client.get("/v1/roles", headers=auth())

    assert response.status_code == 429
    assert response.data == b""
    assert response.headers["Retry-After"] == "2"
    assert "Trackingid" in response.headers


def test_rule_429_uses_global_retry_after(client):
    set_faults(client, retry_after=9, rules=[{"path": "/v1/roles", "status": 429}])

    assert client.get("/v1/roles", headers=auth()).headers["Retry-After"] == "9"


def test_rule_repeat_page(client):
    cobalt = org_ids(client)["Cobalt Health"]
    first = client.get("/v1/people", query_string={"orgId": cobalt, "max": 100}, headers=auth())
    second_url = next_url(first)
    set_faults(client, rules=[{"path": "/v1/people", "repeat_page": True, "skip": 0}])

    second = client.get(second_url, headers=auth())
    looped = client.get(next_url(second), headers=auth())

    assert second.status_code == 200
    assert "after=" not in next_url(second)
    assert [p["id"] for p in looped.get_json()["items"]] == [
        p["id"] for p in first.get_json()["items"]
    ]


def test_rule_drop_link_and_max_items(client):
    cobalt = org_ids(client)["Cobalt Health"]
    query = {"orgId": cobalt, "max": 20}
    whole = client.get("/v1/workspaces", query_string=query, headers=auth())
    set_faults(client, rules=[{"path": "/v1/workspaces", "drop_link": True, "max_items": 7}])

    cut = client.get("/v1/workspaces", query_string=query, headers=auth())

    assert "Link" in whole.headers
    assert cut.status_code == 200
    assert "Link" not in cut.headers
    assert [w["id"] for w in cut.get_json()["items"]] == [
        w["id"] for w in whole.get_json()["items"][:7]
    ]
    rule = client.get("/_simulator/faults").get_json()["rules"][0]
    assert (rule["drop_link"], rule["max_items"], rule["status"]) == (True, 7, 200)


def test_invalid_fault_settings(client):
    assert client.put("/_simulator/faults", json={"throttle_every": "x"}).status_code == 400
    assert client.put("/_simulator/faults", json={"bogus": 1}).status_code == 400
    assert client.put("/_simulator/faults", json={"rules": [{"status": 500}]}).status_code == 400
    assert client.put("/_simulator/faults",
                      json={"rules": [{"path": "/v1/x", "body": "xml"}]}).status_code == 400
    assert client.put("/_simulator/faults",
                      json={"rules": [{"path": "/v1/x", "max_items": -1}]}).status_code == 400


def test_request_log(client):
    client.get("/v1/licenses", query_string={"orgId": "nope"}, headers=auth(ALPINE_TOKEN))
    client.get("/v1/roles", headers=auth())
    client.get("/_simulator/faults")

    items = client.get("/_simulator/requests").get_json()["items"]

    assert [(i["method"], i["path"], i["status"]) for i in items] == [
        ("GET", "/v1/licenses", 403), ("GET", "/v1/roles", 200),
    ]
    assert items[0]["query"] == {"orgId": "nope"}
    assert client.delete("/_simulator/requests").status_code == 204
    assert client.get("/_simulator/requests").get_json()["items"] == []


def test_request_log_records_faults(client):
    set_faults(client, throttle_every=1)
    client.get("/v1/roles", headers=auth())

    entry = client.get("/_simulator/requests").get_json()["items"][0]

    assert entry["status"] == 429
    assert entry["fault"] == "throttle"


def test_reset_restores_state(client):
    borealis = org_ids(client)["Borealis Logistics"]
    licenses = client.get("/v1/licenses", query_string={"orgId": borealis},
                          headers=auth()).get_json()["items"]
    messaging = next(lic for lic in licenses if lic["name"] == "Advanced Messaging")
    people = client.get("/v1/people", query_string={"orgId": borealis, "max": 200},
                        headers=auth()).get_json()["items"]
    person = next(p for p in people if messaging["id"] not in p["licenses"])
    client.patch("/v1/licenses/users", headers=auth(), json={
        "orgId": borealis, "personId": person["id"], "licenses": [{"id": messaging["id"]}]})
    set_faults(client, fail_every=5)
    client.post("/_simulator/tokens", json={"accessToken": "temp-token", "orgIds": ["*"]})

    assert client.post("/_simulator/reset").status_code == 204

    after = client.get(f"/v1/licenses/{messaging['id']}", headers=auth()).get_json()
    assert after["consumedUnits"] == messaging["consumedUnits"]
    assert messaging["id"] not in client.get(f"/v1/people/{person['id']}",
                                             headers=auth()).get_json()["licenses"]
    assert client.get("/_simulator/faults").get_json()["fail_every"] is None
    assert client.get("/v1/roles", headers=auth("temp-token")).status_code == 401
    assert len(client.get("/_simulator/requests").get_json()["items"]) == 3


def test_control_tokens(client):
    orgs = org_ids(client)
    added = client.post("/_simulator/tokens",
                        json={"accessToken": "cobalt-only", "orgIds": [orgs["Cobalt Health"]]})

    assert added.status_code == 201
    assert client.get("/v1/licenses", headers=auth("cobalt-only")).status_code == 200
    assert client.post("/_simulator/tokens/expire",
                       json={"accessToken": "cobalt-only"}).status_code == 204
    assert client.get("/v1/licenses", headers=auth("cobalt-only")).status_code == 401
    assert client.post("/_simulator/tokens/expire",
                       json={"accessToken": "missing"}).status_code == 404


def test_control_token_past_expiry(client):
    client.post("/_simulator/tokens", json={"accessToken": "old", "orgIds": ["*"],
                                            "expiresAt": "2001-01-01T00:00:00Z"})
    bad = client.post("/_simulator/tokens", json={"accessToken": "x", "expiresAt": "soon"})

    assert client.get("/v1/roles", headers=auth("old")).status_code == 401
    assert bad.status_code == 400
