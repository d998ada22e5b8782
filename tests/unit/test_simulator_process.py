"""The simulator as a real process: startup line, HTTP on a free port, clean stop."""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_PATH = os.path.join(REPO_ROOT, "tests", "simulator", "fixtures", "demo.json")
READY = re.compile(r"^Webex API simulator listening on (http://127\.0\.0\.1:(\d+)/v1)\n$")


def start(*args):
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.simulator", "--fixture", DEMO_PATH, "--port", "0", *args],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    line = process.stdout.readline()
    match = READY.match(line)
    if match is None:
        process.kill()
        raise AssertionError(f"unexpected startup output {line!r}: {process.stderr.read()}")
    return process, match.group(1)


def get(url, token="demo-partner-token"):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_process_serves_and_stops(stop_signal):
    process, api_url = start("--throttle-every", "3", "--retry-after", "4")
    try:
        first = get(f"{api_url}/organizations")
        second = get(f"{api_url}/roles")
        third = get(f"{api_url}/roles")
        expired = get(f"{api_url}/roles", token="demo-expired-token")
    finally:
        process.send_signal(stop_signal)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    remaining_stdout = process.stdout.read()

    assert first[0] == 200
    assert len(first[2]["items"]) == 4
    assert first[1]["Trackingid"].startswith("ROUTER_")
    assert second[0] == 200
    assert third[0] == 429
    assert third[1]["Retry-After"] == "4"
    assert expired[0] == 401
    assert process.returncode == 0
    assert remaining_stdout == ""


def test_process_link_is_absolute():
    process, api_url = start()
    try:
        status, headers, body = get(f"{api_url}/organizations")
        cobalt = next(o["id"] for o in body["items"] if o["displayName"] == "Cobalt Health")
        status, headers, body = get(f"{api_url}/people?orgId={cobalt}&max=1000")
        next_url = headers["Link"].split(";")[0].strip()[1:-1]
        status2, _headers2, body2 = get(next_url)
    finally:
        process.terminate()
        process.wait(timeout=10)

    assert next_url.startswith(api_url + "/people?")
    assert status2 == 200
    assert len(body2["items"]) == 1000
    assert {p["id"] for p in body["items"]}.isdisjoint(p["id"] for p in body2["items"])


def test_process_missing_fixture_fails():
    result = subprocess.run(
        [sys.executable, "-m", "tests.simulator", "--fixture", "/nonexistent/demo.json"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=30, check=False,
    )

    assert result.returncode == 2
    assert result.stdout == ""
    assert "Cannot read fixture" in result.stderr


def test_process_many_parallel_requests():
    process, api_url = start()
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda _: get(f"{api_url}/licenses")[0], range(40)))
    finally:
        process.terminate()
        process.wait(timeout=10)

    assert results == [200] * 40


def start_with_fixture(path):
    """Start the simulator on a fixture that it must refuse; return the finished process."""
    return subprocess.run(
        [sys.executable, "-m", "tests.simulator", "--fixture", str(path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=30, check=False,
    )


def test_process_duplicate_email_fixture_fails(tmp_path):
    fixture = {"organizations": [{"id": "ORG-1", "displayName": "Acme", "people": [
        {"id": "P1", "emails": ["ann@acme.example"]},
        {"id": "P2", "emails": ["Ann@Acme.example"]},
    ]}]}
    path = tmp_path / "fixture.json"
    path.write_text(json.dumps(fixture))

    result = start_with_fixture(path)

    assert result.returncode == 2
    assert result.stdout == ""
    assert f"Invalid fixture {path}" in result.stderr
    assert "people 'P1' and 'P2' share the email address 'Ann@Acme.example'" in result.stderr


def test_process_invalid_json_fixture_fails(tmp_path):
    path = tmp_path / "fixture.json"
    path.write_text('{"organizations": [')

    result = start_with_fixture(path)

    assert result.returncode == 2
    assert f"Invalid fixture {path}" in result.stderr


def test_process_bad_fixture_names_place(tmp_path):
    fixture = {"organizations": [{"id": "ORG-1", "displayName": "Acme", "people": [
        {"emails": ["ann@acme.example"]},
    ]}]}
    path = tmp_path / "fixture.json"
    path.write_text(json.dumps(fixture))

    result = start_with_fixture(path)

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert (f"Invalid fixture {path}: 1 problem(s): organizations[0] ('Acme').people[0]: id "
            "is missing or null, expected non-empty text") in result.stderr
