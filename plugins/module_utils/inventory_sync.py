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

import hashlib
import json
import sqlite3
import sys
import zlib
from array import array
from bisect import bisect_left
from operator import itemgetter
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
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
# SQLite before 3.32 accepts at most 999 parameters in one statement.
MAX_STATEMENT_PARAMETERS = 999
ERROR_TEXT_LIMIT = 2000

T = TypeVar("T")


class LinkSpec(NamedTuple):
    """A many-to-many table owned by one object type (for example person_licenses).

    ``table`` is the view that shows the links with their ids; ``keys`` stores them as
    (owner key, target key) pairs (see inventory_schema, schema 4).
    """

    table: str
    owner: str
    target: str
    keys: str


class TableSpec(NamedTuple):
    """One object type: its table, data columns with SQL types, and link tables.

    ``extra`` columns are stored with each row but are not data: they never make a row
    count as changed (the people fingerprint). ``key`` is the integer key column that the
    link tables use to refer to a row (types with links only).
    """

    table: str
    columns: Tuple[Tuple[str, str], ...]
    links: Tuple[LinkSpec, ...] = ()
    extra: Tuple[Tuple[str, str], ...] = ()
    key: Optional[str] = None

    @property
    def column_names(self) -> Tuple[str, ...]:
        return tuple(column[0] for column in self.columns)

    @property
    def extra_names(self) -> Tuple[str, ...]:
        return tuple(column[0] for column in self.extra)


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
            LinkSpec("person_licenses", "person_id", "license_id", "person_license_keys"),
            LinkSpec("person_roles", "person_id", "role_id", "person_role_keys"),
        ),
        (("fingerprint", "INTEGER"),),
        "person_key",
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
        (LinkSpec("workspace_licenses", "workspace_id", "license_id", "workspace_license_keys"),),
        key="workspace_key",
    ),
}


def org_owner(
    connection: sqlite3.Connection, org_id: str, other_than: Optional[str] = None
) -> Optional[str]:
    """Return the first customer (by name) whose org id names the org ``org_id``, or None.

    Org ids are compared with licensing.org_key, so the base64 form and the UUID alone of
    one org match. ``other_than`` names a customer to leave out.
    """
    key = licensing.org_key(org_id)
    rows = connection.execute(
        "SELECT name, org_id FROM customers WHERE org_id IS NOT NULL ORDER BY name"
    ).fetchall()
    for name, stored in rows:
        if name != other_than and licensing.org_key(stored) == key:
            return str(name)
    return None


def org_taken_message(customer: str, org_id: str, owner: str) -> str:
    """Return the error for a customer without org id whose sync read the org of ``owner``."""
    return (
        f"customer '{customer}' has no org_id, and the org that this sync read, '{org_id}' "
        "(the token's own org, or the org_id option), is the org of customer "
        f"'{owner}'. One Webex org is one customer: give customer '{customer}' its own org id "
        "with ucops.webex.webex_customer (webex_org_id in the playbooks' inventory), or sync "
        f"customer '{owner}' instead"
    )


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
    return {"id": _required_id(item, "role"), "name": _text(item, "name", "role")}


def person_row(item: Mapping[str, Any]) -> Dict[str, Any]:
    emails = _list(item, "emails", "person")
    email = emails[0] if emails else _text(item, "email", "person")
    return {
        "id": _required_id(item, "person"),
        "email": _checked_text(email, "emails", "person", item),
        "display_name": _text(item, "displayName", "person"),
        "location_id": _text(item, "locationId", "person"),
    }


def person_link_ids(item: Mapping[str, Any], field: str) -> List[str]:
    """Return the sorted distinct ids of a person's ``licenses`` or ``roles``."""
    return sorted({str(value) for value in _list(item, field, "person")})


def location_row(item: Mapping[str, Any]) -> Dict[str, Any]:
    address = _object(item, "address", "location")
    return {
        "id": _required_id(item, "location"),
        "name": _text(item, "name", "location"),
        "time_zone": _text(item, "timeZone", "location"),
        "city": _checked_text(address.get("city"), "address.city", "location", item),
        "state": _checked_text(address.get("state"), "address.state", "location", item),
        "country": _checked_text(address.get("country"), "address.country", "location", item),
    }


def workspace_row(item: Mapping[str, Any]) -> Dict[str, Any]:
    calling = _object(item, "calling", "workspace")
    return {
        "id": _required_id(item, "workspace"),
        "display_name": _text(item, "displayName", "workspace"),
        "location_id": _text(item, "locationId", "workspace"),
        "calling_type": _checked_text(calling.get("type"), "calling.type", "workspace", item),
    }


def workspace_license_ids(item: Mapping[str, Any]) -> List[str]:
    calling = _object(item, "calling", "workspace")
    webex_calling = _object(calling, "webexCalling", "workspace", owner=item)
    return [str(value) for value in _list(webex_calling, "licenses", "workspace", owner=item)]


# Checks of the fields the inventory reads. An API object with a field of another JSON
# type (a string where a list belongs, say) fails the sync with a message naming it,
# instead of storing one-letter ids or failing inside the database.


def _field_error(kind: str, owner: Mapping[str, Any], field: str, value: Any, expected: str):
    return ValueError(
        f"{kind} '{owner.get('id')}' has {field} {value!r}, which is not {expected}. The Webex "
        "API returned an object that the inventory cannot read; run the sync again, and "
        "report it to Webex support with the id if it repeats"
    )


# The kind of object that each staged type holds, as messages name it.
OBJECT_KINDS = {
    "licenses": "license",
    "roles": "role",
    "people": "person",
    "locations": "location",
    "workspaces": "workspace",
}


def _is_unencodable(value: Any) -> bool:
    """Tell whether ``value`` is text that UTF-8 cannot hold (a lone surrogate)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _unencodable_error(
    object_type: str,
    rows: Sequence[Mapping[str, Any]],
    links: Mapping[str, Sequence[int]],
    new_codes: Sequence[Tuple[int, str]],
) -> ValueError:
    """Name the object and field of a page that SQLite could not store as UTF-8.

    JSON can carry a lone UTF-16 surrogate (such as \\ud800) that no UTF-8 text holds.
    Such pages are rare, so they are searched only after the insert failed.
    """
    kind = OBJECT_KINDS[object_type]
    for row in rows:
        for field, value in row.items():
            if _is_unencodable(value):
                return _bad_text_error(kind, row, field, value)
    bad_codes = {code: value for code, value in new_codes if _is_unencodable(value)}
    for link_values in links.values():
        for position in range(0, len(link_values), 2):
            value = bad_codes.get(link_values[position + 1])
            if value is None:
                continue
            owner = next((row for row in rows if row.get("seq") == link_values[position]), {})
            return _bad_text_error(kind, owner, "a license or role id", value)
    return ValueError(
        f"a page of {object_type} contains text that is not valid Unicode, which the inventory "
        "cannot store. Run the sync again, and report it to Webex support if it repeats"
    )


def check_storable_text(kind: str, owner: Mapping[str, Any], fields: Mapping[str, Any]) -> None:
    """Raise ValueError naming the first of ``fields`` that UTF-8 cannot hold.

    A value may be a text or a list of texts (such as a person's license ids).
    """
    for field, value in fields.items():
        for entry in value if isinstance(value, list) else [value]:
            if _is_unencodable(entry):
                raise _bad_text_error(kind, owner, field, entry)


def _bad_text_error(kind: str, owner: Mapping[str, Any], field: str, value: str) -> ValueError:
    owner_id = owner.get("id")
    shown_id = ascii(owner_id) if _is_unencodable(owner_id) else f"'{owner_id}'"
    return ValueError(
        f"{kind} {shown_id} has {field} {ascii(value)}, which is not valid Unicode text (it "
        "holds a lone surrogate), so the inventory cannot store it. Correct the value in "
        "Control Hub, or report it to Webex support with the id, then run the task again"
    )


def _text(item: Mapping[str, Any], field: str, kind: str) -> Optional[str]:
    return _checked_text(item.get(field), field, kind, item)


def _checked_text(value: Any, field: str, kind: str, owner: Mapping[str, Any]) -> Optional[str]:
    """Return a text field, numbers as text; None stays None."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise _field_error(kind, owner, field, value, "text")


def _object(
    item: Mapping[str, Any], field: str, kind: str, owner: Optional[Mapping[str, Any]] = None
) -> Mapping[str, Any]:
    value = item.get(field)
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    raise _field_error(kind, owner or item, field, value, "an object")


def _list(
    item: Mapping[str, Any], field: str, kind: str, owner: Optional[Mapping[str, Any]] = None
) -> list:
    """Return a list of ids or texts; None is an empty list."""
    value = item.get(field)
    if value is None:
        return []
    if isinstance(value, list) and all(
        isinstance(entry, (str, int)) and not isinstance(entry, bool) for entry in value
    ):
        return value
    raise _field_error(kind, owner or item, field, value, "a list of ids or texts")


# The format of the records of people pages (table people_pages). A record keeps what the
# reading of a page gave: person_row, person_link_ids, _last_copies, person_fingerprint and
# licensing.first_org_id. Raise this number whenever one of them changes what it returns,
# so that records written before are no longer used (test_people_pages.py pins it).
PEOPLE_PAGE_FORMAT = 1


def person_fingerprint(
    row: Mapping[str, Any], license_ids: Sequence[str], role_ids: Sequence[str]
) -> int:
    """Return a signed 64-bit digest of a person as the inventory stores it.

    ``row`` is a ``person_row``; ``license_ids`` and ``role_ids`` are sorted and contain no
    repeats. The digest covers the id, so equal digests mean the same person with the same
    fields and links (unless two 64-bit digests collide).
    """
    # repr() of a tuple of strings, None and tuples is unambiguous, so no separator inside
    # a value can make two different people look alike.
    state = (
        row["id"],
        row["email"],
        row["display_name"],
        row["location_id"],
        tuple(license_ids),
        tuple(role_ids),
    )
    return _digest64(repr(state))


def id_digest(object_id: str) -> int:
    """Return a signed 64-bit digest of an object id (to remember which ids were seen).

    The digests are compared only within one process, so Python's own string hash (salted
    per process) serves where it is 64 bits wide.
    """
    if _HASH_IS_64_BITS:
        return hash(object_id)
    return _digest64(object_id)


_HASH_IS_64_BITS = sys.hash_info.width >= 64


def _digest64(text: str) -> int:
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class DigestSet:
    """A sorted array of 64-bit digests with a flag per entry for the digests matched.

    An array with binary search keeps 100,000 people in about 0.9 MB, where a Python set
    needs several times more.
    """

    def __init__(self, values: Iterable[int] = ()) -> None:
        self._values = array("q", sorted(values))
        self._matched = bytearray(len(self._values))

    def __len__(self) -> int:
        return len(self._values)

    def _index(self, value: int) -> int:
        index = bisect_left(self._values, value)
        if index < len(self._values) and self._values[index] == value:
            return index
        return -1

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and self._index(value) >= 0

    def match(self, value: int) -> bool:
        """Flag ``value`` as matched and return True when the set contains it."""
        index = self._index(value)
        if index < 0:
            return False
        self._matched[index] = 1
        return True

    def was_matched(self, value: int) -> bool:
        index = self._index(value)
        return index >= 0 and bool(self._matched[index])

    def matched_count(self) -> int:
        return self._matched.count(1)

    def match_all(self, values: Iterable[int]) -> bool:
        """Flag every one of ``values`` as matched and return True when the set contains
        them all. Otherwise flag none and return False."""
        indexes = []
        for value in values:
            index = self._index(value)
            if index < 0:
                return False
            indexes.append(index)
        matched = self._matched
        for index in indexes:
            matched[index] = 1
        return True


class PeoplePageRecord:
    """The reading of one page of people, stored under the digest of the page body
    (table people_pages): how many people it listed, how many of them had a licenses field
    and a location, its first orgId, and each person's id and fingerprint in page order.

    The body decodes to the same people every time, so the record holds as long as each
    of those fingerprints is still stored (see SyncSession.stage_people). A record that
    cannot be read (``damaged``) is never used, and the next sync that lists its page
    writes it again.
    """

    __slots__ = (
        "listed", "with_licenses", "located", "org_id", "_ids", "_fingerprints", "damaged",
    )

    def __init__(
        self,
        listed: int,
        with_licenses: int,
        located: int,
        org_id: Optional[str],
        ids: bytes,
        fingerprints: bytes,
    ) -> None:
        self.listed = listed
        self.with_licenses = with_licenses
        self.located = located
        self.org_id = org_id
        self._ids = ids
        self._fingerprints = fingerprints
        self.damaged = not (
            isinstance(ids, bytes)
            and isinstance(fingerprints, bytes)
            and isinstance(listed, int)
            and len(fingerprints) == 8 * listed
            and listed > 0
        )

    @property
    def ids(self) -> List[str]:
        """The ids of the page's people in page order, or [] for a damaged record.

        The ids are decoded on each use and not kept, because a no-op sync of 100,000
        people would otherwise keep all their ids in memory until it ends.
        """
        if not self.damaged:
            try:
                ids = zlib.decompress(self._ids).decode("utf-8").split("\n")
            except (zlib.error, UnicodeDecodeError):
                ids = []
            if len(ids) == self.listed:
                return ids
            self.damaged = True
        return []

    def fingerprints(self) -> array:
        values = array("q")
        if not self.damaged:
            values.frombytes(self._fingerprints)
            if sys.byteorder != "little":
                values.byteswap()
        return values


def encode_people_page(
    ids: Sequence[str], fingerprints: Sequence[int]
) -> Optional[Tuple[bytes, bytes]]:
    """Return the stored form of a page's ids and fingerprints (see PeoplePageRecord).

    Return None when an id contains a line break, the separator of the stored ids."""
    text = "\n".join(ids)
    if text.count("\n") != max(len(ids) - 1, 0) or not ids:
        return None
    values = array("q", fingerprints)
    if sys.byteorder != "little":
        values.byteswap()
    return zlib.compress(text.encode("utf-8"), 1), values.tobytes()


class PeopleChangedError(InventoryError):
    """Stored people or license counts changed while a sync listed them; list them again.

    A sync does not stage people whose stored fingerprint equals the listed person. When
    such a person changes in the inventory before the commit (a license assignment, another
    sync), the sync no longer knows that person's listed state, so it writes nothing. The
    same holds for license counts that another task moved after the sync listed the
    licenses: writing the listed counts would undo that task's change.
    """


def _last_copies(entries: List[T], object_id: Callable[[T], str]) -> List[T]:
    """Drop the earlier copies of an object listed twice in one page, so the last copy wins.

    _finish_staging keeps the copy staged last. Dropping the earlier copies here as well
    keeps the people fingerprint check (stage_people) to one copy per person and page.
    """
    last = {object_id(entry): index for index, entry in enumerate(entries)}
    if len(last) == len(entries):
        return entries
    return [entry for index, entry in enumerate(entries) if last[object_id(entry)] == index]


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


def _some_ids(ids: Iterable[str], limit: int = 5) -> Tuple[int, str]:
    """Return the number of distinct ids and a text that names the first ``limit``."""
    distinct = sorted(set(ids))
    more = len(distinct) - limit
    return len(distinct), ", ".join(distinct[:limit]) + (f" and {more} more" if more > 0 else "")


def _staged(table: str) -> str:
    return "s_" + table


def _staged_keys(link: LinkSpec) -> str:
    """Return the TEMP table of staged (owner seq, target code) pairs behind view s_<table>."""
    return f"s_{link.table}_keys"


STAGED_CODES = "s_codes"
# New records of the pages of people that the sync listed (see SyncSession._note_people_page).
STAGED_PAGES = "s_people_pages"


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
        # Owners that are not stored are added, not updated. Their links are skipped before
        # the UNION has to collect them (every staged link, on a first sync).
        parts.append(
            f"SELECT s.{link.owner} AS id FROM {_staged(link.table)} s "
            f"WHERE EXISTS (SELECT 1 FROM {spec.table} o WHERE o.customer = :customer "
            f"AND o.id = s.{link.owner}) AND {_link_missing(link, 'm', link.table, 's')}"
        )
        # Only owners that are staged can count as updated, so only their links are read.
        parts.append(
            f"SELECT m.{link.owner} AS id FROM {link.table} m WHERE m.customer = :customer "
            f"AND m.{link.owner} IN (SELECT id FROM {_staged(spec.table)}) "
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


def _collect_changes_statements(
    spec: TableSpec, dialect: SQLiteDialect, removed: bool = True, stored: bool = True
) -> List[str]:
    """Build the statements that fill c_<table> with the added, removed and updated ids.

    With ``removed`` False the caller adds the removed ids itself (people, whose unchanged
    rows are not staged). With ``stored`` False the customer has no row of this type in
    the inventory (a first sync), so every staged row is added and nothing else is looked
    for.
    """
    changes = _changes(spec.table)
    if not stored:
        # In id order, so the inserts into c_<table> (keyed by id) stay local.
        return [
            f"DELETE FROM {changes}",
            f"INSERT INTO {changes} (id, change) SELECT s.id, 'added' "
            f"FROM {_staged(spec.table)} s ORDER BY s.id",
        ]
    statements = [
        f"DELETE FROM {changes}",
        f"INSERT INTO {changes} (id, change) SELECT s.id, 'added' {_added_sql(spec)} ORDER BY s.id",
    ]
    statements.append(
        f"INSERT INTO {changes} (id, change) SELECT x.id, 'updated' "
        f"FROM ({_updated_ids_sql(spec, dialect)}) x"
    )
    if removed:
        statements.append(
            f"INSERT INTO {changes} (id, change) SELECT m.id, 'removed' {_removed_sql(spec)}"
        )
    return statements


def _owner_keys(spec: TableSpec) -> str:
    """Return the TEMP table that maps the inventory key of each kept, changed owner to its
    staged copy. The commit fills it after it writes the owners."""
    return "k_" + spec.table


def _apply_statements(
    spec: TableSpec, dialect: SQLiteDialect, stored: bool = True
) -> List[Tuple[str, bool]]:
    """Build the statements that make the inventory equal to the staged rows.

    Returns ``(sql, writes_inventory)`` pairs; the other statements fill TEMP tables. They
    only visit the ids in c_<table> (see ``_collect_changes_statements``). With ``stored``
    False the customer has no row of this type (a first sync): every staged row is added,
    so nothing is deleted and the rows are not compared with stored ones.
    """
    columns = ("customer", "id") + spec.column_names + spec.extra_names
    column_list = ", ".join(columns)
    staged_list = ", ".join(f"s.{name}" for name in columns)
    updates = ", ".join(
        f"{name} = excluded.{name}" for name in spec.column_names + spec.extra_names
    )
    changes = _changes(spec.table)
    removed_ids = f"(SELECT id FROM {changes} WHERE change = 'removed')"
    kept_ids = f"(SELECT id FROM {changes} WHERE change <> 'removed')"
    statements: List[Tuple[str, bool]] = []
    if stored:
        for link in spec.links:
            statements.append(
                (
                    f"DELETE FROM {link.keys} WHERE {spec.key} IN (SELECT o.{spec.key} "
                    f"FROM {spec.table} o WHERE o.customer = :customer "
                    f"AND o.id IN {removed_ids})",
                    True,
                )
            )
        statements.append(
            (f"DELETE FROM {spec.table} WHERE customer = :customer AND id IN {removed_ids}", True)
        )
        # Rows are inserted in key order, which keeps the B-tree inserts local.
        statements.append(
            (
                f"INSERT INTO {spec.table} ({column_list}) SELECT {staged_list} "
                f"FROM {_staged(spec.table)} s WHERE s.id IN {kept_ids} "
                f"AND NOT EXISTS (SELECT 1 FROM {spec.table} m "
                "WHERE m.customer = s.customer AND m.id = s.id "
                f"AND NOT ({_rows_differ(spec, dialect, 's', 'm')})) "
                f"ORDER BY s.id ON CONFLICT (customer, id) DO UPDATE SET {updates}",
                True,
            )
        )
    else:
        statements.append(
            (
                f"INSERT INTO {spec.table} ({column_list}) SELECT {staged_list} "
                f"FROM {_staged(spec.table)} s ORDER BY s.id",
                True,
            )
        )
    if not spec.links:
        return statements
    owners = _owner_keys(spec)
    statements.append((f"DELETE FROM {owners}", False))
    kept_filter = f" WHERE s.id IN {kept_ids}" if stored else ""
    statements.append(
        (
            f"INSERT INTO {owners} (owner_key, seq) SELECT o.{spec.key}, s.seq "
            f"FROM {_staged(spec.table)} s JOIN {spec.table} o "
            f"ON o.customer = :customer AND o.id = s.id{kept_filter}",
            False,
        )
    )
    for link in spec.links:
        staged_pairs = (
            f"{owners} m JOIN {_staged_keys(link)} k ON k.seq = m.seq "
            f"JOIN {STAGED_CODES} c ON c.code = k.code"
        )
        if stored:
            statements.append(
                (
                    f"DELETE FROM {link.keys} WHERE {spec.key} IN "
                    f"(SELECT owner_key FROM {owners}) "
                    f"AND NOT EXISTS (SELECT 1 FROM {staged_pairs} "
                    f"WHERE m.owner_key = {link.keys}.{spec.key} "
                    f"AND c.target_key = {link.keys}.target_key)",
                    True,
                )
            )
        # In owner key order, so the pairs are appended near each other. A pair already
        # stored is skipped by the insert itself.
        statements.append(
            (
                f"INSERT INTO {link.keys} ({spec.key}, target_key) "
                f"SELECT m.owner_key, c.target_key FROM {staged_pairs} "
                f"WHERE true ORDER BY m.owner_key "
                f"ON CONFLICT ({spec.key}, target_key) DO NOTHING",
                True,
            )
        )
    return statements


# Statements that the commit runs once, before those of the first changed type with links.
# They give every staged license or role id its key in link_targets (usually all have one
# already) and copy those keys to the staged codes. Pairs as in _apply_statements.
LINK_TARGET_STATEMENTS: Tuple[Tuple[str, bool], ...] = (
    (
        f"INSERT INTO link_targets (customer, id) SELECT :customer, c.value "
        f"FROM {STAGED_CODES} c WHERE true ORDER BY c.value "
        "ON CONFLICT (customer, id) DO NOTHING",
        True,
    ),
    (
        f"UPDATE {STAGED_CODES} SET target_key = (SELECT t.target_key "
        f"FROM link_targets t WHERE t.customer = :customer "
        f"AND t.id = {STAGED_CODES}.value)",
        False,
    ),
)


def _refresh_extra_statements(spec: TableSpec, dialect: SQLiteDialect) -> List[str]:
    """Build the statements that store the staged extra columns of unchanged rows.

    A row whose data is unchanged keeps its place, but its extra columns (the people
    fingerprint, unknown after an upgrade or a license assignment) take the staged value.
    """
    statements = []
    for name in spec.extra_names:
        staged_value = (
            f"(SELECT s.{name} FROM {_staged(spec.table)} s WHERE s.id = {spec.table}.id)"
        )
        statements.append(
            f"UPDATE {spec.table} SET {name} = {staged_value} WHERE customer = :customer "
            f"AND id IN (SELECT id FROM {_staged(spec.table)}) "
            f"AND {dialect.distinct(f'{spec.table}.{name}', staged_value)}"
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
        # The org this sync read, stored on a customer without org id at commit (set by the
        # caller; see _record_org_id).
        self.org_id: Optional[str] = None
        self.started_at = store.now()
        self.staged: Dict[str, int] = {name: 0 for name in self.scope}
        self.duplicates: Dict[str, int] = {name: 0 for name in self.scope}
        # Rows appended per object type, and the types appended to since the staged
        # tables were last deduplicated and indexed (see _finish_staging).
        self._appended: Dict[str, int] = {name: 0 for name in self.scope}
        self._unfinished: set = set()
        # Every staged row gets the next sequence number, so a later copy of an object has
        # the higher number. Staged links refer to their owner by this number and to their
        # target (a license or role id) by a small code, so each link is two integers.
        self._seq = 0
        self._codes: Dict[str, int] = {}
        self._last_code = 0
        # The object types of which the customer had rows at the last comparison (_report).
        self._stored_types: set = set()
        self.finished = False
        self._dialect: SQLiteDialect = store.dialect
        # People: the fingerprints stored when the sync starts, and the digest of every id
        # the API listed. A person whose fingerprint is stored is not staged (see
        # stage_people); _removed_people uses both to find who left the org.
        self._known_people = DigestSet()
        self._people_seen = array("q")
        self._people_staged: set = set()
        # People listed with a "licenses" field; see _check_licenses_visible.
        self._people_with_licenses = 0
        # People and workspaces listed by this sync that are placed in a location.
        self._listed_located = 0
        self._people_seen_sorted: Optional[array] = None
        self._people_data_version: Optional[int] = None
        # Pages of people: the records stored when the sync starts, by digest. Then the
        # digest of every page this sync listed, True where a new record of it is staged in
        # STAGED_PAGES (a TEMP table, so that the records do not stay in memory). None when
        # a page came without digest: the stored records are then left as they are.
        self._known_pages: Dict[bytes, PeoplePageRecord] = {}
        self._listed_pages: Optional[Dict[bytes, bool]] = {}
        # Pages taken from their record without decoding (see stage_people).
        self.pages_reused = 0
        # Ids of listed licenses without totalUnits, which are stored with 0 units.
        self._licenses_without_total: List[str] = []
        # Ids of listed licenses with a negative totalUnits, also stored with 0 units.
        self._licenses_negative_total: List[str] = []
        # The stored license counts when the sync started (licenses in scope only).
        self._license_counts_at_start: Optional[List[Tuple[Any, ...]]] = None
        self._conn = self._dialect.retry_locked(self._dialect.connect)
        try:
            self._dialect.retry_locked(self._create_staging_tables)
            if "people" in self.scope:
                self._known_people = self._dialect.retry_locked(self._read_people_fingerprints)
                if self._known_people:
                    self._known_pages = self._dialect.retry_locked(self._read_people_pages)
            if "licenses" in self.scope:
                self._license_counts_at_start = self._dialect.retry_locked(
                    self._read_license_counts
                )
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
        self._check_stage("licenses")
        items = list(items)
        rows = [license_row(item) for item in items]
        self._licenses_without_total += [
            row["id"] for item, row in zip(items, rows) if item.get("totalUnits") is None
        ]
        self._licenses_negative_total += [
            row["id"] for item, row in zip(items, rows) if licensing.negative_total_units(item)
        ]
        return self._stage_all("licenses", rows, {})

    def stage_roles(self, items: Iterable[Mapping[str, Any]]) -> int:
        """Stage role objects of ``GET /v1/roles``."""
        self._check_stage("roles")
        return self._stage_all("roles", [role_row(item) for item in items], {})

    @property
    def known_pages(self) -> Mapping[bytes, PeoplePageRecord]:
        """The records of people pages stored when the sync started, by page digest."""
        return self._known_pages

    def stage_people(self, items: Any) -> int:
        """Stage one page of person objects with their license and role ids.

        A person whose fingerprint equals the one stored in the inventory is unchanged:
        only its id digest is kept, nothing is staged. Returns how many were given.

        ``items`` may carry the ``digest`` of the page body (fetch_process.DigestedItems);
        the sync then records what it read from the page under that digest. A page that
        comes undecoded with its record (fetch_process.KnownPage) is taken from the record
        when every person it lists is still stored with the recorded fingerprint, because
        decoding the page would find the same people. Otherwise it is decoded and staged
        as usual.
        """
        self._check_stage("people")
        record = getattr(items, "record", None)
        if isinstance(record, PeoplePageRecord):
            if self._take_known_page(record):
                self._note_people_page(items.digest, None)
                return record.listed
            items = items.decode()
        digest = getattr(items, "digest", None)
        # Every person is converted before any state changes, so an invalid person (no id)
        # leaves the session as it was.
        prepared = []
        with_licenses = 0
        located = 0
        for item in items:
            row = person_row(item)
            with_licenses += "licenses" in item
            located += row["location_id"] is not None
            license_ids = person_link_ids(item, "licenses")
            role_ids = person_link_ids(item, "roles")
            prepared.append((row, license_ids, role_ids))
        listed = len(prepared)
        self._people_with_licenses += with_licenses
        self._listed_located += located
        prepared = _last_copies(prepared, lambda entry: entry[0]["id"])
        rows = []
        # Flat lists of (owner seq, target code) pairs.
        license_links: List[int] = []
        role_links: List[int] = []
        codes = self._codes
        new_codes: List[Tuple[int, str]] = []
        last_code = self._last_code
        seq = self._seq
        fingerprints = []
        for row, license_ids, role_ids in prepared:
            fingerprint = person_fingerprint(row, license_ids, role_ids)
            fingerprints.append(fingerprint)
            person = id_digest(row["id"])
            self._people_seen.append(person)
            if self._known_people.match(fingerprint) and person not in self._people_staged:
                continue
            if self._known_people:
                # A later copy of a person staged earlier must be staged too: the last
                # copy wins (see _finish_staging). Without stored people nothing can match.
                self._people_staged.add(person)
            seq += 1
            row["seq"] = seq
            row["fingerprint"] = fingerprint
            rows.append(row)
            for target_ids, links in ((license_ids, license_links), (role_ids, role_links)):
                for target_id in target_ids:
                    code = codes.get(target_id)
                    if code is None:
                        last_code += 1
                        code = codes[target_id] = last_code
                        new_codes.append((code, target_id))
                    links += (seq, code)
        self._seq = seq
        self._last_code = last_code
        links = {"person_licenses": license_links, "person_roles": role_links}
        self._stage("people", rows, links, new_codes)
        self._appended["people"] += listed
        self._unfinished.add("people")
        self._people_seen_sorted = None
        if digest is None:
            self._listed_pages = None
        elif digest in self._known_pages and not self._known_pages[digest].damaged:
            self._note_people_page(digest, None)
        elif listed == len(prepared) and all(isinstance(item.get("id"), str) for item in items):
            # A page that lists a person twice, or an id that is not text, gets no record.
            encoded = encode_people_page([entry[0]["id"] for entry in prepared], fingerprints)
            if encoded is not None:
                self._note_people_page(
                    digest,
                    (listed, with_licenses, located, licensing.first_org_id(items)) + encoded,
                )
        return listed

    def _take_known_page(self, record: PeoplePageRecord) -> bool:
        """Take a page of people as read from its record and return True.

        Return False, and change nothing, when a person of the page is not stored with the
        recorded fingerprint, or when this sync staged one of them from an earlier page,
        because the last copy must win."""
        ids = record.ids
        if not self._known_people or record.damaged:
            return False
        staged = self._people_staged
        if staged and any(id_digest(person_id) in staged for person_id in ids):
            return False
        if not self._known_people.match_all(record.fingerprints()):
            return False
        self._people_seen.extend(id_digest(person_id) for person_id in ids)
        self._people_with_licenses += record.with_licenses
        self._listed_located += record.located
        self._appended["people"] += record.listed
        self._people_seen_sorted = None
        self.pages_reused += 1
        return True

    def _note_people_page(self, digest: bytes, values: Optional[tuple]) -> None:
        """Record that a page was listed, and stage ``values`` as its new record.

        ``values`` is None when the stored record is still valid. Of a page listed twice,
        the first copy counts."""
        listed = self._listed_pages
        if listed is None or digest in listed:
            return
        listed[digest] = values is not None
        if values is not None:
            self._begin_staging()
            self._conn.execute(
                f"INSERT INTO {STAGED_PAGES} (digest, listed, with_licenses, located, org_id, "
                "ids, fingerprints) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (digest,) + values,
            )

    def stage_locations(self, items: Iterable[Mapping[str, Any]]) -> int:
        """Stage one page of location objects."""
        self._check_stage("locations")
        return self._stage_all("locations", [location_row(item) for item in items], {})

    def stage_workspaces(self, items: Iterable[Mapping[str, Any]]) -> int:
        """Stage one page of workspace objects with their calling license ids."""
        self._check_stage("workspaces")
        prepared = [(workspace_row(item), workspace_license_ids(item)) for item in items]
        listed = len(prepared)
        self._listed_located += sum(row["location_id"] is not None for row, _ids in prepared)
        rows = []
        license_links: List[int] = []
        codes = self._codes
        new_codes: List[Tuple[int, str]] = []
        last_code = self._last_code
        seq = self._seq
        for row, license_ids in _last_copies(prepared, lambda entry: entry[0]["id"]):
            seq += 1
            row["seq"] = seq
            rows.append(row)
            for license_id in dict.fromkeys(license_ids):
                code = codes.get(license_id)
                if code is None:
                    last_code += 1
                    code = codes[license_id] = last_code
                    new_codes.append((code, license_id))
                license_links += (seq, code)
        self._seq = seq
        self._last_code = last_code
        return self._stage_all(
            "workspaces", rows, {"workspace_licenses": license_links}, listed=listed,
            new_codes=new_codes,
        )

    def finish_type(self, object_type: str) -> None:
        """Index the staged rows of one type once its last page has been staged.

        Called while the next type's pages are fetched, this work overlaps the fetch instead
        of following the last page. A type staged again later is finished again by the commit.
        """
        self._check_stage(object_type)
        if object_type not in self._unfinished:
            return
        self._begin_staging()
        self._finish_staging(SPECS[object_type])
        self._unfinished.discard(object_type)

    def _check_stage(self, object_type: str) -> None:
        self._check_open()
        if object_type not in self.scope:
            raise ValueError(
                f"cannot stage {object_type}: not in the sync scope ({', '.join(self.scope)})"
            )

    def _stage_all(
        self,
        object_type: str,
        rows: List[Dict[str, Any]],
        links: Mapping[str, List[int]],
        listed: Optional[int] = None,
        new_codes: Sequence[Tuple[int, str]] = (),
    ) -> int:
        """Stage the rows and return how many objects the page listed.

        ``listed`` counts the page's objects before earlier copies of a repeated object were
        dropped. It defaults to the number of rows. Rows without a ``seq`` get the next
        sequence numbers here.
        """
        listed = len(rows) if listed is None else listed
        for row in rows:
            if "seq" not in row:
                self._seq += 1
                row["seq"] = self._seq
        self._stage(object_type, rows, links, new_codes)
        self._appended[object_type] += listed
        self._unfinished.add(object_type)
        return listed

    def _stage(
        self,
        object_type: str,
        rows: List[Dict[str, Any]],
        links: Mapping[str, List[int]],
        new_codes: Sequence[Tuple[int, str]] = (),
    ) -> None:
        """Append one page: rows with their ``seq``, and links as a flat list of
        (owner seq, target code) pairs."""
        spec = SPECS[object_type]
        columns = ("seq", "id") + spec.column_names + spec.extra_names
        values = itemgetter(*columns)
        customer = self.customer
        flat: List[Any] = []
        for row in rows:
            flat.extend(values(row))
            flat.append(customer)
        # Staging only appends: the staged rows of a type are indexed by id once, when the
        # type is finished (_finish_staging), because inserting into a B-tree keyed by long
        # random ids costs several times more. Links are keyed by (seq, code), which grows
        # with every page, so they are appended at the end of their B-tree. One transaction
        # spans all pages (TEMP tables only, so no inventory lock).
        self._begin_staging()
        try:
            self._insert_page(spec, columns, flat, links, new_codes)
        except UnicodeEncodeError as error:
            raise _unencodable_error(object_type, rows, links, new_codes) from error

    def _insert_page(
        self,
        spec: TableSpec,
        columns: Tuple[str, ...],
        flat: List[Any],
        links: Mapping[str, List[int]],
        new_codes: Sequence[Tuple[int, str]],
    ) -> None:
        if new_codes:
            # Outside the page's savepoint: a code is kept in self._codes even when the
            # page fails, so its row must stay too.
            self._conn.executemany(
                f"INSERT INTO {STAGED_CODES} (code, value) VALUES (?, ?)", new_codes
            )
        if not flat:
            return
        self._conn.execute("SAVEPOINT stage_page")
        try:
            self._append_rows(_staged(spec.table), columns + ("customer",), flat)
            for link in spec.links:
                link_values = links.get(link.table)
                if link_values:
                    self._append_rows(_staged_keys(link), ("seq", "code"), link_values)
        except BaseException:
            self._conn.execute("ROLLBACK TO stage_page")
            raise
        finally:
            self._conn.execute("RELEASE stage_page")

    def _append_rows(self, table: str, columns: Sequence[str], flat: Sequence[Any]) -> None:
        """Insert rows given as one flat list of values, many rows per statement.

        ``executemany`` runs one statement per row and releases the GIL around each of
        them. While the fetch thread is busy, taking the GIL back costs more than the
        insert, so one statement for many rows hands the GIL over once instead.
        """
        width = len(columns)
        step = (MAX_STATEMENT_PARAMETERS // width) * width
        head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
        row = "(" + ", ".join("?" * width) + ")"
        for start in range(0, len(flat), step):
            chunk = flat[start : start + step]
            self._conn.execute(head + ", ".join([row] * (len(chunk) // width)), chunk)

    # -- diff and commit ------------------------------------------------------------------

    def diff(self, people_sample: int = PEOPLE_SAMPLE_SIZE) -> Dict[str, Any]:
        """Compare the staged objects with the inventory without writing to it.

        Returns the report described in ``commit``, without ``rows_written``/``history_id``.
        """
        self._check_open()
        self._end_staging()
        self._check_licenses_visible()
        self._check_lists_not_emptied()
        customer = self.store.get_customer(self.customer)
        if customer is None:
            raise InventoryError(f"customer '{self.customer}' was deleted during the sync")
        with self._staging_transaction():
            decision = self._prepare_managed(customer)
        return self._report(decision, people_sample)

    def commit(
        self,
        people_sample: int = PEOPLE_SAMPLE_SIZE,
        on_write: Optional[Callable[[], None]] = None,
    ) -> Dict[str, Any]:
        """Write exactly the difference in one transaction and record a history row.

        ``on_write`` is called once the write transaction has begun, that is after any wait
        for the write lock of another writer.

        Returns ``{"changed", "summary": {type: {added, updated, removed, unchanged}},
        "licenses": {added, updated: [{before, after}], removed}, "people": {changes,
        truncated}, "defaults", "warnings", "unsubscribed_licenses",
        "users_outside_defaults": {count, sample}, "staged", "duplicates",
        "rows_written", "history_id"}``. Only the object types in scope are replaced.
        """
        self._check_open()
        self._end_staging()
        self._check_licenses_visible()
        self._check_lists_not_emptied()

        def transaction() -> Dict[str, Any]:
            self._conn.execute(self._dialect.begin_write_sql)
            try:
                if on_write is not None:
                    on_write()
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

    def _data_warnings(self) -> List[str]:
        """Describe listed data that the inventory stores with an assumption."""
        warnings = []
        repeated = {kind: count for kind, count in self.duplicates.items() if count > 0}
        if repeated:
            listed = ", ".join(f"{count} of {kind}" for kind, count in repeated.items())
            warnings.append(
                f"the Webex API listed objects of customer '{self.customer}' more than once "
                f"({listed}: the same id again, on a later page or the same one). The last "
                "copy of each was stored. A list that changes while it is read does this; if "
                "the inventory looks wrong, run the sync again"
            )
        if self._licenses_without_total:
            count, listed_ids = _some_ids(self._licenses_without_total)
            warnings.append(
                f"the Webex API listed {count} license(s) of customer '{self.customer}' "
                f"without totalUnits ({listed_ids}); they are stored with 0 units in total, so the "
                "inventory shows no units available for them. Run the sync again, and report "
                "it to Webex support with the license ids if it repeats"
            )
        if self._licenses_negative_total:
            count, listed_ids = _some_ids(self._licenses_negative_total)
            warnings.append(
                f"the Webex API listed {count} license(s) of customer '{self.customer}' "
                f"with a negative totalUnits ({listed_ids}), which is no number of units (it "
                "may mark an unlimited license, which the API does not document). They are "
                "stored with 0 units in total, so the inventory shows no units available for "
                "them and a minimum of available units flags them; totals of several "
                "customers do not subtract them. Report it to Webex support with the license "
                "ids"
            )
        return warnings

    def _read_license_counts(self) -> List[Tuple[Any, ...]]:
        return self._conn.execute(
            "SELECT id, total_units, consumed_units, consumed_by_users, consumed_by_workspaces "
            "FROM licenses WHERE customer = :customer ORDER BY id",
            {"customer": self.customer},
        ).fetchall()

    def _check_license_counts_unchanged(self) -> None:
        """Raise PeopleChangedError when another task changed the stored license counts
        since this sync started; called in the write transaction before anything is written.
        """
        if self._license_counts_at_start is None:
            return
        if self._read_license_counts() != self._license_counts_at_start:
            raise PeopleChangedError(
                f"the license counts of customer '{self.customer}' changed in the inventory "
                "during the sync (a license assignment or another sync), so the counts this "
                "sync listed may be older. Run the sync again"
            )

    def _apply(self, people_sample: int) -> Dict[str, Any]:
        self._check_license_counts_unchanged()
        customer = self._read_customer()
        decision = self._prepare_managed(customer)
        report = self._report(decision, people_sample)

        params = {"customer": self.customer}
        # Counted per statement: total_changes would also count the TEMP tables.
        written = 0
        targets_keyed = False
        for object_type in self.scope:
            spec = SPECS[object_type]
            counts = report["summary"][object_type]
            if counts["added"] or counts["updated"] or counts["removed"]:
                statements = _apply_statements(
                    spec, self._dialect, object_type in self._stored_types
                )
                if spec.links and not targets_keyed:
                    statements = list(LINK_TARGET_STATEMENTS) + statements
                    targets_keyed = True
                for statement, writes_inventory in statements:
                    cursor = self._conn.execute(statement, params)
                    if writes_inventory:
                        written += max(cursor.rowcount, 0)
            if (
                spec.extra
                and self._scalar(f"SELECT COUNT(*) FROM {_staged(spec.table)}", {})
                > counts["added"]
            ):
                # Rows staged but not added may keep stale extra columns. Added rows were
                # inserted with theirs.
                for statement in _refresh_extra_statements(spec, self._dialect):
                    written += max(self._conn.execute(statement, params).rowcount, 0)
        report["rows_written"] = written
        self._write_people_pages()

        if self._record_org_id(customer):
            report["changed"] = True
            report["org_id_recorded"] = self.org_id
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

    def _record_org_id(self, customer: Mapping[str, Any]) -> bool:
        """Store ``self.org_id`` on a customer that has no org id; return True if stored.

        A customer without org id would otherwise read whatever org its next token belongs
        to. Raises InventoryError when another customer has that org.
        """
        if not self.org_id or customer["org_id"]:
            return False
        owner = org_owner(self._conn, self.org_id, other_than=self.customer)
        if owner is not None:
            raise InventoryError(org_taken_message(self.customer, self.org_id, owner))
        self._conn.execute(
            "UPDATE customers SET org_id = :org_id WHERE name = :customer",
            {"org_id": self.org_id, "customer": self.customer},
        )
        return True

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
            if object_type == "people":
                count = self._count_people_seen()
            else:
                count = self._scalar(
                    f"SELECT COUNT(*) FROM {_staged(SPECS[object_type].table)}", {}
                )
            self.staged[object_type] = count
            self.duplicates[object_type] = self._appended[object_type] - count
        self._conn.execute("COMMIT")

    def _count_people_seen(self) -> int:
        """Sort the id digests of the people listed and return how many ids were distinct."""
        if self._people_seen_sorted is None:
            self._people_seen_sorted = array("q", sorted(self._people_seen))
        distinct = 0
        previous = None
        for value in self._people_seen_sorted:
            if value != previous:
                distinct += 1
                previous = value
        return distinct

    def _read_people_fingerprints(self) -> DigestSet:
        # Read before the fingerprints: a commit in between then counts as a change.
        self._people_data_version = self._dialect.data_version(self._conn)
        cursor = self._conn.cursor()
        cursor.row_factory = None
        # ORDER BY id makes SQLite read through the (customer, id) key, whose order follows
        # the rows on disk after a first sync. The email index was about 3 times slower
        # (0.17 s against 0.05 s for 100,000 people).
        cursor.execute(
            "SELECT fingerprint FROM people WHERE customer = :customer "
            "AND fingerprint IS NOT NULL ORDER BY id",
            {"customer": self.customer},
        )
        return DigestSet(row[0] for row in cursor)

    def _read_people_pages(self) -> Dict[bytes, PeoplePageRecord]:
        cursor = self._conn.cursor()
        cursor.row_factory = None
        cursor.execute(
            "SELECT digest, listed, with_licenses, located, org_id, ids, fingerprints "
            "FROM people_pages WHERE customer = :customer AND format = :format",
            {"customer": self.customer, "format": PEOPLE_PAGE_FORMAT},
        )
        return {row[0]: PeoplePageRecord(*row[1:]) for row in cursor}

    def _write_people_pages(self) -> None:
        """Keep the records of the pages of people this sync listed, and only those.

        Only records that differ are written, so a sync that listed the same pages again
        writes none. The records are a cache, so they count neither as a change nor as
        rows written.
        """
        listed = self._listed_pages
        if "people" not in self.scope or listed is None:
            return
        params = {"customer": self.customer}
        stored = {
            row[0]
            for row in self._conn.execute(
                "SELECT digest FROM people_pages WHERE customer = :customer", params
            )
        }
        # A stored digest listed with a new record had an unreadable record or one of
        # another format, so that record is replaced.
        unlisted = [
            (self.customer, digest)
            for digest in stored
            if digest not in listed or listed[digest]
        ]
        if unlisted:
            self._conn.executemany(
                "DELETE FROM people_pages WHERE customer = ? AND digest = ?", unlisted
            )
        if any(listed.values()):
            self._conn.execute(
                "INSERT INTO people_pages (customer, digest, format, listed, with_licenses, "
                "located, org_id, ids, fingerprints) SELECT :customer, digest, :format, "
                f"listed, with_licenses, located, org_id, ids, fingerprints FROM {STAGED_PAGES}",
                {"customer": self.customer, "format": PEOPLE_PAGE_FORMAT},
            )

    def _removed_people(self) -> List[str]:
        """Return the ids of stored people that the API did not list.

        A stored person whose fingerprint matched a listed person was listed; any other
        stored person was listed when its id digest is among those seen. Raises
        PeopleChangedError when a person that was not staged, because its fingerprint
        matched, has changed in the inventory since the sync started.
        """
        if self._people_seen_sorted is None:
            self._count_people_seen()
        seen = self._people_seen_sorted
        size = len(seen)
        removed = []
        query = "SELECT id, fingerprint FROM people WHERE customer = :customer"
        # When no other connection has committed since the fingerprints were read and every
        # one of them matched a listed person, only people without a fingerprint can have
        # left, and none can have changed.
        untouched = (
            self._known_people.matched_count() == len(self._known_people)
            and self._dialect.data_version(self._conn) == self._people_data_version
        )
        if untouched:
            query += " AND fingerprint IS NULL"
        query += " ORDER BY id"  # through the (customer, id) key, see _read_people_fingerprints
        cursor = self._conn.cursor()
        cursor.row_factory = None
        cursor.execute(query, {"customer": self.customer})
        unchanged = 0
        for person_id, fingerprint in cursor:
            if fingerprint is not None and self._known_people.was_matched(fingerprint):
                unchanged += 1
                continue
            digest = id_digest(person_id)
            index = bisect_left(seen, digest)
            if index < size and seen[index] == digest:
                continue
            removed.append(person_id)
        changed = 0 if untouched else self._known_people.matched_count() - unchanged
        if changed:
            raise PeopleChangedError(
                f"{changed} people of customer '{self.customer}' changed in the inventory "
                "during the sync (a license assignment or another sync). Run the sync again"
            )
        return removed

    def _check_licenses_visible(self) -> None:
        """Raise InventoryError when people were listed but none with a licenses field.

        Webex shows the licenses of people to administrators only. Read as "no licenses",
        such a listing would remove every license link of the customer. A single person
        without the field (the API leaves out some empty fields) still counts as holding
        none.
        """
        listed = len(self._people_seen)
        if "people" not in self.scope or not listed or self._people_with_licenses:
            return
        raise InventoryError(
            f"none of the {listed} people that GET /people returned has a 'licenses' field, "
            "so the sync cannot tell their licenses and changed nothing. Webex shows the "
            "licenses of people to administrators only: use the token of a full or "
            "read-only administrator of the org (scope spark-admin:people_read)"
        )

    def _check_lists_not_emptied(self) -> None:
        """Raise InventoryError when an empty list would remove every stored person or
        location while other lists of the same sync show that they exist.

        An empty list is a valid response, but also what a token without the list's read
        scope or a fault of the service gives. Removing every person while the licenses
        read by this sync show units consumed by users, or every location while the people
        or workspaces read by this sync are placed in one, would empty the inventory
        without a word. A sync without those other lists in its scope cannot tell, so it
        applies the empty list, which is also the way to remove them on purpose.
        """
        params = {"customer": self.customer}
        if (
            "people" in self.scope
            and "licenses" in self.scope
            and not self._people_seen
            and self._scalar("SELECT COUNT(*) FROM people WHERE customer = :customer", params)
        ):
            used = self._scalar(
                f"SELECT COALESCE(SUM(consumed_by_users), 0) FROM {_staged('licenses')} "
                "WHERE customer = :customer AND hybrid = 0",
                params,
            )
            if used > 0:
                raise InventoryError(
                    "GET /people returned no people, while the licenses show "
                    f"{used} unit{'' if used == 1 else 's'} consumed by users, so the sync "
                    "did not remove the stored "
                    "people and changed nothing. Check that the token may read the org's "
                    "people (scope spark-admin:people_read), then run the sync again. If "
                    "the org has no people left, sync with scope [people] to remove them"
                )
        if (
            "locations" in self.scope
            and not self._appended["locations"]
            and self._listed_located
            and self._scalar("SELECT COUNT(*) FROM locations WHERE customer = :customer", params)
        ):
            raise InventoryError(
                "GET /locations returned no locations, while people or workspaces read by "
                "this sync are placed in one, so the sync did not remove the stored "
                "locations and changed nothing. Check that the token may read the org's "
                "locations (scope spark-admin:locations_read), then run the sync again"
            )

    def _finish_staging(self, spec: TableSpec) -> None:
        """Index the staged rows of one type by id and keep the last copy of a repeated object.

        A repeated page (or an object listed twice) replaces the earlier copy: the row with
        the highest sequence number and its links win.
        """
        table = _staged(spec.table)
        self._conn.execute(f"CREATE INDEX IF NOT EXISTS {table}_id ON {table} (id)")
        total = self._scalar(f"SELECT COUNT(*) FROM {table}", {})
        distinct = self._scalar(f"SELECT COUNT(DISTINCT id) FROM {table}", {})
        if distinct == total:
            return
        self._conn.execute(
            f"DELETE FROM {table} WHERE seq NOT IN (SELECT MAX(seq) FROM {table} GROUP BY id)"
        )
        for link in spec.links:
            self._conn.execute(
                f"DELETE FROM {_staged_keys(link)} WHERE seq NOT IN (SELECT seq FROM {table})"
            )
        if spec.links:
            self._drop_unused_codes()

    def _drop_unused_codes(self) -> None:
        """Forget the license and role ids that only replaced copies of objects held.

        The commit gives every staged code a key in link_targets, so a code left over from
        a replaced copy would write a row that no link uses. A later page that lists the id
        again gets a new code.
        """
        used: set = set()
        for object_type in self.scope:
            for link in SPECS[object_type].links:
                cursor = self._conn.execute(f"SELECT DISTINCT code FROM {_staged_keys(link)}")
                used.update(row[0] for row in cursor)
        unused = [code for code in self._codes.values() if code not in used]
        if not unused:
            return
        self._conn.executemany(
            f"DELETE FROM {STAGED_CODES} WHERE code = ?", [(code,) for code in unused]
        )
        self._codes = {value: code for value, code in self._codes.items() if code in used}

    def _staging_transaction(self) -> _Transaction:
        return _Transaction(self._conn, self._dialect.begin_stage_sql)

    def _create_staging_tables(self) -> None:
        self._conn.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGED_CODES} "
            "(code INTEGER PRIMARY KEY, value TEXT NOT NULL, target_key INTEGER)"
        )
        if "people" in self.scope:
            self._conn.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGED_PAGES} (digest BLOB NOT NULL, "
                "listed INTEGER NOT NULL, with_licenses INTEGER NOT NULL, located INTEGER NOT "
                "NULL, org_id TEXT, ids BLOB NOT NULL, fingerprints BLOB NOT NULL)"
            )
        for object_type in self.scope:
            spec = SPECS[object_type]
            self._conn.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {_changes(spec.table)} "
                "(id TEXT NOT NULL PRIMARY KEY, change TEXT NOT NULL) WITHOUT ROWID"
            )
            columns = ", ".join(
                f"{name} {sql_type}" for name, sql_type in spec.columns + spec.extra
            )
            table = _staged(spec.table)
            self._conn.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {table} (seq INTEGER PRIMARY KEY, "
                f"customer TEXT NOT NULL, id TEXT NOT NULL, {columns})"
            )
            if spec.links:
                self._conn.execute(
                    f"CREATE TEMPORARY TABLE IF NOT EXISTS {_owner_keys(spec)} "
                    "(owner_key INTEGER PRIMARY KEY, seq INTEGER NOT NULL)"
                )
            for link in spec.links:
                keys = _staged_keys(link)
                self._conn.execute(
                    f"CREATE TEMPORARY TABLE IF NOT EXISTS {keys} (seq INTEGER NOT NULL, "
                    "code INTEGER NOT NULL, PRIMARY KEY (seq, code)) WITHOUT ROWID"
                )
                # The staged links with their ids, in the shape of the inventory's link
                # table, for the comparison and the report. ``seq`` names the owner's copy.
                self._conn.execute(
                    f"CREATE TEMPORARY VIEW IF NOT EXISTS {_staged(link.table)} AS "
                    f"SELECT o.customer AS customer, o.id AS {link.owner}, "
                    f"c.value AS {link.target}, k.seq AS seq FROM {keys} k "
                    f"JOIN {table} o ON o.seq = k.seq JOIN {STAGED_CODES} c ON c.code = k.code"
                )

    def _read_customer(self) -> Dict[str, Any]:
        row = self._conn.execute(
            "SELECT name, org_id, default_subscription_id, default_site_url, device "
            "FROM customers WHERE name = :customer",
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
            people = object_type == "people"
            stored = self._conn.execute(
                f"SELECT 1 FROM {spec.table} WHERE customer = :customer LIMIT 1",
                {"customer": self.customer},
            ).fetchone()
            if stored is None:
                self._stored_types.discard(object_type)
            else:
                self._stored_types.add(object_type)
            statements = _collect_changes_statements(
                spec, self._dialect, removed=not people, stored=stored is not None
            )
            for statement in statements:
                self._conn.execute(statement, {"customer": self.customer})
            if people:
                self._conn.executemany(
                    f"INSERT INTO {_changes(spec.table)} (id, change) VALUES (?, 'removed')",
                    [(person_id,) for person_id in self._removed_people()],
                )
            summary[object_type] = self._summarize(spec, self.staged[object_type])
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
            "data_warnings": self._data_warnings(),
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

    def _summarize(self, spec: TableSpec, listed: int) -> Dict[str, int]:
        """Count the changes of one type. ``listed`` is the number of distinct objects listed."""
        counts = {"added": 0, "updated": 0, "removed": 0}
        for row in self._conn.execute(
            f"SELECT change, COUNT(*) FROM {_changes(spec.table)} GROUP BY change"
        ):
            counts[row[0]] = int(row[1])
        counts["unchanged"] = listed - counts["added"] - counts["updated"]
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
        result["location_id"] = current["location_id"]
        if before is not None and after is not None:
            result["fields"] = [
                name
                for name in ("email", "display_name", "location_id")
                if before[name] != after[name]
            ]
            result["previous"] = {name: before[name] for name in result["fields"]}
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
        """Count people holding subscribed licenses that are not managed, with a sample.

        With people in scope, the people and links after the sync are the stored ones
        of people neither staged nor removed, plus the staged ones.
        """
        people: str = "people"
        links: Sequence[LinkSource] = INVENTORY_LINKS
        if "people" in self.scope:
            kept_condition = (
                "{key} NOT IN (SELECT id FROM s_people) "
                f"AND {{key}} NOT IN (SELECT id FROM {_changes('people')} "
                "WHERE change = 'removed')"
            )
            people = (
                "(SELECT customer, id, email FROM people WHERE customer = :customer "
                f"AND {kept_condition.format(key='id')} "
                "UNION ALL SELECT customer, id, email FROM s_people)"
            )
            links = (
                LinkSource("person_licenses", " AND " + kept_condition.format(key="pl.person_id")),
                LinkSource("s_person_licenses", person="pl.seq"),
            )
        return query_users_outside_defaults(
            self._conn,
            self.customer,
            limit,
            people=people,
            links=links,
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


class LinkSource(NamedTuple):
    """Person-license links to read: a table and a condition on its rows (alias ``pl``,
    starting with AND). The sources of one query contain links of different people."""

    table: str
    condition: str = ""
    # The column that identifies a person in this source. The staged links name a person's
    # staged copy by its sequence number (one per person after _finish_staging), which is
    # cheaper to count than the id.
    person: str = "pl.person_id"


INVENTORY_LINKS = (LinkSource("person_licenses"),)
_OUTSIDE = "l.managed = 0 AND l.subscription_id IS NOT NULL"


def query_users_outside_defaults(
    connection: sqlite3.Connection,
    customer: str,
    limit: int,
    people: str = "people",
    links: Sequence[LinkSource] = INVENTORY_LINKS,
    licenses: str = "licenses",
) -> Dict[str, Any]:
    """Count people with subscribed, unmanaged licenses; sample up to ``limit`` of them.

    The table names select the inventory or the staged copies of a running sync. Each
    source of ``links`` adds its links (the sources contain different people).
    """
    params: Dict[str, Any] = {"customer": customer, "limit": limit}
    # The few outside license ids are listed once, so each link is checked against that
    # list instead of a license lookup per link (half the time for 475,000 links).
    outside_ids = f"SELECT l.id FROM {licenses} l WHERE l.customer = :customer AND {_OUTSIDE}"
    count = 0
    for source in links:
        # Counted per source: the sources contain different people, and the links of one
        # source come in person order from its key, so no temporary index is built.
        count += int(
            connection.execute(
                f"SELECT COUNT(DISTINCT {source.person}) FROM {source.table} pl "
                f"WHERE pl.customer = :customer AND pl.license_id IN ({outside_ids})"
                f"{source.condition}",
                params,
            ).fetchone()[0]
        )
    picked: set = set()
    if count and limit > 0:
        for source in links:
            rows = connection.execute(
                f"SELECT DISTINCT pl.person_id FROM {source.table} pl "
                f"WHERE pl.customer = :customer{source.condition} "
                f"AND pl.license_id IN ({outside_ids}) ORDER BY pl.person_id LIMIT :limit",
                params,
            )
            picked.update(row[0] for row in rows)
    sample: List[Dict[str, Any]] = []
    for person_id in sorted(picked)[:limit]:
        outside_licenses = []
        for source in links:
            outside_licenses.extend(
                {"id": row[0], "name": row[1], "subscription_id": row[2], "site_url": row[3]}
                for row in connection.execute(
                    f"SELECT l.id, l.name, l.subscription_id, l.site_url FROM {source.table} pl "
                    f"JOIN {licenses} l ON l.customer = pl.customer AND l.id = pl.license_id "
                    f"WHERE pl.customer = :customer AND pl.person_id = :id{source.condition} "
                    f"AND {_OUTSIDE}",
                    dict(params, id=person_id),
                )
            )
        outside_licenses.sort(key=lambda item: (item["name"], item["id"]))
        sample.append({"id": person_id, "email": None, "licenses": outside_licenses})
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
