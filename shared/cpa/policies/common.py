"""Helpers every CPA policy core shares: row reductions, known payouts, the exploration floor and
candidate masks. Pure.

Ragged candidate sets: a batch of requests with different numbers of candidates is padded to K
columns with zero statistics, and `mask` (B, K) marks the real candidates. A padded column is never
chosen and has probability 0; `mask=None` means every column is a candidate (and costs nothing).

A request to /sample runs a core on a batch of one, where numpy's fixed cost per call outweighs
the arithmetic: hence ufunc reductions rather than .sum, no masked divisions, and no Python-level
helpers such as np.clip or np.mean on the Thompson path.
"""

import numpy as np

from shared.cpa.policies.types import Decisions, SamplerParams, Stats


def rate_or(num: np.ndarray, den: np.ndarray, default: float | np.ndarray) -> np.ndarray:
    """num / den where den > 0, else `default`."""
    positive = den > 0
    return np.where(positive, num / np.where(positive, den, 1.0), default)


def per(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    """total / count, 0 where count is 0. Counts are whole numbers, and a count of 0 has a total
    of 0 (no reward without a conversion), so dividing by max(count, 1) is exact."""
    return total / np.maximum(count, 1.0)


def row_sum(values: np.ndarray) -> np.ndarray:
    return np.add.reduce(values, axis=1, keepdims=True)


def row_max(values: np.ndarray) -> np.ndarray:
    return np.maximum.reduce(values, axis=1, keepdims=True)


def revenue_per_click(stats: Stats) -> np.ndarray:
    return per(stats.reward, stats.clicks)


def first_max(values: np.ndarray) -> np.ndarray:
    """Per row, the first candidate with the largest value (np.argmax keeps the first maximum)."""
    return np.argmax(values, axis=1)


def one_hot(index: np.ndarray, k: int) -> np.ndarray:
    return (index[:, None] == np.arange(k)).astype(float)


def candidates(mask: np.ndarray | None, shape: tuple) -> np.ndarray:
    """How many candidates each row has, shaped (B, 1)."""
    if mask is None:
        return np.full((shape[0], 1), float(shape[1]))
    return np.add.reduce(mask, axis=1, keepdims=True).astype(float)


def among(values: np.ndarray, mask: np.ndarray | None, fill: float = -np.inf) -> np.ndarray:
    """`values` where a column is a candidate, `fill` in the padding."""
    return values if mask is None else np.where(mask, values, fill)


def uniform_index(rng: np.random.Generator, mask: np.ndarray | None, batch: int, k: int) -> np.ndarray:
    """(B,) a candidate drawn uniformly in each row."""
    if mask is None:
        return rng.integers(k, size=batch)
    nth = (rng.random(batch) * np.add.reduce(mask, axis=1)).astype(int)
    return np.argmax(np.cumsum(mask, axis=1) > nth[:, None], axis=1)


def uniform(mask: np.ndarray | None, shape: tuple) -> np.ndarray:
    """(B, K) the uniform probability of every candidate (0 in the padding)."""
    share = 1.0 / candidates(mask, shape)
    return np.broadcast_to(share, shape) if mask is None else np.where(mask, share, 0.0)


def floored(
    base: np.ndarray, k: int, probabilities: np.ndarray | None, params: SamplerParams, rng, mask=None
) -> Decisions:
    """The exploration floor over a base policy's choice `base` (B,): with probability params.floor
    a uniformly drawn candidate instead. `probabilities` (B, K): the base policy's probability of
    every candidate (None: not wanted, NaN logged). Logged: floor / K + (1 - floor) * P_base, K the
    row's number of candidates."""
    floor = params.floor
    batch = len(base)
    if floor > 0.0:
        explore = rng.random(batch) < floor
        index = np.where(explore, uniform_index(rng, mask, batch, k), base)
    else:
        index = base
    if probabilities is None:
        return Decisions(index, np.full(index.shape, np.nan))
    chosen = probabilities[np.arange(batch), index]
    return Decisions(index, floor / candidates(mask, (batch, k))[:, 0] + (1.0 - floor) * chosen)


def known_payouts(params: SamplerParams, shape: tuple) -> np.ndarray:
    """params.payouts broadcast to (B, K); NaN where unknown (or when none is given)."""
    if params.payouts is None:
        return np.full(shape, np.nan)
    known = np.array(params.payouts, dtype=float)
    known = np.where(known > 0, known, np.nan)  # a payout of 0 or less says nothing usable
    return np.broadcast_to(known, shape)


def expected_revenue(stats: Stats, params: SamplerParams) -> np.ndarray:
    """Learned revenue per click, or conversion rate x known payout where the payout is given."""
    known = known_payouts(params, stats.clicks.shape)
    learned = revenue_per_click(stats)
    return np.where(np.isfinite(known), per(stats.conversions, stats.clicks) * np.nan_to_num(known), learned)


def mean_payouts(stats: Stats, params: SamplerParams) -> tuple[np.ndarray, np.ndarray]:
    """Each candidate's mean payout (the known one where given), and whether it is known (given,
    or learned from at least one conversion)."""
    known = known_payouts(params, stats.clicks.shape)
    given = np.isfinite(known)
    learned = per(stats.reward, stats.conversions)
    return np.where(given, np.nan_to_num(known), learned), given | (stats.conversions > 0)
