"""License changes on a person: `PATCH /licenses/users` and `PUT /people/{id}`.

Both functions work on one `Org` and must run under the state lock. They check every
requested change first and apply the valid ones in one step, so counters never drift.
"""

from __future__ import annotations

from .errors import ApiError, bad_request, error_detail
from .state import (
    ATTENDANT_CONSOLE,
    CALLING_PROFESSIONAL,
    CALLING_STANDARD,
    CX_ESSENTIALS,
    Org,
    format_timestamp,
    is_hybrid,
    is_implicit,
    is_messenger,
    is_user_calling,
    utc_now,
)

# Error codes and texts of PATCH /licenses/users (Webex admin OpenAPI, LicenseError examples).
# NOTE: Webex documents no code for "no units left", so the simulator sends that error without one.
FAILURE_MESSAGES = {
    400: "Unable to find location",
    400000: "License not recognized",
    400112: "License assignment failed",
    400118: "License management not supported",
    400216: "Invalid site URL",
    400404: "License conflict",
    400406: "License conflict",
    400407: "License conflict",
    400408: "License prerequisite missing",
    400410: "License downgrade not allowed",
    400411: "License properties missing",
    700006: "License removal not allowed",
    None: "License assignment failed",
}

# Person fields that PUT /people/{id} replaces; absent ones are cleared.
REPLACEABLE_FIELDS = (
    "emails", "phoneNumbers", "displayName", "nickName", "firstName", "lastName", "avatar",
    "roles", "department", "manager", "managerId", "title", "addresses", "timezone",
    "loginEnabled",
)


class Failure:
    def __init__(self, code: int | None, description: str):
        self.code = code
        self.description = description

    def detail(self) -> dict:
        return error_detail(self.description, self.code)


class LicensePlan:
    """The license set a person will hold, built up change by change."""

    def __init__(self, org: Org, person: dict):
        self.org = org
        self.person = person
        self.original = set(person.get("licenses") or [])
        self.held = list(person.get("licenses") or [])
        self.added: list[str] = []
        self.removed: list[str] = []
        self.calling_properties: dict = {}

    def add(self, lic_id: str, properties: dict | None = None) -> None:
        self.held.append(lic_id)
        if lic_id in self.removed:
            self.removed.remove(lic_id)
        else:
            self.added.append(lic_id)
        if properties is not None:
            self.calling_properties = properties

    def remove(self, lic_id: str) -> None:
        self.held.remove(lic_id)
        if lic_id in self.added:
            self.added.remove(lic_id)
        else:
            self.removed.append(lic_id)

    def holds_name(self, name: str) -> str | None:
        for lic_id in self.held:
            lic = self.org.license_by_id.get(lic_id)
            if lic is not None and lic.get("name") == name:
                return lic_id
        return None

    def keeps_name(self, name: str, removing: set) -> bool:
        """Tell whether the person has a license of that name that the request keeps."""
        return any(
            self.org.license_by_id.get(lic_id, {}).get("name") == name
            for lic_id in self.held
            if lic_id not in removing
        )

    def units_left(self, lic: dict) -> int:
        return self.org.units_left(lic) - self.added.count(lic["id"])


def check_add(
    plan: LicensePlan, lic: dict, properties: dict | None, removing: set
) -> Failure | None:
    """Return why `lic` cannot be added to the plan, or None when it can.

    ``removing`` contains the license ids that the whole request removes.
    """
    lic_id = lic["id"]
    if is_messenger(lic):
        return Failure(400118, f"User management of Messenger license {lic_id} is not supported")

    if is_user_calling(lic):
        failure = check_calling_add(plan, lic, properties, removing)
        if failure is not None:
            return failure
    elif is_calling_addon(lic):
        failure = check_calling_addon(plan, lic, removing)
        if failure is not None:
            return failure

    if not is_hybrid(lic) and plan.units_left(lic) <= 0:
        return Failure(
            None,
            f"No units left for license {lic_id} ({lic['name']}): all "
            f"{lic.get('totalUnits')} units are consumed.",
        )
    return None


def is_calling_addon(lic: dict | None) -> bool:
    return lic is not None and lic.get("name") in (ATTENDANT_CONSOLE, CX_ESSENTIALS)


def addons_last(org: Org, license_ids: list) -> list:
    """Order license ids (or change entries) so that Calling add-ons come last: their
    rules look at the calling licenses that the same request adds or removes."""
    def addon(entry) -> bool:
        lic_id = entry["id"] if isinstance(entry, dict) else entry
        return is_calling_addon(org.license_by_id.get(lic_id))

    return sorted(license_ids, key=addon)


def check_calling_addon(plan: LicensePlan, lic: dict, removing: set) -> Failure | None:
    """Attendant Console and CX Essentials: no Calling Standard beside them, and Attendant
    Console needs Calling Professional, held and kept or added by the same request (add-ons
    are checked last, see addons_last)."""
    lic_id = lic["id"]
    if plan.keeps_name(CALLING_STANDARD, removing):
        if lic["name"] == ATTENDANT_CONSOLE:
            return Failure(
                400406,
                "User cannot have both Webex Calling Standard and Webex Attendant Console "
                "licenses together. The following license(s) could not be applied as "
                f"requested: {lic_id}",
            )
        return Failure(
            400407,
            "User cannot have both Webex Calling Standard and CX Essential licenses together. "
            f"The following license(s) could not be applied as requested: {lic_id}",
        )
    if lic["name"] == ATTENDANT_CONSOLE and not plan.keeps_name(CALLING_PROFESSIONAL, removing):
        return Failure(
            400408,
            "User needs Webex Calling Professional license to be assigned before assigning "
            f"Webex Attendant Console: {lic_id}",
        )
    return None


def check_calling_add(
    plan: LicensePlan, lic: dict, properties: dict | None, removing: set
) -> Failure | None:
    lic_id = lic["id"]
    downgraded = {
        plan.org.license_by_id[held_id]["name"]
        for held_id in plan.original & removing
        if held_id in plan.org.license_by_id
    }
    if lic["name"] == CALLING_STANDARD and CALLING_PROFESSIONAL in downgraded:
        return Failure(
            400112,
            "Changing a user's Webex Calling license from Professional to Standard is not "
            f"allowed. The following license(s) could not be applied as requested: {lic_id}",
        )
    if lic["name"] == CALLING_STANDARD and CX_ESSENTIALS in downgraded:
        return Failure(
            400410,
            "Changing a user's license from CX Essential to Webex Calling Standard is not "
            f"allowed. The following license(s) could not be applied as requested: {lic_id}",
        )
    if lic["name"] == CALLING_STANDARD:
        for addon, code in ((ATTENDANT_CONSOLE, 400406), (CX_ESSENTIALS, 400407)):
            if plan.keeps_name(addon, removing):
                other = "Webex Attendant Console" if addon == ATTENDANT_CONSOLE else "CX Essential"
                return Failure(
                    code,
                    f"User cannot have both Webex Calling Standard and {other} licenses "
                    "together. The following license(s) could not be applied as requested: "
                    f"{lic_id}",
                )
    other_name = CALLING_STANDARD if lic["name"] == CALLING_PROFESSIONAL else CALLING_PROFESSIONAL
    other_id = plan.holds_name(other_name)
    if other_id is not None and other_id not in removing:
        return Failure(
            400404,
            "User cannot have both Webex Calling Professional and Standard License together. "
            f"The following license(s) could not be applied as requested: {lic_id}",
        )

    missing = Failure(
        400411,
        "Each Webex Calling license should contain its own calling properties. The following "
        f"license(s) do not have properties: {lic_id}",
    )
    if not isinstance(properties, dict):
        return missing
    if not properties.get("phoneNumber") and not properties.get("extension"):
        return missing
    location_id = properties.get("locationId")
    if location_id and location_id not in plan.org.location_by_id:
        return Failure(400, "Unable to find location.")
    # The API needs locationId whenever phoneNumber is missing, even for a person who has a
    # location already.
    if not location_id and not properties.get("phoneNumber"):
        return missing
    return None


def check_remove(lic: dict) -> Failure | None:
    if is_messenger(lic):
        return Failure(400118, f"User management of Messenger license {lic['id']} is not supported")
    if is_implicit(lic):
        return Failure(
            700006, f"Screen Share {lic['id']} is implicitly assigned and cannot be removed"
        )
    return None


def apply_plan(org: Org, position: int, plan: LicensePlan) -> None:
    """Write the planned licenses to the person and move the license counters."""
    person = org.people[position]
    for lic_id in plan.removed:
        org.remove_holder(lic_id, position)
    for lic_id in plan.added:
        org.add_holder(lic_id, position)
    person["licenses"] = list(plan.held)

    held = [org.license_by_id[lic_id] for lic_id in plan.held if lic_id in org.license_by_id]
    host_sites = [lic["siteUrl"] for lic in held if lic.get("siteUrl")]
    attendee_sites = [site for site in person.get("siteUrls") or [] if site.endswith("#attendee")]
    site_urls = list(dict.fromkeys(host_sites)) + attendee_sites
    if site_urls:
        person["siteUrls"] = site_urls
    else:
        person.pop("siteUrls", None)

    removed = [org.license_by_id[lic_id] for lic_id in plan.removed if lic_id in org.license_by_id]
    if any(is_user_calling(lic) for lic in held):
        apply_calling_properties(person, plan.calling_properties)
    elif any(is_user_calling(lic) for lic in removed):
        clear_calling_data(person)

    person["lastModified"] = format_timestamp(utc_now())
    org.forget_person_json(position)


def apply_calling_properties(person: dict, properties: dict) -> None:
    if properties.get("locationId"):
        person["locationId"] = properties["locationId"]
    if properties.get("extension"):
        person["extension"] = str(properties["extension"])
    if properties.get("phoneNumber"):
        numbers = [n for n in person.get("phoneNumbers") or [] if n.get("type") != "work"]
        numbers.insert(0, {"type": "work", "value": properties["phoneNumber"], "primary": True})
        person["phoneNumbers"] = numbers


def clear_calling_data(person: dict) -> None:
    person.pop("locationId", None)
    person.pop("extension", None)
    numbers = [
        number
        for number in person.get("phoneNumbers") or []
        if number.get("type") not in ("work", "work_extension")
    ]
    if numbers:
        person["phoneNumbers"] = numbers
    else:
        person.pop("phoneNumbers", None)


def site_url_entries(person: dict) -> list[dict]:
    entries = []
    for site in person.get("siteUrls") or []:
        if site.endswith("#attendee"):
            entries.append({"siteUrl": site[: -len("#attendee")], "accountType": "attendee"})
        else:
            entries.append({"siteUrl": site, "accountType": "host"})
    return entries


def find_target_person(org: Org, body: dict) -> int:
    person_id = body.get("personId")
    email = body.get("email")
    if not person_id and not email:
        raise bad_request("Either email or personId is required.")
    position = org.find_person(person_id, None) if person_id else org.find_person(None, email)
    if position is None:
        raise ApiError(404, f"User {person_id or email} not found in organization {org.id}.")
    person = org.people[position]
    emails = [e.lower() for e in person.get("emails") or []]
    if person_id and email and email.lower() not in emails:
        raise bad_request(f"The email {email} does not belong to person {person_id}.")
    return position


def validate_patch_body(body: dict) -> tuple[list[dict], list[dict]]:
    license_requests = body.get("licenses") or []
    site_requests = body.get("siteUrls") or []
    if not isinstance(license_requests, list) or not isinstance(site_requests, list):
        raise bad_request("licenses and siteUrls must be arrays.")
    if not license_requests and not site_requests:
        raise bad_request("The request changes nothing: give licenses or siteUrls.")
    for entry in license_requests:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise bad_request("Every entry of licenses needs a license id.")
        if entry.get("operation", "add") not in ("add", "remove"):
            raise bad_request(f"Invalid operation {entry.get('operation')!r}: use add or remove.")
    for entry in site_requests:
        if not isinstance(entry, dict) or not entry.get("siteUrl") or not entry.get("accountType"):
            raise bad_request("Every entry of siteUrls needs siteUrl and accountType.")
        if entry.get("operation", "add") not in ("add", "remove"):
            raise bad_request(f"Invalid operation {entry.get('operation')!r}: use add or remove.")
    return license_requests, site_requests


def assign_licenses(org: Org, body: dict) -> tuple[int, dict]:
    """Apply a PATCH /licenses/users body; return (200 or 206, UserLicensesResponse).

    A 206 (some changes failed) lists only the licenses that the request added.

    Raises ApiError 400 when no requested change can be applied.
    """
    license_requests, site_requests = validate_patch_body(body)
    position = find_target_person(org, body)
    person = org.people[position]
    plan = LicensePlan(org, person)
    removing = {e["id"] for e in license_requests if e.get("operation", "add") == "remove"}
    failures: list[Failure] = []
    succeeded = 0
    applied_adds: list[str] = []

    for entry in addons_last(org, license_requests):
        lic = org.license_by_id.get(entry["id"])
        if lic is None:
            failures.append(Failure(400000, f"License not recognized {entry['id']}"))
            continue
        if entry.get("operation", "add") == "add":
            failure = None if lic["id"] in plan.held else check_add(
                plan, lic, entry.get("properties"), removing
            )
            if failure is None and lic["id"] not in plan.held:
                plan.add(lic["id"], entry.get("properties") if is_user_calling(lic) else None)
        else:
            failure = check_remove(lic) if lic["id"] in plan.held else None
            if failure is None and lic["id"] in plan.held:
                plan.remove(lic["id"])
        if failure is None:
            succeeded += 1
            if entry.get("operation", "add") == "add":
                applied_adds.append(lic["id"])
        else:
            failures.append(failure)

    attendee_sites = [s for s in person.get("siteUrls") or [] if s.endswith("#attendee")]
    for entry in site_requests:
        if entry["siteUrl"] not in org.site_urls or entry["accountType"] != "attendee":
            failures.append(
                Failure(400216, f"Request contains invalid attendee siteUrls: {entry['siteUrl']}")
            )
            continue
        attendee = entry["siteUrl"] + "#attendee"
        if entry.get("operation", "add") == "add" and attendee not in attendee_sites:
            attendee_sites.append(attendee)
        elif entry.get("operation", "add") == "remove" and attendee in attendee_sites:
            attendee_sites.remove(attendee)
        succeeded += 1

    # A refused downgrade refuses the whole change, including the removal that came with it.
    if failures and (not succeeded or any(f.code in (400112, 400410) for f in failures)):
        raise ApiError(
            400, FAILURE_MESSAGES.get(failures[0].code, "License assignment failed"),
            [failure.detail() for failure in failures],
        )

    hosts = [s for s in person.get("siteUrls") or [] if not s.endswith("#attendee")]
    person["siteUrls"] = hosts + attendee_sites
    apply_plan(org, position, plan)
    # HTTP 200 lists the user's whole set, as Webex's example does. HTTP 206 lists only the
    # licenses that the request added, as its description says ("Compare the returned
    # licenses with the requested licenses to determine which ones failed").
    response = {
        "orgId": org.id,
        "personId": person["id"],
        "email": (person.get("emails") or [""])[0],
        "licenses": applied_adds if failures else list(person["licenses"]),
        "siteUrls": site_url_entries(person),
    }
    return (206 if failures else 200), response


def replace_person(org: Org, position: int, body: dict) -> dict:
    """Apply a PUT /people/{id} body (full replacement) and return the stored person.

    Unknown or exhausted licenses are skipped, as the service assigns the valid ones and
    skips the rest. Implicit licenses left out and calling licenses without calling data
    fail the whole request.
    """
    if not isinstance(body.get("displayName"), str) or not body["displayName"]:
        raise bad_request("displayName is required.")
    emails = body.get("emails")
    if emails is not None and (not isinstance(emails, list) or not emails):
        raise bad_request("emails must be a non-empty array.")
    for email in emails or []:
        other = org.email_index.get(str(email).lower())
        if other is not None and other != position:
            raise ApiError(409, f"The email {email} belongs to another person.")
    requested = body.get("licenses") or []
    if not isinstance(requested, list):
        raise bad_request("licenses must be an array.")

    person = org.people[position]
    plan = LicensePlan(org, person)
    requested_ids = [lic_id for lic_id in dict.fromkeys(requested) if lic_id in org.license_by_id]
    for lic_id in list(plan.held):
        if lic_id in requested_ids:
            continue
        failure = check_remove(org.license_by_id[lic_id]) if lic_id in org.license_by_id else None
        if failure is not None:
            raise ApiError(400, FAILURE_MESSAGES[failure.code], [failure.detail()])
        plan.remove(lic_id)

    had_calling = bool(person.get("locationId"))
    properties = {
        "locationId": body.get("locationId") if not had_calling else person.get("locationId"),
        "extension": body.get("extension"),
        "phoneNumber": next(
            (n.get("value") for n in body.get("phoneNumbers") or [] if n.get("type") == "work"),
            None,
        ),
    }
    if had_calling and body.get("locationId") and body["locationId"] != person.get("locationId"):
        raise bad_request("locationId of an existing Webex Calling user cannot be changed.")

    for lic_id in addons_last(org, requested_ids):
        if lic_id in plan.held:
            continue
        lic = org.license_by_id[lic_id]
        failure = check_add(plan, lic, properties, set(plan.removed))
        if failure is None:
            plan.add(lic_id, properties if is_user_calling(lic) else None)
        elif failure.code in (400, 400112, 400404, 400406, 400407, 400408, 400410, 400411):
            raise ApiError(400, FAILURE_MESSAGES[failure.code], [failure.detail()])

    old_emails = list(person.get("emails") or [])
    for field in REPLACEABLE_FIELDS:
        if field in body:
            person[field] = body[field]
        elif field not in ("emails", "displayName", "loginEnabled"):
            person.pop(field, None)
    if body.get("extension") and any(
        is_user_calling(org.license_by_id[i]) for i in plan.held if i in org.license_by_id
    ):
        person["extension"] = str(body["extension"])
    if "siteUrls" in body and isinstance(body["siteUrls"], list):
        person["siteUrls"] = [s for s in body["siteUrls"] if str(s).endswith("#attendee")]
    org.reindex_emails(position, old_emails, list(person.get("emails") or []))
    apply_plan(org, position, plan)
    return person
