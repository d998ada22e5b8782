# Copyright: ucops.webex maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Streaming sync of one customer into the license inventory.

A ``SyncSession`` stages API pages into TEMP tables of its own connection, so fetching holds
no lock on the inventory and Python keeps one page at a time. ``diff`` compares the staged
rows with the inventory in SQL; ``commit`` writes exactly the difference in one
``BEGIN IMMEDIATE`` transaction and records a sync-history row. A sync whose data equals the
inventory writes no row to the data tables (only its history and sync-state rows).
"""

from __future__ import annotations

import json
import sqlite3
from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    Iterable,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
)

from ansible_collections.ucops.webex.plugins.module_utils import licensing
from ansible_collections.ucops.webex.plugins.module_utils.inventory_schema import (
    InventoryError,
    SQLiteDialect,
)

if TYPE_CHECKING:  # pragma: no cover
    from ansible_collections.ucops.webex.plugins.module_utils.inventory import InventoryStore

OBJECT_TYPES = ("licenses", "roles", "people", "locations", "workspaces")
LIGHT_SCOPE = ("licenses", "roles")
FULL_SCOPE = OBJECT_TYPES
PEOPLE_SAMPLE_SIZE = 20
ERROR_TEXT_LIMIT = 2000


class LinkSpec(NamedTuple):
    """A many-to-many table owned by one object type (for example person_licenses)."""

    table: str
    owner: str
    target: str


class TableSpec(NamedTuple):
    """One object type: its table, data columns with SQL types, and link tables."""

    table: str
    columns: Tuple[Tuple[str, str], ...]
    links: Tuple[LinkSpec, ...] = ()

    @property
    def column_names(self) -> Tuple[str, ...]:
        return tuple(column[0] for column in self.columns)


LICENSE_COLUMNS: Tuple[Tuple[str, str], ...] = (
    ("name", "TEXT"),
    ("site_url", "TEXT"),
    ("site_url_key", "TEXT"),
    ("site_type", "TEXT"),
    ("subscription_id", "TEXT"),
    ("total_units", "INTEGER"),
    ("consumed_units", "INTEGER"),
    ("consumed_by_users", "INTEGER"),
    ("consumed_by_workspaces", "INTEGER"),
    ("hybrid", "INTEGER"),
    ("managed", "INTEGER"),
)

SPECS: Dict[str, TableSpec] = {
    "licenses": TableSpec("licenses", LICENSE_COLUMNS),
    "roles": TableSpec("roles", (("name", "TEXT"),)),
    "people": TableSpec(
        "people",
        (("email", "TEXT"), ("display_name", "TEXT"), ("location_id", "TEXT")),
        (
            LinkSpec("person_licenses", "person_id", "license_id"),
            LinkSpec("person_roles", "person_id", "role_id"),
        ),
    ),
    "locations": TableSpec(
        "locations",
        (
            ("name", "TEXT"),
            ("time_zone", "TEXT"),
            ("city", "TEXT"),
            ("state", "TEXT"),
            ("country", "TEXT"),
        ),
    ),
    "workspaces": TableSpec(
        "workspaces",
        (("display_name", "TEXT"), ("location_id", "TEXT"), ("calling_type", "TEXT")),
        (LinkSpec("workspace_licenses", "workspace_id", "license_id"),),
    ),
}


def normalize_scope(scope: Iterable[str]) -> Tuple[str, ...]:
    """Validate a sync scope and return it in canonical order."""
    if isinstance(scope, str):
        scope = [scope]
    requested = set(scope)
    unknown = sorted(requested - set(OBJECT_TYPES))
    if unknown:
        raise ValueError(
            f"invalid sync scope {', '.join(unknown)} (expected some of: {', '.join(OBJECT_TYPES)})"
        )
    if not requested:
        raise ValueError(f"empty sync scope (expected some of: {', '.join(OBJECT_TYPES)})")
    return tuple(name for name in OBJECT_TYPES if name in requested)


# ---------------------------------------------------------------------------
# Row builders: Webex API objects to table rows


def license_row(item: Mapping[str, Any]) -> Dict[str, Any]:
    row = dict(licensing.normalize_license(item))
    row["site_url_key"] = licensing.normalize_site_url(row["site_url"])
    row["hybrid"] = int(row["hybrid"])
    row["managed"] = 0
    return row


def role_row(item: Mapping[str, Any]) -> Dict[str, Any]:
    return {"id": _required_id(item, "role"), "name": item.get("name")}


def person_row(item: Mapping[str, Any]) -> Dict[str, Any]:
    emails = item.get("emails") or []
    return {
        "id": _required_id(item, "person"),
        "email": emails[0] if emails else item.get("email"),
        "display_name": item.get("displayName"),
        "location_id": item.get("locationId"),
    }


def location_row(item: Mapping[str, Any]) -> Dict[str, Any]:
    address = item.get("address") or {}
    return {
        "id": _required_id(item, "location"),
        "name": item.get("name"),
        "time_zone": item.get("timeZone"),
        "city": address.get("city"),
        "state": address.get("state"),
        "country": address.get("country"),
    }


def workspace_row(item: Mapping[str, Any]) -> Dict[str, Any]:
    calling = item.get("calling") or {}
    return {
        "id": _required_id(item, "workspace"),
        "display_name": item.get("displayName"),
        "location_id": item.get("locationId"),
        "calling_type": calling.get("type"),
    }


def workspace_license_ids(item: Mapping[str, Any]) -> List[str]:
    calling = item.get("calling") or {}
    webex_calling = calling.get("webexCalling") or {}
    return [str(value) for value in webex_calling.get("licenses") or []]


def _required_id(item: Mapping[str, Any], kind: str) -> str:
    value = item.get("id")
    if not value:
        raise ValueError(f"{kind} object without id: {dict(item)!r}")
    return str(value)


def license_dict(row: Mapping[str, Any]) -> Dict[str, Any]:
    """Convert a licenses table row to the reported license fields."""
    total = int(row["total_units"])
    consumed = int(row["consumed_units"])
    return {
        "id": row["id"],
        "name": row["name"],
        "site_url": row["site_url"],
        "site_type": row["site_type"],
        "subscription_id": row["subscription_id"],
        "total_units": total,
        "consumed_units": consumed,
        "consumed_by_users": row["consumed_by_users"],
        "consumed_by_workspaces": row["consumed_by_workspaces"],
        "available_units": licensing.available_units(total, consumed),
        "utilization": licensing.utilization(total, consumed),
        "hybrid": bool(row["hybrid"]),
        "managed": bool(row["managed"]),
        "unsubscribed": row["subscription_id"] is None,
    }


# ---------------------------------------------------------------------------
# SQL builders shared by diff and commit


def _staged(table: str) -> str:
    return "s_" + table


def _rows_differ(spec: TableSpec, dialect: SQLiteDialect, left: str, right: str) -> str:
    return " OR ".join(
        dialect.distinct(f"{left}.{name}", f"{right}.{name}") for name in spec.column_names
    )


def _added_sql(spec: TableSpec) -> str:
    return (
        f"FROM {_staged(spec.table)} s WHERE NOT EXISTS (SELECT 1 FROM {spec.table} m "
        "WHERE m.customer = s.customer AND m.id = s.id)"
    )


def _removed_sql(spec: TableSpec) -> str:
    return (
        f"FROM {spec.table} m WHERE m.customer = :customer AND NOT EXISTS "
        f"(SELECT 1 FROM {_staged(spec.table)} s WHERE s.id = m.id)"
    )


def _updated_ids_sql(spec: TableSpec, dialect: SQLiteDialect) -> str:
    """Select ids present on both sides whose columns or links differ."""
    parts = [
        f"SELECT s.id AS id FROM {_staged(spec.table)} s JOIN {spec.table} m "
        f"ON m.customer = s.customer AND m.id = s.id "
        f"WHERE {_rows_differ(spec, dialect, 's', 'm')}"
    ]
    for link in spec.links:
        parts.append(
            f"SELECT s.{link.owner} AS id FROM {_staged(link.table)} s "
            f"WHERE {_link_missing(link, 'm', link.table, 's')}"
        )
        parts.append(
            f"SELECT m.{link.owner} AS id FROM {link.table} m WHERE m.customer = :customer "
            f"AND {_link_missing(link, 's', _staged(link.table), 'm')}"
        )
    union = " UNION ".join(parts)
    return (
        f"SELECT u.id FROM ({union}) u "
        f"WHERE EXISTS (SELECT 1 FROM {spec.table} m WHERE m.customer = :customer "
        "AND m.id = u.id) "
        f"AND EXISTS (SELECT 1 FROM {_staged(spec.table)} s WHERE s.id = u.id)"
    )


def _link_missing(link: LinkSpec, alias: str, table: str, other: str) -> str:
    """Condition: the link row ``other`` has no twin in ``table`` (aliased ``alias``)."""
    return (
        f"NOT EXISTS (SELECT 1 FROM {table} {alias} WHERE {alias}.customer = {other}.customer "
        f"AND {alias}.{link.owner} = {other}.{link.owner} "
        f"AND {alias}.{link.target} = {other}.{link.target})"
    )


def _changes(table: str) -> str:
    return "c_" + table


def _collect_changes_statements(spec: TableSpec, dialect: SQLiteDialect) -> List[str]:
    """Build the statements that fill c_<table> with the added, removed and updated ids."""
    changes = _changes(spec.table)
    return [
        f"DELETE FROM {changes}",
        f"INSERT INTO {changes} (id, change) SELECT s.id, 'added' {_added_sql(spec)}",
        f"INSERT INTO {changes} (id, change) SELECT m.id, 'removed' {_removed_sql(spec)}",
        f"INSERT INTO {changes} (id, change) SELECT x.id, 'updated' "
        f"FROM ({_updated_ids_sql(spec, dialect)}) x",
    ]


def _apply_statements(spec: TableSpec, dialect: SQLiteDialect) -> List[str]:
    """Build the statements that make the inventory equal to the staged rows.

    They only visit the ids in c_<table> (see ``_collect_changes_statements``). A link row
    whose owner is missing from the owner table is therefore left alone: the store adds
    the person before any person_licenses row, so such a row does not occur.
    """
    columns = ("customer", "id") + spec.column_names
    column_list = ", ".join(columns)
    staged_list = ", ".join(f"s.{name}" for name in columns)
    updates = ", ".join(f"{name} = excluded.{name}" for name in spec.column_names)
    changes = _changes(spec.table)
    changed_ids = f"(SELECT id FROM {changes})"
    kept_ids = f"(SELECT id FROM {changes} WHERE change <> 'removed')"
    statements = []
    for link in spec.links:
        statements.append(
            f"DELETE FROM {link.table} WHERE customer = :customer "
            f"AND {link.owner} IN {changed_ids} AND "
            f"{_link_missing(link, 's', _staged(link.table), link.table)}"
        )
    statements.append(
        f"DELETE FROM {spec.table} WHERE customer = :customer "
        f"AND id IN (SELECT id FROM {changes} WHERE change = 'removed')"
    )
    # Rows are inserted in key order, which keeps the B-tree inserts local.
    statements.append(
        f"INSERT INTO {spec.table} ({column_list}) SELECT {staged_list} "
        f"FROM {_staged(spec.table)} s WHERE s.id IN {kept_ids} "
        f"AND NOT EXISTS (SELECT 1 FROM {spec.table} m "
        "WHERE m.customer = s.customer AND m.id = s.id "
        f"AND NOT ({_rows_differ(spec, dialect, 's', 'm')})) "
        f"ORDER BY s.id ON CONFLICT (customer, id) DO UPDATE SET {updates}"
    )
    for link in spec.links:
        statements.append(
            f"INSERT INTO {link.table} (customer, {link.owner}, {link.target}) "
            f"SELECT s.customer, s.{link.owner}, s.{link.target} FROM {_staged(link.table)} s "
            f"WHERE s.{link.owner} IN {kept_ids} AND {_link_missing(link, 'm', link.table, 's')} "
            f"ORDER BY s.{link.owner}, s.{link.target}"
        )
    return statements


# ---------------------------------------------------------------------------
# Session


class SyncSession:
    """Stage one customer's objects, compare them with the inventory, and apply the result.

    Use it as a context manager: leaving the block by an exception records a failed sync
    (``abort``). Leaving it without ``commit`` or ``discard`` also records a failure.
    """

    def __init__(
        self,
        store: InventoryStore,
        customer: str,
        scope: Sequence[str],
        device: Optional[str] = None,
    ):
        self.store = store
        self.customer = customer
        self.scope = normalize_scope(scope)
        self.device = device
        self.started_at = store.now()
        self.staged: Dict[str, int] = {name: 0 for name in self.scope}
        self.duplicates: Dict[str, int] = {name: 0 for name in self.scope}
        # Rows appended per object type, and the types appended to since the staged
        # tables were last deduplicated and indexed (see _finish_staging).
        self._appended: Dict[str, int] = {name: 0 for name in self.scope}
        self._unfinished: set = set()
        self._page_number = 0
        self.finished = False
        self._dialect: SQLiteDialect = store.dialect
        self._conn = self._dialect.retry_locked(self._dialect.connect)
        try:
            self._dialect.retry_locked(self._create_staging_tables)
        except BaseException:
            self._conn.close()
            raise

    # -- context manager ------------------------------------------------------------------

    def __enter__(self) -> SyncSession:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if self.finished:
            return
        if exc is not None:
            self.abort(f"{type(exc).__name__}: {exc}")
        else:
            self.abort("sync session closed without commit")

    # -- staging --------------------------------------------------------------------------

    def stage_licenses(self, items: Iterable[Mapping[str, Any]]) -> int:
        """Stage license objects of ``GET /v1/licenses``; return how many were given."""
        rows = [license_row(item) for item in items]
        return self._stage("licenses", rows, {})

    def stage_roles(self, items: Iterable[Mapping[str, Any]]) -> int:
        """Stage role objects of ``GET /v1/roles``."""
        return self._stage("roles", [role_row(item) for item in items], {})

    def stage_people(self, items: Iterable[Mapping[str, Any]]) -> int:
        """Stage one page of person objects with their license and role ids."""
        rows = []
        license_links = []
        role_links = []
        for item in items:
            row = person_row(item)
            rows.append(row)
            license_links.extend((row["id"], str(i)) for i in item.get("licenses") or [])
            role_links.extend((row["id"], str(i)) for i in item.get("roles") or [])
        links = {"person_licenses": license_links, "person_roles": role_links}
        return self._stage("people", rows, links)

    def stage_locations(self, items: Iterable[Mapping[str, Any]]) -> int:
        """Stage one page of location objects."""
        return self._stage("locations", [location_row(item) for item in items], {})

    def stage_workspaces(self, items: Iterable[Mapping[str, Any]]) -> int:
        """Stage one page of workspace objects with their calling license ids."""
        rows = []
        license_links = []
        for item in items:
            row = workspace_row(item)
            rows.append(row)
            license_links.extend((row["id"], i) for i in workspace_license_ids(item))
        return self._stage("workspaces", rows, {"workspace_licenses": license_links})

    def _stage(
        self,
        object_type: str,
        rows: List[Dict[str, Any]],
        links: Mapping[str, List[Tuple[str, str]]],
    ) -> int:
        self._check_open()
        if object_type not in self.scope:
            raise ValueError(
                f"cannot stage {object_type}: not in the sync scope ({', '.join(self.scope)})"
            )
        spec = SPECS[object_type]
        columns = ("customer", "id") + spec.column_names + ("page",)
        self._page_number += 1
        for row in rows:
            row["customer"] = self.customer
            row["page"] = self._page_number

        # Staging only appends: the staged tables have no key while pages arrive, because
        # inserting into a B-tree keyed by long random ids costs several times more than
        # appending and indexing once (_finish_staging). One transaction spans all pages
        # (TEMP tables only, so no inventory lock); a savepoint keeps each page whole.
        self._begin_staging()
        self._conn.execute("SAVEPOINT stage_page")
        try:
            self._conn.executemany(
                f"INSERT INTO {_staged(spec.table)} ({', '.join(columns)}) "
                f"VALUES ({', '.join(':' + name for name in columns)})",
                rows,
            )
            for link in spec.links:
                self._conn.executemany(
                    f"INSERT INTO {_staged(link.table)} "
                    f"(customer, {link.owner}, {link.target}, page) "
                    "VALUES (:customer, :owner, :target, :page)",
                    [
                        {
                            "customer": self.customer,
                            "owner": owner,
                            "target": target,
                            "page": self._page_number,
                        }
                        for owner, target in links.get(link.table, ())
                    ],
                )
        except BaseException:
            self._conn.execute("ROLLBACK TO stage_page")
            raise
        finally:
            self._conn.execute("RELEASE stage_page")
        self._appended[object_type] += len(rows)
        self._unfinished.add(object_type)
        return len(rows)

    # -- diff and commit ------------------------------------------------------------------

    def diff(self, people_sample: int = PEOPLE_SAMPLE_SIZE) -> Dict[str, Any]:
        """Compare the staged objects with the inventory without writing to it.

        Returns the report described in ``commit``, without ``rows_written``/``history_id``.
        """
        self._check_open()
        self._end_staging()
        customer = self.store.get_customer(self.customer)
        if customer is None:
            raise InventoryError(f"customer '{self.customer}' was deleted during the sync")
        with self._staging_transaction():
            decision = self._prepare_managed(customer)
        return self._report(decision, people_sample)

    def commit(self, people_sample: int = PEOPLE_SAMPLE_SIZE) -> Dict[str, Any]:
        """Write exactly the difference in one transaction and record a history row.

        Returns ``{"changed", "summary": {type: {added, updated, removed, unchanged}},
        "licenses": {added, updated: [{before, after}], removed}, "people": {changes,
        truncated}, "defaults", "warnings", "unsubscribed_licenses",
        "users_outside_defaults": {count, sample}, "staged", "duplicates",
        "rows_written", "history_id"}``. Only the object types in scope are replaced.
        """
        self._check_open()
        self._end_staging()

        def transaction() -> Dict[str, Any]:
            self._conn.execute(self._dialect.begin_write_sql)
            try:
                report = self._apply(people_sample)
                self._conn.execute("COMMIT")
                return report
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

        try:
            report = self._dialect.retry_locked(transaction)
        except BaseException:
            self._close()
            raise
        self._close()
        return report

    def _apply(self, people_sample: int) -> Dict[str, Any]:
        customer = self._read_customer()
        decision = self._prepare_managed(customer)
        report = self._report(decision, people_sample)

        params = {"customer": self.customer}
        before = self._conn.total_changes
        for object_type in self.scope:
            counts = report["summary"][object_type]
            if not (counts["added"] or counts["updated"] or counts["removed"]):
                continue
            for statement in _apply_statements(SPECS[object_type], self._dialect):
                self._conn.execute(statement, params)
        report["rows_written"] = self._conn.total_changes - before

        finished_at = self.store.now()
        if self.device and self.device != customer["device"]:
            self._conn.execute(
                "UPDATE customers SET device = :device WHERE name = :customer",
                {"device": self.device, "customer": self.customer},
            )
        report["history_id"] = self._insert_history(
            "success", finished_at, report["changed"], report["rows_written"], report, None
        )
        for object_type in self.scope:
            self._conn.execute(
                "INSERT INTO sync_state (customer, object_type, synced_at, history_id) "
                "VALUES (:customer, :object_type, :synced_at, :history_id) "
                "ON CONFLICT (customer, object_type) DO UPDATE SET "
                "synced_at = excluded.synced_at, history_id = excluded.history_id",
                {
                    "customer": self.customer,
                    "object_type": object_type,
                    "synced_at": finished_at,
                    "history_id": report["history_id"],
                },
            )
        return report

    def abort(self, error: str) -> Optional[int]:
        """Record a failed sync and change no data; return the history row id."""
        if self.finished:
            return None
        self._close()
        return self.store.record_failed_sync(
            self.customer, self.scope, self.device, self.started_at, error
        )

    def discard(self) -> None:
        """Close the session without writing anything (check mode)."""
        self._close()

    # -- internals ------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.finished:
            raise InventoryError("sync session is already committed, aborted or discarded")

    def _close(self) -> None:
        if not self.finished:
            self.finished = True
            self._conn.close()

    def _begin_staging(self) -> None:
        if not self._conn.in_transaction:
            self._conn.execute(self._dialect.begin_stage_sql)

    def _end_staging(self) -> None:
        self._begin_staging()
        for object_type in self.scope:
            if object_type in self._unfinished:
                self._finish_staging(SPECS[object_type])
                self._unfinished.discard(object_type)
            count = self._scalar(f"SELECT COUNT(*) FROM {_staged(SPECS[object_type].table)}", {})
            self.staged[object_type] = count
            self.duplicates[object_type] = self._appended[object_type] - count
        self._conn.execute("COMMIT")

    def _finish_staging(self, spec: TableSpec) -> None:
        """Index the staged rows of one type and keep the last copy of a repeated object.

        A repeated page (or an object listed twice) replaces the earlier copy: its row and
        the links of its page win. Link rows listed twice are kept once.
        """
        table = _staged(spec.table)
        self._conn.execute(f"CREATE INDEX IF NOT EXISTS {table}_id ON {table} (id)")
        total = self._scalar(f"SELECT COUNT(*) FROM {table}", {})
        distinct = self._scalar(f"SELECT COUNT(DISTINCT id) FROM {table}", {})
        if distinct < total:
            self._conn.execute(
                f"DELETE FROM {table} WHERE rowid NOT IN "
                f"(SELECT MAX(rowid) FROM {table} GROUP BY id)"
            )
        for link in spec.links:
            links = _staged(link.table)
            self._conn.execute(
                f"CREATE INDEX IF NOT EXISTS {links}_owner ON {links} "
                f"({link.owner}, {link.target})"
            )
            if distinct < total:
                self._conn.execute(
                    f"DELETE FROM {links} WHERE page <> "
                    f"(SELECT s.page FROM {table} s WHERE s.id = {links}.{link.owner})"
                )
            repeated = self._conn.execute(
                f"SELECT 1 FROM {links} GROUP BY {link.owner}, {link.target} "
                "HAVING COUNT(*) > 1 LIMIT 1"
            ).fetchone()
            if repeated is not None:
                self._conn.execute(
                    f"DELETE FROM {links} WHERE rowid NOT IN (SELECT MIN(rowid) FROM {links} "
                    f"GROUP BY {link.owner}, {link.target})"
                )

    def _staging_transaction(self) -> _Transaction:
        return _Transaction(self._conn, self._dialect.begin_stage_sql)

    def _create_staging_tables(self) -> None:
        for object_type in self.scope:
            spec = SPECS[object_type]
            self._conn.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {_changes(spec.table)} "
                "(id TEXT NOT NULL PRIMARY KEY, change TEXT NOT NULL) WITHOUT ROWID"
            )
            columns = ", ".join(f"{name} {sql_type}" for name, sql_type in spec.columns)
            self._conn.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {_staged(spec.table)} "
                f"(customer TEXT NOT NULL, id TEXT NOT NULL, {columns}, page INTEGER NOT NULL)"
            )
            for link in spec.links:
                self._conn.execute(
                    f"CREATE TEMPORARY TABLE IF NOT EXISTS {_staged(link.table)} "
                    f"(customer TEXT NOT NULL, {link.owner} TEXT NOT NULL, "
                    f"{link.target} TEXT NOT NULL, "
                    "page INTEGER NOT NULL)"
                )

    def _read_customer(self) -> Dict[str, Any]:
        row = self._conn.execute(
            "SELECT name, default_subscription_id, default_site_url, device FROM customers "
            "WHERE name = :customer",
            {"customer": self.customer},
        ).fetchone()
        if row is None:
            raise InventoryError(f"customer '{self.customer}' was deleted during the sync")
        return dict(row)

    def _source(self, table: str, object_type: str) -> str:
        """Return the table that contains the post-sync state of ``table``."""
        return _staged(table) if object_type in self.scope else table

    def _prepare_managed(self, customer: Mapping[str, Any]) -> licensing.DefaultsDecision:
        """Decide the defaults and set the managed flag of every staged license."""
        source = self._source("licenses", "licenses")
        rows = [
            dict(row)
            for row in self._conn.execute(
                f"SELECT id, subscription_id, site_url FROM {source} WHERE customer = :customer",
                {"customer": self.customer},
            )
        ]
        decision = licensing.effective_defaults(
            rows, customer["default_subscription_id"], customer["default_site_url"]
        )
        if "licenses" in self.scope:
            self._conn.executemany(
                "UPDATE s_licenses SET managed = :managed WHERE id = :id",
                [
                    {"id": row["id"], "managed": int(licensing.is_managed(row, decision))}
                    for row in rows
                ],
            )
        return decision

    def _scalar(self, sql: str, params: Optional[Mapping[str, Any]] = None) -> int:
        return int(self._conn.execute(sql, params or {"customer": self.customer}).fetchone()[0])

    def _report(self, decision: licensing.DefaultsDecision, people_sample: int) -> Dict[str, Any]:
        summary = {}
        for object_type in self.scope:
            spec = SPECS[object_type]
            for statement in _collect_changes_statements(spec, self._dialect):
                self._conn.execute(statement, {"customer": self.customer})
            summary[object_type] = self._summarize(spec)
        changed = any(
            counts["added"] or counts["updated"] or counts["removed"] for counts in summary.values()
        )
        licenses_source = self._source("licenses", "licenses")
        unsubscribed = [
            {"id": row["id"], "name": row["name"]}
            for row in self._conn.execute(
                f"SELECT id, name FROM {licenses_source} WHERE customer = :customer "
                "AND subscription_id IS NULL ORDER BY name, id",
                {"customer": self.customer},
            )
        ]
        report: Dict[str, Any] = {
            "changed": changed,
            "scope": list(self.scope),
            "summary": summary,
            "defaults": decision.as_dict(),
            "warnings": decision.warnings(self.customer),
            "unsubscribed_licenses": unsubscribed,
            "users_outside_defaults": self._users_outside_defaults(people_sample),
            "staged": dict(self.staged),
            "duplicates": dict(self.duplicates),
        }
        if "licenses" in self.scope:
            report["licenses"] = self._license_changes()
        if "people" in self.scope:
            report["people"] = self._people_changes(people_sample)
        return report

    def _summarize(self, spec: TableSpec) -> Dict[str, int]:
        counts = {"added": 0, "updated": 0, "removed": 0}
        for row in self._conn.execute(
            f"SELECT change, COUNT(*) FROM {_changes(spec.table)} GROUP BY change"
        ):
            counts[row[0]] = int(row[1])
        staged = self._scalar(f"SELECT COUNT(*) FROM {_staged(spec.table)}", {})
        counts["unchanged"] = staged - counts["added"] - counts["updated"]
        return counts

    def _license_changes(self) -> Dict[str, Any]:
        spec = SPECS["licenses"]
        params = {"customer": self.customer}
        added = [
            license_dict(row)
            for row in self._conn.execute(f"SELECT s.* {_added_sql(spec)} ORDER BY name, id")
        ]
        removed = [
            license_dict(row)
            for row in self._conn.execute(
                f"SELECT m.* {_removed_sql(spec)} ORDER BY name, id", params
            )
        ]
        updated = []
        changed_ids = [
            row[0] for row in self._conn.execute(_updated_ids_sql(spec, self._dialect), params)
        ]
        for license_id in sorted(changed_ids):
            key = {"customer": self.customer, "id": license_id}
            before = self._conn.execute(
                "SELECT * FROM licenses WHERE customer = :customer AND id = :id", key
            ).fetchone()
            after = self._conn.execute("SELECT * FROM s_licenses WHERE id = :id", key).fetchone()
            updated.append({"before": license_dict(before), "after": license_dict(after)})
        return {"added": added, "updated": updated, "removed": removed}

    def _people_changes(self, limit: int) -> Dict[str, Any]:
        """List up to ``limit`` changed people with their license changes."""
        params = {"limit": limit + 1}
        picked: List[Tuple[str, str]] = []
        for change in ("added", "removed", "updated"):
            rows = self._conn.execute(
                f"SELECT id FROM {_changes('people')} WHERE change = :change "
                "ORDER BY id LIMIT :limit",
                dict(params, change=change),
            )
            for row in rows:
                picked.append((change, row[0]))
        truncated = len(picked) > limit
        changes = [self._person_change(change, person_id) for change, person_id in picked[:limit]]
        return {"changes": changes, "truncated": truncated}

    def _person_change(self, change: str, person_id: str) -> Dict[str, Any]:
        key = {"customer": self.customer, "id": person_id}
        columns = "id, email, display_name, location_id"
        before = self._conn.execute(
            f"SELECT {columns} FROM people WHERE customer = :customer AND id = :id", key
        ).fetchone()
        after = self._conn.execute(f"SELECT {columns} FROM s_people WHERE id = :id", key).fetchone()
        current = after if after is not None else before
        old_ids = self._person_license_ids("person_licenses", person_id, main=True)
        new_ids = self._person_license_ids("s_person_licenses", person_id, main=False)
        result = {
            "change": change,
            "id": person_id,
            "email": current["email"],
            "display_name": current["display_name"],
            "licenses_added": sorted(set(new_ids) - set(old_ids)),
            "licenses_removed": sorted(set(old_ids) - set(new_ids)),
        }
        if before is not None and after is not None:
            result["fields"] = [
                name
                for name in ("email", "display_name", "location_id")
                if before[name] != after[name]
            ]
        return result

    def _person_license_ids(self, table: str, person_id: str, main: bool) -> List[str]:
        condition = "customer = :customer AND " if main else ""
        return [
            row[0]
            for row in self._conn.execute(
                f"SELECT license_id FROM {table} WHERE {condition}person_id = :id",
                {"customer": self.customer, "id": person_id},
            )
        ]

    def _users_outside_defaults(self, limit: int) -> Dict[str, Any]:
        """Count people holding subscribed licenses that are not managed, with a sample."""
        return query_users_outside_defaults(
            self._conn,
            self.customer,
            limit,
            people=self._source("people", "people"),
            links=self._source("person_licenses", "people"),
            licenses=self._source("licenses", "licenses"),
        )

    def _insert_history(
        self,
        outcome: str,
        finished_at: str,
        changed: bool,
        rows_written: int,
        report: Optional[Mapping[str, Any]],
        error: Optional[str],
    ) -> int:
        return insert_history(
            self._conn,
            customer=self.customer,
            scope=self.scope,
            device=self.device,
            started_at=self.started_at,
            finished_at=finished_at,
            outcome=outcome,
            changed=changed,
            rows_written=rows_written,
            summary=report["summary"] if report else None,
            error=error,
        )


class _Transaction:
    """Deferred transaction for staging writes (TEMP tables only, so no inventory lock)."""

    def __init__(self, connection: sqlite3.Connection, begin_sql: str):
        self._conn = connection
        self._begin_sql = begin_sql
        self._own = False

    def __enter__(self) -> sqlite3.Connection:
        if not self._conn.in_transaction:
            self._conn.execute(self._begin_sql)
            self._own = True
        return self._conn

    def __exit__(self, exc_type, exc, traceback) -> None:
        if not self._own:
            return
        if exc is None:
            self._conn.execute("COMMIT")
        else:
            self._conn.execute("ROLLBACK")


def query_users_outside_defaults(
    connection: sqlite3.Connection,
    customer: str,
    limit: int,
    people: str = "people",
    links: str = "person_licenses",
    licenses: str = "licenses",
) -> Dict[str, Any]:
    """Count people with subscribed, unmanaged licenses; sample up to ``limit`` of them.

    The table names select the inventory or the staged copies of a running sync.
    """
    outside = (
        f"FROM {links} pl JOIN {licenses} l ON l.customer = pl.customer AND l.id = pl.license_id "
        "WHERE pl.customer = :customer AND l.managed = 0 AND l.subscription_id IS NOT NULL"
    )
    params: Dict[str, Any] = {"customer": customer, "limit": limit}
    count = int(
        connection.execute(f"SELECT COUNT(DISTINCT pl.person_id) {outside}", params).fetchone()[0]
    )
    sample: List[Dict[str, Any]] = []
    by_person: Dict[str, Dict[str, Any]] = {}
    rows = connection.execute(
        f"SELECT pl.person_id, l.id AS license_id, l.name, l.subscription_id "
        f"{outside} AND pl.person_id IN (SELECT DISTINCT pl.person_id {outside} "
        "ORDER BY pl.person_id LIMIT :limit) "
        "ORDER BY pl.person_id, l.name, l.id",
        params,
    )
    for row in rows:
        entry = by_person.get(row["person_id"])
        if entry is None:
            entry = {"id": row["person_id"], "email": None, "licenses": []}
            by_person[row["person_id"]] = entry
            sample.append(entry)
        entry["licenses"].append(
            {
                "id": row["license_id"],
                "name": row["name"],
                "subscription_id": row["subscription_id"],
            }
        )
    _fill_emails(connection, people, customer, sample)
    return {"count": count, "sample": sample}


def _fill_emails(
    connection: sqlite3.Connection, people: str, customer: str, sample: List[Dict[str, Any]]
) -> None:
    for entry in sample:
        row = connection.execute(
            f"SELECT email FROM {people} WHERE customer = :customer AND id = :id",
            {"customer": customer, "id": entry["id"]},
        ).fetchone()
        entry["email"] = row["email"] if row is not None else None


def insert_history(
    connection: sqlite3.Connection,
    *,
    customer: str,
    scope: Sequence[str],
    device: Optional[str],
    started_at: str,
    finished_at: str,
    outcome: str,
    changed: bool,
    rows_written: int,
    summary: Optional[Mapping[str, Any]],
    error: Optional[str],
) -> int:
    """Insert one sync-history row inside the caller's transaction; return its id."""
    cursor = connection.execute(
        "INSERT INTO sync_history (customer, scope, device, started_at, finished_at, outcome, "
        "changed, rows_written, summary, error) VALUES (:customer, :scope, :device, "
        ":started_at, :finished_at, :outcome, :changed, :rows_written, :summary, :error)",
        {
            "customer": customer,
            "scope": ",".join(scope),
            "device": device,
            "started_at": started_at,
            "finished_at": finished_at,
            "outcome": outcome,
            "changed": int(changed),
            "rows_written": rows_written,
            "summary": json.dumps(summary, sort_keys=True) if summary is not None else None,
            "error": error[:ERROR_TEXT_LIMIT] if error else None,
        },
    )
    return int(cursor.lastrowid)
