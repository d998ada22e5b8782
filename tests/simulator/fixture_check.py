"""Structure check of a simulator fixture, run before the simulator loads it.

A fixture is written by hand or exported from an org, so it is checked the way the Webex
API describes its objects: an id that is text on every object, lists where the API has
lists, whole numbers for license counters, and references (a person's location, a
workspace's location) that point at objects of the same org. Every problem is reported
with its place in the file, so a wrong fixture fails at start-up with a message instead
of serving wrong data or failing inside a request.
"""

from __future__ import annotations

from typing import Any

# How many problems one message lists; the rest are counted.
MAX_LISTED = 10

LIST_FIELDS = ("licenses", "people", "locations", "workspaces", "roles")
SINGULAR = {"licenses": "license", "people": "person", "locations": "location",
            "workspaces": "workspace", "roles": "role"}


class FixtureProblems:
    """The problems found so far, each with its place in the fixture."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def add(self, place: str, text: str) -> None:
        self.found.append(f"{place}: {text}")

    def raise_if_any(self) -> None:
        if not self.found:
            return
        listed = "; ".join(self.found[:MAX_LISTED])
        more = len(self.found) - MAX_LISTED
        suffix = f"; and {more} more" if more > 0 else ""
        raise ValueError(f"{len(self.found)} problem(s): {listed}{suffix}")


def check_fixture(fixture: Any) -> None:
    """Raise ValueError listing every structural problem of ``fixture`` (parsed JSON)."""
    problems = FixtureProblems()
    if not isinstance(fixture, dict):
        problems.add("top level", f"is {_kind(fixture)}, expected an object")
        problems.raise_if_any()

    orgs = _list_field(fixture, "organizations", "top level", problems)
    org_ids: set = set()
    for index, org in enumerate(orgs):
        place = f"organizations[{index}]"
        if not isinstance(org, dict):
            problems.add(place, f"is {_kind(org)}, expected an object")
            continue
        org_id = _check_id(org, place, problems)
        if org_id is not None:
            if org_id in org_ids:
                problems.add(place, f"repeats the org id {org_id!r}")
            org_ids.add(org_id)
        _check_text(org, "displayName", place, problems, required=True)
        _check_org(org, f"{place} ({org.get('displayName')!r})", problems)

    for index, token in enumerate(_list_field(fixture, "tokens", "top level", problems)):
        place = f"tokens[{index}]"
        if not isinstance(token, dict):
            problems.add(place, f"is {_kind(token)}, expected an object")
            continue
        _check_text(token, "accessToken", place, problems, required=True)
        _check_text_list(token, "orgIds", place, problems)
        _check_text(token, "expiresAt", place, problems)

    for index, entry in enumerate(_list_field(fixture, "integrations", "top level", problems)):
        if not isinstance(entry, dict):
            problems.add(f"integrations[{index}]", f"is {_kind(entry)}, expected an object")
    problems.raise_if_any()


def _check_org(org: dict, place: str, problems: FixtureProblems) -> None:
    lists = {field: _list_field(org, field, place, problems) for field in LIST_FIELDS}
    location_ids = {
        loc.get("id") for loc in lists["locations"] if isinstance(loc, dict)
    }
    for field, items in lists.items():
        seen: set = set()
        for index, item in enumerate(items):
            item_place = f"{place}.{field}[{index}]"
            if not isinstance(item, dict):
                problems.add(item_place, f"is {_kind(item)}, expected an object")
                continue
            item_id = _check_id(item, item_place, problems)
            if item_id is not None:
                if item_id in seen:
                    problems.add(
                        item_place, f"repeats the id {item_id!r} of another {SINGULAR[field]}"
                    )
                seen.add(item_id)
                item_place = f"{item_place} (id {item_id!r})"
            CHECKS[field](item, item_place, problems, location_ids)


def _check_license(item: dict, place: str, problems: FixtureProblems, _locations: set) -> None:
    _check_text(item, "name", place, problems, required=True)
    for field in ("totalUnits", "consumedUnits"):
        _check_count(item, field, place, problems)
    for field in ("consumedByUsers", "consumedByWorkspaces"):
        _check_count(item, field, place, problems)
    for field in ("subscriptionId", "siteUrl", "siteType"):
        _check_text(item, field, place, problems)


def _check_person(item: dict, place: str, problems: FixtureProblems, locations: set) -> None:
    _check_text_list(item, "emails", place, problems)
    _check_text_list(item, "licenses", place, problems)
    _check_text_list(item, "roles", place, problems)
    _check_text_list(item, "siteUrls", place, problems)
    for field in ("displayName", "firstName", "lastName", "extension"):
        _check_text(item, field, place, problems)
    _check_location(item, place, problems, locations)


def _check_location(item: dict, place: str, problems: FixtureProblems, locations: set) -> None:
    location_id = item.get("locationId")
    if location_id is None:
        return
    if not isinstance(location_id, str):
        problems.add(place, f"locationId is {_kind(location_id)}, expected text")
    elif location_id not in locations:
        problems.add(place, f"locationId {location_id!r} is not a location of the org")


def _check_place(item: dict, place: str, problems: FixtureProblems, _locations: set) -> None:
    _check_text(item, "name", place, problems)
    _check_object(item, "address", place, problems)


def _check_workspace(item: dict, place: str, problems: FixtureProblems, locations: set) -> None:
    _check_text(item, "displayName", place, problems)
    _check_location(item, place, problems, locations)
    calling = _check_object(item, "calling", place, problems)
    _check_text(calling, "type", f"{place}.calling", problems)
    webex_calling = _check_object(calling, "webexCalling", f"{place}.calling", problems)
    _check_text_list(webex_calling, "licenses", f"{place}.calling.webexCalling", problems)


def _check_role(item: dict, place: str, problems: FixtureProblems, _locations: set) -> None:
    _check_text(item, "name", place, problems)


CHECKS = {
    "licenses": _check_license,
    "people": _check_person,
    "locations": _check_place,
    "workspaces": _check_workspace,
    "roles": _check_role,
}


def _check_id(item: dict, place: str, problems: FixtureProblems) -> Any:
    value = item.get("id")
    if not isinstance(value, str) or not value:
        problems.add(place, f"id is {_kind(value)}, expected non-empty text")
        return None
    return value


def _check_text(
    item: dict, field: str, place: str, problems: FixtureProblems, required: bool = False
) -> None:
    value = item.get(field)
    if value is None and not required:
        return
    if not isinstance(value, str):
        problems.add(place, f"{field} is {_kind(value)}, expected text")


def _check_text_list(item: dict, field: str, place: str, problems: FixtureProblems) -> None:
    value = item.get(field)
    if value is None:
        return
    if not isinstance(value, list) or not all(isinstance(entry, str) for entry in value):
        problems.add(place, f"{field} is {_kind(value)}, expected a list of texts")


def _check_count(item: dict, field: str, place: str, problems: FixtureProblems) -> None:
    value = item.get(field)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        problems.add(place, f"{field} is {_kind(value)}, expected a whole number or null")


def _check_object(item: dict, field: str, place: str, problems: FixtureProblems) -> dict:
    value = item.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.add(place, f"{field} is {_kind(value)}, expected an object")
        return {}
    return value


def _list_field(item: dict, field: str, place: str, problems: FixtureProblems) -> list:
    value = item.get(field)
    if value is None:
        return []
    if not isinstance(value, list):
        problems.add(place, f"{field} is {_kind(value)}, expected a list")
        return []
    return value


def _kind(value: Any) -> str:
    """Describe a JSON value for a message: its type, and short values themselves."""
    if value is None:
        return "missing or null"
    names = {bool: "a boolean", str: "text", int: "a number", float: "a number",
             list: "a list", dict: "an object"}
    name = names.get(type(value), type(value).__name__)
    text = repr(value)
    return f"{name} {text}" if len(text) <= 40 else name
