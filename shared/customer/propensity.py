"""Per-offer inclusion probabilities of a slate policy: P(offer is in the slate), for every eligible
offer, the propensities an off-policy evaluation of slates needs. Pure, no I/O.

- Deterministic agents (`static`, `linear-ucb`: the same counts give the same slate) are exact:
  1 for the offers of their slate, 0 for the others.
- The randomised agents (`thompson-slate`, `linear-ts`) are estimated from DRAWS independent slates
  drawn through `agent.slates` in one vectorised call (rows=DRAWS), plus the slate actually served
  (itself one more draw of the same distribution): p̂ = (times in the DRAWS slates + 1 if served) /
  (DRAWS + 1). p̂ is unbiased, and an offer that was served never gets 0 (an IPS weight stays finite).
  Error bound (Hoeffding, n = DRAWS + 1 = 1001 draws): P(|p̂ - p| > ε) <= 2 exp(-2 n ε²), so for
  each offer |p̂ - p| <= 0.052 with probability 99 % and <= 0.061 with probability 99.9 %; the
  standard error is sqrt(p (1 - p) / n) <= 0.016. tests/test_shadow.py checks the estimate
  against the exact probabilities of a case computed by enumeration.

The draws use their own generator, never the live one: the live slate is the same with or
without this estimate (and with or without a shadow).
"""

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from shared.customer import agent

DRAWS = 1000
DETERMINISTIC = frozenset({agent.STATIC, agent.LINEAR_UCB})


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
    draws: int = DRAWS,
) -> dict[str, float]:
    """P(offer in the slate) for every eligible offer, given the slate `served` that the policy
    produced with the same inputs (counted as one of the draws)."""
    if policy in DETERMINISTIC:
        return {offer: 1.0 if offer in served else 0.0 for offer in eligible}
    kwargs = {} if customer is None else {"customer": customer}
    drawn = agent.slates(policy, segment, eligible, counts, rng, draws, **kwargs)
    index = {offer: column for column, offer in enumerate(eligible)}
    hits = np.zeros(len(eligible))
    flat = [index[offer] for slate in [*drawn, list(served)] for offer in slate]
    np.add.at(hits, flat, 1.0)
    return {offer: float(hits[index[offer]] / (draws + 1)) for offer in eligible}


def shadow_slate(
    policy: str,
    segment: str,
    eligible: Sequence[str],
    counts_of: Callable[[str], Mapping],
    rng: np.random.Generator,
    customer=None,
    draws: int = DRAWS,
) -> dict:
    """What `policy` would have served, with its inclusion probabilities: the episode's `shadow`
    field {policy, slate, inclusion}. `counts_of(policy)` gives the evidence that policy reads."""
    counts = counts_of(policy)
    kwargs = {} if customer is None else {"customer": customer}
    slate = agent.slates(policy, segment, eligible, counts, rng, **kwargs)[0]
    return {
        "policy": policy,
        "slate": slate,
        "inclusion": inclusion(policy, segment, eligible, counts, slate, rng, customer, draws),
    }
