# Copyright: ucops.webex maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""License inventory store of ucops.webex (SQLite through the standard library).

One ``InventoryStore`` per process opens the database file, applies pending migrations and
offers the customer, sync, read and incremental-update API. Every write is one
``BEGIN IMMEDIATE`` transaction, retried on "database is locked" within ``lock_timeout``, so
several Ansible forks can write at once. Access tokens and other secrets have no column.

Data written by a sync ("data tables"): licenses, roles, people, person_licenses,
person_roles, locations, workspaces, workspace_licenses. The three link tables are views
over pairs of integer keys (person_license_keys, person_role_keys, workspace_license_keys,
with link_targets for the license and role ids); writes go to the key tables.
Bookkeeping tables: customers, sync_history (one row per non-check sync run, also when
nothing changed) and sync_state (time of the last successful sync per customer and object
type).
"""

from __future__ import annotations

import contextlib
import datetime
import difflib
import glob
import json
import os
import re
import sqlite3
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, TypeVar

from ansible_collections.ucops.webex.plugins.module_utils import licensing
from ansible_collections.ucops.webex.plugins.module_utils.inventory_schema import (
    DATA_TABLES,
    LINK_KEY_TABLES,
    SCHEMA_VERSION,
    InventoryError,
    InventoryLockedError,
    SQLiteDialect,
    create_inventory_file,
    create_private_file,
    migrate,
    prepare_directory,
)
from ansible_collections.ucops.webex.plugins.module_utils.inventory_sync import (
    FULL_SCOPE,
    LIGHT_SCOPE,
    OBJECT_TYPES,
    SyncSession,
    insert_history,
    license_dict,
    org_owner,
    query_users_outside_defaults,
)

__all__ = [
    "DATA_TABLES",
    "FULL_SCOPE",
    "INVENTORY_ENV",
    "LIGHT_SCOPE",
    "OBJECT_TYPES",
    "SCHEMA_VERSION",
    "InventoryError",
    "InventoryLockedError",
    "InventoryStore",
    "SyncSession",
    "default_inventory_path",
    "inventory_argument_spec",
    "resolve_inventory_path",
]

INVENTORY_ENV = "WEBEX_INVENTORY_DB"
CUSTOMER_FIELDS = (
    "name",
    "org_id",
    "hierarchy",
    "default_subscription_id",
    "default_site_url",
    "device",
)
PERSON_FIELDS = ("email", "display_name", "location_id")

T = TypeVar("T")


def default_inventory_path(environ: Optional[Mapping[str, str]] = None) -> str:
    """Return ``$XDG_DATA_HOME/ucops.webex/inventory.db``.

    Falls back to ``~/.local/share/ucops.webex/inventory.db`` when XDG_DATA_HOME is unset or
    not absolute (the XDG base directory specification ignores relative values).
    """
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_DATA_HOME") or ""
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "ucops.webex", "inventory.db")


def resolve_inventory_path(
    value: Optional[str] = None, environ: Optional[Mapping[str, str]] = None
) -> str:
    """Return the database path: ``value``, else WEBEX_INVENTORY_DB, else the default."""
    environ = os.environ if environ is None else environ
    path = value or environ.get(INVENTORY_ENV) or default_inventory_path(environ)
    check_not_url(path)
    return os.path.abspath(os.path.expanduser(path))


# A scheme as RFC 3986 spells it, then "://": a database URL, not a file path.
_URL_START = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def check_not_url(path: str) -> None:
    """Raise InventoryError when ``path`` is a URL such as postgresql://host/db.

    Without this check the URL would become a relative path, and opening the store would
    create directories named after the URL's parts in the working directory. The message
    shows the scheme only, since the rest may hold a password.
    """
    match = _URL_START.match(path)
    if match:
        raise InventoryError(
            f"inventory_db (or WEBEX_INVENTORY_DB) is a {match.group(1)}:// URL, but the "
            "inventory is an SQLite file on the host that runs the modules; database servers "
            "such as PostgreSQL are not supported by this collection. Set inventory_db to a "
            "file path, for example ~/.local/share/ucops.webex/inventory.db"
        )


def database_error_message(path: Optional[str], error: sqlite3.Error) -> str:
    """Describe an SQLite error met while using the inventory ``path``, with what to check."""
    path = resolve_inventory_path(path)
    if is_disk_full_error(error):
        return (
            f"the inventory database {path} failed: {error}. The file was left as it was: "
            "free disk space on its file system, then run the task again"
        )
    if "readonly" in str(error):
        return str(SQLiteDialect(path).error_for(error))
    return (
        f"the inventory database {path} failed: {error}. Check the file (for example with "
        f"sqlite3 {path} 'PRAGMA integrity_check'), its directory and the free disk space, "
        "then run the task again"
    )


def _not_writable(dialect: SQLiteDialect) -> str:
    """Name the inventory's files and directory that this process cannot write, if any."""
    blocked = dialect.unwritable_paths()
    return f" Not writable: {', '.join(blocked)}." if blocked else ""


def is_disk_full_error(error: BaseException) -> bool:
    """Return True when an SQLite error reports a full disk (or a full quota of the file)."""
    return isinstance(error, sqlite3.Error) and "database or disk is full" in str(error)


def inventory_argument_spec() -> Dict[str, Any]:
    """Return the module option ``inventory_db`` (documented in the inventory doc fragment)."""
    from ansible.module_utils.basic import env_fallback

    return {"inventory_db": {"type": "path", "fallback": (env_fallback, [INVENTORY_ENV])}}


def utc_now() -> str:
    """Return the current UTC time as ISO 8601 with seconds, for example 2026-05-04T10:00:00Z."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


class InventoryStore:
    """Open license inventory; one per process (connections are not shared across forks).

    Raises InventoryError when the file is not an SQLite database or has a newer schema
    version; the file is then left unchanged and no WAL file is created for it.
    With ``create=False`` a missing file raises InventoryError instead of being created.
    """

    def __init__(
        self,
        path: Optional[str] = None,
        *,
        create: bool = True,
        lock_timeout: float = 60.0,
        busy_timeout: float = 5.0,
        clock: Callable[[], str] = utc_now,
    ):
        self.path = resolve_inventory_path(path)
        self.dialect = SQLiteDialect(self.path, lock_timeout, busy_timeout)
        self.now = clock

        file_version = self.dialect.check_file()
        # An empty file (touched by hand, or cut short by a full disk) becomes a new inventory.
        # upgrade_message reports it, because the user may expect customers in the file.
        self.was_empty_file = os.path.isfile(self.path) and os.path.getsize(self.path) == 0
        if not os.path.exists(self.path):
            if not create:
                raise InventoryError(
                    f"inventory database {self.path} does not exist; add customers with "
                    "ucops.webex.webex_customer (or playbooks/upgrade_21_1.yml) and sync "
                    "them with ucops.webex.webex_license_sync first, or set inventory_db "
                    "(webex_inventory_db in the collection's roles and playbooks) to the "
                    "inventory file"
                )
            # A link to a missing file names the file to create, private like any other.
            target = os.path.realpath(self.path)
            try:
                prepare_directory(target)
                create_inventory_file(SQLiteDialect(target, lock_timeout, busy_timeout))
            except OSError as exc:
                raise InventoryError(
                    f"cannot create the inventory database {self.path}: {exc.strerror or exc}. "
                    f"Allow writing to {os.path.dirname(target)}, or set inventory_db (or "
                    "WEBEX_INVENTORY_DB) to a path you can write"
                ) from exc

        try:
            self._conn = self.dialect.retry_locked(self.dialect.connect)
        except InventoryError as exc:
            # A file that cannot be written fails here already, before the upgrade.
            cause = exc.__cause__
            if isinstance(cause, sqlite3.DatabaseError) and self._needs_upgrade(file_version):
                raise self._readonly_upgrade_error(file_version, cause) from cause
            raise
        # Set when this store upgraded an older file: the version it had and its copy.
        self.upgraded_from: Optional[int] = None
        self.upgrade_backup: Optional[str] = None
        try:
            if file_version == 0:
                self._check_not_foreign()
            self.dialect.enable_wal(self._conn)
            try:
                self.schema_version = migrate(self.dialect, self._conn, self._save_copy)
            except BaseException:
                # The upgrade was rolled back, so the copy would only repeat the file.
                self._discard_copy()
                raise
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            if isinstance(exc, sqlite3.OperationalError) and self.dialect.is_lock_error(exc):
                raise
            if self._needs_upgrade(file_version) and "readonly" in str(exc):
                raise self._readonly_upgrade_error(file_version, exc) from exc
            raise self.dialect.error_for(exc) from exc
        except BaseException:
            self._conn.close()
            raise

    @staticmethod
    def _needs_upgrade(file_version: Optional[int]) -> bool:
        return bool(file_version) and file_version < SCHEMA_VERSION

    def _readonly_upgrade_error(
        self, file_version: Optional[int], exc: sqlite3.DatabaseError
    ) -> InventoryError:
        """Describe an older file that must be upgraded but cannot be written."""
        return InventoryError(
            f"inventory database {self.path} has schema version {file_version} and "
            f"must be upgraded once to version {SCHEMA_VERSION}, which writes to the "
            f"file, but it cannot be written ({exc}).{_not_writable(self.dialect)} Run a "
            "ucops.webex module once with write access to the file, FILE-wal and FILE-shm "
            "next to it and its directory (a FILE-shm left read-only by an earlier "
            "attempt may also be removed while no task runs), or copy the file to a "
            "writable place and set inventory_db to the copy"
        )

    def _check_not_foreign(self) -> None:
        """Raise InventoryError when a file without a schema version has tables already.

        Such a file belongs to another application, so the inventory tables and WAL mode
        must not be added to it.
        """
        names = self.dialect.retry_locked(self._foreign_tables)
        if names:
            listed = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            raise InventoryError(
                f"{self.path} is an SQLite database of another application (tables: {listed}), "
                "not a license inventory, so set inventory_db (or WEBEX_INVENTORY_DB) to the "
                "inventory file, or to a new path for a new inventory"
            )

    def _foreign_tables(self) -> List[str]:
        """Return the tables of a file whose schema version is 0, else an empty list.

        The file header can show version 0 while another process has already migrated
        the file (WAL mode writes the new version to the WAL first), so the version and the
        tables are read in one read transaction.
        """
        self._conn.execute("BEGIN")
        try:
            if self.dialect.schema_version(self._conn) != 0:
                return []
            return [
                row[0]
                for row in self._conn.execute(
                    "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                    "AND name NOT LIKE 'sqlite%' ORDER BY name"
                )
            ]
        finally:
            self._conn.execute("COMMIT")

    def _save_copy(self, version: int) -> None:
        """Copy the file before the upgrade from ``version``. Called under the write lock.

        The copy reads through a second connection, which reads the last committed state
        while this connection holds the lock.
        """
        reader = self.dialect.connect()
        try:
            self.upgrade_backup = save_copy_before_upgrade(reader, self.path, version)
        finally:
            reader.close()
        self.upgraded_from = version

    def _discard_copy(self) -> None:
        if self.upgrade_backup is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.upgrade_backup)
        self.upgrade_backup = None
        self.upgraded_from = None

    def upgrade_message(self) -> Optional[str]:
        """Describe the schema upgrade that opening the file made, or return None."""
        if self.was_empty_file:
            return (
                f"inventory database {self.path} was an empty file and was set up as a new, "
                "empty inventory. If you expected customers in it, check inventory_db or "
                "WEBEX_INVENTORY_DB and restore the file from a backup"
            )
        if self.upgraded_from is None:
            return None
        return (
            f"inventory database {self.path} was upgraded once from schema version "
            f"{self.upgraded_from} to {SCHEMA_VERSION}, which older versions of the collection "
            f"cannot open. A copy of the file as it was is {self.upgrade_backup}: keep it until "
            "the upgraded inventory works for you"
        )

    def check_writable(self) -> None:
        """Raise sqlite3.Error when the file cannot be written, and change nothing.

        A read-only file (or one on a read-only file system) opens and reads as usual, so
        only a write shows it: the schema version is set to its own value in a transaction
        that is rolled back. InventoryLockedError means another writer held the lock too long.
        """

        def probe() -> None:
            version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
            self._conn.execute(self.dialect.begin_write_sql)
            try:
                self._conn.execute(f"PRAGMA user_version = {version}")
            finally:
                self._conn.execute("ROLLBACK")

        self.dialect.retry_locked(probe)

    @classmethod
    def from_module(cls, module: Any, create: bool = True) -> InventoryStore:
        """Open the store named by the module's ``inventory_db`` option."""
        return cls(module.params.get("inventory_db"), create=create)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> InventoryStore:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        self.close()

    # -- transactions -------------------------------------------------------------------

    def _write(self, action: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``action`` in one write transaction, retried while the database is locked."""

        def attempt() -> T:
            self._conn.execute(self.dialect.begin_write_sql)
            try:
                result = action(self._conn)
                self._conn.execute("COMMIT")
                return result
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

        return self.dialect.retry_locked(attempt)

    def _rows(self, sql: str, params: Mapping[str, Any]) -> List[Dict[str, Any]]:
        return [dict(row) for row in self._conn.execute(sql, params)]

    # -- customers ----------------------------------------------------------------------

    def get_customer(self, name: str) -> Optional[Dict[str, Any]]:
        """Return a customer with ``created_at``, ``updated_at`` and ``synced_at``.

        ``synced_at`` maps each object type to the end of its last successful sync.
        """
        row = self._conn.execute(
            "SELECT * FROM customers WHERE name = :name", {"name": name}
        ).fetchone()
        if row is None:
            return None
        return self._customer_dict(dict(row))

    def customer_of_org(self, org_id: str) -> Optional[str]:
        """Return the name of the customer whose org id is ``org_id``, or None."""
        return org_owner(self._conn, org_id)

    def list_customers(self, hierarchy_prefix: Optional[str] = None) -> List[Dict[str, Any]]:
        """Return the customers at or below ``hierarchy_prefix`` (all when None), by name."""
        condition, params = _hierarchy_condition("c", hierarchy_prefix)
        rows = self._rows(f"SELECT * FROM customers c WHERE {condition} ORDER BY c.name", params)
        # One query for the sync states of every customer listed, not one per customer.
        synced_at: Dict[str, Dict[str, Any]] = {row["name"]: {} for row in rows}
        states = self._conn.execute(
            "SELECT s.customer, s.object_type, s.synced_at FROM sync_state s "
            f"JOIN customers c ON c.name = s.customer WHERE {condition}",
            params,
        )
        for state in states:
            if state["customer"] in synced_at:
                synced_at[state["customer"]][state["object_type"]] = state["synced_at"]
        for row in rows:
            row["synced_at"] = synced_at[row["name"]]
        return rows

    def _customer_dict(self, row: Dict[str, Any]) -> Dict[str, Any]:
        states = self._conn.execute(
            "SELECT object_type, synced_at FROM sync_state WHERE customer = :name",
            {"name": row["name"]},
        )
        row["synced_at"] = {state["object_type"]: state["synced_at"] for state in states}
        return row

    def upsert_customer(
        self,
        name: str,
        org_id: Optional[str] = None,
        hierarchy: Optional[str] = None,
        default_subscription_id: Optional[str] = None,
        default_site_url: Optional[str] = None,
        device: Optional[str] = None,
        dry_run: bool = False,
    ) -> Tuple[bool, Optional[Dict[str, Any]], Dict[str, Any]]:
        """Create or update a customer; return ``(changed, before, after)``.

        An argument left at None keeps the stored value (NULL for a new customer); an empty
        string clears it. The hierarchy and the default site URL are stored normalized.
        ``before`` is None for a new customer; ``before`` and ``after`` hold the fields of
        CUSTOMER_FIELDS. When the defaults change, the managed flags of the customer's
        licenses are recomputed in the same transaction. With ``dry_run`` nothing is
        written. Raises InventoryError when ``org_id`` belongs to another customer.
        """
        if not name or not str(name).strip():
            raise InventoryError("customer name must not be empty")
        requested = {
            "org_id": _clean(org_id),
            "hierarchy": None if hierarchy is None else licensing.normalize_hierarchy(hierarchy),
            "default_subscription_id": (
                None
                if default_subscription_id is None
                else licensing.normalize_subscription_id(default_subscription_id) or ""
            ),
            "default_site_url": (
                None
                if default_site_url is None
                else licensing.normalize_site_url(default_site_url) or ""
            ),
            "device": _clean(device),
        }

        def action(connection: sqlite3.Connection) -> Tuple[bool, Any, Dict[str, Any]]:
            row = connection.execute(
                "SELECT * FROM customers WHERE name = :name", {"name": name}
            ).fetchone()
            before = _customer_fields(row) if row is not None else None
            after = dict(before) if before else {field: None for field in CUSTOMER_FIELDS}
            after["name"] = name
            if before is None:
                after["hierarchy"] = ""
            for field, value in requested.items():
                if value is not None:
                    after[field] = value if value != "" or field == "hierarchy" else None
            changed = before != after
            if changed:
                self._check_org_id(connection, name, after["org_id"])
            if not changed or dry_run:
                return changed, before, after

            now = self.now()
            params = dict(after, now=now)
            if before is None:
                connection.execute(
                    "INSERT INTO customers (name, org_id, hierarchy, default_subscription_id, "
                    "default_site_url, device, created_at, updated_at) VALUES (:name, :org_id, "
                    ":hierarchy, :default_subscription_id, :default_site_url, :device, :now, :now)",
                    params,
                )
            else:
                connection.execute(
                    "UPDATE customers SET org_id = :org_id, hierarchy = :hierarchy, "
                    "default_subscription_id = :default_subscription_id, "
                    "default_site_url = :default_site_url, device = :device, "
                    "updated_at = :now WHERE name = :name",
                    params,
                )
            _recompute_managed(connection, after)
            return changed, before, after

        if dry_run:
            return action(self._conn)
        return self._write(action)

    @staticmethod
    def _check_org_id(connection: sqlite3.Connection, name: str, org_id: Optional[str]) -> None:
        if org_id is None:
            return
        owner = org_owner(connection, org_id, other_than=name)
        if owner is not None:
            raise InventoryError(
                f"org_id '{org_id}' already belongs to customer '{owner}'; one Webex "
                "org is one customer, so remove that customer (state=absent), give it another "
                "org_id, or rename it with new_name"
            )

    def rename_customer(self, name: str, new_name: str, dry_run: bool = False) -> bool:
        """Rename a customer with its synced data and history; return True if renamed.

        A customer already named ``new_name``, with none named ``name``, counts as renamed
        before (False). Raises InventoryError when both or neither exist.
        """
        if new_name == name:
            return False
        old = self.get_customer(name)
        new = self.get_customer(new_name)
        if old is None and new is not None:
            return False
        if old is None:
            raise InventoryError(
                f"customer '{name}' cannot be renamed to '{new_name}': neither is in the "
                f"inventory {self.path}. Check the name, or add the customer with new_name "
                "as its name"
            )
        if new is not None:
            raise InventoryError(
                f"customer '{name}' cannot be renamed to '{new_name}', because a customer of "
                f"that name is in the inventory {self.path} already. Remove one of them with "
                "state=absent first"
            )
        if dry_run:
            return True

        def action(connection: sqlite3.Connection) -> None:
            params = {"name": name, "new_name": new_name, "now": self.now()}
            # Read again under the write lock: a sync may have stored an org id meanwhile.
            row = connection.execute(
                "SELECT org_id FROM customers WHERE name = :name", params
            ).fetchone()
            if row is None:
                raise InventoryError(
                    f"customer '{name}' was removed while it was being renamed; run the task "
                    "again"
                )
            org_id = row[0]

            columns = [row[1] for row in connection.execute("PRAGMA table_info(customers)")]
            copied = ", ".join(
                {"name": ":new_name", "updated_at": ":now"}.get(column, column)
                for column in columns
            )
            # org_id is unique, so the old row lets go of it before the copy takes it.
            connection.execute(
                "UPDATE customers SET org_id = NULL WHERE name = :name", params
            )
            connection.execute(
                f"INSERT INTO customers ({', '.join(columns)}) SELECT {copied} FROM customers "
                "WHERE name = :name",
                params,
            )
            connection.execute(
                "UPDATE customers SET org_id = :org_id WHERE name = :new_name",
                dict(params, org_id=org_id),
            )

            # Every other table with a customer column follows the new name.
            tables = [
                row[0]
                for row in connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'customers'"
                )
            ]
            for table in tables:
                names = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
                if "customer" in names:
                    connection.execute(
                        f"UPDATE {table} SET customer = :new_name WHERE customer = :name", params
                    )

            connection.execute("DELETE FROM customers WHERE name = :name", params)

        self._write(action)
        return True

    def delete_customer(
        self, name: str, dry_run: bool = False
    ) -> Tuple[bool, Optional[Dict[str, Any]]]:
        """Delete a customer with its synced data and sync history; return (changed, before)."""
        before = self.get_customer(name)
        if before is None or dry_run:
            return before is not None, before

        def action(connection: sqlite3.Connection) -> None:
            params = {"name": name}
            views = set()
            for view, keys, owner, owner_key in LINK_KEY_TABLES:
                views.add(view)
                connection.execute(
                    f"DELETE FROM {keys} WHERE {owner_key} IN "
                    f"(SELECT {owner_key} FROM {owner} WHERE customer = :name)",
                    params,
                )
            tables = [table for table in DATA_TABLES if table not in views]
            for table in tables + [
                "link_targets", "counted_license_changes", "people_pages", "sync_state",
                "sync_history",
            ]:
                connection.execute(f"DELETE FROM {table} WHERE customer = :name", params)
            connection.execute("DELETE FROM customers WHERE name = :name", params)

        self._write(action)
        return True, before

    # -- sync ---------------------------------------------------------------------------

    def begin_sync(
        self, customer: str, scope: Iterable[str] = FULL_SCOPE, device: Optional[str] = None
    ) -> SyncSession:
        """Start a streaming sync of ``customer`` for the object types in ``scope``.

        ``device`` names the org connection the data comes from, for example the API host
        and org id. When given, it is stored on the customer at commit. Raises
        InventoryError when the customer does not exist.
        """
        if self.get_customer(customer) is None:
            raise InventoryError(
                f"customer '{customer}' not found in {self.path}; add it with "
                "ucops.webex.webex_customer first"
            )
        return SyncSession(self, customer, tuple(scope), device)

    def record_failed_sync(
        self,
        customer: str,
        scope: Sequence[str],
        device: Optional[str],
        started_at: str,
        error: str,
    ) -> Optional[int]:
        """Record a failed sync run; return its history id (None if the customer is gone)."""

        def action(connection: sqlite3.Connection) -> Optional[int]:
            exists = connection.execute(
                "SELECT 1 FROM customers WHERE name = :name", {"name": customer}
            ).fetchone()
            if exists is None:
                return None
            return insert_history(
                connection,
                customer=customer,
                scope=scope,
                device=device,
                started_at=started_at,
                finished_at=self.now(),
                outcome="failed",
                changed=False,
                rows_written=0,
                summary=None,
                error=error,
            )

        return self._write(action)

    def sync_history(self, customer: str, limit: int = 20) -> List[Dict[str, Any]]:
        """Return the latest sync runs of a customer, newest first."""
        rows = self._rows(
            "SELECT * FROM sync_history WHERE customer = :customer ORDER BY id DESC LIMIT :limit",
            {"customer": customer, "limit": limit},
        )
        for row in rows:
            row["changed"] = bool(row["changed"])
            row["scope"] = row["scope"].split(",") if row["scope"] else []
            row["summary"] = json.loads(row["summary"]) if row["summary"] else None
        return rows

    def latest_sync_outcome(self, customer: str, object_type: str) -> Optional[str]:
        """Return the outcome of the customer's latest sync whose scope included
        ``object_type`` (``failed`` or another outcome), or None when there is none."""
        row = self._conn.execute(
            "SELECT outcome FROM sync_history WHERE customer = :customer "
            "AND ',' || scope || ',' LIKE :pattern ORDER BY id DESC LIMIT 1",
            {"customer": customer, "pattern": f"%,{object_type},%"},
        ).fetchone()
        return None if row is None else row["outcome"]

    # -- reads ----------------------------------------------------------------------------

    def list_licenses(self, customer: str) -> List[Dict[str, Any]]:
        """Return the licenses of one customer (``license_rows`` format)."""
        return self.license_rows(customer=customer)

    def license_rows(
        self,
        hierarchy_prefix: Optional[str] = None,
        customer: Optional[str] = None,
        managed_only: bool = False,
        subscription_id: Optional[str] = None,
        site_url: Optional[str] = None,
        name: Optional[str] = None,
    ) -> List[Dict[str, Any]]:
        """Return license rows of the customers at or below a hierarchy level.

        Each row has ``customer``, ``hierarchy``, ``device``, ``synced_at`` (last successful
        license sync) and the fields of ``license_dict``. ``hierarchy_prefix`` "Provider"
        selects "Provider" and "Provider/..." but not "Provider2". ``site_url`` compares
        normalized; ``name`` compares without ASCII case.
        """
        where, params = _license_filters(
            hierarchy_prefix, customer, managed_only, subscription_id, site_url, name
        )
        rows = self._conn.execute(
            "SELECT c.name AS customer, c.hierarchy, c.device, st.synced_at, l.* "
            "FROM licenses l JOIN customers c ON c.name = l.customer "
            "LEFT JOIN sync_state st ON st.customer = l.customer "
            "AND st.object_type = 'licenses' "
            f"WHERE {where} "
            "ORDER BY c.hierarchy, c.name, l.name, l.subscription_id, l.site_url_key, l.id",
            params,
        )
        return [_customer_license(row) for row in rows]

    def license_totals(
        self,
        hierarchy_prefix: Optional[str] = None,
        managed_only: bool = False,
        subscription_id: Optional[str] = None,
        site_url: Optional[str] = None,
        name: Optional[str] = None,
    ) -> List[Dict[str, Any]]:
        """Total the license rows at a hierarchy level per (name, subscription_id).

        Rows follow ``licensing.aggregate_license_rows`` plus ``hierarchy`` (the prefix).
        """
        rows = self.license_rows(
            hierarchy_prefix=hierarchy_prefix,
            managed_only=managed_only,
            subscription_id=subscription_id,
            site_url=site_url,
            name=name,
        )
        level = licensing.normalize_hierarchy(hierarchy_prefix)
        totals = licensing.aggregate_license_rows(rows)
        for total in totals:
            total["hierarchy"] = level
        return totals

    def location_license_rows(
        self,
        hierarchy_prefix: Optional[str] = None,
        customer: Optional[str] = None,
        location_id: Optional[str] = None,
        managed_only: bool = False,
        subscription_id: Optional[str] = None,
        site_url: Optional[str] = None,
        name: Optional[str] = None,
    ) -> List[Dict[str, Any]]:
        """Return license use per location (Webex Calling site) from people and workspaces.

        One row per (customer, location, license) with at least one consumer there; hybrid
        licenses and people or workspaces without a location are left out. ``consumed_*``
        count the users and workspaces of that location holding the license; units are
        pooled per org, so ``total_units``, ``available_units`` and ``utilization`` are the
        org's values and ``org_consumed_units`` is the org-wide consumption. ``synced_at``
        is the last successful people sync.
        """
        where, params = _license_filters(
            hierarchy_prefix, customer, managed_only, subscription_id, site_url, name
        )
        customer_filter, customer_params = _customer_filter(hierarchy_prefix, customer)
        params.update(customer_params)
        location_condition = ""
        if location_id is not None:
            location_condition = "AND x.location_id = :location_id "
            params["location_id"] = location_id
        consumers = (
            "SELECT pl.customer, p.location_id, pl.license_id, 1 AS users, 0 AS workspaces "
            "FROM person_licenses pl JOIN people p "
            "ON p.customer = pl.customer AND p.id = pl.person_id "
            f"WHERE p.location_id IS NOT NULL AND pl.customer IN ({customer_filter}) "
            "UNION ALL "
            "SELECT wl.customer, w.location_id, wl.license_id, 0 AS users, 1 AS workspaces "
            "FROM workspace_licenses wl JOIN workspaces w "
            "ON w.customer = wl.customer AND w.id = wl.workspace_id "
            f"WHERE w.location_id IS NOT NULL AND wl.customer IN ({customer_filter})"
        )
        grouped = (
            "SELECT customer, location_id, license_id, SUM(users) AS users, "
            f"SUM(workspaces) AS workspaces FROM ({consumers}) u "
            "GROUP BY customer, location_id, license_id"
        )
        rows = self._conn.execute(
            "SELECT c.name AS customer, c.hierarchy, c.device, st.synced_at, "
            "x.location_id, loc.name AS location_name, x.users, x.workspaces, l.* "
            f"FROM ({grouped}) x "
            "JOIN licenses l ON l.customer = x.customer AND l.id = x.license_id "
            "JOIN customers c ON c.name = x.customer "
            "LEFT JOIN locations loc ON loc.customer = x.customer AND loc.id = x.location_id "
            "LEFT JOIN sync_state st ON st.customer = x.customer "
            "AND st.object_type = 'people' "
            f"WHERE l.hybrid = 0 AND {where} {location_condition}"
            "ORDER BY c.hierarchy, c.name, loc.name, x.location_id, l.name, l.subscription_id, "
            "l.site_url_key, l.id",
            params,
        )
        result = []
        for row in rows:
            item = _customer_license(row)
            users = int(row["users"])
            workspaces = int(row["workspaces"])
            item["location_id"] = row["location_id"]
            item["location_name"] = row["location_name"]
            item["org_consumed_units"] = item["consumed_units"]
            item["consumed_units"] = users + workspaces
            item["consumed_by_users"] = users
            item["consumed_by_workspaces"] = workspaces
            result.append(item)
        return result

    def defaults_decision(self, customer: str) -> licensing.DefaultsDecision:
        """Return the effective defaults of a customer from its stored licenses."""
        record = self.get_customer(customer)
        if record is None:
            raise InventoryError(f"customer '{customer}' not found in {self.path}")
        return licensing.effective_defaults(
            self.license_rows(customer=customer),
            record["default_subscription_id"],
            record["default_site_url"],
        )

    def users_outside_defaults(self, customer: str, sample_size: int = 20) -> Dict[str, Any]:
        """Return ``{"count", "sample": [{id, email, licenses: [{id, name,
        subscription_id}]}]}`` for people holding subscribed licenses that are not managed."""
        return query_users_outside_defaults(self._conn, customer, sample_size)

    def similar_customer_name(self, name: str) -> Optional[str]:
        """Return the stored customer name closest to ``name`` (another name), or None.

        A name equal but for case comes first, then difflib's closest match. Names that
        differ only in their numbers, such as "Store 6" and "Store 7", are not close: such
        series name different customers.
        """
        known = [record["name"] for record in self.list_customers() if record["name"] != name]
        close = [item for item in known if licensing.name_likeness_hint(name, item)]
        if not close:
            pattern = _number_pattern(name)
            others = [item for item in known if _number_pattern(item) != pattern]
            close = difflib.get_close_matches(name, others, n=1)
        return close[0] if close else None

    def missing_customer_message(self, name: str) -> str:
        """Describe a customer name that is not stored: the close matches and the known names."""
        known = [record["name"] for record in self.list_customers()]
        message = f"customer '{name}' is not in the inventory {self.path}"
        close = self.similar_customer_name(name)
        if close:
            message += f"; did you mean '{close}'?"
            hint = licensing.name_likeness_hint(name, close).strip()[1:-1]
            if hint:
                message += f" {hint[0].upper()}{hint[1:]}"
        message += f" (customers: {licensing.format_names(known)}). Correct the name, "
        message += "or add the customer with ucops.webex.webex_customer"
        return message

    def find_locations(self, customer: str, location: str) -> List[Dict[str, Any]]:
        """Return the stored locations of a customer whose id or name is ``location`` (names
        compare as ``licensing.fold_name`` folds them: any case, surrounding blanks ignored).

        Returns ``[{id, name}]``; more than one row means the name is ambiguous.
        """
        rows = self._conn.execute(
            "SELECT id, name FROM locations WHERE customer = :customer "
            "AND (id = :location OR ucops_fold(name) = :folded) "
            "ORDER BY CASE WHEN id = :location THEN 0 ELSE 1 END, name, id",
            {"customer": customer, "location": location,
             "folded": licensing.fold_name(location)},
        )
        found = [dict(row) for row in rows]
        exact_id = [row for row in found if row["id"] == location]
        return exact_id or found

    def list_locations(self, customer: str) -> List[Dict[str, Any]]:
        """Return ``[{id, name}]`` of every stored location of a customer, sorted by name."""
        rows = self._conn.execute(
            "SELECT id, name FROM locations WHERE customer = :customer ORDER BY name, id",
            {"customer": customer},
        )
        return [dict(row) for row in rows]

    def find_person(self, customer: str, user: str) -> Optional[Dict[str, Any]]:
        """Find a person by id or email (without ASCII case); None when not stored.

        Returns ``{id, email, display_name, location_id, license_ids, role_ids}``.
        """
        columns = "SELECT id, email, display_name, location_id FROM people "
        params = {"customer": customer, "user": user}
        # Two lookups, so that each one uses an index: the primary key, then
        # people_email_lower. Ordering by id alone would make SQLite walk the primary key.
        row = self._conn.execute(
            columns + "WHERE customer = :customer AND id = :user", params
        ).fetchone()
        if row is None:
            row = self._conn.execute(
                columns + "WHERE customer = :customer AND lower(email) = lower(:user) "
                "ORDER BY email, id LIMIT 1",
                params,
            ).fetchone()
        if row is None:
            return None
        person = dict(row)
        key = {"customer": customer, "id": person["id"]}
        person["license_ids"] = [
            item[0]
            for item in self._conn.execute(
                "SELECT license_id FROM person_licenses WHERE customer = :customer "
                "AND person_id = :id ORDER BY license_id",
                key,
            )
        ]
        person["role_ids"] = [
            item[0]
            for item in self._conn.execute(
                "SELECT role_id FROM person_roles WHERE customer = :customer "
                "AND person_id = :id ORDER BY role_id",
                key,
            )
        ]
        return person

    # -- incremental updates --------------------------------------------------------------

    def apply_user_license_change(
        self,
        customer: str,
        person_id: str,
        added_license_ids: Iterable[str] = (),
        removed_license_ids: Iterable[str] = (),
        person_fields: Optional[Mapping[str, Any]] = None,
    ) -> Dict[str, Any]:
        """Record license links added and removed for a person, in one transaction.

        Adds and removes person_licenses rows and moves ``consumed_units`` and
        ``consumed_by_users`` of each non-hybrid license by one per link actually added or
        removed (counters never go below 0). ``person_fields`` (keys email, display_name,
        location_id) creates the person when missing or updates those fields. Returns
        ``{"changed", "person_added", "licenses_added", "licenses_removed",
        "counted_added", "counted_removed", "rows_written"}``.
        """
        return self._record_person_licenses(
            customer, person_id, added_license_ids, removed_license_ids, None, person_fields
        )

    def record_user_licenses(
        self,
        customer: str,
        person_id: str,
        added_license_ids: Iterable[str],
        removed_license_ids: Iterable[str],
        license_ids: Iterable[str],
        person_fields: Optional[Mapping[str, Any]] = None,
    ) -> Dict[str, Any]:
        """Record a license change that the API applied to a person, in one transaction.

        ``added_license_ids`` and ``removed_license_ids`` are what the API applied, and
        ``license_ids`` the person's licenses after the change. Only the applied licenses
        change stored links, so an older result recorded late cannot undo a newer change of
        other licenses. NOTE: two runs that add and remove the same license of one person at
        once can still leave that link and counter wrong until the next sync.

        The counters of non-hybrid licenses move by one per license:

        - for a stored person, per link actually added or removed when the customer's
          people were synced with or after its licenses, because a sync that already saw
          the change counted it. Otherwise (a later sync of the licenses alone already
          counted changes that the links miss), per applied license, except a change of
          the person's license that was counted since that sync already (table
          ``counted_license_changes``), so that a change recorded twice (two tasks for one
          user at once) counts once;
        - for a person not stored, who is then added with ``license_ids``: when the
          people were synced, for every license in ``license_ids``, since a user who is
          new since that sync was not counted; otherwise per applied license.

        Counters never go below 0. Returns ``{"changed", "person_added", "licenses_added",
        "licenses_removed", "counted_added", "counted_removed", "rows_written"}``: links
        written, and the licenses whose counters moved.
        """
        return self._record_person_licenses(
            customer,
            person_id,
            added_license_ids,
            removed_license_ids,
            list(license_ids),
            person_fields,
        )

    def _record_person_licenses(
        self,
        customer: str,
        person_id: str,
        added_license_ids: Iterable[str],
        removed_license_ids: Iterable[str],
        resulting: Optional[List[str]],
        person_fields: Optional[Mapping[str, Any]],
    ) -> Dict[str, Any]:
        """Write the links and counters of a license change (see the two callers).

        With ``resulting`` None every counter follows the links actually changed.
        """
        fields = dict(person_fields or {})
        unknown = sorted(set(fields) - set(PERSON_FIELDS))
        if unknown:
            raise ValueError(
                f"invalid person_fields {', '.join(unknown)} "
                f"(expected some of: {', '.join(PERSON_FIELDS)})"
            )
        added = list(dict.fromkeys(str(i) for i in added_license_ids))
        removed = [i for i in dict.fromkeys(str(i) for i in removed_license_ids) if i not in added]

        def action(connection: sqlite3.Connection) -> Dict[str, Any]:
            if (
                connection.execute(
                    "SELECT 1 FROM customers WHERE name = :name", {"name": customer}
                ).fetchone()
                is None
            ):
                raise InventoryError(f"customer '{customer}' not found in {self.path}")
            start = connection.total_changes
            key = {"customer": customer, "person_id": person_id}
            person_added = _upsert_person(connection, customer, person_id, fields)
            links_count = resulting is None or _links_match_counters(connection, customer)
            if person_added and resulting is not None:
                to_add = [str(i) for i in dict.fromkeys(resulting)]
                to_remove: List[str] = []
            else:
                to_add, to_remove = added, removed
            done_added = [
                license_id
                for license_id in to_add
                if _add_person_license(connection, dict(key, license_id=license_id))
            ]
            done_removed = [
                license_id
                for license_id in to_remove
                if _remove_person_license(connection, dict(key, license_id=license_id))
            ]
            licenses_sync: Optional[int] = None
            if links_count:
                # The links show what the counters include (see record_user_licenses).
                up, down = done_added, done_removed
            else:
                # Each applied change, unless this change of the person was counted since
                # the last licenses sync (two tasks recorded it).
                licenses_sync = _last_sync_id(connection, customer, "licenses")
                up = [i for i in added
                      if not _counted_before(connection, key, i, True, licenses_sync)]
                down = [i for i in removed
                        if not _counted_before(connection, key, i, False, licenses_sync)]
            counted_added = [i for i in up if _move_consumption(connection, customer, i, 1)]
            counted_removed = [i for i in down if _move_consumption(connection, customer, i, -1)]
            rows_written = connection.total_changes - start
            if not links_count:
                # Written after rows_written, since they record no license change.
                _note_counted_changes(
                    connection, key, counted_added, counted_removed, licenses_sync
                )
            if rows_written:
                # The stored fingerprint no longer describes the person: the next sync
                # compares this person field by field, and a sync running now lists again.
                connection.execute(
                    "UPDATE people SET fingerprint = NULL WHERE customer = :customer "
                    "AND id = :person_id",
                    key,
                )
            return {
                "changed": rows_written > 0,
                "person_added": person_added,
                "licenses_added": done_added,
                "licenses_removed": done_removed,
                "counted_added": counted_added,
                "counted_removed": counted_removed,
                "rows_written": rows_written,
            }

        return self._write(action)


# ---------------------------------------------------------------------------
# Helpers


def save_copy_before_upgrade(connection: sqlite3.Connection, path: str, version: int) -> str:
    """Copy the inventory to ``<path>.schema-<version>.bak`` before its schema is upgraded.

    When that file exists already, the copy takes the first free name of the form
    ``<path>.schema-<version>-<n>.bak``.

    The copy is made with SQLite's backup, which is consistent while other connections
    write, into a file readable only by the user, and is renamed into place only when
    complete. Raises InventoryError, with the file unchanged, when the copy fails.
    """
    # The caller holds the write lock, so no other copy is being written: partial copies
    # are left by a run that was killed or failed.
    for stale in glob.glob(f"{glob.escape(path)}.schema-*.bak.*.partial*"):
        with contextlib.suppress(OSError):
            os.unlink(stale)
    target = f"{path}.schema-{version}.bak"
    number = 2
    while os.path.lexists(target):
        # An older copy (or a file of the user's) is kept: the new copy takes a free name.
        target = f"{path}.schema-{version}-{number}.bak"
        number += 1
    partial = f"{target}.{os.getpid()}.partial"
    try:
        create_private_file(partial)
        copy = sqlite3.connect(partial)
        try:
            connection.backup(copy)
        finally:
            copy.close()
        os.replace(partial, target)
    except (OSError, sqlite3.Error) as exc:
        for leftover in (partial, partial + "-journal"):
            with contextlib.suppress(OSError):
                os.unlink(leftover)
        raise InventoryError(
            f"inventory database {path} has schema version {version} and must be upgraded "
            f"once to version {SCHEMA_VERSION}, after a copy of it is saved as {target}, but "
            f"the copy failed ({exc}). Free disk space or allow writing to "
            f"{os.path.dirname(target) or '.'}, then run the task again"
        ) from exc
    return target


def _number_pattern(name: str) -> str:
    """Return ``name`` in lower case with each run of digits replaced by one "#"."""
    return re.sub(r"\d+", "#", name.lower())


def _clean(value: Optional[str]) -> Optional[str]:
    """Map None to None (keep) and blank text to "" (clear); strip other text."""
    if value is None:
        return None
    return str(value).strip()


def _customer_fields(row: Mapping[str, Any]) -> Dict[str, Any]:
    return {field: row[field] for field in CUSTOMER_FIELDS}


def _hierarchy_condition(alias: str, prefix: Optional[str]) -> Tuple[str, Dict[str, Any]]:
    """SQL condition: the customer's hierarchy is ``prefix`` or below it (portable substr)."""
    level = licensing.normalize_hierarchy(prefix)
    if not level:
        return "1 = 1", {}
    below = level + "/"
    return (
        f"({alias}.hierarchy = :hierarchy OR substr({alias}.hierarchy, 1, :below_length) = :below)",
        {"hierarchy": level, "below": below, "below_length": len(below)},
    )


def _customer_filter(
    hierarchy_prefix: Optional[str], customer: Optional[str]
) -> Tuple[str, Dict[str, Any]]:
    """Subquery selecting the names of the customers in scope."""
    condition, params = _hierarchy_condition("cf", hierarchy_prefix)
    if customer is not None:
        condition += " AND cf.name = :customer"
        params["customer"] = customer
    return f"SELECT cf.name FROM customers cf WHERE {condition}", params


def _license_filters(
    hierarchy_prefix: Optional[str],
    customer: Optional[str],
    managed_only: bool,
    subscription_id: Optional[str],
    site_url: Optional[str],
    name: Optional[str],
) -> Tuple[str, Dict[str, Any]]:
    condition, params = _hierarchy_condition("c", hierarchy_prefix)
    parts = [condition]
    if customer is not None:
        parts.append("c.name = :customer")
        params["customer"] = customer
    if managed_only:
        parts.append("l.managed = 1")
    if subscription_id is not None:
        parts.append("l.subscription_id = :subscription_id")
        params["subscription_id"] = licensing.normalize_subscription_id(subscription_id)
    if site_url is not None:
        parts.append("l.site_url_key = :site_url_key")
        params["site_url_key"] = licensing.normalize_site_url(site_url)
    if name is not None:
        parts.append("ucops_fold(l.name) = :license_name")
        params["license_name"] = licensing.fold_name(name)
    return " AND ".join(parts), params


def _customer_license(row: Mapping[str, Any]) -> Dict[str, Any]:
    item = {
        "customer": row["customer"],
        "hierarchy": row["hierarchy"],
        "device": row["device"],
        "synced_at": row["synced_at"],
    }
    item.update(license_dict(row))
    return item


def _recompute_managed(connection: sqlite3.Connection, customer: Mapping[str, Any]) -> int:
    """Set the managed flags of a customer's licenses from its defaults; return rows changed."""
    rows = [
        dict(row)
        for row in connection.execute(
            "SELECT id, subscription_id, site_url, managed FROM licenses "
            "WHERE customer = :customer",
            {"customer": customer["name"]},
        )
    ]
    decision = licensing.effective_defaults(
        rows, customer["default_subscription_id"], customer["default_site_url"]
    )
    updates = [
        {"customer": customer["name"], "id": row["id"], "managed": int(managed)}
        for row in rows
        for managed in [licensing.is_managed(row, decision)]
        if bool(row["managed"]) != managed
    ]
    connection.executemany(
        "UPDATE licenses SET managed = :managed WHERE customer = :customer AND id = :id",
        updates,
    )
    return len(updates)


def _upsert_person(
    connection: sqlite3.Connection, customer: str, person_id: str, fields: Mapping[str, Any]
) -> bool:
    """Create the person when missing or update the given fields; return True if created."""
    params = {"customer": customer, "id": person_id}
    row = connection.execute(
        "SELECT email, display_name, location_id FROM people "
        "WHERE customer = :customer AND id = :id",
        params,
    ).fetchone()
    if row is None:
        values = {field: fields.get(field) for field in PERSON_FIELDS}
        connection.execute(
            "INSERT INTO people (customer, id, email, display_name, location_id) "
            "VALUES (:customer, :id, :email, :display_name, :location_id)",
            dict(params, **values),
        )
        return True
    changes = {field: value for field, value in fields.items() if row[field] != value}
    if changes:
        assignments = ", ".join(f"{field} = :{field}" for field in changes)
        connection.execute(
            f"UPDATE people SET {assignments} WHERE customer = :customer AND id = :id",
            dict(params, **changes),
        )
    return False


def _last_sync_id(connection: sqlite3.Connection, customer: str, object_type: str) -> Optional[int]:
    """Return the history id of the customer's last successful sync of ``object_type``."""
    row = connection.execute(
        "SELECT history_id FROM sync_state WHERE customer = :customer "
        "AND object_type = :object_type",
        {"customer": customer, "object_type": object_type},
    ).fetchone()
    return None if row is None else row[0]


def _counted_before(
    connection: sqlite3.Connection,
    key: Mapping[str, Any],
    license_id: str,
    added: bool,
    licenses_sync: Optional[int],
) -> bool:
    """Return True when the same change of a person's license (an addition when ``added``,
    else a removal) was counted since the licenses sync ``licenses_sync``."""
    row = connection.execute(
        "SELECT held, licenses_sync FROM counted_license_changes WHERE customer = :customer "
        "AND person_id = :person_id AND license_id = :license_id",
        dict(key, license_id=license_id),
    ).fetchone()
    return row is not None and bool(row[0]) == added and row[1] == licenses_sync


def _note_counted_changes(
    connection: sqlite3.Connection,
    key: Mapping[str, Any],
    added: Sequence[str],
    removed: Sequence[str],
    licenses_sync: Optional[int],
) -> None:
    """Store the changes just counted, and delete those counted before the licenses sync
    ``licenses_sync``, because that sync counted their result."""
    connection.execute(
        "DELETE FROM counted_license_changes WHERE customer = :customer "
        "AND licenses_sync IS NOT :licenses_sync",
        dict(key, licenses_sync=licenses_sync),
    )
    for license_ids, holds_license in ((added, 1), (removed, 0)):
        for license_id in license_ids:
            connection.execute(
                "INSERT INTO counted_license_changes "
                "(customer, person_id, license_id, held, licenses_sync) "
                "VALUES (:customer, :person_id, :license_id, :held, :licenses_sync) "
                "ON CONFLICT (customer, person_id, license_id) DO UPDATE SET "
                "held = excluded.held, licenses_sync = excluded.licenses_sync",
                dict(key, license_id=license_id, held=holds_license,
                     licenses_sync=licenses_sync),
            )


def _links_match_counters(connection: sqlite3.Connection, customer: str) -> bool:
    """Return True when the stored people links and the license counters agree.

    They agree when the last successful sync of the customer's people was not older than
    the last one of its licenses (both are the same sync after a full sync). Sync history
    ids grow with each sync, unlike the times, which have whole seconds.
    """
    ids = {
        row[0]: row[1]
        for row in connection.execute(
            "SELECT object_type, history_id FROM sync_state WHERE customer = :customer "
            "AND object_type IN ('people', 'licenses')",
            {"customer": customer},
        )
    }
    people = ids.get("people")
    return people is not None and people >= (ids.get("licenses") or 0)


def _add_person_license(connection: sqlite3.Connection, key: Mapping[str, Any]) -> bool:
    """Store one link of a stored person to a license id, and return True when it was new.

    ``key`` contains customer, person_id and license_id.
    """
    connection.execute(
        "INSERT INTO link_targets (customer, id) VALUES (:customer, :license_id) "
        "ON CONFLICT (customer, id) DO NOTHING",
        key,
    )
    cursor = connection.execute(
        "INSERT INTO person_license_keys (person_key, target_key) "
        "SELECT o.person_key, t.target_key FROM people o "
        "JOIN link_targets t ON t.customer = o.customer "
        "WHERE o.customer = :customer AND o.id = :person_id AND t.id = :license_id "
        "ON CONFLICT (person_key, target_key) DO NOTHING",
        key,
    )
    return cursor.rowcount > 0


def _remove_person_license(connection: sqlite3.Connection, key: Mapping[str, Any]) -> bool:
    """Delete one link of a person to a license id, and return True when it was stored."""
    cursor = connection.execute(
        "DELETE FROM person_license_keys WHERE person_key = (SELECT person_key FROM people "
        "WHERE customer = :customer AND id = :person_id) AND target_key = (SELECT target_key "
        "FROM link_targets WHERE customer = :customer AND id = :license_id)",
        key,
    )
    return cursor.rowcount > 0


def _move_consumption(
    connection: sqlite3.Connection, customer: str, license_id: str, step: int
) -> bool:
    """Add ``step`` (1 or -1) to a non-hybrid license's user consumption, floored at 0.

    A count that the API left null (not reported) stays null, so the next sync of an
    unchanged org finds nothing to correct. Returns True when a counter moved: not for a
    hybrid or unknown license, nor for a removal from counters at 0.
    """
    cursor = connection.execute(
        "UPDATE licenses SET "
        "consumed_units = CASE WHEN consumed_units + :step < 0 THEN 0 "
        "ELSE consumed_units + :step END, "
        "consumed_by_users = CASE WHEN consumed_by_users + :step < 0 THEN 0 "
        "ELSE consumed_by_users + :step END "
        "WHERE customer = :customer AND id = :license_id AND hybrid = 0 "
        "AND (:step > 0 OR consumed_units > 0 OR COALESCE(consumed_by_users, 0) > 0)",
        {"customer": customer, "license_id": license_id, "step": step},
    )
    return cursor.rowcount > 0
