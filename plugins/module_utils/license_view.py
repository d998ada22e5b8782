# Copyright: ucops.webex contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""License listings from the inventory at provider/reseller, customer or location level."""

from __future__ import annotations

from typing import Any, Dict, Optional

from ansible_collections.ucops.webex.plugins.module_utils import licensing
from ansible_collections.ucops.webex.plugins.module_utils.inventory import (
    InventoryError,
    InventoryStore,
)


def build_license_view(
    store: InventoryStore,
    hierarchy: Optional[str] = None,
    customer: Optional[str] = None,
    location: Optional[str] = None,
    managed_only: bool = False,
    subscription_id: Optional[str] = None,
    site_url: Optional[str] = None,
    name: Optional[str] = None,
) -> Dict[str, Any]:
    """List licenses at one level: a location of a customer, a customer, or a hierarchy node.

    Returns ``{level, licenses}`` and, at hierarchy level, ``totals`` per license name and
    subscription. Raises InventoryError for an unknown customer, location or hierarchy node.
    """
    filters = dict(
        managed_only=managed_only, subscription_id=subscription_id, site_url=site_url, name=name
    )

    if customer is not None:
        record = require_customer(store, customer)
        if location is not None:
            found = require_location(store, customer, location)
            rows = store.location_license_rows(
                customer=customer, location_id=found["id"], **filters
            )
            for row in rows:
                row["hierarchy"] = licensing.hierarchy_node(
                    record["hierarchy"], customer, row["location_name"]
                )
            return {"level": "location", "licenses": rows}

        rows = store.license_rows(customer=customer, **filters)
        for row in rows:
            row["hierarchy"] = licensing.hierarchy_node(record["hierarchy"], customer)
        return {"level": "customer", "licenses": rows}

    customers = store.list_customers(hierarchy_prefix=hierarchy)
    if hierarchy and not customers:
        known = sorted({record["hierarchy"] for record in store.list_customers()})
        raise InventoryError(
            f"no customer in the inventory is at or below hierarchy '{hierarchy}' "
            f"(known hierarchy nodes: {licensing.format_names(known)}); check the spelling or add "
            "customers with ucops.webex.webex_customer"
        )
    rows = store.license_rows(hierarchy_prefix=hierarchy, **filters)
    for row in rows:
        row["hierarchy"] = licensing.hierarchy_node(row["hierarchy"], row["customer"])
    totals = store.license_totals(hierarchy_prefix=hierarchy, **filters)
    return {"level": "hierarchy", "licenses": rows, "totals": totals}


def require_customer(store: InventoryStore, customer: str) -> Dict[str, Any]:
    record = store.get_customer(customer)
    if record is None:
        raise InventoryError(store.missing_customer_message(customer))
    return record


def require_location(store: InventoryStore, customer: str, location: str) -> Dict[str, Any]:
    if not location.strip():
        # An empty text would match a location without a name.
        raise InventoryError(
            f"location is empty: give a location name or id of customer '{customer}', or "
            "leave location out to list the licenses of the whole customer"
        )
    found = store.find_locations(customer, location)
    if len(found) == 1:
        return found[0]
    if found:
        ids = ", ".join(item["id"] for item in found)
        raise InventoryError(
            f"location '{location}' of customer '{customer}' is ambiguous: several locations "
            f"have that name (ids: {ids}); pass the location id instead"
        )
    known = [item["name"] or item["id"] for item in store.list_locations(customer)]
    raise InventoryError(
        f"location '{location}' is not a location of customer '{customer}' in the inventory "
        f"(locations: {licensing.format_names(known)}); sync the customer with scope 'locations' "
        "or check the name"
    )
