"""Every CPA sampler and its traits, in one place. The store, the shadow, replay and the benchmark ask
this registry what a sampler needs and does; none of them tests a sampler's name.

A new sampler is one file with its core (`core(stats, total_clicks, params, rng, propensity, mask)
-> Decisions`, pure) and one line below.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from shared.cpa.policies.basic import epsilon_core, greedy_core, random_core
from shared.cpa.policies.common import candidates
from shared.cpa.policies.thompson import thompson_core
from shared.cpa.policies.thompson_integral import thompson_propensities
from shared.cpa.policies.types import Core, SamplerParams, Stats
from shared.cpa.policies.ucb import klucb_core, ucb_core


@dataclass(frozen=True)
class Sampler:
    name: str
    core: Core
    # Decides on the statistics since each offer's last detected market change (shared/cpa/drift.py);
    # the others see every click since the offer began.
    forgets: bool = False
    # (stats, params, mask) -> (B, K) the probability of every candidate, exactly; None: offline
    # evaluation estimates it by running the core again (shared/cpa/replay.py).
    probabilities: Callable[..., np.ndarray] | None = None


def _thompson_probabilities(stats: Stats, params: SamplerParams, mask=None) -> np.ndarray:
    """thompson's probability of every candidate, exploration floor included."""
    shares = thompson_propensities(stats, params, mask=mask)
    found = params.floor / candidates(mask, shares.shape) + (1.0 - params.floor) * shares
    return found if mask is None else np.where(mask, found, 0.0)


SAMPLERS: dict[str, Sampler] = {
    sampler.name: sampler
    for sampler in (
        Sampler("random", random_core),
        Sampler("greedy", greedy_core),
        Sampler("epsilon", epsilon_core),
        Sampler("ucb", ucb_core),
        Sampler("klucb", klucb_core),
        Sampler("thompson", thompson_core, forgets=True, probabilities=_thompson_probabilities),
    )
}
DEFAULT_SAMPLER = "thompson"
