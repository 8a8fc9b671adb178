"""Caps priced on counted + in-flight spend, through the real CpaStore against the emulator.

The click's `sampled_at` is the emulator's own time, so the clock here starts at the real time and
moves forward from it: a feedback 30 minutes later on this clock is 30 minutes after the click."""

import time

import pytest

from shared.cpa import caps
from shared.cpa import store as cpa
from shared.cpa.models import FeedbackRequest, SampleRequest
from shared.platform import counters
from shared.platform.namespace import ROOT, Namespace
from tests.store.test_context_and_caps_store import Clock, make_store, set_caps

HALF_HOUR = 1800.0


def real_clock() -> Clock:
    clock = Clock()
    clock.now = time.time()
    return clock


def day_totals(db, offer: int, clock: Clock, space: Namespace = ROOT) -> dict:
    path = cpa.offer_counter(offer, space)
    return counters.exact_totals(db, [path])[path]["day"][caps.day_of(clock.utc())]


def test_the_postback_delay_is_summed_once_under_replayed_feedback(db):
    clock = real_clock()
    set_caps(db, {"8": {"cents": 100_000}})
    store = make_store(db, clock)
    store.sample(SampleRequest(click_id=1, offer_ids=[8]))
    clicked = Clock()
    clicked.now = clock.now
    clock.now += HALF_HOUR
    for _ in range(3):
        store.feedback(FeedbackRequest(click_id=1, reward=250))
        store.feedback(FeedbackRequest(click_id=1, reward=100, event_id="deposit"))  # no new conversion
    day = day_totals(db, 8, clock)  # the postback's day: in the day's last half hour, the next one
    assert day["conversions"] == 1 and day["cents"] == 350
    assert day[caps.DELAY] == pytest.approx(HALF_HOUR, abs=30)  # once, not three or six times
    assert day_totals(db, 8, clicked)[caps.WEIGHTED_CLICKS] > 0  # the click's write carried its day's rate


def test_the_stats_cap_shows_the_mean_delay_and_the_spend_in_flight(db):
    clock = real_clock()
    set_caps(db, {"31": {"conversions": 1000}}, Namespace("tenant_b"))
    store = make_store(db, clock, Namespace("tenant_b"))
    for click_id in range(1, 41):
        store.sample(SampleRequest(click_id=click_id, offer_ids=[31]))
        clock.now += 1
    clock.now += HALF_HOUR
    for click_id in range(1, 21, 2):  # a quarter of the clicks convert, half an hour later
        store.feedback(FeedbackRequest(click_id=click_id, reward=400))
    status = store.cap_status(31)
    assert status["spent"] == 10 and status["mean_delay_seconds"] == pytest.approx(HALF_HOUR + 20, abs=40)
    assert status["in_flight"] > 0 and status["price"] >= caps.CapState(10, 1000, status["share_of_day"]).price
    assert make_store(db, clock).cap_status(31) is None  # another tenant's offer 31: no cap, nothing shown
    untouched = counters.exact_totals(db, [cpa.offer_counter(31)])[cpa.offer_counter(31)]
    assert untouched == {}


def test_the_served_stats_show_the_in_flight_estimate(db):
    from tests.conftest import function_client

    set_caps(db, {"23": {"conversions": 100}})
    sample, feedback, stats = (function_client(name) for name in ("sample", "feedback", "stats"))
    for click_id in (1, 2, 3):
        sample.get("/", query_string={"click_id": click_id, "offer_ids": "23"})
    time.sleep(0.2)
    assert feedback.put("/", query_string={"click_id": 1, "reward": 700}).status_code == 200
    cap = stats.get("/offer_ids/23/stats").get_json()["cap"]
    assert cap["spent"] == 1 and cap["mean_delay_seconds"] >= 0.1 and cap["in_flight"] >= 0
    assert set(cap) >= {"in_flight", "mean_delay_seconds", "price", "reached"}
