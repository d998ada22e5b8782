"""Unit tests of the Webex HTTP client against replayed HTTP exchanges.

A transport adapter mounted on the client's requests.Session serves a queue of expected
exchanges: each request must match the next exchange exactly, and every queued exchange
must be consumed by the end of the test. Nothing leaves the process, except in the test
that connects to a closed port on 127.0.0.1.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections import deque
from email.utils import formatdate
from http.client import responses as http_reasons
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from ansible_collections.ucops.webex.plugins.module_utils import webex_api
from ansible_collections.ucops.webex.plugins.module_utils.webex_api import (
    DEFAULT_API_URL,
    SECRET_MASK,
    WebexApiError,
    WebexAuthError,
    WebexClient,
    check_page_is_new,
    converted_collection_options,
    parse_retry_after,
    webex_argument_spec,
)

API_URL = "https://127.0.0.1:9443/v1"
TOKEN = "tok-SECRET-access-4711"
NEW_TOKEN = "tok-SECRET-refreshed-0815"
CLIENT_SECRET = "client-SECRET-42"
REFRESH_TOKEN = "refresh-SECRET-99"


class ReplayAdapter(BaseAdapter):
    """Serve queued exchanges in order and record every request with its send options."""

    def __init__(self):
        super().__init__()
        self.queue = deque()
        self.sent = []

    def expect(self, method, url, query=None, status=200, body=None, headers=None, raises=None):
        """Queue one exchange. ``url`` is relative to API_URL or absolute; ``body`` is JSON
        unless it is bytes or str, which are sent as given."""
        if not url.startswith(("http://", "https://")):
            url = API_URL + url
        self.queue.append(
            dict(
                method=method,
                url=url,
                query=query or {},
                status=status,
                body=body,
                headers=headers or {},
                raises=raises,
            )
        )

    def send(self, request, **options):
        assert self.queue, f"unexpected request {request.method} {request.url}"
        exchange = self.queue.popleft()
        self.sent.append((request, options))

        parts = urlsplit(request.url)
        expected = urlsplit(exchange["url"])
        assert request.method == exchange["method"]
        assert (parts.scheme, parts.netloc, parts.path) == (
            expected.scheme,
            expected.netloc,
            expected.path,
        )
        assert sorted(parse_qsl(parts.query, keep_blank_values=True)) == sorted(
            exchange["query"].items()
        )

        if exchange["raises"] is not None:
            raise exchange["raises"]
        return build_response(request, exchange)

    def close(self):
        pass


def build_response(request, exchange):
    response = requests.Response()
    response.status_code = exchange["status"]
    response.reason = http_reasons.get(exchange["status"], "")
    response.headers = CaseInsensitiveDict(exchange["headers"])
    response.url = request.url
    response.request = request
    response.encoding = "utf-8"

    body = exchange["body"]
    if body is None:
        response._content = b""
    elif isinstance(body, bytes):
        response._content = body
    elif isinstance(body, str):
        response._content = body.encode("utf-8")
    else:
        response._content = json.dumps(body).encode("utf-8")
        response.headers.setdefault("Content-Type", "application/json")
    return response


@pytest.fixture
def replay():
    adapter = ReplayAdapter()
    yield adapter
    assert not adapter.queue, f"exchanges not consumed: {list(adapter.queue)}"


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def make_client(replay, sleeps):
    def make(**options):
        session = requests.Session()
        session.mount("https://", replay)
        session.mount("http://", replay)
        options.setdefault("api_url", API_URL)
        options.setdefault("access_token", TOKEN)
        return WebexClient(sleep=sleeps.append, session=session, **options)

    return make


@pytest.fixture
def client(make_client):
    return make_client()


def next_link(url):
    return {"Link": f'<{url}>; rel="next"'}


def error_body(message, description=None, tracking_id="ROUTER_TEST-1", codes=()):
    errors = [{"description": description or message}]
    for code in codes:
        errors.append({"description": description or message, "errorCode": code})
    return {"message": message, "errors": errors, "trackingId": tracking_id}


def sent_url(replay, index):
    return replay.sent[index][0].url


def sent_header(replay, index, name):
    return replay.sent[index][0].headers.get(name)


# ---- options and construction ---------------------------------------------------------------


def test_argument_spec_options():
    spec = webex_argument_spec()

    assert set(spec) == {
        "api_url",
        "access_token",
        "client_id",
        "client_secret",
        "refresh_token",
        "org_id",
        "validate_certs",
        "timeout",
        "proxy_url",
        "max_retry_wait",
    }
    assert spec["api_url"]["default"] == DEFAULT_API_URL
    assert spec["validate_certs"] == dict(
        type="bool", default=True, fallback=spec["validate_certs"]["fallback"]
    )
    assert spec["timeout"]["type"] == "float"
    assert spec["timeout"]["default"] == 30
    assert spec["max_retry_wait"]["type"] == "float"
    assert spec["max_retry_wait"]["default"] == 300
    for secret in ("access_token", "client_id", "client_secret", "refresh_token"):
        assert spec[secret]["no_log"] is True
    assert spec is not webex_argument_spec()


@pytest.mark.parametrize(
    "option, variable",
    [
        ("api_url", "WEBEX_API_URL"),
        ("access_token", "WEBEX_ACCESS_TOKEN"),
        ("client_id", "WEBEX_CLIENT_ID"),
        ("client_secret", "WEBEX_CLIENT_SECRET"),
        ("refresh_token", "WEBEX_REFRESH_TOKEN"),
        ("org_id", "WEBEX_ORG_ID"),
        ("validate_certs", "WEBEX_VALIDATE_CERTS"),
    ],
)
def test_argument_spec_env_fallback(option, variable, monkeypatch):
    function, variables = webex_argument_spec()[option]["fallback"]
    monkeypatch.setenv(variable, "from-env")

    assert variables == [variable]
    assert function(*variables) == "from-env"


def test_argument_spec_validates_env(monkeypatch):
    monkeypatch.setenv("WEBEX_VALIDATE_CERTS", "false")
    monkeypatch.setenv("WEBEX_ACCESS_TOKEN", TOKEN)
    validator = ArgumentSpecValidator(webex_argument_spec())

    result = validator.validate({"timeout": "12"})

    assert result.errors.errors == []
    assert result.validated_parameters["validate_certs"] is False
    assert result.validated_parameters["access_token"] == TOKEN
    assert result.validated_parameters["timeout"] == 12.0
    assert result.validated_parameters["api_url"] == DEFAULT_API_URL
    assert TOKEN in result._no_log_values


@pytest.mark.parametrize(
    "api_url, expected_words",
    [
        ("webexapis.com/v1", "must start with https://"),
        ("ftp://webexapis.com/v1", "must start with https://"),
        ("https://", "has no host name"),
        ("https:///v1", "has no host name"),
        ("", "api_url is empty"),
        ("   ", "api_url is empty"),
        ("https://webexapis.com:port/v1", "bad host or port"),
        ("https://webexapis.com/v1?orgId=x", "must not contain a query string"),
        ("https://user:secret@webexapis.com/v1", "must not contain a user name or password"),
    ],
)
def test_invalid_api_url_rejected(api_url, expected_words):
    with pytest.raises(ValueError) as raised:
        WebexClient(api_url, access_token=TOKEN)

    assert expected_words in str(raised.value)
    assert "secret" not in str(raised.value)


def test_invalid_api_url_message_shows_fix():
    with pytest.raises(ValueError) as raised:
        WebexClient("webexapis.com/v1", access_token=TOKEN)

    assert "'webexapis.com/v1'" in str(raised.value)
    assert "for example https://webexapis.com/v1" in str(raised.value)


def test_api_url_trailing_slash_removed():
    client = WebexClient("http://127.0.0.1:8080/v1/", access_token=TOKEN)

    assert client.api_url == "http://127.0.0.1:8080/v1"


def test_api_url_none_uses_default():
    assert WebexClient(None, access_token=TOKEN).api_url == DEFAULT_API_URL


def test_missing_token_names_option_and_variable():
    with pytest.raises(ValueError) as raised:
        WebexClient(API_URL)

    message = str(raised.value)
    assert "missing access_token" in message
    assert "WEBEX_ACCESS_TOKEN" in message
    assert "refresh_token" in message


def test_white_space_around_credentials_removed():
    client = WebexClient(API_URL, access_token=f"\t{TOKEN}\n", client_id=" id ",
                         client_secret="secret\r\n", refresh_token=f"{REFRESH_TOKEN}\n")

    assert client.access_token == TOKEN
    assert (client.client_id, client.client_secret) == ("id", "secret")
    assert client.refresh_token == REFRESH_TOKEN


@pytest.mark.parametrize("token", [
    "abc\ndef", "abc def", "abc\tdef", "abc\u20acdef", "abc\x00def",
])
def test_token_a_header_cannot_carry_refused(token):
    with pytest.raises(ValueError) as raised:
        WebexClient(API_URL, access_token=token)

    message = str(raised.value)
    assert message.startswith("invalid access_token (WEBEX_ACCESS_TOKEN): it contains a space")
    assert "abc" not in message
    assert "def" not in message


def test_blank_token_counts_as_missing():
    with pytest.raises(ValueError, match="missing access_token"):
        WebexClient(API_URL, access_token=" \n")


def test_blank_credential_is_no_secret():
    client = WebexClient(API_URL, access_token="  ", client_id="id",
                         client_secret=CLIENT_SECRET, refresh_token=REFRESH_TOKEN)

    assert client._scrub("timed out after  30 s") == "timed out after  30 s"


def test_escaped_form_of_secret_masked():
    client = WebexClient(API_URL, access_token=TOKEN, client_id="id",
                         client_secret="line\nbreak", refresh_token=REFRESH_TOKEN)

    assert client._scrub("value 'line\\nbreak' shown") == f"value '{SECRET_MASK}' shown"
    assert client._scrub("raw line\nbreak") == f"raw {SECRET_MASK}"


def test_partial_refresh_credentials_rejected():
    with pytest.raises(ValueError) as raised:
        WebexClient(API_URL, access_token=TOKEN, client_id="id", refresh_token=REFRESH_TOKEN)

    assert "missing: client_secret (WEBEX_CLIENT_SECRET)" in str(raised.value)
    assert REFRESH_TOKEN not in str(raised.value)


@pytest.mark.parametrize(
    "options, expected_words",
    [
        ({"timeout": 0}, "timeout must be more than zero seconds"),
        ({"timeout": "soon"}, "timeout must be a number of seconds"),
        ({"timeout": "inf"}, "timeout must be a finite number of seconds, got 'inf'"),
        ({"max_retry_wait": float("inf")}, "max_retry_wait must be a finite number"),
        ({"max_retry_wait": -1}, "max_retry_wait must be zero or more seconds"),
        ({"proxy_url": "proxy.example.com"}, "proxy_url is not a valid URL"),
    ],
)
def test_invalid_numbers_and_proxy_rejected(options, expected_words):
    with pytest.raises(ValueError) as raised:
        WebexClient(API_URL, access_token=TOKEN, **options)

    assert expected_words in str(raised.value)


class FakeModule:
    def __init__(self, params):
        self.params = params
        self.failure = None

    def fail_json(self, **result):
        self.failure = result
        raise SystemExit(1)


def module_params(**overrides):
    params = {name: spec.get("default") for name, spec in webex_argument_spec().items()}
    params["access_token"] = TOKEN
    params.update(overrides)
    return params


def test_from_module_builds_client():
    module = FakeModule(module_params(api_url=API_URL, org_id="ORG-1", timeout=12.5))

    client = WebexClient.from_module(module)

    assert client.api_url == API_URL
    assert client.org_id == "ORG-1"
    assert client.timeout == 12.5
    assert client.max_retry_wait == 300
    assert client.validate_certs is True


def test_from_module_rejects_zero_timeout():
    module = FakeModule(module_params(api_url=API_URL, timeout=0))

    with pytest.raises(SystemExit):
        WebexClient.from_module(module)

    assert "timeout must be more than zero seconds, got 0" in module.failure["msg"]


def test_from_module_fails_on_bad_api_url():
    module = FakeModule(module_params(api_url="webexapis.com/v1"))

    with pytest.raises(SystemExit):
        WebexClient.from_module(module)

    assert (
        "invalid api_url 'webexapis.com/v1': it must start with https://" in module.failure["msg"]
    )


# ---- headers and session ---------------------------------------------------------------------


def test_request_headers(client, replay):
    replay.expect("GET", "/people/me", body={"id": "P1"})
    replay.expect("GET", "/people/me", body={"id": "P1"})

    client.get("/people/me")
    client.get("/people/me")

    assert sent_header(replay, 0, "Authorization") == f"Bearer {TOKEN}"
    assert sent_header(replay, 0, "Accept") == "application/json"
    assert "ucops.webex" in sent_header(replay, 0, "User-Agent")
    first_id = sent_header(replay, 0, "TrackingID")
    second_id = sent_header(replay, 1, "TrackingID")
    assert first_id.startswith("UCOPS_")
    assert uuid.UUID(first_id[len("UCOPS_") :]).version == 4
    assert first_id != second_id


def test_one_session_and_send_options(make_client, replay):
    client = make_client(timeout=7.5, validate_certs=False, proxy_url="http://127.0.0.1:3128")
    session = client.session
    replay.expect("GET", "/roles", body={"items": []})
    replay.expect("GET", "/roles", body={"items": []})

    client.list_roles()
    client.list_roles()

    assert client.session is session
    for _request, options in replay.sent:
        assert options["timeout"] == 7.5
        assert options["verify"] is False
        assert options["proxies"]["https"] == "http://127.0.0.1:3128"


def test_stats_count_requests(client, replay):
    replay.expect("GET", "/licenses", body={"items": [{"id": "L1"}]})

    client.list_licenses()

    assert client.stats == {"requests": 1, "retries": 0, "waited_seconds": 0.0, "refreshes": 0}


# ---- paging ----------------------------------------------------------------------------------


def test_paging_follows_three_pages(client, replay):
    replay.expect(
        "GET",
        "/people",
        query={"max": "2", "callingData": "true"},
        body={"items": [{"id": "a"}, {"id": "b"}]},
        headers=next_link(f"{API_URL}/people?max=2&callingData=true&after=c2"),
    )
    replay.expect(
        "GET",
        "/people",
        query={"max": "2", "callingData": "true", "after": "c2"},
        body={"items": [{"id": "c"}, {"id": "d"}]},
        headers=next_link(f"{API_URL}/people?max=2&callingData=true&after=c4"),
    )
    replay.expect(
        "GET",
        "/people",
        query={"max": "2", "callingData": "true", "after": "c4"},
        body={"items": [{"id": "e"}]},
    )

    pages = list(client.iter_people(max_items=2))

    assert [[person["id"] for person in page] for page in pages] == [["a", "b"], ["c", "d"], ["e"]]
    assert client.stats["requests"] == 3


def test_paging_streams_one_page_at_a_time(client, replay):
    replay.expect(
        "GET",
        "/locations",
        query={"max": "500"},
        body={"items": [{"id": "L1"}]},
        headers=next_link(f"{API_URL}/locations?max=500&after=x"),
    )
    replay.expect("GET", "/locations", query={"max": "500", "after": "x"}, body={"items": []})

    pages = client.iter_locations()
    first = next(pages)

    assert first == [{"id": "L1"}]
    assert len(replay.sent) == 1
    assert list(pages) == [[]]
    assert len(replay.sent) == 2


def test_paging_sends_caller_max_and_filters(make_client, replay):
    client = make_client(org_id="ORG-7")
    replay.expect(
        "GET",
        "/people",
        query={
            "max": "50",
            "callingData": "false",
            "orgId": "ORG-7",
            "displayName": "Ann",
            "locationId": "LOC-1",
        },
        body={"items": [{"id": "a"}]},
    )

    pages = list(
        client.iter_people(max_items=50, calling_data=False, displayName="Ann", location_id="LOC-1")
    )

    assert pages == [[{"id": "a"}]]


def test_paging_drops_max_null(client, replay):
    replay.expect(
        "GET",
        "/people",
        query={"max": "100", "callingData": "true"},
        body={"items": [{"id": "a"}]},
        headers=next_link(f"{API_URL}/people?max=null&callingData=true&after=p2"),
    )
    replay.expect(
        "GET",
        "/people",
        query={"max": "100", "callingData": "true", "after": "p2"},
        body={"items": [{"id": "b"}]},
    )

    pages = list(client.iter_people(max_items=100))

    assert len(pages) == 2
    assert "max=null" not in sent_url(replay, 1)


def test_paging_restores_dropped_parameters(make_client, replay):
    client = make_client(org_id="ORG-7")
    replay.expect(
        "GET",
        "/people",
        query={"max": "100", "callingData": "true", "orgId": "ORG-7", "displayName": "Bo"},
        body={"items": [{"id": "a"}]},
        headers=next_link(f"{API_URL}/people?after=p2"),
    )
    replay.expect(
        "GET",
        "/people",
        query={
            "max": "100",
            "callingData": "true",
            "orgId": "ORG-7",
            "displayName": "Bo",
            "after": "p2",
        },
        body={"items": [{"id": "b"}]},
    )

    pages = list(client.iter_people(max_items=100, displayName="Bo"))

    assert len(pages) == 2


def test_paging_keeps_link_cursor_as_sent(client, replay):
    link = f"{API_URL}/people?max=100&callingData=true&before&after=Y2lz%3D%3D"
    replay.expect(
        "GET",
        "/people",
        query={"max": "100", "callingData": "true"},
        body={"items": [{"id": "a"}]},
        headers=next_link(link),
    )
    replay.expect(
        "GET",
        "/people",
        query={"max": "100", "callingData": "true", "before": "", "after": "Y2lz=="},
        body={"items": []},
    )

    list(client.iter_people(max_items=100))

    assert sent_url(replay, 1) == link


@pytest.mark.parametrize("link", [
    '<{url}>; rel="next last"',
    '<{url}>; rel="NEXT"',
    '<{first}>; rel="prev", <{url}>; rel=next',
    '<people?max=2&after=c2>; rel="next"',
    '<?max=2&after=c2>; rel="next"',
    '</v1/people?max=2&after=c2>; rel="next"',
    '<{url}>; title="a=b, c; d"; rel="next"',
    '<{url}>; crossorigin; rel="next"',
    '<{url}>; REL="next"',
    '<{first}>; rel="prev"; rel="next", <{url}>; rel="next"; rel="prev"',
], ids=["several-relations", "upper-case", "two-links", "relative-path", "relative-query",
        "absolute-path", "quoted-parameter", "parameter-without-value", "upper-case-name",
        "first-rel-wins"])
def test_paging_reads_every_form_of_next_link(client, replay, link):
    """A next relation among several, in any case, or as a relative reference (resolved
    against the page's URL, RFC 3986 and 8288) continues the paging."""
    header = link.format(url=f"{API_URL}/people?max=2&after=c2", first=f"{API_URL}/people?max=2")
    replay.expect("GET", "/people", query={"max": "2"}, body={"items": [{"id": "a"}]},
                  headers={"Link": header})
    replay.expect("GET", "/people", query={"max": "2", "after": "c2"},
                  body={"items": [{"id": "b"}]})

    pages = list(client.iter_pages("/people", {"max": 2}))

    assert [[person["id"] for person in page] for page in pages] == [["a"], ["b"]]
    assert urlsplit(sent_url(replay, 1)).path == urlsplit(API_URL).path + "/people"


def test_redirect_without_location_says_so(client, replay):
    replay.expect("GET", "/roles", status=302)

    with pytest.raises(WebexApiError, match="redirect \\(HTTP 302\\) without a Location header"):
        client.list_roles()


def test_refresh_redirect_is_reported_as_redirect(make_client, replay):
    client = refresh_client(make_client)
    replay.expect("GET", "/roles", status=401, body=error_body("Invalid access token"))
    replay.expect("POST", "/access_token", status=301,
                  headers={"Location": "https://127.0.0.1:9444/v1/access_token"})

    with pytest.raises(WebexApiError) as raised:
        client.list_roles()

    assert "redirect (HTTP 301) to https://127.0.0.1:9444/v1/access_token" in str(raised.value)
    assert "Run again later" not in str(raised.value)


def test_paging_rebases_foreign_next_link(client, replay):
    replay.expect(
        "GET",
        "/locations",
        query={"max": "500"},
        body={"items": [{"id": "L1"}]},
        headers=next_link("https://webexapis.com/v1/locations?max=500&after=L2"),
    )
    replay.expect("GET", "/locations", query={"max": "500", "after": "L2"}, body={"items": []})

    list(client.iter_locations())

    assert urlsplit(sent_url(replay, 1)).netloc == "127.0.0.1:9443"
    assert sent_header(replay, 1, "Authorization") == f"Bearer {TOKEN}"


def test_paging_rebases_http_link_onto_https(client, replay):
    replay.expect(
        "GET",
        "/roles",
        body={"items": [{"id": "R1"}]},
        headers=next_link("http://127.0.0.1:9443/v1/roles?after=R2"),
    )
    replay.expect("GET", "/roles", query={"after": "R2"}, body={"items": [{"id": "R2"}]})

    roles = client.list_roles()

    assert [role["id"] for role in roles] == ["R1", "R2"]
    assert sent_url(replay, 1).startswith("https://")


def test_paging_repeated_next_link_raises(client, replay):
    replay.expect(
        "GET",
        "/locations",
        query={"max": "500"},
        body={"items": [{"id": "L1"}]},
        headers=next_link(f"{API_URL}/locations?max=500&after=L2"),
    )
    replay.expect(
        "GET",
        "/locations",
        query={"max": "500", "after": "L2"},
        body={"items": [{"id": "L2"}]},
        headers=next_link(f"{API_URL}/locations?after=L2&max=500"),
    )
    pages = []

    with pytest.raises(WebexApiError) as raised:
        for page in client.iter_locations():
            pages.append(page)

    assert pages == [[{"id": "L1"}], [{"id": "L2"}]]
    assert "already fetched" in str(raised.value)
    assert "GET /v1/locations" in str(raised.value)


def test_paging_link_back_to_first_page_raises(client, replay):
    replay.expect(
        "GET",
        "/roles",
        body={"items": [{"id": "R1"}]},
        headers=next_link(f"{API_URL}/roles"),
    )

    with pytest.raises(WebexApiError) as raised:
        client.list_roles()

    assert "already fetched" in str(raised.value)


def test_paging_item_that_is_not_an_object_raises(client, replay):
    replay.expect("GET", "/people", query={"max": "2"},
                  body={"items": [{"id": "a"}, None]})

    with pytest.raises(WebexApiError, match="item 2 of page 1 of the list is null, not an "
                                            "object") as raised:
        list(client.iter_pages("/people", {"max": 2}))

    assert raised.value.path == "/v1/people"


def test_paging_page_repeating_the_previous_one_raises(client, replay):
    """A server that ignores the cursor sends new next links with the same items: the
    paging stops at the first repeat instead of running forever."""
    for after in ("c1", "c2"):
        replay.expect("GET", "/people", query={"max": "2"} if after == "c1" else
                      {"max": "2", "after": "c1"},
                      body={"items": [{"id": "a"}, {"id": "b"}]},
                      headers=next_link(f"{API_URL}/people?max=2&after={after}"))

    with pytest.raises(WebexApiError, match="page 2 of the list repeats every item of page 1"):
        list(client.iter_pages("/people", {"max": 2}))


def test_paging_repeated_single_item_raises(client, replay):
    """The repeat check also covers pages of one item."""
    for after in ("c1", "c2"):
        replay.expect("GET", "/people", query={"max": "1"} if after == "c1" else
                      {"max": "1", "after": "c1"},
                      body={"items": [{"id": "a"}]},
                      headers=next_link(f"{API_URL}/people?max=1&after={after}"))

    with pytest.raises(WebexApiError, match="page 2 of the list repeats every item of page 1"):
        list(client.iter_pages("/people", {"max": 1}))


def test_page_check_accepts_overlap():
    first = check_page_is_new((), [{"id": "a"}, {"id": "b"}], "u", 1)
    assert check_page_is_new(first, [{"id": "b"}, {"id": "c"}], "u", 2) == ("b", "c")
    assert check_page_is_new((), [], "u", 3) == ()


def test_paging_missing_items_raises(client, replay):
    replay.expect(
        "GET",
        "/licenses",
        body={"message": "ok", "trackingId": "T-9"},
    )

    with pytest.raises(WebexApiError) as raised:
        client.list_licenses()

    message = str(raised.value)
    assert "page 1 of the list has no 'items' key (found keys: message, trackingId)" in message
    assert raised.value.tracking_id == "T-9"
    assert raised.value.path == "/v1/licenses"


def test_paging_empty_body_named(client, replay):
    replay.expect("GET", "/licenses")

    with pytest.raises(WebexApiError) as raised:
        client.list_licenses()

    assert "page 1 of the list has no 'items' key (found an empty body)" in str(raised.value)


def test_paging_non_list_items_raises(client, replay):
    replay.expect(
        "GET",
        "/roles",
        body={"items": [{"id": "R1"}]},
        headers=next_link(f"{API_URL}/roles?after=2"),
    )
    replay.expect("GET", "/roles", query={"after": "2"}, body={"items": {"id": "R2"}})

    with pytest.raises(WebexApiError) as raised:
        client.list_roles()

    assert "page 2 of the list has 'items' of type dict, expected a list" in str(raised.value)


def test_workspaces_follow_start_offsets(client, replay, monkeypatch):
    monkeypatch.setattr(webex_api, "WORKSPACES_PAGE_SIZE", 2)
    replay.expect(
        "GET", "/workspaces", query={"max": "2"}, body={"items": [{"id": "W1"}, {"id": "W2"}]}
    )
    replay.expect(
        "GET",
        "/workspaces",
        query={"max": "2", "start": "2"},
        body={"items": [{"id": "W3"}, {"id": "W4"}]},
    )
    replay.expect(
        "GET", "/workspaces", query={"max": "2", "start": "4"}, body={"items": [{"id": "W5"}]}
    )
    replay.expect("GET", "/workspaces", query={"max": "2", "start": "5"}, body={"items": []})

    pages = list(client.iter_workspaces())

    assert [[item["id"] for item in page] for page in pages] == [
        ["W1", "W2"], ["W3", "W4"], ["W5"], []
    ]
    assert len(replay.sent) == 4


def test_unlinked_short_page_continues(client, replay, monkeypatch):
    """A server whose own page limit is below max sends short pages: only an empty page
    ends a list that has no next links, so no workspace is left out."""
    monkeypatch.setattr(webex_api, "WORKSPACES_PAGE_SIZE", 3)
    replay.expect(
        "GET", "/workspaces", query={"max": "3"}, body={"items": [{"id": "W1"}, {"id": "W2"}]}
    )
    replay.expect(
        "GET",
        "/workspaces",
        query={"max": "3", "start": "2"},
        body={"items": [{"id": "W3"}, {"id": "W4"}]},
    )
    replay.expect(
        "GET", "/workspaces", query={"max": "3", "start": "4"}, body={"items": [{"id": "W5"}]}
    )
    replay.expect("GET", "/workspaces", query={"max": "3", "start": "5"}, body={"items": []})

    items = [item["id"] for page in client.iter_workspaces() for item in page]

    assert items == ["W1", "W2", "W3", "W4", "W5"]


def test_workspaces_follow_link_when_present(make_client, replay, monkeypatch):
    monkeypatch.setattr(webex_api, "WORKSPACES_PAGE_SIZE", 2)
    client = make_client(org_id="ORG-7")
    replay.expect(
        "GET",
        "/workspaces",
        query={"max": "2", "orgId": "ORG-7"},
        body={"items": [{"id": "W1"}, {"id": "W2"}]},
        headers=next_link(f"{API_URL}/workspaces?max=2&orgId=ORG-7&start=2"),
    )
    replay.expect(
        "GET",
        "/workspaces",
        query={"max": "2", "orgId": "ORG-7", "start": "2"},
        body={"items": [{"id": "W3"}]},
    )

    pages = list(client.iter_workspaces())

    assert len(pages) == 2


def test_workspaces_ignored_start_raises(client, replay, monkeypatch):
    monkeypatch.setattr(webex_api, "WORKSPACES_PAGE_SIZE", 1)
    replay.expect("GET", "/workspaces", query={"max": "1"}, body={"items": [{"id": "W1"}]})
    replay.expect(
        "GET", "/workspaces", query={"max": "1", "start": "1"}, body={"items": [{"id": "W1"}]}
    )

    with pytest.raises(WebexApiError) as raised:
        list(client.iter_workspaces())

    assert "ignored the start offset" in str(raised.value)


def test_get_license_merges_user_pages(make_client, replay):
    client = make_client(org_id="ORG-7")
    first_query = {"orgId": "ORG-7", "includeAssignedTo": "user", "limit": "300"}
    replay.expect(
        "GET",
        "/licenses/LIC%2F1",
        query=first_query,
        body={"id": "LIC/1", "name": "Meeting", "users": [{"id": "U1"}, {"id": "U2"}]},
        headers=next_link(f"{API_URL}/licenses/LIC%2F1?includeAssignedTo=user&next=CUR"),
    )
    replay.expect(
        "GET",
        "/licenses/LIC%2F1",
        query=dict(first_query, next="CUR"),
        body={"id": "LIC/1", "name": "Meeting", "users": [{"id": "U3"}]},
    )

    license_details = client.get_license("LIC/1", include_users=True)

    assert license_details["name"] == "Meeting"
    assert [user["id"] for user in license_details["users"]] == ["U1", "U2", "U3"]


def test_get_license_without_users_key(client, replay):
    replay.expect(
        "GET",
        "/licenses/L1",
        query={"includeAssignedTo": "user", "limit": "300"},
        body={"id": "L1", "name": "Calling"},
    )

    assert client.get_license("L1", include_users=True) == {
        "id": "L1",
        "name": "Calling",
        "users": [],
    }


def test_get_license_plain(client, replay):
    replay.expect("GET", "/licenses/L1", body={"id": "L1"})

    assert client.get_license("L1") == {"id": "L1"}


# ---- domain helpers --------------------------------------------------------------------------


def test_list_organizations_sends_no_org_id(make_client, replay):
    client = make_client(org_id="ORG-7")
    replay.expect("GET", "/organizations", body={"items": [{"id": "O1"}, {"id": "O2"}]})

    assert [org["id"] for org in client.list_organizations()] == ["O1", "O2"]


def test_get_organization_of_token(client, replay):
    replay.expect("GET", "/people/me", body={"id": "P1", "orgId": "ORG-OWN"})
    replay.expect("GET", "/organizations/ORG-OWN", body={"id": "ORG-OWN", "displayName": "Own"})

    assert client.get_organization()["displayName"] == "Own"


def test_get_organization_by_id(make_client, replay):
    client = make_client(org_id="ORG-7")
    replay.expect("GET", "/organizations/ORG-9", body={"id": "ORG-9"})
    replay.expect("GET", "/organizations/ORG-7", body={"id": "ORG-7"})

    assert client.get_organization("ORG-9")["id"] == "ORG-9"
    assert client.get_organization()["id"] == "ORG-7"


def test_find_person_by_email(make_client, replay):
    client = make_client(org_id="ORG-7")
    replay.expect(
        "GET",
        "/people",
        query={"email": "ann@example.com", "orgId": "ORG-7", "callingData": "true"},
        body={"items": [{"id": "P1", "emails": ["Ann@Example.com"]}]},
    )

    assert client.find_person("ann@example.com")["id"] == "P1"


def test_find_person_other_address_ignored(client, replay):
    replay.expect(
        "GET",
        "/people",
        query={"email": "ann@example.com", "callingData": "true"},
        body={"items": [{"id": "P2", "emails": ["anna@example.com"]}]},
    )

    assert client.find_person("ann@example.com") is None


def test_find_person_email_not_found(client, replay):
    replay.expect(
        "GET",
        "/people",
        query={"email": "nobody@example.com", "callingData": "true"},
        body={"items": []},
    )

    assert client.find_person("nobody@example.com") is None


def test_find_person_unknown_id_returns_none(client, replay):
    replay.expect(
        "GET",
        "/people/P404",
        query={"callingData": "true"},
        status=404,
        body=error_body("The requested resource could not be found."),
    )

    assert client.find_person("P404") is None


def test_get_person_unknown_id_raises(client, replay):
    replay.expect(
        "GET",
        "/people/P404",
        query={"callingData": "false"},
        status=404,
        body=error_body("The requested resource could not be found."),
    )

    with pytest.raises(WebexApiError) as raised:
        client.get_person("P404", calling_data=False)

    assert raised.value.status == 404


def test_assign_licenses_partial_content(make_client, replay):
    client = make_client(org_id="ORG-7")
    replay.expect("PATCH", "/licenses/users", status=206, body={"licenses": ["L1"]})
    licenses = [{"id": "L1", "operation": "add"}, {"id": "L2", "operation": "add"}]

    response = client.assign_licenses(person_id="P1", licenses=licenses)

    assert response.status == 206
    assert response.json == {"licenses": ["L1"]}
    assert json.loads(replay.sent[0][0].body) == {
        "personId": "P1",
        "orgId": "ORG-7",
        "licenses": licenses,
    }


def test_top_level_error_code_kept(client, replay):
    # An error body may carry errorCode at its top level, without an errors list.
    replay.expect("GET", "/licenses/L1", status=400,
                  body={"message": "Locked", "errorCode": 400111, "trackingId": "ROUTER_1"})

    with pytest.raises(WebexApiError) as raised:
        client.get("/licenses/L1")

    assert raised.value.error_codes == [400111]
    assert raised.value.tracking_id == "ROUTER_1"


def test_assign_licenses_error_codes(client, replay):
    replay.expect(
        "PATCH",
        "/licenses/users",
        status=400,
        body=error_body(
            "License conflict",
            "Calling Professional and Standard together not allowed",
            codes=[400404],
        ),
    )

    with pytest.raises(WebexApiError) as raised:
        client.assign_licenses(email="ann@example.com", site_urls=[{"siteUrl": "s.webex.com"}])

    assert raised.value.error_codes == [400404]
    assert raised.value.status == 400
    assert json.loads(replay.sent[0][0].body) == {
        "email": "ann@example.com",
        "siteUrls": [{"siteUrl": "s.webex.com"}],
    }
    assert "errorCode: 400404" in str(raised.value)


def test_assign_licenses_needs_person_and_change(client):
    with pytest.raises(ValueError):
        client.assign_licenses(licenses=[{"id": "L1"}])
    with pytest.raises(ValueError):
        client.assign_licenses(person_id="P1")


# ---- rate limits and retries -----------------------------------------------------------------


def test_429_waits_retry_after_seconds(client, replay, sleeps):
    replay.expect("GET", "/roles", status=429, headers={"Retry-After": "7"})
    replay.expect("GET", "/roles", body={"items": [{"id": "R1"}]})

    assert client.list_roles() == [{"id": "R1"}]
    assert sleeps == [7.0]
    assert client.stats["retries"] == 1
    assert client.stats["waited_seconds"] == 7.0


def test_429_waits_until_http_date(client, replay, sleeps):
    retry_at = formatdate(time.time() + 20, usegmt=True)
    replay.expect("GET", "/roles", status=429, headers={"Retry-After": retry_at})
    replay.expect("GET", "/roles", body={"items": []})

    client.list_roles()

    assert len(sleeps) == 1
    assert 17 <= sleeps[0] <= 20


@pytest.mark.parametrize(
    "headers, expected",
    [({}, 5.0), ({"Retry-After": "soon"}, 5.0), ({"Retry-After": "-3"}, 5.0)],
)
def test_429_default_wait(client, replay, sleeps, headers, expected):
    replay.expect("GET", "/roles", status=429, headers=headers)
    replay.expect("GET", "/roles", body={"items": []})

    client.list_roles()

    assert sleeps == [expected]


def test_repeated_429_without_wait_ends_within_the_budget(make_client, replay, sleeps):
    """A server that responds 429 with Retry-After 0 again and again gets no endless
    immediate retries: from the third 429 in a row the client waits, so max_retry_wait
    ends the retries."""
    client = make_client(max_retry_wait=3)
    for _attempt in range(6):
        replay.expect("GET", "/roles", status=429, headers={"Retry-After": "0"})

    with pytest.raises(WebexApiError, match="429"):
        client.list_roles()

    assert sleeps == [0.0, 0.0, 1.0, 1.0, 1.0]
    assert client.stats["waited_seconds"] == 3.0


@pytest.mark.parametrize("location", [
    "http://evil.invalid:9443/v1/roles", "https://127.0.0.1:9444/v1/roles", "/v2/roles"])
def test_redirect_is_reported_not_followed(client, replay, location):
    replay.expect("GET", "/roles", status=302, headers={"Location": location})

    with pytest.raises(WebexApiError) as raised:
        client.list_roles()

    message = str(raised.value)
    assert "redirect (HTTP 302)" in message
    assert urlsplit(location).path in message
    assert "Check api_url" in message
    assert len(replay.sent) == 1


def test_429_waits_as_asked_after_longer_waits(make_client, replay, sleeps):
    """Only short waits in a row raise the wait: after waits of a second, a 429 with
    Retry-After 0 is retried at once."""
    client = make_client(max_retry_wait=10)
    for seconds in ("1", "1", "0"):
        replay.expect("GET", "/roles", status=429, headers={"Retry-After": seconds})
    replay.expect("GET", "/roles", body={"items": []})

    client.list_roles()

    assert sleeps == [1.0, 1.0, 0.0]


def test_429_long_retry_after_capped(make_client, replay, sleeps):
    client = make_client(max_retry_wait=1000)
    replay.expect("GET", "/roles", status=429, headers={"Retry-After": "86400"})
    replay.expect("GET", "/roles", body={"items": []})

    client.list_roles()

    assert sleeps == [300.0]


@pytest.mark.parametrize(
    "value, expected",
    [
        ("12", 12.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("Thu, 01 Jan 2026 00:00:30 GMT", 30.0),
        ("Wed, 31 Dec 2025 23:59:00 GMT", 0.0),
        ("Thu, 01 Jan 2026 02:00:00 GMT", 300.0),
        ("Thu, 99 Foo 2026", 5.0),
        ("", 5.0),
        (None, 5.0),
    ],
)
def test_parse_retry_after(value, expected):
    now = 1767225600.0  # 2026-01-01T00:00:00Z

    assert parse_retry_after(value, now=now) == expected


def test_429_budget_exceeded(make_client, replay, sleeps):
    client = make_client(max_retry_wait=10)
    replay.expect("GET", "/roles", status=429, headers={"Retry-After": "8"})
    replay.expect(
        "GET",
        "/roles",
        status=429,
        headers={"Retry-After": "8", "Trackingid": "ROUTER_RATE-2"},
    )

    with pytest.raises(WebexApiError) as raised:
        client.list_roles()

    message = str(raised.value)
    assert sleeps == [8.0]
    assert raised.value.status == 429
    assert "HTTP 429 Too Many Requests" in message
    assert "would exceed max_retry_wait (10 s, 8.0 s already spent waiting)" in message
    assert "Raise max_retry_wait" in message
    assert "trackingId: ROUTER_RATE-2" in message


def test_budget_shared_by_requests(make_client, replay, sleeps):
    client = make_client(max_retry_wait=10)
    replay.expect("GET", "/roles", status=429, headers={"Retry-After": "6"})
    replay.expect("GET", "/roles", body={"items": []})
    replay.expect("GET", "/licenses", status=429, headers={"Retry-After": "6"})

    client.list_roles()
    with pytest.raises(WebexApiError) as raised:
        client.list_licenses()

    assert sleeps == [6.0]
    assert "max_retry_wait" in str(raised.value)


def test_429_on_patch_retried(client, replay, sleeps):
    replay.expect("PATCH", "/licenses/users", status=429, headers={"Retry-After": "2"})
    replay.expect("PATCH", "/licenses/users", body={"licenses": ["L1"]})

    response = client.assign_licenses(person_id="P1", licenses=[{"id": "L1"}])

    assert response.status == 200
    assert sleeps == [2.0]


@pytest.mark.parametrize("method", ["GET", "PATCH"])
def test_423_with_retry_after_waits_and_sends_again(client, replay, sleeps, method):
    """A 423 (Locked) that sends Retry-After was not carried out, so even a change is sent
    again after the wait, as for a 429."""
    path = "/roles" if method == "GET" else "/licenses/users"
    replay.expect(method, path, status=423, headers={"Retry-After": "3"},
                  body=error_body("Locked"))
    replay.expect(method, path, body={"items": [], "licenses": ["L1"]})

    if method == "GET":
        client.list_roles()
    else:
        client.assign_licenses(person_id="P1", licenses=[{"id": "L1"}])

    assert sleeps == [3.0]
    assert client.stats["retries"] == 1
    assert len(replay.sent) == 2


def test_423_without_retry_after_fails_at_once(client, replay, sleeps):
    replay.expect("GET", "/roles", status=423, body=error_body("Locked"))

    with pytest.raises(WebexApiError, match="HTTP 423"):
        client.list_roles()

    assert sleeps == []
    assert len(replay.sent) == 1


def test_423_beyond_the_wait_budget_fails(make_client, replay, sleeps):
    client = make_client(max_retry_wait=2)
    replay.expect("GET", "/roles", status=423, headers={"Retry-After": "30"},
                  body=error_body("Locked"))

    with pytest.raises(WebexApiError) as raised:
        client.list_roles()

    assert "max_retry_wait" in str(raised.value)
    assert sleeps == []


@pytest.mark.parametrize("status", [502, 503, 504])
def test_get_retried_on_server_error(client, replay, sleeps, status):
    replay.expect("GET", "/roles", status=status, body=error_body("Service unavailable"))
    replay.expect("GET", "/roles", status=status, body=error_body("Service unavailable"))
    replay.expect("GET", "/roles", body={"items": [{"id": "R1"}]})

    assert client.list_roles() == [{"id": "R1"}]
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 0.55
    assert 1.0 <= sleeps[1] <= 1.1
    assert client.stats["retries"] == 2


def test_503_retry_after_honoured(client, replay, sleeps):
    replay.expect("GET", "/roles", status=503, headers={"Retry-After": "3"})
    replay.expect("GET", "/roles", body={"items": []})

    client.list_roles()

    assert sleeps == [3.0]


def test_server_error_retries_exhausted(client, replay, sleeps):
    for _attempt in range(5):
        replay.expect("GET", "/roles", status=503, body=error_body("Service unavailable"))

    with pytest.raises(WebexApiError) as raised:
        client.list_roles()

    assert len(sleeps) == 4
    for delay, base in zip(sleeps, [0.5, 1, 2, 4]):
        assert base <= delay <= base * 1.1
    assert raised.value.status == 503
    assert "Gave up after 4 retries" in str(raised.value)


@pytest.mark.parametrize("status", [429, 503])
def test_long_retry_after_fails_without_waiting(make_client, replay, sleeps, status):
    # Retry-After requests an hour. The wait is capped at 300 s, which would use up
    # max_retry_wait, and the retry would most likely be refused again.
    client = make_client(max_retry_wait=300)
    replay.expect("GET", "/roles", status=status, headers={"Retry-After": "3600"})

    with pytest.raises(WebexApiError) as raised:
        client.list_roles()

    assert sleeps == []
    assert raised.value.status == status
    assert "waiting another 3600.0 s would exceed max_retry_wait (300 s" in str(raised.value)


def test_server_error_budget_exceeded(make_client, replay, sleeps):
    client = make_client(max_retry_wait=1)
    replay.expect("GET", "/roles", status=502, body=error_body("Bad gateway"))
    replay.expect("GET", "/roles", status=502, body=error_body("Bad gateway"))

    with pytest.raises(WebexApiError) as raised:
        client.list_roles()

    assert len(sleeps) == 1
    assert "would exceed max_retry_wait (1 s" in str(raised.value)
    assert "Gave up after 1 retry" in str(raised.value)


@pytest.mark.parametrize("method", ["POST", "PATCH", "PUT"])
def test_write_not_retried_on_503(client, replay, sleeps, method):
    replay.expect(method, "/people/P1", status=503, body=error_body("Service unavailable"))

    with pytest.raises(WebexApiError) as raised:
        client.request(method, "/people/P1", json={"displayName": "Ann"})

    assert raised.value.status == 503
    assert sleeps == []


def connection_reset():
    return requests.exceptions.ConnectionError(
        ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer"))
    )


def connection_refused():
    cause = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused")
    return requests.exceptions.ConnectionError(MaxRetryError(None, "/v1/people", cause))


def test_get_retried_after_connection_reset(client, replay, sleeps):
    replay.expect("GET", "/roles", raises=connection_reset())
    replay.expect("GET", "/roles", raises=requests.exceptions.ReadTimeout("read timed out"))
    replay.expect("GET", "/roles", body={"items": []})

    assert client.list_roles() == []
    assert len(sleeps) == 2


def test_patch_not_retried_after_connection_reset(client, replay, sleeps):
    replay.expect("PATCH", "/licenses/users", raises=connection_reset())

    with pytest.raises(WebexApiError) as raised:
        client.assign_licenses(person_id="P1", licenses=[{"id": "L1"}])

    assert sleeps == []
    assert raised.value.status is None
    assert "the connection to https://127.0.0.1:9443/v1 failed" in str(raised.value)


def test_patch_retried_when_connect_failed(client, replay, sleeps):
    replay.expect("PATCH", "/licenses/users", raises=connection_refused())
    replay.expect("PATCH", "/licenses/users", body={"licenses": ["L1"]})

    response = client.assign_licenses(person_id="P1", licenses=[{"id": "L1"}])

    assert response.status == 200
    assert len(sleeps) == 1


def test_read_timeout_names_timeout_option(make_client, replay, sleeps):
    client = make_client(timeout=12)
    for _attempt in range(5):
        replay.expect("GET", "/roles", raises=requests.exceptions.ReadTimeout("read timed out"))

    with pytest.raises(WebexApiError) as raised:
        client.list_roles()

    message = str(raised.value)
    assert "timed out after 12 s waiting for the response (timeout option)" in message
    assert "Gave up after 4 retries" in message
    assert len(sleeps) == 4


@pytest.mark.parametrize("validate_certs", [True, False])
def test_tls_handshake_error_names_scheme(make_client, replay, validate_certs):
    # An https:// URL that points at a plain HTTP server: no certificate was judged.
    replay.expect("GET", "/roles", raises=requests.exceptions.SSLError(
        "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)"))
    client = make_client(validate_certs=validate_certs)

    with pytest.raises(WebexApiError) as raised:
        client.list_roles()

    message = str(raised.value)
    assert f"TLS handshake failed for {API_URL}" in message
    assert "uses the scheme and port of the server" in message
    assert "validate_certs" not in message


def test_ssl_error_not_retried(client, replay, sleeps):
    replay.expect(
        "GET",
        "/roles",
        raises=requests.exceptions.SSLError("certificate verify failed: self-signed certificate"),
    )

    with pytest.raises(WebexApiError) as raised:
        client.list_roles()

    message = str(raised.value)
    assert sleeps == []
    assert "TLS certificate verification failed" in message
    assert "REQUESTS_CA_BUNDLE" in message
    assert "validate_certs" in message


def test_connection_refused_real_socket(sleeps):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    api_url = f"http://127.0.0.1:{port}/v1"
    client = WebexClient(api_url, access_token=TOKEN, sleep=sleeps.append, timeout=5)

    with pytest.raises(WebexApiError) as raised:
        client.get("/people", params={"email": "ann@example.com"})

    message = str(raised.value)
    assert f"GET /v1/people failed: cannot connect to {api_url}" in message
    assert "Connection refused" in message
    assert "Check api_url" in message
    assert "ann@example.com" not in message
    assert len(sleeps) == 4
    assert client.stats["requests"] == 5


# ---- token refresh ---------------------------------------------------------------------------


def refresh_client(make_client, **options):
    return make_client(
        client_id="client-1", client_secret=CLIENT_SECRET, refresh_token=REFRESH_TOKEN, **options
    )


def test_401_refreshes_and_retries(make_client, replay):
    client = refresh_client(make_client)
    replay.expect("GET", "/roles", status=401, body=error_body("Invalid access token"))
    replay.expect(
        "POST",
        "/access_token",
        body={"access_token": NEW_TOKEN, "expires_in": 1209599, "refresh_token": "refresh-NEW"},
    )
    replay.expect("GET", "/roles", body={"items": [{"id": "R1"}]})

    assert client.list_roles() == [{"id": "R1"}]

    refresh_request = replay.sent[1][0]
    assert dict(parse_qsl(refresh_request.body)) == {
        "grant_type": "refresh_token",
        "client_id": "client-1",
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN,
    }
    assert refresh_request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "Authorization" not in refresh_request.headers
    assert sent_header(replay, 2, "Authorization") == f"Bearer {NEW_TOKEN}"
    assert client.refresh_token == "refresh-NEW"
    assert client.stats["refreshes"] == 1


def test_refresh_once_per_401_episode(make_client, replay):
    client = refresh_client(make_client)
    replay.expect("GET", "/roles", status=401, body=error_body("Invalid access token"))
    replay.expect("POST", "/access_token", body={"access_token": NEW_TOKEN})
    replay.expect("GET", "/roles", status=401, body=error_body("Invalid access token"))

    with pytest.raises(WebexAuthError) as raised:
        client.list_roles()

    assert client.stats["refreshes"] == 1
    assert "freshly refreshed token was rejected too" in str(raised.value)
    assert NEW_TOKEN not in str(raised.value)


def test_refresh_again_after_success(make_client, replay):
    client = refresh_client(make_client)
    replay.expect("GET", "/roles", status=401, body=error_body("Invalid access token"))
    replay.expect("POST", "/access_token", body={"access_token": NEW_TOKEN})
    replay.expect("GET", "/roles", body={"items": []})
    replay.expect("GET", "/licenses", status=401, body=error_body("Invalid access token"))
    replay.expect("POST", "/access_token", body={"access_token": "tok-third"})
    replay.expect("GET", "/licenses", body={"items": []})

    client.list_roles()
    client.list_licenses()

    assert client.stats["refreshes"] == 2
    assert sent_header(replay, 5, "Authorization") == "Bearer tok-third"


def test_refresh_confirmed_by_404(make_client, replay):
    client = refresh_client(make_client)
    query = {"callingData": "true"}
    replay.expect("GET", "/people/P1", query, 401, error_body("Invalid access token"))
    replay.expect("POST", "/access_token", body={"access_token": NEW_TOKEN})
    replay.expect("GET", "/people/P1", query, 404, error_body("Not found"))
    replay.expect("GET", "/roles", status=401, body=error_body("Invalid access token"))
    replay.expect("POST", "/access_token", body={"access_token": "tok-third"})
    replay.expect("GET", "/roles", body={"items": []})

    assert client.find_person("P1") is None
    assert client.list_roles() == []
    assert client.stats["refreshes"] == 2


def test_refresh_gets_first_token(make_client, replay):
    client = refresh_client(make_client, access_token=None)
    replay.expect("POST", "/access_token", body={"access_token": NEW_TOKEN})
    replay.expect("GET", "/roles", body={"items": []})

    client.list_roles()

    assert sent_header(replay, 1, "Authorization") == f"Bearer {NEW_TOKEN}"


def test_401_without_refresh_credentials(client, replay):
    replay.expect(
        "GET",
        "/roles",
        status=401,
        body=error_body(
            "The request requires a valid access token set in the Authorization request header."
        ),
    )

    with pytest.raises(WebexAuthError) as raised:
        client.list_roles()

    message = str(raised.value)
    assert raised.value.status == 401
    assert "The access token is invalid or expired" in message
    assert "Webex developer portal" in message
    assert "Control Hub integration" in message
    assert "client_id, client_secret and refresh_token" in message
    assert TOKEN not in message


def test_refresh_failing(make_client, replay):
    client = refresh_client(make_client)
    replay.expect("GET", "/roles", status=401, body=error_body("Invalid access token"))
    replay.expect(
        "POST",
        "/access_token",
        status=400,
        body=error_body(f"Invalid refresh token {REFRESH_TOKEN}", tracking_id="ROUTER_REF-1"),
    )

    with pytest.raises(WebexAuthError) as raised:
        client.list_roles()

    message = str(raised.value)
    assert "POST /v1/access_token failed with HTTP 400 Bad Request" in message
    assert "Refreshing the access token failed" in message
    assert "authorize the integration again" in message
    # The refresh credentials are set, so the hint does not ask for them.
    assert "set client_id, client_secret and refresh_token" not in message
    assert "trackingId: ROUTER_REF-1" in message
    assert REFRESH_TOKEN not in message
    assert CLIENT_SECRET not in message
    assert REFRESH_TOKEN not in repr(raised.value)


def test_refresh_waits_on_rate_limit(make_client, replay, sleeps):
    client = refresh_client(make_client)
    replay.expect("GET", "/roles", status=401, body=error_body("Invalid access token"))
    replay.expect("POST", "/access_token", status=429, headers={"Retry-After": "2"})
    replay.expect("POST", "/access_token",
                  body={"access_token": NEW_TOKEN, "expires_in": 1209599})
    replay.expect("GET", "/roles", body={"items": [{"id": "R1"}]})

    assert client.list_roles() == [{"id": "R1"}]
    assert sleeps == [2.0]
    assert sent_header(replay, 3, "Authorization") == f"Bearer {NEW_TOKEN}"


def test_refresh_outage_is_not_blamed_on_credentials(make_client, replay, sleeps):
    client = refresh_client(make_client)
    replay.expect("GET", "/roles", status=401, body=error_body("Invalid access token"))
    for _attempt in range(5):
        replay.expect("POST", "/access_token", status=503,
                      body=error_body("Service unavailable"))

    with pytest.raises(WebexAuthError) as raised:
        client.list_roles()

    message = str(raised.value)
    assert "POST /v1/access_token failed with HTTP 503" in message
    assert "says nothing about the credentials" in message
    assert "authorize the integration again" not in message
    assert len(sleeps) == 4


def test_refresh_response_without_token(make_client, replay):
    client = refresh_client(make_client)
    replay.expect("GET", "/roles", status=401, body=error_body("Invalid access token"))
    replay.expect("POST", "/access_token", body={"token_type": "Bearer"})

    with pytest.raises(WebexAuthError) as raised:
        client.list_roles()

    assert "has no access_token" in str(raised.value)


# ---- error messages --------------------------------------------------------------------------


def test_error_message_contents(client, replay):
    replay.expect(
        "GET",
        "/people/P1",
        query={"callingData": "true", "secretish": "q"},
        status=404,
        body={
            "message": "The requested resource could not be found.",
            "errors": [{"description": f"Person P1 not found (token {TOKEN})"}],
            "trackingId": "ROUTER_NF-1",
        },
        headers={"Trackingid": "ROUTER_HEADER"},
    )

    with pytest.raises(WebexApiError) as raised:
        client.request("GET", "/people/P1", params={"callingData": True, "secretish": "q"})

    error = raised.value
    message = str(error)
    assert message.startswith("GET /v1/people/P1 failed with HTTP 404 Not Found: ")
    assert "The requested resource could not be found." in message
    assert "Person P1 not found" in message
    assert "(trackingId: ROUTER_NF-1)" in message
    assert "secretish" not in message
    assert TOKEN not in message
    assert TOKEN not in repr(error)
    assert TOKEN not in json.dumps(error.body)
    assert error.method == "GET"
    assert error.path == "/v1/people/P1"
    assert error.status == 404
    assert error.tracking_id == "ROUTER_NF-1"


def test_error_tracking_id_from_header(client, replay):
    replay.expect(
        "GET",
        "/roles",
        status=403,
        body={"message": "Forbidden"},
        headers={"Trackingid": "ROUTER_HDR-7"},
    )

    with pytest.raises(WebexApiError) as raised:
        client.list_roles()

    assert raised.value.tracking_id == "ROUTER_HDR-7"
    assert "admin role and scopes" in str(raised.value)


def test_error_description_equal_to_message_not_repeated(client, replay):
    replay.expect("GET", "/roles", status=400, body=error_body("Bad request"))

    with pytest.raises(WebexApiError) as raised:
        client.list_roles()

    assert str(raised.value).count("Bad request") == 1


def test_html_error_body(client, replay):
    page = (
        "<html><head><title>502 Bad Gateway</title><style>body {}</style></head>"
        f"<body><h1>502 Bad Gateway</h1><p>proxy &amp; cache {TOKEN}</p></body></html>"
    )
    replay.expect(
        "PATCH",
        "/licenses/users",
        status=502,
        body=page,
        headers={"Content-Type": "text/html"},
    )

    with pytest.raises(WebexApiError) as raised:
        client.assign_licenses(person_id="P1", licenses=[{"id": "L1"}])

    message = str(raised.value)
    assert "HTTP 502 Bad Gateway" in message
    assert "invalid JSON in response (content-type text/html)" in message
    assert "502 Bad Gateway 502 Bad Gateway proxy & cache" in message
    assert "<" not in message.split("content-type text/html")[1]
    assert TOKEN not in message


def test_truncated_json_body(client, replay):
    replay.expect(
        "GET",
        "/roles",
        body='{"items": [{"id": "R1"',
        headers={"Content-Type": "application/json"},
    )

    with pytest.raises(WebexApiError) as raised:
        client.list_roles()

    message = str(raised.value)
    assert "GET /v1/roles failed with HTTP 200 OK" in message
    assert "invalid JSON in response (content-type application/json)" in message
    assert '{"items": [{"id": "R1"' in message


def test_long_text_body_cut(client, replay):
    replay.expect(
        "GET", "/roles", status=400, body="x" * 1000, headers={"Content-Type": "text/plain"}
    )

    with pytest.raises(WebexApiError) as raised:
        client.list_roles()

    assert "x" * 200 in str(raised.value)
    assert "x" * 201 not in str(raised.value)


PAGE_BODY = '{"items": [{"id": "p1", "displayName": "Jos\u00e9 M\u00fcller"}]}'


@pytest.mark.parametrize(("headers", "content"), [
    ({}, PAGE_BODY.encode("latin-1")),
    ({"Content-Type": "application/json; charset=x-unknown"}, PAGE_BODY.encode("latin-1")),
    ({"Content-Type": "application/json"}, PAGE_BODY.encode("utf-8")),
    ({}, PAGE_BODY.encode("utf-16")),
    ({"Content-Type": "application/json; charset=ISO-8859-1"}, PAGE_BODY.encode("utf-8")),
    ({"Content-Type": "application/json"}, b"\xef\xbb\xbf" + PAGE_BODY.encode("utf-8")),
], ids=["latin-1", "unknown-charset", "utf-8", "utf-16", "utf-8-labelled-latin-1",
        "utf-8-with-bom"])
def test_page_content_decoded_like_response(headers, content):
    client = WebexClient("http://127.0.0.1:9/v1", access_token="token",
                         session=requests.Session())
    response = requests.models.Response()
    response.status_code = 200
    response.headers = CaseInsensitiveDict(headers)
    response.encoding = requests.utils.get_encoding_from_headers(response.headers)
    response._content = content
    url = "http://127.0.0.1:9/v1/people"
    page = {"url": url, "page": 1, "status": 200, "headers": headers, "content": content}

    expected = client._parse_json("GET", url, response)["items"]

    assert client.read_page_content(page) == expected
    # JSON is UTF-8: a body that is valid UTF-8 is read as such, whatever its label.
    assert expected[0]["displayName"] == "Jos\u00e9 M\u00fcller"


def test_converted_collection_options():
    spec = {
        "hierarchy": {"type": "str"},
        "name": {"type": "str"},
        "site": {},
        "access_token": {"type": "str", "no_log": True},
        "licenses": {"type": "list", "elements": "str"},
    }
    params = {
        "hierarchy": "['Keystone', 'Reseller North']",
        "name": "[2024]",
        "site": " {'url': 'a.webex.com'} ",
        "access_token": "['secret']",
        "licenses": ["Advanced Messaging"],
    }

    assert converted_collection_options(spec, params) == ["hierarchy", "site"]
