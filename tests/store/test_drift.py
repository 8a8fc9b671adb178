"""The roll-up that moves each offer's drift state in Firestore (shared/cpa/drift.py, shared/platform/counters.py),
against the emulator; the drift test itself is checked pure in tests/unit/test_drift.py."""

import math

import numpy as np
import pytest

from shared.cpa import drift
from shared.cpa import store as cpa
from shared.platform import counters


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


@pytest.mark.parametrize("half_life", [None, "0"], ids=["by-default", "turned-off"])
def test_without_restarts_the_roll_up_keeps_the_state_as_it_was(db, monkeypatch, half_life):
    if half_life is None:
        monkeypatch.delenv("DRIFT_HALF_LIFE_SECONDS", raising=False)
    else:
        monkeypatch.setenv("DRIFT_HALF_LIFE_SECONDS", half_life)
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
