"""Thompson's draw of each candidate's log revenue per click: ln(rate) + ln(mean payout), the payout a
node of a Gauss-Hermite discretisation, with the optional optimism (reflection above the mean). Pure.
"""

import dataclasses

import numpy as np

from shared.cpa.policies.posterior import beta_posterior, payout_normal
from shared.cpa.policies.types import SamplerParams, Stats
from shared.cpa.policies.ucb import klucb_rate
from shared.platform import remembered

# Floors of candidates with exactly equal statistics would tie; each floor is lowered by this much per
# position, so the first of them wins, as np.argmax breaks ties (thompson_propensities agrees).
FLOOR_ORDER = 1e-9

# Thompson draws the log payout from a PAYOUT_NODES-point Gauss-Hermite discretisation of
# Normal(m, s^2) (it keeps the first 2 * PAYOUT_NODES - 1 moments): that makes each candidate's
# draw a finite mixture of shifted log-Beta variables, whose distribution function thompson_propensities
# computes on a grid, so the logged probability is the policy's own (see thompson_propensities).
PAYOUT_NODES = 5
GH_NODES, GH_WEIGHTS = np.polynomial.hermite_e.hermegauss(PAYOUT_NODES)
GH_WEIGHTS = GH_WEIGHTS / GH_WEIGHTS.sum()
GH_CUMULATIVE = np.cumsum(GH_WEIGHTS)


_PARAMS = tuple(field.name for field in dataclasses.fields(SamplerParams))  # a subclass's own fields are not read
_remembered = remembered.ByIdentity(256)  # posteriors of read-only statistics, by the Stats and the parameters


def thompson_posterior(stats: Stats, params: SamplerParams) -> tuple[np.ndarray, ...]:
    """(a, b, m, s), each (B, K): rate ~ Beta(a, b), ln mean payout ~ Normal(m, s^2). A single
    request's posterior on read-only statistics (the store's, one Stats per set of cached copies)
    is remembered by that object and the parameters, read-only too: between two cache refreshes the
    same candidates' statistics come again, and at K = 100 the payout posterior is most of a
    decision whose probability is remembered. Statistics a caller may still change (writeable)
    are never remembered."""
    if stats.clicks.shape[0] != 1 or not _read_only(stats) or isinstance(params.payouts, np.ndarray):
        return _computed_posterior(stats, params)
    options = tuple(getattr(params, name) for name in _PARAMS)
    return _remembered.get(stats, options, lambda: _read_only_posterior(stats, params))


def _read_only_posterior(stats: Stats, params: SamplerParams) -> tuple[np.ndarray, ...]:
    posterior = tuple(np.array(part, dtype=float) for part in _computed_posterior(stats, params))
    for part in posterior:
        part.setflags(write=False)
    return posterior


def _read_only(stats: Stats) -> bool:
    return not any(part.flags.writeable for part in stats if part is not None)


def _computed_posterior(stats: Stats, params: SamplerParams) -> tuple[np.ndarray, ...]:
    a, b = beta_posterior(stats, params)  # (B, K) already: the prior's (B, 1) plus the counts
    m, s = payout_normal(stats, params)
    return a, b, m, s


def thompson_draws(
    stats: Stats,
    params: SamplerParams,
    rng: np.random.Generator,
    draws: int = 1,
    posterior=None,
    mask=None,
    floors=None,
) -> np.ndarray:
    """`draws` x B x K samples of each candidate's log revenue per click from its posterior:
    ln(rate) + ln(mean payout), rate ~ beta_posterior, ln payout a node of payout_normal's
    Gauss-Hermite discretisation (see PAYOUT_NODES). Padding (outside `mask`) draws -inf."""
    a, b, m, s = posterior if posterior is not None else thompson_posterior(stats, params)
    samples = max(int(params.samples), 1)
    size = (draws * samples, *stats.clicks.shape)
    with np.errstate(divide="ignore"):
        log_rate = np.log(rng.beta(a, b, size=size))
    if np.any(s > 0):
        node = np.minimum(np.searchsorted(GH_CUMULATIVE, rng.random(size)), PAYOUT_NODES - 1)
        nodes = np.abs(GH_NODES) if params.optimistic_payout else GH_NODES
        values = _optimism(log_rate + m + s * nodes[node], a, b, m, params, mask)
    else:
        values = _optimism(log_rate + m, a, b, m, params, mask)
    if floors is None:  # the caller's retry_floors, or none given (retries off: None again, at no cost)
        floors = retry_floors(stats, params, m)
    if floors is not None:
        values = np.maximum(values, floors)
    if mask is not None:
        values = np.where(mask, values, -np.inf)
    if samples == 1:
        return values
    return np.maximum.reduce(values.reshape(draws, samples, *stats.clicks.shape), axis=1)


def retry_floors(stats: Stats, params: SamplerParams, m: np.ndarray) -> np.ndarray | None:
    """(B, K) the least log revenue per click each candidate draws (SamplerParams.retry_level): ln of
    its KL-UCB rate at retry_level x ln(clicks on the row) plus m, its payout's centre; -inf for a
    candidate without clicks (its prior draw decides). None when retries are off. The statistics
    outside a row's candidates are zero (choose_batch's padding), so the row's clicks are its
    candidates'."""
    if params.retry_level is None:
        return None
    return floors_at(stats.clicks, stats.conversions, m, params.retry_level)


def floors_at(clicks: np.ndarray, conversions: np.ndarray, m: np.ndarray, retry_level: float) -> np.ndarray:
    """retry_floors from the counters it reads."""
    level = retry_level * np.log(np.maximum(np.add.reduce(clicks, axis=-1, keepdims=True), np.e))
    with np.errstate(divide="ignore"):
        floors = np.log(klucb_rate(conversions, clicks, level)) + m
    floors = floors - FLOOR_ORDER * np.arange(clicks.shape[-1])
    return np.where(clicks > 0, floors, -np.inf)


def reflected(m: np.ndarray, params: SamplerParams, mask=None) -> np.ndarray | None:
    """Which candidates' draws are reflected above their mean (see SamplerParams.optimistic and
    optimistic_payout_multiple), shaped as m; None when none is. The median is over each row's
    candidates (`mask`)."""
    if params.optimistic:
        return np.ones(np.shape(m), dtype=bool)
    if params.optimistic_payout_multiple is None:
        return None
    median = _median(m) if mask is None else _row_median(m, mask)
    high = m - median > np.log(params.optimistic_payout_multiple)
    return high if high.any() else None


def _median(values: np.ndarray) -> np.ndarray:
    """np.median(values, axis=-1, keepdims=True), NaN included, from one np.partition: np.median's
    own wrappers cost three times the partition at K = 100, and a decision takes two medians."""
    k = values.shape[-1]
    ordered = np.partition(values, [(k - 1) // 2, k // 2, k - 1], axis=-1)
    middle = (ordered[..., (k - 1) // 2 : (k - 1) // 2 + 1] + ordered[..., k // 2 : k // 2 + 1]) / 2.0
    return np.where(np.isnan(ordered[..., -1:]), np.nan, middle)


def _row_median(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """np.median of each row's candidates, shaped (B, 1): the two middle values of the sorted
    candidates averaged as np.median does (np.nanmedian over a NaN-padded row goes through masked
    arrays, several times slower on a batch). A row without candidates gives +inf: nothing reflected."""
    ordered = np.sort(np.where(mask, values, np.inf), axis=-1)
    count = np.add.reduce(mask, axis=-1, keepdims=True)
    low = np.take_along_axis(ordered, np.maximum(count - 1, 0) // 2, axis=-1)
    high = np.take_along_axis(ordered, count // 2 - (count == 0), axis=-1)
    return (low + high) / 2.0


def _optimism(draws: np.ndarray, a, b, m, params: SamplerParams, mask=None) -> np.ndarray:
    chosen = reflected(m, params, mask)
    if chosen is None:
        return draws
    threshold = np.log(a / (a + b)) + m
    return np.where(chosen, threshold + np.abs(draws - threshold), draws)
