"""CPA bandit policies: pure functions of the candidates' statistics and a random generator.

Every policy maximises revenue per click (conversion rate x payout), never the rate alone. A policy
returns the index of the chosen candidate and the probability with which it was chosen (the
propensity an offline evaluation needs); no policy does any I/O.

Each policy is written once, vectorised over a leading batch axis (`Stats`: arrays shaped (B, K), B
requests over K candidates, ragged sets padded and masked). `choose()` runs that core on a batch of
one (the service); `choose_batch()` runs many requests at once (replay, the benchmark). What each
sampler needs and does is in `registry.SAMPLERS`.

Files: types.py (the vocabulary), common.py (shared helpers, masks, the exploration floor),
basic.py (random, greedy, epsilon), ucb.py (ucb, klucb), posterior.py and thompson_model.py
(thompson's posterior and draws), thompson_integral.py (its exact probabilities), thompson.py (its
core), registry.py (every sampler's traits).
"""

from collections.abc import Sequence

import numpy as np

from shared.cpa.policies.posterior import (
    LOG_MU_PRIOR_VAR,
    LOG_SIGMA2_FLOOR,
    LOG_SIGMA2_PRIOR,
    beta_posterior,
    fitted_beta_prior,
    log_payout_posterior,
    payout_normal,
    payout_posterior,
)
from shared.cpa.policies.registry import DEFAULT_SAMPLER, SAMPLERS, Sampler
from shared.cpa.policies.thompson_integral import thompson_propensities
from shared.cpa.policies.thompson_model import retry_floors, thompson_draws, thompson_posterior
from shared.cpa.policies.types import (
    DEFAULT_FLOOR,
    OPTIMISTIC_PAYOUT_MULTIPLE,
    UNSEEN_PAYOUT_SPREAD,
    WARMUP_CLICKS,
    Choice,
    Decisions,
    OfferStats,
    SamplerParams,
    Stats,
    discounted,
)
from shared.cpa.policies.ucb import klucb_rate

__all__ = [
    "DEFAULT_FLOOR",
    "DEFAULT_SAMPLER",
    "LOG_MU_PRIOR_VAR",
    "LOG_SIGMA2_FLOOR",
    "LOG_SIGMA2_PRIOR",
    "OPTIMISTIC_PAYOUT_MULTIPLE",
    "SAMPLERS",
    "UNSEEN_PAYOUT_SPREAD",
    "WARMUP_CLICKS",
    "Choice",
    "Decisions",
    "OfferStats",
    "Sampler",
    "SamplerParams",
    "Stats",
    "beta_posterior",
    "choose",
    "choose_batch",
    "discounted",
    "fitted_beta_prior",
    "klucb_rate",
    "log_payout_posterior",
    "payout_normal",
    "payout_posterior",
    "retry_floors",
    "thompson_draws",
    "thompson_posterior",
    "thompson_propensities",
]


def choose(
    sampler: str,
    stats: Sequence[OfferStats] | Stats,
    total_clicks: int,
    params: SamplerParams,
    rng: np.random.Generator,
) -> Choice:
    """One request: the chosen candidate's index and its probability. `stats`: the candidates'
    statistics, or already a batch of one (Stats shaped (1, K))."""
    table = stats if isinstance(stats, Stats) else Stats.of(stats) if len(stats) else None
    if table is None or table.clicks.shape[-1] == 0:
        raise ValueError("no candidates")
    decided = SAMPLERS[sampler].core(table, np.array([total_clicks]), params, rng, True)
    return Choice(int(decided.index[0]), float(decided.probability[0]))


def choose_batch(
    sampler: str,
    stats: Stats,
    total_clicks: np.ndarray,
    params: SamplerParams,
    rng: np.random.Generator,
    propensity: bool = True,
    mask: np.ndarray | None = None,
) -> Decisions:
    """`choose` for B requests at once; `mask` (B, K) marks each row's candidates when the rows have
    different numbers of them (padding with zero statistics)."""
    return SAMPLERS[sampler].core(stats, np.asarray(total_clicks), params, rng, propensity, mask)
