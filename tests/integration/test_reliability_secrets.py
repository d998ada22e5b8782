"""No secret reaches the output, the results or the inventory file, even at -vvvv on failures."""

from __future__ import annotations

import json
import re

from tests.integration.reliability_support import BOREALIS

CUSTOMER = "Borealis Logistics"
ACCESS_TOKEN = "demo-partner-token"
EXPIRED_TOKEN = "demo-expired-token"
CLIENT_SECRET = "demo-client-secret"
REFRESH_TOKEN = "demo-refresh-token"
STALE_REFRESH_TOKEN = "stale-refresh-token-0451"
WRONG_CLIENT_SECRET = "wrong-client-secret-0451"
SECRETS = (ACCESS_TOKEN, EXPIRED_TOKEN, CLIENT_SECRET, REFRESH_TOKEN, STALE_REFRESH_TOKEN,
           WRONG_CLIENT_SECRET)
# Access tokens that the simulator issues on refresh.
ISSUED_TOKEN = re.compile(rb"sim-access-[0-9a-f]{16,}")


def credentials(simulator, access_token=ACCESS_TOKEN, client_secret=CLIENT_SECRET,
                refresh_token=REFRESH_TOKEN) -> dict:
    return {"api_url": simulator.api_url, "access_token": access_token,
            "client_id": "demo-client-id", "client_secret": client_secret,
            "refresh_token": refresh_token, "max_retry_wait": 5}


def task(title: str, module: str, args: dict, **options) -> dict:
    return {"name": title, f"ucops.webex.{module}": dict(args, **options),
            "ignore_errors": True}


def test_no_secret_in_output_results_or_store(simulator, run_playbook, inventory_db):
    creds = credentials(simulator)
    holder = next(p for p in BOREALIS["people"] if p.get("locationId"))["emails"][0]
    simulator.set_faults(rules=[
        # The first people request gets 401, so the sync refreshes its access token.
        {"method": "GET", "path": "/v1/people", "status": 401, "times": 1},
        # The second sync fails on locations.
        {"method": "GET", "path": "/v1/locations", "status": 500, "skip": 1, "times": 1},
    ])

    run = run_playbook([
        task("customer", "webex_customer", creds, name=CUSTOMER, org_id=BOREALIS["id"],
             default_subscription_id="Sub-BOR100", default_site_url="borealis.webex.com"),
        task("customer bad default", "webex_customer", creds, name=CUSTOMER,
             org_id=BOREALIS["id"], default_subscription_id="Sub-NONE"),
        task("sync with refresh", "webex_license_sync", creds, customer=CUSTOMER),
        task("sync failing", "webex_license_sync", creds, customer=CUSTOMER),
        task("info live", "webex_license_info", creds, org_id=BOREALIS["id"]),
        task("info unknown customer", "webex_license_info", creds, source="inventory",
             customer="Nobody Inc"),
        task("user license", "webex_user_license", creds, customer=CUSTOMER, user=holder,
             licenses=["Advanced Messaging"]),
        task("user license unknown user", "webex_user_license", creds, customer=CUSTOMER,
             user="nobody@borealis.example.com", licenses=["Advanced Messaging"]),
        task("stale refresh token", "webex_license_info",
             credentials(simulator, access_token=EXPIRED_TOKEN,
                         refresh_token=STALE_REFRESH_TOKEN)),
        task("wrong client secret", "webex_license_sync",
             credentials(simulator, access_token=EXPIRED_TOKEN,
                         client_secret=WRONG_CLIENT_SECRET), customer=CUSTOMER),
    ], verbosity=4)

    outcomes = {record["task"]: record["failed"] for record in run.results}
    assert outcomes == {
        "customer": False, "customer bad default": True, "sync with refresh": False,
        "sync failing": True, "info live": False, "info unknown customer": True,
        "user license": False, "user license unknown user": True,
        "stale refresh token": True, "wrong client secret": True,
    }, run.stdout[-3000:]
    assert run.task("sync with refresh")["result"]["api_requests"]["refreshes"] == 1
    assert "Refreshing the access token failed" in run.task("stale refresh token")["result"]["msg"]

    texts = {
        "stdout": run.stdout.encode(),
        "stderr": run.stderr.encode(),
        "results": json.dumps(run.results).encode(),
    }
    store_files = sorted(inventory_db.parent.glob(inventory_db.name + "*"))
    assert inventory_db in store_files
    for path in store_files:
        texts[path.name] = path.read_bytes()
    assert b"<localhost> EXEC" in texts["stdout"]
    assert b"VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in texts["stdout"]
    for source, data in texts.items():
        for secret in SECRETS:
            assert secret.encode() not in data, f"{secret} found in {source}"
        assert not ISSUED_TOKEN.search(data), f"an issued access token found in {source}"
        assert b"Bearer " not in data, f"an Authorization header found in {source}"


def test_token_with_line_break_neither_fails_nor_leaks(simulator, run_playbook, inventory_db):
    """A token that ends in a line break (a file or a YAML block) is used without it, and
    one with a line break inside is rejected. No token and no proxy_url password appears
    in the output or the store."""
    inside = "demo-partner\ntoken"
    proxy_password = "proxy-pw-0451"
    creds = {"api_url": simulator.api_url, "max_retry_wait": 5}
    run = run_playbook([
        task("customer", "webex_customer", creds, access_token=ACCESS_TOKEN + "\n",
             name=CUSTOMER, org_id=BOREALIS["id"]),
        task("sync broken token", "webex_license_sync", creds, access_token=inside,
             customer=CUSTOMER),
        task("proxy password", "webex_license_info", creds, access_token=ACCESS_TOKEN,
             org_id=BOREALIS["id"], timeout=2, max_retry_wait=0,
             proxy_url=f"http://proxyuser:{proxy_password}@127.0.0.1:9"),
    ], verbosity=3)

    assert not run.task("customer")["failed"], run.task("customer")["result"]
    message = run.task("sync broken token")["result"]["msg"]
    assert "invalid access_token (WEBEX_ACCESS_TOKEN)" in message, message
    assert run.task("proxy password")["failed"]

    texts = {"stdout": run.stdout, "results": json.dumps(run.results)}
    store_files = sorted(inventory_db.parent.glob(inventory_db.name + "*"))
    texts.update({path.name: path.read_bytes().decode("latin-1") for path in store_files})
    for source, text in texts.items():
        assert ACCESS_TOKEN not in text, source
        assert "demo-partner" not in text, source
        assert proxy_password not in text, source
