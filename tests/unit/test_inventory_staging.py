"""Unit tests of sync staging on a real SQLite file: repeated objects and diff against commit.

The Webex API can serve a page twice or move a person to a later page while a listing is
read. Staging keeps the last copy of each object, and diff() must report what commit()
then writes.
"""

from __future__ import annotations

import re
import sqlite3

import pytest

from ansible_collections.ucops.webex.plugins.module_utils.inventory import (
    InventoryError,
    InventoryStore,
)
from ansible_collections.ucops.webex.plugins.module_utils.inventory_schema import (
    STORED_DATA_TABLES,
)


def api_license(license_id, name, subscription, total=10, consumed=0):
    return {
        "id": license_id,
        "name": name,
        "subscriptionId": subscription,
        "totalUnits": total,
        "consumedUnits": consumed,
        "consumedByUsers": consumed,
        "consumedByWorkspaces": 0,
    }


LICENSES = [
    api_license("C-A", "Webex Calling - Professional", "Sub-A100", total=30, consumed=4),
    api_license("ADV", "Advanced Messaging", "Sub-A100", total=20, consumed=2),
    api_license("C-B", "Webex Calling - Professional", "Sub-B200", total=10, consumed=1),
]


def person(number, name=None, licenses=("C-A",), location="LOC-1"):
    return {
        "id": f"P{number:03d}",
        "emails": [f"user{number}@acme.example"],
        "displayName": name or f"User {number}",
        "locationId": location,
        "licenses": list(licenses),
        "roles": [],
    }


PAGES = [
    [person(1), person(2), person(3)],
    [person(4), person(5, licenses=("C-A", "C-B")), person(6)],
]


@pytest.fixture
def db_path(tmp_path):
    return str(tmp_path / "inventory.db")


@pytest.fixture
def store(db_path):
    with InventoryStore(db_path, lock_timeout=10) as opened:
        changed, _before, _after = opened.upsert_customer(
            "Acme", org_id="ORG-Acme", default_subscription_id="Sub-A100"
        )
        assert changed
        yield opened


def stage(session, licenses, pages):
    session.stage_licenses(licenses)
    for page in pages:
        session.stage_people(page)


def commit_sync(store, licenses=None, pages=None):
    with store.begin_sync("Acme", scope=["licenses", "people"]) as session:
        stage(session, LICENSES if licenses is None else licenses,
              PAGES if pages is None else pages)
        return session.commit()


def diff_sync(store, licenses=None, pages=None):
    session = store.begin_sync("Acme", scope=["licenses", "people"])
    stage(session, LICENSES if licenses is None else licenses, PAGES if pages is None else pages)
    report = session.diff()
    session.discard()
    return report


def stored_person(db_path, person_id):
    connection = sqlite3.connect(db_path)
    connection.row_factory = sqlite3.Row
    try:
        row = connection.execute(
            "SELECT email, display_name, location_id FROM people WHERE customer = 'Acme' "
            "AND id = ?",
            (person_id,),
        ).fetchone()
        licenses = connection.execute(
            "SELECT license_id FROM person_licenses WHERE customer = 'Acme' AND person_id = ? "
            "ORDER BY license_id",
            (person_id,),
        ).fetchall()
    finally:
        connection.close()
    return dict(row), [item[0] for item in licenses]


def people_count(db_path):
    connection = sqlite3.connect(db_path)
    try:
        return connection.execute("SELECT COUNT(*) FROM people").fetchone()[0]
    finally:
        connection.close()


def install_write_counter(path):
    """Count every row written to the data tables, with triggers inside the database."""
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE test_write_count (n INTEGER NOT NULL)")
    connection.execute("INSERT INTO test_write_count VALUES (0)")
    for table in STORED_DATA_TABLES:
        for event in ("INSERT", "UPDATE", "DELETE"):
            connection.execute(
                f"CREATE TRIGGER count_{table}_{event.lower()} AFTER {event} ON {table} "
                "BEGIN UPDATE test_write_count SET n = n + 1; END"
            )
    connection.commit()
    connection.close()


def written_rows(path):
    connection = sqlite3.connect(path)
    try:
        return connection.execute("SELECT n FROM test_write_count").fetchone()[0]
    finally:
        connection.close()


def without_write_keys(report):
    return {
        key: value for key, value in report.items() if key not in ("rows_written", "history_id")
    }


# ---------------------------------------------------------------------------
# Repeated pages and people


REPEATED_PAGE = [
    person(1, name="User 1 renamed", licenses=("ADV",)),
    person(2, location="LOC-2"),
    person(3, licenses=()),
]


def test_repeated_page_counted(store):
    report = commit_sync(store, pages=[PAGES[0], PAGES[1], REPEATED_PAGE])
    assert report["duplicates"]["people"] == 3
    assert report["staged"]["people"] == 6
    assert report["summary"]["people"]["added"] == 6


def test_repeated_objects_named_in_warning(store):
    licenses = LICENSES + [dict(LICENSES[0], name="Basic Messaging")]

    report = commit_sync(store, licenses=licenses, pages=[PAGES[0], PAGES[1], REPEATED_PAGE])

    warning = report["data_warnings"][0]
    assert "listed objects of customer 'Acme' more than once (1 of licenses, 3 of people" in (
        warning)
    assert "The last copy of each was stored" in warning


def test_repeated_page_keeps_last_fields(db_path, store):
    commit_sync(store, pages=[PAGES[0], PAGES[1], REPEATED_PAGE])
    row, _licenses = stored_person(db_path, "P001")
    assert row["display_name"] == "User 1 renamed"
    row, _licenses = stored_person(db_path, "P002")
    assert row["location_id"] == "LOC-2"


def test_repeated_page_keeps_last_licenses(db_path, store):
    commit_sync(store, pages=[PAGES[0], PAGES[1], REPEATED_PAGE])
    assert stored_person(db_path, "P001")[1] == ["ADV"]
    assert stored_person(db_path, "P003")[1] == []


def test_repeated_page_in_diff(store):
    report = diff_sync(store, pages=[PAGES[0], REPEATED_PAGE, PAGES[1]])
    added = {change["id"]: change for change in report["people"]["changes"]}
    assert report["duplicates"]["people"] == 3
    assert added["P001"]["display_name"] == "User 1 renamed"
    assert added["P001"]["licenses_added"] == ["ADV"]
    assert added["P003"]["licenses_added"] == []


def test_repeated_page_over_inventory(db_path, store):
    commit_sync(store)
    report = commit_sync(store, pages=[PAGES[0], PAGES[1], REPEATED_PAGE])
    assert report["summary"]["people"] == {
        "added": 0,
        "updated": 3,
        "removed": 0,
        "unchanged": 3,
    }
    assert stored_person(db_path, "P001")[1] == ["ADV"]


def test_person_in_two_pages_counted(store):
    moved = person(1, name="User 1 moved", licenses=("C-A", "ADV"))
    report = commit_sync(store, pages=[PAGES[0], PAGES[1] + [moved]])
    assert report["duplicates"]["people"] == 1
    assert report["staged"]["people"] == 6


def test_person_in_two_pages_keeps_last(db_path, store):
    moved = person(1, name="User 1 moved", licenses=("C-A", "ADV"))
    commit_sync(store, pages=[PAGES[0], PAGES[1] + [moved]])
    row, licenses = stored_person(db_path, "P001")
    assert row["display_name"] == "User 1 moved"
    assert licenses == ["ADV", "C-A"]
    assert people_count(db_path) == 6


def test_person_dropped_licenses_in_later_page(db_path, store):
    later = person(5, licenses=())
    commit_sync(store, pages=[PAGES[0], PAGES[1], [later]])
    assert stored_person(db_path, "P005")[1] == []


def test_repeated_license_keeps_last(store):
    changed = api_license("C-A", "Webex Calling - Professional", "Sub-A100", total=40)
    report = commit_sync(store, licenses=LICENSES + [changed])
    assert report["duplicates"]["licenses"] == 1
    rows = {row["id"]: row for row in store.list_licenses("Acme")}
    assert rows["C-A"]["total_units"] == 40


def test_no_repeats_no_duplicates(store):
    report = commit_sync(store)
    assert report["duplicates"] == {"licenses": 0, "people": 0}


# ---------------------------------------------------------------------------
# diff() against commit()


CHANGED_LICENSES = [
    api_license("C-A", "Webex Calling - Professional", "Sub-A100", total=30, consumed=5),
    api_license("C-B", "Webex Calling - Professional", "Sub-B200", total=10, consumed=1),
    api_license("STD", "Webex Calling - Standard", "Sub-A100", total=5),
]
CHANGED_PAGES = [
    [person(1, name="User One"), person(2, licenses=("C-A", "STD")), person(3)],
    [person(5, licenses=("C-A", "C-B")), person(6), person(7)],
]


def test_unchanged_resync_diff_matches_commit(db_path, store):
    commit_sync(store)
    install_write_counter(db_path)
    diff = diff_sync(store)
    commit = commit_sync(store)
    assert diff == without_write_keys(commit)
    assert diff["changed"] is False
    assert commit["rows_written"] == 0
    assert written_rows(db_path) == 0


def test_changed_resync_diff_matches_commit(db_path, store):
    commit_sync(store)
    install_write_counter(db_path)
    diff = diff_sync(store, CHANGED_LICENSES, CHANGED_PAGES)
    assert written_rows(db_path) == 0
    commit = commit_sync(store, CHANGED_LICENSES, CHANGED_PAGES)
    assert diff == without_write_keys(commit)


def test_changed_resync_summary(store):
    commit_sync(store)
    report = commit_sync(store, CHANGED_LICENSES, CHANGED_PAGES)
    assert report["summary"]["licenses"] == {
        "added": 1,
        "updated": 1,
        "removed": 1,
        "unchanged": 1,
    }
    assert report["summary"]["people"] == {
        "added": 1,
        "updated": 2,
        "removed": 1,
        "unchanged": 3,
    }


# Licenses: 1 insert, 1 update, 1 delete. People: P007 inserted with its license link,
# P001 renamed, P002 given STD (one link, and its new fingerprint on the unchanged person
# row), P004 and its license link deleted. No person held STD before, so its id also gets
# its key in link_targets (one row).
CHANGED_ROWS = 3 + 2 + 1 + 2 + 2 + 1


def test_changed_resync_rows_written(store):
    commit_sync(store)
    report = commit_sync(store, CHANGED_LICENSES, CHANGED_PAGES)
    assert report["rows_written"] == CHANGED_ROWS


def test_changed_resync_writes_only_changes(db_path, store):
    commit_sync(store)
    # The counter's triggers add to connection.total_changes, so rows_written is not
    # compared here: the triggers count the data rows on their own.
    install_write_counter(db_path)
    commit_sync(store, CHANGED_LICENSES, CHANGED_PAGES)
    assert written_rows(db_path) == CHANGED_ROWS


def test_changed_resync_leaves_inventory_as_staged(db_path, store):
    commit_sync(store)
    commit_sync(store, CHANGED_LICENSES, CHANGED_PAGES)
    again = commit_sync(store, CHANGED_LICENSES, CHANGED_PAGES)
    assert again["changed"] is False
    assert again["rows_written"] == 0


def test_diff_then_commit_same_session(store):
    commit_sync(store)
    with store.begin_sync("Acme", scope=["licenses", "people"]) as session:
        stage(session, CHANGED_LICENSES, CHANGED_PAGES)
        diff = session.diff()
        commit = session.commit()
    assert diff == without_write_keys(commit)


def test_person_twice_in_one_page_keeps_last(db_path, store):
    twice = [
        person(1, name="First copy", licenses=("C-A", "C-B")),
        person(2),
        person(1, name="Last copy", licenses=("ADV",)),
    ]
    report = commit_sync(store, pages=[twice])
    assert report["duplicates"]["people"] == 1
    assert report["staged"]["people"] == 2
    row, licenses = stored_person(db_path, "P001")
    assert row["display_name"] == "Last copy"
    assert licenses == ["ADV"]
    assert stored_person(db_path, "P002")[1] == ["C-A"]


def test_person_twice_in_one_page_over_inventory(db_path, store):
    commit_sync(store)
    twice = [person(1, licenses=("ADV",)), person(1), *PAGES[0][1:], *PAGES[1]]
    report = commit_sync(store, pages=[twice])
    assert report["summary"]["people"]["updated"] == 0
    assert report["changed"] is False
    assert stored_person(db_path, "P001")[1] == ["C-A"]


def workspace(number, licenses):
    return {
        "id": f"W{number:03d}",
        "displayName": f"Room {number}",
        "locationId": "LOC-1",
        "calling": {"type": "webexCalling", "webexCalling": {"licenses": list(licenses)}},
    }


def stored_workspace_licenses(db_path, workspace_id):
    connection = sqlite3.connect(db_path)
    try:
        rows = connection.execute(
            "SELECT license_id FROM workspace_licenses WHERE customer = 'Acme' "
            "AND workspace_id = ? ORDER BY license_id",
            (workspace_id,),
        ).fetchall()
    finally:
        connection.close()
    return [row[0] for row in rows]


def test_repeated_link_in_one_object_stored_once(db_path, store):
    # A workspace that lists the same license twice gives one link: the staged links are
    # keyed by (workspace copy, license code), so a second equal link would be rejected.
    with store.begin_sync("Acme", scope=["licenses", "workspaces"]) as session:
        session.stage_licenses(LICENSES)
        session.stage_workspaces([workspace(1, ("C-A", "C-A")), workspace(2, ("C-B",))])
        report = session.commit()
    assert report["summary"]["workspaces"]["added"] == 2
    assert stored_workspace_licenses(db_path, "W001") == ["C-A"]
    assert stored_workspace_licenses(db_path, "W002") == ["C-B"]


def test_workspace_twice_in_one_page_keeps_last(db_path, store):
    with store.begin_sync("Acme", scope=["licenses", "workspaces"]) as session:
        session.stage_licenses(LICENSES)
        listed = session.stage_workspaces(
            [workspace(1, ("C-A", "C-B")), workspace(1, ("C-B",))]
        )
        report = session.commit()
    assert listed == 2
    assert report["duplicates"]["workspaces"] == 1
    assert stored_workspace_licenses(db_path, "W001") == ["C-B"]


def test_staging_after_diff_indexes_new_links(db_path, store):
    with store.begin_sync("Acme", scope=["licenses", "people"]) as session:
        stage(session, LICENSES, [PAGES[0]])
        first = session.diff()
        # The same page again, then a new one: the links staged after the diff are
        # indexed again, and the repeated page replaces the first copy.
        session.stage_people(PAGES[0])
        session.stage_people(PAGES[1])
        report = session.commit()
    assert first["summary"]["people"]["added"] == 3
    assert report["summary"]["people"]["added"] == 6
    assert report["duplicates"]["people"] == 3
    assert stored_person(db_path, "P005")[1] == ["C-A", "C-B"]
    assert people_count(db_path) == 6


def test_finish_type_before_more_pages(db_path, store):
    with store.begin_sync("Acme", scope=["licenses", "people"]) as session:
        session.stage_licenses(LICENSES)
        session.finish_type("licenses")
        session.stage_people(PAGES[0])
        session.finish_type("people")
        session.finish_type("people")  # nothing was staged since, so this does nothing
        # A page after the finish that repeats a person: the commit finishes it again.
        session.stage_people(PAGES[1] + [person(1, licenses=("ADV",))])
        report = session.commit()
    assert report["summary"]["people"]["added"] == 6
    assert report["duplicates"]["people"] == 1
    assert stored_person(db_path, "P001")[1] == ["ADV"]
    assert stored_person(db_path, "P005")[1] == ["C-A", "C-B"]


def test_finish_type_outside_scope_rejected(store):
    with store.begin_sync("Acme", scope=["licenses", "people"]) as session:
        with pytest.raises(ValueError, match="cannot stage workspaces: not in the sync scope"):
            session.finish_type("workspaces")
        session.discard()


def test_repeat_after_empty_page_staged(db_path, store):
    # An empty page after a finish appends nothing. The page after it must still drop
    # the unique index of the staged links before it appends a repeated link.
    with store.begin_sync("Acme", scope=["licenses", "workspaces"]) as session:
        session.stage_licenses(LICENSES)
        session.stage_workspaces([workspace(1, ("C-A",))])
        session.finish_type("workspaces")
        session.stage_workspaces([])
        session.stage_workspaces([workspace(1, ("C-A", "C-B"))])
        report = session.commit()
    assert report["duplicates"]["workspaces"] == 1
    assert stored_workspace_licenses(db_path, "W001") == ["C-A", "C-B"]


def test_changed_person_after_unchanged_page_in_diff(db_path, store):
    # Every person of PAGES[0] is stored unchanged, so that page stages no rows. The
    # changed copy of P001 after it repeats a link staged before the diff.
    commit_sync(store)
    with store.begin_sync("Acme", scope=["licenses", "people"]) as session:
        stage(session, LICENSES, [[person(1, name="Renamed")]])
        session.diff()
        session.stage_people(PAGES[0][1:])
        session.stage_people([person(1, name="Renamed again")])
        report = session.commit()
    assert report["summary"]["people"]["updated"] == 1
    row, licenses = stored_person(db_path, "P001")
    assert row["display_name"] == "Renamed again"
    assert licenses == ["C-A"]


# ---------------------------------------------------------------------------
# Links stored by integer keys (schema 4)


def test_license_id_without_license_row_is_kept(db_path, store):
    # A person may hold a license id that GET /v1/licenses did not return. Its link is kept
    # like any other; link_targets gives the id a key of its own.
    pages = [[person(1, licenses=("C-A", "GONE")), person(2, licenses=("GONE",))]]
    commit_sync(store, pages=pages)
    assert stored_person(db_path, "P001")[1] == ["C-A", "GONE"]
    assert stored_person(db_path, "P002")[1] == ["GONE"]
    again = commit_sync(store, pages=[[person(1), person(2, licenses=())]])
    assert again["summary"]["people"]["updated"] == 2
    assert stored_person(db_path, "P001")[1] == ["C-A"]
    assert stored_person(db_path, "P002")[1] == []


def test_same_license_ids_of_two_customers_stay_apart(db_path, store):
    store.upsert_customer("Other", org_id="ORG-Other", default_subscription_id="Sub-A100")
    commit_sync(store)
    with store.begin_sync("Other", scope=["licenses", "people"]) as session:
        stage(session, LICENSES, [[person(1, licenses=("C-B",))]])
        session.commit()
    # Both customers hold license ids C-A and C-B and a person P001: each keeps its own.
    assert store.find_person("Acme", "P001")["license_ids"] == ["C-A"]
    assert store.find_person("Other", "P001")["license_ids"] == ["C-B"]
    commit_sync(store, pages=[[person(1, licenses=("C-B",))]])
    assert store.find_person("Acme", "P001")["license_ids"] == ["C-B"]
    assert store.find_person("Other", "P001")["license_ids"] == ["C-B"]
    assert people_count(db_path) == 2


def test_removed_person_leaves_no_key_pairs(db_path, store):
    commit_sync(store)
    commit_sync(store, pages=[PAGES[0]])
    connection = sqlite3.connect(db_path)
    try:
        pairs = connection.execute("SELECT COUNT(*) FROM person_license_keys").fetchone()[0]
        orphans = connection.execute(
            "SELECT COUNT(*) FROM person_license_keys k WHERE NOT EXISTS "
            "(SELECT 1 FROM people o WHERE o.person_key = k.person_key)"
        ).fetchone()[0]
    finally:
        connection.close()
    assert orphans == 0
    assert pairs == 3


def test_page_larger_than_one_insert_statement(db_path, store):
    # 450 people of 8 staged columns and 1,350 links of 2 need several statements each,
    # because one statement takes at most 999 parameters. Every row and link must arrive once.
    page = [
        person(number, licenses=("C-A", "ADV", "C-B")[: 1 + number % 3])
        for number in range(1, 451)
    ]
    report = commit_sync(store, pages=[page])
    assert report["summary"]["people"]["added"] == 450
    assert people_count(db_path) == 450
    for number in (1, 124, 125, 126, 249, 250, 450):
        expected = sorted(("C-A", "ADV", "C-B")[: 1 + number % 3])
        assert stored_person(db_path, f"P{number:03d}")[1] == expected, number
    connection = sqlite3.connect(db_path)
    try:
        links = connection.execute("SELECT COUNT(*) FROM person_licenses").fetchone()[0]
    finally:
        connection.close()
    assert links == sum(1 + number % 3 for number in range(1, 451))


def test_link_written_to_view_is_stored(db_path, store):
    commit_sync(store)
    connection = sqlite3.connect(db_path)
    try:
        with connection:
            connection.execute(
                "INSERT INTO person_licenses (customer, person_id, license_id) "
                "VALUES ('Acme', 'P001', 'NEW-ID')"
            )
            connection.execute(
                "DELETE FROM person_licenses WHERE customer = 'Acme' AND person_id = 'P001' "
                "AND license_id = 'C-A'"
            )
    finally:
        connection.close()
    assert stored_person(db_path, "P001")[1] == ["NEW-ID"]
    assert stored_person(db_path, "P002")[1] == ["C-A"]


def test_link_of_unknown_person_rejected(db_path, store):
    commit_sync(store)
    connection = sqlite3.connect(db_path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="person not found in people"):
            connection.execute(
                "INSERT INTO person_licenses (customer, person_id, license_id) "
                "VALUES ('Acme', 'P999', 'C-A')"
            )
    finally:
        connection.close()


def test_person_deleted_by_hand_takes_links(db_path, store):
    commit_sync(store)
    connection = sqlite3.connect(db_path)
    try:
        with connection:
            key = connection.execute(
                "SELECT person_key FROM people WHERE customer = 'Acme' AND id = 'P006'"
            ).fetchone()[0]
            connection.execute("DELETE FROM people WHERE customer = 'Acme' AND id = 'P006'")
        pairs = connection.execute(
            "SELECT COUNT(*) FROM person_license_keys WHERE person_key = ?", (key,)
        ).fetchone()[0]
    finally:
        connection.close()
    assert pairs == 0
    # P006 had the highest key, so a new person gets the same key, without P006's links.
    again = commit_sync(store, pages=[PAGES[0], PAGES[1][:2] + [person(7, licenses=())]])
    assert again["summary"]["people"]["added"] == 1
    assert stored_person(db_path, "P007")[1] == []


def link_target_ids(path):
    connection = sqlite3.connect(path)
    try:
        return sorted(row[0] for row in connection.execute("SELECT id FROM link_targets"))
    finally:
        connection.close()


def test_replaced_person_copy_adds_no_target(db_path, store):
    commit_sync(store)
    # P001 is listed twice: first with a license id that no person holds, then unchanged.
    # The last copy wins, so the only change is the renamed P002 (one person row).
    pages = [
        [person(1, licenses=("NEW",)), person(2, name="User 2 renamed"), person(3)],
        PAGES[1] + [person(1)],
    ]
    report = commit_sync(store, pages=pages)
    assert report["summary"]["people"] == {
        "added": 0,
        "updated": 1,
        "removed": 0,
        "unchanged": 5,
    }
    assert report["rows_written"] == 1
    assert "NEW" not in link_target_ids(db_path)


def test_replaced_workspace_copy_adds_no_target(db_path, store):
    with store.begin_sync("Acme", scope=["licenses", "workspaces"]) as session:
        session.stage_licenses(LICENSES)
        session.stage_workspaces([workspace(1, ("C-A",)), workspace(2, ("C-B",))])
        session.commit()
    with store.begin_sync("Acme", scope=["licenses", "workspaces"]) as session:
        session.stage_licenses(LICENSES)
        # W001 is listed first with a license id that no workspace holds, then as stored.
        # W002 gets C-A.
        session.stage_workspaces([workspace(1, ("NEW",))])
        session.stage_workspaces([workspace(1, ("C-A",)), workspace(2, ("C-A", "C-B"))])
        report = session.commit()
    assert report["summary"]["workspaces"]["updated"] == 1
    assert stored_workspace_licenses(db_path, "W001") == ["C-A"]
    # One new link of W002.
    assert report["rows_written"] == 1
    assert "NEW" not in link_target_ids(db_path)


def test_dropped_code_listed_again_later(db_path, store):
    with store.begin_sync("Acme", scope=["licenses", "people"]) as session:
        stage(session, LICENSES, [[person(1, licenses=("NEW",))], [person(1)]])
        session.finish_type("people")
        session.stage_people([person(9, licenses=("NEW", "C-A"))])
        report = session.commit()
    assert report["summary"]["people"]["added"] == 2
    assert stored_person(db_path, "P001")[1] == ["C-A"]
    assert stored_person(db_path, "P009")[1] == ["C-A", "NEW"]
    assert link_target_ids(db_path) == ["C-A", "NEW"]


def without_licenses(page):
    return [{key: value for key, value in item.items() if key not in ("licenses", "roles")}
            for item in page]


def test_people_listed_without_licenses_change_nothing(db_path, store):
    """A token that cannot see licenses gets people without the field: read as "no
    licenses", the sync would remove every link. It fails instead, in check mode too."""
    commit_sync(store)
    before = [stored_person(db_path, f"P{number:03d}") for number in range(1, 7)]
    hidden = [without_licenses(page) for page in PAGES]

    with pytest.raises(InventoryError, match="none of the 6 people .* 'licenses' field"):
        diff_sync(store, pages=hidden)
    with pytest.raises(InventoryError, match="use the token of a full or read-only admin"):
        commit_sync(store, pages=hidden)

    assert [stored_person(db_path, f"P{number:03d}") for number in range(1, 7)] == before


def test_one_person_without_licenses_holds_none(db_path, store):
    commit_sync(store)
    pages = [PAGES[0], without_licenses(PAGES[1][:1]) + PAGES[1][1:]]

    commit_sync(store, pages=pages)

    assert stored_person(db_path, "P004")[1] == []
    assert stored_person(db_path, "P005")[1] == ["C-A", "C-B"]


def assert_stage_fails_unchanged(db_path, store, stage_name, item, message):
    """Staging ``item`` fails with ``message``; the stored people stay as they were."""
    commit_sync(store)
    before = [stored_person(db_path, f"P{number:03d}") for number in range(1, 7)]
    session = store.begin_sync("Acme", scope=["people", "locations", "workspaces"])
    try:
        with pytest.raises(ValueError, match=re.escape(message)):
            getattr(session, stage_name)([item])
    finally:
        session.discard()

    assert [stored_person(db_path, f"P{number:03d}") for number in range(1, 7)] == before


@pytest.mark.parametrize("stage_name, item, message", [
    ("stage_people", dict(person(7), licenses="C-A"), "person 'P007' has licenses 'C-A'"),
    ("stage_people", dict(person(7), roles="R1"), "person 'P007' has roles 'R1'"),
    ("stage_people", dict(person(7), emails="user7@acme.example"), "has emails"),
    ("stage_people", dict(person(7), displayName={"first": "Ann"}), "has displayName"),
    ("stage_people", dict(person(7), locationId=["LOC-1"]), "has locationId"),
    ("stage_locations", {"id": "LOC-9", "name": "X", "address": "1 Main St"},
     "location 'LOC-9' has address '1 Main St', which is not an object"),
    ("stage_workspaces", {"id": "W9", "calling": "webexCalling"},
     "workspace 'W9' has calling 'webexCalling', which is not an object"),
    ("stage_workspaces", {"id": "W9", "calling": {"type": "webexCalling",
                                                  "webexCalling": {"licenses": "C-A"}}},
     "workspace 'W9' has licenses 'C-A', which is not a list"),
])
def test_field_of_another_type_fails_the_sync(db_path, store, stage_name, item, message):
    """A string where the API sends a list (or an object) is not read letter by letter: the
    sync fails naming the object and the field, and the inventory keeps what it had."""
    assert_stage_fails_unchanged(db_path, store, stage_name, item, message)


@pytest.mark.parametrize("stage_name, item, message", [
    ("stage_people", dict(person(7), displayName="Ann \ud800"),
     "person 'P007' has display_name 'Ann \\ud800', which is not valid Unicode"),
    ("stage_people", dict(person(7), licenses=["C-A", "L\udc80"]),
     "person 'P007' has a license or role id 'L\\udc80'"),
    ("stage_people", dict(person(7), id="P\udfff"),
     "person 'P\\udfff' has id 'P\\udfff'"),
    ("stage_locations", {"id": "LOC-9", "name": "Site", "address": {"city": "\ud83d"}},
     "location 'LOC-9' has city '\\ud83d'"),
    ("stage_workspaces", {"id": "W9", "displayName": "Room \udc00"},
     "workspace 'W9' has display_name 'Room \\udc00'"),
])
def test_lone_surrogate_named_in_error(db_path, store, stage_name, item, message):
    """JSON may escape a lone UTF-16 surrogate, which UTF-8 cannot store: the sync fails
    naming the object and field, and the inventory keeps what it had."""
    assert_stage_fails_unchanged(db_path, store, stage_name, item, message)


def test_license_without_total_units_warns(store):
    licenses = [dict(item) for item in LICENSES]
    del licenses[1]["totalUnits"]
    licenses[2]["totalUnits"] = None

    report = commit_sync(store, licenses=licenses)

    assert len(report["data_warnings"]) == 1
    warning = report["data_warnings"][0]
    assert "listed 2 license(s) of customer 'Acme' without totalUnits (ADV, C-B)" in warning
    assert "stored with 0 units in total" in warning


def test_license_with_negative_total_units_warns(store):
    licenses = [dict(item) for item in LICENSES]
    licenses[1]["totalUnits"] = -1
    licenses[2]["totalUnits"] = "-5"

    report = commit_sync(store, licenses=licenses)

    assert len(report["data_warnings"]) == 1
    warning = report["data_warnings"][0]
    assert "listed 2 license(s) of customer 'Acme' with a negative totalUnits (ADV, C-B)" in warning
    assert "stored with 0 units in total" in warning
    stored = {row["id"]: row for row in store.license_rows(customer="Acme")}
    assert stored[licenses[1]["id"]]["total_units"] == 0
    assert stored[licenses[1]["id"]]["available_units"] == 0


def test_complete_licenses_no_data_warning(store):
    assert commit_sync(store)["data_warnings"] == []


def test_empty_people_list_refused_while_licenses_are_used(db_path, store):
    """GET /people answering an empty list, while the licenses show units consumed by
    users, would remove every stored person: the sync changes nothing instead."""
    commit_sync(store)
    before = [stored_person(db_path, f"P{number:03d}") for number in range(1, 7)]

    with pytest.raises(InventoryError, match="GET /people returned no people, while the "
                       "licenses show 7 units consumed by users"):
        commit_sync(store, pages=[[]])

    assert [stored_person(db_path, f"P{number:03d}") for number in range(1, 7)] == before


def test_empty_people_list_refused_for_one_unit(db_path, store):
    # One unit used by users is enough to refuse the empty list.
    one_used = [dict(item, consumedUnits=0, consumedByUsers=0) for item in LICENSES]
    one_used[0].update(consumedUnits=1, consumedByUsers=1)
    commit_sync(store, licenses=one_used, pages=[[person(1)]])

    with pytest.raises(InventoryError, match="licenses show 1 unit consumed by users"):
        commit_sync(store, licenses=one_used, pages=[[]])

    assert stored_person(db_path, "P001") is not None


def test_empty_people_list_accepted_without_used_licenses(store):
    commit_sync(store)
    unused = [dict(item, consumedUnits=0, consumedByUsers=0) for item in LICENSES]

    report = commit_sync(store, licenses=unused, pages=[[]])

    assert report["summary"]["people"]["removed"] == 6


def test_empty_locations_list_refused_while_people_are_placed(store):
    with store.begin_sync("Acme", scope=["licenses", "people", "locations"]) as session:
        stage(session, LICENSES, PAGES)
        session.stage_locations([{"id": "LOC-1", "name": "Head Office"}])
        session.commit()

    with store.begin_sync("Acme", scope=["people", "locations"]) as session:
        for page in PAGES:
            session.stage_people(page)
        session.stage_locations([])
        with pytest.raises(InventoryError, match="GET /locations returned no locations"):
            session.commit()

    assert [row["id"] for row in store.list_locations("Acme")] == ["LOC-1"]


@pytest.mark.parametrize("scope, pages", [
    (["locations"], None),  # nothing read by this sync places anyone in a location
    (["people", "locations"], [[person(1, location=None), person(2, location=None)]]),
])
def test_empty_locations_list_applied_when_nothing_contradicts(store, scope, pages):
    with store.begin_sync("Acme", scope=["licenses", "people", "locations"]) as session:
        stage(session, LICENSES, PAGES)
        session.stage_locations([{"id": "LOC-1", "name": "Head Office"}])
        session.commit()

    with store.begin_sync("Acme", scope=scope) as session:
        for page in pages or []:
            session.stage_people(page)
        session.stage_locations([])
        report = session.commit()

    assert report["summary"]["locations"]["removed"] == 1
    assert store.list_locations("Acme") == []


def test_empty_people_list_applied_without_licenses_in_scope(store):
    """A sync of the people alone has no fresh license counts to judge an empty list by,
    so it applies it: the way to remove every person on purpose."""
    commit_sync(store)

    with store.begin_sync("Acme", scope=["people"]) as session:
        session.stage_people([])
        report = session.commit()

    assert report["summary"]["people"]["removed"] == 6


def test_history_records_rows_written(store):
    report = commit_sync(store)

    (entry,) = store.sync_history("Acme")
    assert report["rows_written"] > 0
    assert entry["rows_written"] == report["rows_written"]


def test_sample_of_exact_size_not_truncated(store):
    with store.begin_sync("Acme", scope=["people"]) as session:
        session.stage_people([person(1), person(2)])
        report = session.commit(people_sample=2)

    assert len(report["people"]["changes"]) == 2
    assert report["people"]["truncated"] is False
