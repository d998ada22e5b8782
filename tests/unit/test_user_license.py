"""Unit tests of one user's license change: the pure helpers and the orchestration.

The orchestration tests use a real inventory file and a fake Webex client that keeps one
person in memory, so every step (plan, PATCH, re-read, inventory update) runs for real.
"""

from __future__ import annotations

import copy
import sqlite3

import pytest

from ansible_collections.ucops.webex.plugins.module_utils import licensing
from ansible_collections.ucops.webex.plugins.module_utils.inventory import (
    InventoryLockedError,
    InventoryStore,
)
from ansible_collections.ucops.webex.plugins.module_utils.licensing import LicensingError
from ansible_collections.ucops.webex.plugins.module_utils.user_license import (
    UserLicenseChange,
    UserLicenseError,
)
from ansible_collections.ucops.webex.plugins.module_utils.webex_api import (
    WebexApiError,
    WebexResponse,
)
from tests.unit.factories import api_license

LICENSES = [
    api_license("M-A", "Meeting - Webex Enterprise Edition", "Sub-A100", "acme-a.webex.com", 50, 3),
    api_license("M-A2", "Meeting - Webex Enterprise Edition", "Sub-A100", "acme-c.webex.com", 5),
    api_license("M-B", "Meeting - Webex Enterprise Edition", "Sub-B200", "acme-b.webex.com", 20, 1),
    api_license("C-A", "Webex Calling - Professional", "Sub-A100", total=30, consumed=4),
    api_license("C-B", "Webex Calling - Professional", "Sub-B200", total=10, consumed=1),
    api_license("ADV-A", "Advanced Messaging", "Sub-A100", total=10, consumed=0),
    api_license("AC-B", "Webex Attendant Console", "Sub-B200", total=5),
    api_license("MSG", "Basic Messaging", total=300, consumed=300),
    api_license("SS", "Free screen share", total=300, consumed=300),
]
ROWS = [licensing.normalize_license(item) for item in LICENSES]
BY_ID = {row["id"]: row for row in ROWS}


# ---------------------------------------------------------------------------
# Pure helpers


def test_is_user_calling_license():
    assert licensing.is_user_calling_license("Webex Calling - Professional")
    assert licensing.is_user_calling_license(" webex calling - standard ")
    assert not licensing.is_user_calling_license("Webex Calling - Workspaces")
    assert not licensing.is_user_calling_license(None)


def test_site_urls_of_subscription():
    assert licensing.site_urls_of_subscription(ROWS, "Sub-A100") == [
        "acme-a.webex.com",
        "acme-c.webex.com",
    ]
    assert licensing.site_urls_of_subscription(ROWS, "Sub-B200") == ["acme-b.webex.com"]
    assert licensing.site_urls_of_subscription(ROWS, "Sub-X") == []


def test_decide_defaults_uses_customer_defaults():
    decision = licensing.decide_user_license_defaults(
        "Acme", ROWS, "Sub-A100", "https://ACME-A.webex.com/"
    )
    assert decision.subscription_id == "Sub-A100"
    assert decision.site_url == "acme-a.webex.com"


def test_decide_defaults_site_url_overrides_default():
    decision = licensing.decide_user_license_defaults(
        "Acme", ROWS, "Sub-A100", "acme-a.webex.com", site_url="acme-c.webex.com"
    )
    assert decision.site_url == "acme-c.webex.com"


def test_decide_defaults_site_url_of_other_subscription():
    with pytest.raises(LicensingError) as caught:
        licensing.decide_user_license_defaults(
            "Acme", ROWS, "Sub-A100", "acme-a.webex.com", site_url="acme-b.webex.com"
        )
    message = str(caught.value)
    assert "site_url 'acme-b.webex.com' is not a site URL of subscription 'Sub-A100'" in message
    assert "found: acme-a.webex.com, acme-c.webex.com" in message


def test_decide_defaults_without_licenses():
    with pytest.raises(LicensingError, match="no licenses in the inventory.*webex_license_sync"):
        licensing.decide_user_license_defaults("Acme", [], "Sub-A100")


def test_decide_defaults_missing_subscription():
    with pytest.raises(LicensingError) as caught:
        licensing.decide_user_license_defaults("Acme", ROWS)
    assert "several subscriptions (Sub-A100, Sub-B200)" in str(caught.value)
    assert "set default_subscription_id" in str(caught.value)


def test_decide_defaults_unknown_subscription():
    with pytest.raises(LicensingError, match="default_subscription_id 'Sub-Z' is not a"):
        licensing.decide_user_license_defaults("Acme", ROWS, "Sub-Z")


def test_decide_defaults_unknown_site_url():
    with pytest.raises(LicensingError, match="default_site_url 'gone.webex.com' is not a"):
        licensing.decide_user_license_defaults("Acme", ROWS, "Sub-A100", "gone.webex.com")


def test_mark_managed_leaves_input_alone():
    decision = licensing.effective_defaults(ROWS, "Sub-A100", "acme-a.webex.com")
    marked = licensing.mark_managed(ROWS, decision)
    assert [row["id"] for row in marked if row["managed"]] == ["M-A", "C-A", "ADV-A"]
    assert "managed" not in ROWS[0]


def test_split_applied_changes_partial():
    applied = licensing.split_applied_changes(
        ["C-A", "ADV-A"], ["C-B", "M-B"], ["ADV-A", "C-B", "MSG"]
    )
    assert applied.added == ("ADV-A",)
    assert applied.not_added == ("C-A",)
    assert applied.removed == ("M-B",)
    assert applied.not_removed == ("C-B",)
    assert not applied.complete


def test_split_applied_changes_complete():
    applied = licensing.split_applied_changes(["C-A"], ["C-B"], ["C-A", "MSG"])
    assert applied == licensing.AppliedChanges(("C-A",), ("C-B",), (), ())
    assert applied.complete


def test_describe_kept_licenses_reasons():
    kept = licensing.describe_kept_licenses(["M-A", "MSG", "C-B", "NEW"], BY_ID, ["M-A"])
    assert [(item["id"], item["reason"]) for item in kept] == [
        ("MSG", licensing.KEPT_UNSUBSCRIBED),
        ("C-B", licensing.KEPT_OUTSIDE_DEFAULTS),
        ("NEW", licensing.KEPT_NOT_IN_INVENTORY),
    ]
    assert kept[1]["subscription_id"] == "Sub-B200"
    assert kept[2]["name"] is None


# ---------------------------------------------------------------------------
# Orchestration with a fake client


PERSON = {
    "id": "P1",
    "emails": ["ann@acme.example"],
    "displayName": "Ann",
    "licenses": ["MSG", "SS", "M-A", "C-B"],
    "locationId": "LOC-1",
}


class FakeClient:
    """Stands in for WebexClient: one person, PATCH applied except for failing_ids."""

    def __init__(self, person, failing_ids=(), rejection=None, locations=()):
        self.person = copy.deepcopy(person)
        self.failing_ids = set(failing_ids)
        self.rejection = rejection
        self.locations = list(locations)
        self.org_id = None
        self.stats = {"requests": 0}
        self.patches = []
        self.live_units = {}
        self.license_error = None

    def find_person(self, user):
        if user in (self.person["id"], self.person["emails"][0]):
            return copy.deepcopy(self.person)
        return None

    def get_person(self, person_id, calling_data=True):
        return copy.deepcopy(self.person)

    def iter_locations(self):
        yield self.locations

    def get_license(self, license_id, include_users=False):
        # Live counts read before a replacement: free units unless a test sets none.
        if self.license_error is not None:
            raise self.license_error
        total, consumed = self.live_units.get(license_id, (100, 0))
        return {"id": license_id, "totalUnits": total, "consumedUnits": consumed}

    def assign_licenses(self, person_id=None, email=None, licenses=(), site_urls=()):
        self.patches.append(list(licenses))
        if self.rejection is not None:
            raise self.rejection
        held = list(self.person["licenses"])
        failed = 0
        for change in licenses:
            if change["id"] in self.failing_ids:
                failed += 1
            elif change["operation"] == "add":
                held.append(change["id"])
            else:
                held.remove(change["id"])
        self.person["licenses"] = held
        body = {"personId": person_id, "licenses": held}
        return WebexResponse(206 if failed else 200, body, {"Trackingid": "ROUTER_1"})


@pytest.fixture
def store(tmp_path):
    with InventoryStore(str(tmp_path / "inventory.db")) as opened:
        opened.upsert_customer(
            "Acme", org_id="ORG-1", default_subscription_id="Sub-A100",
            default_site_url="acme-a.webex.com",
        )
        session = opened.begin_sync("Acme", scope=("licenses", "people", "locations"))
        session.stage_licenses(LICENSES)
        session.stage_people([PERSON])
        session.stage_locations([{"id": "LOC-1", "name": "Head Office"},
                                 {"id": "LOC-2", "name": "Branch"}])
        session.commit()
        yield opened


def params(**options):
    values = {"customer": "Acme", "user": "ann@acme.example", "licenses": [],
              "state": "present", "location": None, "extension": None,
              "phone_number": None, "site_url": None, "org_id": None}
    values.update(options)
    return values


def consumed(store, license_id):
    return {row["id"]: row for row in store.license_rows(customer="Acme")}[license_id][
        "consumed_units"
    ]


def test_adds_calling_license_with_location(store):
    client = FakeClient(dict(PERSON, licenses=["MSG", "SS"], locationId=None))
    change = UserLicenseChange(
        params(licenses=["webex calling - professional"], location="head office",
               extension="4711"),
        store, client,
    )

    result = change.run()

    assert result["changed"] is True
    assert [item["id"] for item in result["added"]] == ["C-A"]
    assert client.patches == [[{"id": "C-A", "operation": "add", "properties": {
        "locationId": "LOC-1", "extension": "4711"}}]]
    assert client.org_id == "ORG-1"
    assert consumed(store, "C-A") == 5
    assert "C-A" in store.find_person("Acme", "P1")["license_ids"]


def test_calling_without_location_sends_nothing(store):
    client = FakeClient(dict(PERSON, licenses=["MSG", "SS", "M-A"], locationId=None))
    change = UserLicenseChange(
        params(licenses=["Webex Calling - Professional"], extension="4711"), store, client
    )

    with pytest.raises(UserLicenseError, match="has no location: set location"):
        change.run()
    assert client.patches == []


def test_calling_without_extension_fails(store):
    client = FakeClient(dict(PERSON, licenses=["MSG", "SS", "M-A"]))
    change = UserLicenseChange(params(licenses=["Webex Calling - Professional"]), store, client)

    with pytest.raises(UserLicenseError, match="set extension or phone_number"):
        change.run()
    assert client.patches == []


def test_unknown_location_tries_live(store):
    client = FakeClient(dict(PERSON, licenses=["MSG"]), locations=[{"id": "L9", "name": "New"}])
    change = UserLicenseChange(
        params(licenses=["Webex Calling - Professional"], location="Nowhere",
               extension="1"),
        store, client,
    )
    with pytest.raises(UserLicenseError, match="location 'Nowhere' was not found"):
        change.run()

    live = UserLicenseChange(
        params(licenses=["Webex Calling - Professional"], location="new", extension="1"),
        store, client,
    )
    live.run()
    assert client.patches[-1][0]["properties"]["locationId"] == "L9"


def test_change_check_mode_sends_nothing(store):
    client = FakeClient(PERSON)
    change = UserLicenseChange(params(licenses=["Advanced Messaging"]), store, client,
                               check_mode=True)

    result = change.run()

    assert result["changed"] is True
    assert [item["id"] for item in result["added"]] == ["ADV-A"]
    assert client.patches == []
    assert consumed(store, "ADV-A") == 0
    assert "Advanced Messaging (Sub-A100)" in result["diff"]["after"]["licenses"]
    assert "Advanced Messaging (Sub-A100)" not in result["diff"]["before"]["licenses"]


def test_exact_keeps_bundled_licenses(store):
    client = FakeClient(PERSON)
    change = UserLicenseChange(
        params(licenses=["Meeting - Webex Enterprise Edition"], state="exact"), store, client
    )

    result = change.run()

    assert [item["id"] for item in result["removed"]] == ["C-B"]
    assert result["added"] == []
    assert {item["id"]: item["reason"] for item in result["kept"]} == {
        "MSG": "unsubscribed", "SS": "unsubscribed"}
    assert consumed(store, "C-B") == 0


def test_change_present_is_idempotent(store):
    client = FakeClient(PERSON)
    change = UserLicenseChange(params(licenses=["Meeting - Webex Enterprise Edition"]),
                               store, client)

    result = change.run()

    assert result["changed"] is False
    assert client.patches == []
    assert {item["id"]: item["reason"] for item in result["kept"]}["C-B"] == "outside_defaults"


def test_present_refuses_second_calling_license(store):
    """Ann has Webex Calling - Professional of Sub-B200. Present neither adds the default's
    beside it nor replaces it, because a failed addition would end her calling."""
    client = FakeClient(PERSON)
    change = UserLicenseChange(
        params(licenses=["Webex Calling - Professional"], extension="4711"), store, client
    )

    with pytest.raises(UserLicenseError) as caught:
        change.run()

    message = str(caught.value)
    assert "has Webex Calling - Professional (Sub-B200)" in message
    assert "a user has one calling license" in message
    assert "state=exact" in message
    assert client.patches == []


def test_exact_replaces_calling_license_in_one_request(store):
    client = FakeClient(PERSON)
    change = UserLicenseChange(
        params(licenses=["Webex Calling - Professional", "Meeting - Webex Enterprise Edition"],
               state="exact", extension="4711"),
        store, client,
    )

    result = change.run()

    assert [item["id"] for item in result["added"]] == ["C-A"]
    assert [item["id"] for item in result["removed"]] == ["C-B"]
    assert len(client.patches) == 1
    assert (consumed(store, "C-A"), consumed(store, "C-B")) == (5, 0)


def add_on_store(tmp_path, adv_b_total=10):
    """An inventory where Advanced Messaging exists in both subscriptions."""
    licenses = LICENSES + [api_license("ADV-B", "Advanced Messaging", "Sub-B200",
                                       total=adv_b_total, consumed=1)]
    opened = InventoryStore(str(tmp_path / "addon.db"))
    opened.upsert_customer("Acme", org_id="ORG-1", default_subscription_id="Sub-A100",
                           default_site_url="acme-a.webex.com")
    session = opened.begin_sync("Acme", scope=("licenses", "people"))
    session.stage_licenses(licenses)
    session.stage_people([dict(PERSON, licenses=["MSG", "M-A", "ADV-B"])])
    session.commit()
    return opened


def test_present_replaces_add_on_of_other_subscription(tmp_path):
    with add_on_store(tmp_path) as opened:
        client = FakeClient(dict(PERSON, licenses=["MSG", "M-A", "ADV-B"]))
        change = UserLicenseChange(params(licenses=["Advanced Messaging"]), opened, client)

        result = change.run()

        assert [item["id"] for item in result["added"]] == ["ADV-A"]
        assert [item["id"] for item in result["removed"]] == ["ADV-B"]
        assert sorted(client.person["licenses"]) == ["ADV-A", "M-A", "MSG"]
        assert (consumed(opened, "ADV-A"), consumed(opened, "ADV-B")) == (1, 0)


def test_replacement_without_units_left_changes_nothing(tmp_path):
    with add_on_store(tmp_path) as opened:
        with opened._conn:
            opened._conn.execute("UPDATE licenses SET consumed_units = total_units "
                                 "WHERE id = 'ADV-A'")
        client = FakeClient(dict(PERSON, licenses=["MSG", "M-A", "ADV-B"]))
        change = UserLicenseChange(params(licenses=["Advanced Messaging"]), opened, client)

        with pytest.raises(UserLicenseError, match="has no units left in the inventory"):
            change.run()
        assert client.patches == []


def test_meeting_license_of_other_site_is_kept(store):
    client = FakeClient(dict(PERSON, licenses=["MSG", "M-A2", "M-B"]))
    change = UserLicenseChange(
        params(licenses=["Meeting - Webex Enterprise Edition"]), store, client
    )

    result = change.run()

    assert [item["id"] for item in result["added"]] == ["M-A"]
    assert result["removed"] == []
    assert sorted(client.person["licenses"]) == ["M-A", "M-A2", "M-B", "MSG"]


def test_absent_removes_add_on_of_other_subscription(tmp_path):
    with add_on_store(tmp_path) as opened:
        client = FakeClient(dict(PERSON, licenses=["MSG", "M-A", "ADV-A", "ADV-B"]))
        change = UserLicenseChange(
            params(licenses=["Advanced Messaging"], state="absent"), opened, client
        )

        result = change.run()

        assert sorted(item["id"] for item in result["removed"]) == ["ADV-A", "ADV-B"]
        assert sorted(client.person["licenses"]) == ["M-A", "MSG"]


def messaging_and_calling_change(store, client):
    """Return a change that adds Advanced Messaging and Webex Calling - Professional."""
    return UserLicenseChange(
        params(licenses=["Advanced Messaging", "Webex Calling - Professional"], extension="1"),
        store, client,
    )


def test_partial_success_records_applied(store):
    client = FakeClient(dict(PERSON, licenses=["MSG"]), failing_ids={"C-A"})
    change = UserLicenseChange(
        params(licenses=["Advanced Messaging", "Webex Calling - Professional"],
               extension="1"),
        store, client,
    )

    with pytest.raises(UserLicenseError) as caught:
        change.run()

    error = caught.value
    assert error.changed is True
    assert "assigned: Advanced Messaging (Sub-A100)" in error.message
    assert "not assigned: Webex Calling - Professional (Sub-A100)" in error.message
    assert [item["id"] for item in error.details["not_added"]] == ["C-A"]
    assert [item["id"] for item in error.details["added"]] == ["ADV-A"]
    assert consumed(store, "ADV-A") == 1
    assert consumed(store, "C-A") == 4


def test_partial_change_diff_shows_applied(store):
    client = FakeClient(dict(PERSON, licenses=["MSG"]), failing_ids={"C-A"})

    with pytest.raises(UserLicenseError) as caught:
        messaging_and_calling_change(store, client).run()

    diff = caught.value.details["diff"]
    assert "Advanced Messaging (Sub-A100)" in diff["after"]["licenses"]
    assert not any(label.startswith("Webex Calling - Professional")
                   for label in diff["after"]["licenses"])
    # The calling license was not applied, so the diff shows no calling details either.
    assert "calling" not in diff["after"]


def test_location_name_of_two_is_ambiguous(tmp_path):
    with InventoryStore(str(tmp_path / "inventory.db")) as opened:
        opened.upsert_customer("Acme", org_id="ORG-1", default_subscription_id="Sub-A100",
                               default_site_url="acme-a.webex.com")
        session = opened.begin_sync("Acme", scope=("licenses", "people", "locations"))
        session.stage_licenses(LICENSES)
        session.stage_people([PERSON])
        session.stage_locations([{"id": "LOC-2", "name": "Branch"},
                                 {"id": "LOC-3", "name": "Branch"}])
        session.commit()
        client = FakeClient(dict(PERSON, licenses=["MSG"], locationId=None))
        change = UserLicenseChange(
            params(licenses=["Webex Calling - Professional"], location="Branch",
                   extension="4711"), opened, client)

        with pytest.raises(UserLicenseError, match="matches 2 locations"):
            change.run()

        assert client.patches == []


def test_rejected_change_keeps_inventory(store):
    rejection = WebexApiError("License conflict", "PATCH", "/licenses/users", 400,
                              error_codes=[400404], tracking_id="ROUTER_2")
    client = FakeClient(PERSON, rejection=rejection)
    change = UserLicenseChange(params(licenses=["Advanced Messaging"]), store, client)

    with pytest.raises(UserLicenseError) as caught:
        change.run()

    assert "errorCode: 400404" in caught.value.message
    assert caught.value.details["error_codes"] == [400404]
    assert caught.value.changed is False
    assert consumed(store, "ADV-A") == 0


def test_name_only_in_other_subscription(store):
    change = UserLicenseChange(params(licenses=["Webex Attendant Console"]), store,
                               FakeClient(PERSON))
    with pytest.raises(UserLicenseError, match="subscriptions: Sub-B200"):
        change.run()


def test_change_unknown_user(store):
    change = UserLicenseChange(params(user="bob@acme.example", licenses=["Advanced Messaging"]),
                               store, FakeClient(PERSON))
    with pytest.raises(UserLicenseError, match="user 'bob@acme.example' was not found"):
        change.run()


def test_change_unknown_customer(store):
    change = UserLicenseChange(params(customer="Nobody"), store, FakeClient(PERSON))
    with pytest.raises(UserLicenseError, match="add the customer with ucops.webex.webex_customer"):
        change.run()


def test_change_org_id_mismatch(store):
    change = UserLicenseChange(params(org_id="ORG-2"), store, FakeClient(PERSON))
    with pytest.raises(UserLicenseError, match="does not match org_id 'ORG-1'"):
        change.run()


def test_database_error_after_patch_reported(store, monkeypatch):
    client = FakeClient(dict(PERSON, licenses=["MSG", "SS", "M-A"]))

    def full_disk(*_args, **_kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store, "record_user_licenses", full_disk)
    change = UserLicenseChange(params(licenses=["Advanced Messaging"]), store, client)

    with pytest.raises(UserLicenseError) as raised:
        change.run()

    # Webex has the change, so the task reports changed and advises a sync.
    assert raised.value.changed is True
    assert "were changed in Webex, but the inventory " in raised.value.message
    assert f"{store.path} could not record it: database or disk is full" in (
        raised.value.message
    )
    assert ("To bring the inventory up to date, free disk space on its file system, then run "
            "ucops.webex.webex_license_sync for customer") in raised.value.message
    assert client.patches == [[{"id": "ADV-A", "operation": "add"}]]


class ReadFailsAfterPatch(FakeClient):
    """The PATCH works; reading the user afterwards fails with a server error."""

    def __init__(self, person, body_licenses=True, **options):
        super().__init__(person, **options)
        self.body_licenses = body_licenses

    def get_person(self, person_id, calling_data=True):
        if self.patches:
            raise WebexApiError("Internal server error", "GET", f"/people/{person_id}", 500)
        return super().get_person(person_id, calling_data)

    def assign_licenses(self, **arguments):
        response = super().assign_licenses(**arguments)
        if not self.body_licenses:
            return WebexResponse(response.status, {"personId": arguments.get("person_id")},
                                 response.headers)
        return response


@pytest.mark.parametrize("body_licenses", [True, False])
def test_failed_reread_records_change(store, body_licenses):
    client = ReadFailsAfterPatch(PERSON, body_licenses=body_licenses)
    change = UserLicenseChange(params(licenses=["Advanced Messaging"]), store, client)

    result = change.run()

    assert result["changed"] is True
    assert [item["id"] for item in result["added"]] == ["ADV-A"]
    assert consumed(store, "ADV-A") == 1
    assert "ADV-A" in store.find_person("Acme", "P1")["license_ids"]
    assert len(change.warnings) == 1
    assert "reading the user again failed" in change.warnings[0]
    assert "Internal server error" in change.warnings[0]


def test_failed_reread_partial_asks_sync(store):
    client = ReadFailsAfterPatch(dict(PERSON, licenses=["MSG"]), body_licenses=False,
                                 failing_ids={"C-A"})
    change = messaging_and_calling_change(store, client)

    with pytest.raises(UserLicenseError) as caught:
        change.run()

    assert caught.value.changed is True
    assert "HTTP 206" in caught.value.message
    assert "run ucops.webex.webex_license_sync" in caught.value.message
    assert consumed(store, "ADV-A") == 0
    assert consumed(store, "C-A") == 4


def test_assignable_rejects_workspace_license():
    rows = {
        "W": licensing.normalize_license(
            api_license("W", "webex calling - WORKSPACES", "Sub-A100", total=5)),
        "C-A": BY_ID["C-A"],
    }
    licensing.check_user_assignable(["C-A", "UNKNOWN"], rows)
    with pytest.raises(LicensingError, match=r"'webex calling - WORKSPACES \(Sub-A100\)' is for "
                                             "workspaces and cannot be assigned to a user"):
        licensing.check_user_assignable(["C-A", "W"], rows)


class PatchOutcomeUnknown(FakeClient):
    """The PATCH ends in a timeout, after it was applied or not; reads may fail too."""

    def __init__(self, person, applied=True, read_fails=False, **options):
        super().__init__(person, **options)
        self.applied = applied
        self.read_fails = read_fails

    def assign_licenses(self, **arguments):
        if self.applied:
            super().assign_licenses(**arguments)
        else:
            self.patches.append(list(arguments["licenses"]))
        raise WebexApiError("timed out after 30 s waiting for the response", "PATCH",
                            "/licenses/users")

    def get_person(self, person_id, calling_data=True):
        if self.read_fails and self.patches:
            raise WebexApiError("the connection failed", "GET", f"/people/{person_id}")
        return super().get_person(person_id, calling_data)


def test_timeout_after_applied_change(store):
    change = UserLicenseChange(params(licenses=["Advanced Messaging"]), store,
                               PatchOutcomeUnknown(PERSON))

    result = change.run()

    assert result["changed"] is True
    assert consumed(store, "ADV-A") == 1
    assert "Webex applied the whole change" in change.warnings[0]


def test_timeout_without_change_fails_unchanged(store):
    change = UserLicenseChange(params(licenses=["Advanced Messaging"]), store,
                               PatchOutcomeUnknown(PERSON, applied=False))

    with pytest.raises(UserLicenseError) as caught:
        change.run()

    assert caught.value.changed is False
    assert "got no response" in caught.value.message
    assert "Webex may still apply the request" in caught.value.message
    assert consumed(store, "ADV-A") == 0


def test_timeout_and_failed_read_unknown(store):
    change = UserLicenseChange(params(licenses=["Advanced Messaging"]), store,
                               PatchOutcomeUnknown(PERSON, read_fails=True))

    with pytest.raises(UserLicenseError) as caught:
        change.run()

    assert caught.value.changed is True
    assert "not known whether Webex applied the change" in caught.value.message
    assert "timed out after 30 s" in caught.value.message
    assert consumed(store, "ADV-A") == 0


def test_timeout_with_partial_change(store):
    client = PatchOutcomeUnknown(dict(PERSON, licenses=["MSG"]), failing_ids={"C-A"})
    change = messaging_and_calling_change(store, client)

    with pytest.raises(UserLicenseError) as caught:
        change.run()

    assert caught.value.changed is True
    assert "applied only part of the change" in caught.value.message
    assert "not assigned: Webex Calling - Professional (Sub-A100)" in caught.value.message
    assert consumed(store, "ADV-A") == 1


class RefreshFailsAfter401(FakeClient):
    """The PATCH gets 401, and the token refresh then fails without a response."""

    def assign_licenses(self, **arguments):
        self.patches.append(list(arguments["licenses"]))
        raise WebexApiError("the connection to the token endpoint failed", "POST",
                            "/v1/access_token")


def test_failed_refresh_after_401_unchanged(store):
    client = RefreshFailsAfter401(PERSON)
    change = UserLicenseChange(params(licenses=["Advanced Messaging"]), store, client)

    with pytest.raises(UserLicenseError) as caught:
        change.run()

    assert caught.value.changed is False
    assert "was rejected and nothing was changed" in caught.value.message
    assert consumed(store, "ADV-A") == 0


@pytest.mark.parametrize("state", ["absent", "exact"])
def test_user_without_licenses_field_fails_before_any_change(store, state):
    """A user returned without a licenses list (a token that is no administrator's) cannot
    be managed: read as "no licenses", absent would do nothing and exact would add again."""
    client = FakeClient(PERSON)
    client.person.pop("licenses")
    change = UserLicenseChange(params(licenses=["Advanced Messaging"], state=state),
                               store, client)

    with pytest.raises(UserLicenseError, match="without a 'licenses' list"):
        change.run()

    assert client.patches == []


class LaggingClient(FakeClient):
    """Applies the change and lists it in the response, but a read right after it still
    returns the user as before (a read that lags behind the change)."""

    def __init__(self, person):
        super().__init__(person)
        self.stale = copy.deepcopy(person)

    def get_person(self, person_id, calling_data=True):
        return copy.deepcopy(self.stale)


def test_response_licenses_beat_lagging_read(store):
    client = LaggingClient(PERSON)
    change = UserLicenseChange(params(licenses=["Advanced Messaging"]), store, client)

    result = change.run()

    assert result["changed"] is True
    assert [item["id"] for item in result["added"]] == ["ADV-A"]
    assert "Advanced Messaging (Sub-A100)" in result["diff"]["after"]["licenses"]
    assert "ADV-A" in store.find_person("Acme", "ann@acme.example")["license_ids"]


def test_read_only_inventory_sends_no_change(store, monkeypatch):
    """A file that opens but cannot be written fails the task before the PATCH, instead of
    after Webex applied the change."""
    read_only = sqlite3.connect(f"file:{store.path}?mode=ro", uri=True, isolation_level=None)
    read_only.row_factory = sqlite3.Row
    monkeypatch.setattr(store, "_conn", read_only)
    client = FakeClient(PERSON)
    change = UserLicenseChange(params(licenses=["Advanced Messaging"]), store, client)

    with pytest.raises(UserLicenseError) as caught:
        change.run()

    message = str(caught.value)
    assert f"the inventory database {store.path} cannot be written" in message
    assert "readonly database" in message
    assert "the change was not sent to Webex" in message
    assert client.patches == []
    assert not caught.value.changed


def test_writable_check_changes_nothing(store):
    version = store._conn.execute("PRAGMA user_version").fetchone()[0]
    store.check_writable()
    assert store._conn.execute("PRAGMA user_version").fetchone()[0] == version
    assert not store._conn.in_transaction


def test_unknown_location_fails_when_calling_is_held(store):
    """Ann holds no calling license of the defaults but this task adds none either; the
    unknown location is still bad input."""
    client = FakeClient(PERSON)
    change = UserLicenseChange(
        params(licenses=["Meeting - Webex Enterprise Edition"], location="Atlantis",
               extension="7777"),
        store, client,
    )

    with pytest.raises(UserLicenseError, match="location 'Atlantis' was not found"):
        change.run()
    assert client.patches == []


def test_calling_options_not_applied_are_named(store):
    client = FakeClient(dict(PERSON, licenses=["MSG", "SS", "M-A", "C-A"], extension="1000"))
    change = UserLicenseChange(
        params(licenses=["Webex Calling - Professional"], location="Branch", extension="7777"),
        store, client,
    )

    result = change.run()

    assert result["changed"] is False
    assert client.patches == []
    # The fake user has C-A, which the inventory (C-B) lacks, so that is warned about too.
    options = [text for text in change.warnings if "differ from Webex" not in text]
    assert len(options) == 1
    assert options[0].startswith(
        "location and extension of user 'ann@acme.example' were not applied")


def test_calling_options_equal_to_the_users_no_warning(store):
    """A repeated run with the options of the first one changes nothing and warns of nothing."""
    client = FakeClient(dict(PERSON, licenses=["MSG", "SS", "M-A", "C-A"], extension="4711",
                             phoneNumbers=[{"type": "work", "value": "+1 408 526 7209"}]))
    change = UserLicenseChange(
        params(licenses=["Webex Calling - Professional"], location="Head Office",
               extension="4711", phone_number="+14085267209"),
        store, client,
    )

    result = change.run()

    assert result["changed"] is False
    assert [text for text in change.warnings if "differ from Webex" not in text] == []


def test_locked_inventory_sends_no_change(store, monkeypatch):
    def locked():
        raise InventoryLockedError(f"inventory database {store.path} stayed locked")

    monkeypatch.setattr(store, "check_writable", locked)
    client = FakeClient(PERSON)
    change = UserLicenseChange(params(licenses=["Advanced Messaging"]), store, client)

    with pytest.raises(UserLicenseError) as caught:
        change.run()

    assert "stayed locked by other tasks (syncs or license changes)" in str(caught.value)
    assert "write access" not in str(caught.value)
    assert client.patches == []


def test_absent_removes_calling_license_of_other_subscription(store):
    """Ann holds Webex Calling - Professional of Sub-B200 only: absent removes it, as the
    refusal of a second calling license advises."""
    client = FakeClient(PERSON)
    change = UserLicenseChange(
        params(licenses=["Webex Calling - Professional"], state="absent"), store, client
    )

    result = change.run()

    assert [item["id"] for item in result["removed"]] == ["C-B"]
    assert "C-B" not in client.person["licenses"]


def test_exact_calling_swap_without_units_changes_nothing(store):
    with store._conn:
        store._conn.execute("UPDATE licenses SET consumed_units = total_units WHERE id = 'C-A'")
    client = FakeClient(PERSON)
    change = UserLicenseChange(
        params(licenses=["Webex Calling - Professional", "Meeting - Webex Enterprise Edition"],
               state="exact", extension="4711"),
        store, client,
    )

    with pytest.raises(UserLicenseError, match="has no units left in the inventory, so it "
                                               "cannot replace Webex Calling - Professional"):
        change.run()
    assert client.patches == []


def test_full_license_that_replaces_nothing_goes_to_webex(tmp_path):
    """Only a replacement is refused for want of units; another full license is left for
    Webex to refuse, as before."""
    with add_on_store(tmp_path) as opened:
        with opened._conn:
            opened._conn.execute("UPDATE licenses SET consumed_units = total_units "
                                 "WHERE id = 'C-A'")
        client = FakeClient(dict(PERSON, licenses=["MSG", "M-A", "ADV-B"]))
        change = UserLicenseChange(
            params(licenses=["Advanced Messaging", "Webex Calling - Professional"],
                   extension="4711"),
            opened, client,
        )

        change.run()

        assert len(client.patches) == 1


def test_unapplied_phone_number_compared_with_work_numbers(store):
    client = FakeClient(dict(PERSON, licenses=["MSG", "M-A"], phoneNumbers=[
        {"type": "mobile", "value": "+1 408 555 0100"}]))
    change = UserLicenseChange(
        params(licenses=["Meeting - Webex Enterprise Edition"], phone_number="+14085550100"),
        store, client,
    )

    change.run()

    assert change.warnings and change.warnings[0].startswith("phone_number of user")


def test_replacement_units_read_live(store):
    """The inventory shows free units of C-A, but Webex has none left: the replacement of
    the user's C-B fails before any change."""
    client = FakeClient(PERSON)
    client.live_units["C-A"] = (30, 30)
    change = UserLicenseChange(
        params(licenses=["Webex Calling - Professional", "Meeting - Webex Enterprise Edition"],
               state="exact", extension="4711"),
        store, client,
    )

    with pytest.raises(UserLicenseError, match=r"no units left in Webex \(read just now\)"):
        change.run()

    assert client.patches == []


def test_inventory_difference_warned(store):
    client = FakeClient(dict(PERSON, licenses=["MSG", "SS", "M-A", "C-A"]))
    change = UserLicenseChange(params(licenses=["Webex Calling - Professional"]), store, client)

    result = change.run()

    assert result["changed"] is False
    difference = [text for text in change.warnings if "differ from Webex" in text]
    assert len(difference) == 1
    assert "Webex shows Webex Calling - Professional (Sub-A100)" in difference[0]
    assert "the inventory shows Webex Calling - Professional (Sub-B200)" in difference[0]


def test_replacement_units_read_failure_changes_nothing(store):
    client = FakeClient(PERSON)
    client.license_error = WebexApiError("forbidden", "GET", "/licenses/C-A", 403)
    change = UserLicenseChange(
        params(licenses=["Webex Calling - Professional", "Meeting - Webex Enterprise Edition"],
               state="exact", extension="4711"),
        store, client,
    )

    with pytest.raises(UserLicenseError, match=r"reading the units of Webex Calling - "
                       r"Professional \(Sub-A100\) before it replaces .* Nothing was changed"):
        change.run()

    assert client.patches == []


def test_kept_work_number_is_primary_digits():
    from ansible_collections.ucops.webex.plugins.module_utils.user_license import (
        _person_calling_value,
    )

    person = {"extension": "1007", "phoneNumbers": [
        {"type": "work_extension", "value": "81007"},
        {"type": "work", "value": "+1 555 000 0099", "primary": False},
        {"type": "work", "value": "+1 555 000 0007", "primary": True},
    ]}

    assert _person_calling_value(person, "phoneNumber") == "+15550000007"
    assert _person_calling_value(person, "extension") == "1007"
    assert _person_calling_value({"phoneNumbers": []}, "phoneNumber") is None
