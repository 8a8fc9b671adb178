"""Load TB_PRODUCTS (id, offer_id, product_name) from a CSV into Firestore.

    python -m tools.load_products examples/company_A_products.csv

Where it writes: the rule every tool follows (tools/target.py): FIRESTORE_EMULATOR_HOST, `--project ID`,
the running `make run`, GOOGLE_CLOUD_PROJECT.
"""

import argparse
import csv
import sys

import numpy as np

from shared.customer.store import CustomerStore
from shared.platform.firestore import get_db
from shared.platform.namespace import DEFAULT_TENANT, ROOT, Namespace
from tools import target


def read_products(path: str) -> list[dict]:
    with open(path, newline="", encoding="utf-8-sig") as file:
        rows = []
        for line, row in enumerate(csv.DictReader(file), start=2):
            row = {(key or "").strip().lower(): (value or "").strip() for key, value in row.items()}
            if not row.get("id") or not row.get("offer_id") or not row.get("product_name"):
                raise ValueError(f"{path}:{line}: needs ID, OFFER_ID and PRODUCT_NAME")
            rows.append({"id": row["id"], "offer_id": row["offer_id"], "product_name": row["product_name"]})
    return rows


def load_products_file(path: str, space: Namespace = ROOT) -> int:
    """Load the file into the products of the tenant in `space` (Company A's names are Company A's)."""
    return CustomerStore(get_db(), np.random.default_rng(), space=space).load_products(read_products(path))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.load_products", description=__doc__.split("\n")[0])
    parser.add_argument("file", help="a CSV with ID, OFFER_ID and PRODUCT_NAME columns")
    parser.add_argument("--project", help="write to this Google Cloud project's Firestore")
    parser.add_argument("--tenant", default=DEFAULT_TENANT, help="whose products these are (default: default)")
    args = parser.parse_args(argv)
    source = target.connect(args.project).description
    loaded = load_products_file(args.file, Namespace(args.tenant))
    print(f"loaded {loaded} products from {args.file} into {source}, tenant {args.tenant}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
