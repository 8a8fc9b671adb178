"""The statistics cache's age limit and ordering of copies (shared/platform/stats_cache.py), pure: no I/O."""

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
