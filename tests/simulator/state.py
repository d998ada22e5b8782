"""The simulated Webex organizations, tokens and integrations.

One `SimulatorState` holds everything a fixture describes. Every public method takes the
state lock, so the threaded server can call them from several request threads at once.
"""

from __future__ import annotations

import bisect
import datetime
import json
import secrets
import threading
from typing import Iterable

from .errors import ApiError, bad_request, forbidden, not_found, unauthorized
from .fixture_check import check_fixture

HYBRID_PREFIX = "Hybrid -"
CALLING_PROFESSIONAL = "Webex Calling - Professional"
CALLING_STANDARD = "Webex Calling - Standard"
USER_CALLING_LICENSES = (CALLING_PROFESSIONAL, CALLING_STANDARD)
# Add-ons to Webex Calling with their own assignment rules (see assignment.check_calling_addon).
ATTENDANT_CONSOLE = "Webex Attendant Console"
CX_ESSENTIALS = "Customer Experience Essentials"
ACCESS_TOKEN_LIFETIME = 1209599  # 14 days less a second, as integration tokens report it
REFRESH_TOKEN_LIFETIME = 7776000  # 90 days

# Person fields that only appear with callingData=true.
CALLING_ONLY_FIELDS = ("locationId",)
# Presence fields are left out when people are looked up by id.
PRESENCE_FIELDS = ("status", "lastActivity")
# Fields that GET /people?id= leaves out (the API returns them through GET /people/{id}).
ID_LOOKUP_OMITS = ("licenses", "roles")


def is_hybrid(license_obj: dict) -> bool:
    return license_obj.get("name", "").startswith(HYBRID_PREFIX)


def is_user_calling(license_obj: dict) -> bool:
    return license_obj.get("name") in USER_CALLING_LICENSES


def is_implicit(license_obj: dict) -> bool:
    """Tell whether Webex assigns the license implicitly (Screen Share), so it cannot be removed."""
    return "screen share" in license_obj.get("name", "").lower()


def is_messenger(license_obj: dict) -> bool:
    return "messenger" in license_obj.get("name", "").lower()


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def format_timestamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_timestamp(text: str) -> datetime.datetime:
    """Parse an ISO 8601 timestamp; a value without zone is taken as UTC."""
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment


def workspace_license_ids(workspace: dict) -> list[str]:
    calling = workspace.get("calling") or {}
    return list((calling.get("webexCalling") or {}).get("licenses") or [])


def dump_json(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


class Token:
    """An access token and the orgs it may act on; `*` allows every org."""

    def __init__(self, access_token: str, org_ids: Iterable[str], expires_at: str | None = None):
        self.access_token = access_token
        self.org_ids = list(org_ids) or ["*"]
        self.expires_at = parse_timestamp(expires_at) if expires_at else None

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= utc_now()

    def may_act_on(self, org_id: str) -> bool:
        return "*" in self.org_ids or org_id in self.org_ids

    def as_dict(self) -> dict:
        return {
            "orgIds": list(self.org_ids),
            "expiresAt": format_timestamp(self.expires_at) if self.expires_at else None,
        }


class Org:
    """One organization with indexes for paging and the live license counters."""

    def __init__(self, data: dict):
        self.id: str = data["id"]
        self.display_name: str = data["displayName"]
        self.created: str = data.get("created", "2020-01-01T00:00:00.000Z")
        self.licenses: list[dict] = list(data.get("licenses") or [])
        self.people: list[dict] = list(data.get("people") or [])
        self.locations: list[dict] = list(data.get("locations") or [])
        self.workspaces: list[dict] = list(data.get("workspaces") or [])
        self.roles: list[dict] = list(data.get("roles") or [])

        self.license_by_id = {lic["id"]: lic for lic in self.licenses}
        self.location_by_id = {loc["id"]: loc for loc in self.locations}
        self.workspace_by_id = {ws["id"]: ws for ws in self.workspaces}
        self.role_by_id = {role["id"]: role for role in self.roles}
        self.person_index = {person["id"]: i for i, person in enumerate(self.people)}
        self.email_index: dict[str, int] = {}
        for i, person in enumerate(self.people):
            for email in person.get("emails") or []:
                other = self.email_index.get(email.lower())
                if other is not None and other != i:
                    # Webex keeps an email address unique without regard to case.
                    raise ValueError(
                        f"fixture org '{self.display_name}': people "
                        f"'{self.people[other]['id']}' and '{person['id']}' share the email "
                        f"address '{email}' (compared without case); give each its own"
                    )
                self.email_index[email.lower()] = i

        # Fixture counters that are null stay null in responses (a live quirk).
        self.null_counters = {
            lic["id"]: {
                field
                for field in ("consumedByUsers", "consumedByWorkspaces")
                if field in lic and lic[field] is None
            }
            for lic in self.licenses
        }
        self.holders: dict[str, list[int]] = {lic_id: [] for lic_id in self.license_by_id}
        self.workspace_counts = dict.fromkeys(self.license_by_id, 0)
        for i, person in enumerate(self.people):
            for lic_id in person.get("licenses") or []:
                if lic_id in self.holders:
                    self.holders[lic_id].append(i)
        for workspace in self.workspaces:
            for lic_id in workspace_license_ids(workspace):
                if lic_id in self.workspace_counts:
                    self.workspace_counts[lic_id] += 1

        self.site_urls = sorted({lic["siteUrl"] for lic in self.licenses if lic.get("siteUrl")})
        self._person_cache: dict[tuple[int, bool, bool], bytes] = {}

    # -- licenses ------------------------------------------------------------------------

    def consumed_units(self, lic: dict) -> int:
        if is_hybrid(lic):
            return lic.get("consumedUnits") or 0
        return len(self.holders[lic["id"]]) + self.workspace_counts[lic["id"]]

    def units_left(self, lic: dict) -> int:
        return (lic.get("totalUnits") or 0) - self.consumed_units(lic)

    def license_view(self, lic: dict) -> dict:
        """Return the license as the API shows it; hybrid counters are never recomputed."""
        view = dict(lic)
        if is_hybrid(lic):
            return view
        nulls = self.null_counters[lic["id"]]
        view["consumedUnits"] = self.consumed_units(lic)
        view["consumedByUsers"] = None if "consumedByUsers" in nulls else len(
            self.holders[lic["id"]]
        )
        view["consumedByWorkspaces"] = (
            None if "consumedByWorkspaces" in nulls else self.workspace_counts[lic["id"]]
        )
        return view

    def add_holder(self, lic_id: str, person_position: int) -> None:
        bisect.insort(self.holders[lic_id], person_position)

    def remove_holder(self, lic_id: str, person_position: int) -> None:
        holders = self.holders[lic_id]
        at = bisect.bisect_left(holders, person_position)
        if at < len(holders) and holders[at] == person_position:
            del holders[at]

    # -- people --------------------------------------------------------------------------

    def person_json(self, position: int, calling_data: bool, presence: bool = True) -> bytes:
        """Return the serialized person, cached until the person changes.

        ``presence`` False leaves out the presence fields, as ``excludeStatus=true`` requests.
        """
        key = (position, calling_data, presence)
        cached = self._person_cache.get(key)
        if cached is None:
            cached = dump_json(self.person_view(self.people[position], calling_data, presence))
            self._person_cache[key] = cached
        return cached

    @staticmethod
    def person_view(person: dict, calling_data: bool, presence: bool = True) -> dict:
        if calling_data and presence:
            return person
        dropped = (() if calling_data else CALLING_ONLY_FIELDS) + (
            () if presence else PRESENCE_FIELDS
        )
        return {key: value for key, value in person.items() if key not in dropped}

    def forget_person_json(self, position: int) -> None:
        for calling_data in (True, False):
            for presence in (True, False):
                self._person_cache.pop((position, calling_data, presence), None)

    def find_person(self, person_id: str | None, email: str | None) -> int | None:
        if person_id:
            return self.person_index.get(person_id)
        if email:
            return self.email_index.get(email.lower())
        return None

    def reindex_emails(self, position: int, old_emails: list[str], new_emails: list[str]) -> None:
        for email in old_emails:
            if self.email_index.get(email.lower()) == position:
                del self.email_index[email.lower()]
        for email in new_emails:
            self.email_index[email.lower()] = position


class PeoplePage:
    """One page of a people listing: serialized items and the position to resume from."""

    def __init__(self, items: list[bytes], next_position: int | None, not_found: list[str]):
        self.items = items
        self.next_position = next_position
        self.not_found = not_found


class SimulatorState:
    """All orgs, tokens and integrations of one fixture, guarded by `lock`."""

    def __init__(self, fixture_text: str):
        self.lock = threading.RLock()
        self._fixture_text = fixture_text
        self._load()

    @classmethod
    def from_fixture(cls, fixture: dict) -> SimulatorState:
        return cls(json.dumps(fixture))

    def _load(self) -> None:
        fixture = json.loads(self._fixture_text)
        check_fixture(fixture)
        self.orgs: list[Org] = [Org(data) for data in fixture.get("organizations") or []]
        self.org_by_id = {org.id: org for org in self.orgs}
        self.tokens: dict[str, Token] = {}
        for entry in fixture.get("tokens") or []:
            self.tokens[entry["accessToken"]] = Token(
                entry["accessToken"], entry.get("orgIds") or ["*"], entry.get("expiresAt")
            )
        self.integrations: list[dict] = []
        for entry in fixture.get("integrations") or []:
            integration = dict(entry)
            integration.setdefault("orgIds", "*")
            self.integrations.append(integration)

    def reset(self) -> None:
        """Restore the orgs, tokens and integrations the fixture describes."""
        with self.lock:
            self._load()

    # -- tokens and authorization ------------------------------------------------------

    def authenticate(self, authorization: str | None) -> Token:
        """Return the token of an `Authorization: Bearer` header, or raise 401."""
        if not authorization or not authorization.startswith("Bearer "):
            raise unauthorized()
        with self.lock:
            token = self.tokens.get(authorization[len("Bearer "):].strip())
        if token is None or token.expired:
            raise unauthorized()
        return token

    def own_org(self, token: Token) -> Org:
        for org_id in token.org_ids:
            if org_id != "*":
                org = self.org_by_id.get(org_id)
                if org is None:
                    raise not_found(f"Organization {org_id} of the access token does not exist.")
                return org
        if not self.orgs:
            raise not_found("The simulator has no organization.")
        return self.orgs[0]

    def resolve_org(self, token: Token, org_id: str | None) -> Org:
        """Return the org a request targets: `org_id` when given, else the token's own org."""
        if not org_id:
            return self.own_org(token)
        if not token.may_act_on(org_id):
            raise forbidden(f"The access token is not allowed to act on organization {org_id}.")
        org = self.org_by_id.get(org_id)
        if org is None:
            raise not_found(f"Organization {org_id} not found.")
        return org

    def visible_orgs(self, token: Token) -> list[Org]:
        return [org for org in self.orgs if token.may_act_on(org.id)]

    def add_token(self, access_token: str, org_ids: list[str], expires_at: str | None) -> Token:
        token = Token(access_token, org_ids, expires_at)
        with self.lock:
            self.tokens[access_token] = token
        return token

    def expire_token(self, access_token: str) -> bool:
        with self.lock:
            token = self.tokens.get(access_token)
            if token is None:
                return False
            token.expires_at = utc_now() - datetime.timedelta(seconds=1)
            return True

    def refresh_access_token(self, form: dict) -> dict:
        """Run the OAuth refresh grant; the refresh token itself stays valid and unchanged."""
        grant_type = form.get("grant_type")
        if grant_type != "refresh_token":
            raise bad_request(f"Unsupported grant_type {grant_type!r}: use refresh_token.")
        for field in ("client_id", "client_secret", "refresh_token"):
            if not form.get(field):
                raise bad_request(f"Missing form field {field}.")

        with self.lock:
            integration = next(
                (i for i in self.integrations if i.get("clientId") == form["client_id"]), None
            )
            if integration is None or integration.get("clientSecret") != form["client_secret"]:
                raise ApiError(401, "Invalid client_id or client_secret.")
            if integration.get("refreshToken") != form["refresh_token"]:
                raise bad_request("The refresh token is invalid or expired.")

            org_ids = integration.get("orgIds") or "*"
            if isinstance(org_ids, str):
                org_ids = [org_ids]
            access_token = "sim-access-" + secrets.token_hex(24)
            expires_at = utc_now() + datetime.timedelta(seconds=ACCESS_TOKEN_LIFETIME)
            self.tokens[access_token] = Token(access_token, org_ids, format_timestamp(expires_at))

        return {
            "access_token": access_token,
            "expires_in": ACCESS_TOKEN_LIFETIME,
            "refresh_token": form["refresh_token"],
            "refresh_token_expires_in": REFRESH_TOKEN_LIFETIME,
            "token_type": "Bearer",
        }

    # -- reads ---------------------------------------------------------------------------

    def list_licenses(self, org: Org) -> list[dict]:
        with self.lock:
            return [org.license_view(lic) for lic in org.licenses]

    def find_license(self, token: Token, lic_id: str) -> tuple[Org, dict]:
        for org in self.visible_orgs(token):
            lic = org.license_by_id.get(lic_id)
            if lic is not None:
                return org, lic
        raise not_found(f"License {lic_id} not found.")

    def license_with_users(
        self, token: Token, lic_id: str, include_users: bool, position: int, limit: int
    ) -> tuple[dict, int | None]:
        """Return the license (with a page of `users` when asked) and the next position."""
        with self.lock:
            org, lic = self.find_license(token, lic_id)
            view = org.license_view(lic)
            if not include_users:
                return view, None

            holders = org.holders[lic_id]
            start = bisect.bisect_left(holders, position)
            page = holders[start:start + limit]
            view["users"] = [
                {
                    "id": org.people[i]["id"],
                    "type": "INTERNAL",
                    "displayName": org.people[i].get("displayName", ""),
                    "email": (org.people[i].get("emails") or [""])[0],
                }
                for i in page
            ]
            more = start + limit < len(holders)
            return view, (page[-1] + 1 if more else None)

    def list_people(
        self,
        org: Org,
        *,
        calling_data: bool,
        max_items: int,
        position: int,
        email: str | None = None,
        ids: list[str] | None = None,
        display_name: str | None = None,
        location_id: str | None = None,
        role_ids: list[str] | None = None,
        presence: bool = True,
    ) -> PeoplePage:
        """Return one page of people; `position` indexes the org's people list.

        ``presence`` False leaves out the presence fields (``excludeStatus=true``).
        """
        with self.lock:
            if ids is not None:
                return self._people_by_ids(org, ids, calling_data)
            if email is not None:
                found = org.email_index.get(email.lower())
                items = [] if found is None else [org.person_json(found, calling_data, presence)]
                return PeoplePage(items, None, [])

            filters = []
            if display_name:
                prefix = display_name.lower()
                filters.append(lambda p: p.get("displayName", "").lower().startswith(prefix))
            if location_id:
                filters.append(lambda p: p.get("locationId") == location_id)
            if role_ids:
                wanted = set(role_ids)
                filters.append(lambda p: bool(wanted.intersection(p.get("roles") or [])))

            if not filters:
                end = min(position + max_items, len(org.people))
                items = [org.person_json(i, calling_data, presence) for i in range(position, end)]
                return PeoplePage(items, end if end < len(org.people) else None, [])
            return self._scan_people(org, filters, calling_data, max_items, position, presence)

    @staticmethod
    def _scan_people(
        org: Org, filters, calling_data: bool, max_items: int, position: int, presence: bool
    ):
        items: list[bytes] = []
        i = position
        total = len(org.people)
        while i < total:
            person = org.people[i]
            if all(match(person) for match in filters):
                if len(items) == max_items:
                    return PeoplePage(items, i, [])
                items.append(org.person_json(i, calling_data, presence))
            i += 1
        return PeoplePage(items, None, [])

    @staticmethod
    def _people_by_ids(org: Org, ids: list[str], calling_data: bool) -> PeoplePage:
        items: list[bytes] = []
        not_found_ids: list[str] = []
        for person_id in ids:
            position = org.person_index.get(person_id)
            if position is None:
                not_found_ids.append(person_id)
                continue
            # A lookup by id omits presence and the admin fields (licenses and roles), which
            # the API describes for GET /people/{id} only.
            view = org.person_view(org.people[position], calling_data, presence=False)
            items.append(dump_json({k: v for k, v in view.items() if k not in ID_LOOKUP_OMITS}))
        return PeoplePage(items, None, not_found_ids)

    def find_person(self, token: Token, person_id: str) -> tuple[Org, int]:
        for org in self.visible_orgs(token):
            position = org.person_index.get(person_id)
            if position is not None:
                return org, position
        raise not_found(f"Person {person_id} not found.")

    def get_token_person(self, token: Token, calling_data: bool) -> bytes:
        """Return the person of the access token (``GET /people/me``).

        Fixtures name no owner of a token, so the owner is the first person of the token's
        own org who has an admin role, or else its first person.
        """
        with self.lock:
            org = self.own_org(token)
            if not org.people:
                raise not_found(f"Organization {org.id} of the access token has no people.")
            position = next(
                (i for i, person in enumerate(org.people) if person.get("roles")), 0
            )
            return org.person_json(position, calling_data)

    def get_person(self, token: Token, person_id: str, calling_data: bool) -> bytes:
        with self.lock:
            org, position = self.find_person(token, person_id)
            return org.person_json(position, calling_data)

    def list_locations(
        self, org: Org, name: str | None, location_id: str | None
    ) -> list[dict]:
        with self.lock:
            found = org.locations
            if location_id:
                found = [loc for loc in found if loc["id"] == location_id]
            if name:
                needle = name.lower()
                found = [loc for loc in found if needle in loc.get("name", "").lower()]
            return list(found)

    def get_location(self, token: Token, location_id: str, org_id: str | None) -> dict:
        with self.lock:
            orgs = [self.resolve_org(token, org_id)] if org_id else self.visible_orgs(token)
            for org in orgs:
                loc = org.location_by_id.get(location_id)
                if loc is not None:
                    return loc
        raise not_found(f"Location {location_id} not found.")

    def list_workspaces(self, org: Org, filters: dict) -> list[dict]:
        """Return the org's workspaces matching `filters` (exact match on the given fields)."""
        with self.lock:
            found = org.workspaces
            if filters.get("locationId"):
                found = [ws for ws in found if ws.get("locationId") == filters["locationId"]]
            if filters.get("displayName"):
                needle = filters["displayName"].lower()
                found = [ws for ws in found if needle in ws.get("displayName", "").lower()]
            if filters.get("type"):
                found = [ws for ws in found if ws.get("type") == filters["type"]]
            if filters.get("calling"):
                found = [
                    ws for ws in found
                    if (ws.get("calling") or {}).get("type") == filters["calling"]
                ]
            return list(found)

    def get_workspace(self, token: Token, workspace_id: str) -> dict:
        with self.lock:
            for org in self.visible_orgs(token):
                workspace = org.workspace_by_id.get(workspace_id)
                if workspace is not None:
                    return workspace
        raise not_found(f"Workspace {workspace_id} not found.")

    def get_organization(self, token: Token, org_id: str) -> dict:
        with self.lock:
            org = self.resolve_org(token, org_id)
            return organization_view(org)

    def list_organizations(self, token: Token) -> list[dict]:
        with self.lock:
            return [organization_view(org) for org in self.visible_orgs(token)]

    def list_roles(self, org: Org) -> list[dict]:
        with self.lock:
            return list(org.roles)

    def get_role(self, token: Token, role_id: str) -> dict:
        with self.lock:
            for org in [self.own_org(token), *self.visible_orgs(token)]:
                role = org.role_by_id.get(role_id)
                if role is not None:
                    return role
        raise not_found(f"Role {role_id} not found.")


def organization_view(org: Org) -> dict:
    return {"id": org.id, "displayName": org.display_name, "created": org.created}
