"""Index policies: UCB1 on revenue per click, and KL-UCB on the conversion rate times the payout. Pure."""

import numpy as np

from shared.cpa.policies.common import among, first_max, floored, mean_payouts, one_hot
from shared.cpa.policies.types import Decisions, Stats

KLUCB_ITERATIONS = 24  # bisection steps of the KL-UCB bound (interval shrinks by 2^-24)


def ucb_core(stats: Stats, total_clicks, params, rng, propensity=True, mask=None) -> Decisions:
    """UCB1 on revenue per click, scaled to [0, 1] by the largest mean payout seen; unseen first."""
    clicks, conversions = stats.clicks, stats.conversions
    mean_payout, _ = mean_payouts(stats, params)
    scale = mean_payout.max(axis=1, keepdims=True)
    scale = np.where(scale > 0, scale, 1.0)
    n = np.maximum(clicks, 1.0)
    total = np.maximum(clicks.sum(axis=1, keepdims=True), 1.0)
    score = conversions * mean_payout / n / scale + params.ucb_c * np.sqrt(2.0 * np.log(total) / n)
    score = np.where(clicks == 0, np.inf, score)  # unseen candidates first, the first given first
    best = first_max(among(score, mask))
    k = clicks.shape[1]
    return floored(best, k, one_hot(best, k) if propensity else None, params, rng, mask)


def klucb_rate(conversions: np.ndarray, clicks: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Largest q with clicks * kl(p_hat, q) <= level (Garivier & Cappe 2011), by bisection.

    Pinsker (kl >= 2 (p - q)^2) bounds the search interval; unseen candidates get 1. The terms of
    kl that do not depend on q are computed once: the bisection is on the re-try floors' path, a
    third of a thompson decision with new statistics at K = 100 when it recomputed them each step.
    """
    n = np.maximum(clicks, 1.0)
    p_hat = conversions / n
    miss = 1.0 - p_hat
    budget = level / n
    low = p_hat.copy()
    high = np.minimum(1.0, p_hat + np.sqrt(budget / 2.0))
    with np.errstate(divide="ignore", invalid="ignore"):  # 0 ln 0 is 0; a NaN step (q = p = 1) is outside
        entropy = np.where(p_hat > 0, p_hat * np.log(p_hat), 0.0) + np.where(miss > 0, miss * np.log(miss), 0.0)
        for _ in range(KLUCB_ITERATIONS):
            mid = (low + high) * 0.5
            inside = entropy - p_hat * np.log(mid) - miss * np.log1p(-mid) <= budget
            low = np.where(inside, mid, low)
            high = np.where(inside, high, mid)
    return np.where(clicks > 0, low, 1.0)


def klucb_core(stats: Stats, total_clicks, params, rng, propensity=True, mask=None) -> Decisions:
    """KL-UCB on the conversion rate (level ucb_c * ln of the clicks on the candidates) times the
    offer's mean payout; an offer without a conversion yet is credited the best mean payout seen
    (optimism); unseen candidates first."""
    clicks, conversions = stats.clicks, stats.conversions
    total = np.maximum(clicks.sum(axis=1, keepdims=True), 1.0)
    level = params.ucb_c * np.log(np.maximum(total, np.e))
    payout, known = mean_payouts(stats, params)
    best_payout = payout.max(axis=1, keepdims=True)
    payout = np.where(known, payout, np.where(best_payout > 0, best_payout, 1.0))
    score = klucb_rate(conversions, clicks, level) * payout
    score = np.where(clicks == 0, np.inf, score)
    best = first_max(among(score, mask))
    k = clicks.shape[1]
    return floored(best, k, one_hot(best, k) if propensity else None, params, rng, mask)
