"""Peer contender: read the sync's objects with wxc_sdk, as a user script would.

Usage: python bench/peer_wxc_sdk.py API_URL TOKEN. wxc_sdk takes its base URL from
RestSession.BASE, so the session of the API object gets the simulator URL.
"""

import json
import sys

from wxc_sdk import WebexSimpleApi


def main() -> None:
    api_url, token = sys.argv[1], sys.argv[2]
    api = WebexSimpleApi(tokens=token)
    api.session.BASE = api_url.rstrip("/")
    counts = {
        "licenses": sum(1 for item in api.licenses.list() if item.license_id),
        "roles": sum(1 for item in api.roles.list() if item.id),
        # The same query as the sync: calling data, no presence.
        "people": sum(
            1 for item in api.people.list(calling_data=True, exclude_status=True)
            if item.person_id
        ),
        "locations": sum(1 for item in api.locations.list() if item.location_id),
        "workspaces": sum(1 for item in api.workspaces.list() if item.workspace_id),
    }
    json.dump(counts, sys.stdout)


if __name__ == "__main__":
    main()
