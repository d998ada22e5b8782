"""Edge cases of a whole sync run: a stop signal after the write transaction began, and
an org id that an older release stored as a bare UUID."""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import sqlite3

import pytest

from ansible_collections.ucops.webex.plugins.module_utils import inventory_sync, sync
from ansible_collections.ucops.webex.plugins.module_utils.inventory import InventoryStore
from ansible_collections.ucops.webex.plugins.module_utils.webex_api import WebexClient
from tests.integration.helpers import ORGS, PARTNER_TOKEN

CUSTOMER = next(iter(ORGS))


@pytest.fixture(autouse=True)
def default_sigterm():
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGTERM, previous)


def run(simulator, db_path, check_mode=False):
    params = {
        "customer": CUSTOMER,
        "inventory_db": str(db_path),
        "org_id": None,
        "scope": ["licenses", "roles", "people", "locations", "workspaces"],
        "people_page_size": 100,
        "people_sample": 20,
        "warn_missing_defaults": False,
    }
    warnings = []

    def client():
        return WebexClient(api_url=simulator.api_url, access_token=PARTNER_TOKEN)

    result = sync.run_license_sync(params, client, check_mode, False, warnings.append)
    return result, warnings


def test_signal_during_commit_is_reported(simulator, inventory_db, monkeypatch):
    with InventoryStore(str(inventory_db)) as store:
        store.upsert_customer(CUSTOMER, org_id=ORGS[CUSTOMER]["id"])
    real_commit = inventory_sync.SyncSession.commit

    def commit_with_signal(self, people_sample, on_write=None):
        def began():
            if on_write is not None:
                on_write()
            os.kill(os.getpid(), signal.SIGTERM)  # a cancelled job, once the writing began

        return real_commit(self, people_sample, on_write=began)

    monkeypatch.setattr(inventory_sync.SyncSession, "commit", commit_with_signal)
    result, warnings = run(simulator, inventory_db)

    assert result["changed"] is True
    assert any("received SIGTERM after the sync had listed everything" in message
               and "the commit completed" in message for message in warnings), warnings
    with InventoryStore(str(inventory_db)) as store:
        assert store.get_customer(CUSTOMER)["synced_at"].get("people")
    with contextlib.closing(sqlite3.connect(str(inventory_db))) as connection:
        (stored,) = connection.execute(
            "SELECT count(*) FROM people WHERE customer = ?", (CUSTOMER,)
        ).fetchone()
    assert stored == len(ORGS[CUSTOMER]["people"])


def test_no_signal_no_warning(simulator, inventory_db):
    with InventoryStore(str(inventory_db)) as store:
        store.upsert_customer(CUSTOMER, org_id=ORGS[CUSTOMER]["id"])
    _result, warnings = run(simulator, inventory_db)
    assert not any("received" in message for message in warnings), warnings


def test_stored_uuid_org_id_is_sent_as_base64(simulator, inventory_db):
    """Older releases stored an org id read as a bare UUID; the sync sends its base64 form."""
    org_id = ORGS[CUSTOMER]["id"]
    padded = org_id + "=" * (-len(org_id) % 4)
    uuid = base64.b64decode(padded).decode().rsplit("/", 1)[1]
    with InventoryStore(str(inventory_db)) as store:
        store.upsert_customer(CUSTOMER)
    with contextlib.closing(sqlite3.connect(str(inventory_db))) as connection:
        with connection:
            connection.execute(
                "UPDATE customers SET org_id = ? WHERE name = ?", (uuid, CUSTOMER)
            )

    result, _warnings = run(simulator, inventory_db)

    assert result["changed"] is True
    assert result["org_id"] == org_id
