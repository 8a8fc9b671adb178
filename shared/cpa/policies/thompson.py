"""Thompson sampling on revenue per click, the default sampler; its logged probability is exact
(thompson_integral), remembered per posterior for single requests. Pure.
"""

import functools

import numpy as np

from shared.cpa.policies.common import first_max, floored
from shared.cpa.policies.thompson_integral import thompson_propensities
from shared.cpa.policies.thompson_model import floors_at, retry_floors, thompson_draws, thompson_posterior
from shared.cpa.policies.types import Decisions, SamplerParams, Stats


def thompson_core(stats: Stats, total_clicks, params, rng, propensity=True, mask=None) -> Decisions:
    """Thompson sampling on revenue per click: Beta on the rate times a lognormal posterior on the
    mean payout (payout_normal). The probability is computed by thompson_propensities."""
    posterior = thompson_posterior(stats, params)
    floors = remembered_floors(stats, params, posterior[2])
    index = first_max(thompson_draws(stats, params, rng, 1, posterior, mask, floors)[0])
    probabilities = remembered_propensities(stats, params, posterior, mask, floors) if propensity else None
    return floored(index, stats.clicks.shape[1], probabilities, params, rng, mask)


def remembered_propensities(stats: Stats, params: SamplerParams, posterior: tuple, mask, floors) -> np.ndarray:
    """thompson_propensities on `posterior` (thompson's, or contextual's in the click's context),
    remembered for a single request without padding: they depend on the posterior, the floors and
    the draw's options alone."""
    if stats.clicks.shape[0] != 1 or mask is not None:
        return thompson_propensities(stats, params, posterior, mask, floors)
    key = _bytes(*posterior, floors if floors is not None else np.zeros(0))
    shape = (params.optimistic, params.optimistic_payout_multiple, params.optimistic_payout, int(params.samples))
    return _one_request_propensities(*key, *shape)[None, :]


def remembered_floors(stats: Stats, params: SamplerParams, m: np.ndarray) -> np.ndarray | None:
    """retry_floors, remembered for a single request as its propensities are: between two cache
    refreshes the same candidates' floors come again, and their KL-UCB bound (about 0.1 ms at K =
    100) would be most of a decision whose probability is remembered."""
    if params.retry_level is None or stats.clicks.shape[0] != 1:
        return retry_floors(stats, params, m)
    return _one_request_floors(*_bytes(stats.clicks, stats.conversions, m), params.retry_level)


def _bytes(*parts: np.ndarray) -> tuple[bytes, ...]:
    """The arrays as the remembering functions' keys."""
    return tuple(np.ascontiguousarray(part, dtype=float).tobytes() for part in parts)


@functools.lru_cache(maxsize=256)
def _one_request_floors(clicks: bytes, conversions: bytes, m: bytes, retry_level: float) -> np.ndarray:
    """floors_at of one request from its counters' bytes. Read-only."""
    floors = floors_at(*(np.frombuffer(part)[None, :] for part in (clicks, conversions, m)), retry_level)
    floors.setflags(write=False)
    return floors


# contexts multiply the posteriors of one candidate set (up to about 6 KB an entry at K = 100)
@functools.lru_cache(maxsize=1024)
def _one_request_propensities(
    a: bytes,
    b: bytes,
    m: bytes,
    s: bytes,
    floors: bytes,
    optimistic: bool,
    optimistic_payout_multiple: float | None,
    optimistic_payout: bool,
    samples: int,
) -> np.ndarray:
    """thompson_propensities of one request, remembered by its posterior and the options that shape
    the draw (all that thompson_propensities reads): the posterior changes only when the candidates'
    statistics do (a cache refresh, about once a second), while the same candidate set (in the same
    context, for `contextual`) may come thousands of times a second; at K = 100 the integral costs
    milliseconds. Read-only."""
    posterior = tuple(np.frombuffer(part)[None, :] for part in (a, b, m, s))
    floor = np.frombuffer(floors)[None, :] if floors else None
    params = SamplerParams(
        optimistic=optimistic,
        optimistic_payout_multiple=optimistic_payout_multiple,
        optimistic_payout=optimistic_payout,
        samples=samples,
    )
    probabilities = thompson_propensities(Stats.zeros(1, posterior[0].shape[1]), params, posterior, floors=floor)[0]
    probabilities.setflags(write=False)
    return probabilities
