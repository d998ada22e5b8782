#!/usr/bin/python
# Copyright: ucops.webex contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: webex_license_sync
short_description: Sync a customer's Webex licenses, people and more into the license inventory
version_added: 0.1.0
description:
  - Reads the licenses, roles, people, locations and workspaces of a customer's Webex org and
    makes the local license inventory equal to them.
  - The customer must exist in the inventory; add it with M(ucops.webex.webex_customer). The
    org is the customer's org id.
  - Lists are read page by page and staged in the inventory file, so memory use does not grow
    with the number of people. The sync makes one request per page and no request per person.
  - The inventory is changed in one transaction at the end. When any request fails (also
    after the client's retries), the task fails, the inventory keeps its previous content and
    the sync history records the failure. The same holds when the module process receives
    SIGTERM, SIGINT or SIGHUP before the commit, for example when its job is cancelled.
  - Licenses of the customer's default subscription and default site URL are marked as
    managed. When the org has several subscriptions, or the default subscription several
    meeting sites, and the customer has no default for them, the task warns, lists the
    candidates in RV(defaults_required), and no license of that kind is managed until the
    default is set with M(ucops.webex.webex_customer).
author:
  - ucops.webex contributors (!UNKNOWN)
extends_documentation_fragment:
  - ucops.webex.auth
  - ucops.webex.inventory
  - ucops.webex.attributes
options:
  customer:
    description:
      - Name of the customer in the inventory, as given to M(ucops.webex.webex_customer).
    type: str
    required: true
  org_id:
    description:
      - ID of the Webex org to read. The customer's stored org id is used; if this option is
        set too, it must be equal.
      - For a customer without an org id, this org is read, unless another customer has
        this org id (then the task fails). If neither is set, the token's own org is read.
      - A customer without an org id gets the id of the org that its sync read (this option,
        or the org id that the listed people, locations or workspaces carry), with a warning.
        Every later sync reads that org, and a sync of another customer that reads the same
        org fails, so one org is never stored under two customers.
      - If not set, the E(WEBEX_ORG_ID) environment variable is used for a customer that has
        no org id and was never synced. For other customers it is ignored, with a warning
        when it differs from the customer's org.
    type: str
  scope:
    description:
      - The object types to sync. Types not listed keep their stored data.
      - V([licenses, roles]) is a light sync of two requests that refreshes license counts
        without reading people.
    type: list
    elements: str
    choices: [licenses, roles, people, locations, workspaces]
    default: [licenses, roles, people, locations, workspaces]
  people_page_size:
    description:
      - Number of people requested per page (C(max) of C(GET /v1/people)).
      - The sync requests calling data (for the person's location), and the API returns at
        most 100 people per page then, so larger values are lowered to 100.
    type: int
    default: 100
  people_sample:
    description:
      - Maximum number of people listed in RV(people_changes), in RV(users_outside_defaults)
        and in the diff.
    type: int
    default: 20
  warn_missing_defaults:
    description:
      - Warn when the org has several subscriptions, or the default subscription several
        site URLs, and the customer has no default for them. RV(defaults_required) is
        returned either way.
      - Set it to V(false) for a sync that runs before the defaults are applied, as the first
        step of the upgrade role does.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    details:
      - Check mode reads the org and compares it with the inventory, but writes nothing, not
        even a sync history entry.
  diff_mode:
    support: full
    details:
      - The diff shows the changed licenses before and after, the license changes of at
        most O(people_sample) people, and among those the email, display name and location
        id of the people whose details changed.
  idempotent:
    support: full
    details:
      - A sync of an org that did not change reports no change. It still records the run in
        the sync history and the time of the last sync.
notes:
  - People who hold subscribed licenses outside the customer's defaults are reported in
    RV(users_outside_defaults). M(ucops.webex.webex_user_license) removes all of them with
    O(ucops.webex.webex_user_license#module:state=exact), and an add-on license of another
    subscription when it gives the person the license of the same name from the defaults.
  - Licenses without a subscription id (bundled licenses such as Basic Messaging) are never
    managed and are listed in RV(unsubscribed_licenses).
  - A license listed with a negative C(totalUnits) (such as -1, which the API does not
    document) is stored with 0 units in total, like one without C(totalUnits), and the
    task warns.
  - An empty list of people, or of locations, that other lists of the same sync contradict
    (licenses consumed by users, or people or workspaces placed in a location) fails the
    task and changes nothing. A sync whose O(scope) lacks those other lists applies an
    empty list; O(scope=[people]) is the way to remove every person on purpose.
  - On Linux the module reads the API's pages in a second process, a fork of itself, while
    it stores the pages it has already read. Each sync runs as two processes until the last
    page is read. On other systems the pages are read by a thread of the module process.
  - With that second process, the sync also stores a digest of each page of people it read,
    with the ids and fingerprints of the people on it (table C(people_pages) of the
    inventory). A later sync takes a page that Webex sends unchanged from that record,
    without decoding it, when every person of the page is still stored as recorded. A
    person changed in the inventory since, for example by M(ucops.webex.webex_user_license),
    makes the page read in full. This saves CPU time on re-syncs of large orgs; the result
    is the same.
seealso:
  - module: ucops.webex.webex_customer
  - module: ucops.webex.webex_license_info
  - module: ucops.webex.webex_user_license
"""

EXAMPLES = r"""
- name: Sync everything of one customer
  ucops.webex.webex_license_sync:
    api_url: "{{ webex_api_url }}"
    access_token: "{{ webex_access_token }}"
    customer: Borealis Logistics
  register: sync

- name: Show the choices when the customer needs default values
  ansible.builtin.debug:
    var: sync.defaults_required
  when: sync.defaults_required | length > 0

- name: Refresh license counts only (light sync)
  ucops.webex.webex_license_sync:
    access_token: "{{ webex_access_token }}"
    customer: Borealis Logistics
    scope: [licenses, roles]

- name: Sync every customer of the inventory in parallel, one host per customer
  ucops.webex.webex_license_sync:
    api_url: "{{ webex_api_url }}"
    access_token: "{{ webex_access_token }}"
    customer: "{{ webex_customer_name | default(inventory_hostname) }}"
  delegate_to: localhost
"""

RETURN = r"""
customer:
  description: The customer that was synced.
  returned: success
  type: str
  sample: Borealis Logistics
org_id:
  description:
    - The org that was read. For the token's own org, the org id that the listed objects
      carry; null when the sync listed no person, location or workspace.
  returned: success
  type: str
  sample: Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi9jZDk2M2YyNS1hMTgx
scope:
  description: The object types that were synced.
  returned: success
  type: list
  elements: str
  sample: [licenses, roles, people, locations, workspaces]
summary:
  description: Per object type in scope, the number of objects added, updated, removed and
    unchanged in the inventory (in check mode, that would be).
  returned: success
  type: dict
  sample:
    licenses: {added: 0, updated: 2, removed: 0, unchanged: 14}
    people: {added: 1, updated: 3, removed: 0, unchanged: 146}
fetched:
  description: Per object type in scope, the number of distinct objects read from the API.
  returned: success
  type: dict
  sample: {licenses: 16, roles: 4, people: 150, locations: 6, workspaces: 12}
subscriptions:
  description: The subscription ids of the org's licenses.
  returned: success
  type: list
  elements: str
  sample: [Sub-BOR100, Sub-BOR101]
site_urls:
  description: The meeting site URLs of the org's licenses, normalized.
  returned: success
  type: list
  elements: str
  sample: [borealis-eu.webex.com, borealis.webex.com]
defaults:
  description: The effective defaults that decide which licenses are managed.
  returned: success
  type: dict
  contains:
    subscription_id:
      description: Effective default subscription; the only one when the org has one and
        none is set. Null when none applies.
      type: str
    site_url:
      description: Effective default site URL, normalized; null when none applies.
      type: str
    missing:
      description: Options that must be set because the org has several candidates.
      type: list
      elements: str
    unknown:
      description: Options whose stored value the org does not have (any more).
      type: list
      elements: str
  sample:
    subscription_id: Sub-BOR100
    site_url: borealis.webex.com
    missing: []
    unknown: []
defaults_required:
  description: One entry per default that must be set, with the values to choose from.
    Empty when the defaults are complete.
  returned: success
  type: list
  elements: dict
  sample:
    - option: default_subscription_id
      candidates: [Sub-BOR100, Sub-BOR101]
      message: org 'Borealis Logistics' has several subscriptions (Sub-BOR100, Sub-BOR101)
        and default_subscription_id is not set, so none of its licenses are managed; set
        default_subscription_id to one of them
unsubscribed_licenses:
  description: Licenses without a subscription id (never managed).
  returned: success
  type: list
  elements: dict
  sample: [{id: Y2lzY29zcGFyazovL3VzL0xJQ0VOU0UvMQ, name: Basic Messaging}]
users_outside_defaults:
  description: People who hold subscribed licenses that are not managed, with a sample of
    at most O(people_sample) people and those licenses.
  returned: success
  type: dict
  sample:
    count: 32
    sample:
      - id: Y2lzY29zcGFyazovL3VzL1BFT1BMRS8xMjM
        email: bianca.abbott8@borealis.example.com
        licenses:
          - id: Y2lzY29zcGFyazovL3VzL0xJQ0VOU0UvOQ
            name: Meeting - Webex Enterprise Edition
            subscription_id: Sub-BOR101
            site_url: borealis-eu.webex.com
license_changes:
  description:
    - Licenses added, updated (with before and after) and removed, each as a whole license
      row (the fields of RV(ucops.webex.webex_license_info#module:licenses) without the
      hierarchy and sync fields).
    - Null when licenses are not in O(scope).
  returned: success
  type: dict
  sample:
    added: []
    removed: []
    updated:
      - before: {id: Y2lzY29zcGFyazovL3VzL0xJQ0VOU0UvOQ, name: Advanced Messaging,
                 subscription_id: Sub-BOR100, site_url: null, site_type: null,
                 total_units: 40, consumed_units: 28, consumed_by_users: 28,
                 consumed_by_workspaces: 0, available_units: 12, utilization: 70.0,
                 hybrid: false, managed: true, unsubscribed: false}
        after: {id: Y2lzY29zcGFyazovL3VzL0xJQ0VOU0UvOQ, name: Advanced Messaging,
                subscription_id: Sub-BOR100, site_url: null, site_type: null,
                total_units: 40, consumed_units: 29, consumed_by_users: 29,
                consumed_by_workspaces: 0, available_units: 11, utilization: 72.5,
                hybrid: false, managed: true, unsubscribed: false}
people_changes:
  description:
    - At most O(people_sample) changed people with their license id changes; C(truncated)
      tells whether more people changed.
    - C(email), C(display_name) and C(location_id) are the person's values after the sync
      (before it for a removed person). For an updated person, C(fields) names the changed
      details among them and C(previous) gives their values before the sync.
    - Null when people are not in O(scope).
  returned: success
  type: dict
  sample:
    truncated: false
    changes:
      - change: updated
        id: Y2lzY29zcGFyazovL3VzL1BFT1BMRS8xMjM
        email: anna.berg1@borealis.example.com
        display_name: Anna Berg
        location_id: Y2lzY29zcGFyazovL3VzL0xPQ0FUSU9OLzE
        licenses_added: [Y2lzY29zcGFyazovL3VzL0xJQ0VOU0UvOQ]
        licenses_removed: []
        fields: [display_name]
        previous: {display_name: Anna Lind}
history_id:
  description: ID of the sync history entry of this run; null in check mode. Also returned
    when the sync failed, for the entry that records the failure.
  returned: success, and when the sync failed after it started
  type: int
  sample: 12
api_requests:
  description: Webex API statistics of the task.
  returned: success, and when the sync failed after it started
  type: dict
  contains:
    requests:
      description:
        - HTTP requests sent to the API, retries included. Token refreshes are counted in
          RV(api_requests.refreshes) instead.
        - After a failure, a request that was still waiting for its response when the sync
          stopped may be missing from the count.
      type: int
    retries:
      description: Requests sent again after a 429, a 423 with Retry-After, a 5xx or a
        connection error.
      type: int
    waited_seconds:
      description: Seconds spent waiting before retries.
      type: float
    refreshes:
      description: Access token refreshes.
      type: int
  sample: {requests: 6, retries: 0, waited_seconds: 0.0, refreshes: 0}
status:
  description: HTTP status of the failed API request.
  returned: when an API request failed
  type: int
  sample: 503
tracking_id:
  description: Webex trackingId of the failed API request, for Cisco support.
  returned: when an API request failed
  type: str
  sample: ROUTER_66F2A1E2-8C3B-4B2B-A8C0-2F61E7C0A1D4
pages_read:
  description: Pages of each object type that the API returned before a listing request
    failed; empty when the first request failed. The request named in the message is the
    next page of its object type. The message contains the same counts.
  returned: when a listing request failed
  type: dict
  sample: {licenses: 1, roles: 1, people: 412}
"""

import os
import sqlite3

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ucops.webex.plugins.module_utils.inventory import (
    OBJECT_TYPES,
    InventoryError,
    database_error_message,
    inventory_argument_spec,
)
from ansible_collections.ucops.webex.plugins.module_utils.sync import SyncError, run_license_sync
from ansible_collections.ucops.webex.plugins.module_utils.webex_api import (
    WebexClient,
    fail_on_converted_collections,
    webex_argument_spec,
)


def main() -> None:
    argument_spec = webex_argument_spec()
    argument_spec.update(inventory_argument_spec())
    argument_spec.update(
        customer=dict(type="str", required=True),
        scope=dict(
            type="list", elements="str", choices=list(OBJECT_TYPES), default=list(OBJECT_TYPES)
        ),
        people_page_size=dict(type="int", default=100),
        people_sample=dict(type="int", default=20),
        warn_missing_defaults=dict(type="bool", default=True),
    )
    # WEBEX_ORG_ID names the org of a customer never synced (see sync.choose_org_id), so the
    # option has no fallback and the variable is passed on apart.
    argument_spec["org_id"] = dict(type="str")
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    fail_on_converted_collections(module)

    try:
        result = run_license_sync(
            dict(module.params, org_id_from_env=os.environ.get("WEBEX_ORG_ID")),
            lambda: WebexClient.from_module(module),
            check_mode=module.check_mode,
            diff_mode=module._diff,
            warn=module.warn,
        )
    except SyncError as error:
        module.fail_json(msg=str(error), **error.details)
    except InventoryError as error:
        module.fail_json(msg=str(error))
    except sqlite3.Error as error:
        module.fail_json(msg=database_error_message(module.params["inventory_db"], error))

    module.exit_json(**result)


if __name__ == "__main__":
    main()
