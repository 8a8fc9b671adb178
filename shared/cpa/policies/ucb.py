"""Index policies: UCB1 on revenue per click, and KL-UCB on the conversion rate times the payout. Pure."""

import numpy as np

from shared.cpa.policies.common import among, first_max, floored, mean_payouts, one_hot
from shared.cpa.policies.types import Decisions, Stats

KLUCB_NEWTON_STEPS = 8  # the KL-UCB bound's Newton steps at most (klucb_rate)
KLUCB_SURE_STEPS = 4  # and at least: CPA counts converge in four


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
    """Largest q with clicks * kl(p_hat, q) <= level (Garivier & Cappe 2011); unseen candidates get 1.

    Newton's method in y = -ln(1 - q), where kl(p, q) = const - p ln(1 - e^-y) + (1 - p) y is convex
    and increasing above p and has no singularity at q = 1. It starts above the root, at the lesser
    of two bounds (kl(p, q) >= (q - p)^2 / 2q, and kl(p, q) >= (1 - p) y + const), so every step
    stays above it. KLUCB_SURE_STEPS steps, then more until the largest moves y by under 1e-7 of
    it (KLUCB_NEWTON_STEPS at most), land within 1e-12 of it in ln q (6.9e-13 at worst on 300,000
    counts of 1 to 10^7 clicks at rates 1e-6 to 1). It is on the re-try floors' path: the
    bisection it replaced took a fifth of a thompson decision with new statistics.
    """
    n = np.maximum(clicks, 1.0)
    p_hat = conversions / n
    miss = 1.0 - p_hat
    budget = level / n
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # 0 ln 0 is 0; p_hat = 1 below
        const = np.where(p_hat > 0, p_hat * np.log(p_hat), 0.0) + np.where(miss > 0, miss * np.log(miss), 0.0)
        chi_square = np.minimum(1.0, p_hat + budget + np.sqrt(budget * (budget + 2.0 * p_hat)))
        y = np.minimum(-np.log1p(-chi_square), (budget - const) / miss)
        for step in range(KLUCB_NEWTON_STEPS):
            excess = const - p_hat * np.log(-np.expm1(-y)) + miss * y - budget
            move = excess / (miss - p_hat / np.expm1(y))
            y = y - move
            # converging quadratically: a last move under 1e-7 of y leaves an error near 1e-14 of it
            if step >= KLUCB_SURE_STEPS - 1 and np.fmax.reduce(np.abs(move) - 1e-7 * y, axis=None) <= 0.0:
                break
        q = np.maximum(-np.expm1(-y), p_hat)
    q = np.where(miss > 0, np.where(budget > 0, q, p_hat), 1.0)
    return np.where(clicks > 0, q, 1.0)


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
