"""Generate simulator fixtures: realistic orgs with people, licenses, locations and workspaces.

`python -m tests.simulator.generate --out FILE --users N [--seed S] [--licenses 20]
[--subscriptions 2] [--site-urls 2] [--locations 200] [--workspaces 5000] [--customers K]`
writes a fixture; `--demo` writes the demo fixture instead. The same arguments always give a
byte-identical file: every value, timestamps included, comes from a seeded random generator.

Tests build fixtures in memory with `build_fixture`, `build_org` and `build_demo_fixture`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
import sys
import uuid

from . import ids

# Type codes inside license ids. EE, MS and BCSTD appear in live ids. The others are
# stand-ins because Cisco publishes no list.
FREE_LICENSES = (
    ("Basic Messaging", "BM"),
    ("Free screen share", "SS"),
    ("Basic Space Meetings", "BSM"),
)
MEETING = ("Meeting - Webex Enterprise Edition", "EE")
CALLING_PROFESSIONAL = ("Webex Calling - Professional", "BCSTD")
CALLING_STANDARD = ("Webex Calling - Standard", "BCBASIC")
CALLING_WORKSPACES = ("Webex Calling - Workspaces", "BCWS")
ADVANCED_MESSAGING = ("Advanced Messaging", "MS")
HYBRID_CALENDAR = ("Hybrid - Exchange Calendar", "HEC")
ROUTE_LIST = ("Webex Calling - Route List Calls", "RLC")
EXTRA_LICENSES = (
    ("Webex Attendant Console", "AC"),
    ("Customer Experience Essentials", "CXE"),
    ("Webex Webinars", "WEBINAR"),
    ("Hybrid - Google Calendar", "HGC"),
    ("Webex Assistant for Meetings", "WAM"),
)

FIRST_NAMES = (
    "Ada", "Ben", "Carla", "Dmitri", "Elif", "Farah", "Gustav", "Hana", "Ivan", "Jonas",
    "Keiko", "Liam", "Maya", "Nadia", "Omar", "Priya", "Quentin", "Rosa", "Sven", "Tariq",
    "Uma", "Victor", "Wen", "Ximena", "Yusuf", "Zoe", "Anders", "Bianca", "Chidi", "Dana",
)
LAST_NAMES = (
    "Abbott", "Bauer", "Castillo", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad",
    "Ivanova", "Jensen", "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Petrov",
    "Quinn", "Rossi", "Schmidt", "Tanaka", "Ueda", "Varga", "Weber", "Xu", "Yilmaz", "Zhang",
)
DEPARTMENTS = ("Sales", "Operations", "Finance", "Engineering", "Support", "Clinical", "HR")
TITLES = ("Manager", "Engineer", "Analyst", "Coordinator", "Specialist", "Director")
CITIES = (
    ("Denver", "CO", "US", "America/Denver"), ("Chicago", "IL", "US", "America/Chicago"),
    ("Austin", "TX", "US", "America/Chicago"), ("Seattle", "WA", "US", "America/Los_Angeles"),
    ("Boston", "MA", "US", "America/New_York"), ("Toronto", "ON", "CA", "America/Toronto"),
    ("Berlin", "BE", "DE", "Europe/Berlin"), ("Lyon", "ARA", "FR", "Europe/Paris"),
    ("Oslo", "OS", "NO", "Europe/Oslo"), ("Madrid", "MD", "ES", "Europe/Madrid"),
)
WORKSPACE_TYPES = ("meetingRoom", "focus", "huddle", "desk", "open", "other", "notSet")
ROLE_NAMES = (
    ("id_full_admin", "Full Administrator"),
    ("id_user_admin", "User Administrator"),
    ("id_readonly_admin", "Read-only Administrator"),
    ("id_device_admin", "Device Administrator"),
)
EPOCH = datetime.datetime(2019, 1, 1, tzinfo=datetime.timezone.utc)


def new_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def timestamp(rng: random.Random, start_days: int = 0, span_days: int = 2000) -> str:
    moment = EPOCH + datetime.timedelta(
        days=start_days + rng.randrange(span_days), seconds=rng.randrange(86400)
    )
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


class LicenseSpec:
    """A license to create: name, type code, subscription index and meeting site URL."""

    def __init__(self, name, code, subscription=None, site_url=None, null_counters=False):
        self.name = name
        self.code = code
        self.subscription = subscription
        self.site_url = site_url
        self.null_counters = null_counters


def plan_licenses(count: int, subscriptions: int, site_urls: list[str]) -> list[LicenseSpec]:
    """List `count` licenses: free ones, then per subscription meeting, calling, messaging.

    Names repeat across subscriptions; site URLs are spread over the subscriptions.
    """
    specs = [LicenseSpec(name, code) for name, code in FREE_LICENSES]
    for sub in range(subscriptions):
        for index, site in enumerate(site_urls):
            if index % subscriptions == sub:
                specs.append(LicenseSpec(*MEETING, sub, site))
        specs.append(LicenseSpec(*CALLING_PROFESSIONAL, sub))
        specs.append(LicenseSpec(*CALLING_STANDARD, sub))
        specs.append(LicenseSpec(*CALLING_WORKSPACES, sub))
        specs.append(LicenseSpec(*ADVANCED_MESSAGING, sub))
    specs.append(LicenseSpec(*HYBRID_CALENDAR))
    if subscriptions:
        specs.append(LicenseSpec(*ROUTE_LIST, 0, null_counters=True))

    extra = 0
    while len(specs) < count:
        name, code = EXTRA_LICENSES[extra % len(EXTRA_LICENSES)]
        round_number = extra // len(EXTRA_LICENSES)
        if round_number:
            name = f"{name} {round_number + 1}"
        sub = extra % subscriptions if subscriptions else None
        specs.append(LicenseSpec(name, code, None if name.startswith("Hybrid -") else sub))
        extra += 1
    return specs[:count]


class OrgBuilder:
    """Builds one org; `build` returns it in the fixture shape."""

    def __init__(self, rng: random.Random, display_name: str, domain: str, *, users: int,
                 licenses: int, subscriptions: int, site_urls: list[str], locations: int,
                 workspaces: int, subscription_prefix: str, exhausted_standard: bool = False):
        self.rng = rng
        self.display_name = display_name
        self.domain = domain
        self.user_count = users
        self.location_count = locations
        self.workspace_count = workspaces
        self.exhausted_standard = exhausted_standard
        self.org_uuid = new_uuid(rng)
        self.org_id = ids.org_id(self.org_uuid)
        self.subscription_ids = [
            f"Sub-{subscription_prefix}{100 + i}" for i in range(subscriptions)
        ]
        self.specs = plan_licenses(licenses, subscriptions, site_urls)
        self.license_ids = [
            ids.license_id(self.org_uuid, spec.code, new_uuid(rng), spec.site_url)
            for spec in self.specs
        ]
        self.holders = [0] * len(self.specs)
        self.workspace_holders = [0] * len(self.specs)

    def find(self, name: str, subscription: int | None = None) -> int | None:
        for index, spec in enumerate(self.specs):
            if spec.name == name and (subscription is None or spec.subscription == subscription):
                return index
        return None

    def find_preferred(self, name: str, subscription: int) -> int | None:
        """Find the license of `subscription`, or of any subscription when it has none."""
        index = self.find(name, subscription)
        return index if index is not None else self.find(name)

    def pick_subscription(self) -> int:
        """Pick the default subscription mostly and another one for about 15% of picks."""
        count = len(self.subscription_ids)
        if count > 1 and self.rng.random() < 0.15:
            return self.rng.randrange(1, count)
        return 0

    def build(self) -> dict:
        rng = self.rng
        roles = [{"id": ids.role_id(code), "name": name} for code, name in ROLE_NAMES]
        locations = [self.build_location(i) for i in range(self.location_count)]
        people = [self.build_person(i, locations, roles) for i in range(self.user_count)]
        workspaces = [self.build_workspace(i, locations) for i in range(self.workspace_count)]
        return {
            "id": self.org_id,
            "displayName": self.display_name,
            "created": timestamp(rng, 0, 400).replace(".000Z", "+00:00"),
            "licenses": [self.build_license(i) for i in range(len(self.specs))],
            "people": people,
            "locations": locations,
            "workspaces": workspaces,
            "roles": roles,
        }

    def build_license(self, index: int) -> dict:
        spec = self.specs[index]
        users = self.holders[index]
        workspaces = self.workspace_holders[index]
        consumed = users + workspaces
        if spec.name.startswith("Hybrid -"):
            total, consumed, users, workspaces = 1, 0, 0, 0
        elif spec.subscription is None:
            total = self.user_count  # bundled licenses follow the number of users
        elif spec.name == CALLING_STANDARD[0] and self.exhausted_standard and spec.subscription:
            total = consumed
        else:
            total = consumed + consumed // 10 + 5
        license_obj = {
            "id": self.license_ids[index],
            "name": spec.name,
            "totalUnits": total,
            "consumedUnits": consumed,
            "consumedByUsers": None if spec.null_counters else users,
            "consumedByWorkspaces": None if spec.null_counters else workspaces,
        }
        if spec.subscription is not None:
            license_obj["subscriptionId"] = self.subscription_ids[spec.subscription]
        if spec.site_url:
            license_obj["siteUrl"] = spec.site_url
            license_obj["siteType"] = "Control Hub managed site"
        return license_obj

    def build_location(self, index: int) -> dict:
        rng = self.rng
        city, state, country, zone = CITIES[index % len(CITIES)]
        return {
            "id": ids.location_id(new_uuid(rng)),
            "name": f"{city} {index + 1:03d}",
            "orgId": self.org_id,
            "address": {
                "address1": f"{100 + rng.randrange(900)} Main St.",
                "address2": f"Floor {1 + rng.randrange(20)}",
                "city": city,
                "state": state,
                "postalCode": f"{10000 + rng.randrange(89999)}",
                "country": country,
            },
            "timeZone": zone,
            "preferredLanguage": "en_us",
            "latitude": f"{rng.uniform(-60, 60):.6f}",
            "longitude": f"{rng.uniform(-120, 120):.6f}",
            "notes": f"{city} office",
        }

    def hold(self, person_licenses: list[str], index: int | None) -> bool:
        if index is None:
            return False
        person_licenses.append(self.license_ids[index])
        self.holders[index] += 1
        return True

    def build_person(self, index: int, locations: list[dict], roles: list[dict]) -> dict:
        rng = self.rng
        first = FIRST_NAMES[rng.randrange(len(FIRST_NAMES))]
        last = LAST_NAMES[rng.randrange(len(LAST_NAMES))]
        email = f"{first.lower()}.{last.lower()}{index + 1}@{self.domain}"
        person_licenses: list[str] = []
        for name, _code in FREE_LICENSES:
            self.hold(person_licenses, self.find(name))

        site_urls = []
        if rng.random() < 0.75:
            meeting = self.find_preferred(MEETING[0], self.pick_subscription())
            if self.hold(person_licenses, meeting):
                site_urls.append(self.specs[meeting].site_url)

        person = {
            "id": ids.person_id(new_uuid(rng)),
            "emails": [email],
            "displayName": f"{first} {last}",
            "firstName": first,
            "lastName": last,
            "orgId": self.org_id,
            "roles": [roles[0]["id"]] if index < 3 else [],
            "licenses": person_licenses,
            "department": DEPARTMENTS[rng.randrange(len(DEPARTMENTS))],
            "title": TITLES[rng.randrange(len(TITLES))],
            "created": timestamp(rng, 400, 1000),
            "lastModified": timestamp(rng, 1400, 600),
            "lastActivity": timestamp(rng, 2000, 200),
            "status": "active" if rng.random() < 0.3 else "inactive",
            "invitePending": False,
            "loginEnabled": True,
            "type": "person",
        }
        if rng.random() < 0.02:
            person["invitePending"] = True
            person["status"] = "pending"

        draw = rng.random()
        if locations and draw < 0.55:
            license_name = CALLING_PROFESSIONAL[0] if draw < 0.45 else CALLING_STANDARD[0]
            calling = self.find_preferred(license_name, self.pick_subscription())
            if self.hold(person_licenses, calling):
                extension = str(1000 + index)
                person["phoneNumbers"] = [
                    {"type": "work", "value": f"+1 555 {index // 10000:03d} {index % 10000:04d}",
                     "primary": True},
                    {"type": "work_extension", "value": f"8{extension}", "primary": False},
                ]
                person["extension"] = extension
                person["locationId"] = locations[rng.randrange(len(locations))]["id"]
                person["timezone"] = "America/Chicago"
        if rng.random() < 0.25:
            self.hold(person_licenses, self.find(ADVANCED_MESSAGING[0], self.pick_subscription()))
        if rng.random() < 0.2:
            self.hold(person_licenses, self.find(HYBRID_CALENDAR[0]))
        if site_urls:
            person["siteUrls"] = site_urls
        return person

    def build_workspace(self, index: int, locations: list[dict]) -> dict:
        rng = self.rng
        workspace = {
            "id": ids.workspace_id(new_uuid(rng)),
            "orgId": self.org_id,
            "displayName": f"Room {index + 1:04d}",
            "capacity": 2 + rng.randrange(18),
            "type": WORKSPACE_TYPES[rng.randrange(len(WORKSPACE_TYPES))],
            "sipAddress": f"room{index + 1:04d}@{self.domain.split('.')[0]}.rooms.webex.com",
            "created": timestamp(rng, 400, 1500),
            "calling": {"type": "freeCalling"},
            "calendar": {"type": "none"},
            "hotdeskingStatus": "off",
            "supportedDevices": "collaborationDevices",
            "devicePlatform": "cisco",
        }
        if locations:
            workspace["locationId"] = locations[rng.randrange(len(locations))]["id"]
        license_index = self.find(CALLING_WORKSPACES[0], 0)
        if locations and license_index is not None and rng.random() < 0.6:
            workspace["calling"] = {
                "type": "webexCalling",
                "webexCalling": {"licenses": [self.license_ids[license_index]]},
            }
            self.workspace_holders[license_index] += 1
        return workspace


def build_org(rng: random.Random, display_name: str, domain: str, *, users: int,
              licenses: int = 20, subscriptions: int = 2, site_urls: list[str] | None = None,
              locations: int = 200, workspaces: int = 5000, subscription_prefix: str = "A",
              exhausted_standard: bool = False) -> dict:
    """Build one org in the fixture shape (see OrgBuilder for the assignment policy)."""
    if site_urls is None:
        site_urls = [f"{domain.split('.')[0]}.webex.com"]
    return OrgBuilder(
        rng, display_name, domain, users=users, licenses=licenses, subscriptions=subscriptions,
        site_urls=site_urls, locations=locations, workspaces=workspaces,
        subscription_prefix=subscription_prefix, exhausted_standard=exhausted_standard,
    ).build()


def build_fixture(users: int, seed: int = 1, licenses: int = 20, subscriptions: int = 2,
                  site_urls: int = 2, locations: int = 200, workspaces: int = 5000,
                  customers: int = 0) -> dict:
    """Build a fixture: one org, or with `customers` a partner org managing that many customers.

    Tokens: `sim-token` (the single org) or `sim-partner-token` (partner and every customer).
    Integration: client `sim-client-id` / `sim-client-secret`, refresh token `sim-refresh-token`.
    """
    rng = random.Random(seed)

    def customer(number: int) -> dict:
        tag = f"customer{number}" if customers else "example"
        return build_org(
            rng, f"Customer {number}" if customers else "Example Org",
            f"{tag}.example.com" if customers else "example.com",
            users=users, licenses=licenses, subscriptions=subscriptions,
            site_urls=[f"{tag}-{i + 1}.webex.com" for i in range(site_urls)],
            locations=locations, workspaces=workspaces, subscription_prefix=f"C{number}X",
        )

    if not customers:
        org = customer(1)
        return {
            "tokens": [{"accessToken": "sim-token", "orgIds": [org["id"]]}],
            "integrations": [{"clientId": "sim-client-id", "clientSecret": "sim-client-secret",
                              "refreshToken": "sim-refresh-token", "orgIds": [org["id"]]}],
            "organizations": [org],
        }

    partner = build_org(rng, "Partner Org", "partner.example.com", users=5, licenses=6,
                        subscriptions=1, locations=1, workspaces=0, subscription_prefix="P")
    orgs = [partner] + [customer(n + 1) for n in range(customers)]
    org_ids = [org["id"] for org in orgs]
    return {
        "tokens": [{"accessToken": "sim-partner-token", "orgIds": org_ids}],
        "integrations": [{"clientId": "sim-client-id", "clientSecret": "sim-client-secret",
                          "refreshToken": "sim-refresh-token", "orgIds": org_ids}],
        "organizations": orgs,
    }


DEMO_SEED = 2026


def build_demo_fixture() -> dict:
    """Build the demo fixture: a partner org and three customers (see the simulator README)."""
    rng = random.Random(DEMO_SEED)
    partner = build_org(
        rng, "Keystone Partner Services", "keystone-partner.example.com", users=6, licenses=8,
        subscriptions=1, site_urls=["keystone-partner.webex.com"], locations=1, workspaces=0,
        subscription_prefix="KPS",
    )
    alpine = build_org(
        rng, "Alpine Dental", "alpinedental.example.com", users=40, licenses=9,
        subscriptions=1, site_urls=["alpinedental.webex.com"], locations=3, workspaces=4,
        subscription_prefix="ALP",
    )
    borealis = build_org(
        rng, "Borealis Logistics", "borealis.example.com", users=150, licenses=16,
        subscriptions=2, site_urls=["borealis.webex.com", "borealis-eu.webex.com"],
        locations=6, workspaces=12, subscription_prefix="BOR", exhausted_standard=True,
    )
    cobalt = build_org(
        rng, "Cobalt Health", "cobalthealth.example.com", users=2100, licenses=12,
        subscriptions=1, site_urls=["cobalthealth.webex.com"], locations=25, workspaces=60,
        subscription_prefix="COB",
    )
    orgs = [partner, alpine, borealis, cobalt]
    org_ids = [org["id"] for org in orgs]
    return {
        "tokens": [
            {"accessToken": "demo-partner-token", "orgIds": org_ids},
            {"accessToken": "demo-alpine-token", "orgIds": [alpine["id"]]},
            {"accessToken": "demo-expired-token", "orgIds": org_ids,
             "expiresAt": "2024-01-01T00:00:00.000Z"},
        ],
        "integrations": [
            {"clientId": "demo-client-id", "clientSecret": "demo-client-secret",
             "refreshToken": "demo-refresh-token", "orgIds": org_ids},
        ],
        "organizations": orgs,
    }


def fixture_text(fixture: dict) -> str:
    """Serialize a fixture compactly, one org object per line for readable diffs."""
    lines = ['{"tokens":' + json.dumps(fixture["tokens"], separators=(",", ":")) + ",",
             '"integrations":' + json.dumps(fixture["integrations"], separators=(",", ":")) + ",",
             '"organizations":[']
    orgs = [json.dumps(org, separators=(",", ":")) for org in fixture["organizations"]]
    lines.append(",\n".join(orgs))
    lines.append("]}")
    return "\n".join(lines) + "\n"


def write_fixture(fixture: dict, path: str) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(fixture_text(fixture))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.simulator.generate", description="Write a simulator fixture."
    )
    parser.add_argument("--out", required=True, help="fixture file to write")
    parser.add_argument("--demo", action="store_true", help="write the demo fixture")
    parser.add_argument("--users", type=int, default=1000, help="people per customer org")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--licenses", type=int, default=20, help="licenses per org")
    parser.add_argument("--subscriptions", type=int, default=2, help="subscriptions per org")
    parser.add_argument("--site-urls", type=int, default=2, help="meeting site URLs per org")
    parser.add_argument("--locations", type=int, default=200, help="locations per org")
    parser.add_argument("--workspaces", type=int, default=5000, help="workspaces per org")
    parser.add_argument(
        "--customers", type=int, default=0,
        help="number of customer orgs under a partner org (0: a single org)",
    )
    args = parser.parse_args(argv)
    for name in ("users", "licenses", "subscriptions", "site_urls", "locations", "workspaces",
                 "customers"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must not be negative")

    if args.demo:
        fixture = build_demo_fixture()
    else:
        fixture = build_fixture(
            args.users, args.seed, args.licenses, args.subscriptions, args.site_urls,
            args.locations, args.workspaces, args.customers,
        )
    write_fixture(fixture, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
