#!/usr/bin/python
# Copyright: ucops.webex contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: webex_license_info
short_description: List Webex licenses, live from an org or from the license inventory
version_added: 0.1.0
description:
  - Lists the licenses of a Webex organization with their total, consumed and available units.
  - With O(source=live) the licenses come from the Webex API (C(GET /v1/licenses)) of the org
    that the token belongs to, or of O(org_id) for partner administrators.
  - With O(source=inventory) the licenses come from the local inventory that
    M(ucops.webex.webex_license_sync) keeps, at one level of the hierarchy. All customers under
    a O(hierarchy) prefix (provider or reseller level), one O(customer), or one O(location) of a
    customer (site level).
  - At site level the consumed units are those of the users and workspaces in that location.
    People and workspaces without a location count for the customer but for no location,
    so the locations of a customer can add up to less than the customer's consumed units.
    Hybrid services licenses are not listed at site level.
  - At provider and reseller level, and with neither O(hierarchy) nor O(customer) (all
    customers), the result also has totals per license name, subscription and site URL.
    Licenses of different subscriptions or different meeting sites are never added together.
author:
  - ucops.webex contributors (!UNKNOWN)
extends_documentation_fragment:
  - ucops.webex.auth
  - ucops.webex.inventory
  - ucops.webex.attributes
  - ucops.webex.attributes.INFO_MODULE
options:
  source:
    description:
      - Where to read the licenses from.
      - V(live) calls the Webex API; V(inventory) reads the local inventory and makes no API call.
    type: str
    choices: [live, inventory]
    default: live
  hierarchy:
    description:
      - With O(source=inventory), list the licenses of every customer whose hierarchy is this
        node or lies below it, for example V(Provider) or V(Provider/Reseller).
      - A node under which no customer of the inventory sits fails the task, naming the
        known nodes.
      - Mutually exclusive with O(customer).
    type: str
  customer:
    description:
      - With O(source=inventory), list the licenses of this customer only (its inventory name).
    type: str
  location:
    description:
      - With O(source=inventory), list the licenses used in this Webex Calling location of
        O(customer), by location name or id. Requires O(customer).
    type: str
  expected_customers:
    description:
      - With O(source=inventory), the customers that should be in the inventory, for example
        the hosts of the Ansible inventory, each with its C(name) and its C(hierarchy).
      - Those at the chosen level that the inventory lacks, because a
        M(ucops.webex.webex_customer) task failed or was skipped, are returned in
        RV(not_in_inventory), and the task warns. At provider or reseller level an entry
        counts when its C(hierarchy) is O(hierarchy) or lies below it, so an entry without
        C(hierarchy) counts only when neither O(hierarchy) nor O(customer) is set. At
        customer and location level the customer must be in the inventory anyway.
      - Names compare exactly, as the inventory compares them.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the customer in the inventory.
        type: str
        required: true
      hierarchy:
        description: Place of the customer in the partner hierarchy, for example
          V(Keystone/Reseller North).
        type: str
  managed_only:
    description:
      - Only list licenses of the customer's default subscription and default site URL.
      - Only with O(source=inventory); live listings have no defaults to compare with.
    type: bool
    default: false
  subscription_id:
    description:
      - Only list licenses of this subscription.
    type: str
  site_url:
    description:
      - Only list licenses of this meeting site URL. Case, scheme and a trailing slash are
        ignored.
    type: str
  name:
    description:
      - Only list licenses with this name, compared without case, for example
        V(Webex Calling - Professional).
    type: str
  include_assigned_users:
    description:
      - With O(source=live), add to each listed license the users it is assigned to
        (C(GET /v1/licenses/{id}?includeAssignedTo=user), 300 users per page).
      - This costs one or more API calls per listed license, so combine it with filters.
    type: bool
    default: false
notes:
  - Hybrid services licenses (names starting with C(Hybrid -)) are listed at provider,
    reseller and customer level, but their usage is not counted, so their consumed units
    are reported as 0. At site level they are left out.
seealso:
  - module: ucops.webex.webex_license_sync
  - module: ucops.webex.webex_customer
"""

EXAMPLES = r"""
- name: List the licenses of the org that the token belongs to
  ucops.webex.webex_license_info:
    api_url: "{{ webex_api_url }}"
    access_token: "{{ webex_access_token }}"
  register: org_licenses

- name: List the Webex Calling licenses of one subscription of a customer org (partner token)
  ucops.webex.webex_license_info:
    access_token: "{{ webex_partner_token }}"
    org_id: "{{ customer_org_id }}"
    subscription_id: Sub-A100
    name: Webex Calling - Professional
  register: calling_licenses

- name: Totals of every customer of a reseller, from the inventory
  ucops.webex.webex_license_info:
    source: inventory
    hierarchy: Provider/Reseller
  register: reseller_view

- name: Licenses used in one location (site) of a customer
  ucops.webex.webex_license_info:
    source: inventory
    customer: Cobalt Health
    location: Boston 005
    managed_only: true
  register: site_view
"""

RETURN = r"""
licenses:
  description:
    - One row per license. Rows are sorted by hierarchy, customer, license name,
      subscription and site URL; at site level by location name before the license name.
    - Live listings (O(source=live)) keep the order of the API.
  returned: success
  type: list
  elements: dict
  contains:
    id:
      description: License id.
      type: str
      sample: Y2lzY29zcGFyazovL3VzL0xJQ0VOU0UvOTQ0M2Q...
    name:
      description: License name.
      type: str
      sample: Meeting - Webex Meetings Suite
    site_url:
      description: Meeting site URL of a site license, null for other licenses.
      type: str
      sample: borealis-eu.webex.com
    site_type:
      description: Site type of a site license, null for other licenses.
      type: str
      sample: Control Hub managed site
    subscription_id:
      description: Subscription the license belongs to; null for bundled licenses without one.
      type: str
      sample: Sub-BOR-2024
    total_units:
      description: Units allocated to the org.
      type: int
      sample: 500
    consumed_units:
      description: Units in use. At site level, the units used by that location's users and
        workspaces.
      type: int
      sample: 412
    consumed_by_users:
      description: Units used by people; null when the API does not report it.
      type: int
      sample: 400
    consumed_by_workspaces:
      description: Units used by workspaces and devices; null when the API does not report it.
      type: int
      sample: 12
    available_units:
      description: Total units minus consumed units, never below zero.
      type: int
      sample: 88
    utilization:
      description: Consumed units in percent of total units, one decimal; null when the
        total is zero.
      type: float
      sample: 82.4
    customer:
      description: Customer name (O(source=inventory) only).
      type: str
      returned: when O(source=inventory)
      sample: Borealis Logistics
    hierarchy:
      description:
        - Hierarchy node the license sits at, the "Location" column of license inventory
          views. The customer's hierarchy path and name, and at location level also the
          location name.
        - Names are joined with C(/) as they are, so a customer or location name that
          contains C(/) makes the path ambiguous. Tell rows apart by RV(licenses[].customer)
          (and RV(licenses[].location_name)), not by splitting this path.
      type: str
      returned: when O(source=inventory)
      sample: Provider/Reseller/Borealis Logistics
    device:
      description: The Webex org connection the license was synced from (O(source=inventory)
        only).
      type: str
      returned: when O(source=inventory)
    managed:
      description: Whether the license belongs to the customer's default subscription and,
        for site licenses, its default site URL.
      type: bool
      returned: when O(source=inventory)
    synced_at:
      description: Time of the sync that last wrote this license, ISO 8601 in UTC.
      type: str
      returned: when O(source=inventory)
      sample: "2026-12-04T10:15:00Z"
    hybrid:
      description: Whether this is a hybrid services license, whose usage is not counted.
      type: bool
      returned: always
    unsubscribed:
      description: Whether the license has no subscription (bundled licenses); such licenses
        are never managed.
      type: bool
      returned: when O(source=inventory)
    location_id:
      description: Id of the location (site) the row counts.
      type: str
      returned: when O(location) is set
    location_name:
      description: Name of the location (site) the row counts.
      type: str
      returned: when O(location) is set
    org_consumed_units:
      description: Units in use in the whole org. Units are pooled per org, so at location
        level RV(licenses[].total_units), RV(licenses[].available_units) and
        RV(licenses[].utilization) are the org's values.
      type: int
      returned: when O(location) is set
    assigned_users:
      description: Users the license is assigned to.
      type: list
      elements: dict
      returned: when O(include_assigned_users=true)
      sample:
        - id: Y2lzY29zcGFyazovL3VzL1BFT1BMRS8xMjM
          email: anna.berg1@cobalthealth.example.com
          display_name: Anna Berg
          type: INTERNAL
subscriptions:
  description: The distinct subscription ids of the listed licenses.
  returned: success
  type: list
  elements: str
  sample: [Sub-BOR-2024, Sub-BOR-2025]
site_urls:
  description: The distinct meeting site URLs of the listed licenses.
  returned: success
  type: list
  elements: str
  sample: [borealis-eu.webex.com, borealis-us.webex.com]
site_urls_by_subscription:
  description: The meeting site URLs of the listed licenses of each subscription (the
    candidates for the default site URL once that subscription is the default).
  returned: success
  type: dict
  sample: {Sub-BOR-2024: [borealis-us.webex.com], Sub-BOR-2025: [borealis-eu.webex.com]}
totals:
  description:
    - Units added up per license name, subscription and site URL over every listed
      customer. Two meeting sites are two rows, since the units of one site cannot serve
      the other and only the default site is managed.
    - Returned at provider and reseller level, and when all customers are listed.
  returned: when O(source=inventory) and O(customer) is not set
  type: list
  elements: dict
  contains:
    name:
      description: License name.
      type: str
    hierarchy:
      description: The O(hierarchy) prefix that the totals add up, normalized; an empty
        string when all customers are listed.
      type: str
    subscription_id:
      description: Subscription id; null for licenses without a subscription.
      type: str
    customers:
      description: Names of the customers that have the license, sorted.
      type: list
      elements: str
    site_url:
      description: Normalized site URL of the added-up licenses; null for licenses without
        a site.
      type: str
    site_urls:
      description: RV(totals[].site_url) as a list, empty for licenses without a site.
      type: list
      elements: str
    license_count:
      description: Number of license rows added up (one per customer).
      type: int
    total_units:
      description: Units bought.
      type: int
    consumed_units:
      description: Units in use.
      type: int
    consumed_by_users:
      description: Units in use by people; null when no row reports it.
      type: int
    consumed_by_workspaces:
      description: Units in use by workspaces; null when no row reports it.
      type: int
    available_units:
      description: Sum of each row's free units (a customer's free units cannot serve
        another customer).
      type: int
    utilization:
      description: Consumed units in percent of the total; null when the total is 0.
      type: float
  sample:
    - name: Webex Calling - Professional
      hierarchy: Provider
      subscription_id: Sub-ALP-01
      customers: [Alpine Dental, Cobalt Health]
      site_url: null
      site_urls: []
      license_count: 2
      total_units: 300
      consumed_units: 210
      consumed_by_users: 200
      consumed_by_workspaces: 10
      available_units: 90
      utilization: 70.0
level:
  description: The hierarchy level of the listing, V(org), V(hierarchy), V(customer) or
    V(location).
  returned: success
  type: str
  sample: customer
not_synced:
  description:
    - Customers at the level whose licenses were never synced. The listing has no rows for
      them, which does not mean that their orgs have no licenses; the task warns.
  returned: with O(source=inventory)
  type: list
  elements: str
  sample: [Example Org]
status:
  description: HTTP status of a failed API request; null when no response arrived (a
    connection error, a timeout or a TLS error).
  returned: when an API request failed (O(source=live))
  type: int
  sample: 401
tracking_id:
  description: Webex trackingId of a failed API request, for Cisco support; null when the
    response had none.
  returned: when an API request failed (O(source=live))
  type: str
  sample: ROUTER_5F1E2D3C-0000-4B4B-8A8A-000000000000
not_in_inventory:
  description:
    - Customers of O(expected_customers) at the level that are not in the inventory. The
      listing has no rows for them; the task warns.
  returned: with O(source=inventory)
  type: list
  elements: str
  sample: []
last_sync_failed:
  description:
    - Customers at the level whose latest sync of the licenses failed (syncs of other
      object types do not count). Their rows come from an earlier sync (see C(synced_at));
      the task warns. A customer never synced is in RV(not_synced) only.
  returned: with O(source=inventory)
  type: list
  elements: str
  sample: []
"""

import sqlite3

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ucops.webex.plugins.module_utils import licensing
from ansible_collections.ucops.webex.plugins.module_utils.inventory import (
    InventoryError,
    InventoryStore,
    database_error_message,
    inventory_argument_spec,
)
from ansible_collections.ucops.webex.plugins.module_utils.license_view import (
    build_license_view,
    sync_warnings,
)
from ansible_collections.ucops.webex.plugins.module_utils.webex_api import (
    WebexApiError,
    WebexClient,
    fail_on_converted_collections,
    webex_argument_spec,
)


def list_live_licenses(module: AnsibleModule) -> dict:
    client = WebexClient.from_module(module)
    items = client.list_licenses()
    negative = sorted(
        str(item.get("id")) for item in items if licensing.negative_total_units(item)
    )
    if negative:
        module.warn(
            f"the Webex API listed license(s) {', '.join(negative)} with a negative "
            "totalUnits, which is no number of units (it may mark an unlimited license, "
            "which the API does not document); they are shown with 0 units in total"
        )
    rows = [licensing.normalize_license(item) for item in items]
    rows = licensing.filter_licenses(
        rows,
        subscription_id=module.params["subscription_id"],
        site_url=module.params["site_url"],
        name=module.params["name"],
    )
    if module.params["include_assigned_users"]:
        for row in rows:
            details = client.get_license(row["id"], include_users=True)
            row["assigned_users"] = [
                licensing.normalize_license_user(user) for user in details["users"]
            ]
    return {"level": "org", "licenses": rows}


def list_inventory_licenses(module: AnsibleModule) -> dict:
    params = module.params
    with InventoryStore.from_module(module, create=False) as store:
        if store.upgrade_message():
            module.warn(store.upgrade_message())
        return build_license_view(
            store,
            hierarchy=params["hierarchy"],
            customer=params["customer"],
            location=params["location"],
            managed_only=params["managed_only"],
            subscription_id=params["subscription_id"],
            site_url=params["site_url"],
            name=params["name"],
            expected_customers=params["expected_customers"],
        )


def main() -> None:
    argument_spec = webex_argument_spec()
    argument_spec.update(inventory_argument_spec())
    argument_spec.update(
        source=dict(type="str", choices=["live", "inventory"], default="live"),
        hierarchy=dict(type="str"),
        customer=dict(type="str"),
        location=dict(type="str"),
        managed_only=dict(type="bool", default=False),
        subscription_id=dict(type="str"),
        site_url=dict(type="str"),
        name=dict(type="str"),
        include_assigned_users=dict(type="bool", default=False),
        expected_customers=dict(
            type="list",
            elements="dict",
            default=[],
            options=dict(name=dict(type="str", required=True), hierarchy=dict(type="str")),
        ),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[("hierarchy", "customer")],
        required_by={"location": "customer"},
    )
    fail_on_converted_collections(module)

    # Inventory-only options have no meaning for the live API, so reject them explicitly.
    if module.params["source"] == "live":
        for option in ("hierarchy", "customer", "location", "expected_customers"):
            if module.params[option] not in (None, []):
                module.fail_json(
                    msg=f"{option} is only valid with source=inventory; "
                    f"set source: inventory or remove {option}"
                )
        if module.params["managed_only"]:
            module.fail_json(
                msg="managed_only needs the customer's defaults from the inventory; "
                "set source: inventory"
            )
    elif module.params["include_assigned_users"]:
        module.fail_json(msg="include_assigned_users needs the live API; set source: live")

    try:
        if module.params["source"] == "live":
            listing = list_live_licenses(module)
        else:
            listing = list_inventory_licenses(module)
    except WebexApiError as error:
        module.fail_json(msg=str(error), status=error.status, tracking_id=error.tracking_id)
    except licensing.LicensingError as error:
        module.fail_json(msg=f"the Webex API returned an invalid license: {error}")
    except InventoryError as error:
        module.fail_json(msg=str(error))
    except sqlite3.Error as error:
        module.fail_json(msg=database_error_message(module.params["inventory_db"], error))

    for warning in sync_warnings(listing):
        module.warn(warning)
    listing.update(licensing.distinct_subscriptions_and_site_urls(listing["licenses"]))
    module.exit_json(changed=False, **listing)


if __name__ == "__main__":
    main()
