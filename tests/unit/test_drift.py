"""Restarts on a detected market change (shared/cpa/drift.py): the test itself, pure; the roll-up that
moves each offer's drift state in Firestore is in tests/store/test_drift.py."""

import math

import numpy as np
import pytest

from shared.cpa import drift
from shared.cpa.drift import DriftParams

PARAMS = DriftParams()  # restarts as measured when turned on: half-life 1,800 s, threshold 6


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
    assert drift.params_from_env() is None  # off unless turned on (issue 26: no measured gain)
    monkeypatch.setenv("DRIFT_HALF_LIFE_SECONDS", "1800")
    assert drift.params_from_env() == DriftParams(1800.0, drift.DEFAULT_THRESHOLD)
    monkeypatch.setenv("DRIFT_THRESHOLD", "9")
    assert drift.params_from_env() == DriftParams(1800.0, 9.0)
    monkeypatch.setenv("DRIFT_HALF_LIFE_SECONDS", "0")
    assert drift.params_from_env() is None
    monkeypatch.setenv("DRIFT_HALF_LIFE_SECONDS", "-1")
    with pytest.raises(ValueError, match="DRIFT_HALF_LIFE_SECONDS"):
        drift.params_from_env()
