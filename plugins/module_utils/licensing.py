# Copyright: ucops.webex maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure licensing logic of ucops.webex: no I/O, plain data in and out.

Policy implemented here (modules and the inventory store share it):

* A customer (one Webex org) has a default subscription id and a default site URL. A license
  is *managed* when its subscription is the effective default subscription and, for a meeting
  site license (``siteUrl`` set), its site URL equals the effective default site URL. Site URLs
  are compared without case, scheme or trailing slash.
* When no default is configured and the org has exactly one subscription (or one site URL),
  that one is the effective default. With several and none configured, no license of that kind
  is managed and the decision lists the option as missing with its candidates.
* Licenses without ``subscriptionId`` (bundled free licenses such as Basic Messaging) are
  *unsubscribed*: they are never managed, never reported as outside the defaults, and a
  caller that replaces a user's licenses keeps them (see ``retained_license_ids``). The
  exception is a user calling license without a subscription (a trial): a user has one
  calling license, so a change that gives a managed one, or removes that name, removes it
  (see ``removable_unsubscribed_calling``).
* Hybrid licenses (names starting with "Hybrid -") never count consumption: their consumed
  counters are set to 0 (a null counter stays None).
* ``available_units`` is ``total_units - consumed_units`` floored at 0, so an over-consumed
  license shows 0 available and a utilization above 100. ``utilization`` is the consumed
  share of the total in percent, rounded to one decimal, and None when the total is 0.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    TypedDict,
)

LICENSE_STATES = ("present", "absent", "exact")

_SCHEME_RE = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_HYBRID_RE = re.compile(r"^\s*hybrid\s*-", re.IGNORECASE)


class LicenseRow(TypedDict):
    """A license as the inventory stores and reports it (snake_case of the API fields)."""

    id: str
    name: str
    site_url: Optional[str]
    site_type: Optional[str]
    subscription_id: Optional[str]
    total_units: int
    consumed_units: int
    consumed_by_users: Optional[int]
    consumed_by_workspaces: Optional[int]
    hybrid: bool
    available_units: int
    utilization: Optional[float]


class LicensingError(ValueError):
    """Invalid licensing input; the message names the value and what to do."""


class DefaultsError(LicensingError):
    """A configured default subscription or site URL does not exist in the org."""


class LicenseResolutionError(LicensingError):
    """Requested license names or ids that do not resolve to exactly one managed license."""


class DefaultsDecision(NamedTuple):
    """Effective defaults of one org and how they were chosen.

    ``subscription_id`` and ``site_url`` are the effective defaults (the site URL normalized),
    or None when nothing of that kind is managed. ``missing`` names the options that must be
    set because the org has several candidates. ``unknown`` names the configured options whose
    value is not among the candidates, or for the site URL, not a site URL of the default
    subscription.
    """

    subscription_id: Optional[str]
    site_url: Optional[str]
    subscription_candidates: Tuple[str, ...]
    site_url_candidates: Tuple[str, ...]
    missing: Tuple[str, ...]
    unknown: Tuple[str, ...]
    # Every site URL of the org. The site URL candidates are only those of the default
    # subscription when the org has that subscription (see ``effective_defaults``).
    org_site_urls: Tuple[str, ...] = ()

    def as_dict(self) -> Dict[str, Any]:
        return {
            "subscription_id": self.subscription_id,
            "site_url": self.site_url,
            "subscription_candidates": list(self.subscription_candidates),
            "site_url_candidates": list(self.site_url_candidates),
            "missing": list(self.missing),
            "unknown": list(self.unknown),
        }

    def warnings(self, org: str) -> List[Dict[str, Any]]:
        """Build one warning per missing or unknown default, with its candidates."""
        result = []
        for option in self.missing:
            candidates = self._candidates(option)
            result.append(
                {
                    "code": "defaults_required",
                    "option": option,
                    "candidates": list(candidates),
                    "message": (
                        f"{self.holder(option, org)} has several {_KIND[option]}s "
                        f"({', '.join(candidates)}) and {option} is not set, so none of its "
                        f"{_SCOPE[option]} are managed; set {option} to one of them"
                    ),
                }
            )
        for option in self.unknown:
            candidates = self._candidates(option)
            result.append(
                {
                    "code": "default_not_found",
                    "option": option,
                    "candidates": list(candidates),
                    "message": self.not_found_message(option, self._configured(option), org),
                }
            )
        return result

    def _candidates(self, option: str) -> Tuple[str, ...]:
        if option == "default_subscription_id":
            return self.subscription_candidates
        return self.site_url_candidates

    def site_urls_scoped(self) -> bool:
        """Tell whether the site URL candidates are those of the default subscription."""
        return self.subscription_id is not None and (
            self.subscription_id in self.subscription_candidates
        )

    def holder(self, option: str, org: str) -> str:
        """Name what the candidates of ``option`` belong to, for messages."""
        if option == "default_site_url" and self.site_urls_scoped():
            return f"subscription '{self.subscription_id}' of org '{org}'"
        return f"org '{org}'"

    def not_found_message(self, option: str, value: Optional[str], org: str) -> str:
        """Say why a configured default is unknown and list the values to choose from."""
        candidates = self._candidates(option)
        if option == "default_site_url" and self.site_urls_scoped():
            site_url = normalize_site_url(value)
            if site_url in self.org_site_urls and site_url not in candidates:
                return (
                    f"default_site_url '{value}' is a site URL of org '{org}' but not of its "
                    f"default subscription '{self.subscription_id}', so none of its licenses "
                    f"would be managed (site URLs of '{self.subscription_id}': "
                    f"{', '.join(candidates) if candidates else 'none'}); "
                    + (
                        "set default_site_url to one of them"
                        if candidates
                        else "clear default_site_url (an empty string)"
                    )
                    + " or change default_subscription_id"
                )
        return _not_found_message(option, value, self.holder(option, org), candidates)

    def _configured(self, option: str) -> Optional[str]:
        if option == "default_subscription_id":
            return self.subscription_id
        return self.site_url


class LicensePlan(NamedTuple):
    """License ids to add and remove for one user, and requested removals that were kept."""

    add: Tuple[str, ...]
    remove: Tuple[str, ...]
    kept_unremovable: Tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.add or self.remove)


_KIND = {"default_subscription_id": "subscription", "default_site_url": "site URL"}
_SCOPE = {"default_subscription_id": "licenses", "default_site_url": "meeting site licenses"}


# ---------------------------------------------------------------------------
# Normalization


def normalize_site_url(url: Optional[str]) -> Optional[str]:
    """Return the comparison form of a site URL: lower case, no scheme, no trailing slash.

    None and blank strings return None.
    """
    if url is None:
        return None
    text = _SCHEME_RE.sub("", str(url).strip()).rstrip("/").lower()
    return text or None


def site_urls_equal(first: Optional[str], second: Optional[str]) -> bool:
    """Compare two site URLs without case, scheme or trailing slash (None equals None)."""
    return normalize_site_url(first) == normalize_site_url(second)


def normalize_subscription_id(value: Optional[str]) -> Optional[str]:
    """Strip a subscription id; blank returns None. Ids are compared case-sensitively."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


_UUID = re.compile(r"[0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}")


def org_key(org_id: Optional[str]) -> Optional[str]:
    """Return a comparable form of a Webex org id, or None for a blank one.

    The API writes an org id as base64 of ``ciscospark://<region>/ORGANIZATION/<uuid>``. Both
    that form and the UUID alone give the lower-case UUID, so either form compares equal.
    """
    text = (org_id or "").strip()
    if not text:
        return None
    if _UUID.fullmatch(text):
        return text.lower()
    try:
        decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        decoded = ""
    if decoded.startswith("ciscospark://") and "/ORGANIZATION/" in decoded:
        return decoded.rsplit("/", 1)[1].lower()
    return text


def choose_org_id(
    customer: Mapping[str, Any],
    option: Optional[str],
    from_env: Optional[str],
    warn: Callable[[str], None],
) -> Optional[str]:
    """Return the org_id option, else WEBEX_ORG_ID (``from_env``) for a customer that has
    no org id and was never synced, else None.

    A customer that has an org id, or was synced, keeps the org its data came from: a
    variable left over from other work would otherwise read another org under its name.
    ``warn`` receives the reason when the variable names another org and is ignored.
    """
    option = (option or "").strip() or None
    from_env = (from_env or "").strip() or None
    if option or not from_env:
        return option
    stored = customer.get("org_id") or None
    if not stored and not customer.get("synced_at"):
        return from_env
    if stored and org_key(stored) == org_key(from_env):
        return None  # the same org, maybe in its other form (base64 id or UUID)
    if stored:
        reason = f"has org id {stored}"
    else:
        reason = "was synced before from the org of the access token"
    warn(
        f"WEBEX_ORG_ID is '{from_env}', but customer '{customer['name']}' {reason}, so the "
        "variable was ignored: it applies only to a customer without an org id that was "
        "never synced. Set the org_id option, or change the customer's org_id with "
        "ucops.webex.webex_customer"
    )
    return None


def org_api_id(org_id: str, sibling_id: Optional[str] = None) -> str:
    """Return an org id in the base64 form that the API's orgId parameter takes.

    A UUID alone becomes base64 of ``ciscospark://<region>/ORGANIZATION/<uuid>`` (without
    padding). The region comes from ``sibling_id``, another id of the same response (such
    as the person that carried the org id), and is ``us`` when that id names no region. Any
    other text is returned as it is.
    """
    text = org_id.strip()
    if not _UUID.fullmatch(text):
        return text
    region = "us"
    try:
        decoded = base64.urlsafe_b64decode(
            (sibling_id or "") + "=" * (-len(sibling_id or "") % 4)
        ).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        decoded = ""
    if decoded.startswith("ciscospark://"):
        region = decoded[len("ciscospark://"):].split("/", 1)[0] or region
    encoded = base64.b64encode(f"ciscospark://{region}/ORGANIZATION/{text.lower()}".encode())
    return encoded.decode("ascii").rstrip("=")


def first_org_id(items: Sequence[Any]) -> Optional[str]:
    """Return the first non-blank orgId of a page's items, or None.

    An org id written as a UUID alone is returned in the base64 form, which the orgId
    parameter of later requests takes (``org_api_id``).
    """
    for item in items:
        if isinstance(item, Mapping):
            org_id = item.get("orgId")
            if isinstance(org_id, str) and org_id.strip():
                sibling = item.get("id")
                return org_api_id(org_id, sibling if isinstance(sibling, str) else None)
    return None


def normalize_hierarchy(hierarchy: Optional[str]) -> str:
    """Return a hierarchy path with single slashes and no blank levels ("" for the top)."""
    if not hierarchy:
        return ""
    return "/".join(part.strip() for part in str(hierarchy).split("/") if part.strip())


def hierarchy_matches(hierarchy: Optional[str], prefix: Optional[str]) -> bool:
    """Tell whether ``hierarchy`` is ``prefix`` or below it.

    "Provider" matches "Provider" and "Provider/Reseller" but not "Provider2". An empty
    prefix matches everything.
    """
    path = normalize_hierarchy(hierarchy)
    top = normalize_hierarchy(prefix)
    if not top:
        return True
    return path == top or path.startswith(top + "/")


def missing_customers(
    expected: Iterable[Mapping[str, Any]],
    stored_names: Iterable[str],
    hierarchy: Optional[str] = None,
) -> List[str]:
    """Return the names of the ``expected`` customers at a level that are not stored.

    Each entry has ``name`` and an optional ``hierarchy``. With ``hierarchy`` (a provider or
    reseller node) only entries at or below it count, so an entry without a hierarchy counts
    only when no node is chosen. Names compare exactly, after stripping blanks, as the
    inventory compares them.
    """
    stored = {str(name).strip() for name in stored_names}
    missing: List[str] = []
    for entry in expected:
        name = str(entry.get("name") or "").strip()
        if not name or name in stored or name in missing:
            continue
        if normalize_hierarchy(hierarchy):
            place = entry.get("hierarchy")
            if not normalize_hierarchy(place) or not hierarchy_matches(place, hierarchy):
                continue
        missing.append(name)
    return missing


def is_hybrid(name: Optional[str]) -> bool:
    """Tell whether a license name is a Hybrid Services license ("Hybrid - ...")."""
    return bool(name) and bool(_HYBRID_RE.match(str(name)))


def available_units(total_units: int, consumed_units: int) -> int:
    """Return the units still free: total minus consumed, floored at 0."""
    return max(total_units - consumed_units, 0)


def utilization(total_units: int, consumed_units: int) -> Optional[float]:
    """Return consumed units in percent of the total (one decimal), None when total is 0."""
    if not total_units:
        return None
    return round(consumed_units * 100.0 / total_units, 1)


def normalize_license(item: Mapping[str, Any]) -> LicenseRow:
    """Convert a license object of ``GET /v1/licenses`` to a ``LicenseRow``.

    Missing ``totalUnits``/``consumedUnits`` count as 0, and so does a negative
    ``totalUnits`` (see ``negative_total_units``); null ``consumedByUsers`` and
    ``consumedByWorkspaces`` stay None. Raises LicensingError for a missing id or a counter
    that is not a whole number.
    """
    license_id = item.get("id")
    if not license_id:
        raise LicensingError(f"license object without id: {dict(item)!r}")
    name = str(item.get("name") or "")
    hybrid = is_hybrid(name)

    total = max(_count(item, "totalUnits", license_id) or 0, 0)
    consumed = _count(item, "consumedUnits", license_id) or 0
    by_users = _count(item, "consumedByUsers", license_id)
    by_workspaces = _count(item, "consumedByWorkspaces", license_id)
    if hybrid:
        consumed = 0
        by_users = None if by_users is None else 0
        by_workspaces = None if by_workspaces is None else 0

    site_url = item.get("siteUrl")
    site_url = str(site_url).strip() if site_url else None
    return LicenseRow(
        id=str(license_id),
        name=name,
        site_url=site_url or None,
        site_type=item.get("siteType") or None,
        subscription_id=normalize_subscription_id(item.get("subscriptionId")),
        total_units=total,
        consumed_units=consumed,
        consumed_by_users=by_users,
        consumed_by_workspaces=by_workspaces,
        hybrid=hybrid,
        available_units=available_units(total, consumed),
        utilization=utilization(total, consumed),
    )


def negative_total_units(item: Mapping[str, Any]) -> bool:
    """Tell whether a license object has a negative ``totalUnits`` (such as -1).

    NOTE: the Webex API descriptions give no meaning to a negative total; it may mark an
    unlimited license. It is no number of units, so it counts as 0 and the sync warns,
    as for a license without ``totalUnits``. Summing it would lower the totals of other
    customers, and its utilization would be negative.
    """
    try:
        value = _count(item, "totalUnits", item.get("id"))
    except LicensingError:
        return False
    return value is not None and value < 0


# The counts the inventory stores (SQLite INTEGER is a signed 64-bit number).
MIN_COUNT, MAX_COUNT = -(2**63), 2**63 - 1
# A count sent as text: ASCII digits only (str.isdigit also accepts "²", which int rejects).
_COUNT_TEXT = re.compile(r"-?[0-9]+")


def _count(item: Mapping[str, Any], field: str, license_id: Any) -> Optional[int]:
    value = item.get(field)
    if value is None:
        return None
    if isinstance(value, bool):
        raise LicensingError(f"license '{license_id}' has an invalid {field}: {value!r}")
    count: Optional[int] = None
    if isinstance(value, int):
        count = value
    elif isinstance(value, float) and value.is_integer():
        count = int(value)
    elif isinstance(value, str) and _COUNT_TEXT.fullmatch(value.strip()):
        count = int(value.strip())
    if count is None:
        raise LicensingError(
            f"license '{license_id}' has an invalid {field}: {value!r} (expected a whole "
            "number)"
        )
    if not MIN_COUNT <= count <= MAX_COUNT:
        raise LicensingError(
            f"license '{license_id}' has {field} {count}, beyond what the inventory can store "
            f"({MIN_COUNT} to {MAX_COUNT})"
        )
    return count


# ---------------------------------------------------------------------------
# Default subscription and site URL policy


def distinct_subscriptions(licenses: Iterable[Mapping[str, Any]]) -> List[str]:
    """Return the sorted distinct subscription ids of license rows (unsubscribed skipped)."""
    found = {normalize_subscription_id(row.get("subscription_id")) for row in licenses}
    return sorted(value for value in found if value)


def distinct_site_urls(licenses: Iterable[Mapping[str, Any]]) -> List[str]:
    """Return the sorted distinct normalized site URLs of license rows."""
    found = {normalize_site_url(row.get("site_url")) for row in licenses}
    return sorted(value for value in found if value)


def unsubscribed_licenses(licenses: Iterable[Mapping[str, Any]]) -> List[Mapping[str, Any]]:
    """Return the license rows without a subscription id (never managed)."""
    return [row for row in licenses if not normalize_subscription_id(row.get("subscription_id"))]


def effective_defaults(
    licenses: Sequence[Mapping[str, Any]],
    default_subscription_id: Optional[str] = None,
    default_site_url: Optional[str] = None,
) -> DefaultsDecision:
    """Decide the effective default subscription and site URL of one org.

    ``licenses`` are license rows of the org (``normalize_license`` output or inventory rows).
    A configured default is used even when the org does not have it (then it is listed in
    ``unknown`` and manages nothing). The site URL candidates, for the choice of the only
    one and for the check of a configured one, are the site URLs of the default
    subscription when the org has it, and every site URL of the org otherwise.
    """
    subscriptions = tuple(distinct_subscriptions(licenses))
    org_site_urls = tuple(distinct_site_urls(licenses))
    missing: List[str] = []
    unknown: List[str] = []

    subscription = normalize_subscription_id(default_subscription_id)
    if subscription is None:
        if len(subscriptions) == 1:
            subscription = subscriptions[0]
        elif len(subscriptions) > 1:
            missing.append("default_subscription_id")
    elif subscription not in subscriptions:
        unknown.append("default_subscription_id")

    # Only site licenses of the default subscription are managed, so its site URLs are the
    # candidates when the org has it. Otherwise every site URL of the org is one.
    if subscription is not None and subscription in subscriptions:
        site_urls = tuple(site_urls_of_subscription(licenses, subscription))
    else:
        site_urls = org_site_urls

    site_url = normalize_site_url(default_site_url)
    if site_url is None:
        if len(site_urls) == 1:
            site_url = site_urls[0]
        elif len(site_urls) > 1:
            missing.append("default_site_url")
    elif site_url not in site_urls:
        unknown.append("default_site_url")

    return DefaultsDecision(
        subscription_id=subscription,
        site_url=site_url,
        subscription_candidates=subscriptions,
        site_url_candidates=site_urls,
        missing=tuple(missing),
        unknown=tuple(unknown),
        org_site_urls=org_site_urls,
    )


def is_managed(license_row: Mapping[str, Any], decision: DefaultsDecision) -> bool:
    """Tell whether a license row is managed under the effective defaults."""
    subscription = normalize_subscription_id(license_row.get("subscription_id"))
    if subscription is None or subscription != decision.subscription_id:
        return False
    site_url = normalize_site_url(license_row.get("site_url"))
    if site_url is None:
        return True
    return decision.site_url is not None and site_url == decision.site_url


def managed_license_ids(
    licenses: Iterable[Mapping[str, Any]], decision: DefaultsDecision
) -> List[str]:
    """Return the ids of the managed licenses, in input order."""
    return [str(row["id"]) for row in licenses if is_managed(row, decision)]


def retained_license_ids(licenses: Iterable[Mapping[str, Any]]) -> List[str]:
    """Return the ids of the licenses that license changes never remove: unsubscribed
    ones (by this collection's policy) and Messenger licenses (Webex rejects changes to
    them, see ``is_messenger_license``)."""
    rows = list(licenses)
    retained = [str(row["id"]) for row in unsubscribed_licenses(rows)]
    retained += [
        str(row["id"]) for row in rows
        if is_messenger_license(row.get("name")) and str(row["id"]) not in retained
    ]
    return retained


def validate_defaults(
    org: str,
    licenses: Sequence[Mapping[str, Any]],
    default_subscription_id: Optional[str] = None,
    default_site_url: Optional[str] = None,
) -> DefaultsDecision:
    """Check configured defaults against the org's licenses and return the decision.

    Raises DefaultsError listing every configured value that the org does not have, with the
    values it does have. Unset defaults are not errors here (see ``DefaultsDecision.missing``).
    """
    decision = effective_defaults(licenses, default_subscription_id, default_site_url)
    problems = []
    if "default_subscription_id" in decision.unknown:
        problems.append(
            _not_found_message(
                "default_subscription_id",
                normalize_subscription_id(default_subscription_id),
                f"org '{org}'",
                decision.subscription_candidates,
            )
        )
    if "default_site_url" in decision.unknown:
        problems.append(decision.not_found_message("default_site_url", default_site_url, org))
    if problems:
        raise DefaultsError("; ".join(problems))
    return decision


def _not_found_message(
    option: str, value: Optional[str], holder: str, candidates: Sequence[str]
) -> str:
    """Say that ``value`` is not among the candidates of ``holder``, such as "org 'X'"."""
    found = ", ".join(candidates) if candidates else "none"
    return f"{option} '{value}' is not a {_KIND[option]} of {holder} (found: {found})"


def licenses_outside_defaults(
    person_license_ids: Iterable[str],
    managed_ids: Iterable[str],
    retained_ids: Iterable[str] = (),
) -> List[str]:
    """Return a user's license ids that are neither managed nor retained, in input order.

    These licenses are not kept when the user's licenses are next set with state ``exact``.
    """
    keep = set(managed_ids) | set(retained_ids)
    return [license_id for license_id in _unique(person_license_ids) if license_id not in keep]


# ---------------------------------------------------------------------------
# Aggregation per hierarchy level


def aggregate_license_rows(rows: Iterable[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """Total license rows per (name, subscription_id, site_url).

    Never merges two subscriptions, nor two meeting sites: the units of one site cannot
    serve another, and a customer's default site may be managed while its other site of
    the same subscription is not. ``site_url`` is the normalized site URL (None for
    licenses without a site); ``site_urls`` lists it too, for readers of the list form.
    Unsubscribed licenses form their own group per name (``subscription_id`` None).
    ``available_units`` is the sum of each row's available units, because free units of
    one customer cannot serve another. A ``consumed_by_*`` total is None when every row of
    the group has None there. Groups are sorted by name, subscription id and site URL.
    """
    groups: Dict[Tuple[str, str, str], Dict[str, Any]] = {}
    for row in rows:
        subscription = normalize_subscription_id(row.get("subscription_id"))
        site_url = normalize_site_url(row.get("site_url"))
        key = (str(row.get("name") or ""), subscription or "", site_url or "")
        group = groups.get(key)
        if group is None:
            group = {
                "name": key[0],
                "subscription_id": subscription,
                "site_url": site_url,
                "total_units": 0,
                "consumed_units": 0,
                "consumed_by_users": None,
                "consumed_by_workspaces": None,
                "available_units": 0,
                "license_count": 0,
                "customers": set(),
                "site_urls": set(),
            }
            groups[key] = group
        total = int(row.get("total_units") or 0)
        consumed = int(row.get("consumed_units") or 0)
        group["total_units"] += total
        group["consumed_units"] += consumed
        group["available_units"] += available_units(total, consumed)
        group["license_count"] += 1
        for field in ("consumed_by_users", "consumed_by_workspaces"):
            if row.get(field) is not None:
                group[field] = (group[field] or 0) + int(row[field])
        if row.get("customer"):
            group["customers"].add(row["customer"])
        if site_url:
            group["site_urls"].add(site_url)

    result = []
    for key in sorted(groups):
        group = groups[key]
        group["utilization"] = utilization(group["total_units"], group["consumed_units"])
        group["customers"] = sorted(group["customers"])
        group["site_urls"] = sorted(group["site_urls"])
        result.append(group)
    return result


# ---------------------------------------------------------------------------
# User license changes


def resolve_license_names(
    requested: Iterable[str],
    licenses: Sequence[Mapping[str, Any]],
    org: str = "",
) -> List[str]:
    """Map requested license names or ids to managed license ids, in request order.

    ``licenses`` are rows with a ``managed`` flag. Names compare without case and outer
    spaces. Raises LicenseResolutionError listing every request that is unknown, found only
    outside the managed licenses (naming those subscriptions), or ambiguous among managed
    licenses (then the license id must be given).
    """
    by_id = {str(row["id"]): row for row in licenses}
    managed = [row for row in licenses if row.get("managed")]
    where = f" of org '{org}'" if org else ""
    resolved: List[str] = []
    problems: List[str] = []

    for request in _unique(str(item) for item in requested):
        row = by_id.get(request)
        if row is not None:
            if row.get("managed"):
                resolved.append(request)
            else:
                problems.append(_unmanaged_message(request, [row], where))
            continue

        key = fold_name(request)
        matches = [row for row in managed if fold_name(row.get("name") or "") == key]
        if len(matches) == 1:
            resolved.append(str(matches[0]["id"]))
        elif len(matches) > 1:
            places = sorted(row.get("site_url") or str(row["id"]) for row in matches)
            problems.append(
                f"license '{request}' matches {len(matches)} managed licenses{where} "
                f"({', '.join(places)}): give the license id instead"
            )
        else:
            others = [row for row in licenses if fold_name(row.get("name") or "") == key]
            if others:
                problems.append(_unmanaged_message(request, others, where))
            else:
                names = sorted({str(row.get("name")) for row in managed})
                problems.append(
                    f"license '{request}' was not found{where.replace(' of org', ' in org')} "
                    f"(managed licenses: {', '.join(names) if names else 'none'})"
                )

    if problems:
        raise LicenseResolutionError("; ".join(problems))
    return _unique(resolved)


def _unmanaged_message(request: str, rows: Sequence[Mapping[str, Any]], where: str) -> str:
    subscriptions = sorted(
        {row.get("subscription_id") for row in rows if row.get("subscription_id")}
    )
    site_urls = sorted({row.get("site_url") for row in rows if row.get("site_url")})
    if not subscriptions:
        return (
            f"license '{request}'{where} has no subscription and is never managed, so this "
            "module does not assign or remove it: remove it from licenses"
        )
    text = (
        f"license '{request}'{where} is only in licenses outside the defaults "
        f"(subscriptions: {', '.join(subscriptions)}"
    )
    if site_urls:
        text += f"; site URLs: {', '.join(site_urls)}"
    return text + "): change default_subscription_id or default_site_url to use it"


def same_name_outside_defaults(
    current_ids: Iterable[str],
    requested_ids: Iterable[str],
    licenses_by_id: Mapping[str, Mapping[str, Any]],
    managed_ids: Iterable[str],
    include_calling: bool = False,
) -> List[str]:
    """Return the held licenses outside the defaults that are a requested license's product.

    Such a license has the name (and, for a meeting license, the site) of a requested one
    but another subscription, for example Advanced Messaging of a subscription that is not
    the default. A user who is given the default's license does not keep it (it would use a
    second unit), and a user whose license of that name is removed does not keep it either.

    Never among them: licenses without a subscription (bundled), licenses unknown to the
    inventory, and meeting licenses of another site (another hosting right, not a second
    unit). User calling licenses only with ``include_calling``: a task that adds one does
    not replace the user's (see ``held_calling_conflicts``), a removal does.
    """
    managed = set(managed_ids)
    products = {
        product_key(licenses_by_id[license_id])
        for license_id in requested_ids
        if license_id in licenses_by_id
    }
    result = []
    for license_id in _unique(current_ids):
        row = licenses_by_id.get(license_id)
        if row is None or license_id in managed:
            continue
        if not normalize_subscription_id(row.get("subscription_id")):
            continue
        if is_user_calling_license(row.get("name")) and not include_calling:
            continue
        if product_key(row) in products:
            result.append(license_id)
    return result


def replacements(
    added_ids: Iterable[str],
    removed_ids: Iterable[str],
    licenses_by_id: Mapping[str, Mapping[str, Any]],
) -> List[Tuple[str, str]]:
    """Return (added id, removed id) pairs of a change that replaces licenses.

    A replacement is an added license of the same product as a removed one, and for
    calling any user calling license replaces another.
    """

    def product(license_id: str) -> Any:
        row = licenses_by_id.get(license_id) or {}
        if is_user_calling_license(row.get("name")):
            return "calling"
        return product_key(row)

    removed = {product(license_id): license_id for license_id in removed_ids}
    return [
        (license_id, removed[product(license_id)])
        for license_id in added_ids
        if product(license_id) in removed
    ]


def removable_unsubscribed_calling(
    current_ids: Iterable[str],
    requested_ids: Iterable[str],
    state: str,
    licenses_by_id: Mapping[str, Mapping[str, Any]],
) -> List[str]:
    """Return the user's calling licenses without a subscription that a change may remove.

    Such a license (a trial, for example) is unsubscribed and kept like a bundled license,
    but a user has one calling license, so keeping it would block every managed calling
    license. State ``exact`` that gives the user a user calling license removes it, and
    state ``absent`` removes it when a requested license has its name. Other states and
    requests keep it.
    """
    requested = [licenses_by_id.get(license_id) or {} for license_id in requested_ids]
    held = [
        license_id
        for license_id in _unique(current_ids)
        if license_id in licenses_by_id
        and is_user_calling_license(licenses_by_id[license_id].get("name"))
        and not normalize_subscription_id(licenses_by_id[license_id].get("subscription_id"))
    ]
    if state == "exact" and any(is_user_calling_license(row.get("name")) for row in requested):
        return held
    if state == "absent":
        names = {_name_key(row.get("name")) for row in requested}
        return [i for i in held if _name_key(licenses_by_id[i].get("name")) in names]
    return []


def unfunded_replacements(
    added_ids: Iterable[str],
    removed_ids: Iterable[str],
    licenses_by_id: Mapping[str, Mapping[str, Any]],
) -> List[Tuple[str, str]]:
    """Return the ``replacements`` pairs where the added license has no units left.

    Webex applies the valid part of a request (HTTP 206), so it would remove the license
    and reject its replacement.
    """
    return [
        (added_id, replaced_id)
        for added_id, replaced_id in replacements(added_ids, removed_ids, licenses_by_id)
        if ((licenses_by_id.get(added_id) or {}).get("available_units") or 0) <= 0
    ]


def product_key(row: Mapping[str, Any]) -> Tuple[str, str]:
    """Return what makes two licenses the same product: the name and the site URL."""
    return _name_key(row.get("name")), normalize_site_url(row.get("site_url")) or ""


def held_calling_conflicts(
    current_ids: Iterable[str],
    added_ids: Iterable[str],
    licenses_by_id: Mapping[str, Mapping[str, Any]],
) -> List[str]:
    """Return the user calling licenses that a user has besides one that a task adds.

    A user has one calling license (Professional or Standard). Adding another one while the
    user keeps the first would use a second unit or be refused by Webex, and replacing it in
    the same request removes the user's calling setup if the addition then fails.
    """
    added = [i for i in added_ids if is_user_calling_license(licenses_by_id[i].get("name"))]
    if not added:
        return []
    return [
        license_id
        for license_id in _unique(current_ids)
        if license_id not in added
        and license_id in licenses_by_id
        and is_user_calling_license(licenses_by_id[license_id].get("name"))
    ]


def several_calling_licenses(
    planned_ids: Iterable[str],
    added_ids: Iterable[str],
    licenses_by_id: Mapping[str, Mapping[str, Any]],
) -> List[str]:
    """Return the user calling licenses of ``planned_ids`` when there are several and one of
    them is added, else an empty list.

    Webex gives a user one calling license, so it rejects the second one of a request and
    may apply the rest of it (HTTP 206).
    """
    calling = [
        license_id
        for license_id in _unique(planned_ids)
        if license_id in licenses_by_id
        and is_user_calling_license(licenses_by_id[license_id].get("name"))
    ]
    added = set(added_ids)
    if len(calling) > 1 and any(license_id in added for license_id in calling):
        return calling
    return []


def _name_key(name: Any) -> str:
    return str(name or "").strip().casefold()


def plan_user_license_change(
    current_ids: Iterable[str],
    requested_ids: Iterable[str],
    state: str,
    managed_ids: Iterable[str],
    unremovable_ids: Iterable[str] = (),
    replaced_ids: Iterable[str] = (),
) -> LicensePlan:
    """Plan the license ids to add and remove for one user.

    * ``present``: add the requested licenses the user lacks, and remove ``replaced_ids``.
    * ``absent``: remove the requested licenses and ``replaced_ids`` that the user holds.
    * ``exact``: the user ends with the requested licenses plus the unremovable ones they
      hold; every other license is removed, including licenses outside the defaults.

    ``replaced_ids`` are the user's licenses outside the defaults with the name of a
    requested license (``same_name_outside_defaults``). ``unremovable_ids`` are implicitly
    assigned licenses and, by this collection's policy, unsubscribed licenses
    (``retained_license_ids``); they are never removed and appear in ``kept_unremovable``
    when a removal was requested or implied. Raises LicensingError for an unknown state or a
    requested license that is not managed.
    """
    if state not in LICENSE_STATES:
        raise LicensingError(
            f"invalid license state '{state}' (expected one of: {', '.join(LICENSE_STATES)})"
        )
    current = _unique(current_ids)
    requested = _unique(requested_ids)
    managed = set(managed_ids)
    unremovable = set(unremovable_ids)

    unmanaged = [license_id for license_id in requested if license_id not in managed]
    if unmanaged:
        raise LicensingError(f"requested licenses are not managed: {', '.join(unmanaged)}")

    held = set(current)
    wanted = set(requested)
    replaced = set(replaced_ids) - wanted
    if state == "present":
        targets = [i for i in current if i in replaced]
    elif state == "absent":
        targets = [i for i in current if i in wanted or i in replaced]
    else:
        targets = [i for i in current if i not in wanted]
    add = tuple(i for i in requested if i not in held) if state != "absent" else ()
    remove = tuple(i for i in targets if i not in unremovable)
    kept = tuple(i for i in targets if i in unremovable)
    return LicensePlan(add, remove, kept)


# ---------------------------------------------------------------------------
# License listings


def fold_name(value: Any) -> Optional[str]:
    """Return a name as license and location names are compared: without surrounding
    blanks and in lower case, in every script. None stays None.

    str.lower, not str.casefold: casefold makes "Straße" equal to "Strasse", two names
    that a user keeps apart.
    """
    if value is None:
        return None
    return str(value).strip().lower()


def filter_licenses(
    rows: Iterable[Mapping[str, Any]],
    subscription_id: Optional[str] = None,
    site_url: Optional[str] = None,
    name: Optional[str] = None,
) -> List[Dict[str, Any]]:
    """Keep the license rows that match every filter that is set.

    ``site_url`` compares without case, scheme or trailing slash; ``name`` without case and
    surrounding blanks (``fold_name``, as the inventory's listing compares it);
    ``subscription_id`` exactly.
    """
    site_filter = normalize_site_url(site_url) if site_url else None
    subscription_filter = normalize_subscription_id(subscription_id)
    result = []
    for row in rows:
        if subscription_filter and row.get("subscription_id") != subscription_filter:
            continue
        if site_filter and normalize_site_url(row.get("site_url")) != site_filter:
            continue
        if name and fold_name(row.get("name") or "") != fold_name(name):
            continue
        result.append(dict(row))
    return result


def distinct_subscriptions_and_site_urls(rows: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    """Return the distinct subscriptions and site URLs of the listed licenses.

    ``{"subscriptions", "site_urls", "site_urls_by_subscription"}``, the last a mapping of
    each subscription id to its sorted normalized site URLs.
    """
    subscriptions = distinct_subscriptions(rows)
    return {
        "subscriptions": subscriptions,
        "site_urls": distinct_site_urls(rows),
        "site_urls_by_subscription": {
            subscription: site_urls_of_subscription(rows, subscription)
            for subscription in subscriptions
        },
    }


def normalize_license_user(user: Mapping[str, Any]) -> Dict[str, Any]:
    """Convert a ``users`` entry of ``GET /v1/licenses/{id}`` to snake_case."""
    return {
        "id": user.get("id"),
        "email": user.get("email"),
        "display_name": user.get("displayName"),
        "type": user.get("type"),
    }


def format_names(names: Sequence[str], limit: int = 20) -> str:
    """Join names for an error message: the first ``limit``, then how many more, or "none"."""
    if not names:
        return "none"
    # A name with a comma or quote is quoted, so that the list still reads as names.
    quoted = [
        repr(str(name)) if ("," in str(name) or "'" in str(name) or '"' in str(name))
        else str(name)
        for name in names[:limit]
    ]
    listed = ", ".join(quoted)
    if len(names) > limit:
        listed += f", and {len(names) - limit} more"
    return listed


def name_likeness_hint(name: str, similar: str) -> str:
    """Return why a stored name ``similar`` looks like ``name``: another case, or another
    Unicode form of the same letters (NFC or NFD). Returns "" for other names."""
    if name == similar:
        return ""
    if name.lower() == similar.lower():
        return " (customer names are case-sensitive)"
    if unicodedata.normalize("NFC", name).lower() == unicodedata.normalize(
        "NFC", similar
    ).lower():
        return (
            " (the two names look alike but differ in their Unicode form, NFC or NFD: "
            f"{ascii(name)} and {ascii(similar)}; retype the name in one form)"
        )
    return ""


def hierarchy_node(hierarchy: Optional[str], *names: Optional[str]) -> str:
    """Join a hierarchy path and the names below it: ("Provider/Reseller", "Acme") -> path."""
    parts = [normalize_hierarchy(hierarchy)] + [name for name in names if name]
    return "/".join(part for part in parts if part)


def _unique(values: Iterable[str]) -> List[str]:
    seen = set()
    result = []
    for value in values:
        if value not in seen:
            seen.add(value)
            result.append(value)
    return result


# ---------------------------------------------------------------------------
# Managing one user's licenses

# Licenses that PATCH /licenses/users only assigns with calling properties (extension or
# phone number, and a location unless a phone number is given), per the Webex admin OpenAPI
# description of LicenseProperties and error 400411.
# NOTE: other calling licenses (Webex Calling - Basic, Attendant Console) are not listed
# because no documented error code ties them to calling properties.
USER_CALLING_LICENSE_NAMES = ("Webex Calling - Professional", "Webex Calling - Standard")
# Licenses that Control Hub gives to workspaces only, never to a person.
WORKSPACE_ONLY_LICENSE_NAMES = ("Webex Calling - Workspaces",)

# Reasons given for the licenses a user change leaves in place (``describe_kept_licenses``).
KEPT_UNSUBSCRIBED = "unsubscribed"
KEPT_OUTSIDE_DEFAULTS = "outside_defaults"
KEPT_NOT_IN_INVENTORY = "not_in_inventory"
KEPT_NOT_MANAGEABLE = "not_manageable"

# Webex rejects a request that assigns or removes a user's Messenger license (error 400118,
# "User management of Messenger license ... is not supported", in the admin OpenAPI
# description of PATCH /licenses/users). The word "Messenger" in the name marks them.
_MESSENGER_NAME = re.compile(r"\bmessenger\b", re.IGNORECASE)


class AppliedChanges(NamedTuple):
    """The planned license changes split by what the API applied."""

    added: Tuple[str, ...]
    removed: Tuple[str, ...]
    not_added: Tuple[str, ...]
    not_removed: Tuple[str, ...]

    @property
    def complete(self) -> bool:
        return not (self.not_added or self.not_removed)


def is_user_calling_license(name: Optional[str]) -> bool:
    """Tell whether a license name is one that needs calling properties when assigned."""
    key = str(name or "").strip().lower()
    return any(key == calling.lower() for calling in USER_CALLING_LICENSE_NAMES)


def is_messenger_license(name: Optional[str]) -> bool:
    """Tell whether a license name is a Messenger license, which Webex does not let an
    administrator assign to or remove from a user."""
    return bool(_MESSENGER_NAME.search(str(name or "")))


def check_user_manageable(
    license_ids: Iterable[str], licenses_by_id: Mapping[str, Mapping[str, Any]]
) -> None:
    """Raise LicensingError when a requested license is one that Webex does not let an
    administrator assign or remove (a Messenger license)."""
    labels = _labels_where(license_ids, licenses_by_id, is_messenger_license)
    if labels:
        raise LicensingError(
            f"license {', '.join(repr(label) for label in labels)} is a Messenger license, "
            "which Webex does not let administrators assign to or remove from users (error "
            "400118): remove it from licenses. Tasks leave a user's Messenger license as it is"
        )


def _labels_where(
    license_ids: Iterable[str],
    licenses_by_id: Mapping[str, Mapping[str, Any]],
    name_test: Callable[[Optional[str]], bool],
) -> List[str]:
    """Return the labels of the known licenses among ``license_ids`` whose name passes
    ``name_test``."""
    return [
        license_label(licenses_by_id[license_id])
        for license_id in license_ids
        if license_id in licenses_by_id and name_test(licenses_by_id[license_id].get("name"))
    ]


def is_workspace_only_license(name: Optional[str]) -> bool:
    """Tell whether a license name is one for workspaces, which a person cannot hold."""
    key = str(name or "").strip().lower()
    return any(key == workspace.lower() for workspace in WORKSPACE_ONLY_LICENSE_NAMES)


def check_user_assignable(
    license_ids: Iterable[str], licenses_by_id: Mapping[str, Mapping[str, Any]]
) -> None:
    """Raise LicensingError when a license to add is one for workspaces only."""
    labels = _labels_where(license_ids, licenses_by_id, is_workspace_only_license)
    if labels:
        raise LicensingError(
            f"license {', '.join(repr(label) for label in labels)} is for workspaces and "
            "cannot be assigned to a user: remove it from licenses, and give the user "
            f"{' or '.join(USER_CALLING_LICENSE_NAMES)} for Webex Calling"
        )


def site_urls_of_subscription(
    licenses: Iterable[Mapping[str, Any]], subscription_id: Optional[str]
) -> List[str]:
    """Return the sorted normalized site URLs of the license rows of one subscription."""
    subscription = normalize_subscription_id(subscription_id)
    return distinct_site_urls(
        row
        for row in licenses
        if normalize_subscription_id(row.get("subscription_id")) == subscription
    )


def decide_user_license_defaults(
    customer: str,
    licenses: Sequence[Mapping[str, Any]],
    default_subscription_id: Optional[str] = None,
    default_site_url: Optional[str] = None,
    site_url: Optional[str] = None,
    requested: Iterable[str] = (),
) -> DefaultsDecision:
    """Decide which licenses one user license change may assign, or raise LicensingError.

    ``licenses`` are the customer's inventory rows. ``site_url`` (optional) replaces the
    customer's default site URL for this change and must be a site URL of the effective
    default subscription. Raises when the customer has no licenses, when a configured default
    is not in the org, or when the org has several subscriptions and no default. That last
    message names each ``requested`` license name or id that several subscriptions offer.
    """
    if not licenses:
        raise LicensingError(
            f"customer '{customer}' has no licenses in the inventory, so none can be "
            "assigned. If its licenses were never synced, run ucops.webex.webex_license_sync "
            "for it first. If they were, its org had no licenses at the last sync: add a "
            "subscription to the org, then sync again"
        )

    chosen_site_url = site_url if site_url else default_site_url
    decision = effective_defaults(licenses, default_subscription_id, chosen_site_url)
    if "default_subscription_id" in decision.unknown:
        raise LicensingError(
            _not_found_message(
                "default_subscription_id",
                decision.subscription_id,
                f"org '{customer}'",
                decision.subscription_candidates,
            )
            + "; fix it with ucops.webex.webex_customer or sync the customer again"
        )
    if decision.subscription_id is None:
        message = (
            f"customer '{customer}' has several subscriptions "
            f"({', '.join(decision.subscription_candidates)}) and no default_subscription_id, "
            "so none of its licenses can be assigned; set default_subscription_id with "
            "ucops.webex.webex_customer"
        )
        ambiguous = _licenses_in_several_subscriptions(requested, licenses)
        if ambiguous:
            message = "; ".join(ambiguous) + ", so the request is ambiguous: " + message
        raise LicensingError(message)

    if site_url:
        own_site_urls = site_urls_of_subscription(licenses, decision.subscription_id)
        if normalize_site_url(site_url) not in own_site_urls:
            raise LicensingError(
                f"site_url '{site_url}' is not a site URL of subscription "
                f"'{decision.subscription_id}' of customer '{customer}' "
                f"(found: {', '.join(own_site_urls) if own_site_urls else 'none'})"
            )
    elif "default_site_url" in decision.unknown:
        raise LicensingError(
            decision.not_found_message("default_site_url", default_site_url, customer)
            + "; fix it with ucops.webex.webex_customer or set site_url"
        )
    return decision


def _licenses_in_several_subscriptions(
    requested: Iterable[str], licenses: Sequence[Mapping[str, Any]]
) -> List[str]:
    """Describe each requested license name or id that more than one subscription offers."""
    descriptions = []
    for request in _unique(str(item) for item in requested):
        key = fold_name(request)
        subscriptions = sorted(
            {
                str(row["subscription_id"])
                for row in licenses
                if row.get("subscription_id")
                and (str(row["id"]) == request or fold_name(row.get("name") or "") == key)
            }
        )
        if len(subscriptions) > 1:
            descriptions.append(
                f"license '{request}' is in subscriptions {', '.join(subscriptions)}"
            )
    return descriptions


def mark_managed(
    licenses: Iterable[Mapping[str, Any]], decision: DefaultsDecision
) -> List[Dict[str, Any]]:
    """Return copies of license rows with ``managed`` set from ``decision``."""
    return [dict(row, managed=is_managed(row, decision)) for row in licenses]


def split_applied_changes(
    add: Iterable[str], remove: Iterable[str], resulting_ids: Iterable[str]
) -> AppliedChanges:
    """Compare a plan with the licenses the user holds after the request.

    A planned addition was applied when the user now holds it, a planned removal when the
    user no longer holds it.
    """
    held = set(resulting_ids)
    add = _unique(add)
    remove = _unique(remove)
    return AppliedChanges(
        added=tuple(i for i in add if i in held),
        removed=tuple(i for i in remove if i not in held),
        not_added=tuple(i for i in add if i not in held),
        not_removed=tuple(i for i in remove if i in held),
    )


def is_whole_license_set(
    before: Iterable[str], remove: Iterable[str], returned: Optional[Iterable[str]]
) -> bool:
    """Tell whether the license list of a change response is the user's whole set.

    Webex's example of an HTTP 200 lists the user's whole set after the change, while its
    description of an HTTP 206 says that the list contains only what was applied. A list
    counts as the whole set when it contains every license of ``before`` that the request
    did not remove.
    """
    if returned is None:
        return False
    removing = set(remove)
    return {i for i in before if i not in removing} <= set(returned)


def licenses_after_change(
    before: Sequence[str],
    add: Sequence[str],
    remove: Sequence[str],
    returned: Optional[Sequence[str]],
    read: Optional[Sequence[str]],
    complete: bool,
) -> Optional[List[str]]:
    """Return the license ids a user holds after an accepted change, or None if unknown.

    ``before`` are the user's licenses before the request, which added ``add`` and removed
    ``remove``. ``returned`` is the response's license list (None without one), ``read`` the
    user's licenses read again after the request (None when the read failed), and
    ``complete`` tells that Webex applied every change (HTTP 200).

    A whole-set response list (``is_whole_license_set``) is taken as it is, since a read
    right after the change may lag behind it. After a partial change that removed every
    license of ``before``, any list passes that test, so the list is not taken there
    (a user without licenses before has nothing to remove, so there it is).
    Otherwise the read counts, with the additions that the response list confirms. Without
    a read, a complete change gives the planned licenses, and a partial one (HTTP 206)
    gives None: which removals Webex applied cannot be told.
    """
    removing = set(remove)
    keeps_some = any(i not in removing for i in before)
    removes_held = any(i in removing for i in before)
    if (
        returned is not None
        and is_whole_license_set(before, remove, returned)
        and (keeps_some or complete or not removes_held)
    ):
        return _unique(returned)
    if read is not None:
        listed = set(returned or ())
        return _unique(list(read) + [i for i in add if i in listed])
    if complete:
        return _unique([i for i in before if i not in removing] + list(add))
    return None


def describe_license(
    license_id: str, licenses_by_id: Mapping[str, Mapping[str, Any]]
) -> Dict[str, Any]:
    """Return ``{id, name, subscription_id, site_url}`` of a license id (None when unknown)."""
    row = licenses_by_id.get(license_id) or {}
    return {
        "id": license_id,
        "name": row.get("name"),
        "subscription_id": row.get("subscription_id"),
        "site_url": row.get("site_url"),
    }


def describe_kept_licenses(
    held_ids: Iterable[str],
    licenses_by_id: Mapping[str, Mapping[str, Any]],
    managed_ids: Iterable[str],
) -> List[Dict[str, Any]]:
    """Describe the licenses a user holds that the change leaves alone, with the reason.

    ``reason`` is ``unsubscribed`` (bundled, no subscription: never removed),
    ``not_manageable`` (a Messenger license, which Webex does not let administrators
    remove), ``outside_defaults`` (another subscription or site URL; states present and
    absent keep it unless it has the name of a requested license) or ``not_in_inventory``
    (unknown to the inventory, so never removed). Managed licenses are left out, except
    Messenger licenses.
    """
    managed = set(managed_ids)
    result = []
    for license_id in _unique(held_ids):
        row = licenses_by_id.get(license_id)
        messenger = row is not None and is_messenger_license(row.get("name"))
        if license_id in managed and not messenger:
            continue
        if row is None:
            reason = KEPT_NOT_IN_INVENTORY
        elif messenger:
            reason = KEPT_NOT_MANAGEABLE
        elif not normalize_subscription_id(row.get("subscription_id")):
            reason = KEPT_UNSUBSCRIBED
        else:
            reason = KEPT_OUTSIDE_DEFAULTS
        result.append(dict(describe_license(license_id, licenses_by_id), reason=reason))
    return result


# ---------------------------------------------------------------------------
# Customer defaults and sync change reports

# License fields that a sync diff shows for each changed license.
DIFF_LICENSE_FIELDS = (
    "total_units",
    "consumed_units",
    "consumed_by_users",
    "consumed_by_workspaces",
    "available_units",
    "managed",
)


class OrgCheck(NamedTuple):
    """Checks of a customer change against the live org, made before it is saved.

    ``needed`` is True when the org must be read: its org id or a default changes.
    ``org_id`` is the org to read (None means the token's own org). ``subscription_id`` and
    ``site_url`` are the configured defaults to validate (None: nothing to validate).
    """

    needed: bool
    org_id: Optional[str]
    subscription_id: Optional[str]
    site_url: Optional[str]


def plan_org_check(
    stored: Optional[Mapping[str, Any]],
    org_id: Optional[str] = None,
    default_subscription_id: Optional[str] = None,
    default_site_url: Optional[str] = None,
) -> OrgCheck:
    """Decide whether a customer update needs the live org, and which defaults to validate.

    ``stored`` is the customer record (None for a new customer). An option left at None keeps
    the stored value and a blank one clears it, as ``InventoryStore.upsert_customer`` does.
    A new org id, or a change of either default, validates both defaults the customer will
    have, because the site URL must belong to the subscription. Clearing a default needs no
    check.
    """
    stored = stored or {}
    stored_org = stored.get("org_id") or None
    stored_subscription = normalize_subscription_id(stored.get("default_subscription_id"))
    stored_site_url = normalize_site_url(stored.get("default_site_url"))

    target_org = stored_org if org_id is None else (str(org_id).strip() or None)
    org_changed = org_id is not None and target_org != stored_org

    subscription = (
        stored_subscription
        if default_subscription_id is None
        else normalize_subscription_id(default_subscription_id)
    )
    site_url = stored_site_url if default_site_url is None else normalize_site_url(default_site_url)
    subscription_changed = subscription is not None and subscription != stored_subscription
    site_url_changed = site_url is not None and site_url != stored_site_url

    if org_changed or subscription_changed or site_url_changed:
        return OrgCheck(True, target_org, subscription, site_url)
    return OrgCheck(False, target_org, None, None)


def license_label(row: Mapping[str, Any]) -> str:
    """Return a readable label that tells apart licenses with the same name.

    For example "Meeting - Webex Enterprise Edition (Sub-BOR100, borealis.webex.com)" or
    "Basic Messaging (no subscription)".
    """
    details = [row.get("subscription_id") or "no subscription"]
    site_url = normalize_site_url(row.get("site_url"))
    if site_url:
        details.append(site_url)
    return f"{row.get('name')} ({', '.join(details)})"


def license_change_diff(
    changes: Mapping[str, Any],
) -> Tuple[Dict[str, Dict[str, Any]], Dict[str, Dict[str, Any]]]:
    """Build the before and after views of a sync's license changes for diff mode.

    ``changes`` is ``{"added": [rows], "updated": [{"before", "after"}], "removed": [rows]}``.
    Both views map a license label to the DIFF_LICENSE_FIELDS of that license. An added
    license appears only after, a removed one only before. Two licenses with the same label
    get their id appended.
    """
    before: Dict[str, Dict[str, Any]] = {}
    after: Dict[str, Dict[str, Any]] = {}
    pairs: List[Tuple[Optional[Mapping[str, Any]], Optional[Mapping[str, Any]]]] = []
    pairs.extend((None, row) for row in changes.get("added") or [])
    pairs.extend((item["before"], item["after"]) for item in changes.get("updated") or [])
    pairs.extend((row, None) for row in changes.get("removed") or [])

    labels: Dict[str, int] = {}
    for old, new in pairs:
        label = license_label(new or old)
        labels[label] = labels.get(label, 0) + 1
    for old, new in pairs:
        row = new or old
        label = license_label(row)
        if labels[label] > 1:
            label = f"{label} [{row['id']}]"
        if old is not None:
            before[label] = {field: old.get(field) for field in DIFF_LICENSE_FIELDS}
        if new is not None:
            after[label] = {field: new.get(field) for field in DIFF_LICENSE_FIELDS}
    return before, after


def person_license_sets(
    stored_ids: Iterable[str],
    added_ids: Iterable[str],
    removed_ids: Iterable[str],
    stored_is_after: bool,
) -> Tuple[List[str], List[str]]:
    """Return a person's sorted license ids before and after a sync.

    ``stored_ids`` are the ids in the inventory: the state after the sync when it was
    committed (``stored_is_after``), else the state before it.
    """
    stored = set(stored_ids)
    added = set(added_ids)
    removed = set(removed_ids)
    if stored_is_after:
        return sorted((stored - added) | removed), sorted(stored)
    return sorted(stored), sorted((stored - removed) | added)
