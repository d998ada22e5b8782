"""Unit tests of the people fingerprint on a real SQLite file.

A sync stages only the people whose fingerprint differs from the one stored in the
inventory. These tests check the digest itself, the digest set that remembers the matched
fingerprints, the upgrade of a schema-1 database, and the error raised when a person that
was not staged changes in the inventory before the commit.
"""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest

from ansible_collections.ucops.webex.plugins.module_utils import inventory as inventory_module
from ansible_collections.ucops.webex.plugins.module_utils import inventory_schema
from ansible_collections.ucops.webex.plugins.module_utils.inventory import (
    InventoryError,
    InventoryStore,
)
from ansible_collections.ucops.webex.plugins.module_utils.inventory_schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
)
from ansible_collections.ucops.webex.plugins.module_utils.inventory_sync import (
    DigestSet,
    PeopleChangedError,
    id_digest,
    person_fingerprint,
    person_row,
)
from tests.unit.test_inventory_staging import (
    LICENSES,
    PAGES,
    commit_sync,
    install_write_counter,
    person,
    stage,
    stored_person,
    written_rows,
)

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
PEOPLE_IDS = ["P001", "P002", "P003", "P004", "P005", "P006"]


@pytest.fixture
def db_path(tmp_path):
    return str(tmp_path / "inventory.db")


@pytest.fixture
def store(db_path):
    # commit_sync of test_inventory_staging syncs the customer "Acme".
    with InventoryStore(db_path, lock_timeout=10) as opened:
        changed, _before, _after = opened.upsert_customer(
            "Acme", org_id="ORG-Acme", default_subscription_id="Sub-A100"
        )
        assert changed
        yield opened


def expected_fingerprint(item):
    """Compute the fingerprint of an API person object as stage_people does."""
    license_ids = sorted({str(i) for i in item.get("licenses") or []})
    role_ids = sorted({str(i) for i in item.get("roles") or []})
    return person_fingerprint(person_row(item), license_ids, role_ids)


def stored_fingerprints(path):
    connection = sqlite3.connect(path)
    try:
        rows = connection.execute(
            "SELECT id, fingerprint FROM people WHERE customer = 'Acme' ORDER BY id"
        ).fetchall()
    finally:
        connection.close()
    return dict(rows)


def staged_people(session):
    """Return the ids in the session's people staging table, before the commit.

    The staging tables are TEMP tables, so only the session's own connection can read them.
    """
    return [row[0] for row in session._conn.execute("SELECT id FROM s_people ORDER BY id")]


def staged_link_count(session):
    return session._conn.execute("SELECT COUNT(*) FROM s_person_licenses").fetchone()[0]


def inventory_rows(path):
    """Return the people, person_licenses and licenses rows, fingerprints included."""
    connection = sqlite3.connect(path)
    try:
        return {
            table: sorted(connection.execute(f"SELECT * FROM {table}").fetchall())
            for table in ("people", "person_licenses", "licenses")
        }
    finally:
        connection.close()


def row(**changes):
    base = {
        "id": "P001",
        "email": "user1@acme.example",
        "display_name": "User 1",
        "location_id": "LOC-1",
    }
    base.update(changes)
    return base


# ---------------------------------------------------------------------------
# person_fingerprint


BASE_LICENSES = ["ADV", "C-A"]
BASE_ROLES = ["R-ADMIN"]

# (case, row, license ids, role ids): each differs from the base person in one respect.
FINGERPRINT_VARIANTS = [
    ("email", row(email="other@acme.example"), BASE_LICENSES, BASE_ROLES),
    ("display name", row(display_name="User One"), BASE_LICENSES, BASE_ROLES),
    ("location", row(location_id="LOC-2"), BASE_LICENSES, BASE_ROLES),
    ("license added", row(), ["ADV", "C-A", "C-B"], BASE_ROLES),
    ("license removed", row(), ["C-A"], BASE_ROLES),
    ("license replaced", row(), ["ADV", "C-B"], BASE_ROLES),
    ("role added", row(), BASE_LICENSES, ["R-ADMIN", "R-USER"]),
    ("role removed", row(), BASE_LICENSES, []),
    ("license moved to roles", row(), ["C-A"], ["ADV", "R-ADMIN"]),
    ("id", row(id="P002"), BASE_LICENSES, BASE_ROLES),
]


def test_fingerprint_same_for_same_sorted_licenses():
    given_orders = [["C-A", "ADV", "C-B"], ["C-B", "C-A", "ADV"], ["ADV", "C-B", "C-A"]]
    fingerprints = {person_fingerprint(row(), sorted(order), BASE_ROLES) for order in given_orders}
    assert len(fingerprints) == 1


def test_fingerprint_same_for_equal_input():
    first = person_fingerprint(row(), BASE_LICENSES, BASE_ROLES)
    second = person_fingerprint(row(), list(BASE_LICENSES), list(BASE_ROLES))
    assert first == second


@pytest.mark.parametrize(
    "changed_row, license_ids, role_ids",
    [variant[1:] for variant in FINGERPRINT_VARIANTS],
    ids=[variant[0] for variant in FINGERPRINT_VARIANTS],
)
def test_fingerprint_differs_on_change(changed_row, license_ids, role_ids):
    base = person_fingerprint(row(), BASE_LICENSES, BASE_ROLES)
    assert person_fingerprint(changed_row, license_ids, role_ids) != base


def test_fingerprint_variants_all_distinct():
    fingerprints = {
        person_fingerprint(changed_row, license_ids, role_ids)
        for _case, changed_row, license_ids, role_ids in FINGERPRINT_VARIANTS
    }
    assert len(fingerprints) == len(FINGERPRINT_VARIANTS)


@pytest.mark.parametrize("field", ["email", "display_name", "location_id"])
def test_fingerprint_none_differs_from_empty(field):
    missing = person_fingerprint(row(**{field: None}), BASE_LICENSES, BASE_ROLES)
    empty = person_fingerprint(row(**{field: ""}), BASE_LICENSES, BASE_ROLES)
    assert missing != empty


def test_fingerprint_fits_sqlite_integer(tmp_path):
    fingerprints = [
        person_fingerprint(row(id=f"P{number:05d}"), BASE_LICENSES, BASE_ROLES)
        for number in range(500)
    ]
    for value in fingerprints:
        assert isinstance(value, int)
        assert INT64_MIN <= value <= INT64_MAX
    # Both signs occur, so the digest uses the whole signed range.
    assert any(value < 0 for value in fingerprints)
    assert any(value > 0 for value in fingerprints)

    connection = sqlite3.connect(str(tmp_path / "digests.db"))
    try:
        connection.execute("CREATE TABLE digests (value INTEGER)")
        connection.executemany("INSERT INTO digests VALUES (?)", [(v,) for v in fingerprints])
        stored = connection.execute("SELECT value, typeof(value) FROM digests").fetchall()
    finally:
        connection.close()
    assert [value for value, _type in stored] == fingerprints
    assert {value_type for _value, value_type in stored} == {"integer"}


def test_id_digest_fits_int64_and_differs():
    digests = {id_digest(f"P{number:05d}") for number in range(500)}
    assert len(digests) == 500
    for value in digests:
        assert INT64_MIN <= value <= INT64_MAX


# ---------------------------------------------------------------------------
# DigestSet


def test_digest_set_membership():
    digests = DigestSet([30, -7, INT64_MAX, INT64_MIN, 0])
    assert len(digests) == 5
    for value in (30, -7, INT64_MAX, INT64_MIN, 0):
        assert value in digests
    for value in (1, -8, 31, INT64_MAX - 1, INT64_MIN + 1):
        assert value not in digests
    assert "30" not in digests
    assert None not in digests


def test_digest_set_empty():
    digests = DigestSet()
    assert len(digests) == 0
    assert 0 not in digests
    assert digests.match(0) is False
    assert digests.was_matched(0) is False
    assert digests.matched_count() == 0


def test_digest_set_match_flags_value():
    digests = DigestSet([5, 1, 9])
    assert digests.was_matched(5) is False
    assert digests.match(5) is True
    assert digests.was_matched(5) is True
    assert digests.was_matched(1) is False
    assert digests.was_matched(9) is False
    assert digests.matched_count() == 1


def test_digest_set_match_counts_each_value_once():
    digests = DigestSet([5, 1, 9])
    digests.match(5)
    digests.match(5)
    digests.match(INT64_MIN)
    assert digests.matched_count() == 1
    digests.match(9)
    assert digests.matched_count() == 2


def test_digest_set_absent_value_not_matched():
    digests = DigestSet([5, 1, 9])
    assert digests.match(4) is False
    assert digests.was_matched(4) is False
    assert digests.matched_count() == 0
    # A miss leaves the values around it unflagged.
    assert digests.was_matched(1) is False
    assert digests.was_matched(5) is False


# ---------------------------------------------------------------------------
# Re-sync of unchanged and changed people


def test_unchanged_resync_stages_no_people(db_path, store):
    commit_sync(store)
    install_write_counter(db_path)

    with store.begin_sync("Acme", scope=["licenses", "people"]) as session:
        stage(session, LICENSES, PAGES)
        assert staged_people(session) == []
        assert staged_link_count(session) == 0
        report = session.commit()

    assert report["changed"] is False
    assert report["summary"]["people"] == {
        "added": 0,
        "updated": 0,
        "removed": 0,
        "unchanged": 6,
    }
    assert report["staged"]["people"] == 6
    assert report["people"]["changes"] == []
    assert report["rows_written"] == 0
    assert written_rows(db_path) == 0


def test_first_sync_stores_fingerprints(db_path, store):
    commit_sync(store)
    expected = {item["id"]: expected_fingerprint(item) for page in PAGES for item in page}
    assert stored_fingerprints(db_path) == expected


def test_license_order_does_not_stage(store):
    commit_sync(store)
    reordered = [
        [person(1), person(2), person(3)],
        # P005 has C-A and C-B: listed reversed, then with a repeated id.
        [person(4), person(5, licenses=("C-B", "C-A")), person(6)],
        [person(5, licenses=("C-B", "C-A", "C-B"))],
    ]
    with store.begin_sync("Acme", scope=["licenses", "people"]) as session:
        stage(session, LICENSES, reordered)
        assert staged_people(session) == []
        report = session.commit()
    assert report["summary"]["people"]["unchanged"] == 6
    assert report["changed"] is False


def test_one_changed_person_staged_and_updated(db_path, store):
    commit_sync(store)
    changed = person(3, licenses=("C-A", "ADV"))
    pages = [[person(1), person(2), changed], PAGES[1]]
    install_write_counter(db_path)

    with store.begin_sync("Acme", scope=["licenses", "people"]) as session:
        stage(session, LICENSES, pages)
        assert staged_people(session) == ["P003"]
        report = session.commit()

    assert report["changed"] is True
    assert report["summary"]["people"] == {
        "added": 0,
        "updated": 1,
        "removed": 0,
        "unchanged": 5,
    }
    changes = report["people"]["changes"]
    assert [(change["change"], change["id"]) for change in changes] == [("updated", "P003")]
    assert changes[0]["licenses_added"] == ["ADV"]
    assert changes[0]["licenses_removed"] == []
    assert stored_person(db_path, "P003")[1] == ["ADV", "C-A"]
    assert stored_fingerprints(db_path)["P003"] == expected_fingerprint(changed)
    # One person_licenses insert and the fingerprint update of the person row.
    # The person row, its new link, and the key of ADV, which no person held before.
    assert written_rows(db_path) == 3


def test_changed_person_then_unchanged_resync(db_path, store):
    commit_sync(store)
    pages = [[person(1), person(2), person(3, licenses=("C-A", "ADV"))], PAGES[1]]
    commit_sync(store, pages=pages)

    with store.begin_sync("Acme", scope=["licenses", "people"]) as session:
        stage(session, LICENSES, pages)
        assert staged_people(session) == []
        report = session.commit()
    assert report["changed"] is False
    assert report["rows_written"] == 0


# ---------------------------------------------------------------------------
# Upgrade from schema version 1


def create_schema_1_database(path, items):
    """Create a schema-1 inventory of the customer "Acme" that contains ``items``."""
    version, statements = MIGRATIONS[0]
    assert version == 1
    connection = sqlite3.connect(path)
    try:
        for statement in statements:
            connection.execute(statement)
        connection.execute(
            "INSERT INTO customers (name, org_id, hierarchy, default_subscription_id, "
            "created_at, updated_at) VALUES ('Acme', 'ORG-Acme', '', 'Sub-A100', "
            "'2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')"
        )
        for item in items:
            values = person_row(item)
            connection.execute(
                "INSERT INTO people (customer, id, email, display_name, location_id) "
                "VALUES ('Acme', :id, :email, :display_name, :location_id)",
                values,
            )
            for license_id in item["licenses"]:
                connection.execute(
                    "INSERT INTO person_licenses (customer, person_id, license_id) "
                    "VALUES ('Acme', ?, ?)",
                    (values["id"], license_id),
                )
            for role_id in item["roles"]:
                connection.execute(
                    "INSERT INTO person_roles (customer, person_id, role_id) VALUES ('Acme', ?, ?)",
                    (values["id"], role_id),
                )
        connection.execute("PRAGMA user_version = 1")
        connection.commit()
    finally:
        connection.close()


def person_columns(path):
    connection = sqlite3.connect(path)
    try:
        return [row[1] for row in connection.execute("PRAGMA table_info(people)")]
    finally:
        connection.close()


def people_sync(store, pages):
    """Sync only people (the schema-1 database contains no licenses)."""
    with store.begin_sync("Acme", scope=["people"]) as session:
        for page in pages:
            session.stage_people(page)
        staged = staged_people(session)
        report = session.commit()
    return staged, report


UPGRADE_PAGES = [
    [person(1), person(2, licenses=()), person(3, licenses=("C-A", "ADV"))],
    [
        dict(person(4), roles=["R-ADMIN"]),
        person(5, licenses=("C-A", "C-B")),
        dict(person(6), displayName=None),
    ],
]


def test_upgrade_adds_fingerprint_column(db_path):
    create_schema_1_database(db_path, [item for page in UPGRADE_PAGES for item in page])
    assert "fingerprint" not in person_columns(db_path)

    with InventoryStore(db_path, lock_timeout=10) as store:
        assert store.schema_version == SCHEMA_VERSION == 6
        assert store.find_person("Acme", "P004")["role_ids"] == ["R-ADMIN"]

    assert "fingerprint" in person_columns(db_path)
    assert set(stored_fingerprints(db_path).values()) == {None}


def test_upgrade_then_sync_reports_unchanged(db_path):
    create_schema_1_database(db_path, [item for page in UPGRADE_PAGES for item in page])
    with InventoryStore(db_path, lock_timeout=10) as store:
        staged, report = people_sync(store, UPGRADE_PAGES)

    # No fingerprint is stored yet, so every person is staged and compared by field.
    assert staged == PEOPLE_IDS
    assert report["changed"] is False
    assert report["summary"]["people"] == {
        "added": 0,
        "updated": 0,
        "removed": 0,
        "unchanged": 6,
    }
    # The only writes are the six fingerprints.
    assert report["rows_written"] == 6


def test_upgrade_then_sync_stores_fingerprints(db_path):
    items = [item for page in UPGRADE_PAGES for item in page]
    create_schema_1_database(db_path, items)
    with InventoryStore(db_path, lock_timeout=10) as store:
        people_sync(store, UPGRADE_PAGES)

    fingerprints = stored_fingerprints(db_path)
    assert None not in fingerprints.values()
    assert fingerprints == {item["id"]: expected_fingerprint(item) for item in items}


def test_upgrade_then_second_sync_writes_nothing(db_path):
    create_schema_1_database(db_path, [item for page in UPGRADE_PAGES for item in page])
    with InventoryStore(db_path, lock_timeout=10) as store:
        people_sync(store, UPGRADE_PAGES)
        install_write_counter(db_path)
        staged, report = people_sync(store, UPGRADE_PAGES)

    assert staged == []
    assert report["changed"] is False
    assert report["summary"]["people"]["unchanged"] == 6
    assert report["rows_written"] == 0
    assert written_rows(db_path) == 0


# ---------------------------------------------------------------------------
# People changed in the inventory while a sync runs


def test_license_change_during_sync_raises(db_path, store):
    commit_sync(store)
    before_change = inventory_rows(db_path)

    session = store.begin_sync("Acme", scope=["licenses", "people"])
    stage(session, LICENSES, PAGES)
    assert staged_people(session) == []
    result = store.apply_user_license_change("Acme", "P002", ["ADV"])
    assert result["changed"] is True
    after_change = inventory_rows(db_path)
    assert after_change != before_change

    # The assignment moved a license count as well, which the commit finds first.
    with pytest.raises(PeopleChangedError, match="changed in the inventory during the sync"):
        session.commit()

    assert session.finished
    assert inventory_rows(db_path) == after_change
    assert stored_person(db_path, "P002")[1] == ["ADV", "C-A"]
    assert stored_fingerprints(db_path)["P002"] is None


def test_person_changed_during_people_sync_raises(db_path, store):
    """Without licenses in scope the counts are not compared; the changed person is found."""
    commit_sync(store)
    session = store.begin_sync("Acme", scope=["people"])
    for page in PAGES:
        session.stage_people(page)
    store.apply_user_license_change("Acme", "P002", ["ADV"])
    after_change = inventory_rows(db_path)

    with pytest.raises(PeopleChangedError, match="1 people of customer 'Acme' changed"):
        session.commit()

    assert inventory_rows(db_path) == after_change


def test_license_change_during_diff_raises(store):
    commit_sync(store)
    session = store.begin_sync("Acme", scope=["licenses", "people"])
    stage(session, LICENSES, PAGES)
    store.apply_user_license_change("Acme", "P002", ["ADV"])
    try:
        with pytest.raises(PeopleChangedError):
            session.diff()
    finally:
        session.discard()


def test_other_sync_during_sync_raises(db_path, store):
    commit_sync(store)
    session = store.begin_sync("Acme", scope=["licenses", "people"])
    stage(session, LICENSES, PAGES)

    # Another sync commits a new name of P003 while the first one is staged.
    renamed = [[person(1), person(2), person(3, name="User Three")], PAGES[1]]
    commit_sync(store, pages=renamed)
    after_other_sync = inventory_rows(db_path)

    with pytest.raises(PeopleChangedError):
        session.commit()
    assert inventory_rows(db_path) == after_other_sync


def test_change_of_staged_person_does_not_raise(db_path, store):
    commit_sync(store)
    renamed = person(2, name="User Two")
    pages = [[person(1), renamed, person(3)], PAGES[1]]

    with store.begin_sync("Acme", scope=["people"]) as session:
        for page in pages:
            session.stage_people(page)
        assert staged_people(session) == ["P002"]
        store.apply_user_license_change("Acme", "P002", ["ADV"])
        report = session.commit()

    # P002 was staged, so the listed state replaces the license change.
    assert report["summary"]["people"]["updated"] == 1
    row_after, licenses_after = stored_person(db_path, "P002")
    assert row_after["display_name"] == "User Two"
    assert licenses_after == ["C-A"]
    assert stored_fingerprints(db_path)["P002"] == expected_fingerprint(renamed)


def test_count_change_of_staged_person_raises(db_path, store):
    """The assignment also moved a license count after the sync listed the licenses, so
    the listed counts are older than the stored ones: the sync writes nothing."""
    commit_sync(store)
    pages = [[person(1), person(2, name="User Two"), person(3)], PAGES[1]]
    session = store.begin_sync("Acme", scope=["licenses", "people"])
    stage(session, LICENSES, pages)
    store.apply_user_license_change("Acme", "P002", ["ADV"])
    after_change = inventory_rows(db_path)

    with pytest.raises(PeopleChangedError, match="the license counts of customer 'Acme'"):
        session.commit()

    assert inventory_rows(db_path) == after_change


def test_retry_after_license_change_succeeds(db_path, store):
    commit_sync(store)
    session = store.begin_sync("Acme", scope=["licenses", "people"])
    stage(session, LICENSES, PAGES)
    store.apply_user_license_change("Acme", "P002", ["ADV"])
    with pytest.raises(PeopleChangedError):
        session.commit()

    # The API now lists P002 with ADV, as the inventory stores it.
    listed = person(2, licenses=("C-A", "ADV"))
    pages = [[person(1), listed, person(3)], PAGES[1]]
    report = commit_sync(store, pages=pages)
    assert report["summary"]["people"] == {
        "added": 0,
        "updated": 0,
        "removed": 0,
        "unchanged": 6,
    }
    assert stored_fingerprints(db_path)["P002"] == expected_fingerprint(listed)


# ---------------------------------------------------------------------------
# Removed people and people without a stored fingerprint


def test_unlisted_person_removed(db_path, store):
    commit_sync(store)
    pages = [PAGES[0], [person(5, licenses=("C-A", "C-B")), person(6)]]

    with store.begin_sync("Acme", scope=["licenses", "people"]) as session:
        stage(session, LICENSES, pages)
        assert staged_people(session) == []
        report = session.commit()

    assert report["summary"]["people"] == {
        "added": 0,
        "updated": 0,
        "removed": 1,
        "unchanged": 5,
    }
    changes = report["people"]["changes"]
    assert [(change["change"], change["id"]) for change in changes] == [("removed", "P004")]
    assert changes[0]["licenses_removed"] == ["C-A"]
    assert store.find_person("Acme", "P004") is None
    assert sorted(stored_fingerprints(db_path)) == ["P001", "P002", "P003", "P005", "P006"]
    links = inventory_rows(db_path)["person_licenses"]
    assert [link for link in links if link[1] == "P004"] == []


def test_person_without_fingerprint_listed_unchanged(db_path, store):
    commit_sync(store)
    store.apply_user_license_change("Acme", "P002", ["ADV"])
    assert stored_fingerprints(db_path)["P002"] is None

    # The API lists P002 with the license just assigned.
    listed = person(2, licenses=("C-A", "ADV"))
    pages = [[person(1), listed, person(3)], PAGES[1]]
    with store.begin_sync("Acme", scope=["licenses", "people"]) as session:
        stage(session, LICENSES, pages)
        assert staged_people(session) == ["P002"]
        report = session.commit()

    assert report["summary"]["people"] == {
        "added": 0,
        "updated": 0,
        "removed": 0,
        "unchanged": 6,
    }
    assert report["people"]["changes"] == []
    assert stored_person(db_path, "P002")[1] == ["ADV", "C-A"]
    fingerprints = stored_fingerprints(db_path)
    assert fingerprints["P002"] == expected_fingerprint(listed)
    assert None not in fingerprints.values()


def test_person_without_fingerprint_unlisted_removed(db_path, store):
    commit_sync(store)
    store.apply_user_license_change("Acme", "P004", ["ADV"])
    assert stored_fingerprints(db_path)["P004"] is None

    pages = [PAGES[0], [person(5, licenses=("C-A", "C-B")), person(6)]]
    report = commit_sync(store, pages=pages)

    assert report["summary"]["people"] == {
        "added": 0,
        "updated": 0,
        "removed": 1,
        "unchanged": 5,
    }
    assert store.find_person("Acme", "P004") is None
    links = inventory_rows(db_path)["person_licenses"]
    assert [link for link in links if link[1] == "P004"] == []


# ---------------------------------------------------------------------------
# A person listed twice


def test_person_listed_twice_last_copy_wins(db_path, store):
    commit_sync(store)
    # P001 first appears with a new name, then again on a later page as stored. Staging
    # keeps the last copy of a repeated object, so P001 stays as stored.
    interim = person(1, name="Interim name")
    pages = [[interim, person(2), person(3)], PAGES[1] + [person(1)]]

    report = commit_sync(store, pages=pages)

    assert report["duplicates"]["people"] == 1
    assert report["summary"]["people"]["updated"] == 0
    assert stored_person(db_path, "P001")[0]["display_name"] == "User 1"


def test_person_listed_twice_changed_last(db_path, store):
    commit_sync(store)
    renamed = person(1, name="Renamed later")
    pages = [PAGES[0], PAGES[1] + [renamed]]

    report = commit_sync(store, pages=pages)

    assert report["duplicates"]["people"] == 1
    assert report["summary"]["people"]["updated"] == 1
    assert stored_person(db_path, "P001")[0]["display_name"] == "Renamed later"
    assert stored_fingerprints(db_path)["P001"] == expected_fingerprint(renamed)


# Values that contain separators or empty strings must not make two people look alike.
@pytest.mark.parametrize(
    ("left", "right"),
    [
        (
            ({"email": "a\x1fb", "display_name": "c"}, [], []),
            ({"email": "a", "display_name": "b\x1fc"}, [], []),
        ),
        (({}, [""], []), ({}, [], [])),
        (({"email": "\x00"}, [], []), ({"email": None}, [], [])),
        (({}, ["L1", "L2"], []), ({}, ["L1"], ["L2"])),
    ],
)
def test_fingerprint_has_no_separator_collisions(left, right):
    base = {"id": "P1", "email": "e", "display_name": "n", "location_id": None}
    assert person_fingerprint(dict(base, **left[0]), left[1], left[2]) != person_fingerprint(
        dict(base, **right[0]), right[1], right[2]
    )


LINK_VIEWS = {
    "person_licenses": ("person_license_keys", "person_id", "license_id"),
    "person_roles": ("person_role_keys", "person_id", "role_id"),
    "workspace_licenses": ("workspace_license_keys", "workspace_id", "license_id"),
}


def link_pairs(path):
    """Return ``{link table or view: set of (customer, owner id, target id)}``."""
    connection = sqlite3.connect(path)
    try:
        return {
            name: set(connection.execute(f"SELECT customer, {owner}, {target} FROM {name}"))
            for name, (_keys, owner, target) in LINK_VIEWS.items()
        }
    finally:
        connection.close()


def key_table_facts(path):
    """Return ``{key table: (WITHOUT ROWID in its SQL, row count, index names)}``, and the
    type of each link name in sqlite_master."""
    connection = sqlite3.connect(path)
    try:
        facts = {}
        for name, (keys, _owner, _target) in LINK_VIEWS.items():
            sql = connection.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (keys,)
            ).fetchone()[0]
            count = connection.execute(f"SELECT COUNT(*) FROM {keys}").fetchone()[0]
            indexes = sorted(
                row[0]
                for row in connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                    "AND sql IS NOT NULL",
                    (keys,),
                )
            )
            kind = connection.execute(
                "SELECT type FROM sqlite_master WHERE name = ?", (name,)
            ).fetchone()[0]
            facts[keys] = ("WITHOUT ROWID" in sql, count, indexes, kind)
        return facts
    finally:
        connection.close()


def add_schema_1_workspace(path):
    connection = sqlite3.connect(path)
    try:
        connection.execute(
            "INSERT INTO workspaces (customer, id, display_name, location_id, calling_type) "
            "VALUES ('Acme', 'W001', 'Room 1', 'L1', 'webexCalling')"
        )
        connection.executemany(
            "INSERT INTO workspace_licenses (customer, workspace_id, license_id) "
            "VALUES ('Acme', 'W001', ?)",
            [("C-W",), ("C-A",)],
        )
        connection.commit()
    finally:
        connection.close()


def test_upgrade_stores_links_by_key(db_path):
    items = [item for page in UPGRADE_PAGES for item in page]
    create_schema_1_database(db_path, items)
    add_schema_1_workspace(db_path)
    before = link_pairs(db_path)
    InventoryStore(db_path).close()

    # The views show exactly the links stored before the upgrade.
    assert link_pairs(db_path) == before
    links = sum(len(item["licenses"]) for item in items)
    roles = sum(len(item["roles"]) for item in items)
    assert len(before["person_licenses"]) == links
    assert key_table_facts(db_path) == {
        "person_license_keys": (True, links, [], "view"),
        "person_role_keys": (True, roles, [], "view"),
        "workspace_license_keys": (True, 2, [], "view"),
    }


def test_upgraded_links_change_with_the_next_sync(db_path):
    create_schema_1_database(db_path, [item for page in UPGRADE_PAGES for item in page])
    with InventoryStore(db_path, lock_timeout=10) as store:
        pages = [list(UPGRADE_PAGES[0]), list(UPGRADE_PAGES[1])]
        pages[0][0] = person(1, licenses=("C-B",))
        report = people_sync(store, pages)[1]
        assert report["summary"]["people"]["updated"] == 1
        assert store.find_person("Acme", "P001")["license_ids"] == ["C-B"]
        assert store.find_person("Acme", "P005")["license_ids"] == ["C-A", "C-B"]


def people_indexes(path):
    connection = sqlite3.connect(path)
    try:
        return sorted(
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'people' "
                "AND sql IS NOT NULL"
            )
        )
    finally:
        connection.close()


def test_upgrade_replaces_people_indexes(db_path):
    create_schema_1_database(db_path, [item for page in UPGRADE_PAGES for item in page])
    assert people_indexes(db_path) == ["people_email", "people_location"]

    with InventoryStore(db_path) as store:
        found = store.find_person("Acme", "USER1@ACME.EXAMPLE")

    assert people_indexes(db_path) == ["people_email_lower"]
    assert found is not None
    assert found["id"] == "P001"


def test_invalid_person_leaves_session_unchanged(store):
    commit_sync(store)
    with store.begin_sync("Acme", scope=["licenses", "people"]) as session:
        session.stage_licenses(LICENSES)
        with pytest.raises(ValueError, match="person object without id"):
            session.stage_people([person(6), {"emails": ["nobody@acme.example"]}])
        # P006 is listed only in the rejected page, so it left the org.
        session.stage_people(PAGES[0])
        session.stage_people(PAGES[1][:2])
        report = session.commit()
    assert report["summary"]["people"] == {
        "added": 0,
        "updated": 0,
        "removed": 1,
        "unchanged": 5,
    }
    assert report["duplicates"]["people"] == 0


def removal_queries(session):
    """Record the statements of the session that read stored people for the removal check."""
    statements = []
    session._conn.set_trace_callback(
        lambda sql: statements.append(sql) if "SELECT id, fingerprint FROM people" in sql else None
    )
    return statements


def test_untouched_store_reads_only_unfingerprinted_people(store):
    commit_sync(store)
    with store.begin_sync("Acme", scope=["licenses", "people"]) as session:
        statements = removal_queries(session)
        session.stage_licenses(LICENSES)
        for page in PAGES:
            session.stage_people(page)
        report = session.commit()
    assert len(statements) == 1
    assert "fingerprint IS NULL" in statements[0]
    assert report["summary"]["people"]["unchanged"] == 6


def test_store_written_meanwhile_reads_all_people(db_path, store):
    commit_sync(store)
    with store.begin_sync("Acme", scope=["licenses", "people"]) as session:
        statements = removal_queries(session)
        session.stage_licenses(LICENSES)
        session.stage_people(PAGES[0])
        session.stage_people(PAGES[1][:2])
        # Another connection commits a change that touches no person.
        with InventoryStore(db_path) as other:
            other.upsert_customer("Other")
        report = session.commit()
    assert len(statements) == 1
    assert "fingerprint IS NULL" not in statements[0]
    assert report["summary"]["people"]["removed"] == 1


# ---------------------------------------------------------------------------
# Copy of the file before an upgrade


def user_version(path):
    connection = sqlite3.connect(path)
    try:
        return connection.execute("PRAGMA user_version").fetchone()[0]
    finally:
        connection.close()


def test_upgrade_saves_copy_first(db_path):
    create_schema_1_database(db_path, [item for page in UPGRADE_PAGES for item in page])

    with InventoryStore(db_path, lock_timeout=10) as store:
        message = store.upgrade_message()
        backup = store.upgrade_backup

    assert backup == f"{db_path}.schema-1.bak"
    assert user_version(backup) == 1
    assert user_version(db_path) == SCHEMA_VERSION
    assert stat.S_IMODE(os.stat(backup).st_mode) == 0o600
    assert f"upgraded once from schema version 1 to {SCHEMA_VERSION}" in message
    assert f"A copy of the file as it was is {backup}" in message
    copy = sqlite3.connect(backup)
    try:
        assert copy.execute("SELECT COUNT(*) FROM people").fetchone()[0] == 6
    finally:
        copy.close()
    assert not [name for name in os.listdir(os.path.dirname(db_path)) if "partial" in name]

    with InventoryStore(db_path, lock_timeout=10) as again:
        assert again.upgrade_message() is None
        assert again.upgrade_backup is None


def test_existing_copy_is_kept(db_path):
    create_schema_1_database(db_path, [item for page in UPGRADE_PAGES for item in page])
    with open(f"{db_path}.schema-1.bak", "w", encoding="utf-8") as handle:
        handle.write("an older copy")

    with InventoryStore(db_path, lock_timeout=10) as store:
        assert store.upgrade_backup == f"{db_path}.schema-1-2.bak"

    with open(f"{db_path}.schema-1.bak", encoding="utf-8") as handle:
        assert handle.read() == "an older copy"
    assert user_version(f"{db_path}.schema-1-2.bak") == 1


def test_failed_copy_leaves_file_unchanged(db_path, monkeypatch):
    create_schema_1_database(db_path, [item for page in UPGRADE_PAGES for item in page])

    def full_disk(_source, _target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(inventory_module.os, "replace", full_disk)

    with pytest.raises(InventoryError) as caught:
        InventoryStore(db_path, lock_timeout=10)

    message = str(caught.value)
    assert f"after a copy of it is saved as {db_path}.schema-1.bak" in message
    assert "the copy failed" in message
    assert user_version(db_path) == 1
    assert not [name for name in os.listdir(os.path.dirname(db_path)) if "partial" in name]


def test_stale_partial_copies_removed(db_path):
    # A run killed while it copied leaves its partial copy and the copy's journal.
    create_schema_1_database(db_path, [item for page in UPGRADE_PAGES for item in page])
    stale = [f"{db_path}.schema-1.bak.4242.partial", f"{db_path}.schema-1.bak.4242.partial-journal"]
    for name in stale:
        with open(name, "w", encoding="utf-8") as handle:
            handle.write("cut short")

    with InventoryStore(db_path, lock_timeout=10) as store:
        assert store.upgrade_backup == f"{db_path}.schema-1.bak"

    assert not [name for name in os.listdir(os.path.dirname(db_path)) if "partial" in name]


def test_copy_made_under_write_lock(db_path, monkeypatch):
    """No other process can upgrade or write the file while the copy is taken."""
    create_schema_1_database(db_path, [item for page in UPGRADE_PAGES for item in page])
    real_copy = inventory_module.save_copy_before_upgrade
    seen = []

    def copy_and_probe(connection, path, version):
        other = sqlite3.connect(path, timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")
            seen.append("writable")
            other.execute("ROLLBACK")
        except sqlite3.OperationalError as error:
            seen.append(str(error))
        finally:
            other.close()
        return real_copy(connection, path, version)

    monkeypatch.setattr(inventory_module, "save_copy_before_upgrade", copy_and_probe)
    with InventoryStore(db_path, lock_timeout=10) as store:
        assert store.upgraded_from == 1

    assert seen == ["database is locked"]
    assert user_version(f"{db_path}.schema-1.bak") == 1


def test_failed_upgrade_keeps_version_drops_copy(db_path, monkeypatch):
    """Every pending migration runs in one transaction, so a failing one leaves the old
    version, and the copy of the unchanged file is removed."""
    create_schema_1_database(db_path, [item for page in UPGRADE_PAGES for item in page])
    broken = (SCHEMA_VERSION + 1, ("CREATE TABLE broken (",))
    monkeypatch.setattr(inventory_schema, "MIGRATIONS", inventory_schema.MIGRATIONS + [broken])
    monkeypatch.setattr(inventory_schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)

    with pytest.raises(InventoryError):
        InventoryStore(db_path, lock_timeout=10)

    assert user_version(db_path) == 1
    assert "fingerprint" not in person_columns(db_path)
    assert not os.path.exists(f"{db_path}.schema-1.bak")
