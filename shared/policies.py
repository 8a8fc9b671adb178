"""CPA bandit policies: pure functions of the candidates' statistics and a random generator.

Every policy maximises revenue per click (conversion rate x payout), never the rate alone.
A policy returns the index of the chosen candidate and the probability with which it was chosen
(the propensity an offline evaluation needs); no policy does any I/O.
"""
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

WARMUP_CLICKS = 100  # the course's greedy: the first 100 clicks the service receives are random
PROPENSITY_DRAWS = 64  # Monte Carlo draws that estimate a Thompson choice's probability


@dataclass(frozen=True)
class OfferStats:
    clicks: int = 0
    conversions: int = 0
    reward: float = 0.0  # cents, summed over conversions
    reward_sq: float = 0.0  # squared cents, summed over conversions: the payout's spread


@dataclass(frozen=True)
class SamplerParams:
    epsilon: float = 0.1
    epsilon_decay: float = 0.0  # epsilon / (1 + decay * clicks on the candidates)
    ucb_c: float = 1.0
    thompson_a: float | None = None  # None: a prior fitted across the candidates (see fitted_beta_prior)
    thompson_b: float | None = None
    warmup_clicks: int = WARMUP_CLICKS


@dataclass(frozen=True)
class Choice:
    index: int
    probability: float


Policy = Callable[[Sequence[OfferStats], int, SamplerParams, np.random.Generator], Choice]


def _arrays(stats: Sequence[OfferStats]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    clicks = np.array([s.clicks for s in stats], dtype=float)
    conversions = np.array([s.conversions for s in stats], dtype=float)
    reward = np.array([s.reward for s in stats], dtype=float)
    reward_sq = np.array([s.reward_sq for s in stats], dtype=float)
    return clicks, conversions, reward, reward_sq


def revenue_per_click(stats: Sequence[OfferStats]) -> np.ndarray:
    clicks, _, reward, _ = _arrays(stats)
    return np.divide(reward, clicks, out=np.zeros_like(reward), where=clicks > 0)


def _uniform(k: int, rng: np.random.Generator) -> Choice:
    return Choice(int(rng.integers(k)), 1.0 / k)


def _exploit(stats: Sequence[OfferStats]) -> int:
    """Highest revenue per click; the first given wins ties (np.argmax keeps the first maximum)."""
    return int(np.argmax(revenue_per_click(stats)))


def random_policy(stats, total_clicks, params, rng) -> Choice:
    return _uniform(len(stats), rng)


def greedy(stats, total_clicks, params, rng) -> Choice:
    if total_clicks < params.warmup_clicks:
        return _uniform(len(stats), rng)
    return Choice(_exploit(stats), 1.0)


def epsilon_greedy(stats, total_clicks, params, rng) -> Choice:
    k = len(stats)
    candidate_clicks = sum(s.clicks for s in stats)
    epsilon = params.epsilon / (1.0 + params.epsilon_decay * candidate_clicks)
    best = _exploit(stats)
    chosen = int(rng.integers(k)) if rng.random() < epsilon else best
    return Choice(chosen, epsilon / k + (1.0 - epsilon) * (chosen == best))


def ucb(stats, total_clicks, params, rng) -> Choice:
    """UCB1 on revenue per click, scaled to [0, 1] by the largest mean payout seen; unseen first."""
    clicks, conversions, reward, _ = _arrays(stats)
    unseen = np.flatnonzero(clicks == 0)
    if unseen.size:
        return Choice(int(unseen[0]), 1.0)
    mean_payout = np.divide(reward, conversions, out=np.zeros_like(reward), where=conversions > 0)
    scale = mean_payout.max() if mean_payout.max() > 0 else 1.0
    bonus = params.ucb_c * np.sqrt(2.0 * np.log(clicks.sum()) / clicks)
    return Choice(int(np.argmax(reward / clicks / scale + bonus)), 1.0)


def fitted_beta_prior(clicks: np.ndarray, conversions: np.ndarray) -> tuple[float, float]:
    """Beta(a, b) on the conversion rate fitted across the candidates (method of moments).

    With many offers, a flat Beta(1, 1) spends clicks proving that each unseen offer is as poor as
    the rest; a prior centred on what the candidates convert at, held to a few clicks' weight, lets
    the policy skip near-ties (Bayati et al. 2020). Falls back to Beta(1, 1) until there is data.
    """
    if conversions.sum() < 1:
        return 1.0, 1.0
    seen = clicks > 0
    rates = conversions[seen] / clicks[seen]
    mean = conversions.sum() / clicks.sum()
    variance = float(np.average((rates - mean) ** 2, weights=clicks[seen])) if seen.sum() > 1 else 0.0
    strength = mean * (1 - mean) / variance - 1 if variance > 0 else float("inf")
    strength = float(np.clip(strength, 2.0, 1.0 / mean))
    return mean * strength, (1 - mean) * strength


def _payout_posterior(conversions: np.ndarray, reward: np.ndarray, reward_sq: np.ndarray):
    """Gamma posterior on each offer's mean payout: shape and scale per offer.

    The prior is centred on the candidates' pooled mean payout with the weight of one conversion;
    each conversion adds 1 / cv^2 observations' worth, cv^2 being the payouts' squared coefficient
    of variation within an offer (0 for fixed payouts, so one conversion pins the payout down).
    """
    total = conversions.sum()
    pooled_mean = reward.sum() / total if total > 0 else 1.0
    mean = np.divide(reward, conversions, out=np.full_like(reward, pooled_mean), where=conversions > 0)
    repeated = conversions >= 2
    if repeated.any():
        second_moment = reward_sq[repeated] / conversions[repeated]
        cv2 = np.maximum(second_moment / mean[repeated] ** 2 - 1.0, 0.0)
        within_cv2 = float(np.average(cv2, weights=conversions[repeated]))
    else:
        within_cv2 = 1.0
    weight = conversions / max(within_cv2, 0.01)
    shape = 1.0 + weight
    posterior_mean = (pooled_mean + weight * mean) / shape
    return shape, posterior_mean / shape


def thompson_draws(stats: Sequence[OfferStats], params: SamplerParams, rng: np.random.Generator, draws: int) -> np.ndarray:
    """`draws` x K samples of each candidate's revenue per click from its posterior."""
    clicks, conversions, reward, reward_sq = _arrays(stats)
    if params.thompson_a is None or params.thompson_b is None:
        a, b = fitted_beta_prior(clicks, conversions)
    else:
        a, b = params.thompson_a, params.thompson_b
    k = len(stats)
    rate = rng.beta(a + conversions, b + clicks - conversions, size=(draws, k))
    if conversions.sum() == 0:
        return rate  # no payout seen yet: every offer's payout is equally unknown
    shape, scale = _payout_posterior(conversions, reward, reward_sq)
    return rate * rng.gamma(shape, scale, size=(draws, k))


def thompson(stats, total_clicks, params, rng) -> Choice:
    """Thompson sampling on revenue per click: Beta on the rate times Gamma on the mean payout."""
    samples = thompson_draws(stats, params, rng, PROPENSITY_DRAWS + 1)
    chosen = int(np.argmax(samples[0]))
    winners = np.argmax(samples[1:], axis=1)
    return Choice(chosen, float(np.mean(winners == chosen)))


SAMPLERS: dict[str, Policy] = {
    "random": random_policy,
    "greedy": greedy,
    "epsilon": epsilon_greedy,
    "ucb": ucb,
    "thompson": thompson,
}
DEFAULT_SAMPLER = "thompson"


def choose(sampler: str, stats: Sequence[OfferStats], total_clicks: int, params: SamplerParams, rng: np.random.Generator) -> Choice:
    if not stats:
        raise ValueError("no candidates")
    return SAMPLERS[sampler](stats, total_clicks, params, rng)
