# Copyright: ucops.webex maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Schema, migrations and the SQLite connection details of the license inventory.

Everything that depends on the database engine lives in ``SQLiteDialect``: opening the file,
pragmas, the write-transaction statement, lock-error detection, the schema version and the
null-safe comparison. The data queries in ``inventory`` and ``inventory_sync`` use portable
SQL (named ``:param`` placeholders, ``ON CONFLICT ... DO UPDATE`` upserts, ``substr``) so that
a PostgreSQL dialect can be added with its own DDL, version table and placeholder rewrite.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import struct
import tempfile
import time
from typing import Callable, List, Optional, Sequence, Tuple, TypeVar

from ansible_collections.ucops.webex.plugins.module_utils.licensing import fold_name

SQLITE_HEADER = b"SQLite format 3\x00"
# UPSERT (INSERT ... ON CONFLICT ... DO UPDATE) arrived in SQLite 3.24.0.
MIN_SQLITE_VERSION = (3, 24, 0)

# Data tables: what a sync replaces. Bookkeeping tables (customers, sync_history, sync_state)
# are written by customer changes and by every non-check sync run. Since schema 4 the link
# tables (person_licenses, person_roles, workspace_licenses) are views over LINK_KEY_TABLES.
DATA_TABLES = (
    "licenses",
    "roles",
    "people",
    "person_licenses",
    "person_roles",
    "locations",
    "workspaces",
    "workspace_licenses",
)

# The tables behind DATA_TABLES since schema 4: the key tables of the link views, and
# link_targets, which gives each license or role id of a customer its key.
STORED_DATA_TABLES = (
    "licenses",
    "roles",
    "people",
    "person_license_keys",
    "person_role_keys",
    "locations",
    "workspaces",
    "workspace_license_keys",
    "link_targets",
)

# Each link table as stored since schema 4: (view, key table, owner table, owner key column).
LINK_KEY_TABLES = (
    ("person_licenses", "person_license_keys", "people", "person_key"),
    ("person_roles", "person_role_keys", "people", "person_key"),
    ("workspace_licenses", "workspace_license_keys", "workspaces", "workspace_key"),
)


def _link_view_triggers(
    view: str, owners: str, owner: str, key_table: str, target_column: str, missing: str
) -> Tuple[str, str]:
    """Return the INSTEAD OF INSERT and DELETE triggers that store a row written to a link
    view (``view``) as a key pair in ``key_table``.

    ``owners`` is the owner table (people or workspaces), whose rows have ``<owner>_id`` in
    the view and ``<owner>_key`` in the key table. ``missing`` is the error of an insert
    whose owner is not stored.
    """
    owner_id, owner_key = f"{owner}_id", f"{owner}_key"
    insert = f"""
            CREATE TRIGGER {view}_insert INSTEAD OF INSERT ON {view}
            BEGIN
                SELECT RAISE(ABORT, '{view}: {missing}')
                WHERE NOT EXISTS (SELECT 1 FROM {owners}
                    WHERE customer = NEW.customer AND id = NEW.{owner_id});
                INSERT INTO link_targets (customer, id) VALUES (NEW.customer, NEW.{target_column})
                    ON CONFLICT (customer, id) DO NOTHING;
                INSERT INTO {key_table} ({owner_key}, target_key)
                    SELECT o.{owner_key}, t.target_key FROM {owners} o, link_targets t
                    WHERE o.customer = NEW.customer AND o.id = NEW.{owner_id}
                    AND t.customer = NEW.customer AND t.id = NEW.{target_column}
                    ON CONFLICT ({owner_key}, target_key) DO NOTHING;
            END
            """
    delete = f"""
            CREATE TRIGGER {view}_delete INSTEAD OF DELETE ON {view}
            BEGIN
                DELETE FROM {key_table}
                WHERE {owner_key} = (SELECT {owner_key} FROM {owners}
                    WHERE customer = OLD.customer AND id = OLD.{owner_id})
                AND target_key = (SELECT target_key FROM link_targets
                    WHERE customer = OLD.customer AND id = OLD.{target_column});
            END
            """
    return insert, delete


# Ordered migrations: (version, statements). A database at version N gets every migration
# above N, each in its own transaction together with the new version number.
MIGRATIONS: List[Tuple[int, Sequence[str]]] = [
    (
        1,
        (
            """
            CREATE TABLE customers (
                name TEXT NOT NULL PRIMARY KEY,
                org_id TEXT UNIQUE,
                hierarchy TEXT NOT NULL DEFAULT '',
                default_subscription_id TEXT,
                default_site_url TEXT,
                device TEXT,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE licenses (
                customer TEXT NOT NULL REFERENCES customers (name),
                id TEXT NOT NULL,
                name TEXT NOT NULL,
                site_url TEXT,
                site_url_key TEXT,
                site_type TEXT,
                subscription_id TEXT,
                total_units INTEGER NOT NULL,
                consumed_units INTEGER NOT NULL,
                consumed_by_users INTEGER,
                consumed_by_workspaces INTEGER,
                hybrid INTEGER NOT NULL,
                managed INTEGER NOT NULL,
                PRIMARY KEY (customer, id)
            )
            """,
            """
            CREATE TABLE roles (
                customer TEXT NOT NULL REFERENCES customers (name),
                id TEXT NOT NULL,
                name TEXT,
                PRIMARY KEY (customer, id)
            )
            """,
            """
            CREATE TABLE people (
                customer TEXT NOT NULL REFERENCES customers (name),
                id TEXT NOT NULL,
                email TEXT,
                display_name TEXT,
                location_id TEXT,
                PRIMARY KEY (customer, id)
            )
            """,
            "CREATE INDEX people_email ON people (customer, email)",
            "CREATE INDEX people_location ON people (customer, location_id)",
            """
            CREATE TABLE person_licenses (
                customer TEXT NOT NULL REFERENCES customers (name),
                person_id TEXT NOT NULL,
                license_id TEXT NOT NULL,
                PRIMARY KEY (customer, person_id, license_id)
            )
            """,
            "CREATE INDEX person_licenses_license ON person_licenses (customer, license_id)",
            """
            CREATE TABLE person_roles (
                customer TEXT NOT NULL REFERENCES customers (name),
                person_id TEXT NOT NULL,
                role_id TEXT NOT NULL,
                PRIMARY KEY (customer, person_id, role_id)
            )
            """,
            """
            CREATE TABLE locations (
                customer TEXT NOT NULL REFERENCES customers (name),
                id TEXT NOT NULL,
                name TEXT,
                time_zone TEXT,
                city TEXT,
                state TEXT,
                country TEXT,
                PRIMARY KEY (customer, id)
            )
            """,
            """
            CREATE TABLE workspaces (
                customer TEXT NOT NULL REFERENCES customers (name),
                id TEXT NOT NULL,
                display_name TEXT,
                location_id TEXT,
                calling_type TEXT,
                PRIMARY KEY (customer, id)
            )
            """,
            """
            CREATE TABLE workspace_licenses (
                customer TEXT NOT NULL REFERENCES customers (name),
                workspace_id TEXT NOT NULL,
                license_id TEXT NOT NULL,
                PRIMARY KEY (customer, workspace_id, license_id)
            )
            """,
            """
            CREATE TABLE sync_history (
                id INTEGER PRIMARY KEY,
                customer TEXT NOT NULL REFERENCES customers (name),
                scope TEXT NOT NULL,
                device TEXT,
                started_at TEXT NOT NULL,
                finished_at TEXT NOT NULL,
                outcome TEXT NOT NULL,
                changed INTEGER NOT NULL,
                rows_written INTEGER NOT NULL,
                summary TEXT,
                error TEXT
            )
            """,
            "CREATE INDEX sync_history_customer ON sync_history (customer, id)",
            """
            CREATE TABLE sync_state (
                customer TEXT NOT NULL REFERENCES customers (name),
                object_type TEXT NOT NULL,
                synced_at TEXT NOT NULL,
                history_id INTEGER NOT NULL,
                PRIMARY KEY (customer, object_type)
            )
            """,
        ),
    ),
    (
        2,
        (
            # A 64-bit digest of the person as last synced (id, fields, license and role
            # ids). A sync skips people whose digest is unchanged. NULL means unknown, so the
            # next sync compares that person field by field and stores the digest.
            "ALTER TABLE people ADD COLUMN fingerprint INTEGER",
        ),
    ),
    (
        3,
        (
            # Link tables without a rowid: the primary key is the table, so each link is
            # written to one B-tree fewer (a first sync of 100,000 people writes about
            # 475,000 links). The index of person links by license is not created again,
            # because no query looks links up by license without the person.
            """
            CREATE TABLE person_licenses_new (
                customer TEXT NOT NULL REFERENCES customers (name),
                person_id TEXT NOT NULL,
                license_id TEXT NOT NULL,
                PRIMARY KEY (customer, person_id, license_id)
            ) WITHOUT ROWID
            """,
            "INSERT INTO person_licenses_new (customer, person_id, license_id) "
            "SELECT customer, person_id, license_id FROM person_licenses",
            "DROP TABLE person_licenses",
            "ALTER TABLE person_licenses_new RENAME TO person_licenses",
            """
            CREATE TABLE person_roles_new (
                customer TEXT NOT NULL REFERENCES customers (name),
                person_id TEXT NOT NULL,
                role_id TEXT NOT NULL,
                PRIMARY KEY (customer, person_id, role_id)
            ) WITHOUT ROWID
            """,
            "INSERT INTO person_roles_new (customer, person_id, role_id) "
            "SELECT customer, person_id, role_id FROM person_roles",
            "DROP TABLE person_roles",
            "ALTER TABLE person_roles_new RENAME TO person_roles",
            """
            CREATE TABLE workspace_licenses_new (
                customer TEXT NOT NULL REFERENCES customers (name),
                workspace_id TEXT NOT NULL,
                license_id TEXT NOT NULL,
                PRIMARY KEY (customer, workspace_id, license_id)
            ) WITHOUT ROWID
            """,
            "INSERT INTO workspace_licenses_new (customer, workspace_id, license_id) "
            "SELECT customer, workspace_id, license_id FROM workspace_licenses",
            "DROP TABLE workspace_licenses",
            "ALTER TABLE workspace_licenses_new RENAME TO workspace_licenses",
            # People are looked up by lower(email) (see InventoryStore.find_person), which
            # an index of the plain email cannot serve. No query selects people by location.
            "DROP INDEX people_email",
            "DROP INDEX people_location",
            "CREATE INDEX people_email_lower ON people (customer, lower(email))",
        ),
    ),
    (
        4,
        (
            # Links by integer keys. People and workspaces get a key column, license and
            # role ids get a key in link_targets, and each link is a pair of keys instead
            # of the customer name and two long Webex ids (about 10 instead of 250 bytes;
            # a first sync of 100,000 people writes about 475,000 links). The views
            # person_licenses, person_roles and workspace_licenses show the links with
            # their ids as before, for reading.
            """
            CREATE TABLE link_targets (
                target_key INTEGER PRIMARY KEY,
                customer TEXT NOT NULL REFERENCES customers (name),
                id TEXT NOT NULL,
                UNIQUE (customer, id)
            )
            """,
            "INSERT INTO link_targets (customer, id) "
            "SELECT customer, license_id FROM person_licenses "
            "UNION SELECT customer, role_id FROM person_roles "
            "UNION SELECT customer, license_id FROM workspace_licenses ORDER BY 1, 2",
            """
            CREATE TABLE people_keyed (
                person_key INTEGER PRIMARY KEY,
                customer TEXT NOT NULL REFERENCES customers (name),
                id TEXT NOT NULL,
                email TEXT,
                display_name TEXT,
                location_id TEXT,
                fingerprint INTEGER,
                UNIQUE (customer, id)
            )
            """,
            "INSERT INTO people_keyed (customer, id, email, display_name, location_id, "
            "fingerprint) SELECT customer, id, email, display_name, location_id, fingerprint "
            "FROM people ORDER BY customer, id",
            """
            CREATE TABLE workspaces_keyed (
                workspace_key INTEGER PRIMARY KEY,
                customer TEXT NOT NULL REFERENCES customers (name),
                id TEXT NOT NULL,
                display_name TEXT,
                location_id TEXT,
                calling_type TEXT,
                UNIQUE (customer, id)
            )
            """,
            "INSERT INTO workspaces_keyed (customer, id, display_name, location_id, "
            "calling_type) SELECT customer, id, display_name, location_id, calling_type "
            "FROM workspaces ORDER BY customer, id",
            """
            CREATE TABLE person_license_keys (
                person_key INTEGER NOT NULL,
                target_key INTEGER NOT NULL,
                PRIMARY KEY (person_key, target_key)
            ) WITHOUT ROWID
            """,
            "INSERT INTO person_license_keys (person_key, target_key) "
            "SELECT o.person_key, t.target_key FROM person_licenses x "
            "JOIN people_keyed o ON o.customer = x.customer AND o.id = x.person_id "
            "JOIN link_targets t ON t.customer = x.customer AND t.id = x.license_id "
            "ORDER BY 1, 2",
            """
            CREATE TABLE person_role_keys (
                person_key INTEGER NOT NULL,
                target_key INTEGER NOT NULL,
                PRIMARY KEY (person_key, target_key)
            ) WITHOUT ROWID
            """,
            "INSERT INTO person_role_keys (person_key, target_key) "
            "SELECT o.person_key, t.target_key FROM person_roles x "
            "JOIN people_keyed o ON o.customer = x.customer AND o.id = x.person_id "
            "JOIN link_targets t ON t.customer = x.customer AND t.id = x.role_id "
            "ORDER BY 1, 2",
            """
            CREATE TABLE workspace_license_keys (
                workspace_key INTEGER NOT NULL,
                target_key INTEGER NOT NULL,
                PRIMARY KEY (workspace_key, target_key)
            ) WITHOUT ROWID
            """,
            "INSERT INTO workspace_license_keys (workspace_key, target_key) "
            "SELECT o.workspace_key, t.target_key FROM workspace_licenses x "
            "JOIN workspaces_keyed o ON o.customer = x.customer AND o.id = x.workspace_id "
            "JOIN link_targets t ON t.customer = x.customer AND t.id = x.license_id "
            "ORDER BY 1, 2",
            "DROP TABLE person_licenses",
            "DROP TABLE person_roles",
            "DROP TABLE workspace_licenses",
            "DROP TABLE people",
            "DROP TABLE workspaces",
            "ALTER TABLE people_keyed RENAME TO people",
            "ALTER TABLE workspaces_keyed RENAME TO workspaces",
            "CREATE INDEX people_email_lower ON people (customer, lower(email))",
            """
            CREATE VIEW person_licenses AS
            SELECT o.customer AS customer, o.id AS person_id, t.id AS license_id
            FROM person_license_keys k
            JOIN people o ON o.person_key = k.person_key
            JOIN link_targets t ON t.target_key = k.target_key
            """,
            """
            CREATE VIEW person_roles AS
            SELECT o.customer AS customer, o.id AS person_id, t.id AS role_id
            FROM person_role_keys k
            JOIN people o ON o.person_key = k.person_key
            JOIN link_targets t ON t.target_key = k.target_key
            """,
            """
            CREATE VIEW workspace_licenses AS
            SELECT o.customer AS customer, o.id AS workspace_id, t.id AS license_id
            FROM workspace_license_keys k
            JOIN workspaces o ON o.workspace_key = k.workspace_key
            JOIN link_targets t ON t.target_key = k.target_key
            """,
            # Scripts that wrote the link tables before schema 4 keep working: a row written
            # to a view is stored as its key pair. The modules write the key tables directly.
            *_link_view_triggers(
                "person_licenses", "people", "person", "person_license_keys", "license_id",
                "person not found in people, insert the person first",
            ),
            *_link_view_triggers(
                "person_roles", "people", "person", "person_role_keys", "role_id",
                "person not found in people, insert the person first",
            ),
            *_link_view_triggers(
                "workspace_licenses", "workspaces", "workspace", "workspace_license_keys",
                "license_id", "workspace not found, insert the workspace first",
            ),
            # A person or workspace deleted by hand takes its key pairs along, so that a
            # later row that gets the same key starts without links. The modules delete the
            # pairs first, and the trigger then finds none.
            """
            CREATE TRIGGER people_delete_links AFTER DELETE ON people
            BEGIN
                DELETE FROM person_license_keys WHERE person_key = OLD.person_key;
                DELETE FROM person_role_keys WHERE person_key = OLD.person_key;
            END
            """,
            """
            CREATE TRIGGER workspaces_delete_links AFTER DELETE ON workspaces
            BEGIN
                DELETE FROM workspace_license_keys WHERE workspace_key = OLD.workspace_key;
            END
            """,
        ),
    ),
    (
        5,
        (
            # While the licenses were synced after the people, webex_user_license moves a
            # counter per applied change. This table keeps, per person and license, the
            # last change counted since that licenses sync (its history id), so that one
            # change recorded by two tasks at once counts once.
            """
            CREATE TABLE counted_license_changes (
                customer TEXT NOT NULL REFERENCES customers (name),
                person_id TEXT NOT NULL,
                license_id TEXT NOT NULL,
                held INTEGER NOT NULL,
                licenses_sync INTEGER,
                PRIMARY KEY (customer, person_id, license_id)
            ) WITHOUT ROWID
            """,
        ),
    ),
    (
        6,
        (
            # A digest of each page of people that a sync listed, with what the sync read
            # from it: the people's ids and fingerprints. A later sync that gets
            # the same page body again, while every one of those fingerprints is still
            # stored, takes the page as read without decoding it (see SyncSession).
            """
            CREATE TABLE people_pages (
                customer TEXT NOT NULL REFERENCES customers (name),
                digest BLOB NOT NULL,
                format INTEGER NOT NULL,
                listed INTEGER NOT NULL,
                with_licenses INTEGER NOT NULL,
                located INTEGER NOT NULL,
                org_id TEXT,
                ids BLOB NOT NULL,
                fingerprints BLOB NOT NULL,
                UNIQUE (customer, digest)
            )
            """,
        ),
    ),
]

SCHEMA_VERSION = MIGRATIONS[-1][0]

T = TypeVar("T")


class InventoryError(Exception):
    """The inventory database cannot be used; the message names the file and the fix."""


class InventoryLockedError(InventoryError):
    """Other writers held the inventory longer than the lock timeout."""


class SQLiteDialect:
    """Connection and engine details of the SQLite backend."""

    name = "sqlite"

    def __init__(self, path: str, lock_timeout: float = 60.0, busy_timeout: float = 5.0):
        self.path = path
        self.lock_timeout = lock_timeout
        self.busy_timeout = busy_timeout

    # -- file checks, done before SQLite touches the file ------------------------------

    def check_file(self) -> Optional[int]:
        """Check that the file is an SQLite database this code can use, without opening it.

        Returns the schema version from the file header, or None when the file is missing
        or empty (SQLite then creates a new database). Raises InventoryError otherwise.
        """
        try:
            with open(self.path, "rb") as handle:
                header = handle.read(100)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise InventoryError(
                f"cannot read the inventory database {self.path}: {exc.strerror}; "
                "check the path and its permissions, or set inventory_db to another file"
            ) from exc
        if not header:
            return None
        if len(header) < 100 or not header.startswith(SQLITE_HEADER):
            raise InventoryError(
                f"inventory database {self.path} is not an SQLite database; move the file "
                "away or set inventory_db (or WEBEX_INVENTORY_DB) to another path"
            )
        # Offset 60 of the header contains PRAGMA user_version (big-endian 32-bit).
        version = struct.unpack(">i", header[60:64])[0]
        self.check_version(version)
        return version

    def check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise InventoryError(
                f"inventory database {self.path} has schema version {version}, newer than "
                f"this ucops.webex collection supports ({SCHEMA_VERSION}); upgrade the "
                "collection, or set inventory_db to another file"
            )

    # -- connections --------------------------------------------------------------------

    def connect(self) -> sqlite3.Connection:
        """Open a connection in autocommit mode; transactions are started explicitly.

        Raises InventoryError when the SQLite library is older than MIN_SQLITE_VERSION.

        Lock errors are raised as they are, for ``retry_locked``: the pragmas read the file
        header, which fails while another process switches a new file to WAL mode.
        """
        if sqlite3.sqlite_version_info < MIN_SQLITE_VERSION:
            raise InventoryError(
                f"the SQLite library {sqlite3.sqlite_version} of this Python is too old for "
                "the inventory; use a Python built with SQLite 3.24.0 or newer"
            )
        connection = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        try:
            connection.row_factory = sqlite3.Row
            # Names compare without case in every script, which SQLite's lower() does not
            # do beyond ASCII letters.
            connection.create_function("ucops_fold", 1, fold_name, deterministic=True)
            connection.execute("PRAGMA foreign_keys = ON")
            connection.execute("PRAGMA synchronous = FULL")
            # Staging tables of a sync go to a temporary file, not to memory.
            connection.execute("PRAGMA temp_store = FILE")
        except sqlite3.DatabaseError as exc:
            connection.close()
            if self.is_lock_error(exc):
                raise
            raise self.error_for(exc) from exc
        return connection

    def enable_wal(self, connection: sqlite3.Connection) -> None:
        """Switch the database to WAL mode (persistent, so needed once per file).

        While another connection holds a lock, SQLite keeps the old mode and returns it
        instead of raising, so the switch is retried until ``lock_timeout``.
        """
        deadline = time.monotonic() + self.lock_timeout
        while True:
            mode = self.retry_locked(
                lambda: connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            )
            if str(mode).lower() == "wal":
                return
            if time.monotonic() >= deadline:
                raise InventoryLockedError(
                    f"inventory database {self.path} could not be switched to WAL mode "
                    f"within {self.lock_timeout:g} seconds (journal mode: {mode}); retry later"
                )
            time.sleep(0.1)

    def schema_version(self, connection: sqlite3.Connection) -> int:
        return int(connection.execute("PRAGMA user_version").fetchone()[0])

    def set_schema_version(self, connection: sqlite3.Connection, version: int) -> None:
        connection.execute(f"PRAGMA user_version = {int(version)}")

    # -- transactions -------------------------------------------------------------------

    begin_write_sql = "BEGIN IMMEDIATE"
    begin_stage_sql = "BEGIN"

    def is_lock_error(self, exc: BaseException) -> bool:
        if not isinstance(exc, sqlite3.OperationalError):
            return False
        text = str(exc).lower()
        return "database is locked" in text or "database is busy" in text

    def retry_locked(self, action: Callable[[], T]) -> T:
        """Run ``action`` again while it fails with a lock error, up to ``lock_timeout``.

        Each attempt already waits ``busy_timeout`` inside SQLite, so the bound is on the
        total time. Raises InventoryLockedError when the time is up.
        """
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.05
        while True:
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if not self.is_lock_error(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise InventoryLockedError(
                        f"inventory database {self.path} stayed locked by other writers for "
                        f"more than {self.lock_timeout:g} seconds; retry later"
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def error_for(self, exc: sqlite3.DatabaseError) -> InventoryError:
        """Wrap an SQLite error that makes the file unusable."""
        if "database or disk is full" in str(exc):
            return InventoryError(
                f"inventory database {self.path} cannot be used: {exc}. The file was left "
                "as it was: free disk space on its file system, then run the task again"
            )
        if "readonly" in str(exc) or "unable to open database file" in str(exc):
            # "unable to open" with an intact file: most often a directory that cannot be
            # written, where SQLite must create the WAL and shared-memory files.
            blocked = self.unwritable_paths()
            named = f" Not writable: {', '.join(blocked)}." if blocked else ""
            return InventoryError(
                f"inventory database {self.path} cannot be used: {exc}. SQLite writes to the "
                "file and to FILE-wal and FILE-shm next to it, which it creates in the "
                f"directory.{named} Give write access to them (a FILE-shm left read-only by "
                "a reader of a read-only file may also be removed while no task runs), or "
                "copy the file to a writable place and set inventory_db to the copy"
            )
        return InventoryError(
            f"inventory database {self.path} cannot be used: {exc}. Check it with sqlite3 "
            f"{self.path} 'PRAGMA integrity_check', restore it from a backup (see the "
            "collection's docs/inventory.md), or set inventory_db to another file"
        )

    def unwritable_paths(self) -> List[str]:
        """Return the inventory file, its WAL files and its directory where they cannot be
        written by this process."""
        directory = os.path.dirname(self.path) or "."
        paths = [self.path, self.path + "-wal", self.path + "-shm"]
        blocked = [p for p in paths if os.path.exists(p) and not os.access(p, os.W_OK)]
        if not os.access(directory, os.W_OK):
            blocked.append(directory)
        return blocked

    # -- SQL fragments ------------------------------------------------------------------

    @staticmethod
    def data_version(connection: sqlite3.Connection) -> int:
        """Return a number that changes when another connection commits to the database."""
        return int(connection.execute("PRAGMA main.data_version").fetchone()[0])

    @staticmethod
    def distinct(left: str, right: str) -> str:
        """Null-safe inequality (PostgreSQL: IS DISTINCT FROM)."""
        return f"{left} IS NOT {right}"


def prepare_directory(path: str) -> None:
    """Create the parent directory of a new database, private to the user."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o700, exist_ok=True)


def create_private_file(path: str) -> None:
    """Create an empty database file readable only by the user (SQLite fills it)."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(descriptor)


def create_inventory_file(dialect: SQLiteDialect) -> None:
    """Create ``dialect.path`` as a complete, empty inventory, unless it exists by then.

    The schema is written to a private file in the same directory, which is then linked to
    the path. Another process therefore never opens the new file while it is empty, which would
    look like a file cut short (see ``InventoryStore.was_empty_file``). A file system without hard
    links gets an empty file, which SQLite fills on first use.
    """
    directory, base = os.path.split(os.path.abspath(dialect.path))
    descriptor, temporary = tempfile.mkstemp(prefix=f".{base}.", suffix=".new", dir=directory)
    os.close(descriptor)
    try:
        builder = SQLiteDialect(temporary, dialect.lock_timeout, dialect.busy_timeout)
        connection = builder.connect()
        try:
            builder.enable_wal(connection)
            migrate(builder, connection)
        finally:
            connection.close()
        try:
            os.link(temporary, dialect.path)
        except FileExistsError:
            pass  # Another process created the inventory first, so that file is used.
        except OSError:
            create_private_file(dialect.path)
    finally:
        for leftover in (temporary, temporary + "-wal", temporary + "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)


def migrate(
    dialect: SQLiteDialect,
    connection: sqlite3.Connection,
    before_upgrade: Optional[Callable[[int], None]] = None,
) -> int:
    """Apply every pending migration in one write transaction and return the version.

    Another process therefore reads the file either before or after the whole upgrade,
    never between two versions. ``before_upgrade`` is called with the file's version before the
    migrations of a file that has a schema already, inside the transaction, so no other
    process can change the file meanwhile.
    """
    dialect.retry_locked(lambda: _apply_pending_migrations(dialect, connection, before_upgrade))
    return dialect.retry_locked(lambda: dialect.schema_version(connection))


def _apply_pending_migrations(
    dialect: SQLiteDialect,
    connection: sqlite3.Connection,
    before_upgrade: Optional[Callable[[int], None]] = None,
) -> None:
    # A file at the current version needs no write lock, so a store opens while another
    # process writes. Otherwise the version is read again inside the write transaction.
    current = dialect.schema_version(connection)
    dialect.check_version(current)
    if not any(version > current for version, _statements in MIGRATIONS):
        return
    connection.execute(dialect.begin_write_sql)
    try:
        current = dialect.schema_version(connection)
        dialect.check_version(current)
        pending = [item for item in MIGRATIONS if item[0] > current]
        if pending and before_upgrade is not None and current > 0:
            before_upgrade(current)
        for version, statements in pending:
            for statement in statements:
                connection.execute(statement)
            dialect.set_schema_version(connection, version)
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
