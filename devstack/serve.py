"""Serve the gateway with gunicorn, threaded as a deployed function instance is."""

import argparse
import os
import subprocess
import sys
import time

import requests
from gunicorn.app.base import BaseApplication

from devstack import processes


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
