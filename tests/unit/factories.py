"""Builders of Webex API objects shared by the store and user-license unit tests."""

from __future__ import annotations


def api_license(license_id, name, subscription=None, site_url=None, total=10, consumed=0):
    """Build a license object as GET /v1/licenses returns it, every unit used by users."""
    item = {
        "id": license_id,
        "name": name,
        "totalUnits": total,
        "consumedUnits": consumed,
        "consumedByUsers": consumed,
        "consumedByWorkspaces": 0,
    }
    if subscription:
        item["subscriptionId"] = subscription
    if site_url:
        item["siteUrl"] = site_url
    return item
