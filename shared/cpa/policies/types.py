"""The vocabulary of the CPA policies: per-offer statistics, parameters, choices; pure.

`Stats` holds arrays shaped (B, K): B independent requests over K candidates each. A request with
fewer candidates than K is padded with zero statistics and excluded by a mask (B, K) that every
core takes (`mask=None`: every candidate is real).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

WARMUP_CLICKS = 100  # the course's greedy: the first 100 clicks the service receives are random
# The exploration floor's default (SamplerParams.floor). Its cost is floor x the mean gap per click,
# linear in time; why 0.001: bench/README.md.
DEFAULT_FLOOR = 0.001

# The default is Thompson with re-tries (retry_level) and without the three optimism options below.
# They were on until issue 26; the generated family's training seeds chose plain Thompson over them
# (+1.73 +- 1.53 points), and its test split confirmed it (+1.09 +- 0.82): docs/family.md#plain.
# Re-tries were chosen on the same training seeds and confirmed on test: docs/family.md#retries.
# The optimisms' values when on:
# An offer without a conversion: the prior sd of its ln mean payout, in units of the spread of ln
# mean payouts across the offers that have converted (once two have) (bench/README.md, "Unseen payouts").
UNSEEN_PAYOUT_SPREAD = 2.0
# Optimistic draws for the offers whose mean payout is over this multiple of the candidates' median
# (SamplerParams.optimistic_payout_multiple). In E1 only the 8,000 c offer is over 4x (median
# ~1,100 c; 3,200 c is 2.9x). Why 4: bench/README.md.
OPTIMISTIC_PAYOUT_MULTIPLE = 4.0


@dataclass(frozen=True)
class OfferStats:
    clicks: int = 0
    conversions: int = 0
    reward: float = 0.0  # cents, summed over conversions
    reward_sq: float = 0.0  # squared cents, summed over conversions: the payout's spread
    # Log-payout sums (see log_payout_posterior); 0 for counters that predate them.
    log_conversions: int = 0  # conversions whose payout went into the two sums below
    log_reward: float = 0.0  # sum of ln(payout in cents) over those conversions
    log_reward_sq: float = 0.0  # sum of ln(payout in cents)^2 over those conversions


@dataclass(frozen=True)
class SamplerParams:
    epsilon: float = 0.1
    epsilon_decay: float = 0.0  # epsilon / (1 + decay * clicks on the candidates)
    ucb_c: float = 1.0
    thompson_a: float | None = None  # None: a prior fitted across the candidates (see fitted_beta_prior)
    thompson_b: float | None = None
    warmup_clicks: int = WARMUP_CLICKS
    # Exploration floor: with this probability the choice is uniform over the candidates, so every
    # candidate keeps a probability of at least floor / K (the bound on an IPS weight: K / floor).
    floor: float = DEFAULT_FLOOR
    # Each candidate's contractual payout in cents per conversion, NaN (or <= 0) where unknown;
    # shaped (K,) or (B, K). Where given, policies use it instead of the learned mean payout.
    payouts: tuple[float, ...] | np.ndarray | None = None
    # Optimistic Thompson (after May et al. 2012): a draw below the candidate's posterior mean
    # t = ln(mean rate) + m is reflected above it (t + |draw - t|), so an unlucky low draw cannot
    # shut out an offer that looks good; the draw stays continuous (no ties), its propensity exact.
    optimistic: bool = False
    # The same reflection only for candidates whose mean payout exp(m) is above this multiple of the
    # row's median (None: off). Probability matching gives a rare converter with a large payout
    # (8,000 c at 0.5 %) about its P(best) after an unlucky start, and it can starve for the rest
    # of the horizon; offers that pay alike (E2, E3) are left as plain Thompson.
    optimistic_payout_multiple: float | None = None
    # Each candidate's draw is the largest of this many independent posterior draws (1: plain
    # Thompson). More samples lean towards the candidates whose posterior is still wide (optimism
    # that fades as the posterior narrows); the propensity stays exact: the draw's distribution
    # function is F^samples.
    samples: int = 1
    # Optimism on the payout only: the log payout's Gauss-Hermite node is taken as |node| (a draw
    # below the payout posterior's centre m is reflected above it), so an offer whose payout is
    # still uncertain (no conversion yet, or heavy-tailed payouts) is priced high, while the rate
    # stays plain Thompson (fixed payouts of 1, as in E2 and E3, are unaffected once seen).
    optimistic_payout: bool = False
    # An offer without a conversion: its ln mean payout's prior sd in units of the spread of the
    # converted offers' ln mean payouts (see _unseen_payout_variance); None (the default): a
    # fixed prior variance of max(LOG_MU_PRIOR_VAR, the pooled within-offer spread).
    unseen_payout_spread: float | None = None
    # Re-tries (issue 26; the default since session 17): a candidate with clicks draws at least its
    # KL-UCB index at retry_level x ln(clicks on the candidates) on the rate, at its payout's centre
    # exp(m). Plain Thompson retries an offer its posterior has written off at a rate that does not
    # grow with time; this floor does (as klucb), which a market that moved rewards. None: off.
    retry_level: float | None = 0.5


@dataclass(frozen=True)
class Choice:
    index: int
    probability: float


class Stats(NamedTuple):
    """Cumulative counters of B requests x K candidates, as float arrays shaped (B, K).

    The log-payout sums may be None (as if all 0: no offer has them; see log_payout_posterior)."""

    clicks: np.ndarray
    conversions: np.ndarray
    reward: np.ndarray
    reward_sq: np.ndarray
    log_conversions: np.ndarray | None = None
    log_reward: np.ndarray | None = None
    log_reward_sq: np.ndarray | None = None

    @classmethod
    def of(cls, stats: Sequence[OfferStats]) -> "Stats":
        """A batch of one request from the service's per-offer counters."""
        rows = np.array(
            [
                [s.clicks, s.conversions, s.reward, s.reward_sq, s.log_conversions, s.log_reward, s.log_reward_sq]
                for s in stats
            ],
            dtype=float,
        )
        return cls(*rows.T[:, None, :])

    @classmethod
    def zeros(cls, batch: int, k: int) -> "Stats":
        return cls(*(np.zeros((batch, k)) for _ in cls._fields))


def discounted(buckets: Sequence[OfferStats], ages: Sequence[float], half_life: float) -> OfferStats:
    """Statistics that forget: the sum of time-bucketed counters (one OfferStats per bucket, e.g.
    per minute), each weighted by 2^(-age / half_life); ages and half_life in the same unit.

    A store keeping per-bucket counters (and dropping buckets older than ~10 half-lives) hands the
    policies these discounted counts; every policy takes fractional counts as they are. The bandit
    benchmark applies the same weighting per bucket of clicks (bench/harness.py, --half-life)."""
    weights = np.exp2(-np.asarray(ages, dtype=float) / half_life)
    fields = np.array([[getattr(b, f) for f in OfferStats.__dataclass_fields__] for b in buckets], dtype=float)
    summed = weights @ fields if len(buckets) else np.zeros(len(OfferStats.__dataclass_fields__))
    return OfferStats(*(float(x) for x in summed))


class Decisions(NamedTuple):
    index: np.ndarray  # (B,) int: the chosen candidate of each request
    probability: np.ndarray  # (B,) float: the probability it had of being chosen


# A batched policy core: (stats, total_clicks (B,), params, rng, propensity, mask) -> Decisions.
# With propensity=False a core may skip the work that only estimates `probability` (it then
# returns NaN where that estimate would have cost extra draws); the choice itself is unchanged.
# mask (B, K) bool or None: which columns are candidates (ragged candidate sets).
Core = Callable[..., Decisions]
