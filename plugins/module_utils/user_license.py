# Copyright: ucops.webex maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Add, remove or set one user's licenses through PATCH /v1/licenses/users.

The customer's licenses and defaults come from the inventory; the user is read live, so the
plan compares with the user's real licenses. After the API applied a change, the inventory's
license counters and the user's record are updated in the same run (no sync needed). Check
mode and diff mode run the same steps and skip the PATCH and the inventory write.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from ansible_collections.ucops.webex.plugins.module_utils import licensing
from ansible_collections.ucops.webex.plugins.module_utils.inventory import (
    InventoryError,
    InventoryLockedError,
    InventoryStore,
    database_error_message,
    is_disk_full_error,
)
from ansible_collections.ucops.webex.plugins.module_utils.inventory_sync import (
    check_storable_text,
)
from ansible_collections.ucops.webex.plugins.module_utils.webex_api import (
    WebexApiError,
    WebexClient,
    WebexResponse,
)


class UserLicenseError(Exception):
    """A failed user license change; ``details`` are extra result keys for fail_json."""

    def __init__(self, message: str, changed: bool = False, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.changed = changed
        self.details = details


class UserLicenseChange:
    """One run of the user license change for ``params`` (the module's options).

    ``client`` is a WebexClient whose ``org_id`` this class sets to the customer's org.
    """

    def __init__(
        self,
        params: Mapping[str, Any],
        store: InventoryStore,
        client: WebexClient,
        check_mode: bool = False,
    ) -> None:
        self.params = params
        self.store = store
        self.client = client
        self.check_mode = check_mode
        self.customer_name: str = params["customer"]
        self.state: str = params["state"]
        self.warnings: List[str] = []

    def run(self) -> Dict[str, Any]:
        """Plan the change, apply it unless in check mode, and return the module result."""
        customer = self._read_customer()
        self.client.org_id = self._choose_org_id(customer)

        # Licenses and the defaults that decide which of them may be assigned.
        rows = self.store.license_rows(customer=self.customer_name)
        try:
            decision = licensing.decide_user_license_defaults(
                self.customer_name,
                rows,
                customer["default_subscription_id"],
                customer["default_site_url"],
                self.params.get("site_url"),
                requested=self.params.get("licenses") or [],
            )
            rows = licensing.mark_managed(rows, decision)
            requested = licensing.resolve_license_names(
                self.params.get("licenses") or [], rows, org=self.customer_name
            )
            self.licenses_by_id = {str(row["id"]): row for row in rows}
            licensing.check_user_manageable(requested, self.licenses_by_id)
            if self.state != "absent":
                licensing.check_user_assignable(requested, self.licenses_by_id)
        except licensing.LicensingError as error:
            raise UserLicenseError(str(error)) from error
        managed_ids = [str(row["id"]) for row in rows if row["managed"]]

        # The user's real licenses, read live.
        person = self._read_person()
        current = [str(license_id) for license_id in person.get("licenses") or []]
        unremovable = licensing.retained_license_ids(rows) + [
            license_id for license_id in current if license_id not in self.licenses_by_id
        ]
        replaced = licensing.same_name_outside_defaults(
            current, requested, self.licenses_by_id, managed_ids,
            include_calling=self.state == "absent",
        )
        trial_calling = licensing.removable_unsubscribed_calling(
            current, requested, self.state, self.licenses_by_id
        )
        unremovable = [i for i in unremovable if i not in trial_calling]
        replaced += trial_calling
        plan = licensing.plan_user_license_change(
            current, requested, self.state, managed_ids, unremovable, replaced
        )
        if self.state == "present":
            self._check_calling_conflicts(plan, current)
        planned = [i for i in current if i not in plan.remove] + list(plan.add)
        self._check_one_calling_license(plan, planned)
        self._check_replacement_units(plan)
        self._warn_without_units(plan)
        license_changes = self._build_license_changes(plan, person)

        result: Dict[str, Any] = {
            "changed": plan.changed,
            "user": self._user_summary(person),
            "diff": self._build_diff(person, current, planned, license_changes),
        }
        if not plan.changed or self.check_mode:
            self._warn_if_inventory_differs(str(person["id"]), current)
            result.update(self._describe_outcome(plan.add, plan.remove, planned, managed_ids))
            return result

        # Apply through the API, then record in the inventory what the API applied. A file
        # that cannot be written would fail the recording after Webex applied the change.
        self._check_inventory_writable()
        response = self._send_change(person, license_changes)
        if isinstance(response, WebexApiError):
            # The outcome is unknown: the user read again shows what was applied.
            after = self._person_after_failed_request(person, response)
            resulting = [str(license_id) for license_id in after.get("licenses") or []]
            applied = licensing.split_applied_changes(plan.add, plan.remove, resulting)
            self._check_failed_request_outcome(response, applied)
        else:
            after = self._person_after_change(person, response, plan, license_changes)
            resulting = [str(license_id) for license_id in after.get("licenses") or []]
            # Even an HTTP 200 is checked: a change that the user's licenses after it do not
            # show was not applied.
            applied = licensing.split_applied_changes(plan.add, plan.remove, resulting)
        inventory = self._record_change(after, applied)
        self._warn_if_inventory_differs(str(person["id"]), resulting)

        result.update(
            self._describe_outcome(applied.added, applied.removed, resulting, managed_ids)
        )
        result["changed"] = bool(applied.added or applied.removed)
        result["user"] = self._user_summary(after)
        applied_changes = [c for c in license_changes if c["id"] in applied.added]
        result["diff"] = self._build_diff(person, current, resulting, applied_changes)
        result["inventory"] = inventory
        if not applied.complete:
            raise UserLicenseError(
                self._partial_message(person, applied, response),
                changed=result["changed"],
                status=response.status,
                tracking_id=response.tracking_id,
                not_added=self._describe_ids(applied.not_added),
                not_removed=self._describe_ids(applied.not_removed),
                **{key: value for key, value in result.items() if key != "changed"},
            )
        return result

    def _warn_if_inventory_differs(self, person_id: str, live_ids: Sequence[str]) -> None:
        """Warn when the inventory's licenses of the user differ from those read in Webex.

        A change whose outcome an earlier run could not tell, or a change made in Control
        Hub since the last sync, leaves the inventory behind. This task records only the
        changes it applies itself, since it cannot tell whether a sync has counted the
        others, so the warning points to a sync.
        """
        stored = self.store.find_person(self.customer_name, person_id)
        if stored is None:
            return
        known = set(self.licenses_by_id)
        live = {i for i in live_ids if i in known}
        recorded = {i for i in stored["license_ids"] if i in known}
        parts = []
        if live - recorded:
            parts.append(
                f"Webex shows {', '.join(self._labels(sorted(live - recorded)))}, which the "
                "inventory lacks"
            )
        if recorded - live:
            parts.append(
                f"the inventory shows {', '.join(self._labels(sorted(recorded - live)))}, "
                "which Webex does not"
            )
        if parts:
            self.warnings.append(
                f"the inventory's licenses of user '{self.params['user']}' differ from Webex: "
                f"{'; '.join(parts)}. This task records only the changes it makes, so run "
                f"ucops.webex.webex_license_sync for customer '{self.customer_name}' to bring "
                "the inventory and its counts up to date"
            )

    def _check_calling_conflicts(self, plan: licensing.LicensePlan, current: Sequence[str]) -> None:
        """Reject, before any change, a second calling license beside the user's one."""
        conflicts = licensing.held_calling_conflicts(current, plan.add, self.licenses_by_id)
        if not conflicts:
            return
        added = [
            i for i in plan.add
            if licensing.is_user_calling_license(self.licenses_by_id[i].get("name"))
        ]
        raise UserLicenseError(
            f"user '{self.params['user']}' has {', '.join(self._labels(conflicts))}, and this "
            f"task would add {', '.join(self._labels(added))}, but a user has one calling "
            "license. State present does not replace it. Use state=exact with every license "
            "the user should have, which removes the current calling license in the same "
            "request (Webex may apply that removal even when it rejects the new license, so "
            "check that units are left), or remove the current one first with state=absent. "
            "Nothing was changed"
        )

    def _check_one_calling_license(
        self, plan: licensing.LicensePlan, planned: Sequence[str]
    ) -> None:
        """Reject, before any change, a result with several calling licenses."""
        calling = licensing.several_calling_licenses(planned, plan.add, self.licenses_by_id)
        if calling:
            raise UserLicenseError(
                f"this task would give user '{self.params['user']}' "
                f"{', '.join(self._labels(calling))}, but a user has one calling license, "
                "and Webex would apply the rest of the request without the second one. List "
                "one calling license in licenses. Nothing was changed"
            )

    def _check_replacement_units(self, plan: licensing.LicensePlan) -> None:
        """Reject, before any change, a replacement whose new license has no units left.

        Webex would remove the replaced license and reject the new one, and a user whose
        calling license is removed loses the calling setup.
        """
        # NOTE: only a lack of units is caught here. Webex may reject the new license for
        # another reason and still apply the removal, and the task then fails naming both.
        pairs = licensing.unfunded_replacements(plan.add, plan.remove, self.licenses_by_id)
        where = "in the inventory"
        if not pairs:
            # Units change in Control Hub between syncs, so the counts of the licenses to
            # add are read live before a replacement.
            added = [i for i, _old in licensing.replacements(
                plan.add, plan.remove, self.licenses_by_id)]
            live = self._live_units(added)
            pairs = licensing.unfunded_replacements(plan.add, plan.remove, live)
            where = "in Webex (read just now)"
        if pairs:
            added_id, replaced_id = pairs[0]
            raise UserLicenseError(
                f"{self._label(added_id)} has no units left {where}, so it cannot "
                f"replace {self._label(replaced_id)} of user '{self.params['user']}': Webex "
                "would remove that license and reject the new one. Free or buy units, sync "
                "the licenses, and run the task again. Nothing was changed"
            )

    def _warn_without_units(self, plan: licensing.LicensePlan) -> None:
        """Warn about licenses to add that have no units left in the inventory.

        Webex rejects such an addition. Units may have been freed since the last sync, so
        the change is still sent; the warning shows in check mode too.
        """
        empty = [
            license_id for license_id in plan.add
            if (self.licenses_by_id.get(license_id) or {}).get("available_units", 1) <= 0
        ]
        if empty:
            self.warnings.append(
                f"the inventory shows no units left of {', '.join(self._labels(empty))} (as of "
                "its last sync), so Webex may reject adding them to user "
                f"'{self.params['user']}'"
            )

    def _live_units(self, license_ids: Sequence[str]) -> Dict[str, Dict[str, Any]]:
        """Return the inventory rows of the licenses, with available units read live."""
        rows = dict(self.licenses_by_id)
        for license_id in license_ids:
            try:
                item = licensing.normalize_license(self.client.get_license(license_id))
            except (WebexApiError, licensing.LicensingError) as error:
                raise UserLicenseError(
                    f"reading the units of {self._label(license_id)} before it replaces a "
                    f"license of user '{self.params['user']}' failed: {error}. Nothing was "
                    "changed. Run the task again; the token needs to read licenses "
                    "(spark-admin:licenses_read)"
                ) from error
            rows[license_id] = dict(rows[license_id], available_units=item["available_units"])
        return rows

    def _check_inventory_writable(self) -> None:
        try:
            self.store.check_writable()
        except InventoryLockedError as error:
            raise UserLicenseError(
                f"the inventory database {self.store.path} stayed locked by other tasks "
                "(syncs or license changes) for too long, so the change was not sent to "
                "Webex. Run the task again when they end"
            ) from error
        except (InventoryError, sqlite3.Error) as error:
            raise UserLicenseError(
                f"the inventory database {self.store.path} cannot be written ({error}), so "
                "the change was not sent to Webex. Give the user who runs the task write "
                "access to the file and its directory, then run the task again"
            ) from error

    # -- reading ----------------------------------------------------------------------------

    def _read_customer(self) -> Dict[str, Any]:
        customer = self.store.get_customer(self.customer_name)
        if customer is None:
            raise UserLicenseError(self.store.missing_customer_message(self.customer_name))
        return customer

    def _choose_org_id(self, customer: Mapping[str, Any]) -> Optional[str]:
        """Return the customer's org id, else the org_id option or WEBEX_ORG_ID, as the sync
        chooses (see licensing.choose_org_id); raise when the option names another org."""
        option = licensing.choose_org_id(
            customer,
            self.params.get("org_id"),
            self.params.get("org_id_from_env"),
            self.warnings.append,
        )
        stored = customer.get("org_id")
        if option and stored and licensing.org_key(option) != licensing.org_key(stored):
            raise UserLicenseError(
                f"org_id '{option}' does not match org_id '{stored}' of customer "
                f"'{self.customer_name}'. Remove org_id from the task, or change the "
                "customer's org_id with ucops.webex.webex_customer"
            )
        chosen = stored or option
        # An inventory written by an older release may hold the org id as a bare UUID,
        # which the API's orgId parameter does not take.
        return licensing.org_api_id(chosen) if chosen else None

    def _read_person(self) -> Dict[str, Any]:
        user = self.params["user"]
        person = self.client.find_person(user)
        if person is None:
            org = self.client.org_id or "of the access token"
            raise UserLicenseError(
                f"user '{user}' was not found in org {org} of customer "
                f"'{self.customer_name}'; check the email address or person id"
            )
        person_org = person.get("orgId")
        if (
            self.client.org_id
            and isinstance(person_org, str)
            and licensing.org_key(person_org)
            and licensing.org_key(person_org) != licensing.org_key(self.client.org_id)
        ):
            raise UserLicenseError(
                f"user '{user}' belongs to org '{person_org}', not to org "
                f"'{self.client.org_id}' of customer '{self.customer_name}'. Nothing was "
                "changed: manage the user under the customer of its own org"
            )
        if not isinstance(person.get("licenses"), list):
            # Read as "no licenses", a removal would report nothing to do and "exact" would
            # assign everything again.
            raise UserLicenseError(
                f"the Webex API returned user '{user}' without a 'licenses' list, so the "
                "user's licenses cannot be managed. Webex shows the licenses of people to "
                "administrators only: use the token of a full or user administrator of the "
                "org"
            )
        # Checked before any change: a value that the inventory cannot store would fail
        # the recording after Webex had applied the change.
        try:
            check_storable_text("person", person, {
                "id": str(person.get("id")),
                "emails": person.get("emails"),
                "displayName": person.get("displayName"),
                "locationId": person.get("locationId"),
                "licenses": person.get("licenses"),
            })
        except ValueError as error:
            raise UserLicenseError(f"{error}. Nothing was changed") from error
        return person

    # -- planning ---------------------------------------------------------------------------

    def _build_license_changes(
        self, plan: licensing.LicensePlan, person: Mapping[str, Any]
    ) -> List[Dict[str, Any]]:
        """Build the ``licenses`` entries of the PATCH body; check calling properties first."""
        changes = []
        calling_added = False
        replaced_calling = any(
            licensing.is_user_calling_license((self.licenses_by_id.get(i) or {}).get("name"))
            for i in plan.remove
        )
        for license_id in plan.add:
            change: Dict[str, Any] = {"id": license_id, "operation": "add"}
            row = self.licenses_by_id[license_id]
            if licensing.is_user_calling_license(row.get("name")):
                change["properties"] = self._calling_properties(row, person, replaced_calling)
                calling_added = True
            changes.append(change)
        for license_id in plan.remove:
            changes.append({"id": license_id, "operation": "remove"})
        if not calling_added:
            self._check_unused_calling_options(person)
        return changes

    def _check_unused_calling_options(self, person: Mapping[str, Any]) -> None:
        """Check location, extension and phone_number when no calling license is added.

        They apply to a calling license that is added only. An unknown location still fails
        (it is bad input either way), and options that differ from what the user has are
        named in a warning, since this module does not move a user's calling location or
        number. Options equal to the user's values (a repeated run) change nothing.
        """
        location = self.params.get("location")
        differing = []
        if location and self._resolve_location(location) != person.get("locationId"):
            differing.append("location")
        extension = self.params.get("extension")
        if extension and str(extension) != str(person.get("extension") or ""):
            differing.append("extension")
        phone_number = self.params.get("phone_number")
        if phone_number and _digits(phone_number) not in {
            _digits(item.get("value")) for item in person.get("phoneNumbers") or []
            if isinstance(item, dict) and item.get("type") == "work"
        }:
            differing.append("phone_number")
        if differing:
            self.warnings.append(
                f"{' and '.join(differing)} of user '{self.params['user']}' "
                f"{'was' if len(differing) == 1 else 'were'} not applied: this task adds no "
                "calling license, and only a calling license that it adds takes them. This "
                "module does not change the location or number of a calling license that it "
                "leaves in place; change them in Control Hub"
            )

    def _calling_properties(
        self, license_row: Mapping[str, Any], person: Mapping[str, Any], replacing: bool
    ) -> Dict[str, str]:
        """Return the properties of an added calling license: the location, extension and
        phone number of the task, else the user's own ones where they stay valid."""
        extension = self.params.get("extension")
        phone_number = self.params.get("phone_number")
        label = licensing.license_label(license_row)
        location = self.params.get("location")
        location_id = self._resolve_location(location) if location else None
        if (
            not extension and not phone_number and replacing
            and location_id in (None, person.get("locationId"))
        ):
            # The new license replaces the user's calling license at the same location,
            # so the user keeps the extension and number that the old one had.
            extension = _person_calling_value(person, "extension")
            phone_number = _person_calling_value(person, "phoneNumber")
        if not extension and not phone_number:
            raise UserLicenseError(
                f"license '{label}' is a calling license and needs an extension or a phone "
                "number: set extension or phone_number"
            )

        properties: Dict[str, str] = {}
        if location_id:
            properties["locationId"] = location_id
        elif person.get("locationId"):
            properties["locationId"] = person["locationId"]
        elif not phone_number:
            raise UserLicenseError(
                f"license '{label}' is a calling license and user '{self.params['user']}' has "
                "no location: set location (a location name or id of the customer) or "
                "phone_number"
            )
        if extension:
            properties["extension"] = str(extension)
        if phone_number:
            properties["phoneNumber"] = str(phone_number)
        return properties

    def _resolve_location(self, location: str) -> str:
        """Return the id of a location given by name or id: inventory first, then live."""
        location = location.strip()
        matches = self.store.find_locations(self.customer_name, location)
        if not matches:
            matches = self._find_live_locations(location)
        if not matches:
            raise UserLicenseError(
                f"location '{location}' was not found in the org of customer "
                f"'{self.customer_name}'; give an existing location name or id"
            )
        if matches[0]["id"] != location and len(matches) > 1:
            ids = ", ".join(str(match["id"]) for match in matches)
            raise UserLicenseError(
                f"location name '{location}' matches {len(matches)} locations ({ids}): "
                "give the location id instead"
            )
        return str(matches[0]["id"])

    def _find_live_locations(self, location: str) -> List[Dict[str, Any]]:
        matches = []
        for page in self.client.iter_locations():
            for item in page:
                if item.get("id") == location:
                    return [{"id": item["id"], "name": item.get("name")}]
                if licensing.fold_name(item.get("name") or "") == licensing.fold_name(location):
                    matches.append({"id": item.get("id"), "name": item.get("name")})
        return matches

    # -- applying ---------------------------------------------------------------------------

    def _send_change(
        self, person: Mapping[str, Any], changes: Sequence[Mapping[str, Any]]
    ) -> Union[WebexResponse, WebexApiError]:
        """Send the PATCH and return its response, or the error when the outcome is unknown.

        An HTTP 4xx response means that the API rejected the change, so nothing changed and
        the task fails here. After a timeout, a lost connection, an HTTP 5xx or a success
        whose body cannot be read, the change may have been applied. The error is then
        returned, and the caller reads the user again to find out.
        """
        try:
            return self.client.assign_licenses(person_id=person["id"], licenses=changes)
        except WebexApiError as error:
            # A failed token refresh (a POST) follows a 401 response to the change request,
            # and a 401 applies nothing.
            unknown = error.status is None or not 400 <= error.status < 500
            if unknown and error.method == "PATCH":
                return error
            raise UserLicenseError(
                f"the license change for user '{self.params['user']}' was rejected and "
                f"nothing was changed: {error}",
                status=error.status,
                error_codes=error.error_codes,
                tracking_id=error.tracking_id,
                planned_changes=[
                    dict(
                        licensing.describe_license(change["id"], self.licenses_by_id),
                        operation=change["operation"],
                    )
                    for change in changes
                ],
            ) from error

    def _person_after_failed_request(
        self, person: Mapping[str, Any], error: WebexApiError
    ) -> Dict[str, Any]:
        """Read the user again after a change request whose outcome is unknown."""
        try:
            return dict(self.client.get_person(person["id"]))
        except WebexApiError as read_error:
            raise UserLicenseError(
                f"the license change request for user '{self.params['user']}' failed "
                f"({error}), and reading the user again failed too ({read_error}), so it is "
                "not known whether Webex applied the change. The inventory is unchanged: "
                "check the user's licenses in Control Hub or run the task again in check "
                "mode, then run ucops.webex.webex_license_sync",
                changed=True,
                status=error.status,
                tracking_id=error.tracking_id,
            ) from error

    def _check_failed_request_outcome(
        self, error: WebexApiError, applied: licensing.AppliedChanges
    ) -> None:
        """Fail unchanged when the user read again has nothing applied, else warn."""
        user = self.params["user"]
        if not (applied.added or applied.removed) and error.status is None:
            # Without a response (a timeout, a lost connection) Webex may still be working on
            # the request, so a read right after it cannot show that nothing will change.
            raise UserLicenseError(
                f"the license change request for user '{user}' got no response: "
                f"{str(error).rstrip('.')}. Reading the user again right after shows no "
                "change yet, but Webex may still apply the request. The inventory is "
                "unchanged. Wait a few minutes, then run ucops.webex.webex_license_sync for "
                f"customer '{self.customer_name}' to record what Webex applied, and run the "
                "task again if the change is still needed",
                status=error.status,
                tracking_id=error.tracking_id,
            ) from error
        if not (applied.added or applied.removed):
            raise UserLicenseError(
                f"the license change request for user '{user}' failed: "
                f"{str(error).rstrip('.')}. Reading the "
                "user again shows that nothing was changed, and the inventory is unchanged: "
                "run the task again",
                status=error.status,
                tracking_id=error.tracking_id,
            ) from error
        if applied.complete:
            self.warnings.append(
                f"the license change request for user '{user}' failed ({error}), but reading "
                "the user again shows that Webex applied the whole change, so the inventory "
                "records it"
            )

    def _person_after_change(
        self,
        person: Mapping[str, Any],
        response: Any,
        plan: licensing.LicensePlan,
        changes: Sequence[Mapping[str, Any]],
    ) -> Dict[str, Any]:
        """Return the user after an accepted change: read again, else from the response.

        The licenses come from ``licensing.licenses_after_change``: the response body
        (UserLicensesResponse.licenses) when it lists the user's whole set, since a read
        right after the change may lag behind it, else the read with the additions that
        the body confirms. The read gives the other fields (the location a calling license
        set). The change is made already, so a failed read must not end the task as
        unchanged: after a complete change (HTTP 200) the licenses come from the body or
        the plan, and a partial change (HTTP 206) whose result cannot be told fails with
        changed=True.
        """
        returned = _returned_licenses(response)
        before = [str(license_id) for license_id in person.get("licenses") or []]
        try:
            after = dict(self.client.get_person(person["id"]))
        except WebexApiError as error:
            read_error = error
        else:
            read = [str(license_id) for license_id in after.get("licenses") or []]
            after["licenses"] = licensing.licenses_after_change(
                before, plan.add, plan.remove, returned, read, response.status == 200
            )
            return after
        after = dict(person)
        for change in changes:
            location = (change.get("properties") or {}).get("locationId")
            if change["operation"] == "add" and location:
                after["locationId"] = location
        licenses = licensing.licenses_after_change(
            before, plan.add, plan.remove, returned, None, response.status == 200
        )
        if licenses is None:
            raise UserLicenseError(
                f"the Webex API applied part of the license change for user "
                f"'{self.params['user']}' (HTTP {response.status}), and the user could not "
                f"be read again to see which part: {read_error}. The inventory is unchanged: "
                "run ucops.webex.webex_license_sync to bring it up to date, then run the task "
                "again",
                changed=True,
                status=response.status,
                tracking_id=response.tracking_id,
            ) from read_error
        after["licenses"] = licenses
        if licensing.is_whole_license_set(before, plan.remove, returned):
            source = "the licenses that the change request returned"
        else:
            source = "the planned licenses, which the API accepted in full (HTTP 200)"
        self.warnings.append(
            f"the licenses of user '{self.params['user']}' were changed, but reading the user "
            f"again failed ({read_error}), so the inventory records {source}"
        )
        return after

    def _record_change(
        self, person: Mapping[str, Any], applied: licensing.AppliedChanges
    ) -> Dict[str, Any]:
        emails = person.get("emails") or []
        fields = {
            "email": emails[0] if emails else None,
            "display_name": person.get("displayName"),
            "location_id": person.get("locationId"),
        }
        try:
            return self.store.record_user_licenses(
                self.customer_name,
                str(person["id"]),
                added_license_ids=applied.added,
                removed_license_ids=applied.removed,
                license_ids=[str(i) for i in person.get("licenses") or []],
                person_fields=fields,
            )
        except (InventoryError, sqlite3.Error, UnicodeError) as error:
            # A full disk passes the writability check, which needs no new page.
            space = (
                "free disk space on its file system, then "
                if is_disk_full_error(error)
                else ""
            )
            raise UserLicenseError(
                f"the licenses of user '{self.params['user']}' were changed in Webex, but the "
                f"inventory {self.store.path} could not record it: {error}. To bring the "
                f"inventory up to date, {space}run ucops.webex.webex_license_sync for "
                f"customer '{self.customer_name}'",
                changed=True,
            ) from error

    # -- reporting --------------------------------------------------------------------------

    def _describe_ids(self, license_ids: Sequence[str]) -> List[Dict[str, Any]]:
        return [licensing.describe_license(i, self.licenses_by_id) for i in license_ids]

    def _describe_outcome(
        self,
        added: Sequence[str],
        removed: Sequence[str],
        resulting: Sequence[str],
        managed_ids: Sequence[str],
    ) -> Dict[str, Any]:
        return {
            "added": self._describe_ids(added),
            "removed": self._describe_ids(removed),
            "kept": licensing.describe_kept_licenses(resulting, self.licenses_by_id, managed_ids),
            "licenses": [
                {"id": license_id, "name": (self.licenses_by_id.get(license_id) or {}).get("name")}
                for license_id in resulting
            ],
        }

    def _label(self, license_id: str) -> str:
        row = self.licenses_by_id.get(license_id)
        if row is None:
            return f"{license_id} (not in the inventory)"
        return licensing.license_label(row)

    def _labels(self, license_ids: Sequence[str]) -> List[str]:
        return sorted(self._label(license_id) for license_id in license_ids)

    def _build_diff(
        self,
        person: Mapping[str, Any],
        before: Sequence[str],
        after: Sequence[str],
        license_changes: Sequence[Mapping[str, Any]],
    ) -> Dict[str, Any]:
        """Build the diff: the user's license labels before and after, and with a calling
        license that ``license_changes`` add, the calling details that it sets."""
        user = self._user_summary(person)["email"] or person.get("id")
        diff = {
            "before": {"user": user, "licenses": self._labels(before)},
            "after": {"user": user, "licenses": self._labels(after)},
        }
        properties = next(
            (change["properties"] for change in license_changes if change.get("properties")),
            None,
        )
        if properties:
            # The added calling license takes these details, which may move the user.
            diff["before"]["calling"] = {
                name: _person_calling_value(person, key) for key, name in CALLING_FIELDS
                if key in properties
            }
            diff["after"]["calling"] = {
                name: properties[key] for key, name in CALLING_FIELDS if key in properties
            }
        return diff

    @staticmethod
    def _user_summary(person: Mapping[str, Any]) -> Dict[str, Any]:
        emails = person.get("emails") or []
        return {"id": person.get("id"), "email": emails[0] if emails else None}

    def _partial_message(
        self,
        person: Mapping[str, Any],
        applied: licensing.AppliedChanges,
        response: Union[WebexResponse, WebexApiError],
    ) -> str:
        user = self._user_summary(person)["email"] or person.get("id")
        if isinstance(response, WebexApiError):
            body = None
            parts = [
                f"the license change request for user '{user}' failed ({response}), and "
                "reading the user again shows that Webex applied only part of the change"
            ]
        elif not applied.added and not applied.removed:
            body = response.json
            parts = [
                f"the Webex API answered HTTP {response.status} but applied none of the "
                f"license change for user '{user}'"
            ]
        else:
            body = response.json
            parts = [
                f"the Webex API applied only part of the license change for user '{user}' "
                f"(HTTP {response.status})"
            ]
        for title, ids in (
            ("assigned", applied.added),
            ("not assigned", applied.not_added),
            ("removed", applied.removed),
            ("not removed", applied.not_removed),
        ):
            if ids:
                parts.append(f"{title}: {', '.join(self._labels(ids))}")
        reasons = _error_descriptions(body)
        if reasons:
            parts.append(f"API errors: {'; '.join(reasons)}")
        lost = licensing.replacements(applied.not_added, applied.removed, self.licenses_by_id)
        for new_id, old_id in lost:
            parts.append(
                f"the user no longer has {self._label(old_id)}: Webex removed it and rejected "
                f"{self._label(new_id)}, which was to replace it. Give the user a license of "
                "that product again (in Control Hub for a license outside the defaults), or "
                "free units of the new one and run the task again"
            )
        parts.append(
            "the inventory records what was applied; check units and calling "
            "properties of the licenses not applied, then run the task again"
        )
        return ". ".join(parts) + "."


def _error_descriptions(body: Any) -> List[str]:
    """Return the ``errors[].description`` texts of a response body, if it has any."""
    if not isinstance(body, dict) or not isinstance(body.get("errors"), list):
        return []
    return [
        str(error.get("description"))
        for error in body["errors"]
        if isinstance(error, dict) and error.get("description")
    ]


def run_module(module: Any) -> Dict[str, Any]:
    """Run the user license change for an AnsibleModule; fail it on any error."""
    try:
        store = InventoryStore.from_module(module, create=False)
    except InventoryError as error:
        module.fail_json(msg=str(error))

    with store:
        if store.upgrade_message():
            module.warn(store.upgrade_message())
        client = WebexClient.from_module(module)
        # WEBEX_ORG_ID applies as in webex_license_sync (see licensing.choose_org_id).
        params = dict(module.params, org_id_from_env=os.environ.get("WEBEX_ORG_ID"))
        change = UserLicenseChange(params, store, client, check_mode=module.check_mode)
        try:
            try:
                result = change.run()
            finally:
                for warning in change.warnings:
                    module.warn(warning)
        except UserLicenseError as error:
            module.fail_json(msg=error.message, changed=error.changed, **error.details)
        except WebexApiError as error:
            # The change request's own errors are UserLicenseError, so this error comes from
            # a read before it (the user, a location, the free units) and nothing was sent.
            module.fail_json(
                msg=(
                    f"reading Webex for user '{params['user']}' of customer "
                    f"'{params['customer']}' failed, so no change was sent and the inventory "
                    f"is unchanged: {error}"
                ),
                status=error.status,
                error_codes=error.error_codes,
                tracking_id=error.tracking_id,
            )
        except InventoryError as error:
            module.fail_json(msg=str(error))
        except sqlite3.Error as error:
            module.fail_json(msg=database_error_message(module.params["inventory_db"], error))
    result["api_requests"] = dict(client.stats)
    return result


# Calling properties of a license change (PATCH /v1/licenses/users) and their diff names.
CALLING_FIELDS = (
    ("locationId", "location_id"),
    ("extension", "extension"),
    ("phoneNumber", "phone_number"),
)


def _person_calling_value(person: Mapping[str, Any], key: str) -> Optional[str]:
    """Return the user's current value of a calling property, or None when unset.

    The work number is the primary one if several are listed, written as + and digits (the
    form of phoneNumber in PATCH /licenses/users); People lists it with spaces.
    """
    if key == "phoneNumber":
        numbers = [
            item for item in person.get("phoneNumbers") or []
            if isinstance(item, dict) and item.get("type") == "work" and item.get("value")
        ]
        numbers.sort(key=lambda item: not item.get("primary"))
        return _digits(numbers[0]["value"]) if numbers else None
    value = person.get(key)
    return str(value) if value not in (None, "") else None


def _digits(value: Any) -> str:
    """Return a phone number as its leading + and digits, for comparing."""
    text = str(value or "")
    return ("+" if text.strip().startswith("+") else "") + "".join(
        char for char in text if char.isdigit()
    )


def _returned_licenses(response: Any) -> Optional[List[str]]:
    """Return the license ids that a change response lists (UserLicensesResponse.licenses),
    or None when its body has no such list."""
    body = response.json
    if isinstance(body, dict) and isinstance(body.get("licenses"), list):
        return [str(license_id) for license_id in body["licenses"]]
    return None
