"""What the CPA counters say about each offer, for people: its revenue per click with a 95 % interval,
and the probability that it has the highest revenue per click. Pure (no I/O), vectorised numpy.

Model, per offer, from the counters only (clicks, conversions, reward, reward_sq, log sums):
- Conversion rate ~ Beta(1/2 + conversions, 1/2 + clicks - conversions): Jeffreys' prior, neutral
  between offers (unlike the sampler's fitted prior, which is tuned for choosing, not reporting) and
  with good frequentist coverage at low rates.
- Mean payout, when the offer's conversions carry log sums: payouts lognormal, ln payout ~
  Normal(mu, sigma^2); sigma^2 ~ InvGamma(alpha, beta) from `policies.log_payout_posterior` (the
  offer's own spread of ln payouts shrunk to the spread pooled across the offers, so an offer with
  one conversion borrows the others'), mu | sigma^2 ~ Normal(mean ln payout, sigma^2 / n) (flat
  prior on mu: no optimism), and the mean payout is exp(mu + sigma^2 / 2).
- Mean payout, for counters that predate the log sums: Gamma with the offer's mean payout and
  n / cv^2 observations' worth, cv^2 the payouts' squared coefficient of variation pooled across
  offers (floored at 0.01), from reward and reward_sq.
- An offer without a conversion: its payout is unknown, so it is drawn like the others' ln payouts
  (Normal around the ln of the pooled mean payout, variance sigma^2 + 1, a factor e either way).
  When no offer has a conversion, every payout is 1 and the offers are compared on the rate alone
  (`payout_known` is False): revenue per click is then 0 for all of them, but the rates still differ.
- Revenue per click = rate x mean payout, drawn `draws` times per offer (Monte Carlo). The interval is
  the draws' 2.5 and 97.5 percentiles; P(best) is the share of draws in which the offer's revenue per
  click is the largest (continuous draws: ties have probability 0, so the shares sum to 1).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shared.cpa.policies import (
    LOG_SIGMA2_FLOOR,
    OfferStats,
    SamplerParams,
    Stats,
    log_payout_posterior,
    thompson_draws,
    thompson_propensities,
)

DRAWS = 20_000
LEVEL = 0.95
RATE_PRIOR = 0.5  # Jeffreys: Beta(1/2, 1/2)
UNSEEN_LOG_PAYOUT_VAR = 1.0  # an offer without a conversion: its ln payout is the pool's, +- 1
MIN_CV2 = 0.01  # legacy counters: a spread of payouts of at least 10 % (as payout_posterior)


@dataclass(frozen=True)
class Insights:
    """Per offer (arrays in the order the stats were given), in the counters' units (cents)."""

    observed: np.ndarray  # reward / clicks, 0 without clicks
    mean: np.ndarray  # posterior mean revenue per click
    low: np.ndarray  # lower end of the interval
    high: np.ndarray  # upper end of the interval
    p_best: np.ndarray  # posterior probability of the highest revenue per click; sums to 1
    level: float
    payout_known: bool  # False: no conversion anywhere, offers compared on conversion rate alone


def revenue_per_click(
    stats: Sequence[OfferStats], rng: np.random.Generator, draws: int = DRAWS, level: float = LEVEL
) -> Insights:
    if not stats:
        raise ValueError("no offers")
    samples = revenue_draws(Stats.of(stats), rng, draws)[:, 0, :]  # (draws, K)
    clicks = np.array([s.clicks for s in stats], dtype=float)
    reward = np.array([s.reward for s in stats], dtype=float)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(samples, [tail, 1.0 - tail], axis=0)
    winners = np.argmax(samples, axis=1)
    return Insights(
        observed=reward / np.maximum(clicks, 1.0),
        mean=samples.mean(axis=0),
        low=low,
        high=high,
        p_best=np.bincount(winners, minlength=len(stats)) / draws,
        level=level,
        payout_known=bool(sum(s.conversions for s in stats) > 0),
    )


def revenue_draws(stats: Stats, rng: np.random.Generator, draws: int) -> np.ndarray:
    """`draws` x B x K posterior draws of revenue per click (see the module's docstring)."""
    clicks, conversions = stats.clicks, stats.conversions
    size = (draws, *clicks.shape)
    rate = rng.beta(RATE_PRIOR + conversions, RATE_PRIOR + clicks - conversions, size=size)
    return rate * _payout_draws(stats, rng, size)


def _payout_draws(stats: Stats, rng: np.random.Generator, size: tuple) -> np.ndarray:
    conversions = stats.conversions
    any_conversion = conversions.sum(axis=1, keepdims=True) > 0  # (B, 1)
    if not any_conversion.any():
        return np.ones(size)
    n, mean_log, alpha, beta, _ = log_payout_posterior(stats)
    sigma2 = beta / rng.standard_gamma(alpha, size=size)
    sigma2 = np.maximum(sigma2, LOG_SIGMA2_FLOOR)
    # Seen: mu | sigma^2 from the offer's own ln payouts. Unseen: around the pool's mean payout.
    total_conversions = conversions.sum(axis=1, keepdims=True)
    pooled_mean = stats.reward.sum(axis=1, keepdims=True) / np.maximum(total_conversions, 1.0)
    pooled_mean = np.where(pooled_mean > 0, pooled_mean, 1.0)
    seen = n > 0
    centre = np.where(seen, mean_log, np.log(pooled_mean) - sigma2 / 2.0)
    spread = np.where(seen, sigma2 / np.maximum(n, 1.0), sigma2 + UNSEEN_LOG_PAYOUT_VAR)
    mu = centre + rng.standard_normal(size) * np.sqrt(spread)
    payout = np.exp(np.minimum(mu + sigma2 / 2.0, 700.0))

    legacy = (conversions > 0) & ~(stats.log_conversions > 0) if stats.log_conversions is not None else conversions > 0
    if legacy.any():
        payout = np.where(legacy, _legacy_payout_draws(stats, rng, size), payout)
    return np.where(any_conversion, payout, 1.0)


def _legacy_payout_draws(stats: Stats, rng: np.random.Generator, size: tuple) -> np.ndarray:
    """Gamma on the mean payout from reward and reward_sq alone (counters without log sums)."""
    conversions, reward, reward_sq = stats.conversions, stats.reward, stats.reward_sq
    n = np.maximum(conversions, 1.0)
    mean = reward / n
    cv2 = np.maximum(reward_sq / n / np.maximum(mean, 1e-300) ** 2 - 1.0, 0.0)
    repeated = np.where(conversions >= 2, conversions, 0.0)
    pooled_cv2 = (repeated * cv2).sum(axis=1, keepdims=True) / np.maximum(repeated.sum(axis=1, keepdims=True), 1.0)
    pooled_cv2 = np.where(repeated.sum(axis=1, keepdims=True) > 0, pooled_cv2, 1.0)
    shape = n / np.maximum(pooled_cv2, MIN_CV2)
    return rng.gamma(shape, np.maximum(mean, 1e-300) / shape, size=size)


# The sampler's own posterior, without its floor or optimism (probability_best, revenue_interval).
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
    """The posterior of `params` (prior, known payouts) without the policy's floor, optimism or re-tries."""
    learning = (
        {}
        if params is None
        else {"thompson_a": params.thompson_a, "thompson_b": params.thompson_b, "payouts": params.payouts}
    )
    return SamplerParams(
        floor=0.0,
        optimistic=False,
        optimistic_payout=False,
        optimistic_payout_multiple=None,
        retry_level=None,
        **learning,
    )
