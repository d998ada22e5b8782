"""Injected faults: periodic throttling and failures, latency and targeted rules.

The app calls `Faults.decide` once per /v1 request. A decision either replaces the response
(`render_fault`) or lets the real handler run and changes its response afterwards
(`transform_response`: truncated JSON, a body without `items`, a Link back to page one, no
Link at all, or fewer items than the page had).
"""

from __future__ import annotations

import fnmatch
import http
import json
import threading
from urllib.parse import urlencode

from flask import Response

from .errors import ApiError, bad_request

BODY_KINDS = ("json", "html", "truncated", "no_items", "empty")
# Query parameters that carry a paging position; dropping them gives the first page.
CURSOR_PARAMS = ("after", "next", "start", "cursor")

STATUS_MESSAGES = {
    429: "Too many requests. Retry after the number of seconds in the Retry-After header.",
    500: "Internal server error.",
    502: "Bad gateway. Try again later.",
    503: "Service unavailable. Try again later.",
    504: "Gateway timeout. Try a smaller max value.",
}

HTML_ERROR_PAGE = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def _int_setting(data: dict, key: str, minimum: int, default, maximum: int | None = None):
    value = data.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise bad_request(f"Fault setting {key} must be a number >= {minimum}, got {value!r}.")
    if maximum is not None and value > maximum:
        raise bad_request(f"Fault setting {key} must be <= {maximum}, got {value!r}.")
    return value


class FaultRule:
    """A fault aimed at matching requests; `skip` lets some pass, `times` bounds the rest."""

    def __init__(self, data: dict):
        if not isinstance(data, dict) or not isinstance(data.get("path"), str):
            raise bad_request("Every fault rule needs a path (a string, glob patterns allowed).")
        self.method = (data.get("method") or "").upper() or None
        self.path = data["path"]
        self.query = data.get("query") or {}
        if not isinstance(self.query, dict):
            raise bad_request("Fault rule query must be an object of parameter values.")
        self.query = {str(k): str(v) for k, v in self.query.items()}
        self.body = data.get("body") or "json"
        if self.body not in BODY_KINDS:
            raise bad_request(f"Fault rule body must be one of {', '.join(BODY_KINDS)}.")
        self.repeat_page = bool(data.get("repeat_page", False))
        # A server that pages without Link headers, or with a page limit below max.
        self.drop_link = bool(data.get("drop_link", False))
        self.max_items = _int_setting(data, "max_items", 0, None)
        # The handler runs (a change is applied) and the fault replaces its response, like a
        # gateway that times out after the service has done the work.
        self.after_handler = bool(data.get("after_handler", False))
        # The request waits this long before anything else happens (with after_handler the
        # change is applied after the wait), like a slow service behind a gateway.
        self.delay_ms = _int_setting(data, "delay_ms", 0, 0, 600000)
        passes_through = (
            self.repeat_page or self.drop_link or self.max_items is not None
            or self.body == "no_items"
        )
        self.status = _int_setting(data, "status", 100, 200 if passes_through else 503, 599)
        self.times = _int_setting(data, "times", 0, None)
        self.skip = _int_setting(data, "skip", 0, 0)
        self.retry_after = _int_setting(data, "retry_after", 0, None)
        self.matched = 0
        self.fired = 0

    def matches(self, method: str, path: str, query: dict) -> bool:
        if self.method and self.method != method:
            return False
        if not fnmatch.fnmatchcase(path, self.path):
            return False
        return all(query.get(key) == value for key, value in self.query.items())

    def take(self) -> bool:
        """Count one matching request; return True when the rule fires for it."""
        self.matched += 1
        if self.matched <= self.skip:
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        self.fired += 1
        return True

    def as_dict(self) -> dict:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "times": self.times,
            "skip": self.skip,
            "retry_after": self.retry_after,
            "body": self.body,
            "repeat_page": self.repeat_page,
            "drop_link": self.drop_link,
            "max_items": self.max_items,
            "after_handler": self.after_handler,
            "delay_ms": self.delay_ms,
            "matched": self.matched,
            "fired": self.fired,
        }


class FaultDecision:
    """The fault of one request. `replaces` is True when the handler does not run at all."""

    def __init__(
        self,
        kind: str,
        status: int,
        body: str,
        retry_after=None,
        repeat_page=False,
        after_handler=False,
        drop_link=False,
        max_items=None,
        delay_ms=0,
    ):
        self.kind = kind
        self.delay_ms = delay_ms
        self.status = status
        self.body = body
        self.retry_after = retry_after
        self.repeat_page = repeat_page
        self.after_handler = after_handler
        self.drop_link = drop_link
        self.max_items = max_items

    @property
    def replaces(self) -> bool:
        if self.after_handler:
            return False
        if self.status != 200:
            return True
        return self.body in ("html", "empty")


class Faults:
    """The current fault settings; `configure` replaces them all, counters included."""

    def __init__(self, startup: dict | None = None):
        self.lock = threading.Lock()
        self.startup = dict(startup or {})
        self.configure(self.startup)

    def configure(self, data: dict) -> None:
        if not isinstance(data, dict):
            raise bad_request("Fault settings must be a JSON object.")
        unknown = set(data) - {
            "throttle_every", "retry_after", "fail_every", "fail_status", "latency_ms", "rules",
        }
        if unknown:
            raise bad_request(f"Unknown fault settings: {', '.join(sorted(unknown))}.")
        throttle_every = _int_setting(data, "throttle_every", 0, None)
        retry_after = _int_setting(data, "retry_after", 0, 1)
        fail_every = _int_setting(data, "fail_every", 0, None)
        fail_status = _int_setting(data, "fail_status", 400, 503, 599)
        latency_ms = _int_setting(data, "latency_ms", 0, 0)
        rules_data = data.get("rules") or []
        if not isinstance(rules_data, list):
            raise bad_request("Fault setting rules must be an array.")
        rules = [FaultRule(rule) for rule in rules_data]

        with self.lock:
            self.throttle_every = throttle_every or None
            self.retry_after = retry_after
            self.fail_every = fail_every or None
            self.fail_status = fail_status
            self.latency_ms = latency_ms or 0
            self.rules = rules
            self.request_count = 0

    def reset(self) -> None:
        self.configure(self.startup)

    def as_dict(self) -> dict:
        with self.lock:
            return {
                "throttle_every": self.throttle_every,
                "retry_after": self.retry_after,
                "fail_every": self.fail_every,
                "fail_status": self.fail_status,
                "latency_ms": self.latency_ms,
                "rules": [rule.as_dict() for rule in self.rules],
                "request_count": self.request_count,
            }

    def decide(self, method: str, path: str, query: dict) -> FaultDecision | None:
        """Count one /v1 request and return the fault it gets, if any.

        The first firing rule wins; otherwise the periodic throttle, then the periodic failure.
        """
        with self.lock:
            self.request_count += 1
            for rule in self.rules:
                if rule.matches(method, path, query) and rule.take():
                    retry_after = rule.retry_after
                    if retry_after is None and rule.status == 429:
                        retry_after = self.retry_after
                    return FaultDecision(
                        "rule",
                        rule.status,
                        rule.body,
                        retry_after,
                        rule.repeat_page,
                        rule.after_handler,
                        rule.drop_link,
                        rule.max_items,
                        rule.delay_ms,
                    )
            if self.throttle_every and self.request_count % self.throttle_every == 0:
                return FaultDecision("throttle", 429, "json", self.retry_after)
            if self.fail_every and self.request_count % self.fail_every == 0:
                return FaultDecision("fail", self.fail_status, "json")
        return None


def render_fault(decision: FaultDecision, tracking_id: str) -> Response:
    """Build the response that replaces the handler's."""
    status = decision.status
    headers = {}
    if decision.retry_after is not None:
        headers["Retry-After"] = str(int(decision.retry_after))

    if decision.body == "empty":
        return Response(b"", status=status, headers=headers, content_type="application/json")
    if decision.body == "html":
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = "Error"
        page = HTML_ERROR_PAGE.format(status=status, reason=reason)
        return Response(page, status=status, headers=headers, content_type="text/html")

    message = STATUS_MESSAGES.get(status, f"Simulated error with status {status}.")
    body = json.dumps(ApiError(status, message).body(tracking_id))
    if decision.body == "truncated":
        body = body[: len(body) // 2]
    return Response(body, status=status, headers=headers, content_type="application/json")


def transform_response(decision: FaultDecision, response: Response, url_root: str, path: str,
                       args) -> Response:
    """Change a real handler response for 200-status rules (truncated, no_items, repeat_page,
    drop_link, max_items)."""
    if response.status_code != 200:
        return response
    if decision.body == "truncated":
        data = response.get_data()
        response.set_data(data[: len(data) // 2])
    elif decision.body == "no_items":
        try:
            payload = json.loads(response.get_data())
        except ValueError:
            payload = {}
        if isinstance(payload, dict):
            payload.pop("items", None)
            response.set_data(json.dumps(payload))
    if decision.max_items is not None:
        try:
            payload = json.loads(response.get_data())
        except ValueError:
            payload = None
        if isinstance(payload, dict) and isinstance(payload.get("items"), list):
            payload["items"] = payload["items"][: decision.max_items]
            response.set_data(json.dumps(payload))
    if decision.drop_link:
        response.headers.pop("Link", None)
    if decision.repeat_page:
        pairs = [(k, v) for k, v in args.items(multi=True) if k not in CURSOR_PARAMS]
        query = urlencode(pairs)
        first_page = url_root.rstrip("/") + path + (f"?{query}" if query else "")
        response.headers["Link"] = f'<{first_page}>; rel="next"'
    return response
