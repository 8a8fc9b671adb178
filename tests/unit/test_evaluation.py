"""Off-policy estimators and "which offer is winning": pure, on simulated logs where the truth is known."""

import numpy as np
import pytest

from shared.cpa import insights, policies
from shared.cpa.policies import OfferStats, SamplerParams, Stats
from shared.maths import estimators

RATES = np.array([0.08, 0.05, 0.03, 0.02, 0.005])
PAYOUTS = np.array([200.0, 400.0, 560.0, 800.0, 8000.0])  # revenue per click 16, 20, 16.8, 16, 40


def simulated_log(seed, n=50_000):
    """A logging policy with a floor: 60 % on offer 0, the rest uniform; contexts play no part.

    50,000 clicks: offer 4's 8,000-cent conversions at 0.5 % must number a few dozen for a normal
    interval to hold; at 4,000 clicks (about 1.6 of them) IPS covered only 75 % of seeds."""
    rng = np.random.default_rng(seed)
    k = len(RATES)
    logging = np.full(k, 0.4 / k)
    logging[0] += 0.6
    actions = rng.choice(k, size=n, p=logging)
    rewards = (rng.random(n) < RATES[actions]) * PAYOUTS[actions]
    return actions, logging[actions], rewards


TARGETS = {
    "always offer 4": np.eye(5)[4],
    "softmax": np.exp(RATES * PAYOUTS / 10) / np.exp(RATES * PAYOUTS / 10).sum(),
    "uniform": np.full(5, 0.2),
}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_intervals_cover_the_true_value_in_at_least_90_percent_of_seeds(target):
    pi = TARGETS[target]
    truth = float(pi @ (RATES * PAYOUTS))
    covered = {"ips": 0, "snips": 0, "dr": 0}
    seeds = 200
    for seed in range(seeds):
        actions, propensities, rewards = simulated_log(seed)
        target_probs = np.broadcast_to(pi, (len(actions), 5))
        # reward model: per-offer mean reward from a smaller, independent log (deliberately rough)
        other_a, _, other_r = simulated_log(10_000 + seed, n=5000)
        model_row = np.array([other_r[other_a == a].mean() if np.any(other_a == a) else 0.0 for a in range(5)])
        model = np.broadcast_to(model_row, (len(actions), 5))
        for name, estimate in (
            ("ips", estimators.ips(actions, propensities, rewards, target_probs)),
            ("snips", estimators.snips(actions, propensities, rewards, target_probs)),
            ("dr", estimators.doubly_robust(actions, propensities, rewards, target_probs, model)),
        ):
            covered[name] += estimate.low <= truth <= estimate.high
    for name, count in covered.items():
        assert count / seeds >= 0.90, (name, count / seeds)


def test_ips_is_exact_arithmetic_on_a_tiny_log():
    actions, propensities, rewards = np.array([0, 1]), np.array([0.5, 0.25]), np.array([10.0, 40.0])
    target = np.array([[1.0, 0.0], [0.5, 0.5]])
    assert estimators.ips(actions, propensities, rewards, target).value == pytest.approx((2 * 10 + 2 * 40) / 2)
    assert estimators.snips(actions, propensities, rewards, target).value == pytest.approx((20 + 80) / 4)


def _offer(clicks, conversions, payout):
    log = np.log(payout)
    return OfferStats(
        clicks,
        conversions,
        conversions * payout,
        conversions * payout**2,
        conversions,
        conversions * log,
        conversions * log**2,
    )


def test_probability_best_and_interval_on_revenue_per_click():
    stats = Stats.of([_offer(20_000, 400, 200.0), _offer(20_000, 100, 8000.0), _offer(300, 3, 1000.0)])
    best = insights.probability_best(stats)[0]
    assert best.sum() == pytest.approx(1.0)
    assert best[1] > 0.99  # 40 c a click against 4 and ~10
    low, high = insights.revenue_interval(stats)
    assert low[0, 1] < 40.0 < high[0, 1]
    assert low[0, 0] < 4.0 < high[0, 0]
    assert high[0, 2] - low[0, 2] > high[0, 0] - low[0, 0]  # fewer clicks, a wider interval


def test_probability_best_carries_none_of_the_policys_optimism():
    # offer 1: four conversions at very different payouts, so its payout posterior is wide
    payouts = np.array([100.0, 900.0, 2500.0, 400.0])
    uncertain = OfferStats(
        2000, 4, payouts.sum(), (payouts**2).sum(), 4, np.log(payouts).sum(), (np.log(payouts) ** 2).sum()
    )
    stats = Stats.of([_offer(2000, 40, 300.0), uncertain])
    plain = SamplerParams(
        floor=0.0, optimistic=False, optimistic_payout=False, optimistic_payout_multiple=None, retry_level=None
    )
    best = insights.probability_best(stats)[0]
    assert best == pytest.approx(policies.thompson_propensities(stats, plain)[0], abs=1e-9)
    # a policy with payout optimism prices the uncertain payout high; the report must not
    optimistic = SamplerParams(floor=0.0, optimistic_payout=True, retry_level=None)
    assert policies.thompson_propensities(stats, optimistic)[0][1] > best[1] + 0.005
