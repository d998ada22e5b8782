"""Peer contender: read the sync's objects with webexpythonsdk, as a user script would.

Usage: python bench/peer_webexpythonsdk.py API_URL TOKEN. Every object is read and one
field touched, so the SDK builds each object; nothing is kept.
"""

import json
import sys

from webexpythonsdk import WebexAPI


def main() -> None:
    api_url, token = sys.argv[1], sys.argv[2]
    api = WebexAPI(access_token=token, base_url=api_url.rstrip("/") + "/")
    counts = {
        "licenses": sum(1 for item in api.licenses.list() if item.id),
        "roles": sum(1 for item in api.roles.list() if item.id),
        # The same query as the sync: calling data, no presence.
        "people": sum(
            1 for item in api.people.list(callingData=True, excludeStatus=True, max=100)
            if item.id
        ),
        # webexpythonsdk 2.0.6 has no locations or workspaces API; its REST session
        # pages any list (get_items follows Link rel="next" and yields dicts).
        "locations": sum(
            1 for item in api._session.get_items("locations", params={"max": 500}) if item["id"]
        ),
        "workspaces": sum(
            1 for item in api._session.get_items("workspaces", params={"max": 100}) if item["id"]
        ),
    }
    json.dump(counts, sys.stdout)


if __name__ == "__main__":
    main()
