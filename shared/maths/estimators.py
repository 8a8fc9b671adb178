"""Off-policy estimators from logged decisions, shared by every product: pure.

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
