"""Webex-shaped API errors raised by the simulator state and rendered by the app."""

from __future__ import annotations

import uuid


def new_tracking_id() -> str:
    """Return a tracking id in the form the Webex router uses (`ROUTER_<uuid>`)."""
    return f"ROUTER_{str(uuid.uuid4()).upper()}"


def error_detail(description: str, error_code: int | None = None) -> dict:
    """Build one `errors[]` entry; `errorCode` only appears when given."""
    detail: dict = {"description": description}
    if error_code is not None:
        detail["errorCode"] = error_code
    return detail


class ApiError(Exception):
    """An error response: HTTP status, `message` and the `errors` list of the body."""

    def __init__(
        self,
        status: int,
        message: str,
        errors: list[dict] | None = None,
        headers: dict | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors if errors is not None else [error_detail(message)]
        self.headers = headers or {}

    def body(self, tracking_id: str) -> dict:
        return {"message": self.message, "errors": self.errors, "trackingId": tracking_id}


def bad_request(message: str, error_code: int | None = None) -> ApiError:
    return ApiError(400, message, [error_detail(message, error_code)])


def not_found(message: str) -> ApiError:
    return ApiError(404, message)


UNAUTHORIZED_MESSAGE = "The request requires a valid access token set in the Authorization header."


def unauthorized() -> ApiError:
    return ApiError(401, UNAUTHORIZED_MESSAGE)


def forbidden(message: str) -> ApiError:
    return ApiError(403, message)
