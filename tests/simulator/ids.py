"""Webex identifiers: base64 of a `ciscospark://` URI with the padding stripped."""

from __future__ import annotations

import base64
import binascii


def encode_id(uri: str) -> str:
    return base64.b64encode(uri.encode("utf-8")).decode("ascii").rstrip("=")


def decode_id(webex_id: str) -> str | None:
    """Return the URI inside a Webex id, or None when the id is not valid base64 text."""
    padded = webex_id + "=" * (-len(webex_id) % 4)
    try:
        return base64.b64decode(padded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def org_id(org_uuid: str) -> str:
    return encode_id(f"ciscospark://us/ORGANIZATION/{org_uuid}")


def person_id(person_uuid: str) -> str:
    return encode_id(f"ciscospark://us/PEOPLE/{person_uuid}")


def location_id(location_uuid: str) -> str:
    return encode_id(f"ciscospark://us/LOCATION/{location_uuid}")


def workspace_id(workspace_uuid: str) -> str:
    return encode_id(f"ciscospark://us/PLACES/{workspace_uuid}")


def role_id(role_name: str) -> str:
    return encode_id(f"ciscospark://us/ROLE/{role_name}")


def license_id(org_uuid: str, type_code: str, license_uuid: str, site_url: str | None) -> str:
    uri = f"ciscospark://us/LICENSE/{org_uuid}:{type_code}_{license_uuid}"
    if site_url:
        uri += f"_{site_url}"
    return encode_id(uri)


def encode_cursor(kind: str, position: int) -> str:
    """Build an opaque paging cursor that stores a position in a stable list."""
    return encode_id(f"ciscospark://us/{kind}/{position}")


def decode_cursor(kind: str, cursor: str) -> int | None:
    uri = decode_id(cursor)
    prefix = f"ciscospark://us/{kind}/"
    if uri is None or not uri.startswith(prefix):
        return None
    tail = uri[len(prefix):]
    if not tail.isdigit():
        return None
    return int(tail)
