"""devstack/bridge.py's redelivery: it keeps retrying until the function accepts the event, as the
platform's retry policy does, and gives up only after its retry period."""

import http.server
import threading
import time

import pytest

from devstack.bridge import deliver


@pytest.fixture
def function():
    """A stand-in endpoint that fails the first `failures` deliveries with a 500."""
    calls = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            calls.append(self.headers["ce-id"])
            self.send_response(500 if len(calls) <= server.failures else 204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.failures, server.calls = 0, calls
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def url(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/"


def test_the_same_event_is_redelivered_until_it_is_accepted(function):
    function.failures = 20  # far more than a fixed number of attempts would cover
    assert deliver(url(function), {"ce-id": "e1"}, {"name": "f.csv"}, period=30, first_delay=0.01, max_delay=0.02)
    assert function.calls == ["e1"] * 21


def test_delivery_gives_up_after_its_retry_period(function):
    function.failures = 10**6
    started = time.monotonic()
    assert not deliver(url(function), {"ce-id": "e2"}, {"name": "f.csv"}, period=1, first_delay=0.01, max_delay=0.1)
    assert 0.8 < time.monotonic() - started < 5 and len(function.calls) > 5
