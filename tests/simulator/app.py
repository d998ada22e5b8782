"""Flask app of the Webex API simulator: the /v1 routes and the per-request hooks."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

from flask import Blueprint, Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from . import assignment
from .control import RequestLog, control
from .errors import ApiError, bad_request, new_tracking_id
from .faults import Faults, render_fault, transform_response
from .ids import decode_cursor, encode_cursor
from .state import SimulatorState, Token, dump_json

JSON_TYPE = "application/json;charset=UTF-8"

# Page sizes. The GET /people caps of 100 with callingData and 50 with locationId come from
# the Webex admin OpenAPI. Cisco publishes no other cap.
PEOPLE_DEFAULT_MAX = 100
PEOPLE_MAX = 1000  # NOTE: not in Cisco's spec; third-party clients use 1000.
PEOPLE_MAX_CALLING = 100
PEOPLE_MAX_LOCATION = 50
PEOPLE_MAX_IDS = 85
LICENSE_USERS_LIMIT = 300
LOCATIONS_DEFAULT_MAX = 500
LOCATIONS_MAX = 1000  # NOTE: assumed; Cisco documents only the default of 500.
WORKSPACES_DEFAULT_MAX = 100  # NOTE: assumed; Cisco documents neither default nor cap.
WORKSPACES_MAX = 1000

PEOPLE_CURSOR = "PEOPLE_PAGING"
LICENSE_USER_CURSOR = "LICENSE_USER_PAGING"


class Simulator:
    """What the request handlers share: org state, fault settings and the request log."""

    def __init__(self, state: SimulatorState, faults: Faults, request_log: RequestLog):
        self.state = state
        self.faults = faults
        self.request_log = request_log


def create_app(fixture: dict | str, faults: dict | None = None) -> Flask:
    """Build the app from a fixture (a dict or its JSON text) and startup fault settings."""
    text = fixture if isinstance(fixture, str) else json.dumps(fixture)
    simulator = Simulator(SimulatorState(text), Faults(faults), RequestLog())

    app = Flask("webex_simulator")
    app.extensions["webex_simulator"] = simulator
    app.register_blueprint(control)
    app.register_blueprint(api_routes())
    app.before_request(start_request)
    app.after_request(finish_request)
    app.register_error_handler(ApiError, render_api_error)
    app.register_error_handler(HTTPException, render_http_error)
    return app


def simulator() -> Simulator:
    return current_app.extensions["webex_simulator"]


# -- hooks and error rendering ---------------------------------------------------------------


def is_api_request() -> bool:
    return request.path == "/v1" or request.path.startswith("/v1/")


def start_request():
    g.tracking_id = new_tracking_id()
    g.fault = None
    if not is_api_request():
        return None

    faults = simulator().faults
    if faults.latency_ms:
        time.sleep(faults.latency_ms / 1000.0)
    decision = faults.decide(request.method, request.path, request.args.to_dict())
    g.fault = decision
    if decision is not None and decision.delay_ms:
        time.sleep(decision.delay_ms / 1000.0)
    if decision is not None and decision.replaces:
        return render_fault(decision, g.tracking_id)
    return None


def finish_request(response: Response) -> Response:
    decision = g.get("fault")
    if decision is not None and decision.after_handler:
        response = render_fault(decision, g.tracking_id)
    elif decision is not None and not decision.replaces:
        response = transform_response(
            decision, response, request.host_url, request.path, request.args
        )
    if is_api_request():
        simulator().request_log.append(
            {
                "method": request.method,
                "path": request.path,
                "query": request.args.to_dict(),
                "status": response.status_code,
                "fault": decision.kind if decision is not None else None,
            }
        )
    response.headers["Trackingid"] = g.get("tracking_id") or new_tracking_id()
    return response


def render_api_error(error: ApiError) -> Response:
    tracking_id = g.get("tracking_id") or new_tracking_id()
    return json_response(error.body(tracking_id), error.status, error.headers)


def render_http_error(error: HTTPException) -> Response:
    message = error.description or error.name
    return render_api_error(ApiError(error.code or 500, message))


# -- request parsing helpers ---------------------------------------------------------------


def json_response(payload, status: int = 200, headers: dict | None = None) -> Response:
    return Response(dump_json(payload), status=status, headers=headers, content_type=JSON_TYPE)


def bool_param(name: str, default: bool = False) -> bool:
    value = request.args.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise bad_request(f"Query parameter {name} must be true or false, got {value!r}.")


def int_param(name: str, default: int, minimum: int = 1) -> int:
    value = request.args.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise bad_request(f"Query parameter {name} must be an integer, got {value!r}.") from None
    if number < minimum:
        raise bad_request(f"Query parameter {name} must be >= {minimum}, got {number}.")
    return number


def cursor_param(name: str, kind: str) -> int:
    value = request.args.get(name)
    if not value:
        return 0
    position = decode_cursor(kind, value)
    if position is None:
        raise bad_request(f"Invalid paging cursor in query parameter {name}.")
    return position


def next_link(param: str, value) -> str:
    """Return a `Link` value for the next page: this request's URL with `param` replaced."""
    pairs = [(k, v) for k, v in request.args.items(multi=True) if k != param]
    pairs.append((param, str(value)))
    url = request.host_url.rstrip("/") + request.path + "?" + urlencode(pairs)
    return f'<{url}>; rel="next"'


def json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body


def authenticate() -> Token:
    return simulator().state.authenticate(request.headers.get("Authorization"))


def target_org(token: Token, org_id: str | None = None):
    return simulator().state.resolve_org(token, org_id or request.args.get("orgId"))


def offset_page(items: list, default_max: int, cap: int) -> Response:
    """Serve `items` with start/max offset paging and a Link to the next page."""
    start = int_param("start", 0, minimum=0)
    page_size = min(int_param("max", default_max), cap)
    page = items[start:start + page_size]
    headers = {}
    if start + page_size < len(items):
        headers["Link"] = next_link("start", start + page_size)
    return json_response({"items": page}, headers=headers)


# -- /v1 routes ------------------------------------------------------------------------------


def api_routes() -> Blueprint:
    api = Blueprint("webex_api", __name__, url_prefix="/v1")

    @api.get("/licenses")
    def list_licenses():
        token = authenticate()
        org = target_org(token)
        return json_response({"items": simulator().state.list_licenses(org)})

    @api.get("/licenses/<path:license_id>")
    def get_license(license_id: str):
        token = authenticate()
        include = request.args.get("includeAssignedTo")
        if include not in (None, "", "user"):
            raise bad_request(f"includeAssignedTo must be user, got {include!r}.")
        include_users = include == "user"
        limit = min(int_param("limit", LICENSE_USERS_LIMIT), LICENSE_USERS_LIMIT)
        position = cursor_param("next", LICENSE_USER_CURSOR) if include_users else 0

        view, next_position = simulator().state.license_with_users(
            token, license_id, include_users, position, limit
        )
        headers = {}
        if next_position is not None:
            headers["Link"] = next_link("next", encode_cursor(LICENSE_USER_CURSOR, next_position))
        return json_response(view, headers=headers)

    @api.patch("/licenses/users")
    def assign_licenses():
        token = authenticate()
        body = json_body()
        state = simulator().state
        with state.lock:
            org = target_org(token, body.get("orgId"))
            status, payload = assignment.assign_licenses(org, body)
        return json_response(payload, status)

    @api.get("/people")
    def list_people():
        token = authenticate()
        org = target_org(token)
        calling_data = bool_param("callingData")
        location_id = request.args.get("locationId") or None
        cap = PEOPLE_MAX_CALLING if calling_data else PEOPLE_MAX
        if location_id:
            cap = min(cap, PEOPLE_MAX_LOCATION)
        max_items = min(int_param("max", PEOPLE_DEFAULT_MAX), cap)

        ids = None
        if request.args.get("id"):
            ids = [i for i in request.args["id"].split(",") if i]
            if len(ids) > PEOPLE_MAX_IDS:
                raise bad_request(f"At most {PEOPLE_MAX_IDS} ids are allowed, got {len(ids)}.")
        roles = [r for r in request.args.get("roles", "").split(",") if r] or None

        page = simulator().state.list_people(
            org,
            calling_data=calling_data,
            max_items=max_items,
            position=cursor_param("after", PEOPLE_CURSOR),
            email=request.args.get("email") or None,
            ids=ids,
            display_name=request.args.get("displayName") or None,
            location_id=location_id,
            role_ids=roles,
            presence=not bool_param("excludeStatus"),
        )
        body = b'{"items":[' + b",".join(page.items) + b"]"
        if ids is not None:
            body += b',"notFoundIds":' + dump_json(page.not_found)
        body += b"}"
        headers = {}
        if page.next_position is not None:
            headers["Link"] = next_link("after", encode_cursor(PEOPLE_CURSOR, page.next_position))
        return Response(body, status=200, headers=headers, content_type=JSON_TYPE)

    @api.get("/people/me")
    def get_me():
        token = authenticate()
        body = simulator().state.get_token_person(token, bool_param("callingData"))
        return Response(body, status=200, content_type=JSON_TYPE)

    @api.get("/people/<path:person_id>")
    def get_person(person_id: str):
        token = authenticate()
        body = simulator().state.get_person(token, person_id, bool_param("callingData"))
        return Response(body, status=200, content_type=JSON_TYPE)

    @api.put("/people/<path:person_id>")
    def update_person(person_id: str):
        token = authenticate()
        body = json_body()
        calling_data = bool_param("callingData")
        minimal = bool_param("minResponse")
        state = simulator().state
        with state.lock:
            org, position = state.find_person(token, person_id)
            assignment.replace_person(org, position, body)
            person = org.person_json(position, calling_data)
        if minimal:
            return Response(b"", status=204)
        return Response(person, status=200, content_type=JSON_TYPE)

    @api.get("/locations")
    def list_locations():
        token = authenticate()
        org = target_org(token)
        found = simulator().state.list_locations(
            org, request.args.get("name") or None, request.args.get("id") or None
        )
        return offset_page(found, LOCATIONS_DEFAULT_MAX, LOCATIONS_MAX)

    @api.get("/locations/<path:location_id>")
    def get_location(location_id: str):
        token = authenticate()
        location = simulator().state.get_location(
            token, location_id, request.args.get("orgId") or None
        )
        return json_response(location)

    @api.get("/workspaces")
    def list_workspaces():
        token = authenticate()
        org = target_org(token)
        filters = {
            key: request.args.get(key)
            for key in ("locationId", "displayName", "type", "calling")
            if request.args.get(key)
        }
        found = simulator().state.list_workspaces(org, filters)
        return offset_page(found, WORKSPACES_DEFAULT_MAX, WORKSPACES_MAX)

    @api.get("/workspaces/<path:workspace_id>")
    def get_workspace(workspace_id: str):
        token = authenticate()
        return json_response(simulator().state.get_workspace(token, workspace_id))

    @api.get("/organizations")
    def list_organizations():
        token = authenticate()
        return json_response({"items": simulator().state.list_organizations(token)})

    @api.get("/organizations/<path:org_id>")
    def get_organization(org_id: str):
        token = authenticate()
        return json_response(simulator().state.get_organization(token, org_id))

    @api.get("/roles")
    def list_roles():
        token = authenticate()
        org = target_org(token)
        return json_response({"items": simulator().state.list_roles(org)})

    @api.get("/roles/<path:role_id>")
    def get_role(role_id: str):
        token = authenticate()
        return json_response(simulator().state.get_role(token, role_id))

    @api.post("/access_token")
    def access_token():
        if request.mimetype != "application/x-www-form-urlencoded":
            raise ApiError(
                415, "The body must be form-encoded (application/x-www-form-urlencoded)."
            )
        payload = simulator().state.refresh_access_token(request.form.to_dict())
        return json_response(payload, headers={"Cache-Control": "no-store"})

    return api
