"""The posteriors thompson draws from: a Beta on each candidate's conversion rate (prior fitted across
the candidates) and a Normal on its ln mean payout (lognormal payouts, spread pooled across the
candidates). Pure.
"""

import numpy as np

from shared.cpa.policies.common import known_payouts, per, rate_or, row_max, row_sum
from shared.cpa.policies.types import SamplerParams, Stats

# The lognormal payout posterior (log_payout_posterior), in units of ln(cents):
LOG_SIGMA2_PRIOR = 0.01  # spread of ln payouts assumed before any offer repeats a conversion (CV ~0.1)

LOG_POOL_DOF = 10.0  # weight, in degrees of freedom, of the pooled spread in each offer's own

LOG_MU_PRIOR_VAR = 1.0  # prior variance of an offer's mean ln payout: a factor e either way

LOG_SIGMA2_FLOOR = 1e-6  # fixed payouts: the spread is 0; keeps divisions finite


def fitted_beta_prior(clicks: np.ndarray, conversions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Beta(a, b) on the conversion rate fitted across each row's candidates (method of moments).

    With many offers, a flat Beta(1, 1) spends clicks proving that each unseen offer is as poor as
    the rest; a prior centred on what the candidates convert at, held to a few clicks' weight, lets
    the policy skip near-ties (Bayati et al. 2020). Beta(1, 1) until a row has a conversion.
    Returns a and b shaped (B, 1).
    """
    clicks = np.atleast_2d(clicks)
    conversions = np.atleast_2d(conversions)
    total_clicks = row_sum(clicks)
    total_conv = row_sum(conversions)
    fitted = total_conv >= 1
    if not fitted.any():
        return np.ones(total_conv.shape), np.ones(total_conv.shape)
    mean = per(total_conv, total_clicks)
    deviation = per(conversions, clicks) - mean
    # Exactly 0 when fewer than two candidates have clicks (the one seen has the row's mean).
    variance = per(row_sum(clicks * deviation * deviation), total_clicks)
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
    pooled_mean = rate_or(reward.sum(axis=1, keepdims=True), total, 1.0)
    mean = rate_or(reward, conversions, pooled_mean)
    repeated = conversions >= 2
    cv2 = np.maximum(per(reward_sq, conversions) / np.maximum(mean, 1e-300) ** 2 - 1.0, 0.0)
    weights = np.where(repeated, conversions, 0.0)
    within_cv2 = rate_or((weights * cv2).sum(axis=1, keepdims=True), weights.sum(axis=1, keepdims=True), 1.0)
    weight = conversions / np.maximum(within_cv2, 0.01)
    shape = 1.0 + weight
    prior_mean = np.where(total > 0, per(reward, conversions).max(axis=1, keepdims=True), 1.0)
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
    mean = per(log_sum, log_n)
    spread = np.maximum(log_sq - log_sum * mean, 0.0)  # sum of squared deviations; 0 where log_n is 0
    dof = np.maximum(log_n - 1.0, 0.0)
    pooled = (row_sum(spread) + LOG_SIGMA2_PRIOR) / (row_sum(dof) + 1.0)
    pooled = np.maximum(pooled, LOG_SIGMA2_FLOOR)
    alpha = (LOG_POOL_DOF + dof) / 2.0
    beta = (LOG_POOL_DOF * pooled + spread) / 2.0
    conversions = stats.conversions
    best = row_max(per(stats.reward, conversions))
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
    known = known_payouts(params, conversions.shape)
    row_knows = np.isfinite(known).any(axis=1, keepdims=True)
    nothing_known = (row_sum(conversions) == 0) & ~row_knows
    if row_knows.any():
        # in a row that knows a payout, offers without one are priced a priori at the best known one
        best_known = np.max(np.where(np.isfinite(known), known, 0.0), axis=1, keepdims=True)
        unseen = ~np.isfinite(known) & (conversions == 0) & row_knows
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
    count = row_sum(converted.astype(float))
    centre = row_sum(np.where(converted, mean, 0.0)) / np.maximum(count, 1.0)
    deviation = np.where(converted, mean - centre, 0.0)
    between = row_sum(deviation * deviation) / np.maximum(count - 1.0, 1.0)
    between = np.where(count >= 2, np.maximum(between, LOG_SIGMA2_PRIOR), LOG_MU_PRIOR_VAR)
    return between


def beta_posterior(stats: Stats, params: SamplerParams) -> tuple[np.ndarray, np.ndarray]:
    """Beta(a, b) posterior on each candidate's conversion rate, shaped (B, K)."""
    clicks, conversions = stats.clicks, stats.conversions
    if params.thompson_a is None or params.thompson_b is None:
        a, b = fitted_beta_prior(clicks, conversions)
    else:
        a, b = params.thompson_a, params.thompson_b
    return a + conversions, b + np.maximum(clicks - conversions, 0.0)
