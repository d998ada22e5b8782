"""Simulator responses checked against Cisco's Webex OpenAPI descriptions.

The specs are the subsets vendored in tests/simulator/openapi/ (see README.txt there).
Success responses go through openapi-core's response validation; error bodies and the
OAuth token response, which those operations describe without content or not at all, are
checked with the OpenAPI 3.0 schema validator against ErrorResponse and the token schema.

Known defects of the specs are patched in `patched_spec`, and only there:
* Person.invitePending and Person.loginEnabled are declared as "true"/"false" strings,
  but the live service sends JSON booleans.
* License.consumedByUsers and consumedByWorkspaces are declared as numbers, but live data
  has null for some licenses (for example "Webex Calling - Route List Calls").
* The Location response schema of GET /locations is the workspace-location shape; the
  operation's own examples show the real one, which REAL_LOCATION describes.
"""

from __future__ import annotations

import copy
import json
import os

import pytest
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_core.validation.response.exceptions import InvalidData
from openapi_schema_validator import OAS30Validator

from tests.simulator.testkit import auth, demo_client, org_ids

SPEC_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "simulator", "openapi"
)
ADMIN_SPEC = "subset-admin-licenses-people-orgs-roles.json"
DEVICE_SPEC = "subset-device-locations-workspaces.json"
HOST = "https://webexapis.com"

# The location shape of the examples on GET /locations and GET /locations/{locationId}.
REAL_LOCATION = {
    "type": "object",
    "required": ["id", "name", "orgId", "address"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "orgId": {"type": "string"},
        "address": {
            "type": "object",
            "required": ["address1", "city", "country"],
            "properties": {
                "address1": {"type": "string"},
                "address2": {"type": "string"},
                "city": {"type": "string"},
                "state": {"type": "string"},
                "postalCode": {"type": "string"},
                "country": {"type": "string", "minLength": 2, "maxLength": 2},
            },
        },
        "timeZone": {"type": "string"},
        "preferredLanguage": {"type": "string"},
        "latitude": {"type": "string"},
        "longitude": {"type": "string"},
        "notes": {"type": "string"},
    },
}


def load_spec(name: str) -> dict:
    with open(os.path.join(SPEC_DIR, name), encoding="utf-8") as handle:
        return json.load(handle)


def patched_spec(name: str) -> dict:
    """Return the spec with the documented defects (module docstring) corrected."""
    spec = copy.deepcopy(load_spec(name))
    schemas = spec["components"]["schemas"]
    if "Person" in schemas:
        for field in ("invitePending", "loginEnabled"):
            schemas["Person"]["properties"][field] = {"type": "boolean"}
    for license_schema in ("License", "LicensewithUsers"):
        if license_schema in schemas:
            for field in ("consumedByUsers", "consumedByWorkspaces"):
                schemas[license_schema]["properties"][field]["nullable"] = True
    if "Location" in schemas:
        schemas["Location"] = REAL_LOCATION
    return spec


@pytest.fixture(scope="module")
def admin_spec():
    return patched_spec(ADMIN_SPEC)


@pytest.fixture(scope="module")
def admin_api(admin_spec):
    return OpenAPI.from_dict(admin_spec)


@pytest.fixture(scope="module")
def device_api():
    return OpenAPI.from_dict(patched_spec(DEVICE_SPEC))


@pytest.fixture()
def client():
    return demo_client()


@pytest.fixture()
def orgs(client):
    return org_ids(client)


def validate(api: OpenAPI, response, method: str, path: str, pattern: str, query=None):
    """Validate one Flask test response against the operation at `pattern`."""
    request = MockRequest(HOST, method.lower(), path, path_pattern=pattern, args=query or {})
    mock = MockResponse(
        response.data, status_code=response.status_code,
        headers=dict(response.headers), content_type=response.mimetype,
    )
    api.validate_response(request, mock)


def schema_validator(spec: dict, schema: dict) -> OAS30Validator:
    return OAS30Validator({**schema, "components": spec["components"]})


def validate_error(spec: dict, response, status: int) -> None:
    assert response.status_code == status
    validator = schema_validator(spec, {"$ref": "#/components/schemas/ErrorResponse"})
    validator.validate(response.get_json())
    assert response.get_json()["errors"], "an error body lists at least one error"


def licenses_of(client, org_id):
    return client.get("/v1/licenses", query_string={"orgId": org_id}, headers=auth()).get_json()[
        "items"]


def test_contract_licenses_list(client, orgs, admin_api):
    query = {"orgId": orgs["Borealis Logistics"]}
    response = client.get("/v1/licenses", query_string=query, headers=auth())

    assert response.status_code == 200
    assert any(lic["consumedByUsers"] is None for lic in response.get_json()["items"])
    validate(admin_api, response, "GET", "/v1/licenses", "/v1/licenses", query)


def test_contract_license_with_users(client, orgs, admin_api):
    lic = next(lic for lic in licenses_of(client, orgs["Cobalt Health"])
               if lic["name"] == "Webex Calling - Professional")
    query = {"includeAssignedTo": "user", "limit": "300"}
    response = client.get(f"/v1/licenses/{lic['id']}", query_string=query, headers=auth())

    assert len(response.get_json()["users"]) == 300
    validate(admin_api, response, "GET", f"/v1/licenses/{lic['id']}",
             "/v1/licenses/{licenseId}", query)


def patch_body(client, org_id, *licenses):
    person = client.get("/v1/people", query_string={"orgId": org_id, "max": 1},
                        headers=auth()).get_json()["items"][0]
    return {"orgId": org_id, "personId": person["id"], "licenses": list(licenses)}


def test_contract_patch_200(client, orgs, admin_api):
    borealis = orgs["Borealis Logistics"]
    hybrid = next(lic for lic in licenses_of(client, borealis)
                  if lic["name"] == "Hybrid - Exchange Calendar")
    body = patch_body(client, borealis, {"id": hybrid["id"], "operation": "add"})
    response = client.patch("/v1/licenses/users", json=body, headers=auth())

    assert response.status_code == 200
    validate(admin_api, response, "PATCH", "/v1/licenses/users", "/v1/licenses/users")


def test_contract_patch_206(client, orgs, admin_api):
    borealis = orgs["Borealis Logistics"]
    hybrid = next(lic for lic in licenses_of(client, borealis)
                  if lic["name"] == "Hybrid - Exchange Calendar")
    body = patch_body(client, borealis, {"id": hybrid["id"]}, {"id": "bm90LWEtbGljZW5zZQ"})
    response = client.patch("/v1/licenses/users", json=body, headers=auth())

    assert response.status_code == 206
    validate(admin_api, response, "PATCH", "/v1/licenses/users", "/v1/licenses/users")


@pytest.mark.parametrize("case", ["unknown", "screen-share", "no-units"])
def test_contract_patch_400(client, orgs, admin_api, admin_spec, case):
    borealis = orgs["Borealis Logistics"]
    licenses = licenses_of(client, borealis)
    if case == "unknown":
        request = {"id": "bm90LWEtbGljZW5zZQ"}
    elif case == "screen-share":
        screen_share = next(lic for lic in licenses if lic["name"] == "Free screen share")
        request = {"id": screen_share["id"], "operation": "remove"}
    else:
        full = next(lic for lic in licenses if lic["name"] == "Webex Calling - Standard"
                    and lic["consumedUnits"] == lic["totalUnits"])
        request = {"id": full["id"], "properties": {"extension": "99", "phoneNumber": "+1555"}}
    body = patch_body(client, borealis, request)
    response = client.patch("/v1/licenses/users", json=body, headers=auth())

    validate_error(admin_spec, response, 400)
    validate(admin_api, response, "PATCH", "/v1/licenses/users", "/v1/licenses/users")


def test_contract_people_list(client, orgs, admin_api):
    query = {"orgId": orgs["Cobalt Health"], "max": "100", "callingData": "true"}
    response = client.get("/v1/people", query_string=query, headers=auth())

    assert "Link" in response.headers
    validate(admin_api, response, "GET", "/v1/people", "/v1/people", query)


def test_contract_people_by_id(client, orgs, admin_api):
    first = client.get("/v1/people", query_string={"orgId": orgs["Alpine Dental"], "max": 2},
                       headers=auth()).get_json()["items"]
    query = {"orgId": orgs["Alpine Dental"], "id": ",".join([p["id"] for p in first] + ["eA"])}
    response = client.get("/v1/people", query_string=query, headers=auth())

    assert response.get_json()["notFoundIds"] == ["eA"]
    validate(admin_api, response, "GET", "/v1/people", "/v1/people", query)


def test_contract_person(client, orgs, admin_api):
    person = client.get("/v1/people", query_string={"orgId": orgs["Cobalt Health"], "max": 1},
                        headers=auth()).get_json()["items"][0]
    path = f"/v1/people/{person['id']}"
    get_response = client.get(path, query_string={"callingData": "true"}, headers=auth())
    body = get_response.get_json()
    body["department"] = "Radiology"
    put_response = client.put(path, json=body, headers=auth())

    assert isinstance(body["invitePending"], bool)
    validate(admin_api, get_response, "GET", path, "/v1/people/{personId}",
             {"callingData": "true"})
    assert put_response.status_code == 200
    validate(admin_api, put_response, "PUT", path, "/v1/people/{personId}")


def test_contract_organizations(client, orgs, admin_api):
    listed = client.get("/v1/organizations", headers=auth())
    alpine_id = orgs["Alpine Dental"]
    detail = client.get(f"/v1/organizations/{alpine_id}", headers=auth())

    validate(admin_api, listed, "GET", "/v1/organizations", "/v1/organizations")
    validate(admin_api, detail, "GET", f"/v1/organizations/{alpine_id}",
             "/v1/organizations/{orgId}")


def test_contract_roles(client, admin_api):
    listed = client.get("/v1/roles", headers=auth())
    role_id = listed.get_json()["items"][0]["id"]
    detail = client.get(f"/v1/roles/{role_id}", headers=auth())

    validate(admin_api, listed, "GET", "/v1/roles", "/v1/roles")
    validate(admin_api, detail, "GET", f"/v1/roles/{role_id}", "/v1/roles/{roleId}")


def test_contract_locations(client, orgs, device_api):
    query = {"orgId": orgs["Cobalt Health"], "max": "10"}
    listed = client.get("/v1/locations", query_string=query, headers=auth())
    location_id = listed.get_json()["items"][0]["id"]
    detail = client.get(f"/v1/locations/{location_id}", headers=auth())

    assert "Link" in listed.headers
    validate(device_api, listed, "GET", "/v1/locations", "/v1/locations", query)
    validate(device_api, detail, "GET", f"/v1/locations/{location_id}",
             "/v1/locations/{locationId}")


def test_contract_locations_real_shape_not_spec(client, orgs):
    """The raw spec's Location schema rejects real locations (the defect patched above)."""
    spec = load_spec(DEVICE_SPEC)
    location = client.get("/v1/locations", query_string={"orgId": orgs["Cobalt Health"]},
                          headers=auth()).get_json()["items"][0]

    errors = list(schema_validator(spec, {"$ref": "#/components/schemas/Location"})
                  .iter_errors(location))
    assert errors


def test_contract_workspaces(client, orgs, device_api):
    query = {"orgId": orgs["Cobalt Health"], "max": "20"}
    listed = client.get("/v1/workspaces", query_string=query, headers=auth())
    workspace_id = listed.get_json()["items"][0]["id"]
    detail = client.get(f"/v1/workspaces/{workspace_id}", headers=auth())

    validate(device_api, listed, "GET", "/v1/workspaces", "/v1/workspaces", query)
    validate(device_api, detail, "GET", f"/v1/workspaces/{workspace_id}",
             "/v1/workspaces/{workspaceId}")


def test_contract_access_token(client, admin_spec):
    response = client.post("/v1/access_token", data={
        "grant_type": "refresh_token", "client_id": "demo-client-id",
        "client_secret": "demo-client-secret", "refresh_token": "demo-refresh-token"})
    operation = admin_spec["paths"]["/applications/{applicationId}/token"]["post"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    required = {**schema, "required": sorted(schema["properties"])}

    assert response.status_code == 200
    schema_validator(admin_spec, required).validate(response.get_json())


@pytest.mark.parametrize(
    ("method", "path", "token", "status"),
    [
        ("GET", "/v1/licenses", "demo-expired-token", 401),
        ("GET", "/v1/people", None, 401),
        ("GET", "/v1/people/bm9ib2R5", "demo-partner-token", 404),
        ("GET", "/v1/licenses?orgId=b3RoZXI", "demo-alpine-token", 403),
        ("GET", "/v1/people?max=abc", "demo-partner-token", 400),
        ("POST", "/v1/access_token", None, 415),
    ],
)
def test_contract_error_bodies(client, admin_spec, method, path, token, status):
    headers = auth(token) if token else {}
    response = client.open(path, method=method, headers=headers)

    validate_error(admin_spec, response, status)


def test_contract_fault_error_body(client, admin_spec):
    client.put("/_simulator/faults", json={"throttle_every": 1})
    response = client.get("/v1/roles", headers=auth())

    validate_error(admin_spec, response, 429)


class JsonResponse:
    """A stand-in response that carries a modified JSON body."""

    def __init__(self, original, payload):
        self.data = json.dumps(payload).encode()
        self.status_code = original.status_code
        self.headers = dict(original.headers)
        self.mimetype = "application/json"


def test_contract_person_exception_narrow(client, orgs):
    """With the booleans written as the spec's strings, the raw spec accepts the people."""
    raw_api = OpenAPI.from_dict(load_spec(ADMIN_SPEC))
    query = {"orgId": orgs["Borealis Logistics"], "max": "50"}
    response = client.get("/v1/people", query_string=query, headers=auth())
    payload = response.get_json()
    for person in payload["items"]:
        for field in ("invitePending", "loginEnabled"):
            person[field] = str(person[field]).lower()

    with pytest.raises(InvalidData):
        validate(raw_api, response, "GET", "/v1/people", "/v1/people", query)
    validate(raw_api, JsonResponse(response, payload), "GET", "/v1/people", "/v1/people", query)


def test_contract_license_exception_narrow(client, orgs):
    """With null counters written as numbers, the raw spec accepts the licenses."""
    raw_api = OpenAPI.from_dict(load_spec(ADMIN_SPEC))
    query = {"orgId": orgs["Borealis Logistics"]}
    response = client.get("/v1/licenses", query_string=query, headers=auth())
    payload = response.get_json()
    for lic in payload["items"]:
        for field in ("consumedByUsers", "consumedByWorkspaces"):
            if lic[field] is None:
                lic[field] = 0

    with pytest.raises(InvalidData):
        validate(raw_api, response, "GET", "/v1/licenses", "/v1/licenses", query)
    validate(raw_api, JsonResponse(response, payload), "GET", "/v1/licenses", "/v1/licenses",
             query)
