"""`make caps ARGS="offer=42 --conversions 100 --tz Europe/Paris"`: set, remove or list a tenant's
per-offer daily caps (shared/cpa/caps.py), in its `config/serving` (`cpa.caps`).

    python -m tools.caps offer=42 --conversions 100 [--tz Europe/Paris] [--tenant adnet] [--project ID]
    python -m tools.caps offer=7 --cents 250000
    python -m tools.caps offer=42 --remove
    python -m tools.caps --list [--tenant adnet]

Where it writes: the rule every tool follows (tools/target.py). Every instance serves the change
within SERVING_CONFIG_TTL_SECONDS (default 5). The cap is checked as the service parses it, so a
cap the service would ignore is refused here.
"""

import argparse
import json
import sys

from google.cloud import firestore

from shared.cpa import caps, serving
from shared.platform import config
from shared.platform.namespace import ROOT, Namespace
from tools import target


def arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.caps", description=__doc__.split("\n")[0])
    parser.add_argument("offer", nargs="?", help="offer=<id>")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--conversions", type=float, help="conversions per day")
    kind.add_argument("--cents", type=float, help="budget in cents per day")
    kind.add_argument("--remove", action="store_true", help="remove the offer's cap")
    kind.add_argument("--list", action="store_true", help="list the tenant's caps and stop")
    parser.add_argument("--tz", default="UTC", help="the IANA time zone whose midnight starts the day (default UTC)")
    parser.add_argument("--tenant", type=Namespace, default=ROOT, help="whose offers (default: the default tenant)")
    parser.add_argument("--project", help="write to this Google Cloud project's Firestore")
    args = parser.parse_args(argv)
    if args.list:
        return args
    name, _, key = (args.offer or "").partition("=")
    if name.strip() != "offer" or not key.strip().isdigit():
        parser.error("name the offer as offer=<id>")
    args.offer_id = key.strip()
    if not args.remove:
        problems: list[str] = []
        entry = entry_of(args)
        found = caps.parse_section({args.offer_id: entry}, problems)
        if problems or not found:
            parser.error("; ".join(problems) or "give --conversions or --cents")
    return args


def entry_of(args) -> dict:
    limit = {"conversions": args.conversions} if args.conversions is not None else {"cents": args.cents}
    return limit | {"tz": args.tz}


def main(argv=None) -> int:
    args = arguments(argv)
    source = target.connect(args.project, "start `make run`, or pass --project ID").description
    from shared.platform.firestore import get_db  # after connect(): the client reads the environment

    document = get_db().document(args.tenant.path(config.SERVING_DOCUMENT))
    if not args.list:
        value = firestore.DELETE_FIELD if args.remove else entry_of(args)
        document.set({"cpa": {"caps": {args.offer_id: value}}}, merge=True)
        print(f"{'Removed' if args.remove else 'Set'} the cap of offer {args.offer_id} in {source}")
    snapshot = document.get()
    found, problems = serving.parse_caps(None, snapshot.to_dict() if snapshot.exists else None)
    print(json.dumps({str(offer): cap._asdict() for offer, cap in sorted(found.items())}, indent=1))
    for problem in problems:
        print(f"ignored by the service: {problem}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
