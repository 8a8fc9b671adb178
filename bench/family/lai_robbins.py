"""The Lai-Robbins lower bound of a stationary CPA environment whose offers are all eligible.

Revenue of a click on offer i: 0, or with probability r_i a payout, lognormal around the mean v_i with
spread sigma (known, the same for every offer; sigma = 0: the payout itself). A consistent policy
pulls a suboptimal offer at least ln T / K_inf(i) times, K_inf(i) the smallest divergence from i's
distribution to one of the same family whose mean beats the best, mu* (Lai & Robbins 1985; Burnetas &
Katehakis 1996). Moving the rate to p and the mean ln payout by d costs
    kl(r_i, p) + r_i d^2 / (2 sigma^2),  with p v_i e^d >= mu*,
minimised here over d on a grid (d = 0 alone when sigma = 0; infinite when the rate cannot make up
the gap, i.e. mu* / v_i >= 1: the offer then costs nothing asymptotically). The bound on the
regret is C ln T, C = sum_i (mu* - mu_i) / K_inf(i), in cents.
"""

import numpy as np

from bench.family.cpa_envs import CpaEnvironment, bernoulli_kl

GRID = 400


def k_inf(rate: float, payout: float, sigma: float, best: float) -> float:
    if sigma <= 0.0:
        target = best / payout
        return float(bernoulli_kl(rate, target)) if target < 1.0 else np.inf
    low = max(0.0, np.log(best / payout))  # below it the rate would have to exceed 1
    high = np.log(best / (rate * payout))  # the payout alone makes up the gap
    shift = np.linspace(low, high, GRID)
    target = np.minimum(best / (payout * np.exp(shift)), 1.0 - 1e-12)
    cost = bernoulli_kl(rate, np.maximum(target, rate)) + rate * shift**2 / (2.0 * sigma**2)
    return float(cost.min())


def constant(env: CpaEnvironment) -> float:
    """C of the environment's first rate table (stationary classes have one)."""
    rates = env.rates_at(0)
    values = rates * env.mean_payouts
    best = values.max()
    total = 0.0
    for rate, payout, value in zip(rates, env.mean_payouts, values, strict=True):
        if value < best * (1 - 1e-12):
            total += (best - value) / k_inf(rate, payout, env.payout_sigma, best)
    return total


def applies(env: CpaEnvironment) -> bool:
    """Stationary rates and every offer a candidate of every click."""
    return env.cls in ("stationary", "delayed", "close")


def informative(env: CpaEnvironment, c: float) -> bool:
    """C ln T well below what uniform play loses (half of T x the mean gap): the bound says something.
    C = 0 (no worse offer could be the best at any rate: fixed payouts below the best's value) bounds
    nothing."""
    values = env.rates_at(0) * env.mean_payouts
    mean_gap = (values.max() - values).mean()
    return 0 < c * np.log(env.horizon) < 0.5 * env.horizon * mean_gap
