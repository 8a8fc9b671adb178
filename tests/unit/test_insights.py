"""shared/cpa/insights.py: revenue-per-click intervals and P(best), checked against simulated truth."""

import math

import numpy as np
import pytest

from shared.cpa.insights import probability_best, revenue_interval, revenue_per_click
from shared.cpa.policies import OfferStats, SamplerParams, Stats


def simulated_counters(rng, clicks, rate, mean_payout, sigma, log_sums=True) -> OfferStats:
    """One offer's counters after `clicks` clicks: lognormal payouts with the given mean and spread."""
    conversions = int(rng.binomial(clicks, rate))
    payouts = mean_payout * np.exp(sigma * rng.standard_normal(conversions) - sigma**2 / 2)
    logs = np.log(payouts)
    return OfferStats(
        clicks=clicks,
        conversions=conversions,
        reward=float(payouts.sum()),
        reward_sq=float((payouts**2).sum()),
        log_conversions=conversions if log_sums else 0,
        log_reward=float(logs.sum()) if log_sums else 0.0,
        log_reward_sq=float((logs**2).sum()) if log_sums else 0.0,
    )


@pytest.mark.parametrize("log_sums", [True, False])
def test_the_95_percent_intervals_cover_the_true_revenue_per_click_in_most_simulated_cases(log_sums):
    rng = np.random.default_rng(15)
    covered = total = 0
    for _ in range(150):
        k = 4
        rates = rng.uniform(0.005, 0.1, size=k)
        payouts = rng.choice([200.0, 800.0, 2000.0, 8000.0], size=k)
        sigma = rng.choice([0.0, 0.5, 1.0])
        clicks = int(rng.integers(500, 20_000))
        stats = [simulated_counters(rng, clicks, r, m, sigma, log_sums) for r, m in zip(rates, payouts, strict=True)]
        if sum(s.conversions for s in stats) == 0:
            continue
        found = revenue_per_click(stats, rng, draws=4000)
        truth = rates * payouts
        covered += int(((found.low <= truth) & (truth <= found.high)).sum())
        total += k
    assert total >= 500
    assert covered / total >= 0.90, f"coverage {covered / total:.3f} over {total} offers"


def test_an_interval_narrows_as_clicks_grow_and_holds_the_observed_value():
    rng = np.random.default_rng(1)
    widths = []
    for clicks in (1_000, 10_000, 100_000):
        stats = [simulated_counters(rng, clicks, 0.05, 1000.0, 0.5), simulated_counters(rng, clicks, 0.02, 1000.0, 0.5)]
        found = revenue_per_click(stats, rng, draws=4000)
        assert np.all(found.low <= found.observed) and np.all(found.observed <= found.high)
        widths.append(found.high[0] - found.low[0])
    assert widths[0] > widths[1] > widths[2]


def test_p_best_sums_to_one_and_is_near_one_for_a_clearly_dominant_offer():
    rng = np.random.default_rng(2)
    stats = [
        simulated_counters(rng, 20_000, 0.05, 2000.0, 0.5),  # 100 cents a click
        simulated_counters(rng, 20_000, 0.05, 500.0, 0.5),  # 25
        simulated_counters(rng, 20_000, 0.02, 1000.0, 0.5),  # 20
    ]
    found = revenue_per_click(stats, rng)
    assert math.isclose(found.p_best.sum(), 1.0)
    assert found.p_best[0] > 0.99
    assert found.payout_known


def test_p_best_is_near_uniform_for_identical_offers():
    rng = np.random.default_rng(3)
    same = OfferStats(
        clicks=5000, conversions=100, reward=100 * 1000.0, reward_sq=100 * 1000.0**2,
        log_conversions=100, log_reward=100 * math.log(1000.0), log_reward_sq=100 * math.log(1000.0) ** 2,
    )  # fmt: skip
    found = revenue_per_click([same] * 4, rng)
    assert math.isclose(found.p_best.sum(), 1.0)
    assert np.all(np.abs(found.p_best - 0.25) < 0.03), found.p_best
    assert np.allclose(found.low, found.low[0], rtol=0.05) and np.allclose(found.high, found.high[0], rtol=0.05)


def test_a_high_payout_offer_wins_over_a_high_rate_one_on_revenue_not_rate():
    rng = np.random.default_rng(4)
    stats = [
        simulated_counters(rng, 50_000, 0.08, 200.0, 0.0),  # 16 cents a click
        simulated_counters(rng, 50_000, 0.005, 8000.0, 0.0),  # 40 cents a click
    ]
    found = revenue_per_click(stats, rng)
    assert found.p_best[1] > 0.99


def test_without_any_conversion_offers_are_compared_on_the_rate_alone():
    stats = [OfferStats(clicks=10), OfferStats(clicks=1000), OfferStats()]
    found = revenue_per_click(stats, np.random.default_rng(5), draws=4000)
    assert not found.payout_known
    assert math.isclose(found.p_best.sum(), 1.0)
    assert np.all(found.observed == 0)
    # Fewer clicks without a conversion leave a higher rate possible.
    assert found.high[2] > found.high[0] > found.high[1]


def test_an_offer_without_a_conversion_among_converting_ones_gets_a_finite_interval_from_zero():
    rng = np.random.default_rng(6)
    stats = [simulated_counters(rng, 5000, 0.05, 1000.0, 0.5), OfferStats(clicks=50)]
    found = revenue_per_click(stats, rng, draws=4000)
    assert np.all(np.isfinite(found.high))
    assert found.low[1] < found.observed[0] * 0.05
    assert found.p_best[0] > 0.5


def test_no_offers_is_an_error():
    with pytest.raises(ValueError):
        revenue_per_click([], np.random.default_rng(0))


def test_the_posterior_it_reports_leaves_the_policys_re_tries_out():
    """P(best) and the intervals are the posterior's: a policy's retry floor (SamplerParams.retry_level)
    raises draws, not what is known about an offer."""
    rng = np.random.default_rng(4)
    offers = [simulated_counters(rng, 20_000, rate, 1000.0, 0.5) for rate in (0.05, 0.04, 0.002)]
    stats = Stats.of(offers)
    retries = SamplerParams(retry_level=0.5)
    assert probability_best(stats, retries).tolist() == probability_best(stats, SamplerParams()).tolist()
    low, high = revenue_interval(stats, retries)
    assert low.tolist() == revenue_interval(stats, SamplerParams())[0].tolist() and high[0, 2] < 10.0
