"""Which offers the report ranks. An offer whose all-time counters hold fewer than `min_clicks`
clicks (new, or just reset) is listed as "not enough data": it gets no interval, no P(best) and is
never "most likely best", and the "best single offer" baseline is priced from the ranked offers.

Why: with no clicks an offer's conversion rate is the prior alone, wide enough to win most
posterior draws against offers whose rates are known to be modest (an offer just reset came out
"most likely best" at P(best) 67 %), and its observed revenue per click, 0, then priced the
baseline at 0.
"""

from dataclasses import dataclass

import numpy as np

from shared.cpa import insights
from shared.cpa.policies import OfferStats

MIN_CLICKS = 30  # all-time clicks before an offer is ranked (--min-clicks)


@dataclass(frozen=True)
class Ranking:
    offers: list[int]  # ranked offers, in the order they were given
    stats: list[OfferStats]  # their all-time counters
    found: insights.Insights | None  # intervals and P(best) among the ranked offers; None when none is
    unranked: list[tuple[int, OfferStats]]  # fewer than min_clicks clicks: listed, not ranked
    min_clicks: int

    @property
    def best(self) -> int | None:
        """Index in `offers` of the most likely best offer; None without a ranked offer or a payout seen."""
        if self.found is None or not self.found.payout_known:
            return None
        return int(np.argmax(self.found.p_best))

    @property
    def best_offer(self) -> int | None:
        return None if self.best is None else self.offers[self.best]

    @property
    def best_revenue_per_click(self) -> float:
        """The baseline: the most likely best offer's observed revenue per click (0 without one)."""
        return 0.0 if self.best is None else float(self.found.observed[self.best])

    def order(self) -> np.ndarray:
        """Indexes of the ranked offers, most likely best first (P(best), then posterior mean)."""
        if self.found is None:
            return np.array([], dtype=int)
        return np.lexsort((-self.found.mean, -self.found.p_best))


def rank(offers: list[int], stats: list[OfferStats], rng: np.random.Generator, min_clicks: int = MIN_CLICKS) -> Ranking:
    ranked = [i for i, s in enumerate(stats) if s.clicks >= min_clicks]
    unranked = sorted(
        ((offers[i], s) for i, s in enumerate(stats) if s.clicks < min_clicks), key=lambda pair: -pair[1].clicks
    )
    kept = [stats[i] for i in ranked]
    return Ranking(
        offers=[offers[i] for i in ranked],
        stats=kept,
        found=insights.revenue_per_click(kept, rng) if kept else None,
        unranked=unranked,
        min_clicks=min_clicks,
    )
