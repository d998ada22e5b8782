# Copyright: ucops.webex maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Customer records of the license inventory, checked against the live Webex org.

``ensure_customer`` and ``remove_customer`` do the work of the webex_customer module. A
customer's org id and default subscription and site URL are validated with one
``GET /v1/licenses`` of that org before they are saved. When neither changes, no API call is
made, so a customer can be updated without network access.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from ansible_collections.ucops.webex.plugins.module_utils import licensing
from ansible_collections.ucops.webex.plugins.module_utils.inventory import (
    InventoryStore,
    resolve_inventory_path,
)
from ansible_collections.ucops.webex.plugins.module_utils.webex_api import (
    WebexApiError,
    WebexAuthError,
    WebexClient,
)

# Fields of a customer record in results and diffs (the columns that a user sets).
CUSTOMER_RESULT_FIELDS = (
    "name",
    "org_id",
    "hierarchy",
    "default_subscription_id",
    "default_site_url",
    "device",
)


class CustomerError(Exception):
    """A customer change that was rejected; nothing was saved.

    ``details`` contains extra result keys for the module (for example ``status``).
    """

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.details = details


def default_device(api_url: Optional[str], org_id: Optional[str]) -> Optional[str]:
    """Return the default label of an org connection: "<api host>/<org id>".

    Without an org id the label is the API host alone (the token's own org). Returns None
    when ``api_url`` has no host.
    """
    host = urlsplit(api_url or "").netloc
    if not host:
        return None
    return f"{host}/{org_id}" if org_id else host


@contextlib.contextmanager
def open_store(path: Optional[str], check_mode: bool) -> Iterator[InventoryStore]:
    """Open the inventory; in check mode a missing file is not created.

    A check-mode run against a missing inventory works on an empty temporary one instead,
    so it reports what a real run would do and leaves no file behind.
    """
    resolved = resolve_inventory_path(path)
    if check_mode and not os.path.exists(resolved):
        with tempfile.TemporaryDirectory(prefix="ucops-webex-") as directory:
            with InventoryStore(os.path.join(directory, "inventory.db")) as store:
                yield store
        return
    with InventoryStore(resolved) as store:
        yield store


def read_org_licenses(client: WebexClient, customer: str, org_id: Optional[str]) -> List[Dict]:
    """Read the licenses of the customer's org, as ``licensing.normalize_license`` rows.

    Raises CustomerError naming the org id when the API rejects the request, for example
    because the token may not act on that org.
    """
    client.org_id = org_id
    try:
        items = client.list_licenses()
    except WebexApiError as error:
        org = f"org_id '{org_id}'" if org_id else "the token's own org"
        if isinstance(error, WebexAuthError):
            # The credentials failed (an expired token or a failed refresh), not the org.
            advice = "Check the credentials"
        else:
            advice = "Check org_id and that the token may act on that org"
        raise CustomerError(
            f"cannot read the licenses of {org} for customer '{customer}', so nothing was "
            f"saved. {advice}: {error}",
            status=error.status,
            tracking_id=error.tracking_id,
        ) from error
    try:
        return [licensing.normalize_license(item) for item in items]
    except licensing.LicensingError as error:
        raise CustomerError(
            f"the Webex API returned an invalid license for customer '{customer}', so "
            f"nothing was saved: {error}. Report it to Webex support with the license id, "
            "or run the task again later"
        ) from error


def check_org_defaults(name: str, rows: List[Dict], check: licensing.OrgCheck) -> None:
    """Raise CustomerError when a default of ``check`` is not a value of the org's licenses."""
    try:
        licensing.validate_defaults(name, rows, check.subscription_id, check.site_url)
    except licensing.DefaultsError as error:
        message = f"{error}. Nothing was saved."
        if check.org_id is None:
            message += (
                " No org_id is set for this customer, so the values were read from the "
                "token's own org. Set org_id if the customer is another org."
            )
        raise CustomerError(
            message,
            subscriptions=licensing.distinct_subscriptions(rows),
            site_urls=licensing.distinct_site_urls(rows),
        ) from error


def ensure_customer(
    store: InventoryStore,
    client_factory: Callable[[], WebexClient],
    params: Mapping[str, Any],
    check_mode: bool,
    org_rows: Optional[Tuple[Optional[str], List[Dict]]] = None,
) -> Dict[str, Any]:
    """Create or update a customer record; with ``check_mode`` nothing is written.

    ``params`` contains the module options name, org_id, hierarchy, default_subscription_id,
    default_site_url, device and api_url. Returns ``{"changed", "before", "customer",
    "subscriptions", "site_urls", "org_read", "warnings"}``. Raises CustomerError when the
    org cannot be read or a default is not one of its values, and InventoryError when the
    org id belongs to another customer.
    """
    name = params["name"]
    stored = store.get_customer(name)
    warnings = []
    similar = store.similar_customer_name(name) if stored is None else None
    if similar is not None and params.get("org_id"):
        # A new customer with an org id of its own, other than the close one's, is another
        # org with a close name (Store 1 North, Store 1 South), not a typo.
        other_org = (store.get_customer(similar) or {}).get("org_id")
        if other_org and licensing.org_key(other_org) != licensing.org_key(params["org_id"]):
            similar = None
    if similar is not None:
        # A new customer named like a stored one is most often a typo in a task or an
        # inventory host. It is still added, because two customers may have close names.
        added = "would be added" if check_mode else "was added"
        warnings.append(
            f"customer '{name}' is not in the inventory and {added}, but a customer named "
            f"'{similar}' is. If you meant '{similar}', correct the name"
            f"{_case_hint(name, similar)} and remove '{name}' with state=absent"
        )
    params = _org_id_from_environment(stored, _blank_org_id_unset(params), warnings)
    check = licensing.plan_org_check(
        stored, params["org_id"], params["default_subscription_id"], params["default_site_url"]
    )

    result: Dict[str, Any] = {"org_read": check.needed, "subscriptions": [], "site_urls": []}
    if check.needed:
        if org_rows is not None and org_rows[0] == check.org_id:
            rows = org_rows[1]
        else:
            rows = read_org_licenses(client_factory(), name, check.org_id)
        result["subscriptions"] = licensing.distinct_subscriptions(rows)
        result["site_urls"] = licensing.distinct_site_urls(rows)
        if stored is not None and check.org_id != (stored.get("org_id") or None):
            params = _drop_former_org_defaults(stored, params, rows, check, warnings, check_mode)
            check = licensing.plan_org_check(
                stored, params["org_id"], params["default_subscription_id"],
                params["default_site_url"],
            )
        check_org_defaults(name, rows, check)

    changed, before, after = store.upsert_customer(
        name,
        org_id=params["org_id"],
        hierarchy=params["hierarchy"],
        default_subscription_id=params["default_subscription_id"],
        default_site_url=params["default_site_url"],
        device=choose_device(stored, params),
        dry_run=check_mode,
    )
    if (
        stored
        and stored.get("synced_at")
        and after
        and licensing.org_key(stored.get("org_id")) != licensing.org_key(after.get("org_id"))
    ):
        # The synced licenses, people and locations are those of the old org until the next
        # sync replaces them, so reports would show them under this customer. The same org
        # written in another form (base64 id or UUID) is no other org.
        would = "would keep" if check_mode else "keeps"
        previous = (
            f"its previous org '{stored['org_id']}'"
            if stored.get("org_id")
            else "the token's own org (no org_id was set)"
        )
        warnings.append(
            f"customer '{name}' {would} the licenses, people, locations and workspaces synced "
            f"from {previous} until its next sync: run ucops.webex.webex_license_sync for it "
            "now"
        )
    result.update(changed=changed, before=before, customer=after, warnings=warnings)
    return result


def _blank_org_id_unset(params: Mapping[str, Any]) -> Dict[str, Any]:
    """Return ``params`` with a blank org_id as not set, so that a stored org id is kept.

    Clearing the org id would make the next sync read the token's own org under this
    customer, and an inventory variable set to "" would fail or change every later run.
    """
    params = dict(params)
    if params.get("org_id") is not None and not str(params["org_id"]).strip():
        params["org_id"] = None
    return params


def _org_id_from_environment(
    stored: Optional[Mapping[str, Any]], params: Mapping[str, Any], warnings: List[str]
) -> Dict[str, Any]:
    """Apply WEBEX_ORG_ID (``org_id_from_env``) when the org_id option is not set.

    The variable names the org of a new customer (or of one stored with its name only). It
    does not move a stored customer: an environment left over from other work would
    otherwise re-point the customer, and its next sync would load another customer's org
    under its name.
    """
    params = dict(params)
    from_env = (params.pop("org_id_from_env", None) or "").strip() or None
    if params.get("org_id") is not None or from_env is None:
        return params
    untouched = stored is not None and not (
        stored.get("org_id") or stored.get("synced_at") or stored.get("default_subscription_id")
        or stored.get("default_site_url")
    )
    if stored is None or untouched:
        # A customer stored with nothing but its name (never synced, no defaults) has no
        # data of any org yet, so the variable names its org as for a new one.
        params["org_id"] = from_env
    elif (stored.get("org_id") or None) != from_env:
        current = stored.get("org_id") or "none (the token's own org)"
        warnings.append(
            f"WEBEX_ORG_ID is '{from_env}', but customer '{params['name']}' is stored with "
            f"org id {current}, so the variable was ignored: it names the org of a new "
            "customer only. Set the org_id option to move the customer to another org"
        )
    return params


def _drop_former_org_defaults(
    stored: Mapping[str, Any],
    params: Mapping[str, Any],
    rows: List[Dict],
    check: licensing.OrgCheck,
    warnings: List[str],
    check_mode: bool,
) -> Dict[str, Any]:
    """Clear stored defaults that the customer's new org lacks, unless options set them.

    Defaults name a subscription and a site URL of the former org, so after a corrected
    org id they would fail every later change of the customer until cleared by hand.
    """
    params = dict(params)
    subscriptions = set(licensing.distinct_subscriptions(rows))
    site_urls = {licensing.normalize_site_url(url) for url in licensing.distinct_site_urls(rows)}
    dropped = []
    for option, known, normalize in (
        ("default_subscription_id", subscriptions, licensing.normalize_subscription_id),
        ("default_site_url", site_urls, licensing.normalize_site_url),
    ):
        value = normalize(stored.get(option))
        if params.get(option) is None and value and value not in known:
            params[option] = ""
            dropped.append(f"{option} '{value}'")
    if dropped:
        cleared = "would be cleared" if check_mode else "were cleared"
        org = f"org '{check.org_id}'" if check.org_id else "the token's own org"
        warnings.append(
            f"customer '{params['name']}' moves to {org}, which lacks the stored "
            f"{' and '.join(dropped)} of its former org, so they {cleared}. Set the defaults "
            "of the new org with default_subscription_id and default_site_url (the "
            "ucops.webex.license_defaults role does)"
        )
    return params


def choose_device(stored: Optional[Mapping[str, Any]], params: Mapping[str, Any]) -> Optional[str]:
    """Return the device label to save: the option, else the stored label, else the default.

    A stored label that is the default of the old org id follows a change of org id.
    """
    if params.get("device") is not None:
        return params["device"]
    stored = stored or {}
    org_id = stored.get("org_id") if params.get("org_id") is None else params["org_id"] or None
    stored_device = stored.get("device")
    api_url = params.get("api_url")
    if stored_device and stored_device != default_device(api_url, stored.get("org_id")):
        return None
    return default_device(api_url, org_id)


def remove_customer(path: Optional[str], name: str, check_mode: bool) -> Dict[str, Any]:
    """Delete a customer with its synced data and history; a missing inventory is not created.

    Returns ``{"changed", "before", "customer": None}``.
    """
    if not os.path.exists(resolve_inventory_path(path)):
        return {"changed": False, "before": None, "customer": None}
    warnings = []
    with InventoryStore(path) as store:
        changed, before = store.delete_customer(name, dry_run=check_mode)
        similar = store.similar_customer_name(name) if before is None else None
        if store.upgrade_message():
            warnings.append(store.upgrade_message())
    if similar is not None:
        # Nothing to remove is a success, but with a close name stored it is most often a
        # typo that leaves the intended customer in place.
        warnings.append(
            f"customer '{name}' is not in the inventory, so nothing was removed, but a "
            f"customer named '{similar}' is. If you meant '{similar}', correct the name"
            f"{_case_hint(name, similar)}"
        )
    if before is not None:
        before = {key: before[key] for key in before if key in CUSTOMER_RESULT_FIELDS}
    return {"changed": changed, "before": before, "customer": None, "warnings": warnings}


def manage_customer(
    params: Mapping[str, Any],
    client_factory: Callable[[], WebexClient],
    check_mode: bool,
    diff_mode: bool,
) -> Dict[str, Any]:
    """Apply the webex_customer options and return the module result.

    Raises CustomerError or InventoryError; nothing is saved then.
    """
    # Kept as given, like name: a stripped new_name would differ from the name that later
    # tasks give. A blank new_name renames nothing.
    new_name = params.get("new_name")
    if new_name is not None and not new_name.strip():
        new_name = None
    if params["state"] == "absent":
        if new_name:
            raise CustomerError(
                f"new_name '{new_name}' renames a customer, which state=absent does not do; "
                "remove new_name or use state=present"
            )
        outcome = remove_customer(params["inventory_db"], params["name"], check_mode)
    else:
        path = resolve_inventory_path(params["inventory_db"])
        new_file = not os.path.exists(path)
        if new_file and new_name:
            raise CustomerError(
                f"customer '{params['name']}' cannot be renamed to '{new_name}': the inventory "
                f"{path} does not exist. Check inventory_db or WEBEX_INVENTORY_DB"
            )
        org_rows = None
        if new_file:
            # A new file has no customers yet, so WEBEX_ORG_ID names the org of this one.
            params = _org_id_from_environment(None, _blank_org_id_unset(params), [])
        if new_file and not check_mode:
            # Read and check the org before the file exists, so that a wrong org id or
            # default leaves no new, empty inventory behind.
            check = licensing.plan_org_check(
                None, params["org_id"], params["default_subscription_id"],
                params["default_site_url"],
            )
            if check.needed:
                rows = read_org_licenses(client_factory(), params["name"], check.org_id)
                check_org_defaults(params["name"], rows, check)
                org_rows = (check.org_id, rows)
        with open_store(params["inventory_db"], check_mode) as store:
            old_name = params["name"]
            renamed = False
            if new_name:
                # Checked first, applied last: a task that fails on another option leaves
                # the customer under its old name.
                renamed = store.rename_customer(old_name, new_name, dry_run=True)
                if not renamed:
                    params = dict(params, name=new_name)
            outcome = ensure_customer(store, client_factory, params, check_mode, org_rows)
            if renamed:
                if not check_mode:
                    store.rename_customer(old_name, new_name)
                outcome["changed"] = True
                outcome["before"] = dict(outcome["before"] or {}, name=old_name)
                outcome["customer"] = dict(outcome["customer"] or {}, name=new_name)
            _add_upgrade_warning(outcome, store)
        if new_file:
            # A mistyped inventory_db or WEBEX_INVENTORY_DB starts an empty inventory.
            created = "would be created" if check_mode else "was created"
            outcome["warnings"] = [
                f"the inventory database {path} did not exist and {created}. If you "
                "expected an existing inventory, check inventory_db or WEBEX_INVENTORY_DB"
            ] + outcome.get("warnings", [])

    result: Dict[str, Any] = {"changed": outcome["changed"], "customer": outcome["customer"]}
    if outcome.get("warnings"):
        result["warnings"] = outcome["warnings"]
    if outcome.get("org_read"):
        result["subscriptions"] = outcome["subscriptions"]
        result["site_urls"] = outcome["site_urls"]
    if diff_mode:
        result["diff"] = {"before": outcome["before"] or {}, "after": outcome["customer"] or {}}
    return result


def _case_hint(name: str, similar: str) -> str:
    """Explain a close name that differs only in case or in its Unicode form."""
    return licensing.name_likeness_hint(name, similar)


def _add_upgrade_warning(outcome: Dict[str, Any], store: InventoryStore) -> None:
    """Add the store's schema upgrade message, if any, to the outcome's warnings."""
    message = store.upgrade_message()
    if message:
        outcome["warnings"] = list(outcome.get("warnings") or []) + [message]
