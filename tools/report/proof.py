"""What the learning policies earn over the holdout, and whether the holdout's split is sound: the
report's "Proof" sections, from the decision log (tools/analytics/queries.py; shared/maths/lift.py,
shared/maths/srm.py).

Per product: the learning decisions' mean reward per decision (revenue per click for CPA, the share
of slates accepted for customers) minus the holdout's, with a 95 % interval, per day (UTC) and over
the whole window; and the sample-ratio-mismatch test of the held-out decisions against the share the
tenant's config expected, per day and over the window.
"""

import datetime
import math
from dataclasses import dataclass

from shared.maths import lift, srm
from tools.analytics import queries
from tools.report import charts

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


# -- On the page ---------------------------------------------------------------------------------
CHARTS = ("lift_cpa", "lift_customer")
TITLES = {
    "cpa": "Revenue per click: the learning samplers against the holdout",
    "customer": "Slates accepted: the learning agent against the holdout",
}
NOT_FROM_FIRESTORE = "The lift against the holdout is read from the decision log (not with --firestore)"


def draw(found: dict[str, ProductProof] | None, paths: dict) -> None:
    for product in PRODUCTS:
        path = paths[f"lift_{product}"]
        if found is None:
            charts.empty(path, NOT_FROM_FIRESTORE)
        else:
            proof = found[product]
            charts.lift(path, proof.unit, proof.daily, proof.cumulative)


def _arm(arm: lift.Arm, unit: str) -> str:
    return f"{arm.mean:,.3g} {unit} on {arm.n:,} decisions" if arm.n else f"no decisions ({unit})"


def captions(found: dict[str, ProductProof] | None) -> list[tuple[str, str, str]]:
    """(section id, title, caption) of each lift chart."""
    sections = []
    for product in PRODUCTS:
        if found is None:
            sections.append((f"lift_{product}", TITLES[product], NOT_FROM_FIRESTORE + "."))
            continue
        proof = found[product]
        whole = proof.cumulative
        unit = "cents a click" if product == "cpa" else "of slates accepted"
        if math.isfinite(whole.difference.low):
            summary = (
                f"Over the window the learning policy made {whole.difference.value:+,.3g} {unit} over the holdout, "
                f"95 % interval [{whole.difference.low:,.3g}, {whole.difference.high:,.3g}]"
                + (f" ({whole.relative:+.0%} of the holdout's)." if math.isfinite(whole.relative) else ".")
            )
        else:
            summary = f"Too few decisions for an interval yet ({lift.MIN_DECISIONS} in each arm at least)."
        sections.append(
            (
                f"lift_{product}",
                TITLES[product],
                f"{summary} Learning: {_arm(whole.learning, unit)}; holdout (served by the baseline, never learned "
                f"from): {_arm(whole.holdout, unit)}. Points: the difference per day (UTC) and over the whole "
                "window, bars their 95 % intervals (Welch); a decision without a reward counts 0. Above the dashed "
                "line the learning policy earned more.",
            )
        )
    return sections


def srm_table(found: dict[str, ProductProof] | None) -> str:
    """The sample-ratio-mismatch checks: per product over the window, then per day."""
    if found is None:
        return ""
    names = ("product · day", "decisions", "held out", "expected", "χ²", "p", "")
    head = "<tr>" + "".join(f"<th>{name}</th>" for name in names) + "</tr>"
    rows = []
    for product, proof in found.items():
        for split in [proof.overall, *proof.splits]:
            when = "whole window" if split.day is None else split.day.isoformat()
            verdict = "mismatch" if split.test.mismatch else "ok"
            rows.append(
                f"<tr><td>{product} · {when}</td><td>{split.decisions:,}</td><td>{split.held_out:,}</td>"
                f"<td>{split.expected:,.1f}</td><td>{split.test.statistic:.2f}</td><td>{split.test.p_value:.3g}</td>"
                f"<td>{verdict}</td></tr>"
            )
    return (
        '<section id="srm"><h2>Sample-ratio mismatch of the holdout</h2><table>'
        + head
        + "".join(rows)
        + '</table><p class="caption">Held-out decisions against the number the configured shares expect '
        f"(chi-square, 1 degree of freedom); p below {srm.ALARM_P} is a mismatch: the split is broken somewhere "
        "and the lift above cannot be trusted until it is explained. Cloud Monitoring runs the same test per "
        "tenant every hour (infra/analytics.tf).</p></section>"
    )
