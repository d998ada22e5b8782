# Copyright: ucops.webex maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""HTTP client for the Webex REST API, shared by every ucops.webex module.

The client owns authentication (bearer token, optional OAuth refresh), paging over
``Link: rel="next"``, waiting on 429 ``Retry-After`` (and on a 423 that sends one), bounded
retries of reads on 502/503/504 and connection errors, and error messages that name the
method, path, HTTP status, the API message and the trackingId but never a token.
"""

from __future__ import annotations

import ast
import html
import itertools
import json as jsonlib
import math
import os
import random
import re
import time
import traceback
import uuid
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any, Callable, Iterator, List, Mapping, Optional
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

from ansible.module_utils.basic import env_fallback, missing_required_lib

try:
    import requests
    from urllib3.exceptions import NewConnectionError
except ImportError:
    requests = None
    NewConnectionError = None
    REQUESTS_IMPORT_ERROR: Optional[str] = traceback.format_exc()
else:
    REQUESTS_IMPORT_ERROR = None


DEFAULT_API_URL = "https://webexapis.com/v1"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRY_WAIT = 300.0

# Waits in seconds: Retry-After when a 429 or 503 has none (or an unreadable one), and the
# cap on one Retry-After value so a bogus header cannot stall a run for hours.
DEFAULT_RETRY_AFTER = 5.0
MAX_RETRY_AFTER = 300.0
# Minimum wait for a 429 of a request after two shorter waits for 429s in a row.
REPEATED_429_MIN_WAIT = 1.0

# Reads (GET) are retried on these statuses and on connection errors, after these delays
# in seconds, each stretched by up to RETRY_JITTER (a fraction) of random jitter.
GET_RETRY_STATUSES = frozenset({502, 503, 504})
GET_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)
RETRY_JITTER = 0.1

# Page sizes sent as `max` (or `limit`). The API clamps a larger value to its own maximum
# and still offers rel="next", so these only save round trips.
PEOPLE_PAGE_SIZE = 1000
LOCATIONS_PAGE_SIZE = 500
WORKSPACES_PAGE_SIZE = 100
LICENSE_USERS_PAGE_SIZE = 300

# Query parameters that position a page. A next link that lacks one of them is not
# repaired with the first request's value, because that would fetch the first page again.
PAGE_POSITION_PARAMS = frozenset({"start", "offset", "next", "after", "before", "cursor"})

BODY_SNIPPET_LENGTH = 200
SECRET_MASK = "********"
TRACKING_ID_PREFIX = "UCOPS_"
USER_AGENT_PREFIX = "ucops.webex Ansible collection"

TOKEN_HELP = (
    "Get a new access token from the Webex developer portal (developer.webex.com) or from "
    "your Control Hub integration, or set client_id, client_secret and refresh_token "
    "(WEBEX_CLIENT_ID, WEBEX_CLIENT_SECRET, WEBEX_REFRESH_TOKEN) so that the token is "
    "refreshed automatically."
)


def converted_collection_options(
    argument_spec: Mapping[str, Mapping[str, Any]], params: Mapping[str, Any]
) -> List[str]:
    """Return the text options whose value is the text form of a YAML list or mapping.

    Ansible turns a list given for an option of type str into text such as
    ``['Keystone', 'North']`` and passes it on, so the value would be stored as that text.
    Options with no_log are not checked, because the message shows the value.
    """
    found = []
    for name, spec in argument_spec.items():
        value = params.get(name)
        if spec.get("type", "str") != "str" or spec.get("no_log") or not isinstance(value, str):
            continue
        text = value.strip()
        bracketed = (text[:1], text[-1:]) in (("[", "]"), ("{", "}"))
        # Ansible writes the strings of a list or mapping in quotes, so "[2024]" passes.
        if not bracketed or ("'" not in text and '"' not in text):
            continue
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            continue
        if isinstance(parsed, (list, dict)):
            found.append(name)
    return found


def fail_on_converted_collections(module: Any) -> None:
    """Fail the module when a text option was given a YAML list or mapping."""
    names = converted_collection_options(module.argument_spec, module.params)
    if names:
        listed = ", ".join(f"{name}={module.params[name]}" for name in names)
        advice = (
            " (a hierarchy as levels separated by '/', for example 'Provider/Reseller North')"
            if "hierarchy" in names else ""
        )
        module.fail_json(
            msg=f"option(s) {listed}: a list or mapping was given where the module expects "
            f"one text value. Give one string{advice}. Nothing was changed"
        )


def webex_argument_spec() -> dict:
    """Return a new argument spec with the connection options every module shares."""
    return dict(
        api_url=dict(
            type="str", default=DEFAULT_API_URL, fallback=(env_fallback, ["WEBEX_API_URL"])
        ),
        access_token=dict(type="str", no_log=True, fallback=(env_fallback, ["WEBEX_ACCESS_TOKEN"])),
        client_id=dict(type="str", no_log=True, fallback=(env_fallback, ["WEBEX_CLIENT_ID"])),
        client_secret=dict(
            type="str", no_log=True, fallback=(env_fallback, ["WEBEX_CLIENT_SECRET"])
        ),
        refresh_token=dict(
            type="str", no_log=True, fallback=(env_fallback, ["WEBEX_REFRESH_TOKEN"])
        ),
        org_id=dict(type="str", fallback=(env_fallback, ["WEBEX_ORG_ID"])),
        validate_certs=dict(
            type="bool", default=True, fallback=(env_fallback, ["WEBEX_VALIDATE_CERTS"])
        ),
        timeout=dict(type="float", default=DEFAULT_TIMEOUT),
        # no_log: the URL may carry a proxy password.
        proxy_url=dict(type="str", no_log=True),
        max_retry_wait=dict(type="float", default=DEFAULT_MAX_RETRY_WAIT),
    )


class WebexApiError(Exception):
    """A Webex API request that failed, with the details needed to report it.

    ``message`` is the API's message (or a description of the failure when there was no
    HTTP response). ``status`` is None when no response arrived. ``body`` is the parsed
    JSON body, or the start of a non-JSON body, with secrets masked.
    """

    def __init__(
        self,
        message: str,
        method: Optional[str] = None,
        path: Optional[str] = None,
        status: Optional[int] = None,
        reason: Optional[str] = None,
        tracking_id: Optional[str] = None,
        error_codes: Optional[list[int]] = None,
        body: Any = None,
        hint: Optional[str] = None,
    ) -> None:
        self.message = message
        self.method = method
        self.path = path
        self.status = status
        self.reason = reason
        self.tracking_id = tracking_id
        self.error_codes = list(error_codes or [])
        self.body = body
        self.hint = hint
        super().__init__(self._format())

    def _format(self) -> str:
        head = f"{self.method} {self.path} failed" if self.method else "Webex API request failed"
        if self.status is not None:
            head += f" with HTTP {self.status}"
            if self.reason:
                head += f" {self.reason}"

        text = f"{head}: {_end_sentence(self.message)}"
        if self.error_codes:
            text += " errorCode: " + ", ".join(str(code) for code in self.error_codes) + "."
        if self.hint:
            text += " " + _end_sentence(self.hint)
        if self.tracking_id:
            text += f" (trackingId: {self.tracking_id})"
        return text


class WebexAuthError(WebexApiError):
    """A 401 that a token refresh could not cure, or a failed token refresh."""


class WebexResponse:
    """The parts of an HTTP response that callers use: status, parsed JSON body, headers.

    ``content`` is the undecoded body.
    """

    def __init__(
        self,
        status: int,
        json: Any,
        headers: Any,
        links: Optional[dict] = None,
        content: Optional[bytes] = None,
    ) -> None:
        self.status = status
        self.json = json
        self.headers = headers
        self.links = links or {}
        self.content = content

    @property
    def tracking_id(self) -> Optional[str]:
        return self.headers.get("Trackingid")

    def __repr__(self) -> str:
        return f"WebexResponse(status={self.status})"


class WebexClient:
    """Client for the Webex REST API with one keep-alive session.

    ``max_retry_wait`` bounds the total seconds this client spends waiting before retries,
    over all its requests. ``sleep`` is called for every wait, so tests can replace it.
    """

    def __init__(
        self,
        api_url: Optional[str],
        access_token: Optional[str] = None,
        client_id: Optional[str] = None,
        client_secret: Optional[str] = None,
        refresh_token: Optional[str] = None,
        org_id: Optional[str] = None,
        validate_certs: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        proxy_url: Optional[str] = None,
        max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT,
        sleep: Callable[[float], None] = time.sleep,
        session: Any = None,
    ) -> None:
        if requests is None:
            raise ImportError(missing_required_lib("requests"))

        self.api_url = validate_api_url(DEFAULT_API_URL if api_url is None else api_url)
        self.timeout = _validate_seconds("timeout", timeout, allow_zero=False)
        self.max_retry_wait = _validate_seconds("max_retry_wait", max_retry_wait, allow_zero=True)
        self.validate_certs = bool(validate_certs)
        self.proxy_url = _validate_proxy_url(proxy_url)
        # The raw values are remembered as secrets too, in case a caller shows them.
        raw_secrets = tuple(
            value for value in (access_token, client_secret, refresh_token)
            if isinstance(value, str) and value.strip()
        )
        access_token = _clean_credential("access_token (WEBEX_ACCESS_TOKEN)", access_token,
                                         header=True)
        client_id = _clean_credential("client_id (WEBEX_CLIENT_ID)", client_id)
        client_secret = _clean_credential("client_secret (WEBEX_CLIENT_SECRET)", client_secret)
        refresh_token = _clean_credential("refresh_token (WEBEX_REFRESH_TOKEN)", refresh_token)
        _validate_credentials(access_token, client_id, client_secret, refresh_token)

        self.access_token = access_token or None
        self.client_id = client_id or None
        self.client_secret = client_secret or None
        self.refresh_token = refresh_token or None
        self.org_id = org_id or None
        self.stats = {"requests": 0, "retries": 0, "waited_seconds": 0.0, "refreshes": 0}

        self._sleep = sleep
        self._secrets: set[str] = set()
        self._remember_secrets(
            access_token, client_secret, refresh_token, _proxy_password(proxy_url), *raw_secrets
        )
        self._refresh_unconfirmed = False
        self._proxies = (
            {"http": self.proxy_url, "https": self.proxy_url} if self.proxy_url else None
        )

        self._verify: Any = self.validate_certs
        self._own_session = session is None
        if session is None:
            self.session = self._new_session()
            # With trust_env, requests reads the proxy variables, the CA bundle variables
            # and ~/.netrc from the environment again for every request. Read the first two
            # once here instead. ~/.netrc is not read, so it cannot replace the bearer token.
            if self._proxies is None:
                self._proxies = requests.utils.get_environ_proxies(self.api_url) or None
            if self.validate_certs:
                self._verify = (
                    os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
                )
        else:
            self.session = session
            self.session.headers.update(_session_headers())

    @staticmethod
    def _new_session() -> Any:
        session = requests.Session()
        session.trust_env = False
        session.headers.update(_session_headers())
        return session

    @classmethod
    def from_module(cls, module: Any) -> WebexClient:
        """Build a client from module.params, or fail the module on a bad option or no requests."""
        if requests is None:
            module.fail_json(msg=missing_required_lib("requests"), exception=REQUESTS_IMPORT_ERROR)

        params = module.params
        try:
            return cls(
                api_url=params.get("api_url"),
                access_token=params.get("access_token"),
                client_id=params.get("client_id"),
                client_secret=params.get("client_secret"),
                refresh_token=params.get("refresh_token"),
                org_id=params.get("org_id"),
                validate_certs=params.get("validate_certs", True),
                timeout=_default_if_none(params.get("timeout"), DEFAULT_TIMEOUT),
                proxy_url=params.get("proxy_url"),
                max_retry_wait=_default_if_none(
                    params.get("max_retry_wait"), DEFAULT_MAX_RETRY_WAIT
                ),
            )
        except ValueError as exc:
            module.fail_json(msg=str(exc))

    # ---- generic requests -------------------------------------------------------------------

    def request(
        self, method: str, path: str, params: Optional[dict] = None, json: Any = None
    ) -> WebexResponse:
        """Send one API request, retrying as allowed, and return the response (status < 400).

        ``path`` is relative to api_url ("/people") or an absolute URL, which is rebased onto
        api_url. Raises WebexApiError (WebexAuthError for an uncured 401).
        """
        url = self._build_url(path)
        return self._send_with_retries(method.upper(), url, _encode_params(params), json)

    def get(self, path: str, params: Optional[dict] = None) -> dict:
        """GET one object and return its JSON body."""
        body = self.request("GET", path, params=params).json
        return body if body is not None else {}

    def iter_pages(
        self,
        path: str,
        params: Optional[dict] = None,
        item_key: str = "items",
        offset_paging: bool = False,
    ) -> Iterator[list[dict]]:
        """Yield the items of each page of a list, following Link rel="next" until none.

        With ``offset_paging``, a list that never sends a next link is read with start/max
        offsets (see ``_iter_page_bodies``).
        """
        pages = self._iter_page_bodies(path, params, item_key, offset_paging=offset_paging)
        for _body, items in pages:
            yield items

    def iter_page_contents(
        self,
        path: str,
        params: Optional[dict] = None,
        item_key: str = "items",
        offset_paging: bool = False,
    ) -> Iterator[dict]:
        """Yield each page of a list undecoded, as a dict for ``read_page_content``.

        Paging and retries are those of ``iter_pages``. The JSON body is left for the
        caller to decode, possibly in another process, so the dict contains only bytes,
        strings and numbers. Offset paging needs the items, so those pages are decoded
        here as well.
        """
        responses = self._iter_page_responses(
            path, params, item_key, offset_paging, items_optional=False, decode=offset_paging
        )
        for page_number, (url, response, _items) in enumerate(responses, start=1):
            yield {
                "url": url,
                "page": page_number,
                "status": response.status,
                "headers": {
                    name: response.headers[name]
                    for name in ("Content-Type", "Trackingid")
                    if name in response.headers
                },
                "content": response.content,
            }

    def read_page_content(self, page: Mapping[str, Any], item_key: str = "items") -> list:
        """Decode a page of ``iter_page_contents`` and return its items.

        Raises the WebexApiError that ``iter_pages`` raises for invalid JSON or a page
        without its item list.
        """
        received = _received_response(page["status"], page["headers"], page["content"])
        body = self._parse_json("GET", page["url"], received)
        response = WebexResponse(page["status"], body, received.headers)
        return self._read_page_items(response, page["url"], item_key, page["page"], False)

    def export_state(self) -> dict:
        """Return the counters and tokens that a copy of this client in a child process
        hands back to the parent (see ``import_state``)."""
        return {
            "stats": dict(self.stats),
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "refresh_unconfirmed": self._refresh_unconfirmed,
        }

    def import_state(self, state: Mapping[str, Any], baseline: Mapping[str, Any]) -> None:
        """Take over the work of a copy of this client: add the counters it gathered since
        ``baseline`` (its ``export_state`` when it was copied) and keep a refreshed token."""
        for name, value in state["stats"].items():
            self.stats[name] = self.stats.get(name, 0) + value - baseline["stats"].get(name, 0)
        if state["access_token"] != baseline["access_token"]:
            self.access_token = state["access_token"]
            self.refresh_token = state["refresh_token"]
            self._remember_secrets(self.access_token, self.refresh_token)
        # The copy sent the last request, so its flag shows whether the current token
        # was accepted.
        self._refresh_unconfirmed = state["refresh_unconfirmed"]

    def ensure_access_token(self) -> None:
        """Get an access token with the refresh token now if the client has none yet."""
        if self.access_token is None:
            self._refresh_access_token()

    @property
    def owns_session(self) -> bool:
        """True when the client made its requests session itself (no ``session`` given)."""
        return self._own_session

    def renew_session(self) -> bool:
        """Replace the client's own requests session by a new one with the same settings.

        A forked child calls this so that it never uses a connection that the parent
        opened. Returns False, changing nothing, for a session given by the caller.
        """
        if not self._own_session:
            return False
        self.session = self._new_session()
        return True

    def iter_items(
        self, path: str, params: Optional[dict] = None, item_key: str = "items"
    ) -> Iterator[dict]:
        """Yield every item of a list, one page in memory at a time."""
        for items in self.iter_pages(path, params, item_key):
            yield from items

    # ---- domain helpers ---------------------------------------------------------------------

    def list_licenses(self) -> list[dict]:
        return list(self.iter_items("/licenses", self._org_params()))

    def get_license(self, license_id: str, include_users: bool = False) -> dict:
        """Return one license. With include_users, its ``users`` list is merged from every page."""
        path = "/licenses/" + _quote_id(license_id)
        params = self._org_params()
        if not include_users:
            return self.get(path, params)

        params.update(includeAssignedTo="user", limit=LICENSE_USERS_PAGE_SIZE)
        license_details: Optional[dict] = None
        users: list[dict] = []
        for body, page_users in self._iter_page_bodies(path, params, "users", items_optional=True):
            if license_details is None:
                license_details = dict(body)
            users.extend(page_users)

        license_details = license_details or {}
        license_details["users"] = users
        return license_details

    def get_organization(self, org_id: Optional[str] = None) -> dict:
        """Return an org: org_id, else the client's org_id, else the token's own org."""
        target = org_id or self.org_id
        if not target:
            target = self.get("/people/me").get("orgId")
        if not target:
            raise WebexApiError("the response of GET /people/me has no orgId", "GET", "/people/me")
        return self.get("/organizations/" + _quote_id(target))

    def list_organizations(self) -> list[dict]:
        # No orgId here: the list is every org the token can see, which is what a partner needs.
        return list(self.iter_items("/organizations"))

    def list_roles(self) -> list[dict]:
        return list(self.iter_items("/roles", self._org_params()))

    def iter_people(
        self, max_items: int = PEOPLE_PAGE_SIZE, calling_data: bool = True, **filters: Any
    ) -> Iterator[list[dict]]:
        """Yield pages of people. Filters take API names (displayName) or snake_case names."""
        params = {_camel_case(name): value for name, value in filters.items()}
        params.update(max=max_items, callingData=calling_data)
        params.update(self._org_params())
        return self.iter_pages("/people", params)

    def iter_locations(self) -> Iterator[list[dict]]:
        params = dict(self._org_params(), max=LOCATIONS_PAGE_SIZE)
        return self.iter_pages("/locations", params)

    def iter_workspaces(self) -> Iterator[list[dict]]:
        """Yield pages of workspaces, following Link rel="next" or else start/max offsets."""
        params = dict(self._org_params(), max=WORKSPACES_PAGE_SIZE)
        pages = self._iter_page_bodies("/workspaces", params, "items", offset_paging=True)
        for _body, items in pages:
            yield items

    def get_person(self, person_id: str, calling_data: bool = True) -> dict:
        params = dict(self._org_params(), callingData=calling_data)
        return self.get("/people/" + _quote_id(person_id), params)

    def find_person(self, user: str) -> Optional[dict]:
        """Return the person with this email address or person id, or None if there is none."""
        if "@" in user:
            return self._find_person_by_email(user)

        try:
            return self.get_person(user)
        except WebexApiError as exc:
            if exc.status == 404:
                return None
            raise

    def assign_licenses(
        self,
        person_id: Optional[str] = None,
        email: Optional[str] = None,
        licenses: Any = (),
        site_urls: Any = (),
    ) -> WebexResponse:
        """Send PATCH /licenses/users and return the 200 or 206 (partial) response.

        ``licenses`` items are API objects ({"id", "operation", "properties"}), ``site_urls``
        items are {"siteUrl", "accountType", "operation"}.
        """
        if not person_id and not email:
            raise ValueError("assign_licenses needs person_id or email")
        if not licenses and not site_urls:
            raise ValueError("assign_licenses needs at least one license or site URL change")

        body: dict[str, Any] = {}
        if person_id:
            body["personId"] = person_id
        if email:
            body["email"] = email
        if self.org_id:
            body["orgId"] = self.org_id
        if licenses:
            body["licenses"] = list(licenses)
        if site_urls:
            body["siteUrls"] = list(site_urls)
        return self.request("PATCH", "/licenses/users", json=body)

    # ---- sending and retrying ---------------------------------------------------------------

    def _send_with_retries(
        self, method: str, url: str, query: list, body: Any, decode: bool = True
    ) -> WebexResponse:
        transient_retries = 0
        short_waits = 0
        while True:
            if self.access_token is None:
                self._refresh_access_token()

            try:
                response = self._send(method, url, query, body)
            except requests.exceptions.RequestException as exc:
                self._prepare_retry_after_exception(method, url, exc, transient_retries)
                transient_retries += 1
                continue

            status = response.status_code
            if _retry_after_wait(response):
                requested_wait = self._wait_for_rate_limit(method, url, response, short_waits)
                short_waits = short_waits + 1 if requested_wait < REPEATED_429_MIN_WAIT else 0
                continue

            if method == "GET" and status in GET_RETRY_STATUSES:
                if transient_retries < len(GET_RETRY_DELAYS):
                    self._wait_for_server_error(method, url, response, transient_retries)
                    transient_retries += 1
                    continue

            if status == 401:
                if self._may_refresh():
                    self._refresh_access_token()
                    continue
                raise self._build_auth_error(method, url, response)

            # Any response below 500 other than 401 shows that the token was accepted.
            if status < 500:
                self._refresh_unconfirmed = False

            if 300 <= status < 400:
                raise self._build_redirect_error(method, url, response)

            if status >= 400:
                hint = _retry_hint(transient_retries)
                raise self._build_response_error(method, url, response, hint)

            body = self._parse_json(method, url, response) if decode else None
            return WebexResponse(
                status, body, response.headers, response.links, content=response.content
            )

    def _send(self, method: str, url: str, query: list, body: Any) -> Any:
        headers = {
            "Authorization": f"Bearer {self.access_token}",
            "TrackingID": TRACKING_ID_PREFIX + str(uuid.uuid4()),
        }
        self.stats["requests"] += 1
        return self.session.request(
            method,
            url,
            params=query or None,
            json=body,
            headers=headers,
            timeout=self.timeout,
            verify=self._verify,
            proxies=self._proxies,
            # A redirect could lead the request, and the next ones, to another host; the
            # API does not redirect, so a redirect is reported (see _build_redirect_error).
            allow_redirects=False,
        )

    def _prepare_retry_after_exception(
        self, method: str, url: str, exc: Exception, retries_done: int
    ) -> None:
        """Sleep before retrying after a transport error, or raise it as a WebexApiError."""
        retryable = _is_retryable_exception(method, exc)
        if not retryable or retries_done >= len(GET_RETRY_DELAYS):
            raise self._build_exception_error(method, url, exc, _retry_hint(retries_done)) from None

        delay = _backoff_delay(retries_done)
        if not self._reserve_wait(delay):
            hint = self._budget_hint(delay)
            raise self._build_exception_error(method, url, exc, hint) from None
        self._sleep(delay)

    def _wait_for_rate_limit(
        self, method: str, url: str, response: Any, short_waits: int = 0
    ) -> float:
        """Sleep for the Retry-After time of a 429 (or 423) and return the wait requested.

        A server that keeps responding 429 with Retry-After 0 (or a past date) would be
        requested again at once without end, since such waits never use up max_retry_wait.
        After ``short_waits`` (two or more) waits shorter than REPEATED_429_MIN_WAIT in a
        row on one request, the wait is at least REPEATED_429_MIN_WAIT.
        """
        requested_wait = parse_retry_after(response.headers.get("Retry-After"))
        delay = requested_wait
        if short_waits >= 2:
            delay = max(requested_wait, REPEATED_429_MIN_WAIT)
        self._check_requested_wait(method, url, response, delay)
        if not self._reserve_wait(delay):
            raise self._build_response_error(method, url, response, self._budget_hint(delay))
        self._sleep(delay)
        return requested_wait

    def _wait_for_server_error(
        self, method: str, url: str, response: Any, retries_done: int
    ) -> None:
        delay = _backoff_delay(retries_done)
        if response.status_code == 503 and response.headers.get("Retry-After"):
            delay = parse_retry_after(response.headers.get("Retry-After"))
            self._check_requested_wait(method, url, response, delay)

        if not self._reserve_wait(delay):
            hint = " ".join(filter(None, [self._budget_hint(delay), _retry_hint(retries_done)]))
            raise self._build_response_error(method, url, response, hint)
        self._sleep(delay)

    def _check_requested_wait(self, method: str, url: str, response: Any, delay: float) -> None:
        """Raise at once when Retry-After requests more than what is left of max_retry_wait
        and the capped ``delay`` would use up the rest.

        The retry would then most likely get another 429 or 503, with no time left to wait,
        so waiting first only delays the same error.
        """
        remaining = self.max_retry_wait - self.stats["waited_seconds"]
        requested = parse_retry_after(response.headers.get("Retry-After"), cap=math.inf)
        if requested > remaining and delay >= remaining:
            raise self._build_response_error(
                method, url, response, self._budget_hint(requested)
            )

    def _reserve_wait(self, seconds: float) -> bool:
        """Count a wait against max_retry_wait, or return False when the wait would exceed it."""
        if self.stats["waited_seconds"] + seconds > self.max_retry_wait:
            return False

        self.stats["retries"] += 1
        self.stats["waited_seconds"] += seconds
        return True

    def _budget_hint(self, delay: float) -> str:
        return (
            f"Gave up retrying: waiting another {delay:.1f} s would exceed max_retry_wait "
            f"({self.max_retry_wait:g} s, {self.stats['waited_seconds']:.1f} s already spent "
            "waiting). Raise max_retry_wait or run again later."
        )

    # ---- token refresh ----------------------------------------------------------------------

    def _may_refresh(self) -> bool:
        has_credentials = bool(self.client_id and self.client_secret and self.refresh_token)
        return has_credentials and not self._refresh_unconfirmed

    def _refresh_access_token(self) -> None:
        """Get a new access token with the refresh token (OAuth grant_type=refresh_token).

        Only one refresh happens until a request succeeds with the new token, so a token
        the API keeps rejecting cannot cause a loop of refreshes.
        """
        url = self.api_url + "/access_token"
        form = {
            "grant_type": "refresh_token",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": self.refresh_token,
        }
        self._refresh_unconfirmed = True
        self.stats["refreshes"] += 1
        short_waits = server_errors = 0
        while True:
            try:
                response = self.session.post(
                    url,
                    data=form,
                    headers={"TrackingID": TRACKING_ID_PREFIX + str(uuid.uuid4())},
                    timeout=self.timeout,
                    verify=self._verify,
                    proxies=self._proxies,
                    allow_redirects=False,
                )
            except requests.exceptions.RequestException as exc:
                raise self._build_exception_error("POST", url, exc, None) from None
            # A busy or failing token service is no sign of wrong credentials, so it
            # gets the waits and retries of other requests.
            if _retry_after_wait(response):
                requested_wait = self._wait_for_rate_limit("POST", url, response, short_waits)
                short_waits = short_waits + 1 if requested_wait < REPEATED_429_MIN_WAIT else 0
                continue
            if response.status_code in GET_RETRY_STATUSES and server_errors < len(
                GET_RETRY_DELAYS
            ):
                self._wait_for_server_error("POST", url, response, server_errors)
                server_errors += 1
                continue
            break

        if 300 <= response.status_code < 400:
            raise self._build_redirect_error("POST", url, response)
        if response.status_code in (400, 401):
            raise self._build_refresh_error(url, response)
        if response.status_code != 200:
            hint = (
                "The token service did not answer the refresh, which says nothing about the "
                "credentials. Run again later."
            )
            hint = " ".join(filter(None, [_retry_hint(server_errors), hint]))
            raise self._build_response_error("POST", url, response, hint, WebexAuthError)

        tokens = self._parse_json("POST", url, response)
        new_token = tokens.get("access_token") if isinstance(tokens, dict) else None
        if not isinstance(new_token, str) or not new_token:
            raise WebexAuthError(
                "the token refresh response has no access_token", "POST", _url_path(url), 200
            )

        self.access_token = new_token
        new_refresh_token = tokens.get("refresh_token")
        if isinstance(new_refresh_token, str) and new_refresh_token:
            self.refresh_token = new_refresh_token
        self._remember_secrets(new_token, new_refresh_token)

    # ---- reading responses ------------------------------------------------------------------

    def _parse_json(self, method: str, url: str, response: Any) -> Any:
        if not response.content or response.status_code == 204:
            return None

        try:
            return decode_json(response.content, response.encoding)
        except ValueError:
            raise WebexApiError(
                self._describe_invalid_json(response),
                method,
                _url_path(url),
                response.status_code,
                response.reason,
                tracking_id=response.headers.get("Trackingid"),
                body=self._body_snippet(response),
            ) from None

    def _build_redirect_error(self, method: str, url: str, response: Any) -> WebexApiError:
        location = (response.headers.get("Location") or "").strip()
        if location:
            target = urlsplit(urljoin(url, location))
            target_text = urlunsplit((target.scheme, target.netloc, target.path, "", ""))
            where = f"to {target_text}"
            fix = "for example the one the redirect names if you trust it"
        else:
            where = "without a Location header"
            fix = "the one that the API's documentation gives"
        return WebexApiError(
            f"the server responded with a redirect (HTTP {response.status_code}) {where}, "
            "which the client does not follow, so that the access token reaches no other "
            f"address. Check api_url: it must be the API's own address, {fix}",
            method,
            _url_path(url),
            response.status_code,
            response.reason,
            tracking_id=response.headers.get("Trackingid"),
        )

    def _build_response_error(
        self,
        method: str,
        url: str,
        response: Any,
        hint: Optional[str],
        error_class: type = WebexApiError,
    ) -> WebexApiError:
        try:
            body = decode_json(response.content, response.encoding) if response.content else None
        except ValueError:
            body = None

        if isinstance(body, dict):
            message, error_codes = _read_error_details(body)
            tracking_id = body.get("trackingId")
            tracking_id = tracking_id if isinstance(tracking_id, str) else None
        elif response.content:
            message, error_codes, tracking_id = self._describe_invalid_json(response), [], None
        else:
            message, error_codes, tracking_id = "the response has no body", [], None

        if response.status_code == 403 and not hint:
            hint = (
                "Check that the token has the admin role and scopes this call needs and that "
                "it manages the org (org_id)."
            )
        return error_class(
            self._scrub(message),
            method,
            _url_path(url),
            response.status_code,
            response.reason,
            tracking_id=self._scrub(tracking_id or response.headers.get("Trackingid")),
            error_codes=error_codes,
            body=self._scrub(body) if body is not None else self._body_snippet(response),
            hint=hint,
        )

    def _build_auth_error(self, method: str, url: str, response: Any) -> WebexApiError:
        if self._refresh_unconfirmed:
            hint = (
                "The access token is invalid or expired, and a freshly refreshed token was "
                "rejected too. Check that the integration still has the scopes it needs. "
                + TOKEN_HELP
            )
        else:
            hint = "The access token is invalid or expired. " + TOKEN_HELP
        return self._build_response_error(method, url, response, hint, WebexAuthError)

    def _build_refresh_error(self, url: str, response: Any) -> WebexApiError:
        # Not TOKEN_HELP: it suggests setting the refresh credentials, which are set here.
        hint = (
            "Refreshing the access token failed: the refresh token may be expired or revoked, "
            "or client_id and client_secret (WEBEX_CLIENT_ID, WEBEX_CLIENT_SECRET) may be "
            "wrong. Check them, authorize the integration again to get a new refresh token, "
            "or set access_token to a token from the Webex developer portal "
            "(developer.webex.com)."
        )
        return self._build_response_error("POST", url, response, hint, WebexAuthError)

    def _build_exception_error(
        self, method: str, url: str, exc: Exception, hint: Optional[str]
    ) -> WebexApiError:
        message = self._scrub(self._describe_exception(exc))
        return WebexApiError(message, method, _url_path(url), hint=hint)

    def _describe_exception(self, exc: Exception) -> str:
        reason = _exception_reason(exc)
        exceptions = requests.exceptions
        if isinstance(exc, exceptions.SSLError):
            if not self.validate_certs or not _is_certificate_error(reason):
                # No certificate was judged: the handshake itself failed, most often because
                # the server at that address and port does not speak TLS.
                return (
                    f"TLS handshake failed for {self.api_url}: {reason}. Check that api_url "
                    "uses the scheme and port of the server (https:// for a TLS server)"
                )
            return (
                f"TLS certificate verification failed for {self.api_url}: {reason}. Point the "
                "REQUESTS_CA_BUNDLE environment variable at a CA bundle that trusts the server, "
                "or set validate_certs to false (for tests only)"
            )
        if isinstance(exc, exceptions.ProxyError):
            if self.proxy_url:
                return f"cannot connect through proxy_url: {reason}. Check proxy_url"
            return (
                f"cannot connect through the proxy that the environment names for {self.api_url} "
                f"(HTTPS_PROXY, HTTP_PROXY or ALL_PROXY): {reason}. Check those variables, or "
                "add the API's host to NO_PROXY"
            )
        if isinstance(exc, exceptions.ConnectTimeout):
            return (
                f"timed out connecting to {self.api_url} after {self.timeout:g} s (timeout "
                "option). Check api_url and the network, or raise timeout"
            )
        if isinstance(exc, exceptions.ReadTimeout):
            return (
                f"timed out after {self.timeout:g} s waiting for the response (timeout option). "
                "Raise timeout or try again later"
            )
        if _is_connect_error(exc):
            return f"cannot connect to {self.api_url}: {reason}. Check api_url and the network"
        if isinstance(exc, exceptions.ConnectionError):
            return f"the connection to {self.api_url} failed: {reason}"
        return f"the request failed: {reason}"

    def _describe_invalid_json(self, response: Any) -> str:
        content_type = response.headers.get("Content-Type") or "none"
        snippet = self._body_snippet(response)
        return f'invalid JSON in response (content-type {content_type}): "{snippet}"'

    def _body_snippet(self, response: Any) -> str:
        try:
            text = response.content.decode(response.encoding or "utf-8")
        except (UnicodeDecodeError, LookupError):
            return f"{len(response.content)} bytes of binary data"

        text = re.sub(r"<(script|style)\b.*?</\1\s*>", " ", text, flags=re.IGNORECASE | re.DOTALL)
        text = html.unescape(re.sub(r"<[^>]*>", " ", text))
        text = " ".join(text.split())
        return self._scrub(text[:BODY_SNIPPET_LENGTH])

    # ---- secrets ----------------------------------------------------------------------------

    def _remember_secrets(self, *values: Optional[str]) -> None:
        for value in values:
            if isinstance(value, str) and value:
                self._secrets.add(value)
                # Error texts of other libraries may show a value as Python writes it in
                # source code, with escapes such as \n, so that form is masked too.
                escaped = repr(value)[1:-1]
                if escaped != value:
                    self._secrets.add(escaped)

    def _scrub(self, value: Any) -> Any:
        """Return value with every known secret masked, in strings nested at any depth."""
        if isinstance(value, str):
            for secret in sorted(self._secrets, key=len, reverse=True):
                value = value.replace(secret, SECRET_MASK)
            return value
        if isinstance(value, dict):
            return {key: self._scrub(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._scrub(item) for item in value]
        return value

    # ---- URLs and paging --------------------------------------------------------------------

    def org_params(self) -> dict:
        """Return the orgId query parameter of the client's org ({} for the token's org)."""
        return {"orgId": self.org_id} if self.org_id else {}

    _org_params = org_params

    def _build_url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return self._rebase_url(path)
        return self.api_url + "/" + path.lstrip("/")

    def _rebase_url(self, url: str) -> str:
        """Move an absolute URL onto api_url's scheme and host, so the token goes nowhere else.

        NOTE: only the scheme and host change. A link whose path lacks api_url's path prefix
        (a reverse proxy under /webex/v1, say) keeps its own path.
        """
        base = urlsplit(self.api_url)
        parts = urlsplit(url)
        if (parts.scheme.lower(), parts.netloc.lower()) == (base.scheme, base.netloc.lower()):
            return url
        return urlunsplit((base.scheme, base.netloc, parts.path, parts.query, ""))

    def _find_person_by_email(self, email: str) -> Optional[dict]:
        # Only a person who has the address counts: a license change must never reach
        # another person that the filter happened to return.
        params = dict(self._org_params(), email=email, callingData=True)
        for person in self.iter_items("/people", params):
            emails = [address.lower() for address in person.get("emails") or []]
            if email.lower() in emails:
                return person
        return None

    def _iter_page_bodies(
        self,
        path: str,
        params: Optional[dict],
        item_key: str,
        offset_paging: bool = False,
        items_optional: bool = False,
    ) -> Iterator[tuple[dict, list]]:
        """Yield (body, items) for each page, following Link rel="next".

        With offset_paging, a page with items but without a next link is followed by a
        request with start set to the number of items read so far, unless an earlier page
        had a next link. An empty page ends the list. A next link that repeats a fetched
        URL, a page without the item list, or an offset page that starts with an item
        already seen raises WebexApiError instead of looping.
        """
        responses = self._iter_page_responses(
            path, params, item_key, offset_paging, items_optional, decode=True
        )
        for _url, response, items in responses:
            yield response.json, items

    def _iter_page_responses(
        self,
        path: str,
        params: Optional[dict],
        item_key: str,
        offset_paging: bool,
        items_optional: bool,
        decode: bool,
    ) -> Iterator[tuple[str, WebexResponse, Optional[list]]]:
        """Yield (url, response, items) for each page (see ``_iter_page_bodies``).

        Without ``decode`` the response keeps its undecoded content and items is None.
        """
        first_url = self._build_url(path)
        first_query = _encode_params(params)
        page_size = _page_size(first_query)
        url, query = first_url, first_query
        fetched_urls = set()
        first_item_ids = set()
        items_read = 0
        linked = False

        previous_ids: tuple = ()
        for page_number in itertools.count(1):
            fetched_urls.add(_canonical_url(url, query))
            response = self._send_with_retries("GET", url, query, None, decode=decode)
            items = None
            if decode:
                items = self._read_page_items(response, url, item_key, page_number, items_optional)
                if offset_paging:
                    _check_offset_page_is_new(items, first_item_ids, url, page_number)
                previous_ids = check_page_is_new(previous_ids, items, url, page_number)
                items_read += len(items)
            yield url, response, items

            next_url = self._next_link_url(response, _page_url(url, query), first_query)
            linked = linked or next_url is not None
            # An API that sent a next link on an earlier page marks the last page by its
            # absence, so offsets are only a fallback for lists that never link. There only
            # an empty page ends the list, because a server may return fewer items than the
            # max parameter requests (its own page limit).
            if (
                next_url is None
                and offset_paging
                and not linked
                and page_size
                and items
            ):
                next_url = _offset_page_url(first_url, first_query, items_read)
            if next_url is None:
                return

            if _canonical_url(next_url, []) in fetched_urls:
                raise WebexApiError(
                    f"page {page_number} links to a page that was already fetched "
                    f"({_url_path(next_url)}), so paging stopped to avoid a loop",
                    "GET",
                    _url_path(first_url),
                    response.status,
                    tracking_id=response.tracking_id,
                )
            url, query = next_url, []

    def _read_page_items(
        self, response: WebexResponse, url: str, item_key: str, page_number: int, optional: bool
    ) -> list:
        body = response.json
        if isinstance(body, dict) and item_key not in body and optional:
            return []

        if not isinstance(body, dict) or item_key not in body:
            if isinstance(body, dict):
                found = f"keys: {', '.join(sorted(body)) or 'none'}"
            else:
                found = "an empty body" if body is None else _json_type(body)
            message = f"page {page_number} of the list has no '{item_key}' key (found {found})"
        elif not isinstance(body[item_key], list):
            message = (
                f"page {page_number} of the list has '{item_key}' of type "
                f"{type(body[item_key]).__name__}, expected a list"
            )
        else:
            items = body[item_key]
            position = next(
                (index for index, item in enumerate(items) if not isinstance(item, dict)), None
            )
            if position is None:
                return items
            message = (
                f"item {position + 1} of page {page_number} of the list is "
                f"{_json_type(items[position])}, not an object"
            )

        tracking_id = body.get("trackingId") if isinstance(body, dict) else None
        if not isinstance(tracking_id, str):
            tracking_id = response.tracking_id
        raise WebexApiError(
            message, "GET", _url_path(url), response.status, tracking_id=tracking_id
        )

    def _next_link_url(
        self, response: WebexResponse, page_url: str, first_query: list
    ) -> Optional[str]:
        """Return the repaired rel="next" URL of a page, or None on the last page.

        A relative link is resolved against ``page_url``, the URL of the page (RFC 3986).
        The API has sent next links with max=null and links that dropped filters of the
        first request. max=null is removed and dropped parameters are added back.
        """
        link = next_link_target(response.headers)
        if not link:
            return None

        url = self._rebase_url(urljoin(page_url, link))
        parts = urlsplit(url)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        kept = [(key, value) for key, value in pairs if not (key == "max" and value == "null")]
        present = {key for key, _value in kept}
        missing = [
            (key, value)
            for key, value in first_query
            if key not in present and key not in PAGE_POSITION_PARAMS
        ]
        if len(kept) == len(pairs) and not missing:
            return url
        return urlunsplit(parts._replace(query=urlencode(kept + missing)))


def next_link_target(headers: Mapping[str, str]) -> Optional[str]:
    """Return the target of the Link header's next relation, or None.

    A link may carry several relation types in one rel ("next last"), and relation types
    compare without case (RFC 8288), so a plain lookup of rel "next" is not enough.
    """
    value = headers.get("Link") if headers is not None else None
    if not value:
        return None
    for target, parameters in parse_link_header(value):
        relations = (parameters.get("rel") or "").lower().split()
        if "next" in relations and target:
            return target
    return None


_LINK_TOKEN = re.compile(r'\s*(?:<([^>]*)>|"((?:[^"\\]|\\.)*)"|([^,;="<\s]+)|([,;=]))')


def parse_link_header(value: str) -> list:
    """Return ``[(target, {parameter: value})]`` of a Link header (RFC 8288).

    Parameter names are lower case; a parameter without a value maps to "". Quoted values
    may contain commas and semicolons, and unknown parameters (``title``, a bare
    ``crossorigin``) do not hide the ones after them. The first occurrence of a
    parameter wins, as RFC 8288 specifies for ``rel``.
    """
    links: list = []
    target: Optional[str] = None
    parameters: dict = {}
    name: Optional[str] = None
    expect_value = False
    for match in _LINK_TOKEN.finditer(value):
        uri, quoted, word, separator = match.groups()
        if uri is not None:
            if target is not None:
                links.append((target, parameters))
            target, parameters, name, expect_value = uri.strip(), {}, None, False
        elif separator == ",":
            if target is not None:
                links.append((target, parameters))
            target, parameters, name, expect_value = None, {}, None, False
        elif separator == ";":
            name, expect_value = None, False
        elif separator == "=":
            expect_value = name is not None
        elif target is None:
            continue
        elif expect_value and name is not None:
            text = quoted if quoted is not None else word
            if quoted is not None:
                text = re.sub(r"\\(.)", r"\1", quoted)
            if parameters.get(name) == "":
                parameters[name] = text
            expect_value = False
        elif word is not None:
            name = word.lower()
            parameters.setdefault(name, "")
    if target is not None:
        links.append((target, parameters))
    return links


def check_page_is_new(previous_ids: tuple, items: list, url: str, page_number: int) -> tuple:
    """Return the ids of a page's items; raise WebexApiError when they repeat the page before.

    A server that ignores the paging position sends new next links with the same items
    again; without this check the paging would never end.
    """
    return check_ids_are_new(
        previous_ids, tuple(item.get("id") for item in items), url, page_number
    )


def check_ids_are_new(previous_ids: tuple, ids: tuple, url: str, page_number: int) -> tuple:
    """Check the ids of a page's items as ``check_page_is_new`` does, then return them."""
    if ids and ids == previous_ids:
        raise WebexApiError(
            f"page {page_number} of the list repeats every item of page {page_number - 1}: "
            "the API ignored the paging position in the next link, so paging stopped to "
            "avoid a loop. Run again later, and report this to Webex support if it repeats",
            "GET",
            _url_path(url),
        )
    return ids


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    names = {bool: "a boolean", str: "a string", int: "a number", float: "a number",
             list: "a list"}
    return names.get(type(value), type(value).__name__)


def _page_url(url: str, query: list) -> str:
    """Return the URL that a page request went to: ``url`` with ``query`` encoded."""
    if not query:
        return url
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True) + list(query)
    return urlunsplit(parts._replace(query=urlencode(pairs)))


def decode_json(content: bytes, charset: Optional[str] = None) -> Any:
    """Decode a JSON body from its bytes.

    JSON travels as UTF-8 (RFC 8259; UTF-16 and UTF-32 are recognised too). So the charset
    of Content-Type is used only for a body that is not valid Unicode. Otherwise a server
    that labels a UTF-8 body ISO-8859-1 would garble every non-ASCII name. A byte order
    mark is skipped. Raises ValueError for a body that is not JSON.
    """
    try:
        return jsonlib.loads(content)
    except UnicodeDecodeError:
        pass
    try:
        text = content.decode(charset or "latin-1")
    except (LookupError, UnicodeDecodeError):
        text = content.decode("latin-1")
    return jsonlib.loads(text)


def _retry_after_wait(response: Any) -> bool:
    """Tell whether a response requests a wait before the same request is sent again.

    A 429 always does (without Retry-After the client waits DEFAULT_RETRY_AFTER). A 423
    (Locked: the resource is busy for a while) does when it has a Retry-After header. The
    server did not carry out the request, so sending it again is safe for a change too.
    """
    status = response.status_code
    return status == 429 or (status == 423 and bool(response.headers.get("Retry-After")))


def _session_headers() -> dict:
    return {
        "Accept": "application/json",
        "User-Agent": USER_AGENT_PREFIX + f" (python-requests/{requests.__version__})",
    }


def _received_response(status: int, headers: Mapping[str, str], content: bytes) -> Any:
    """Return a requests Response for a page of ``iter_page_contents``, so that the page is
    decoded exactly as ``iter_pages`` decodes it."""
    response = requests.models.Response()
    response.status_code = status
    response.headers = requests.structures.CaseInsensitiveDict(headers)
    response.encoding = requests.utils.get_encoding_from_headers(response.headers)
    try:
        response.reason = HTTPStatus(status).phrase
    except ValueError:
        response.reason = None
    response._content = content
    response._content_consumed = True
    return response


def validate_api_url(api_url: str) -> str:
    """Return api_url without a trailing slash, or raise ValueError if it is no http(s) URL."""
    example = f"for example {DEFAULT_API_URL}"
    if not isinstance(api_url, str) or not api_url.strip():
        raise ValueError(f"api_url is empty. Set it to the Webex API base URL, {example}")

    value = api_url.strip()
    try:
        parts = urlsplit(value)
        host, _port = parts.hostname, parts.port  # .port raises ValueError on a bad port
    except ValueError:
        raise ValueError(
            f"invalid api_url '{value}': bad host or port. Use a URL {example}"
        ) from None

    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(
            f"invalid api_url '{value}': it must start with https:// or http://, {example}"
        )
    if not host:
        raise ValueError(f"invalid api_url '{value}': it has no host name. Use a URL {example}")
    if parts.query or parts.fragment:
        raise ValueError(
            f"invalid api_url '{value}': it must not contain a query string or fragment, {example}"
        )
    if parts.username or parts.password:
        raise ValueError(
            "invalid api_url: it must not contain a user name or password. Pass the token in "
            "access_token"
        )
    return value.rstrip("/")


def parse_retry_after(
    value: Optional[str], now: Optional[float] = None, cap: float = MAX_RETRY_AFTER
) -> float:
    """Return the wait in seconds for a Retry-After header (seconds or an HTTP-date).

    A missing or unreadable value gives DEFAULT_RETRY_AFTER, a date in the past gives 0,
    and any value is capped at ``cap``.
    """
    if value is None or not value.strip():
        return DEFAULT_RETRY_AFTER

    text = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return min(float(text), cap)

    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return DEFAULT_RETRY_AFTER
    if moment is None:
        return DEFAULT_RETRY_AFTER
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)

    current = datetime.fromtimestamp(time.time() if now is None else now, timezone.utc)
    seconds = (moment - current).total_seconds()
    return min(max(seconds, 0.0), cap)


def _validate_seconds(name: str, value: Any, allow_zero: bool) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of seconds, got {value!r}") from None

    if seconds < 0 or (seconds == 0 and not allow_zero) or math.isnan(seconds):
        bound = "zero or more" if allow_zero else "more than zero"
        raise ValueError(f"{name} must be {bound} seconds, got {value!r}")
    if math.isinf(seconds):
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
    return seconds


def _validate_proxy_url(proxy_url: Optional[str]) -> Optional[str]:
    if not proxy_url:
        return None

    try:
        parts = urlsplit(proxy_url)
        scheme, host = parts.scheme, parts.hostname
    except ValueError:
        scheme, host = "", None
    if not scheme or not host:
        raise ValueError(
            "proxy_url is not a valid URL: it needs a scheme and a host, for example "
            "http://proxy.example.com:3128"
        )
    return proxy_url


# Bearer token characters that an HTTP header value can carry: visible ASCII.
_HEADER_TOKEN = re.compile(r"[\x21-\x7e]+")


def _clean_credential(name: str, value: Optional[str], header: bool = False) -> Optional[str]:
    """Return a credential without surrounding white space; None when it is empty.

    A token read from a file or a YAML block often ends in a line break, which no HTTP
    header can carry. With ``header``, a value with a space, a control character or a
    non-ASCII character inside it is refused. Messages never show the value.
    """
    if value is None:
        return None
    value = value.strip()
    if header and value and not _HEADER_TOKEN.fullmatch(value):
        raise ValueError(
            f"invalid {name}: it contains a space, a line break, a control character or a "
            "non-ASCII character inside the token, which an HTTP header cannot carry. Copy "
            "the token again, without anything around it (the value is not shown here)"
        )
    return value or None


def _validate_credentials(
    access_token: Optional[str],
    client_id: Optional[str],
    client_secret: Optional[str],
    refresh_token: Optional[str],
) -> None:
    refresh_options = {
        "client_id (WEBEX_CLIENT_ID)": client_id,
        "client_secret (WEBEX_CLIENT_SECRET)": client_secret,
        "refresh_token (WEBEX_REFRESH_TOKEN)": refresh_token,
    }
    missing = [name for name, value in refresh_options.items() if not value]
    if len(missing) == len(refresh_options):
        if not access_token:
            raise ValueError(
                "missing access_token: set the access_token option or the WEBEX_ACCESS_TOKEN "
                "environment variable, or set client_id, client_secret and refresh_token "
                "(WEBEX_CLIENT_ID, WEBEX_CLIENT_SECRET, WEBEX_REFRESH_TOKEN) to get a token "
                "by refresh"
            )
        return

    if missing:
        raise ValueError(
            "client_id, client_secret and refresh_token are needed together to refresh the "
            "access token; missing: " + ", ".join(missing)
        )


def _proxy_password(proxy_url: Optional[str]) -> Optional[str]:
    try:
        return urlsplit(proxy_url).password if proxy_url else None
    except ValueError:
        return None


def _default_if_none(value: Any, default: Any) -> Any:
    return default if value is None else value


def _encode_params(params: Optional[dict]) -> list:
    """Return query pairs: None dropped, booleans as true/false, lists comma-separated."""
    pairs = []
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            value = ",".join(str(item) for item in value)
        pairs.append((key, str(value)))
    return pairs


def _camel_case(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def _quote_id(value: str) -> str:
    return quote(str(value), safe="")


def _is_certificate_error(reason: str) -> bool:
    """Tell whether an SSLError text is about the server's certificate (OpenSSL writes
    "certificate verify failed", and a host name mismatch names the certificate)."""
    text = reason.lower()
    return "certificate" in text or "hostname" in text


def _url_path(url: str) -> str:
    """Return the path of a URL, without scheme, host or query string."""
    return urlsplit(url).path or "/"


def _canonical_url(url: str, query: list) -> tuple:
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True) + list(query)
    return (parts.scheme.lower(), parts.netloc.lower(), parts.path, tuple(sorted(pairs)))


def _page_size(query: list) -> Optional[int]:
    for key, value in query:
        if key == "max" and value.isdigit():
            return int(value)
    return None


def _offset_page_url(first_url: str, first_query: list, start: int) -> str:
    query = [(key, value) for key, value in first_query if key != "start"]
    query.append(("start", str(start)))
    return first_url + "?" + urlencode(query)


def _check_offset_page_is_new(items: list, first_item_ids: set, url: str, page_number: int) -> None:
    """Raise when an offset page starts with an item seen before (the API ignored start)."""
    if not items or not isinstance(items[0], dict) or "id" not in items[0]:
        return

    item_id = items[0]["id"]
    if item_id in first_item_ids:
        raise WebexApiError(
            f"page {page_number} starts with item {item_id} again: the API ignored the start "
            "offset, so paging stopped to avoid a loop",
            "GET",
            _url_path(url),
        )
    first_item_ids.add(item_id)


def _read_error_details(body: dict) -> tuple[str, list[int]]:
    """Return the message and error codes of a Webex error body."""
    message = body.get("message") if isinstance(body.get("message"), str) else ""
    errors = body.get("errors") if isinstance(body.get("errors"), list) else []
    details = [error for error in errors if isinstance(error, dict)]

    descriptions = []
    for error in details:
        description = error.get("description")
        if isinstance(description, str) and description and description != message:
            if description not in descriptions:
                descriptions.append(description)

    codes = [_as_int(error.get("errorCode")) for error in details]
    codes.append(_as_int(body.get("errorCode")))
    error_codes = [code for code in dict.fromkeys(codes) if code is not None]

    parts = [text for text in [message] + descriptions if text]
    return ": ".join(parts) or "the error response has no message", error_codes


def _as_int(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _is_connect_error(exc: Exception) -> bool:
    """Return whether the connection failed before any byte of the request was sent."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if not isinstance(exc, requests.exceptions.ConnectionError):
        return False
    if isinstance(exc, (requests.exceptions.SSLError, requests.exceptions.ProxyError)):
        return False
    return isinstance(getattr(_first_arg(exc), "reason", None), NewConnectionError)


def _is_retryable_exception(method: str, exc: Exception) -> bool:
    """GETs are retried on transport errors, other methods only when nothing was sent."""
    exceptions = requests.exceptions
    if isinstance(exc, (exceptions.SSLError, exceptions.InvalidURL, exceptions.InvalidHeader)):
        return False
    if _is_connect_error(exc):
        return True
    if method != "GET":
        return False
    transport_errors = (
        exceptions.ConnectionError,
        exceptions.Timeout,
        exceptions.ChunkedEncodingError,
    )
    return isinstance(exc, transport_errors)


def _exception_reason(exc: Exception) -> str:
    """Return the underlying error text without urllib3's pool and object prefixes."""
    cause = _first_arg(exc)
    reason = getattr(cause, "reason", None) or cause or exc
    text = str(reason)
    text = re.sub(r"^\w+\(host='[^']*', port=\d+\):\s*", "", text)
    text = re.sub(r"<[\w.]+ object at 0x[0-9a-f]+>:\s*", "", text)
    return text or type(exc).__name__


def _first_arg(exc: Exception) -> Any:
    return exc.args[0] if exc.args else None


def _backoff_delay(retries_done: int) -> float:
    base = GET_RETRY_DELAYS[min(retries_done, len(GET_RETRY_DELAYS) - 1)]
    return base * (1 + random.uniform(0, RETRY_JITTER))


def _retry_hint(retries_done: int) -> Optional[str]:
    if retries_done == 0:
        return None
    return f"Gave up after {retries_done} {'retry' if retries_done == 1 else 'retries'}."


def _end_sentence(text: str) -> str:
    text = text.strip()
    if not text or text[-1] in ".!?\"'":
        return text
    return text + "."
