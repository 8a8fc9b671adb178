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

FIRST_TABLES = 8  # candidates tabulated first, to rule out the others without their tables
NEGLIGIBLE = 1e-9  # a candidate drawing above the others' floor with less probability is left out

_BULK = np.linspace(-BULK_SDS, BULK_SDS, BULK_POINTS)

_TAIL = np.geomspace(1.0, 1.0 / TAIL_POINTS, TAIL_POINTS)


def _laplace(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mode of ln(X), X ~ Beta(a, b), and the Laplace approximation's standard deviation."""
    wide = b <= 1.0  # the density in ln(rate) rises up to rate = 1
    safe_b = np.where(wide, 2.0, b)
    mode = np.where(wide, -1e-12, np.log(a / (a + safe_b - 1.0)))
    sd = np.where(wide, 1.0 / a, np.sqrt((safe_b - 1.0) / (a * (a + safe_b - 1.0))))
    return np.minimum(mode, -1e-12), sd


def _log_beta_cdf_tables(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, ...]:
    """(u, F) each (K, Z), and sd (K,): the distribution function of ln(X), X ~ Beta(a_j, b_j),
    tabulated per candidate (trapezoid rule on the density, normalised numerically) around its
    mode, sd the Laplace approximation's standard deviation."""
    mode, sd = _laplace(a, b)
    mode = mode[:, None]
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


def _tables_that_matter(a, b, m, s, params: SamplerParams) -> tuple[np.ndarray, ...]:
    """_log_beta_cdf_tables of the candidates that can be live, the others' rows at -inf (F = 1 from
    the start: never live). A candidate's top (its table's last point) is known without its table;
    the FIRST_TABLES candidates with the highest centres are tabulated first, and the highest point
    below which one of them has mass < 1e-7 bounds `start` from below: a candidate whose top is
    under it can never be live, so its table is not built."""
    k = len(a)
    if k <= FIRST_TABLES:
        return _log_beta_cdf_tables(a, b)
    mode, sd = _laplace(a, b)
    reach = np.abs(s) * (np.max(np.abs(GH_NODES)) + 1.0)  # beyond any payout node's shift, either way
    top = np.minimum(mode + BULK_SDS * sd, -1e-12) + m + reach
    first = np.argpartition(-(mode + m), FIRST_TABLES)[:FIRST_TABLES]  # the likeliest to set `start`
    u1, f1, _ = _log_beta_cdf_tables(a[first], b[first])
    floor_index = np.minimum(np.add.reduce(f1 < 1e-7, axis=1), f1.shape[1] - 1)
    bound = float((u1[np.arange(len(first)), floor_index] + m[first] - reach[first]).max())
    wanted = top > bound
    wanted[first] = False
    rest = np.flatnonzero(wanted)
    u = np.full((k, u1.shape[1]), -np.inf)
    f = np.ones((k, u1.shape[1]))
    u[first], f[first] = u1, f1
    if len(rest):
        u[rest], f[rest], _ = _log_beta_cdf_tables(a[rest], b[rest])
    return u, f, sd


def _mixture_cdfs(table_u, table_f, rows, shifts, weights, starts, x) -> np.ndarray:
    """Each candidate's sum_q w_q G(x - shift_q), shaped (candidates, points): component c is
    table row rows[c] shifted by shifts[c] with weight weights[c], a candidate's components
    contiguous from starts[i]; x (points,) broadcast, or (candidates, points).

    One np.interp for every component: the rows' tables laid end to end, each moved by its own
    offset so they never overlap, and each query clamped into its row's table (below it G is 0,
    above it 1: the tables' first and last values), which is np.interp(x, u, f, left=0, right=1)
    row by row, without a Python loop over candidates."""
    u, f = table_u[rows], table_f[rows]
    low, high = u[:, :1], u[:, -1:]
    gap = float((high - low).max()) + 1.0
    offsets = 2.0 * gap * np.arange(len(rows))[:, None]
    per_component = x if np.ndim(x) == 1 or x.shape[0] == 1 else np.repeat(x, np.diff(np.append(starts, len(rows))), 0)
    queries = np.minimum(np.maximum(per_component - shifts[:, None], low), high) + offsets
    found = np.interp(queries.ravel(), (u + offsets).ravel(), f.ravel()).reshape(queries.shape)
    if len(starts) == len(rows):  # one component each: no mixture to sum
        return found * weights[:, None]
    return np.add.reduceat(found * weights[:, None], starts, axis=0)


def thompson_propensities(stats: Stats, params: SamplerParams, posterior=None, mask=None) -> np.ndarray:
    """P(candidate i has the largest draw of thompson_draws), shaped (B, K), by numerical integration.

    Candidate j's draw is ln(rate_j) + m_j + s_j z, z one of the PAYOUT_NODES Gauss-Hermite nodes,
    so its distribution function is F_j(x) = sum_q w_q G_j(x - m_j - s_j z_q), G_j that of
    ln(rate_j) (tabulated by _log_beta_cdf_table). Then P(i) = integral of prod_{j != i} F_j dF_i,
    by the trapezoid rule on GRID_POINTS even points plus the table points of every candidate
    narrower than SHARP_CELLS cells (so every candidate's distribution is resolved), from the
    highest point below which some candidate has mass < 1e-7.
    Error: that of the tables (trapezoid and linear interpolation at 1/12 of a standard
    deviation), measured against 10^6 draws in tests/unit/test_policies.py as below 0.003; the result
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


def _components(live, spread, shifts, m, weights) -> tuple[np.ndarray, ...]:
    """The mixture components of the live candidates' draws: (table row, shift, weight) of each, a
    candidate's components contiguous from starts[i]: one per payout node where the payout's spread
    matters (`spread`), else one at m."""
    counts = np.where(spread[live], len(weights), 1)
    starts = np.cumsum(counts) - counts
    owner = np.repeat(np.arange(len(live)), counts)
    within = np.arange(len(owner)) - starts[owner]
    rows = live[owner]
    shift = np.where(spread[rows], shifts[rows, np.minimum(within, shifts.shape[1] - 1)], m[rows])
    weight = np.where(spread[rows], np.asarray(weights)[within], 1.0)
    return rows, shift, weight, starts


def _negligible(live, start, table_u, table_f, spread, shifts, m, weights, chosen) -> np.ndarray:
    """Which live candidates draw above `start` with probability below NEGLIGIBLE: each wins with
    at most that probability, and its factor in the others' products is within that of 1, so
    leaving it out moves no probability by more than NEGLIGIBLE x K. A reflected candidate's draw
    lies above its threshold, not below its mean: it is always kept."""
    below = _mixture_cdfs(table_u, table_f, *_components(live, spread, shifts, m, weights), np.array([start]))[:, 0]
    kept = chosen[live] if chosen is not None else np.zeros(len(live), dtype=bool)
    return (below > 1.0 - NEGLIGIBLE) & ~kept


def _products_of_the_others(cdf: np.ndarray) -> np.ndarray:
    """prod_{j != i} F_j at every point, shaped as cdf (candidates, points), without cumulative
    products (numpy's are not vectorised): the product of the non-zero F_j and the number of zeros
    at each point, then F_i divided out where it is not 0; where it is 0 the others' product is the
    whole non-zero product if F_i is the only zero there, else 0."""
    zero = cdf <= 0.0
    nonzero_product = np.multiply.reduce(np.where(zero, 1.0, cdf), axis=0)
    zeros = np.add.reduce(zero, axis=0)
    return np.where(
        zero,
        np.where(zeros == 1, nonzero_product, 0.0),
        np.where(zeros == 0, nonzero_product, 0.0) / np.where(zero, 1.0, cdf),
    )


def _one_row(a: np.ndarray, b: np.ndarray, m_all: np.ndarray, s: np.ndarray, params: SamplerParams) -> np.ndarray:
    """thompson_propensities of one request's K candidates, shaped (K,)."""
    k = len(a)
    out = np.zeros(k)
    m = m_all  # shifted below for a narrow optimistic payout; the reflection reads m_all
    table_u, table_f, table_sd = _tables_that_matter(a, b, m_all, s, params)
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
    if len(live) > 2:  # and whose draw has more than NEGLIGIBLE of its mass above `start`
        live = live[~_negligible(live, start, table_u, table_f, spread, shifts, m, weights, chosen)]
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
    # each sharp candidate's table points at each of its nodes (one node where its payout is narrow)
    sharp_points = table_u[sharp, TAIL_POINTS::SHARP_STRIDE, None] + shifts[sharp, None, :]
    own_nodes = (np.arange(shifts.shape[1]) == 0) | spread[sharp, None]
    sharp_points = sharp_points.transpose(0, 2, 1)[own_nodes].ravel()
    points = np.concatenate([np.linspace(start, top, GRID_POINTS + 1), sharp_points])
    if threshold is not None:  # the kink of each distribution function at its threshold
        points = np.concatenate([points, threshold[live][chosen[live]]])
    points = np.unique(np.concatenate([[start], points[points >= start]]))
    # each live candidate's distribution function on the points: one mixture component per node
    # (one for a narrow payout), every component of every candidate interpolated in one call
    components = _components(live, spread, shifts, m, weights)
    cdf = _mixture_cdfs(table_u, table_f, *components, points[None, :])
    if threshold is not None and chosen[live].any():  # reflected above t: F(x) - F(2t - x) for x >= t, else 0
        t = threshold[live][:, None]
        mirrored = _mixture_cdfs(table_u, table_f, *components, 2 * t - points)
        cdf = np.where(chosen[live][:, None], np.where(points < t, 0.0, np.maximum(cdf - mirrored, 0.0)), cdf)
    if params.samples > 1:  # the largest of `samples` independent draws
        cdf = cdf ** int(params.samples)
    others = _products_of_the_others(cdf)
    mass = np.diff(cdf, axis=1)
    shares = np.add.reduce(mass * (others[:, 1:] + others[:, :-1]) / 2.0, axis=1)
    out[live] = shares / shares.sum()
    return out
