"""Serving speed of the simulator for a large org (100,000 people)."""

from __future__ import annotations

import statistics
import time

import pytest

from tests.simulator.app import create_app
from tests.simulator.generate import build_fixture
from tests.simulator.ids import encode_cursor
from tests.simulator.testkit import auth, next_url

# The bound is deliberately loose against the 100 ms goal, so a busy CI machine passes.
PAGE_BUDGET_SECONDS = 0.1


@pytest.fixture(scope="module")
def large_client():
    fixture = build_fixture(100_000, seed=11, licenses=20, locations=50, workspaces=100)
    return create_app(fixture).test_client()


@pytest.mark.slow
def test_people_page_of_1000_fast(large_client):
    org_id = large_client.get("/v1/organizations", headers=auth("sim-token")).get_json()[
        "items"][0]["id"]
    url = f"/v1/people?orgId={org_id}&max=1000"
    timings = []
    for _ in range(12):
        started = time.perf_counter()
        response = large_client.get(url, headers=auth("sim-token"))
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200
        assert len(response.get_json()["items"]) == 1000
        url = next_url(response)

    assert statistics.median(timings) < PAGE_BUDGET_SECONDS / 2
    assert max(timings) < PAGE_BUDGET_SECONDS


@pytest.mark.slow
def test_deep_page_as_fast(large_client):
    """A page near the end costs the same as the first: the cursor is an index."""
    first = large_client.get("/v1/people?max=1000", headers=auth("sim-token"))
    cursor_url = next_url(first)
    deep_url = cursor_url.replace(
        cursor_url.split("after=")[1], encode_cursor("PEOPLE_PAGING", 99_000)
    )

    started = time.perf_counter()
    response = large_client.get(deep_url, headers=auth("sim-token"))
    elapsed = time.perf_counter() - started

    assert response.status_code == 200
    assert len(response.get_json()["items"]) == 1000
    assert "Link" not in response.headers
    assert elapsed < PAGE_BUDGET_SECONDS
