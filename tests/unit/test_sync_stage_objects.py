"""Unit tests of sync.stage_objects: pages go to their stager, each type is finished early."""

from __future__ import annotations

import os

import pytest

from ansible_collections.ucops.webex.plugins.module_utils import licensing, sync


class RecordingSession:
    """Session stand-in that records the staging calls in order."""

    scope = ("licenses", "people", "workspaces")

    def __init__(self):
        self.calls = []

    def _stager(self, object_type):
        def stage(page):
            self.calls.append(("stage", object_type, len(page)))

        return stage

    def __getattr__(self, name):
        if name.startswith("stage_"):
            return self._stager(name[len("stage_"):])
        raise AttributeError(name)

    def finish_type(self, object_type):
        self.calls.append(("finish", object_type))


@pytest.fixture
def pages(monkeypatch):
    listed = [
        ("licenses", [{"id": "L1"}]),
        ("people", [{"id": "P1"}, {"id": "P2"}]),
        ("people", [{"id": "P3"}]),
        ("workspaces", [{"id": "W1"}]),
    ]
    monkeypatch.setattr(sync, "fetch_pages", lambda client, scope, size, read: iter(listed))
    return listed


def test_each_type_finished_after_its_pages(pages):
    session = RecordingSession()
    sync.stage_objects(client=None, session=session, people_page_size=100)
    assert session.calls == [
        ("stage", "licenses", 1),
        ("finish", "licenses"),
        ("stage", "people", 2),
        ("stage", "people", 1),
        ("finish", "people"),
        ("stage", "workspaces", 1),
    ]
    # The last type is finished by the commit, after the listing ends.


def test_counted_counts_before_failure():
    def pages():
        yield "licenses", [1]
        yield "roles", [2]
        raise RuntimeError("people page 1 failed")

    read = {}
    joined = sync.whole_lists(sync.counted(pages(), read))

    assert next(joined) == ("licenses", [1])
    with pytest.raises(RuntimeError):
        next(joined)
    # The roles page was read, although whole_lists never passed it on.
    assert read == {"licenses": 1, "roles": 1}


def test_whole_lists_joins_license_and_role_pages():
    pages = [("licenses", [1, 2]), ("licenses", [3]), ("roles", []), ("roles", [4]),
             ("people", [5]), ("people", [6]), ("workspaces", [7])]

    joined = list(sync.whole_lists(iter(pages)))

    assert joined == [("licenses", [1, 2, 3]), ("roles", [4]), ("people", [5]),
                      ("people", [6]), ("workspaces", [7])]


def test_whole_lists_keeps_empty_list():
    assert list(sync.whole_lists(iter([("licenses", [])]))) == [("licenses", [])]
    assert list(sync.whole_lists(iter([]))) == []


def test_caller_gone_sees_closed_reader(tmp_path):
    read_end, write_end = os.pipe()
    try:
        assert sync.caller_gone(write_end) is False
        os.close(read_end)
        assert sync.caller_gone(write_end) is True
    finally:
        os.close(write_end)
    with open(tmp_path / "result.json", "w") as handle:
        assert sync.caller_gone(handle.fileno()) is False


def test_first_org_id_gives_the_base64_form():
    """The orgId parameter takes the base64 org id, so a UUID that people carry is stored in
    that form, with the region of the person's id."""
    person = {"id": "Y2lzY29zcGFyazovL3VzL1BFT1BMRS9hYmM",
              "orgId": "6513270e-269e-4d37-b2a7-4de452e6b438"}

    org_id = licensing.first_org_id([{"id": "X"}, person])

    assert org_id == ("Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi82NTEzMjcwZS0yNjllLTRkMzctYjJh"
                      "Ny00ZGU0NTJlNmI0Mzg")
    assert licensing.first_org_id([{"id": "P", "orgId": " ORG-1 "}]) == "ORG-1"
    assert licensing.first_org_id([{"id": "P"}]) is None
