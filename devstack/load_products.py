"""Load TB_PRODUCTS (id, offer_id, product_name) from a CSV into Firestore.

    python -m devstack.load_products examples/company_A_products.csv

Writes to the project in GOOGLE_CLOUD_PROJECT, or to the emulator when FIRESTORE_EMULATOR_HOST is set.
"""

import csv
import sys

import numpy as np

from shared.customer.store import CustomerStore
from shared.firestore_client import get_db


def read_products(path: str) -> list[dict]:
    with open(path, newline="", encoding="utf-8-sig") as file:
        rows = []
        for line, row in enumerate(csv.DictReader(file), start=2):
            row = {(key or "").strip().lower(): (value or "").strip() for key, value in row.items()}
            if not row.get("id") or not row.get("offer_id") or not row.get("product_name"):
                raise ValueError(f"{path}:{line}: needs ID, OFFER_ID and PRODUCT_NAME")
            rows.append({"id": row["id"], "offer_id": row["offer_id"], "product_name": row["product_name"]})
    return rows


def load_products_file(path: str) -> int:
    return CustomerStore(get_db(), np.random.default_rng()).load_products(read_products(path))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(f"loaded {load_products_file(sys.argv[1])} products from {sys.argv[1]}")
