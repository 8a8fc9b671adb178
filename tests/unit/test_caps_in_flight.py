"""Pacing on the spend expected, counted + in flight (shared/cpa/caps.py). Pure."""

import datetime
import math

import numpy as np
import pytest

from shared.cpa import caps

NOON = datetime.datetime(2027, 3, 1, 12, tzinfo=datetime.UTC)
TODAY, YESTERDAY = "2027-03-01", "2027-02-28"
CAP = caps.Cap("conversions", 1000.0)


def weighted(rate: float, start: float, end: float) -> float:
    """The day's `clicks_weighted` after `rate` clicks/s from `start` to `end` seconds past midnight."""
    tau = caps.RATE_SECONDS
    return rate * tau * (math.exp(end / tau) - math.exp(start / tau))


def totals(spent: float, delay: float | None, day_clicks: float = weighted(5.0, 0, 12 * 3600)) -> dict:
    """An offer converting 2 % of its clicks, `spent` conversions counted today at noon, each
    `delay` seconds after its click (None: the delay field was never written)."""
    today = {"conversions": spent, "cents": spent * 500, caps.WEIGHTED_CLICKS: day_clicks}
    if delay is not None:
        today[caps.DELAY] = spent * delay
    return {"clicks": 100_000, "conversions": 2_000, "reward": 1_000_000, "day": {TODAY: today}}


def test_a_cap_whose_postbacks_are_slow_is_priced_higher_than_the_same_spend_without():
    slow = caps.state_of(CAP, totals(480, 3600.0), NOON)
    quick = caps.state_of(CAP, totals(480, 1.0), NOON)
    # Little's law: 5 clicks/s x 2 % x 3,600 s (a few more than 360: the rate has run since midnight)
    assert slow.in_flight == pytest.approx(360, rel=1e-3) and slow.mean_delay == pytest.approx(3600)
    assert quick.in_flight == pytest.approx(0.1, rel=1e-3)
    assert caps.CapState(480, 1000, 0.5).price == 0.0  # counted alone: behind the day's schedule
    assert slow.price > quick.price >= 0.0 and slow.price == caps.MAX_PRICE
    assert not slow.reached  # in flight may still not come: only counted spend reaches a cap


def test_without_a_delay_measured_the_price_is_todays_exactly():
    for spent in (0.0, 300.0, 505.0, 990.0):
        plain = caps.CapState(spent, CAP.limit, caps.day_fraction(NOON))
        unmeasured = totals(spent, None) if spent else totals(0.0, 3600.0)  # no conversion: no delay
        state = caps.state_of(CAP, unmeasured, NOON)
        assert state.in_flight == 0.0 and state.mean_delay == 0.0
        assert state.price == plain.price and state == plain


def test_before_todays_first_conversion_yesterdays_delay_is_used():
    found = totals(0.0, None)
    found["day"][YESTERDAY] = {"conversions": 10, caps.DELAY: 10 * 1800.0}
    state = caps.state_of(CAP, found, NOON)
    assert state.mean_delay == pytest.approx(1800) and state.in_flight == pytest.approx(180, rel=1e-3)


def test_the_rate_follows_a_throttle_over_rate_seconds_and_runs_across_midnight():
    tau = caps.RATE_SECONDS
    steady = caps.rate_of(weighted(5.0, 0, 10 * 3600), 0.0, 10 * 3600, 34 * 3600)
    stopped = caps.rate_of(weighted(5.0, 0, 10 * 3600), 0.0, 10 * 3600 + tau, 34 * 3600 + tau)
    assert steady == pytest.approx(5.0, rel=1e-4) and stopped == pytest.approx(5.0 / math.e, rel=1e-4)
    # 00:10 with yesterday's clicks until midnight: yesterday's sum still carries the rate
    carried = caps.rate_of(weighted(2.0, 0, 600), weighted(5.0, 0, 86_400), 600, 87_000)
    assert carried == pytest.approx(2.0 * (1 - math.exp(-600 / tau)) + 5.0 * math.exp(-600 / tau), rel=1e-6)


def test_only_what_lands_before_the_days_end_is_in_flight_today():
    full = caps.in_flight(5.0, 0.02, 3600.0, 12 * 3600)
    assert full == pytest.approx(360, rel=1e-4)
    assert caps.in_flight(5.0, 0.02, 3600.0, 3600) == pytest.approx(360 * (1 - 1 / math.e))
    assert caps.in_flight(5.0, 0.02, 3600.0, 0.0) == 0.0
    batch = caps.in_flight(np.array([5.0, 5.0]), 0.02, np.array([3600.0, 0.0]), 12 * 3600)
    assert batch[0] == pytest.approx(full) and batch[1] == 0.0


def test_the_delay_is_summed_per_conversion_and_clicks_add_to_their_days_rate():
    assert caps.spend_fields(TODAY, 1, 250, 42.5)[f"day.{TODAY}.{caps.DELAY}"] == 42.5
    assert f"day.{TODAY}.{caps.DELAY}" not in caps.spend_fields(TODAY, 0, 100, 99.0)  # a later event: no conversion
    assert caps.spend_fields(TODAY, 1, 250, -3.0)[f"day.{TODAY}.{caps.DELAY}"] == 0.0  # clocks apart: not negative
    paris = caps.Cap("cents", 5.0, "Europe/Paris")
    fields = caps.click_fields(paris, datetime.datetime(2027, 3, 1, 23, 30, tzinfo=datetime.UTC))
    assert fields == {f"day.2027-03-02.{caps.WEIGHTED_CLICKS}": pytest.approx(math.exp(1800 / caps.RATE_SECONDS))}
    assert caps.per_click(totals(1.0, 1.0), "cents") == 10.0 and caps.per_click({}, "conversions") == 0.0


def test_near_the_cap_the_closing_price_keeps_a_margin_for_what_may_still_land():
    """Two standard deviations of a Poisson count in flight, on the closing price only: early in the
    day a small count's square root is large against the schedule and would starve the offer."""
    near = caps.CapState(960, 1000, 0.99, in_flight=16.0, margin=caps.IN_FLIGHT_SD * 4.0)
    assert near.price == pytest.approx(caps.MAX_PRICE * ((976 + 8) / 1000 - 0.98) / caps.CLOSING)
    assert caps.CapState(960, 1000, 0.99, in_flight=16.0).price < near.price
    early = caps.CapState(5, 1000, 0.2, in_flight=1.0, margin=2.0)
    assert early.price == caps.CapState(5, 1000, 0.2, in_flight=1.0).price == 0.0
    state = caps.state_of(caps.Cap("cents", 1e6), totals(480, 3600.0), NOON)  # 500 cents a conversion
    assert state.margin == pytest.approx(caps.IN_FLIGHT_SD * state.in_flight / math.sqrt(state.in_flight / 500))
