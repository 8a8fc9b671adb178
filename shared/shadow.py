"""Decisions as the serving config (shared/serving_config.py) says, with the shadow policy's
would-be decision beside them. Pure: the stores pass in the statistics they read.

Stored fields (their names and shapes are what `make evaluate` reads):
- click document: `served_by`, and with a CPA shadow `shadow: {sampler, offer_id, probability}`,
  the offer the shadow sampler would have chosen and the probability it had of choosing it;
- episode: `served_by`, `inclusion` (offer -> P(offer in the live slate), shared/customer/
  propensity.py), and with an agent shadow `shadow: {policy, slate, inclusion}`.

The shadow draws from its own generator (SHADOW_RNG), never the live one, and reads nothing the
live decision does not: with the same statistics and the same live generator state, the live
answer is the same with or without a shadow (tests/test_shadow.py). Because the shadow's draw is
independent of the live one given the statistics, E[reward x 1{shadow offer = live offer} /
live probability] is the shadow's value per click (the replay estimator), and the agreement rate
is the share of decisions where the two offers are equal.
"""

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from shared.cpa.policies import Choice, OfferStats, SamplerParams, choose
from shared.customer import propensity
from shared.serving_config import ServingConfig

SHADOW_RNG = np.random.default_rng()
INCLUSION_RNG = np.random.default_rng()


def cpa_decision(
    config: ServingConfig,
    sampler: str,
    offer_ids: list[int],
    stats: Sequence[OfferStats] | Callable[[str], Sequence[OfferStats]],
    total_clicks: int,
    params: SamplerParams,
    rng: np.random.Generator,
    shadow_rng: np.random.Generator | None = None,
) -> tuple[Choice, dict]:
    """The live choice and the click document's fields that record how it was made. `stats`: the
    candidates' statistics, or sampler -> the statistics that sampler decides on."""
    stats_for = stats if callable(stats) else lambda _: stats
    sampler, forced, served_by = config.cpa_plan(sampler, offer_ids)
    choice = (
        Choice(forced, 1.0) if forced is not None else choose(sampler, stats_for(sampler), total_clicks, params, rng)
    )
    fields = {"sampler": sampler, "served_by": served_by}
    if config.cpa_shadow is not None:
        shadow = config.cpa_shadow
        would = choose(shadow, stats_for(shadow), total_clicks, params, shadow_rng or SHADOW_RNG)
        fields["shadow"] = {
            "sampler": config.cpa_shadow,
            "offer_id": offer_ids[would.index],
            "probability": would.probability,
        }
    return choice, fields


def slate_fields(
    config: ServingConfig,
    served_by: str,
    policy: str,
    segment: str,
    eligible: Sequence[str],
    slate: Sequence[str],
    counts_of: Callable[[str], Mapping],
    customer=None,
    rng: np.random.Generator | None = None,
) -> dict:
    """The episode's `served_by`, `inclusion` and, with an agent shadow, `shadow`."""
    rng = rng or INCLUSION_RNG
    fields = {
        "served_by": served_by,
        "inclusion": propensity.inclusion(policy, segment, eligible, counts_of(policy), slate, rng, customer),
    }
    if config.agent_shadow is not None:
        fields["shadow"] = propensity.shadow_slate(config.agent_shadow, segment, eligible, counts_of, rng, customer)
    return fields
