"""`make reset ARGS="offer=42"`: archive then zero one offer's or one segment's statistics
(shared/reset.py), the local counterpart of the admin function `admin_reset`.

    python -m devstack.reset offer=42 [--who NAME] [--reason TEXT] [--project ID]
    python -m devstack.reset "segment=30-44|Europa|M"

Where it writes, first match wins: FIRESTORE_EMULATOR_HOST in the environment; `--project ID`
(that project's Firestore, application default credentials); the running `make run` (its
addresses in local-results/.devstack.json). The archive records --who (default: your login name).
"""

import argparse
import getpass
import json
import os
import sys

from devstack.run import STATE_FILE


def connect(project: str | None) -> str:
    if os.environ.get("FIRESTORE_EMULATOR_HOST"):
        os.environ.setdefault("GOOGLE_CLOUD_PROJECT", "offer-bandits-local")
        return f"Firestore emulator {os.environ['FIRESTORE_EMULATOR_HOST']}"
    if project:
        os.environ["GOOGLE_CLOUD_PROJECT"] = project
        return f"Firestore of Google Cloud project {project}"
    if STATE_FILE.exists():
        state = json.loads(STATE_FILE.read_text())
        os.environ.update(
            FIRESTORE_EMULATOR_HOST=state["firestore_emulator_host"], GOOGLE_CLOUD_PROJECT=state["project"]
        )
        return f"the local stack (`make run`): Firestore emulator {state['firestore_emulator_host']}"
    raise SystemExit("Nothing to reset: start `make run`, or pass --project ID.")


def arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack.reset", description=__doc__.split("\n")[0])
    parser.add_argument("target", help='offer=<id> or "segment=<age band>|<region>|<gender>"')
    parser.add_argument("--who", default=getpass.getuser(), help="recorded in the archive (default: your login)")
    parser.add_argument("--reason", default="", help="recorded in the archive")
    parser.add_argument("--project", help="reset in this Google Cloud project's Firestore")
    args = parser.parse_args(argv)
    kind, _, key = args.target.partition("=")
    from shared import reset

    try:
        reset.counter_of(kind.strip(), key.strip())
    except ValueError as error:
        parser.error(str(error))
    args.kind, args.key = kind.strip(), key.strip()
    return args


def main(argv=None) -> int:
    args = arguments(argv)
    source = connect(args.project)
    from shared import reset
    from shared.firestore_client import get_db  # after connect(): the client reads the environment

    archive = reset.reset(get_db(), args.kind, args.key, args.who, args.reason)
    print(f"Reset {archive['counter']} in {source} as {args.who}: archive counter_resets/{archive['id']}")
    print(json.dumps({"archived": archive["totals"], "shards_moved": archive["shards_moved"]}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
