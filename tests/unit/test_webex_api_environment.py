"""The client reads proxy and CA bundle variables once, and never ~/.netrc.

A small HTTP server on 127.0.0.1 records the requests it gets, playing the API and, in the
proxy test, an HTTP proxy (a proxy gets the absolute URL in the request line).
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.ucops.webex.plugins.module_utils.webex_api import (
    WebexApiError,
    WebexClient,
)

TOKEN = "env-test-token"


class RecordingHandler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the name http.server calls
        self.server.seen.append(
            {"path": self.path, "authorization": self.headers.get("Authorization")}
        )
        body = json.dumps({"items": [{"id": "L1", "name": "License"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        return


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), RecordingHandler)
    httpd.seen = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def clean_environment(monkeypatch, tmp_path):
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
    ):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("NETRC", raising=False)
    return tmp_path


def test_proxy_variable_read_at_start(server, clean_environment, monkeypatch):
    proxy = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("HTTP_PROXY", proxy)
    client = WebexClient("http://api.invalid/v1", access_token=TOKEN)
    # Unset after the client was built: the value read at start still applies.
    monkeypatch.delenv("HTTP_PROXY")

    licenses = client.list_licenses()

    assert [item["id"] for item in licenses] == ["L1"]
    assert server.seen[0]["path"] == "http://api.invalid/v1/licenses"


def test_no_proxy_host_bypasses_proxy(server, clean_environment, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    client = WebexClient(f"http://127.0.0.1:{server.server_address[1]}/v1", access_token=TOKEN)

    client.list_licenses()

    assert server.seen[0]["path"] == "/v1/licenses"


@pytest.mark.parametrize("from_option", [False, True])
def test_proxy_error_names_its_source(clean_environment, monkeypatch, from_option):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{probe.getsockname()[1]}"
    # Nothing listens on the port any more, so the proxy refuses the connection.
    options = {"proxy_url": proxy} if from_option else {}
    if not from_option:
        monkeypatch.setenv("HTTP_PROXY", proxy)
    client = WebexClient("http://api.invalid/v1", access_token=TOKEN, max_retry_wait=0,
                         **options)

    with pytest.raises(WebexApiError) as raised:
        client.list_licenses()

    message = str(raised.value)
    if from_option:
        assert "cannot connect through proxy_url" in message
    else:
        assert "proxy_url" not in message
        assert "the proxy that the environment names for http://api.invalid/v1" in message
        assert "NO_PROXY" in message


def test_ca_bundle_variable_read_at_start(clean_environment, monkeypatch):
    bundle = clean_environment / "ca.pem"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    assert WebexClient("https://api.invalid/v1", access_token=TOKEN)._verify == str(bundle)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.setenv("CURL_CA_BUNDLE", str(bundle))
    assert WebexClient("https://api.invalid/v1", access_token=TOKEN)._verify == str(bundle)


def test_ca_bundle_ignored_without_validation(clean_environment, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nowhere/ca.pem")
    client = WebexClient("https://api.invalid/v1", access_token=TOKEN, validate_certs=False)
    assert client._verify is False


def test_netrc_does_not_replace_token(server, clean_environment):
    # requests with trust_env would send these credentials instead of the bearer token.
    (clean_environment / ".netrc").write_text("machine 127.0.0.1 login user password secret\n")
    (clean_environment / ".netrc").chmod(0o600)
    client = WebexClient(f"http://127.0.0.1:{server.server_address[1]}/v1", access_token=TOKEN)

    client.list_licenses()

    assert server.seen[0]["authorization"] == f"Bearer {TOKEN}"
