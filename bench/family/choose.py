"""Ragged candidate sets for the project's batched policy cores: `choose(..., mask)`.

`mask` (B, K) says which positions are candidates of each request; a policy must behave as if it
had been called with those candidates alone (the rest get probability 0 and are never chosen).
When `shared.cpa.policies.choose_batch` takes a mask itself it is handed over; otherwise the rows
are grouped by their number of candidates and each group runs on its gathered candidates, which is
exactly a call with those candidates alone (one core call per distinct count).
"""

import inspect

import numpy as np

from shared.cpa.policies import SamplerParams, Stats, choose_batch

TAKES_MASK = "mask" in inspect.signature(choose_batch).parameters


def choose(
    sampler: str,
    stats: Stats,
    total_clicks: np.ndarray,
    params: SamplerParams,
    rng: np.random.Generator,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """(B,) chosen positions, each inside its row's mask."""
    if mask is None or mask.all():
        return choose_batch(sampler, stats, total_clicks, params, rng, propensity=False).index
    if TAKES_MASK:
        return choose_batch(sampler, stats, total_clicks, params, rng, propensity=False, mask=mask).index
    counts = mask.sum(axis=1)
    chosen = np.empty(len(counts), dtype=int)
    width = mask.shape[1]
    for count in np.unique(counts):
        rows = np.flatnonzero(counts == count)
        if count == width:
            columns = np.broadcast_to(np.arange(width), (len(rows), width))
        else:
            columns = np.nonzero(mask[rows])[1].reshape(len(rows), count)
        sub = Stats(*(None if part is None else part[rows[:, None], columns] for part in stats))
        pick = choose_batch(sampler, sub, total_clicks[rows], params, rng, propensity=False).index
        chosen[rows] = columns[np.arange(len(rows)), pick]
    return chosen
