"""Run the Webex API simulator: `python -m tests.simulator --fixture FILE [options]`.

Stdout carries exactly one line, `Webex API simulator listening on http://HOST:PORT/v1`
(https with --tls-cert and --tls-key), once the socket accepts connections. Errors go to
stderr. SIGTERM and SIGINT stop it cleanly.
"""

from __future__ import annotations

import argparse
import signal
import ssl
import sys
import threading

from werkzeug.serving import WSGIRequestHandler, make_server

from .app import create_app


class QuietRequestHandler(WSGIRequestHandler):
    """Request handler that logs errors but not every request."""

    def log_request(self, code="-", size="-"):
        pass


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.simulator", description="Serve a stateful Webex API simulator."
    )
    parser.add_argument("--fixture", required=True, help="fixture JSON file to load")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one")
    parser.add_argument(
        "--throttle-every", type=int, default=None, metavar="N",
        help="answer every Nth /v1 request with 429",
    )
    parser.add_argument(
        "--retry-after", type=int, default=1, metavar="S",
        help="Retry-After seconds sent with 429 responses (default 1)",
    )
    parser.add_argument(
        "--fail-every", type=int, default=None, metavar="N",
        help="answer every Nth /v1 request with --fail-status",
    )
    parser.add_argument(
        "--fail-status", type=int, default=503, metavar="CODE",
        help="HTTP status of --fail-every failures (default 503)",
    )
    parser.add_argument(
        "--latency-ms", type=int, default=0, metavar="MS",
        help="delay added to every /v1 request, in milliseconds",
    )
    parser.add_argument(
        "--tls-cert", metavar="FILE",
        help="serve HTTPS with this PEM certificate (chain first); needs --tls-key",
    )
    parser.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert")
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key must be given together")
    return args


def load_tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """Return a server TLS context with the certificate and key; raises OSError or SSLError."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with open(args.fixture, encoding="utf-8") as handle:
            fixture_text = handle.read()
    except OSError as exc:
        print(f"Cannot read fixture {args.fixture}: {exc}", file=sys.stderr)
        return 2

    startup_faults = {
        "throttle_every": args.throttle_every,
        "retry_after": args.retry_after,
        "fail_every": args.fail_every,
        "fail_status": args.fail_status,
        "latency_ms": args.latency_ms,
    }
    tls_context = None
    if args.tls_cert:
        try:
            tls_context = load_tls_context(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as exc:
            print(f"Cannot load TLS certificate {args.tls_cert} or key {args.tls_key}: {exc}",
                  file=sys.stderr)
            return 2

    try:
        app = create_app(fixture_text, startup_faults)
    except ValueError as exc:
        print(f"Invalid fixture {args.fixture}: {exc}", file=sys.stderr)
        return 2
    server = make_server(
        args.host, args.port, app, threaded=True, request_handler=QuietRequestHandler,
        ssl_context=tls_context,
    )

    def stop(signum, frame):
        # shutdown() waits for serve_forever() to return, so it must run in another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    scheme = "https" if tls_context else "http"
    api_url = f"{scheme}://{args.host}:{server.server_port}/v1"
    print(f"Webex API simulator listening on {api_url}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
