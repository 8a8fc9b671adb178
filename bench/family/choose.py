"""Ragged candidate sets for the project's batched policy cores: `choose(..., mask)`.

`mask` (B, K) says which positions are candidates of each request; a policy must behave as if it
had been called with those candidates alone. `shared.cpa.policies.choose_batch` takes the mask
(candidates outside it get probability 0 and are never chosen) on a batch padded with zero
statistics: the statistics of the positions outside the mask (offers not offered at this click,
which still have counts of their own) are zeroed before the call, so no row reduction of a core
(fitted prior, pooled payout spread, total clicks) sees them.
"""

import numpy as np

from bench.family.prototypes import PROTOTYPES
from shared.cpa.policies import SamplerParams, Stats, choose_batch


def choose(
    sampler: str,
    stats: Stats,
    total_clicks: np.ndarray,
    params: SamplerParams,
    rng: np.random.Generator,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """(B,) chosen positions, each inside its row's mask; `sampler` a project sampler or one of
    bench/family/prototypes.py."""
    if sampler in PROTOTYPES:
        padded = stats if mask is None else Stats(*(np.where(mask, part, 0.0) for part in stats))
        return PROTOTYPES[sampler](padded, total_clicks, params, rng, False, mask).index
    if mask is None or mask.all():
        return choose_batch(sampler, stats, total_clicks, params, rng, propensity=False).index
    padded = Stats(*(None if part is None else np.where(mask, part, 0.0) for part in stats))
    return choose_batch(sampler, padded, total_clicks, params, rng, propensity=False, mask=mask).index
