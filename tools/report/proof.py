"""What the learning policies earn over the holdout, and whether the holdout's split is sound: the
report's "Proof" sections, from the decision log (tools/analytics/queries.py; shared/maths/lift.py,
shared/maths/srm.py).

Per product: the learning decisions' mean reward per decision (revenue per click for CPA, the share
of slates accepted for customers) minus the holdout's, with a 95 % interval, per day (UTC) and over
the whole window; and the sample-ratio-mismatch test of the held-out decisions against the share the
tenant's config expected, per day and over the window.
"""

import datetime
from dataclasses import dataclass

from shared.maths import lift, srm
from tools.analytics import queries

PRODUCTS = {"cpa": "revenue per click (cents)", "customer": "slates accepted (share)"}


@dataclass(frozen=True)
class Split:
    day: datetime.date | None  # None: the whole window
    decisions: int
    held_out: int
    expected: float
    test: srm.Test


@dataclass(frozen=True)
class ProductProof:
    product: str
    unit: str
    daily: list[lift.Lift]
    cumulative: lift.Lift
    splits: list[Split]
    overall: Split


def split_of(day, decisions: int, held_out: int, expected: float) -> Split:
    test = srm.chi_square([held_out, decisions - held_out], [expected, decisions - expected])
    return Split(day, decisions, held_out, expected, test)


def read(warehouse, tenant: str, since: datetime.datetime, until: datetime.datetime) -> dict[str, ProductProof]:
    found = {}
    for product, unit in PRODUCTS.items():
        daily, cumulative = lift.by_day(queries.arms_by_day(warehouse, tenant, product, since, until))
        rows = queries.splits_by_day(warehouse, tenant, product, since, until)
        splits = [
            split_of(row["day"], int(row["n"]), int(row["held_out"]), float(row["expected_held_out"])) for row in rows
        ]
        overall = split_of(
            None, sum(s.decisions for s in splits), sum(s.held_out for s in splits), sum(s.expected for s in splits)
        )
        found[product] = ProductProof(product, unit, daily, cumulative, splits, overall)
    return found
