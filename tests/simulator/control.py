"""The control API under /_simulator/ (no authentication): faults, request log, reset, tokens."""

from __future__ import annotations

import collections
import threading

from flask import Blueprint, current_app, jsonify, request

from .errors import bad_request, not_found
from .state import parse_timestamp

# Oldest entries are dropped beyond this many, so a long benchmark cannot exhaust memory.
REQUEST_LOG_LIMIT = 100_000

control = Blueprint("simulator_control", __name__, url_prefix="/_simulator")


class RequestLog:
    """The /v1 requests served since start or the last clear, oldest first."""

    def __init__(self):
        self.lock = threading.Lock()
        self.entries: collections.deque = collections.deque(maxlen=REQUEST_LOG_LIMIT)

    def append(self, entry: dict) -> None:
        with self.lock:
            self.entries.append(entry)

    def items(self) -> list[dict]:
        with self.lock:
            return list(self.entries)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()


def _simulator():
    return current_app.extensions["webex_simulator"]


def _json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body


@control.get("/faults")
def get_faults():
    return jsonify(_simulator().faults.as_dict())


@control.put("/faults")
def put_faults():
    simulator = _simulator()
    simulator.faults.configure(_json_body())
    return jsonify(simulator.faults.as_dict())


@control.get("/requests")
def get_requests():
    return jsonify({"items": _simulator().request_log.items()})


@control.delete("/requests")
def clear_requests():
    _simulator().request_log.clear()
    return "", 204


@control.post("/reset")
def reset():
    simulator = _simulator()
    simulator.state.reset()
    simulator.faults.reset()
    simulator.request_log.clear()
    return "", 204


@control.post("/tokens")
def add_token():
    body = _json_body()
    access_token = body.get("accessToken")
    if not isinstance(access_token, str) or not access_token:
        raise bad_request("accessToken is required.")
    org_ids = body.get("orgIds", ["*"])
    if not isinstance(org_ids, list) or not all(isinstance(i, str) for i in org_ids):
        raise bad_request("orgIds must be an array of org ids or '*'.")
    expires_at = body.get("expiresAt")
    if expires_at is not None:
        try:
            parse_timestamp(str(expires_at))
        except ValueError as exc:
            raise bad_request(f"expiresAt {expires_at!r} is not an ISO 8601 timestamp.") from exc
    token = _simulator().state.add_token(access_token, org_ids, expires_at)
    return jsonify(token.as_dict()), 201


@control.post("/tokens/expire")
def expire_token():
    body = _json_body()
    if not _simulator().state.expire_token(str(body.get("accessToken", ""))):
        raise not_found("No such access token.")
    return "", 204
