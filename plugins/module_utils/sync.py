# Copyright: ucops.webex maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sync of one customer's Webex objects into the license inventory (webex_license_sync).

Each object type in scope is read page by page from the Webex API and staged in a
``SyncSession``; a worker thread fetches up to PREFETCH_PAGES pages ahead, so a few pages of
people are held in memory, never the whole list. The session then compares
the staged rows with the inventory: a real run commits the difference in one transaction,
a check-mode run only reports it. Any error aborts the session, so the inventory keeps its
previous content and the sync history records the failure (except in check mode, which
writes nothing).
"""

from __future__ import annotations

import os
import queue
import select
import signal
import sqlite3
import sys
import threading
from typing import (
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
)

from ansible_collections.ucops.webex.plugins.module_utils import licensing
from ansible_collections.ucops.webex.plugins.module_utils.customer import default_device
from ansible_collections.ucops.webex.plugins.module_utils.fetch_process import (
    ListRequest,
    PageProcess,
    fetch_process_available,
)
from ansible_collections.ucops.webex.plugins.module_utils.inventory import (
    InventoryError,
    InventoryStore,
    SyncSession,
    database_error_message,
    resolve_inventory_path,
)
from ansible_collections.ucops.webex.plugins.module_utils.inventory_sync import (
    PeopleChangedError,
    org_taken_message,
)
from ansible_collections.ucops.webex.plugins.module_utils.webex_api import (
    LOCATIONS_PAGE_SIZE,
    WORKSPACES_PAGE_SIZE,
    WebexApiError,
    WebexClient,
)

# GET /v1/people returns at most 100 people per page when callingData=true (the Webex API
# reference for List People). The sync requests calling data to get each
# person's locationId.
PEOPLE_CALLING_DATA_MAX = 100

# Object types whose pages are staged as one list (see whole_lists).
WHOLE_LIST_TYPES = frozenset({"licenses", "roles"})

# Pages fetched ahead of the page being staged (see prefetch).
PREFETCH_PAGES = 2

# GIL switch interval in seconds while the worker fetches pages (see prefetch).
PREFETCH_SWITCH_INTERVAL = 0.0002

# Runs of one sync when stored people change while it lists them (PeopleChangedError).
PEOPLE_CHANGED_ATTEMPTS = 3

T = TypeVar("T")


class SyncError(Exception):
    """A sync that failed; the inventory was not changed.

    ``details`` contains extra result keys for the module (status, tracking_id, history_id,
    api_requests).
    """

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.details = details


class CallerGoneError(Exception):
    """The process that reads the module's result has ended before the commit."""


class SyncStoppedError(CallerGoneError):
    """The module process received a stop signal before the commit."""


# Signals that end the module process by default. While a sync lists and compares, each
# becomes a SyncStoppedError, so the session is aborted and the failure is recorded.
STOP_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP")


class StopSignals:
    """Turn stop signals into SyncStoppedError while a sync can still be abandoned.

    A job cancelled in AWX or by the CI, or Ctrl+C at ansible-playbook, sends the module
    process one of STOP_SIGNALS. By default it would end at once: SQLite rolls the
    transaction back, but the sync history shows no failure. Used as a context manager in
    the main thread, this installs handlers that raise SyncStoppedError while ``armed``
    (the listing and comparing). While not armed (before the session starts, during the
    commit's write transaction, and while the failure is recorded) a signal is only noted:
    ``arm`` raises for it, and a commit under way completes, so the result reports what
    happened. In other threads than the main one, nothing is installed.
    """

    def __init__(self) -> None:
        self.received: Optional[str] = None
        self._armed = False
        self._previous: Dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        for name in STOP_SIGNALS:
            number = getattr(signal, name, None)
            if number is None or signal.getsignal(number) == signal.SIG_IGN:
                continue  # a signal ignored by the caller (nohup ignores SIGHUP) stays ignored
            try:
                self._previous[number] = signal.signal(number, self._handle)
            except (OSError, ValueError):
                continue  # ValueError: signal.signal works in the main thread only
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._armed = False
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def arm(self) -> None:
        """Raise for stop signals from now on, and at once for one received before."""
        if not self._previous:
            return
        if self.received:
            raise self._error()
        self._armed = True

    def disarm(self) -> None:
        """Only note stop signals from now on."""
        self._armed = False

    def _handle(self, number: int, _frame: Any) -> None:
        if self.received is None:
            self.received = signal.Signals(number).name
        if self._armed:
            self._armed = False  # a second signal does not interrupt the failure handling
            raise self._error()

    def _error(self) -> SyncStoppedError:
        return SyncStoppedError(
            f"the module process received {self.received} before the changes were "
            "committed (a cancelled job or an interrupted ansible-playbook). Run the sync "
            "again"
        )


NO_STOP_SIGNALS = StopSignals()  # never entered: arm and disarm do nothing


def caller_gone(fd: int = 1) -> bool:
    """Return True when the pipe on ``fd`` (the module's standard output) has no reader.

    Ansible reads a module's result from its standard output. When a task times out,
    Ansible stops reading but does not end a module that runs on the controller, so the
    sync would commit after the task was reported as failed. A file, a terminal or a
    platform without poll() gives False.
    """
    try:
        poller = select.poll()
        poller.register(fd, 0)  # POLLERR and POLLHUP are always reported
        events = poller.poll(0)
    except (AttributeError, OSError, ValueError):
        return False
    return any(event & (select.POLLERR | select.POLLHUP) for _fd, event in events)


CHECK_MODE_HINT = (
    ". In check mode webex_customer adds no customer, so a new customer can be synced only "
    "after a run without --check"
)


def open_existing_store(
    path: Optional[str], customer: str, check_mode: bool = False
) -> InventoryStore:
    """Open an existing inventory; a missing file means the customer was never added."""
    resolved = resolve_inventory_path(path)
    if not os.path.exists(resolved):
        raise SyncError(
            f"customer '{customer}' not found: the inventory {resolved} does not exist. Add "
            "the customer with ucops.webex.webex_customer first, or set inventory_db to the "
            "inventory that contains it" + (CHECK_MODE_HINT if check_mode else "")
        )
    return InventoryStore(resolved, create=False)


def resolve_org_id(customer: Mapping[str, Any], requested: Optional[str]) -> Optional[str]:
    """Return the org to sync: the customer's org id, else the org_id option.

    None means the token's own org. Raises SyncError when both are set and differ.
    """
    stored = customer.get("org_id") or None
    requested = (requested or "").strip() or None
    if stored and requested and licensing.org_key(stored) != licensing.org_key(requested):
        raise SyncError(
            f"org_id '{requested}' does not match org_id '{stored}' of customer "
            f"'{customer['name']}'. Remove org_id from the task, or change the customer's "
            "org_id with ucops.webex.webex_customer"
        )
    chosen = stored or requested
    # An inventory written by an older release may hold the org id as a bare UUID, which
    # the API's orgId parameter does not take.
    return licensing.org_api_id(chosen) if chosen else None


def check_org_unclaimed(store: InventoryStore, name: str, org_id: str) -> None:
    """Raise InventoryError when another customer has ``org_id``, so one org is one customer.

    A customer without org_id gets the org id of its first sync (SyncSession.org_id), so two
    customers without org_id cannot read the same org either.
    """
    owner = store.customer_of_org(org_id)
    if owner is not None and owner != name:
        raise InventoryError(org_taken_message(name, org_id, owner))


def list_requests(
    client: WebexClient, scope: Sequence[str], people_page_size: int
) -> List[ListRequest]:
    """Return the list requests of a sync of ``scope``: (type, path, params, offset paging)."""
    org = client.org_params()
    people_max = min(people_page_size, PEOPLE_CALLING_DATA_MAX)
    known: Dict[str, Tuple[str, Dict[str, Any], bool]] = {
        "licenses": ("/licenses", dict(org), False),
        "roles": ("/roles", dict(org), False),
        # excludeStatus: the sync stores no presence, and the API responds faster without it.
        "people": (
            "/people", dict(max=people_max, callingData=True, excludeStatus=True, **org), False
        ),
        "locations": ("/locations", dict(org, max=LOCATIONS_PAGE_SIZE), False),
        "workspaces": ("/workspaces", dict(org, max=WORKSPACES_PAGE_SIZE), True),
    }
    return [(object_type,) + known[object_type] for object_type in scope]


def fetch_pages(
    client: WebexClient,
    scope: Sequence[str],
    people_page_size: int,
    read: Optional[Dict[str, int]] = None,
) -> Iterator[Tuple[str, List[Dict[str, Any]]]]:
    """Yield ``(object_type, page)`` for every page of every object type in ``scope``.

    Licenses and roles come as one page each (see ``whole_lists``). ``read``, when given,
    counts the pages received per object type (see ``counted``).
    """
    def pages() -> Iterator[Tuple[str, List[Dict[str, Any]]]]:
        for object_type, path, params, offset_paging in list_requests(
            client, scope, people_page_size
        ):
            for page in client.iter_pages(path, params, offset_paging=offset_paging):
                yield object_type, page

    return whole_lists(counted(pages(), {} if read is None else read))


def counted(pages: Iterator[Tuple[str, T]], read: Dict[str, int]) -> Iterator[Tuple[str, T]]:
    """Pass pages on and count them per object type in ``read``.

    The count is taken as each page arrives, before pages are joined or staged, so after a
    failed request it gives the number of pages of each type that the API returned.
    """
    for object_type, page in pages:
        read[object_type] = read.get(object_type, 0) + 1
        yield object_type, page


def whole_lists(
    pages: Iterator[Tuple[str, List[Dict[str, Any]]]]
) -> Iterator[Tuple[str, List[Dict[str, Any]]]]:
    """Pass pages on, joining the pages of each type in WHOLE_LIST_TYPES into one."""
    joined_type: Optional[str] = None
    joined: List[Dict[str, Any]] = []
    for object_type, page in pages:
        if joined_type is not None and object_type != joined_type:
            yield joined_type, joined
            joined_type, joined = None, []
        if object_type in WHOLE_LIST_TYPES:
            joined_type = object_type
            joined.extend(page)
        else:
            yield object_type, page
    if joined_type is not None:
        yield joined_type, joined


def prefetch(
    items: Iterator[T],
    depth: int = PREFETCH_PAGES,
    on_stop: Optional[Callable[[], None]] = None,
) -> Iterator[T]:
    """Yield the items of ``items``, produced by a worker thread up to ``depth`` ahead.

    The worker fetches the next page while the caller stages the current one, so the API's
    response time and the inventory writes overlap. At most ``depth`` + 2 pages are in
    memory. An exception of ``items`` is raised here, in the caller's thread. When the
    caller stops early, the worker stops before its next item; ``on_stop``, called before
    waiting for the worker, can end a wait of the worker for that item (the page-reading
    child may sleep through a long Retry-After).
    """
    pending: queue.Queue[Tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(entry: Tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                pending.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(("item", item)):
                    return
        except BaseException as error:  # handed to the caller's thread, raised there
            offer(("error", error))
        else:
            offer(("end", None))

    worker = threading.Thread(target=produce, name="webex-prefetch", daemon=True)
    # A thread that wants the GIL waits up to the switch interval (5 ms by default) for it.
    # The worker needs the GIL briefly after each response while the caller stages pages,
    # so a short interval lets it send the next request sooner.
    switch_interval = sys.getswitchinterval()
    shorten = switch_interval > PREFETCH_SWITCH_INTERVAL
    if shorten:
        sys.setswitchinterval(PREFETCH_SWITCH_INTERVAL)
    try:
        worker.start()
        while True:
            kind, value = pending.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        if on_stop is not None:
            on_stop()
        if worker.ident is not None:  # started
            worker.join()
        if shorten:
            sys.setswitchinterval(switch_interval)


def stage_objects(
    client: WebexClient, session: SyncSession, people_page_size: int
) -> Optional[str]:
    """Fetch every object type in the session's scope and stage it page by page.

    Returns the org id that the listed people, locations or workspaces carry (the first one
    found), or None when none carries one.
    """
    stagers = {
        "licenses": session.stage_licenses,
        "roles": session.stage_roles,
        "people": session.stage_people,
        "locations": session.stage_locations,
        "workspaces": session.stage_workspaces,
    }
    source: Optional[PageProcess] = None
    if fetch_process_available(client):
        # A token that the child got would not reach later requests of this process.
        client.ensure_access_token()
        try:
            source = PageProcess(
                client,
                list_requests(client, session.scope, people_page_size),
                known_pages=session.known_pages,
            )
        except OSError:
            # No process or pipe left under the host's limits: read the pages here.
            source = None
    # Pages received per object type, counted in the worker thread of ``prefetch``. The
    # error of a failed request reaches this thread after the count of the pages before it.
    read: Dict[str, int] = {}
    if source is not None:
        pages = prefetch(whole_lists(counted(source.pages(), read)), on_stop=source.kill)
    else:
        pages = prefetch(fetch_pages(client, session.scope, people_page_size, read))
    listed_org: Optional[str] = None
    try:
        previous = None
        for object_type, page in pages:
            if previous is not None and object_type != previous:
                # The pages of one type come together, so the previous type is complete.
                session.finish_type(previous)
            previous = object_type
            if listed_org is None and object_type in ORG_NAMING_TYPES:
                record = getattr(page, "record", None)  # a page passed on undecoded
                listed_org = record.org_id if record is not None else licensing.first_org_id(page)
            stagers[object_type](page)
    except WebexApiError as error:
        # Records how far the listing came, for example when page 412 of the people fails.
        error.pages_read = dict(read)
        raise
    finally:
        if source is not None:
            # Ends a child that still reads (after an error), so the worker stops waiting.
            source.kill()
        pages.close()
        if source is not None:
            source.stop()
    return listed_org


# Object types whose items carry the orgId of the org they belong to.
ORG_NAMING_TYPES = ("people", "locations", "workspaces")


def sync_customer(
    store: InventoryStore,
    client: WebexClient,
    customer: Mapping[str, Any],
    scope: Sequence[str],
    people_page_size: int,
    people_sample: int,
    check_mode: bool,
    stop_signals: StopSignals = NO_STOP_SIGNALS,
) -> Dict[str, Any]:
    """Fetch, compare and (unless ``check_mode``) commit one customer's objects.

    Returns the session report (see ``SyncSession.commit``; in check mode without
    ``rows_written`` and ``history_id``). Raises SyncError after aborting the session.
    When stored people change during the sync (PeopleChangedError), the sync runs again,
    up to PEOPLE_CHANGED_ATTEMPTS times in all. ``stop_signals``, once entered, turns a
    stop signal received before the commit into such a failure (see StopSignals).
    """
    attempt = 1
    while True:
        try:
            # The last run turns PeopleChangedError into a SyncError like any other error.
            return sync_customer_once(
                store,
                client,
                customer,
                scope,
                people_page_size,
                people_sample,
                check_mode,
                retry=attempt < PEOPLE_CHANGED_ATTEMPTS,
                stop_signals=stop_signals,
            )
        except PeopleChangedError:
            attempt += 1


def sync_customer_once(
    store: InventoryStore,
    client: WebexClient,
    customer: Mapping[str, Any],
    scope: Sequence[str],
    people_page_size: int,
    people_sample: int,
    check_mode: bool,
    retry: bool,
    stop_signals: StopSignals = NO_STOP_SIGNALS,
) -> Dict[str, Any]:
    """Run one sync (see ``sync_customer``); with ``retry``, PeopleChangedError passes through
    and records nothing."""
    name = customer["name"]
    device = customer.get("device") or default_device(client.api_url, client.org_id)
    try:
        session = store.begin_sync(name, scope, device)
    except ValueError as error:
        raise SyncError(str(error)) from error
    try:
        stop_signals.arm()
        listed_org = stage_objects(client, session, people_page_size)
        if not customer.get("org_id"):
            session.org_id = client.org_id or listed_org
        if check_mode:
            if session.org_id:
                check_org_unclaimed(store, name, session.org_id)
            report = session.diff(people_sample)
            stop_signals.disarm()
            session.discard()
            if session.org_id:
                report.update(changed=True, org_id_recorded=session.org_id)
        else:
            if caller_gone():
                raise CallerGoneError(
                    "the Ansible task that ran this sync has ended (for example at its "
                    "timeout), so the changes were not committed. Run the sync again, with a "
                    "longer task timeout if one is set"
                )
            # A stop signal still stops the sync while it waits for the write lock. Once
            # the transaction has begun, the commit completes and the result reports it.
            report = session.commit(people_sample, on_write=stop_signals.disarm)
    except (WebexApiError, InventoryError, ValueError, sqlite3.Error, CallerGoneError) as error:
        stop_signals.disarm()
        if retry and isinstance(error, PeopleChangedError):
            session.discard()
            raise
        message = str(error)
        pages_read = getattr(error, "pages_read", None)
        if pages_read is not None:
            listed = ", ".join(f"{count} of {kind}" for kind, count in pages_read.items())
            message += f" (pages read before the failure: {listed or 'none'})"
        if isinstance(error, sqlite3.Error):
            # For example a full disk or an I/O error. The transaction was rolled back.
            message = database_error_message(store.path, error)
        history_id = None
        if check_mode:
            session.discard()
        elif not session.finished:
            history_id = _record_failure(session.abort, message)
        else:
            # The commit itself failed and closed the session; record the failure here.
            history_id = _record_failure(
                store.record_failed_sync, name, session.scope, device, session.started_at, message
            )
        details: Dict[str, Any] = {"history_id": history_id}
        if isinstance(error, WebexApiError):
            details.update(status=error.status, tracking_id=error.tracking_id)
            if getattr(error, "pages_read", None) is not None:
                details["pages_read"] = error.pages_read
        raise SyncError(
            f"sync of customer '{name}' failed and the inventory was not changed: {message}",
            **details,
        ) from error
    finally:
        stop_signals.disarm()
        if not session.finished:
            session.discard()
    return report


def _record_failure(record: Callable[..., Optional[int]], *args: Any) -> Optional[int]:
    """Write the failed-sync history row and return its id, or None if the database fails.

    The sync's own error is the one to report, so a second database error is not raised.
    """
    try:
        return record(*args)
    except sqlite3.Error:
        return None


def license_labels(store: InventoryStore, customer: str, report: Mapping[str, Any]) -> Dict:
    """Map license ids to readable labels, from the inventory and the sync's changes."""
    rows: List[Mapping[str, Any]] = list(store.license_rows(customer=customer))
    changes = report.get("licenses") or {}
    rows.extend(changes.get("added") or [])
    rows.extend(changes.get("removed") or [])
    return {row["id"]: licensing.license_label(row) for row in rows}


def people_diff(
    store: InventoryStore,
    customer: str,
    report: Mapping[str, Any],
    labels: Mapping[str, str],
    committed: bool,
) -> Dict[str, Any]:
    """Build the before/after license lists of the people in the report's bounded sample."""
    before: Dict[str, List[str]] = {}
    after: Dict[str, List[str]] = {}
    people = report.get("people") or {}
    for change in people.get("changes") or []:
        stored = store.find_person(customer, change["id"])
        stored_ids = stored["license_ids"] if stored else []
        old_ids, new_ids = licensing.person_license_sets(
            stored_ids, change["licenses_added"], change["licenses_removed"], committed
        )
        if change["change"] == "updated" and set(old_ids) == set(new_ids):
            # Only other fields (a name, a location) changed, which the diff does not show.
            continue
        key = change["email"] or change["id"]
        if change["change"] != "added":
            before[key] = sorted(labels.get(i, i) for i in old_ids)
        if change["change"] != "removed":
            after[key] = sorted(labels.get(i, i) for i in new_ids)
    header = "people"
    if people.get("truncated"):
        header = f"people (first {len(people.get('changes') or [])} changes)"
    return {"before_header": header, "after_header": header, "before": before, "after": after}


def people_fields_diff(report: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """Build the before/after email, display name and location id of the updated people in
    the report's sample whose fields changed; None when none did."""
    before: Dict[str, Dict[str, Any]] = {}
    after: Dict[str, Dict[str, Any]] = {}
    for change in (report.get("people") or {}).get("changes") or []:
        fields = change.get("fields") or []
        if change["change"] != "updated" or not fields:
            continue
        key = change["email"] or change["id"]
        before[key] = dict(change.get("previous") or {})
        after[key] = {name: change.get(name) for name in fields}
    if not before:
        return None
    header = "people fields"
    return {"before_header": header, "after_header": header, "before": before, "after": after}


def build_diff(
    store: InventoryStore, customer: str, report: Mapping[str, Any], committed: bool
) -> List[Dict[str, Any]]:
    """Build the diff-mode output: license rows before/after and the people sample."""
    diffs = []
    if "licenses" in report:
        before, after = licensing.license_change_diff(report["licenses"])
        diffs.append(
            {
                "before_header": "licenses",
                "after_header": "licenses",
                "before": before,
                "after": after,
            }
        )
    if "people" in report:
        labels = license_labels(store, customer, report)
        diffs.append(people_diff(store, customer, report, labels, committed))
        fields = people_fields_diff(report)
        if fields is not None:
            diffs.append(fields)
    return diffs


def build_result(
    report: Mapping[str, Any], customer: Mapping[str, Any], org_id: Optional[str]
) -> Dict[str, Any]:
    """Shape the session report as the module result."""
    defaults = dict(report["defaults"])
    subscriptions = defaults.pop("subscription_candidates")
    site_urls = defaults.pop("site_url_candidates")
    return {
        "changed": report["changed"],
        "customer": customer["name"],
        "org_id": org_id,
        "scope": list(report["scope"]),
        "summary": report["summary"],
        "fetched": report["staged"],
        "subscriptions": subscriptions,
        "site_urls": site_urls,
        "defaults": defaults,
        "defaults_required": [
            {key: warning[key] for key in ("option", "candidates", "message")}
            for warning in report["warnings"]
            if warning["code"] == "defaults_required"
        ],
        "unsubscribed_licenses": report["unsubscribed_licenses"],
        "users_outside_defaults": report["users_outside_defaults"],
        "license_changes": report.get("licenses"),
        "people_changes": report.get("people"),
        "history_id": report.get("history_id"),
    }


def run_license_sync(
    params: Mapping[str, Any],
    client_factory: Callable[[], WebexClient],
    check_mode: bool,
    diff_mode: bool,
    warn: Callable[[str], None],
) -> Dict[str, Any]:
    """Run the webex_license_sync task and return the module result.

    ``params`` contains the module options. Each warning of the defaults decision is passed
    to ``warn``. Raises SyncError; the inventory is then unchanged.
    """
    name = params["customer"]
    if params["people_page_size"] < 1:
        raise SyncError(f"people_page_size must be at least 1, got {params['people_page_size']}")
    if params["people_sample"] < 0:
        raise SyncError(f"people_sample must not be negative, got {params['people_sample']}")

    with open_existing_store(params["inventory_db"], name, check_mode) as store:
        if store.upgrade_message():
            warn(store.upgrade_message())
        customer = store.get_customer(name)
        if customer is None:
            # A run with --check adds no customer, so a later sync task finds none.
            hint = CHECK_MODE_HINT if check_mode else ""
            raise SyncError(store.missing_customer_message(name) + hint)
        org_id = resolve_org_id(
            customer,
            licensing.choose_org_id(
                customer, params.get("org_id"), params.get("org_id_from_env"), warn
            ),
        )
        if org_id and not customer.get("org_id"):
            try:
                check_org_unclaimed(store, name, org_id)
            except InventoryError as error:
                raise SyncError(str(error)) from error
        client = client_factory()
        client.org_id = org_id
        try:
            with StopSignals() as stop_signals:
                report = sync_customer(
                    store,
                    client,
                    customer,
                    params["scope"],
                    params["people_page_size"],
                    params["people_sample"],
                    check_mode,
                    stop_signals=stop_signals,
                )
        except SyncError as error:
            error.details["api_requests"] = dict(client.stats)
            raise
        if stop_signals.received:
            # A signal during the commit's transaction (or the end of a check) is only
            # noted, because a stop signal does not interrupt either.
            outcome = (
                "the check completed and changed nothing" if check_mode
                else "the commit completed, so the inventory holds this sync's changes"
            )
            warn(
                f"the module process received {stop_signals.received} after the sync had "
                f"listed everything; {outcome}. The job that sent it may have ended before "
                "it could show this result"
            )

        if params.get("warn_missing_defaults", True):
            for warning in report["warnings"]:
                warn(warning["message"])
        for message in report.get("data_warnings", []):
            warn(message)
        recorded = report.get("org_id_recorded")
        if recorded:
            stored = "would store" if check_mode else "stored"
            own_org = (
                "" if org_id else
                ". Without org_id the sync reads the org of the access token, which for a "
                "partner administrator's token is the partner's own org: if this customer is "
                "another org, set org_id (webex_org_id in the collection's roles) to it and "
                "correct the stored org_id with ucops.webex.webex_customer"
            )
            warn(
                f"customer '{name}' had no org_id; this sync read org '{recorded}' and "
                f"{stored} it as the customer's org_id, so that every later sync reads the "
                f"same org, whichever token it uses{own_org}"
            )
        result = build_result(report, customer, org_id or recorded)
        result["api_requests"] = dict(client.stats)
        if diff_mode:
            result["diff"] = build_diff(store, name, report, committed=not check_mode)
    return result
