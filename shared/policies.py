"""CPA bandit policies: pure functions of the candidates' statistics and a random generator.

Every policy maximises revenue per click (conversion rate x payout), never the rate alone.
A policy returns the index of the chosen candidate and the probability with which it was chosen
(the propensity an offline evaluation needs); no policy does any I/O.

Each policy is written once, vectorised over a leading batch axis: `Stats` holds arrays shaped
(B, K), B independent requests over K candidates each. `choose()` runs that same core on a batch of
one (the service); the benchmark (bench/) runs all its seeds in lockstep through it.
"""
from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import numpy as np

WARMUP_CLICKS = 100  # the course's greedy: the first 100 clicks the service receives are random
PROPENSITY_DRAWS = 64  # Monte Carlo draws that estimate a Thompson choice's probability
PAYOUT_PRIOR = "max"
PAYOUT_NOISE = True  # False: the mean payout without its uncertainty (bench experiments)
KLUCB_ITERATIONS = 24  # bisection steps of the KL-UCB bound (interval shrinks by 2^-24)


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


class Stats(NamedTuple):
    """Cumulative counters of B requests x K candidates, as float arrays shaped (B, K)."""

    clicks: np.ndarray
    conversions: np.ndarray
    reward: np.ndarray
    reward_sq: np.ndarray

    @classmethod
    def of(cls, stats: Sequence[OfferStats]) -> "Stats":
        """A batch of one request from the service's per-offer counters."""
        rows = np.array([[s.clicks, s.conversions, s.reward, s.reward_sq] for s in stats], dtype=float)
        return cls(*(rows[:, column][None, :] for column in range(4)))

    @classmethod
    def zeros(cls, batch: int, k: int) -> "Stats":
        return cls(*(np.zeros((batch, k)) for _ in range(4)))


class Decisions(NamedTuple):
    index: np.ndarray  # (B,) int: the chosen candidate of each request
    probability: np.ndarray  # (B,) float: the probability it had of being chosen


# A batched policy core: (stats, total_clicks (B,), params, rng, propensity) -> Decisions.
# With propensity=False a core may skip the work that only estimates `probability` (it then
# returns NaN where that estimate would have cost extra draws); the choice itself is unchanged.
Core = Callable[[Stats, np.ndarray, SamplerParams, np.random.Generator, bool], Decisions]
Policy = Callable[[Sequence[OfferStats], int, SamplerParams, np.random.Generator], Choice]


def _rate(num: np.ndarray, den: np.ndarray, default: float | np.ndarray = 0.0) -> np.ndarray:
    out = np.broadcast_to(np.asarray(default, dtype=float), num.shape).copy()
    return np.divide(num, den, out=out, where=den > 0)


def revenue_per_click(stats: Stats) -> np.ndarray:
    return _rate(stats.reward, stats.clicks)


def _first_max(values: np.ndarray) -> np.ndarray:
    """Per row, the first candidate with the largest value (np.argmax keeps the first maximum)."""
    return np.argmax(values, axis=1)


def _uniform(batch: int, k: int, rng: np.random.Generator) -> Decisions:
    return Decisions(rng.integers(k, size=batch), np.full(batch, 1.0 / k))


def random_core(stats: Stats, total_clicks, params, rng, propensity=True) -> Decisions:
    return _uniform(*stats.clicks.shape, rng)


def greedy_core(stats: Stats, total_clicks, params, rng, propensity=True) -> Decisions:
    """The course's greedy: random while the service has seen fewer than `warmup_clicks` clicks,
    then the highest revenue per click; with no statistics at all, the first candidate."""
    batch, k = stats.clicks.shape
    best = _first_max(revenue_per_click(stats))
    warming = np.asarray(total_clicks) < params.warmup_clicks
    index = np.where(warming, rng.integers(k, size=batch), best)
    return Decisions(index, np.where(warming, 1.0 / k, 1.0))


def epsilon_core(stats: Stats, total_clicks, params, rng, propensity=True) -> Decisions:
    batch, k = stats.clicks.shape
    epsilon = params.epsilon / (1.0 + params.epsilon_decay * stats.clicks.sum(axis=1))
    best = _first_max(revenue_per_click(stats))
    explore = rng.random(batch) < epsilon
    index = np.where(explore, rng.integers(k, size=batch), best)
    return Decisions(index, epsilon / k + (1.0 - epsilon) * (index == best))


def ucb_core(stats: Stats, total_clicks, params, rng, propensity=True) -> Decisions:
    """UCB1 on revenue per click, scaled to [0, 1] by the largest mean payout seen; unseen first."""
    clicks, conversions, reward, _ = stats
    mean_payout = _rate(reward, conversions)
    scale = mean_payout.max(axis=1, keepdims=True)
    scale = np.where(scale > 0, scale, 1.0)
    n = np.maximum(clicks, 1.0)
    total = np.maximum(clicks.sum(axis=1, keepdims=True), 1.0)
    score = reward / n / scale + params.ucb_c * np.sqrt(2.0 * np.log(total) / n)
    score = np.where(clicks == 0, np.inf, score)  # unseen candidates first, the first given first
    return Decisions(_first_max(score), np.ones(clicks.shape[0]))


def _bernoulli_kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    q = np.clip(q, 1e-12, 1 - 1e-12)
    return p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))


def klucb_rate(conversions: np.ndarray, clicks: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Largest q with clicks * kl(p_hat, q) <= level (Garivier & Cappe 2011), by bisection.

    Pinsker (kl >= 2 (p - q)^2) bounds the search interval; unseen candidates get 1.
    """
    n = np.maximum(clicks, 1.0)
    p_hat = conversions / n
    budget = level / n
    low = p_hat.copy()
    high = np.minimum(1.0, p_hat + np.sqrt(budget / 2.0))
    for _ in range(KLUCB_ITERATIONS):
        mid = (low + high) / 2.0
        inside = _bernoulli_kl(p_hat, mid) <= budget
        low = np.where(inside, mid, low)
        high = np.where(inside, high, mid)
    return np.where(clicks > 0, low, 1.0)


def _mean_payouts(stats: Stats) -> tuple[np.ndarray, np.ndarray]:
    """Each candidate's mean payout, and whether it has a conversion to know it from."""
    return _rate(stats.reward, stats.conversions), stats.conversions > 0


def klucb_core(stats: Stats, total_clicks, params, rng, propensity=True) -> Decisions:
    """KL-UCB on the conversion rate (level ucb_c * ln of the clicks on the candidates) times the
    offer's mean payout; an offer without a conversion yet is credited the best mean payout seen
    (optimism); unseen candidates first."""
    clicks, conversions, _, _ = stats
    total = np.maximum(clicks.sum(axis=1, keepdims=True), 1.0)
    level = params.ucb_c * np.log(np.maximum(total, np.e))
    payout, known = _mean_payouts(stats)
    best_payout = payout.max(axis=1, keepdims=True)
    payout = np.where(known, payout, np.where(best_payout > 0, best_payout, 1.0))
    score = klucb_rate(conversions, clicks, level) * payout
    score = np.where(clicks == 0, np.inf, score)
    return Decisions(_first_max(score), np.ones(clicks.shape[0]))


def fitted_beta_prior(clicks: np.ndarray, conversions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Beta(a, b) on the conversion rate fitted across each row's candidates (method of moments).

    With many offers, a flat Beta(1, 1) spends clicks proving that each unseen offer is as poor as
    the rest; a prior centred on what the candidates convert at, held to a few clicks' weight, lets
    the policy skip near-ties (Bayati et al. 2020). Beta(1, 1) until a row has a conversion.
    Returns a and b shaped (B, 1).
    """
    clicks = np.atleast_2d(clicks)
    conversions = np.atleast_2d(conversions)
    total_clicks = clicks.sum(axis=1, keepdims=True)
    total_conv = conversions.sum(axis=1, keepdims=True)
    mean = _rate(total_conv, total_clicks)
    rates = _rate(conversions, clicks)
    seen = clicks > 0
    variance = _rate((clicks * (rates - mean) ** 2).sum(axis=1, keepdims=True), total_clicks)
    variance = np.where(seen.sum(axis=1, keepdims=True) > 1, variance, 0.0)
    safe_mean = np.clip(mean, 1e-9, 1 - 1e-9)
    strength = np.where(variance > 0, safe_mean * (1 - safe_mean) / np.maximum(variance, 1e-300) - 1, np.inf)
    strength = np.clip(strength, 2.0, 1.0 / safe_mean)
    fitted = total_conv >= 1
    return np.where(fitted, safe_mean * strength, 1.0), np.where(fitted, (1 - safe_mean) * strength, 1.0)


def payout_posterior(stats: Stats) -> tuple[np.ndarray, np.ndarray]:
    """Gamma posterior on each offer's mean payout: shape and scale, shaped (B, K).

    The prior is centred on the row's pooled mean payout with the weight of one conversion; each
    conversion adds 1 / cv^2 observations' worth, cv^2 being the payouts' squared coefficient of
    variation within an offer, pooled across offers (0 for fixed payouts, floored at 0.01 so one
    conversion nearly pins the payout down).
    """
    _, conversions, reward, reward_sq = stats
    total = conversions.sum(axis=1, keepdims=True)
    pooled_mean = _rate(reward.sum(axis=1, keepdims=True), total, 1.0)
    mean = _rate(reward, conversions, pooled_mean)
    repeated = conversions >= 2
    cv2 = np.maximum(_rate(reward_sq, conversions) / np.maximum(mean, 1e-300) ** 2 - 1.0, 0.0)
    weights = np.where(repeated, conversions, 0.0)
    within_cv2 = _rate((weights * cv2).sum(axis=1, keepdims=True), weights.sum(axis=1, keepdims=True), 1.0)
    weight = conversions / np.maximum(within_cv2, 0.01)
    shape = 1.0 + weight
    if PAYOUT_PRIOR == "max":
        prior_mean = np.where(total > 0, _rate(reward, conversions).max(axis=1, keepdims=True), 1.0)
    else:
        prior_mean = pooled_mean
    posterior_mean = (prior_mean + weight * mean) / shape
    return shape, posterior_mean / shape


def thompson_draws(stats: Stats, params: SamplerParams, rng: np.random.Generator, draws: int = 1) -> np.ndarray:
    """`draws` x B x K samples of each candidate's revenue per click from its posterior."""
    clicks, conversions, _, _ = stats
    if params.thompson_a is None or params.thompson_b is None:
        a, b = fitted_beta_prior(clicks, conversions)
    else:
        a, b = params.thompson_a, params.thompson_b
    size = (draws, *clicks.shape)
    rate = rng.beta(a + conversions, b + clicks - conversions, size=size)
    shape, scale = payout_posterior(stats)
    payout = rng.gamma(shape, scale, size=size) if PAYOUT_NOISE else np.broadcast_to(shape * scale, size)
    # A row with no conversion yet knows nothing of any payout: the rate alone decides there.
    no_payout_seen = conversions.sum(axis=1, keepdims=True) == 0
    return rate * np.where(no_payout_seen, 1.0, payout)


def thompson_core(stats: Stats, total_clicks, params, rng, propensity=True) -> Decisions:
    """Thompson sampling on revenue per click: Beta on the rate times Gamma on the mean payout.

    The probability is the share of PROPENSITY_DRAWS further posterior draws the choice wins."""
    samples = thompson_draws(stats, params, rng, 1 + (PROPENSITY_DRAWS if propensity else 0))
    index = _first_max(samples[0])
    if not propensity:
        return Decisions(index, np.full(index.shape, np.nan))
    winners = np.argmax(samples[1:], axis=2)  # (draws, B)
    return Decisions(index, np.mean(winners == index[None, :], axis=0))


CORES: dict[str, Core] = {
    "random": random_core,
    "greedy": greedy_core,
    "epsilon": epsilon_core,
    "ucb": ucb_core,
    "klucb": klucb_core,
    "thompson": thompson_core,
}
DEFAULT_SAMPLER = "thompson"


def _single(core: Core) -> Policy:
    def policy(stats: Sequence[OfferStats], total_clicks: int, params: SamplerParams, rng: np.random.Generator) -> Choice:
        decided = core(Stats.of(stats), np.array([total_clicks]), params, rng, True)
        return Choice(int(decided.index[0]), float(decided.probability[0]))

    policy.__name__ = core.__name__.removesuffix("_core")
    policy.__doc__ = core.__doc__
    return policy


SAMPLERS: dict[str, Policy] = {name: _single(core) for name, core in CORES.items()}


# Samplers that look at how many clicks the whole service has received (greedy's warm-up); the
# store reads the global click counter only for them, sparing every other sample 8 documents.
USES_TOTAL_CLICKS = frozenset({"greedy"})


def choose(sampler: str, stats: Sequence[OfferStats], total_clicks: int, params: SamplerParams, rng: np.random.Generator) -> Choice:
    if not stats:
        raise ValueError("no candidates")
    return SAMPLERS[sampler](stats, total_clicks, params, rng)


def choose_batch(sampler: str, stats: Stats, total_clicks: np.ndarray, params: SamplerParams,
                 rng: np.random.Generator, propensity: bool = True) -> Decisions:
    """`choose` for B requests at once (the benchmark runs its seeds in lockstep through this)."""
    return CORES[sampler](stats, np.asarray(total_clicks), params, rng, propensity)
