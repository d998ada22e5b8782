"""licensing.choose_org_id: the org_id option, else WEBEX_ORG_ID for a new customer only."""

from __future__ import annotations

from ansible_collections.ucops.webex.plugins.module_utils import licensing

STORED = "Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi9zdG9yZWQ"
OTHER = "Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi9vdGhlcg"


def choose(customer, option=None, from_env=None):
    warnings = []
    chosen = licensing.choose_org_id(dict(customer, name="Acme"), option, from_env,
                                     warnings.append)
    return chosen, warnings


def test_option_wins_over_variable():
    assert choose({"org_id": STORED}, option=f" {OTHER} ", from_env=STORED) == (OTHER, [])


def test_variable_names_new_customer_org():
    assert choose({}, from_env=OTHER) == (OTHER, [])


def test_variable_ignored_for_stored_org():
    chosen, warnings = choose({"org_id": STORED}, from_env=OTHER)

    assert chosen is None
    assert len(warnings) == 1
    assert f"WEBEX_ORG_ID is '{OTHER}', but customer 'Acme' has org id {STORED}, so" in warnings[0]
    assert "applies only to a customer without an org id that was never synced" in warnings[0]


def test_variable_equal_to_stored_org_is_quiet():
    assert choose({"org_id": STORED}, from_env=STORED) == (None, [])


def test_variable_ignored_after_token_org_sync():
    chosen, warnings = choose({"synced_at": "2026-12-01T10:00:00Z"}, from_env=OTHER)

    assert chosen is None
    assert "customer 'Acme' was synced before from the org of the access token" in warnings[0]
    assert "has org id" not in warnings[0]


def test_blank_values_are_unset():
    assert choose({}, option="  ", from_env=" ") == (None, [])


def test_variable_in_uuid_form_is_quiet():
    stored = licensing.org_api_id("5f3a9c1e-1111-4222-8333-944455556666", None)

    assert choose({"org_id": stored}, from_env="5F3A9C1E-1111-4222-8333-944455556666") == (
        None, [])
