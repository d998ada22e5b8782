#!/usr/bin/python
# Copyright: ucops.webex contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: webex_user_license
short_description: Add, remove or set the Webex licenses of one user
version_added: 0.1.0
description:
  - Adds or removes licenses of one user of a customer's Webex org, or makes the user's
    managed licenses exactly a given list, with C(PATCH /v1/licenses/users).
  - Only managed licenses can be assigned. A license is managed when it belongs to the
    customer's default subscription and, for a meeting site license, to the default site URL
    (or O(site_url)). License names resolve among the managed licenses only, so a name that
    exists in several subscriptions means the license of the default subscription.
  - The customer's licenses and defaults come from the inventory, so the customer must have
    been added with M(ucops.webex.webex_customer) and synced with
    M(ucops.webex.webex_license_sync). The user is read live from the Webex API.
  - After a change the inventory's consumed units of the licenses involved and the user's
    record are updated in the same task; no new sync is needed.
  - When the API applies only part of the change (HTTP 206), the inventory records the part
    that was applied and the task fails, listing what was and was not assigned or removed.
    The user's licenses after it are read again, since the 206 body may list only the
    licenses that the request added.
  - When the API rejects the change (HTTP 400), the task fails with the API's message and
    error codes, and the inventory is left unchanged.
  - When the change request times out, loses its connection or gets HTTP 5xx, Webex may
    have applied the change anyway, so the user is read again. The task then records what
    was applied, fails unchanged when nothing was, and fails with changed set and the
    inventory unchanged when the user cannot be read either. After a request without a
    response (a timeout, a lost connection) Webex may apply the change after that read, so
    the message states that and requests a sync of the customer a few minutes later.
author:
  - ucops.webex contributors (!UNKNOWN)
extends_documentation_fragment:
  - ucops.webex.auth
  - ucops.webex.inventory
  - ucops.webex.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - The diff lists the user's licenses before and after, each as its name followed by
        its subscription and site URL in parentheses, and with a calling license that is
        added, the location, extension and number it sets.
  idempotent:
    support: full
options:
  customer:
    description:
      - Name of the customer in the inventory. Its org id selects the Webex org.
    type: str
    required: true
  org_id:
    description:
      - ID of the Webex org of the user, sent as C(orgId). The customer's stored org id is
        used; if this option is set too, it must be equal, else the task fails.
      - For a customer without an org id, this org is used. If neither is set, the token's
        own org is used.
      - If not set, the E(WEBEX_ORG_ID) environment variable is used for a customer that has
        no org id and was never synced. For other customers it is ignored, with a warning
        when it differs, as in M(ucops.webex.webex_license_sync).
    type: str
  user:
    description:
      - Email address or person id of the user.
    type: str
    required: true
  licenses:
    description:
      - Licenses to add, remove or set, by name (without case) or by license id.
      - Every entry must resolve to one managed license. A name found only in other
        subscriptions, or an unknown name, fails the task with the valid choices.
      - With O(state=exact), an empty list removes every removable license of the user.
    type: list
    elements: str
    required: true
  state:
    description:
      - V(present) adds the licenses the user does not hold yet. A license of another
        subscription with the name of a listed license (and, for a meeting license, its
        site) is removed in the same request, so the user does not use a second unit of
        the same product (for example Advanced Messaging of a former subscription). Meeting
        licenses of other sites stay, since each site is its own hosting right. When the
        user holds a calling license and the task would add another one, it fails before
        any change; use V(exact) to replace a calling license. A replacement also fails
        before any change when the license to add has no units left in the inventory or in
        Webex, whose counts are read just before a replacement.
      - V(absent) removes the listed licenses that the user holds, together with licenses
        of the same name from other subscriptions, calling licenses included (not meeting
        licenses of other sites), and a calling license of the same name without a
        subscription (a trial).
      - V(exact) adds the missing licenses and removes every other license of the user,
        including licenses of other subscriptions or site URLs. Bundled licenses without a
        subscription (such as Basic Messaging or Free screen share), Messenger licenses
        (Webex rejects changes to them, error 400118) and licenses unknown to the inventory
        are never removed; they are returned in RV(kept). A Messenger license in
        O(licenses) fails the task before any change. A user has one calling license, so a
        calling license without a subscription (a trial) is removed when O(licenses) lists
        a calling license; otherwise it is kept as well.
    type: str
    choices: [present, absent, exact]
    default: present
  location:
    description:
      - Webex Calling location (name or id) for a calling license that is added
        (Webex Calling - Professional or Standard).
      - When not set, the user's current location is used. A user without a location then
        needs O(location) or O(phone_number); otherwise the task fails before any change.
      - A name is looked up in the inventory first, then in the live org.
      - When the task adds no calling license, O(location), O(extension) and O(phone_number)
        are not applied, and the task warns when they differ from the user's; an unknown
        location still fails it. The module does not change the location or number of a
        calling license that it leaves in place. When O(state=exact) replaces the user's
        calling license with the default's, the added license takes these options, so the
        user moves to them.
    type: str
  extension:
    description:
      - Extension for a calling license that is added. A calling license needs O(extension)
        or O(phone_number).
      - When the added calling license replaces the user's calling license (O(state=exact),
        or a trial's) at the same location and neither O(extension) nor O(phone_number) is
        set, the user keeps the current extension and work number.
    type: str
  phone_number:
    description:
      - Work phone number (E.164, for example V(+14085267209)) for a calling license that
        is added.
    type: str
  site_url:
    description:
      - Meeting site URL whose site licenses this task may assign, instead of the customer's
        default site URL. It must be a site URL of the default subscription.
      - Case, scheme and a trailing slash are ignored.
    type: str
notes:
  - The user's licenses are never replaced with C(PUT /v1/people/{personId}); only the listed
    additions and removals are sent.
  - After a change the user is read again (C(GET /v1/people/{personId})) to record the
    resulting licenses and location in the inventory. When that read fails, the task
    records the licenses that the change request returned and warns. A partial change
    (HTTP 206) that cannot be read back fails with changed set and the inventory unchanged,
    unless the 206 body shows the user's whole set of licenses (it lists every license the
    user kept, as it does for a user who held none before). The inventory then records
    that set.
  - The usage counters move by one for each license added or removed. When the customer's
    people were synced with or after its licenses, a license that the last sync already
    recorded for the user is not counted again. A user not in the inventory is added with
    the licenses the API returns, and after a sync of the people all of them are counted,
    because the sync did not count that user.
  - A license for workspaces (Webex Calling - Workspaces) cannot be assigned to a user.
  - A user has one calling license. With O(state=present) a task that would add a calling
    license to a user who holds one fails before any change, and so does a task that lists
    two calling licenses (for example Webex Calling Professional and Standard), since
    Webex would apply the rest of the request without the second one. Other combinations
    that the Webex API refuses (for example error code 400408, Attendant Console without a
    calling license) fail with the API's message and RV(error_codes).
  - A replacement (an added license of the same product as a removed one, or a calling
    license for another) fails before any change when the added license has no units left
    in the inventory or in Webex (its counts are read live first, since they change between
    syncs), because Webex would apply the removal alone (HTTP 206).
  - A license to add that the inventory shows without units left gets a warning (also in
    check mode); the change is still sent, since units may have been freed since the sync.
  - When the user's licenses in Webex differ from those in the inventory (changed in
    Control Hub since the last sync, or by a run whose outcome was unknown), the task warns
    and names them. It records only its own changes; a sync brings the rest up to date.
seealso:
  - module: ucops.webex.webex_customer
  - module: ucops.webex.webex_license_sync
  - module: ucops.webex.webex_license_info
"""

EXAMPLES = r"""
- name: Give a user a meeting license and Webex Calling of the default subscription
  ucops.webex.webex_user_license:
    api_url: "{{ webex_api_url }}"
    access_token: "{{ webex_access_token }}"
    customer: Borealis Logistics
    user: gustav.weber13@borealis.example.com
    licenses:
      - Meeting - Webex Enterprise Edition
      - Webex Calling - Professional
    location: Denver 001
    extension: "4711"

- name: Move a user's calling license of another subscription to the default subscription
  # Without location, extension and phone_number the user stays in her location and keeps
  # her extension and work number.
  ucops.webex.webex_user_license:
    access_token: "{{ webex_access_token }}"
    customer: Borealis Logistics
    user: carla.lindqvist10@borealis.example.com
    licenses:
      - Meeting - Webex Enterprise Edition
      - Webex Calling - Professional
    state: exact

- name: Take Advanced Messaging away
  ucops.webex.webex_user_license:
    access_token: "{{ webex_access_token }}"
    customer: Borealis Logistics
    user: gustav.garcia16@borealis.example.com
    licenses: [Advanced Messaging]
    state: absent

- name: Leave the user exactly one managed license (licenses of other subscriptions go)
  ucops.webex.webex_user_license:
    access_token: "{{ webex_access_token }}"
    customer: Borealis Logistics
    user: bianca.abbott8@borealis.example.com
    licenses: [Meeting - Webex Enterprise Edition]
    state: exact
  register: exact_result
"""

RETURN = r"""
user:
  description: The user whose licenses were managed.
  returned: success
  type: dict
  contains:
    id:
      description: Person id.
      type: str
      sample: Y2lzY29zcGFyazovL3VzL1BFT1BMRS9iMmY1M2U1Yy1mZDJh
    email:
      description: First email address of the user.
      type: str
      sample: bianca.abbott8@borealis.example.com
added:
  description:
    - Licenses added (in check mode, that would be added).
    - Each entry has C(id), C(name), C(subscription_id) and C(site_url) (null when the license
      has none).
  returned: success
  type: list
  elements: dict
  sample:
    - id: Y2lzY29zcGFyazovL3VzL0xJQ0VOU0UvY2Q5NjNm
      name: Webex Calling - Professional
      subscription_id: Sub-BOR100
      site_url: null
removed:
  description: Licenses removed (in check mode, that would be removed), in the shape of
    RV(added).
  returned: success
  type: list
  elements: dict
kept:
  description:
    - Licenses outside the managed set (the licenses of the customer's defaults) that the
      user has after the change, which this task left alone.
    - C(reason) is V(unsubscribed) (bundled, no subscription, never removed),
      V(not_manageable) (a Messenger license, which Webex does not let administrators
      remove), V(outside_defaults) (another subscription or site URL; O(state=present) keeps it
      unless it is an add-on or meeting license of the same product as a listed one,
      O(state=absent) unless it has the name of a listed license and, for meeting licenses,
      its site) or V(not_in_inventory) (unknown to the inventory, never removed).
  returned: success
  type: list
  elements: dict
  sample:
    - id: Y2lzY29zcGFyazovL3VzL0xJQ0VOU0UvY2Q5NjNmMjUtQk0
      name: Basic Messaging
      subscription_id: null
      site_url: null
      reason: unsubscribed
licenses:
  description: The user's licenses after the change (in check mode, as planned), each with
    C(id) and C(name) (null for a license unknown to the inventory).
  returned: success
  type: list
  elements: dict
  sample:
    - id: Y2lzY29zcGFyazovL3VzL0xJQ0VOU0UvY2Q5NjNmMjUtQk0
      name: Basic Messaging
not_added:
  description: On a partial success (HTTP 206), the licenses the API did not assign.
  returned: when the API applied only part of the change
  type: list
  elements: dict
not_removed:
  description: On a partial success (HTTP 206), the licenses the API did not remove.
  returned: when the API applied only part of the change
  type: list
  elements: dict
inventory:
  description:
    - What the inventory recorded for an applied change.
    - C(licenses_added) and C(licenses_removed) are the user's stored license links
      written, C(counted_added) and C(counted_removed) the licenses whose usage counters
      moved by one.
  returned: when the API changed the user's licenses
  type: dict
  sample:
    changed: true
    person_added: false
    licenses_added: [Y2lzY29zcGFyazovL3VzL0xJQ0VOU0UvY2Q5NjNm]
    licenses_removed: []
    counted_added: [Y2lzY29zcGFyazovL3VzL0xJQ0VOU0UvY2Q5NjNm]
    counted_removed: []
    rows_written: 3
diff:
  description:
    - The user's licenses before and after, as labels with subscription and site URL.
    - When the change adds a calling license, C(calling) shows the C(location_id),
      C(extension) and C(phone_number) that it sets (those the request sends) before and
      after, since they may move the user to another location or number. A value the user
      does not have is null.
  returned: success
  type: dict
  sample:
    before:
      user: carla.lindqvist10@borealis.example.com
      licenses: ["Basic Messaging (no subscription)", "Webex Calling - Professional (Sub-BOR101)"]
      calling: {location_id: Y2lzY29zcGFyazovL3VzL0xPQ0FUSU9OLzE, extension: "1009"}
    after:
      user: carla.lindqvist10@borealis.example.com
      licenses: ["Basic Messaging (no subscription)", "Webex Calling - Professional (Sub-BOR100)"]
      calling: {location_id: Y2lzY29zcGFyazovL3VzL0xPQ0FUSU9OLzI, extension: "4711"}
status:
  description: HTTP status of a failed or partly applied change request.
  returned: on failure of the change request
  type: int
  sample: 400
error_codes:
  description: The Webex error codes of a rejected change request.
  returned: when the API rejected the change
  type: list
  elements: int
  sample: [400408]
tracking_id:
  description: Webex trackingId of a rejected or partly applied change request, for Cisco
    support.
  returned: when the change request failed or was applied only in part
  type: str
  sample: ROUTER_66F2A1E2-8C3B-4B2B-A8C0-2F61E7C0A1D4
planned_changes:
  description:
    - The license changes of a request that the API rejected as a whole (HTTP 4xx), so none
      of them was applied.
    - Each entry has C(id), C(name), C(subscription_id), C(site_url) and C(operation)
      (V(add) or V(remove)).
  returned: when the API rejected the change request
  type: list
  elements: dict
api_requests:
  description: Request counters of the Webex API client (requests, retries, waited_seconds,
    refreshes).
  returned: success
  type: dict
  sample:
    requests: 3
    retries: 0
    waited_seconds: 0.0
    refreshes: 0
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ucops.webex.plugins.module_utils.inventory import (
    inventory_argument_spec,
)
from ansible_collections.ucops.webex.plugins.module_utils.user_license import run_module
from ansible_collections.ucops.webex.plugins.module_utils.webex_api import (
    fail_on_converted_collections,
    webex_argument_spec,
)


def main() -> None:
    argument_spec = webex_argument_spec()
    argument_spec.update(inventory_argument_spec())
    argument_spec.update(
        customer=dict(type="str", required=True),
        user=dict(type="str", required=True),
        licenses=dict(type="list", elements="str", required=True),
        state=dict(type="str", choices=["present", "absent", "exact"], default="present"),
        location=dict(type="str"),
        extension=dict(type="str"),
        phone_number=dict(type="str"),
        site_url=dict(type="str"),
    )
    # WEBEX_ORG_ID names the org of a customer never synced (see licensing.choose_org_id),
    # so the option has no fallback and run_module reads the variable apart.
    argument_spec["org_id"] = dict(type="str")
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    fail_on_converted_collections(module)

    result = run_module(module)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
