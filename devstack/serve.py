"""Serve the gateway with gunicorn, threaded as a deployed function instance is."""
import argparse
import os

from gunicorn.app.base import BaseApplication


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
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    _Server({
        "bind": f"127.0.0.1:{args.port}",
        "workers": 1,
        "threads": args.threads,
        "timeout": 0,
        "accesslog": None,
        "loglevel": "warning",
    }).run()


if __name__ == "__main__":
    main()
