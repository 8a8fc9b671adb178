"""Off-policy evaluation of CPA policies from logged decisions, and "which offer is winning": pure.

A log row: the action taken, its logged propensity p (the probability the logging policy gave it,
as /sample returns it), the reward (cents), and the target policy's probability of every action in
that context. Estimates of the target policy's revenue per click, each with a normal-approximation
confidence interval:
- IPS: mean of w r, w = pi(action) / p (unbiased when p > 0 wherever pi > 0: the exploration floor);
- SNIPS: sum w r / sum w (biased, far lower variance), interval by the delta method;
- doubly robust: mean of sum_a pi(a) q(a) + w (r - q(action)) with a reward model q (unbiased if
  either the propensities or q are right).
"""

from typing import NamedTuple

import numpy as np

from shared.cpa.policies import SamplerParams, Stats, thompson_draws, thompson_propensities

Z95 = 1.959963984540054


class Estimate(NamedTuple):
    value: float
    low: float
    high: float


def _mean_interval(terms: np.ndarray, z: float) -> Estimate:
    mean = float(terms.mean())
    half = z * float(terms.std(ddof=1)) / np.sqrt(len(terms)) if len(terms) > 1 else float("inf")
    return Estimate(mean, mean - half, mean + half)


def mean_interval(terms, z: float = Z95) -> Estimate:
    """The mean of per-decision terms with its normal-approximation interval."""
    return _mean_interval(np.asarray(terms, dtype=float), z)


def _weights(actions, propensities, target) -> np.ndarray:
    target = np.asarray(target, dtype=float)
    chosen = target[np.arange(len(actions)), np.asarray(actions)]
    return chosen / np.asarray(propensities, dtype=float)


def ips(actions, propensities, rewards, target, z: float = Z95) -> Estimate:
    """target: (n, K) probabilities of the evaluated policy in each logged context."""
    return _mean_interval(_weights(actions, propensities, target) * np.asarray(rewards, dtype=float), z)


def snips(actions, propensities, rewards, target, z: float = Z95) -> Estimate:
    w = _weights(actions, propensities, target)
    r = np.asarray(rewards, dtype=float)
    value = float((w * r).sum() / w.sum())
    half = z * float(np.sqrt(np.sum((w * (r - value)) ** 2))) / float(w.sum())
    return Estimate(value, value - half, value + half)


def doubly_robust(actions, propensities, rewards, target, model, z: float = Z95) -> Estimate:
    """model: (n, K) predicted reward of every action in each logged context."""
    model = np.asarray(model, dtype=float)
    actions = np.asarray(actions)
    w = _weights(actions, propensities, target)
    direct = np.sum(np.asarray(target, dtype=float) * model, axis=1)
    residual = np.asarray(rewards, dtype=float) - model[np.arange(len(actions)), actions]
    return _mean_interval(direct + w * residual, z)


def probability_best(stats: Stats, params: SamplerParams | None = None) -> np.ndarray:
    """(B, K) posterior probability that each offer has the highest revenue per click (thompson's
    posterior, exact by numerical integration; no floor, no optimism)."""
    params = _posterior_only(params)
    return thompson_propensities(stats, params)


def revenue_interval(
    stats: Stats, params: SamplerParams | None = None, level: float = 0.95, draws: int = 20_000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(low, high), each (B, K): a central `level` posterior interval on each offer's revenue per
    click (cents), from `draws` posterior draws (quantile error ~ 1 / sqrt(draws) in probability)."""
    params = _posterior_only(params)
    samples = np.exp(thompson_draws(stats, params, np.random.default_rng(seed), draws))
    tail = (1.0 - level) / 2.0
    return np.quantile(samples, tail, axis=0), np.quantile(samples, 1.0 - tail, axis=0)


def _posterior_only(params: SamplerParams | None) -> SamplerParams:
    """The posterior of `params` (prior, known payouts) without the policy's floor or optimism."""
    learning = (
        {}
        if params is None
        else {"thompson_a": params.thompson_a, "thompson_b": params.thompson_b, "payouts": params.payouts}
    )
    return SamplerParams(
        floor=0.0, optimistic=False, optimistic_payout=False, optimistic_payout_multiple=None, **learning
    )
