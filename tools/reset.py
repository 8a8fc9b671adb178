"""`make reset ARGS="offer=42"`: archive then zero one offer's or one segment's statistics
(shared/admin.py), the local counterpart of the admin function `admin_reset`.

    python -m tools.reset offer=42 [--who NAME] [--reason TEXT] [--project ID]
    python -m tools.reset "segment=30-44|Europa|M"

Where it writes: the rule every tool follows (tools/target.py): FIRESTORE_EMULATOR_HOST, `--project ID`,
the running `make run`, GOOGLE_CLOUD_PROJECT. The archive records --who (default: your login name).
"""

import argparse
import getpass
import json
import sys

from shared.platform.namespace import ROOT, Namespace
from tools import target


def arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.reset", description=__doc__.split("\n")[0])
    parser.add_argument("target", help='offer=<id> or "segment=<age band>|<region>|<gender>"')
    parser.add_argument("--who", default=getpass.getuser(), help="recorded in the archive (default: your login)")
    parser.add_argument("--reason", default="", help="recorded in the archive")
    parser.add_argument("--project", help="reset in this Google Cloud project's Firestore")
    parser.add_argument("--tenant", type=Namespace, default=ROOT, help="whose counter (default: the default tenant)")
    args = parser.parse_args(argv)
    kind, _, key = args.target.partition("=")
    from shared import admin

    try:
        admin.counter_of(kind.strip(), key.strip(), args.tenant)
    except ValueError as error:
        parser.error(str(error))
    args.kind, args.key = kind.strip(), key.strip()
    return args


def main(argv=None) -> int:
    args = arguments(argv)
    source = target.connect(args.project, "start `make run`, or pass --project ID").description
    from shared import admin
    from shared.platform import counter_reset
    from shared.platform.firestore import get_db  # after connect(): the client reads the environment

    archive = admin.reset(get_db(), args.kind, args.key, args.who, args.reason, args.tenant)
    archived = args.tenant.path(f"{counter_reset.ARCHIVE}/{archive.id}")
    print(f"Reset {archive.counter} in {source} as {args.who}: archive {archived}")
    print(json.dumps({"archived": archive.totals, "shards_moved": archive.shards_moved}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
