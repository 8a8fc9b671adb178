"""Statistics that forget a market that moved: an offer's counters restart when its recent clicks
disagree with its older ones. Pure (no I/O), vectorised numpy.

Each offer keeps, beside its exact cumulative totals:
- `recent`: the same counts discounted by 2^(-age / half_life), updated at each roll-up as
  recent x 2^(-elapsed / half_life) + what the totals gained since the last roll-up;
- `baseline`: the totals at its last restart, less what was recent then. Decisions see
  since = totals - baseline: everything before the restart except its recent part, which is
  already about the new market.

A restart happens when a two-sample likelihood-ratio test between the recent window and the older
rest of `since` (since - recent) exceeds `threshold`, on the conversion rate (Bernoulli) or on the
mean ln payout (Normal, the two windows' common spread unknown, at least LOG_SPREAD_FLOOR). Under a
market that stays put the statistic is about chi-square(1) / 2, so a threshold of 6 is a false alarm
about once in 2,000 independent tests; consecutive roll-ups test mostly the same clicks, and E1
(stationary, 100 seeds x 100,000 clicks) moves by -0.19 +- 0.34 points (bench/README.md, "Drift").
A false alarm costs little: the offer keeps its recent window. Why not a
plain discount: on stationary traffic it throws away evidence the policy needs (E1 loses 1 to 4
points of oracle revenue at half-lives that help E5 by 2); a restart forgets only when the data
say the market moved. Which samplers decide on restarted statistics: `forgets` in the registry
(shared/cpa/policies/registry.py).
"""

import os
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

# The counter fields, in OfferStats order (clicks, conversions, reward, reward_sq, and the log sums).
FIELDS = ("clicks", "conversions", "reward", "reward_sq", "log_conversions", "log_reward", "log_reward_sq")
COUNTS = ("clicks", "conversions", "log_conversions")  # whole numbers in OfferStats
# Off by default: on the generated family's test split the restarts gained nothing whose interval
# excludes zero on drifting traffic (+1.14 +- 1.68 points), and no threshold did on the training
# seeds, so issue 26's rule turns them off (docs/rewards-and-drift.md, "Drift").
DEFAULT_HALF_LIFE_SECONDS = 0.0
SUGGESTED_HALF_LIFE_SECONDS = 1800.0  # the half-life they were built and measured with, when turned on
DEFAULT_THRESHOLD = 6.0
LOG_SPREAD_FLOOR = 0.01  # variance of ln payouts assumed at least (CV ~0.1): fixed payouts are exact


@dataclass(frozen=True)
class DriftParams:
    half_life: float = SUGGESTED_HALF_LIFE_SECONDS  # of the recent window, in the clock's unit (> 0)
    threshold: float = DEFAULT_THRESHOLD  # likelihood ratio (natural log) that restarts an offer


# What the service runs without DRIFT_* set (None: off), and the restarts as they were measured:
# the benchmarks' default and their `thompson-drift` variant.
SERVICE_DEFAULT = DriftParams(DEFAULT_HALF_LIFE_SECONDS, DEFAULT_THRESHOLD) if DEFAULT_HALF_LIFE_SECONDS > 0 else None
MEASURED = DriftParams(SUGGESTED_HALF_LIFE_SECONDS, DEFAULT_THRESHOLD)


def params_from_env() -> DriftParams | None:
    """DRIFT_HALF_LIFE_SECONDS (default 0: restarts off; 1800 is the measured setting) and DRIFT_THRESHOLD
    (default 6). None when restarts are off."""
    half_life = float(os.environ.get("DRIFT_HALF_LIFE_SECONDS", DEFAULT_HALF_LIFE_SECONDS))
    threshold = float(os.environ.get("DRIFT_THRESHOLD", DEFAULT_THRESHOLD))
    if half_life < 0 or not threshold > 0:
        raise ValueError("DRIFT_HALF_LIFE_SECONDS must be >= 0 and DRIFT_THRESHOLD > 0")
    return DriftParams(half_life, threshold) if half_life > 0 else None


def _kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    q = np.clip(q, 1e-12, 1 - 1e-12)
    return p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return num / np.maximum(den, 1e-9)


def changed(since: np.ndarray, recent: np.ndarray, threshold: float) -> np.ndarray:
    """Whether each offer's recent window disagrees with the older rest of `since`.

    since, recent: shaped (7, ...) in FIELDS order; returns a bool array shaped (...)."""
    older = np.maximum(since - recent, 0.0)
    n_r, c_r, n_o, c_o = recent[0], recent[1], older[0], older[1]
    pooled = _ratio(c_r + c_o, n_r + n_o)
    rate = n_r * _kl(_ratio(c_r, n_r), pooled) + n_o * _kl(_ratio(c_o, n_o), pooled)
    k_r, k_o = recent[4], older[4]
    mean_r, mean_o = _ratio(recent[5], k_r), _ratio(older[5], k_o)
    # the two windows' pooled within spread (a two-sample t statistic): a payout that moved does not
    # widen it, and one heavy-tailed window alone does not narrow it
    squares = np.maximum(older[6] - older[5] * mean_o, 0.0) + np.maximum(recent[6] - recent[5] * mean_r, 0.0)
    spread = np.maximum(_ratio(squares, k_o + k_r - 2.0), LOG_SPREAD_FLOOR)
    t2 = (mean_r - mean_o) ** 2 / (spread * (_ratio(1.0, k_r) + _ratio(1.0, k_o)))
    # the likelihood ratio with the common spread unknown: k/2 ln(1 + t^2 / (k - 2)), not t^2 / 2,
    # whose tail is heavy when few conversions estimate the spread
    k = k_o + k_r
    payout = np.where((k_r >= 1.0) & (k_o >= 1.0) & (k > 2.0), k / 2.0 * np.log1p(t2 / np.maximum(k - 2.0, 1e-9)), 0.0)
    return (rate > threshold) | (payout > threshold)


class DriftState(NamedTuple):
    """An offer's (or a batch of offers') drift state as arrays shaped (7, ...) in FIELDS order."""

    recent: np.ndarray
    baseline: np.ndarray
    restarts: np.ndarray  # shaped (...): restarts so far

    @classmethod
    def zeros(cls, shape: tuple = ()) -> "DriftState":
        return cls(np.zeros((len(FIELDS), *shape)), np.zeros((len(FIELDS), *shape)), np.zeros(shape, dtype=int))


def roll(
    state: DriftState, totals: np.ndarray, previous: np.ndarray, elapsed: float, params: DriftParams
) -> DriftState:
    """The drift state after one roll-up (the rule the store's roll-up and the benchmark both run):
    `recent` decays by 2^(-elapsed / half_life) and gains what the totals gained since `previous`;
    where the recent window disagrees with the older rest of `since`, the offer restarts
    (baseline = totals - recent). An offer whose counts went down (a statistics reset,
    shared/cpa/reset.py) starts afresh: everything it holds is recent. Arrays shaped (7, ...)."""
    counts = [FIELDS.index(name) for name in COUNTS]  # only a reset lowers them (ln payouts may fall)
    reset = np.any(totals[counts] < previous[counts], axis=0)
    recent = state.recent * 2.0 ** (-max(elapsed, 0.0) / params.half_life) + (totals - previous)
    moved = changed(totals - state.baseline, recent, params.threshold) & ~reset
    baseline = np.where(moved, totals - recent, state.baseline)
    restarts = state.restarts + moved
    return DriftState(np.where(reset, totals, recent), np.where(reset, 0.0, baseline), np.where(reset, 0, restarts))


def since_arrays(totals: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """What a forgetting policy decides on, arrays shaped (7, ...): totals - baseline, floored at 0,
    its counts whole (a count weighted below 1/2 by the recent window is forgotten)."""
    if not baseline.any():
        return totals
    kept = np.maximum(totals - baseline, 0.0)
    counts = [FIELDS.index(name) for name in COUNTS]
    kept[counts] = np.round(kept[counts])
    return kept


def _vector(values: dict | None) -> np.ndarray:
    values = values or {}
    return np.array([float(values.get(name, 0.0)) for name in FIELDS])


def _fields(vector: np.ndarray) -> dict:
    return {name: float(value) for name, value in zip(FIELDS, vector, strict=True)}


def rolled(state: dict | None, totals: dict, previous_totals: dict, elapsed: float, params: DriftParams) -> dict:
    """`roll` of one offer whose state and totals are stored maps: {"recent", "baseline", "restarts"}."""
    state = state or {}
    before = DriftState(
        _vector(state.get("recent")), _vector(state.get("baseline")), np.array(int(state.get("restarts", 0)))
    )
    after = roll(before, _vector(totals), _vector(previous_totals), elapsed, params)
    return {"recent": _fields(after.recent), "baseline": _fields(after.baseline), "restarts": int(after.restarts)}


def since(totals: dict, state: dict | None) -> dict:
    """The totals a forgetting policy decides on: totals - baseline (totals alone before any restart)."""
    baseline = (state or {}).get("baseline")
    if not baseline:
        return totals
    return {**totals, **_fields(since_arrays(_vector(totals), _vector(baseline)))}
