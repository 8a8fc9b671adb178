"""The course's policies: uniform random, greedy after a warm-up, and epsilon-greedy. Pure."""

import numpy as np

from shared.cpa.policies.common import among, expected_revenue, first_max, floored, one_hot, uniform, uniform_index
from shared.cpa.policies.types import Decisions, Stats


def random_core(stats: Stats, total_clicks, params, rng, propensity=True, mask=None) -> Decisions:
    batch, k = stats.clicks.shape
    index = uniform_index(rng, mask, batch, k)
    return Decisions(index, uniform(mask, (batch, k))[np.arange(batch), index])


def greedy_core(stats: Stats, total_clicks, params, rng, propensity=True, mask=None) -> Decisions:
    """The course's greedy: random while the service has seen fewer than `warmup_clicks` clicks,
    then the highest revenue per click; with no statistics at all, the first candidate."""
    batch, k = stats.clicks.shape
    best = first_max(among(expected_revenue(stats, params), mask))
    warming = np.asarray(total_clicks) < params.warmup_clicks
    index = np.where(warming, uniform_index(rng, mask, batch, k), best)
    probabilities = np.where(warming[:, None], uniform(mask, (batch, k)), one_hot(best, k)) if propensity else None
    return floored(index, k, probabilities, params, rng, mask)


def epsilon_core(stats: Stats, total_clicks, params, rng, propensity=True, mask=None) -> Decisions:
    batch, k = stats.clicks.shape
    epsilon = params.epsilon / (1.0 + params.epsilon_decay * stats.clicks.sum(axis=1))
    best = first_max(among(expected_revenue(stats, params), mask))
    explore = rng.random(batch) < epsilon
    index = np.where(explore, uniform_index(rng, mask, batch, k), best)
    probabilities = None
    if propensity:
        probabilities = epsilon[:, None] * uniform(mask, (batch, k)) + (1.0 - epsilon[:, None]) * one_hot(best, k)
    return floored(index, k, probabilities, params, rng, mask)
