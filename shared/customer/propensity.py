"""Per-offer inclusion probabilities of a slate policy: P(offer is in the slate), for every eligible
offer, the propensities an off-policy evaluation of slates needs. Pure, no I/O.

- Deterministic agents (`static`, `linear-ucb`: the same counts give the same slate) are exact:
  1 for the offers of their slate, 0 for the others.
- The randomised agents (`thompson-slate`, `linear-ts`) are estimated from n - 1 independent slates
  drawn through `agents.slates` in one vectorised call (rows = n - 1), plus the slate actually
  served (itself one more draw of the same distribution): p̂ = (times in the n slates) / n.
  p̂ is unbiased, and an offer that was served never gets 0 (an IPS weight stays finite).
  Error bound (Hoeffding): P(|p̂ - p| > ε) <= 2 exp(-2 n ε²) for each offer, so
  ε = sqrt(ln(2 / δ) / (2 n)) (`error_bound`); the standard error is sqrt(p (1 - p) / n) <= 0.5 / sqrt(n).
  n = 1,001 for `thompson-slate`: ε = 0.052 at 99 %, 0.062 at 99.9 %, standard error <= 0.016.
  n = 201 for `linear-ts`, whose draws cost far more per row (`python -m bench.inclusion_cost`
  measures both): ε = 0.115 at 99 %, standard error <= 0.036. The number of draws is the registry's
  `inclusion_draws`. tests/test_shadow.py checks the estimate against a reference computed
  independently of the agent's code.

The draws use their own generator, never the live one: the live slate is the same with or
without this estimate (and with or without a shadow).
"""

import collections
import itertools
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from shared.customer import agents

DRAWS = 1000  # the default of the registry's `inclusion_draws`


def draws_of(policy: str) -> int:
    return agents.AGENTS[policy].inclusion_draws


def error_bound(draws: int = DRAWS, confidence: float = 0.99) -> float:
    """ε with P(|p̂ - p| > ε) <= 1 - confidence for one offer (Hoeffding, draws + 1 samples)."""
    return math.sqrt(math.log(2 / (1 - confidence)) / (2 * (draws + 1)))


def inclusion(
    policy: str,
    segment: str,
    eligible: Sequence[str],
    counts: Mapping,
    served: Sequence[str],
    rng: np.random.Generator,
    customer=None,
    draws: int | None = None,
) -> dict[str, float]:
    """P(offer in the slate) for every eligible offer, given the slate `served` that the policy
    produced with the same inputs (counted as one of the draws)."""
    if agents.AGENTS[policy].deterministic:
        return {offer: 1.0 if offer in served else 0.0 for offer in eligible}
    draws = draws_of(policy) if draws is None else draws
    kwargs = {} if customer is None else {"customer": customer}
    drawn = agents.slates(policy, segment, eligible, counts, rng, draws, **kwargs)
    hits = collections.Counter(itertools.chain(served, *drawn))
    return {offer: hits[offer] / (draws + 1) for offer in eligible}


def shadow_slate(
    policy: str,
    segment: str,
    eligible: Sequence[str],
    counts_of: Callable[[str], Mapping],
    rng: np.random.Generator,
    customer=None,
    draws: int | None = None,
) -> dict:
    """What `policy` would have served, with its inclusion probabilities: the episode's `shadow`
    field {policy, slate, inclusion}. `counts_of(policy)` gives the evidence that policy reads."""
    counts = counts_of(policy)
    kwargs = {} if customer is None else {"customer": customer}
    slate = agents.slates(policy, segment, eligible, counts, rng, **kwargs)[0]
    return {
        "policy": policy,
        "slate": slate,
        "inclusion": inclusion(policy, segment, eligible, counts, slate, rng, customer, draws),
    }
