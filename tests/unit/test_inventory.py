"""Unit tests of the license inventory store on a real SQLite file."""

from __future__ import annotations

import os
import sqlite3

import pytest

from ansible_collections.ucops.webex.plugins.module_utils import inventory as inventory_module
from ansible_collections.ucops.webex.plugins.module_utils import inventory_schema
from ansible_collections.ucops.webex.plugins.module_utils.inventory import (
    DATA_TABLES,
    SCHEMA_VERSION,
    InventoryError,
    InventoryStore,
    default_inventory_path,
    resolve_inventory_path,
)
from ansible_collections.ucops.webex.plugins.module_utils.inventory_schema import (
    STORED_DATA_TABLES,
)
from tests.unit.factories import api_license

LICENSES = [
    api_license("M-A", "Meeting - Webex Meeting Center", "Sub-A100", "acme-a.webex.com", 50, 3),
    api_license("M-B", "Meeting - Webex Meeting Center", "Sub-B200", "acme-b.webex.com", 20, 1),
    api_license("C-A", "Webex Calling - Professional", "Sub-A100", total=30, consumed=4),
    api_license("C-B", "Webex Calling - Professional", "Sub-B200", total=10, consumed=1),
    api_license("MSG", "Basic Messaging", total=300, consumed=300),
    api_license("HYB", "Hybrid - Exchange Calendar", "Sub-A100", total=1, consumed=0),
]


def people_pages(count=300, page_size=100, location="LOC-1"):
    """Return pages of people with C-A each; every tenth person also has C-B (outside)."""
    pages = []
    for start in range(0, count, page_size):
        page = []
        for index in range(start, min(start + page_size, count)):
            licenses = ["C-A", "MSG"]
            if index % 10 == 0:
                licenses.append("C-B")
            page.append(
                {
                    "id": f"P{index:05d}",
                    "emails": [f"user{index}@acme.example"],
                    "displayName": f"User {index}",
                    "locationId": location if index % 2 == 0 else "LOC-2",
                    "licenses": licenses,
                    "roles": ["R-ADMIN"] if index == 0 else [],
                }
            )
        pages.append(page)
    return pages


LOCATIONS = [
    {
        "id": "LOC-1",
        "name": "Head Office",
        "timeZone": "Europe/Zurich",
        "address": {"city": "Zurich", "country": "CH"},
    },
    {"id": "LOC-2", "name": "Branch", "address": {"city": "Bern", "country": "CH"}},
]
WORKSPACES = [
    {
        "id": "W1",
        "displayName": "Lobby",
        "locationId": "LOC-1",
        "calling": {"type": "webexCalling", "webexCalling": {"licenses": ["C-A"]}},
    },
    {"id": "W2", "displayName": "Room", "locationId": "LOC-2", "calling": {"type": "none"}},
]
ROLES = [{"id": "R-ADMIN", "name": "Full Administrator"}]


@pytest.fixture
def db_path(tmp_path):
    return str(tmp_path / "inventory.db")


@pytest.fixture
def store(db_path):
    with InventoryStore(db_path, lock_timeout=10) as opened:
        yield opened


def add_customer(store, name="Acme", hierarchy="Provider/Reseller", **defaults):
    defaults.setdefault("org_id", f"ORG-{name}")
    changed, _before, after = store.upsert_customer(name, hierarchy=hierarchy, **defaults)
    assert changed
    return after


def full_sync(store, customer="Acme", pages=None, licenses=None, device=None):
    with store.begin_sync(customer, device=device) as session:
        session.stage_licenses(LICENSES if licenses is None else licenses)
        session.stage_roles(ROLES)
        for page in pages if pages is not None else people_pages():
            session.stage_people(page)
        session.stage_locations(LOCATIONS)
        session.stage_workspaces(WORKSPACES)
        return session.commit()


def install_write_counter(path):
    """Count every row written to the data tables with triggers inside the database."""
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


def table_count(path, table, customer="Acme"):
    connection = sqlite3.connect(path)
    try:
        return connection.execute(
            f"SELECT COUNT(*) FROM {table} WHERE customer = ?", (customer,)
        ).fetchone()[0]
    finally:
        connection.close()


def snapshot(path):
    """Return every data-table row, to compare the inventory before and after a failure."""
    connection = sqlite3.connect(path)
    try:
        return {
            table: sorted(connection.execute(f"SELECT * FROM {table}").fetchall())
            for table in DATA_TABLES + ("customers",)
        }
    finally:
        connection.close()


# ---------------------------------------------------------------------------
# Paths


def test_default_path_uses_xdg_data_home(tmp_path):
    environ = {"XDG_DATA_HOME": str(tmp_path)}
    assert default_inventory_path(environ) == str(tmp_path / "ucops.webex" / "inventory.db")


def test_default_path_ignores_relative_xdg():
    path = default_inventory_path({"XDG_DATA_HOME": "relative/dir"})
    expected = os.path.join(os.path.expanduser("~"), ".local", "share", "ucops.webex")
    assert path == os.path.join(expected, "inventory.db")


def test_resolve_path_prefers_value_then_env(tmp_path):
    environ = {"WEBEX_INVENTORY_DB": str(tmp_path / "env.db")}
    assert resolve_inventory_path(str(tmp_path / "x.db"), environ) == str(tmp_path / "x.db")
    assert resolve_inventory_path(None, environ) == str(tmp_path / "env.db")


def test_store_creates_private_directory_and_file(tmp_path):
    path = tmp_path / "new" / "dir" / "inventory.db"
    InventoryStore(str(path)).close()
    assert path.exists()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"


def test_store_without_create_rejects_missing_file(tmp_path):
    path = tmp_path / "missing.db"
    with pytest.raises(InventoryError, match="does not exist"):
        InventoryStore(str(path), create=False)
    assert not path.exists()


# ---------------------------------------------------------------------------
# Schema and file safety


def test_migrations_from_empty(db_path, store):
    connection = sqlite3.connect(db_path)
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
    connection.close()
    assert set(DATA_TABLES) <= tables
    assert {"customers", "sync_history", "sync_state"} <= tables
    assert version == SCHEMA_VERSION
    assert store.schema_version == SCHEMA_VERSION
    assert mode == "wal"


def test_reopen_keeps_data(db_path, store):
    add_customer(store)
    store.close()
    with InventoryStore(db_path) as reopened:
        assert reopened.get_customer("Acme")["org_id"] == "ORG-Acme"


def test_no_token_columns(db_path, store):
    connection = sqlite3.connect(db_path)
    columns = []
    for (table,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
        columns += [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
    connection.close()
    assert not [name for name in columns if "token" in name or "secret" in name]


def assert_untouched(path, content):
    with open(path, "rb") as handle:
        assert handle.read() == content
    assert not os.path.exists(path + "-wal")
    assert not os.path.exists(path + "-shm")


def test_newer_schema_is_rejected_untouched(db_path):
    InventoryStore(db_path).close()
    connection = sqlite3.connect(db_path)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()
    with open(db_path, "rb") as handle:
        content = handle.read()

    with pytest.raises(InventoryError) as caught:
        InventoryStore(db_path)
    message = str(caught.value)
    assert db_path in message
    assert f"schema version {SCHEMA_VERSION + 1}" in message
    assert "upgrade the collection" in message
    assert_untouched(db_path, content)


def test_not_a_database_is_rejected_untouched(db_path):
    content = b"customers:\n  - Acme\n" * 20
    with open(db_path, "wb") as handle:
        handle.write(content)
    with pytest.raises(InventoryError) as caught:
        InventoryStore(db_path)
    assert db_path in str(caught.value)
    assert "not an SQLite database" in str(caught.value)
    assert_untouched(db_path, content)


def test_short_file_is_rejected_untouched(db_path):
    with open(db_path, "wb") as handle:
        handle.write(b"SQLite")
    with pytest.raises(InventoryError, match="not an SQLite database"):
        InventoryStore(db_path)
    assert_untouched(db_path, b"SQLite")


def test_foreign_database_is_rejected_untouched(db_path):
    connection = sqlite3.connect(db_path)
    connection.execute("CREATE TABLE notes (body TEXT)")
    connection.execute("INSERT INTO notes VALUES ('keep me')")
    connection.commit()
    connection.close()
    with open(db_path, "rb") as handle:
        content = handle.read()

    with pytest.raises(InventoryError) as caught:
        InventoryStore(db_path)
    message = str(caught.value)
    assert db_path in message
    assert "SQLite database of another application (tables: notes)" in message
    assert "set inventory_db (or WEBEX_INVENTORY_DB)" in message
    assert_untouched(db_path, content)


def test_empty_sqlite_file_becomes_inventory(db_path):
    connection = sqlite3.connect(db_path)
    connection.execute("VACUUM")
    connection.close()
    assert os.path.getsize(db_path) > 0
    with InventoryStore(db_path) as store:
        assert store.schema_version == SCHEMA_VERSION


def test_zero_byte_file_set_up_with_warning(db_path):
    open(db_path, "wb").close()

    with InventoryStore(db_path) as store:
        assert store.schema_version == SCHEMA_VERSION
        message = store.upgrade_message()

    assert message.startswith(f"inventory database {db_path} was an empty file")
    assert "restore the file from a backup" in message


def test_new_file_has_no_upgrade_message(db_path):
    with InventoryStore(db_path) as store:
        assert store.upgrade_message() is None


def test_file_being_created_is_never_seen_empty(db_path, monkeypatch):
    # A second process (a fork of the same playbook) opens the path while the first one
    # sets up the new inventory: it must not take the new file for a file cut short.
    switch_to_wal = inventory_schema.SQLiteDialect.enable_wal
    seen = []

    def enable_wal_while_another_opens(dialect, connection):
        if not seen:
            seen.append(None)
            with InventoryStore(db_path) as other:
                seen[0] = other.upgrade_message()
        switch_to_wal(dialect, connection)

    monkeypatch.setattr(
        inventory_schema.SQLiteDialect, "enable_wal", enable_wal_while_another_opens
    )
    with InventoryStore(db_path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.upgrade_message() is None

    assert seen == [None]
    assert sorted(os.listdir(os.path.dirname(db_path))) == [os.path.basename(db_path)]


def create_schema_3_file(db_path):
    """Write an empty inventory of schema version 3, which this code upgrades."""
    connection = sqlite3.connect(db_path)
    for _version, statements in inventory_schema.MIGRATIONS[:3]:
        for statement in statements:
            connection.execute(statement)
    connection.execute("PRAGMA user_version = 3")
    connection.commit()
    connection.close()


def test_readonly_old_schema_names_upgrade(db_path, monkeypatch):
    create_schema_3_file(db_path)

    def readonly(_dialect, _connection, _before_upgrade=None):
        raise sqlite3.OperationalError("attempt to write a readonly database")

    # Root ignores file permissions, so the read-only file is simulated at the migration,
    # and a FILE-shm left read-only by an earlier attempt through os.access.
    monkeypatch.setattr(inventory_module, "migrate", readonly)
    real_access = os.access
    real_exists = os.path.exists
    monkeypatch.setattr(inventory_schema.os, "access",
                        lambda path, mode: not str(path).endswith("-shm")
                        and real_access(path, mode))
    monkeypatch.setattr(inventory_schema.os.path, "exists",
                        lambda path: str(path).endswith("-shm") or real_exists(path))
    with pytest.raises(InventoryError) as caught:
        InventoryStore(db_path)
    message = str(caught.value)
    assert f"{db_path} has schema version 3" in message
    assert f"must be upgraded once to version {SCHEMA_VERSION}" in message
    assert f"Not writable: {db_path}-shm." in message
    assert "with write access to the file, FILE-wal and FILE-shm next to it" in message
    assert "a FILE-shm left read-only by an earlier attempt may also be removed" in message


def test_readonly_error_names_unwritable_shm(db_path, monkeypatch):
    with open(db_path + "-shm", "wb"):
        pass
    monkeypatch.setattr(inventory_schema.os, "access",
                        lambda path, mode: not str(path).endswith("-shm"))
    error = sqlite3.OperationalError("attempt to write a readonly database")

    message = inventory_module.database_error_message(db_path, error)

    assert f"Not writable: {db_path}-shm." in message
    assert "a FILE-shm left read-only by a reader of a read-only file" in message


def test_readonly_old_schema_at_connect(db_path, monkeypatch):
    create_schema_3_file(db_path)

    def readonly(dialect):
        error = sqlite3.OperationalError("attempt to write a readonly database")
        raise dialect.error_for(error) from error

    # With real file modes (as a user other than root) the first pragma fails already.
    monkeypatch.setattr(inventory_schema.SQLiteDialect, "connect", readonly)
    with pytest.raises(InventoryError) as caught:
        InventoryStore(db_path)
    message = str(caught.value)
    assert f"{db_path} has schema version 3" in message
    assert f"must be upgraded once to version {SCHEMA_VERSION}" in message


def test_newer_schema_found_inside_transaction(db_path):
    """The header can be stale while the WAL contains the newer version: migrate checks again."""
    InventoryStore(db_path).close()
    connection = sqlite3.connect(db_path)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    connection.close()
    dialect = inventory_schema.SQLiteDialect(db_path, lock_timeout=1)
    connection = dialect.connect()
    with pytest.raises(InventoryError, match="newer than this ucops.webex collection"):
        inventory_schema.migrate(dialect, connection)
    assert dialect.schema_version(connection) == SCHEMA_VERSION + 5
    connection.close()


def test_ordered_migration_applies_next_version(db_path, monkeypatch):
    InventoryStore(db_path).close()
    extra = (SCHEMA_VERSION + 1, ("CREATE TABLE test_extra (value TEXT)",))
    monkeypatch.setattr(inventory_schema, "MIGRATIONS", inventory_schema.MIGRATIONS + [extra])
    monkeypatch.setattr(inventory_schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with InventoryStore(db_path) as store:
        assert store.schema_version == SCHEMA_VERSION + 1
    connection = sqlite3.connect(db_path)
    assert connection.execute("SELECT COUNT(*) FROM test_extra").fetchone()[0] == 0
    connection.close()


def test_failed_migration_rolls_back(db_path, monkeypatch):
    InventoryStore(db_path).close()
    broken = (
        SCHEMA_VERSION + 1,
        ("CREATE TABLE test_half (value TEXT)", "CREATE TABLE broken ("),
    )
    monkeypatch.setattr(inventory_schema, "MIGRATIONS", inventory_schema.MIGRATIONS + [broken])
    monkeypatch.setattr(inventory_schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(InventoryError, match="cannot be used"):
        InventoryStore(db_path)
    connection = sqlite3.connect(db_path)
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    connection.close()
    assert "test_half" not in tables


# ---------------------------------------------------------------------------
# Customers


def test_upsert_customer_create_and_repeat(store):
    changed, before, after = store.upsert_customer(
        "Acme",
        org_id="ORG-1",
        hierarchy="/Provider//Reseller/",
        default_subscription_id=" Sub-A100 ",
        default_site_url="HTTPS://Acme-A.webex.com/",
    )
    assert changed
    assert before is None
    assert after == {
        "name": "Acme",
        "org_id": "ORG-1",
        "hierarchy": "Provider/Reseller",
        "default_subscription_id": "Sub-A100",
        "default_site_url": "acme-a.webex.com",
        "device": None,
    }
    again = store.upsert_customer(
        "Acme",
        org_id="ORG-1",
        hierarchy="Provider/Reseller",
        default_subscription_id="Sub-A100",
        default_site_url="acme-a.webex.com",
    )
    assert again == (False, after, after)


def test_upsert_customer_none_keeps_empty_clears(store):
    add_customer(store, default_subscription_id="Sub-A100", device="api.example/ORG")
    changed, before, after = store.upsert_customer("Acme", default_subscription_id="")
    assert changed
    assert before["default_subscription_id"] == "Sub-A100"
    assert after["default_subscription_id"] is None
    assert after["device"] == "api.example/ORG"
    assert after["hierarchy"] == "Provider/Reseller"


def test_upsert_customer_dry_run_writes_nothing(db_path, store):
    changed, before, after = store.upsert_customer("Acme", org_id="ORG-1", dry_run=True)
    assert changed
    assert before is None
    assert after["org_id"] == "ORG-1"
    assert store.get_customer("Acme") is None
    add_customer(store)
    changed, _before, after = store.upsert_customer("Acme", hierarchy="Other", dry_run=True)
    assert changed
    assert after["hierarchy"] == "Other"
    assert store.get_customer("Acme")["hierarchy"] == "Provider/Reseller"


def test_upsert_customer_rejects_org_of_other_customer(store):
    add_customer(store, "Acme", org_id="ORG-1")
    with pytest.raises(InventoryError, match="org_id 'ORG-1' already belongs to customer 'Acme'"):
        store.upsert_customer("Other", org_id="ORG-1")
    assert store.get_customer("Other") is None


def test_org_written_as_uuid_matches_base64_form(store):
    base64_id = ("Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi9lZWEzM2Q0ZS04YmVkLTRiNjUtOTRhNC1kMjlj"
                 "NzM4M2Q0OTY")
    add_customer(store, "Acme", org_id=base64_id)

    with pytest.raises(InventoryError, match="already belongs to customer 'Acme'"):
        store.upsert_customer("Other", org_id="EEA33D4E-8BED-4B65-94A4-D29C7383D496")

    assert store.customer_of_org("eea33d4e-8bed-4b65-94a4-d29c7383d496") == "Acme"
    assert store.get_customer("Other") is None


def test_upsert_customer_rejects_empty_name(store):
    with pytest.raises(InventoryError, match="must not be empty"):
        store.upsert_customer("  ")


def test_list_customers_by_hierarchy_prefix(store):
    add_customer(store, "A", hierarchy="Provider")
    add_customer(store, "B", hierarchy="Provider/Reseller")
    add_customer(store, "C", hierarchy="Provider2")
    add_customer(store, "D", hierarchy="Provider/Reseller/Sub")
    names = [c["name"] for c in store.list_customers("Provider")]
    assert names == ["A", "B", "D"]
    assert [c["name"] for c in store.list_customers("Provider/Reseller")] == ["B", "D"]
    assert [c["name"] for c in store.list_customers()] == ["A", "B", "C", "D"]
    assert store.list_customers("Nobody") == []


def test_list_customers_gives_each_its_own_sync_times(store):
    add_customer(store, "A", hierarchy="Provider")
    add_customer(store, "B", hierarchy="Provider")
    add_customer(store, "C", hierarchy="Other")
    times = iter(["2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z",
                  "2026-01-02T00:00:00Z", "2026-01-02T00:05:00Z"])
    store.now = lambda: next(times)
    with store.begin_sync("A", scope=["roles"]) as session:
        session.stage_roles(ROLES)
        session.commit()
    with store.begin_sync("C", scope=["roles"]) as session:
        session.stage_roles(ROLES)
        session.commit()
    listed = {c["name"]: c["synced_at"] for c in store.list_customers()}
    assert listed == {"A": {"roles": "2026-01-01T00:05:00Z"}, "B": {},
                      "C": {"roles": "2026-01-02T00:05:00Z"}}
    below = {c["name"]: c["synced_at"] for c in store.list_customers("Provider")}
    assert below == {"A": {"roles": "2026-01-01T00:05:00Z"}, "B": {}}
    assert store.get_customer("A")["synced_at"] == listed["A"]


def test_name_filters_fold_every_script(store):
    add_customer(store)
    licenses = LICENSES + [
        api_license("ECO", "ÉCOLE Licence", "Sub-A100", total=5, consumed=0),
        api_license("PAD", "  Padded License  ", "Sub-A100", total=5, consumed=0),
    ]
    locations = LOCATIONS + [{"id": "LOC-Z", "name": "Zürich Büro"}]
    with store.begin_sync("Acme", scope=["licenses", "locations"]) as session:
        session.stage_licenses(licenses)
        session.stage_locations(locations)
        session.commit()

    def named(name):
        return [row["id"] for row in store.license_rows(customer="Acme", name=name)]

    assert named("école licence") == ["ECO"]
    assert named("Padded License") == ["PAD"]
    assert named("  Padded License  ") == ["PAD"]
    assert named("webex calling - PROFESSIONAL") == ["C-A", "C-B"]
    assert [row["id"] for row in store.find_locations("Acme", "ZÜRICH BÜRO")] == ["LOC-Z"]
    assert [row["id"] for row in store.find_locations("Acme", " head office ")] == ["LOC-1"]
    assert store.find_locations("Acme", "Zurich Buro") == []


def test_defaults_change_recomputes_managed(store):
    add_customer(store)
    full_sync(store)
    assert [r["id"] for r in store.license_rows(customer="Acme", managed_only=True)] == []

    # Sub-A100 has one site URL, so its site license is managed too.
    store.upsert_customer("Acme", default_subscription_id="Sub-A100")
    managed = {r["id"] for r in store.license_rows(customer="Acme", managed_only=True)}
    assert managed == {"C-A", "HYB", "M-A"}

    store.upsert_customer("Acme", default_site_url="https://ACME-A.webex.com")
    managed = {r["id"] for r in store.license_rows(customer="Acme", managed_only=True)}
    assert managed == {"C-A", "HYB", "M-A"}

    store.upsert_customer("Acme", default_subscription_id="Sub-B200", default_site_url="")
    managed = {r["id"] for r in store.license_rows(customer="Acme", managed_only=True)}
    assert managed == {"C-B", "M-B"}

    # A site URL of another subscription manages no site license.
    store.upsert_customer("Acme", default_site_url="acme-a.webex.com")
    managed = {r["id"] for r in store.license_rows(customer="Acme", managed_only=True)}
    assert managed == {"C-B"}


def test_delete_customer_removes_synced_data(db_path, store):
    add_customer(store)
    add_customer(store, "Other")
    full_sync(store)
    full_sync(store, "Other")
    assert store.delete_customer("Acme", dry_run=True)[0]
    assert table_count(db_path, "people") == 300
    changed, before = store.delete_customer("Acme")
    assert changed
    assert before["name"] == "Acme"
    assert store.get_customer("Acme") is None
    for table in DATA_TABLES + ("link_targets", "sync_history", "sync_state"):
        assert table_count(db_path, table) == 0, table
    assert table_count(db_path, "people", "Other") == 300
    # The views hide key pairs whose person is gone, so the key tables are counted: only
    # the links of "Other" are left.
    assert key_pairs(db_path) == {
        "person_license_keys": table_count(db_path, "person_licenses", "Other"),
        "person_role_keys": table_count(db_path, "person_roles", "Other"),
        "workspace_license_keys": table_count(db_path, "workspace_licenses", "Other"),
    }
    assert key_pairs(db_path)["person_license_keys"] > 0
    assert store.delete_customer("Acme") == (False, None)


def key_pairs(path):
    connection = sqlite3.connect(path)
    try:
        return {
            table: connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("person_license_keys", "person_role_keys", "workspace_license_keys")
        }
    finally:
        connection.close()


# ---------------------------------------------------------------------------
# Sync


def test_sync_three_pages_then_unchanged_resync_writes_nothing(db_path, store):
    add_customer(store, default_subscription_id="Sub-A100")
    install_write_counter(db_path)

    first = full_sync(store)
    assert first["changed"]
    assert first["summary"]["people"] == {"added": 300, "updated": 0, "removed": 0, "unchanged": 0}
    assert first["summary"]["licenses"]["added"] == 6
    assert first["staged"]["people"] == 300
    assert written_rows(db_path) > 0
    assert table_count(db_path, "people") == 300
    assert table_count(db_path, "person_licenses") == 630

    before = written_rows(db_path)
    second = full_sync(store)
    assert not second["changed"]
    assert second["rows_written"] == 0
    assert written_rows(db_path) == before
    for counts in second["summary"].values():
        assert counts["added"] == counts["updated"] == counts["removed"] == 0
    assert second["summary"]["people"]["unchanged"] == 300

    history = store.sync_history("Acme")
    assert [h["outcome"] for h in history] == ["success", "success"]
    assert [h["changed"] for h in history] == [False, True]
    assert history[0]["summary"]["people"]["unchanged"] == 300


def test_resync_applies_exact_difference(db_path, store):
    add_customer(store, default_subscription_id="Sub-A100")
    full_sync(store)
    install_write_counter(db_path)

    pages = people_pages()
    pages[0][1]["displayName"] = "Renamed"  # updated field
    pages[0][2]["licenses"] = ["C-A"]  # updated links (MSG removed)
    del pages[2][-1]  # removed person P00299
    pages[2].append({"id": "P-NEW", "emails": ["new@acme.example"], "licenses": ["C-A"]})
    licenses = [dict(item) for item in LICENSES]
    licenses[2]["consumedUnits"] = 5  # updated license C-A
    result = full_sync(store, pages=pages, licenses=licenses)

    assert result["summary"]["people"] == {"added": 1, "updated": 2, "removed": 1, "unchanged": 297}
    assert result["summary"]["licenses"] == {"added": 0, "updated": 1, "removed": 0, "unchanged": 5}
    update = result["licenses"]["updated"][0]
    assert update["before"]["consumed_units"] == 4
    assert update["after"]["consumed_units"] == 5
    changes = {c["id"]: c for c in result["people"]["changes"]}
    assert changes["P-NEW"]["change"] == "added"
    assert changes["P00299"]["change"] == "removed"
    assert changes["P00001"]["fields"] == ["display_name"]
    assert changes["P00002"]["licenses_removed"] == ["MSG"]
    # Added: P-NEW and its link. Removed: P00299 and its 2 links. Updated: P00001 and C-A.
    # Removed: one link of P00002, whose fingerprint is stored anew. Total 9 rows.
    assert written_rows(db_path) == 9
    assert result["rows_written"] > 0
    person = store.find_person("Acme", "P00001")
    assert person["display_name"] == "Renamed"
    assert store.find_person("Acme", "P00299") is None


def test_people_changes_are_bounded(store):
    add_customer(store)
    result = full_sync(store)
    assert len(result["people"]["changes"]) == 20
    assert result["people"]["truncated"] is True


def test_diff_does_not_write(db_path, store):
    add_customer(store, default_subscription_id="Sub-A100")
    install_write_counter(db_path)
    session = store.begin_sync("Acme", scope=["licenses"])
    session.stage_licenses(LICENSES)
    report = session.diff()
    session.discard()
    assert report["summary"]["licenses"]["added"] == 6
    assert {r["id"] for r in report["licenses"]["added"] if r["managed"]} == {"C-A", "HYB", "M-A"}
    assert written_rows(db_path) == 0
    assert store.sync_history("Acme") == []


def test_light_sync_leaves_people(db_path, store):
    add_customer(store, default_subscription_id="Sub-A100")
    full_sync(store)
    with store.begin_sync("Acme", scope=["licenses", "roles"]) as session:
        session.stage_licenses(LICENSES[:4])
        session.stage_roles([])
        result = session.commit()
    assert set(result["summary"]) == {"licenses", "roles"}
    assert result["summary"]["licenses"]["removed"] == 2
    assert result["summary"]["roles"]["removed"] == 1
    assert table_count(db_path, "people") == 300
    assert table_count(db_path, "person_licenses") == 630
    assert "people" not in result
    # People come from the inventory: every tenth person has C-B of Sub-B200.
    assert result["users_outside_defaults"]["count"] == 30


def test_users_outside_defaults(store):
    add_customer(store, default_subscription_id="Sub-A100")
    result = full_sync(store)
    outside = result["users_outside_defaults"]
    assert outside["count"] == 30
    assert len(outside["sample"]) == 20
    first = outside["sample"][0]
    assert first["id"] == "P00000"
    assert first["email"] == "user0@acme.example"
    # Basic Messaging has no subscription, so it is not counted as outside the defaults.
    assert [lic["id"] for lic in first["licenses"]] == ["C-B"]
    assert store.users_outside_defaults("Acme", sample_size=5)["count"] == 30
    assert len(store.users_outside_defaults("Acme", sample_size=5)["sample"]) == 5


def test_sync_reports_defaults_required(store):
    add_customer(store)
    result = full_sync(store)
    codes = [(w["code"], w["option"]) for w in result["warnings"]]
    assert codes == [
        ("defaults_required", "default_subscription_id"),
        ("defaults_required", "default_site_url"),
    ]
    assert result["warnings"][0]["candidates"] == ["Sub-A100", "Sub-B200"]
    assert result["unsubscribed_licenses"] == [{"id": "MSG", "name": "Basic Messaging"}]
    assert not [r for r in store.list_licenses("Acme") if r["managed"]]


def test_duplicate_page_is_counted_not_stored(store):
    add_customer(store)
    pages = people_pages()
    with store.begin_sync("Acme", scope=["people"]) as session:
        session.stage_people(pages[0])
        session.stage_people(pages[1])
        session.stage_people(pages[0])
        result = session.commit()
    assert result["duplicates"]["people"] == 100
    assert result["staged"]["people"] == 200
    assert result["summary"]["people"]["added"] == 200


def test_stage_outside_scope_rejected(store):
    add_customer(store)
    with store.begin_sync("Acme", scope=["licenses"]) as session:
        with pytest.raises(ValueError, match="not in the sync scope"):
            session.stage_people([])
        session.discard()


def test_invalid_scope_rejected(store):
    add_customer(store)
    with pytest.raises(ValueError, match="invalid sync scope devices"):
        store.begin_sync("Acme", scope=["licenses", "devices"])


def test_begin_sync_unknown_customer(store):
    with pytest.raises(InventoryError, match="customer 'Nobody' not found"):
        store.begin_sync("Nobody")


def test_exception_before_commit_keeps_inventory(db_path, store):
    add_customer(store, default_subscription_id="Sub-A100")
    full_sync(store)
    before = snapshot(db_path)
    with pytest.raises(RuntimeError, match="page 2 failed"):
        with store.begin_sync("Acme") as session:
            session.stage_licenses(LICENSES[:1])
            session.stage_people(people_pages()[0])
            raise RuntimeError("page 2 failed")
    assert snapshot(db_path) == before
    failed = store.sync_history("Acme")[0]
    assert failed["outcome"] == "failed"
    assert failed["error"] == "RuntimeError: page 2 failed"
    assert failed["rows_written"] == 0


def test_abort_records_failure(db_path, store):
    add_customer(store)
    session = store.begin_sync("Acme", scope=["roles"])
    session.stage_roles(ROLES)
    history_id = session.abort("GET /v1/roles failed: 503")
    assert store.sync_history("Acme")[0]["id"] == history_id
    assert table_count(db_path, "roles") == 0
    with pytest.raises(InventoryError, match="already committed, aborted or discarded"):
        session.stage_roles(ROLES)


def test_session_closed_without_commit_records_failure(store):
    add_customer(store)
    with store.begin_sync("Acme", scope=["roles"]) as session:
        session.stage_roles(ROLES)
    assert store.sync_history("Acme")[0]["error"] == "sync session closed without commit"


def test_sync_stores_device_and_synced_at(store):
    add_customer(store)
    times = iter(["2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"])
    store.now = lambda: next(times)
    full_sync(store, device="webexapis.com/ORG-Acme")
    customer = store.get_customer("Acme")
    assert customer["device"] == "webexapis.com/ORG-Acme"
    assert customer["synced_at"]["licenses"] == "2026-01-01T00:05:00Z"
    row = store.license_rows(customer="Acme")[0]
    assert row["device"] == "webexapis.com/ORG-Acme"
    assert row["synced_at"] == "2026-01-01T00:05:00Z"


def test_staging_holds_no_inventory_lock(db_path, store):
    add_customer(store)
    session = store.begin_sync("Acme", scope=["people"])
    session.stage_people(people_pages()[0])
    other = InventoryStore(db_path, lock_timeout=0.5, busy_timeout=0.1)
    # A staging transaction only writes TEMP tables, so another writer gets the lock.
    with session._staging_transaction():
        session._conn.execute("DELETE FROM s_people WHERE id = 'P00000'")
        assert other.upsert_customer("Other", org_id="ORG-O")[0]
    other.close()
    session.discard()


# ---------------------------------------------------------------------------
# Reads per level


@pytest.fixture
def hierarchy_store(store):
    add_customer(
        store,
        "Acme",
        hierarchy="Provider/ResellerA",
        default_subscription_id="Sub-A100",
        default_site_url="acme-a.webex.com",
        device="host/ORG-Acme",
    )
    add_customer(store, "Beta", hierarchy="Provider/ResellerB")
    add_customer(store, "Gamma", hierarchy="Provider2")
    full_sync(store, "Acme")
    beta_licenses = [
        api_license("BC", "Webex Calling - Professional", "Sub-A100", total=5, consumed=7),
        api_license("BM", "Meeting - Webex Meeting Center", "Sub-C300", "beta.webex.com", 10, 2),
    ]
    full_sync(store, "Beta", pages=people_pages(20, 10), licenses=beta_licenses)
    full_sync(
        store,
        "Gamma",
        pages=[],
        licenses=[
            api_license("G", "Webex Calling - Professional", "Sub-A100", total=100, consumed=1)
        ],
    )
    return store


def test_license_rows_at_provider_level(hierarchy_store):
    rows = hierarchy_store.license_rows(hierarchy_prefix="Provider")
    assert {row["customer"] for row in rows} == {"Acme", "Beta"}
    assert len(rows) == 8
    acme_calling = [r for r in rows if r["id"] == "C-A"][0]
    assert acme_calling["hierarchy"] == "Provider/ResellerA"
    assert acme_calling["device"] == "host/ORG-Acme"
    assert acme_calling["managed"] is True
    assert acme_calling["available_units"] == 26
    assert acme_calling["utilization"] == 13.3
    assert acme_calling["synced_at"]


def test_license_rows_filters(hierarchy_store):
    store = hierarchy_store
    managed = store.license_rows(hierarchy_prefix="Provider", managed_only=True)
    assert sorted(r["id"] for r in managed) == ["C-A", "HYB", "M-A"]
    by_site = store.license_rows(site_url="HTTPS://ACME-B.webex.com/")
    assert [r["id"] for r in by_site] == ["M-B"]
    by_name = store.license_rows(
        hierarchy_prefix="Provider/ResellerA", name="webex calling - professional"
    )
    assert sorted(r["id"] for r in by_name) == ["C-A", "C-B"]
    by_subscription = store.license_rows(subscription_id="Sub-A100")
    assert sorted(r["id"] for r in by_subscription) == ["BC", "C-A", "G", "HYB", "M-A"]
    assert [r["id"] for r in store.license_rows(customer="Gamma")] == ["G"]
    unsubscribed = [r for r in store.list_licenses("Acme") if r["unsubscribed"]]
    assert [r["id"] for r in unsubscribed] == ["MSG"]


def test_license_totals_per_name_and_subscription(hierarchy_store):
    totals = hierarchy_store.license_totals("Provider", name="Webex Calling - Professional")
    assert [(t["subscription_id"], t["customers"]) for t in totals] == [
        ("Sub-A100", ["Acme", "Beta"]),
        ("Sub-B200", ["Acme"]),
    ]
    sub_a = totals[0]
    assert sub_a["hierarchy"] == "Provider"
    assert sub_a["total_units"] == 35
    assert sub_a["consumed_units"] == 11
    # Beta is over-consumed (7 of 5), so only Acme's 26 free units are available.
    assert sub_a["available_units"] == 26
    assert sub_a["utilization"] == 31.4


def test_license_totals_hybrid_counts_no_consumption(hierarchy_store):
    totals = hierarchy_store.license_totals("Provider/ResellerA", name="Hybrid - Exchange Calendar")
    assert totals[0]["consumed_units"] == 0


def test_location_level_counts(hierarchy_store):
    rows = hierarchy_store.location_license_rows(customer="Acme")
    by_key = {(r["location_id"], r["id"]): r for r in rows}
    # 150 people per location hold C-A; W1 in LOC-1 holds C-A too.
    head_office = by_key[("LOC-1", "C-A")]
    assert head_office["location_name"] == "Head Office"
    assert head_office["consumed_by_users"] == 150
    assert head_office["consumed_by_workspaces"] == 1
    assert head_office["consumed_units"] == 151
    assert head_office["org_consumed_units"] == 4
    assert head_office["total_units"] == 30
    branch = by_key[("LOC-2", "C-A")]
    assert branch["consumed_units"] == 150
    assert branch["consumed_by_workspaces"] == 0
    # People 0, 10, 20, ... hold C-B; all have even numbers, so all are in LOC-1.
    assert by_key[("LOC-1", "C-B")]["consumed_by_users"] == 30
    assert ("LOC-2", "C-B") not in by_key
    assert not [r for r in rows if r["hybrid"]]


def test_location_level_filters(hierarchy_store):
    rows = hierarchy_store.location_license_rows(
        hierarchy_prefix="Provider", location_id="LOC-2", managed_only=True
    )
    assert {(r["customer"], r["id"]) for r in rows} == {("Acme", "C-A")}
    assert hierarchy_store.location_license_rows(hierarchy_prefix="Provider2") == []


def test_defaults_decision_from_inventory(hierarchy_store):
    decision = hierarchy_store.defaults_decision("Beta")
    assert decision.subscription_candidates == ("Sub-A100", "Sub-C300")
    assert decision.missing == ("default_subscription_id",)
    assert decision.site_url == "beta.webex.com"


# ---------------------------------------------------------------------------
# Incremental license change


def license_row(store, license_id, customer="Acme"):
    return [r for r in store.list_licenses(customer) if r["id"] == license_id][0]


def test_apply_user_license_change_adds_and_removes(db_path, store):
    add_customer(store, default_subscription_id="Sub-A100")
    full_sync(store)
    result = store.apply_user_license_change("Acme", "P00001", ["C-A", "M-A", "HYB"], ["MSG"])
    assert result["changed"]
    assert result["person_added"] is False
    assert result["licenses_added"] == ["M-A", "HYB"]
    assert result["licenses_removed"] == ["MSG"]
    assert license_row(store, "M-A")["consumed_units"] == 4
    assert license_row(store, "M-A")["consumed_by_users"] == 4
    assert license_row(store, "MSG")["consumed_units"] == 299
    assert license_row(store, "HYB")["consumed_units"] == 0
    assert store.find_person("Acme", "USER1@acme.example")["license_ids"] == ["C-A", "HYB", "M-A"]

    repeat = store.apply_user_license_change("Acme", "P00001", ["M-A"], ["MSG"])
    assert repeat["changed"] is False
    assert repeat["rows_written"] == 0
    assert license_row(store, "M-A")["consumed_units"] == 4


def test_user_license_change_keeps_an_unreported_user_count(db_path, store):
    """A license whose users' count the API leaves null keeps null: a change moves only the
    counters that the API reports, so the next sync finds nothing to correct."""
    add_customer(store, default_subscription_id="Sub-A100")
    licenses = [dict(item) for item in LICENSES]
    for item in licenses:
        if item["id"] in ("C-A", "M-A"):
            item["consumedByUsers"] = None
    full_sync(store, licenses=licenses)

    store.apply_user_license_change("Acme", "P00001", ["M-A"], [])
    assert license_row(store, "M-A")["consumed_units"] == 4
    assert license_row(store, "M-A")["consumed_by_users"] is None

    store.apply_user_license_change("Acme", "P00001", [], ["C-A", "M-A"])
    assert license_row(store, "M-A")["consumed_units"] == 3
    assert license_row(store, "C-A")["consumed_units"] == 3
    assert license_row(store, "M-A")["consumed_by_users"] is None
    assert license_row(store, "C-A")["consumed_by_users"] is None


def test_apply_user_license_change_creates_person(store):
    add_customer(store)
    full_sync(store, pages=[])
    result = store.apply_user_license_change(
        "Acme", "P-NEW", ["C-B"], person_fields={"email": "new@acme.example", "location_id": "L"}
    )
    assert result["person_added"]
    person = store.find_person("Acme", "new@acme.example")
    assert person["license_ids"] == ["C-B"]
    assert person["location_id"] == "L"
    assert license_row(store, "C-B")["consumed_units"] == 2


def test_apply_user_license_change_floors_counters(store):
    add_customer(store)
    full_sync(store, pages=[], licenses=[api_license("Z", "Calling", "S", total=1, consumed=0)])
    store.apply_user_license_change("Acme", "P", [], [])
    connection_rows = store.find_person("Acme", "P")
    assert connection_rows["license_ids"] == []
    store.apply_user_license_change("Acme", "P", ["Z"])
    # The sync reported 0 consumed and a removal follows, so the counters stay at 0.
    store.apply_user_license_change("Acme", "P", [], ["Z"])
    store.apply_user_license_change("Acme", "P", [], ["Z"])
    assert license_row(store, "Z")["consumed_units"] == 0


def licenses_sync(store, licenses):
    with store.begin_sync("Acme", scope=["licenses"]) as session:
        session.stage_licenses(licenses)
        session.commit()


def consumed_units(store):
    return {row["id"]: row["consumed_units"] for row in store.list_licenses("Acme")}


def test_record_counts_applied_links(store):
    """People and licenses synced together: a stored person's applied changes count once."""
    add_customer(store, default_subscription_id="Sub-A100")
    full_sync(store)
    assert store.find_person("Acme", "P00001")["license_ids"] == ["C-A", "MSG"]
    before = consumed_units(store)

    result = store.record_user_licenses(
        "Acme", "P00001", ["M-A", "HYB", "X-NEW"], ["MSG"], ["C-A", "M-A", "HYB", "X-NEW"]
    )

    # HYB is hybrid and X-NEW unknown to the inventory: linked, but no counter moves.
    assert result["licenses_added"] == ["M-A", "HYB", "X-NEW"]
    assert result["counted_added"] == ["M-A"]
    assert result["counted_removed"] == ["MSG"]
    after = consumed_units(store)
    assert after["M-A"] == before["M-A"] + 1
    assert after["MSG"] == before["MSG"] - 1
    assert after["HYB"] == before["HYB"]
    assert store.find_person("Acme", "P00001")["license_ids"] == ["C-A", "HYB", "M-A", "X-NEW"]

    repeat = store.record_user_licenses("Acme", "P00001", ["M-A"], ["MSG"], ["C-A", "M-A"])
    assert repeat["changed"] is False
    assert consumed_units(store) == after


def test_record_late_result_keeps_newer(store):
    """Two changes of one user recorded in the other order: each only adds its own."""
    add_customer(store, default_subscription_id="Sub-A100")
    full_sync(store)
    before = consumed_units(store)

    store.record_user_licenses("Acme", "P00001", ["C-B"], [], ["C-A", "MSG", "M-A", "C-B"])
    store.record_user_licenses("Acme", "P00001", ["M-A"], [], ["C-A", "MSG", "M-A"])

    assert store.find_person("Acme", "P00001")["license_ids"] == ["C-A", "C-B", "M-A", "MSG"]
    after = consumed_units(store)
    assert after["C-B"] == before["C-B"] + 1
    assert after["M-A"] == before["M-A"] + 1


def test_record_new_person_synced_customer(store):
    add_customer(store, default_subscription_id="Sub-A100")
    full_sync(store)
    before = consumed_units(store)

    result = store.record_user_licenses(
        "Acme", "P-NEW", ["M-A"], [], ["C-A", "M-A"],
        person_fields={"email": "new@acme.example"},
    )

    # Not listed by the sync, so none of the person's licenses was counted yet.
    assert result["person_added"] is True
    assert result["counted_added"] == ["C-A", "M-A"]
    after = consumed_units(store)
    assert after["C-A"] == before["C-A"] + 1
    assert after["M-A"] == before["M-A"] + 1
    assert store.find_person("Acme", "new@acme.example")["license_ids"] == ["C-A", "M-A"]


@pytest.mark.parametrize("people_synced", [False, True])
def test_record_after_licenses_only_sync(store, people_synced):
    """Counters newer than the stored links, or no links at all: only the change counts."""
    add_customer(store, default_subscription_id="Sub-A100")
    if people_synced:
        full_sync(store)
    licenses_sync(store, LICENSES)
    before = consumed_units(store)

    # M-B was added in Control Hub after the people sync, and the licenses sync counted
    # it. Removing it now must lower its counter although no stored link has it.
    result = store.record_user_licenses(
        "Acme", "P00001", ["M-A"], ["MSG", "M-B"], ["C-A", "M-A"]
    )

    assert result["counted_added"] == ["M-A"]
    assert result["counted_removed"] == ["MSG", "M-B"]
    after = consumed_units(store)
    assert after["M-A"] == before["M-A"] + 1
    assert after["MSG"] == before["MSG"] - 1
    assert after["M-B"] == before["M-B"] - 1
    assert after["C-A"] == before["C-A"]
    assert store.find_person("Acme", "P00001")["license_ids"] == ["C-A", "M-A"]


@pytest.mark.parametrize("person", ["P00001", "P-NEW"])
def test_record_twice_after_licenses_sync(store, person):
    """Two tasks that record one change of a user (forks) count it once, also when the
    licenses were synced after the people."""
    add_customer(store, default_subscription_id="Sub-A100")
    full_sync(store)
    licenses_sync(store, LICENSES)
    before = consumed_units(store)
    licenses_before = ["C-A", "MSG"] if person == "P00001" else []

    for _task in range(3):
        store.record_user_licenses("Acme", person, ["M-A"], [], licenses_before + ["M-A"])

    after = consumed_units(store)
    assert after["M-A"] == before["M-A"] + 1
    assert after["C-A"] == before["C-A"]
    # Later changes of that person follow the stored links until the next licenses sync.
    store.record_user_licenses("Acme", person, [], ["M-A"], licenses_before)
    store.record_user_licenses("Acme", person, [], ["M-A"], licenses_before)
    assert consumed_units(store)["M-A"] == before["M-A"]
    licenses_sync(store, LICENSES)
    store.record_user_licenses("Acme", person, ["M-A"], [], licenses_before + ["M-A"])
    assert consumed_units(store)["M-A"] == before["M-A"] + 1


def test_record_after_licenses_sync_stale_links(store):
    """A removal of a license that the licenses sync counted but the stored links miss
    lowers its counter."""
    add_customer(store, default_subscription_id="Sub-A100")
    full_sync(store)
    licenses_sync(store, LICENSES)
    before = consumed_units(store)

    # M-B was given in Control Hub after the people sync; MSG was taken away.
    store.record_user_licenses("Acme", "P00001", ["M-A"], [], ["C-A", "M-A", "M-B"])
    store.record_user_licenses("Acme", "P00001", [], ["M-B"], ["C-A", "M-A"])

    after = consumed_units(store)
    assert after["M-A"] == before["M-A"] + 1
    assert after["M-B"] == before["M-B"] - 1
    assert after["MSG"] == before["MSG"]


@pytest.mark.parametrize("person", ["P00001", "P-NEW"])
def test_record_other_task_first_after_licenses_sync(store, person):
    """Two tasks change different licenses of one user; the later read-back is recorded
    first. Each change counts once."""
    add_customer(store, default_subscription_id="Sub-A100")
    full_sync(store)
    licenses_sync(store, LICENSES)
    before = consumed_units(store)
    licenses_before = ["C-A", "MSG"] if person == "P00001" else []

    store.record_user_licenses("Acme", person, ["C-B"], [], licenses_before + ["M-A", "C-B"])
    store.record_user_licenses("Acme", person, ["M-A"], [], licenses_before + ["M-A"])

    after = consumed_units(store)
    assert after["C-B"] == before["C-B"] + 1
    assert after["M-A"] == before["M-A"] + 1


def test_record_remove_and_add_after_licenses_sync(store):
    add_customer(store, default_subscription_id="Sub-A100")
    full_sync(store)
    licenses_sync(store, LICENSES)
    before = consumed_units(store)

    store.record_user_licenses("Acme", "P00001", [], ["MSG"], ["C-A", "M-A"])
    store.record_user_licenses("Acme", "P00001", ["M-A"], [], ["C-A", "M-A"])

    after = consumed_units(store)
    assert after["MSG"] == before["MSG"] - 1
    assert after["M-A"] == before["M-A"] + 1


def test_counted_changes_go_with_customer(store, db_path):
    add_customer(store, default_subscription_id="Sub-A100")
    full_sync(store)
    licenses_sync(store, LICENSES)
    store.record_user_licenses("Acme", "P00001", ["M-A"], [], ["C-A", "MSG", "M-A"])
    assert table_count(db_path, "counted_license_changes") == 1

    store.rename_customer("Acme", "Acme Group")
    assert table_count(db_path, "counted_license_changes", "Acme Group") == 1
    store.delete_customer("Acme Group")
    assert table_count(db_path, "counted_license_changes", "Acme Group") == 0


def test_apply_user_license_change_rejects_unknown_fields(store):
    add_customer(store)
    with pytest.raises(ValueError, match="invalid person_fields token"):
        store.apply_user_license_change("Acme", "P", ["X"], person_fields={"token": "x"})


def test_apply_user_license_change_unknown_customer(store):
    with pytest.raises(InventoryError, match="customer 'Nobody' not found"):
        store.apply_user_license_change("Nobody", "P", ["X"])


@pytest.mark.parametrize("stored, new, expected", [
    (["Customer 6"], "Customer 7", None),
    (["Store 12 North"], "Store 13 North", None),
    (["Customer 6"], "customer 6", "Customer 6"),
    (["Borealis Logistics"], "Borealis Logistic", "Borealis Logistics"),
    (["Customer 6", "Customr 7"], "Customer 7", "Customr 7"),
])
def test_similar_name_skips_number_series(store, stored, new, expected):
    for name in stored:
        store.upsert_customer(name)

    assert store.similar_customer_name(new) == expected


def test_truncated_file_names_fix(db_path):
    with InventoryStore(db_path) as opened:
        add_customer(opened)
        full_sync(opened)
    with open(db_path, "rb") as handle:
        head = handle.read(8192)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db_path + suffix):
            os.unlink(db_path + suffix)
    with open(db_path, "wb") as handle:
        handle.write(head)

    with pytest.raises(InventoryError) as caught:
        with InventoryStore(db_path) as opened:
            opened.list_customers()

    message = str(caught.value)
    assert f"inventory database {db_path} cannot be used" in message
    assert f"sqlite3 {db_path} 'PRAGMA integrity_check'" in message
    assert "restore it from a backup" in message


def test_readonly_error_names_write_access(db_path):
    dialect = inventory_schema.SQLiteDialect(db_path, lock_timeout=1)

    error = dialect.error_for(sqlite3.OperationalError("attempt to write a readonly database"))

    assert "Give write access to them" in str(error)
    assert "integrity_check" not in str(error)


def test_unable_to_open_names_write_access(db_path):
    """SQLite reports "unable to open database file" when the directory cannot be written
    (so FILE-wal and FILE-shm cannot be created), not when the file is damaged."""
    dialect = inventory_schema.SQLiteDialect(db_path, lock_timeout=1)

    error = dialect.error_for(sqlite3.OperationalError("unable to open database file"))

    assert "Give write access to them" in str(error)
    assert "restore it from a backup" not in str(error)


def test_missing_file_names_the_first_steps(tmp_path):
    with pytest.raises(InventoryError) as caught:
        InventoryStore(str(tmp_path / "missing.db"), create=False)

    assert "add customers with ucops.webex.webex_customer" in str(caught.value)


def test_new_file_without_hard_links(db_path, monkeypatch):
    def no_links(source, target):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(inventory_schema.os, "link", no_links)
    with InventoryStore(db_path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.upgrade_message() is None
    assert sorted(os.listdir(os.path.dirname(db_path))) == [os.path.basename(db_path)]
    assert os.stat(db_path).st_mode & 0o777 == 0o600


def test_new_file_through_link_is_private(tmp_path):
    target = tmp_path / "data" / "inventory.db"
    link = tmp_path / "inventory.db"
    link.symlink_to(target)

    with InventoryStore(str(link)) as store:
        assert store.schema_version == SCHEMA_VERSION

    assert link.is_symlink()
    assert os.stat(target).st_mode & 0o777 == 0o600
    assert os.stat(target.parent).st_mode & 0o777 == 0o700


def test_readonly_error_names_unwritable_side_file(db_path, monkeypatch):
    # A reader of a read-only file leaves FILE-shm read-only; root passes any access check,
    # so the check is replaced here.
    for suffix in ("", "-wal", "-shm"):
        open(db_path + suffix, "wb").close()
    monkeypatch.setattr(inventory_schema.os, "access",
                        lambda path, mode: not str(path).endswith("-shm"))

    error = inventory_schema.SQLiteDialect(db_path).error_for(
        sqlite3.OperationalError("attempt to write a readonly database")
    )

    message = str(error)
    assert f"Not writable: {db_path}-shm." in message
    assert "even to read" not in message


def test_disk_full_message_says_free_space(db_path):
    full = sqlite3.OperationalError("database or disk is full")

    assert "free disk space on its file system, then run the task again" in str(
        inventory_schema.SQLiteDialect(db_path).error_for(full))
    message = inventory_module.database_error_message(db_path, full)
    assert message.startswith(f"the inventory database {db_path} failed: database or disk")
    assert "The file was left as it was: free disk space" in message


def test_rename_of_unknown_customer_fails(db_path):
    with InventoryStore(db_path) as store:
        with pytest.raises(InventoryError, match="neither is in the inventory"):
            store.rename_customer("Nobody", "Somebody")
        store.upsert_customer("Acme", org_id="ORG-1")
        assert store.rename_customer("Acme", "Acme Group", dry_run=True) is True
        assert store.get_customer("Acme") is not None
        assert store.rename_customer("Acme", "Acme Group") is True
        assert store.get_customer("Acme Group")["org_id"] == "ORG-1"
        assert store.rename_customer("Acme", "Acme Group") is False


def test_unwritable_directory_named(db_path, monkeypatch):
    def permission_denied(**_options):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(inventory_schema.tempfile, "mkstemp", permission_denied)

    with pytest.raises(InventoryError) as raised:
        InventoryStore(db_path)

    message = str(raised.value)
    assert message.startswith(f"cannot create the inventory database {db_path}: Permission")
    assert f"Allow writing to {os.path.dirname(db_path)}" in message
    assert not os.path.exists(db_path)


def test_rename_to_same_name_changes_nothing(db_path):
    with InventoryStore(db_path) as store:
        store.upsert_customer("Acme", org_id="ORG-1")
        assert store.rename_customer("Acme", "Acme") is False
        assert store.get_customer("Acme")["org_id"] == "ORG-1"


def test_license_view_names_customers_not_synced_or_failed(hierarchy_store):
    from ansible_collections.ucops.webex.plugins.module_utils.license_view import (
        build_license_view,
        sync_warnings,
    )

    add_customer(hierarchy_store, "Delta", hierarchy="Provider/ResellerB")
    hierarchy_store.record_failed_sync(
        "Beta", ["licenses"], None, "2026-01-01T00:00:00Z", "HTTP 503")
    # A customer whose only sync failed has no rows: it is named as never synced only.
    hierarchy_store.record_failed_sync(
        "Delta", ["licenses"], None, "2026-01-01T00:00:00Z", "HTTP 503")

    listing = build_license_view(hierarchy_store, hierarchy="Provider")
    customer = build_license_view(hierarchy_store, customer="Acme")

    assert listing["not_synced"] == ["Delta"]
    assert listing["last_sync_failed"] == ["Beta"]
    assert (customer["not_synced"], customer["last_sync_failed"]) == ([], [])
    warnings = sync_warnings(listing)
    assert "customer(s) Delta were never synced" in warnings[0]
    assert "latest license sync of customer(s) Beta failed" in warnings[1]
    assert sync_warnings(customer) == []


def test_license_view_ignores_failed_syncs_without_licenses(hierarchy_store):
    from ansible_collections.ucops.webex.plugins.module_utils.license_view import sync_status

    hierarchy_store.record_failed_sync(
        "Beta", ["people"], None, "2026-01-01T00:00:00Z", "HTTP 503")
    hierarchy_store.record_failed_sync(
        "Gamma", ["licenses"], None, "2026-01-01T00:00:00Z", "HTTP 503")
    full_sync(hierarchy_store, "Gamma", pages=[], licenses=[])
    hierarchy_store.record_failed_sync(
        "Acme", ["licenses", "people"], None, "2026-01-01T00:00:00Z", "HTTP 503")
    hierarchy_store.record_failed_sync(
        "Acme", ["people"], None, "2026-01-01T00:01:00Z", "HTTP 503")

    for minute in range(60):  # many later syncs of the people do not hide it
        hierarchy_store.record_failed_sync(
            "Acme", ["people"], None, f"2026-01-01T01:{minute:02d}:00Z", "HTTP 503")

    status = sync_status(hierarchy_store, hierarchy_store.list_customers())

    assert status["last_sync_failed"] == ["Acme"]
    assert hierarchy_store.latest_sync_outcome("Gamma", "licenses") != "failed"
    assert hierarchy_store.latest_sync_outcome("Delta", "licenses") is None


def test_missing_customer_names_unicode_form(store):
    nfc, nfd = "Caf\u00e9 Zo\u00eb", "Cafe\u0301 Zoe\u0308"
    store.upsert_customer(nfc)
    assert store.similar_customer_name(nfd) == nfc
    message = store.missing_customer_message(nfd)
    assert f"did you mean '{nfc}'?" in message
    assert "The two names look alike but differ in their Unicode form" in message
    assert ascii(nfc) in message


def test_name_filters_keep_sharp_s_apart(store):
    add_customer(store)
    licenses = LICENSES + [
        api_license("GROSS", "Gross Plan", "Sub-A100", total=5, consumed=0),
        api_license("GROSZ", "Groß Plan", "Sub-A100", total=5, consumed=0),
    ]
    with store.begin_sync("Acme", scope=["licenses", "locations"]) as session:
        session.stage_licenses(licenses)
        session.stage_locations([{"id": "L-SS", "name": "Hauptstrasse"},
                                 {"id": "L-SZ", "name": "Hauptstraße"}])
        session.commit()

    assert [row["id"] for row in store.license_rows(customer="Acme", name="gross plan")] == [
        "GROSS"]
    assert [row["id"] for row in store.find_locations("Acme", "HAUPTSTRASSE")] == ["L-SS"]
