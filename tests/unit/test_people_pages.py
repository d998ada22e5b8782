"""Unit tests of the people page records on a real SQLite file.

A sync records what it read from each page of people under a digest of the page body. A
later sync that gets the same body takes the page from its record without decoding it,
but only while every person of the page is still stored with the recorded fingerprint.
The pages here are built as the fetch process passes them on: decoded items with their
digest, or a KnownPage whose decoding is counted.
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3

import pytest

from ansible_collections.ucops.webex.plugins.module_utils.fetch_process import (
    DigestedItems,
    KnownPage,
    page_digest,
)
from ansible_collections.ucops.webex.plugins.module_utils.inventory import InventoryStore
from ansible_collections.ucops.webex.plugins.module_utils.inventory_sync import (
    PEOPLE_PAGE_FORMAT,
    DigestSet,
    encode_people_page,
    person_fingerprint,
    person_row,
)
from tests.unit.test_inventory_staging import (
    LICENSES,
    PAGES,
    install_write_counter,
    person,
    written_rows,
)

SCOPE = ["licenses", "people"]


@pytest.fixture
def db_path(tmp_path):
    return str(tmp_path / "inventory.db")


@pytest.fixture
def store(db_path):
    with InventoryStore(db_path, lock_timeout=10) as opened:
        opened.upsert_customer("Acme", org_id="ORG-Acme", default_subscription_id="Sub-A100")
        yield opened


class Listing:
    """Hands pages to a session the way PageProcess does, and counts decoded known pages."""

    def __init__(self, session):
        self.session = session
        self.decoded = 0

    def page(self, items, digest=True):
        if not digest:
            return list(items)
        key = hashlib.blake2b(json.dumps(items).encode(), digest_size=16).digest()
        record = self.session.known_pages.get(key)
        if record is None:
            page = DigestedItems(items)
            page.digest = key
            return page

        def decode():
            self.decoded += 1
            return [dict(item) for item in items]

        return KnownPage(key, record, decode)


def sync(store, pages, digest=True, check_mode=False):
    """Run a sync of LICENSES and ``pages``, and return (report, listing, session)."""
    session = store.begin_sync("Acme", scope=SCOPE)
    listing = Listing(session)
    with session:
        session.stage_licenses(LICENSES)
        for items in pages:
            session.stage_people(listing.page(items, digest))
        if check_mode:
            report = session.diff()
            session.discard()
        else:
            report = session.commit()
    return report, listing, session


def page_records(db_path):
    connection = sqlite3.connect(db_path)
    try:
        return connection.execute(
            "SELECT digest, listed, ids FROM people_pages WHERE customer = 'Acme' "
            "ORDER BY digest"
        ).fetchall()
    finally:
        connection.close()


def stored_licenses(db_path, person_id):
    connection = sqlite3.connect(db_path)
    try:
        rows = connection.execute(
            "SELECT license_id FROM person_licenses WHERE customer = 'Acme' "
            "AND person_id = ? ORDER BY license_id",
            (person_id,),
        ).fetchall()
    finally:
        connection.close()
    return [row[0] for row in rows]


def stored_names(db_path):
    connection = sqlite3.connect(db_path)
    try:
        rows = connection.execute(
            "SELECT id, display_name FROM people WHERE customer = 'Acme' ORDER BY id"
        ).fetchall()
    finally:
        connection.close()
    return dict(rows)


def test_resync_same_pages(db_path, store):
    sync(store, PAGES)
    records = page_records(db_path)
    assert len(records) == 2
    install_write_counter(db_path)

    report, listing, session = sync(store, PAGES)

    assert session.pages_reused == 2
    assert listing.decoded == 0
    assert not report["changed"]
    assert report["summary"]["people"] == {"added": 0, "updated": 0, "removed": 0,
                                           "unchanged": 6}
    assert report["staged"]["people"] == 6
    assert written_rows(db_path) == 0
    assert page_records(db_path) == records


def test_resync_person_changed_in_inventory(db_path, store):
    """A license change recorded between syncs (as webex_user_license does) clears the
    person's fingerprint. When Webex lists the person as before, the page body is the one
    recorded, but the page must be read to restore the person's licenses."""
    sync(store, PAGES)
    connection = sqlite3.connect(db_path)
    connection.execute("DELETE FROM person_licenses WHERE customer = 'Acme' AND person_id = 'P002'")
    connection.execute("UPDATE people SET fingerprint = NULL WHERE id = 'P002'")
    connection.commit()
    connection.close()

    report, listing, session = sync(store, PAGES)

    assert listing.decoded == 1
    assert session.pages_reused == 1
    assert stored_licenses(db_path, "P002") == ["C-A"]
    assert report["summary"]["people"]["updated"] == 1


def test_resync_person_changed_by_hand(db_path, store):
    """A stored person that another writer changed without clearing the fingerprint has a
    fingerprint the record does not name: the page is decoded and the person restored."""
    sync(store, PAGES)
    connection = sqlite3.connect(db_path)
    connection.execute("UPDATE people SET display_name = 'Edited', fingerprint = 7 "
                       "WHERE id = 'P005'")
    connection.commit()
    connection.close()

    _report, listing, _session = sync(store, PAGES)

    assert listing.decoded == 1
    assert stored_names(db_path)["P005"] == "User 5"


def test_resync_page_missing(db_path, store):
    third = [person(7), person(8)]
    sync(store, PAGES + [third])
    assert len(page_records(db_path)) == 3

    report, listing, session = sync(store, PAGES)

    assert session.pages_reused == 2
    assert listing.decoded == 0
    assert report["summary"]["people"]["removed"] == 2
    assert sorted(stored_names(db_path)) == ["P001", "P002", "P003", "P004", "P005", "P006"]
    assert len(page_records(db_path)) == 2


def test_resync_known_page_after_staged_copy(db_path, store):
    """A person staged from an earlier page of the same listing (pages shifted while they
    were read) and listed again on a recorded page: the recorded page is decoded, and its
    copy, the last one, is stored."""
    sync(store, PAGES)
    renamed = [person(1, name="Renamed"), person(9)]

    report, listing, session = sync(store, [renamed] + PAGES)

    assert listing.decoded == 1
    assert session.pages_reused == 1
    assert stored_names(db_path)["P001"] == "User 1"
    assert report["duplicates"]["people"] == 1
    assert report["summary"]["people"]["added"] == 1


def test_resync_changed_listing(db_path, store):
    sync(store, PAGES)
    changed = [PAGES[0], [person(4), person(5, licenses=("ADV",)), person(6)]]

    report, listing, session = sync(store, changed)

    assert session.pages_reused == 1
    assert listing.decoded == 0
    assert report["summary"]["people"]["updated"] == 1
    assert stored_licenses(db_path, "P005") == ["ADV"]
    records = page_records(db_path)
    assert len(records) == 2
    # A third sync of the changed listing reads nothing again.
    _report, listing, session = sync(store, changed)
    assert session.pages_reused == 2
    assert listing.decoded == 0
    assert page_records(db_path) == records


def test_check_mode_records(db_path, store):
    sync(store, PAGES, check_mode=True)

    assert page_records(db_path) == []


def test_pages_without_digest(db_path, store):
    """Pages read in the module process (no fetch process) carry no digest."""
    sync(store, PAGES)
    records = page_records(db_path)

    report, _listing, session = sync(store, PAGES[:1], digest=False)

    assert session.pages_reused == 0
    assert report["summary"]["people"]["removed"] == 3
    assert page_records(db_path) == records
    # The records of people no longer stored are not used.
    _report, listing, session = sync(store, PAGES)
    assert session.pages_reused == 1
    assert listing.decoded == 1
    assert sorted(stored_names(db_path)) == ["P001", "P002", "P003", "P004", "P005", "P006"]


def test_record_of_page_with_person_twice(db_path, store):
    sync(store, [[person(1), person(2), person(1, name="Again")]])

    assert page_records(db_path) == []


def test_first_sync_record_order(db_path, store):
    sync(store, [[person(3), person(1)]])

    (record,) = page_records(db_path)
    assert record[1] == 2
    report, listing, session = sync(store, [[person(3), person(1)]])
    assert session.pages_reused == 1
    assert report["staged"]["people"] == 2


def test_records_rename_and_delete_customer(db_path, store):
    sync(store, PAGES)
    store.rename_customer("Acme", "Acme Renamed")
    connection = sqlite3.connect(db_path)
    assert connection.execute(
        "SELECT COUNT(*) FROM people_pages WHERE customer = 'Acme Renamed'"
    ).fetchone()[0] == 2
    connection.close()

    store.delete_customer("Acme Renamed")

    connection = sqlite3.connect(db_path)
    assert connection.execute("SELECT COUNT(*) FROM people_pages").fetchone()[0] == 0
    connection.close()


def test_match_all_partial():
    digests = DigestSet([5, -3, 9])

    assert not digests.match_all([5, 4])
    assert digests.matched_count() == 0
    assert digests.match_all([9, -3])
    assert digests.was_matched(9)
    assert digests.was_matched(-3)
    assert not digests.was_matched(5)


def test_encode_ids_with_line_break():
    assert encode_people_page(["P1\nP2", "P3"], [1, 2]) is None
    assert encode_people_page([], []) is None
    assert encode_people_page(["P1", "P3"], [1, 2]) is not None


def test_unreadable_records(db_path, store):
    sync(store, PAGES)
    connection = sqlite3.connect(db_path)
    digests = [row[0] for row in connection.execute("SELECT digest FROM people_pages")]
    connection.execute("UPDATE people_pages SET ids = x'00ff' WHERE digest = ?", (digests[0],))
    connection.execute("UPDATE people_pages SET fingerprints = x'0102' WHERE digest = ?",
                       (digests[1],))
    connection.commit()
    connection.close()

    report, listing, session = sync(store, PAGES)

    assert session.pages_reused == 0
    assert not report["changed"]
    assert report["summary"]["people"]["unchanged"] == 6
    _report, listing, session = sync(store, PAGES)
    assert session.pages_reused == 2
    assert listing.decoded == 0


def test_records_of_another_format(db_path, store):
    sync(store, PAGES)
    connection = sqlite3.connect(db_path)
    connection.execute("UPDATE people_pages SET format = ?", (PEOPLE_PAGE_FORMAT - 1,))
    connection.commit()
    connection.close()

    _report, listing, session = sync(store, PAGES)

    assert session.pages_reused == 0
    assert listing.decoded == 0
    connection = sqlite3.connect(db_path)
    formats = [row[0] for row in connection.execute("SELECT format FROM people_pages")]
    connection.close()
    assert formats == [PEOPLE_PAGE_FORMAT] * 2
    _report, listing, session = sync(store, PAGES)
    assert session.pages_reused == 2


def test_record_format_pins_fingerprint():
    """A record keeps fingerprints. If this value changes, raise PEOPLE_PAGE_FORMAT in
    inventory_sync.py with it, so that records of the old fingerprints are not used."""
    item = person(7, name="Zoë Ölçer", licenses=("C-B", "ADV"))
    fingerprint = person_fingerprint(person_row(item), sorted(item["licenses"]), [])

    assert (PEOPLE_PAGE_FORMAT, fingerprint) == (1, FINGERPRINT_OF_PERSON_7)


FINGERPRINT_OF_PERSON_7 = -1714323792982585964


def test_record_first_org_id(db_path, store):
    items = [dict(person(1)), dict(person(2), orgId="ORG-Acme")]
    _report, _listing, session = sync(store, [items])

    report, listing, session = sync(store, [items])

    assert session.pages_reused == 1
    (record,) = session.known_pages.values()
    assert record.org_id == "ORG-Acme"


def test_page_digest_inputs():
    page = {"status": 200, "headers": {"Content-Type": "application/json"},
            "content": b'{"items": []}'}
    digest = page_digest(page)

    assert len(digest) == 16
    assert page_digest(dict(page)) == digest
    assert page_digest(dict(page, status=206)) != digest
    latin = {"Content-Type": "application/json; charset=ISO-8859-1"}
    assert page_digest(dict(page, headers=latin)) != digest
    assert page_digest(dict(page, content=b'{"items": [] }')) != digest


def tables(db_path):
    """Every stored row of the data tables, without the keys that differ between files."""
    connection = sqlite3.connect(db_path)
    try:
        return {
            "people": connection.execute(
                "SELECT id, email, display_name, location_id, fingerprint FROM people "
                "ORDER BY id").fetchall(),
            "person_licenses": connection.execute(
                "SELECT person_id, license_id FROM person_licenses ORDER BY 1, 2").fetchall(),
            "licenses": connection.execute(
                "SELECT id, consumed_units FROM licenses ORDER BY id").fetchall(),
        }
    finally:
        connection.close()


def comparable(report):
    return {key: value for key, value in report.items()
            if key not in ("history_id", "rows_written")}


def clear_person_in_inventory(paths, number):
    """Remove a person's licenses and fingerprint, as webex_user_license changes a person."""
    for path in paths:
        connection = sqlite3.connect(path)
        connection.execute("DELETE FROM person_licenses WHERE person_id = ?", (f"P{number:03d}",))
        connection.execute("UPDATE people SET fingerprint = NULL WHERE id = ?",
                           (f"P{number:03d}",))
        connection.commit()
        connection.close()


def change_people(rng, people, action, number, step):
    """Apply one random change of Webex to ``people`` (number -> API person)."""
    if action == "license":
        licenses = rng.sample(["C-A", "ADV", "C-B"], rng.randint(0, 2))
        people[number] = dict(people[number], licenses=licenses)
    elif action == "rename":
        people[number] = dict(people[number], displayName=f"Name {step}")
    elif action == "leave" and len(people) > 3:
        del people[number]
    elif action == "join":
        people[100 + step] = person(100 + step)


def sync_both(stores, paths, pages, label):
    """Sync ``pages`` into both files, reusing pages in the first only, and return the
    number of pages reused."""
    first, _listing, session = sync(stores[0], pages)
    second, _listing, _session = sync(stores[1], pages, digest=False)

    assert comparable(first) == comparable(second), label
    assert tables(paths[0]) == tables(paths[1]), label
    return session.pages_reused


def test_reuse_against_decoding(tmp_path):
    """The same syncs on two files, one reusing recorded pages and one decoding every page,
    with changes between them in Webex and in the inventory, end with the same reports and
    the same data."""
    rng = random.Random(13)
    paths = [str(tmp_path / "reuse.db"), str(tmp_path / "decode.db")]
    stores = [InventoryStore(path, lock_timeout=10) for path in paths]
    for opened in stores:
        opened.upsert_customer("Acme", org_id="ORG-Acme", default_subscription_id="Sub-A100")
    people = {number: person(number) for number in range(1, 25)}
    reused = 0
    pages: list = []

    try:
        for step in range(40):
            action = rng.choice(["license", "rename", "leave", "join", "local", "moved", "none"])
            number = rng.choice(sorted(people))
            if action == "moved" and pages:
                # A person changed and listed first, while the pages of the last sync, with
                # the person's earlier copy, follow (pages that shifted during the listing).
                people[number] = dict(people[number], displayName=f"Moved {step}")
                pages = [[people[number]]] + pages
                reused += sync_both(stores, paths, pages, f"step {step}: {action}")
                continue
            if action == "local":
                clear_person_in_inventory(paths, number)
            change_people(rng, people, action, number, step)

            listed = [people[key] for key in sorted(people)]
            if rng.random() < 0.2:  # a person listed again on a later page
                listed.append(rng.choice(listed))
            size = rng.choice([4, 5, 5, 5])
            pages = [listed[start:start + size] for start in range(0, len(listed), size)]
            reused += sync_both(stores, paths, pages, f"step {step}: {action}")
    finally:
        for opened in stores:
            opened.close()

    assert reused > 20
