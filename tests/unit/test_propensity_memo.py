"""thompson's logged probability is remembered by posterior, and a single request's posterior by its
statistics: the same as computed afresh, and new as soon as the statistics change."""

import numpy as np

from shared.cpa import policies
from shared.cpa.policies import OfferStats, SamplerParams, Stats, choose, thompson_model, thompson_propensities
from shared.cpa.policies import thompson as thompson_policy
from shared.cpa.policies.contextual import Adjustments, ContextParams, contextual_probabilities


def exact(stats: list[OfferStats], params: SamplerParams) -> np.ndarray:
    return thompson_propensities(Stats.of(stats), params)[0]


def logged(stats: list[OfferStats], params: SamplerParams, seed: int) -> tuple[int, float]:
    choice = choose("thompson", stats, 0, params, np.random.default_rng(seed))
    return choice.index, choice.probability


def test_the_remembered_probability_is_the_computed_one_and_follows_the_statistics():
    params = SamplerParams(floor=0.0)
    before = [OfferStats(100, 3, 300.0, 30_000.0), OfferStats(100, 5, 500.0, 50_000.0), OfferStats(10, 0, 0, 0)]
    after = [before[0], OfferStats(400, 5, 500.0, 50_000.0), before[2]]  # offer 2 lost its shine
    thompson_policy._one_request_propensities.cache_clear()
    for stats in (before, before, after, before):
        truth = exact(stats, params)
        for seed in range(5):
            index, probability = logged(stats, params, seed)
            assert probability == truth[index]
    assert thompson_policy._one_request_propensities.cache_info().hits > 0
    assert not np.allclose(exact(before, params), exact(after, params))


def test_options_that_shape_the_draw_are_part_of_what_is_remembered():
    stats = [OfferStats(200, 4, 4000.0, 4_000_000.0), OfferStats(200, 6, 1200.0, 240_000.0), OfferStats(5, 0, 0, 0)]
    for params in (
        SamplerParams(floor=0.0),
        SamplerParams(floor=0.0, optimistic_payout=False),
        SamplerParams(floor=0.0, samples=3),
        SamplerParams(floor=0.0, optimistic=True),
        SamplerParams(floor=0.0, retry_level=0.5),
    ):
        truth = exact(stats, params)
        for seed in range(5):
            index, probability = logged(stats, params, seed)
            assert probability == truth[index]


def test_a_remembered_vector_cannot_be_changed_by_a_caller():
    stats = Stats.of([OfferStats(50, 2, 200.0, 20_000.0), OfferStats(60, 1, 100.0, 10_000.0)])
    first = policies.choose_batch("thompson", stats, np.zeros(1), SamplerParams(), np.random.default_rng(0))
    again = policies.choose_batch("thompson", stats, np.zeros(1), SamplerParams(), np.random.default_rng(0))
    assert first.probability[0] == again.probability[0]
    key = tuple(
        np.ascontiguousarray(p, dtype=float).tobytes() for p in policies.thompson_posterior(stats, SamplerParams())
    )
    no_floors = b""  # retries off
    remembered = thompson_policy._one_request_propensities(
        *key, no_floors, False, policies.OPTIMISTIC_PAYOUT_MULTIPLE, True, 1
    )
    assert not remembered.flags.writeable


def test_contextual_remembers_its_probability_by_the_posterior_in_the_clicks_context():
    """The same context on the same statistics: the remembered probability is the one the integral
    gives on the adjusted posterior, with and without pacing; another context is another posterior."""
    stats = [
        OfferStats(2000, 40, 20_000.0, 1e7),
        OfferStats(2000, 20, 20_000.0, 2e7),
        OfferStats(2000, 30, 20_000.0, 1.4e7),
    ]
    fr = Adjustments(np.array([[0.4, -0.3, 0.0]]), np.array([[0.05, 0.02, 0.1]]))
    de = Adjustments(np.array([[-0.4, 0.3, 0.0]]), np.array([[0.05, 0.02, 0.1]]))
    paced = Adjustments(fr.log_rate, fr.log_rate_var, np.array([[np.log(0.6), 0.0, 0.0]]))
    thompson_policy._one_request_propensities.cache_clear()
    truths = {}
    for name, adjust in (("fr", fr), ("de", de), ("paced", paced), ("fr", fr)):
        params = ContextParams(floor=0.0, adjust=adjust)
        truth = truths.setdefault(name, contextual_probabilities(Stats.of(stats), params)[0])
        for seed in range(5):
            choice = choose("contextual", stats, 0, params, np.random.default_rng(seed))
            assert probability_close(choice.probability, truth[choice.index])
    assert thompson_policy._one_request_propensities.cache_info().hits > 0
    assert not np.allclose(truths["fr"], truths["de"]) and not np.allclose(truths["fr"], truths["paced"])


def probability_close(logged: float, truth: float) -> bool:
    return abs(logged - truth) <= 1e-12


def read_only(stats: list[OfferStats]) -> Stats:
    table = Stats.of(stats)
    for part in table:
        part.setflags(write=False)
    return table


def test_a_single_requests_posterior_is_remembered_read_only_and_follows_its_statistics_and_parameters():
    stats = [OfferStats(300, 6, 3000.0, 2e6, 6, 6 * np.log(500.0), 6 * np.log(500.0) ** 2), OfferStats(20, 0, 0, 0)]
    moved = [stats[0], OfferStats(40, 1, 900.0, 810_000.0, 1, np.log(900.0), np.log(900.0) ** 2)]
    thompson_model._remembered.clear()
    for offers, params in (
        (stats, SamplerParams()),
        (moved, SamplerParams()),
        (stats, SamplerParams(thompson_a=2.0, thompson_b=50.0)),
        (stats, SamplerParams(payouts=(400.0, 800.0))),
        (stats, SamplerParams(unseen_payout_spread=1.0)),
    ):
        table = read_only(offers)
        computed = thompson_model._computed_posterior(table, params)
        remembered = policies.thompson_posterior(table, params)
        assert policies.thompson_posterior(table, params) is remembered
        assert all(np.array_equal(r, c) for r, c in zip(remembered, computed, strict=True))
        assert not any(part.flags.writeable for part in remembered)
    assert len(thompson_model._remembered) == 5


def test_statistics_a_caller_may_still_change_are_never_remembered():
    table = Stats.of([OfferStats(300, 6, 3000.0, 2e6), OfferStats(20, 0, 0, 0)])
    first = policies.thompson_posterior(table, SamplerParams())
    table.clicks[0, 0] = 3000  # in place: the same object, other statistics
    second = policies.thompson_posterior(table, SamplerParams())
    assert second[1][0, 0] > first[1][0, 0]  # b: the clicks without a conversion


def test_statistics_read_only_in_part_are_never_remembered():
    table = Stats.of([OfferStats(300, 6, 3000.0, 2e6), OfferStats(20, 0, 0, 0)])
    table.clicks.setflags(write=False)
    first = policies.thompson_posterior(table, SamplerParams())
    table.conversions[0, 1] = 2
    table.reward[0, 1] = 1000.0
    table.reward_sq[0, 1] = 500_000.0
    assert policies.thompson_posterior(table, SamplerParams())[0][0, 1] > first[0][0, 1]
