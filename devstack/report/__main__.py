"""`make report`: an HTML page with PNG charts of what the service is doing, from Firestore.

Where it reads, first match wins:
1. FIRESTORE_EMULATOR_HOST in the environment: that emulator (project GOOGLE_CLOUD_PROJECT);
2. `--project ID`: that Google Cloud project's Firestore (application default credentials);
3. a running `make run` (its addresses in local-results/.devstack.json): the local stack;
4. GOOGLE_CLOUD_PROJECT in the environment: that project's Firestore.

    python -m devstack.report [--since 7d] [--max-clicks 50000] [--max-episodes 20000] [--max-offers 20]
                              [--out reports/report.html] [--project ID]
"""

import argparse
import datetime
import json
import os
import pathlib
import re
import socket
import sys

import numpy as np

from devstack.report import data, page
from devstack.run import STATE_FILE

DEFAULT_OUT = pathlib.Path("reports/report.html")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str, now: datetime.datetime | None = None) -> datetime.datetime:
    """'90m', '24h', '7d', '2w' back from now, or an ISO date/time (UTC unless it names a zone)."""
    now = now or datetime.datetime.now(datetime.UTC)
    duration = _DURATION.match(value)
    if duration:
        return now - datetime.timedelta(**{_UNITS[duration.group(2)]: float(duration.group(1))})
    try:
        moment = datetime.datetime.fromisoformat(value.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--since: {value!r} is neither like 24h / 7d nor an ISO date") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def _answers(host_port: str) -> bool:
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=2):
            return True
    except (OSError, ValueError):
        return False


def connect(project: str | None) -> str:
    """Point the Firestore client at the source (see the module docstring); returns its description."""
    if os.environ.get("FIRESTORE_EMULATOR_HOST"):
        os.environ.setdefault("GOOGLE_CLOUD_PROJECT", "offer-bandits-local")
        return (
            f"Firestore emulator {os.environ['FIRESTORE_EMULATOR_HOST']}, project {os.environ['GOOGLE_CLOUD_PROJECT']}"
        )
    if project:
        os.environ["GOOGLE_CLOUD_PROJECT"] = project
        return f"Firestore of Google Cloud project {project}"
    if STATE_FILE.exists():
        state = json.loads(STATE_FILE.read_text())
        host = state["firestore_emulator_host"]
        if not _answers(host):
            raise SystemExit(
                f"{STATE_FILE} names a Firestore emulator at {host} that does not answer: is `make run` up?"
            )
        os.environ.update(FIRESTORE_EMULATOR_HOST=host, GOOGLE_CLOUD_PROJECT=state["project"])
        return f"the local stack (`make run`): Firestore emulator {host}, project {state['project']}"
    if os.environ.get("GOOGLE_CLOUD_PROJECT"):
        return f"Firestore of Google Cloud project {os.environ['GOOGLE_CLOUD_PROJECT']}"
    raise SystemExit("Nothing to report on: start `make run` (and `make traffic`), or set GOOGLE_CLOUD_PROJECT.")


def arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack.report", description=__doc__.split("\n")[0])
    parser.add_argument("--since", type=parse_since, default="7d", help="window start: 24h, 7d, or an ISO date")
    parser.add_argument("--max-clicks", type=int, default=50_000, help="newest click documents read at most")
    parser.add_argument("--max-episodes", type=int, default=20_000, help="newest episodes read at most")
    parser.add_argument("--max-offers", type=int, default=20, help="most clicked offers given their own charts")
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT, help="the HTML file (charts go beside it)")
    parser.add_argument("--project", help="read this Google Cloud project's Firestore rather than the local stack")
    parser.add_argument("--seed", type=int, default=None, help="seed of the Monte Carlo draws (default: random)")
    args = parser.parse_args(argv)
    for name in ("max_clicks", "max_episodes", "max_offers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def build(db, out: pathlib.Path, since: datetime.datetime, limits: page.Limits, source: str, seed=None) -> list:
    """Read, then write the page and its charts; returns the PNG paths."""
    found = data.read(db, since, limits.max_clicks, limits.max_episodes, limits.max_offers)
    out.parent.mkdir(parents=True, exist_ok=True)
    return page.render(found, out, limits, source, np.random.default_rng(seed))


def main(argv=None) -> int:
    args = arguments(argv)
    source = connect(args.project)
    from shared.firestore_client import get_db  # after connect(): the client reads the environment

    limits = page.Limits(args.max_clicks, args.max_episodes, args.max_offers)
    pngs = build(get_db(), args.out, args.since, limits, source, args.seed)
    print(f"Report from {source}:\n  {args.out.resolve().as_uri()}\n  charts: {pngs[0].parent}/ ({len(pngs)} PNG)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
