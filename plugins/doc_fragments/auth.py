# Copyright: ucops.webex maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Connection and authentication options shared by every ucops.webex module."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  api_url:
    description:
      - Base URL of the Webex REST API, including the version path.
      - Must be an C(http://) or C(https://) URL with a host name, without a query string.
      - If not set, the E(WEBEX_API_URL) environment variable is used.
    type: str
    default: https://webexapis.com/v1
  access_token:
    description:
      - Webex access token of an administrator (personal token, integration or service app).
      - Sent in the C(Authorization) header as a bearer token, and never logged or returned.
      - White space around the token (such as the line break that ends a file or a YAML
        block) is removed. A token with a space, line break or non-ASCII character inside it
        is refused before any request, and the message does not show it.
      - Required unless O(client_id), O(client_secret) and O(refresh_token) are all set, in
        which case the module gets an access token by refresh.
      - If not set, the E(WEBEX_ACCESS_TOKEN) environment variable is used.
    type: str
  client_id:
    description:
      - Client ID of the Webex integration that issued O(refresh_token).
      - When O(client_id), O(client_secret) and O(refresh_token) are set, an access token that
        is rejected with HTTP 401 is refreshed once and the request is sent again.
      - If not set, the E(WEBEX_CLIENT_ID) environment variable is used.
    type: str
  client_secret:
    description:
      - Client secret of the Webex integration.
      - If not set, the E(WEBEX_CLIENT_SECRET) environment variable is used.
    type: str
  refresh_token:
    description:
      - OAuth refresh token of the Webex integration.
      - A new refresh token returned by the refresh replaces it for the rest of the task, but is
        neither written anywhere nor returned. Each task refreshes on its own, so an
        integration that revokes the old refresh token at each refresh can serve one task
        only; get an access token before the run and set O(access_token) instead.
      - If not set, the E(WEBEX_REFRESH_TOKEN) environment variable is used.
    type: str
  org_id:
    description:
      - ID of the Webex organization to work on, sent as C(orgId).
      - Partner administrators set it to a customer org. If not set, the token's own org is used.
      - If not set, the E(WEBEX_ORG_ID) environment variable is used.
    type: str
  validate_certs:
    description:
      - Whether to verify the TLS certificate of O(api_url).
      - Set to V(false) only for tests. To trust a private CA, point the E(REQUESTS_CA_BUNDLE)
        environment variable at a CA bundle instead.
      - If not set, the E(WEBEX_VALIDATE_CERTS) environment variable is used.
    type: bool
    default: true
  timeout:
    description:
      - Timeout in seconds for connecting and for each read of one HTTP request.
    type: float
    default: 30
  proxy_url:
    description:
      - URL of an HTTP(S) proxy for the API requests, for example C(http://proxy.example.com:3128).
      - If not set, the E(HTTPS_PROXY), E(HTTP_PROXY) and E(NO_PROXY) environment variables
        apply. The module reads them, and E(REQUESTS_CA_BUNDLE), once when the task starts.
        It does not read C(~/.netrc).
      - The value is not logged or returned, since it may carry a proxy user name and
        password.
    type: str
  max_retry_wait:
    description:
      - Maximum total time in seconds that one task spends waiting before retries.
      - Rate-limited requests (HTTP 429), and locked ones (HTTP 423) that send C(Retry-After),
        wait as long as C(Retry-After) says, capped at 300 seconds per wait. Reads (GET)
        that fail with HTTP 502, 503, 504 or a connection error are retried up to 4 times
        after 0.5, 1, 2 and 4 seconds.
      - When the next wait would exceed this budget, the task fails and says so.
      - Changes (POST, PUT, PATCH) are never retried after a server error or a connection
        error once the request was sent, but they are retried on HTTP 429 and on HTTP 423
        with C(Retry-After).
    type: float
    default: 300
requirements:
  - python >= 3.8 (on the host that runs the module; ansible-core 2.20 and newer need 3.9)
  - python requests >= 2.25 (on the host that runs the module)
"""
