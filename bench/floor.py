"""Floor contender: fetch the pages of a full sync with one requests.Session, decode, discard.

Usage: python bench/floor.py API_URL TOKEN. Page sizes are those of webex_license_sync:
people max=100 with callingData=true and excludeStatus=true, locations max=500,
workspaces max=100.
"""

import json
import sys

import requests


def fetch_all(session, url, params):
    """Follow Link rel="next" from url; return the number of items read."""
    count = 0
    while url:
        response = session.get(url, params=params, timeout=60)
        response.raise_for_status()
        count += len(response.json().get("items", []))
        url = response.links.get("next", {}).get("url")
        params = None
    return count


def main() -> None:
    api_url, token = sys.argv[1], sys.argv[2]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    counts = {
        "licenses": fetch_all(session, f"{api_url}/licenses", {}),
        "roles": fetch_all(session, f"{api_url}/roles", {}),
        "people": fetch_all(session, f"{api_url}/people",
                            {"max": 100, "callingData": "true", "excludeStatus": "true"}),
        "locations": fetch_all(session, f"{api_url}/locations", {"max": 500}),
        "workspaces": fetch_all(session, f"{api_url}/workspaces", {"max": 100}),
    }
    json.dump(counts, sys.stdout)


if __name__ == "__main__":
    main()
