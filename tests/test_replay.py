"""shared/cpa/replay.py and the slate estimates: pure, on logs where the truth is known."""

import numpy as np
import pytest

from shared.cpa import replay
from shared.cpa.policies import SAMPLERS, SamplerParams, Stats, choose_batch
from shared.customer import evaluation as slates

RATES = np.array([0.05, 0.03, 0.02, 0.01])
PAYOUTS = np.array([200.0, 500.0, 600.0, 3000.0])  # revenue per click 10, 15, 12, 30
OFFERS = (11, 12, 13, 14)


def uniform_log(n: int, seed: int) -> replay.Log:
    """Uniformly random logging over four offers, one click a second, rewards half a second later."""
    rng = np.random.default_rng(seed)
    action = rng.integers(4, size=n)
    reward = (rng.random(n) < RATES[action]) * PAYOUTS[action]
    t = np.arange(n, dtype=float)
    return replay.Log([OFFERS] * n, action, np.full(n, 0.25), reward, t, t + 0.5, [None] * n, np.full(n, np.nan))


def test_decision_stats_count_only_what_happened_before_each_click():
    # offer 1 clicked at t=0 and converts (300) at t=2.5; offer 2 clicked at t=1 and t=3
    log = replay.Log(
        candidates=[(1, 2), (1, 2), (2, 1, 5), (2,)],
        action=np.array([0, 1, 0, 0]),
        probability=np.full(4, 0.5),
        reward=np.array([300.0, 0.0, 0.0, 0.0]),
        sampled_at=np.array([0.0, 1.0, 2.0, 3.0]),
        rewarded_at=np.array([2.5, 1.0, 2.0, 3.0]),
        payouts=[None] * 4,
        floor=np.full(4, np.nan),
    )
    per_click, clicks_before = replay.decision_stats(log)
    assert clicks_before.tolist() == [0, 1, 2, 3]
    assert per_click[0].sum() == 0  # nothing before the first click
    assert per_click[1][:, 0].tolist() == [1, 0]  # offer 1 clicked once, not converted yet
    assert per_click[2][:, 0].tolist() == [1, 1, 0] and per_click[2][:, 1].tolist() == [0, 0, 0]
    assert per_click[3][0, 0] == 2  # offer 2: the clicks at t=1 and t=2
    # offer 1's conversion arrived at t=2.5: after click 2 (t=2), so click 2 does not see it
    assert per_click[2][1, 1] == 0 and per_click[2][1, 2] == 0
    # counters 1.5 s old: click 3 (t=3) sees what happened before t=1.5 (offer 2 clicked at t=1),
    # click 2 (t=2, candidates 2, 1, 5) what happened before t=0.5 (offer 1 clicked at t=0)
    lagged, _ = replay.decision_stats(log, lag=1.5)
    assert lagged[3][0, 0] == 1 and lagged[2][:, 0].tolist() == [0, 1, 0]


def test_a_conversion_counts_from_its_feedback_time_with_its_payout_sums():
    log = uniform_log(50, seed=1)
    per_click, _ = replay.decision_stats(log)
    last = per_click[-1]
    before = slice(0, 49)
    for j in range(4):
        chosen = log.action[before] == j
        assert last[j, 0] == chosen.sum()
        assert last[j, 2] == log.reward[before][chosen].sum()  # every reward arrived by t=48.5
        assert last[j, 1] == (log.reward[before][chosen] > 0).sum() == last[j, 4]


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_target_probabilities_agree_with_what_each_sampler_logs(sampler):
    """The replayed vector must give the chosen offer exactly the probability the core logs."""
    rng = np.random.default_rng(3)
    batch, k = 200, 4
    clicks = rng.integers(0, 300, (batch, k)).astype(float)
    conversions = np.floor(clicks * rng.uniform(0, 0.1, (batch, k)))
    reward = conversions * rng.uniform(100, 900, (batch, k))
    log_n = conversions
    stats = Stats(clicks, conversions, reward, reward * 500, log_n, log_n * 6.0, log_n * 36.5)
    total = rng.integers(0, 200, batch)
    params = SamplerParams(floor=0.02, epsilon=0.2)
    vector = replay.target_probabilities(sampler, stats, total, params, np.random.default_rng(4))
    assert np.allclose(vector.sum(axis=1), 1.0)
    decided = choose_batch(sampler, stats, total, params, np.random.default_rng(5))
    assert np.allclose(vector[np.arange(batch), decided.index], decided.probability, atol=1e-9)
    assert (vector >= params.floor / k - 1e-12).all()  # the floor: never below floor / K


def test_estimates_cover_a_known_target_and_the_logged_value():
    log = uniform_log(4000, seed=7)
    replayed = replay.replay(log, ["random", "klucb"], np.random.default_rng(0))
    found = {e.sampler: e for e in replay.estimates(replayed)}
    truth = float((RATES * PAYOUTS).mean())  # uniform random: 16.75 cents a click
    for estimate in (found["random"].ips, found["random"].snips, found["random"].dr):
        assert estimate.low <= truth <= estimate.high
    assert found["random"].ess == pytest.approx(4000)
    assert replay.logged_value(replayed).value == pytest.approx(log.reward.mean())
    # klucb learns offer 14 (30 cents a click) is best: well above random, and weights concentrate
    assert found["klucb"].snips.value > found["random"].snips.value and found["klucb"].ess < 2000


def test_a_shadow_drawn_independently_is_estimated_without_bias():
    rng = np.random.default_rng(11)
    n = 40_000
    live = rng.integers(4, size=n)  # uniform live policy
    shadow = rng.choice(4, size=n, p=[0.1, 0.1, 0.1, 0.7])  # its own draws
    reward = (rng.random(n) < RATES[live]) * PAYOUTS[live]
    agreement, ips, snips = replay.shadow_estimates(live, np.full(n, 0.25), reward, shadow)
    truth = float(np.array([0.1, 0.1, 0.1, 0.7]) @ (RATES * PAYOUTS))
    assert agreement == pytest.approx(0.25, abs=0.01)
    assert ips.low <= truth <= ips.high and snips.low <= truth <= snips.high


def slate_rows(rng, n):
    """One offer per slate: A with probability 0.5, B and C 0.25 each."""
    offers = rng.choice(["A", "B", "C"], size=n, p=[0.5, 0.25, 0.25])
    accepted = rng.random(n) < np.vectorize(ACCEPT.get)(offers)
    return [
        {
            "slate": [offer],
            "inclusion": {"A": 0.5, "B": 0.25, "C": 0.25},
            "accepted": bool(yes),
            "accepted_offer": str(offer) if yes else None,
        }
        for offer, yes in zip(offers, accepted, strict=True)
    ]


ACCEPT = {"A": 0.3, "B": 0.1, "C": 0.05}


def test_slate_estimates_cover_each_offers_acceptance_and_a_policys_in_90_percent_of_seeds():
    seeds, covered = 100, {}
    for seed in range(seeds):
        rows = slate_rows(np.random.default_rng(seed), 2000)
        episodes = slates.Episodes.of(rows)
        found = {e.offer: e for e in slates.offer_acceptance(episodes)}
        always_a = np.tile([1.0, 0.0, 0.0], (len(rows), 1))  # a policy that always shows A
        checks = {"policy always A": (slates.slate_value(episodes, always_a), ACCEPT["A"])}
        for offer, rate in ACCEPT.items():
            checks[f"{offer} ips"] = (found[offer].ips, rate)
            checks[f"{offer} snips"] = (found[offer].snips, rate)
        for name, (estimate, truth) in checks.items():
            covered[name] = covered.get(name, 0) + (estimate.low <= truth <= estimate.high)
        if seed == 0:  # the logged policy's own value is the plain acceptance rate
            logged = slates.slate_value(episodes, episodes.inclusion)
            assert logged.value == pytest.approx(np.mean([row["accepted"] for row in rows]))
    assert all(count / seeds >= 0.9 for count in covered.values()), covered
