"""How /sample decisions are served: the kill switch's `cpa` section of the tenant's `config/serving`
(under the operators' `config/operator`, whose fields win for every tenant), and the shadow
sampler's would-be decision logged beside the live one. Pure (the store passes in the statistics it
read and the documents the platform cached, shared/platform/config.py).

    {"cpa": {"sampler": "greedy", "offer_id": 42, "shadow": "epsilon", "holdout": 0.02}}

- sampler: every /sample decision uses this sampler, whatever the request asks for;
- offer_id: /sample answers this offer whenever it is among the candidates (probability 1); other
  clicks are served as usual. It wins over `sampler`;
- shadow: the sampler logged beside each decision; default CPA_SHADOW_SAMPLER from the environment,
  "off" for none;
- holdout: the share of clicks served uniformly at random as the holdout, kept out of learning
  (shared/cpa/holdout.py); default HOLDOUT_SHARE from the environment, else 0.02.
A field that is not valid (an unknown sampler, an offer id that is not an integer) is ignored and
logged; the other fields still apply.

Stored on the click (the names and shapes `make evaluate` reads): `served_by`, and with a shadow
`shadow: {sampler, offer_id, probability}`, the offer the shadow sampler would have chosen and the
probability it had of choosing it. The shadow draws from its own generator (SHADOW_RNG), never the
live one, and reads nothing the live decision does not: with the same statistics and the same live
generator state, the live answer is the same with or without a shadow. Because the shadow's draw is
independent of the live one given the statistics, E[reward x 1{shadow offer = live offer} / live
probability] is the shadow's value per click (the replay estimator).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from shared.cpa import caps
from shared.cpa.policies import SAMPLERS, Choice, OfferStats, SamplerParams, Stats, choose
from shared.platform import config, holdout

SHADOW_RNG = np.random.default_rng()


@dataclass(frozen=True)
class CpaServing(holdout.HoldoutShare):
    sampler: str | None = None
    offer_id: int | None = None
    shadow: str | None = None
    holdout: float | None = None  # the holdout's share as configured (None: the default)

    def plan(self, sampler: str, candidates: list[int]) -> tuple[str, int | None, str]:
        """(sampler to run, index of a forced offer or None, served_by) for one /sample request."""
        if self.offer_id is not None and self.offer_id in candidates:
            return sampler, candidates.index(self.offer_id), f"{config.FORCED_PREFIX}offer"
        if self.sampler is not None:
            return self.sampler, None, f"{config.FORCED_PREFIX}{self.sampler}"
        return sampler, None, sampler


def _offer_id(value, where: str, problems: list[str]) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        problems.append(f"{where}: {str(value)[:60]!r} is not a non-negative integer")
        return None
    return value


SECTION = config.Section(
    "cpa", CpaServing, config.serving_rules("sampler", SAMPLERS, "CPA_SHADOW_SAMPLER") | {"offer_id": _offer_id}
)
parse, parse_both = SECTION.parse, SECTION.parse_both


def decide(
    serving: CpaServing,
    sampler: str,
    offer_ids: list[int],
    stats: Sequence[OfferStats] | Stats | Callable[[str], Sequence[OfferStats] | Stats],
    total_clicks: int,
    params: SamplerParams,
    rng: np.random.Generator,
    shadow_rng: np.random.Generator | None = None,
) -> tuple[Choice, dict]:
    """The live choice and the click document's fields that record how it was made. `stats`: the
    candidates' statistics, or sampler -> the statistics that sampler decides on."""
    stats_for = stats if callable(stats) else lambda _: stats
    sampler, forced, served_by = serving.plan(sampler, offer_ids)
    choice = (
        Choice(forced, 1.0) if forced is not None else choose(sampler, stats_for(sampler), total_clicks, params, rng)
    )
    fields = {"sampler": sampler, "served_by": served_by}
    if serving.shadow is not None:
        would = choose(serving.shadow, stats_for(serving.shadow), total_clicks, params, shadow_rng or SHADOW_RNG)
        fields["shadow"] = {
            "sampler": serving.shadow,
            "offer_id": offer_ids[would.index],
            "probability": would.probability,
        }
    return choice, fields


def parse_caps(operator_document: dict | None, tenant_document: dict | None) -> tuple[dict, list[str]]:
    """The tenant's per-offer caps, `cpa.caps` of its own document (shared/cpa/caps.py): offer id ->
    Cap; invalid entries ignored and noted. The operators' document sets no caps."""
    problems: list[str] = []
    found = caps.parse_section(config.section(tenant_document, "cpa", problems).get("caps"), problems)
    return found, problems
