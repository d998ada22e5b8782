"""Unit tests of the licensing helpers for listings, customer checks and sync diffs.

They cover the functions of plugins/module_utils/licensing.py that test_licensing.py and
test_user_license.py leave out: filters, distinct values, user entries, hierarchy paths,
org checks, labels, diff views, per-person license sets and the ambiguity message of
decide_user_license_defaults.
"""

from __future__ import annotations

import pytest

from ansible_collections.ucops.webex.plugins.module_utils import licensing
from ansible_collections.ucops.webex.plugins.module_utils.licensing import (
    DIFF_LICENSE_FIELDS,
    LicensingError,
    OrgCheck,
)


def api_license(license_id, name, subscription=None, site_url=None, total=10, consumed=0):
    item = {"id": license_id, "name": name, "totalUnits": total, "consumedUnits": consumed}
    if subscription is not None:
        item["subscriptionId"] = subscription
    if site_url is not None:
        item["siteUrl"] = site_url
    return item


MEETING = "Meeting - Webex Meeting Center"
CALLING = "Webex Calling - Professional"

# Two subscriptions, meeting sites written with scheme, upper case and a trailing slash,
# names repeated across the subscriptions, and one unsubscribed license.
ROWS = [
    licensing.normalize_license(item)
    for item in (
        api_license("M-A", MEETING, "Sub-A100", "https://Borealis-A.webex.com/"),
        api_license("M-B", MEETING, "Sub-B200", "borealis-b.webex.com"),
        api_license("C-A", CALLING, "Sub-A100"),
        api_license("C-B", CALLING, "Sub-B200"),
        api_license("MSG", "Basic Messaging", total=40, consumed=40),
    )
]


def ids(rows):
    return [row["id"] for row in rows]


# ---------------------------------------------------------------------------
# filter_licenses


def test_filter_without_filters_keeps_all():
    assert ids(licensing.filter_licenses(ROWS)) == ["M-A", "M-B", "C-A", "C-B", "MSG"]


def test_filter_returns_copies():
    result = licensing.filter_licenses(ROWS, subscription_id="Sub-A100")
    result[0]["name"] = "changed"
    assert ROWS[0]["name"] == MEETING


def test_filter_empty_input():
    assert licensing.filter_licenses([], subscription_id="Sub-A100", site_url="x", name="y") == []


def test_filter_by_subscription():
    assert ids(licensing.filter_licenses(ROWS, subscription_id="Sub-A100")) == ["M-A", "C-A"]


def test_filter_subscription_strips_spaces():
    assert ids(licensing.filter_licenses(ROWS, subscription_id=" Sub-B200 ")) == ["M-B", "C-B"]


def test_filter_subscription_is_case_sensitive():
    assert licensing.filter_licenses(ROWS, subscription_id="sub-a100") == []


def test_filter_subscription_skips_unsubscribed():
    result = ids(licensing.filter_licenses(ROWS, subscription_id="Sub-A100"))
    assert "MSG" not in result


def test_filter_blank_subscription_ignored():
    assert len(licensing.filter_licenses(ROWS, subscription_id="  ")) == len(ROWS)


@pytest.mark.parametrize(
    "site_url",
    [
        "borealis-a.webex.com",
        "BOREALIS-A.WEBEX.COM",
        "https://borealis-a.webex.com",
        "http://Borealis-A.webex.com/",
        "borealis-a.webex.com///",
        "  borealis-a.webex.com  ",
    ],
)
def test_filter_site_url_normalized(site_url):
    assert ids(licensing.filter_licenses(ROWS, site_url=site_url)) == ["M-A"]


def test_filter_site_url_normalizes_rows():
    rows = [{"id": "X", "site_url": "HTTPS://Borealis-B.Webex.com/"}]
    assert ids(licensing.filter_licenses(rows, site_url="borealis-b.webex.com")) == ["X"]


def test_filter_site_url_skips_rows_without_site():
    result = ids(licensing.filter_licenses(ROWS, site_url="borealis-b.webex.com"))
    assert result == ["M-B"]


def test_filter_unknown_site_url():
    assert licensing.filter_licenses(ROWS, site_url="other.webex.com") == []


def test_filter_by_name():
    assert ids(licensing.filter_licenses(ROWS, name=CALLING)) == ["C-A", "C-B"]


def test_filter_name_ignores_case_as_the_inventory_does():
    assert ids(licensing.filter_licenses(ROWS, name=f" {CALLING.lower()} ")) == ["C-A", "C-B"]
    assert licensing.filter_licenses(ROWS, name=CALLING[:-1]) == []


def test_filter_combines_filters():
    result = licensing.filter_licenses(
        ROWS, subscription_id="Sub-B200", site_url="https://BOREALIS-B.webex.com/", name=MEETING
    )
    assert ids(result) == ["M-B"]


def test_filter_conflicting_filters_empty():
    result = licensing.filter_licenses(
        ROWS, subscription_id="Sub-A100", site_url="borealis-b.webex.com"
    )
    assert result == []


# ---------------------------------------------------------------------------
# distinct_subscriptions_and_site_urls


def test_distinct_values_of_rows():
    result = licensing.distinct_subscriptions_and_site_urls(ROWS)
    assert result == {
        "subscriptions": ["Sub-A100", "Sub-B200"],
        "site_urls": ["borealis-a.webex.com", "borealis-b.webex.com"],
        "site_urls_by_subscription": {"Sub-A100": ["borealis-a.webex.com"],
                                      "Sub-B200": ["borealis-b.webex.com"]},
    }


def test_distinct_values_merge_site_spellings():
    rows = [
        {"subscription_id": "S1", "site_url": "https://A.webex.com/"},
        {"subscription_id": "S1", "site_url": "a.webex.com"},
    ]
    result = licensing.distinct_subscriptions_and_site_urls(rows)
    assert result["site_urls"] == ["a.webex.com"]


def test_distinct_values_skip_none():
    rows = [{"subscription_id": None, "site_url": None}]
    result = licensing.distinct_subscriptions_and_site_urls(rows)
    assert result == {"subscriptions": [], "site_urls": [], "site_urls_by_subscription": {}}


def test_distinct_values_empty_input():
    result = licensing.distinct_subscriptions_and_site_urls([])
    assert result == {"subscriptions": [], "site_urls": [], "site_urls_by_subscription": {}}


# ---------------------------------------------------------------------------
# normalize_license_user and describe_license


def test_license_user_snake_case():
    user = {"id": "P1", "email": "a@example.com", "displayName": "A B", "type": "INTERNAL"}
    assert licensing.normalize_license_user(user) == {
        "id": "P1",
        "email": "a@example.com",
        "display_name": "A B",
        "type": "INTERNAL",
    }


def test_license_user_missing_fields_none():
    assert licensing.normalize_license_user({"id": "P1"}) == {
        "id": "P1",
        "email": None,
        "display_name": None,
        "type": None,
    }


def test_license_user_drops_other_fields():
    result = licensing.normalize_license_user({"id": "P1", "orgId": "ORG"})
    assert set(result) == {"id", "email", "display_name", "type"}


def test_describe_known_license():
    by_id = {row["id"]: row for row in ROWS}
    assert licensing.describe_license("M-A", by_id) == {
        "id": "M-A",
        "name": MEETING,
        "subscription_id": "Sub-A100",
        "site_url": "https://Borealis-A.webex.com/",
    }


def test_describe_unknown_license():
    assert licensing.describe_license("GONE", {}) == {
        "id": "GONE",
        "name": None,
        "subscription_id": None,
        "site_url": None,
    }


# ---------------------------------------------------------------------------
# hierarchy_node


def test_hierarchy_node_appends_names():
    assert licensing.hierarchy_node("Provider/Reseller", "Acme") == "Provider/Reseller/Acme"


def test_hierarchy_node_several_names():
    assert licensing.hierarchy_node("Provider", "Reseller", "Acme") == "Provider/Reseller/Acme"


def test_hierarchy_node_normalizes_path():
    assert licensing.hierarchy_node(" /Provider// Reseller/ ", "Acme") == "Provider/Reseller/Acme"


def test_hierarchy_node_without_hierarchy():
    assert licensing.hierarchy_node(None, "Acme") == "Acme"


def test_hierarchy_node_skips_empty_names():
    assert licensing.hierarchy_node("Provider", None, "", "Acme") == "Provider/Acme"


def test_hierarchy_node_without_names():
    assert licensing.hierarchy_node("Provider/Reseller/") == "Provider/Reseller"


def test_hierarchy_node_all_empty():
    assert licensing.hierarchy_node("", None) == ""


# ---------------------------------------------------------------------------
# plan_org_check

STORED = {
    "org_id": "ORG-1",
    "default_subscription_id": "Sub-A100",
    "default_site_url": "borealis-a.webex.com",
}


def test_org_check_new_customer_no_options():
    assert licensing.plan_org_check(None) == OrgCheck(False, None, None, None)


def test_org_check_new_customer_org_id():
    assert licensing.plan_org_check(None, org_id=" ORG-1 ") == OrgCheck(True, "ORG-1", None, None)


def test_org_check_new_customer_defaults():
    check = licensing.plan_org_check(
        None, default_subscription_id=" Sub-A100 ", default_site_url="HTTPS://A.webex.com/"
    )
    assert check == OrgCheck(True, None, "Sub-A100", "a.webex.com")


def test_org_check_unchanged_options():
    check = licensing.plan_org_check(STORED, "ORG-1", "Sub-A100", "borealis-a.webex.com")
    assert check == OrgCheck(False, "ORG-1", None, None)


def test_org_check_options_left_unset():
    assert licensing.plan_org_check(STORED) == OrgCheck(False, "ORG-1", None, None)


def test_org_check_same_site_other_spelling():
    check = licensing.plan_org_check(STORED, default_site_url="https://BOREALIS-A.webex.com/")
    assert check.needed is False


def test_org_check_same_subscription_spaces():
    check = licensing.plan_org_check(STORED, default_subscription_id=" Sub-A100 ")
    assert check.needed is False


def test_org_check_changed_subscription():
    # The kept site URL is checked too: it must belong to the new subscription.
    check = licensing.plan_org_check(STORED, default_subscription_id="Sub-B200")
    assert check == OrgCheck(True, "ORG-1", "Sub-B200", "borealis-a.webex.com")


def test_org_check_changed_site_url():
    check = licensing.plan_org_check(STORED, default_site_url="https://Borealis-B.webex.com/")
    assert check == OrgCheck(True, "ORG-1", "Sub-A100", "borealis-b.webex.com")


def test_org_check_new_org_revalidates_kept():
    check = licensing.plan_org_check(STORED, org_id="ORG-2")
    assert check == OrgCheck(True, "ORG-2", "Sub-A100", "borealis-a.webex.com")


def test_org_check_new_org_with_new_default():
    check = licensing.plan_org_check(STORED, org_id="ORG-2", default_subscription_id="Sub-C300")
    assert check == OrgCheck(True, "ORG-2", "Sub-C300", "borealis-a.webex.com")


def test_org_check_new_org_cleared_default():
    check = licensing.plan_org_check(STORED, org_id="ORG-2", default_site_url="")
    assert check == OrgCheck(True, "ORG-2", "Sub-A100", None)


def test_org_check_cleared_defaults():
    check = licensing.plan_org_check(STORED, default_subscription_id="", default_site_url="")
    assert check == OrgCheck(False, "ORG-1", None, None)


def test_org_check_cleared_org_id():
    # A blank org id makes the customer the token's own org, whose licenses must be checked.
    check = licensing.plan_org_check(STORED, org_id=" ")
    assert check == OrgCheck(True, None, "Sub-A100", "borealis-a.webex.com")


def test_org_check_stored_without_org():
    stored = {"org_id": None, "default_subscription_id": "Sub-A100"}
    check = licensing.plan_org_check(stored, default_subscription_id="Sub-B200")
    assert check == OrgCheck(True, None, "Sub-B200", None)


# ---------------------------------------------------------------------------
# license_label


def test_label_with_subscription_and_site():
    row = {"name": MEETING, "subscription_id": "Sub-A100", "site_url": "https://A.webex.com/"}
    assert licensing.license_label(row) == f"{MEETING} (Sub-A100, a.webex.com)"


def test_label_without_site():
    row = {"name": CALLING, "subscription_id": "Sub-A100", "site_url": None}
    assert licensing.license_label(row) == f"{CALLING} (Sub-A100)"


def test_label_without_subscription():
    row = {"name": "Basic Messaging", "subscription_id": None}
    assert licensing.license_label(row) == "Basic Messaging (no subscription)"


def test_label_site_without_subscription():
    row = {"name": "Meeting", "subscription_id": None, "site_url": "a.webex.com"}
    assert licensing.license_label(row) == "Meeting (no subscription, a.webex.com)"


def test_labels_tell_sites_apart():
    first = licensing.license_label(ROWS[0])
    second = licensing.license_label(ROWS[1])
    assert first != second


# ---------------------------------------------------------------------------
# license_change_diff


def diff_row(license_id, name, subscription="Sub-A100", total=10, consumed=0, **extra):
    row = {
        "id": license_id,
        "name": name,
        "subscription_id": subscription,
        "site_url": None,
        "total_units": total,
        "consumed_units": consumed,
        "consumed_by_users": consumed,
        "consumed_by_workspaces": 0,
        "available_units": max(total - consumed, 0),
        "managed": True,
        "utilization": 0.0,
    }
    row.update(extra)
    return row


def test_change_diff_empty():
    assert licensing.license_change_diff({}) == ({}, {})


def test_change_diff_none_lists():
    changes = {"added": None, "updated": None, "removed": None}
    assert licensing.license_change_diff(changes) == ({}, {})


def test_change_diff_added_only_after():
    before, after = licensing.license_change_diff({"added": [diff_row("C-A", CALLING)]})
    assert before == {}
    assert list(after) == [f"{CALLING} (Sub-A100)"]


def test_change_diff_removed_only_before():
    before, after = licensing.license_change_diff({"removed": [diff_row("C-A", CALLING)]})
    assert list(before) == [f"{CALLING} (Sub-A100)"]
    assert after == {}


def test_change_diff_updated_values():
    changes = {
        "updated": [
            {"before": diff_row("C-A", CALLING, consumed=1), "after": diff_row("C-A", CALLING)}
        ]
    }
    before, after = licensing.license_change_diff(changes)
    label = f"{CALLING} (Sub-A100)"
    assert before[label]["consumed_units"] == 1
    assert after[label]["consumed_units"] == 0
    assert before[label]["available_units"] == 9
    assert after[label]["available_units"] == 10


def test_change_diff_keeps_diff_fields():
    _before, after = licensing.license_change_diff({"added": [diff_row("C-A", CALLING)]})
    assert tuple(after[f"{CALLING} (Sub-A100)"]) == DIFF_LICENSE_FIELDS


def test_change_diff_missing_field_none():
    row = {"id": "X", "name": "Partial", "subscription_id": "S1", "total_units": 5}
    _before, after = licensing.license_change_diff({"added": [row]})
    assert after["Partial (S1)"]["consumed_units"] is None


def test_change_diff_same_label_gets_id():
    changes = {"added": [diff_row("C-1", CALLING), diff_row("C-2", CALLING)]}
    _before, after = licensing.license_change_diff(changes)
    assert sorted(after) == [f"{CALLING} (Sub-A100) [C-1]", f"{CALLING} (Sub-A100) [C-2]"]


def test_change_diff_label_clash_across_kinds():
    changes = {"added": [diff_row("C-1", CALLING)], "removed": [diff_row("C-2", CALLING)]}
    before, after = licensing.license_change_diff(changes)
    assert list(before) == [f"{CALLING} (Sub-A100) [C-2]"]
    assert list(after) == [f"{CALLING} (Sub-A100) [C-1]"]


def test_change_diff_unique_label_without_id():
    changes = {"added": [diff_row("C-1", CALLING), diff_row("C-2", CALLING, "Sub-B200")]}
    _before, after = licensing.license_change_diff(changes)
    assert sorted(after) == [f"{CALLING} (Sub-A100)", f"{CALLING} (Sub-B200)"]


def test_change_diff_renamed_uses_new_label():
    changes = {"updated": [{"before": diff_row("X", "Old"), "after": diff_row("X", "New")}]}
    before, after = licensing.license_change_diff(changes)
    assert list(before) == ["New (Sub-A100)"]
    assert list(after) == ["New (Sub-A100)"]


# ---------------------------------------------------------------------------
# person_license_sets


def test_person_sets_stored_before():
    before, after = licensing.person_license_sets(["C", "A"], ["D"], ["C"], stored_is_after=False)
    assert before == ["A", "C"]
    assert after == ["A", "D"]


def test_person_sets_stored_after():
    before, after = licensing.person_license_sets(["A", "D"], ["D"], ["C"], stored_is_after=True)
    assert before == ["A", "C"]
    assert after == ["A", "D"]


def test_person_sets_round_trip():
    before, after = licensing.person_license_sets(["A", "B"], ["C"], ["B"], False)
    assert licensing.person_license_sets(after, ["C"], ["B"], True) == (before, after)


def test_person_sets_empty():
    assert licensing.person_license_sets([], [], [], stored_is_after=False) == ([], [])


def test_person_sets_new_person():
    result = licensing.person_license_sets(["B", "A"], ["A", "B"], [], stored_is_after=True)
    assert result == ([], ["A", "B"])


def test_person_sets_removed_person():
    result = licensing.person_license_sets(["B", "A"], [], ["A", "B"], stored_is_after=False)
    assert result == (["A", "B"], [])


def test_person_sets_repeated_ids_once():
    before, after = licensing.person_license_sets(["A", "A"], ["B", "B"], [], False)
    assert before == ["A"]
    assert after == ["A", "B"]


# ---------------------------------------------------------------------------
# decide_user_license_defaults: several subscriptions and no default


def rejection_message(requested):
    with pytest.raises(LicensingError) as caught:
        licensing.decide_user_license_defaults("Borealis", ROWS, requested=requested)
    return str(caught.value)


NO_DEFAULT = (
    "customer 'Borealis' has several subscriptions (Sub-A100, Sub-B200) and no "
    "default_subscription_id, so none of its licenses can be assigned; set "
    "default_subscription_id with ucops.webex.webex_customer"
)


def test_decide_without_request_plain_message():
    assert rejection_message(()) == NO_DEFAULT


def test_decide_names_ambiguous_license():
    message = rejection_message([CALLING])
    expected = (
        f"license '{CALLING}' is in subscriptions Sub-A100, Sub-B200, "
        f"so the request is ambiguous: {NO_DEFAULT}"
    )
    assert message == expected


def test_decide_name_match_ignores_case():
    message = rejection_message([" webex calling - professional "])
    assert message.startswith(
        "license ' webex calling - professional ' is in subscriptions Sub-A100, Sub-B200"
    )


def test_decide_lists_each_ambiguous_license():
    message = rejection_message([MEETING, CALLING])
    prefix = (
        f"license '{MEETING}' is in subscriptions Sub-A100, Sub-B200; "
        f"license '{CALLING}' is in subscriptions Sub-A100, Sub-B200, so"
    )
    assert message.startswith(prefix)


def test_decide_repeated_request_named_once():
    message = rejection_message([CALLING, CALLING])
    assert message.count(f"license '{CALLING}'") == 1


def test_decide_license_id_not_ambiguous():
    assert rejection_message(["C-A"]) == NO_DEFAULT


def test_decide_unknown_license_not_named():
    assert rejection_message(["Nothing"]) == NO_DEFAULT


def test_decide_unsubscribed_license_not_named():
    assert rejection_message(["Basic Messaging"]) == NO_DEFAULT


def test_decide_only_ambiguous_names_listed():
    message = rejection_message(["C-A", CALLING, "Nothing"])
    assert message.startswith(f"license '{CALLING}' is in subscriptions Sub-A100, Sub-B200, so")


def test_decide_single_subscription_name():
    rows = ROWS + [licensing.normalize_license(api_license("ADV", "Advanced", "Sub-A100"))]
    with pytest.raises(LicensingError) as caught:
        licensing.decide_user_license_defaults("Borealis", rows, requested=["Advanced"])
    assert str(caught.value) == NO_DEFAULT


def test_decide_default_set_ignores_request():
    decision = licensing.decide_user_license_defaults(
        "Borealis", ROWS, "Sub-A100", "borealis-a.webex.com", requested=[CALLING]
    )
    assert decision.subscription_id == "Sub-A100"


def test_format_names_empty():
    assert licensing.format_names([]) == "none"


def test_format_names_over_limit():
    names = [f"n{i}" for i in range(5)]

    assert licensing.format_names(names, limit=3) == "n0, n1, n2, and 2 more"


def test_user_license_defaults_without_licenses_name_both_causes():
    with pytest.raises(licensing.LicensingError) as raised:
        licensing.decide_user_license_defaults("Empty Org", [])

    message = str(raised.value)
    assert "customer 'Empty Org' has no licenses in the inventory" in message
    assert "never synced, run ucops.webex.webex_license_sync" in message
    assert "its org had no licenses at the last sync" in message


def test_missing_customers_by_level():
    expected = [
        {"name": "Alpine", "hierarchy": "Keystone/North"},
        {"name": " Borealis ", "hierarchy": "Keystone//North/"},
        {"name": "Cobalt", "hierarchy": "Keystone/South"},
        {"name": "Drifter"},
        {"name": "Cobalt", "hierarchy": "Keystone/South"},
        {"name": ""},
    ]
    stored = ["Alpine"]
    missing = licensing.missing_customers

    # Every level: each missing name once, also those without a place.
    assert missing(expected, stored) == ["Borealis", "Cobalt", "Drifter"]
    assert missing(expected, stored, "Keystone") == ["Borealis", "Cobalt"]
    assert missing(expected, stored, "Keystone/North") == ["Borealis"]
    # A node is matched by whole levels, never by a name prefix.
    assert missing(expected, stored, "Keystone/Nor") == []
    # Names compare exactly, as the inventory does.
    assert missing([{"name": "alpine"}], stored) == ["alpine"]
