"""The customer-offers agents (Company A): each picks a slate of three offers for a customer. Pure.

- `static` (agents/static.py): the case study's weights, repaired; deterministic.
- `thompson-slate` (agents/segment_thompson.py): Thompson sampling per segment and offer, seeded from
  the static score.
- `linear-ts`, `linear-ucb` (agents/linear.py; `linear-ucb` is the default): one Bayesian linear model
  per offer over the customer's age, band, region, gender and segment, seeded from the static ranking.

`slates()` is the one interface; what each agent reads and does is in `registry.AGENTS`.
"""

from collections.abc import Sequence

import numpy as np

from shared.customer.agents import linear
from shared.customer.agents.registry import (
    AGENTS,
    DEFAULT_AGENT,
    LEARNING,
    LINEAR_STATISTICS,
    SEGMENT_COUNTS,
    STATIC,
    Agent,
)
from shared.customer.agents.segment_thompson import credited_offers, prior
from shared.customer.agents.static import static_slate

LINEAR_TS, LINEAR_UCB = linear.TS, linear.UCB

__all__ = [
    "AGENTS",
    "DEFAULT_AGENT",
    "LEARNING",
    "LINEAR_STATISTICS",
    "LINEAR_TS",
    "LINEAR_UCB",
    "SEGMENT_COUNTS",
    "STATIC",
    "Agent",
    "credited_offers",
    "prior",
    "slates",
    "static_slate",
    "version_of",
]


def version_of(policy: str) -> str:
    return AGENTS[policy].version


def slates(
    policy: str,
    segment: str,
    eligible: Sequence[str],
    evidence,
    rng: np.random.Generator,
    rows: int = 1,
    customer=None,
) -> list[list[str]]:
    """`rows` slates for customers of one segment with the same eligible offers: used by /predict
    (rows=1) and batch scoring (a group of rows at once).

    `evidence` is what the agent reads (registry: the segment's counts, offer -> (shown, accepted),
    or the linear statistics), unused by the static agent. `customer` (anything with age, gender and
    region, or a sequence of `rows` of them) is read by the linear agents only; without it they
    score the middle of the segment's age band. For one group and one generator, a call with rows=n
    gives exactly the slates of n calls with rows=1 (numpy fills a draw row by row).
    """
    if not eligible:
        raise ValueError("no eligible offer")
    if policy not in AGENTS:
        raise ValueError(f"unknown agent policy {policy!r}")
    return AGENTS[policy].slates(segment, eligible, evidence, rng, rows, customer)
