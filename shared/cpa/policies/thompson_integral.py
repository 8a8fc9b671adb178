"""The exact probability of each candidate under thompson: P(its draw is the largest), by numerical
integration of the draws' distribution functions. Pure.
"""

import numpy as np

from shared.cpa.policies.thompson_model import (
    FLOOR_ORDER,
    GH_NODES,
    GH_WEIGHTS,
    reflected,
    retry_floors,
    thompson_posterior,
)
from shared.cpa.policies.types import SamplerParams, Stats

# The log-Beta table of thompson_propensities: BULK_POINTS evenly over the mode +- BULK_SDS
# standard deviations (Laplace approximation in ln(rate)), TAIL_POINTS geometrically spaced
# down the left tail to where its mass is below 1e-9. Above mode + 6 sd a Beta's ln has less than
# 1e-9 of its mass (checked from a = 0.3 to 10^4, b = 1.5 to 10^6). A point every 0.095 sd: the
# linear interpolation between points is what bounds the error (64 points over +- 8 sd, 0.25 sd,
# erred by up to 0.009 at K = 100; docs/benchmarks.md#policies).
BULK_POINTS, BULK_SDS, TAIL_POINTS = 128, 6.0, 16

GRID_POINTS, SHARP_CELLS, SHARP_STRIDE = 192, 8.0, 4  # a sharp candidate adds every 4th bulk point

FIRST_TABLES = 8  # candidates tabulated first, to rule out the others without their tables
NEGLIGIBLE = 1e-9  # a candidate drawing above the others' floor with less probability is left out

_BULK = np.linspace(-BULK_SDS, BULK_SDS, BULK_POINTS)

_TAIL = np.geomspace(1.0, 1.0 / TAIL_POINTS, TAIL_POINTS)

_UNIT_GRID = np.linspace(0.0, 1.0, GRID_POINTS + 1)

COARSE_POINTS = 32  # where the largest draw's mass below `start` is checked (_raised_start)
_UNIT_COARSE = np.linspace(0.0, 1.0, COARSE_POINTS + 1)

# A floor f (SamplerParams.retry_level) is an atom: the draw is f with probability F(f). The grid holds
# f and f - FLOOR_STEP, so the atom is the rise over that step, the others' product taken at f.
FLOOR_STEP = FLOOR_ORDER / 4

# _products_of_the_others: a zero held at TINY, and a product below TINY_PRODUCT taken as 0
TINY, TINY_PRODUCT = 1e-200, 1e-150


def _laplace(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mode of ln(X), X ~ Beta(a, b), and the Laplace approximation's standard deviation."""
    wide = b <= 1.0  # the density in ln(rate) rises up to rate = 1
    safe_b = np.where(wide, 2.0, b)
    mode = np.where(wide, -1e-12, np.log(a / (a + safe_b - 1.0)))
    sd = np.where(wide, 1.0 / a, np.sqrt((safe_b - 1.0) / (a * (a + safe_b - 1.0))))
    return np.minimum(mode, -1e-12), sd


def _log_beta_cdf_tables(a: np.ndarray, b: np.ndarray, mode: np.ndarray, sd: np.ndarray) -> tuple[np.ndarray, ...]:
    """(u, F) each (K, Z): the distribution function of ln(X), X ~ Beta(a_j, b_j), tabulated per
    candidate (trapezoid rule on the density, normalised numerically) around its mode, (mode, sd)
    of _laplace."""
    mode = mode[:, None]
    sd = sd[:, None]
    bulk = np.minimum(mode + _BULK * sd, -1e-12)
    far = 21.0 / a[:, None] + BULK_SDS * sd  # density ~ exp(a u) far left: mass below is < 1e-9
    u = np.empty((len(a), TAIL_POINTS + BULK_POINTS))
    np.subtract(bulk[:, :1], _TAIL * far, out=u[:, :TAIL_POINTS])
    u[:, TAIL_POINTS:] = bulk
    log_density = a[:, None] * u + (b[:, None] - 1.0) * np.log(-np.expm1(u))
    density = np.exp(log_density - np.maximum.reduce(log_density, axis=1, keepdims=True))
    # the trapezoid's halves left out: the normalisation below divides them out exactly
    steps = (u[:, 1:] - u[:, :-1]) * (density[:, 1:] + density[:, :-1])
    cdf = np.empty_like(u)
    cdf[:, 0] = 0.0
    np.cumsum(steps, axis=1, out=cdf[:, 1:])
    return u, cdf / cdf[:, -1:]


def top_sds(a: np.ndarray) -> np.ndarray:
    """How many Laplace standard deviations above its mode ln(X), X ~ Beta(a, b), keeps under 1e-9
    of its mass: BULK_SDS for large a (ln X nearly Normal), fewer for small a, where ln X is skewed
    left (for a = 10, 4.65). Checked from a = 0.01 to 10^5, b = 1.01 to 10^8 (at most 9.8e-10;
    test_a_log_beta_keeps_under_1e_9_of_its_mass_above_its_top). A table still reaches BULK_SDS;
    this only says whose table can be left out."""
    return BULK_SDS - 5.5 / (1.0 + np.sqrt(a))


def _tables_that_matter(a, b, mode, sd, m, s, chosen, floors=None) -> tuple[np.ndarray, ...]:
    """(rows, u, F): _log_beta_cdf_tables of the candidates that can be live, `rows` (candidate
    indices), in that order; the others are never live. A candidate's top (above which it has under
    1e-9 of its mass, top_sds) is known without its table. The FIRST_TABLES candidates with the
    highest centres are tabulated first, and the highest point below which one of them has mass
    < 1e-7 bounds `start` from below: a candidate whose top is under it can never be live, so its
    table is not built (a reflected candidate's always is: its reflected draw can reach above its
    top).
    With re-tries the highest floor bounds every winning draw from below too: a candidate whose top
    is under it is never tabulated (at K = 100 with new statistics most are), and the first tables
    are not built apart: one call for every table costs less than two, and more tables are only
    more work, never another result. The first tables' bound ruled out nothing beyond the floor's
    in 1,200 candidate sets of bench.decision_cost (a floor, an offer's KL-UCB rate, lies above its
    observed rate; the bound, below the mass of the candidates that set it)."""
    k = len(a)
    if k <= FIRST_TABLES:
        return np.arange(k), *_log_beta_cdf_tables(a, b, mode, sd)
    reach = np.abs(s) * (np.max(np.abs(GH_NODES)) + 1.0)  # beyond any payout node's shift, either way
    top = np.minimum(mode + top_sds(a) * sd, -1e-12) + m + reach
    possible = np.ones(k, dtype=bool)
    if floors is not None:  # every draw is at least its floor: a top under the highest floor never wins
        top = np.maximum(top, floors)
        possible = top > float(np.max(floors)) - FLOOR_STEP
    if chosen is not None:
        possible |= chosen
    if floors is not None or np.add.reduce(possible) <= FIRST_TABLES:  # the floor rules out more than `start`
        rows = np.flatnonzero(possible)
        return rows, *_log_beta_cdf_tables(a[rows], b[rows], mode[rows], sd[rows])
    centres = np.where(possible, mode + m, -np.inf)
    first = np.argpartition(-centres, FIRST_TABLES)[:FIRST_TABLES]  # the likeliest to set `start`
    u, f = _log_beta_cdf_tables(a[first], b[first], mode[first], sd[first])
    floor_index = np.minimum(np.add.reduce(f < 1e-7, axis=1), f.shape[1] - 1)
    bound = float((u[np.arange(len(first)), floor_index] + m[first] - reach[first]).max())
    wanted = possible & (top > bound)
    if chosen is not None:
        wanted |= chosen
    wanted[first] = False
    rest = np.flatnonzero(wanted)
    if not len(rest):
        return first, u, f
    rest_u, rest_f = _log_beta_cdf_tables(a[rest], b[rest], mode[rest], sd[rest])
    return np.concatenate([first, rest]), np.concatenate([u, rest_u]), np.concatenate([f, rest_f])


def _mixture_cdfs(table_u, table_f, rows, shifts, weights, starts, x) -> np.ndarray:
    """Each candidate's sum_q w_q G(x - shift_q), shaped (candidates, points): component c is
    table row rows[c] shifted by shifts[c] with weight weights[c] (None: every weight 1), a
    candidate's components contiguous from starts[i]; x (points,) broadcast, or (candidates, points).

    One np.interp for every component: the rows' tables laid end to end, each moved by its own
    offset and padded with G = 0 below its first point and G = 1 above its last, as far as any of
    its queries reaches, so that each query reads its own row: np.interp(x, u, f, left=0, right=1)
    row by row, without a Python loop over candidates and without clamping every query."""
    u, f = table_u[rows], table_f[rows]
    n = len(rows)
    per_component = x if x.ndim == 1 or x.shape[0] == 1 else np.repeat(x, np.diff(np.append(starts, n)), 0)
    low, high = u[:, 0], u[:, -1]
    lowest = np.minimum.reduce(per_component, axis=-1) - shifts  # each component's least query
    highest = np.maximum.reduce(per_component, axis=-1) - shifts
    reach = max(float(np.maximum.reduce(low - lowest)), float(np.maximum.reduce(highest - high)), 0.0) + 1.0
    row_width = float(np.maximum.reduce(high - low)) + 2.0 * reach + 1.0
    first = row_width * np.arange(n)  # where row c's first point goes
    offsets = first - low
    padded_u = np.empty((n, u.shape[1] + 2))
    padded_u[:, 0] = first - reach
    np.add(u, offsets[:, None], out=padded_u[:, 1:-1])
    padded_u[:, -1] = high + offsets + reach
    padded_f = np.empty_like(padded_u)
    padded_f[:, 0], padded_f[:, 1:-1], padded_f[:, -1] = 0.0, f, 1.0
    queries = per_component + (offsets - shifts)[:, None]
    found = np.interp(queries.ravel(), padded_u.ravel(), padded_f.ravel()).reshape(queries.shape)
    if weights is None:
        return found
    if len(starts) == n:  # one component each: no mixture to sum
        return found * weights[:, None]
    return np.add.reduceat(found * weights[:, None], starts, axis=0)


def thompson_propensities(stats: Stats, params: SamplerParams, posterior=None, mask=None, floors=None) -> np.ndarray:
    """P(candidate i has the largest draw of thompson_draws), shaped (B, K), by numerical integration.

    Candidate j's draw is ln(rate_j) + m_j + s_j z, z one of the PAYOUT_NODES Gauss-Hermite nodes,
    so its distribution function is F_j(x) = sum_q w_q G_j(x - m_j - s_j z_q), G_j that of
    ln(rate_j) (tabulated by _log_beta_cdf_table). Then P(i) = integral of prod_{j != i} F_j dF_i,
    by the trapezoid rule on GRID_POINTS even points plus the table points of every candidate
    narrower than SHARP_CELLS cells (so every candidate's distribution is resolved), from the
    highest point below which some candidate has mass < 1e-7, raised by _raised_start to where the
    largest draw has mass under NEGLIGIBLE below. With retries (SamplerParams.retry_level) a draw is
    at least its floor f: F is 0 below f and jumps to F(f) there (`floors`, (B, K), retry_floors of
    `stats` when not given), and the integral starts at the highest floor at the latest.
    Error: that of the tables (trapezoid and linear interpolation at 0.095 standard deviation),
    measured against 10^6 draws in tests/unit/test_policies.py (up to 0.0015 at K = 100); the
    result is normalised to sum to 1. Padding (outside `mask`) has probability 0.
    """
    a_all, b_all, m_all, s_all = posterior if posterior is not None else thompson_posterior(stats, params)
    batch, k = stats.clicks.shape
    if floors is None:
        floors = retry_floors(stats, params, m_all)
    out = np.zeros((batch, k))
    for row in range(batch):
        columns = slice(None) if mask is None else np.flatnonzero(mask[row])
        parts = (a_all[row], b_all[row], m_all[row], s_all[row])
        floor = None if floors is None else floors[row][columns]
        out[row, columns] = _one_row(*(part[columns] for part in parts), params, floor)
    return out


def _components(live, slot, spread, shifts, m, weights) -> tuple[np.ndarray, ...]:
    """The mixture components of the live candidates' draws: (table row, shift, weight) of each, a
    candidate's table row being slot[candidate] and its components contiguous from starts[i]: one
    per payout node where the payout's spread matters (`spread`), else one at m (and weight None
    when that is every candidate's case)."""
    if not spread[live].any():
        return slot[live], m[live], None, np.arange(len(live))
    counts = np.where(spread[live], len(weights), 1)
    starts = np.cumsum(counts) - counts
    owner = np.repeat(np.arange(len(live)), counts)
    within = np.arange(len(owner)) - starts[owner]
    rows = live[owner]
    shift = np.where(spread[rows], shifts[rows, np.minimum(within, shifts.shape[1] - 1)], m[rows])
    weight = np.where(spread[rows], np.asarray(weights)[within], 1.0)
    return slot[rows], shift, weight, starts


def _raised_start(live, start, high, table_u, table_f, components, chosen) -> tuple[float, np.ndarray]:
    """`start` raised to the highest of COARSE_POINTS even points up to the live candidates' top
    below which the largest draw has mass under NEGLIGIBLE, and which live candidates to keep: those
    drawing above the new start with probability over NEGLIGIBLE. The mass below comes from the
    product of the candidates' unreflected distribution functions, at least that of the draws the
    integral takes (a reflected F, or F^samples, is at most F). Leaving a candidate out moves no
    probability by more than NEGLIGIBLE x K (it wins with at most that probability, and its factor
    in the others' products is within that of 1); a reflected candidate's draw lies above its
    threshold, not below its mean: it is always kept."""
    coarse = start + (float(np.maximum.reduce(high[live])) - start) * _UNIT_COARSE
    cdf = _mixture_cdfs(table_u, table_f, *components, coarse[None, :])
    at = max(int(np.add.reduce(np.multiply.reduce(cdf, axis=0) < NEGLIGIBLE)) - 1, 0)
    kept = cdf[:, at] <= 1.0 - NEGLIGIBLE
    if chosen is not None:
        kept |= chosen[live]
    return float(coarse[at]), kept


def _products_of_the_others(cdf: np.ndarray) -> np.ndarray:
    """prod_{j != i} F_j at every point, shaped as cdf (candidates, points), without cumulative
    products (numpy's are not vectorised): the product of all F_j, each held at least TINY, divided
    by F_i held the same way. Where no F_j but F_i is 0 that is the others' product exactly (the
    product underflows only where it is below 1e-150 or so, and then any value under 1e-150 would
    do); where another F_j is 0 it is at most TINY times a product of factors at most 1, and
    everything below TINY_PRODUCT is set to 0."""
    others = np.maximum(cdf, TINY)
    np.divide(np.multiply.reduce(others, axis=0), others, out=others)
    others[others < TINY_PRODUCT] = 0.0
    return others


def _one_row(
    a: np.ndarray, b: np.ndarray, m_all: np.ndarray, s: np.ndarray, params: SamplerParams, floors=None
) -> np.ndarray:
    """thompson_propensities of one request's K candidates, shaped (K,); `floors` (K,) or None."""
    k = len(a)
    out = np.zeros(k)
    m = m_all  # shifted below for a narrow optimistic payout; the reflection reads m_all
    mode, sd = _laplace(a, b)
    chosen = reflected(m_all, params)
    if floors is not None and not np.isfinite(floors).any():
        floors = None
    rows, table_u, table_f = _tables_that_matter(a, b, mode, sd, m_all, s, chosen, floors)
    slot = np.zeros(k, dtype=np.intp)  # each tabulated candidate's table row (the others are never live)
    slot[rows] = np.arange(len(rows))
    # a payout spread below 2 % of the log-rate spread changes the spread of the sum by 0.02 %:
    # one node (m) there
    spread = s > 0.02 * sd
    any_spread = bool(spread.any())
    all_nodes = np.abs(GH_NODES) if params.optimistic_payout else GH_NODES
    nodes = all_nodes if any_spread else np.zeros(1)
    weights = GH_WEIGHTS if any_spread else np.ones(1)
    if params.optimistic_payout:  # a narrow payout still shifts its candidate by s E|node|
        m = m + np.where(spread, 0.0, s * (GH_WEIGHTS @ all_nodes))
    shifts = m[:, None] + np.where(spread, s, 0.0)[:, None] * nodes if any_spread else m[:, None]  # (K, Q)
    first = np.minimum(np.add.reduce(table_f < 1e-7, axis=1), table_f.shape[1] - 1)
    low, high = np.full(k, -np.inf), np.full(k, -np.inf)
    low[rows] = table_u[np.arange(len(rows)), first] + np.minimum.reduce(shifts[rows], axis=1)
    high[rows] = table_u[:, -1] + np.maximum.reduce(shifts[rows], axis=1)
    threshold = None
    if chosen is not None:  # -inf: not reflected
        threshold = np.where(chosen, np.log(a / (a + b)) + m_all, -np.inf)
        low = np.maximum(low, threshold)  # no reflected draw falls below the candidate's mean
    if floors is not None:  # nor any draw below its floor
        low, high = np.maximum(low, floors), np.maximum(high, floors)
    start = float(np.maximum.reduce(low))
    live = np.flatnonzero(high > start if floors is None else (high > start) | (floors >= start))
    components = _components(live, slot, spread, shifts, m, weights)
    # and whose draw has more than NEGLIGIBLE of its mass above `start`. With re-tries `start` is
    # at least the highest floor already: there the pass raised no start and left out 2.5 of 16.5
    # live candidates (contextual, K = 100, new statistics), for more than keeping them costs
    if len(live) > 2 and floors is None:
        start, kept = _raised_start(live, start, high, table_u, table_f, components, chosen)
        if not kept.all():
            live = live[kept]
            components = _components(live, slot, spread, shifts, m, weights)
    if len(live) == 0:  # every distribution collapsed onto the same point: a tie
        return np.full(k, 1.0 / k)
    if len(live) == 1:
        out[live] = 1.0
        return out
    # the grid: GRID_POINTS evenly from `start` to the highest candidate's top, plus the table
    # points of every candidate narrower than SHARP_CELLS of its cells (so each is resolved)
    top = float(np.maximum.reduce(high[live]))
    cell = (top - start) / GRID_POINTS
    sharp = live[sd[live] ** 2 + s[live] ** 2 < (SHARP_CELLS * cell) ** 2]
    # each sharp candidate's table points at each of its nodes (one node where its payout is narrow)
    sharp_points = table_u[slot[sharp], TAIL_POINTS::SHARP_STRIDE, None] + shifts[sharp, None, :]
    if any_spread:
        own_nodes = (np.arange(shifts.shape[1]) == 0) | spread[sharp, None]
        sharp_points = sharp_points.transpose(0, 2, 1)[own_nodes]
    parts = [start + (top - start) * _UNIT_GRID, sharp_points.ravel()]
    if threshold is not None:  # the kink of each distribution function at its threshold
        parts.append(threshold[live][chosen[live]])
    floor = None
    if floors is not None:  # each atom: its floor and a point just below
        floor = floors[live]
        atoms = floor[floor >= start]
        parts += [atoms, atoms - FLOOR_STEP]
    points = np.concatenate(parts)
    # sorted, from `start` on (an atom at `start` from just below it); a point twice is an interval
    # of no mass, which adds nothing
    points = np.sort(points[points >= start - 2 * FLOOR_STEP])
    # each live candidate's distribution function on the points: one mixture component per node
    # (one for a narrow payout), every component of every candidate interpolated in one call
    cdf = _mixture_cdfs(table_u, table_f, *components, points[None, :])
    if threshold is not None and chosen[live].any():  # reflected above t: F(x) - F(2t - x) for x >= t, else 0
        t = np.where(chosen[live], threshold[live], start)[:, None]  # (any finite t where not reflected)
        mirrored = _mixture_cdfs(table_u, table_f, *components, 2 * t - points)
        cdf = np.where(chosen[live][:, None], np.where(points < t, 0.0, np.maximum(cdf - mirrored, 0.0)), cdf)
    if params.samples > 1:  # the largest of `samples` independent draws
        cdf = cdf ** int(params.samples)
    if floor is not None:
        cdf = np.where(points < floor[:, None], 0.0, cdf)
    others = _products_of_the_others(cdf)
    # the trapezoid rule: sum over intervals of F_i's rise times the others' product's mean there
    mass = cdf[:, 1:] - cdf[:, :-1]
    shares = np.vecdot(mass, others[:, 1:]) + np.vecdot(mass, others[:, :-1])
    out[live] = shares / np.add.reduce(shares)
    return out
