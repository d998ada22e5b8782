"""Helpers shared by integration tests: customer setup tasks and direct reads of both sides."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from tests.integration.conftest import DEMO_FIXTURE

PARTNER_TOKEN = "demo-partner-token"
DEMO = json.loads(DEMO_FIXTURE.read_text())
ORGS = {org["displayName"]: org for org in DEMO["organizations"]}


def connection_defaults(simulator) -> dict[str, dict[str, Any]]:
    """Return module_defaults that point every ucops.webex module at the simulator."""
    return {"group/ucops.webex.webex": {"api_url": simulator.api_url,
                                        "access_token": PARTNER_TOKEN,
                                        "max_retry_wait": 30}}


def customer_setup_tasks(name: str, scope: list[str] | None = None,
                         **customer_options: Any) -> list[dict]:
    """Return tasks that add a demo org as a customer (with options) and sync it."""
    customer = {"name": name, "org_id": ORGS[name]["id"]}
    customer.update(customer_options)
    sync: dict[str, Any] = {"customer": name}
    if scope is not None:
        sync["scope"] = scope
    return [
        {"name": f"add customer {name}", "ucops.webex.webex_customer": customer},
        {"name": f"sync customer {name}", "ucops.webex.webex_license_sync": sync},
    ]


def inventory_consumed_units(db_path: Path | str, customer: str) -> dict[str, int]:
    """Return ``{license id: consumed_units}`` of a customer, read straight from the file."""
    with sqlite3.connect(str(db_path)) as connection:
        rows = connection.execute(
            "SELECT id, consumed_units FROM licenses WHERE customer = ?", (customer,)
        ).fetchall()
    return dict(rows)


def inventory_person(db_path: Path | str, customer: str, email: str) -> dict[str, Any] | None:
    """Return ``{id, email, location_id, license_ids}`` of a stored person, or None."""
    with sqlite3.connect(str(db_path)) as connection:
        row = connection.execute(
            "SELECT id, email, location_id FROM people "
            "WHERE customer = ? AND lower(email) = lower(?)",
            (customer, email),
        ).fetchone()
        if row is None:
            return None
        license_ids = [
            item[0]
            for item in connection.execute(
                "SELECT license_id FROM person_licenses WHERE customer = ? AND person_id = ?",
                (customer, row[0]),
            )
        ]
    return {"id": row[0], "email": row[1], "location_id": row[2],
            "license_ids": sorted(license_ids)}


def live_consumed_units(simulator, org_id: str) -> dict[str, int]:
    """Return ``{license id: consumedUnits}`` from GET /v1/licenses of the simulator."""
    response = simulator.api("GET", "/licenses", params={"orgId": org_id})
    response.raise_for_status()
    return {item["id"]: item["consumedUnits"] for item in response.json()["items"]}


def live_person(simulator, org_id: str, email: str) -> dict[str, Any]:
    """Return the person with this email from GET /v1/people of the simulator."""
    response = simulator.api("GET", "/people",
                             params={"orgId": org_id, "email": email, "callingData": "true"})
    response.raise_for_status()
    items = response.json()["items"]
    assert len(items) == 1, f"expected one person with email {email}, got {len(items)}"
    return items[0]
