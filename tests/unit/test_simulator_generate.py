"""Fixture generator: determinism, realism and the demo fixture."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

from tests.simulator.generate import build_demo_fixture, build_fixture, fixture_text

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_PATH = os.path.join(REPO_ROOT, "tests", "simulator", "fixtures", "demo.json")


def decode(webex_id: str) -> str:
    return base64.b64decode(webex_id + "=" * (-len(webex_id) % 4)).decode()


def run_generator(tmp_path, name, *args) -> bytes:
    out = tmp_path / name
    subprocess.run(
        [sys.executable, "-m", "tests.simulator.generate", "--out", str(out), *args],
        cwd=REPO_ROOT, check=True, timeout=120,
    )
    return out.read_bytes()


def test_generator_cli_deterministic(tmp_path):
    args = ("--users", "300", "--seed", "5", "--locations", "4", "--workspaces", "20",
            "--customers", "2")
    first = run_generator(tmp_path, "a.json", *args)
    second = run_generator(tmp_path, "b.json", *args)
    other_seed = run_generator(tmp_path, "c.json", "--users", "300", "--seed", "6",
                               "--locations", "4", "--workspaces", "20", "--customers", "2")

    assert first == second
    assert first != other_seed
    fixture = json.loads(first)
    assert [len(org["people"]) for org in fixture["organizations"]] == [5, 300, 300]


def test_generator_license_mix():
    fixture = build_fixture(2000, seed=3, licenses=20, subscriptions=2, site_urls=2,
                            locations=10, workspaces=50)
    org = fixture["organizations"][0]
    licenses = org["licenses"]
    names = [lic["name"] for lic in licenses]

    assert len(licenses) == 20
    assert {lic["subscriptionId"] for lic in licenses if "subscriptionId" in lic} == {
        "Sub-C1X100", "Sub-C1X101"}
    assert any("subscriptionId" not in lic for lic in licenses)
    assert names.count("Webex Calling - Professional") == 2
    meeting_sites = {lic["siteUrl"] for lic in licenses if lic.get("siteUrl")}
    assert meeting_sites == {"example-1.webex.com", "example-2.webex.com"}
    assert any(lic["consumedByUsers"] is None for lic in licenses)


def test_generator_ids_real_formats():
    fixture = build_fixture(50, seed=3, locations=2, workspaces=3)
    org = fixture["organizations"][0]
    org_uuid = decode(org["id"]).rsplit("/", 1)[1]

    assert decode(org["id"]).startswith("ciscospark://us/ORGANIZATION/")
    assert all(decode(p["id"]).startswith("ciscospark://us/PEOPLE/") for p in org["people"])
    assert all(decode(loc["id"]).startswith("ciscospark://us/LOCATION/")
               for loc in org["locations"])
    assert all(decode(ws["id"]).startswith("ciscospark://us/PLACES/") for ws in org["workspaces"])
    assert all(decode(r["id"]).startswith("ciscospark://us/ROLE/") for r in org["roles"])
    for lic in org["licenses"]:
        uri = decode(lic["id"])
        assert uri.startswith(f"ciscospark://us/LICENSE/{org_uuid}:")
        assert "=" not in lic["id"]
        if lic.get("siteUrl"):
            assert uri.endswith("_" + lic["siteUrl"])


def test_generator_counters_consistent():
    fixture = build_fixture(500, seed=9, locations=5, workspaces=40)
    org = fixture["organizations"][0]
    for lic in org["licenses"]:
        if lic["name"].startswith("Hybrid -") or lic["consumedByUsers"] is None:
            continue
        users = sum(1 for p in org["people"] if lic["id"] in p["licenses"])
        workspaces = sum(
            1 for ws in org["workspaces"]
            if lic["id"] in ws["calling"].get("webexCalling", {}).get("licenses", [])
        )
        assert lic["consumedByUsers"] == users, lic["name"]
        assert lic["consumedByWorkspaces"] == workspaces, lic["name"]
        assert lic["consumedUnits"] <= lic["totalUnits"], lic["name"]


def test_generator_calling_people_have_locations():
    fixture = build_fixture(300, seed=2, locations=5, workspaces=0)
    org = fixture["organizations"][0]
    calling = {lic["id"] for lic in org["licenses"]
               if lic["name"] in ("Webex Calling - Professional", "Webex Calling - Standard")}
    location_ids = {loc["id"] for loc in org["locations"]}

    callers = [p for p in org["people"] if calling & set(p["licenses"])]
    assert callers
    assert all(p["locationId"] in location_ids and p["extension"] for p in callers)
    assert all(isinstance(p["invitePending"], bool) for p in org["people"])


def test_demo_file_matches_generator():
    with open(DEMO_PATH, encoding="utf-8") as handle:
        committed = handle.read()

    assert committed == fixture_text(build_demo_fixture())


def test_demo_fixture_contents():
    fixture = build_demo_fixture()
    names = [org["displayName"] for org in fixture["organizations"]]
    by_name = {org["displayName"]: org for org in fixture["organizations"]}
    tokens = {t["accessToken"]: t for t in fixture["tokens"]}
    borealis = by_name["Borealis Logistics"]
    subscription_of = {lic["id"]: lic.get("subscriptionId") for lic in borealis["licenses"]}

    assert names == ["Keystone Partner Services", "Alpine Dental", "Borealis Logistics",
                     "Cobalt Health"]
    assert tokens["demo-partner-token"]["orgIds"] == [o["id"] for o in fixture["organizations"]]
    assert tokens["demo-alpine-token"]["orgIds"] == [by_name["Alpine Dental"]["id"]]
    assert tokens["demo-expired-token"]["expiresAt"] < "2025"
    assert len(by_name["Cobalt Health"]["people"]) > 2000
    assert len({lic.get("siteUrl") for lic in by_name["Alpine Dental"]["licenses"]} - {None}) == 1
    assert any(
        {"Sub-BOR100", "Sub-BOR101"} <= {subscription_of[i] for i in person["licenses"]}
        for person in borealis["people"]
    )
