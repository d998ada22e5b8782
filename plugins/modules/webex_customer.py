#!/usr/bin/python
# Copyright: ucops.webex contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: webex_customer
short_description: Manage a customer (one Webex org) in the license inventory
version_added: 0.1.0
description:
  - Creates, updates or removes a customer record in the local license inventory that
    M(ucops.webex.webex_license_sync) fills and M(ucops.webex.webex_license_info) reads.
  - A customer is one Webex organization, named by O(name) and identified by O(org_id). Its
    O(hierarchy) places it under a provider or reseller for aggregated views.
  - The default subscription and default site URL decide which licenses are managed. A
    license is managed when it belongs to the default subscription and, for a meeting site
    license, to the default site URL.
  - Before it saves a new O(org_id), O(default_subscription_id) or O(default_site_url), the
    module reads the org's licenses (C(GET /v1/licenses) with C(orgId)). The subscription
    must be one of the org's license subscription ids and the site URL one of its license
    site URLs, otherwise the task fails, lists the valid values and saves nothing.
  - When neither the org id nor a default changes, the module makes no API call, so no access
    token is needed then.
author:
  - ucops.webex contributors (!UNKNOWN)
extends_documentation_fragment:
  - ucops.webex.auth
  - ucops.webex.inventory
  - ucops.webex.attributes
options:
  name:
    description:
      - Name of the customer in the inventory, for example V(Borealis Logistics).
      - Other modules of this collection refer to the customer by this name.
    type: str
    required: true
  org_id:
    description:
      - ID of the customer's Webex organization, in the form the Webex API writes it (the
        base64 id that C(orgId) of C(GET /v1/people) gives). The same org written as its UUID
        alone counts as the same org in the inventory, but API requests send the id as given.
      - Partner administrators set the customer org here; the token must be allowed to act on
        it. When a customer has no org id, the token's own org is used, and the customer's
        first sync stores the id of that org.
      - One org belongs to one customer only.
      - An empty string is the same as not setting it, so a stored org id is never cleared
        (the next sync would read another org under this customer's name).
      - If not set, the stored value is kept. For a new customer the E(WEBEX_ORG_ID)
        environment variable is used then; it never moves a stored customer to another org
        (the task warns when the two differ).
      - When the org id changes, a stored default subscription or site URL that the new org
        lacks is cleared with a warning, unless O(default_subscription_id) or
        O(default_site_url) set new values.
    type: str
  new_name:
    description:
      - New name of the customer, which keeps its org id, defaults, synced data and sync
        history. The other options then apply to the customer under its new name.
      - When no customer is named O(name) but one is named O(new_name), the rename counts as
        done before and nothing changes, so the task can run again.
      - The task fails when both names, or neither, are in the inventory.
      - Update O(name) (or C(webex_customer_name) in the playbooks' inventory) to the new name
        for later tasks.
      - The new name is stored as given, like O(name) when a customer is added, blanks around
        it included. A blank O(new_name) renames nothing.
    type: str
  hierarchy:
    description:
      - Place of the customer in the partner hierarchy, as levels separated by C(/), for
        example V(Provider/Reseller).
      - Blank levels and spaces around levels are removed. An empty string puts the customer
        at the top level.
      - If not set, the stored value is kept (the top level for a new customer).
    type: str
  default_subscription_id:
    description:
      - Subscription whose licenses are managed, for example V(Sub-BOR100).
      - Needed when the org has licenses of several subscriptions; with one subscription
        that one is the default.
      - Compared exactly. An empty string clears the stored value.
      - If not set, the stored value is kept.
    type: str
  default_site_url:
    description:
      - Meeting site whose licenses are managed, for example V(borealis.webex.com).
      - Needed when the default subscription has several meeting sites (the org, while no
        default subscription is known); with one site that one is the default.
      - It must be a site URL of the default subscription when the org has that
        subscription, because only site licenses of the default subscription are managed.
      - Compared without case, scheme or trailing slash, and stored in that form. An empty
        string clears the stored value.
      - If not set, the stored value is kept.
    type: str
  device:
    description:
      - Label of the connection to the org, shown with the customer's licenses.
      - If not set, the stored label is kept; a new customer, or one whose stored label is the
        default of its previous org id, gets C(<api_url host>/<org_id>).
    type: str
  state:
    description:
      - V(present) creates or updates the customer.
      - V(absent) removes the customer with all its synced licenses, people, roles, locations,
        workspaces and its sync history. It makes no API call.
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    support: full
    details:
      - The org is still read live to validate the defaults, because reading changes nothing.
      - A missing inventory file is not created in check mode.
  diff_mode:
    support: full
    details:
      - The diff shows the customer record before and after.
  idempotent:
    support: full
notes:
  - The org id of a customer cannot be moved to another customer; remove or change that
    customer first.
  - Changing the defaults updates the managed flag of the customer's stored licenses at once;
    no new sync is needed for that.
  - Adding a customer whose name is close to a stored one (equal but for case, or a near
    match) gives a warning, because that is most often a typo. The customer is added all
    the same.
seealso:
  - module: ucops.webex.webex_license_sync
  - module: ucops.webex.webex_license_info
"""

EXAMPLES = r"""
- name: Add a customer org managed by a partner
  ucops.webex.webex_customer:
    api_url: "{{ webex_api_url }}"
    access_token: "{{ webex_access_token }}"
    name: Borealis Logistics
    org_id: "{{ webex_org_id }}"
    hierarchy: Provider/Reseller

- name: Choose the subscription and meeting site whose licenses are managed
  ucops.webex.webex_customer:
    access_token: "{{ webex_access_token }}"
    name: Borealis Logistics
    default_subscription_id: Sub-BOR100
    default_site_url: borealis.webex.com

- name: Move the customer to another reseller (no API call)
  ucops.webex.webex_customer:
    name: Borealis Logistics
    hierarchy: Provider/Reseller North

- name: Rename the customer, keeping its org, defaults and synced data
  ucops.webex.webex_customer:
    name: Borealis Logistics
    new_name: Borealis Freight

- name: Remove the customer and its synced data from the inventory
  ucops.webex.webex_customer:
    name: Borealis Freight
    state: absent
"""

RETURN = r"""
customer:
  description:
    - The customer record after the task (in check mode, as it would be).
    - Null after O(state=absent).
  returned: success
  type: dict
  contains:
    name:
      description: Customer name.
      type: str
      sample: Borealis Logistics
    org_id:
      description: Webex org id; null for the token's own org.
      type: str
      sample: Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi9jZDk2M2YyNS1hMTgx
    hierarchy:
      description: Normalized hierarchy path; an empty string at the top level.
      type: str
      sample: Provider/Reseller
    default_subscription_id:
      description: Default subscription, or null.
      type: str
      sample: Sub-BOR100
    default_site_url:
      description: Default meeting site URL in normalized form, or null.
      type: str
      sample: borealis.webex.com
    device:
      description: Label of the connection to the org.
      type: str
      sample: webexapis.com/Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi9jZDk2M2YyNS1hMTgx
subscriptions:
  description: The subscription ids of the org's licenses (candidates for
    O(default_subscription_id)).
  returned: when the org was read (a new org id, or a default set to a new value)
  type: list
  elements: str
  sample: [Sub-BOR100, Sub-BOR101]
site_urls:
  description: The meeting site URLs of the org's licenses (candidates for
    O(default_site_url)), normalized.
  returned: when the org was read (a new org id, or a default set to a new value)
  type: list
  elements: str
  sample: [borealis-eu.webex.com, borealis.webex.com]
status:
  description: HTTP status of the failed API request.
  returned: when reading the org failed
  type: int
  sample: 403
tracking_id:
  description: Webex trackingId of the failed API request, for Cisco support.
  returned: when reading the org failed
  type: str
  sample: ROUTER_66F2A1E2-8C3B-4B2B-A8C0-2F61E7C0A1D4
"""

import os
import sqlite3

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ucops.webex.plugins.module_utils.customer import (
    CustomerError,
    manage_customer,
)
from ansible_collections.ucops.webex.plugins.module_utils.inventory import (
    InventoryError,
    database_error_message,
    inventory_argument_spec,
)
from ansible_collections.ucops.webex.plugins.module_utils.webex_api import (
    WebexClient,
    fail_on_converted_collections,
    webex_argument_spec,
)


def main() -> None:
    argument_spec = webex_argument_spec()
    argument_spec.update(inventory_argument_spec())
    argument_spec.update(
        name=dict(type="str", required=True),
        new_name=dict(type="str"),
        hierarchy=dict(type="str"),
        default_subscription_id=dict(type="str"),
        default_site_url=dict(type="str"),
        device=dict(type="str"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )
    # WEBEX_ORG_ID applies to new customers only (see customer._org_id_from_environment),
    # so the option has no fallback and the variable is passed on apart.
    argument_spec["org_id"] = dict(type="str")
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    fail_on_converted_collections(module)
    params = dict(module.params, org_id_from_env=os.environ.get("WEBEX_ORG_ID"))

    # The client is built only when the org must be read, so updates that need no API call
    # work without credentials.
    try:
        result = manage_customer(
            params,
            lambda: WebexClient.from_module(module),
            check_mode=module.check_mode,
            diff_mode=module._diff,
        )
    except CustomerError as error:
        module.fail_json(msg=str(error), **error.details)
    except InventoryError as error:
        module.fail_json(msg=str(error))
    except sqlite3.Error as error:
        module.fail_json(msg=database_error_message(module.params["inventory_db"], error))

    for warning in result.pop("warnings", []):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
