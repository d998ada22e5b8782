"""Store snapshots and comparisons shared by the reliability tests (test_reliability_*.py)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

from tests.integration.helpers import ORGS, PARTNER_TOKEN

BOREALIS = ORGS["Borealis Logistics"]
HISTORY_COLUMNS = ("id", "customer", "scope", "device", "started_at", "finished_at", "outcome",
                   "changed", "rows_written", "summary", "error")


def dump_store(path: Path | str) -> dict[str, list[tuple]]:
    """Return every row of every table of an inventory file, each table's rows sorted."""
    with contextlib.closing(sqlite3.connect(str(path))) as connection:
        tables = [row[0] for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {table: sorted(connection.execute(f'SELECT * FROM "{table}"').fetchall(),
                              key=repr)
                for table in tables}


def history_rows(path: Path | str) -> list[dict[str, Any]]:
    """Return the sync_history rows of an inventory file, oldest first."""
    with contextlib.closing(sqlite3.connect(str(path))) as connection:
        rows = connection.execute(
            f"SELECT {', '.join(HISTORY_COLUMNS)} FROM sync_history ORDER BY id").fetchall()
    return [dict(zip(HISTORY_COLUMNS, row)) for row in rows]


def assert_store_unchanged(path: Path | str, before: dict[str, list[tuple]],
                           failed_syncs: int = 0) -> list[dict[str, Any]]:
    """Assert that every table equals ``before``, apart from ``failed_syncs`` new history rows.

    A failed sync records itself in sync_history by design, so that table may gain exactly
    ``failed_syncs`` rows with outcome 'failed', changed 0 and rows_written 0. Returns them.
    """
    after = dump_store(path)
    assert sorted(after) == sorted(before), "the set of tables changed"
    for table in before:
        if table == "sync_history":
            continue
        assert after[table] == before[table], f"table {table} changed"

    old_ids = {row[0] for row in before["sync_history"]}
    kept = [row for row in after["sync_history"] if row[0] in old_ids]
    assert kept == before["sync_history"], "existing sync_history rows changed"
    new_rows = [row for row in history_rows(path) if row["id"] not in old_ids]
    assert len(new_rows) == failed_syncs, new_rows
    for row in new_rows:
        assert row["outcome"] == "failed", row
        assert row["changed"] == 0, row
        assert row["rows_written"] == 0, row
    return new_rows


def count_rows(path: Path | str, table: str, customer: str) -> int:
    with contextlib.closing(sqlite3.connect(str(path))) as connection:
        return connection.execute(
            f"SELECT COUNT(*) FROM {table} WHERE customer = ?", (customer,)).fetchone()[0]


def assert_inventory_matches_org(path: Path | str, customer: str, org: dict,
                                 extra_links: tuple[tuple[str, str], ...] = ()) -> None:
    """Assert that the stored objects of ``customer`` are exactly those of a fixture org.

    ``extra_links`` are (person id, license id) pairs assigned live after the fixture loaded.
    """
    with contextlib.closing(sqlite3.connect(str(path))) as connection:
        def ids(table: str) -> set[str]:
            return {row[0] for row in connection.execute(
                f"SELECT id FROM {table} WHERE customer = ?", (customer,))}

        def pairs(table: str, owner: str, target: str) -> set[tuple[str, str]]:
            return set(connection.execute(
                f"SELECT {owner}, {target} FROM {table} WHERE customer = ?", (customer,)))

        assert ids("licenses") == {item["id"] for item in org["licenses"]}
        assert ids("roles") == {item["id"] for item in org["roles"]}
        assert ids("people") == {item["id"] for item in org["people"]}
        assert ids("locations") == {item["id"] for item in org["locations"]}
        assert ids("workspaces") == {item["id"] for item in org["workspaces"]}
        assert pairs("person_licenses", "person_id", "license_id") == {
            (person["id"], license_id)
            for person in org["people"] for license_id in person["licenses"]} | set(extra_links)


def assign_outside_license(simulator, org: dict = BOREALIS) -> tuple[str, str]:
    """Give one person a license they lack, as another admin would.

    Returns (person id, license id), so a test can tell a synced inventory from a stale one.
    """
    license_id = next(item["id"] for item in org["licenses"]
                      if item["name"] == "Advanced Messaging")
    person = next(item for item in org["people"] if license_id not in item["licenses"])
    email = person["emails"][0]
    response = simulator.api("PATCH", "/licenses/users", token=PARTNER_TOKEN, json={
        "email": email, "orgId": org["id"],
        "licenses": [{"id": license_id, "operation": "add"}]})
    assert response.status_code == 200, response.text
    return person["id"], license_id


def module_args(simulator, **options: Any) -> dict[str, Any]:
    """Return connection options for the demo simulator and the partner token."""
    args = {"api_url": simulator.api_url, "access_token": PARTNER_TOKEN, "max_retry_wait": 30}
    args.update(options)
    return args
