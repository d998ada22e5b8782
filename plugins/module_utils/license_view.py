# Copyright: ucops.webex contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""License listings from the inventory at provider/reseller, customer or location level."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

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
    expected_customers: Sequence[Mapping[str, Any]] = (),
) -> Dict[str, Any]:
    """List licenses at one level: a location of a customer, a customer, or a hierarchy node.

    Returns ``{level, licenses, not_synced, last_sync_failed, not_in_inventory}`` and, at
    hierarchy level, ``totals`` per license name and subscription. ``not_synced`` names the
    customers at the level whose licenses were never synced (they have no rows, which does
    not mean that their org has no licenses), ``last_sync_failed`` the others whose latest
    sync of the licenses failed (their rows are those of an older sync), and
    ``not_in_inventory`` the ``expected_customers`` at the level that the inventory lacks
    (see ``licensing.missing_customers``). Raises InventoryError for an unknown customer,
    location or hierarchy node.
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
            return dict(
                sync_status(store, [record]), level="location", licenses=rows,
                not_in_inventory=[],
            )

        rows = store.license_rows(customer=customer, **filters)
        for row in rows:
            row["hierarchy"] = licensing.hierarchy_node(record["hierarchy"], customer)
        return dict(
            sync_status(store, [record]), level="customer", licenses=rows, not_in_inventory=[]
        )

    customers = store.list_customers(hierarchy_prefix=hierarchy)
    all_customers = customers if not hierarchy else None
    missing: List[str] = []
    if expected_customers:
        # The expected customers are looked up by name in the whole inventory.
        all_customers = all_customers if all_customers is not None else store.list_customers()
        missing = licensing.missing_customers(
            expected_customers, [record["name"] for record in all_customers], hierarchy
        )
    if hierarchy and not customers:
        all_customers = all_customers if all_customers is not None else store.list_customers()
        known = sorted({record["hierarchy"] for record in all_customers} - {"", None})
        expected = (
            f"; expected there but missing: {licensing.format_names(missing)}, which a "
            "failed or skipped ucops.webex.webex_customer task never added"
            if missing else ""
        )
        raise InventoryError(
            f"no customer in the inventory is at or below hierarchy '{hierarchy}' "
            f"(known hierarchy nodes: {licensing.format_names(known) or 'none'}){expected}; "
            "check the spelling or add customers with ucops.webex.webex_customer"
        )
    rows = store.license_rows(hierarchy_prefix=hierarchy, **filters)
    for row in rows:
        row["hierarchy"] = licensing.hierarchy_node(row["hierarchy"], row["customer"])
    totals = store.license_totals(hierarchy_prefix=hierarchy, **filters)
    return dict(
        sync_status(store, customers), level="hierarchy", licenses=rows, totals=totals,
        not_in_inventory=missing,
    )


def sync_status(store: InventoryStore, customers: List[Mapping[str, Any]]) -> Dict[str, Any]:
    """Return ``{not_synced, last_sync_failed}``: the names of the ``customers`` (records of
    ``get_customer`` or ``list_customers``) whose licenses were never synced, and of the
    others those whose latest sync of the licenses failed (syncs of other object types do
    not count)."""
    not_synced = []
    failed = []
    for record in customers:
        if "licenses" not in (record.get("synced_at") or {}):
            # Listed as never synced only, even when its syncs failed: it has no rows.
            not_synced.append(record["name"])
        elif store.latest_sync_outcome(record["name"], "licenses") == "failed":
            failed.append(record["name"])
    return {"not_synced": not_synced, "last_sync_failed": failed}


def sync_warnings(listing: Mapping[str, Any]) -> List[str]:
    """Return the warnings of a listing's ``not_synced`` and ``last_sync_failed``."""
    warnings = []
    if listing.get("not_in_inventory"):
        warnings.append(
            f"customer(s) {licensing.format_names(listing['not_in_inventory'])} were expected "
            "at this level but are not in the inventory (a failed or skipped "
            "ucops.webex.webex_customer task never added them), so the listing has no rows "
            "for them: add and sync them first"
        )
    if listing.get("not_synced"):
        warnings.append(
            f"the licenses of customer(s) {licensing.format_names(listing['not_synced'])} were "
            "never synced, so the listing has no rows for them, whatever their orgs hold: "
            "run ucops.webex.webex_license_sync (or playbooks/sync.yml) for them first"
        )
    if listing.get("last_sync_failed"):
        warnings.append(
            "the latest license sync of customer(s) "
            f"{licensing.format_names(listing['last_sync_failed'])} failed, so their rows come "
            "from an earlier sync (see synced_at): run the sync again, or read the error in "
            "the sync history"
        )
    return warnings


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
