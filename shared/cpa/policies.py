"""CPA bandit policies: pure functions of the candidates' statistics and a random generator.

Every policy maximises revenue per click (conversion rate x payout), never the rate alone.
A policy returns the index of the chosen candidate and the probability with which it was chosen
(the propensity an offline evaluation needs); no policy does any I/O.

Each policy is written once, vectorised over a leading batch axis: `Stats` holds arrays shaped
(B, K), B independent requests over K candidates each. `choose()` runs that same core on a batch of
one (the service); the benchmark (bench/) runs all its seeds in lockstep through it.
"""

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

WARMUP_CLICKS = 100  # the course's greedy: the first 100 clicks the service receives are random
# The exploration floor's default (SamplerParams.floor). Its cost is floor x the mean gap per click,
# linear in time: 0.001 keeps E2's regret growth within the Lai-Robbins bound (bench/README.md).
DEFAULT_FLOOR = 0.001
KLUCB_ITERATIONS = 24  # bisection steps of the KL-UCB bound (interval shrinks by 2^-24)
# The lognormal payout posterior (log_payout_posterior), in units of ln(cents):
LOG_SIGMA2_PRIOR = 0.01  # spread of ln payouts assumed before any offer repeats a conversion (CV ~0.1)
LOG_POOL_DOF = 10.0  # weight, in degrees of freedom, of the pooled spread in each offer's own
LOG_MU_PRIOR_VAR = 1.0  # prior variance of an offer's mean ln payout: a factor e either way
LOG_SIGMA2_FLOOR = 1e-6  # fixed payouts: the spread is 0; keeps divisions finite
# An offer without a conversion: the prior sd of its ln mean payout, in units of the spread of ln
# mean payouts across the offers that have converted (once two have). Offers that pay alike (E2) make
# an unconverted offer's payout nearly known; offers paying 200 to 8,000 cents (E1) keep a wide,
# optimistic prior until the offer converts (bench/README.md, "Unseen payouts").
UNSEEN_PAYOUT_SPREAD = 2.0
# Optimistic draws for the offers whose mean payout is over this multiple of the candidates' median
# (SamplerParams.optimistic_payout_multiple). In E1 only the 8,000 c offer is over 4x (median
# ~1,100 c; 3,200 c is 2.9x); 100 seeds: E1 92.7 -> 96.2 % of oracle (bench/README.md).
OPTIMISTIC_PAYOUT_MULTIPLE = 4.0


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
    # Exploration floor: with this probability the choice is uniform over the candidates, so every
    # candidate keeps a probability of at least floor / K (the bound on an IPS weight: K / floor).
    floor: float = DEFAULT_FLOOR
    # Each candidate's contractual payout in cents per conversion, NaN (or <= 0) where unknown;
    # shaped (K,) or (B, K). Where given, policies use it instead of the learned mean payout.
    payouts: tuple[float, ...] | np.ndarray | None = None
    # Optimistic Thompson (after May et al. 2012): a draw below the candidate's posterior mean
    # t = ln(mean rate) + m is reflected above it (t + |draw - t|), so an unlucky low draw cannot
    # shut out an offer that looks good; the draw stays continuous (no ties), its propensity exact.
    optimistic: bool = False
    # The same reflection only for candidates whose mean payout exp(m) is above this multiple of the
    # row's median (None: off). Probability matching gives a rare converter with a large payout
    # (8,000 c at 0.5 %) about its P(best) after an unlucky start, and it can starve for the rest
    # of the horizon; offers that pay alike (E2, E3) are left as plain Thompson.
    optimistic_payout_multiple: float | None = OPTIMISTIC_PAYOUT_MULTIPLE
    # Each candidate's draw is the largest of this many independent posterior draws (1: plain
    # Thompson). More samples lean towards the candidates whose posterior is still wide (optimism
    # that fades as the posterior narrows); the propensity stays exact: the draw's distribution
    # function is F^samples.
    samples: int = 1
    # Optimism on the payout only (on by default): the log payout's Gauss-Hermite node is taken as |node| (a draw
    # below the payout posterior's centre m is reflected above it), so an offer whose payout is
    # still uncertain (no conversion yet, or heavy-tailed payouts) is priced high, while the rate
    # stays plain Thompson (fixed payouts of 1, as in E2 and E3, are unaffected once seen).
    optimistic_payout: bool = True
    # An offer without a conversion: its ln mean payout's prior sd in units of the spread of the
    # converted offers' ln mean payouts (see _unseen_payout_variance); None: the earlier rule, a
    # fixed prior variance of max(LOG_MU_PRIOR_VAR, the pooled within-offer spread).
    unseen_payout_spread: float | None = UNSEEN_PAYOUT_SPREAD


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


def discounted(buckets: Sequence[OfferStats], ages: Sequence[float], half_life: float) -> OfferStats:
    """Statistics that forget: the sum of time-bucketed counters (one OfferStats per bucket, e.g.
    per minute), each weighted by 2^(-age / half_life); ages and half_life in the same unit.

    A store keeping per-bucket counters (and dropping buckets older than ~10 half-lives) hands the
    policies these discounted counts; every policy takes fractional counts as they are. The bandit
    benchmark applies the same weighting per bucket of clicks (bench/harness.py, --half-life)."""
    weights = np.exp2(-np.asarray(ages, dtype=float) / half_life)
    fields = np.array([[getattr(b, f) for f in OfferStats.__dataclass_fields__] for b in buckets], dtype=float)
    summed = weights @ fields if len(buckets) else np.zeros(len(OfferStats.__dataclass_fields__))
    return OfferStats(*(float(x) for x in summed))


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


def _one_hot(index: np.ndarray, k: int) -> np.ndarray:
    return (index[:, None] == np.arange(k)).astype(float)


def floored(base: np.ndarray, k: int, probabilities: np.ndarray | None, params: SamplerParams, rng) -> Decisions:
    """The exploration floor over a base policy's choice `base` (B,): with probability params.floor
    a uniformly drawn candidate instead. `probabilities` (B, K): the base policy's probability of
    every candidate (None: not wanted, NaN logged). Logged: floor / K + (1 - floor) * P_base."""
    floor = params.floor
    if floor > 0.0:
        explore = rng.random(len(base)) < floor
        index = np.where(explore, rng.integers(k, size=len(base)), base)
    else:
        index = base
    if probabilities is None:
        return Decisions(index, np.full(index.shape, np.nan))
    chosen = probabilities[np.arange(len(index)), index]
    return Decisions(index, floor / k + (1.0 - floor) * chosen)


def random_core(stats: Stats, total_clicks, params, rng, propensity=True) -> Decisions:
    batch, k = stats.clicks.shape
    return Decisions(rng.integers(k, size=batch), np.full(batch, 1.0 / k))


def greedy_core(stats: Stats, total_clicks, params, rng, propensity=True) -> Decisions:
    """The course's greedy: random while the service has seen fewer than `warmup_clicks` clicks,
    then the highest revenue per click; with no statistics at all, the first candidate."""
    batch, k = stats.clicks.shape
    best = _first_max(_revenue_per_click(stats, params))
    warming = np.asarray(total_clicks) < params.warmup_clicks
    index = np.where(warming, rng.integers(k, size=batch), best)
    probabilities = np.where(warming[:, None], 1.0 / k, _one_hot(best, k)) if propensity else None
    return floored(index, k, probabilities, params, rng)


def epsilon_core(stats: Stats, total_clicks, params, rng, propensity=True) -> Decisions:
    batch, k = stats.clicks.shape
    epsilon = params.epsilon / (1.0 + params.epsilon_decay * stats.clicks.sum(axis=1))
    best = _first_max(_revenue_per_click(stats, params))
    explore = rng.random(batch) < epsilon
    index = np.where(explore, rng.integers(k, size=batch), best)
    probabilities = epsilon[:, None] / k + (1.0 - epsilon[:, None]) * _one_hot(best, k) if propensity else None
    return floored(index, k, probabilities, params, rng)


def _revenue_per_click(stats: Stats, params: SamplerParams) -> np.ndarray:
    """Learned revenue per click, or conversion rate x known payout where the payout is given."""
    known = _known_payouts(params, stats.clicks.shape)
    learned = revenue_per_click(stats)
    return np.where(np.isfinite(known), _per(stats.conversions, stats.clicks) * np.nan_to_num(known), learned)


def ucb_core(stats: Stats, total_clicks, params, rng, propensity=True) -> Decisions:
    """UCB1 on revenue per click, scaled to [0, 1] by the largest mean payout seen; unseen first."""
    clicks, conversions = stats.clicks, stats.conversions
    mean_payout, _ = _mean_payouts(stats, params)
    scale = mean_payout.max(axis=1, keepdims=True)
    scale = np.where(scale > 0, scale, 1.0)
    n = np.maximum(clicks, 1.0)
    total = np.maximum(clicks.sum(axis=1, keepdims=True), 1.0)
    score = conversions * mean_payout / n / scale + params.ucb_c * np.sqrt(2.0 * np.log(total) / n)
    score = np.where(clicks == 0, np.inf, score)  # unseen candidates first, the first given first
    best = _first_max(score)
    return floored(best, clicks.shape[1], _one_hot(best, clicks.shape[1]) if propensity else None, params, rng)


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


def _mean_payouts(stats: Stats, params: SamplerParams) -> tuple[np.ndarray, np.ndarray]:
    """Each candidate's mean payout (the known one where given), and whether it is known (given,
    or learned from at least one conversion)."""
    known = _known_payouts(params, stats.clicks.shape)
    given = np.isfinite(known)
    learned = _per(stats.reward, stats.conversions)
    return np.where(given, np.nan_to_num(known), learned), given | (stats.conversions > 0)


def klucb_core(stats: Stats, total_clicks, params, rng, propensity=True) -> Decisions:
    """KL-UCB on the conversion rate (level ucb_c * ln of the clicks on the candidates) times the
    offer's mean payout; an offer without a conversion yet is credited the best mean payout seen
    (optimism); unseen candidates first."""
    clicks, conversions = stats.clicks, stats.conversions
    total = np.maximum(clicks.sum(axis=1, keepdims=True), 1.0)
    level = params.ucb_c * np.log(np.maximum(total, np.e))
    payout, known = _mean_payouts(stats, params)
    best_payout = payout.max(axis=1, keepdims=True)
    payout = np.where(known, payout, np.where(best_payout > 0, best_payout, 1.0))
    score = klucb_rate(conversions, clicks, level) * payout
    score = np.where(clicks == 0, np.inf, score)
    best = _first_max(score)
    return floored(best, clicks.shape[1], _one_hot(best, clicks.shape[1]) if propensity else None, params, rng)


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


def payout_normal(stats: Stats, params: SamplerParams) -> tuple[np.ndarray, np.ndarray]:
    """Each candidate's log mean payout as a Normal(m, s^2), both shaped (B, K).

    From log_payout_posterior, moment-matched: sigma^2 at its posterior mean beta / (alpha - 1);
    mu | sigma^2 with a Normal prior of variance max(LOG_MU_PRIOR_VAR, sigma^2) centred so the mean
    payout exp(mu + sigma^2 / 2) is a priori `prior_mean` (the best mean payout seen), updated by
    n ln payouts; the uncertainty of sigma^2 itself (InvGamma variance) widens s by the share of
    the data in mu's precision. Fixed payouts give s -> 0, heavy tails a wide s.
    Offers with conversions but no log sums (counters that predate them) use the Gamma of
    payout_posterior (shape k, scale theta): m = ln(k theta) - 1 / (2k), s^2 = 1 / k + 1 / (2k^2).
    Known payouts (params.payouts, NaN where unknown) are used as they are: m = ln payout, s = 0.
    A row that knows no payout at all (no conversion, nothing known) gets m = s = 0: the rate decides.
    An offer without a conversion or a known payout: s = params.unseen_payout_spread times the spread
    of ln mean payouts across the offers (_unseen_payout_variance), so its payout is as uncertain as
    the offers' payouts differ.
    """
    n, mean, alpha, beta, prior_mean = log_payout_posterior(stats)
    sigma2 = np.maximum(beta / (alpha - 1.0), LOG_SIGMA2_FLOOR)
    sigma2_var = sigma2 * sigma2 / np.maximum(alpha - 2.0, 1e-9)
    inv = 1.0 / sigma2
    prior_precision = np.minimum(1.0 / LOG_MU_PRIOR_VAR, inv)
    precision = prior_precision + n * inv
    mu = (prior_precision * (np.log(prior_mean) - sigma2 / 2.0) - 0.5 + n * mean * inv) / precision
    data_share = n * inv / precision
    m = mu + sigma2 / 2.0
    var = 1.0 / precision + (data_share / 2.0) ** 2 * sigma2_var
    conversions = stats.conversions
    legacy = (conversions > 0) & ~(stats.log_conversions > 0) if stats.log_conversions is not None else conversions > 0
    if legacy.any():
        shape, scale = payout_posterior(stats)
        m = np.where(legacy, np.log(shape * scale) - 0.5 / shape, m)
        var = np.where(legacy, 1.0 / shape + 0.5 / shape**2, var)
    known = _known_payouts(params, conversions.shape)
    nothing_known = (_row_sum(conversions) == 0) & ~np.isfinite(known).any(axis=1, keepdims=True)
    if np.isfinite(known).any():
        # offers without a known payout are priced a priori at the best known one
        best_known = np.nanmax(np.where(np.isfinite(known), known, np.nan), axis=1, keepdims=True)
        unseen = ~np.isfinite(known) & (conversions == 0)
        m = np.where(unseen, np.log(np.maximum(best_known, prior_mean)) - 0.5, m)
        var = np.where(unseen, LOG_MU_PRIOR_VAR, var)
        m = np.where(np.isfinite(known), np.log(np.where(np.isfinite(known), known, 1.0)), m)
        var = np.where(np.isfinite(known), 0.0, var)
    unseen = (conversions == 0) & ~np.isfinite(known) & ~nothing_known
    if params.unseen_payout_spread is not None and unseen.any():
        var = np.where(unseen, params.unseen_payout_spread**2 * _unseen_payout_variance(n, mean), var)
    m = np.where(nothing_known, 0.0, m)
    var = np.where(nothing_known, 0.0, var)
    return m, np.sqrt(var)


def _unseen_payout_variance(n: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """The spread of ln mean payouts across offers, shaped (B, 1): the variance of the converted
    offers' mean ln payouts (at least LOG_SIGMA2_PRIOR) once a row has two such offers,
    LOG_MU_PRIOR_VAR before. An unconverted offer's prior variance is unseen_payout_spread^2 times it."""
    converted = n > 0
    count = _row_sum(converted.astype(float))
    centre = _row_sum(np.where(converted, mean, 0.0)) / np.maximum(count, 1.0)
    deviation = np.where(converted, mean - centre, 0.0)
    between = _row_sum(deviation * deviation) / np.maximum(count - 1.0, 1.0)
    between = np.where(count >= 2, np.maximum(between, LOG_SIGMA2_PRIOR), LOG_MU_PRIOR_VAR)
    return between


def _known_payouts(params: SamplerParams, shape: tuple) -> np.ndarray:
    """params.payouts broadcast to (B, K); NaN where unknown (or when none is given)."""
    if params.payouts is None:
        return np.full(shape, np.nan)
    known = np.array(params.payouts, dtype=float)
    known = np.where(known > 0, known, np.nan)  # a payout of 0 or less says nothing usable
    return np.broadcast_to(known, shape)


def beta_posterior(stats: Stats, params: SamplerParams) -> tuple[np.ndarray, np.ndarray]:
    """Beta(a, b) posterior on each candidate's conversion rate, shaped (B, K)."""
    clicks, conversions = stats.clicks, stats.conversions
    if params.thompson_a is None or params.thompson_b is None:
        a, b = fitted_beta_prior(clicks, conversions)
    else:
        a, b = params.thompson_a, params.thompson_b
    return a + conversions, b + np.maximum(clicks - conversions, 0.0)


# Thompson draws the log payout from a PAYOUT_NODES-point Gauss-Hermite discretisation of
# Normal(m, s^2) (it keeps the first 2 * PAYOUT_NODES - 1 moments): that makes each candidate's
# draw a finite mixture of shifted log-Beta variables, whose distribution function thompson_propensities
# computes on a grid, so the logged probability is the policy's own (see thompson_propensities).
PAYOUT_NODES = 5
_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite_e.hermegauss(PAYOUT_NODES)
_GH_WEIGHTS = _GH_WEIGHTS / _GH_WEIGHTS.sum()
_GH_CUMULATIVE = np.cumsum(_GH_WEIGHTS)


def thompson_posterior(stats: Stats, params: SamplerParams) -> tuple[np.ndarray, ...]:
    """(a, b, m, s), each (B, K): rate ~ Beta(a, b), ln mean payout ~ Normal(m, s^2)."""
    a, b = beta_posterior(stats, params)
    m, s = payout_normal(stats, params)
    shape = stats.clicks.shape
    return np.broadcast_to(a, shape), np.broadcast_to(b, shape), m, s


def thompson_draws(
    stats: Stats, params: SamplerParams, rng: np.random.Generator, draws: int = 1, posterior=None
) -> np.ndarray:
    """`draws` x B x K samples of each candidate's log revenue per click from its posterior:
    ln(rate) + ln(mean payout), rate ~ beta_posterior, ln payout a node of payout_normal's
    Gauss-Hermite discretisation (see PAYOUT_NODES)."""
    a, b, m, s = posterior if posterior is not None else thompson_posterior(stats, params)
    samples = max(int(params.samples), 1)
    size = (draws * samples, *stats.clicks.shape)
    with np.errstate(divide="ignore"):
        log_rate = np.log(rng.beta(a, b, size=size))
    if np.any(s > 0):
        node = np.minimum(np.searchsorted(_GH_CUMULATIVE, rng.random(size)), PAYOUT_NODES - 1)
        nodes = np.abs(_GH_NODES) if params.optimistic_payout else _GH_NODES
        values = _optimism(log_rate + m + s * nodes[node], a, b, m, params)
    else:
        values = _optimism(log_rate + m, a, b, m, params)
    if samples == 1:
        return values
    return np.maximum.reduce(values.reshape(draws, samples, *stats.clicks.shape), axis=1)


def _reflected(m: np.ndarray, params: SamplerParams) -> np.ndarray | None:
    """Which candidates' draws are reflected above their mean (see SamplerParams.optimistic and
    optimistic_payout_multiple), shaped as m; None when none is."""
    if params.optimistic:
        return np.ones(np.shape(m), dtype=bool)
    if params.optimistic_payout_multiple is None:
        return None
    high = m - np.median(m, axis=-1, keepdims=True) > np.log(params.optimistic_payout_multiple)
    return high if high.any() else None


def _optimism(draws: np.ndarray, a, b, m, params: SamplerParams) -> np.ndarray:
    reflected = _reflected(m, params)
    if reflected is None:
        return draws
    threshold = np.log(a / (a + b)) + m
    return np.where(reflected, threshold + np.abs(draws - threshold), draws)


# The log-Beta table of thompson_propensities: BULK_POINTS evenly over the mode +- BULK_SDS
# standard deviations (Laplace approximation in ln(rate)), TAIL_POINTS geometrically spaced
# down the left tail to where its mass is below 1e-9.
BULK_POINTS, BULK_SDS, TAIL_POINTS = 64, 8.0, 16
GRID_POINTS, SHARP_CELLS, SHARP_STRIDE = 192, 8.0, 2  # a sharp candidate adds every 2nd bulk point


_BULK = np.linspace(-BULK_SDS, BULK_SDS, BULK_POINTS)
_TAIL = np.geomspace(1.0, 1.0 / TAIL_POINTS, TAIL_POINTS)


def _log_beta_cdf_tables(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, ...]:
    """(u, F) each (K, Z), and sd (K,): the distribution function of ln(X), X ~ Beta(a_j, b_j),
    tabulated per candidate (trapezoid rule on the density, normalised numerically) around its
    mode, sd the Laplace approximation's standard deviation."""
    wide = b <= 1.0  # the density in ln(rate) rises up to rate = 1
    safe_b = np.where(wide, 2.0, b)
    mode = np.where(wide, -1e-12, np.log(a / (a + safe_b - 1.0)))
    sd = np.where(wide, 1.0 / a, np.sqrt((safe_b - 1.0) / (a * (a + safe_b - 1.0))))
    mode = np.minimum(mode, -1e-12)[:, None]
    sd = sd[:, None]
    bulk = np.minimum(mode + _BULK * sd, -1e-12)
    far = 21.0 / a[:, None] + BULK_SDS * sd  # density ~ exp(a u) far left: mass below is < 1e-9
    tail = bulk[:, :1] - _TAIL * far
    u = np.concatenate([tail, bulk], axis=1)
    log_density = a[:, None] * u + (b[:, None] - 1.0) * np.log(-np.expm1(u))
    density = np.exp(log_density - log_density.max(axis=1, keepdims=True))
    steps = np.diff(u, axis=1) * (density[:, 1:] + density[:, :-1]) / 2.0
    cdf = np.concatenate([np.zeros((len(a), 1)), np.cumsum(steps, axis=1)], axis=1)
    return u, cdf / cdf[:, -1:], sd[:, 0]


def _mixture_cdf(x: np.ndarray, u: np.ndarray, f: np.ndarray, shifts, weights) -> np.ndarray:
    """sum_q w_q G(x - shift_q), G the tabulated distribution function (u, f)."""
    return sum(w * np.interp(x - shift, u, f, left=0.0, right=1.0) for w, shift in zip(weights, shifts, strict=True))


def thompson_propensities(stats: Stats, params: SamplerParams, posterior=None) -> np.ndarray:
    """P(candidate i has the largest draw of thompson_draws), shaped (B, K), by numerical integration.

    Candidate j's draw is ln(rate_j) + m_j + s_j z, z one of the PAYOUT_NODES Gauss-Hermite nodes,
    so its distribution function is F_j(x) = sum_q w_q G_j(x - m_j - s_j z_q), G_j that of
    ln(rate_j) (tabulated by _log_beta_cdf_table). Then P(i) = integral of prod_{j != i} F_j dF_i,
    by the trapezoid rule on GRID_POINTS even points plus the table points of every candidate
    narrower than SHARP_CELLS cells (so every candidate's distribution is resolved), from the
    highest point below which some candidate has mass < 1e-7.
    Error: that of the tables (trapezoid and linear interpolation at 1/12 of a standard
    deviation), measured against 10^6 draws in tests/test_policies.py as below 0.003; the result
    is normalised to sum to 1.
    """
    a_all, b_all, m_all, s_all = posterior if posterior is not None else thompson_posterior(stats, params)
    batch, k = stats.clicks.shape
    out = np.zeros((batch, k))
    for row in range(batch):
        m, s = m_all[row], s_all[row]
        table_u, table_f, table_sd = _log_beta_cdf_tables(a_all[row], b_all[row])
        # a payout spread below 2 % of the log-rate spread changes the spread of the sum by 0.02 %:
        # one node (m) there
        spread = s > 0.02 * table_sd
        all_nodes = np.abs(_GH_NODES) if params.optimistic_payout else _GH_NODES
        nodes = all_nodes if spread.any() else np.zeros(1)
        weights = _GH_WEIGHTS if spread.any() else np.ones(1)
        if params.optimistic_payout:  # a narrow payout still shifts its candidate by s E|node|
            m = m + np.where(spread, 0.0, s * (_GH_WEIGHTS @ all_nodes))
        shifts = m[:, None] + np.where(spread, s, 0.0)[:, None] * nodes  # (K, Q)
        first = np.minimum(np.add.reduce(table_f < 1e-7, axis=1), table_f.shape[1] - 1)
        low = table_u[np.arange(k), first] + shifts.min(axis=1)
        high = table_u[:, -1] + shifts.max(axis=1)
        reflected = _reflected(m_all[row], params)
        threshold = None
        if reflected is not None:  # -inf: not reflected
            threshold = np.where(reflected, np.log(a_all[row] / (a_all[row] + b_all[row])) + m_all[row], -np.inf)
            low = np.maximum(low, threshold)  # no reflected draw falls below the candidate's mean
        start = low.max()
        live = np.flatnonzero(high > start)
        if len(live) == 0:  # every distribution collapsed onto the same point: a tie
            out[row] = 1.0 / k
            continue
        if len(live) == 1:
            out[row, live] = 1.0
            continue
        # the grid: GRID_POINTS evenly from `start` to the highest candidate's top, plus the table
        # points of every candidate narrower than SHARP_CELLS of its cells (so each is resolved)
        top = high[live].max()
        cell = (top - start) / GRID_POINTS
        sharp = live[np.sqrt(table_sd[live] ** 2 + s[live] ** 2) < SHARP_CELLS * cell]
        points = np.concatenate(
            [np.linspace(start, top, GRID_POINTS + 1)]
            + [
                (
                    table_u[j, TAIL_POINTS::SHARP_STRIDE, None] + shifts[j, None, : len(nodes) if spread[j] else 1]
                ).ravel()
                for j in sharp
            ]
        )
        if threshold is not None:  # the kink of each distribution function at its threshold
            points = np.concatenate([points, threshold[live][reflected[live]]])
        points = np.unique(np.concatenate([[start], points[points >= start]]))
        cdf = np.empty((len(live), len(points)))
        for i, j in enumerate(live):
            mixture = (
                (table_u[j], table_f[j], shifts[j], weights)
                if spread[j]
                else (table_u[j], table_f[j], m[j : j + 1], [1.0])
            )
            cdf[i] = _mixture_cdf(points, *mixture)
            if threshold is not None and reflected[j]:  # reflected above t: F(x) - F(2t - x) for x >= t, else 0
                t = threshold[j]
                mirrored = _mixture_cdf(2 * t - points, *mixture)
                cdf[i] = np.where(points < t, 0.0, np.maximum(cdf[i] - mirrored, 0.0))
        if params.samples > 1:  # the largest of `samples` independent draws
            cdf = cdf ** int(params.samples)
        # products over the other candidates, without dividing: prefix x suffix cumulative products
        ones = np.ones((1, len(points)))
        prefix = np.cumprod(np.vstack([ones, cdf[:-1]]), axis=0)
        suffix = np.cumprod(np.vstack([ones, cdf[:0:-1]]), axis=0)[::-1]
        others = prefix * suffix
        mass = np.diff(cdf, axis=1)
        shares = np.add.reduce(mass * (others[:, 1:] + others[:, :-1]) / 2.0, axis=1)
        out[row, live] = shares / shares.sum()
    return out


def thompson_core(stats: Stats, total_clicks, params, rng, propensity=True) -> Decisions:
    """Thompson sampling on revenue per click: Beta on the rate times a lognormal posterior on the
    mean payout (payout_normal). The probability is computed by thompson_propensities."""
    posterior = thompson_posterior(stats, params)
    index = _first_max(thompson_draws(stats, params, rng, 1, posterior)[0])
    probabilities = None
    if propensity and stats.clicks.shape[0] == 1:
        key = tuple(np.ascontiguousarray(part, dtype=float).tobytes() for part in posterior)
        shape = (params.optimistic, params.optimistic_payout_multiple, params.optimistic_payout, int(params.samples))
        probabilities = _one_request_propensities(*key, *shape)[None, :]
    elif propensity:
        probabilities = thompson_propensities(stats, params, posterior)
    return floored(index, stats.clicks.shape[1], probabilities, params, rng)


@functools.lru_cache(maxsize=256)
def _one_request_propensities(
    a: bytes,
    b: bytes,
    m: bytes,
    s: bytes,
    optimistic: bool,
    optimistic_payout_multiple: float | None,
    optimistic_payout: bool,
    samples: int,
) -> np.ndarray:
    """thompson_propensities of one request, remembered by its posterior and the options that shape
    the draw (all that thompson_propensities reads): the posterior changes only when the candidates'
    statistics do (a cache refresh, about once a second), while the same candidate set may come
    thousands of times a second; at K = 100 the integral costs milliseconds. Read-only."""
    posterior = tuple(np.frombuffer(part)[None, :] for part in (a, b, m, s))
    params = SamplerParams(
        optimistic=optimistic,
        optimistic_payout_multiple=optimistic_payout_multiple,
        optimistic_payout=optimistic_payout,
        samples=samples,
    )
    probabilities = thompson_propensities(Stats.zeros(1, posterior[0].shape[1]), params, posterior)[0]
    probabilities.setflags(write=False)
    return probabilities


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
# Samplers that decide on the statistics since each offer's last detected market change
# (shared/cpa/drift.py); the others see every click since the offer began.
FORGETS = frozenset({"thompson"})


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
