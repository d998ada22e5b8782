"""Helpers shared by the simulator's own unit tests."""

from __future__ import annotations

import functools
import json
from urllib.parse import urlsplit

from .app import create_app
from .generate import build_demo_fixture

PARTNER_TOKEN = "demo-partner-token"
ALPINE_TOKEN = "demo-alpine-token"
EXPIRED_TOKEN = "demo-expired-token"


@functools.lru_cache(maxsize=1)
def demo_fixture_text() -> str:
    return json.dumps(build_demo_fixture())


def demo_client(faults: dict | None = None):
    """Return a Flask test client of a fresh simulator loaded with the demo fixture."""
    return create_app(demo_fixture_text(), faults).test_client()


def auth(token: str = PARTNER_TOKEN) -> dict:
    return {"Authorization": f"Bearer {token}"}


def org_ids(client, token: str = PARTNER_TOKEN) -> dict:
    """Map display name to org id for the orgs the token sees."""
    items = client.get("/v1/organizations", headers=auth(token)).get_json()["items"]
    return {org["displayName"]: org["id"] for org in items}


def next_url(response) -> str | None:
    """Return the path and query of the `rel="next"` Link, or None."""
    link = response.headers.get("Link")
    if not link:
        return None
    url = link.split(";")[0].strip()[1:-1]
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def walk_pages(client, path: str, params: dict, token: str = PARTNER_TOKEN, item_key="items"):
    """Follow Link headers from the first page; return the list of pages' items."""
    pages = []
    response = client.get(path, query_string=params, headers=auth(token))
    while True:
        assert response.status_code == 200, response.get_json()
        pages.append(response.get_json()[item_key])
        url = next_url(response)
        if url is None:
            return pages
        response = client.get(url, headers=auth(token))
        if len(pages) > 1000:
            raise AssertionError(f"paging of {path} does not end")
