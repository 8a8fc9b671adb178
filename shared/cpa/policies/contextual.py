"""contextual: thompson on each candidate's revenue per click in the click's context, paced for caps.
Pure; its logged probability is exact (the same integral as thompson's, on the adjusted posterior),
remembered as thompson's is, by that posterior: a context that comes again on the same statistics
costs no integral.

The model (shared/cpa/context_model.py computes the adjustments from the offers' context counts):
the conversion rate of offer j in context x is r_j x prod_f theta_{j,f,x_f}, r_j the offer's rate
(thompson's Beta posterior, on every click the offer has had) and theta a multiplicative effect per
(offer, feature, value) with a Gamma(kappa, kappa) prior, so a value the offer has rarely or never
seen starts at 1 (the offer's average) and moves away only as its own evidence grows; kappa is
estimated per (offer, feature) from how much the values differ (empirical Bayes). The context
enters thompson's posterior as a shift of the log rate and extra log-rate variance: the Beta is
replaced by one with the shifted mean and the summed variance (`adjusted`). Pacing multiplies a
capped offer's value by (1 - its shadow price): a shift of the log payout (shared/cpa/caps.py).

With no adjustment at all the core is thompson's, call for call: a click without context and
without a capped candidate decides exactly as `thompson`. Under a context thompson's re-tries
(SamplerParams.retry_level) move with it: an offer's floor, its KL-UCB rate over all its clicks,
is multiplied by the ratio of the adjusted mean rate to thompson's, so the floor says what the
offer's index says in this context rather than overriding it. A click whose candidates pacing
prices leaves re-tries out: with them `capped` lost 0.93 +- 0.40 points on the training seeds
(bench/README.md, session 18).
"""

from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from shared.cpa.policies.common import candidates, first_max, floored
from shared.cpa.policies.thompson import remembered_floors, remembered_propensities, thompson_core
from shared.cpa.policies.thompson_integral import thompson_propensities
from shared.cpa.policies.thompson_model import thompson_draws, thompson_posterior
from shared.cpa.policies.types import Decisions, SamplerParams, Stats

MAX_RATE = 0.99  # a shifted conversion rate stays a probability
MIN_ALPHA = 0.01  # the adjusted Beta's least first parameter (the integral's tables need a > 0)


class Adjustments(NamedTuple):
    """Per request and candidate, shaped (B, K): what the context and pacing change."""

    log_rate: np.ndarray  # ln of the rate's multiplier in this context (0: the offer's average)
    log_rate_var: np.ndarray  # the variance that multiplier adds to ln(rate)
    log_value: np.ndarray | None = None  # ln(1 - shadow price): pacing (None: nothing capped)
    # ln of the rate the multiplier is relative to: the offer's rate over the clicks its context
    # counts hold (NaN: none; the multiplier then applies to thompson's posterior mean). The
    # policy's own choices make an offer's recent clicks lean to the contexts it is good in, so its
    # live rate is not the average the effects were measured against. It moves thompson's mean by
    # its ratio to the live conversions per click (_moved_to_the_counts), so the prior's pull on a
    # rate known from few conversions is kept: used as the mean itself, it dropped that pull, and
    # on E1-context (context that carries nothing) cost 1.6-1.8 points on the training seeds.
    base_log_rate: np.ndarray | None = None

    @classmethod
    def none(cls, batch: int, k: int) -> "Adjustments":
        return cls(np.zeros((batch, k)), np.zeros((batch, k)))


@dataclass(frozen=True)
class ContextParams(SamplerParams):
    """SamplerParams with the click's adjustments (None: none, thompson's decision)."""

    adjust: Adjustments | None = None


def adjusted(posterior: tuple, adjust: Adjustments, stats: Stats | None = None) -> tuple[np.ndarray, ...]:
    """thompson's (a, b, m, s) with the context's shift and variance on ln(rate) and pacing's on
    ln(value). The mean is the base rate (the context counts' own, or thompson's mean) times the
    multiplier. ln of a Beta(a, b) rate has variance about b / (a (a + b)) = (1 - mean) / a; the
    adjusted Beta keeps that relation for the new mean and the summed variance, so an adjustment
    of 0 with no variance and no base gives back (a, b) exactly."""
    a, b, m, s = posterior
    touched = (adjust.log_rate != 0.0) | (adjust.log_rate_var > 0.0)
    based = None
    if adjust.base_log_rate is not None:
        based = np.isfinite(adjust.base_log_rate)
        touched = touched | based
    if touched.any():
        base = a / (a + b)
        if based is not None:
            base = np.where(based, _moved_to_the_counts(base, adjust.base_log_rate, stats), base)
        mean = np.minimum(base * np.exp(adjust.log_rate), MAX_RATE)
        variance = b / (a * (a + b)) + adjust.log_rate_var
        new_a = np.maximum((1.0 - mean) / variance, MIN_ALPHA)
        new_b = new_a * (1.0 - mean) / mean
        a, b = np.where(touched, new_a, a), np.where(touched, new_b, b)
    if adjust.log_value is not None:
        m = m + adjust.log_value
    return a, b, m, s


def _moved_to_the_counts(mean: np.ndarray, base_log_rate: np.ndarray, stats: Stats | None) -> np.ndarray:
    """thompson's posterior mean moved by the ratio of the rate the context counts measured to the
    rate of the statistics it was computed from (their conversions per click): where the counts
    hold the same clicks, thompson's mean as it is, its prior's pull kept. Without statistics, or
    where they have no conversion yet, the counts' rate itself."""
    counted = np.exp(np.nan_to_num(base_log_rate))
    if stats is None:
        return counted
    live = stats.conversions / np.maximum(stats.clicks, 1.0)
    return np.where(live > 0, mean * counted / np.where(live > 0, live, 1.0), counted)


def contextual_core(stats: Stats, total_clicks, params, rng, propensity=True, mask=None) -> Decisions:
    adjust = getattr(params, "adjust", None)
    if adjust is None:
        return thompson_core(stats, total_clicks, params, rng, propensity, mask)
    params, posterior, floors = _in_context(stats, params, adjust)
    index = first_max(thompson_draws(stats, params, rng, 1, posterior, mask, floors)[0])
    probabilities = remembered_propensities(stats, params, posterior, mask, floors) if propensity else None
    return floored(index, stats.clicks.shape[1], probabilities, params, rng, mask)


def contextual_probabilities(stats: Stats, params: SamplerParams, mask=None) -> np.ndarray:
    """contextual's probability of every candidate, exploration floor included."""
    adjust = getattr(params, "adjust", None)
    if adjust is None:
        shares = thompson_propensities(stats, params, thompson_posterior(stats, params), mask=mask)
    else:
        params, posterior, floors = _in_context(stats, params, adjust)
        shares = thompson_propensities(stats, params, posterior, mask, floors)
    found = params.floor / candidates(mask, shares.shape) + (1.0 - params.floor) * shares
    return found if mask is None else np.where(mask, found, 0.0)


def _in_context(stats: Stats, params: SamplerParams, adjust: Adjustments) -> tuple:
    """(params, the adjusted posterior, the re-try floors): thompson's floors moved by the log ratio
    of the adjusted mean rate to thompson's (an untouched candidate's floor is thompson's). With
    pacing, or re-tries off: the params without re-tries, and no floors."""
    plain = thompson_posterior(stats, params)
    posterior = adjusted(plain, adjust, stats)
    if adjust.log_value is not None or params.retry_level is None:
        return replace(params, retry_level=None), posterior, None
    floors = remembered_floors(stats, params, plain[2]) + _log_mean(posterior) - _log_mean(plain)
    return params, posterior, floors


def _log_mean(posterior: tuple) -> np.ndarray:
    a, b = posterior[0], posterior[1]
    return np.log(a / (a + b))
