"""Restarts on a detected market change (shared/cpa/drift.py): the test itself, pure, and the roll-up
that moves each offer's drift state in Firestore (emulator)."""

import math

import numpy as np
import pytest

from shared.cpa import drift
from shared.cpa import store as cpa
from shared.cpa.drift import DriftParams
from shared.platform import counters

PARAMS = DriftParams()  # the defaults: half-life 1,800 s, threshold 6


def _roll(rate, payout, clicks_per_second, seconds, rng, state=None, totals=None):
    """One offer under traffic, rolled up every second: (state, totals, restarts seen)."""
    state, totals = state or {}, dict(totals or {})
    for _ in range(seconds):
        before = dict(totals)
        clicks = clicks_per_second
        conversions = int(rng.binomial(clicks, rate))
        paid = payout * np.exp(0.5 * rng.standard_normal(conversions)) if conversions else np.zeros(0)
        for name, delta in zip(
            drift.FIELDS,
            (
                clicks,
                conversions,
                paid.sum(),
                (paid**2).sum(),
                conversions,
                np.log(paid).sum(),
                (np.log(paid) ** 2).sum(),
            ),
            strict=True,
        ):
            totals[name] = totals.get(name, 0.0) + float(delta)
        state = drift.rolled(state, totals, before, 1.0, PARAMS)
    return state, totals


def test_a_market_that_stays_put_never_restarts():
    rng = np.random.default_rng(3)
    for rate, payout in ((0.005, 8000.0), (0.05, 560.0), (0.3, 40.0)):
        state, _ = _roll(rate, payout, 10, 20_000, rng)
        assert state["restarts"] == 0


@pytest.mark.parametrize("after", [(0.01, 1000.0), (0.05, 5000.0)], ids=["rate 5 % -> 1 %", "payout 1,000 -> 5,000 c"])
def test_a_market_that_moves_restarts_within_a_half_life_and_keeps_only_recent_clicks(after):
    rng = np.random.default_rng(4)
    state, totals = _roll(0.05, 1000.0, 10, 20_000, rng)
    state, totals = _roll(*after, 10, 1800, rng, state, totals)
    assert state["restarts"] >= 1
    kept = drift.since(totals, state)
    assert kept["clicks"] < 3 * 1800 * 10 < totals["clicks"]  # the 200,000 clicks before are gone
    assert kept["clicks"] == round(kept["clicks"])


def test_statistics_reset_starts_the_drift_state_afresh():
    state = {"recent": {"clicks": 50.0}, "baseline": {"clicks": 900.0, "conversions": 9.0}, "restarts": 2}
    after = drift.rolled(state, {"clicks": 10, "conversions": 1}, {"clicks": 1000, "conversions": 10}, 1.0, PARAMS)
    assert after["restarts"] == 0 and after["baseline"]["clicks"] == 0
    kept = drift.since({"clicks": 10, "conversions": 1}, after)
    assert (kept["clicks"], kept["conversions"]) == (10, 1)


def test_a_payout_below_one_cent_is_not_mistaken_for_a_reset():
    before = {"clicks": 100, "conversions": 2, "log_conversions": 2, "log_reward": 1.0}
    after = {"clicks": 101, "conversions": 3, "log_conversions": 3, "log_reward": 1.0 + math.log(0.5)}
    state = drift.rolled({"recent": before, "baseline": {"clicks": 40.0}}, after, before, 1.0, PARAMS)
    assert state["baseline"]["clicks"] == 40.0


def test_since_is_the_totals_before_any_restart():
    totals = {"clicks": 7, "conversions": 1, "reward": 300.0, "_writes": 8}
    assert drift.since(totals, {}) is totals
    assert drift.since(totals, {"recent": {"clicks": 7.0}, "restarts": 0}) is totals


def test_drift_settings_from_the_environment(monkeypatch):
    monkeypatch.delenv("DRIFT_HALF_LIFE_SECONDS", raising=False)
    monkeypatch.delenv("DRIFT_THRESHOLD", raising=False)
    assert drift.params_from_env() == DriftParams(drift.DEFAULT_HALF_LIFE_SECONDS, drift.DEFAULT_THRESHOLD)
    monkeypatch.setenv("DRIFT_HALF_LIFE_SECONDS", "0")
    assert drift.params_from_env() is None
    monkeypatch.setenv("DRIFT_HALF_LIFE_SECONDS", "-1")
    with pytest.raises(ValueError, match="DRIFT_HALF_LIFE_SECONDS"):
        drift.params_from_env()


def _add(db, path, clicks, conversions, payout):
    batch = db.batch()
    log = math.log(payout)
    amounts = {
        "clicks": clicks,
        "conversions": conversions,
        "reward": conversions * payout,
        "reward_sq": conversions * payout**2,
        "log_conversions": conversions,
        "log_reward": conversions * log,
        "log_reward_sq": conversions * log**2,
    }
    counters.add(batch, db, path, amounts)
    batch.commit()


def test_the_roll_up_moves_an_offers_drift_state_once_and_decisions_see_the_new_market(db, monkeypatch):
    monkeypatch.setenv("DRIFT_HALF_LIFE_SECONDS", "60")
    path = cpa.offer_counter(41)
    _add(db, path, 20_000, 400, 200.0)  # a long history at 200 c a conversion
    first = counters.roll_up(db, path, counters.Summary(), 1000.0, 1.0, cpa.offer_drift)
    assert first.derived["restarts"] == 0 and first.derived["recent"]["clicks"] == 20_000
    _add(db, path, 600, 12, 8000.0)  # ten minutes later: the offer now pays 8,000 c
    second = counters.roll_up(db, path, first, 1600.0, 1.0, cpa.offer_drift)
    assert second.derived["restarts"] == 1
    stored = counters.read_summaries(db, [path])[path]
    assert stored.derived == second.derived
    kept = cpa._offer_stats(drift.since(stored.totals, stored.derived))
    assert kept.clicks < 700 and kept.conversions == 12 and kept.reward == pytest.approx(12 * 8000.0, rel=0.01)
    # a roller that read the summary before `second` is refused: the change is counted once
    assert counters.roll_up(db, path, first, 1700.0, 1.0, cpa.offer_drift) is None
    assert counters.read_summaries(db, [path])[path].derived["restarts"] == 1


def test_without_restarts_the_roll_up_keeps_the_state_as_it_was(db, monkeypatch):
    monkeypatch.setenv("DRIFT_HALF_LIFE_SECONDS", "0")
    path = cpa.offer_counter(42)
    _add(db, path, 100, 2, 500.0)
    state = {"recent": {"clicks": 3.0}, "baseline": {"clicks": 1.0}, "restarts": 1}
    rolled = counters.roll_up(db, path, counters.Summary(derived=state), 1000.0, 1.0, cpa.offer_drift)
    assert rolled.derived == state


def test_thompson_decides_on_the_new_market_and_klucb_on_every_click(db, monkeypatch):
    from shared.cpa.models import SampleRequest
    from shared.platform import stats_cache

    monkeypatch.setenv("DRIFT_HALF_LIFE_SECONDS", "60")
    fallen, steady = cpa.offer_counter(51), cpa.offer_counter(52)
    _add(db, fallen, 20_000, 2_000, 1000.0)  # 100 c a click for a long time...
    _add(db, steady, 20_000, 600, 1000.0)  # 30 c a click
    first = counters.roll_up_many(
        db, {fallen: counters.Summary(), steady: counters.Summary()}, 1000.0, 1.0, cpa.offer_drift
    )
    _add(db, fallen, 3_000, 0, 1000.0)  # ...then nothing for 3,000 clicks
    assert counters.roll_up(db, fallen, first[fallen], 1600.0, 1.0, cpa.offer_drift).derived["restarts"] == 1
    cache = stats_cache.StatsCache(db, max_age=2.0, clock=lambda: 1600.5, background=False)
    store = cpa.CpaStore(db, np.random.default_rng(0), cache)
    offers = {
        sampler: [
            store.sample(SampleRequest(click_id=base + i, offer_ids=[51, 52], sampler=sampler)).offer_id
            for i in range(20)
        ]
        for sampler, base in (("thompson", 10_000), ("klucb", 20_000))
    }
    assert offers["thompson"].count(52) >= 19  # 0 in 3,000 since the restart against 600 in 20,000
    assert offers["klucb"].count(51) >= 19  # 2,000 in 23,000 against 600 in 20,000
