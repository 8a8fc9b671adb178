"""The CPA policies' contract, pure: seeded generators, no emulator."""

import math
from dataclasses import replace

import numpy as np
import pytest

from shared.cpa import policies
from shared.cpa.policies import (
    DEFAULT_SAMPLER,
    SAMPLERS,
    OfferStats,
    SamplerParams,
    Stats,
    choose,
    choose_batch,
    fitted_beta_prior,
    klucb_rate,
    log_payout_posterior,
    payout_posterior,
)

PARAMS = SamplerParams()
EXACT = SamplerParams(floor=0.0)  # no exploration floor: the base policies' own choices
PLAIN = SamplerParams(retry_level=None)  # Thompson without re-tries: its posterior's own draws


def offer(clicks, conversions, payout=100.0):
    """Counters of an offer with a fixed payout, log sums included."""
    log = np.log(payout)
    return OfferStats(
        clicks,
        conversions,
        conversions * payout,
        conversions * payout * payout,
        conversions,
        conversions * log,
        conversions * log * log,
    )


def legacy_offer(clicks, conversions, payout=100.0):
    """The same counters as stored before the log sums existed."""
    return OfferStats(clicks, conversions, conversions * payout, conversions * payout * payout)


def offer_of(clicks, payouts, log_sums=True):
    """Counters of an offer whose conversions paid `payouts`."""
    payouts = np.asarray(payouts, dtype=float)
    logs = np.log(payouts) if log_sums else np.zeros(0)
    return OfferStats(clicks, len(payouts), payouts.sum(), (payouts**2).sum(), len(logs), logs.sum(), (logs**2).sum())


def mean_payout_draws(stats, n=20_000, seed=0):
    """Draws of each offer's mean payout from thompson's payout posterior (payout_normal)."""
    m, s = policies.payout_normal(Stats.of(stats), PARAMS)
    return np.exp(m + s * np.random.default_rng(seed).standard_normal((n, len(stats))))


def picks(sampler, stats, total_clicks=10_000, params=PARAMS, n=4000, seed=1):
    rng = np.random.default_rng(seed)
    return np.array([choose(sampler, stats, total_clicks, params, rng).index for _ in range(n)])


def test_every_sampler_of_the_contract_is_there_and_default_is_one_of_them():
    assert {"random", "greedy", "epsilon", "ucb", "thompson"} <= set(SAMPLERS)
    assert DEFAULT_SAMPLER in SAMPLERS


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_no_candidate_is_an_error(sampler):
    with pytest.raises(ValueError):
        choose(sampler, [], 0, PARAMS, np.random.default_rng(0))


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_choice_is_a_candidate_with_a_probability(sampler):
    stats = [offer(50, 2), offer(0, 0), offer(80, 5, 300.0)]
    rng = np.random.default_rng(3)
    for total in (0, 50, 500):
        choice = choose(sampler, stats, total, PARAMS, rng)
        assert 0 <= choice.index < 3
        assert 0.0 < choice.probability <= 1.0


# --- greedy: warm-up, then the best revenue per click, ties to the first ---------------------------


def test_greedy_is_uniformly_random_during_the_first_100_clicks():
    stats = [offer(40, 1), offer(40, 8), offer(40, 2), offer(40, 0)]  # offer 1 is clearly best
    chosen = picks("greedy", stats, total_clicks=99)
    shares = np.bincount(chosen, minlength=4) / len(chosen)
    assert np.all(np.abs(shares - 0.25) < 0.03)
    assert choose("greedy", stats, 99, PARAMS, np.random.default_rng(0)).probability == pytest.approx(0.25)


def test_greedy_exploits_from_the_100th_click_on():
    stats = [offer(40, 1), offer(40, 8), offer(40, 2), offer(40, 0)]
    assert set(picks("greedy", stats, total_clicks=100, params=EXACT, n=200)) == {1}
    assert choose("greedy", stats, 100, EXACT, np.random.default_rng(0)).probability == 1.0


def test_greedy_warmup_length_is_a_parameter():
    stats = [offer(40, 1), offer(40, 8)]
    assert set(picks("greedy", stats, total_clicks=150, params=SamplerParams(warmup_clicks=200))) == {0, 1}


def test_greedy_ranks_by_revenue_per_click_not_conversion_rate():
    stats = [offer(100, 10, 100.0), offer(100, 2, 1000.0)]  # 10 c vs 20 c a click
    assert choose("greedy", stats, 1000, PARAMS, np.random.default_rng(0)).index == 1


def test_greedy_without_statistics_takes_the_first_candidate():
    assert choose("greedy", [OfferStats()] * 5, 1000, PARAMS, np.random.default_rng(0)).index == 0


def test_greedy_ties_go_to_the_first_of_them():
    stats = [offer(10, 1), offer(10, 3), offer(20, 2), offer(10, 3)]
    assert choose("greedy", stats, 1000, PARAMS, np.random.default_rng(0)).index == 1


# --- epsilon-greedy ------------------------------------------------------------------------------


def test_epsilon_explores_at_rate_epsilon_and_reports_its_probability():
    stats = [offer(100, 1), offer(100, 9), offer(100, 3), offer(100, 2)]
    params = SamplerParams(epsilon=0.2, floor=0.0)
    chosen = picks("epsilon", stats, params=params, n=20_000)
    # best taken with probability 1 - eps + eps / k, each other with eps / k
    assert np.mean(chosen == 1) == pytest.approx(0.8 + 0.05, abs=0.01)
    assert np.mean(chosen == 0) == pytest.approx(0.05, abs=0.006)
    rng = np.random.default_rng(5)
    for _ in range(200):
        choice = choose("epsilon", stats, 1000, params, rng)
        assert choice.probability == pytest.approx(0.85 if choice.index == 1 else 0.05)


def test_epsilon_default_is_one_tenth():
    stats = [offer(100, 9), offer(100, 1)]
    assert np.mean(picks("epsilon", stats, n=20_000) == 1) == pytest.approx(0.05, abs=0.006)


def test_epsilon_zero_is_greedy_and_decay_shrinks_exploration():
    stats = [offer(1000, 90), offer(1000, 10), offer(1000, 10), offer(1000, 10)]
    assert set(picks("epsilon", stats, params=SamplerParams(epsilon=0.0, floor=0.0), n=500)) == {0}
    decayed = SamplerParams(epsilon=0.4, epsilon_decay=0.001)  # 0.4 / (1 + 4) = 0.08
    explored = np.mean(picks("epsilon", stats, params=decayed, n=20_000) != 0)
    assert explored == pytest.approx(0.08 * 3 / 4, abs=0.01)


# --- UCB -----------------------------------------------------------------------------------------


def test_ucb_tries_unseen_candidates_first_in_the_order_given():
    stats = [offer(500, 50), offer(0, 0), offer(30, 1), offer(0, 0)]
    assert choose("ucb", stats, 1000, EXACT, np.random.default_rng(0)) == policies.Choice(1, 1.0)
    stats[1] = offer(1, 0)
    assert choose("ucb", stats, 1000, PARAMS, np.random.default_rng(0)).index == 3


def test_ucb_bonus_favours_the_less_tried_and_its_weight_is_ucb_c():
    stats = [offer(5000, 500), offer(20, 1)]  # 10 c vs 5 c a click, but offer 1 barely tried
    assert choose("ucb", stats, 0, SamplerParams(ucb_c=1.0), np.random.default_rng(0)).index == 1
    assert choose("ucb", stats, 0, SamplerParams(ucb_c=0.0), np.random.default_rng(0)).index == 0


def test_ucb_ranks_by_revenue_per_click():
    stats = [offer(10_000, 1000, 100.0), offer(10_000, 200, 1000.0)]
    assert choose("ucb", stats, 0, PARAMS, np.random.default_rng(0)).index == 1


# --- KL-UCB --------------------------------------------------------------------------------------


def test_klucb_bound_solves_its_equation():
    clicks, conversions, level = np.array([200.0]), np.array([6.0]), np.array([np.log(10_000)])
    q = klucb_rate(conversions, clicks, level)[0]
    p = 6 / 200
    kl = p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))
    assert q > p
    assert 200 * kl == pytest.approx(np.log(10_000), rel=1e-4)


def test_klucb_bound_at_the_edges_of_the_rate():
    """No conversion: kl(0, q) = -ln(1 - q), so q = 1 - exp(-level / n); every click converted, or
    none seen: 1; no budget: the observed rate."""
    level = np.array([np.log(10_000)])
    clicks, conversions = np.array([200.0, 1.0, 200.0, 3.0, 0.0]), np.array([0.0, 0.0, 200.0, 3.0, 0.0])
    q = klucb_rate(conversions, clicks, level)
    assert q[0] == pytest.approx(1 - np.exp(-level[0] / 200), rel=1e-6)
    assert q[1] == pytest.approx(1 - np.exp(-level[0]), rel=1e-6)
    assert q[2:].tolist() == [1.0, 1.0, 1.0]
    assert klucb_rate(np.array([6.0, 0.0]), np.array([200.0, 50.0]), np.array([0.0])).tolist() == [0.03, 0.0]


def test_klucb_bound_solves_its_equation_on_a_grid_of_counts():
    rng = np.random.default_rng(3)
    clicks = rng.integers(1, 100_000, size=(200, 50)).astype(float)
    rates = rng.choice([0.0, 1e-4, 0.003, 0.03, 0.3, 0.9, 0.999], size=clicks.shape)
    conversions = rng.binomial(clicks.astype(int), rates).astype(float)
    level = rng.uniform(0.5, 15.0, size=(200, 1))
    q = klucb_rate(conversions, clicks, level)
    p = conversions / clicks
    inside = q < 1.0 - 1e-6  # nearer 1, this check's own 1 - q loses the digits
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(p > 0, p * np.log(p / q), 0.0) + (1 - p) * np.log((1 - p) / (1 - q))
    assert (q >= p).all() and inside.mean() > 0.9
    assert np.allclose((clicks * kl)[inside], np.broadcast_to(level, q.shape)[inside], rtol=1e-9)


def test_klucb_tries_unseen_first_and_ranks_by_revenue_per_click():
    assert choose("klucb", [offer(500, 50), offer(0, 0)], 0, PARAMS, np.random.default_rng(0)).index == 1
    stats = [offer(20_000, 2000, 100.0), offer(20_000, 400, 1000.0)]  # 10 c vs 20 c a click
    assert choose("klucb", stats, 0, PARAMS, np.random.default_rng(0)).index == 1


def test_klucb_credits_an_offer_without_conversion_with_the_best_payout_seen():
    # offer 1: 300 clicks, no conversion yet; its rate bound times 1,000 (the best payout seen)
    # beats offer 0's 0.5 c a click, whereas times its own unknown (0) payout it never would.
    stats = [offer(3000, 15, 100.0), offer(300, 0), offer(3000, 1, 1000.0)]
    assert choose("klucb", stats, 0, PARAMS, np.random.default_rng(0)).index == 1


# --- Thompson ------------------------------------------------------------------------------------


def test_thompson_prefers_revenue_per_click_over_conversion_rate():
    stats = [offer(2000, 200, 100.0), offer(2000, 40, 1000.0)]  # 10 % x 1 $ vs 2 % x 10 $
    assert np.mean(picks("thompson", stats, n=1000) == 1) > 0.99


def test_thompson_with_a_given_prior_draws_from_that_beta():
    # Equal payouts, so the draw is the Beta(a + conv, b + clicks - conv) on the rate; with a huge
    # prior (a=b=1e6) both offers look like 50 % and split the clicks whatever their data says.
    # (Without the optimistic payout: it would lift the offer whose payout rests on 1 conversion.)
    stats = [offer(100, 1), offer(100, 20)]
    strong = SamplerParams(thompson_a=1e6, thompson_b=1e6, optimistic_payout=False)
    assert np.mean(picks("thompson", stats, params=strong, n=4000) == 1) == pytest.approx(0.5, abs=0.05)
    assert np.mean(picks("thompson", stats, params=SamplerParams(thompson_a=1.0, thompson_b=1.0)) == 1) > 0.99


def test_thompson_probability_estimates_how_often_the_choice_wins():
    stats = [offer(60, 3), offer(60, 4)]  # close: each wins a fair share
    chosen = picks("thompson", stats, params=PLAIN, n=4000)
    share = np.mean(chosen == 1)
    rng = np.random.default_rng(8)
    reported = [choose("thompson", stats, 0, PLAIN, rng) for _ in range(400)]
    mean_reported_for_1 = np.mean([c.probability for c in reported if c.index == 1])
    assert 0.2 < share < 0.8
    assert mean_reported_for_1 == pytest.approx(share, abs=0.08)


def test_thompson_explores_an_offer_that_has_not_converted_yet():
    # After 80 clicks without a conversion, a 0.5 %-rate offer must still get tried sometimes.
    stats = [offer(5000, 150, 100.0), offer(80, 0), offer(5000, 100, 120.0)]
    share = np.mean(picks("thompson", stats, params=PLAIN, n=4000) == 1)
    assert 0.01 < share < 0.5


def test_retries_re_try_a_written_off_offer_more_often_as_clicks_grow():
    # An offer written off after 2,000 clicks at 0.5 % against a 1.3 % leader: plain Thompson's chance
    # of trying it again does not grow with the leader's clicks; with retries it does (klucb's ln t).
    retries = SamplerParams(floor=0.0, retry_level=0.5)
    shares = {}
    for leader_clicks in (10_000, 10_000_000):
        stats = Stats.of([offer(leader_clicks, leader_clicks * 13 // 1000), offer(2000, 10)])
        shares[leader_clicks] = policies.thompson_propensities(stats, retries)[0, 1]
    assert shares[10_000] < 0.01 < shares[10_000_000]
    plain = Stats.of([offer(10_000_000, 130_000), offer(2000, 10)])
    assert policies.thompson_propensities(plain, SamplerParams(floor=0.0, retry_level=None))[0, 1] < 0.01


def test_a_retry_floor_is_never_undercut_and_leaves_offers_without_clicks_to_the_prior():
    stats = Stats.of([offer(5000, 100), offer(40, 0), OfferStats()])
    params = SamplerParams(floor=0.0, retry_level=0.5)
    m = policies.thompson_posterior(stats, params)[2]
    floors = policies.retry_floors(stats, params, m)
    assert np.isfinite(floors[0, :2]).all() and floors[0, 2] == -np.inf
    draws = policies.thompson_draws(stats, params, np.random.default_rng(0), 10_000)[:, 0, :]
    assert (draws[:, :2] >= floors[0, :2]).all()
    assert policies.retry_floors(stats, PLAIN, m) is None


def test_a_single_requests_remembered_floors_are_its_own():
    # one request's floors are remembered by its counters (as its probabilities are); a request whose
    # conversions differ gets its own, and both log what the batch computation gives
    params = SamplerParams(floor=0.0)
    one = Stats.of([offer(5000, 100), offer(2000, 30), offer(40, 0)])
    other = Stats.of([offer(5000, 100), offer(2000, 100), offer(40, 0)])
    for stats in (one, other, one):
        logged = choose_batch("thompson", stats, np.array([7040]), params, np.random.default_rng(0)).probability[0]
        chosen = choose_batch("thompson", stats, np.array([7040]), params, np.random.default_rng(0)).index[0]
        assert logged == pytest.approx(policies.thompson_propensities(stats, params)[0, chosen], abs=1e-12)
    first, second = (policies.thompson_propensities(s, params)[0] for s in (one, other))
    assert not np.allclose(first, second)


@pytest.mark.statistical
def test_retry_propensities_match_draws_on_random_candidate_sets():
    # 40 random sets of 2 to 5 candidates (clicks 1 to 60,000, rates 0.1 % to 20 %, some without a
    # conversion, some unseen): among them floors above every draw of their own (an atom alone: its
    # candidate wins whenever the others draw below it; a first version left it out, logging 0 for 1).
    rng = np.random.default_rng(0)
    params = SamplerParams(floor=0.0, retry_level=0.5)
    errors = []
    for _ in range(40):
        offers = []
        for _ in range(int(rng.integers(2, 6))):
            clicks = int(np.exp(rng.uniform(0, 11)))
            rate = np.exp(rng.uniform(np.log(1e-3), np.log(0.2)))
            conversions = int(rng.binomial(clicks, rate)) if rng.random() < 0.9 else 0
            seen = rng.random() < 0.9
            offers.append(
                offer(clicks, conversions, float(rng.choice([100.0, 500.0, 1000.0]))) if seen else OfferStats()
            )
        stats = Stats.of(offers)
        exact = policies.thompson_propensities(stats, params)[0]
        draws = policies.thompson_draws(stats, params, np.random.default_rng(1), 200_000)[:, 0, :]
        errors.append(np.abs(exact - np.bincount(np.argmax(draws, axis=1), minlength=len(offers)) / 200_000).max())
    assert max(errors) < 0.005  # 200,000 draws: a standard error of at most 0.0011


def test_offers_with_equal_statistics_tie_at_their_floor_and_the_first_wins_as_logged():
    stats = Stats.of([offer(100_000, 2000), offer(50, 0), offer(50, 0)])
    params = SamplerParams(floor=0.0, retry_level=0.5)
    logged = policies.thompson_propensities(stats, params)[0]
    draws = policies.thompson_draws(stats, params, np.random.default_rng(1), 100_000)[:, 0, :]
    share = np.bincount(np.argmax(draws, axis=1), minlength=3) / 100_000
    assert logged[1] > 0.9 and logged[2] < 0.05  # the second wins only by a draw above both floors
    assert np.abs(logged - share).max() < 0.01


# --- the fitted prior and the payout posterior ---------------------------------------------------


def test_fitted_prior_is_flat_until_a_conversion_then_centred_on_the_pooled_rate():
    a, b = fitted_beta_prior(np.array([10.0, 20.0]), np.array([0.0, 0.0]))
    assert (a.item(), b.item()) == (1.0, 1.0)
    clicks = np.full(50, 1000.0)
    conversions = np.random.default_rng(0).binomial(1000, 0.04, size=50).astype(float)
    a, b = fitted_beta_prior(clicks, conversions)
    mean = conversions.sum() / clicks.sum()
    assert a.item() / (a.item() + b.item()) == pytest.approx(mean)
    assert 2.0 <= a.item() + b.item() <= 1.0 / mean + 1e-9


def test_fitted_prior_matches_the_spread_of_rates_across_offers():
    clicks = np.full(10, 1000.0)
    alike = np.full(10, 40.0)  # every offer converts at 4 %: as strong as allowed (1 / mean)
    apart = np.array([5.0, 80, 10, 60, 20, 40, 5, 70, 15, 30])  # 0.5 % to 8 %: method of moments
    polar = np.array([1.0, 900, 1, 900, 1, 900, 1, 900, 1, 900])  # 0.1 % or 90 %: floor of 2
    strength = {
        name: sum(x.item() for x in fitted_beta_prior(clicks, conv))
        for name, conv in (("alike", alike), ("apart", apart), ("polar", polar))
    }
    rates = apart / 1000
    mean = rates.mean()
    assert strength["alike"] == pytest.approx(1 / 0.04)
    assert strength["apart"] == pytest.approx(min(mean * (1 - mean) / rates.var() - 1, 1 / mean))
    assert np.sqrt(mean * (1 - mean) / (strength["apart"] + 1)) == pytest.approx(rates.std(), rel=0.3)
    assert strength["polar"] == pytest.approx(2.0)


def test_fixed_payouts_pin_the_payout_posterior_and_spread_payouts_widen_it():
    fixed = Stats.of([offer(100, 5, 400.0), offer(100, 2, 8000.0)])
    shape, scale = payout_posterior(fixed)
    assert (shape * scale)[0] == pytest.approx([400.0, 8000.0], rel=0.05)
    cv_fixed = 1 / np.sqrt(shape[0])  # a Gamma's coefficient of variation
    # same means, but payouts vary within each offer (second moment 3x the squared mean)
    spread = Stats.of([OfferStats(100, 5, 2000.0, 3 * 400.0**2 * 5), OfferStats(100, 2, 16_000.0, 3 * 8000.0**2 * 2)])
    shape_s, scale_s = payout_posterior(spread)
    assert np.all(1 / np.sqrt(shape_s[0]) > 3 * cv_fixed)


def test_offer_without_conversion_has_a_payout_prior_centred_on_the_best_mean_payout():
    stats = Stats.of([offer(100, 5, 400.0), offer(100, 2, 2000.0), offer(100, 0)])
    shape, scale = payout_posterior(stats)
    assert shape[0, 2] == 1.0
    assert (shape * scale)[0, 2] == pytest.approx(2000.0)


# --- one core for the service and the benchmark --------------------------------------------------


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_choose_is_the_batched_core_on_one_row(sampler):
    stats = [offer(50, 2), offer(10, 0), offer(80, 5, 300.0), offer(0, 0)]
    single = [choose(sampler, stats, 500, PARAMS, np.random.default_rng(s)) for s in range(20)]
    batched = [
        choose_batch(sampler, Stats.of(stats), np.array([500]), PARAMS, np.random.default_rng(s)) for s in range(20)
    ]
    assert [c.index for c in single] == [int(d.index[0]) for d in batched]
    assert [c.probability for c in single] == pytest.approx([float(d.probability[0]) for d in batched])


def test_batched_rows_are_independent_requests():
    rows = Stats(*(np.array([[100.0, 100.0], [100.0, 100.0]]) * f for f in (1, 0, 0, 0)))
    rows.conversions[:] = [[1, 9], [9, 1]]
    rows.reward[:] = rows.conversions * 100
    rows.reward_sq[:] = rows.conversions * 100 * 100
    decided = choose_batch("greedy", rows, np.array([1000, 1000]), PARAMS, np.random.default_rng(0))
    assert decided.index.tolist() == [1, 0]


# --- the lognormal payout posterior (log sums) ---------------------------------------------------


def test_fixed_payouts_pin_the_lognormal_posterior_on_each_offers_payout():
    stats = [offer(1000, 40, 200.0), offer(1000, 5, 560.0), offer(1000, 1, 8000.0), offer(1000, 20, 1000.0)]
    draws = mean_payout_draws(stats)
    assert np.median(draws, axis=0) == pytest.approx([200.0, 560.0, 8000.0, 1000.0], rel=0.01)
    # even the offer with one conversion: its payout known to within a few per cent
    assert np.percentile(draws[:, 2], 1) > 0.95 * 8000 and np.percentile(draws[:, 2], 99) < 1.05 * 8000


def test_heavy_tailed_offer_with_few_conversions_keeps_a_wide_posterior_borrowing_the_pooled_spread():
    rng = np.random.default_rng(4)
    sigma = 1.5
    # two offers with many lognormal conversions tell the spread of ln payouts (sigma^2 = 2.25) ...
    big = [offer_of(20_000, 800 * np.exp(sigma * rng.standard_normal(400) - sigma**2 / 2)) for _ in range(2)]
    # ... the third has converted 4 times, each time below its mean of 8,000 (as lognormal draws do)
    few = offer_of(2000, [900.0, 1500.0, 2500.0, 4000.0])
    n, mean, alpha, beta, _ = log_payout_posterior(Stats.of([*big, few]))
    assert (beta / (alpha - 1))[0, 2] == pytest.approx(sigma**2, rel=0.25)  # the pooled spread, not its own
    draws = mean_payout_draws([*big, few])[:, 2]
    # the plug-in mean is 2,225; the posterior keeps a real chance that the mean is 8,000 or more
    assert np.mean(draws > 8000) > 0.1
    assert np.percentile(draws, 90) / np.percentile(draws, 10) > 5
    # the Gamma posterior on reward / reward_sq alone is sure it is below 8,000
    shape, scale = payout_posterior(Stats.of([*big, few]))
    gamma = np.random.default_rng(0).gamma(shape[0, 2], scale[0, 2], size=20_000)
    assert np.mean(gamma > 8000) < 0.01


def test_offer_without_conversion_gets_a_payout_prior_centred_on_the_best_mean_payout():
    stats = [offer(100, 5, 400.0), offer(100, 2, 2000.0), offer(100, 0)]
    m, _ = policies.payout_normal(Stats.of(stats), PARAMS)
    assert m[0, 2] == pytest.approx(np.log(2000.0) - 0.5)  # a median of best / sqrt(e)
    # as the previous rule had it (variance LOG_MU_PRIOR_VAR): the prior's mean is the best mean payout
    before = replace(PARAMS, unseen_payout_spread=None)
    m, s = policies.payout_normal(Stats.of(stats), before)
    draws = np.exp(m + s * np.random.default_rng(0).standard_normal((200_000, 3)))
    assert draws[:, 2].mean() == pytest.approx(2000.0, rel=0.05)
    wide = mean_payout_draws(stats, n=200_000)
    assert np.percentile(wide[:, 2], 90) / np.percentile(wide[:, 2], 10) > 5  # and it is wide


def test_an_unconverted_offers_payout_is_as_uncertain_as_the_offers_payouts_differ():
    unseen = offer(100, 0)
    alike = Stats.of([offer(100, 5, 100.0), offer(100, 3, 100.0), unseen])
    spread = Stats.of([offer(100, 5, 200.0), offer(100, 2, 8000.0), unseen])
    priced = replace(PARAMS, unseen_payout_spread=policies.UNSEEN_PAYOUT_SPREAD)  # off by default
    _, s_alike = policies.payout_normal(alike, priced)
    _, s_spread = policies.payout_normal(spread, priced)
    # offers that all pay 100: the unseen one's ln payout has the floor spread, 2 x sqrt(0.01)
    assert s_alike[0, 2] == pytest.approx(policies.UNSEEN_PAYOUT_SPREAD * np.sqrt(policies.LOG_SIGMA2_PRIOR))
    # 200 and 8,000: sd of the two ln payouts is ln(40) / sqrt(2), times the spread factor
    assert s_spread[0, 2] == pytest.approx(policies.UNSEEN_PAYOUT_SPREAD * np.log(40.0) / np.sqrt(2.0))
    # one converted offer: no spread measured yet, LOG_MU_PRIOR_VAR stands in for it
    one = Stats.of([offer(100, 5, 200.0), unseen])
    _, s_one = policies.payout_normal(one, priced)
    assert s_one[0, 1] == pytest.approx(policies.UNSEEN_PAYOUT_SPREAD * np.sqrt(policies.LOG_MU_PRIOR_VAR))
    # converted offers keep their own posterior; None (the default) keeps the fixed prior for unseen ones
    _, s_before = policies.payout_normal(spread, PARAMS)
    assert s_before[0, :2] == pytest.approx(s_spread[0, :2])
    assert s_before[0, 2] == pytest.approx(np.sqrt(policies.LOG_MU_PRIOR_VAR))


def test_counters_without_log_sums_fall_back_to_the_gamma_posterior():
    # An offer with conversions but no log sums: ln payout ~ Normal matched to payout_posterior's Gamma.
    legacy = [legacy_offer(100, 5, 400.0), legacy_offer(100, 2, 8000.0), legacy_offer(100, 0)]
    stats = Stats.of(legacy)
    assert not stats.log_conversions.any()
    shape, scale = payout_posterior(stats)
    m, s = policies.payout_normal(stats, PARAMS)
    assert m[0, :2] == pytest.approx(np.log(shape * scale)[0, :2] - 0.5 / shape[0, :2])
    assert s[0, :2] ** 2 == pytest.approx(1 / shape[0, :2] + 0.5 / shape[0, :2] ** 2)
    # an offer that lacks the log sums is ranked as before: 2 % x 8,000 beats 5 % x 400
    assert np.mean(picks("thompson", legacy, n=500) == 0) < 0.02


def test_stats_without_log_arrays_are_legacy_counters():
    four = Stats(*(np.array([[100.0, 100.0]]) * f for f in (1, 0.05, 20, 400)))
    drawn = policies.thompson_draws(four, PARAMS, np.random.default_rng(1), 10)
    assert np.all(np.isfinite(drawn)) and np.all(drawn > 0)


def test_harness_feeds_the_log_sums_the_store_adds_per_conversion():
    from bench.envs import ENVS
    from bench.harness import World, run_project_policy

    seen = {}

    def spy(stats, total_clicks, params, rng, propensity=True, mask=None):
        seen["stats"] = stats
        return policies.SAMPLERS["thompson"].core(stats, total_clicks, params, rng, propensity, mask)

    env = ENVS["E4"].__class__(**{**ENVS["E4"].__dict__, "horizon": 3000})
    policies.SAMPLERS["spy"] = policies.Sampler("spy", spy)
    try:
        run_project_policy(World(env, np.arange(2)), "spy", PARAMS)
    finally:
        del policies.SAMPLERS["spy"]
    stats = seen["stats"]
    assert stats.conversions.sum() > 0
    assert np.array_equal(stats.log_conversions, stats.conversions)
    # Jensen: the mean ln payout is below the ln of the mean payout, strictly for spread payouts
    converted = stats.conversions >= 2
    assert np.all(
        stats.log_reward[converted] / stats.conversions[converted]
        < np.log(stats.reward[converted] / stats.conversions[converted])
    )
    assert np.all(stats.log_reward_sq[converted] > 0)


# --- true propensities and the exploration floor -------------------------------------------------


def _propensity_cases():
    rng = np.random.default_rng(0)
    heavy = [offer_of(2000, 800 * np.exp(1.5 * rng.standard_normal(40) - 1.125)), offer_of(500, [900.0, 1500.0])]
    cpa = [
        offer(int(c), int(v), p)
        for c, v, p in zip(rng.integers(20, 3000, 10), rng.integers(0, 30, 10), rng.uniform(200, 8000, 10), strict=True)
    ]
    return {
        "K=2 no data": [OfferStats()] * 2,
        "K=3 no data": [OfferStats()] * 3,
        "K=10 no data": [OfferStats()] * 10,
        "K=2 some data": [offer(60, 3), offer(60, 4)],
        "K=3 some data": [offer(50, 2), offer(10, 0), offer(80, 5, 300.0)],
        "K=10 some data": cpa,
        "K=3 lopsided": [offer(5000, 150, 100.0), offer(80, 0), offer(5000, 100, 120.0)],
        "K=10 lopsided": [offer(100_000, 8000)] + [offer(100, 1)] * 9,
        "K=3 lognormal payouts": [*heavy, offer(3000, 60, 700.0)],
        "K=2 near tie, 10^6 clicks": [offer(10**6, 20_000), offer(10**6, 20_100)],
    }


# The Thompson variants whose propensities are checked: the default's options, and each alone.
PROPENSITY_VARIANTS = {
    "default": SamplerParams(floor=0.0),  # re-tries at 0.5 ln t
    "plain": SamplerParams(
        floor=0.0,
        optimistic=False,
        samples=1,
        optimistic_payout=False,
        optimistic_payout_multiple=None,
        retry_level=None,
    ),
    "optimistic payout only": SamplerParams(floor=0.0, optimistic_payout=True, retry_level=None),
    "optimistic": SamplerParams(floor=0.0, optimistic=True, samples=1, retry_level=None),
    "samples=2": SamplerParams(floor=0.0, optimistic=False, samples=2, retry_level=None),
    "optimistic, samples=3": SamplerParams(floor=0.0, optimistic=True, samples=3, retry_level=None),
    "retries, samples=2": SamplerParams(floor=0.0, retry_level=0.5, samples=2),
}


INNER_LOOP_CASE = "K=3 some data"  # every variant on it in make test-unit; the whole grid in make test


@pytest.mark.parametrize("variant", sorted(PROPENSITY_VARIANTS))
@pytest.mark.parametrize(
    "case",
    [
        pytest.param(case, marks=() if case == INNER_LOOP_CASE else pytest.mark.statistical)
        for case in sorted(_propensity_cases())
    ],
)
def test_thompson_propensities_match_a_million_draws_of_the_policy(case, variant):
    stats = Stats.of(_propensity_cases()[case])
    params = PROPENSITY_VARIANTS[variant]
    exact = policies.thompson_propensities(stats, params)[0]
    draws = policies.thompson_draws(stats, params, np.random.default_rng(1), 1_000_000)[:, 0, :]
    reference = np.bincount(np.argmax(draws, axis=1), minlength=stats.clicks.shape[1]) / 1e6
    assert exact.sum() == pytest.approx(1.0)
    assert np.abs(exact - reference).max() < 0.01


@pytest.mark.statistical
def test_thompson_propensities_at_k_100_match_draws_of_the_policy_within_0_004():
    # The candidates of bench.decision_cost (CPA rates and fixed payouts, 50 to 5,000 clicks each):
    # the log-Beta tables' resolution bounds the error here; at one point every 0.25 sd it was 0.0076.
    from bench.decision_cost import candidates

    stats = Stats.of(candidates(100, np.random.default_rng(0)))
    params = SamplerParams(floor=0.0)
    exact = policies.thompson_propensities(stats, params)[0]
    rng, wins, draws = np.random.default_rng(1), np.zeros(100), 400_000  # standard error <= 0.0008
    for _ in range(draws // 100_000):
        chunk = policies.thompson_draws(stats, params, rng, 100_000)[:, 0, :]
        wins += np.bincount(np.argmax(chunk, axis=1), minlength=100)
    assert np.abs(exact - wins / draws).max() < 0.004


def test_a_log_beta_keeps_under_1e_9_of_its_mass_above_its_top():
    """top_sds decides which candidates' tables are left out: above mode + top_sds(a) sd, ln X of a
    Beta(a, b) must have less than the 1e-9 the integral neglects per candidate (by the trapezoid
    rule on 200,001 points from far down its left tail to 0)."""
    from shared.cpa.policies.thompson_integral import _laplace, top_sds

    worst = 0.0
    for a in np.geomspace(0.01, 1e5, 16):
        for b in np.geomspace(1.01, 1e8, 9):
            mode, sd = (float(v[0]) for v in _laplace(np.array([a]), np.array([b])))
            top = mode + float(top_sds(np.array([a]))[0]) * sd
            if top >= -1e-12:
                continue
            u = np.linspace(max(mode - 60 * sd - 80 / a, -2000.0), -1e-13, 200_001)
            log_density = a * u + (b - 1) * np.log(-np.expm1(u))
            density = np.exp(log_density - log_density.max()) * np.gradient(u)
            worst = max(worst, density[u > top].sum() / density.sum())
    assert 5e-10 < worst < 1e-9  # and not a bound so loose that it leaves every table in


@pytest.mark.parametrize("case", ["K=3 some data", "K=10 lopsided", "K=2 near tie, 10^6 clicks"])
def test_logged_probability_is_how_often_the_service_makes_that_choice_floor_included(case):
    # 200,000 independent requests in one batch (no propensity work) against choose()'s logged value
    stats = _propensity_cases()[case]
    params = SamplerParams(floor=0.05)
    k = len(stats)
    rows = Stats(*(np.repeat(x, 200_000, axis=0) for x in Stats.of(stats)))
    chosen = choose_batch("thompson", rows, np.zeros(200_000), params, np.random.default_rng(2), propensity=False)
    share = np.bincount(chosen.index, minlength=k) / 200_000
    rng = np.random.default_rng(3)
    logged = {}
    for _ in range(60):
        choice = choose("thompson", stats, 0, params, rng)
        logged.setdefault(choice.index, choice.probability)
        assert choice.probability == pytest.approx(logged[choice.index])  # a function of the data only
    for index, probability in logged.items():
        assert probability == pytest.approx(share[index], abs=0.01)
        assert probability >= 0.05 / k


@pytest.mark.parametrize(
    "sampler",
    ["ucb", "greedy", "epsilon", *(pytest.param(s, marks=pytest.mark.statistical) for s in ("klucb", "thompson"))],
)
def test_with_the_floor_every_candidate_keeps_floor_over_k_and_deterministic_samplers_log_their_truth(sampler):
    stats = [offer(5000, 500), offer(5000, 10), offer(5000, 20, 150.0), offer(4000, 5)]  # 0 is far ahead
    floor = 0.2
    params = SamplerParams(floor=floor, epsilon=0.0)
    chosen = picks(sampler, stats, total_clicks=10_000, params=params, n=20_000)
    shares = np.bincount(chosen, minlength=4) / len(chosen)
    assert shares[1:] == pytest.approx([floor / 4] * 3, abs=0.01)
    rng = np.random.default_rng(9)
    for _ in range(100):
        choice = choose(sampler, stats, 10_000, params, rng)
        expected = 1 - floor + floor / 4 if choice.index == 0 else floor / 4
        assert choice.probability == pytest.approx(expected, abs=1e-6)


def test_the_default_floor_is_on_and_never_logs_zero():
    assert SamplerParams().floor == policies.DEFAULT_FLOOR > 0
    stats = [offer(100_000, 8000)] + [offer(100, 0)] * 9  # the other nine: Thompson alone gives ~1e-9
    for sampler in ("thompson", "klucb", "ucb", "greedy"):
        probabilities = [choose(sampler, stats, 10_000, PARAMS, np.random.default_rng(s)).probability for s in range(5)]
        assert min(probabilities) >= policies.DEFAULT_FLOOR / 10
    exact = policies.thompson_propensities(Stats.of(stats), PARAMS)[0]
    assert np.all(PARAMS.floor / 10 + (1 - PARAMS.floor) * exact[1:] > 0)


def test_discounted_statistics_weigh_each_bucket_by_its_age_in_half_lives():
    old, new = offer(1000, 50, 200.0), offer(400, 4, 8000.0)
    merged = policies.discounted([old, new], ages=[20.0, 0.0], half_life=10.0)
    assert merged.clicks == pytest.approx(1000 / 4 + 400)
    assert merged.conversions == pytest.approx(50 / 4 + 4)
    assert merged.reward == pytest.approx(50 * 200 / 4 + 4 * 8000)
    assert merged.log_reward_sq == pytest.approx(old.log_reward_sq / 4 + new.log_reward_sq)
    assert policies.discounted([], [], 10.0) == OfferStats()
    # offer 0 converted well long ago and not at all lately; offer 1 converts now (3 c a click)
    history = [[offer(20_000, 1000, 200.0), offer(2000, 0, 200.0)], [offer(0, 0), offer(2000, 30, 200.0)]]
    cumulative = [policies.discounted(buckets, [50.0, 0.0], half_life=1e12) for buckets in history]
    forgetting = [policies.discounted(buckets, [50.0, 0.0], half_life=5.0) for buckets in history]
    for sampler in ("thompson", "klucb", "greedy"):
        assert np.mean(picks(sampler, cumulative, params=EXACT, n=100) == 0) > 0.9
        assert np.mean(picks(sampler, forgetting, params=EXACT, n=100) == 1) > 0.9


# --- known payouts -------------------------------------------------------------------------------


@pytest.mark.parametrize("sampler", ["thompson", "klucb", "greedy", "epsilon", "ucb"])
def test_known_payouts_replace_the_learned_ones(sampler):
    # learned: both pay 100, offer 0 converts twice as often; contractually offer 1 pays 1,000
    stats = [offer(5000, 100, 100.0), offer(5000, 50, 100.0)]
    known = SamplerParams(floor=0.0, epsilon=0.0, ucb_c=0.0, payouts=(100.0, 1000.0))
    assert np.mean(picks(sampler, stats, params=SamplerParams(floor=0.0, epsilon=0.0, ucb_c=0.0), n=200) == 0) > 0.9
    assert np.mean(picks(sampler, stats, params=known, n=200) == 1) > 0.9


def test_unknown_payouts_are_nan_and_a_known_payout_is_exact_in_the_posterior():
    stats = Stats.of([offer(5000, 100, 100.0), offer(5000, 50, 100.0), offer(0, 0)])
    m, s = policies.payout_normal(stats, SamplerParams(payouts=(float("nan"), 1000.0, 50.0)))
    assert m[0, 1:] == pytest.approx(np.log([1000.0, 50.0]))
    assert s[0, 1:] == pytest.approx([0.0, 0.0])
    learned_m, learned_s = policies.payout_normal(stats, PARAMS)
    assert m[0, 0] == pytest.approx(learned_m[0, 0]) and s[0, 0] == pytest.approx(learned_s[0, 0])
    # known payouts before any conversion: the payout decides, not only the rate
    fresh = [offer(100, 0), offer(100, 0)]
    chosen = picks("thompson", fresh, params=SamplerParams(payouts=(10.0, 10_000.0)), n=300)
    assert np.mean(chosen == 1) > 0.9


@pytest.mark.parametrize("prior", [(1e-3, 1e-3), (1e-3, 1e6), (1e6, 1e-3), (1e-2, 1.0), (1e6, 1e6)])
@pytest.mark.parametrize("k", [1, 2, 10])
def test_thompson_logs_a_probability_at_the_edges_of_the_allowed_prior(prior, k):
    """The API accepts thompson_a / thompson_b in [1e-3, 1e6] (shared/cpa/models.py); at the extremes
    every candidate's distribution can collapse onto one point, and the propensity must still be one."""
    seen = policies.OfferStats(
        clicks=100,
        conversions=3,
        reward=600,
        reward_sq=120_000,
        log_conversions=3,
        log_reward=3 * math.log(200),
        log_reward_sq=3 * math.log(200) ** 2,
    )
    for stats in ([policies.OfferStats()] * k, [seen] + [policies.OfferStats(clicks=50)] * (k - 1)):
        params = policies.SamplerParams(thompson_a=prior[0], thompson_b=prior[1])
        choice = policies.choose("thompson", stats, 0, params, np.random.default_rng(3))
        assert 0 < choice.probability <= 1


def test_optimistic_payout_reflects_the_payout_draw_and_leaves_known_payouts_alone():
    # Same random stream: |node| >= node, so every draw is at least the plain one, strictly higher
    # for some draws of an offer whose payout is uncertain (no conversion yet), equal where known.
    stats = Stats.of([offer(400, 12, 300.0), offer(150, 0), offer(300, 6, 900.0)])
    plain = SamplerParams(optimistic_payout=False, retry_level=None)
    lifted = SamplerParams(optimistic_payout=True, retry_level=None)
    low = policies.thompson_draws(stats, plain, np.random.default_rng(4), 5000)
    high = policies.thompson_draws(stats, lifted, np.random.default_rng(4), 5000)
    assert np.all(high >= low - 1e-12)
    assert np.mean(high[..., 1] > low[..., 1] + 0.1) > 0.2
    known = SamplerParams(payouts=(300.0, 500.0, 900.0), retry_level=None)
    plain_known = replace(known, optimistic_payout=False)
    assert np.array_equal(
        policies.thompson_draws(stats, known, np.random.default_rng(5), 100),
        policies.thompson_draws(stats, plain_known, np.random.default_rng(5), 100),
    )


def test_optimism_above_a_payout_multiple_reflects_only_the_high_payout_offers_draws():
    # offer 2 pays 8,000 c against a median of 400 c (20x); offers 0 and 1 pay within 4x of it
    stats = Stats.of([offer(4000, 160, 400.0), offer(3000, 60, 800.0), offer(900, 1, 8000.0)])
    high = SamplerParams(optimistic_payout_multiple=policies.OPTIMISTIC_PAYOUT_MULTIPLE, retry_level=None)  # 4x
    default = PLAIN
    plain = policies.thompson_draws(stats, default, np.random.default_rng(6), 20_000)
    lifted = policies.thompson_draws(stats, high, np.random.default_rng(6), 20_000)
    assert np.array_equal(lifted[..., :2], plain[..., :2])
    a, b, m, _ = policies.thompson_posterior(stats, high)
    mean = np.log(a / (a + b)) + m
    assert np.all(lifted[..., 2] >= mean[0, 2] - 1e-12) and np.mean(plain[..., 2] < mean[0, 2]) > 0.3
    exact = policies.thompson_propensities(stats, high)[0]
    assert exact[2] > policies.thompson_propensities(stats, default)[0][2] + 0.05
    # offers that pay alike: plain Thompson, draw for draw
    alike = Stats.of([offer(4000, 160), offer(3000, 60), offer(900, 1)])
    assert np.array_equal(
        policies.thompson_draws(alike, high, np.random.default_rng(7), 100),
        policies.thompson_draws(alike, default, np.random.default_rng(7), 100),
    )
