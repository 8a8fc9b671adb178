"""CPA bandit policies: pure functions of the candidates' statistics and a random generator.

Every policy maximises revenue per click (conversion rate x payout), never the rate alone.
A policy returns the index of the chosen candidate and the probability with which it was chosen
(the propensity an offline evaluation needs); no policy does any I/O.

Each policy is written once, vectorised over a leading batch axis: `Stats` holds arrays shaped
(B, K), B independent requests over K candidates each. `choose()` runs that same core on a batch of
one (the service); the benchmark (bench/) runs all its seeds in lockstep through it.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

WARMUP_CLICKS = 100  # the course's greedy: the first 100 clicks the service receives are random
PROPENSITY_DRAWS = 64  # Monte Carlo draws that estimate a Thompson choice's probability
KLUCB_ITERATIONS = 24  # bisection steps of the KL-UCB bound (interval shrinks by 2^-24)
# The lognormal payout posterior (log_payout_posterior), in units of ln(cents):
LOG_SIGMA2_PRIOR = 0.01  # spread of ln payouts assumed before any offer repeats a conversion (CV ~0.1)
LOG_POOL_DOF = 10.0  # weight, in degrees of freedom, of the pooled spread in each offer's own
LOG_MU_PRIOR_VAR = 1.0  # prior variance of an offer's mean ln payout: a factor e either way
LOG_SIGMA2_FLOOR = 1e-6  # fixed payouts: the spread is 0; keeps divisions finite


@dataclass(frozen=True)
class OfferStats:
    clicks: int = 0
    conversions: int = 0
    reward: float = 0.0  # cents, summed over conversions
    reward_sq: float = 0.0  # squared cents, summed over conversions: the payout's spread
    # Log-payout sums (see log_payout_posterior); 0 for counters that predate them.
    log_conversions: int = 0  # conversions whose payout went into the two sums below
    log_reward: float = 0.0  # sum of ln(payout in cents) over those conversions
    log_reward_sq: float = 0.0  # sum of ln(payout in cents)^2 over those conversions


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
    """Cumulative counters of B requests x K candidates, as float arrays shaped (B, K).

    The log-payout sums may be None (as if all 0: no offer has them; see log_payout_posterior)."""

    clicks: np.ndarray
    conversions: np.ndarray
    reward: np.ndarray
    reward_sq: np.ndarray
    log_conversions: np.ndarray | None = None
    log_reward: np.ndarray | None = None
    log_reward_sq: np.ndarray | None = None

    @classmethod
    def of(cls, stats: Sequence[OfferStats]) -> "Stats":
        """A batch of one request from the service's per-offer counters."""
        rows = np.array(
            [
                [s.clicks, s.conversions, s.reward, s.reward_sq, s.log_conversions, s.log_reward, s.log_reward_sq]
                for s in stats
            ],
            dtype=float,
        )
        return cls(*rows.T[:, None, :])

    @classmethod
    def zeros(cls, batch: int, k: int) -> "Stats":
        return cls(*(np.zeros((batch, k)) for _ in cls._fields))


class Decisions(NamedTuple):
    index: np.ndarray  # (B,) int: the chosen candidate of each request
    probability: np.ndarray  # (B,) float: the probability it had of being chosen


# A batched policy core: (stats, total_clicks (B,), params, rng, propensity) -> Decisions.
# With propensity=False a core may skip the work that only estimates `probability` (it then
# returns NaN where that estimate would have cost extra draws); the choice itself is unchanged.
Core = Callable[[Stats, np.ndarray, SamplerParams, np.random.Generator, bool], Decisions]
Policy = Callable[[Sequence[OfferStats], int, SamplerParams, np.random.Generator], Choice]


# A request to /sample runs a core on a batch of one, where numpy's fixed cost per call outweighs
# the arithmetic: hence the helpers below (ufunc reductions rather than .sum, no masked divisions)
# and no Python-level helpers such as np.clip or np.mean on the Thompson path.
def _rate(num: np.ndarray, den: np.ndarray, default: float | np.ndarray) -> np.ndarray:
    """num / den where den > 0, else `default`."""
    positive = den > 0
    return np.where(positive, num / np.where(positive, den, 1.0), default)


def _per(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    """total / count, 0 where count is 0. Counts are whole numbers, and a count of 0 has a total
    of 0 (no reward without a conversion), so dividing by max(count, 1) is exact."""
    return total / np.maximum(count, 1.0)


def _row_sum(values: np.ndarray) -> np.ndarray:
    return np.add.reduce(values, axis=1, keepdims=True)


def _row_max(values: np.ndarray) -> np.ndarray:
    return np.maximum.reduce(values, axis=1, keepdims=True)


def revenue_per_click(stats: Stats) -> np.ndarray:
    return _per(stats.reward, stats.clicks)


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
    clicks, conversions, reward = stats.clicks, stats.conversions, stats.reward
    mean_payout = _per(reward, conversions)
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
    return _per(stats.reward, stats.conversions), stats.conversions > 0


def klucb_core(stats: Stats, total_clicks, params, rng, propensity=True) -> Decisions:
    """KL-UCB on the conversion rate (level ucb_c * ln of the clicks on the candidates) times the
    offer's mean payout; an offer without a conversion yet is credited the best mean payout seen
    (optimism); unseen candidates first."""
    clicks, conversions = stats.clicks, stats.conversions
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
    total_clicks = _row_sum(clicks)
    total_conv = _row_sum(conversions)
    fitted = total_conv >= 1
    if not fitted.any():
        return np.ones(total_conv.shape), np.ones(total_conv.shape)
    mean = _per(total_conv, total_clicks)
    deviation = _per(conversions, clicks) - mean
    # Exactly 0 when fewer than two candidates have clicks (the one seen has the row's mean).
    variance = _per(_row_sum(clicks * deviation * deviation), total_clicks)
    safe_mean = np.minimum(np.maximum(mean, 1e-9), 1 - 1e-9)
    # A variance of 0 makes the strength huge, and the cap of 1 / mean then applies.
    strength = safe_mean * (1 - safe_mean) / np.maximum(variance, 1e-300) - 1
    strength = np.minimum(np.maximum(strength, 2.0), 1.0 / safe_mean)  # np.clip, for arrays of bounds
    return np.where(fitted, safe_mean * strength, 1.0), np.where(fitted, (1 - safe_mean) * strength, 1.0)


def payout_posterior(stats: Stats) -> tuple[np.ndarray, np.ndarray]:
    """Gamma posterior on each offer's mean payout: shape and scale, shaped (B, K). thompson uses it
    only for offers whose counters lack the log sums (see log_payout_posterior).

    The prior is centred on the best mean payout among the row's offers (optimistic, so an offer
    without a conversion yet is not written off as cheap) with the weight of one conversion; each
    conversion adds 1 / cv^2 observations' worth, cv^2 being the payouts' squared coefficient of
    variation within an offer, pooled across offers (0 for fixed payouts, floored at 0.01 so one
    conversion nearly pins the payout down).
    """
    conversions, reward, reward_sq = stats.conversions, stats.reward, stats.reward_sq
    total = conversions.sum(axis=1, keepdims=True)
    pooled_mean = _rate(reward.sum(axis=1, keepdims=True), total, 1.0)
    mean = _rate(reward, conversions, pooled_mean)
    repeated = conversions >= 2
    cv2 = np.maximum(_per(reward_sq, conversions) / np.maximum(mean, 1e-300) ** 2 - 1.0, 0.0)
    weights = np.where(repeated, conversions, 0.0)
    within_cv2 = _rate((weights * cv2).sum(axis=1, keepdims=True), weights.sum(axis=1, keepdims=True), 1.0)
    weight = conversions / np.maximum(within_cv2, 0.01)
    shape = 1.0 + weight
    prior_mean = np.where(total > 0, _per(reward, conversions).max(axis=1, keepdims=True), 1.0)
    posterior_mean = (prior_mean + weight * mean) / shape
    return shape, posterior_mean / shape


def log_payout_posterior(stats: Stats) -> tuple[np.ndarray, ...]:
    """Posterior on each offer's log payout, a Normal(mu, sigma^2) (payouts lognormal), from the
    log sums: returns (n, mean, alpha, beta, prior_mean), the first four shaped (B, K).

    Why: the mean of heavy-tailed payouts is dominated by rare large ones; with few conversions the
    spread estimated from reward_sq is far below the truth (lognormal sigma = 1.5: CV^2 8.5), so a
    Gamma on the mean payout is overconfident, too low for the high-payout offer, and starves it.
    ln payouts are Normal for lognormal payouts, their spread is well estimated from few draws,
    and the mean payout exp(mu + sigma^2 / 2) is then properly wide; fixed payouts give sigma -> 0,
    i.e. the payout itself. An offer counts only its conversions with log sums (n = log_conversions).

    sigma^2 ~ InvGamma(alpha, beta): the offer's own spread of ln payouts (n - 1 degrees of freedom)
    shrunk to the spread pooled across the row's offers, worth LOG_POOL_DOF degrees of freedom, so
    an offer with few conversions borrows the others' tail; the pooled spread starts from
    LOG_SIGMA2_PRIOR with one degree of freedom's weight and goes to 0 for fixed payouts.
    mu | sigma^2 (see _lognormal_payout_draws): Normal prior with variance max(LOG_MU_PRIOR_VAR,
    sigma^2), centred so the offer's mean payout exp(mu + sigma^2 / 2) is a priori `prior_mean`
    (B, 1), the best mean payout seen (as payout_posterior's prior), updated by n ln payouts of mean
    `mean` and variance sigma^2. Partly migrated counters (0 < log_conversions < conversions) use
    their log-summed conversions only: a wider posterior, narrowing as new conversions arrive.
    """
    k_shape = stats.clicks.shape
    log_n = stats.log_conversions if stats.log_conversions is not None else np.zeros(k_shape)
    log_sum = stats.log_reward if stats.log_reward is not None else np.zeros(k_shape)
    log_sq = stats.log_reward_sq if stats.log_reward_sq is not None else np.zeros(k_shape)
    mean = _per(log_sum, log_n)
    spread = np.maximum(log_sq - log_sum * mean, 0.0)  # sum of squared deviations; 0 where log_n is 0
    dof = np.maximum(log_n - 1.0, 0.0)
    pooled = (_row_sum(spread) + LOG_SIGMA2_PRIOR) / (_row_sum(dof) + 1.0)
    pooled = np.maximum(pooled, LOG_SIGMA2_FLOOR)
    alpha = (LOG_POOL_DOF + dof) / 2.0
    beta = (LOG_POOL_DOF * pooled + spread) / 2.0
    conversions = stats.conversions
    best = _row_max(_per(stats.reward, conversions))
    prior_mean = np.where(best > 0, best, 1.0)
    return log_n, mean, alpha, beta, prior_mean


def _lognormal_payout_draws(stats: Stats, rng: np.random.Generator, size: tuple) -> np.ndarray:
    """Draws of each offer's mean payout exp(mu + sigma^2 / 2) from log_payout_posterior.

    sigma^2 ~ InvGamma(alpha, beta); given sigma^2, mu's prior is Normal with variance
    max(LOG_MU_PRIOR_VAR, sigma^2) (it weighs at most one conversion, and is never narrower than a
    factor e^sqrt(LOG_MU_PRIOR_VAR)), centred so that E[exp(mu + sigma^2 / 2)] = prior_mean; the n
    ln payouts of mean `mean` update it as Normal observations of variance sigma^2."""
    n, mean, alpha, beta, prior_mean = log_payout_posterior(stats)
    inv_sigma2 = rng.standard_gamma(alpha, size=size) / beta  # 1 / sigma^2
    inv_sigma2 = np.minimum(inv_sigma2, 1.0 / LOG_SIGMA2_FLOOR)
    sigma2 = 1.0 / inv_sigma2
    prior_precision = np.minimum(1.0 / LOG_MU_PRIOR_VAR, inv_sigma2)
    precision = prior_precision + n * inv_sigma2
    # prior_precision * prior_mu, with prior_mu = ln(prior_mean) - sigma^2 / 2 - prior variance / 2
    weighted_prior = prior_precision * (np.log(prior_mean) - sigma2 / 2.0) - 0.5
    mu = (weighted_prior + (n * mean) * inv_sigma2) / precision
    mu = mu + rng.standard_normal(size) / np.sqrt(precision)
    return np.exp(np.minimum(mu + sigma2 / 2.0, 700.0))


def thompson_draws(stats: Stats, params: SamplerParams, rng: np.random.Generator, draws: int = 1) -> np.ndarray:
    """`draws` x B x K samples of each candidate's revenue per click from its posterior.

    Mean payout: the lognormal posterior (log_payout_posterior); an offer that has conversions but
    no log sums (counters that predate them) falls back to the Gamma of payout_posterior."""
    clicks, conversions = stats.clicks, stats.conversions
    if params.thompson_a is None or params.thompson_b is None:
        a, b = fitted_beta_prior(clicks, conversions)
    else:
        a, b = params.thompson_a, params.thompson_b
    size = (draws, *clicks.shape)
    rate = rng.beta(a + conversions, b + clicks - conversions, size=size)
    payout = _lognormal_payout_draws(stats, rng, size)
    legacy = (conversions > 0) & ~(stats.log_conversions > 0) if stats.log_conversions is not None else conversions > 0
    if legacy.any():
        shape, scale = payout_posterior(stats)
        gamma = rng.gamma(shape, scale, size=size)
        payout = np.where(legacy, gamma, payout)
    # A row with no conversion yet knows nothing of any payout: the rate alone decides there.
    no_payout_seen = _row_sum(conversions) == 0
    return rate * np.where(no_payout_seen, 1.0, payout)


def thompson_core(stats: Stats, total_clicks, params, rng, propensity=True) -> Decisions:
    """Thompson sampling on revenue per click: Beta on the rate times the lognormal posterior of
    the mean payout (log_payout_posterior; the Gamma of payout_posterior for counters without log sums).

    The probability is the share of PROPENSITY_DRAWS further posterior draws the choice wins."""
    samples = thompson_draws(stats, params, rng, 1 + (PROPENSITY_DRAWS if propensity else 0))
    index = _first_max(samples[0])
    if not propensity:
        return Decisions(index, np.full(index.shape, np.nan))
    winners = np.argmax(samples[1:], axis=2)  # (draws, B)
    return Decisions(index, np.add.reduce(winners == index, axis=0) / PROPENSITY_DRAWS)


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
    def policy(
        stats: Sequence[OfferStats], total_clicks: int, params: SamplerParams, rng: np.random.Generator
    ) -> Choice:
        decided = core(Stats.of(stats), np.array([total_clicks]), params, rng, True)
        return Choice(int(decided.index[0]), float(decided.probability[0]))

    policy.__name__ = core.__name__.removesuffix("_core")
    policy.__doc__ = core.__doc__
    return policy


SAMPLERS: dict[str, Policy] = {name: _single(core) for name, core in CORES.items()}


# Samplers that look at how many clicks the whole service has received (greedy's warm-up); the
# store reads the global click counter only for them, sparing every other sample 8 documents.
USES_TOTAL_CLICKS = frozenset({"greedy"})


def choose(
    sampler: str, stats: Sequence[OfferStats], total_clicks: int, params: SamplerParams, rng: np.random.Generator
) -> Choice:
    if not stats:
        raise ValueError("no candidates")
    return SAMPLERS[sampler](stats, total_clicks, params, rng)


def choose_batch(
    sampler: str,
    stats: Stats,
    total_clicks: np.ndarray,
    params: SamplerParams,
    rng: np.random.Generator,
    propensity: bool = True,
) -> Decisions:
    """`choose` for B requests at once (the benchmark runs its seeds in lockstep through this)."""
    return CORES[sampler](stats, np.asarray(total_clicks), params, rng, propensity)
