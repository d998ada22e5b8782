"""StopSignals turns a stop signal into SyncStoppedError only while a sync can be abandoned."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from ansible_collections.ucops.webex.plugins.module_utils import sync


def send(number: int) -> None:
    os.kill(os.getpid(), number)


@pytest.fixture(autouse=True)
def default_stop_signals():
    """Give the stop signals their default handlers for each test, since a test runner
    started in the background inherits SIGINT ignored (and nohup SIGHUP)."""
    defaults = {
        signal.SIGTERM: signal.SIG_DFL,
        signal.SIGINT: signal.default_int_handler,
        signal.SIGHUP: signal.SIG_DFL,
    }
    previous = {number: signal.signal(number, handler) for number, handler in defaults.items()}
    yield
    for number, handler in previous.items():
        signal.signal(number, handler)


def test_armed_signal_raises_and_names_it():
    with sync.StopSignals() as stop:
        stop.arm()
        with pytest.raises(sync.SyncStoppedError, match="received SIGTERM before the changes"):
            send(signal.SIGTERM)
        assert stop.received == "SIGTERM"


def test_second_signal_only_noted():
    with sync.StopSignals() as stop:
        stop.arm()
        with pytest.raises(sync.SyncStoppedError):
            send(signal.SIGINT)
        send(signal.SIGTERM)  # the failure handling goes on
    assert stop.received == "SIGINT"


def test_disarmed_signal_raises_at_arm():
    # For example a signal while the session starts, before the listing.
    with sync.StopSignals() as stop:
        send(signal.SIGHUP)
        assert stop.received == "SIGHUP"
        with pytest.raises(sync.SyncStoppedError, match="SIGHUP"):
            stop.arm()


def test_commit_is_not_interrupted():
    with sync.StopSignals() as stop:
        stop.arm()
        stop.disarm()
        send(signal.SIGTERM)
    assert stop.received == "SIGTERM"


def test_previous_handlers_are_restored():
    seen = []
    previous = signal.signal(signal.SIGHUP, lambda number, frame: seen.append(number))
    try:
        with sync.StopSignals() as stop:
            assert signal.getsignal(signal.SIGHUP) == stop._handle
        send(signal.SIGHUP)
        assert seen == [signal.SIGHUP]
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_ignored_signal_stays_ignored():
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with sync.StopSignals() as stop:
            stop.arm()
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
            send(signal.SIGHUP)
        assert stop.received is None
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_other_threads_install_nothing():
    before = signal.getsignal(signal.SIGTERM)
    outcome = {}

    def enter() -> None:
        with sync.StopSignals() as stop:
            stop.arm()  # no handler, so this neither raises nor arms anything
            outcome["handler"] = signal.getsignal(signal.SIGTERM)

    worker = threading.Thread(target=enter)
    worker.start()
    worker.join()
    assert outcome["handler"] == before


def test_page_child_gets_default_actions():
    from ansible_collections.ucops.webex.plugins.module_utils import fetch_process

    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with sync.StopSignals():
            # What the forked child runs first: the module's handlers do not apply there.
            fetch_process._default_stop_signals()
            assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
            assert signal.getsignal(signal.SIGINT) == signal.SIG_DFL
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)
