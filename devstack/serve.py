"""Serve the gateway with gunicorn, threaded as a deployed function instance is."""

import argparse
import json
import os
import subprocess
import sys
import time

import requests
from gunicorn import util
from gunicorn.app.base import BaseApplication
from gunicorn.http import errors as http_errors
from gunicorn.workers.gthread import ThreadWorker

from devstack import processes

MAX_REQUEST_LINE = 4094  # bytes of "GET /path?query HTTP/1.1"; longer is a JSON 414

# Requests gunicorn refuses before any function sees them: (status, reason, field at fault).
_REFUSED = [
    (http_errors.LimitRequestLine, 414, "URI Too Long", "path"),
    (http_errors.LimitRequestHeaders, 431, "Request Header Fields Too Large", "headers"),
    (http_errors.UnsupportedTransferCoding, 501, "Not Implemented", "headers"),
    (http_errors.ExpectationFailed, 417, "Expectation Failed", "headers"),
    (
        (http_errors.InvalidRequestLine, http_errors.InvalidRequestMethod, http_errors.InvalidHTTPVersion),
        400,
        "Bad Request",
        "path",
    ),
    (
        (http_errors.InvalidHeader, http_errors.InvalidHeaderName, http_errors.ObsoleteFolding),
        400,
        "Bad Request",
        "headers",
    ),
    (
        (http_errors.InvalidChunkSize, http_errors.ChunkMissingTerminator, http_errors.InvalidChunkExtension),
        400,
        "Bad Request",
        "body",
    ),
]


def _refusal(exc: Exception) -> tuple[int, str, str] | None:
    if isinstance(exc, (http_errors.InvalidResponseHeader, http_errors.InvalidResponseHeaderName)):
        return None  # a header the application sent: not the client's fault
    for kinds, status, reason, field in _REFUSED:
        if isinstance(exc, kinds):
            return status, reason, field
    return None


class JsonErrorWorker(ThreadWorker):
    """gunicorn's threaded worker, answering the requests it refuses itself (a request line over
    MAX_REQUEST_LINE, raw non-ASCII bytes in the path, bad headers) in JSON like every other error,
    rather than with its HTML page."""

    def handle_error(self, req, client, addr, exc):
        refused = _refusal(exc)
        if refused is None:  # the server's own fault: gunicorn's 500
            return super().handle_error(req, client, addr, exc)
        status, reason, field = refused
        self.log.warning("refused a request: %s", exc)
        body = json.dumps({"error": f"{reason.lower()}: {str(exc)[:200]}", "field": field}).encode()
        head = (
            f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        try:
            util.write_nonblock(client, head.encode("latin1") + body)
        except OSError:
            self.log.debug("failed to send the error answer")


class _Server(BaseApplication):
    def __init__(self, options: dict):
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from devstack.gateway import app

        return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument(
        "--threads", type=int, default=int(os.environ.get("THREADS", "16")), help="as THREADS in the deployed functions"
    )
    args = parser.parse_args()
    _Server(
        {
            "bind": f"127.0.0.1:{args.port}",
            "workers": 1,
            "threads": args.threads,
            "worker_class": "devstack.serve.JsonErrorWorker",
            "limit_request_line": MAX_REQUEST_LINE,
            "timeout": 0,
            "accesslog": None,
            "loglevel": "warning",
        }
    ).run()


def wait_for(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    """Until `url` answers at all; fails if `process` exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.get(url, timeout=10)
            return
        except requests.RequestException:
            if process.poll() is not None:
                raise RuntimeError(f"the server for {url} exited with {process.returncode}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing answered at {url} within {timeout:.0f} s") from None
            time.sleep(0.2)


def launch(port: int, env: dict, log=None) -> subprocess.Popen:
    """The gateway in a child process group of its own (gunicorn's master and worker)."""
    return processes.spawn(
        [sys.executable, "-m", "devstack.serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT if log else None,
    )


def start_in_background(port: int, env: dict, log=None, timeout: float = 60):
    """Start the gateway in a child process and wait until it answers; returns (process, url)."""
    process = launch(port, env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/is-alive", process, timeout)
    except BaseException:
        processes.stop(process)
        raise
    return process, url


if __name__ == "__main__":
    main()
