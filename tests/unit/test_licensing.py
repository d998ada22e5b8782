"""Unit tests of the pure licensing logic (plugins/module_utils/licensing.py)."""

from __future__ import annotations

import base64

import pytest

from ansible_collections.ucops.webex.plugins.module_utils import licensing
from ansible_collections.ucops.webex.plugins.module_utils.licensing import (
    DefaultsError,
    LicenseResolutionError,
    LicensingError,
)


def api_license(license_id, name, subscription=None, site_url=None, total=10, consumed=0, **extra):
    item = {"id": license_id, "name": name, "totalUnits": total, "consumedUnits": consumed}
    if subscription is not None:
        item["subscriptionId"] = subscription
    if site_url is not None:
        item["siteUrl"] = site_url
        item["siteType"] = "Control Hub managed site"
    item.update(extra)
    return item


def rows(*items):
    return [licensing.normalize_license(item) for item in items]


# Two subscriptions and two meeting sites, names repeated across them, plus an unsubscribed
# license: the shape of a partner customer with a renewal running beside the old contract.
BOREALIS = rows(
    api_license("M-A", "Meeting - Webex Meeting Center", "Sub-A100", "borealis-a.webex.com"),
    api_license("M-B", "Meeting - Webex Meeting Center", "Sub-B200", "borealis-b.webex.com"),
    api_license("C-A", "Webex Calling - Professional", "Sub-A100"),
    api_license("C-B", "Webex Calling - Professional", "Sub-B200"),
    api_license("MSG", "Basic Messaging", total=40, consumed=40),
)


# ---------------------------------------------------------------------------
# normalize_site_url and friends


@pytest.mark.parametrize(
    "value, expected",
    [
        ("acme.webex.com", "acme.webex.com"),
        ("https://Acme.Webex.com/", "acme.webex.com"),
        ("HTTP://acme.webex.com//", "acme.webex.com"),
        ("  acme.webex.com  ", "acme.webex.com"),
        ("acme.webex.com/meet", "acme.webex.com/meet"),
        ("", None),
        ("   ", None),
        ("https://", None),
        (None, None),
    ],
)
def test_normalize_site_url(value, expected):
    assert licensing.normalize_site_url(value) == expected


def test_site_urls_equal_ignores_case_scheme_slash():
    assert licensing.site_urls_equal("https://ACME.webex.com/", "acme.webex.com")
    assert not licensing.site_urls_equal("acme.webex.com", "acme2.webex.com")
    assert licensing.site_urls_equal(None, "")


def test_normalize_subscription_id():
    assert licensing.normalize_subscription_id("  Sub-A100 ") == "Sub-A100"
    assert licensing.normalize_subscription_id("") is None
    assert licensing.normalize_subscription_id(None) is None


@pytest.mark.parametrize(
    "value, expected",
    [
        ("Provider/Reseller", "Provider/Reseller"),
        ("/Provider//Reseller/", "Provider/Reseller"),
        (" Provider / Reseller ", "Provider/Reseller"),
        ("", ""),
        (None, ""),
    ],
)
def test_normalize_hierarchy(value, expected):
    assert licensing.normalize_hierarchy(value) == expected


@pytest.mark.parametrize(
    "hierarchy, prefix, expected",
    [
        ("Provider", "Provider", True),
        ("Provider/Reseller", "Provider", True),
        ("Provider/Reseller/Sub", "Provider/Reseller", True),
        ("Provider2", "Provider", False),
        ("Provider2/Reseller", "Provider", False),
        ("Provider", "Provider/Reseller", False),
        ("Anything", "", True),
        ("Anything", None, True),
        ("Provider/Reseller", "/Provider/", True),
    ],
)
def test_hierarchy_matches(hierarchy, prefix, expected):
    assert licensing.hierarchy_matches(hierarchy, prefix) is expected


@pytest.mark.parametrize(
    "name, expected",
    [
        ("Hybrid - Exchange Calendar", True),
        ("hybrid - Google Calendar", True),
        ("Hybrid-Message", True),
        ("Webex Calling - Professional", False),
        ("Meeting - Hybrid Room", False),
        ("", False),
        (None, False),
    ],
)
def test_is_hybrid(name, expected):
    assert licensing.is_hybrid(name) is expected


def test_available_units_floors_at_zero():
    assert licensing.available_units(10, 3) == 7
    assert licensing.available_units(10, 12) == 0
    assert licensing.available_units(0, 0) == 0


def test_utilization_rounds_and_handles_zero_total():
    assert licensing.utilization(3, 1) == 33.3
    assert licensing.utilization(3, 2) == 66.7
    assert licensing.utilization(10, 12) == 120.0
    assert licensing.utilization(0, 0) is None
    assert licensing.utilization(0, 5) is None


# ---------------------------------------------------------------------------
# normalize_license


def test_normalize_license_full_object():
    row = licensing.normalize_license(
        {
            "id": "L1",
            "name": "Meeting - Webex Meeting Center",
            "totalUnits": 50,
            "consumedUnits": 20,
            "consumedByUsers": 18,
            "consumedByWorkspaces": 2,
            "subscriptionId": "Sub-A100",
            "siteUrl": "acme.webex.com",
            "siteType": "Control Hub managed site",
        }
    )
    assert row == {
        "id": "L1",
        "name": "Meeting - Webex Meeting Center",
        "site_url": "acme.webex.com",
        "site_type": "Control Hub managed site",
        "subscription_id": "Sub-A100",
        "total_units": 50,
        "consumed_units": 20,
        "consumed_by_users": 18,
        "consumed_by_workspaces": 2,
        "hybrid": False,
        "available_units": 30,
        "utilization": 40.0,
    }


def test_normalize_license_keeps_null_consumed_by():
    row = licensing.normalize_license(
        {
            "id": "L2",
            "name": "Webex Calling - Route List Calls",
            "totalUnits": 5,
            "consumedUnits": 1,
            "consumedByUsers": None,
            "consumedByWorkspaces": None,
        }
    )
    assert row["consumed_by_users"] is None
    assert row["consumed_by_workspaces"] is None
    assert row["subscription_id"] is None
    assert row["site_url"] is None


def test_normalize_license_missing_counters_are_zero():
    row = licensing.normalize_license({"id": "L3", "name": "Free"})
    assert row["total_units"] == 0
    assert row["consumed_units"] == 0
    assert row["utilization"] is None
    assert row["available_units"] == 0


def test_normalize_license_hybrid_never_counts_consumption():
    row = licensing.normalize_license(
        {
            "id": "H",
            "name": "Hybrid - Exchange Calendar",
            "totalUnits": 44,
            "consumedUnits": 7,
            "consumedByUsers": 7,
        }
    )
    assert row["hybrid"] is True
    assert row["consumed_units"] == 0
    assert row["consumed_by_users"] == 0
    assert row["consumed_by_workspaces"] is None
    assert row["available_units"] == 44
    assert row["utilization"] == 0.0


def test_normalize_license_accepts_integral_floats_and_strings():
    row = licensing.normalize_license(
        {"id": "L", "name": "X", "totalUnits": 10.0, "consumedUnits": "4"}
    )
    assert row["total_units"] == 10
    assert row["consumed_units"] == 4


def test_normalize_license_over_consumed():
    row = licensing.normalize_license({"id": "L", "name": "X", "totalUnits": 5, "consumedUnits": 7})
    assert row["available_units"] == 0
    assert row["utilization"] == 140.0


@pytest.mark.parametrize("value", [1.5, "many", True, [1]])
def test_normalize_license_rejects_bad_counters(value):
    with pytest.raises(LicensingError, match="license 'L' has an invalid totalUnits"):
        licensing.normalize_license({"id": "L", "name": "X", "totalUnits": value})


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, "99999999999999999999"])
def test_normalize_license_rejects_counts_beyond_the_inventory(value):
    with pytest.raises(LicensingError, match="license 'L' has totalUnits .* beyond what the "
                                             "inventory can store"):
        licensing.normalize_license({"id": "L", "name": "X", "totalUnits": value})


@pytest.mark.parametrize("value", ["\u00b2", "\u0663", "1_000", " "])
def test_normalize_license_rejects_non_ascii_digits(value):
    with pytest.raises(LicensingError, match="license 'L' has an invalid totalUnits"):
        licensing.normalize_license({"id": "L", "name": "X", "totalUnits": value})


def test_normalize_license_keeps_the_smallest_storable_count():
    # A negative total counts as 0 (test_negative_total_counts_as_zero); other counts stay.
    row = licensing.normalize_license({"id": "L", "name": "X", "consumedUnits": -(2**63)})
    assert row["consumed_units"] == -(2**63)


def test_normalize_license_requires_id():
    with pytest.raises(LicensingError, match="without id"):
        licensing.normalize_license({"name": "X"})


def test_normalize_license_blank_site_url_and_subscription():
    row = licensing.normalize_license(
        {"id": "L", "name": "X", "siteUrl": "  ", "subscriptionId": " ", "siteType": ""}
    )
    assert row["site_url"] is None
    assert row["subscription_id"] is None
    assert row["site_type"] is None


# ---------------------------------------------------------------------------
# Defaults policy


def test_distinct_subscriptions_and_site_urls():
    assert licensing.distinct_subscriptions(BOREALIS) == ["Sub-A100", "Sub-B200"]
    assert licensing.distinct_site_urls(BOREALIS) == [
        "borealis-a.webex.com",
        "borealis-b.webex.com",
    ]
    assert licensing.distinct_subscriptions([]) == []


def test_distinct_site_urls_merges_spellings():
    items = [{"site_url": "https://A.webex.com/"}, {"site_url": "a.webex.com"}, {"site_url": None}]
    assert licensing.distinct_site_urls(items) == ["a.webex.com"]


def test_unsubscribed_licenses():
    assert [row["id"] for row in licensing.unsubscribed_licenses(BOREALIS)] == ["MSG"]
    assert licensing.retained_license_ids(BOREALIS) == ["MSG"]


@pytest.mark.parametrize("name, expected", [
    ("Webex Messenger", True), ("Messenger", True), ("webex messenger - paid", True),
    ("Advanced Messaging", False), ("Basic Messaging", False), ("Messengers Club", False),
    (None, False),
])
def test_is_messenger_license(name, expected):
    assert licensing.is_messenger_license(name) is expected


def test_messenger_licenses_are_retained_and_kept():
    licenses = rows(
        api_license("MSN", "Webex Messenger", "Sub-1"),
        api_license("AM", "Advanced Messaging", "Sub-1"),
        api_license("BM", "Basic Messaging", None),
    )
    by_id = {row["id"]: row for row in licenses}

    assert licensing.retained_license_ids(licenses) == ["BM", "MSN"]
    plan = licensing.plan_user_license_change(
        ["MSN", "BM"], ["AM"], "exact", ["MSN", "AM"], licensing.retained_license_ids(licenses)
    )
    assert (plan.add, plan.remove) == (("AM",), ())
    kept = licensing.describe_kept_licenses(["AM", "MSN", "BM"], by_id, ["MSN", "AM"])
    assert [(entry["id"], entry["reason"]) for entry in kept] == [
        ("MSN", "not_manageable"), ("BM", "unsubscribed")]


def test_check_user_manageable_refuses_messenger():
    licenses = rows(api_license("MSN", "Webex Messenger", "Sub-1"),
                    api_license("AM", "Advanced Messaging", "Sub-1"))
    by_id = {row["id"]: row for row in licenses}

    licensing.check_user_manageable(["AM"], by_id)
    with pytest.raises(licensing.LicensingError, match=r"'Webex Messenger \(Sub-1\)' is a "
                       r"Messenger license.*400118"):
        licensing.check_user_manageable(["AM", "MSN"], by_id)


def test_effective_defaults_single_subscription_and_site():
    licenses = rows(
        api_license("M", "Meeting", "Sub-1", "https://Alpine.webex.com/"),
        api_license("C", "Calling", "Sub-1"),
    )
    decision = licensing.effective_defaults(licenses)
    assert decision.subscription_id == "Sub-1"
    assert decision.site_url == "alpine.webex.com"
    assert decision.missing == ()
    assert decision.unknown == ()
    assert decision.warnings("Alpine") == []


def test_effective_defaults_several_without_default():
    decision = licensing.effective_defaults(BOREALIS)
    assert decision.subscription_id is None
    assert decision.site_url is None
    assert decision.missing == ("default_subscription_id", "default_site_url")
    assert licensing.managed_license_ids(BOREALIS, decision) == []


def test_effective_defaults_warning_lists_candidates():
    warnings = licensing.effective_defaults(BOREALIS).warnings("Borealis")
    assert [w["code"] for w in warnings] == ["defaults_required", "defaults_required"]
    assert warnings[0]["option"] == "default_subscription_id"
    assert warnings[0]["candidates"] == ["Sub-A100", "Sub-B200"]
    assert "Sub-A100, Sub-B200" in warnings[0]["message"]
    assert "org 'Borealis'" in warnings[0]["message"]
    assert warnings[1]["candidates"] == ["borealis-a.webex.com", "borealis-b.webex.com"]


def test_effective_defaults_configured():
    decision = licensing.effective_defaults(BOREALIS, "Sub-A100", "HTTPS://borealis-a.webex.com/")
    assert decision.subscription_id == "Sub-A100"
    assert decision.site_url == "borealis-a.webex.com"
    assert licensing.managed_license_ids(BOREALIS, decision) == ["M-A", "C-A"]


def test_site_url_of_other_subscription_unknown():
    decision = licensing.effective_defaults(BOREALIS, "Sub-B200", "borealis-a.webex.com")

    assert decision.unknown == ("default_site_url",)
    assert decision.site_url_candidates == ("borealis-b.webex.com",)
    assert decision.org_site_urls == ("borealis-a.webex.com", "borealis-b.webex.com")
    assert licensing.managed_license_ids(BOREALIS, decision) == ["C-B"]
    message = decision.warnings("Borealis")[0]["message"]
    assert "'borealis-a.webex.com' is a site URL of org 'Borealis'" in message
    assert "not of its default subscription 'Sub-B200'" in message
    assert "(site URLs of 'Sub-B200': borealis-b.webex.com)" in message
    with pytest.raises(licensing.DefaultsError, match="not of its default subscription"):
        licensing.validate_defaults("Borealis", BOREALIS, "Sub-B200", "borealis-a.webex.com")


def test_site_url_check_needs_known_subscription():
    """With a default subscription that the org lacks, only that one is reported."""
    decision = licensing.effective_defaults(BOREALIS, "Sub-X", "borealis-a.webex.com")

    assert decision.unknown == ("default_subscription_id",)
    assert decision.site_url_candidates == ("borealis-a.webex.com", "borealis-b.webex.com")


def test_effective_defaults_subscription_only():
    # Sub-B200 has one site URL, so that one is the default site URL.
    decision = licensing.effective_defaults(BOREALIS, "Sub-B200")
    assert decision.missing == ()
    assert decision.site_url == "borealis-b.webex.com"
    assert decision.site_url_candidates == ("borealis-b.webex.com",)
    assert licensing.managed_license_ids(BOREALIS, decision) == ["M-B", "C-B"]


def test_subscription_with_several_sites_needs_one():
    rows = BOREALIS + [licensing.normalize_license(
        api_license("M-B2", "Meeting - Webex Meeting Center", "Sub-B200", "borealis-c.webex.com"))]
    decision = licensing.effective_defaults(rows, "Sub-B200")

    assert decision.missing == ("default_site_url",)
    assert decision.site_url_candidates == ("borealis-b.webex.com", "borealis-c.webex.com")
    message = decision.warnings("Borealis")[0]["message"]
    assert message.startswith("subscription 'Sub-B200' of org 'Borealis' has several site URLs "
                              "(borealis-b.webex.com, borealis-c.webex.com)")
    # Non-site licenses of the default subscription are managed; site licenses are not.
    assert licensing.managed_license_ids(rows, decision) == ["C-B"]


def test_subscription_without_sites():
    rows = BOREALIS + [licensing.normalize_license(
        api_license("C-D", "Webex Calling - Professional", "Sub-D400"))]
    decision = licensing.effective_defaults(rows, "Sub-D400")

    assert decision.site_url is None
    assert decision.missing == ()
    assert decision.site_url_candidates == ()
    with pytest.raises(licensing.DefaultsError) as caught:
        licensing.validate_defaults("Borealis", rows, "Sub-D400", "borealis-a.webex.com")
    assert "(site URLs of 'Sub-D400': none)" in str(caught.value)
    assert "clear default_site_url (an empty string)" in str(caught.value)


def test_effective_defaults_unknown_configured_value():
    decision = licensing.effective_defaults(BOREALIS, "Sub-X", "other.webex.com")
    assert decision.unknown == ("default_subscription_id", "default_site_url")
    assert licensing.managed_license_ids(BOREALIS, decision) == []
    warnings = decision.warnings("Borealis")
    assert warnings[0]["code"] == "default_not_found"
    assert warnings[0]["message"] == (
        "default_subscription_id 'Sub-X' is not a subscription of org 'Borealis' "
        "(found: Sub-A100, Sub-B200)"
    )


def test_effective_defaults_no_licenses():
    decision = licensing.effective_defaults([])
    assert decision.subscription_id is None
    assert decision.missing == ()
    assert decision.as_dict()["subscription_candidates"] == []


def test_is_managed_rules():
    decision = licensing.effective_defaults(BOREALIS, "Sub-A100", "borealis-a.webex.com")
    by_id = {row["id"]: row for row in BOREALIS}
    assert licensing.is_managed(by_id["M-A"], decision)
    assert licensing.is_managed(by_id["C-A"], decision)
    assert not licensing.is_managed(by_id["M-B"], decision)
    assert not licensing.is_managed(by_id["C-B"], decision)
    assert not licensing.is_managed(by_id["MSG"], decision)


def test_is_managed_other_site_same_subscription():
    licenses = rows(
        api_license("M1", "Meeting", "Sub-1", "one.webex.com"),
        api_license("M2", "Meeting", "Sub-1", "two.webex.com"),
    )
    decision = licensing.effective_defaults(licenses, None, "TWO.webex.com")
    assert licensing.managed_license_ids(licenses, decision) == ["M2"]


def test_validate_defaults_accepts_candidates():
    decision = licensing.validate_defaults("Borealis", BOREALIS, "Sub-B200", "borealis-b.webex.com")
    assert decision.subscription_id == "Sub-B200"


def test_validate_defaults_accepts_unset():
    decision = licensing.validate_defaults("Borealis", BOREALIS)
    assert decision.missing == ("default_subscription_id", "default_site_url")


def test_validate_defaults_rejects_unknown_subscription():
    with pytest.raises(DefaultsError) as caught:
        licensing.validate_defaults("Acme", BOREALIS, "Sub-X")
    assert str(caught.value) == (
        "default_subscription_id 'Sub-X' is not a subscription of org 'Acme' "
        "(found: Sub-A100, Sub-B200)"
    )


def test_validate_defaults_lists_both_problems():
    with pytest.raises(DefaultsError) as caught:
        licensing.validate_defaults("Acme", BOREALIS, "Sub-X", "https://nowhere.webex.com")
    message = str(caught.value)
    assert "default_subscription_id 'Sub-X'" in message
    assert (
        "default_site_url 'https://nowhere.webex.com' is not a site URL of org 'Acme' "
        "(found: borealis-a.webex.com, borealis-b.webex.com)" in message
    )


def test_validate_defaults_org_without_subscriptions():
    with pytest.raises(DefaultsError, match=r"\(found: none\)"):
        licensing.validate_defaults("Empty", [], "Sub-1")


def test_licenses_outside_defaults():
    result = licensing.licenses_outside_defaults(
        ["C-B", "MSG", "C-A", "C-B"], managed_ids=["C-A"], retained_ids=["MSG"]
    )
    assert result == ["C-B"]
    assert licensing.licenses_outside_defaults([], ["C-A"]) == []
    assert licensing.licenses_outside_defaults(["X"], []) == ["X"]


# ---------------------------------------------------------------------------
# Aggregation


def test_aggregate_license_rows_per_name_and_subscription():
    data = [
        {
            "customer": "A",
            "name": "Calling",
            "subscription_id": "S1",
            "total_units": 10,
            "consumed_units": 4,
            "consumed_by_users": 3,
            "consumed_by_workspaces": 1,
        },
        {
            "customer": "B",
            "name": "Calling",
            "subscription_id": "S1",
            "total_units": 5,
            "consumed_units": 7,
            "consumed_by_users": None,
            "consumed_by_workspaces": None,
        },
        {
            "customer": "C",
            "name": "Calling",
            "subscription_id": "S2",
            "total_units": 8,
            "consumed_units": 2,
            "consumed_by_users": 2,
            "consumed_by_workspaces": 0,
        },
        {
            "customer": "C",
            "name": "Meeting",
            "subscription_id": None,
            "total_units": 0,
            "consumed_units": 0,
            "site_url": "https://C.webex.com",
        },
    ]
    totals = licensing.aggregate_license_rows(data)
    assert [(t["name"], t["subscription_id"]) for t in totals] == [
        ("Calling", "S1"),
        ("Calling", "S2"),
        ("Meeting", None),
    ]
    s1 = totals[0]
    assert s1["total_units"] == 15
    assert s1["consumed_units"] == 11
    assert s1["consumed_by_users"] == 3
    assert s1["consumed_by_workspaces"] == 1
    # B is over-consumed: its available units count as 0, not as -2.
    assert s1["available_units"] == 6
    assert s1["utilization"] == 73.3
    assert s1["customers"] == ["A", "B"]
    assert s1["license_count"] == 2
    assert totals[1]["customers"] == ["C"]
    assert totals[2]["utilization"] is None
    assert totals[2]["consumed_by_users"] is None
    assert totals[2]["site_urls"] == ["c.webex.com"]
    assert totals[2]["site_url"] == "c.webex.com"
    assert s1["site_url"] is None
    assert s1["site_urls"] == []


def test_aggregate_license_rows_keeps_meeting_sites_apart():
    """Two sites of one subscription are two pools: a default site may be managed while the
    other is not, so their free units are never added up."""
    def meeting(customer, site_url, total, consumed):
        return {"customer": customer, "name": "Meeting", "subscription_id": "S1",
                "site_url": site_url, "total_units": total, "consumed_units": consumed}

    totals = licensing.aggregate_license_rows([
        meeting("A", "a.webex.com", 10, 4),
        meeting("A", "https://A-EU.webex.com/", 5, 1),
        meeting("B", "a.webex.com", 3, 1),
    ])
    assert [(t["site_url"], t["total_units"], t["available_units"], t["customers"])
            for t in totals] == [
        ("a-eu.webex.com", 5, 4, ["A"]),
        ("a.webex.com", 13, 8, ["A", "B"]),
    ]
    assert [t["site_urls"] for t in totals] == [["a-eu.webex.com"], ["a.webex.com"]]


def test_aggregate_license_rows_empty():
    assert licensing.aggregate_license_rows([]) == []


# ---------------------------------------------------------------------------
# Resolving license names


def managed_rows(subscription="Sub-A100", site_url="borealis-a.webex.com"):
    decision = licensing.effective_defaults(BOREALIS, subscription, site_url)
    return [dict(row, managed=licensing.is_managed(row, decision)) for row in BOREALIS]


def test_resolve_license_names_by_name_and_id():
    licenses = managed_rows()
    assert licensing.resolve_license_names(
        ["webex calling - professional", "M-A", " Meeting - Webex Meeting Center "], licenses
    ) == ["C-A", "M-A"]


def test_resolve_license_names_only_in_other_subscription():
    licenses = [row for row in managed_rows() if row["id"] != "C-A"]
    with pytest.raises(LicenseResolutionError) as caught:
        licensing.resolve_license_names(["Webex Calling - Professional"], licenses, "Borealis")
    message = str(caught.value)
    assert "of org 'Borealis'" in message
    assert "subscriptions: Sub-B200" in message


def test_resolve_license_names_unmanaged_id():
    with pytest.raises(LicenseResolutionError, match="subscriptions: Sub-B200"):
        licensing.resolve_license_names(["C-B"], managed_rows())


def test_resolve_license_names_unsubscribed():
    with pytest.raises(LicenseResolutionError, match="has no subscription and is never managed"):
        licensing.resolve_license_names(["Basic Messaging"], managed_rows())


def test_resolve_license_names_ambiguous_among_managed():
    licenses = rows(
        api_license("M1", "Meeting", "Sub-1", "one.webex.com"),
        api_license("M2", "Meeting", "Sub-1", "two.webex.com"),
    )
    licenses = [dict(row, managed=True) for row in licenses]
    with pytest.raises(LicenseResolutionError) as caught:
        licensing.resolve_license_names(["Meeting"], licenses)
    assert "matches 2 managed licenses (one.webex.com, two.webex.com)" in str(caught.value)
    assert "give the license id" in str(caught.value)


def test_resolve_license_names_not_found_lists_managed():
    with pytest.raises(LicenseResolutionError) as caught:
        licensing.resolve_license_names(["Nope", "Also nope"], managed_rows())
    message = str(caught.value)
    assert "license 'Nope' was not found" in message
    assert "license 'Also nope' was not found" in message
    assert "Webex Calling - Professional" in message


def test_resolve_license_names_empty_request():
    assert licensing.resolve_license_names([], managed_rows()) == []


# ---------------------------------------------------------------------------
# Planning a user's license change


MANAGED = ["C-A", "M-A"]


def test_plan_present_adds_missing_only():
    plan = licensing.plan_user_license_change(["C-A", "MSG"], ["C-A", "M-A"], "present", MANAGED)
    assert plan.add == ("M-A",)
    assert plan.remove == ()
    assert plan.changed


def test_plan_present_noop():
    plan = licensing.plan_user_license_change(["C-A"], ["C-A"], "present", MANAGED)
    assert plan == licensing.LicensePlan((), (), ())
    assert not plan.changed


def test_plan_present_replaces_same_name_outside_defaults():
    plan = licensing.plan_user_license_change(
        ["C-B", "MSG"], ["C-A"], "present", MANAGED, ["MSG"], replaced_ids=["C-B"]
    )
    assert plan.add == ("C-A",)
    assert plan.remove == ("C-B",)
    assert plan.changed


def test_plan_present_removes_replaced_when_default_is_held():
    plan = licensing.plan_user_license_change(
        ["C-A", "C-B"], ["C-A"], "present", MANAGED, replaced_ids=["C-B"]
    )
    assert plan.add == ()
    assert plan.remove == ("C-B",)


def test_plan_replaced_not_held_is_ignored():
    plan = licensing.plan_user_license_change(
        ["C-A"], ["C-A"], "present", MANAGED, replaced_ids=["C-B"]
    )
    assert not plan.changed


def test_plan_absent_removes_replaced_too():
    plan = licensing.plan_user_license_change(
        ["C-A", "C-B", "M-A"], ["C-A"], "absent", MANAGED, replaced_ids=["C-B"]
    )
    assert plan.add == ()
    assert plan.remove == ("C-A", "C-B")


def test_same_name_outside_defaults():
    rows = {
        "A-A": {"id": "A-A", "name": "Advanced Messaging", "subscription_id": "S1"},
        "A-B": {"id": "A-B", "name": "advanced messaging ", "subscription_id": "S2"},
        "M-A": {"id": "M-A", "name": "Meeting", "subscription_id": "S1", "site_url": "a.x"},
        "M-B": {"id": "M-B", "name": "Meeting", "subscription_id": "S2", "site_url": "b.x"},
        "C-A": {"id": "C-A", "name": "Webex Calling - Professional", "subscription_id": "S1"},
        "C-B": {"id": "C-B", "name": "Webex Calling - Professional", "subscription_id": "S2"},
        "MSG": {"id": "MSG", "name": "Advanced Messaging", "subscription_id": None},
    }
    current = ["A-B", "M-B", "C-B", "MSG", "GONE"]
    managed = ["A-A", "M-A", "C-A"]
    assert licensing.same_name_outside_defaults(current, ["A-A"], rows, managed) == ["A-B"]
    # Meeting licenses of other sites and calling licenses are never replaced.
    assert licensing.same_name_outside_defaults(current, ["M-A", "C-A"], rows, managed) == []
    assert licensing.same_name_outside_defaults(current, [], rows, managed) == []
    # A managed license is never replaced, even with the same name.
    assert licensing.same_name_outside_defaults(["A-B"], ["A-A"], rows, ["A-A", "A-B"]) == []
    # A removal takes calling licenses of other subscriptions too.
    assert licensing.same_name_outside_defaults(
        current, ["C-A"], rows, managed, include_calling=True) == ["C-B"]


def test_same_site_of_two_subscriptions_is_one_product():
    rows = {
        "M-NEW": {"name": "Meeting", "subscription_id": "S-NEW", "site_url": "acme.webex.com"},
        "M-OLD": {"name": "Meeting", "subscription_id": "S-OLD",
                  "site_url": "https://ACME.webex.com/"},
    }
    assert licensing.same_name_outside_defaults(["M-OLD"], ["M-NEW"], rows, ["M-NEW"]) == [
        "M-OLD"]


def test_unfunded_replacements():
    rows = {
        "A-A": {"name": "Advanced Messaging", "available_units": 0},
        "A-B": {"name": "Advanced Messaging", "available_units": 3},
        "S-A": {"name": "Webex Calling - Standard", "available_units": 0},
        "P-B": {"name": "Webex Calling - Professional", "available_units": 2},
        "M-A": {"name": "Meeting", "site_url": "a.x", "available_units": 0},
        "M-B": {"name": "Meeting", "site_url": "b.x", "available_units": 4},
    }
    assert licensing.unfunded_replacements(["A-A"], ["A-B"], rows) == [("A-A", "A-B")]
    # Any user calling license replaces another.
    assert licensing.unfunded_replacements(["S-A"], ["P-B"], rows) == [("S-A", "P-B")]
    # A meeting license of another site is no replacement.
    assert licensing.unfunded_replacements(["M-A"], ["M-B"], rows) == []
    # An added license with units left is fine.
    assert licensing.unfunded_replacements(["A-B"], ["A-A"], rows) == []


def test_totals_sum_consumption_of_customers():
    rows = [
        {"customer": "A", "name": "Webex Calling - Professional", "subscription_id": "S",
         "total_units": 10, "consumed_units": 3, "consumed_by_users": 3,
         "consumed_by_workspaces": 0},
        {"customer": "B", "name": "Webex Calling - Professional", "subscription_id": "S",
         "total_units": 10, "consumed_units": 5, "consumed_by_users": 4,
         "consumed_by_workspaces": 1},
    ]

    (group,) = licensing.aggregate_license_rows(rows)

    assert group["consumed_units"] == 8
    assert group["consumed_by_users"] == 7
    assert group["consumed_by_workspaces"] == 1


def test_removal_body_of_kept_licenses_is_whole():
    # A 200 body that lists exactly the licenses kept is the user's whole set, so a read
    # that still shows the removed ones does not undo the removal.
    before, remove = ["A", "B", "C"], ["A", "B"]

    assert licensing.is_whole_license_set(before, remove, ["C"])
    assert licensing.licenses_after_change(
        before, [], remove, returned=["C"], read=["A", "B", "C"], complete=True
    ) == ["C"]


def test_removable_unsubscribed_calling():
    rows = {
        "P-S1": {"name": "Webex Calling - Professional", "subscription_id": "S1"},
        "P-TRIAL": {"name": "Webex Calling - Professional", "subscription_id": None},
        "S-TRIAL": {"name": "Webex Calling - Standard", "subscription_id": " "},
        "BASIC": {"name": "Basic Messaging", "subscription_id": None},
        "ADV": {"name": "Advanced Messaging", "subscription_id": "S1"},
    }
    current = ["P-TRIAL", "BASIC"]
    removable = licensing.removable_unsubscribed_calling
    # Exact with a calling license replaces the trial; bundled licenses stay.
    assert removable(current, ["P-S1", "ADV"], "exact", rows) == ["P-TRIAL"]
    assert removable(["S-TRIAL"], ["P-S1"], "exact", rows) == ["S-TRIAL"]
    # Exact without a calling license, and present, keep it.
    assert removable(current, ["ADV"], "exact", rows) == []
    assert removable(current, ["P-S1"], "present", rows) == []
    # Absent removes a trial of a requested name only.
    assert removable(current, ["P-S1"], "absent", rows) == ["P-TRIAL"]
    assert removable(["S-TRIAL"], ["P-S1"], "absent", rows) == []
    # A license unknown to the inventory is never returned.
    assert removable(["GONE"], ["P-S1"], "exact", rows) == []


def test_held_calling_conflicts():
    rows = {
        "C-A": {"name": "Webex Calling - Professional"},
        "S-B": {"name": "Webex Calling - Standard"},
        "ADV": {"name": "Advanced Messaging"},
    }
    assert licensing.held_calling_conflicts(["S-B", "ADV"], ["C-A"], rows) == ["S-B"]
    assert licensing.held_calling_conflicts(["S-B"], ["ADV"], rows) == []
    assert licensing.held_calling_conflicts(["ADV"], ["C-A"], rows) == []


def test_several_calling_licenses():
    rows = {
        "C-A": {"name": "Webex Calling - Professional"},
        "S-B": {"name": "Webex Calling - Standard"},
        "WS": {"name": "Webex Calling - Workspaces"},
        "ADV": {"name": "Advanced Messaging"},
    }
    # Two added in one request.
    assert licensing.several_calling_licenses(["C-A", "S-B"], ["C-A", "S-B"], rows) == [
        "C-A", "S-B"]
    # One added beside one that the request keeps (not removable).
    assert licensing.several_calling_licenses(["S-B", "C-A"], ["C-A"], rows) == ["S-B", "C-A"]
    # One calling license, or several without an addition (stored before), pass.
    assert licensing.several_calling_licenses(["C-A", "ADV"], ["C-A"], rows) == []
    assert licensing.several_calling_licenses(["C-A", "S-B", "ADV"], ["ADV"], rows) == []
    # A workspace license is not a user calling license.
    assert licensing.several_calling_licenses(["C-A", "WS"], ["C-A"], rows) == []


def test_plan_absent_removes_held_only():
    plan = licensing.plan_user_license_change(["C-A", "MSG"], ["C-A", "M-A"], "absent", MANAGED)
    assert plan.add == ()
    assert plan.remove == ("C-A",)


def test_plan_absent_keeps_unremovable():
    plan = licensing.plan_user_license_change(
        ["C-A", "M-A"], ["C-A", "M-A"], "absent", MANAGED, unremovable_ids=["M-A"]
    )
    assert plan.remove == ("C-A",)
    assert plan.kept_unremovable == ("M-A",)


def test_plan_exact_removes_outside_defaults():
    plan = licensing.plan_user_license_change(
        ["C-B", "MSG", "M-A"], ["C-A", "M-A"], "exact", MANAGED, unremovable_ids=["MSG"]
    )
    assert plan.add == ("C-A",)
    assert plan.remove == ("C-B",)
    assert plan.kept_unremovable == ("MSG",)


def test_plan_exact_empty_request_clears_removable():
    plan = licensing.plan_user_license_change(["C-A", "MSG"], [], "exact", MANAGED, ["MSG"])
    assert plan.remove == ("C-A",)
    assert plan.add == ()


def test_plan_rejects_unmanaged_request():
    with pytest.raises(LicensingError, match="not managed: C-B"):
        licensing.plan_user_license_change([], ["C-B"], "present", MANAGED)


def test_plan_rejects_unknown_state():
    with pytest.raises(LicensingError, match="invalid license state 'gone'"):
        licensing.plan_user_license_change([], [], "gone", MANAGED)


def test_plan_ignores_duplicate_ids():
    plan = licensing.plan_user_license_change(["C-A", "C-A"], ["M-A", "M-A"], "exact", MANAGED)
    assert plan.add == ("M-A",)
    assert plan.remove == ("C-A",)


@pytest.mark.parametrize(("first", "second", "same"), [
    # base64 of ciscospark://us/ORGANIZATION/<uuid>, without padding, and the UUID alone.
    ("Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi9lZWEzM2Q0ZS04YmVkLTRiNjUtOTRhNC1kMjljNzM4M2Q0OTY",
     "EEA33D4E-8BED-4B65-94A4-D29C7383D496", True),
    ("Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi9lZWEzM2Q0ZS04YmVkLTRiNjUtOTRhNC1kMjljNzM4M2Q0OTY",
     "Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi9mMzhiMmZmYy04MGE0LTRmNWEtOTFjOS1iYzcwMWU3ZWE0MTk",
     False),
    ("ORG-1", " ORG-1 ", True),
    # Other ids are compared as they are, since base64 is case-sensitive.
    ("ORG-1", "org-1", False),
    ("ORG-1", "ORG-2", False),
])
def test_org_key_compares_both_id_forms(first, second, same):
    assert (licensing.org_key(first) == licensing.org_key(second)) is same


def test_org_key_blank():
    assert licensing.org_key(" ") is None
    assert licensing.org_key(None) is None


def test_licenses_after_change_removing_all():
    """A 206 that removed every license the user held: any list passes the whole-set test,
    so the read decides, and a rejected removal stays."""
    result = licensing.licenses_after_change(["R1", "R2"], ["A"], ["R1", "R2"], ["A"],
                                             ["R2", "A"], False)
    unknown = licensing.licenses_after_change(["R1", "R2"], ["A"], ["R1", "R2"], ["A"],
                                              None, False)

    assert result == ["R2", "A"]
    assert unknown is None


def test_licenses_after_change_user_without_licenses():
    """Nothing to remove: the 206 list is right in either reading, also without a read."""
    assert licensing.licenses_after_change([], ["A", "B"], [], ["A"], None, False) == ["A"]


@pytest.mark.parametrize("returned, read, complete, expected", [
    # The body lists the whole set: taken as it is, even when the read lags behind.
    (["B1", "B2", "A"], ["B1", "B2"], False, ["B1", "B2", "A"]),
    (["B1", "B2", "A"], None, True, ["B1", "B2", "A"]),
    # The body lists only the applied addition (HTTP 206): the read, plus that addition.
    (["A"], ["B1", "B2", "R"], False, ["B1", "B2", "R", "A"]),
    (["A"], ["B1", "B2", "A"], False, ["B1", "B2", "A"]),
    # No body list: the read as it is, else the plan for a complete change only.
    (None, ["B1", "B2"], True, ["B1", "B2"]),
    (None, None, True, ["B1", "B2", "A", "C"]),
    (None, None, False, None),
    # An applied-only body without a read: complete gives the plan, partial is unknown.
    (["A"], None, True, ["B1", "B2", "A", "C"]),
    (["A"], None, False, None),
])
def test_licenses_after_change(returned, read, complete, expected):
    before = ["B1", "B2", "R"]

    result = licensing.licenses_after_change(before, ["A", "C"], ["R"], returned, read, complete)

    assert result == expected


def test_is_whole_license_set():
    assert licensing.is_whole_license_set(["B", "R"], ["R"], ["B", "A"])
    assert not licensing.is_whole_license_set(["B", "R"], ["R"], ["A"])
    assert not licensing.is_whole_license_set(["B"], [], None)


@pytest.mark.parametrize("total, negative", [(-1, True), ("-3", True), (0, False), (5, False),
                                             (None, False), ("many", False)])
def test_negative_total_units(total, negative):
    item = api_license("L", "Webex Webinars", "Sub-1", total=total)

    assert licensing.negative_total_units(item) is negative


def test_negative_total_counts_as_zero():
    row = licensing.normalize_license(api_license("L", "Webex Webinars", "Sub-1", total=-1,
                                                  consumed=3))

    assert row["total_units"] == 0
    assert row["available_units"] == 0
    assert row["utilization"] is None


ORG_UUID = "6513270e-269e-4d37-b2a7-4de452e6b438"
ORG_BASE64 = ("Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi82NTEzMjcwZS0yNjllLTRkMzctYjJhNy00ZGU0"
              "NTJlNmI0Mzg")


def test_org_api_id_encodes_a_uuid():
    person = "Y2lzY29zcGFyazovL3VzL1BFT1BMRS9hYmM"  # ciscospark://us/PEOPLE/abc

    assert licensing.org_api_id(ORG_UUID.upper(), person) == ORG_BASE64
    assert licensing.org_api_id(ORG_UUID) == ORG_BASE64
    assert licensing.org_key(licensing.org_api_id(ORG_UUID, "not base64!")) == ORG_UUID


def test_org_api_id_region_and_other_ids():
    eu_person = base64.b64encode(b"ciscospark://eu/PEOPLE/abc").decode().rstrip("=")
    eu_org = licensing.org_api_id(ORG_UUID, eu_person)

    assert base64.b64decode(eu_org + "=" * (-len(eu_org) % 4)).decode() == (
        f"ciscospark://eu/ORGANIZATION/{ORG_UUID}")
    assert licensing.org_api_id(f" {ORG_BASE64} ") == ORG_BASE64
    assert licensing.org_api_id("ORG-Acme") == "ORG-Acme"


def test_name_likeness_hint_case_and_unicode_form():
    nfc, nfd = "Caf\u00e9 Zo\u00eb", "Cafe\u0301 Zoe\u0308"
    assert licensing.name_likeness_hint("acme corp", "ACME Corp") == (
        " (customer names are case-sensitive)")
    hint = licensing.name_likeness_hint(nfd, nfc)
    assert "differ in their Unicode form, NFC or NFD" in hint
    assert ascii(nfd) in hint
    assert ascii(nfc) in hint
    assert licensing.name_likeness_hint("Acme", "Acme") == ""
    assert licensing.name_likeness_hint("Acme", "Apex") == ""


def test_format_names_quotes_names_with_commas():
    listed = licensing.format_names(["Alpine", 'Smith, "Jones"; Partners', "O'Neil"])
    assert listed == "Alpine, 'Smith, \"Jones\"; Partners', \"O'Neil\""
