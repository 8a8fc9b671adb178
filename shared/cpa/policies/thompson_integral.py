"""The exact probability of each candidate under thompson: P(its draw is the largest), by numerical
integration of the draws' distribution functions. Pure.
"""

import numpy as np

from shared.cpa.policies.thompson_model import GH_NODES, GH_WEIGHTS, reflected, thompson_posterior
from shared.cpa.policies.types import SamplerParams, Stats

# The log-Beta table of thompson_propensities: BULK_POINTS evenly over the mode +- BULK_SDS
# standard deviations (Laplace approximation in ln(rate)), TAIL_POINTS geometrically spaced
# down the left tail to where its mass is below 1e-9.
BULK_POINTS, BULK_SDS, TAIL_POINTS = 64, 8.0, 16

GRID_POINTS, SHARP_CELLS, SHARP_STRIDE = 192, 8.0, 2  # a sharp candidate adds every 2nd bulk point

_BULK = np.linspace(-BULK_SDS, BULK_SDS, BULK_POINTS)

_TAIL = np.geomspace(1.0, 1.0 / TAIL_POINTS, TAIL_POINTS)


def _log_beta_cdf_tables(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, ...]:
    """(u, F) each (K, Z), and sd (K,): the distribution function of ln(X), X ~ Beta(a_j, b_j),
    tabulated per candidate (trapezoid rule on the density, normalised numerically) around its
    mode, sd the Laplace approximation's standard deviation."""
    wide = b <= 1.0  # the density in ln(rate) rises up to rate = 1
    safe_b = np.where(wide, 2.0, b)
    mode = np.where(wide, -1e-12, np.log(a / (a + safe_b - 1.0)))
    sd = np.where(wide, 1.0 / a, np.sqrt((safe_b - 1.0) / (a * (a + safe_b - 1.0))))
    mode = np.minimum(mode, -1e-12)[:, None]
    sd = sd[:, None]
    bulk = np.minimum(mode + _BULK * sd, -1e-12)
    far = 21.0 / a[:, None] + BULK_SDS * sd  # density ~ exp(a u) far left: mass below is < 1e-9
    tail = bulk[:, :1] - _TAIL * far
    u = np.concatenate([tail, bulk], axis=1)
    log_density = a[:, None] * u + (b[:, None] - 1.0) * np.log(-np.expm1(u))
    density = np.exp(log_density - log_density.max(axis=1, keepdims=True))
    steps = np.diff(u, axis=1) * (density[:, 1:] + density[:, :-1]) / 2.0
    cdf = np.concatenate([np.zeros((len(a), 1)), np.cumsum(steps, axis=1)], axis=1)
    return u, cdf / cdf[:, -1:], sd[:, 0]


def _mixture_cdf(x: np.ndarray, u: np.ndarray, f: np.ndarray, shifts, weights) -> np.ndarray:
    """sum_q w_q G(x - shift_q), G the tabulated distribution function (u, f)."""
    return sum(w * np.interp(x - shift, u, f, left=0.0, right=1.0) for w, shift in zip(weights, shifts, strict=True))


def thompson_propensities(stats: Stats, params: SamplerParams, posterior=None, mask=None) -> np.ndarray:
    """P(candidate i has the largest draw of thompson_draws), shaped (B, K), by numerical integration.

    Candidate j's draw is ln(rate_j) + m_j + s_j z, z one of the PAYOUT_NODES Gauss-Hermite nodes,
    so its distribution function is F_j(x) = sum_q w_q G_j(x - m_j - s_j z_q), G_j that of
    ln(rate_j) (tabulated by _log_beta_cdf_table). Then P(i) = integral of prod_{j != i} F_j dF_i,
    by the trapezoid rule on GRID_POINTS even points plus the table points of every candidate
    narrower than SHARP_CELLS cells (so every candidate's distribution is resolved), from the
    highest point below which some candidate has mass < 1e-7.
    Error: that of the tables (trapezoid and linear interpolation at 1/12 of a standard
    deviation), measured against 10^6 draws in tests/test_policies.py as below 0.003; the result
    is normalised to sum to 1. Padding (outside `mask`) has probability 0.
    """
    a_all, b_all, m_all, s_all = posterior if posterior is not None else thompson_posterior(stats, params)
    batch, k = stats.clicks.shape
    out = np.zeros((batch, k))
    for row in range(batch):
        columns = slice(None) if mask is None else np.flatnonzero(mask[row])
        parts = (a_all[row], b_all[row], m_all[row], s_all[row])
        out[row, columns] = _one_row(*(part[columns] for part in parts), params)
    return out


def _one_row(a: np.ndarray, b: np.ndarray, m_all: np.ndarray, s: np.ndarray, params: SamplerParams) -> np.ndarray:
    """thompson_propensities of one request's K candidates, shaped (K,)."""
    k = len(a)
    out = np.zeros(k)
    m = m_all  # shifted below for a narrow optimistic payout; the reflection reads m_all
    table_u, table_f, table_sd = _log_beta_cdf_tables(a, b)
    # a payout spread below 2 % of the log-rate spread changes the spread of the sum by 0.02 %:
    # one node (m) there
    spread = s > 0.02 * table_sd
    all_nodes = np.abs(GH_NODES) if params.optimistic_payout else GH_NODES
    nodes = all_nodes if spread.any() else np.zeros(1)
    weights = GH_WEIGHTS if spread.any() else np.ones(1)
    if params.optimistic_payout:  # a narrow payout still shifts its candidate by s E|node|
        m = m + np.where(spread, 0.0, s * (GH_WEIGHTS @ all_nodes))
    shifts = m[:, None] + np.where(spread, s, 0.0)[:, None] * nodes  # (K, Q)
    first = np.minimum(np.add.reduce(table_f < 1e-7, axis=1), table_f.shape[1] - 1)
    low = table_u[np.arange(k), first] + shifts.min(axis=1)
    high = table_u[:, -1] + shifts.max(axis=1)
    chosen = reflected(m_all, params)
    threshold = None
    if chosen is not None:  # -inf: not reflected
        threshold = np.where(chosen, np.log(a / (a + b)) + m_all, -np.inf)
        low = np.maximum(low, threshold)  # no reflected draw falls below the candidate's mean
    start = low.max()
    live = np.flatnonzero(high > start)
    if len(live) == 0:  # every distribution collapsed onto the same point: a tie
        return np.full(k, 1.0 / k)
    if len(live) == 1:
        out[live] = 1.0
        return out
    # the grid: GRID_POINTS evenly from `start` to the highest candidate's top, plus the table
    # points of every candidate narrower than SHARP_CELLS of its cells (so each is resolved)
    top = high[live].max()
    cell = (top - start) / GRID_POINTS
    sharp = live[np.sqrt(table_sd[live] ** 2 + s[live] ** 2) < SHARP_CELLS * cell]
    points = np.concatenate(
        [np.linspace(start, top, GRID_POINTS + 1)]
        + [
            (table_u[j, TAIL_POINTS::SHARP_STRIDE, None] + shifts[j, None, : len(nodes) if spread[j] else 1]).ravel()
            for j in sharp
        ]
    )
    if threshold is not None:  # the kink of each distribution function at its threshold
        points = np.concatenate([points, threshold[live][chosen[live]]])
    points = np.unique(np.concatenate([[start], points[points >= start]]))
    cdf = np.empty((len(live), len(points)))
    for i, j in enumerate(live):
        mixture = (
            (table_u[j], table_f[j], shifts[j], weights) if spread[j] else (table_u[j], table_f[j], m[j : j + 1], [1.0])
        )
        cdf[i] = _mixture_cdf(points, *mixture)
        if threshold is not None and chosen[j]:  # reflected above t: F(x) - F(2t - x) for x >= t, else 0
            t = threshold[j]
            mirrored = _mixture_cdf(2 * t - points, *mixture)
            cdf[i] = np.where(points < t, 0.0, np.maximum(cdf[i] - mirrored, 0.0))
    if params.samples > 1:  # the largest of `samples` independent draws
        cdf = cdf ** int(params.samples)
    # products over the other candidates, without dividing: prefix x suffix cumulative products
    ones = np.ones((1, len(points)))
    prefix = np.cumprod(np.vstack([ones, cdf[:-1]]), axis=0)
    suffix = np.cumprod(np.vstack([ones, cdf[:0:-1]]), axis=0)[::-1]
    others = prefix * suffix
    mass = np.diff(cdf, axis=1)
    shares = np.add.reduce(mass * (others[:, 1:] + others[:, :-1]) / 2.0, axis=1)
    out[live] = shares / shares.sum()
    return out
