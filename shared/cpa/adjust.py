"""What a click's context and its candidates' caps change in a /sample decision. Pure.

- The sampler: a request that names none is served by `contextual` when the click has a context
  or a capped candidate, else by the default: on the held-out context environments of
  bench/context_family.py `contextual` is within 0.5 points of the default where the context
  carries nothing, and 7 points better where it matters (docs/context-and-caps.md#api). A click
  without context and without a capped candidate decides exactly as before.
- The candidates: an offer whose cap is reached today is left out, unless every candidate is.
  The logged probability is then among the others (the offer left out had none).
- The parameters: `contextual` gets the context's adjustments (shared/cpa/context_model.py) and
  each capped offer's pacing, ln(1 - shadow price) on its value (shared/cpa/caps.py); the other
  samplers ignore them.
- Whether pacing changed the choice: the same draw without pacing and without leaving offers out
  (`unpaced`), compared with the choice made.
"""

import dataclasses
import datetime
from dataclasses import dataclass

import numpy as np

from shared.cpa import caps, context_model
from shared.cpa.policies import DEFAULT_SAMPLER, SamplerParams, Stats, choose_batch
from shared.cpa.policies.contextual import Adjustments, ContextParams

CONTEXTUAL = "contextual"


@dataclass(frozen=True)
class Plan:
    sampler: str
    params: SamplerParams
    eligible: list[int]  # indices of the request's candidates the decision is made among
    capped: dict[int, caps.CapState]  # candidate index -> its cap's state
    unpaced_params: SamplerParams | None  # the same decision without pacing (None: nothing paced)

    @property
    def prices(self) -> dict[int, float]:
        return {index: state.price for index, state in self.capped.items()}


def sampler_for(requested: str, given: bool, capped: bool, context: bool) -> str:
    if given or not (capped or context):
        return requested
    return CONTEXTUAL if requested == DEFAULT_SAMPLER else requested


def decides_on_context(requested: str, given: bool, context: dict) -> bool:
    """Whether the click's context effects are wanted: it has a context and `contextual` serves it."""
    return bool(context) and sampler_for(requested, given, False, True) == CONTEXTUAL


def plan(
    sampler: str,
    sampler_given: bool,
    params: SamplerParams,
    offer_ids: list[int],
    totals: list[dict],
    click_context: dict,
    effects: list | None,
    offer_caps: dict,
    now: datetime.datetime,
) -> Plan:
    """The decision's plan for one request; `totals` are the candidates' counter totals (their
    day's spend; read only for capped offers), `effects` each candidate's context effects (None:
    not loaded). Without caps, no step per candidate."""
    capped = {
        index: caps.state_of(offer_caps[offer], totals[index], now)
        for index, offer in (enumerate(offer_ids) if offer_caps else ())
        if offer in offer_caps
    }
    sampler = sampler_for(sampler, sampler_given, bool(capped), bool(click_context))
    every = list(range(len(offer_ids)))
    reached = {index for index, state in capped.items() if state.reached}
    eligible = [index for index in every if index not in reached] if reached else every
    eligible = eligible or every
    adjust = context_model.adjustments(click_context, effects) if effects is not None else None
    k = len(eligible)
    log_value = None
    if any(state.price > 0 and (k == len(every) or index not in reached) for index, state in capped.items()):
        log_value = np.zeros((1, len(offer_ids)))
        for index, state in capped.items():
            log_value[0, index] = np.log1p(-state.price)
    if adjust is None and log_value is None:
        chosen = params
    else:
        base = adjust or Adjustments.none(1, len(offer_ids))
        full = Adjustments(base.log_rate, base.log_rate_var, log_value)
        chosen = _with(params, Adjustments(*(None if part is None else part[:, eligible] for part in full)))
    unpaced = None
    if capped and (log_value is not None or k < len(offer_ids)):
        unpaced = _with(params, adjust) if adjust is not None else params
    return Plan(sampler, chosen, eligible, capped, unpaced)


def _with(params: SamplerParams, adjust: Adjustments | None) -> SamplerParams:
    fields = {field.name: getattr(params, field.name) for field in dataclasses.fields(SamplerParams)}
    return ContextParams(**fields, adjust=adjust)


def subset(params: SamplerParams, eligible: list[int], k: int) -> SamplerParams:
    """params with the per-candidate payouts cut to the eligible candidates."""
    if params.payouts is None or len(eligible) == k:
        return params
    payouts = np.asarray(params.payouts, dtype=float)[..., eligible]
    return dataclasses.replace(params, payouts=tuple(payouts.tolist()))


def unpaced_index(
    sampler: str, stats: Stats, total_clicks: int, params: SamplerParams, rng: np.random.Generator
) -> int:
    """The candidate the same draws would choose with no cap: the generator is left as it was, so
    the live decision that follows draws the same numbers. `stats`: a batch of one."""
    state = rng.bit_generator.state
    try:
        return int(choose_batch(sampler, stats, np.array([total_clicks]), params, rng, propensity=False).index[0])
    finally:
        rng.bit_generator.state = state
