"""Sample-ratio mismatch (shared/maths/srm.py) and the lift over the holdout (shared/maths/lift.py): pure."""

import datetime
import math

import numpy as np
import pytest

from shared.maths import lift, srm

N, SHARE = 20_000, 0.02


def holdout_test(held_out: int, n: int = N, share: float = SHARE) -> srm.Test:
    return srm.chi_square([held_out, n - held_out], [n * share, n * (1 - share)])


def test_the_p_value_is_the_chi_square_survival_function():
    for statistic in (0.1, 1.0, 3.841, 10.83, 30.0):
        assert srm.upper_gamma_regularized(0.5, statistic / 2) == pytest.approx(math.erfc(math.sqrt(statistic / 2)))
    assert srm.upper_gamma_regularized(2, 9.488 / 2) == pytest.approx(0.05, abs=1e-4)  # 4 dof
    assert srm.upper_gamma_regularized(5, 23.209 / 2) == pytest.approx(0.01, abs=1e-4)  # 10 dof


def test_srm_fires_on_a_skewed_split_and_not_on_a_fair_one():
    rng = np.random.default_rng(4)
    fair = [holdout_test(int(rng.binomial(N, SHARE))).mismatch for _ in range(500)]
    assert sum(fair) <= 3  # p < 0.001: about one false alarm in a thousand checks
    skewed = [holdout_test(int(rng.binomial(N, 0.026))).mismatch for _ in range(500)]
    assert sum(skewed) >= 0.95 * 500
    # a 3-way split checks the same way
    shares = np.array([0.5, 0.3, 0.2])
    assert not srm.chi_square(rng.multinomial(N, shares), N * shares).mismatch
    assert srm.chi_square(rng.multinomial(N, [0.52, 0.3, 0.18]), N * shares).mismatch


def test_a_split_expected_empty_that_is_not_is_a_mismatch():
    assert srm.chi_square([3, 997], [0, 1000]).mismatch
    assert not srm.chi_square([0, 1000], [0, 1000]).mismatch


def test_the_lift_interval_covers_the_true_difference():
    rng = np.random.default_rng(8)
    covered = 0
    for _ in range(300):
        learning = rng.lognormal(6, 0.5, 3000) * (rng.random(3000) < 0.05)  # about 22 cents a click
        holdout = rng.lognormal(6, 0.5, 600) * (rng.random(600) < 0.03)  # about 14
        arms = [lift.Arm(len(r), float(r.sum()), float((r * r).sum())) for r in (learning, holdout)]
        found = lift.difference(*arms)
        true = (0.05 - 0.03) * math.exp(6 + 0.5**2 / 2)
        covered += found.low <= true <= found.high
    assert covered >= 0.9 * 300


def test_days_and_the_cumulative_row_come_from_the_same_sums():
    day1, day2 = datetime.date(2026, 1, 1), datetime.date(2026, 1, 2)
    rows = [
        {"day": day1, "holdout": False, "n": 1000, "total": 4000.0, "total_sq": 400_000.0},
        {"day": day1, "holdout": True, "n": 20, "total": 0.0, "total_sq": 0.0},
        {"day": day2, "holdout": False, "n": 500, "total": 1000.0, "total_sq": 100_000.0},
        {"day": day2, "holdout": True, "n": 20, "total": 400.0, "total_sq": 40_000.0},
    ]
    daily, cumulative = lift.by_day(rows)
    assert [d.day for d in daily] == [day1, day2]
    assert daily[0].difference.value == pytest.approx(4.0) and daily[1].difference.value == pytest.approx(-18.0)
    # 20 held-out decisions a day are too few for an interval; the 40 of the window are enough
    assert all(math.isnan(d.difference.low) for d in daily)
    assert (cumulative.learning.n, cumulative.holdout.n) == (1500, 40)
    assert cumulative.difference.value == pytest.approx(5000 / 1500 - 400 / 40)
    assert cumulative.difference.low < cumulative.difference.value < cumulative.difference.high
    assert cumulative.relative == pytest.approx((5000 / 1500 - 400 / 40) / (400 / 40))
    # no held-out decision at all: no lift, rather than an infinite interval
    single = lift.by_day([{"day": day1, "holdout": False, "n": 100, "total": 5.0, "total_sq": 25.0}])[1]
    assert math.isnan(single.difference.value)
