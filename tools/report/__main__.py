"""`make report`: an HTML page with PNG charts of what the service is doing, and of what it earns
over the holdout.

Where it reads: the decision log (tools/analytics/warehouse.py: `--log FILE`, `--project ID`'s
BigQuery dataset, the running `make run`'s DuckDB file, GOOGLE_CLOUD_PROJECT); with `--firestore`,
the documents as every tool finds them (tools/target.py), without the holdout's sections.

    python -m tools.report [--since 7d] [--max-clicks 50000] [--max-episodes 20000] [--max-offers 20]
                              [--min-clicks 30] [--out reports/report.html] [--log FILE | --project ID]
                              [--firestore] [--tenant T]
"""

import argparse
import datetime
import pathlib
import re
import sys

import numpy as np

from shared.platform.namespace import ROOT, Namespace
from tools import target
from tools.analytics import warehouse
from tools.report import data, page, proof, ranking

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


def connect(project: str | None) -> str:
    """Point the Firestore client at the source (tools/target.py); returns its description."""
    return target.connect(project, "start `make run` (and `make traffic`), or set GOOGLE_CLOUD_PROJECT").description


def arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.report", description=__doc__.split("\n")[0])
    parser.add_argument("--since", type=parse_since, default="7d", help="window start: 24h, 7d, or an ISO date")
    parser.add_argument("--max-clicks", type=int, default=50_000, help="newest click documents read at most")
    parser.add_argument("--max-episodes", type=int, default=20_000, help="newest episodes read at most")
    parser.add_argument("--max-offers", type=int, default=20, help="most clicked offers given their own charts")
    parser.add_argument(
        "--min-clicks",
        type=int,
        default=ranking.MIN_CLICKS,
        help="all-time clicks an offer needs to be ranked; fewer: listed as not enough data",
    )
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT, help="the HTML file (charts go beside it)")
    parser.add_argument("--log", type=pathlib.Path, help="read this local DuckDB decision log")
    parser.add_argument("--project", help="read this Google Cloud project (its BigQuery log; --firestore: Firestore)")
    parser.add_argument("--dataset", default=warehouse.DEFAULT_DATASET, help="the decision log's BigQuery dataset")
    parser.add_argument("--firestore", action="store_true", help="read the Firestore documents, not the decision log")
    parser.add_argument("--seed", type=int, default=None, help="seed of the Monte Carlo draws (default: random)")
    parser.add_argument("--tenant", type=Namespace, default=ROOT, help="whose data (default: the default tenant)")
    args = parser.parse_args(argv)
    for name in ("max_clicks", "max_episodes", "max_offers", "min_clicks"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def build(
    db, out: pathlib.Path, since: datetime.datetime, limits: data.Limits, source: str, seed=None, space=ROOT
) -> list:
    """Read the tenant's documents from Firestore, then write the page and its charts; returns the PNG paths."""
    found = data.read(db, since, limits, space)
    out.parent.mkdir(parents=True, exist_ok=True)
    return page.render(found, out, limits, source, np.random.default_rng(seed))


def build_from_log(log, out: pathlib.Path, since: datetime.datetime, limits: data.Limits, seed=None, space=ROOT):
    """Read the tenant's decisions from the decision log, then write the page with the holdout's sections."""
    found = data.read_log(log, since, limits, space)
    lifts = proof.read(log, space.tenant, since, found.until)
    out.parent.mkdir(parents=True, exist_ok=True)
    source = f"{log.description}, tenant {space.tenant}"
    return page.render(found, out, limits, source, np.random.default_rng(seed), lifts)


def main(argv=None) -> int:
    args = arguments(argv)
    limits = data.Limits(args.max_clicks, args.max_episodes, args.max_offers, args.min_clicks)
    if args.firestore:
        source = f"{connect(args.project)}, tenant {args.tenant.tenant}"
        from shared.platform.firestore import get_db  # after connect(): the client reads the environment

        pngs = build(get_db(), args.out, args.since, limits, source, args.seed, args.tenant)
    else:
        log = warehouse.choose(args.log, args.project, args.dataset)
        source = f"{log.description}, tenant {args.tenant.tenant}"
        pngs = build_from_log(log, args.out, args.since, limits, args.seed, args.tenant)
    print(f"Report from {source}:\n  {args.out.resolve().as_uri()}\n  charts: {pngs[0].parent}/ ({len(pngs)} PNG)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
