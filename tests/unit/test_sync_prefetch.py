"""Unit tests of sync.prefetch: pages produced by a worker thread ahead of the consumer."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from ansible_collections.ucops.webex.plugins.module_utils.sync import (
    PREFETCH_SWITCH_INTERVAL,
    prefetch,
)

WORKER_NAME = "webex-prefetch"


class PageFetchError(Exception):
    """An error type that only the test's page iterator raises."""


class CountingPages:
    """Page iterator that records how many pages it produced and can fail or pause."""

    def __init__(self, count=None, fail_after=None, delay=0.0):
        self.count = count
        self.fail_after = fail_after
        self.delay = delay
        self.produced = 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.fail_after is not None and self.produced == self.fail_after:
            raise PageFetchError(f"GET /v1/people page {self.produced + 1} failed")
        if self.count is not None and self.produced == self.count:
            raise StopIteration
        if self.delay:
            time.sleep(self.delay)
        self.produced += 1
        return [{"id": f"P{self.produced:04d}"}]


def prefetch_workers():
    return [thread for thread in threading.enumerate() if thread.name == WORKER_NAME]


def page_numbers(pages):
    return [int(page[0]["id"][1:]) for page in pages]


def test_pages_arrive_in_order():
    assert page_numbers(prefetch(CountingPages(count=50))) == list(range(1, 51))


def test_depth_one_keeps_order():
    assert page_numbers(prefetch(CountingPages(count=20), depth=1)) == list(range(1, 21))


def test_slow_consumer_loses_nothing():
    received = []
    for page in prefetch(CountingPages(count=12), depth=2):
        time.sleep(0.01)
        received.append(page)
    assert page_numbers(received) == list(range(1, 13))


def test_slow_producer_loses_nothing():
    pages = prefetch(CountingPages(count=8, delay=0.01), depth=2)
    assert page_numbers(pages) == list(range(1, 9))


def test_pages_are_the_produced_objects():
    source = [[{"id": "P0001"}], [{"id": "P0002"}]]
    received = list(prefetch(iter(source)))
    assert received[0] is source[0]
    assert received[1] is source[1]


def test_empty_iterator_yields_nothing():
    assert list(prefetch(iter([]))) == []


def test_worker_ends_after_last_page():
    list(prefetch(CountingPages(count=5)))
    assert prefetch_workers() == []


def test_error_raised_in_caller():
    received = []
    with pytest.raises(PageFetchError) as caught:
        for page in prefetch(CountingPages(fail_after=3)):
            received.append(page)
    assert caught.type is PageFetchError
    assert str(caught.value) == "GET /v1/people page 4 failed"
    assert page_numbers(received) == [1, 2, 3]


def test_error_before_first_page():
    with pytest.raises(PageFetchError, match=r"^GET /v1/people page 1 failed$"):
        next(prefetch(CountingPages(fail_after=0)))


def test_error_comes_from_worker_thread():
    threads = []

    def pages():
        yield [{"id": "P0001"}]
        threads.append(threading.current_thread())
        raise PageFetchError("page 2 failed")

    with pytest.raises(PageFetchError, match="page 2 failed"):
        list(prefetch(pages()))
    assert threads[0] is not threading.current_thread()


def test_worker_ends_after_error():
    with pytest.raises(PageFetchError):
        list(prefetch(CountingPages(fail_after=2)))
    assert prefetch_workers() == []


def test_close_stops_worker():
    source = CountingPages()  # endless
    pages = prefetch(source, depth=2)
    first_pages = [next(pages) for _page in range(3)]
    pages.close()
    assert page_numbers(first_pages) == [1, 2, 3]
    assert prefetch_workers() == []


def test_close_stops_fetching():
    source = CountingPages()  # endless
    pages = prefetch(source, depth=2)
    for _page in range(3):
        next(pages)
    pages.close()
    produced = source.produced
    time.sleep(0.3)
    assert source.produced == produced
    # Three pages consumed, two queued and one waiting to be queued.
    assert produced <= 3 + 2 + 1


def test_break_stops_worker():
    # The loop owns the only reference, so CPython closes the generator at the break.
    for page in prefetch(CountingPages()):  # endless
        if page_numbers([page]) == [2]:
            break
    assert prefetch_workers() == []


def test_consumer_error_stops_worker():
    def stage_all():
        for page in prefetch(CountingPages()):  # endless
            if page_numbers([page]) == [4]:
                raise ValueError("staging failed")

    with pytest.raises(ValueError, match="staging failed"):
        stage_all()
    assert prefetch_workers() == []


def test_close_before_start_starts_no_worker():
    pages = prefetch(CountingPages(count=3))
    pages.close()
    assert prefetch_workers() == []


@pytest.fixture
def switch_interval():
    """Run the test with the default GIL switch interval and restore the one found."""
    found = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    yield sys.getswitchinterval()
    sys.setswitchinterval(found)


def test_switch_interval_short_while_fetching(switch_interval):
    seen = [sys.getswitchinterval() for _page in prefetch(CountingPages(count=3))]
    # Python keeps the interval in whole microseconds.
    assert seen == [pytest.approx(PREFETCH_SWITCH_INTERVAL, abs=1e-6)] * 3
    assert sys.getswitchinterval() == switch_interval


def test_switch_interval_restored_after_error(switch_interval):
    with pytest.raises(PageFetchError):
        list(prefetch(CountingPages(fail_after=1)))
    assert sys.getswitchinterval() == switch_interval


def test_switch_interval_restored_after_close(switch_interval):
    pages = prefetch(CountingPages())  # endless
    next(pages)
    assert sys.getswitchinterval() == pytest.approx(PREFETCH_SWITCH_INTERVAL, abs=1e-6)
    pages.close()
    assert sys.getswitchinterval() == switch_interval


def test_shorter_switch_interval_kept(switch_interval):
    sys.setswitchinterval(PREFETCH_SWITCH_INTERVAL / 2)
    shorter = sys.getswitchinterval()
    seen = [sys.getswitchinterval() for _page in prefetch(CountingPages(count=2))]
    assert seen == [shorter] * 2
    assert sys.getswitchinterval() == shorter


def test_switch_interval_restored_when_worker_fails_to_start(switch_interval, monkeypatch):
    def fail_start(thread):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", fail_start)
    with pytest.raises(RuntimeError, match="can't start new thread"):
        next(prefetch(CountingPages(count=2)))
    assert sys.getswitchinterval() == switch_interval
