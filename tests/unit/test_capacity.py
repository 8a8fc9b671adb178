"""The statistics cache's age limit and ordering of copies (shared/platform/stats_cache.py), pure: no I/O."""

import math

import pytest

from shared.platform import counters, stats_cache


def test_how_old_a_copy_may_be_grows_with_the_counters_life():
    cache = stats_cache.StatsCache(None, max_age=2.0)  # age_limit does no I/O
    young = counters.Summary(totals={counters.WRITES: 50}, rate=100.0)  # 0.5 s of life
    assert cache.age_limit(counters.Summary(rate=None)) == cache.min_age == 0.1  # rate not yet measured
    assert cache.age_limit(young) == 0.1
    assert cache.age_limit(counters.Summary(totals={counters.WRITES: 500}, rate=100.0)) == pytest.approx(0.5)
    assert cache.age_limit(counters.Summary(totals={counters.WRITES: 10**6}, rate=100.0)) == 2.0
    assert cache.age_limit(counters.Summary(totals={counters.WRITES: 3}, rate=0.0)) == 2.0  # idle


def test_a_copy_is_not_re_read_for_less_than_one_expected_write():
    cache = stats_cache.StatsCache(None, max_age=2.0)
    # 4 writes at 0.8/s: 10 % of its life is 0.5 s, a copy that old misses 0.4 writes; one write takes 1.25 s
    assert cache.age_limit(counters.Summary(totals={counters.WRITES: 4}, rate=0.8)) == pytest.approx(1.25)
    assert cache.age_limit(counters.Summary(totals={counters.WRITES: 4}, rate=0.3)) == 2.0  # never past M
    # from 10 writes on, 10 % of the life is at least one write's time: the rule as before
    assert cache.age_limit(counters.Summary(totals={counters.WRITES: 30}, rate=3.0)) == pytest.approx(1.0)


def test_a_later_read_of_a_staler_summary_does_not_replace_a_fresher_copy():
    cache = stats_cache.StatsCache(None, max_age=2.0)  # _store does no I/O
    summed = counters.Summary(totals={"clicks": 10}, as_of=100.0)  # a request's refresh: summed now
    stale = counters.Summary(totals={"clicks": 7}, as_of=98.5)  # a background read whose roll-up was refused
    cache._store("cpa_offers/1", 100.0, summed)
    assert cache._store("cpa_offers/1", 100.2, stale)[1] is summed
    newer = counters.Summary(totals={"clicks": 12}, as_of=100.4)
    assert cache._store("cpa_offers/1", 100.4, newer)[1] is newer


def _shards_after(rates_per_second: list[float], start: float | None = None) -> int:
    """The shard count a counter ends with after one roll-up per second at these measured rates."""
    sustained, previous, shards = start, start, counters.MIN_SHARDS
    for rate in rates_per_second:
        sustained = counters.sustained_rate(sustained, rate, 1.0)
        shards = max(shards, counters.shards_for(counters.sizing_rate(sustained, rate, previous)))
        previous = rate
    return shards


def test_a_burst_of_a_second_does_not_ratchet_the_shard_count():
    # 2 writes/s with one second at 40: sized on that second alone it was 80 shards for good;
    # smoothed, the second weighs 1 - exp(-1/10) of the average: 5.6 writes/s, 16 shards
    assert counters.shards_for(40.0) == 80
    assert _shards_after([2.0] * 30 + [40.0] + [2.0] * 30, start=2.0) == 16
    assert _shards_after([2.0] * 30 + [20.0] + [2.0] * 30, start=2.0) == 8


def test_a_rise_that_lasts_two_roll_ups_gets_its_shards_at_the_second():
    assert _shards_after([400.0]) == counters.shards_for(400.0 * (1 - math.exp(-0.1))) == 80
    assert _shards_after([400.0, 400.0]) == counters.shards_for(400.0) == 800
    assert _shards_after([2.0] * 30 + [40.0, 40.0] + [2.0] * 30, start=2.0) == 80


def test_the_smoothed_rate_follows_a_slow_rise_and_forgets_after_a_long_pause():
    # a rise of 10 writes/s every second: each second's rate is held for one roll-up only
    assert _shards_after([10.0 * n for n in range(1, 41)]) == counters.shards_for(390.0) == 784
    assert counters.sustained_rate(400.0, 0.0, 1000.0) == pytest.approx(0.0, abs=1e-9)
    assert counters.sustained_rate(None, 100.0, 0.0) == 0.0
    assert counters.sizing_rate(None, None, None) == 0.0
