"""Ragged candidate sets (shared/cpa/policies/common.py masks): one batched call serves requests with
different numbers of candidates exactly as one call per request would. Pure."""

import numpy as np
import pytest

from shared.cpa import drift
from shared.cpa.policies import SAMPLERS, OfferStats, SamplerParams, Stats, choose_batch

ROWS = [  # three requests with 2, 3 and 5 candidates
    [OfferStats(100, 5, 500.0, 50_000.0, 5, 5 * np.log(100), 5 * np.log(100) ** 2), OfferStats(40, 1, 300.0, 90_000.0)],
    [OfferStats(), OfferStats(10, 2, 400.0, 80_000.0), OfferStats(900, 30, 9_000.0, 2.7e6)],
    [OfferStats(50 * i, i, 100.0 * i, 10_000.0 * i) for i in range(1, 6)],
]
WIDEST = max(len(row) for row in ROWS)


def padded() -> tuple[Stats, np.ndarray]:
    fields = np.zeros((len(ROWS), WIDEST, 7))
    for r, row in enumerate(ROWS):
        fields[r, : len(row)] = [[getattr(s, f) for f in OfferStats.__dataclass_fields__] for s in row]
    mask = np.arange(WIDEST)[None, :] < np.array([len(row) for row in ROWS])[:, None]
    return Stats(*np.moveaxis(fields, 2, 0)), mask


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_padding_is_never_chosen_and_each_row_logs_the_probability_it_would_alone(sampler):
    stats, mask = padded()
    params = SamplerParams(floor=0.05)
    total_clicks = np.full(len(ROWS), 10**6)
    # alone: each request's own choices and logged probabilities, over many draws
    logged_alone = []
    for row in ROWS:
        seen: dict[int, float] = {}
        alone_rng = np.random.default_rng(1)
        for _ in range(400):
            decided = choose_batch(sampler, Stats.of(row), np.array([10**6]), params, alone_rng)
            seen[int(decided.index[0])] = float(decided.probability[0])
        logged_alone.append(seen)
    rng = np.random.default_rng(3)
    for _ in range(400):
        decided = choose_batch(sampler, stats, total_clicks, params, rng, mask=mask)
        for r, row in enumerate(ROWS):
            index = int(decided.index[r])
            assert index < len(row)  # never the padding
            if index in logged_alone[r]:  # a choice 400 draws alone never made (rare) has nothing to compare
                assert decided.probability[r] == pytest.approx(logged_alone[r][index], rel=1e-6), (r, index)


def test_thompson_probabilities_of_a_padded_row_sum_to_one_over_its_candidates_only():
    stats, mask = padded()
    found = SAMPLERS["thompson"].probabilities(stats, SamplerParams(), mask)
    assert np.all(found[~mask] == 0.0)
    assert found.sum(axis=1) == pytest.approx(np.ones(len(ROWS)))


def test_the_drift_rule_is_the_same_for_one_offer_in_maps_and_for_a_batch_in_arrays():
    params = drift.DriftParams(half_life=60.0, threshold=6.0)
    before = {"clicks": 20_000, "conversions": 400, "reward": 80_000.0, "log_conversions": 400}
    after = {"clicks": 20_600, "conversions": 412, "reward": 80_000.0 + 12 * 8000.0, "log_conversions": 412}
    state = drift.rolled(drift.rolled(None, before, {}, 0.0, params), after, before, 600.0, params)
    vector = lambda values: np.array([float(values.get(f, 0.0)) for f in drift.FIELDS])[:, None]  # noqa: E731
    arrays = drift.roll(drift.DriftState.zeros((1,)), vector(before), np.zeros((7, 1)), 0.0, params)
    arrays = drift.roll(arrays, vector(after), vector(before), 600.0, params)
    assert state["restarts"] == int(arrays.restarts[0])
    assert [state["baseline"][f] for f in drift.FIELDS] == pytest.approx(arrays.baseline[:, 0])
    assert [state["recent"][f] for f in drift.FIELDS] == pytest.approx(arrays.recent[:, 0])


def test_the_median_that_decides_thompsons_optimism_is_each_rows_median_over_its_candidates():
    from shared.cpa.policies.thompson_model import _row_median

    rng = np.random.default_rng(7)
    values = np.round(rng.standard_normal((200, 9)), 1)  # ties included
    mask = rng.random((200, 9)) < 0.6
    mask[0] = False
    mask[1] = [True] + [False] * 8
    found = _row_median(values, mask)[:, 0]
    assert np.isinf(found[0]) and found[1] == values[1, 0]
    for row in range(1, 200):
        assert found[row] == np.median(values[row, mask[row]])
