"""A database error during a sync becomes a task error and leaves the inventory as it was."""

from __future__ import annotations

import sqlite3

import pytest

from ansible_collections.ucops.webex.plugins.module_utils import sync
from ansible_collections.ucops.webex.plugins.module_utils.inventory import InventoryStore
from ansible_collections.ucops.webex.plugins.module_utils.inventory_sync import SyncSession
from tests.integration.reliability_support import assert_store_unchanged, dump_store
from tests.integration.test_sync_retry import CUSTOMER, ORGS, run


@pytest.fixture
def synced(simulator, inventory_db):
    with InventoryStore(str(inventory_db)) as store:
        store.upsert_customer(CUSTOMER, org_id=ORGS[CUSTOMER]["id"])
    run(simulator, inventory_db)
    return inventory_db


def fail_with(error):
    def failing(*_args, **_kwargs):
        raise error

    return failing


def test_error_while_staging(simulator, synced, monkeypatch):
    before = dump_store(synced)
    monkeypatch.setattr(SyncSession, "stage_people",
                        fail_with(sqlite3.OperationalError("disk I/O error")))

    with pytest.raises(sync.SyncError) as raised:
        run(simulator, synced)

    message = str(raised.value)
    assert "the inventory was not changed" in message
    assert f"the inventory database {synced} failed: disk I/O error" in message
    assert "free disk space" in message
    failed = assert_store_unchanged(synced, before, failed_syncs=1)
    assert raised.value.details["history_id"] == failed[0]["id"]
    assert "disk I/O error" in failed[0]["error"]


def test_error_while_committing(simulator, synced, monkeypatch):
    before = dump_store(synced)
    monkeypatch.setattr(SyncSession, "_apply",
                        fail_with(sqlite3.OperationalError("database or disk is full")))

    with pytest.raises(sync.SyncError, match="failed: database or disk is full"):
        run(simulator, synced)

    assert_store_unchanged(synced, before, failed_syncs=1)


def test_history_error_not_raised(simulator, synced, monkeypatch):
    # Recording the failure fails as well: the sync's own error is still the one reported.
    before = dump_store(synced)
    monkeypatch.setattr(SyncSession, "stage_people",
                        fail_with(sqlite3.OperationalError("disk I/O error")))
    monkeypatch.setattr(InventoryStore, "record_failed_sync",
                        fail_with(sqlite3.OperationalError("disk I/O error")))

    with pytest.raises(sync.SyncError, match="failed: disk I/O error") as raised:
        run(simulator, synced)

    assert raised.value.details["history_id"] is None
    assert_store_unchanged(synced, before, failed_syncs=0)
